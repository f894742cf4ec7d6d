//! The record format that carries segments in a live swarm's byte stream, and its sans-IO receiver.
//!
//! ```text
//!  0      4    5     6         8          12        16          16+M         16+M+D      padded to A
//!  | ESEG | v1 | kind | meta len | data len | crc32  | meta (JSON) | data         | zeros ... |
//!                       u16 BE     u32 BE     of bytes 0..12 and the meta
//! ```
//!
//! Every record starts on a munro boundary (`A` = chunk size x chunks per munro bytes): the publisher
//! pads it with zeros to the next one. `ppspp` publishes whole munros only, so the padding is what makes a
//! record leave at once rather than wait for the next segment, and it lets a receiver that joins
//! mid-stream, or loses chunks to a playback deadline, find the next record: it looks for the magic at
//! munro-aligned chunks only and checks the header's CRC before it trusts the lengths.

use serde::{Deserialize, Serialize};

/// The first four bytes of every record.
pub const MAGIC: [u8; 4] = *b"ESEG";
/// Record format version.
pub const VERSION: u8 = 1;
/// Fixed header length.
pub const HEADER_LEN: usize = 16;
/// Largest metadata document.
pub const MAX_META: usize = 16 * 1024;
/// Largest segment carried (a few seconds of 4K video fit many times over).
pub const MAX_DATA: usize = 64 << 20;

const KIND_SEGMENT: u8 = 1;
const KIND_END: u8 = 2;

/// What a segment record says about its bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SegmentMeta {
    /// Stream id (the job's streamId for an on-chain job).
    pub stream: String,
    /// Sequence number within the stream.
    pub seq: u64,
    /// The on-chain job this segment belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<u64>,
    /// The broadcaster's EIP-191 signature over the segment hash (0x-hex), for a source segment of a job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Media duration, seconds.
    pub duration: f64,
    /// Set on a transcoded rendition's segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendition: Option<RenditionMeta>,
    /// Wall-clock time (µs since the Unix epoch) at which the broadcaster cut the segment this one is
    /// made from: carried through the transcoder so that a viewer measures glass-to-glass delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut_at_us: Option<u64>,
}

/// A rendition segment's media facts, enough for a viewer to write the same HLS playlists as the
/// transcoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RenditionMeta {
    pub profile: String,
    pub width: u32,
    pub height: u32,
    /// Frame rate (numerator, denominator).
    pub fps: (u32, u32),
    pub frames: usize,
    /// RFC 6381 codec strings.
    pub codecs: String,
    /// First video PTS, 90 kHz.
    pub first_pts: u64,
    /// The nominal segment length the playlists are written for (EXT-X-TARGETDURATION).
    pub target_duration: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
struct EndMeta {
    stream: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_seq: Option<u64>,
}

/// One record of the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Segment {
        meta: SegmentMeta,
        data: Vec<u8>,
    },
    /// The stream ended after `last_seq` (none: it carried no segment).
    End {
        stream: String,
        last_seq: Option<u64>,
    },
}

/// Why bytes of the stream were not turned into a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("record header: {0}")]
    BadHeader(String),
    #[error("record header checksum does not match")]
    Checksum,
    #[error("record metadata: {0}")]
    Meta(String),
    #[error("record {} lost: chunks {first}..={last} missing", seq.map_or("(unknown)".to_string(), |s| format!("of segment {s}")))]
    Lost {
        seq: Option<u64>,
        first: u64,
        last: u64,
    },
    #[error("record too large to encode: {0}")]
    TooLarge(String),
}

