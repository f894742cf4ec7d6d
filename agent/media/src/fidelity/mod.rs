//! Fidelity of a transcoded rendition to its source segment, for a verifier of (hardware-)encoded output.
//!
//! A hardware encoder never matches a software re-encode byte for byte, so a claimed rendition is judged by
//! what it shows: it must be the source's content, at the profile's size (the engine's fit into the
//! profile's box), at min(source fps, profile fps), at about the profile's bitrate, as H.264 8-bit 4:2:0,
//! every frame of the segment present and none of them tampered with. See the "Fidelity" section of the
//! crate README for the thresholds, how they were calibrated and what decides.
//!
//! ```text
//! source TS ─ ts::demux ─ appsrc ! h264parse ! avdec_h264 ! videoconvert ! videoscale ! I420 (rendition size) ─┐
//!                                                                                                   merge on PTS ─ metrics per frame
//! rendition TS ─ ts::demux ─ appsrc ! h264parse ! avdec_h264 ! videoconvert ! I420 ─────────────────────────────┘
//! ```
//!
//! Every rendition frame is compared with the source frame nearest in PTS, scaled to the rendition's size
//! with the engine's scaler (colorimetry kept, as the engine does): PSNR of Y, U and V, SSIM of Y (8x8
//! blocks), the PSNR-Y of the frame's worst tile, and its colour saturation relative to the source's. The
//! per-frame values are summarised (min, 5th percentile, median, mean) and the *minimum over frames*
//! decides, so that one tampered or frozen stretch cannot hide behind a good average.
//!
//! The verdict of a rendition is its smallest check margin ([`Check::margin`], the distance to the
//! threshold relative to the threshold, clamped to [-1, 1]); a segment's is the smallest over its
//! renditions, published as [`FidelityReport::score_milli`].

mod decode;
pub mod metrics;
pub mod sps;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::{estimate_fps, fit_box};
use crate::profiles::Profile;
use crate::timeline::pace_frames;
use crate::ts;
use decode::{Au, Frame, FrameStream};
use metrics::FrameMetrics;

/// Longest one decode pipeline may run.
const DECODE_TIMEOUT: Duration = Duration::from_secs(120);

/// Errors of the fidelity check. A rendition that is bad is a failed [`RenditionReport`], never an error:
/// an `Err` from [`compare`] means the verifier could not do its own part (the source does not decode).
#[derive(Debug, thiserror::Error)]
pub enum FidelityError {
    #[error("source segment: {0}")]
    Source(String),
    #[error("rendition: {0}")]
    Rendition(String),
    #[error("no renditions to compare")]
    NoRenditions,
}

/// Thresholds for one profile. `for_profile` gives the calibrated defaults (README, "Fidelity").
///
/// Every quality threshold applies to *every* compared frame (the minimum over frames decides): an average
/// lets a tampered or frozen stretch through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// Every frame: PSNR-Y (dB) at least this.
    pub min_psnr_y: f64,
    /// PSNR-Y (dB) from which a frame counts as visually lossless: above it, differences between frames
    /// are not judged (for `max_psnr_y_drop`).
    pub transparent_psnr_y: f64,
    /// Every frame: PSNR-Y no more than this many dB under the rendition's median frame (both capped at
    /// `transparent_psnr_y`). A frozen, swapped or re-timed stretch shows as a dip even where every frame
    /// stays above `min_psnr_y`.
    pub max_psnr_y_drop: f64,
    /// Every frame: SSIM-Y (mean over 8x8 blocks) at least this.
    pub min_ssim_y: f64,
    /// Every frame: PSNR of U and of V (dB) at least this.
    pub min_psnr_chroma: f64,
    /// Every frame: colour saturation (chroma energy around grey) within this factor of the source's, both
    /// ways (black and white is 0; frames of a grey source are not judged).
    pub min_saturation_ratio: f64,
    /// Every frame: PSNR-Y of its worst `tile` x `tile` tile at least this (a small overlay, a vignette).
    pub min_local_psnr_y: f64,
    /// Tile side in luma pixels for the local measure (rounded up to a multiple of 8).
    pub tile: u32,
    /// Video bitrate at most this times the profile's.
    pub max_bitrate_ratio: f64,
    /// Video bitrate at least this times the profile's, unless every frame is at least
    /// `undershoot_min_psnr_y` (content an encoder cannot, or need not, spend the bits on).
    pub min_bitrate_ratio: f64,
    /// Every frame at least this PSNR-Y (dB): the rendition may stay under `min_bitrate_ratio`.
    pub undershoot_min_psnr_y: f64,
    /// Frame count: at most this many frames more or fewer than expected.
    pub frame_tolerance: u64,
    /// Frame rate: relative deviation from the expected rate at most this.
    pub fps_tolerance: f64,
    /// Timeline: first and last PTS and the duration within this many output frames of the expected ones,
    /// and no gap between frames longer than 1 + this many frames.
    pub timeline_tolerance_frames: f64,
}

