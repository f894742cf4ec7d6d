//! Inputs for the CLI, the tests and the benchmark: split a file (MPEG-TS or MP4 with H.264, with or
//! without AAC) into ~N-second MPEG-TS segments at keyframes, and a built-in test source
//! (videotestsrc + audiotestsrc encoded to H.264/AAC) cut the same way.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use serde::{Deserialize, Serialize};

use crate::ts::{self, AudioPes, EncodedFrame, TsMuxer};

/// Errors of the sources.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("GStreamer: {0}")]
    Gst(String),
    #[error("input {path}: {why}")]
    Input { path: String, why: String },
    #[error("element {element}: {message} ({debug})")]
    Pipeline {
        element: String,
        message: String,
        debug: String,
    },
    #[error("source timed out after {0:?}")]
    Timeout(Duration),
    #[error("no H.264 video in the input")]
    NoVideo,
    #[error("the input's video is {0}: only H.264 is transcoded")]
    UnsupportedVideo(String),
    #[error("no keyframe (IDR, recovery point or I picture) in the input's video")]
    NoKeyframe,
}

/// Built-in test source settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestSource {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Total duration in seconds.
    pub duration: f64,
    /// Carry an AAC stereo tone.
    pub audio: bool,
    /// videotestsrc properties, e.g. "pattern=smpte horizontal-speed=3" (moving bars: enough detail and
    /// motion for rate control to reach its target) or "pattern=ball".
    pub pattern: String,
    /// Bitrate of the generated H.264 in kbit/s.
    pub bitrate_kbps: u32,
    /// Target segment length in seconds (keyframes are placed exactly there).
    pub segment_secs: f64,
}

impl Default for TestSource {
    fn default() -> Self {
        TestSource {
            width: 1280,
            height: 720,
            fps: 30,
            duration: 10.0,
            audio: true,
            pattern: "pattern=smpte horizontal-speed=3".into(),
            bitrate_kbps: 6000,
            segment_secs: 2.0,
        }
    }
}

/// Video access unit and audio frame streams in 90 kHz time, before segmentation.
#[derive(Debug, Default, Clone)]
pub struct Elementary {
    pub video: Vec<ts::VideoAu>,
    /// (pts, ADTS frame bytes)
    pub audio: Vec<(u64, Vec<u8>)>,
}

/// 10 s of 90 kHz ticks added to every timestamp so B-frame DTS stay positive.
const TICK_BASE: u64 = 900_000;

/// Signed running time in ns to 90 kHz ticks (rounded to the nearest), after [`TICK_BASE`].
fn ns_ticks(ns: i64) -> u64 {
    let ticks = (i128::from(ns).unsigned_abs() * 9 + 50_000) / 100_000;
    let ticks = if ns < 0 {
        -(ticks as i64)
    } else {
        ticks as i64
    };
    (TICK_BASE as i64 + ticks).max(0) as u64
}

/// Run a pipeline whose elements named `vsink` (H.264 byte-stream/au) and optionally `asink` (ADTS AAC)
/// are appsinks, until EOS; collect the elementary streams.
fn collect(pipeline: &gst::Pipeline, timeout: Duration) -> Result<Elementary, SourceError> {
    let out = Arc::new(Mutex::new(Elementary::default()));
    for name in ["vsink", "asink"] {
        let Some(el) = pipeline.by_name(name) else {
            continue;
        };
        let sink = el
            .downcast::<gst_app::AppSink>()
            .map_err(|_| SourceError::Gst(format!("{name} is not an appsink")))?;
        attach_collector(&sink, name == "vsink", out.clone());
    }
    run_to_eos(pipeline, timeout)?;
    let o = std::mem::take(&mut *out.lock().unwrap());
    Ok(o)
}

