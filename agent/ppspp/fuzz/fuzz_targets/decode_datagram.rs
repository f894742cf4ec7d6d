//! Any bytes under any decoding context: decode must not panic, and what decodes must re-encode to bytes
//! that decode to the same value.
#![cfg_attr(fuzzing, no_main)]
use ppspp::wire::{self, Addressing, WireCtx};

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

/// The target's body; also run by the crate's tests (tests/fuzz_targets.rs).
pub fn run(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let addressing = Addressing::from_u8(sel % 5).unwrap();
    let hash_len = [20, 28, 32, 48, 64][((sel >> 3) % 5) as usize];
    let mut ctx = WireCtx {
        addressing,
        hash_len,
        sig_len: 64,
    };
    let start = ctx;
    if let Ok(d) = wire::decode(rest, &mut ctx) {
        let again = wire::encode(&d);
        let mut ctx2 = start;
        assert_eq!(wire::decode(&again, &mut ctx2).as_ref(), Ok(&d));
    }
}