/// Bits per pixel the default PSNR floors were calibrated at (P360p30fps16x9: 1200 kbit/s over 640x360 at
/// 30 fps = 0.17; P240p30fps16x9: 0.20).
pub const CALIBRATED_BPP: f64 = 0.17;

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_psnr_y: 25.0,
            transparent_psnr_y: 40.0,
            max_psnr_y_drop: 12.0,
            min_ssim_y: 0.5,
            min_psnr_chroma: 22.0,
            min_saturation_ratio: 0.75,
            min_local_psnr_y: 15.0,
            tile: 32,
            max_bitrate_ratio: 2.0,
            min_bitrate_ratio: 0.33,
            undershoot_min_psnr_y: 35.0,
            frame_tolerance: 1,
            fps_tolerance: 0.01,
            timeline_tolerance_frames: 1.0,
        }
    }
}

impl Thresholds {
    /// Calibrated defaults for a profile (see the crate README, "Fidelity"): tiles of about the same share
    /// of the frame (16 px under 300 lines, else 32 px), and for profiles with fewer bits per pixel than
    /// the calibration the PSNR floors lowered by 3 dB per halving (about x264's rate-distortion slope at
    /// these rates), at most by 5 dB.
    pub fn for_profile(p: &Profile) -> Self {
        let mut t = Thresholds::default();
        if p.height < 300 {
            t.tile = 16;
        }
        let pixels_per_s = f64::from(p.width) * f64::from(p.height) * f64::from(p.fps.max(1));
        let bpp = f64::from(p.bitrate_kbps) * 1000.0 / pixels_per_s.max(1.0);
        let relax = (3.0 * (CALIBRATED_BPP / bpp).log2()).clamp(0.0, 5.0);
        t.min_psnr_y -= relax;
        t.min_psnr_chroma -= relax;
        t.min_local_psnr_y -= relax;
        t.undershoot_min_psnr_y -= relax;
        t
    }
}

/// Summary of a per-frame statistic over the compared frames.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Summary {
    pub min: f64,
    /// 5th percentile (nearest rank).
    pub p5: f64,
    pub median: f64,
    pub mean: f64,
}

impl Summary {
    fn of(values: impl Iterator<Item = f64>) -> Self {
        let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Summary::default();
        }
        v.sort_by(f64::total_cmp);
        let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Summary {
            min: v[0],
            p5: rank(0.05),
            median: rank(0.5),
            mean: v.iter().sum::<f64>() / v.len() as f64,
        }
    }
}

/// One check of a rendition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub measured: f64,
    pub threshold: f64,
    /// (measured - threshold) normalised by the threshold's scale, in [-1, 1]; < 0 fails.
    pub margin: f64,
    pub detail: String,
}

impl Check {
    fn passed(&self) -> bool {
        self.margin >= 0.0
    }
}

