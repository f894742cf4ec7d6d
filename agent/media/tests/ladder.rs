//! Hardware-in-the-loop tests of the engine on this machine's encoder (software here): real GStreamer
//! pipelines, generated content, outputs decoded back, playlists read by ffprobe and played by hlsdemux.
//!
//! Content: videotestsrc "smpte" bars scrolling 3 px/frame (detail + motion, so x264's rate control has
//! something to spend its bits on) encoded to H.264 at 3 Mbit/s, plus a 440 Hz AAC stereo tone.

mod common;

use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use media::engine::SegmentMode;
use media::hls::{HlsMode, HlsWriter};
use media::sources::TestSource;
use media::ts;
use media::{EngineConfig, Profile, ProfileSet, Transcoder};

fn ladder() -> Vec<Profile> {
    let set = ProfileSet::default();
    // 640x360 input: P360p30fps16x9 (same size), P240p30fps16x9, P144p30fps16x9, and a 720p box that must
    // not upscale
    set.parse_options("93c717e7c0a6517afca40bf949d54ea9")
        .unwrap()
}

#[test]
fn ladder_with_audio_to_hls() {
    ladder_to_hls(SegmentMode::Restart);
}

/// The continuous mode: the encoders run on across segments, and every output segment still starts with an
/// IDR carrying SPS and PPS, holds its input segment's frames and audio, decodes alone, and the playlists
/// play; the encoders were never restarted (x264 writes its version SEI once per encoder, in its first
/// frame: only segment 0 carries it).
#[test]
fn ladder_with_audio_to_hls_continuous() {
    ladder_to_hls(SegmentMode::Continuous);
}

fn ladder_to_hls(mode: SegmentMode) {
    let src = TestSource {
        width: 640,
        height: 360,
        fps: 30,
        duration: 8.0,
        audio: true,
        bitrate_kbps: 3000,
        ..Default::default()
    };
    let es = src.elementary().unwrap();
    let segs = media::sources::segment(&es, 2.0).unwrap();
    assert_eq!(segs.len(), 4);
    let profiles = ladder();
    let mut t = Transcoder::new(EngineConfig {
        mode,
        ..EngineConfig::new(profiles.clone())
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut hls = HlsWriter::new(dir.path().join("hls"), HlsMode::Vod, 2.0).unwrap();
    let mut video_bytes = vec![0usize; profiles.len()];
    let mut seconds = vec![0f64; profiles.len()];
    for (i, seg) in segs.iter().enumerate() {
        let seq = 100 + i as u64;
        let input = ts::demux(seg).unwrap();
        let out = t.push_segment(seq, seg).unwrap();
        assert_eq!(out.seq, seq);
        assert_eq!(out.renditions.len(), profiles.len());
        assert_eq!(out.stats.input_frames, 60);
        assert!(out.stats.has_audio);
        let frame = 1.0 / 30.0;
        for (k, (r, p)) in out.renditions.iter().zip(&profiles).enumerate() {
            assert_eq!(r.profile, p.name);
            // never larger than the input, fits the box
            let want = match p.name.as_str() {
                "P360p30fps16x9" | "P720p30fps16x9" => (640, 360),
                "P240p30fps16x9" => (426, 240),
                "P144p30fps16x9" => (256, 144),
                other => panic!("{other}"),
            };
            assert_eq!((r.width, r.height), want, "{}", p.name);
            assert_eq!(r.fps, (30, 1));
            assert_eq!(r.frames, 60);
            assert!(
                (r.duration - out.stats.input_duration).abs() <= frame,
                "{} vs {}",
                r.duration,
                out.stats.input_duration
            );
            assert!(
                r.codecs.starts_with("avc1.") && r.codecs.ends_with(",mp4a.40.2"),
                "{}",
                r.codecs
            );
            // the output is a self-contained segment: keyframe first, same first PTS, audio PES unchanged,
            // decodes back at the stated size with its audio
            let (o, d) = common::assert_segment_stands_alone(
                &format!("rendition {} segment {seq}", p.name),
                &r.data,
                &input,
                60,
                (r.width, r.height),
                &dir.path().join(format!("{}-{seq}.ts", p.name)),
            );
            let restarted = o.video[0].data.windows(10).any(|w| w == b"x264 - cor");
            if mode == SegmentMode::Continuous {
                assert_eq!(
                    restarted,
                    i == 0,
                    "rendition {} segment {seq}: encoder restarted",
                    p.name
                );
            } else {
                assert!(restarted, "restart mode: a fresh encoder every segment");
            }
            assert!(d.audio_buffers > 50, "audio decodes: {}", d.audio_buffers);
            video_bytes[k] += r.video_bytes;
            seconds[k] += r.duration;
        }
        hls.write_segment(&out).unwrap();
    }
    hls.finish().unwrap();

    // bitrate within 15 % of the profile (video elementary stream over the whole 8 s); the 720p box renders
    // at 640x360, where 4 Mbit/s is more than this content needs, so it is only bounded above
    for (k, p) in profiles.iter().enumerate() {
        let kbps = video_bytes[k] as f64 * 8.0 / seconds[k] / 1000.0;
        let ratio = kbps / f64::from(p.bitrate_kbps);
        eprintln!("{}: {kbps:.0} kbit/s = {ratio:.3} of the profile", p.name);
        if p.name == "P720p30fps16x9" {
            assert!(ratio <= 1.15, "{}: {kbps:.0} kbit/s", p.name);
        } else {
            assert!(
                (0.85..=1.15).contains(&ratio),
                "{}: {kbps:.0} kbit/s vs {}",
                p.name,
                p.bitrate_kbps
            );
        }
    }

    // playlists: master lists every rendition with real sizes; ffprobe reads it; hlsdemux plays it
    let master = std::fs::read_to_string(hls.master_path()).unwrap();
    eprintln!("{master}");
    assert_eq!(master.matches("#EXT-X-STREAM-INF").count(), 4);
    assert!(master.contains("RESOLUTION=426x240") && master.contains("RESOLUTION=640x360"));
    assert!(master.contains("FRAME-RATE=30.000") && master.contains("mp4a.40.2"));
    let media = std::fs::read_to_string(dir.path().join("hls/P240p30fps16x9/index.m3u8")).unwrap();
    assert!(media.contains("#EXT-X-PLAYLIST-TYPE:VOD") && media.contains("#EXT-X-ENDLIST"));
    assert_eq!(media.matches("#EXTINF:2.000000,").count(), 4);
    let probe = common::ffprobe(&hls.master_path());
    let streams = probe["streams"].as_array().unwrap();
    let sizes: Vec<(i64, i64)> = streams
        .iter()
        .filter(|s| s["codec_type"] == "video")
        .map(|s| (s["width"].as_i64().unwrap(), s["height"].as_i64().unwrap()))
        .collect();
    assert!(
        sizes.contains(&(426, 240)) && sizes.contains(&(256, 144)),
        "{sizes:?}"
    );
    let dur: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((dur - 8.0).abs() < 0.2, "duration {dur}");

    gst::init().unwrap();
    let uri = format!("file://{}", hls.master_path().display());
    let play = gst::ElementFactory::make("playbin")
        .property("uri", &uri)
        .build()
        .unwrap();
    play.set_property(
        "video-sink",
        gst::ElementFactory::make("fakesink").build().unwrap(),
    );
    play.set_property(
        "audio-sink",
        gst::ElementFactory::make("fakesink").build().unwrap(),
    );
    let pipeline = play.downcast::<gst::Pipeline>().unwrap();
    media::sources::run_to_eos(&pipeline, Duration::from_secs(60))
        .expect("hlsdemux plays the playlist to the end");
}
