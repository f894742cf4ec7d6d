//! `fetch_static` over real UDP on 127.0.0.1: a file fetched to the end by several peers at once, as the
//! boxes of a site fetch an update bundle, and the limits a fetch enforces.

use ppspp::wire::HashFunc;
use ppspp::{Swarm, SwarmConfig};
use ppspp_udp::{FetchError, FetchLimits, Node, fetch_static};
use std::time::{Duration, Instant};

use ppspp::sim::content;

fn cfg(seed: u64) -> SwarmConfig {
    SwarmConfig {
        chunk_size: 8192,
        hash: HashFunc::Sha256,
        seed,
        ..Default::default()
    }
}

async fn seeder(data: &[u8]) -> Node {
    Node::spawn(
        Swarm::new_static_seed(cfg(1), data, Instant::now()),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

const LIMITS: FetchLimits = FetchLimits {
    timeout: Duration::from_secs(120),
    stall: Duration::from_secs(30),
    max_bytes: None,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boxes_fetching_at_once_serve_each_other_and_spare_the_origin() {
    let data = content(6_000_000 + 123, 7);
    let seeder = seeder(&data).await;
    let id = seeder.swarm_id().to_vec();
    let origin = seeder.local_addr();
    let fetches = (0..4u64).map(|i| {
        let id = id.clone();
        tokio::spawn(async move {
            fetch_static(
                cfg(10 + i),
                &id,
                &[origin],
                "127.0.0.1:0".parse().unwrap(),
                LIMITS,
                |_, _| {},
            )
            .await
        })
    });
    let mut nodes = Vec::new();
    for f in fetches {
        let (node, got) = f.await.unwrap().unwrap();
        assert!(got == data, "a fetched copy differs from the file");
        nodes.push(node);
    }
    let origin_up = seeder.stats().await.unwrap().data_bytes_up;
    let mut peers_up = 0;
    for n in &nodes {
        peers_up += n.stats().await.unwrap().data_bytes_up;
    }
    let ratio = origin_up as f64 / data.len() as f64;
    eprintln!(
        "origin sent {ratio:.2}x the file to 4 fetchers; the fetchers sent each other {peers_up} bytes"
    );
    // Each over HTTPS would be 4x. The fetchers must have served each other a real share.
    assert!(peers_up > 0, "the fetchers served each other nothing");
    assert!(ratio < 3.5, "the origin sent {ratio:.2}x the file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_refuses_content_over_its_limit_and_gives_up_on_a_silent_peer() {
    let data = content(200_000, 3);
    let seeder = seeder(&data).await;
    let id = seeder.swarm_id().to_vec();
    let small = FetchLimits {
        max_bytes: Some(100_000),
        ..LIMITS
    };
    let r = fetch_static(
        cfg(2),
        &id,
        &[seeder.local_addr()],
        "127.0.0.1:0".parse().unwrap(),
        small,
        |_, _| {},
    )
    .await;
    assert!(
        matches!(r, Err(FetchError::TooLarge(100_000))),
        "{:?}",
        r.err()
    );

    // A peer that never answers: a closed port.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = dead.local_addr().unwrap();
    drop(dead);
    let quick = FetchLimits {
        stall: Duration::from_secs(2),
        ..LIMITS
    };
    let r = fetch_static(
        cfg(3),
        &id,
        &[addr],
        "127.0.0.1:0".parse().unwrap(),
        quick,
        |_, _| {},
    )
    .await;
    assert!(matches!(r, Err(FetchError::Stalled(..))), "{:?}", r.err());
    assert!(matches!(
        fetch_static(
            cfg(4),
            &[0u8; 5],
            &[addr],
            "127.0.0.1:0".parse().unwrap(),
            quick,
            |_, _| {}
        )
        .await,
        Err(FetchError::SwarmId(_))
    ));
}