/// What a verifier learns about one rendition.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RenditionReport {
    pub profile: String,
    /// H.264 format from the SPS, e.g. "high 4:2:0 8-bit (avc1.64001e)" (all distinct SPS, joined).
    pub codec: String,
    /// Decoded frames.
    pub frames: u64,
    pub expected_frames: u64,
    pub width: u32,
    pub height: u32,
    pub expected_width: u32,
    pub expected_height: u32,
    /// Measured frame rate (median PTS step).
    pub fps: f64,
    pub expected_fps: f64,
    pub duration_s: f64,
    pub expected_duration_s: f64,
    /// Video elementary stream bitrate over the measured duration.
    pub bitrate_bps: u64,
    pub target_bitrate_bps: u64,
    /// Sum of width x height over the decoded frames: what the transcoder bills.
    pub pixels: u64,
    /// Frames compared with a source frame.
    pub compared_frames: u64,
    /// Largest PTS distance between a rendition frame and the source frame it was compared with (s).
    pub max_alignment_s: f64,
    pub psnr_y: Summary,
    pub psnr_u: Summary,
    pub psnr_v: Summary,
    pub ssim_y: Summary,
    /// PSNR-Y of each frame's worst tile.
    pub local_psnr_y: Summary,
    /// Per frame min(r, 1/r) of the saturation ratio r (rendition over source; 1 = same colour).
    pub saturation: Summary,
    /// Largest drop of a frame's PSNR-Y under the median frame's, both capped at the transparent level (dB).
    pub max_psnr_y_drop: f64,
    pub checks: Vec<Check>,
    /// The deciding margin: the smallest check margin; < 0 fails.
    pub margin: f64,
    /// The check that decided (smallest margin).
    pub deciding: String,
    /// Each failed check, human readable.
    pub failures: Vec<String>,
    pub passed: bool,
}

/// The source as the verifier decoded it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SourceInfo {
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub frames: u64,
    pub duration_s: f64,
}

/// The verdict over every rendition of a segment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FidelityReport {
    pub source: SourceInfo,
    pub renditions: Vec<RenditionReport>,
    pub passed: bool,
    /// The deciding margin (smallest over renditions) x 1000, rounded; negative = fail.
    pub score_milli: i64,
}

/// The source segment, demuxed and probed.
struct Source<'a> {
    base: u64,
    aus: Vec<Au<'a>>,
    /// Sorted PTS, ticks on the comparison timeline.
    pts: Vec<i64>,
    fps: (u32, u32),
    width: u32,
    height: u32,
    par: (i32, i32),
    colorimetry: Option<String>,
}

/// `pace_frames` and `estimate_fps` work on non-negative ticks: shift by this.
const SHIFT: i64 = 90_000 * 1000;

fn to_u64_ticks(v: &[i64]) -> Vec<u64> {
    v.iter().map(|&t| (t + SHIFT).max(0) as u64).collect()
}

fn fps_f64(f: (u32, u32)) -> f64 {
    f64::from(f.0) / f64::from(f.1.max(1))
}

impl<'a> Source<'a> {
    fn open(dm: &'a ts::Demuxed) -> Result<Self, FidelityError> {
        let err = |e: String| FidelityError::Source(e);
        let base = dm.video.first().ok_or_else(|| err("no video".into()))?.dts;
        let aus = decode::access_units(dm, base).map_err(err)?;
        let mut pts: Vec<i64> = aus.iter().map(|a| a.pts).collect();
        pts.sort_unstable();
        let fps = estimate_fps(&to_u64_ticks(&pts));
        let mut probe = FrameStream::start(&aus, fps, None, None, DECODE_TIMEOUT).map_err(err)?;
        let first = probe
            .next_frame()
            .map_err(err)?
            .ok_or_else(|| err("no frame decodes".into()))?;
        Ok(Source {
            base,
            aus,
            pts,
            fps,
            width: first.width,
            height: first.height,
            par: first.par,
            colorimetry: first.colorimetry,
        })
    }

