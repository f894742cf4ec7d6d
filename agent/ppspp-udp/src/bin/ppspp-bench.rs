//! Benchmarks over real UDP on loopback (run by scripts/bench.d/ppspp.sh).
//!
//!   ppspp-bench static [SIZE_MB] [CHUNK] [MAX_DATAGRAM] [HASH]   one seeder -> one leecher, Merkle on
//!   ppspp-bench live [PEERS] [KBIT_S] [SECONDS] [CHUNK]          one origin -> N peers, live stream
//!
//! Prints one `key=value` line per run.

use anyhow::{Context, Result, bail};
use ppspp::wire::HashFunc;
use ppspp::{Event, Swarm, SwarmConfig};
use ppspp_udp::Node;
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

fn arg<T: std::str::FromStr>(a: &[String], i: usize, d: T) -> T {
    a.get(i).and_then(|s| s.parse().ok()).unwrap_or(d)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let a: Vec<String> = std::env::args().collect();
    match a.get(1).map(String::as_str) {
        Some("static") => {
            let mb: usize = arg(&a, 2, 50);
            let chunk: u32 = arg(&a, 3, 1024);
            let maxd: usize = arg(&a, 4, 1500);
            let hash = match a.get(5).map(String::as_str).unwrap_or("sha1") {
                "sha1" => HashFunc::Sha1,
                "sha256" => HashFunc::Sha256,
                h => bail!("unknown hash {h}"),
            };
            bench_static(mb, chunk, maxd, hash).await
        }
        Some("live") => {
            bench_live(
                arg(&a, 2, 16),
                arg(&a, 3, 3000),
                arg(&a, 4, 20),
                arg(&a, 5, 1024),
            )
            .await
        }
        _ => bail!(
            "usage: ppspp-bench static [MB] [CHUNK] [MAX_DATAGRAM] [sha1|sha256] | live [PEERS] [KBIT/S] [SECONDS] [CHUNK]"
        ),
    }
}

async fn bench_static(mb: usize, chunk: u32, maxd: usize, hash: HashFunc) -> Result<()> {
    let data = content(mb * 1_000_000, 42);
    let cfg = SwarmConfig {
        chunk_size: chunk,
        max_datagram: maxd.max(chunk as usize + 512),
        hash,
        max_outstanding_bytes: 4 << 20,
        ..Default::default()
    };
    let t_hash = Instant::now();
    let seed = Swarm::new_static_seed(
        SwarmConfig {
            seed: 1,
            ..cfg.clone()
        },
        &data,
        Instant::now(),
    );
    let hash_time = t_hash.elapsed();
    let seeder = Node::spawn(seed, "127.0.0.1:0".parse()?).await?;
    let leech = Swarm::new_static_leech(
        SwarmConfig {
            seed: 2,
            ..cfg.clone()
        },
        seeder.swarm_id(),
        Instant::now(),
    )?;
    let mut leecher = Node::spawn(leech, "127.0.0.1:0".parse()?).await?;
    let t0 = Instant::now();
    leecher.connect(seeder.local_addr());
    tokio::time::timeout(Duration::from_secs(300), async {
        while let Some(e) = leecher.next_event().await {
            if e == Event::Complete {
                return Ok(());
            }
        }
        bail!("leecher stopped")
    })
    .await
    .context("transfer timed out")??;
    let secs = t0.elapsed().as_secs_f64();
    let got = leecher.content().await.context("content")?;
    if got != data {
        bail!("content differs");
    }
    let ls = leecher.stats().await.context("stats")?;
    let ss = seeder.stats().await.context("stats")?;
    println!(
        "bench=static size_bytes={} chunk={} max_datagram={} hash={:?} seconds={:.3} mb_per_s={:.1} seeder_hash_seconds={:.3} datagrams_up={} retransmits={} bad={}",
        data.len(),
        chunk,
        cfg.max_datagram,
        hash,
        secs,
        data.len() as f64 / 1e6 / secs,
        hash_time.as_secs_f64(),
        ss.datagrams_out,
        ls.requests_retransmitted,
        ls.chunks_bad
    );
    Ok(())
}

