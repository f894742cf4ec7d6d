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
//! Per segment: the segment is demuxed in Rust ([`crate::ts`]), its access units are pushed into the appsrc,
//! then EOS; every encoder drains; the appsinks collect the encoded frames; then one flush (flush-start +
//! flush-stop from the appsrc) returns every element to a clean state without leaving PLAYING. Encoders
//! restart at the flush, so every output segment starts with an IDR frame and depends on no other segment.
//! Each rendition is muxed to MPEG-TS in Rust with the input's audio PES copied byte for byte.
//! A bus error, a missing frame or the watchdog turns into a [`SegmentError`]; the pipeline is then cycled
//! through NULL (same elements) and the next segment goes on. An engine that cannot even do that is broken
//! ([`Transcoder::is_broken`]); [`crate::TranscoderPool`] replaces it, and one whose thread panicked.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use serde::{Deserialize, Serialize};

use crate::backend::{Backend, EncodeParams};
use crate::profiles::Profile;
use crate::timeline::{self, Dropped};
use crate::ts::{self, EncodedFrame, TsError, TsMuxer, VideoAu};

/// Offset added to every timestamp inside the pipeline, so DTS of reordered frames stay positive.
const PIPE_OFFSET_NS: u64 = 10_000_000_000;

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

/// Branch layout knobs (what the benchmark tunes; see /work/notes/pipeline-tuning.md).
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
}

fn default_watchdog_ms() -> u64 {
    30_000
}

