//! A live swarm's byte stream comes from peers: the deframer must never panic, allocate beyond its bounds or
//! wrap a chunk number, whatever the chunks and whatever gaps the swarm reports. A record that comes out must
//! encode again and come out of a fresh deframer the same.
//!
//! Input: 4 bytes of set-up, then the stream.
//! - byte 0: chunks per munro (1 to 8); byte 1: chunk length (1 to 128);
//! - byte 2, flags: 1 = make the stream start with a well-formed header (magic, version, kind, lengths cut
//!   to the bytes there are, the right checksum), so that most inputs reach the metadata and the data;
//!   2 = number the chunks from near `u64::MAX`; 4 = leave out the chunk that byte 3 names; 8 = and report
//!   it skipped;
//! - byte 3: the chunk to leave out.
#![cfg_attr(fuzzing, no_main)]
use segment_swarm::frame::{Deframer, HEADER_LEN, MAGIC, Record, SegmentMeta, VERSION};

fn checksum(head: &[u8], meta: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&head[..12]);
    h.update(meta);
    h.finalize()
}

/// Makes `s` start with a header that checks out over what follows it.
fn fix_header(s: &mut [u8]) {
    if s.len() < HEADER_LEN {
        return;
    }
    s[..4].copy_from_slice(&MAGIC);
    s[4] = VERSION;
    let end = s[5] & 1 == 1;
    s[5] = if end { 2 } else { 1 };
    let rest = s.len() - HEADER_LEN;
    let meta_len = usize::from(u16::from_be_bytes([s[6], s[7]])) % (rest + 1);
    let data_len = if end {
        0
    } else {
        u32::from_be_bytes([s[8], s[9], s[10], s[11]]) as usize % (rest - meta_len + 1)
    };
    s[6..8].copy_from_slice(&(meta_len as u16).to_be_bytes());
    s[8..12].copy_from_slice(&(data_len as u32).to_be_bytes());
    let crc = checksum(s, &s[HEADER_LEN..HEADER_LEN + meta_len]);
    s[12..16].copy_from_slice(&crc.to_be_bytes());
}

fn close(a: f64, b: f64) -> bool {
    // JSON numbers are parsed to the nearest double or one next to it
    a == b || (a - b).abs() <= a.abs().max(b.abs()) * 1e-14 || (a - b).abs() < 1e-300
}

fn same_meta(a: &SegmentMeta, b: &SegmentMeta) -> bool {
    let mut a2 = a.clone();
    let mut b2 = b.clone();
    let mut ok = close(a.duration, b.duration);
    a2.duration = 0.0;
    b2.duration = 0.0;
    if let (Some(x), Some(y)) = (&mut a2.rendition, &mut b2.rendition) {
        ok &= close(x.target_duration, y.target_duration);
        x.target_duration = 0.0;
        y.target_duration = 0.0;
    }
    ok && a2 == b2
}

fn same(a: &Record, b: &Record) -> bool {
    match (a, b) {
        (Record::Segment { meta: ma, data: da }, Record::Segment { meta: mb, data: db }) => {
            da == db && same_meta(ma, mb)
        }
        _ => a == b,
    }
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

/// The target's body; also run by the crate's tests (tests/fuzz_targets.rs).
pub fn run(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let per = u64::from(data[0] & 7) + 1;
    let chunk_len = usize::from(data[1] & 127) + 1;
    let flags = data[2];
    let drop = usize::from(data[3]);
    let mut stream = data[4..].to_vec();
    if flags & 1 != 0 {
        fix_header(&mut stream);
    }
    let base = if flags & 2 != 0 {
        let b = u64::MAX - (stream.len() / chunk_len) as u64;
        b - b % per
    } else {
        0
    };
    let mut d = Deframer::new(per);
    let mut out = Vec::new();
    for (i, c) in stream.chunks(chunk_len).enumerate() {
        let n = base + i as u64;
        if flags & 4 != 0 && i == drop {
            if flags & 8 != 0 {
                out.extend(d.skipped(n, n).map(Err));
            }
            continue;
        }
        out.extend(d.chunk(n, c));
    }
    let _ = d.in_record_since();
    assert!(d.stats.records as usize <= out.len());
    for r in out.into_iter().flatten() {
        // what came out goes in again: the same record
        let align = chunk_len * per as usize;
        let Ok(bytes) = r.encode(align) else {
            // re-serialized metadata may be a few bytes longer than what was sent (`5` becomes `5.0`)
            continue;
        };
        let mut d = Deframer::new(per);
        let again: Vec<_> = bytes
            .chunks(chunk_len)
            .enumerate()
            .flat_map(|(i, c)| d.chunk(i as u64, c))
            .collect();
        assert_eq!(again.len(), 1, "{r:?}");
        let got = again[0].as_ref().expect("an encoded record deframes");
        assert!(same(got, &r), "{got:?} != {r:?}");
    }
}
