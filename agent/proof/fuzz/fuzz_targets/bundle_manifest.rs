//! What a verifier fetches from a transcoder it does not trust: a proof bundle's manifest, checked against the
//! chain's hashes, and the files checked against the manifest. Never a panic, whatever arrives.
#![cfg_attr(fuzzing, no_main)]
use chain::H256;
use proof::bundle::{self, Manifest};

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

/// The target's body; also run by the crate's tests (tests/fuzz_targets.rs).
pub fn run(data: &[u8]) {
    let h = |b: u8| H256::repeat_byte(b);
    if let Ok(m) = Manifest::parse(data) {
        let _ = m.check(m.job_id, m.seg_no, m.data_hash, h(1));
        let _ = m.check(0, 0, h(2), h(3));
        for (i, want) in m.rendition_hashes.iter().enumerate() {
            let _ = bundle::check_file(&bundle::rendition_file(i), data, *want);
        }
    }
    let _ = bundle::check_file(bundle::INPUT, data, h(0));
}
