//! PEX over IPv4 and IPv6: a peer that asked (PEX_REQ) gets PEX_RESv4/PEX_RESv6 for the other peers, a peer
//! that did not ask gets nothing, and addresses received in answer to our PEX_REQ are reported and connected
//! to (unsolicited PEX_RES: `tests/spoofing.rs`).

use ppspp::wire::{
    self, Addressing, ChunkSpec, Datagram, Handshake, HandshakeOption as O, Message, WireCtx,
};
use ppspp::{Event, Swarm, SwarmConfig};
use std::net::SocketAddr;
use std::time::Instant;

fn handshake(root: &[u8], src: u32) -> Vec<u8> {
    wire::encode(&Datagram {
        channel: 0,
        messages: vec![Message::Handshake(Handshake {
            source_channel: src,
            options: vec![
                O::Version(1),
                O::SwarmId(root.to_vec()),
                O::ChunkAddressing(Addressing::ChunkRanges32),
            ],
        })],
    })
}

fn drain(s: &mut Swarm) -> Vec<(SocketAddr, Datagram)> {
    std::iter::from_fn(|| s.poll_transmit())
        .map(|t| {
            (
                t.dst,
                wire::decode(
                    &t.payload,
                    &mut WireCtx {
                        addressing: Addressing::ChunkRanges32,
                        ..Default::default()
                    },
                )
                .unwrap(),
            )
        })
        .collect()
}

/// Our channel id for `peer`, from the handshake reply we sent it.
fn our_channel(out: &[(SocketAddr, Datagram)], peer: SocketAddr) -> u32 {
    out.iter()
        .find_map(|(d, g)| match (&g.messages[..], *d == peer) {
            ([Message::Handshake(h)], true) => Some(h.source_channel),
            _ => None,
        })
        .expect("handshake reply")
}

