//! The real daemon binary, end to end: systemd notify protocol (READY, watchdog, STOPPING), segment ingest
//! over HTTP through the real GStreamer engine, a bad segment that fails alone (malformed, undecodable, or one
//! that crashes the engine), the session limit, HLS and metrics over HTTP, and a clean SIGTERM shutdown; and
//! real-world input through the ingest: segments cut mid-GOP, ffmpeg's segments of 4:4:4, High 10, 33.3 fps
//! and B-frames without DTS.

use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

mod daemon_common;
use daemon_common::*;

#[test]
fn daemon_ingests_transcodes_serves_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let segs = test_segments(3);
    assert_eq!(segs.len(), 3);
    let d = Daemon::start(dir.path(), 1);

    // READY=1 only once the ingest listens; then watchdog pings at half of WATCHDOG_USEC.
    let ready = d.next_notify();
    assert!(ready.contains("READY=1"), "{ready}");
    let (status, body) = http(d.port, "GET", "/healthz", b"");
    assert_eq!(status, 200);
    let health = json(&body);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["max_sessions"], 1);
    let t = Instant::now();
    let mut pings = 0;
    while pings < 2 {
        if d.next_notify() == "WATCHDOG=1" {
            pings += 1;
        }
    }
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "watchdog pings too slow"
    );

    // Segment 0 transcodes into both renditions.
    let (status, body) = http(d.port, "PUT", "/live/cam1/0.ts", &segs[0]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let r = json(&body);
    assert_eq!(r["seq"], 0);
    let rends = r["renditions"].as_array().unwrap();
    assert_eq!(rends.len(), 2);
    assert_eq!(rends[0]["profile"], "P360p30fps16x9");
    assert_eq!(
        (rends[0]["width"].as_u64(), rends[0]["height"].as_u64()),
        (Some(640), Some(360))
    );
    assert_eq!(rends[1]["height"].as_u64(), Some(240));

    // A corrupt segment fails alone, with an error that names it; the next one goes through.
    let mut corrupt = segs[1].clone();
    let len = corrupt.len();
    corrupt.truncate(len / 3);
    for b in corrupt.iter_mut().skip(400).step_by(7) {
        *b ^= 0x5a;
    }
    let (status, body) = http(d.port, "PUT", "/live/cam1/1.ts", &corrupt);
    assert_eq!(status, 422, "{}", String::from_utf8_lossy(&body));
    let err = json(&body)["error"].as_str().unwrap().to_string();
    assert!(err.contains("segment 1"), "{err}");
    let (status, body) = http(d.port, "PUT", "/live/cam1/2.ts", &segs[2]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    // Empty body and bad names are refused without touching the stream.
    let (status, _) = http(d.port, "PUT", "/live/cam1/3.ts", b"");
    assert_eq!(status, 422);
    let (status, _) = http(d.port, "PUT", "/live/cam1/x.ts", &segs[0]);
    assert_eq!(status, 400);
    let (status, _) = http(d.port, "PUT", "/live/..%2F/0.ts", &segs[0]);
    assert_eq!(status, 400);

    // One session allowed: a second stream is turned away while the first is live.
    let (status, body) = http(d.port, "PUT", "/live/cam2/0.ts", &segs[0]);
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));

    // HLS over HTTP: the master lists both renditions; the media playlist lists 0 and 2 with a
    // discontinuity for the failed segment 1.
    let (status, body) = http(d.port, "GET", "/hls/cam1/master.m3u8", b"");
    assert_eq!(status, 200);
    let master = String::from_utf8(body).unwrap();
    assert!(master.contains("RESOLUTION=640x360"), "{master}");
    assert!(master.contains("P240p30fps16x9/index.m3u8"), "{master}");
    let (status, body) = http(d.port, "GET", "/hls/cam1/P360p30fps16x9/index.m3u8", b"");
    assert_eq!(status, 200);
    let media_pl = String::from_utf8(body).unwrap();
    assert!(
        media_pl.contains("0.ts") && media_pl.contains("2.ts"),
        "{media_pl}"
    );
    assert!(media_pl.contains("#EXT-X-DISCONTINUITY"), "{media_pl}");
    let (status, body) = http(d.port, "GET", "/hls/cam1/P360p30fps16x9/2.ts", b"");
    assert_eq!(status, 200);
    assert_eq!(body[0], 0x47, "MPEG-TS sync byte");
    let (status, _) = http(d.port, "GET", "/hls/cam1/..%2F..%2Fconfig.toml", b"");
    assert!(status == 400 || status == 404, "{status}");

    let (status, body) = http(d.port, "GET", "/metrics", b"");
    assert_eq!(status, 200);
    let m = String::from_utf8(body).unwrap();
    assert!(
        m.contains("edge_agent_segments_total{stream=\"cam1\",result=\"ok\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("edge_agent_segments_total{stream=\"cam1\",result=\"error\"} 2"),
        "{m}"
    );
    assert!(m.contains("edge_agent_active_streams 1"), "{m}");

    // Ending the stream frees the session.
    let (status, _) = http(d.port, "DELETE", "/live/cam1", b"");
    assert_eq!(status, 204);
    let (status, body) = http(d.port, "PUT", "/live/cam2/0.ts", &segs[0]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    // SIGTERM: STOPPING=1, exit 0.
    let mut d = d;
    kill(Pid::from_raw(d.child.id() as i32), Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut saw_stopping = false;
    while Instant::now() < deadline && !saw_stopping {
        if let Some(m) = d.try_notify() {
            saw_stopping |= m.contains("STOPPING=1");
        }
    }
    assert!(saw_stopping);
    let status = loop {
        if let Some(s) = d.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "daemon did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}

fn metric(port: u16, line_start: &str) -> String {
    let (status, body) = http(port, "GET", "/metrics", b"");
    assert_eq!(status, 200);
    let m = String::from_utf8(body).unwrap();
    m.lines()
        .find(|l| l.starts_with(line_start))
        .unwrap_or_else(|| panic!("no {line_start} in\n{m}"))
        .to_string()
}

/// One bad segment never ends a stream: a segment that used to panic the demuxer, one the decoder rejects,
/// and one on which the engine thread panics (fault injection) each fail alone with an error naming them, and
/// the next good segment transcodes; the engine that crashed is rebuilt and counted.
#[test]
fn bad_segments_and_a_crashed_engine_never_end_a_stream() {
    let dir = tempfile::tempdir().unwrap();
    let segs = test_segments(4);
    let d = Daemon::start_with_env(dir.path(), 1, &[("EDGE_AGENT_ENGINE_PANIC_AT", "4")]);
    assert!(d.next_notify().contains("READY=1"));
    let put = |seq: u64, data: &[u8]| {
        let (status, body) = http(d.port, "PUT", &format!("/live/s1/{seq}.ts"), data);
        let text = String::from_utf8_lossy(&body).to_string();
        (status, text)
    };
    let (status, body) = put(0, &segs[0]);
    assert_eq!(status, 200, "{body}");

    let (status, body) = put(1, &pat_without_payload_segment());
    assert_eq!(status, 422, "{body}");
    let err = json(body.as_bytes())["error"].as_str().unwrap().to_string();
    assert!(
        err.starts_with("segment 1: element ts-demux: malformed PAT"),
        "{err}"
    );

    let (status, body) = put(2, &undecodable_segment(&segs[1]));
    assert_eq!(status, 422, "{body}");
    let err = json(body.as_bytes())["error"].as_str().unwrap().to_string();
    assert!(err.starts_with("segment 2: element decoder-"), "{err}");

    let (status, body) = put(3, &segs[1]);
    assert_eq!(status, 200, "{body}");
    // both failures were recovered in place: no engine had to be rebuilt
    assert_eq!(
        metric(d.port, "edge_agent_engine_rebuilds_total"),
        "edge_agent_engine_rebuilds_total 0"
    );

    let (status, body) = put(4, &segs[2]);
    assert_eq!(status, 422, "{body}");
    let err = json(body.as_bytes())["error"].as_str().unwrap().to_string();
    assert!(
        err.starts_with("segment 4: element media-engine: internal error: panicked"),
        "{err}"
    );
    let (status, body) = put(5, &segs[3]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json(body.as_bytes())["renditions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    assert_eq!(
        metric(d.port, "edge_agent_engine_rebuilds_total"),
        "edge_agent_engine_rebuilds_total 1"
    );
    assert_eq!(
        metric(
            d.port,
            "edge_agent_segments_total{stream=\"s1\",result=\"ok\"}"
        ),
        "edge_agent_segments_total{stream=\"s1\",result=\"ok\"} 3"
    );
    assert_eq!(
        metric(
            d.port,
            "edge_agent_segments_total{stream=\"s1\",result=\"error\"}"
        ),
        "edge_agent_segments_total{stream=\"s1\",result=\"error\"} 3"
    );
    let (status, body) = http(d.port, "GET", "/hls/s1/P360p30fps16x9/index.m3u8", b"");
    assert_eq!(status, 200);
    let pl = String::from_utf8(body).unwrap();
    let listed: Vec<&str> = pl.lines().filter(|l| l.ends_with(".ts")).collect();
    assert_eq!(listed, ["0.ts", "3.ts", "5.ts"], "{pl}");
}

#[test]
fn bad_config_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[media]\nladder = [\"P360p30fps16x9\"]\nmax_sesions = 2\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_edge-agent"))
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max_sesions"), "{err}");
}

#[test]
fn kill_9_mid_segment_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let segs = test_segments(4);
    let d = Daemon::start(dir.path(), 1);
    assert!(d.next_notify().contains("READY=1"));
    for (seq, seg) in segs.iter().enumerate().take(2) {
        let (status, body) = http(d.port, "PUT", &format!("/live/cam/{seq}.ts"), seg);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    // Segment 2 is in flight when the daemon is killed; the broadcaster gets no answer for it.
    let port = d.port;
    let seg2 = segs[2].clone();
    let inflight = std::thread::spawn(move || try_http(port, "PUT", "/live/cam/2.ts", &seg2));
    std::thread::sleep(Duration::from_millis(30));
    let mut d = d;
    d.child.kill().unwrap(); // SIGKILL
    d.child.wait().unwrap();
    let first_answer = inflight.join().unwrap().ok().map(|(s, _)| s);
    drop(d);

    // Restarted on the same data dir: the playlists of the first run are extended, not replaced.
    let d = Daemon::start(dir.path(), 1);
    assert!(d.next_notify().contains("READY=1"));
    let (status, body) = http(d.port, "PUT", "/live/cam/2.ts", &segs[2]);
    match first_answer {
        // Segment 2 made it before the kill: the retry is recognized and changes nothing.
        Some(200) => assert_eq!(status, 409, "{}", String::from_utf8_lossy(&body)),
        _ => assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body)),
    }
    let (status, body) = http(d.port, "PUT", "/live/cam/3.ts", &segs[3]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (status, body) = http(d.port, "GET", "/hls/cam/P360p30fps16x9/index.m3u8", b"");
    assert_eq!(status, 200);
    let pl = String::from_utf8(body).unwrap();
    let listed: Vec<&str> = pl.lines().filter(|l| l.ends_with(".ts")).collect();
    assert_eq!(listed, ["0.ts", "1.ts", "2.ts", "3.ts"], "{pl}");
    assert!(!pl.contains("DISCONTINUITY"), "{pl}");
    for f in listed {
        let (status, body) = http(d.port, "GET", &format!("/hls/cam/P360p30fps16x9/{f}"), b"");
        assert_eq!((status, body.first()), (200, Some(&0x47)), "{f}");
    }
}

fn listed(port: u16, stream: &str, profile: &str) -> (String, Vec<String>) {
    let (status, body) = http(
        port,
        "GET",
        &format!("/hls/{stream}/{profile}/index.m3u8"),
        b"",
    );
    assert_eq!(status, 200);
    let pl = String::from_utf8(body).unwrap();
    let files = pl
        .lines()
        .filter(|l| l.ends_with(".ts"))
        .map(str::to_string)
        .collect();
    (pl, files)
}

/// A broadcaster that ends a stream (DELETE) or restarts and counts from 0 again gets a new session in the
/// same playlists (a discontinuity, new file numbers), not 409s; a retry is still a retry; the daemon's own
/// restart (SIGTERM) does not end the session.
#[test]
fn a_stream_started_again_gets_a_new_session() {
    let dir = tempfile::tempdir().unwrap();
    let segs = test_segments(2);
    let d = Daemon::start(dir.path(), 1);
    assert!(d.next_notify().contains("READY=1"));
    let put = |port: u16, seq: u64, data: &[u8]| {
        let (status, body) = http(port, "PUT", &format!("/live/s/{seq}.ts"), data);
        let text = String::from_utf8_lossy(&body).to_string();
        assert!(status == 200 || status == 409, "{status} {text}");
        (
            status,
            if status == 200 {
                json(&body)["renditions"][0]["uri"]
                    .as_str()
                    .unwrap()
                    .to_string()
            } else {
                text
            },
        )
    };
    assert_eq!(
        put(d.port, 0, &segs[0]),
        (200, "P360p30fps16x9/0.ts".into())
    );
    assert_eq!(
        put(d.port, 0, &segs[0]).0,
        409,
        "a retry of 0 right after 0"
    );
    assert_eq!(
        put(d.port, 1, &segs[1]),
        (200, "P360p30fps16x9/1.ts".into())
    );
    let (status, _) = http(d.port, "DELETE", "/live/s", b"");
    assert_eq!(status, 204);
    let (pl, _) = listed(d.port, "s", "P240p30fps16x9");
    assert!(pl.ends_with("#EXT-X-ENDLIST\n"), "{pl}");
    // started again after DELETE: a new session, numbered after the earlier files
    assert_eq!(
        put(d.port, 0, &segs[0]),
        (200, "P360p30fps16x9/2.ts".into())
    );
    assert_eq!(
        put(d.port, 1, &segs[1]),
        (200, "P360p30fps16x9/3.ts".into())
    );
    assert_eq!(
        put(d.port, 1, &segs[1]).0,
        409,
        "a retry of the last segment"
    );
    // the broadcaster restarts without ending the stream: 0 again is a new session too
    assert_eq!(
        put(d.port, 0, &segs[0]),
        (200, "P360p30fps16x9/4.ts".into())
    );

    // the daemon restarts: the session goes on where it was, without a discontinuity
    let mut d = d;
    kill(Pid::from_raw(d.child.id() as i32), Signal::SIGTERM).unwrap();
    assert!(d.child.wait().unwrap().success());
    drop(d);
    let d = Daemon::start(dir.path(), 1);
    assert!(d.next_notify().contains("READY=1"));
    let (pl, _) = listed(d.port, "s", "P360p30fps16x9");
    assert!(
        !pl.contains("ENDLIST"),
        "a daemon restart does not end the stream: {pl}"
    );
    assert_eq!(
        put(d.port, 1, &segs[1]),
        (200, "P360p30fps16x9/5.ts".into())
    );
    for profile in ["P360p30fps16x9", "P240p30fps16x9"] {
        let (pl, files) = listed(d.port, "s", profile);
        assert_eq!(
            files,
            ["0.ts", "1.ts", "2.ts", "3.ts", "4.ts", "5.ts"],
            "{pl}"
        );
        assert!(
            pl.contains("1.ts\n#EXT-X-DISCONTINUITY\n#EXTINF")
                && pl.contains("3.ts\n#EXT-X-DISCONTINUITY\n#EXTINF")
                && pl.matches("#EXT-X-DISCONTINUITY\n").count() == 2,
            "{pl}"
        );
        assert!(!pl.contains("ENDLIST"), "{pl}");
    }
}

/// A live stream cut mid-GOP (segments cut every 30 frames in decode order, one keyframe in 90 frames) loses
/// no frame through the daemon: segments without a keyframe decode from the previous segment's pictures, the
/// reports and `/metrics` count no dropped frame, and a stream joined mid-GOP counts what it could not decode.
#[test]
fn segments_cut_mid_gop_lose_no_frame_through_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let one_gop = media::sources::TestSource {
        width: 640,
        height: 360,
        fps: 30,
        duration: 3.0,
        audio: true,
        segment_secs: 3.0,
        bitrate_kbps: 2000,
        ..Default::default()
    }
    .segments()
    .expect("test source");
    assert_eq!(one_gop.len(), 1);
    let dm = media::ts::demux(&one_gop[0]).unwrap();
    assert_eq!(dm.video.len(), 90);
    assert_eq!(dm.video.iter().filter(|a| a.key).count(), 1);
    let mut mux = media::ts::TsMuxer::new();
    let pieces: Vec<Vec<u8>> = dm
        .video
        .chunks(30)
        .map(|c| {
            let frames: Vec<media::ts::EncodedFrame> = c.iter().map(Into::into).collect();
            mux.mux_segment(&frames, &[], None)
        })
        .collect();
    let d = Daemon::start(dir.path(), 2);
    assert!(d.next_notify().contains("READY=1"));
    for (seq, p) in pieces.iter().enumerate() {
        let (status, body) = http(d.port, "PUT", &format!("/live/cut/{seq}.ts"), p);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let r = json(&body);
        assert_eq!(
            r["dropped"],
            serde_json::json!({"before_keyframe": 0, "undecodable": 0, "duplicate_timestamp": 0}),
            "{r}"
        );
        for rend in r["renditions"].as_array().unwrap() {
            assert_eq!(rend["frames"], 30, "segment {seq}: {rend}");
        }
    }
    // joined at the keyframe's GOP's second piece: nothing decodable, a clear error; no stream state to lean on
    let (status, body) = http(d.port, "PUT", "/live/joined/0.ts", &pieces[1]);
    assert_ne!(status, 200);
    let msg = String::from_utf8_lossy(&body);
    assert!(msg.contains("no random access point"), "{msg}");
    assert_eq!(
        metric(
            d.port,
            "edge_agent_frames_dropped_total{stream=\"cut\",reason=\"undecodable\"}"
        ),
        "edge_agent_frames_dropped_total{stream=\"cut\",reason=\"undecodable\"} 0"
    );
    kill(Pid::from_raw(d.child.id() as i32), Signal::SIGTERM).unwrap();
}

/// Real-world traits through the daemon's ingest (`PUT /live/...`), as ffmpeg's own HLS muxer cuts them:
/// 4:4:4, High 10, 33.3 fps, and B-frames whose DTS a muxer dropped. Every segment is answered with every
/// frame (none dropped), the renditions the daemon serves are 8-bit 4:2:0 of one size, evenly paced at the
/// profile's 30 fps, and its master playlist states what it wrote (ffprobe reads the served segments).
#[test]
fn real_world_traits_through_the_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), 4);
    assert!(d.next_notify().contains("READY=1"));
    let traits: [(&str, &[&str]); 4] = [
        ("yuv444", &["-pix_fmt", "yuv444p"]),
        ("high10", &["-pix_fmt", "yuv420p10le"]),
        ("fps33", &["-vf", "fps=100/3"]),
        ("bframes", &["-bf", "3"]),
    ];
    for (name, extra) in traits {
        let src = dir.path().join(name);
        std::fs::create_dir_all(&src).unwrap();
        let mut args: Vec<String> = [
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=640x360:r=30",
            "-f",
            "lavfi",
            "-i",
            "sine=f=440:r=48000",
            "-t",
            "4",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(
            [
                "-c:v",
                "libx264",
                "-force_key_frames",
                "expr:gte(t,n_forced*2)",
                "-c:a",
                "aac",
                "-f",
                "hls",
                "-hls_time",
                "2",
                "-hls_list_size",
                "0",
                "-hls_segment_filename",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        args.push(src.join("s%d.ts").display().to_string());
        args.push(src.join("list.m3u8").display().to_string());
        let st = Command::new("ffmpeg").args(&args).status().unwrap();
        assert!(st.success(), "ffmpeg for {name}");
        let mut n = 0;
        while let Ok(mut seg) = std::fs::read(src.join(format!("s{n}.ts"))) {
            if name == "bframes" {
                // what a muxer that drops DTS writes: PTS only
                let dm = media::ts::demux(&seg).unwrap();
                let frames: Vec<media::ts::EncodedFrame> = dm
                    .video
                    .iter()
                    .map(|a| media::ts::EncodedFrame {
                        dts: a.pts,
                        ..a.into()
                    })
                    .collect();
                let at = dm
                    .audio_stream_type
                    .map(|t| (t, dm.audio_descriptors.as_slice()));
                seg = media::ts::TsMuxer::new().mux_segment(&frames, &dm.audio, at);
            }
            let (status, body) = http(d.port, "PUT", &format!("/live/{name}/{n}.ts"), &seg);
            assert_eq!(
                status,
                200,
                "{name} {n}: {}",
                String::from_utf8_lossy(&body)
            );
            let r = json(&body);
            assert_eq!(r["dropped"]["undecodable"], 0, "{name} {n}: {r}");
            assert_eq!(r["dropped"]["before_keyframe"], 0, "{name} {n}: {r}");
            n += 1;
        }
        assert!(n >= 2, "{name}: ffmpeg's segments");
        let (status, body) = http(d.port, "GET", &format!("/hls/{name}/master.m3u8"), b"");
        assert_eq!(status, 200);
        let master = String::from_utf8(body).unwrap();
        assert!(master.contains("RESOLUTION=640x360"), "{name}: {master}");
        assert!(master.contains("mp4a.40.2"), "{name}: {master}");
        assert!(master.contains("FRAME-RATE=30.000"), "{name}: {master}");
        for k in 0..n {
            let (status, body) = http(
                d.port,
                "GET",
                &format!("/hls/{name}/P360p30fps16x9/{k}.ts"),
                b"",
            );
            assert_eq!(status, 200);
            let f = src.join(format!("out{k}.ts"));
            std::fs::write(&f, body).unwrap();
            let out = Command::new("ffprobe")
                .args([
                    "-v",
                    "error",
                    "-select_streams",
                    "v:0",
                    "-show_entries",
                    "stream=pix_fmt,width,height:frame=pts_time",
                    "-of",
                    "csv=p=0",
                ])
                .arg(&f)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains("yuv420p,640,360") || text.contains("640,360,yuv420p"),
                "{name} {k}: {text}"
            );
            let pts: Vec<f64> = text
                .lines()
                .filter_map(|l| l.trim_end_matches(',').parse().ok())
                .collect();
            if k + 1 < n {
                assert!(
                    (59..=61).contains(&pts.len()),
                    "{name} {k}: {} frames",
                    pts.len()
                );
            }
            assert!(
                pts.windows(2)
                    .all(|w| ((w[1] - w[0]) - 1.0 / 30.0).abs() < 0.001),
                "{name} {k}: not evenly spaced at 30 fps: {pts:?}"
            );
        }
    }
    kill(Pid::from_raw(d.child.id() as i32), Signal::SIGTERM).unwrap();
}

/// `edge-agent hw --calibrate` measures how many streams of the ladder the box carries (the real pipeline on
/// the chosen encoder, 1, 2, … streams at once until the slowest loses its headroom), caches it per agent
/// version, board, encoder and ladder, shows the cached figure without measuring again, and the daemon takes
/// it as its session limit when `max_sessions = 0`.
#[test]
fn the_calibrated_capacity_is_cached_and_becomes_the_session_limit() {
    let dir = tempfile::tempdir().unwrap();
    // the table's limit first: 2 cores, 2 renditions
    let d = Daemon::start(dir.path(), 0);
    assert!(d.next_notify().contains("READY=1"));
    let (_, body) = http(d.port, "GET", "/healthz", b"");
    let table = json(&body)["max_sessions"].as_u64().unwrap();
    drop(d);

    let hw = |extra: &[&str]| -> serde_json::Value {
        let out = Command::new(env!("CARGO_BIN_EXE_edge-agent"))
            .args(["hw", "--json", "--config"])
            .arg(dir.path().join("config.toml"))
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let t0 = Instant::now();
    let first = hw(&["--calibrate"]);
    let measured = t0.elapsed();
    let cal = &first["calibration"]["calibration"];
    eprintln!("calibrated in {measured:?}: {cal}");
    let streams = cal["streams"].as_u64().unwrap();
    let trials = cal["trials"].as_array().unwrap();
    assert!(streams >= 1 && !trials.is_empty());
    let headroom = cal["input"]["headroom"].as_f64().unwrap();
    // the streams it carries kept the headroom all together; one more did not, or the trials hit the ceiling
    if cal["below_realtime"] == false {
        assert!(
            trials[streams as usize - 1]["slowest_realtime"]
                .as_f64()
                .unwrap()
                >= headroom
        );
    }
    if let Some(next) = trials.get(streams as usize) {
        assert!(next["slowest_realtime"].as_f64().unwrap() < headroom);
    }
    let cache = dir.path().join("data/hw/capacity.json");
    assert!(cache.exists());

    // cached: shown again without measuring
    let t0 = Instant::now();
    let again = hw(&["--calibrate"]);
    assert!(t0.elapsed() < measured, "measured again");
    assert_eq!(again["calibration"], first["calibration"]);
    assert_eq!(
        hw(&[])["calibration"],
        first["calibration"],
        "plain `hw` shows it too"
    );

    // the daemon's session limit is the cached figure (made distinct from the table's here, to see it is
    // the figure that counts)
    let mut c: serde_json::Value = serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
    let figure = table + 5;
    c["calibration"]["streams"] = figure.into();
    std::fs::write(&cache, serde_json::to_vec(&c).unwrap()).unwrap();
    let d = Daemon::start(dir.path(), 0);
    assert!(d.next_notify().contains("READY=1"));
    let (_, body) = http(d.port, "GET", "/healthz", b"");
    assert_eq!(json(&body)["max_sessions"].as_u64(), Some(figure));
    drop(d);
    // another segment mode is another calibration: the table again
    let d = Daemon::start_with(dir.path(), 0, "segment_mode = \"restart\"", &[]);
    assert!(d.next_notify().contains("READY=1"));
    let (_, body) = http(d.port, "GET", "/healthz", b"");
    assert_eq!(json(&body)["max_sessions"].as_u64(), Some(table));
}
