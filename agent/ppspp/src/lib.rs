//! # ppspp
//!
//! A sans-IO implementation of the Peer-to-Peer Streaming Peer Protocol (PPSPP, RFC 7574): wire codec for
//! all 14 message types and every handshake option, Merkle hash trees (static content), the Unified Merkle
//! Tree with signed munros (live), LEDBAT congestion control, and a peer state machine ([`Swarm`]) that takes
//! datagrams and `now` and returns datagrams, events and its next timeout. No sockets, no clock, no runtime:
//! drive it from tokio (`ppspp-udp`), a simulator ([`sim`]) or anything else.

pub mod bin;
pub mod ledbat;
pub mod live;
pub mod merkle;
pub mod sim;
pub mod swarm;
pub mod wire;

pub use swarm::{Event, Footprint, PEX_SEEN_MAX, Stats, Swarm, SwarmConfig, Transmit};

/// Errors of the library's fallible constructors and calls.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bad swarm id: {0}")]
    BadSwarmId(String),
    #[error("this peer is not the source of a live stream")]
    NotLiveSource,
}
