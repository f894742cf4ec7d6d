//! The cargo-fuzz target (fuzz/fuzz_targets), run in the ordinary test build on hand-made seeds and seeded
//! mutations of them (see the fuzz-smoke crate). The coverage-guided campaign is `./x fuzz`.
#[path = "../fuzz/fuzz_targets/bundle_manifest.rs"]
mod bundle_manifest;

use chain::H256;
use fuzz_smoke::Smoke;
use proof::EncodeMode;
use proof::bundle::Manifest;

#[test]
fn bundle_manifest_on_real_manifests_and_their_mutants() {
    let seeds: Vec<Vec<u8>> = [(EncodeMode::BitExact, 2), (EncodeMode::Fidelity, 0)]
        .into_iter()
        .map(|(mode, n)| {
            let m = Manifest {
                job_id: 4,
                stream_id: "s1".into(),
                seg_no: 17,
                data_hash: H256::repeat_byte(0xd1),
                profiles: (0..n).map(|i| format!("p{i}")).collect(),
                rendition_hashes: (0..n).map(|i| H256::repeat_byte(i as u8)).collect(),
                mode,
                pixels: 1280 * 720 * 60,
            };
            serde_json::to_vec(&m).unwrap()
        })
        .collect();
    Smoke::new(env!("CARGO_MANIFEST_DIR"), "bundle_manifest")
        .runs(30_000)
        .check(&seeds, bundle_manifest::run);
}
