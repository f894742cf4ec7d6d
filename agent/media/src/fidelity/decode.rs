//! Decoding for the fidelity check: one short-lived GStreamer pipeline per stream,
//!
//! ```text
//! appsrc (access units from ts::demux, PTS on the source's timeline) ! h264parse ! avdec_h264
//!   ! videoconvert ! [videoscale (the engine's default method) !] video/x-raw,format=I420[,size] ! appsink
//! ```
//!
//! read in pull mode, one frame at a time, so that the caller can walk a rendition and its source side by side
//! (a merge on PTS) and never hold more than a few decoded frames. Decoders and scalers run on the
//! pipelines' own threads while the caller computes metrics.

use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;

use super::metrics::Plane;
use crate::engine::Layout;
use crate::ts;

/// Every pipeline time is this much after the base PTS, so that timestamps a little before it stay positive.
const PIPE_OFFSET_NS: i64 = 10_000_000_000;
/// How far before the base a timestamp may lie (less than the pipeline offset).
pub const MAX_TICKS_BEFORE: i64 = 5 * 90_000;
/// How far after the base a timestamp may lie.
pub const MAX_TICKS_AFTER: i64 = 600 * 90_000;

/// One access unit on the comparison timeline (90 kHz ticks relative to the source's first DTS).
#[derive(Debug, Clone)]
pub struct Au<'a> {
    pub pts: i64,
    pub dts: i64,
    pub key: bool,
    pub data: &'a [u8],
}

/// Ticks of `t` relative to `base`, across the 33-bit wrap.
pub fn rel_ticks(t: u64, base: u64) -> i64 {
    let d = t.wrapping_sub(base) & ts::TS_MASK;
    if d > ts::TS_MASK / 2 {
        d as i64 - (ts::TS_MASK as i64 + 1)
    } else {
        d as i64
    }
}

/// A demuxed stream's access units on the timeline of `base`; `Err` if a timestamp is out of range.
pub fn access_units(dm: &ts::Demuxed, base: u64) -> Result<Vec<Au<'_>>, String> {
    dm.video
        .iter()
        .enumerate()
        .map(|(n, a)| {
            let (pts, dts) = (rel_ticks(a.pts, base), rel_ticks(a.dts, base));
            for (what, t) in [("PTS", pts), ("DTS", dts)] {
                if !(-MAX_TICKS_BEFORE..=MAX_TICKS_AFTER).contains(&t) {
                    return Err(format!(
                        "access unit {n}: {what} is {:.3} s from the source's first DTS (allowed: {} s before to {} s after)",
                        t as f64 / 90_000.0,
                        MAX_TICKS_BEFORE / 90_000,
                        MAX_TICKS_AFTER / 90_000
                    ));
                }
            }
            Ok(Au {
                pts,
                dts,
                key: a.key,
                data: &a.data,
            })
        })
        .collect()
}

fn ticks_to_pipe(t: i64) -> u64 {
    (PIPE_OFFSET_NS as i128 + i128::from(t) * 100_000 / 9).max(0) as u64
}

fn pipe_to_ticks(ns: u64) -> i64 {
    let r = i128::from(ns) - PIPE_OFFSET_NS as i128;
    let t = (r * 9).div_euclid(100_000);
    // round to nearest
    let rem = (r * 9).rem_euclid(100_000);
    (t + i128::from(rem >= 50_000)) as i64
}

/// One decoded frame, I420, tightly packed planes.
#[derive(Debug, Clone, Default)]
pub struct Frame {
    /// PTS in ticks on the comparison timeline.
    pub pts: i64,
    pub width: u32,
    pub height: u32,
    /// Pixel aspect ratio from the caps.
    pub par: (i32, i32),
    /// The colorimetry (e.g. "bt709"): the caps' or GStreamer's default for the size.
    pub colorimetry: Option<String>,
    pub y: Plane,
    pub u: Plane,
    pub v: Plane,
}

impl Frame {
    pub fn planes(&self) -> [&Plane; 3] {
        [&self.y, &self.u, &self.v]
    }
}

/// A running decode pipeline, read one frame at a time. Always set to NULL on drop.
pub struct FrameStream {
    pipeline: gst::Pipeline,
    sink: gst_app::AppSink,
    bus: gst::Bus,
    deadline: Instant,
    timeout: Duration,
}