    fn duration_ticks(&self) -> i64 {
        let step = 90_000 * i64::from(self.fps.1) / i64::from(self.fps.0.max(1));
        match (self.pts.first(), self.pts.last()) {
            (Some(a), Some(b)) => b - a + step,
            _ => 0,
        }
    }
}

/// What the engine would have produced from the source for a profile.
struct Expected {
    width: u32,
    height: u32,
    pts: Vec<i64>,
    fps: (u32, u32),
    frame_ticks: i64,
}

impl Expected {
    fn of(src: &Source<'_>, p: &Profile) -> Self {
        let (width, height) = fit_box(src.width, src.height, src.par, p.width, p.height);
        let (kept, fps, dur) = pace_frames(&to_u64_ticks(&src.pts), src.fps, p.fps);
        Expected {
            width,
            height,
            pts: kept.iter().map(|&t| t as i64 - SHIFT).collect(),
            fps,
            frame_ticks: dur as i64,
        }
    }

    fn duration_ticks(&self) -> i64 {
        match (self.pts.first(), self.pts.last()) {
            (Some(a), Some(b)) => b - a + self.frame_ticks,
            _ => 0,
        }
    }
}

/// Collects checks.
#[derive(Default)]
struct Checks(Vec<Check>);

impl Checks {
    fn push(
        &mut self,
        name: &'static str,
        measured: f64,
        threshold: f64,
        margin: f64,
        detail: String,
    ) {
        let margin = if margin.is_nan() {
            -1.0
        } else {
            margin.clamp(-1.0, 1.0)
        };
        self.0.push(Check {
            name,
            measured,
            threshold,
            margin,
            detail,
        });
    }

    /// measured >= threshold, margin relative to the threshold.
    fn at_least(&mut self, name: &'static str, measured: f64, threshold: f64, detail: String) {
        let scale = threshold.abs().max(1e-9);
        self.push(
            name,
            measured,
            threshold,
            (measured - threshold) / scale,
            detail,
        );
    }

    /// measured <= threshold, margin relative to the threshold.
    fn at_most(&mut self, name: &'static str, measured: f64, threshold: f64, detail: String) {
        let scale = threshold.abs().max(1e-9);
        self.push(
            name,
            measured,
            threshold,
            (threshold - measured) / scale,
            detail,
        );
    }

    /// A yes/no check: margin 1 or -1.
    fn exact(&mut self, name: &'static str, ok: bool, detail: String) {
        let m = if ok { 1.0 } else { -1.0 };
        self.push(name, f64::from(u8::from(ok)), 1.0, m, detail);
    }
}

/// Compare every rendition of a segment with the source segment, with [`Thresholds::for_profile`].
///
/// A rendition that does not demux or decode, or is not what the profile asks for, gives a failed
/// [`RenditionReport`]; `Err` means the verifier cannot do its part: the source does not decode, or no
/// rendition was given. Blocking: decodes with GStreamer (one source and one rendition pipeline at a time).
pub fn compare(
    source_ts: &[u8],
    renditions: &[(&Profile, &[u8])],
) -> Result<FidelityReport, FidelityError> {
    compare_with(source_ts, renditions, Thresholds::for_profile)
}

/// [`compare`] with the thresholds of your choice.
pub fn compare_with(
    source_ts: &[u8],
    renditions: &[(&Profile, &[u8])],
    thresholds: impl Fn(&Profile) -> Thresholds,
) -> Result<FidelityReport, FidelityError> {
    if renditions.is_empty() {
        return Err(FidelityError::NoRenditions);
    }
    let dm = ts::demux(source_ts).map_err(|e| FidelityError::Source(e.to_string()))?;
    let src = Source::open(&dm)?;
    let mut reports = Vec::with_capacity(renditions.len());
    for (profile, bytes) in renditions {
        reports.push(rendition(&src, profile, bytes, &thresholds(profile))?);
    }
    let margin = reports
        .iter()
        .map(|r| r.margin)
        .fold(f64::INFINITY, f64::min);
    let margin = if margin.is_finite() { margin } else { 1.0 };
    Ok(FidelityReport {
        source: SourceInfo {
            width: src.width,
            height: src.height,
            fps: fps_f64(src.fps),
            frames: src.aus.len() as u64,
            duration_s: src.duration_ticks() as f64 / 90_000.0,
        },
        passed: reports.iter().all(|r| r.passed),
        renditions: reports,
        score_milli: (margin * 1000.0).round() as i64,
    })
}

