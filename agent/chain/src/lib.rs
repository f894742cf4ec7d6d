//! On-chain side of the edge agent, and the only crate that ever holds key material:
//! - [`node`]: async JSON-RPC client (reqwest + rustls) with retries, timeouts and a request count;
//! - [`keys`]: the encrypted Web3 Secret Storage keystore and where its password comes from;
//! - [`journal`]: the sled journal of signed transactions (nonce reservation before broadcast) and cursors;
//! - [`sender`]: dry run, sign (ethers-signers), broadcast, confirm, replace when stuck, name reverts;
//! - [`events`]: log polling from a persisted cursor, reorgs retracted;
//! - [`claims`]: a job's claims and verifications: views, the calls that make them, their events;
//! - [`protocol`]: typed views of the protocol state; [`keeper`]: round initialization and reward, once per round;
//! - [`bindings`], [`abi`], [`revert`]: the contracts' calls, events and named errors, generated from forge
//!   artifacts; [`hashes`]: the hash rules shared with the contracts; [`deployment`]: the deployment file;
//! - [`devnet`]: a local anvil with the contracts deployed, funded dev accounts and keystores;
//! - [`rpc`]: a small blocking client kept for the gas report and the bindings' own tests.

pub mod abi;
pub mod bindings;
pub mod claims;
pub mod config;
pub mod deployment;
pub mod devnet;
pub mod events;
pub mod hashes;
pub mod jobs;
pub mod journal;
pub mod keeper;
pub mod keys;
pub mod node;
pub mod ops;
pub mod protocol;
pub mod revert;
pub mod rpc;
pub mod sender;

pub use config::{ChainConfig, ClaimsConfig};
pub use deployment::Deployment;
pub use ethers_core::types::{Address, Bytes, H256, I256, U256};

/// A signed ABI integer (`intN` arguments of the bindings), e.g. a verifier's fidelity score.
pub fn abi_int(v: i64) -> I256 {
    I256::from(v)
}
pub use ethers_signers::LocalWallet;

/// EIP-191 signature (65 bytes r ++ s ++ v, v in {27, 28}) of the segment hash, as the broadcaster makes it
/// and the JobsManager checks it.
pub fn sign_segment(
    wallet: &ethers_signers::LocalWallet,
    stream_id: &str,
    seg_no: u64,
    data_hash: H256,
) -> Result<Vec<u8>, ethers_signers::WalletError> {
    let digest =
        hashes::eth_signed_message_hash(hashes::segment_hash(stream_id, seg_no, data_hash));
    Ok(wallet.sign_hash(digest)?.to_vec())
}

/// Crash-consistency tests: `EDGE_AGENT_CRASH_AT=<point>` makes the process abort at that point, as a power
/// cut or kill -9 would (no destructors, no flush beyond what was already made durable).
pub fn crash_point(name: &str) {
    static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if AT
        .get_or_init(|| std::env::var("EDGE_AGENT_CRASH_AT").ok())
        .as_deref()
        == Some(name)
    {
        tracing::error!(point = name, "EDGE_AGENT_CRASH_AT: aborting");
        std::process::abort();
    }
}
