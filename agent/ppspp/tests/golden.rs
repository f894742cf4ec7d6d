//! Golden wire vectors (tests/vectors/wire.txt): every message type and handshake option, as hex with the
//! expected decode. Each vector must decode to exactly the expected value and re-encode to the same bytes.

use ppspp::wire::{self, Addressing, WireCtx};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn ctx(s: &str) -> WireCtx {
    let p: Vec<&str> = s.split('/').collect();
    let addressing = match p[0] {
        "bins32" => Addressing::Bins32,
        "bins64" => Addressing::Bins64,
        "chunkranges32" => Addressing::ChunkRanges32,
        "chunkranges64" => Addressing::ChunkRanges64,
        "byteranges64" => Addressing::ByteRanges64,
        other => panic!("bad context {other}"),
    };
    WireCtx {
        addressing,
        hash_len: p[1].parse().unwrap(),
        sig_len: p[2].parse().unwrap(),
    }
}

#[test]
fn golden_vectors() {
    let text = include_str!("vectors/wire.txt");
    let mut n = 0;
    let mut types_seen = std::collections::BTreeSet::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let f: Vec<&str> = line.splitn(4, " | ").collect();
        let (name, c, hex, expected) = (f[0], f[1], f[2], f[3]);
        let bytes = unhex(hex);
        let mut cx = ctx(c);
        let got = wire::decode(&bytes, &mut cx);
        if let Some(err) = expected.strip_prefix("ERR ") {
            assert_eq!(got.unwrap_err().to_string(), err, "{name}");
        } else {
            let d = got.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(format!("{d:?}"), expected, "{name}");
            assert_eq!(wire::encode(&d), bytes, "{name}: re-encoding differs");
            types_seen.extend(d.messages.iter().map(|m| m.type_code()));
        }
        n += 1;
    }
    assert!(n >= 40, "only {n} vectors");
    assert_eq!(
        types_seen.into_iter().collect::<Vec<_>>(),
        (0..=13).collect::<Vec<u8>>(),
        "all 14 message types"
    );
}

#[test]
fn every_truncation_of_every_vector_is_an_error_not_a_panic() {
    let text = include_str!("vectors/wire.txt");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.splitn(4, " | ").collect();
        let bytes = unhex(f[2]);
        for cut in 0..bytes.len() {
            let mut cx = ctx(f[1]);
            // A cut DATA payload is still a valid (shorter) DATA; anything else must fail cleanly.
            let _ = wire::decode(&bytes[..cut], &mut cx);
        }
    }
}

#[test]
fn fuzz_regression_window_width_follows_the_handshake_not_the_channel() {
    // Found by the decode_datagram fuzz target: a handshake with a live discard window but no addressing
    // option, decoded on a 64-bit channel, must still read a 32-bit window (and round-trip).
    let crash = unhex("0a6c0000000000590100000000070000080008ffffffff");
    let mut wide = WireCtx {
        addressing: Addressing::ChunkRanges64,
        hash_len: 20,
        sig_len: 64,
    };
    let mut narrow = WireCtx::default();
    assert_eq!(
        wire::decode(&crash, &mut wide),
        wire::decode(&crash, &mut narrow)
    );
    // The same handshake with a well-formed tail decodes and round-trips.
    let ok = unhex("0a6c000000000059010000000007000008000802fffcff");
    let mut cx = WireCtx {
        addressing: Addressing::ChunkRanges64,
        hash_len: 20,
        sig_len: 64,
    };
    let d = wire::decode(&ok, &mut cx).expect("decodes");
    assert_eq!(wire::encode(&d), ok);
}
