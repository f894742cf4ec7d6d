//! A sequence of peer operations on two real peers (a seeder and a leecher) joined by a fuzzer-controlled
//! network: deliver, drop, duplicate, corrupt or inject datagrams, replay them from forged source addresses,
//! advance time, connect. Nothing may panic, the seeder's per-peer state stays within its bounds, and a
//! leecher that completes must hold exactly the seeded content.
#![cfg_attr(fuzzing, no_main)]
use ppspp::{Swarm, SwarmConfig, Transmit};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|ops: &[u8]| run(ops));

/// The target's body; also run by the crate's tests (tests/fuzz_targets.rs).
pub fn run(ops: &[u8]) {
    let t0 = Instant::now();
    let mut now = t0;
    let content: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 251) as u8).collect();
    let cfg = SwarmConfig {
        chunk_size: 512,
        ..Default::default()
    };
    let mut seed = Swarm::new_static_seed(
        SwarmConfig {
            seed: 1,
            ..cfg.clone()
        },
        &content,
        now,
    );
    let id = seed.swarm_id().to_vec();
    let mut leech = Swarm::new_static_leech(SwarmConfig { seed: 2, ..cfg }, &id, now).unwrap();
    let a: SocketAddr = "10.0.0.1:1".parse().unwrap();
    let b: SocketAddr = "10.0.0.2:1".parse().unwrap();
    leech.connect(now, a);
    let mut to_seed: Vec<Vec<u8>> = Vec::new();
    let mut to_leech: Vec<Vec<u8>> = Vec::new();
    let mut it = ops.iter().copied();
    while let Some(op) = it.next() {
        while let Some(Transmit { dst, payload }) = seed.poll_transmit() {
            if dst == b {
                to_leech.push(payload)
            }
        }
        while let Some(Transmit { dst, payload }) = leech.poll_transmit() {
            if dst == a {
                to_seed.push(payload)
            }
        }
        while seed.poll_event().is_some() {}
        while leech.poll_event().is_some() {}
        let arg = it.next().unwrap_or(0) as usize;
        match op % 9 {
            0 if !to_seed.is_empty() => {
                let d = to_seed.remove(arg % to_seed.len());
                seed.handle_datagram(now, b, &d)
            }
            1 if !to_leech.is_empty() => {
                let d = to_leech.remove(arg % to_leech.len());
                leech.handle_datagram(now, a, &d)
            }
            2 if !to_leech.is_empty() => {
                let i = arg % to_leech.len();
                let mut d = to_leech[i].clone();
                if !d.is_empty() {
                    let j = (arg * 7) % d.len();
                    d[j] ^= 1 | arg as u8;
                }
                leech.handle_datagram(now, a, &d)
            }
            3 if !to_seed.is_empty() => {
                let i = arg % to_seed.len();
                let d = to_seed[i].clone();
                seed.handle_datagram(now, b, &d[..arg.min(d.len())])
            }
            4 => {
                now += Duration::from_millis(arg as u64 * 10);
                seed.handle_timeout(now);
                leech.handle_timeout(now)
            }
            5 => {
                let n = arg % 40;
                let junk: Vec<u8> = it.by_ref().take(n).collect();
                leech.handle_datagram(now, a, &junk);
                seed.handle_datagram(now, b, &junk)
            }
            6 if !to_leech.is_empty() => {
                to_leech.remove(arg % to_leech.len());
            }
            7 => leech.connect(now, a),
            // A datagram for the seeder replayed from a forged address: a handshake from it stays half-open,
            // anything for an open channel is dropped.
            8 if !to_seed.is_empty() => {
                let d = to_seed[arg % to_seed.len()].clone();
                let forged = SocketAddr::from(([10, 0, 1, arg as u8], 1 + (arg >> 8) as u16));
                seed.handle_datagram(now, forged, &d)
            }
            _ => {}
        }
    }
    // Only the leecher's own address can open a channel at the seeder (which never asks for PEX).
    let f = seed.footprint();
    assert!(
        f.channels <= 1 && f.half_open <= SwarmConfig::default().max_half_open,
        "{f:?}"
    );
    if let Some(c) = leech.content() {
        assert_eq!(c, content);
    }
}
