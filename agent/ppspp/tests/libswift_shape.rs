//! The exchange as libswift (the RFC authors' implementation) sees it: its handshake (no chunk-size option,
//! 32-bit chunk ranges, SHA-1, Merkle) is accepted, our reply is a HANDSHAKE-only datagram followed by HAVEs,
//! and DATA carries wall-clock timestamps once the driver anchored them.

use ppspp::wire::{
    self, Addressing, ChunkSpec, Handshake, HandshakeOption as O, HashFunc, IntegrityMethod,
    Message, WireCtx,
};
use ppspp::{Swarm, SwarmConfig};
use std::time::{Duration, Instant};

#[test]
fn libswift_style_leecher_gets_handshake_then_have_then_data() {
    let t0 = Instant::now();
    let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    let mut seed = Swarm::new_static_seed(SwarmConfig::default(), &data, t0);
    let unix_us = 1_795_631_982_000_000u64;
    seed.set_wall_clock(t0, unix_us);
    let root = seed.swarm_id().to_vec();
    let peer = "127.0.0.1:9".parse().unwrap();
    // Byte for byte what libswift sent in our interop run (43 bytes), with this swarm's root.
    let hs = wire::encode(&wire::Datagram {
        channel: 0,
        messages: vec![Message::Handshake(Handshake {
            source_channel: 0x20ea7a9f,
            options: vec![
                O::Version(1),
                O::MinVersion(1),
                O::SwarmId(root.clone()),
                O::ContentIntegrity(IntegrityMethod::MerkleHashTree),
                O::MerkleHash(HashFunc::Sha1),
                O::ChunkAddressing(Addressing::ChunkRanges32),
            ],
        })],
    });
    assert_eq!(hs.len(), 43);
    seed.handle_datagram(t0, peer, &hs);
    let out: Vec<_> = std::iter::from_fn(|| seed.poll_transmit()).collect();
    assert!(out.len() >= 2, "{out:?}");
    let mut ctx = WireCtx::default();
    let first = wire::decode(&out[0].payload, &mut ctx).unwrap();
    assert_eq!(first.channel, 0x20ea7a9f);
    assert_eq!(first.messages.len(), 1, "handshake reply must stand alone");
    let Message::Handshake(reply) = &first.messages[0] else {
        panic!("not a handshake")
    };
    assert!(
        reply
            .options
            .contains(&O::ChunkAddressing(Addressing::ChunkRanges32))
    );
    let our_chan = reply.source_channel;
    let second = wire::decode(&out[1].payload, &mut ctx).unwrap();
    assert_eq!(
        second.messages[0],
        Message::Have(ChunkSpec::ChunkRange32(0, 4))
    );
    // Request chunk 0 after 5 ms: DATA timestamp is wall clock.
    let t1 = t0 + Duration::from_millis(5);
    let req = wire::encode(&wire::Datagram {
        channel: our_chan,
        messages: vec![Message::Request(ChunkSpec::ChunkRange32(0, 0))],
    });
    seed.handle_datagram(t1, peer, &req);
    let out: Vec<_> = std::iter::from_fn(|| seed.poll_transmit()).collect();
    let d = wire::decode(&out.last().unwrap().payload, &mut ctx).unwrap();
    let Some(Message::Data {
        spec,
        timestamp,
        data: payload,
    }) = d.messages.last()
    else {
        panic!("{d:?}")
    };
    assert_eq!(*spec, ChunkSpec::ChunkRange32(0, 0));
    assert_eq!(*timestamp, unix_us + 5_000);
    assert_eq!(payload.as_slice(), &data[..1024]);
    // Peaks and uncles precede it.
    assert!(
        d.messages
            .iter()
            .any(|m| matches!(m, Message::Integrity { .. }))
    );
}