/// The pixels a rendition bills: width x height summed over its decoded frames (it is decoded completely).
pub fn pixels(rendition_ts: &[u8]) -> Result<u64, FidelityError> {
    let err = |e: String| FidelityError::Rendition(e);
    let dm = ts::demux(rendition_ts).map_err(|e| err(e.to_string()))?;
    let base = dm.video.first().ok_or_else(|| err("no video".into()))?.dts;
    let aus = decode::access_units(&dm, base).map_err(err)?;
    let mut pts: Vec<i64> = aus.iter().map(|a| a.pts).collect();
    pts.sort_unstable();
    let fps = estimate_fps(&to_u64_ticks(&pts));
    let mut s = FrameStream::start(&aus, fps, None, None, DECODE_TIMEOUT).map_err(err)?;
    let mut total = 0u64;
    while let Some(f) = s.next_frame().map_err(err)? {
        total += u64::from(f.width) * u64::from(f.height);
    }
    Ok(total)
}

/// Judge one rendition. `Err` only for the source's side.
fn rendition(
    src: &Source<'_>,
    profile: &Profile,
    bytes: &[u8],
    th: &Thresholds,
) -> Result<RenditionReport, FidelityError> {
    let exp = Expected::of(src, profile);
    let mut rep = RenditionReport {
        profile: profile.name.clone(),
        expected_frames: exp.pts.len() as u64,
        expected_width: exp.width,
        expected_height: exp.height,
        expected_fps: fps_f64(exp.fps),
        expected_duration_s: exp.duration_ticks() as f64 / 90_000.0,
        target_bitrate_bps: u64::from(profile.bitrate_kbps) * 1000,
        ..Default::default()
    };
    let mut checks = Checks::default();
    measure(src, &exp, bytes, th, &mut rep, &mut checks)?;
    finish(&mut rep, checks);
    Ok(rep)
}

