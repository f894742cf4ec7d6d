//! Proof state of a transcoder box, in sled, knowing nothing of the daemon:
//! - [`receipt`]: a receipt per signed segment (hashes, signature, where the bytes are, encode mode);
//! - [`store`]: jobs, receipts and claims on disk;
//! - [`claim`]: one claim's stages, as pure transitions;
//! - [`ledger`]: every job's claim life cycle: the current block in, what to send out; events in, recorded;
//! - [`driver`]: the async task that runs the ledger against a real chain through the chain client;
//! - [`bundle`]: what is kept of a segment for a challenge, and what a verifier fetches and checks.

pub mod bundle;
pub mod claim;
pub mod driver;
pub mod ledger;
pub mod receipt;
pub mod store;

pub use claim::{Answer, ClaimRecord, Stage, Windows};
pub use ledger::{Action, Event, Ledger, Policy};
pub use receipt::{EncodeMode, Receipt, SegmentRun};
pub use store::{JobRecord, ProofStore};