async fn bench_live(peers: usize, kbit: u64, seconds: u64, chunk: u32) -> Result<()> {
    let cfg = SwarmConfig {
        chunk_size: chunk,
        chunks_per_munro: 8,
        ..Default::default()
    };
    let src = Swarm::new_live_source(
        SwarmConfig {
            seed: 1,
            ..cfg.clone()
        },
        [1; 32],
        Instant::now(),
    );
    let origin = Node::spawn(src, "127.0.0.1:0".parse()?).await?;
    let mut nodes = Vec::new();
    for i in 0..peers {
        let p = Swarm::new_live_leech(
            SwarmConfig {
                seed: 100 + i as u64,
                ..cfg.clone()
            },
            origin.swarm_id(),
            Instant::now(),
        )?;
        let n = Node::spawn(p, "127.0.0.1:0".parse()?).await?;
        n.connect(origin.local_addr());
        nodes.push(n);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Publish every 20 ms; remember when each chunk's last byte was handed to the origin.
    let tick = Duration::from_millis(20);
    let per_tick = (kbit * 1000 / 8 * tick.as_millis() as u64 / 1000) as usize;
    let stream = content(per_tick * (seconds * 50) as usize + chunk as usize, 7);
    let mut published_at: HashMap<u64, Instant> = HashMap::new();
    let mut sent = 0usize;
    let start = Instant::now();
    let mut collectors = Vec::new();
    for mut n in nodes.drain(..) {
        collectors.push(tokio::spawn(async move {
            let mut got: Vec<(u64, Instant)> = Vec::new();
            let mut skipped = 0u64;
            while let Ok(Some(e)) =
                tokio::time::timeout(Duration::from_secs(5), n.next_event()).await
            {
                match e {
                    Event::LiveData { chunk, .. } => got.push((chunk, Instant::now())),
                    Event::LiveSkipped { first, last } => skipped += last - first + 1,
                    _ => {}
                }
            }
            (got, skipped, n)
        }));
    }
    for k in 0..seconds * 50 {
        tokio::time::sleep_until((start + tick * k as u32).into()).await;
        let now = Instant::now();
        origin.publish(stream[sent..sent + per_tick].to_vec());
        sent += per_tick;
        for c in published_at.len() as u64..(sent / chunk as usize) as u64 {
            published_at.insert(c, now);
        }
    }
    let total_chunks = (sent / chunk as usize) as u64 / 8 * 8; // complete munros only
    let mut delays = Vec::new();
    let mut complete = Vec::new();
    let mut skipped_total = 0u64;
    for c in collectors {
        let (got, skipped, n) = c.await?;
        skipped_total += skipped;
        let first = got.first().map(|g| g.0).unwrap_or(total_chunks);
        let want = total_chunks.saturating_sub(first);
        complete.push(
            got.iter().filter(|(c, _)| *c < total_chunks).count() as f64 / want.max(1) as f64,
        );
        for (c, t) in got {
            if let Some(p) = published_at.get(&c) {
                delays.push(t.saturating_duration_since(*p));
            }
        }
        drop(n);
    }
    delays.sort();
    let q = |p: f64| {
        delays
            .get(((delays.len() as f64 * p) as usize).min(delays.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let os = origin.stats().await.context("origin stats")?;
    let ratio = os.data_bytes_up as f64 / (total_chunks * chunk as u64) as f64;
    let min_complete = complete.iter().cloned().fold(1.0f64, f64::min);
    let avg_complete = complete.iter().sum::<f64>() / complete.len().max(1) as f64;
    println!(
        "bench=live peers={} kbit_s={} seconds={} chunk={} origin_upload_x_stream={:.2} delay_p50_ms={:.1} delay_p95_ms={:.1} completeness_avg={:.4} completeness_min={:.4} chunks_skipped={}",
        peers,
        kbit,
        seconds,
        chunk,
        ratio,
        q(0.50).as_secs_f64() * 1e3,
        q(0.95).as_secs_f64() * 1e3,
        avg_complete,
        min_complete,
        skipped_total
    );
    Ok(())
}