/// Collect an appsink's buffers (running time, 90 kHz) into `out`.
fn attach_collector(sink: &gst_app::AppSink, video: bool, out: Arc<Mutex<Elementary>>) {
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buf = sample.buffer().ok_or(gst::FlowError::Error)?;
                let map = buf.map_readable().map_err(|_| gst::FlowError::Error)?;
                let (pts, dts) = crate::engine::signed_running_times(&sample, buf);
                let mut o = out.lock().unwrap();
                if video {
                    o.video.push(ts::VideoAu {
                        pts: ns_ticks(pts),
                        dts: ns_ticks(dts),
                        key: crate::h264::is_random_access(map.as_slice()),
                        data: map.as_slice().to_vec(),
                    });
                } else {
                    o.audio.push((ns_ticks(pts), map.as_slice().to_vec()));
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
}

/// Run a pipeline to EOS with a watchdog; always returns it to NULL.
pub fn run_to_eos(pipeline: &gst::Pipeline, timeout: Duration) -> Result<(), SourceError> {
    let bus = pipeline
        .bus()
        .ok_or_else(|| SourceError::Gst("no bus".into()))?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| SourceError::Gst(format!("to PLAYING: {e}")))?;
    let deadline = std::time::Instant::now() + timeout;
    let res = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break Err(SourceError::Timeout(timeout));
        }
        let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(left.as_nanos() as u64),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        ) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break Ok(()),
            gst::MessageView::Error(e) => {
                break Err(SourceError::Pipeline {
                    element: msg.src().map(|s| s.name().to_string()).unwrap_or_default(),
                    message: e.error().to_string(),
                    debug: e.debug().map(|d| d.to_string()).unwrap_or_default(),
                });
            }
            _ => {}
        }
    };
    let _ = pipeline.set_state(gst::State::Null);
    res
}

impl TestSource {
    /// Generate the elementary streams.
    pub fn elementary(&self) -> Result<Elementary, SourceError> {
        gst::init().map_err(|e| SourceError::Gst(e.to_string()))?;
        if self.pattern.contains('!')
            || self.fps == 0
            || self.width < 16
            || self.height < 16
            || self.duration <= 0.0
        {
            return Err(SourceError::Gst(format!(
                "invalid test source settings: {self:?}"
            )));
        }
        let frames = (self.duration * f64::from(self.fps)).round() as u64;
        let gop = ((self.segment_secs * f64::from(self.fps)).round() as u64).max(1);
        let mut desc = format!(
            "videotestsrc num-buffers={frames} {pat} ! video/x-raw,format=I420,width={w},height={h},framerate={f}/1 \
             ! x264enc speed-preset=veryfast bitrate={br} key-int-max={gop} option-string=scenecut=0 \
             ! h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au ! appsink name=vsink sync=false async=false",
            pat = self.pattern,
            w = self.width,
            h = self.height,
            f = self.fps,
            br = self.bitrate_kbps
        );
        if self.audio {
            // 1024 samples per buffer at 48 kHz; enough buffers to cover the video
            let abufs = (self.duration * 48_000.0 / 1024.0).ceil() as u64;
            desc.push_str(&format!(
                " audiotestsrc num-buffers={abufs} samplesperbuffer=1024 wave=sine freq=440 \
                 ! audio/x-raw,rate=48000,channels=2 ! audioconvert ! avenc_aac bitrate=128000 ! aacparse \
                 ! audio/mpeg,stream-format=adts ! appsink name=asink sync=false async=false"
            ));
        }
        let pipeline = gst::parse::launch(&desc)
            .map_err(|e| SourceError::Gst(e.to_string()))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| SourceError::Gst("not a pipeline".into()))?;
        collect(
            &pipeline,
            Duration::from_secs(120 + self.duration as u64 * 10),
        )
    }

    /// Generate the segments.
    pub fn segments(&self) -> Result<Vec<Vec<u8>>, SourceError> {
        segment(&self.elementary()?, self.segment_secs)
    }
}

/// The decoder of a non-AAC audio stream (parsebin's caps name): `None` for AAC (carried as it is),
/// `Some(Err(()))` for a codec without a decoder here. Explicit decoders, not decodebin: a decodebin added
/// from parsebin's pad-added callback never starts.
fn audio_decoder(caps: &str, mpeg1: bool) -> Option<Result<&'static str, ()>> {
    Some(match caps {
        "audio/mpeg" if !mpeg1 => return None,
        "audio/mpeg" => Ok("mpegaudioparse ! avdec_mp3"),
        "audio/x-ac3" => Ok("ac3parse ! avdec_ac3"),
        "audio/x-eac3" => Ok("ac3parse ! avdec_eac3"),
        "audio/x-opus" => Ok("opusparse ! opusdec"),
        "audio/x-raw" => Ok("identity"),
        _ => Err(()),
    })
}

