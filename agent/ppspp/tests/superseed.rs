//! Super-seeding (a live source announces a fresh munro to one peer first, to the rest after a delay): the one
//! peer's HAVE is announced again when it was lost, and not to anyone else before the delay.

use ppspp::wire::{self, Addressing, Message, WireCtx};
use ppspp::{Swarm, SwarmConfig};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Datagrams `from` sends, decoded, with their destination.
fn sent(from: &mut Swarm) -> Vec<(SocketAddr, Vec<u8>, Vec<Message>)> {
    std::iter::from_fn(|| from.poll_transmit())
        .map(|t| {
            let mut ctx = WireCtx {
                addressing: Addressing::ChunkRanges32,
                ..Default::default()
            };
            let msgs = wire::decode(&t.payload, &mut ctx)
                .map(|d| d.messages)
                .unwrap_or_default();
            (t.dst, t.payload, msgs)
        })
        .collect()
}

fn has_have(msgs: &[Message]) -> bool {
    msgs.iter().any(|m| matches!(m, Message::Have(_)))
}

#[test]
fn a_lost_superseeding_have_is_sent_again_to_its_one_peer() {
    let t0 = Instant::now();
    let cfg = SwarmConfig {
        superseed_delay: Duration::from_millis(400),
        pex: false,
        ..Default::default()
    };
    let mut src = Swarm::new_live_source(cfg.clone(), [3; 32], t0);
    let id = src.swarm_id().to_vec();
    let sa: SocketAddr = "192.0.2.1:6778".parse().unwrap();
    let addrs: Vec<SocketAddr> = ["192.0.2.2:6778", "192.0.2.3:6778"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    let mut leeches: Vec<Swarm> = (0..2)
        .map(|i| {
            Swarm::new_live_leech(
                SwarmConfig {
                    seed: 10 + i,
                    ..cfg.clone()
                },
                &id,
                t0,
            )
            .unwrap()
        })
        .collect();
    // open both channels: handshake, reply, opening datagram
    for (l, a) in leeches.iter_mut().zip(&addrs) {
        l.connect(t0, sa);
        for _ in 0..3 {
            for (_, p, _) in sent(l) {
                src.handle_datagram(t0, *a, &p);
            }
            for (dst, p, _) in sent(&mut src) {
                if dst == *a {
                    l.handle_datagram(t0, sa, &p);
                }
            }
        }
    }
    assert_eq!(src.peers().len(), 2);
    // a fresh munro: its HAVE goes to one peer only, and that datagram is lost
    let t1 = t0 + Duration::from_millis(10);
    src.publish(t1, &[7u8; 16 * 1024]).unwrap();
    let first: Vec<SocketAddr> = sent(&mut src)
        .into_iter()
        .filter(|(_, _, m)| has_have(m))
        .map(|(d, _, _)| d)
        .collect();
    assert_eq!(first.len(), 1, "one peer first: {first:?}");
    // a quarter of the delay later, it is told again, and still no one else is
    let t2 = t1 + cfg.superseed_delay / 4;
    src.handle_timeout(t2);
    let again: Vec<(SocketAddr, Vec<u8>, Vec<Message>)> = sent(&mut src)
        .into_iter()
        .filter(|(_, _, m)| has_have(m))
        .collect();
    assert_eq!(
        again.iter().map(|a| a.0).collect::<Vec<_>>(),
        first,
        "the same peer, told again"
    );
    // this time it arrives, and the peer asks for the munro: no more repeats
    let i = addrs.iter().position(|a| *a == first[0]).unwrap();
    for (_, p, _) in &again {
        leeches[i].handle_datagram(t2, sa, p);
    }
    let asks = sent(&mut leeches[i]);
    assert!(
        asks.iter()
            .any(|(_, _, m)| m.iter().any(|x| matches!(x, Message::Request(_)))),
        "the peer asks for it"
    );
    for (_, p, _) in &asks {
        src.handle_datagram(t2, addrs[i], p);
    }
    let t3 = t2 + cfg.superseed_delay / 4;
    src.handle_timeout(t3);
    let repeats = sent(&mut src)
        .into_iter()
        .filter(|(d, _, m)| *d == first[0] && has_have(m))
        .count();
    assert_eq!(repeats, 0, "no HAVE again once the peer asked");
    // the other peer hears of it once the delay is over
    let t4 = t1 + cfg.superseed_delay;
    src.handle_timeout(t4);
    let late: Vec<SocketAddr> = sent(&mut src)
        .into_iter()
        .filter(|(_, _, m)| has_have(m))
        .map(|(d, _, _)| d)
        .collect();
    assert!(
        late.contains(&addrs[1 - i]),
        "the other peer after the delay: {late:?}"
    );
}
