//! Media engine of the edge transcoder: profiles, the long-lived per-stream GStreamer pipeline, a strict
//! MPEG-TS demuxer/muxer, the H.264 access unit and timeline repair, the HLS writer, and the input sources.
//! See README.md.

pub mod backend;
pub mod capacity;
pub mod engine;
pub mod fidelity;
pub mod h264;
pub mod hls;
pub mod pool;
pub mod profiles;
pub mod sources;
pub mod timeline;
pub mod ts;

pub use backend::{Backend, X264Options};
pub use engine::{
    BuildError, EngineConfig, Layout, Rendition, SegmentError, SegmentOutput, SegmentStats,
    Transcoder,
};
pub use pool::TranscoderPool;
pub use profiles::{Profile, ProfileError, ProfileSet};
pub use timeline::Dropped;
