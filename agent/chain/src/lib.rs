//! On-chain side of the edge agent (issue 3): typed bindings of the protocol contracts generated from the
//! forge artifacts, the hash rules the agent shares with the contracts, the deployment file, and a small
//! blocking JSON-RPC client used by tools and tests. Future home of the keystore, signer, RPC and tx journal.

pub mod abi;
pub mod bindings;
