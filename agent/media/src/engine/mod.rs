//! The transcoding engine: one long-lived GStreamer pipeline per stream.
//!
//! ```text
//! appsrc ! h264parse ! decoder ! tee ─┬─ queue ! [rate probe] ! videoscale ! capsfilter ! encoder ! appsink   (rendition 0)
//!                                     ├─ queue ! [rate probe] ! videoscale ! capsfilter ! encoder ! appsink   (rendition 1)
//!                                     └─ ...
//! ```
//! (with [`Topology::FanLargest`], the default, the largest rendition scales the decoded frames and the
//! others scale its output through a tee after its capsfilter; [`Topology::Chain`] chains them by size).
//!
//! Per segment: the segment is demuxed in Rust ([`crate::ts`]) and its timeline prepared
//! ([`crate::timeline`]), its access units are pushed into the appsrc, then EOS; every encoder drains; the
//! appsinks collect the encoded frames; then one flush returns every element to a clean state without leaving
//! PLAYING. Encoders restart at the flush, so every output segment starts with an IDR frame and depends on no
//! other segment. Each rendition is muxed to MPEG-TS in Rust with the input's audio PES copied byte for byte.
//! A bus error, a missing frame or the watchdog turns into a [`SegmentError`]; the pipeline is then cycled
//! through NULL (same elements) and the next segment goes on. An engine that cannot even do that is broken
//! ([`Transcoder::is_broken`]); [`crate::TranscoderPool`] replaces it, and one whose thread panicked.

//!
//! Files: `config` (what an engine is built from), `build` (pipeline construction), `frames` (frame
//! accounting shared with the streaming threads), `segment` (the restart mode's segment cutting and its
//! timestamps), `codecs` (RFC 6381 strings); this file holds the engine's outputs, errors and entry points.

mod build;
mod codecs;
mod config;
mod frames;
mod segment;

use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

pub use self::build::{BuildError, fit_box, set_prop};
pub use self::codecs::{avc1_codec, mp4a_codec};
pub use self::config::{EngineConfig, Layout, SegmentMode, Topology, scale_parents};
use self::frames::SharedRef;
pub(crate) use self::frames::signed_running_times;
pub use self::segment::check_timestamps;
use crate::profiles::Profile;
pub use crate::timeline::estimate_fps;
use crate::timeline::{self, Dropped};
use crate::ts::{self, TsError, TsMuxer, VideoAu};

/// Why one segment failed. Every variant names the segment and the stage/element at fault.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SegmentError {
    #[error("segment {seq}: element ts-demux: {source}")]
    Demux { seq: u64, source: TsError },
    #[error("segment {seq}: element ts-demux: {source}")]
    NoKeyframe {
        seq: u64,
        source: timeline::NoRandomAccess,
    },
    #[error("segment {seq}: element {element}: {message} ({debug})")]
    Pipeline {
        seq: u64,
        element: String,
        message: String,
        debug: String,
    },
    #[error("segment {seq}: element {element}: produced {got} of {expected} frames ({why})")]
    Incomplete {
        seq: u64,
        element: String,
        got: usize,
        expected: usize,
        why: &'static str,
    },
    #[error("segment {seq}: watchdog: no result after {waited_ms} ms (stuck in {stage})")]
    Timeout {
        seq: u64,
        waited_ms: u64,
        stage: String,
    },
    #[error("segment {seq}: element ts-demux: timestamps out of range: {why}")]
    Timestamps { seq: u64, why: String },
    #[error("segment {seq}: engine is unusable after an earlier failure to recover: {why}")]
    Broken { seq: u64, why: String },
    #[error("segment {seq}: element media-engine: internal error: {why} (the engine is rebuilt)")]
    Crashed { seq: u64, why: String },
}

impl SegmentError {
    /// The segment this error is about.
    pub fn seq(&self) -> u64 {
        match self {
            SegmentError::Demux { seq, .. }
            | SegmentError::NoKeyframe { seq, .. }
            | SegmentError::Pipeline { seq, .. }
            | SegmentError::Incomplete { seq, .. }
            | SegmentError::Timeout { seq, .. }
            | SegmentError::Timestamps { seq, .. }
            | SegmentError::Broken { seq, .. }
            | SegmentError::Crashed { seq, .. } => *seq,
        }
    }
}