/// Read an input file (MPEG-TS, MP4 or FLV; H.264 video, any audio this box decodes) into elementary
/// streams: non-AAC audio is transcoded to AAC, HEVC and other video codecs are refused by name.
pub fn read_file(path: &Path) -> Result<Elementary, SourceError> {
    gst::init().map_err(|e| SourceError::Gst(e.to_string()))?;
    if !path.is_file() {
        return Err(SourceError::Input {
            path: path.display().to_string(),
            why: "not a readable file".into(),
        });
    }
    let pipeline = gst::Pipeline::with_name("file-source");
    let mk = |f: &str| {
        gst::ElementFactory::make(f)
            .build()
            .map_err(|e| SourceError::Gst(format!("{f}: {e}")))
    };
    let src = mk("filesrc")?;
    src.set_property("location", path.to_string_lossy().to_string());
    let pb = mk("parsebin")?;
    pipeline
        .add_many([&src, &pb])
        .map_err(|e| SourceError::Gst(e.to_string()))?;
    src.link(&pb).map_err(|e| SourceError::Gst(e.to_string()))?;
    let got_video = Arc::new(Mutex::new(false));
    let other_video = Arc::new(Mutex::new(None::<String>));
    let weak = pipeline.downgrade();
    let gv = got_video.clone();
    let ov = other_video.clone();
    pb.connect_pad_added(move |_, pad| {
        let Some(pipeline) = weak.upgrade() else { return };
        let caps = pad.current_caps().or_else(|| Some(pad.query_caps(None)));
        let st = caps.as_ref().and_then(|c| c.structure(0));
        let name = st.map(|s| s.name().to_string()).unwrap_or_default();
        // MPEG audio that is not layer 1-3 (mpegversion 1) is AAC; a pad's caps may still be unfixed here
        let mpeg1 = st.and_then(|s| s.get::<i32>("mpegversion").ok()) == Some(1);
        let desc: String = if name == "video/x-h264" && pipeline.by_name("vsink").is_none() {
            *gv.lock().unwrap() = true;
            "queue ! h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au ! appsink name=vsink sync=false async=false".into()
        } else if name.starts_with("audio/") && pipeline.by_name("asink").is_none() {
            const TO_ADTS: &str = "aacparse ! audio/mpeg,stream-format=adts ! appsink name=asink sync=false async=false";
            match audio_decoder(&name, mpeg1) {
                None => format!("queue ! {TO_ADTS}"),
                // other audio is transcoded to AAC, the codec HLS players take
                Some(Ok(decode)) => {
                    tracing::info!(caps = %name, "input audio is not AAC: transcoding it to AAC");
                    format!("queue ! {decode} ! audioconvert ! audioresample ! avenc_aac bitrate=128000 ! {TO_ADTS}")
                }
                Some(Err(())) => {
                    tracing::warn!(caps = %name, "input audio in a codec this box does not decode: dropped");
                    "fakesink sync=false async=false".into()
                }
            }
        } else {
            if name.starts_with("video/") && name != "video/x-h264" {
                let what = match name.as_str() {
                    "video/x-h265" => "HEVC (H.265)".to_string(),
                    "video/mpeg" => "MPEG video".to_string(),
                    "video/x-vp8" => "VP8".to_string(),
                    "video/x-vp9" => "VP9".to_string(),
                    "video/x-av1" => "AV1".to_string(),
                    other => other.to_string(),
                };
                ov.lock().unwrap().get_or_insert(what);
            }
            "fakesink sync=false async=false".into()
        };
        let bin = match gst::parse::bin_from_description(&desc, true) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(caps = %name, "cannot build the branch for this stream: {e}");
                return;
            }
        };
        let _ = pipeline.add(&bin);
        let _ = bin.sync_state_with_parent();
        if let Some(sinkpad) = bin.static_pad("sink") {
            let _ = pad.link(&sinkpad);
        }
    });
    // appsinks appear while running: collect once they exist
    let out = Arc::new(Mutex::new(Elementary::default()));
    let out2 = out.clone();
    pipeline.connect_deep_element_added(move |_, _, el| {
        let name = el.name();
        if name != "vsink" && name != "asink" {
            return;
        }
        let Ok(sink) = el.clone().downcast::<gst_app::AppSink>() else {
            return;
        };
        attach_collector(&sink, name == "vsink", out2.clone());
    });
    run_to_eos(&pipeline, Duration::from_secs(600)).map_err(|e| SourceError::Input {
        path: path.display().to_string(),
        why: e.to_string(),
    })?;
    if !*got_video.lock().unwrap() {
        return Err(match other_video.lock().unwrap().take() {
            Some(what) => SourceError::UnsupportedVideo(what),
            None => SourceError::NoVideo,
        });
    }
    let o = std::mem::take(&mut *out.lock().unwrap());
    Ok(o)
}