#[test]
fn pex_v4_and_v6() {
    let t = Instant::now();
    let mut s = Swarm::new_static_seed(
        SwarmConfig {
            pex: true,
            ..Default::default()
        },
        &[7u8; 3000],
        t,
    );
    let root = s.swarm_id().to_vec();
    let v4: SocketAddr = "192.0.2.10:6778".parse().unwrap();
    let v6: SocketAddr = "[2001:db8::10]:6778".parse().unwrap();
    let asker: SocketAddr = "192.0.2.20:6778".parse().unwrap();
    for (i, p) in [v4, v6, asker].into_iter().enumerate() {
        s.handle_datagram(t, p, &handshake(&root, 100 + i as u32));
    }
    let out = drain(&mut s);
    let ch_asker = our_channel(&out, asker);
    // Each peer's next datagram (a keep-alive) to our channel shows it receives what we send: the channels open.
    for p in [v4, v6, asker] {
        s.handle_datagram(t, p, &our_channel(&out, p).to_be_bytes());
    }
    assert_eq!(s.peers().len(), 3);
    // Only the asker gets PEX_RES, one per other peer, in the right family.
    s.handle_datagram(
        t,
        asker,
        &wire::encode(&Datagram {
            channel: ch_asker,
            messages: vec![Message::PexReq],
        }),
    );
    let out = drain(&mut s);
    let pex: Vec<&Message> = out
        .iter()
        .filter(|(d, _)| *d == asker)
        .flat_map(|(_, g)| g.messages.iter())
        .filter(|m| matches!(m, Message::PexResV4(_) | Message::PexResV6(_)))
        .collect();
    assert_eq!(pex.len(), 2, "{out:?}");
    assert!(pex.contains(&&Message::PexResV4("192.0.2.10:6778".parse().unwrap())));
    assert!(pex.contains(&&Message::PexResV6("[2001:db8::10]:6778".parse().unwrap())));
    assert!(
        !out.iter().any(|(d, _)| *d == v4 || *d == v6),
        "peers that did not ask got PEX"
    );
    // Receiving PEX_RES (v4 and v6) in answer to our PEX_REQ: reported, and handshakes go out to the new
    // addresses.
    let server: SocketAddr = "192.0.2.30:6778".parse().unwrap();
    s.connect(t, server);
    let out = drain(&mut s);
    let ch_server = our_channel(&out, server);
    s.handle_datagram(
        t,
        server,
        &wire::encode(&Datagram {
            channel: ch_server,
            messages: vec![Message::Handshake(Handshake {
                source_channel: 300,
                options: vec![O::Version(1), O::SwarmId(root.clone())],
            })],
        }),
    );
    let out = drain(&mut s);
    assert!(
        out.iter()
            .any(|(d, g)| *d == server && g.messages.contains(&Message::PexReq))
    );
    std::iter::from_fn(|| s.poll_event()).for_each(drop);
    let newv4: SocketAddr = "198.51.100.1:7000".parse().unwrap();
    let newv6: SocketAddr = "[2001:db8::99]:7000".parse().unwrap();
    let res = Datagram {
        channel: ch_server,
        messages: vec![
            Message::PexResV4(match newv4 {
                SocketAddr::V4(a) => a,
                _ => unreachable!(),
            }),
            Message::PexResV6(match newv6 {
                SocketAddr::V6(a) => a,
                _ => unreachable!(),
            }),
            Message::Have(ChunkSpec::ChunkRange32(0, 0)),
        ],
    };
    s.handle_datagram(t, server, &wire::encode(&res));
    let found: Vec<SocketAddr> = std::iter::from_fn(|| s.poll_event())
        .filter_map(|e| match e {
            Event::PeersDiscovered(v) => Some(v),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(found, vec![newv4, newv6]);
    let out: Vec<_> = std::iter::from_fn(|| s.poll_transmit()).collect();
    for a in [newv4, newv6] {
        assert!(
            out.iter()
                .any(|t| t.dst == a && t.payload[..4] == [0, 0, 0, 0] && t.payload[4] == 0),
            "no handshake to {a}"
        );
    }
}

/// Moves every datagram `from` has to send to `to` (all of them addressed to `to`), unless `lose`.
fn carry(
    from: &mut Swarm,
    from_addr: SocketAddr,
    to: &mut Swarm,
    now: Instant,
    lose: bool,
) -> usize {
    let out: Vec<_> = std::iter::from_fn(|| from.poll_transmit()).collect();
    if !lose {
        for t in &out {
            to.handle_datagram(now, from_addr, &t.payload);
        }
    }
    out.len()
}

/// The initiator's opening datagram (its HAVE and PEX_REQ; the responder opens its side only when a datagram
/// reaches it there) is lost: the initiator sends it again until the answer to its PEX_REQ comes, instead of
/// waiting deaf for a keep-alive, and stops once it has.
#[test]
fn a_lost_opening_datagram_is_sent_again_until_pex_req_is_answered() {
    let t0 = Instant::now();
    let cfg = SwarmConfig {
        pex: true,
        ..Default::default()
    };
    let mut seed = Swarm::new_static_seed(cfg.clone(), &[7u8; 3000], t0);
    let root = seed.swarm_id().to_vec();
    let mut leech = Swarm::new_static_leech(cfg.clone(), &root, t0).unwrap();
    let (sa, la): (SocketAddr, SocketAddr) = (
        "192.0.2.1:6778".parse().unwrap(),
        "192.0.2.2:6778".parse().unwrap(),
    );
    leech.connect(t0, sa);
    assert_eq!(carry(&mut leech, la, &mut seed, t0, false), 1, "handshake");
    // the reply (and the seeder's HAVE) reaches the leech: its side is open
    carry(&mut seed, sa, &mut leech, t0, false);
    assert_eq!(leech.peers(), vec![sa]);
    // its opening datagram is lost: the seeder's side stays half-open
    assert!(carry(&mut leech, la, &mut seed, t0, true) >= 1);
    assert!(seed.peers().is_empty());
    // a retry period later the leech sends it again; it opens the seeder's side, which answers the PEX_REQ
    // (with an empty datagram: it knows no one else)
    let t1 = t0 + cfg.handshake_retry;
    leech.handle_timeout(t1);
    let again: Vec<_> = std::iter::from_fn(|| leech.poll_transmit()).collect();
    let msgs: Vec<Message> = again
        .iter()
        .flat_map(|t| {
            wire::decode(
                &t.payload,
                &mut WireCtx {
                    addressing: Addressing::ChunkRanges32,
                    ..Default::default()
                },
            )
            .unwrap()
            .messages
        })
        .collect();
    assert!(msgs.contains(&Message::PexReq), "{msgs:?}");
    for t in &again {
        seed.handle_datagram(t1, la, &t.payload);
    }
    assert_eq!(seed.peers(), vec![la]);
    carry(&mut seed, sa, &mut leech, t1, false);
    // answered: nothing more is sent again (keep-alives aside, which come much later)
    for k in 2..6 {
        let t = t0 + cfg.handshake_retry * k;
        leech.handle_timeout(t);
        let out: Vec<_> = std::iter::from_fn(|| leech.poll_transmit()).collect();
        let pex_again = out.iter().any(|x| {
            wire::decode(
                &x.payload,
                &mut WireCtx {
                    addressing: Addressing::ChunkRanges32,
                    ..Default::default()
                },
            )
            .is_ok_and(|d| d.messages.contains(&Message::PexReq))
        });
        assert!(!pex_again, "PEX_REQ sent again after it was answered");
        for x in &out {
            seed.handle_datagram(t, la, &x.payload);
        }
        carry(&mut seed, sa, &mut leech, t, false);
    }
}

/// A full peer (`max_peers` 1: two channels) answers a third handshake at once, statelessly, with up to 8 of
/// its peers and a closing HANDSHAKE, no longer than the handshake it answers; the refused initiator connects
/// to the peers named, and a stranger's unasked PEX_RES is still ignored.
#[test]
fn a_full_peer_refuses_with_referrals_and_the_initiator_goes_on_to_them() {
    let t = Instant::now();
    let mut full = Swarm::new_static_seed(
        SwarmConfig {
            max_peers: 1,
            ..Default::default()
        },
        &[7u8; 3000],
        t,
    );
    let root = full.swarm_id().to_vec();
    let peers: Vec<SocketAddr> = ["192.0.2.10:6778", "[2001:db8::10]:6778"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    for (i, p) in peers.iter().enumerate() {
        full.handle_datagram(t, *p, &handshake(&root, 100 + i as u32));
    }
    let out = drain(&mut full);
    for p in &peers {
        full.handle_datagram(t, *p, &our_channel(&out, *p).to_be_bytes());
    }
    assert_eq!(full.peers().len(), 2);

    // the initiator: knows only the full peer
    let me: SocketAddr = "192.0.2.20:6778".parse().unwrap();
    let full_addr: SocketAddr = "192.0.2.1:6778".parse().unwrap();
    let mut joiner = Swarm::new_static_leech(SwarmConfig::default(), &root, t).unwrap();
    joiner.connect(t, full_addr);
    let hs = joiner.poll_transmit().expect("handshake");
    full.handle_datagram(t, me, &hs.payload);
    let refusal = full.poll_transmit().expect("an answer");
    assert!(full.poll_transmit().is_none(), "one datagram");
    assert_eq!(refusal.dst, me);
    assert!(
        refusal.payload.len() <= hs.payload.len(),
        "refusal {} bytes for a handshake of {}",
        refusal.payload.len(),
        hs.payload.len()
    );
    let d = wire::decode(
        &refusal.payload,
        &mut WireCtx {
            addressing: Addressing::ChunkRanges32,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(matches!(
        d.messages.last(),
        Some(Message::Handshake(h)) if h.source_channel == 0
    ));
    assert_eq!(d.messages.len(), 3, "two referrals: {:?}", d.messages);
    assert_eq!(full.peers().len(), 2, "no state for the refused one");
    assert_eq!(full.stats().rejected_handshakes, 1);
    // a short handshake, from an address that may be forged, gets no more bytes than it cost
    let short = handshake(&root, 999);
    full.handle_datagram(t, "192.0.2.66:6778".parse().unwrap(), &short);
    let answer = full.poll_transmit().expect("a closing handshake at least");
    assert!(
        answer.payload.len() <= short.len(),
        "{} bytes for {}",
        answer.payload.len(),
        short.len()
    );

    // the initiator drops the channel and opens one to each peer named
    joiner.handle_datagram(t, full_addr, &refusal.payload);
    let next: Vec<SocketAddr> = std::iter::from_fn(|| joiner.poll_transmit())
        .map(|t| t.dst)
        .collect();
    let mut sorted = next.clone();
    sorted.sort();
    let mut want = peers.clone();
    want.sort();
    assert_eq!(sorted, want, "handshakes to the referred peers");
    let found: Vec<Event> = std::iter::from_fn(|| joiner.poll_event()).collect();
    assert!(
        found.contains(&Event::PeersDiscovered(vec![peers[0]])),
        "{found:?}"
    );
    assert_eq!(joiner.stats().pex_ignored, 0);

    // anyone else's PEX_RES to a channel of ours that is open is still ignored unless asked for
    let stranger_says = wire::encode(&Datagram {
        channel: 12345,
        messages: vec![Message::PexResV4("192.0.2.99:6778".parse().unwrap())],
    });
    joiner.handle_datagram(t, "192.0.2.99:6778".parse().unwrap(), &stranger_says);
    assert!(joiner.poll_transmit().is_none());
}
