//! Crash consistency of the daemon's output: a broadcaster streams while the daemon is killed with SIGKILL
//! at random moments (idle, mid-transcode, mid-commit, mid-answer) and started again on the same data dir.
//! After every restart and at the end: no acknowledged segment is missing, none is listed twice, every
//! rendition lists the same segments, no stray file is left, and the playlists parse with ffprobe.
//!
//! `CRASH_ROUNDS` (default 20) and `CRASH_SEED` (default: from the clock, printed) set the run.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod daemon_common;
use daemon_common::*;

const PROFILES: [&str; 2] = ["P360p30fps16x9", "P240p30fps16x9"];

#[derive(Default)]
struct Broadcast {
    /// Next sequence number to send (the previous ones are acknowledged).
    next: u64,
    /// Acknowledged segments: 200, or 409 for a retry of a segment committed before a crash.
    acked: BTreeSet<u64>,
}

/// Sends segments one after the other, each until it is acknowledged, until the daemon goes away (true) or
/// the segments run out (false).
fn broadcast(port: u16, segs: Arc<Vec<Vec<u8>>>, state: Arc<Mutex<Broadcast>>) -> bool {
    loop {
        let seq = state.lock().unwrap().next;
        let Some(data) = segs.get(seq as usize) else {
            return false;
        };
        match try_http(port, "PUT", &format!("/live/s/{seq}.ts"), data) {
            Ok((200, _)) | Ok((409, _)) => {}
            Ok((status, body)) => {
                panic!("segment {seq}: {status} {}", String::from_utf8_lossy(&body))
            }
            Err(_) => return true, // killed: no answer, so not acknowledged
        }
        // the answer came; only now is the segment acknowledged
        let mut st = state.lock().unwrap();
        st.acked.insert(seq);
        st.next = seq + 1;
    }
}

/// The segment numbers a rendition's playlist lists, in order.
fn listed(hls: &Path, profile: &str) -> Vec<u64> {
    let pl = std::fs::read_to_string(hls.join(profile).join("index.m3u8")).unwrap_or_default();
    pl.lines()
        .filter_map(|l| l.strip_suffix(".ts"))
        .map(|n| n.parse().unwrap())
        .collect()
}

fn check(hls: &Path, acked: &BTreeSet<u64>, round: usize) {
    let first = listed(hls, PROFILES[0]);
    for p in &PROFILES[1..] {
        assert_eq!(listed(hls, p), first, "round {round}: renditions disagree");
    }
    let set: BTreeSet<u64> = first.iter().copied().collect();
    assert_eq!(
        set.len(),
        first.len(),
        "round {round}: a segment listed twice: {first:?}"
    );
    assert!(
        first.windows(2).all(|w| w[0] < w[1]),
        "round {round}: out of order: {first:?}"
    );
    let lost: Vec<_> = acked.difference(&set).collect();
    assert!(
        lost.is_empty(),
        "round {round}: acknowledged and lost: {lost:?}"
    );
    // at most the one segment in flight at the kill is listed without its acknowledgement (its retry gets 409)
    assert!(
        set.len() <= acked.len() + 1,
        "round {round}: listed {first:?}, acknowledged {acked:?}"
    );
    for p in PROFILES {
        let Ok(files) = std::fs::read_dir(hls.join(p)) else {
            assert!(set.is_empty(), "round {round}: {p} missing");
            continue;
        };
        for f in files {
            let name = f.unwrap().file_name().into_string().unwrap();
            let n = name.strip_suffix(".ts").and_then(|n| n.parse::<u64>().ok());
            assert!(
                name == "index.m3u8" || n.is_some_and(|n| set.contains(&n)),
                "round {round}: stray file {p}/{name}"
            );
        }
    }
}

