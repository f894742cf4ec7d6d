//! The simulator scenarios again, over real UDP sockets on 127.0.0.1.

use ppspp::{Event, Swarm, SwarmConfig};
use ppspp_udp::Node;
use std::time::{Duration, Instant};

use ppspp::sim::content;

const ANY: &str = "127.0.0.1:0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_file_one_seeder_three_leechers_over_udp() {
    let data = content(3_000_000 + 17, 1);
    let seed = Swarm::new_static_seed(
        SwarmConfig {
            seed: 1,
            ..Default::default()
        },
        &data,
        Instant::now(),
    );
    let seeder = Node::spawn(seed, ANY.parse().unwrap()).await.unwrap();
    let id = seeder.swarm_id().to_vec();
    let mut leechers = Vec::new();
    for i in 0..3u64 {
        let cfg = SwarmConfig {
            seed: 10 + i,
            ..Default::default()
        };
        let l = Node::spawn(
            Swarm::new_static_leech(cfg, &id, Instant::now()).unwrap(),
            ANY.parse().unwrap(),
        )
        .await
        .unwrap();
        l.connect(seeder.local_addr());
        leechers.push(l);
    }
    for l in &mut leechers {
        let done = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(e) = l.next_event().await {
                if e == Event::Complete {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(done, Ok(true), "leecher did not complete");
        assert_eq!(l.content().await.unwrap(), data);
        assert_eq!(l.stats().await.unwrap().chunks_bad, 0);
    }
    // Garbage to the seeder is counted and harmless.
    let junk = tokio::net::UdpSocket::bind(ANY).await.unwrap();
    for n in 0..20usize {
        junk.send_to(&content(n, n as u64 + 3), seeder.local_addr())
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let st = seeder.stats().await.unwrap();
    assert!(st.malformed_datagrams + st.unknown_channel >= 20, "{st:?}");
    for l in leechers {
        l.stop().await.unwrap();
    }
    seeder.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_stream_over_udp_with_late_joiners() {
    let cfg = SwarmConfig {
        chunks_per_munro: 8,
        superseed_delay: Duration::from_millis(100),
        ..Default::default()
    };
    let src = Swarm::new_live_source(
        SwarmConfig {
            seed: 1,
            ..cfg.clone()
        },
        [3; 32],
        Instant::now(),
    );
    let source = Node::spawn(src, ANY.parse().unwrap()).await.unwrap();
    let id = source.swarm_id().to_vec();
    let stream = content(1024 * 8 * 80, 5);
    let mut peers = Vec::new();
    for step in 0..80usize {
        if step % 20 == 0 {
            let p = Swarm::new_live_leech(
                SwarmConfig {
                    seed: 100 + step as u64,
                    ..cfg.clone()
                },
                &id,
                Instant::now(),
            )
            .unwrap();
            let n = Node::spawn(p, ANY.parse().unwrap()).await.unwrap();
            n.connect(source.local_addr());
            peers.push(n);
        }
        source.publish(stream[step * 8192..(step + 1) * 8192].to_vec());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    for (i, p) in peers.iter_mut().enumerate() {
        let mut got: Vec<(u64, Vec<u8>)> = Vec::new();
        let t0 = Instant::now();
        let _ = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(e) = p.next_event().await {
                if let Event::LiveData { chunk, data } = e {
                    let last = chunk == 639;
                    got.push((chunk, data));
                    if last {
                        break;
                    }
                }
            }
        })
        .await;
        assert!(!got.is_empty(), "peer {i} received nothing");
        let st = p.stats().await;
        eprintln!(
            "peer {i}: first {} last {} after {:?}",
            got[0].0,
            got.last().unwrap().0,
            t0.elapsed()
        );
        assert_eq!(
            got.last().unwrap().0,
            639,
            "peer {i} did not reach the live edge: {st:?}"
        );
        let first = got[0].0;
        assert_eq!(got.len() as u64, 640 - first, "peer {i} has gaps");
        if i > 0 {
            assert!(first > 0, "late joiner {i} started at 0");
        }
        for (c, d) in &got {
            let off = *c as usize * 1024;
            assert_eq!(&stream[off..off + 1024], d.as_slice());
        }
    }
}

/// A live stream over a network that drops 10 % of every peer's datagrams and holds another 10 % back for
/// up to 40 ms: every peer still gets every chunk, in order, once, and the source uploads the stream about
/// once (the peers carry the rest for each other).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_stream_complete_through_loss_and_reordering() {
    // four peers at 4 Mbit/s
    let ratio = lossy_live(4, 128, 1, Duration::from_millis(30)).await;
    // four peers, all fed by the source alone would be 4x (plus retransmissions)
    assert!(ratio < 4.0, "source uploaded {ratio:.2}x the stream");
}

/// One peer at 6.5 Mbit/s (a segment swarm's source and the box that reads it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_stream_to_one_peer_complete_through_loss_and_reordering() {
    lossy_live(1, 256, 1, Duration::from_millis(20)).await;
}

