//! Revert data comes from the node (any node the box is pointed at): naming the error must never panic,
//! whatever the bytes.
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

/// The target's body; also run by the crate's tests (tests/fuzz_targets.rs).
pub fn run(data: &[u8]) {
    let text = chain::revert::explain(data);
    assert!(!text.is_empty());
}