impl Record {
    /// The record's bytes, zero-padded to a multiple of `align` (the munro size in bytes).
    pub fn encode(&self, align: usize) -> Result<Vec<u8>, FrameError> {
        let (kind, meta, data): (u8, Vec<u8>, &[u8]) = match self {
            Record::Segment { meta, data } => (
                KIND_SEGMENT,
                serde_json::to_vec(meta).expect("metadata serializes"),
                data,
            ),
            Record::End { stream, last_seq } => (
                KIND_END,
                serde_json::to_vec(&EndMeta {
                    stream: stream.clone(),
                    last_seq: *last_seq,
                })
                .expect("metadata serializes"),
                &[],
            ),
        };
        if meta.len() > MAX_META {
            return Err(FrameError::TooLarge(format!(
                "{} bytes of metadata (at most {MAX_META})",
                meta.len()
            )));
        }
        if data.len() > MAX_DATA {
            return Err(FrameError::TooLarge(format!(
                "{} bytes of data (at most {MAX_DATA})",
                data.len()
            )));
        }
        let total = HEADER_LEN + meta.len() + data.len();
        let padded = total.div_ceil(align.max(1)) * align.max(1);
        let mut out = Vec::with_capacity(padded);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(kind);
        out.extend_from_slice(&(meta.len() as u16).to_be_bytes());
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let crc = checksum(&out, &meta);
        out.extend_from_slice(&crc.to_be_bytes());
        out.extend_from_slice(&meta);
        out.extend_from_slice(data);
        out.resize(padded, 0);
        Ok(out)
    }

    /// The segment's sequence number (none for an end record).
    pub fn seq(&self) -> Option<u64> {
        match self {
            Record::Segment { meta, .. } => Some(meta.seq),
            Record::End { .. } => None,
        }
    }
}

fn checksum(head: &[u8], meta: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&head[..12]);
    h.update(meta);
    h.finalize()
}

#[derive(Clone, Copy)]
struct Header {
    kind: u8,
    meta_len: usize,
    data_len: usize,
    crc: u32,
}

fn parse_header(b: &[u8]) -> Result<Header, FrameError> {
    if b[..4] != MAGIC {
        return Err(FrameError::BadHeader("no record magic".into()));
    }
    if b[4] != VERSION {
        return Err(FrameError::BadHeader(format!("version {} unknown", b[4])));
    }
    let kind = b[5];
    if kind != KIND_SEGMENT && kind != KIND_END {
        return Err(FrameError::BadHeader(format!("kind {kind} unknown")));
    }
    let meta_len = u16::from_be_bytes([b[6], b[7]]) as usize;
    let data_len = u32::from_be_bytes([b[8], b[9], b[10], b[11]]) as usize;
    if meta_len > MAX_META {
        return Err(FrameError::BadHeader(format!(
            "{meta_len} bytes of metadata"
        )));
    }
    if data_len > MAX_DATA {
        return Err(FrameError::BadHeader(format!("{data_len} bytes of data")));
    }
    if kind == KIND_END && data_len != 0 {
        return Err(FrameError::BadHeader("an end record with data".into()));
    }
    let crc = u32::from_be_bytes([b[12], b[13], b[14], b[15]]);
    Ok(Header {
        kind,
        meta_len,
        data_len,
        crc,
    })
}

/// Counters of a [`Deframer`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeframeStats {
    pub records: u64,
    /// Records cut short by missing chunks.
    pub lost: u64,
    /// Headers or metadata that failed their checks.
    pub bad: u64,
    /// Chunks passed over while looking for the next record.
    pub chunks_skipped: u64,
}

/// A record's header and metadata, once read and checked (a segment's, or an end record's).
type Head = (Header, Result<SegmentMeta, EndMeta>);

enum State {
    /// Looking for a record start at the next munro-aligned chunk.
    Hunting,
    /// Inside a record: its bytes so far; the header and metadata once read (checked once, not again with
    /// every chunk of the data), and the segment number once known.
    InRecord {
        first_chunk: u64,
        seq: Option<u64>,
        head: Option<Box<Head>>,
    },
}

/// Turns a live swarm's in-order chunks back into records. Sans-IO: feed it what the swarm delivers
/// ([`Deframer::chunk`] for `LiveData`, [`Deframer::skipped`] for `LiveSkipped`).
pub struct Deframer {
    chunks_per_munro: u64,
    state: State,
    buf: Vec<u8>,
    /// The chunk expected next; another one means chunks went missing unannounced.
    expect: Option<u64>,
    /// Bytes per chunk (from the chunks seen).
    chunk_len: usize,
    pub stats: DeframeStats,
}

impl Deframer {
    pub fn new(chunks_per_munro: u64) -> Self {
        Deframer {
            chunks_per_munro: chunks_per_munro.max(1),
            state: State::Hunting,
            buf: Vec::new(),
            expect: None,
            chunk_len: 0,
            stats: DeframeStats::default(),
        }
    }

