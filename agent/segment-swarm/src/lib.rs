//! # segment-swarm
//!
//! Media segments carried by PPSPP live swarms (RFC 7574 §6, signed munros). A live swarm moves a byte
//! stream; this crate cuts that stream back into the segments it was made of:
//!
//! - [`frame`]: the record format (a small checked header, JSON metadata, the segment's bytes), each record
//!   padded to a munro boundary so that it is published at once and a peer joining mid-stream finds the next
//!   record start; [`frame::Deframer`] is the sans-IO receiver that turns in-order chunks (and the gaps a
//!   live swarm reports) back into records.
//! - [`manifest`]: the JSON document a transcoder serves so that viewers find a stream's rendition swarms.
//! - [`node`]: a [`node::Publisher`] and a [`node::Subscriber`] over `ppspp_udp::Node`.
//!
//! Authentication is layered: every chunk is checked against the publisher's munro signatures by `ppspp`;
//! a source segment also carries the broadcaster's EIP-191 signature, checked by the chain client when
//! the transcoder accepts it for a job.

pub mod frame;
pub mod manifest;
pub mod node;

pub use frame::{Deframer, FrameError, Record, RenditionMeta, SegmentMeta};
pub use manifest::{RenditionSwarm, SwarmManifest};
pub use node::{Publisher, Subscriber};
