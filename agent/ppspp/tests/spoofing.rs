//! Attacks from forged source addresses and unsolicited peer exchange: handshakes from addresses that never
//! answer cannot fill the channel table, a handshake forged with a live peer's address (or sent to its channel
//! from another address) cannot take its channel over, and PEX_RES floods cannot grow memory or make us
//! connect anywhere.

use ppspp::sim::{SimConfig, SimNet, TraceKind};
use ppspp::wire::{self, Addressing, Datagram, Handshake, HandshakeOption as O, Message, WireCtx};
use ppspp::{Event, Swarm, SwarmConfig};
use std::net::{SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use ppspp::sim::content;

fn hs_message(root: &[u8], src: u32) -> Message {
    Message::Handshake(Handshake {
        source_channel: src,
        options: vec![
            O::Version(1),
            O::MinVersion(1),
            O::SwarmId(root.to_vec()),
            O::ChunkAddressing(Addressing::ChunkRanges32),
        ],
    })
}

/// A HANDSHAKE opening a channel (sent to channel 0).
fn handshake(root: &[u8], src: u32) -> Vec<u8> {
    wire::encode(&Datagram {
        channel: 0,
        messages: vec![hs_message(root, src)],
    })
}

/// The `i`th forged source address (none of them is a node of the simulated network).
fn forged(i: u32) -> SocketAddr {
    SocketAddr::from(([10, 200, (i >> 8) as u8, i as u8], 9000 + (i % 7) as u16))
}

fn decode(payload: &[u8]) -> Option<Datagram> {
    wire::decode(
        payload,
        &mut WireCtx {
            addressing: Addressing::ChunkRanges32,
            ..Default::default()
        },
    )
    .ok()
}

/// A seeder and `n` leechers that join at 0.2 s, 0.5 s, 0.8 s, ... and connect to the seeder.
fn seeder_and_leechers(net: &mut SimNet, data: &[u8], n: usize) -> Vec<usize> {
    let s = Swarm::new_static_seed(
        SwarmConfig {
            seed: 100,
            ..Default::default()
        },
        data,
        net.now,
    );
    let root = s.swarm_id().to_vec();
    let s = net.add(s);
    let seeder = net.nodes[s].addr;
    (0..n)
        .map(|i| {
            let cfg = SwarmConfig {
                seed: 200 + i as u64,
                ..Default::default()
            };
            let k = net.add(Swarm::new_static_leech(cfg, &root, net.now).unwrap());
            net.nodes[k].connect_to.push(seeder);
            net.nodes[k].joins_at = Duration::from_millis(200 + 300 * i as u64);
            k
        })
        .collect()
}

fn all_complete(net: &SimNet, ids: &[usize]) -> bool {
    ids.iter().all(|i| net.nodes[*i].swarm.is_complete())
}

/// 10,000 handshakes from forged addresses (500 every 50 ms during the first second, while three honest
/// leechers join): none of them gets a channel, the half-open table stays at its bound, and the honest
/// leechers connect and download as if nothing happened.
#[test]
fn forged_handshakes_cannot_fill_the_channel_table() {
    let data = content(200_000, 3);
    let mut net = SimNet::new(SimConfig::default(), Instant::now());
    let ls = seeder_and_leechers(&mut net, &data, 3);
    let root = net.nodes[0].swarm.swarm_id().to_vec();
    let mut i = 0u32;
    for step in 1..=20u64 {
        for _ in 0..500 {
            net.inject(0, forged(i), handshake(&root, 0x1000 + i));
            i += 1;
        }
        net.run(Duration::from_millis(50 * step), |_| false);
        let f = net.nodes[0].swarm.footprint();
        assert!(f.channels <= 3, "forged handshakes took channels: {f:?}");
        assert!(f.half_open <= SwarmConfig::default().max_half_open, "{f:?}");
    }
    assert_eq!(i, 10_000);
    let done = net.run(Duration::from_secs(30), |n| all_complete(n, &ls));
    let seeder = &net.nodes[0].swarm;
    assert!(
        done,
        "honest leechers did not complete: seeder peers {:?}, {:?}",
        seeder.peers(),
        seeder.stats()
    );
    for &l in &ls {
        assert_eq!(net.nodes[l].swarm.content().unwrap(), data);
    }
    eprintln!(
        "completed at {:?}; {:?}; half-open forgotten {}",
        net.elapsed(),
        seeder.footprint(),
        seeder.stats().half_open_dropped
    );
    let mut peers = seeder.peers();
    peers.sort();
    let mut honest: Vec<SocketAddr> = ls.iter().map(|&l| net.nodes[l].addr).collect();
    honest.sort();
    assert_eq!(peers, honest, "only the honest leechers hold channels");
    let connected = net.nodes[0]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Connected(_)))
        .count();
    assert_eq!(connected, 3, "a forged address was reported connected");
}