    /// Chunks `first..=last` will not come: a record in progress is lost.
    pub fn skipped(&mut self, first: u64, last: u64) -> Option<FrameError> {
        self.expect = last.checked_add(1);
        self.lose(first, last)
    }

    fn lose(&mut self, first: u64, last: u64) -> Option<FrameError> {
        self.buf.clear();
        match std::mem::replace(&mut self.state, State::Hunting) {
            State::Hunting => None,
            State::InRecord { seq, .. } => {
                self.stats.lost += 1;
                Some(FrameError::Lost { seq, first, last })
            }
        }
    }

    /// The next chunk in order; returns what it completes.
    pub fn chunk(&mut self, chunk: u64, data: &[u8]) -> Vec<Result<Record, FrameError>> {
        let mut out = Vec::new();
        if let Some(e) = self.expect
            && chunk != e
            && let Some(err) = self.lose(e, chunk.saturating_sub(1))
        {
            out.push(Err(err));
        }
        // the last chunk number there is: nothing can follow it, so nothing is expected
        self.expect = chunk.checked_add(1);
        match self.state {
            State::Hunting => {
                self.chunk_len = data.len();
                if chunk % self.chunks_per_munro != 0 || !data.starts_with(&MAGIC) {
                    self.stats.chunks_skipped += 1;
                    return out;
                }
                self.state = State::InRecord {
                    first_chunk: chunk,
                    seq: None,
                    head: None,
                };
                self.buf.clear();
                self.buf.extend_from_slice(data);
            }
            State::InRecord { .. } => self.buf.extend_from_slice(data),
        }
        out.extend(self.records());
        out
    }

    /// Drops a record that failed its checks. Chunks already taken in after its start may hold the next
    /// record (a damaged length made it look longer): look for a record start at their munro boundaries.
    fn fail(&mut self, e: FrameError) -> Result<Record, FrameError> {
        self.stats.bad += 1;
        let buf = std::mem::take(&mut self.buf);
        let State::InRecord { first_chunk, .. } =
            std::mem::replace(&mut self.state, State::Hunting)
        else {
            return Err(e);
        };
        let munro = self
            .chunk_len
            .saturating_mul(usize::try_from(self.chunks_per_munro).unwrap_or(usize::MAX));
        if munro > 0 {
            let mut at = munro;
            while at < buf.len() {
                if buf[at..].starts_with(&MAGIC) {
                    self.state = State::InRecord {
                        first_chunk: first_chunk.saturating_add((at / self.chunk_len) as u64),
                        seq: None,
                        head: None,
                    };
                    self.buf = buf[at..].to_vec();
                    break;
                }
                at = at.saturating_add(munro);
            }
        }
        Err(e)
    }

    /// Every record the buffered bytes complete, and the errors met on the way.
    fn records(&mut self) -> Vec<Result<Record, FrameError>> {
        let mut out = Vec::new();
        while matches!(self.state, State::InRecord { .. }) {
            match self.try_record() {
                None => break,
                Some(r) => {
                    let done = r.is_ok();
                    out.push(r);
                    if done {
                        break;
                    }
                }
            }
        }
        out
    }

