//! The driver's events to the application are bounded: an application that stops taking them (here a live
//! leech's, for a 6 MB stream) does not make the node hold them without limit, and loses none of the stream:
//! the node waits for it (the kernel drops what arrives meanwhile, the source sends it again), and once the
//! application reads again every chunk arrives, in order.

use ppspp::{Event, Swarm, SwarmConfig};
use ppspp_udp::{EVENT_QUEUE, Node};
use std::time::{Duration, Instant};

const ANY: &str = "127.0.0.1:0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_not_taken_are_bounded_and_the_stream_is_not_lost() {
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
    // the application reads nothing for a while: the node holds at most EVENT_QUEUE events (the channel's
    // capacity) and waits; the first EVENT_QUEUE taken are there at once
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut chunks = Vec::new();
    for taken in 0..EVENT_QUEUE {
        match leech.try_event() {
            Some(Event::LiveData { chunk, .. }) => chunks.push(chunk),
            Some(_) => {}
            None => panic!("only {taken} events were waiting"),
        }
    }
    // reading again, the whole stream arrives: nothing was dropped
    let rest = tokio::time::timeout(Duration::from_secs(60), async {
        while chunks.len() < 6000 {
            match leech.next_event().await {
                Some(Event::LiveData { chunk, .. }) => chunks.push(chunk),
                Some(Event::LiveSkipped { first, last }) => {
                    panic!("chunks {first}..={last} skipped")
                }
                Some(_) => {}
                None => panic!("the node stopped"),
            }
        }
    })
    .await;
    assert!(rest.is_ok(), "{} of 6000 chunks", chunks.len());
    assert_eq!(
        chunks,
        (0..6000).collect::<Vec<u64>>(),
        "every chunk, in order"
    );
    assert_eq!(leech.events_dropped(), 0);
    leech.stop().await.unwrap();
    source.stop().await.unwrap();
}