impl EngineConfig {
    pub fn new(profiles: Vec<Profile>) -> Self {
        EngineConfig {
            profiles,
            backend: Backend::default(),
            layout: Layout::default(),
            watchdog_ms: default_watchdog_ms(),
            self_contained_segments: false,
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

/// Errors building the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("GStreamer init failed: {0}")]
    Init(String),
    #[error("no profiles configured")]
    NoProfiles,
    #[error("profile {0}")]
    Profile(#[from] crate::profiles::ProfileError),
    #[error("element {factory}: cannot create (plugin missing?): {why}")]
    Element { factory: String, why: String },
    #[error("element {element}: property {property}={value:?}: {why}")]
    Property {
        element: String,
        property: String,
        value: String,
        why: String,
    },
    #[error("cannot link {from} -> {to}: {why}")]
    Link {
        from: String,
        to: String,
        why: String,
    },
    #[error("pipeline state change to {state:?} failed: {why}")]
    State { state: gst::State, why: String },
}

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
}

/// The result of one segment: one rendition per profile, in profile order.
#[derive(Debug, Clone)]
pub struct SegmentOutput {
    pub seq: u64,
    pub renditions: Vec<Rendition>,
    pub stats: SegmentStats,
}

#[derive(Debug, Clone)]
struct OutFrame {
    pts: u64,
    dts: u64,
    key: bool,
    data: Vec<u8>,
}

/// How a branch paces its frames in the current segment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Pace {
    /// Every frame, on its own timestamp (the input is not faster than the profile).
    #[default]
    Keep,
    /// At most `fps` frames a second, on an even grid from `origin` (pipeline ns): the frame that reaches a
    /// slot first (within `tolerance` ns, half an input frame) takes it and is retimed to the slot's time.
    Cap {
        origin: u64,
        fps: u32,
        tolerance: u64,
    },
}

#[derive(Debug, Default)]
struct BranchState {
    /// Output size (pinned for the stream at the first decoded caps).
    width: u32,
    height: u32,
    /// Frame rate this branch outputs for the current segment.
    fps: (u32, u32),
    pace: Pace,
    /// The next free slot of [`Pace::Cap`].
    next_slot: u64,
    /// Frames fed to the encoder.
    kept: usize,
    frames: Vec<OutFrame>,
    eos: bool,
}

#[derive(Debug, Default)]
struct Shared {
    branches: Vec<BranchState>,
    /// Every rendition's size, decided at the stream's first decoded caps and kept for the stream, so a
    /// source that changes resolution is scaled into the same box (letterboxed where its shape differs).
    pinned: Vec<Option<(u32, u32)>>,
    /// Pipeline PTS of the preroll pictures (decoded for their references, never output).
    preroll: HashSet<u64>,
    preroll_decoded: usize,
    /// The last decoded picture's PTS in this segment (a picture at or before it is a duplicate).
    last_pts: Option<u64>,
    duplicates: usize,
    decoded: usize,
    error: Option<(String, String, String)>,
}

type SharedRef = Arc<(Mutex<Shared>, Condvar)>;

/// Locks the state shared with the streaming threads. A lock poisoned by a panic is taken over rather than
/// unwrapped: the streaming threads run this from GStreamer callbacks, where a panic would abort the process.
fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Branch {
    profile: Profile,
    capsfilter: gst::Element,
    muxer: TsMuxer,
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
}

fn make(factory: &str, name: &str) -> Result<gst::Element, BuildError> {
    gst::ElementFactory::make(factory)
        .name(name)
        .build()
        .map_err(|e| BuildError::Element {
            factory: factory.to_string(),
            why: e.to_string(),
        })
}

/// Set a property from its string form, with a typed error instead of a panic.
pub fn set_prop(el: &gst::Element, name: &str, value: &str) -> Result<(), BuildError> {
    let err = |why: String| BuildError::Property {
        element: el.name().to_string(),
        property: name.to_string(),
        value: value.to_string(),
        why,
    };
    let pspec = el
        .find_property(name)
        .ok_or_else(|| err("no such property".into()))?;
    let v =
        gst::glib::Value::deserialize_with_pspec(value, &pspec).map_err(|e| err(e.to_string()))?;
    el.set_property_from_value(name, &v);
    Ok(())
}

fn link(a: &gst::Element, b: &gst::Element) -> Result<(), BuildError> {
    a.link(b).map_err(|e| BuildError::Link {
        from: a.name().to_string(),
        to: b.name().to_string(),
        why: e.to_string(),
    })
}

/// Fit (w x h, pixel aspect par) into the box (bw x bh) keeping the display aspect, with square pixels and
/// even dimensions, never wider or taller than the coded picture (no upscaling, also of non-square pixels).
pub fn fit_box(w: u32, h: u32, par: (i32, i32), bw: u32, bh: u32) -> (u32, u32) {
    let dw = f64::from(w) * f64::from(par.0.max(1)) / f64::from(par.1.max(1));
    let dh = f64::from(h);
    let s = (f64::from(bw.min(w)) / dw)
        .min(f64::from(bh.min(h)) / dh)
        .min(1.0);
    let even = |x: f64| ((x / 2.0).round() as u32).max(1) * 2;
    (even(dw * s), even(dh * s))
}

/// PTS and DTS of a sample's buffer as running time in ns (DTS falls back to PTS); a time before the
/// segment's start is 0.
pub(crate) fn running_times(sample: &gst::Sample, buf: &gst::BufferRef) -> (u64, u64) {
    let (pts, dts) = signed_running_times(sample, buf);
    (pts.max(0) as u64, dts.max(0) as u64)
}

/// PTS and DTS of a sample's buffer as signed running time in ns (DTS falls back to PTS): an encoder's first
/// DTS lie before the start when it reorders.
pub(crate) fn signed_running_times(sample: &gst::Sample, buf: &gst::BufferRef) -> (i64, i64) {
    let seg = sample
        .segment()
        .and_then(|s| s.downcast_ref::<gst::ClockTime>().cloned());
    let rt = |t: Option<gst::ClockTime>| -> Option<i64> {
        let t = t?;
        match &seg {
            Some(seg) => match seg.to_running_time_full(t)? {
                gst::Signed::Positive(v) => Some(v.nseconds() as i64),
                gst::Signed::Negative(v) => Some(-(v.nseconds() as i64)),
            },
            None => Some(t.nseconds() as i64),
        }
    };
    let pts = rt(buf.pts()).unwrap_or(0);
    let dts = rt(buf.dts()).unwrap_or(pts);
    (pts, dts)
}

/// How far before the segment's first DTS a timestamp may lie (less than the pipeline offset, so that every
/// pipeline time stays positive).
const MAX_TICKS_BEFORE: i64 = 5 * 90_000;
/// How far after the segment's first DTS a timestamp may lie.
const MAX_TICKS_AFTER: i64 = 600 * 90_000;

/// A segment's timestamps, relative to its first DTS (across the 33-bit wrap), must lie within
/// [`MAX_TICKS_BEFORE`] before and [`MAX_TICKS_AFTER`] after it: a jump beyond that is a broken or
/// discontinuous timeline, and keeping every timestamp in that window keeps the engine's timestamp
/// arithmetic in range.
pub fn check_timestamps(video: &[VideoAu]) -> Result<(), String> {
    let Some(first) = video.first() else {
        return Ok(());
    };
    let base = first.dts;
    for (n, au) in video.iter().enumerate() {
        for (what, t) in [("PTS", au.pts), ("DTS", au.dts)] {
            let d = t.wrapping_sub(base) & ts::TS_MASK;
            let rel = if d > ts::TS_MASK / 2 {
                d as i64 - (ts::TS_MASK as i64 + 1)
            } else {
                d as i64
            };
            if !(-MAX_TICKS_BEFORE..=MAX_TICKS_AFTER).contains(&rel) {
                return Err(format!(
                    "video access unit {n}: {what} {t} is {:.3} s from the first DTS {base} (allowed: {} s before to {} s after)",
                    rel as f64 / 90_000.0,
                    MAX_TICKS_BEFORE / 90_000,
                    MAX_TICKS_AFTER / 90_000
                ));
            }
        }
    }
    Ok(())
}

/// Convert 90 kHz ticks to ns and back without drift.
fn ticks_to_ns(t: u64) -> u64 {
    (t as u128 * 100_000 / 9) as u64
}
fn ns_to_ticks(ns: u64) -> u64 {
    ((ns as u128 * 9 + 50_000) / 100_000) as u64
}

pub use crate::timeline::estimate_fps;

/// The time of slot `slot` on a grid of `fps` slots a second, in 90 kHz ticks.
fn slot_ticks(slot: u64, fps: u32) -> u64 {
    (slot * 90_000 + u64::from(fps) / 2) / u64::from(fps.max(1))
}

/// How each branch paces its frames, from the rate of the frames it scales: the input's, or its parent
/// branch's. A branch caps only when its input is more than 2 % faster than its profile.
fn paces(
    profiles: &[Profile],
    parents: &[Option<usize>],
    in_fps: (u32, u32),
) -> Vec<((u32, u32), bool)> {
    let rate = |f: (u32, u32)| f64::from(f.0) / f64::from(f.1.max(1));
    let mut out: Vec<Option<((u32, u32), bool)>> = vec![None; profiles.len()];
    while out.iter().any(Option::is_none) {
        for i in 0..profiles.len() {
            if out[i].is_some() {
                continue;
            }
            let src = match parents[i] {
                None => in_fps,
                Some(p) => match out[p] {
                    Some((f, _)) => f,
                    None => continue,
                },
            };
            let cap = profiles[i].fps;
            out[i] = Some(if rate(src) > f64::from(cap) * 1.02 {
                ((cap, 1), true)
            } else {
                (src, false)
            });
        }
    }
    out.into_iter().flatten().collect()
}

/// "avc1.PPCCLL" from the first SPS in an Annex-B access unit.
pub fn avc1_codec(au: &[u8]) -> Option<String> {
    ts::nal_units(au)
        .find(|n| n.len() >= 4 && n[0] & 0x1f == 7)
        .map(|n| format!("avc1.{:02x}{:02x}{:02x}", n[1], n[2], n[3]))
}

/// "mp4a.40.N" from the first ADTS header of an audio PES, if it is AAC with ADTS framing.
pub fn mp4a_codec(pes: &[u8]) -> Option<String> {
    let off = 9 + *pes.get(8)? as usize;
    let a = pes.get(off..off + 3)?;
    // ADTS: 12-bit sync and layer 00 (an MPEG audio frame header has the 11-bit sync and a non-zero layer)
    if a[0] != 0xff || a[1] & 0xf6 != 0xf0 {
        return None;
    }
    Some(format!("mp4a.40.{}", (a[2] >> 6) + 1))
}

impl Transcoder {
    /// Build the pipeline and bring it to PLAYING (it idles until the first segment).
    pub fn new(cfg: EngineConfig) -> Result<Self, BuildError> {
        gst::init().map_err(|e| BuildError::Init(e.to_string()))?;
        if cfg.profiles.is_empty() {
            return Err(BuildError::NoProfiles);
        }
        for p in &cfg.profiles {
            p.validate()?;
        }
        let pipeline = gst::Pipeline::with_name("media-engine");
        let appsrc = gst_app::AppSrc::builder()
            .name("src")
            .caps(
                &gst::Caps::builder("video/x-h264")
                    .field("stream-format", "byte-stream")
                    .field("alignment", "au")
                    .build(),
            )
            .format(gst::Format::Time)
            .is_live(false)
            .max_bytes(0)
            .build();
        let parse = make("h264parse", "parse")?;
        let decoder_name = format!("decoder-{}", cfg.backend.decoder_factory());
        let dec = make(cfg.backend.decoder_factory(), &decoder_name)?;
        for ps in cfg.backend.decoder_props() {
            set_prop(&dec, ps.name, &ps.value)?;
        }
        if dec.find_property("max-threads").is_some() {
            set_prop(&dec, "max-threads", &cfg.layout.decoder_threads.to_string())?;
        }
        pipeline
            .add_many([appsrc.upcast_ref(), &parse, &dec])
            .map_err(|e| BuildError::Link {
                from: "pipeline".into(),
                to: "src".into(),
                why: e.to_string(),
            })?;
        link(appsrc.upcast_ref(), &parse)?;
        link(&parse, &dec)?;

        let shared: SharedRef = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
        {
            let mut s = lock(&shared.0);
            s.branches = (0..cfg.profiles.len())
                .map(|_| BranchState::default())
                .collect();
            s.pinned = vec![None; cfg.profiles.len()];
        }

        let parents = scale_parents(&cfg.profiles, cfg.layout.topology);
        let add = |e: &gst::Element| {
            pipeline.add(e).map_err(|err| BuildError::Link {
                from: "pipeline".into(),
                to: e.name().to_string(),
                why: err.to_string(),
            })
        };
        // every rendition is 8-bit 4:2:0, whatever the input's chroma format or bit depth (4:4:4, 4:2:2 and
        // 10-bit H.264 decode to formats that players and hardware decoders do not take once re-encoded)
        let convert = make("videoconvert", "convert")?;
        let planar = make("capsfilter", "format420")?;
        planar.set_property(
            "caps",
            gst::Caps::from_str("video/x-raw, format=(string){ I420, NV12 }").map_err(|e| {
                BuildError::Property {
                    element: "format420".into(),
                    property: "caps".into(),
                    value: "I420/NV12".into(),
                    why: e.to_string(),
                }
            })?,
        );
        // interlaced input (fields or MBAFF) becomes progressive frames, one per input frame: renditions for
        // screens, not for broadcast chains; progressive input passes through untouched
        let deinterlace = make("deinterlace", "deinterlace")?;
        set_prop(&deinterlace, "mode", "auto")?;
        set_prop(&deinterlace, "fields", "top")?;
        let dec_tee = make("tee", "tee-decoded")?;
        add(&convert)?;
        add(&planar)?;
        add(&deinterlace)?;
        add(&dec_tee)?;
        link(&dec, &convert)?;
        link(&convert, &planar)?;
        link(&planar, &deinterlace)?;
        link(&deinterlace, &dec_tee)?;
        // build parents before children: each branch ends its scaling in a tee its children hang off
        let mut order: Vec<usize> = (0..cfg.profiles.len()).collect();
        order.sort_by_key(|&i| {
            let mut depth = 0;
            let mut p = parents[i];
            while let Some(q) = p {
                depth += 1;
                p = parents[q];
            }
            depth
        });
        let mut scaled_tees: Vec<Option<gst::Element>> = vec![None; cfg.profiles.len()];
        let mut scalers: Vec<Option<gst::Element>> = vec![None; cfg.profiles.len()];
        let mut built: Vec<Option<Branch>> = (0..cfg.profiles.len()).map(|_| None).collect();
        let queue = |name: String| -> Result<gst::Element, BuildError> {
            let q = make("queue", &name)?;
            set_prop(
                &q,
                "max-size-buffers",
                &cfg.layout.queue_buffers.to_string(),
            )?;
            set_prop(&q, "max-size-bytes", "0")?;
            set_prop(&q, "max-size-time", "0")?;
            Ok(q)
        };
        for &i in &order {
            let prof = &cfg.profiles[i];
            let tee = match parents[i] {
                None => dec_tee.clone(),
                Some(p) => scaled_tees[p].clone().expect("parents are built first"),
            };
            let q = queue(format!("queue{i}"))?;
            let scale = make("videoscale", &format!("scale{i}"))?;
            set_prop(&scale, "method", &cfg.layout.scaler)?;
            set_prop(&scale, "chroma-resampler", &cfg.layout.chroma_resampler)?;
            set_prop(&scale, "envelope", &cfg.layout.envelope.to_string())?;
            set_prop(&scale, "add-borders", "false")?;
            set_prop(&scale, "n-threads", &cfg.layout.scaler_threads.to_string())?;
            let cf = make("capsfilter", &format!("size{i}"))?;
            let scaled_tee = make("tee", &format!("tee-scaled{i}"))?;
            let encq = queue(format!("queue-enc{i}"))?;
            let enc = make(
                cfg.backend.encoder_factory(),
                &format!("enc{i}-{}", prof.name),
            )?;
            let gop = prof.gop.unwrap_or(prof.fps.saturating_mul(10)).max(1);
            for ps in cfg.backend.encoder_props(EncodeParams {
                bitrate_kbps: prof.bitrate_kbps,
                gop,
            }) {
                set_prop(&enc, ps.name, &ps.value)?;
            }
            let outcaps = make("capsfilter", &format!("h264caps{i}"))?;
            outcaps.set_property(
                "caps",
                gst::Caps::builder("video/x-h264")
                    .field("stream-format", "byte-stream")
                    .field("alignment", "au")
                    .build(),
            );
            // async=false: the sinks must not wait for each other to preroll (a branch whose encoder holds
            // frames back would otherwise block the others through the tee)
            let sink = gst_app::AppSink::builder()
                .name(format!("sink{i}"))
                .sync(false)
                .async_(false)
                .build();
            for e in [&q, &scale, &cf, &scaled_tee, &encq, &enc, &outcaps] {
                add(e)?;
            }
            add(sink.upcast_ref())?;
            link(&tee, &q)?;
            link(&q, &scale)?;
            link(&scale, &cf)?;
            link(&cf, &scaled_tee)?;
            link(&scaled_tee, &encq)?;
            link(&encq, &enc)?;
            link(&enc, &outcaps)?;
            link(&outcaps, sink.upcast_ref())?;
            scaled_tees[i] = Some(scaled_tee);
            scalers[i] = Some(scale.clone());

            // pace probe: every frame, or one per slot of the profile's rate (retimed to the slot); the caps
            // state the branch's frame rate
            let sh = shared.clone();
            q.static_pad("src").unwrap().add_probe(
                gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
                move |_pad, info| {
                    let mut s = lock(&sh.0);
                    let b = &mut s.branches[i];
                    match &mut info.data {
                        Some(gst::PadProbeData::Buffer(buf)) => {
                            let Some(pts) = buf.pts().map(|t| t.nseconds()) else {
                                return gst::PadProbeReturn::Drop;
                            };
                            let retimed = match b.pace {
                                Pace::Keep => None,
                                Pace::Cap {
                                    origin,
                                    fps,
                                    tolerance,
                                } => {
                                    let since = pts.saturating_sub(origin) + tolerance;
                                    let slot = (u128::from(since) * u128::from(fps) / 1_000_000_000)
                                        as u64;
                                    if slot < b.next_slot {
                                        return gst::PadProbeReturn::Drop;
                                    }
                                    b.next_slot = slot + 1;
                                    Some(origin + ticks_to_ns(slot_ticks(slot, fps)))
                                }
                            };
                            b.kept += 1;
                            let dur =
                                u64::from(b.fps.1) * 1_000_000_000 / u64::from(b.fps.0.max(1));
                            let m = buf.make_mut();
                            if let Some(t) = retimed {
                                m.set_pts(gst::ClockTime::from_nseconds(t));
                            }
                            m.set_duration(gst::ClockTime::from_nseconds(dur));
                        }
                        Some(gst::PadProbeData::Event(ev)) => {
                            if let gst::EventView::Caps(c) = ev.view() {
                                let mut caps = c.caps().to_owned();
                                if b.fps.0 > 0 {
                                    caps.make_mut().set(
                                        "framerate",
                                        gst::Fraction::new(b.fps.0 as i32, b.fps.1 as i32),
                                    );
                                }
                                *ev = gst::event::Caps::new(&caps);
                            }
                        }
                        _ => {}
                    }
                    gst::PadProbeReturn::Ok
                },
            );

            let sh = shared.clone();
            let sh2 = shared.clone();
            sink.set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |sink| {
                        let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        let buf = sample.buffer().ok_or(gst::FlowError::Error)?;
                        let map = buf.map_readable().map_err(|_| gst::FlowError::Error)?;
                        // encoders shift their output segment (GstVideoEncoder adds 1000 h so that DTS stay
                        // positive): work in running time, which is the input's timeline
                        let (pts, dts) = running_times(&sample, buf);
                        let f = OutFrame {
                            pts,
                            dts,
                            key: !buf.flags().contains(gst::BufferFlags::DELTA_UNIT),
                            data: map.as_slice().to_vec(),
                        };
                        lock(&sh.0).branches[i].frames.push(f);
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .eos(move |_| {
                        let (m, cv) = &*sh2;
                        lock(m).branches[i].eos = true;
                        cv.notify_all();
                    })
                    .build(),
            );
            built[i] = Some(Branch {
                profile: prof.clone(),
                capsfilter: cf,
                muxer: TsMuxer::new(),
            });
        }
        let branches: Vec<Branch> = built
            .into_iter()
            .map(|b| b.expect("every branch built"))
            .collect();

        // decoded caps: decide every branch's output size (always from the decoder's size, whatever the
        // topology) and pin the colorimetry to the input's, so that videoscale never converts the colour
        // matrix (untagged input: GStreamer guesses by frame size, BT.601 for SD and BT.709 for HD)
        let sh = shared.clone();
        let boxes: Vec<(u32, u32)> = cfg.profiles.iter().map(|p| (p.width, p.height)).collect();
        let filters: Vec<gst::Element> = branches.iter().map(|b| b.capsfilter.clone()).collect();
        // the scalers of the decoded frames (the others scale a pinned size into a pinned size)
        let root_scalers: Vec<Option<gst::Element>> = scalers
            .into_iter()
            .zip(&parents)
            .map(|(s, p)| if p.is_none() { s } else { None })
            .collect();
        dec.static_pad("src").unwrap().add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
            move |_pad, info| {
                match &info.data {
                    Some(gst::PadProbeData::Buffer(buf)) => {
                        let mut st = lock(&sh.0);
                        if let Some(pts) = buf.pts().map(|t| t.nseconds()) {
                            if st.preroll.contains(&pts) {
                                st.preroll_decoded += 1;
                                return gst::PadProbeReturn::Drop;
                            }
                            if st.last_pts.is_some_and(|last| pts <= last) {
                                st.duplicates += 1;
                                return gst::PadProbeReturn::Drop;
                            }
                            st.last_pts = Some(pts);
                        }
                        st.decoded += 1;
                    }
                    Some(gst::PadProbeData::Event(ev)) => {
                        if let gst::EventView::Caps(c) = ev.view() {
                            let s = c.caps().structure(0);
                            let w = s.and_then(|s| s.get::<i32>("width").ok()).unwrap_or(0) as u32;
                            let h = s.and_then(|s| s.get::<i32>("height").ok()).unwrap_or(0) as u32;
                            let par = s
                                .and_then(|s| s.get::<gst::Fraction>("pixel-aspect-ratio").ok())
                                .map(|f| (f.numer(), f.denom()))
                                .unwrap_or((1, 1));
                            let colorimetry = s
                                .and_then(|s| s.get::<String>("colorimetry").ok())
                                .unwrap_or_else(|| {
                                    if h >= 720 { "bt709" } else { "bt601" }.to_string()
                                });
                            let mut st = lock(&sh.0);
                            for (i, (bw, bh)) in boxes.iter().enumerate() {
                                let fit = fit_box(w, h, par, *bw, *bh);
                                let (ow, oh) = *st.pinned[i].get_or_insert(fit);
                                if let Some(scaler) = &root_scalers[i] {
                                    // a source whose shape differs from the stream's first: letterbox
                                    let shape =
                                        |(a, b): (u32, u32)| f64::from(a) / f64::from(b.max(1));
                                    let differs = (shape(fit) / shape((ow, oh)) - 1.0).abs() > 0.01;
                                    scaler.set_property("add-borders", differs);
                                }
                                st.branches[i].width = ow;
                                st.branches[i].height = oh;
                                filters[i].set_property(
                                    "caps",
                                    gst::Caps::builder("video/x-raw")
                                        .field("width", ow as i32)
                                        .field("height", oh as i32)
                                        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
                                        .field("colorimetry", colorimetry.as_str())
                                        .build(),
                                );
                            }
                        }
                    }
                    _ => {}
                }
                gst::PadProbeReturn::Ok
            },
        );

