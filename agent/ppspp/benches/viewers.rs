//! A live stream to many viewers on the deterministic simulated network (`ppspp::sim`): what the origin
//! uploads against one copy of the stream (a relay would send one per viewer), how long a chunk takes from
//! the source's `publish` to each viewer's in-order delivery, and how much of the stream each viewer got.
//!
//! `cargo bench -p ppspp --bench viewers` (or `./x bench ppspp-sim`). Env: `VIEWERS` (10), `SECONDS` of
//! stream (5), `MBIT` (3), `LOSS` (comma-separated datagram loss rates, run one after the other; the first
//! is the baseline the others are compared with: `0,0.1`), `UPLINK_MBIT` per node (10), `MAX_PEERS` each
//! viewer opens (the segment swarm's, 8; a peer takes twice that), `SOURCE_SLOTS` (peers the source serves
//! at once; the segment swarm's, 4; 0: all), `SUPERSEED_MS` (the source's super-seeding delay), `SEEDS` of the
//! network (comma-separated, `1,2,3`: one run each, and their mean; single runs vary a lot).
//!
//! The network: 10 ms one-way delay plus up to 40 ms of jitter (reordering), the loss rate on every
//! datagram, every node's uplink capped. Viewers join over the first 2 s (one every 2 ms), before the
//! stream starts; the first 8 connect to the source, every later one to 4 viewers that joined before it
//! (what a tracker would hand out) and finds more by PEX. Swarm settings: those of a segment swarm
//! (16-chunk signed munros, HAVE refresh 500 ms, LEDBAT tolerating random loss), with a 2048-chunk discard
//! window to keep many nodes in memory.
//!
//! The cost grows with the square of the viewers: PEX meshes them (up to `max_peers` each) and every
//! viewer sends each peer a HAVE datagram per chunk it receives, so the simulation handles viewers x peers
//! datagrams per chunk (BENCHMARKS.md has the figures; a thousand viewers is out of reach until HAVEs
//! are batched).

use ppspp::sim::{SimConfig, SimNet};
use ppspp::{Event, Swarm, SwarmConfig};
use std::time::{Duration, Instant};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Outcome {
    loss: f64,
    origin_upload: f64,
    delays_ms: Vec<f64>,
    completeness_min: f64,
    completeness_avg: f64,
    skipped: u64,
    cpu_s: f64,
    datagrams: u64,
    haves_per_viewer: f64,
    /// Chunk requests the source received (one per chunk when every viewer fetched it from another).
    source_requests: u64,
    viewer_retransmissions: u64,
}

fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (fields 14 and 15 of /proc/self/stat)
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// What one run simulates, apart from the loss rate and the network's seed.
struct Setting {
    viewers: usize,
    seconds: u64,
    mbit: f64,
    uplink_mbit: f64,
    max_peers: usize,
    source_slots: usize,
    superseed_delay: Duration,
}