/// A leecher is downloading when an attacker (1) sends a HANDSHAKE to channel 0 with the leecher's own
/// address as source and another source channel, (2) sends a HANDSHAKE, and (3) a close, to the seeder's
/// channel for the leecher from the attacker's own address. The leecher's channel is neither dropped nor
/// redirected, the download completes, and the attacker is sent no content.
#[test]
fn forged_handshake_cannot_take_over_a_live_channel() {
    let data = content(300_000, 4);
    let mut net = SimNet::new(
        SimConfig {
            uplink: Some(400_000),
            ..Default::default()
        },
        Instant::now(),
    );
    net.record_trace();
    let ls = seeder_and_leechers(&mut net, &data, 1);
    let (l, leecher) = (ls[0], net.nodes[ls[0]].addr);
    let seeder = net.nodes[0].addr;
    let root = net.nodes[0].swarm.swarm_id().to_vec();
    let attacker: SocketAddr = "10.66.6.6:7000".parse().unwrap();
    assert!(
        net.run(Duration::from_secs(30), |n| n.nodes[l].swarm.progress().0
            >= 50),
        "did not start"
    );
    // The seeder's channel id for the leecher, from its handshake reply.
    let chan = net
        .trace
        .as_ref()
        .unwrap()
        .iter()
        .filter(|r| r.kind == TraceKind::Sent && r.src == seeder && r.dst == leecher)
        .find_map(|r| match decode(&r.payload)?.messages.first() {
            Some(Message::Handshake(h)) => Some(h.source_channel),
            _ => None,
        })
        .expect("handshake reply");
    net.inject(0, leecher, handshake(&root, 0xdead_beef));
    net.inject(
        0,
        attacker,
        wire::encode(&Datagram {
            channel: chan,
            messages: vec![hs_message(&root, 0xbad)],
        }),
    );
    net.inject(
        0,
        attacker,
        wire::encode(&Datagram {
            channel: chan,
            messages: vec![Message::Handshake(Handshake {
                source_channel: 0,
                options: vec![],
            })],
        }),
    );
    let t = net.elapsed() + Duration::from_secs(30);
    assert!(
        net.run(t, |n| n.nodes[l].swarm.is_complete()),
        "the leecher's download stalled: {:?}",
        net.nodes[0].events
    );
    assert_eq!(net.nodes[l].swarm.content().unwrap(), data);
    assert!(
        !net.nodes[0]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::Disconnected { .. })),
        "{:?}",
        net.nodes[0].events
    );
    assert_eq!(net.nodes[0].swarm.peers(), vec![leecher]);
    assert!(
        !net.trace
            .as_ref()
            .unwrap()
            .iter()
            .any(|r| r.src == seeder && r.dst == attacker),
        "the attacker was answered"
    );
    assert!(
        !net.trace
            .as_ref()
            .unwrap()
            .iter()
            .filter(|r| r.kind == TraceKind::Sent && r.src == seeder && r.dst == leecher)
            .any(|r| r.payload[..4] == 0xdead_beef_u32.to_be_bytes()
                && decode(&r.payload).is_some_and(|d| d
                    .messages
                    .iter()
                    .any(|m| !matches!(m, Message::Handshake(_) | Message::Have(_))))),
        "the seeder served the forged channel"
    );
}

fn drain(s: &mut Swarm) -> Vec<(SocketAddr, Datagram)> {
    std::iter::from_fn(|| s.poll_transmit())
        .filter_map(|t| Some((t.dst, decode(&t.payload)?)))
        .collect()
}

fn discovered(s: &mut Swarm) -> Vec<SocketAddr> {
    std::iter::from_fn(|| s.poll_event())
        .filter_map(|e| match e {
            Event::PeersDiscovered(v) => Some(v),
            _ => None,
        })
        .flatten()
        .collect()
}

/// `n` PEX_RESv4 messages with distinct addresses, from `first`, to `chan`, 100 per datagram.
fn pex_flood(s: &mut Swarm, now: Instant, from: SocketAddr, chan: u32, first: u32, n: u32) {
    for base in (first..first + n).step_by(100) {
        let messages = (base..(base + 100).min(first + n))
            .map(|i| {
                Message::PexResV4(SocketAddrV4::new(
                    [172, 16, (i >> 8) as u8, i as u8].into(),
                    6000 + (i >> 16) as u16,
                ))
            })
            .collect();
        s.handle_datagram(
            now,
            from,
            &wire::encode(&Datagram {
                channel: chan,
                messages,
            }),
        );
    }
}

