//! Revert data comes from the node (any node the box is pointed at): naming the error must never panic,
//! whatever the bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = chain::revert::explain(data);
    assert!(!text.is_empty());
});
