//! On-chain side of the edge agent (issue 3): typed bindings of the protocol contracts generated from the
//! forge artifacts, the hash rules the agent shares with the contracts, the deployment file, and a small
//! blocking JSON-RPC client used by tools and tests. Future home of the keystore, signer, RPC and tx journal.

pub mod abi;
pub mod bindings;
pub mod deployment;
pub mod devnet;
pub mod hashes;
pub mod rpc;

pub use deployment::Deployment;
pub use ethers_core::types::{Address, Bytes, H256, U256};

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
