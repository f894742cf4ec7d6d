//! The verifier role: a daemon holding the trusted solver's key answers the Verifier contract's requests.
//! - [`fetch`]: a challenged segment's proof bundle through its dataStorageHash, every file checked against
//!   the hashes on chain;
//! - [`judge`]: the verdict: bit-exact (re-transcode in the engine's deterministic mode and compare the
//!   transcodedDataHash) or fidelity (measure the claimed renditions against the input and the profiles);
//! - [`solver`]: the async task: requests from the Verifier's events, kept in the journal until answered,
//!   judged, and answered with `callback`.

pub mod fetch;
pub mod judge;
pub mod solver;

pub use judge::{Judgement, judge};
pub use solver::{Solver, SolverOptions, SolverStatus};