#[test]
fn kill_9_at_random_moments_loses_no_acknowledged_segment() {
    let rounds: usize = env_or("CRASH_ROUNDS", 20);
    let (mut rng, seed) = Rng::from_env("CRASH_SEED");
    eprintln!("crash test: {rounds} rounds, CRASH_SEED={seed}");
    let src = media::sources::TestSource {
        width: 320,
        height: 180,
        fps: 30,
        // more than the daemon can take in the rounds (about 7 segments a second unloaded)
        duration: 20.0 * rounds as f64,
        audio: true,
        segment_secs: 1.0,
        bitrate_kbps: 500,
        ..Default::default()
    };
    let segs = Arc::new(src.segments().expect("test source"));
    let dir = tempfile::tempdir().unwrap();
    let hls = dir.path().join("data/hls/s");
    let state = Arc::new(Mutex::new(Broadcast::default()));
    let started = Instant::now();
    let mut mid_stream = 0;
    for round in 0..rounds {
        let d = Daemon::start_with(dir.path(), 1, "playlist_window = 1000", &[]);
        assert!(d.next_notify().contains("READY=1"));
        if round > 0 {
            let acked = state.lock().unwrap().acked.clone();
            check(&hls, &acked, round);
        }
        let b = {
            let (segs, state, port) = (segs.clone(), state.clone(), d.port);
            std::thread::spawn(move || broadcast(port, segs, state))
        };
        // a random moment within the next 1.5 s: mid-transcode, mid-commit or mid-answer
        std::thread::sleep(Duration::from_micros(rng.next() % 1_500_000));
        let mut d = d;
        d.child.kill().unwrap(); // SIGKILL
        d.child.wait().unwrap();
        if b.join().unwrap() {
            mid_stream += 1;
        } else {
            eprintln!(
                "crash test: round {round}: the segments ran out ({} acknowledged)",
                state.lock().unwrap().acked.len()
            );
        }
    }
    // a last start: the segment in flight at the last kill is resolved, then everything is checked
    let d = Daemon::start_with(dir.path(), 1, "playlist_window = 1000", &[]);
    assert!(d.next_notify().contains("READY=1"));
    let next = state.lock().unwrap().next;
    if let Some(data) = segs.get(next as usize) {
        let (status, body) = http(d.port, "PUT", &format!("/live/s/{next}.ts"), data);
        assert!(
            status == 200 || status == 409,
            "{status} {}",
            String::from_utf8_lossy(&body)
        );
        state.lock().unwrap().acked.insert(next);
    }
    drop(d);
    let st = state.lock().unwrap();
    check(&hls, &st.acked, rounds);
    assert_eq!(
        listed(&hls, PROFILES[0]).len(),
        st.acked.len(),
        "every listed segment was acknowledged once the last retry was answered"
    );
    assert!(
        st.acked.len() >= rounds / 2,
        "too few segments got through: {}",
        st.acked.len()
    );
    for p in PROFILES {
        let pl = hls.join(p).join("index.m3u8");
        let out = std::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=codec_name",
                "-of",
                "csv=p=0",
            ])
            .arg(&pl)
            .output()
            .expect("ffprobe");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && err.trim().is_empty(), "{p}: {err}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("h264"), "{p}");
        let text = std::fs::read_to_string(&pl).unwrap();
        let dur: f64 = text
            .lines()
            .filter_map(|l| l.strip_prefix("#EXTINF:"))
            .map(|v| v.trim_end_matches(',').parse::<f64>().unwrap())
            .sum();
        let n = st.acked.len() as f64;
        assert!(
            (dur - n).abs() < 0.05 * n + 0.1,
            "{p}: {dur} s listed for {n} segments of 1 s"
        );
        assert!(
            !text.contains("DISCONTINUITY"),
            "{p}: one session, no gap: {text}"
        );
    }
    assert_eq!(mid_stream, rounds, "every kill came while the stream ran");
    eprintln!(
        "crash test: {rounds} kills, {} segments acknowledged, {:.0} s",
        st.acked.len(),
        started.elapsed().as_secs_f64()
    );
}
