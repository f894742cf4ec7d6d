//! What an engine is built from: the renditions, the backend, and how the branches are laid out.

use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::profiles::Profile;

/// Where each rendition's scaler takes its frames from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topology {
    /// Every rendition scales the decoded frames.
    Direct,
    /// The rendition with the largest box scales the decoded frames; every rendition whose box fits in it
    /// scales that rendition's frames (e.g. 1080 -> 720, then 720 -> 480 and 720 -> 360).
    FanLargest,
    /// Each rendition scales the next larger one's frames (1080 -> 720 -> 480 -> 360).
    Chain,
}

/// Branch layout knobs (what the media benchmark tunes; BENCHMARKS.md has the figures behind the defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Layout {
    /// videoscale `method` (nearest-neighbour, bilinear, 4-tap, lanczos, bilinear2, sinc, hermite, spline,
    /// catrom, mitchell).
    pub scaler: String,
    /// videoscale `chroma-resampler` (nearest, linear, cubic, lanczos); GStreamer's default is linear.
    pub chroma_resampler: String,
    /// videoscale `envelope` (filter size; lanczos at exact 3x needs 3).
    pub envelope: f64,
    /// Which frames each scaler takes.
    pub topology: Topology,
    /// videoscale `n-threads` (0 = one per core).
    pub scaler_threads: u32,
    /// Frames a branch queue may hold.
    pub queue_buffers: u32,
    /// Decoder threads (avdec_h264 `max-threads`, 0 = auto); ignored by hardware decoders.
    pub decoder_threads: u32,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            scaler: "catrom".into(),
            chroma_resampler: "cubic".into(),
            envelope: 2.0,
            topology: Topology::FanLargest,
            scaler_threads: 1,
            queue_buffers: 4,
            decoder_threads: 0,
        }
    }
}

/// For each profile, the profile whose scaled frames it scales (None = the decoded frames).
pub fn scale_parents(profiles: &[Profile], topology: Topology) -> Vec<Option<usize>> {
    let area = |p: &Profile| u64::from(p.width) * u64::from(p.height);
    let fits = |c: &Profile, p: &Profile| c.width <= p.width && c.height <= p.height;
    let mut order: Vec<usize> = (0..profiles.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(area(&profiles[i])));
    let mut parents = vec![None; profiles.len()];
    match topology {
        Topology::Direct => {}
        Topology::FanLargest => {
            let top = order[0];
            for &i in &order[1..] {
                if fits(&profiles[i], &profiles[top]) && profiles[i].fps <= profiles[top].fps {
                    parents[i] = Some(top);
                }
            }
        }
        Topology::Chain => {
            for w in order.windows(2) {
                let (p, c) = (w[0], w[1]);
                if fits(&profiles[c], &profiles[p]) && profiles[c].fps <= profiles[p].fps {
                    parents[c] = Some(p);
                }
            }
        }
    }
    parents
}

/// How an engine carries a stream from one segment to the next.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentMode {
    /// Every segment ends with an EOS that drains the encoders, and a flush that restarts them: each output
    /// segment depends on its input segment alone (with [`EngineConfig::self_contained_segments`], the
    /// bit-exact verification mode).
    #[default]
    Restart,
    /// The encoders run on from segment to segment (rate control carries over, a hardware encoder keeps its
    /// session); the decoder still drains at each segment's end. Every rendition is forced to an IDR (with
    /// SPS and PPS) at each segment's first frame, so each output segment still starts with one, holds exactly
    /// its input segment's frames, and decodes alone. The encoders run without lookahead and B-frames (x264's
    /// zero-latency tuning; hardware encoders without B-frames), so a segment is out as soon as its last frame
    /// is encoded: an encoder that holds frames back would keep a segment waiting for the next one. An
    /// encoder that does so anyway is drained at that segment's end, which restarts it.
    Continuous,
    /// As [`SegmentMode::Continuous`], with the encoders' lookahead and B-frames kept (x264's macroblock tree
    /// and adaptive B-frames, the quality of a continuous file encode): an encoder holds its last frames
    /// back until more come, so a segment is complete only once the next segment's first frames have pushed
    /// them out, or once it has waited [`EngineConfig::lookahead_hold_ms`] for a next segment, when the
    /// encoders are drained (and restart). For inputs whose next segment is at hand (files, VOD, a backlog);
    /// a live stream whose segments come one per segment duration would wait that long for each.
    /// [`crate::Transcoder::push`] returns a segment's output from the call that completes it.
    Lookahead,
}

