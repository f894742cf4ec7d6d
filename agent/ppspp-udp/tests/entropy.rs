//! Channel IDs of a running node come from the operating system's random source, not from its
//! configuration: two nodes with the same `SwarmConfig::seed` answer the same handshake with different,
//! unpredictable channel IDs (a forger cannot compute a peer's channel ID from a config it can guess).

use ppspp::wire::{self, Addressing, Datagram, Handshake, HandshakeOption as O, Message};
use ppspp::{Swarm, SwarmConfig};
use ppspp_udp::Node;
use std::time::{Duration, Instant};

fn handshake(root: &[u8]) -> Vec<u8> {
    wire::encode(&Datagram {
        channel: 0,
        messages: vec![Message::Handshake(Handshake {
            source_channel: 0x1234,
            options: vec![
                O::Version(1),
                O::SwarmId(root.to_vec()),
                O::ChunkAddressing(Addressing::ChunkRanges32),
            ],
        })],
    })
}

fn reply_channel(payload: &[u8]) -> u32 {
    let d = wire::decode(payload, &mut Default::default()).unwrap();
    match d.messages.first() {
        Some(Message::Handshake(h)) => h.source_channel,
        m => panic!("not a handshake reply: {m:?}"),
    }
}

#[tokio::test]
async fn channel_ids_come_from_the_os_not_the_config_seed() {
    let data = vec![1u8; 5000];
    let cfg = SwarmConfig {
        seed: 7,
        ..Default::default()
    };
    // What the seed alone predicts.
    let mut sim = Swarm::new_static_seed(cfg.clone(), &data, Instant::now());
    let root = sim.swarm_id().to_vec();
    sim.handle_datagram(
        Instant::now(),
        "127.0.0.1:9".parse().unwrap(),
        &handshake(&root),
    );
    let predicted = reply_channel(&sim.poll_transmit().unwrap().payload);
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let n = Node::spawn(
            Swarm::new_static_seed(cfg.clone(), &data, Instant::now()),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        sock.send_to(&handshake(&root), n.local_addr())
            .await
            .unwrap();
        let mut buf = [0u8; 2048];
        let (len, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
            .await
            .expect("reply")
            .unwrap();
        ids.push(reply_channel(&buf[..len]));
        // Skip the HAVE that follows the reply.
        let _ = tokio::time::timeout(Duration::from_millis(200), sock.recv_from(&mut buf)).await;
        n.stop().await.unwrap();
    }
    assert_ne!(ids[0], predicted, "channel id follows the config seed");
    assert_ne!(ids[1], predicted, "channel id follows the config seed");
    assert_ne!(ids[0], ids[1]);
}