/// Whole 1.6 MB segments published at once every 2 s (as a broadcaster does), to two peers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_segments_in_bursts_complete_through_loss_and_reordering() {
    lossy_live(2, 500, 100, Duration::from_secs(2)).await;
}

/// Streams `munros` 16 KiB munros, `burst` of them every `gap`, from a source to `n` peers over a lossy network;
/// checks every peer got all of it, in order, once, and returns what the source uploaded against the
/// stream's bytes.
async fn lossy_live(n: u64, munros: usize, burst: usize, gap: Duration) -> f64 {
    use ppspp_udp::Impairment;
    let lossy = Impairment {
        loss: 0.1,
        reorder: 0.1,
        max_delay: Duration::from_millis(40),
        corrupt: 0.0,
    };
    // the settings of a segment swarm (segment_swarm::node::swarm_config)
    let cfg = SwarmConfig::lossy_live();
    let src = Swarm::new_live_source(
        SwarmConfig {
            seed: 1,
            ..cfg.clone()
        },
        [4; 32],
        Instant::now(),
    );
    let source = Node::spawn_impaired(src, ANY.parse().unwrap(), lossy)
        .await
        .unwrap();
    let id = source.swarm_id().to_vec();
    let mut peers = Vec::new();
    for i in 0..n {
        let p = Swarm::new_live_leech(
            SwarmConfig {
                seed: 200 + i,
                ..cfg.clone()
            },
            &id,
            Instant::now(),
        )
        .unwrap();
        let n = Node::spawn_impaired(p, ANY.parse().unwrap(), lossy)
            .await
            .unwrap();
        n.connect(source.local_addr());
        peers.push(n);
    }
    let stream = content(16 * 1024 * munros, 9);
    let last = (munros * 16 - 1) as u64;
    // Each peer's application takes its events as they come (the node holds at most EVENT_QUEUE of them).
    let publishing = gap * munros.div_ceil(burst) as u32;
    let readers: Vec<_> = peers
        .into_iter()
        .map(|mut p| {
            tokio::spawn(async move {
                let mut got: Vec<(u64, Vec<u8>)> = Vec::new();
                let _ = tokio::time::timeout(publishing + Duration::from_secs(30), async {
                    while let Some(e) = p.next_event().await {
                        if let Event::LiveData { chunk, data } = e {
                            let end = chunk == last;
                            got.push((chunk, data));
                            if end {
                                break;
                            }
                        }
                    }
                })
                .await;
                (got, p)
            })
        })
        .collect();
    for m in (0..munros).step_by(burst) {
        let end = (m + burst).min(munros);
        source.publish(stream[m * 16384..end * 16384].to_vec());
        tokio::time::sleep(gap).await;
    }
    for (i, r) in readers.into_iter().enumerate() {
        let (got, p) = r.await.unwrap();
        let st = p.stats().await.unwrap();
        let have: std::collections::BTreeSet<u64> = got.iter().map(|g| g.0).collect();
        let missing: Vec<u64> = (0..=last).filter(|c| !have.contains(c)).take(40).collect();
        assert_eq!(
            got.len() as u64,
            last + 1,
            "peer {i} has gaps {missing:?}: {st:?}, events dropped {}",
            p.events_dropped()
        );
        for (k, (c, d)) in got.iter().enumerate() {
            assert_eq!(*c, k as u64, "peer {i}: chunk out of order");
            let off = k * 1024;
            assert_eq!(&stream[off..off + 1024], d.as_slice(), "peer {i} chunk {k}");
        }
        assert_eq!(st.chunks_bad, 0);
    }
    let up = source.stats().await.unwrap();
    let ratio = up.data_bytes_up as f64 / stream.len() as f64;
    eprintln!("source uploaded {ratio:.2}x the stream: {up:?}");
    ratio
}