    fn try_record(&mut self) -> Option<Result<Record, FrameError>> {
        let State::InRecord { head, seq, .. } = &mut self.state else {
            return None;
        };
        let (h, meta_end) = match head {
            Some(hd) => (hd.0, HEADER_LEN + hd.0.meta_len),
            None => {
                if self.buf.len() < HEADER_LEN {
                    return None;
                }
                let h = match parse_header(&self.buf) {
                    Ok(h) => h,
                    Err(e) => return Some(self.fail(e)),
                };
                let meta_end = HEADER_LEN + h.meta_len;
                if self.buf.len() < meta_end {
                    return None;
                }
                if checksum(&self.buf, &self.buf[HEADER_LEN..meta_end]) != h.crc {
                    return Some(self.fail(FrameError::Checksum));
                }
                let meta = &self.buf[HEADER_LEN..meta_end];
                let parsed = if h.kind == KIND_SEGMENT {
                    serde_json::from_slice::<SegmentMeta>(meta).map(Ok)
                } else {
                    serde_json::from_slice::<EndMeta>(meta).map(Err)
                };
                let parsed = match parsed {
                    Ok(p) => p,
                    Err(e) => return Some(self.fail(FrameError::Meta(e.to_string()))),
                };
                if let Ok(m) = &parsed {
                    *seq = Some(m.seq);
                }
                *head = Some(Box::new((h, parsed)));
                (h, meta_end)
            }
        };
        let end = meta_end + h.data_len;
        if self.buf.len() < end {
            return None;
        }
        let head = match std::mem::replace(&mut self.state, State::Hunting) {
            State::InRecord { head: Some(h), .. } => h,
            // cannot be: the head was read above
            _ => return None,
        };
        let record = match head.1 {
            Ok(meta) => Record::Segment {
                meta,
                data: self.buf[meta_end..end].to_vec(),
            },
            Err(e) => Record::End {
                stream: e.stream,
                last_seq: e.last_seq,
            },
        };
        // the rest up to the next munro boundary is padding
        self.buf.clear();
        self.stats.records += 1;
        Some(Ok(record))
    }

