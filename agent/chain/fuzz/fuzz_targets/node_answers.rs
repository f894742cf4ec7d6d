//! The typed answers the client reads from a node's JSON (headers, receipts, logs, journal records read back)
//! and the ABI decoders of the views: never a panic, whatever arrives.
#![cfg_attr(fuzzing, no_main)]
use chain::bindings::{bonding_manager as bm, jobs_manager as jm, verifier as vf};
use chain::claims::{ClaimEvent, VerifyRequest};
use chain::journal::TxRecord;
use chain::node::Header;
use ethers_core::types::{Log, TransactionReceipt};

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

/// The target's body; also run by the crate's tests (tests/fuzz_targets.rs).
pub fn run(data: &[u8]) {
    let _ = serde_json::from_slice::<Option<Header>>(data);
    let _ = serde_json::from_slice::<Option<TransactionReceipt>>(data);
    if let Ok(logs) = serde_json::from_slice::<Vec<Log>>(data) {
        // the claim life cycle's and the verifier's events, from whatever the node calls a log
        for l in &logs {
            let _ = ClaimEvent::from_log(l);
            let _ = VerifyRequest::from_log(l);
        }
    }
    let _ = jm::decode_get_claim(data);
    let _ = jm::decode_get_job(data);
    let _ = jm::decode_is_verification_requested(data);
    let _ = vf::decode_get_request(data);
    let _ = serde_json::from_slice::<TxRecord>(data);
    let _ = bm::decode_get_delegator(data);
    let _ = bm::decode_get_transcoder(data);
    let _ = bm::decode_get_active_transcoders(data);
    let _ = bm::decode_pending_earnings(data);
    if data.len() >= 64 {
        let topics: Vec<_> = data
            .chunks_exact(32)
            .take(4)
            .map(ethers_core::types::H256::from_slice)
            .collect();
        let _ = bm::events::Bond::decode(&topics, data);
        let log = Log {
            topics,
            data: data.to_vec().into(),
            ..Default::default()
        };
        let _ = ClaimEvent::from_log(&log);
        let _ = VerifyRequest::from_log(&log);
    }
}
