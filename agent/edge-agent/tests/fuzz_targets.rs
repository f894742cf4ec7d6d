//! The cargo-fuzz target (fuzz/fuzz_targets), run in the ordinary test build on hand-made seeds and seeded
//! mutations of them (see the fuzz-smoke crate). The coverage-guided campaign is `./x fuzz`.
#[path = "../fuzz/fuzz_targets/request.rs"]
mod ingest_request;

use fuzz_smoke::Smoke;

#[test]
fn request_on_every_part_of_an_ingest_request_and_their_mutants() {
    // the first byte picks the part: 0 stream id, 1 segment name, 2 headers, 3 a path below a base, 4 join body
    let join = r#"{"stream":"s1","swarm_id":"0dabababababababababababababababababababababababababababababababababab","peers":["127.0.0.1:7000","[::1]:7001"],"job_id":4}"#;
    let seeds: Vec<Vec<u8>> = [
        (0, "stream-1"),
        (1, "000042.ts"),
        (2, "17"),
        (2, "0x1b2c3d"),
        (3, "360p/index.m3u8"),
        (3, "../../etc/passwd"),
        (4, join),
    ]
    .iter()
    .map(|(part, text)| [&[*part][..], text.as_bytes()].concat())
    .collect();
    Smoke::new(env!("CARGO_MANIFEST_DIR"), "request")
        .runs(50_000)
        .check(&seeds, ingest_request::run);
}