        let sh = shared.clone();
        pipeline.bus().unwrap().set_sync_handler(move |_bus, msg| {
            if let gst::MessageView::Error(e) = msg.view() {
                let (m, cv) = &*sh;
                let mut s = lock(m);
                if s.error.is_none() {
                    let element = msg
                        .src()
                        .map(|s| s.name().to_string())
                        .unwrap_or_else(|| "pipeline".into());
                    let debug = e.debug().map(|d| d.to_string()).unwrap_or_default();
                    s.error = Some((element, e.error().to_string(), debug));
                }
                cv.notify_all();
            } else if let gst::MessageView::Warning(w) = msg.view() {
                tracing::warn!(element = ?msg.src().map(|s| s.name()), "{}", w.error());
            }
            gst::BusSyncReply::Drop
        });

        let t = Transcoder {
            cfg,
            pipeline,
            appsrc,
            branches,
            shared,
            decoder_name,
            last_caps: None,
            broken: None,
            tail: None,
        };
        t.set_state(gst::State::Playing)?;
        Ok(t)
    }

    fn set_state(&self, state: gst::State) -> Result<(), BuildError> {
        self.pipeline
            .set_state(state)
            .map_err(|e| BuildError::State {
                state,
                why: e.to_string(),
            })?;
        Ok(())
    }

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
    /// from the caller when another engine did.
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
        if let Some(why) = &self.broken {
            return Err(SegmentError::Broken {
                seq,
                why: why.clone(),
            });
        }
        let start = Instant::now();
        let tail = self.tail.take();
        let mut dm = ts::demux(data).map_err(|source| SegmentError::Demux { seq, source })?;
        let input_frames = dm.video.len();
        let tail = tail
            .filter(|(s, _)| s.checked_add(1) == Some(seq))
            .map(|(_, t)| t);
        let tail = tail
            .as_deref()
            .or(previous_tail)
            .filter(|_| !self.cfg.self_contained_segments);
        // the access units move into the prepared timeline; `dm` keeps the audio
        let mut prep = timeline::prepare(std::mem::take(&mut dm.video), tail)
            .map_err(|source| SegmentError::NoKeyframe { seq, source })?;
        check_timestamps(&prep.aus).map_err(|why| SegmentError::Timestamps { seq, why })?;
        for r in &prep.repairs {
            tracing::info!(seq, "timestamps: {r}");
        }
        let next_tail = timeline::next_tail(&prep);
        let result = self.run_segment(seq, &dm, &mut prep, input_frames, start);
        let recovered = match &result {
            Ok(_) => self.flush(),
            Err(_) => self.reset(),
        };
        if let Err(why) = recovered {
            tracing::error!(seq, %why, "media engine could not recover");
            self.broken = Some(why);
        }
        if result.is_ok() {
            self.tail = Some((seq, next_tail));
        }
        result
    }

    fn run_segment(
        &mut self,
        seq: u64,
        dm: &ts::Demuxed,
        prep: &mut timeline::Prepared,
        input_frames: usize,
        start: Instant,
    ) -> Result<SegmentOutput, SegmentError> {
        let aus = &prep.aus;
        let own = &aus[prep.preroll..];
        // the first pushed access unit (the preroll's, if any) anchors the pipeline clock, so that every
        // pushed timestamp stays within check_timestamps' window of it
        let base = aus[0].dts;
        // ticks relative to the first DTS, unwrapped across the 33-bit wrap
        let rel = |t: u64| timeline::rel(t, base);
        let to_pipe = |t: u64| -> u64 {
            (PIPE_OFFSET_NS as i64 + ticks_to_ns(rel(t).unsigned_abs()) as i64 * rel(t).signum())
                as u64
        };
        let from_pipe = |ns: u64| -> u64 {
            let r = ns as i64 - PIPE_OFFSET_NS as i64;
            let ticks = ns_to_ticks(r.unsigned_abs()) as i64 * r.signum();
            (base as i64 + ticks).rem_euclid(ts::TS_MASK as i64 + 1) as u64
        };
        let mut pts_rel: Vec<u64> = own
            .iter()
            .map(|a| (rel(a.pts) + 90_000 * 1000) as u64)
            .collect();
        pts_rel.sort_unstable();
        let in_fps = estimate_fps(&pts_rel);
        let in_dur_ticks = 90_000 * u64::from(in_fps.1) / u64::from(in_fps.0.max(1));
        let input_duration =
            (pts_rel.last().unwrap() - pts_rel.first().unwrap() + in_dur_ticks) as f64 / 90_000.0;
        let origin = own
            .iter()
            .map(|a| to_pipe(a.pts))
            .min()
            .unwrap_or(PIPE_OFFSET_NS);

        // how each branch paces its frames (a branch scaling another's output paces that one's frames)
        let parents = scale_parents(&self.cfg.profiles, self.cfg.layout.topology);
        let paces = paces(&self.cfg.profiles, &parents, in_fps);
        {
            let mut s = lock(&self.shared.0);
            s.decoded = 0;
            s.error = None;
            s.preroll = aus[..prep.preroll].iter().map(|a| to_pipe(a.pts)).collect();
            s.preroll_decoded = 0;
            s.last_pts = None;
            s.duplicates = 0;
            for (i, b) in s.branches.iter_mut().enumerate() {
                let (fps, cap) = paces[i];
                // half a frame of what this branch scales, so jittery timestamps keep their slots
                let src = match parents[i] {
                    None => in_fps,
                    Some(p) => paces[p].0,
                };
                let tolerance = 500_000_000 * u64::from(src.1) / u64::from(src.0.max(1));
                b.pace = if cap {
                    Pace::Cap {
                        origin,
                        fps: fps.0,
                        tolerance,
                    }
                } else {
                    Pace::Keep
                };
                b.fps = fps;
                b.next_slot = 0;
                b.kept = 0;
                b.frames.clear();
                b.eos = false;
            }
        }
        // the input caps carry the frame rate, so a rate change reaches every branch as a caps event
        let caps = gst::Caps::builder("video/x-h264")
            .field("stream-format", "byte-stream")
            .field("alignment", "au")
            .field(
                "framerate",
                gst::Fraction::new(in_fps.0 as i32, in_fps.1 as i32),
            )
            .build();
        if self.last_caps.as_ref() != Some(&caps) {
            self.appsrc.set_caps(Some(&caps));
            self.last_caps = Some(caps);
        }
        for au in aus {
            let mut buf = gst::Buffer::from_slice(au.data.clone());
            {
                let b = buf.get_mut().unwrap();
                b.set_pts(gst::ClockTime::from_nseconds(to_pipe(au.pts)));
                b.set_dts(gst::ClockTime::from_nseconds(to_pipe(au.dts)));
                b.set_duration(gst::ClockTime::from_nseconds(ticks_to_ns(in_dur_ticks)));
                if !au.key {
                    b.set_flags(gst::BufferFlags::DELTA_UNIT);
                }
            }
            if let Err(e) = self.appsrc.push_buffer(buf) {
                return Err(self.pipeline_error(seq).unwrap_or(SegmentError::Pipeline {
                    seq,
                    element: "src".into(),
                    message: format!("push failed: {e:?}"),
                    debug: String::new(),
                }));
            }
        }
        let _ = self.appsrc.send_event(gst::event::Eos::new());

        // wait for every branch to drain, an error, or the watchdog
        let deadline = start + Duration::from_millis(self.cfg.watchdog_ms);
        let (m, cv) = &*self.shared;
        let mut s = lock(m);
        loop {
            if s.error.is_some() {
                break;
            }
            if s.branches.iter().all(|b| b.eos) {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                let stage = s
                    .branches
                    .iter()
                    .zip(&self.branches)
                    .filter(|(b, _)| !b.eos)
                    .map(|(b, br)| {
                        format!(
                            "{}: {} of {} frames",
                            br.profile.name,
                            b.frames.len(),
                            b.kept
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let stage = format!("decoder: {} of {} frames; {stage}", s.decoded, own.len());
                return Err(SegmentError::Timeout {
                    seq,
                    waited_ms: self.cfg.watchdog_ms,
                    stage,
                });
            }
            s = cv
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        if let Some((element, message, debug)) = s.error.take() {
            return Err(SegmentError::Pipeline {
                seq,
                element,
                message,
                debug,
            });
        }
        let decoded = s.decoded;
        if decoded == 0 {
            return Err(SegmentError::Incomplete {
                seq,
                element: self.decoder_name.clone(),
                got: 0,
                expected: own.len(),
                why: "nothing in the segment could be decoded",
            });
        }
        let dropped = Dropped {
            before_keyframe: prep.dropped_before_keyframe,
            undecodable: own.len().saturating_sub(decoded + s.duplicates),
            duplicate_timestamp: s.duplicates,
        };
        let preroll_frames = s.preroll_decoded;
        // audio: AAC is carried as it came; other codecs are dropped (players of the renditions take AAC)
        let audio_codec = dm
            .audio
            .first()
            .filter(|_| dm.audio_stream_type == Some(ts::STREAM_TYPE_AAC_ADTS))
            .and_then(|a| mp4a_codec(&a.pes));
        let (audio, audio_type, audio_dropped): (&[ts::AudioPes], _, _) =
            match (dm.audio.is_empty(), &audio_codec) {
                (true, _) => (&[], None, None),
                (false, Some(_)) => (
                    &dm.audio,
                    dm.audio_stream_type
                        .map(|t| (t, dm.audio_descriptors.as_slice())),
                    None,
                ),
                (false, None) => (
                    &[],
                    None,
                    Some(format!(
                        "audio stream type {:#04x} is not AAC with ADTS framing: not carried",
                        dm.audio_stream_type.unwrap_or(0)
                    )),
                ),
            };
        let mut renditions = Vec::with_capacity(self.branches.len());
        let branch_states: Vec<BranchState> = s.branches.iter_mut().map(std::mem::take).collect();
        drop(s);
        {
            // keep sizes for the next segment (caps events only come on change)
            let mut s = lock(m);
            for (dst, src) in s.branches.iter_mut().zip(&branch_states) {
                dst.width = src.width;
                dst.height = src.height;
            }
        }
        let self_contained = self.cfg.self_contained_segments;
        for (br, st) in self.branches.iter_mut().zip(branch_states) {
            let enc_name = format!("enc-{}", br.profile.name);
            if st.frames.is_empty() {
                return Err(SegmentError::Incomplete {
                    seq,
                    element: enc_name,
                    got: 0,
                    expected: st.kept,
                    why: "the encoder returned no frame",
                });
            }
            if st.frames.len() != st.kept {
                tracing::warn!(
                    seq,
                    rendition = %br.profile.name,
                    fed = st.kept,
                    out = st.frames.len(),
                    "the encoder returned a different number of frames than it was fed"
                );
            }
            if !st.frames[0].key {
                return Err(SegmentError::Incomplete {
                    seq,
                    element: enc_name,
                    got: 0,
                    expected: 1,
                    why: "first output frame is not a keyframe",
                });
            }
            let frames: Vec<EncodedFrame> = st
                .frames
                .iter()
                .map(|f| EncodedFrame {
                    pts: from_pipe(f.pts),
                    dts: from_pipe(f.dts),
                    key: f.key,
                    data: &f.data,
                })
                .collect();
            let video_bytes = st.frames.iter().map(|f| f.data.len()).sum();
            if self_contained {
                br.muxer = TsMuxer::new();
            }
            let data = br.muxer.mux_segment(&frames, audio, audio_type);
            let mut codecs = avc1_codec(&st.frames[0].data).unwrap_or_else(|| "avc1.640028".into());
            if let Some(a) = audio_codec.as_ref().filter(|_| !audio.is_empty()) {
                codecs.push(',');
                codecs.push_str(a);
            }
            let first = st.frames.iter().map(|f| f.pts).min().unwrap_or(origin);
            let last = st.frames.iter().map(|f| f.pts).max().unwrap_or(origin);
            let frame_ns = 1_000_000_000 * u64::from(st.fps.1) / u64::from(st.fps.0.max(1));
            renditions.push(Rendition {
                profile: br.profile.name.clone(),
                data,
                width: st.width,
                height: st.height,
                fps: st.fps,
                frames: st.frames.len(),
                frames_fed: st.kept,
                duration: (last - first + frame_ns) as f64 / 1e9,
                first_pts: from_pipe(first),
                codecs,
                video_bytes,
            });
        }
        Ok(SegmentOutput {
            seq,
            renditions,
            stats: SegmentStats {
                wall: start.elapsed(),
                input_frames,
                decoded_frames: decoded,
                preroll_frames,
                dropped,
                repairs: std::mem::take(&mut prep.repairs),
                input_duration,
                input_fps: in_fps,
                has_audio: !audio.is_empty(),
                audio_dropped,
            },
        })
    }

    fn pipeline_error(&self, seq: u64) -> Option<SegmentError> {
        let s = lock(&self.shared.0);
        s.error
            .clone()
            .map(|(element, message, debug)| SegmentError::Pipeline {
                seq,
                element,
                message,
                debug,
            })
    }

    /// After a good segment: flush every element back to a clean state, staying in PLAYING.
    fn flush(&mut self) -> Result<(), String> {
        if !self.appsrc.send_event(gst::event::FlushStart::new()) {
            return self.reset();
        }
        if !self.appsrc.send_event(gst::event::FlushStop::new(true)) {
            return self.reset();
        }
        Ok(())
    }

    /// After a failure: cycle the same pipeline through NULL (the elements are kept).
    fn reset(&mut self) -> Result<(), String> {
        self.pipeline
            .set_state(gst::State::Null)
            .map_err(|e| format!("to NULL: {e}"))?;
        {
            let mut s = lock(&self.shared.0);
            s.error = None;
            for b in &mut s.branches {
                *b = BranchState::default();
            }
        }
        self.last_caps = None;
        self.pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| format!("to PLAYING: {e}"))?;
        Ok(())
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

    #[test]
    fn fit_box_keeps_aspect_and_never_upscales() {
        assert_eq!(fit_box(1920, 1080, (1, 1), 1280, 720), (1280, 720));
        assert_eq!(fit_box(1920, 1080, (1, 1), 426, 240), (426, 240));
        // portrait phone video into a landscape box: height-limited
        assert_eq!(fit_box(1080, 1920, (1, 1), 1280, 720), (406, 720));
        // 4:3 into 16:9
        assert_eq!(fit_box(640, 480, (1, 1), 640, 360), (480, 360));
        // odd input, smaller than the box: kept, made even
        assert_eq!(fit_box(321, 241, (1, 1), 1280, 720), (322, 242));
        // anamorphic 720x576 with 16:15 pixels: 768x576 on screen, not wider than the 720 coded
        assert_eq!(fit_box(720, 576, (16, 15), 1280, 720), (720, 540));
        // 1024x432 with slightly wide pixels into a 1280x720 box: not wider than the source
        assert_eq!(fit_box(1024, 432, (129, 128), 1280, 720), (1024, 428));
        // narrow pixels (DV 4:3, 10:11): not taller than the source
        assert_eq!(fit_box(720, 480, (10, 11), 1280, 720), (654, 480));
    }

    #[test]
    fn branches_cap_only_what_is_faster_than_their_profile() {
        let p = |w, h, fps| Profile::new("x", w, h, fps, 1000).unwrap();
        let ladder = [p(1280, 720, 60), p(640, 360, 30), p(426, 240, 30)];
        let parents = scale_parents(&ladder, Topology::FanLargest);
        assert_eq!(
            paces(&ladder, &parents, (60, 1)),
            [((60, 1), false), ((30, 1), true), ((30, 1), true)]
        );
        // 33.3 fps into 30: capped; 30.3 (within 2 %) and 25: kept at the input's rate
        assert_eq!(paces(&ladder, &parents, (100, 3))[1], ((30, 1), true));
        assert_eq!(paces(&ladder, &parents, (1000, 33))[1], ((1000, 33), false));
        assert_eq!(paces(&ladder, &parents, (25, 1))[2], ((25, 1), false));
        assert_eq!(slot_ticks(3, 30), 9000);
        assert_eq!(slot_ticks(1, 24), 3750);
    }

    #[test]
    fn ns_ticks_roundtrip() {
        for t in [0u64, 1, 3003, 90_000, 8_589_934_591] {
            assert_eq!(ns_to_ticks(ticks_to_ns(t)), t);
        }
    }

    #[test]
    fn codec_strings() {
        let au = [
            0, 0, 0, 1, 0x67, 0x64, 0x00, 0x1f, 0xac, 0, 0, 1, 0x65, 0x88,
        ];
        assert_eq!(avc1_codec(&au).as_deref(), Some("avc1.64001f"));
        let pes = [
            0, 0, 1, 0xc0, 0, 0, 0x80, 0x80, 5, 0, 0, 0, 0, 0, 0xff, 0xf1, 0x50, 0x80,
        ];
        assert_eq!(mp4a_codec(&pes).as_deref(), Some("mp4a.40.2"));
        // an MPEG-1 layer 3 frame header is not ADTS
        let mut mp3 = pes;
        mp3[15] = 0xfb;
        assert_eq!(mp4a_codec(&mp3), None);
    }
}