impl SegmentMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SegmentMode::Restart => "restart",
            SegmentMode::Continuous => "continuous",
            SegmentMode::Lookahead => "lookahead",
        }
    }

    /// Whether the encoders run on from one segment to the next (one engine per stream).
    pub fn runs_on(self) -> bool {
        self != SegmentMode::Restart
    }
}

impl std::str::FromStr for SegmentMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "restart" => Ok(SegmentMode::Restart),
            "continuous" => Ok(SegmentMode::Continuous),
            "lookahead" => Ok(SegmentMode::Lookahead),
            other => Err(format!(
                "segment mode {other:?}: restart, continuous or lookahead"
            )),
        }
    }
}

/// Engine configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// The renditions, in the job's order (output order follows it).
    pub profiles: Vec<Profile>,
    #[serde(default)]
    pub backend: Backend,
    #[serde(default)]
    pub layout: Layout,
    /// Watchdog: longest a segment may take before it is declared stuck.
    #[serde(default = "default_watchdog_ms")]
    pub watchdog_ms: u64,
    /// Every output segment depends only on its input segment (bit-exact verification re-transcodes one
    /// segment with a fresh engine): its MPEG-TS starts its continuity counters afresh, and a segment cut
    /// mid-GOP does not decode from the previous segment (what comes before its first random access point is
    /// dropped and counted, as a verifier holding that segment alone would). Off: counters run on across
    /// segments, so that consecutive segments concatenate without a discontinuity, and a segment cut mid-GOP
    /// decodes from the previous segment's GOP.
    #[serde(default)]
    pub self_contained_segments: bool,
    /// How segments follow each other in the encoders (restart unless the stream asks otherwise).
    #[serde(default)]
    pub mode: SegmentMode,
    /// Lookahead mode: how long a segment whose last frames are still in the encoders waits for the next
    /// segment before the encoders are drained to complete it. What the lookahead can add to a segment's
    /// latency, at most.
    #[serde(default = "default_lookahead_hold_ms")]
    pub lookahead_hold_ms: u64,
}

fn default_watchdog_ms() -> u64 {
    30_000
}

fn default_lookahead_hold_ms() -> u64 {
    1_000
}

impl EngineConfig {
    pub fn new(profiles: Vec<Profile>) -> Self {
        EngineConfig {
            profiles,
            backend: Backend::default(),
            layout: Layout::default(),
            watchdog_ms: default_watchdog_ms(),
            self_contained_segments: false,
            mode: SegmentMode::Restart,
            lookahead_hold_ms: default_lookahead_hold_ms(),
        }
    }

    /// A live stream's engine: the default backend, encoders running on across segments.
    pub fn continuous(profiles: Vec<Profile>) -> Self {
        EngineConfig {
            mode: SegmentMode::Continuous,
            ..Self::new(profiles)
        }
    }

    /// The bit-exact verification mode: the deterministic software encoder
    /// ([`crate::X264Options::deterministic`]) and self-contained segments. A segment's renditions then
    /// depend only on that segment (and the x264 build): a verifier's fresh engine makes the same bytes.
    pub fn bit_exact(profiles: Vec<Profile>) -> Self {
        EngineConfig {
            backend: Backend::Software(crate::X264Options::deterministic()),
            self_contained_segments: true,
            ..Self::new(profiles)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topologies() {
        let p = |w, h| Profile::new("x", w, h, 30, 1000).unwrap();
        let ladder = [p(640, 360), p(1280, 720), p(854, 480)];
        assert_eq!(scale_parents(&ladder, Topology::Direct), [None, None, None]);
        assert_eq!(
            scale_parents(&ladder, Topology::FanLargest),
            [Some(1), None, Some(1)]
        );
        assert_eq!(
            scale_parents(&ladder, Topology::Chain),
            [Some(2), None, Some(1)]
        );
        // a box that does not fit in the largest one (portrait custom profile) scales the decoded frames
        let mixed = [p(1280, 720), p(720, 1280)];
        assert_eq!(scale_parents(&mixed, Topology::FanLargest), [None, None]);
    }
}