/// One rendition of one segment.
#[derive(Debug, Clone)]
pub struct Rendition {
    /// Profile name.
    pub profile: String,
    /// MPEG-TS bytes.
    pub data: Vec<u8>,
    /// Real output size (fits the profile's box, keeps the input's display aspect, even).
    pub width: u32,
    pub height: u32,
    /// Real output frame rate (numerator, denominator).
    pub fps: (u32, u32),
    /// Video frames in this segment.
    pub frames: usize,
    /// Frames fed to this rendition's encoder (the decoded frames, fewer where the frame rate is capped);
    /// `frames_fed - frames` were lost in the encoder.
    pub frames_fed: usize,
    /// Duration in seconds (first PTS to last PTS plus one frame).
    pub duration: f64,
    /// First video PTS (90 kHz).
    pub first_pts: u64,
    /// RFC 6381 codec strings: "avc1.PPCCLL" from the written SPS, plus "mp4a.40.N" if AAC audio is written.
    pub codecs: String,
    /// Video elementary stream bytes (without TS/PES overhead).
    pub video_bytes: usize,
}

/// Per-segment statistics.
#[derive(Debug, Clone, Default)]
pub struct SegmentStats {
    pub wall: Duration,
    /// Video access units in the segment.
    pub input_frames: usize,
    /// Pictures of this segment the decoder returned (preroll from the previous segment not counted).
    pub decoded_frames: usize,
    /// Pictures of the previous segment decoded first because this one was cut mid-GOP.
    pub preroll_frames: usize,
    /// Input frames that produced no output, by cause.
    pub dropped: Dropped,
    /// Timestamp repairs, in words.
    pub repairs: Vec<String>,
    pub input_duration: f64,
    pub input_fps: (u32, u32),
    /// Whether the renditions carry the input's audio.
    pub has_audio: bool,
    /// Why the input's audio is not carried, if it has audio that is not.
    pub audio_dropped: Option<String>,
    /// Whether the encoders ran on from the previous segment or started afresh for this one.
    pub mode: SegmentMode,
}

/// The result of one segment: one rendition per profile, in profile order.
#[derive(Debug, Clone)]
pub struct SegmentOutput {
    pub seq: u64,
    pub renditions: Vec<Rendition>,
    pub stats: SegmentStats,
}

struct Branch {
    profile: Profile,
    capsfilter: gst::Element,
    muxer: TsMuxer,
    /// Where the continuous mode forces each segment's first frame to an IDR.
    encoder_sink: gst::Pad,
}

/// The engine. Blocking; drive it from a plain thread (or `spawn_blocking`).
pub struct Transcoder {
    cfg: EngineConfig,
    pipeline: gst::Pipeline,
    appsrc: gst_app::AppSrc,
    branches: Vec<Branch>,
    shared: SharedRef,
    decoder_name: String,
    last_caps: Option<gst::Caps>,
    broken: Option<String>,
    /// The last segment's access units from its last random access point on, for a next segment cut
    /// mid-GOP: (its sequence number, the access units).
    tail: Option<(u64, Vec<VideoAu>)>,
    /// Continuous and lookahead modes: where the last segment lay on the pipeline's timeline, so the next
    /// one follows it.
    continuity: Option<segment::Continuity>,
    /// Lookahead mode: the segment whose last frames are still in the encoders.
    pending: Option<segment::Pending>,
}

impl Transcoder {
    /// Whether the engine failed to return to a clean state after a segment; it then refuses every segment
    /// and has to be replaced by a new one ([`crate::TranscoderPool`] does that).
    pub fn is_broken(&self) -> bool {
        self.broken.is_some()
    }

    /// Change the watchdog for the following segments.
    pub fn set_watchdog_ms(&mut self, ms: u64) {
        self.cfg.watchdog_ms = ms;
    }

    /// The configuration this engine runs.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Transcode one input segment (MPEG-TS bytes) into one output segment per profile.
    ///
    /// A segment cut mid-GOP decodes its first pictures from the previous segment's last ones when this
    /// engine transcoded segment `seq - 1` just before; [`Transcoder::push_segment_after`] takes them
    /// from the caller when another engine did. In the lookahead mode the encoders are drained at the
    /// segment's end, as without a next segment ([`Transcoder::push`] keeps them running; a stream uses
    /// one or the other).
    pub fn push_segment(&mut self, seq: u64, data: &[u8]) -> Result<SegmentOutput, SegmentError> {
        self.push_segment_after(seq, data, None)
    }

    /// [`Transcoder::push_segment`] with the preroll of segment `seq - 1` ([`timeline::tail_after`] of it),
    /// used when this engine did not transcode `seq - 1` itself.
    pub fn push_segment_after(
        &mut self,
        seq: u64,
        data: &[u8],
        previous_tail: Option<&[VideoAu]>,
    ) -> Result<SegmentOutput, SegmentError> {
        let mut out = self.push(seq, data, previous_tail);
        out.extend(self.finish());
        let at = out.iter().position(|r| result_seq(r) == seq);
        at.map(|i| out.swap_remove(i)).unwrap_or_else(|| {
            Err(SegmentError::Crashed {
                seq,
                why: "the engine returned no result for the segment".into(),
            })
        })
    }

