//! The driver's events to the application are bounded: an application that stops taking them (here a live
//! leech's, for a 6 MB stream) does not make the node hold them without limit, and the node keeps running.

use ppspp::{Event, Swarm, SwarmConfig};
use ppspp_udp::{EVENT_QUEUE, Node};
use std::time::{Duration, Instant};

const ANY: &str = "127.0.0.1:0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_not_taken_are_bounded_and_the_node_keeps_running() {
    let cfg = SwarmConfig {
        superseed_delay: Duration::ZERO,
        playback_deadline: Duration::from_secs(30),
        ..Default::default()
    };
    let source = Node::spawn(
        Swarm::new_live_source(cfg.clone(), [9; 32], Instant::now()),
        ANY.parse().unwrap(),
    )
    .await
    .unwrap();
    let id = source.swarm_id().to_vec();
    let mut leech = Node::spawn(
        Swarm::new_live_leech(cfg, &id, Instant::now()).unwrap(),
        ANY.parse().unwrap(),
    )
    .await
    .unwrap();
    leech.connect(source.local_addr());
    let connected = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(e) = leech.next_event().await {
            if matches!(e, Event::Connected(_)) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(connected, Ok(true));
    // 6000 chunks (1 KiB each, 16 per munro), taken by the leech while its application reads nothing.
    let munro = vec![0x5au8; 16 * 1024];
    for _ in 0..15 {
        for _ in 0..25 {
            source.publish(munro.clone());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let t0 = Instant::now();
    loop {
        let st = leech.stats().await.expect("leech node responsive");
        if st.chunks_verified >= 5500 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "leech stalled: {st:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut held = 0usize;
    while leech.try_event().is_some() {
        held += 1;
    }
    let dropped = leech.events_dropped();
    eprintln!("events held {held}, dropped {dropped}");
    assert!(held <= EVENT_QUEUE, "{held} events held");
    assert!(held as u64 + dropped >= 5500, "{held} + {dropped}");
    // Taken again, events flow again.
    source.publish(munro.clone());
    let more = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(e) = leech.next_event().await {
            if matches!(e, Event::LiveData { .. }) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(more, Ok(true));
    leech.stop().await.unwrap();
    source.stop().await.unwrap();
}
