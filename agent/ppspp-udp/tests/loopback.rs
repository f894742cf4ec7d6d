//! The simulator scenarios again, over real UDP sockets on 127.0.0.1.

use ppspp::{Event, Swarm, SwarmConfig};
use ppspp_udp::Node;
use std::time::{Duration, Instant};

fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

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
