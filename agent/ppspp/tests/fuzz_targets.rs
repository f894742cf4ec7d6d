//! The cargo-fuzz targets (fuzz/fuzz_targets), run in the ordinary test build on hand-made seeds and seeded
//! mutations of them (see the fuzz-smoke crate). The coverage-guided campaign is `./x fuzz`.
#[path = "../fuzz/fuzz_targets/decode_datagram.rs"]
mod decode_datagram;
#[path = "../fuzz/fuzz_targets/peer_ops.rs"]
mod peer_ops;

use fuzz_smoke::Smoke;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn decode_datagram_on_every_golden_vector_under_every_context_and_their_mutants() {
    // the target's first byte picks the addressing (low 3 bits, mod 5) and the hash length (next bits)
    let mut seeds = Vec::new();
    for line in include_str!("vectors/wire.txt")
        .lines()
        .filter(|l| !l.starts_with('#'))
    {
        let hex = line
            .split(" | ")
            .nth(2)
            .expect("name | context | hex | expected");
        let datagram = unhex(hex.trim());
        for sel in 0..40u8 {
            seeds.push([&[sel][..], &datagram].concat());
        }
    }
    Smoke::new(env!("CARGO_MANIFEST_DIR"), "decode_datagram")
        .max_len(2048)
        .runs(200_000)
        .check(&seeds, decode_datagram::run);
}

#[test]
fn peer_ops_from_complete_transfers_and_their_mutants() {
    // op codes (the target's `op % 9`): 0 deliver to the seeder, 1 to the leecher, 2 corrupt, 4 advance time,
    // 5 junk, 6 drop, 8 forged source
    let mut clean = Vec::new();
    let mut hostile = Vec::new();
    for i in 0..300u16 {
        let i = i as u8;
        clean.extend_from_slice(&[0, 0, 1, 0]);
        hostile.extend_from_slice(&[0, i, 1, i]);
        if i % 8 == 0 {
            clean.extend_from_slice(&[4, 3]);
            hostile.extend_from_slice(&[4, 30, 2, i, 6, 1, 8, i, 5, 6, 1, 2, 3, 4, 5, 6]);
        }
    }
    Smoke::new(env!("CARGO_MANIFEST_DIR"), "peer_ops")
        .max_len(2048)
        .runs(10_000)
        .check(&[clean, hostile], peer_ops::run);
}
