//! Bad segments, unusual shapes and rates, and the file sources, on real pipelines.

mod common;

use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use media::engine::{SegmentError, SegmentMode};
use media::sources::{self, TestSource};
use media::ts::{self, TsError};
use media::{EngineConfig, Profile, Transcoder};

fn small(fps: u32, w: u32, h: u32, audio: bool, secs: f64) -> Vec<Vec<u8>> {
    TestSource {
        width: w,
        height: h,
        fps,
        duration: secs,
        audio,
        bitrate_kbps: 1500,
        ..Default::default()
    }
    .segments()
    .unwrap()
}

/// A real MPEG-2 video TS made by ffmpeg (not H.264).
fn mpeg2_segment() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m2v.ts");
    let st = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25",
            "-frames:v",
            "10",
        ])
        .args(["-c:v", "mpeg2video", "-f", "mpegts"])
        .arg(&f)
        .status()
        .expect("ffmpeg runs (apt package ffmpeg)");
    assert!(st.success());
    std::fs::read(&f).unwrap()
}

/// A real audio-only TS (AAC) made by GStreamer's mpegtsmux.
fn audio_only_segment() -> Vec<u8> {
    gst::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("aac.ts");
    let p = gst::parse::launch(&format!(
        "audiotestsrc num-buffers=50 ! audioconvert ! avenc_aac ! aacparse ! mpegtsmux ! filesink location={}",
        f.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    sources::run_to_eos(&p, Duration::from_secs(30)).unwrap();
    std::fs::read(&f).unwrap()
}

#[test]
fn bad_segments_error_clearly_and_the_stream_goes_on() {
    bad_segments_error_clearly_and_the_stream_goes_on_in(SegmentMode::Restart);
}

#[test]
fn bad_segments_error_clearly_and_the_stream_goes_on_continuous() {
    bad_segments_error_clearly_and_the_stream_goes_on_in(SegmentMode::Continuous);
}

fn bad_segments_error_clearly_and_the_stream_goes_on_in(mode: SegmentMode) {
    let good = small(30, 320, 240, true, 4.0);
    assert_eq!(good.len(), 2);
    let profiles = vec![
        Profile::new("P240p30fps4x3", 320, 240, 30, 600).unwrap(),
        Profile::new("small", 160, 120, 30, 200).unwrap(),
    ];
    let mut t = Transcoder::new(EngineConfig {
        mode,
        ..EngineConfig::new(profiles)
    })
    .unwrap();
    t.push_segment(0, &good[0]).unwrap();

    let g = &good[1];
    // truncated in the middle of a packet
    let truncated = &g[..g.len() / 2 + 7];
    // corrupt: garbage over the middle, sync bytes included
    let mut corrupt = g.clone();
    let mid = corrupt.len() / 2;
    for (i, b) in corrupt[mid..mid + 2000].iter_mut().enumerate() {
        *b = (i * 37 % 251) as u8;
    }
    // corrupt payload with intact TS framing: the decoder has to notice
    let mut payload_corrupt = g.clone();
    let mut packets = 0;
    for pkt in payload_corrupt.chunks_mut(188).skip(3) {
        let pid = (u16::from(pkt[1] & 0x1f) << 8) | u16::from(pkt[2]);
        if pid == 0x100 && pkt[1] & 0x40 == 0 && pkt[3] & 0x30 == 0x10 {
            for b in &mut pkt[4..] {
                *b ^= 0x5a;
            }
            packets += 1;
            if packets > 40 {
                break;
            }
        }
    }
    // zero frames: PAT/PMT only
    let dm = ts::demux(g).unwrap();
    let zero = ts::TsMuxer::new().mux_segment(&[], &[], None);
    assert!(!dm.audio.is_empty());
    let audio_only = audio_only_segment();
    let mpeg2 = mpeg2_segment();

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("truncated", truncated.to_vec()),
        ("corrupt", corrupt),
        ("zero-frames", zero),
        ("audio-only", audio_only),
        ("not-h264", mpeg2),
    ];
    let mut seq = 1;
    for (what, data) in cases {
        let err = match t.push_segment(seq, &data) {
            Ok(_) => panic!("{what}: transcoded without an error"),
            Err(e) => e,
        };
        let msg = err.to_string();
        eprintln!("{what}: {msg}");
        assert_eq!(err.seq(), seq);
        assert!(
            msg.starts_with(&format!("segment {seq}: element ")),
            "{what}: {msg}"
        );
        match what {
            "empty" => assert!(matches!(
                err,
                SegmentError::Demux {
                    source: TsError::Empty,
                    ..
                }
            )),
            "truncated" => assert!(matches!(
                err,
                SegmentError::Demux {
                    source: TsError::Truncated { .. },
                    ..
                }
            )),
            "corrupt" => assert!(matches!(
                err,
                SegmentError::Demux {
                    source: TsError::LostSync { .. } | TsError::Continuity { .. },
                    ..
                }
            )),
            "zero-frames" => assert!(matches!(
                err,
                SegmentError::Demux {
                    source: TsError::NoFrames,
                    ..
                }
            )),
            "audio-only" => assert!(matches!(
                err,
                SegmentError::Demux {
                    source: TsError::NoVideo(_),
                    ..
                }
            )),
            "not-h264" => assert!(matches!(
                err,
                SegmentError::Demux {
                    source: TsError::NotH264(0x02),
                    ..
                }
            )),
            _ => unreachable!(),
        }
        // the stream goes on: the next good segment transcodes completely
        seq += 1;
        let out = t
            .push_segment(seq, g)
            .unwrap_or_else(|e| panic!("after {what}: {e}"));
        assert_eq!(out.seq, seq);
        assert!(out.renditions.iter().all(|r| r.frames == 60));
        seq += 1;
    }
    // Damage inside the H.264 slice data with intact TS and NAL framing is concealed by the decoder (as by
    // any player): the segment still yields every frame of every rendition, and they decode.
    let out = match t.push_segment(seq, &payload_corrupt) {
        Ok(o) => o,
        Err(e) => panic!("payload-corrupt: {e}"),
    };
    assert!(packets > 40);
    let dir = tempfile::tempdir().unwrap();
    for r in &out.renditions {
        assert_eq!(r.frames, 60);
        let f = dir.path().join(format!("{}.ts", r.profile));
        std::fs::write(&f, &r.data).unwrap();
        assert_eq!(common::decode_ts(&f, true).frames, 60);
    }
}

#[test]
fn portrait_odd_and_no_audio() {
    portrait_odd_and_no_audio_in(SegmentMode::Restart);
}

#[test]
fn portrait_odd_and_no_audio_continuous() {
    portrait_odd_and_no_audio_in(SegmentMode::Continuous);
}

fn portrait_odd_and_no_audio_in(mode: SegmentMode) {
    // portrait phone video without audio, into landscape boxes
    let segs = small(30, 360, 640, false, 2.0);
    let profiles = vec![
        Profile::new("P240p30fps16x9", 426, 240, 30, 600).unwrap(),
        Profile::new("P720p30fps16x9", 1280, 720, 30, 4000).unwrap(),
    ];
    let mut t = Transcoder::new(EngineConfig {
        mode,
        ..EngineConfig::new(profiles)
    })
    .unwrap();
    let out = t.push_segment(7, &segs[0]).unwrap();
    assert!(!out.stats.has_audio);
    let sizes: Vec<_> = out.renditions.iter().map(|r| (r.width, r.height)).collect();
    // 360x640 fit into 426x240 -> 135x240 -> even 136x240; into 1280x720 -> not upscaled: 360x640
    assert_eq!(sizes, [(136, 240), (360, 640)]);
    let dir = tempfile::tempdir().unwrap();
    for r in &out.renditions {
        assert!(!r.codecs.contains("mp4a"));
        let o = ts::demux(&r.data).unwrap();
        assert!(
            o.audio.is_empty() && o.audio_stream_type.is_none(),
            "no audio stream in the output"
        );
        let f = dir.path().join(format!("{}.ts", r.profile));
        std::fs::write(&f, &r.data).unwrap();
        let d = common::decode_ts(&f, false);
        assert_eq!(
            (d.width as u32, d.height as u32, d.frames),
            (r.width, r.height, 60)
        );
    }

    // unusual size, not a multiple of 16 (350x262, aspect 1.336) into a 4:3 box: even, aspect kept
    let segs = small(30, 350, 262, false, 1.0);
    let mut t = Transcoder::new(EngineConfig {
        mode,
        ..EngineConfig::new(vec![
            Profile::new("P240p30fps4x3", 320, 240, 30, 600).unwrap(),
        ])
    })
    .unwrap();
    let out = t.push_segment(0, &segs[0]).unwrap();
    let r = &out.renditions[0];
    assert_eq!((r.width % 2, r.height % 2), (0, 0));
    assert!(r.width <= 320 && r.height <= 240);
    let ar_in = 350.0 / 262.0;
    let ar_out = f64::from(r.width) / f64::from(r.height);
    assert!((ar_in - ar_out).abs() < 0.02, "{ar_in} vs {ar_out}");
}

#[test]
fn sixty_fps_into_thirty_drops_evenly() {
    sixty_fps_into_thirty_drops_evenly_in(SegmentMode::Restart);
}

#[test]
fn sixty_fps_into_thirty_drops_evenly_continuous() {
    sixty_fps_into_thirty_drops_evenly_in(SegmentMode::Continuous);
}

fn sixty_fps_into_thirty_drops_evenly_in(mode: SegmentMode) {
    let segs = small(60, 640, 360, true, 4.0);
    assert_eq!(segs.len(), 2);
    let profiles = vec![
        Profile::new("P360p30fps16x9", 640, 360, 30, 1200).unwrap(),
        Profile::new("P360p60", 640, 360, 60, 2000).unwrap(),
        // a 120 fps profile must not raise the rate above the input's 60
        Profile::new("P240p120", 426, 240, 120, 800).unwrap(),
    ];
    let mut t = Transcoder::new(EngineConfig {
        mode,
        ..EngineConfig::new(profiles)
    })
    .unwrap();
    for (i, s) in segs.iter().enumerate() {
        let out = t.push_segment(i as u64, s).unwrap();
        assert_eq!(out.stats.input_fps, (60, 1));
        assert_eq!(out.stats.input_frames, 120);
        let [r30, r60, r120] = &out.renditions[..] else {
            panic!()
        };
        assert_eq!((r30.fps, r30.frames), ((30, 1), 60));
        assert_eq!((r60.fps, r60.frames), ((60, 1), 120));
        assert_eq!((r120.fps, r120.frames), ((60, 1), 120));
        for r in &out.renditions {
            assert!(
                (r.duration - out.stats.input_duration).abs() <= 1.0 / 60.0,
                "{} {}",
                r.duration,
                out.stats.input_duration
            );
        }
        let mut pts: Vec<u64> = ts::demux(&r30.data)
            .unwrap()
            .video
            .iter()
            .map(|a| a.pts)
            .collect();
        pts.sort_unstable();
        assert!(
            pts.windows(2).all(|w| w[1] - w[0] == 3000),
            "evenly spaced at 1/30 s"
        );
    }
}

#[test]
fn file_sources_mp4_and_ts() {
    gst::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mp4 = dir.path().join("in.mp4");
    let tsf = dir.path().join("in.ts");
    for (file, mux) in [(&mp4, "mp4mux name=m"), (&tsf, "mpegtsmux name=m")] {
        let p = gst::parse::launch(&format!(
            "videotestsrc num-buffers=150 ! video/x-raw,width=320,height=180,framerate=30/1 ! x264enc key-int-max=30 speed-preset=ultrafast ! h264parse ! queue ! {mux} ! filesink location={} \
             audiotestsrc num-buffers=240 samplesperbuffer=1024 ! audio/x-raw,rate=48000 ! audioconvert ! avenc_aac ! aacparse ! queue ! m.",
            file.display()
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        sources::run_to_eos(&p, Duration::from_secs(60)).unwrap();
    }
    let mut t = Transcoder::new(EngineConfig::new(vec![
        Profile::new("P144p30fps16x9", 256, 144, 30, 400).unwrap(),
    ]))
    .unwrap();
    for f in [&mp4, &tsf] {
        let segs = sources::split_file(f, 2.0).unwrap();
        // 5 s with a keyframe every second: cuts at 2 s and 4 s
        assert_eq!(segs.len(), 3, "{}", f.display());
        let mut frames = 0;
        for (i, s) in segs.iter().enumerate() {
            let d = ts::demux(s).unwrap();
            assert!(d.video[0].key);
            assert!(!d.audio.is_empty(), "audio kept from {}", f.display());
            frames += d.video.len();
            let out = t.push_segment(i as u64, s).unwrap();
            assert_eq!(out.renditions[0].frames, d.video.len());
        }
        assert_eq!(frames, 150);
    }
    // a file without H.264 and a missing file are clear errors
    let err = sources::split_file(&dir.path().join("missing.ts"), 2.0).unwrap_err();
    assert!(err.to_string().contains("missing.ts"), "{err}");
    let m2v = dir.path().join("m2v.ts");
    std::fs::write(&m2v, mpeg2_segment()).unwrap();
    let err = sources::split_file(&m2v, 2.0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the input's video is MPEG video: only H.264 is transcoded"
    );
}

#[test]
fn bad_config_is_a_typed_build_error() {
    let mut cfg = EngineConfig::new(vec![
        Profile::new("P144p30fps16x9", 256, 144, 30, 400).unwrap(),
    ]);
    cfg.layout.scaler = "no-such-method".into();
    let err = Transcoder::new(cfg).err().unwrap();
    assert!(
        err.to_string().contains("scale0") && err.to_string().contains("method"),
        "{err}"
    );
    let err = Transcoder::new(EngineConfig::new(vec![])).err().unwrap();
    assert!(matches!(err, media::BuildError::NoProfiles));
}

#[test]
fn every_topology_transcodes() {
    use media::engine::Topology;
    let segs = small(30, 640, 360, true, 2.0);
    for topology in [Topology::Direct, Topology::FanLargest, Topology::Chain] {
        let mut cfg = EngineConfig::new(vec![
            Profile::new("P360p30fps16x9", 640, 360, 30, 1200).unwrap(),
            Profile::new("P240p30fps16x9", 426, 240, 30, 600).unwrap(),
            Profile::new("P144p30fps16x9", 256, 144, 30, 400).unwrap(),
        ]);
        cfg.layout.topology = topology;
        cfg.layout.scaler = "lanczos".into();
        cfg.layout.envelope = 3.0;
        let mut t = Transcoder::new(cfg).unwrap();
        let out = t
            .push_segment(0, &segs[0])
            .unwrap_or_else(|e| panic!("{topology:?}: {e}"));
        let shapes: Vec<_> = out
            .renditions
            .iter()
            .map(|r| (r.width, r.height, r.frames))
            .collect();
        assert_eq!(
            shapes,
            [(640, 360, 60), (426, 240, 60), (256, 144, 60)],
            "{topology:?}"
        );
    }
}

#[test]
fn pool_returns_segments_in_order() {
    let segs = small(30, 320, 240, true, 6.0);
    assert_eq!(segs.len(), 3);
    let cfg = EngineConfig::new(vec![
        Profile::new("P240p30fps4x3", 320, 240, 30, 600).unwrap(),
    ]);
    let mut pool = media::TranscoderPool::new(cfg, 2).unwrap();
    assert_eq!(pool.size(), 2);
    pool.submit(10, segs[0].clone());
    pool.submit(11, vec![]); // a bad segment in the middle
    pool.submit(12, segs[1].clone());
    pool.submit(13, segs[2].clone());
    assert_eq!(pool.in_flight(), 4);
    let mut got = Vec::new();
    while let Some(r) = pool.recv() {
        got.push(
            r.map(|o| (o.seq, o.renditions[0].frames))
                .map_err(|e| e.seq()),
        );
    }
    assert_eq!(got, [Ok((10, 60)), Err(11), Ok((12, 60)), Ok((13, 60))]);
}

/// A segment whose clock jumps by 2^32 ticks (13 h) after its first frame: the engine's timestamp
/// arithmetic must not overflow; the jump is closed (the frame follows on), reported, and the stream goes on.
#[test]
fn a_timestamp_jump_is_closed_and_the_stream_goes_on() {
    let segs = small(30, 320, 240, false, 4.0);
    let mut t = Transcoder::new(EngineConfig::new(vec![
        Profile::new("P240p30fps4x3", 320, 240, 30, 600).unwrap(),
    ]))
    .unwrap();
    let dm = ts::demux(&segs[0]).unwrap();
    let mut aus = dm.video[..2].to_vec();
    aus[1].pts = (aus[1].pts + (1 << 32)) & ts::TS_MASK;
    aus[1].dts = (aus[1].dts + (1 << 32)) & ts::TS_MASK;
    let frames: Vec<ts::EncodedFrame> = aus.iter().map(Into::into).collect();
    let jump = ts::TsMuxer::new().mux_segment(&frames, &[], None);
    let out = t.push_segment(0, &jump).expect("a jump is repaired");
    assert_eq!(out.renditions[0].frames, 2);
    assert_eq!(out.stats.repairs.len(), 1, "{:?}", out.stats.repairs);
    assert!(
        out.stats.repairs[0].contains("jumped"),
        "{:?}",
        out.stats.repairs
    );
    assert!(
        out.renditions[0].duration < 0.5,
        "{}",
        out.renditions[0].duration
    );
    let out = t.push_segment(1, &segs[1]).unwrap();
    assert_eq!(out.renditions[0].frames, 60);
}

#[test]
fn a_crashed_engine_is_rebuilt_and_the_stream_goes_on() {
    let segs = small(30, 320, 240, false, 6.0);
    let cfg = EngineConfig::new(vec![
        Profile::new("P240p30fps4x3", 320, 240, 30, 600).unwrap(),
    ]);
    let mut pool = media::TranscoderPool::new(cfg, 1).unwrap();
    pool.panic_at(1);
    let mut got = Vec::new();
    for (seq, seg) in segs.iter().enumerate() {
        pool.submit(seq as u64, seg.clone());
        got.push(
            pool.recv()
                .unwrap()
                .map(|o| (o.seq, o.renditions[0].frames))
                .map_err(|e| e.to_string()),
        );
    }
    assert_eq!(got[0], Ok((0, 60)));
    let err = got[1].as_ref().unwrap_err();
    assert!(
        err.starts_with("segment 1: element media-engine: internal error: panicked"),
        "{err}"
    );
    assert_eq!(got[2], Ok((2, 60)), "the rebuilt engine transcodes");
    assert_eq!(pool.rebuilds(), 1);
}

#[test]
fn watchdog_fires_and_the_engine_recovers() {
    let segs = small(30, 320, 240, false, 4.0);
    let mut t = Transcoder::new(EngineConfig::new(vec![
        Profile::new("P240p30fps4x3", 320, 240, 30, 600).unwrap(),
    ]))
    .unwrap();
    t.set_watchdog_ms(1);
    let err = t
        .push_segment(0, &segs[0])
        .expect_err("1 ms is too short for any segment");
    assert!(matches!(err, SegmentError::Timeout { seq: 0, .. }), "{err}");
    assert!(
        err.to_string().contains("watchdog") && err.to_string().contains("decoder:"),
        "{err}"
    );
    // the pipeline was cycled through NULL; with a sane watchdog the next segment goes through
    t.set_watchdog_ms(30_000);
    let out = t.push_segment(1, &segs[1]).unwrap();
    assert_eq!(out.renditions[0].frames, 60);
}

/// Transcode segment 1 with an engine that saw segment 0 first, and with two fresh engines; return the
/// H.264 access units of the three (x264 threads=1, ABR, the given option string).
fn independence_run(x264_options: &str) -> [Vec<ts::VideoAu>; 3] {
    let segs = small(30, 320, 240, true, 4.0);
    let cfg = || {
        let mut c = EngineConfig::new(vec![
            Profile::new("P240p30fps4x3", 320, 240, 30, 600).unwrap(),
        ]);
        c.backend = media::Backend::Software(media::X264Options {
            threads: 1,
            vbv: false,
            option_string: x264_options.into(),
            ..Default::default()
        });
        c
    };
    let video = |o: &media::SegmentOutput| ts::demux(&o.renditions[0].data).unwrap().video;
    let mut a = Transcoder::new(cfg()).unwrap();
    a.push_segment(0, &segs[0]).unwrap();
    let from_a = a.push_segment(1, &segs[1]).unwrap();
    let from_b = Transcoder::new(cfg())
        .unwrap()
        .push_segment(1, &segs[1])
        .unwrap();
    let from_c = Transcoder::new(cfg())
        .unwrap()
        .push_segment(1, &segs[1])
        .unwrap();
    [video(&from_a), video(&from_b), video(&from_c)]
}

fn assert_same(what: &str, x: &[ts::VideoAu], y: &[ts::VideoAu]) {
    assert_eq!(x.len(), y.len(), "{what}");
    for (i, (p, q)) in x.iter().zip(y).enumerate() {
        let at = p.data.iter().zip(&q.data).position(|(u, v)| u != v);
        assert!(
            p == q,
            "{what}: access unit {i} differs ({} / {} bytes, first difference at byte {at:?})",
            p.data.len(),
            q.data.len()
        );
    }
}

/// Deterministic mode for verification (x264 threads=1, no B-frames, no lookahead): a segment's output
/// depends only on that segment, whatever the engine transcoded before (what a verifier re-transcoding
/// one segment with a fresh engine needs).
#[test]
fn segments_are_independent_and_deterministic_without_lookahead() {
    for _ in 0..3 {
        let [a, b, c] = independence_run("scenecut=0:bframes=0:rc-lookahead=0");
        assert_same("two fresh engines", &b, &c);
        assert_same("engine with history vs fresh engine", &a, &b);
    }
}

/// The same with the default x264 settings (B-frames, lookahead 10). KNOWN FAILURE, hence ignored: two
/// fresh engines always agree, but the engine with history differs in most runs from the first P-frame on
/// (same IDR, frame count and timestamps), even when the pipeline is cycled through NULL in between; with
/// `bframes=0:rc-lookahead=0` it does not (test above). Cause not found yet. Run with
/// `cargo test -p media --test inputs -- --ignored segments_are_independent`.
#[test]
#[ignore = "known difference with x264 lookahead, see the comment"]
fn segments_are_independent_and_deterministic_with_lookahead() {
    let [a, b, c] = independence_run("scenecut=0");
    assert_same("two fresh engines", &b, &c);
    assert_same("engine with history vs fresh engine", &a, &b);
}

/// In the bit-exact verification mode a segment's renditions depend on that segment alone, also when the
/// stream was cut mid-GOP: an engine that transcoded the previous segment does not decode from it, so a
/// verifier's fresh engine makes the same bytes (the pictures before the first keyframe are dropped and
/// counted by both).
#[test]
fn bit_exact_segments_cut_mid_gop_depend_on_themselves_alone() {
    let one_gop = sources::TestSource {
        width: 320,
        height: 240,
        fps: 30,
        duration: 3.0,
        audio: false,
        segment_secs: 3.0,
        bitrate_kbps: 600,
        ..Default::default()
    }
    .segments()
    .unwrap();
    let dm = ts::demux(&one_gop[0]).unwrap();
    // pieces of 40 access units: the second has no keyframe, the third starts mid-GOP too
    let mut mux = ts::TsMuxer::new();
    let pieces: Vec<Vec<u8>> = dm
        .video
        .chunks(40)
        .map(|c| {
            let frames: Vec<ts::EncodedFrame> = c.iter().map(Into::into).collect();
            mux.mux_segment(&frames, &[], None)
        })
        .collect();
    let profiles = vec![Profile::new("P240p30fps4x3", 320, 240, 30, 600).unwrap()];
    let mut with_history = Transcoder::new(EngineConfig::bit_exact(profiles.clone())).unwrap();
    with_history.push_segment(0, &pieces[0]).unwrap();
    let err = with_history.push_segment(1, &pieces[1]).unwrap_err();
    assert!(
        matches!(err, SegmentError::NoKeyframe { seq: 1, .. }),
        "{err}"
    );
    let mut fresh = Transcoder::new(EngineConfig::bit_exact(profiles.clone())).unwrap();
    assert!(fresh.push_segment(1, &pieces[1]).is_err());
    // the live mode decodes the same segment from the one before
    let mut live = Transcoder::new(EngineConfig::new(profiles)).unwrap();
    live.push_segment(0, &pieces[0]).unwrap();
    let out = live.push_segment(1, &pieces[1]).unwrap();
    assert_eq!(out.renditions[0].frames, 40);
    assert_eq!(out.stats.preroll_frames, 40);
}

/// Continuous mode with an encoder that holds frames back (x264 told to look ahead and use B-frames after
/// the zero-latency tuning): each segment's frames are not all out when its input ends, so the engine drains
/// the encoders once they sit on them (which restarts them) and the segment still comes out whole, IDR first.
#[test]
fn a_continuous_encoder_that_holds_frames_back_is_drained_and_the_stream_goes_on() {
    let segs = small(30, 320, 240, true, 4.0);
    let mut cfg = EngineConfig::continuous(vec![
        Profile::new("P240p30fps4x3", 320, 240, 30, 600).unwrap(),
    ]);
    cfg.backend = media::Backend::Software(media::X264Options {
        option_string: "scenecut=0:rc-lookahead=20:bframes=2:sliced-threads=0".into(),
        ..Default::default()
    });
    let mut t = Transcoder::new(cfg).unwrap();
    for (i, s) in segs.iter().enumerate() {
        let started = std::time::Instant::now();
        let out = t.push_segment(i as u64, s).unwrap();
        let r = &out.renditions[0];
        assert_eq!(r.frames, 60, "segment {i}");
        let o = ts::demux(&r.data).unwrap();
        assert!(o.video[0].key, "segment {i} starts with a keyframe");
        // the drain waited for the encoder to sit on its frames first
        assert!(
            started.elapsed() >= Duration::from_millis(1500),
            "segment {i}: {:?}",
            started.elapsed()
        );
    }
}