    /// Transcode one input segment and return the outputs this call completed, in order. In the restart
    /// and continuous modes that is this segment's. In the lookahead mode it is the previous segment's,
    /// whose last frames this segment's first ones pushed out of the encoders, and this segment stays in
    /// them until the next call or [`Transcoder::finish`]; both come back together when the encoders had
    /// to be drained. A failure of this segment in the pipeline costs the pending one its place in the
    /// encoders: it is transcoded again on its own (and returned before this one's error).
    pub fn push(
        &mut self,
        seq: u64,
        data: &[u8],
        previous_tail: Option<&[VideoAu]>,
    ) -> Vec<Result<SegmentOutput, SegmentError>> {
        let mut out = Vec::new();
        if let Some(why) = &self.broken {
            let why = why.clone();
            if let Some(p) = self.pending.take() {
                out.push(Err(SegmentError::Broken {
                    seq: p.placed.seq(),
                    why: why.clone(),
                }));
            }
            out.push(Err(SegmentError::Broken { seq, why }));
            return out;
        }
        let start = Instant::now();
        let tail = self.tail.take();
        let mut dm = match ts::demux(data) {
            Ok(dm) => dm,
            Err(source) => {
                out.push(Err(SegmentError::Demux { seq, source }));
                return out;
            }
        };
        let input_frames = dm.video.len();
        let tail = tail
            .filter(|(s, _)| s.checked_add(1) == Some(seq))
            .map(|(_, t)| t);
        let tail = tail
            .as_deref()
            .or(previous_tail)
            .filter(|_| !self.cfg.self_contained_segments);
        // the access units move into the prepared timeline; `dm` keeps the audio
        let mut prep = match timeline::prepare(std::mem::take(&mut dm.video), tail) {
            Ok(p) => p,
            Err(source) => {
                out.push(Err(SegmentError::NoKeyframe { seq, source }));
                return out;
            }
        };
        if let Err(why) = check_timestamps(&prep.aus) {
            out.push(Err(SegmentError::Timestamps { seq, why }));
            return out;
        }
        for r in &prep.repairs {
            tracing::info!(seq, "timestamps: {r}");
        }
        let next_tail = timeline::next_tail(&prep);
        let pending = self.pending.take();
        let ran = self.run_segment(seq, &dm, &mut prep, input_frames, start, pending.as_ref());
        let recovered = match &ran {
            Ok(_) => self.flush(),
            Err(_) => self.reset(),
        };
        if let Err(why) = recovered {
            tracing::error!(seq, %why, "media engine could not recover");
            self.broken = Some(why);
        }
        match ran {
            Ok(segment::Ran::Done { previous, output }) => {
                out.extend(previous);
                out.push(output);
            }
            Ok(segment::Ran::Held { previous, placed }) => {
                out.extend(previous);
                self.pending = Some(segment::Pending {
                    placed,
                    dm,
                    data: data.to_vec(),
                    previous_tail: tail.map(<[VideoAu]>::to_vec),
                });
            }
            Err(e) => {
                if let Some(p) = pending {
                    tracing::warn!(
                        seq = p.placed.seq(),
                        "the segment's last frames were lost with the next segment's failure: transcoding it again"
                    );
                    self.tail = None;
                    out.push(self.push_segment_after(
                        p.placed.seq(),
                        &p.data,
                        p.previous_tail.as_deref(),
                    ));
                }
                out.push(Err(e));
                return out;
            }
        }
        self.tail = Some((seq, next_tail));
        out
    }

    /// Lookahead mode: completes the segment still in the encoders by draining them (at a stream's end,
    /// or when the next segment is late); they restart with the next segment. None when none is pending.
    pub fn finish(&mut self) -> Option<Result<SegmentOutput, SegmentError>> {
        let p = self.pending.take()?;
        let r = self.drain_pending(&p);
        let recovered = match &r {
            Ok(_) => self.flush(),
            Err(_) => self.reset(),
        };
        if let Err(why) = recovered {
            tracing::error!(seq = p.placed.seq(), %why, "media engine could not recover");
            self.broken = Some(why);
        }
        Some(r)
    }

    /// Whether a segment waits in the encoders for the next one (lookahead mode).
    pub fn holds_segment(&self) -> bool {
        self.pending.is_some()
    }
}

/// The segment a result is about.
pub fn result_seq(r: &Result<SegmentOutput, SegmentError>) -> u64 {
    match r {
        Ok(o) => o.seq,
        Err(e) => e.seq(),
    }
}

impl Drop for Transcoder {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
        if let Some(bus) = self.pipeline.bus() {
            bus.unset_sync_handler();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcoder_can_move_to_a_worker_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<Transcoder>();
    }
}