/// 10,000 PEX_RES from a peer we never asked: none is reported or connected to, nothing is remembered.
#[test]
fn unsolicited_pex_is_ignored() {
    let t = Instant::now();
    let mut s = Swarm::new_static_seed(SwarmConfig::default(), &[7u8; 3000], t);
    let root = s.swarm_id().to_vec();
    let p: SocketAddr = "192.0.2.20:6778".parse().unwrap();
    s.handle_datagram(t, p, &handshake(&root, 77));
    let out = drain(&mut s);
    let chan = out
        .iter()
        .find_map(|(d, g)| match g.messages.first() {
            Some(Message::Handshake(h)) if *d == p => Some(h.source_channel),
            _ => None,
        })
        .expect("handshake reply");
    // The peer proves its address (a keep-alive to our channel), then floods.
    s.handle_datagram(t, p, &chan.to_be_bytes());
    discovered(&mut s);
    pex_flood(&mut s, t, p, chan, 0, 10_000);
    let found = discovered(&mut s).len();
    assert_eq!(found, 0, "{found} unsolicited addresses accepted");
    let out = drain(&mut s);
    assert!(
        out.iter().all(|(d, _)| *d == p),
        "connected to PEX addresses"
    );
    let f = s.footprint();
    assert_eq!((f.pex_seen, f.channels), (0, 1), "{f:?}");
    assert!(s.stats().pex_ignored >= 10_000, "{:?}", s.stats());
}

/// After our PEX_REQ, a peer that answers with 10,000 PEX_RES gets only a bounded number accepted.
#[test]
fn pex_answers_are_bounded_per_request() {
    let t = Instant::now();
    let mut s = Swarm::new_static_seed(SwarmConfig::default(), &[7u8; 3000], t);
    let root = s.swarm_id().to_vec();
    let p: SocketAddr = "192.0.2.30:6778".parse().unwrap();
    s.connect(t, p);
    let out = drain(&mut s);
    let Some(Message::Handshake(h)) = out[0].1.messages.first() else {
        panic!("{out:?}")
    };
    let chan = h.source_channel;
    s.handle_datagram(
        t,
        p,
        &wire::encode(&Datagram {
            channel: chan,
            messages: vec![hs_message(&root, 99)],
        }),
    );
    let out = drain(&mut s);
    assert!(
        out.iter()
            .any(|(d, g)| *d == p && g.messages.contains(&Message::PexReq)),
        "no PEX_REQ: {out:?}"
    );
    discovered(&mut s);
    pex_flood(&mut s, t, p, chan, 0, 10_000);
    let found = discovered(&mut s);
    assert!(
        !found.is_empty() && found.len() <= 32,
        "{} addresses accepted",
        found.len()
    );
    let handshakes = drain(&mut s)
        .iter()
        .filter(|(d, g)| *d != p && g.channel == 0)
        .count();
    assert!(handshakes <= SwarmConfig::default().max_peers);
    assert!(s.footprint().channels <= SwarmConfig::default().max_peers);
}

/// Many peers each answering our PEX_REQ in full: the set of addresses remembered stays bounded.
#[test]
fn addresses_seen_through_pex_are_bounded() {
    let t = Instant::now();
    let mut s = Swarm::new_static_seed(
        SwarmConfig {
            max_peers: 200,
            ..Default::default()
        },
        &[7u8; 3000],
        t,
    );
    let root = s.swarm_id().to_vec();
    for k in 0..100u32 {
        let p = SocketAddr::from(([192, 0, 2, k as u8], 6778));
        s.connect(t, p);
        let out = drain(&mut s);
        let chan = out
            .iter()
            .find_map(|(d, g)| match g.messages.first() {
                Some(Message::Handshake(h)) if *d == p => Some(h.source_channel),
                _ => None,
            })
            .unwrap();
        s.handle_datagram(
            t,
            p,
            &wire::encode(&Datagram {
                channel: chan,
                messages: vec![hs_message(&root, 99)],
            }),
        );
        drain(&mut s);
        pex_flood(&mut s, t, p, chan, k * 100, 100);
        discovered(&mut s);
        drain(&mut s);
    }
    let f = s.footprint();
    assert!(f.pex_seen <= ppspp::PEX_SEEN_MAX, "{f:?}");
    assert!(f.pex_seen >= ppspp::PEX_SEEN_MAX / 2, "{f:?}");
}