fn gst_err(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

impl FrameStream {
    /// Build and start a pipeline decoding `aus` (at `fps`), optionally scaled to `scale` (w, h) keeping the
    /// colorimetry `keep` (so that the scaler never converts the colour matrix, as in the engine).
    pub fn start(
        aus: &[Au<'_>],
        fps: (u32, u32),
        scale: Option<(u32, u32)>,
        keep: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, String> {
        gst::init().map_err(|e| gst_err("GStreamer init", e))?;
        let layout = Layout::default();
        let mut caps = gst::Caps::builder("video/x-raw").field("format", "I420");
        if let Some((w, h)) = scale {
            caps = caps.field("width", w as i32).field("height", h as i32);
        }
        if let Some(c) = keep {
            caps = caps.field("colorimetry", c);
        }
        let caps = caps.build();
        let scaler = if scale.is_some() {
            format!(
                "videoscale method={} chroma-resampler={} envelope={} add-borders=false ! ",
                layout.scaler, layout.chroma_resampler, layout.envelope
            )
        } else {
            String::new()
        };
        let desc = format!(
            "appsrc name=src format=time is-live=false max-bytes=0 ! h264parse ! avdec_h264 output-corrupt=false \
             ! videoconvert ! {scaler}capsfilter name=format ! appsink name=sink sync=false async=false max-buffers=3 drop=false"
        );
        let pipeline = gst::parse::launch(&desc)
            .map_err(|e| gst_err("pipeline", e))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| "not a pipeline".to_string())?;
        let appsrc = pipeline
            .by_name("src")
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            .ok_or("no appsrc")?;
        let sink = pipeline
            .by_name("sink")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or("no appsink")?;
        let bus = pipeline.bus().ok_or("no bus")?;
        pipeline
            .by_name("format")
            .ok_or("no capsfilter")?
            .set_property("caps", &caps);
        appsrc.set_caps(Some(
            &gst::Caps::builder("video/x-h264")
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .field(
                    "framerate",
                    gst::Fraction::new(fps.0.max(1) as i32, fps.1.max(1) as i32),
                )
                .build(),
        ));
        let stream = FrameStream {
            pipeline,
            sink,
            bus,
            deadline: Instant::now() + timeout,
            timeout,
        };
        stream
            .pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| gst_err("to PLAYING", e))?;
        let dur = 1_000_000_000u64 * u64::from(fps.1.max(1)) / u64::from(fps.0.max(1));
        for au in aus {
            let mut buf = gst::Buffer::from_slice(au.data.to_vec());
            if let Some(b) = buf.get_mut() {
                b.set_pts(gst::ClockTime::from_nseconds(ticks_to_pipe(au.pts)));
                b.set_dts(gst::ClockTime::from_nseconds(ticks_to_pipe(au.dts)));
                b.set_duration(gst::ClockTime::from_nseconds(dur));
                if !au.key {
                    b.set_flags(gst::BufferFlags::DELTA_UNIT);
                }
            }
            if appsrc.push_buffer(buf).is_err() {
                // the pipeline failed already: the bus says why
                return Err(stream.bus_error().unwrap_or_else(|| "push failed".into()));
            }
        }
        let _ = appsrc.end_of_stream();
        Ok(stream)
    }

    fn bus_error(&self) -> Option<String> {
        let msg = self.bus.pop_filtered(&[gst::MessageType::Error])?;
        if let gst::MessageView::Error(e) = msg.view() {
            return Some(format!(
                "element {}: {} ({})",
                msg.src().map(|s| s.name().to_string()).unwrap_or_default(),
                e.error(),
                e.debug().map(|d| d.to_string()).unwrap_or_default()
            ));
        }
        None
    }

    /// The next decoded frame, `None` at the end of the stream.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, String> {
        loop {
            if let Some(sample) = self
                .sink
                .try_pull_sample(gst::ClockTime::from_mseconds(100))
            {
                return to_frame(&sample).map(Some);
            }
            if let Some(e) = self.bus_error() {
                return Err(e);
            }
            if self.sink.is_eos() {
                return Ok(None);
            }
            if Instant::now() >= self.deadline {
                return Err(format!("decode timed out after {:?}", self.timeout));
            }
        }
    }
}

impl Drop for FrameStream {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn to_frame(sample: &gst::Sample) -> Result<Frame, String> {
    let caps = sample.caps().ok_or("sample without caps")?;
    let info = gst_video::VideoInfo::from_caps(caps).map_err(|e| gst_err("caps", e))?;
    if info.format() != gst_video::VideoFormat::I420 {
        return Err(format!("unexpected decoded format {:?}", info.format()));
    }
    let buf = sample.buffer().ok_or("sample without buffer")?;
    let pts = buf.pts().map(|t| t.nseconds()).unwrap_or(0);
    let vf = gst_video::VideoFrameRef::from_buffer_ref_readable(buf, &info)
        .map_err(|e| gst_err("map frame", e))?;
    let plane = |i: u32| -> Result<Plane, String> {
        let w = vf.comp_width(i) as usize;
        let h = vf.comp_height(i) as usize;
        let stride = usize::try_from(vf.plane_stride()[i as usize]).map_err(|_| "bad stride")?;
        let src = vf.plane_data(i).map_err(|e| gst_err("plane", e))?;
        let mut data = Vec::with_capacity(w * h);
        for r in 0..h {
            let row = src
                .get(r * stride..r * stride + w)
                .ok_or("plane shorter than its size")?;
            data.extend_from_slice(row);
        }
        Ok(Plane {
            width: w,
            height: h,
            data,
        })
    };
    let par = info.par();
    // stated or, for untagged streams, GStreamer's guess by frame size (BT.709 from 720 lines up): scaling
    // to a smaller size must not switch the matrix (the engine pins it the same way)
    let colorimetry = Some(info.colorimetry().to_string());
    Ok(Frame {
        colorimetry,
        pts: pipe_to_ticks(pts),
        width: info.width(),
        height: info.height(),
        par: (par.numer(), par.denom()),
        y: plane(0)?,
        u: plane(1)?,
        v: plane(2)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_roundtrip() {
        for t in [-450_000i64, -1, 0, 1, 3003, 90_000, 54_000_000] {
            assert_eq!(pipe_to_ticks(ticks_to_pipe(t)), t);
        }
        assert_eq!(rel_ticks(5, ts::TS_MASK), 6);
        assert_eq!(rel_ticks(ts::TS_MASK, 5), -6);
    }
}