fn run(set: &Setting, loss: f64, seed: u64) -> Outcome {
    let &Setting {
        viewers,
        seconds,
        mbit,
        uplink_mbit,
        max_peers,
        source_slots,
        superseed_delay,
    } = set;
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let mut net = SimNet::new(
        SimConfig {
            seed,
            loss,
            delay: Duration::from_millis(10),
            jitter: Duration::from_millis(40),
            uplink: Some((uplink_mbit * 1e6 / 8.0) as u64),
            ..Default::default()
        },
        start,
    );
    let base = SwarmConfig {
        live_discard_window: 2048,
        max_peers,
        source_slots,
        superseed_delay,
        ..SwarmConfig::lossy_live()
    };
    let src = Swarm::new_live_source(
        SwarmConfig {
            seed: 1,
            ..base.clone()
        },
        [9; 32],
        start,
    );
    let id = src.swarm_id().to_vec();
    let s = net.add(src);
    let sa = net.nodes[s].addr;
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut ids: Vec<usize> = Vec::new();
    for v in 0..viewers {
        let p = Swarm::new_live_leech(
            SwarmConfig {
                seed: 1000 + v as u64,
                ..base.clone()
            },
            &id,
            start,
        )
        .unwrap();
        let k = net.add(p);
        net.nodes[k].joins_at = Duration::from_millis(2 * v as u64);
        net.nodes[k].connect_to = if v < 8 {
            vec![sa]
        } else {
            (0..4)
                .map(|_| net.nodes[ids[(next() % ids.len() as u64) as usize]].addr)
                .collect()
        };
        ids.push(k);
    }
    // the stream starts once everyone has joined
    let lead = Duration::from_millis(2 * viewers as u64 + 500);
    let step = Duration::from_millis(20);
    let per_step = (mbit * 1e6 / 8.0 * step.as_secs_f64()) as usize;
    let steps = (seconds * 1000 / 20) as usize;
    let stream_len = per_step * steps;
    let chunks = (stream_len / 1024) as u64;
    // when the chunk's last byte was handed to publish (fake time since start)
    let mut published: Vec<Duration> = Vec::with_capacity(chunks as usize + 1);
    let mut delays_ms: Vec<f64> = Vec::new();
    let mut got = vec![0u64; net.nodes.len()];
    let mut first = vec![None::<u64>; net.nodes.len()];
    let mut skipped = 0u64;
    let mut drain = |net: &mut SimNet, published: &[Duration]| {
        for &k in &ids {
            for (t, e) in net.nodes[k].events.drain(..) {
                match e {
                    Event::LiveData { chunk, .. } => {
                        first[k].get_or_insert(chunk);
                        got[k] += 1;
                        if let Some(p) = published.get(chunk as usize) {
                            delays_ms.push((t.saturating_sub(*p)).as_secs_f64() * 1e3);
                        }
                    }
                    Event::LiveSkipped { first: a, last: b } => {
                        first[k].get_or_insert(a);
                        skipped += b - a + 1;
                    }
                    _ => {}
                }
            }
        }
    };
    let data = vec![0x5au8; per_step];
    let mut sent = 0usize;
    for i in 0..steps {
        net.run(lead + step * i as u32, |_| false);
        let now = net.now;
        net.nodes[s].swarm.publish(now, &data).unwrap();
        sent += per_step;
        while (published.len() + 1) * 1024 <= sent {
            published.push(now - start);
        }
        drain(&mut net, &published);
    }
    // the last munros, and time for the last chunks to arrive (up to the playback deadline)
    let end = net.elapsed() + Duration::from_secs(11);
    while net.elapsed() < end {
        let t = net.elapsed() + Duration::from_millis(500);
        net.run(t, |_| false);
        drain(&mut net, &published);
    }
    // completeness: chunks delivered against those published from the viewer's start point, up to the
    // last complete munro
    let last_signed = (chunks / 16) * 16;
    let mut comp: Vec<f64> = Vec::new();
    for &k in &ids {
        let from = first[k].unwrap_or(last_signed);
        let want = last_signed.saturating_sub(from).max(1);
        comp.push((got[k].min(want)) as f64 / want as f64);
    }
    let up = net.nodes[s].swarm.stats().data_bytes_up as f64;
    let source = net.nodes[s].swarm.stats();
    let per_viewer_have = ids
        .iter()
        .map(|&k| net.nodes[k].swarm.stats().haves_in as f64)
        .sum::<f64>()
        / ids.len().max(1) as f64;
    Outcome {
        loss,
        origin_upload: up / (last_signed * 1024) as f64,
        delays_ms,
        completeness_min: comp.iter().cloned().fold(1.0, f64::min),
        completeness_avg: comp.iter().sum::<f64>() / comp.len().max(1) as f64,
        skipped,
        cpu_s: cpu_seconds() - cpu0,
        datagrams: net.delivered,
        haves_per_viewer: per_viewer_have,
        source_requests: source.chunks_requested_in,
        viewer_retransmissions: ids
            .iter()
            .map(|&k| net.nodes[k].swarm.stats().requests_retransmitted)
            .sum(),
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken from the command line
    let viewers: usize = env("VIEWERS", 10);
    let seconds: u64 = env("SECONDS", 5);
    let mbit: f64 = env("MBIT", 3.0);
    let uplink: f64 = env("UPLINK_MBIT", 10.0);
    let max_peers: usize = env("MAX_PEERS", SwarmConfig::lossy_live().max_peers);
    let source_slots: usize = env("SOURCE_SLOTS", SwarmConfig::lossy_live().source_slots);
    let superseed = Duration::from_millis(env(
        "SUPERSEED_MS",
        SwarmConfig::lossy_live().superseed_delay.as_millis() as u64,
    ));
    let list = |name: &str, default: &str| -> Vec<String> {
        std::env::var(name)
            .unwrap_or_else(|_| default.into())
            .split(',')
            .map(|v| v.trim().to_string())
            .collect()
    };
    let losses: Vec<f64> = list("LOSS", "0,0.1")
        .iter()
        .filter_map(|v| v.parse().ok())
        .collect();
    let seeds: Vec<u64> = list("SEEDS", "1,2,3")
        .iter()
        .filter_map(|v| v.parse().ok())
        .collect();
    let set = Setting {
        viewers,
        seconds,
        mbit,
        uplink_mbit: uplink,
        max_peers,
        source_slots,
        superseed_delay: superseed,
    };
    println!(
        "# ppspp simulated live stream: {viewers} viewers, {seconds} s at {mbit} Mbit/s, uplink {uplink} Mbit/s per node, max_peers {max_peers}, source_slots {source_slots}, super-seeding delay {superseed:?}, seeds {seeds:?}"
    );
    println!(
        "{:>6} {:>5} {:>14} {:>12} {:>10} {:>10} {:>10} {:>16} {:>8} {:>8} {:>10} {:>10} {:>9} {:>8}",
        "loss",
        "seed",
        "origin upload",
        "relay ratio",
        "delay p50",
        "delay p95",
        "delay max",
        "complete avg/min",
        "skipped",
        "CPU s",
        "datagrams",
        "HAVE/view",
        "src reqs",
        "retrans"
    );
    let mut base: Option<(f64, f64, f64)> = None;
    for loss in losses {
        let (mut up_sum, mut p95_sum) = (0.0, 0.0);
        for &seed in &seeds {
            let mut o = run(&set, loss, seed);
            let (p50, p95, max) = (
                pct(&mut o.delays_ms, 0.5),
                pct(&mut o.delays_ms, 0.95),
                pct(&mut o.delays_ms, 1.0),
            );
            up_sum += o.origin_upload;
            p95_sum += p95;
            println!(
                "{:>6.2} {:>5} {:>13.2}x {:>11.4}x {:>8.0}ms {:>8.0}ms {:>8.0}ms {:>8.4}/{:<7.4} {:>8} {:>8.1} {:>10} {:>10.0} {:>9} {:>8}",
                o.loss,
                seed,
                o.origin_upload,
                o.origin_upload / viewers as f64,
                p50,
                p95,
                max,
                o.completeness_avg,
                o.completeness_min,
                o.skipped,
                o.cpu_s,
                o.datagrams,
                o.haves_per_viewer,
                o.source_requests,
                o.viewer_retransmissions
            );
        }
        let n = seeds.len().max(1) as f64;
        let (up, p95) = (up_sum / n, p95_sum / n);
        println!(
            "{loss:>6.2}  mean origin upload {up:.2}x, delay p95 {p95:.0} ms over {} seeds",
            seeds.len()
        );
        match base {
            None => base = Some((loss, up, p95)),
            Some((l, u, d)) => println!(
                "        against loss {l:.2} in this run: origin upload {:.2}x, delay p95 {:.2}x",
                up / u,
                p95 / d
            ),
        }
    }
}
