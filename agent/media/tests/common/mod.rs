#![allow(dead_code)]
//! Helpers shared by the integration tests: decode outputs back with a real GStreamer pipeline.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

/// What a decode-back run saw.
#[derive(Debug, Default, Clone)]
pub struct Decoded {
    pub frames: usize,
    pub width: i32,
    pub height: i32,
    pub audio_buffers: usize,
}

/// Decode a TS file completely (video through avdec_h264, audio through avdec_aac), with a watchdog.
pub fn decode_ts(path: &Path, with_audio: bool) -> Decoded {
    gst::init().unwrap();
    let mut desc = format!(
        "filesrc location={} ! tsdemux name=d  d. ! queue ! h264parse ! avdec_h264 ! appsink name=v sync=false async=false",
        path.display()
    );
    if with_audio {
        desc.push_str(" d. ! queue ! aacparse ! avdec_aac ! appsink name=a sync=false async=false");
    }
    let pipeline = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let out = Arc::new(Mutex::new(Decoded::default()));
    for name in ["v", "a"] {
        let Some(sink) = pipeline.by_name(name) else {
            continue;
        };
        let sink = sink.downcast::<gst_app::AppSink>().unwrap();
        let out = out.clone();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let mut o = out.lock().unwrap();
                    if name == "v" {
                        let st = sample.caps().unwrap().structure(0).unwrap();
                        o.width = st.get("width").unwrap();
                        o.height = st.get("height").unwrap();
                        o.frames += 1;
                    } else {
                        o.audio_buffers += 1;
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }
    media::sources::run_to_eos(&pipeline, Duration::from_secs(60)).unwrap();
    out.lock().unwrap().clone()
}

/// ffprobe a file or playlist, returning its JSON (streams and format).
pub fn ffprobe(path: &Path) -> serde_json::Value {
    ffprobe_with(&["-show_streams", "-show_format"], path)
}

/// ffprobe a file with `args` (what to show), returning its JSON.
pub fn ffprobe_with(args: &[&str], path: &Path) -> serde_json::Value {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-of", "json"])
        .args(args)
        .arg(path)
        .output()
        .expect("ffprobe runs (apt package ffmpeg)");
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A rendition segment that stands alone: `frames` frames whose first is an IDR with SPS and PPS, starting at
/// the input's first PTS (within a tick), the input's audio PES unchanged, and decoding back (written to
/// `path`) to `frames` pictures of `size`. Returns the demuxed rendition and what its decode saw.
pub fn assert_segment_stands_alone(
    what: &str,
    data: &[u8],
    input: &media::ts::Demuxed,
    frames: usize,
    size: (u32, u32),
    path: &Path,
) -> (media::ts::Demuxed, Decoded) {
    use media::ts;
    let o = ts::demux(data).unwrap();
    assert_eq!(o.video.len(), frames, "{what}: frames");
    assert!(o.video[0].key, "{what} starts with a keyframe");
    let nal_types: Vec<u8> = ts::nal_units(&o.video[0].data)
        .filter_map(|n| n.first().map(|b| b & 0x1f))
        .collect();
    assert!(
        nal_types.contains(&7) && nal_types.contains(&8) && nal_types.contains(&5),
        "{what}: IDR with SPS and PPS first, NAL types {nal_types:?}"
    );
    let in_first = input.video.iter().map(|a| a.pts).min().unwrap();
    let out_first = o.video.iter().map(|a| a.pts).min().unwrap();
    assert!(
        in_first.abs_diff(out_first) <= 1,
        "{what}: PTS {in_first} vs {out_first}"
    );
    assert_eq!(o.audio, input.audio, "{what}: audio carried unchanged");
    std::fs::write(path, data).unwrap();
    let d = decode_ts(path, true);
    assert_eq!(
        (d.frames, d.width as u32, d.height as u32),
        (frames, size.0, size.1),
        "{what}: decoded back"
    );
    (o, d)
}