/// Fill `rep` and `checks`; returns early (with a failed "decode" check) when the rendition cannot be read.
fn measure(
    src: &Source<'_>,
    exp: &Expected,
    bytes: &[u8],
    th: &Thresholds,
    rep: &mut RenditionReport,
    checks: &mut Checks,
) -> Result<(), FidelityError> {
    let dm = match ts::demux(bytes) {
        Ok(d) => d,
        Err(e) => {
            checks.exact("decode", false, format!("cannot demux: {e}"));
            return Ok(());
        }
    };
    let aus = match decode::access_units(&dm, src.base) {
        Ok(a) => a,
        Err(e) => {
            checks.exact(
                "timeline",
                false,
                format!("timestamps off the source's: {e}"),
            );
            return Ok(());
        }
    };

    if aus.is_empty() {
        checks.exact("decode", false, "no video access units".into());
        return Ok(());
    }
    // format from the SPS
    let (formats, bad) = sps::formats(aus.iter().map(|a| a.data));
    rep.codec = formats
        .iter()
        .map(sps::SpsFormat::describe)
        .collect::<Vec<_>>()
        .join(", ");
    let format_ok = !formats.is_empty() && bad == 0 && formats.iter().all(|f| f.is_8bit_420_bmh());
    checks.exact(
        "format",
        format_ok,
        if formats.is_empty() {
            "no SPS".into()
        } else if bad > 0 {
            format!("{bad} unreadable SPS")
        } else {
            format!("{} (must be baseline/main/high 4:2:0 8-bit)", rep.codec)
        },
    );

    // timeline from the access units
    let mut pts: Vec<i64> = aus.iter().map(|a| a.pts).collect();
    pts.sort_unstable();
    let fps = estimate_fps(&to_u64_ticks(&pts));
    rep.fps = fps_f64(fps);
    let step = 90_000 * i64::from(fps.1) / i64::from(fps.0.max(1));
    let (first, last) = (pts[0], pts[pts.len() - 1]);
    let duration = last - first + step;
    rep.duration_s = duration as f64 / 90_000.0;
    let video_bytes: u64 = aus.iter().map(|a| a.data.len() as u64).sum();
    rep.bitrate_bps = (video_bytes as f64 * 8.0 / rep.duration_s.max(1e-3)).round() as u64;

    // decode the rendition; then the source scaled to the rendition's size, side by side
    let mut rs = match FrameStream::start(&aus, fps, None, None, DECODE_TIMEOUT) {
        Ok(s) => s,
        Err(e) => {
            checks.exact("decode", false, e);
            return Ok(());
        }
    };
    let mut pending = match rs.next_frame() {
        Ok(Some(f)) => Some(f),
        Ok(None) => {
            checks.exact("decode", false, "no frame decodes".into());
            return Ok(());
        }
        Err(e) => {
            checks.exact("decode", false, e);
            return Ok(());
        }
    };
    let (w, h) = pending
        .as_ref()
        .map(|f| (f.width, f.height))
        .unwrap_or_default();
    rep.width = w;
    rep.height = h;
    // metrics only at a size that makes sense (a rendition larger than 4x the source's area fails the size
    // check anyway, and is not worth scaling the source up for)
    let src_area = u64::from(src.width) * u64::from(src.height);
    let comparable = w >= 2 && h >= 2 && u64::from(w) * u64::from(h) <= 4 * src_area.max(1);
    let mut ss = if comparable {
        Some(
            FrameStream::start(
                &src.aus,
                src.fps,
                Some((w, h)),
                src.colorimetry.as_deref(),
                DECODE_TIMEOUT,
            )
            .map_err(FidelityError::Source)?,
        )
    } else {
        None
    };
    let mut window: (Option<Frame>, Option<Frame>) = (None, None); // (latest at or before, next after)
    let mut source_done = false;
    let mut per_frame: Vec<FrameMetrics> = Vec::new();
    let mut decode_error = None;
    let mut size_changes = 0u64;
    let mut max_align = 0i64;
    while let Some(r) = pending.take() {
        rep.frames += 1;
        rep.pixels += u64::from(r.width) * u64::from(r.height);
        if (r.width, r.height) != (w, h) {
            size_changes += 1;
        } else if let Some(ss) = ss.as_mut() {
            // advance the source until its next frame lies after this one
            loop {
                if window.1.is_none() && !source_done {
                    window.1 = ss.next_frame().map_err(FidelityError::Source)?;
                    source_done = window.1.is_none();
                }
                match &window.1 {
                    Some(n) if n.pts <= r.pts => window.0 = window.1.take(),
                    _ => break,
                }
            }
            let nearest = match (&window.0, &window.1) {
                (Some(a), Some(b)) => Some(if r.pts - a.pts <= b.pts - r.pts { a } else { b }),
                (a, b) => a.as_ref().or(b.as_ref()),
            };
            if let Some(s) = nearest {
                max_align = max_align.max((s.pts - r.pts).abs());
                per_frame.push(metrics::frame(s.planes(), r.planes(), th.tile as usize));
            }
        }
        match rs.next_frame() {
            Ok(f) => pending = f,
            Err(e) => decode_error = Some(e),
        }
    }
    drop(ss);
    drop(rs);
    rep.compared_frames = per_frame.len() as u64;
    rep.max_alignment_s = max_align as f64 / 90_000.0;

    checks.exact(
        "decode",
        decode_error.is_none() && rep.frames == aus.len() as u64,
        match &decode_error {
            Some(e) => format!("decoder: {e}"),
            None => format!("{} of {} access units decode", rep.frames, aus.len()),
        },
    );
    checks.exact(
        "size",
        (w, h) == (exp.width, exp.height) && size_changes == 0,
        format!(
            "{w}x{h}{} (expected {}x{}: the source's {}x{} fit into the profile's box)",
            if size_changes > 0 {
                format!(", {size_changes} frames of another size")
            } else {
                String::new()
            },
            exp.width,
            exp.height,
            src.width,
            src.height
        ),
    );
    let exp_fps = fps_f64(exp.fps);
    let dev = (rep.fps / exp_fps - 1.0).abs();
    checks.push(
        "frame_rate",
        rep.fps,
        exp_fps,
        (th.fps_tolerance - dev) / th.fps_tolerance.max(1e-9),
        format!(
            "{:.3} fps (expected {exp_fps:.3}, ±{:.1} %)",
            rep.fps,
            th.fps_tolerance * 100.0
        ),
    );
    let diff = rep.frames.abs_diff(rep.expected_frames) as f64;
    let tol = th.frame_tolerance as f64 + 0.5;
    checks.push(
        "frames",
        rep.frames as f64,
        rep.expected_frames as f64,
        (tol - diff) / tol,
        format!(
            "{} frames (expected {} ± {})",
            rep.frames, rep.expected_frames, th.frame_tolerance
        ),
    );
    // timeline: start, end, duration and the largest gap, in expected output frames
    let ft = exp.frame_ticks.max(1) as f64;
    let (efirst, elast) = (
        exp.pts.first().copied().unwrap_or(0),
        exp.pts.last().copied().unwrap_or(0),
    );
    let max_gap = pts.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0) as f64 / ft - 1.0;
    let off = [
        (first - efirst).abs() as f64 / ft,
        (last - elast).abs() as f64 / ft,
        (duration - exp.duration_ticks()).abs() as f64 / ft,
        max_gap,
    ]
    .into_iter()
    .fold(0.0, f64::max);
    let tt = th.timeline_tolerance_frames;
    checks.push(
        "timeline",
        off,
        tt,
        (tt - off) / tt.max(1e-9),
        format!(
            "{:.3}..{:.3} s, {:.3} s, largest gap {:.1} frames (expected {:.3}..{:.3} s, {:.3} s; ±{tt} frame)",
            first as f64 / 90_000.0,
            last as f64 / 90_000.0,
            rep.duration_s,
            max_gap + 1.0,
            efirst as f64 / 90_000.0,
            elast as f64 / 90_000.0,
            rep.expected_duration_s
        ),
    );

    // quality
    rep.psnr_y = Summary::of(per_frame.iter().map(|m| m.psnr_y));
    rep.psnr_u = Summary::of(per_frame.iter().map(|m| m.psnr_u));
    rep.psnr_v = Summary::of(per_frame.iter().map(|m| m.psnr_v));
    rep.ssim_y = Summary::of(per_frame.iter().map(|m| m.ssim_y));
    rep.local_psnr_y = Summary::of(per_frame.iter().map(|m| m.local_psnr_y));
    rep.saturation = Summary::of(per_frame.iter().map(|m| {
        let r = m.saturation_ratio;
        if r > 0.0 { r.min(1.0 / r) } else { 0.0 }
    }));
    let cap = th.transparent_psnr_y;
    rep.max_psnr_y_drop = (rep.psnr_y.median.min(cap) - rep.psnr_y.min.min(cap)).max(0.0);
    let all_compared = !per_frame.is_empty() && rep.compared_frames == rep.frames;
    checks.exact(
        "compared",
        all_compared,
        format!(
            "{} of {} frames compared with the source",
            rep.compared_frames, rep.frames
        ),
    );
    if !per_frame.is_empty() {
        checks.at_least(
            "psnr_y",
            rep.psnr_y.min,
            th.min_psnr_y,
            format!(
                "worst frame PSNR-Y {:.2} dB (≥ {} dB)",
                rep.psnr_y.min, th.min_psnr_y
            ),
        );
        checks.at_most(
            "psnr_y_drop",
            rep.max_psnr_y_drop,
            th.max_psnr_y_drop,
            format!(
                "worst frame {:.2} dB under the median frame's {:.2} dB (both capped at {} dB; ≤ {} dB)",
                rep.max_psnr_y_drop, rep.psnr_y.median, cap, th.max_psnr_y_drop
            ),
        );
        checks.at_least(
            "ssim_y",
            rep.ssim_y.min,
            th.min_ssim_y,
            format!(
                "worst frame SSIM-Y {:.4} (≥ {})",
                rep.ssim_y.min, th.min_ssim_y
            ),
        );
        let chroma = rep.psnr_u.min.min(rep.psnr_v.min);
        checks.at_least(
            "psnr_chroma",
            chroma,
            th.min_psnr_chroma,
            format!(
                "worst frame PSNR-U {:.2} dB, PSNR-V {:.2} dB (≥ {} dB)",
                rep.psnr_u.min, rep.psnr_v.min, th.min_psnr_chroma
            ),
        );
        checks.at_least(
            "saturation",
            rep.saturation.min,
            th.min_saturation_ratio,
            format!(
                "worst frame's colour saturation {:.3} x the source's (or its inverse; ≥ {})",
                rep.saturation.min, th.min_saturation_ratio
            ),
        );
        checks.at_least(
            "local_psnr_y",
            rep.local_psnr_y.min,
            th.min_local_psnr_y,
            format!(
                "worst {}px tile of the worst frame {:.2} dB (≥ {} dB)",
                th.tile, rep.local_psnr_y.min, th.min_local_psnr_y
            ),
        );
    }
    // bitrate
    let ratio = rep.bitrate_bps as f64 / rep.target_bitrate_bps.max(1) as f64;
    checks.at_most(
        "bitrate_max",
        ratio,
        th.max_bitrate_ratio,
        format!(
            "{} kbit/s = {:.2} x the profile's {} kbit/s (≤ {})",
            rep.bitrate_bps / 1000,
            ratio,
            rep.target_bitrate_bps / 1000,
            th.max_bitrate_ratio
        ),
    );
    // the bitrate floor, or every frame good enough that the undershoot cost nothing visible: whichever has
    // the larger margin decides
    let scale = |t: f64| t.abs().max(1e-9);
    let by_rate = (ratio - th.min_bitrate_ratio) / scale(th.min_bitrate_ratio);
    let by_quality = if per_frame.is_empty() {
        -1.0
    } else {
        (rep.psnr_y.min - th.undershoot_min_psnr_y) / scale(th.undershoot_min_psnr_y)
    };
    checks.push(
        "bitrate_min",
        ratio,
        th.min_bitrate_ratio,
        by_rate.max(by_quality),
        format!(
            "{} kbit/s = {:.2} x the profile's {} kbit/s, worst frame {:.2} dB (≥ {} x, or every frame ≥ {} dB)",
            rep.bitrate_bps / 1000,
            ratio,
            rep.target_bitrate_bps / 1000,
            rep.psnr_y.min,
            th.min_bitrate_ratio,
            th.undershoot_min_psnr_y
        ),
    );
    Ok(())
}

/// Decide from the checks.
fn finish(rep: &mut RenditionReport, checks: Checks) {
    let decider = checks.0.iter().min_by(|a, b| a.margin.total_cmp(&b.margin));
    rep.margin = decider.map(|c| c.margin).unwrap_or(-1.0);
    rep.deciding = decider.map(|c| c.name.to_string()).unwrap_or_default();
    rep.failures = checks
        .0
        .iter()
        .filter(|c| !c.passed())
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    rep.passed = rep.failures.is_empty() && !checks.0.is_empty();
    rep.checks = checks.0;
}