    /// The chunk a record in progress started at.
    pub fn in_record_since(&self) -> Option<u64> {
        match self.state {
            State::InRecord { first_chunk, .. } => Some(first_chunk),
            State::Hunting => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CS: usize = 64;
    const PER: u64 = 4;

    fn seg(seq: u64, len: usize) -> Record {
        Record::Segment {
            meta: SegmentMeta {
                stream: "s".into(),
                seq,
                job_id: Some(7),
                signature: Some("0x01".into()),
                duration: 2.0,
                ..Default::default()
            },
            data: (0..len).map(|i| (i * 7 + seq as usize) as u8).collect(),
        }
    }

    /// The stream as a live swarm delivers it: (chunk number, chunk bytes).
    fn chunks(records: &[Record]) -> Vec<(u64, Vec<u8>)> {
        let mut bytes = Vec::new();
        for r in records {
            bytes.extend(r.encode(CS * PER as usize).unwrap());
        }
        bytes
            .chunks(CS)
            .enumerate()
            .map(|(i, c)| (i as u64, c.to_vec()))
            .collect()
    }

    fn feed(d: &mut Deframer, cs: &[(u64, Vec<u8>)]) -> Vec<Result<Record, FrameError>> {
        cs.iter().flat_map(|(n, c)| d.chunk(*n, c)).collect()
    }

    #[test]
    fn golden_vector() {
        let r = Record::Segment {
            meta: SegmentMeta {
                stream: "a".into(),
                seq: 1,
                duration: 2.0,
                ..Default::default()
            },
            data: vec![0xAB; 3],
        };
        let b = r.encode(64).unwrap();
        let meta = br#"{"stream":"a","seq":1,"duration":2.0}"#;
        let mut want = b"ESEG\x01\x01".to_vec();
        want.extend_from_slice(&(meta.len() as u16).to_be_bytes());
        want.extend_from_slice(&3u32.to_be_bytes());
        want.extend_from_slice(&0x8779_f9c3u32.to_be_bytes());
        want.extend_from_slice(meta);
        want.extend_from_slice(&[0xAB; 3]);
        want.resize(64, 0);
        assert_eq!(hex::encode(&b), hex::encode(&want));
        let end = Record::End {
            stream: "a".into(),
            last_seq: Some(4),
        }
        .encode(0)
        .unwrap();
        assert_eq!(
            hex::encode(&end),
            "455345470102001b000000007827f1b67b2273747265616d223a2261222c226c6173745f736571223a347d"
        );
    }

    #[test]
    fn round_trip_every_size_around_the_boundaries() {
        let mut recs: Vec<Record> = [0, 1, 100, 200, 255, 256, 257, 1000]
            .iter()
            .enumerate()
            .map(|(i, &n)| seg(i as u64, n))
            .collect();
        recs.push(Record::End {
            stream: "s".into(),
            last_seq: Some(7),
        });
        let mut d = Deframer::new(PER);
        let got: Vec<Record> = feed(&mut d, &chunks(&recs))
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, recs);
        assert_eq!(d.stats.records, 9);
    }

    #[test]
    fn joining_mid_record_finds_the_next_one() {
        let recs = vec![seg(0, 700), seg(1, 300), seg(2, 10)];
        let cs = chunks(&recs);
        // start at chunk 5: inside record 0 (12 chunks), and at a munro boundary that is no record start
        let mut d = Deframer::new(PER);
        let got: Vec<u64> = feed(&mut d, &cs[4..])
            .into_iter()
            .map(|r| r.unwrap().seq().unwrap())
            .collect();
        assert_eq!(got, vec![1, 2]);
        assert!(d.stats.chunks_skipped > 0);
    }

    #[test]
    fn skipped_chunks_lose_one_record_and_the_stream_goes_on() {
        let recs = vec![seg(0, 700), seg(1, 300), seg(2, 10)];
        let mut cs = chunks(&recs);
        // record 0 spans chunks 0..12; drop chunk 5 (announced as skipped) ...
        let mut d = Deframer::new(PER);
        let mut out = feed(&mut d, &cs[..5]);
        out.extend(d.skipped(5, 5).map(Err));
        out.extend(feed(&mut d, &cs[6..]));
        assert!(matches!(
            out[0],
            Err(FrameError::Lost {
                seq: Some(0),
                first: 5,
                last: 5
            })
        ));
        let seqs: Vec<u64> = out[1..]
            .iter()
            .map(|r| r.as_ref().unwrap().seq().unwrap())
            .collect();
        assert_eq!(seqs, vec![1, 2]);
        // ... or silently missing: the same
        cs.remove(5);
        let mut d = Deframer::new(PER);
        let out = feed(&mut d, &cs);
        assert!(matches!(out[0], Err(FrameError::Lost { seq: Some(0), .. })));
        assert_eq!(out.len(), 3);
        assert_eq!(d.stats.lost, 1);
    }

    #[test]
    fn corrupt_headers_are_errors_not_panics() {
        let recs = vec![seg(0, 100), seg(1, 100)];
        let cs = chunks(&recs);
        for i in 4..HEADER_LEN + 8 {
            let mut bad = cs.clone();
            bad[0].1[i] ^= 0x5A;
            let mut d = Deframer::new(PER);
            let out = feed(&mut d, &bad);
            // the damaged record is refused (or, for a flipped data length, cut short); the next one arrives
            assert!(out.iter().any(|r| r.is_err()), "byte {i}");
            assert_eq!(
                out.last().unwrap().as_ref().ok().and_then(Record::seq),
                Some(1),
                "byte {i}"
            );
        }
        // arbitrary bytes where a record starts
        let mut d = Deframer::new(1);
        for n in 0..64u64 {
            let junk: Vec<u8> = MAGIC
                .iter()
                .copied()
                .chain((0..60).map(|i| (i as u64 * 31 + n * 17) as u8))
                .collect();
            let _ = d.chunk(n, &junk);
        }
    }

    #[test]
    fn the_last_chunk_numbers_are_no_overflow() {
        // chunk numbers come from the swarm: the largest ones must not wrap the next expected number
        let cs = chunks(&[seg(0, 10)]);
        let mut d = Deframer::new(PER);
        let start = u64::MAX - (cs.len() as u64 - 1);
        let start = start - start % PER;
        let out: Vec<_> = cs
            .iter()
            .enumerate()
            .flat_map(|(i, (_, c))| d.chunk(start + i as u64, c))
            .collect();
        assert_eq!(out.len(), 1);
        assert!(d.chunk(u64::MAX, &cs[0].1).is_empty());
        assert!(d.chunk(0, &cs[0].1).is_empty());
        assert_eq!(
            d.skipped(0, u64::MAX),
            Some(FrameError::Lost {
                seq: None,
                first: 0,
                last: u64::MAX
            })
        );
        assert_eq!(d.skipped(5, u64::MAX), None);
    }

    #[test]
    fn oversize_records_are_refused() {
        let r = Record::Segment {
            meta: SegmentMeta {
                stream: "x".repeat(MAX_META),
                ..Default::default()
            },
            data: vec![],
        };
        assert!(matches!(r.encode(64), Err(FrameError::TooLarge(_))));
    }
}