/// Split a file into ~`secs`-second MPEG-TS segments at keyframes.
pub fn split_file(path: &Path, secs: f64) -> Result<Vec<Vec<u8>>, SourceError> {
    segment(&read_file(path)?, secs)
}

/// Cut elementary streams into MPEG-TS segments: a new segment starts at the first keyframe at least
/// `secs` (minus half a frame) after the current segment's start. Audio frames go to the segment whose
/// video time span contains their PTS.
pub fn segment(es: &Elementary, secs: f64) -> Result<Vec<Vec<u8>>, SourceError> {
    if es.video.is_empty() {
        return Err(SourceError::NoVideo);
    }
    // a recording that starts mid-GOP: what comes before its first keyframe cannot be decoded
    let Some(first_key) = es.video.iter().position(|a| a.key) else {
        return Err(SourceError::NoKeyframe);
    };
    if first_key > 0 {
        tracing::warn!(
            dropped = first_key,
            "the input does not start with a keyframe: dropping the pictures before its first"
        );
    }
    let trimmed;
    let es = if first_key > 0 {
        trimmed = Elementary {
            video: es.video[first_key..].to_vec(),
            audio: es.audio.clone(),
        };
        &trimmed
    } else {
        es
    };
    let target = (secs * 90_000.0) as u64;
    let mut pts_sorted: Vec<u64> = es.video.iter().map(|a| a.pts).collect();
    pts_sorted.sort_unstable();
    let frame = pts_sorted
        .windows(2)
        .map(|w| w[1] - w[0])
        .min()
        .unwrap_or(3000)
        .max(1);
    // cut points (index into decode order) at keyframes
    let mut cuts = vec![0usize];
    let mut seg_start = es.video[0].pts;
    for (i, au) in es.video.iter().enumerate().skip(1) {
        if au.key && au.pts + frame / 2 >= seg_start + target {
            cuts.push(i);
            seg_start = au.pts;
        }
    }
    cuts.push(es.video.len());
    let mut mux = TsMuxer::new();
    let mut out = Vec::new();
    let mut ai = 0;
    for (k, w) in cuts.windows(2).enumerate() {
        let aus = &es.video[w[0]..w[1]];
        let last = k + 2 == cuts.len();
        let end_pts = if last { u64::MAX } else { es.video[w[1]].pts };
        let mut audio: Vec<AudioPes> = Vec::new();
        while ai < es.audio.len() && es.audio[ai].0 < end_pts {
            audio.push(ts::audio_pes(es.audio[ai].0, &es.audio[ai].1));
            ai += 1;
        }
        let frames: Vec<EncodedFrame> = aus.iter().map(Into::into).collect();
        let at = if es.audio.is_empty() {
            None
        } else {
            Some((ts::STREAM_TYPE_AAC_ADTS, &[][..]))
        };
        out.push(mux.mux_segment(&frames, &audio, at));
    }
    Ok(out)
}
