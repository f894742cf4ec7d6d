//! A hostile stream: 1,000 bad segments (random bytes, broken TS framing, the crafted PAT segment, garbage
//! slices that only the decoder can refuse, bit-flipped and truncated copies of good segments) interleaved
//! with good ones, into one live stream of the real daemon.  Every good segment is transcoded and listed,
//! every segment that cannot be decoded gets a 4xx naming it, nothing gets a 5xx, and the daemon's resident
//! memory stays flat: it may not grow by more than 16 MiB over the second half of the bad segments (32 KiB a
//! segment; the encoders and the allocator grow to a plateau over the first few hundred transcodes, hostile
//! input or not, so the first half and a warm-up of good segments are not counted).
//!
//! `HOSTILE_SEGMENTS` (default 1000) and `HOSTILE_SEED` (default: from the clock, printed) set the run.

mod daemon_common;
use daemon_common::*;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// A bad segment of one of the kinds; `true` when it must be refused (nothing in it can be decoded),
/// `false` when a decoder may conceal the damage and transcode it.
fn bad_segment(rng: &mut Rng, good: &[Vec<u8>]) -> (Vec<u8>, bool, &'static str) {
    let g = &good[rng.below(good.len())];
    match rng.below(10) {
        0 | 1 => {
            let n = rng.below(4096);
            (
                (0..n).map(|_| rng.next() as u8).collect(),
                true,
                "random bytes",
            )
        }
        2 => {
            // TS packets with a sync byte and random everything else
            let n = 1 + rng.below(40);
            let seg = (0..n)
                .flat_map(|_| {
                    let mut p: Vec<u8> = (0..188).map(|_| rng.next() as u8).collect();
                    p[0] = 0x47;
                    p
                })
                .collect();
            (seg, true, "random TS packets")
        }
        3 => (pat_without_payload_segment(), true, "PAT without payload"),
        4 => {
            // a good segment with its packet framing broken
            let mut s = g.clone();
            for b in s.iter_mut().step_by(188).skip(rng.below(8)) {
                *b = rng.next() as u8 | 1;
            }
            (s, true, "broken sync")
        }
        5 => (undecodable_segment(g), true, "garbage slices"),
        6 => (Vec::new(), true, "empty"),
        7 => {
            // a good segment cut inside its first packets
            let cut = rng.below(188 * 3);
            (g[..cut.min(g.len())].to_vec(), true, "cut short")
        }
        8 => {
            let mut s = g.clone();
            for _ in 0..1 + rng.below(50) {
                let i = rng.below(s.len());
                s[i] ^= 1 << rng.below(8);
            }
            (s, false, "bit flips")
        }
        _ => {
            let cut = 188 * 3 + rng.below(g.len());
            (g[..cut.min(g.len())].to_vec(), false, "truncated")
        }
    }
}

#[test]
fn a_thousand_bad_segments_never_break_a_stream() {
    let total: usize = env_or("HOSTILE_SEGMENTS", 1000);
    let (mut rng, seed) = Rng::from_env("HOSTILE_SEED");
    eprintln!("hostile stream: {total} bad segments, HOSTILE_SEED={seed}");
    let good_every = 20;
    let warm_up = 200;
    let src = media::sources::TestSource {
        width: 320,
        height: 180,
        fps: 30,
        duration: (warm_up + total / good_every + 1) as f64,
        audio: true,
        segment_secs: 1.0,
        bitrate_kbps: 500,
        ..Default::default()
    };
    let good = src.segments().expect("test source");
    let bad_pool = &good[..warm_up];
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start_with(dir.path(), 1, "playlist_window = 100000", &[]);
    assert!(d.next_notify().contains("READY=1"));
    let pid = d.child.id();

    let (mut seq, mut bad_sent, mut good_sent) = (0u64, 0usize, 0usize);
    while good_sent < warm_up {
        let (status, body) = http(
            d.port,
            "PUT",
            &format!("/live/h/{seq}.ts"),
            &good[good_sent],
        );
        assert_eq!(
            status,
            200,
            "good segment {seq}: {}",
            String::from_utf8_lossy(&body)
        );
        good_sent += 1;
        seq += 1;
    }
    let rss_warm = rss_kib(pid);
    let mut rss_half = rss_warm;
    let (mut refused, mut concealed) = (0usize, 0usize);
    let mut good_seqs = Vec::new();
    let started = std::time::Instant::now();
    while bad_sent < total {
        if bad_sent % good_every == 0 && good_sent < good.len() {
            let (status, body) = http(
                d.port,
                "PUT",
                &format!("/live/h/{seq}.ts"),
                &good[good_sent],
            );
            assert_eq!(
                status,
                200,
                "good segment {seq}: {}",
                String::from_utf8_lossy(&body)
            );
            good_seqs.push(seq);
            good_sent += 1;
            seq += 1;
        }
        let (data, must_refuse, kind) = bad_segment(&mut rng, bad_pool);
        let (status, body) = http(d.port, "PUT", &format!("/live/h/{seq}.ts"), &data);
        let text = String::from_utf8_lossy(&body);
        match status {
            200 if !must_refuse => concealed += 1,
            400..=499 => {
                let err = json(&body)["error"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                assert!(
                    err.contains(&format!("segment {seq}")),
                    "{kind} segment {seq}: the error does not name it: {err}"
                );
                refused += 1;
            }
            _ => panic!("{kind} segment {seq}: {status} {text}"),
        }
        bad_sent += 1;
        seq += 1;
        if bad_sent % 250 == 0 {
            eprintln!(
                "hostile stream: {bad_sent} bad, RSS {} MiB",
                rss_kib(pid) / 1024
            );
        }
        if bad_sent == total / 2 {
            rss_half = rss_kib(pid);
        }
    }
    let rss_end = rss_kib(pid);
    let (status, body) = http(d.port, "GET", "/hls/h/P360p30fps16x9/index.m3u8", b"");
    assert_eq!(status, 200);
    let pl = String::from_utf8(body).unwrap();
    let listed: Vec<u64> = pl
        .lines()
        .filter_map(|l| l.strip_suffix(".ts"))
        .map(|n| n.parse().unwrap())
        .collect();
    for s in &good_seqs {
        assert!(listed.contains(s), "good segment {s} not listed");
    }
    eprintln!(
        "hostile stream: {bad_sent} bad ({refused} refused, {concealed} concealed and transcoded), {good_sent} good, all transcoded; RSS {} MiB after the warm-up, {} MiB half-way, {} MiB at the end; {:.0} s",
        rss_warm / 1024,
        rss_half / 1024,
        rss_end / 1024,
        started.elapsed().as_secs_f64()
    );
    assert!(
        rss_end <= rss_half + 16 * 1024,
        "resident memory grew from {rss_half} KiB to {rss_end} KiB over the second half"
    );
}
