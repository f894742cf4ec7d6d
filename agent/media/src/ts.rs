//! A small, strict MPEG-TS demuxer and muxer for H.264 video with optional audio.
//!
//! The demuxer splits one segment into video access units and whole audio PES packets, which the muxer copies
//! byte for byte into each rendition. Video PES payloads are joined into one elementary stream and cut into
//! access units by the H.264 rules ([`crate::h264::access_units`]), so a PES that carries several pictures, a
//! picture split over several PES, and PES without timestamps (interpolated) all demux.
//! It is strict on framing on purpose: a segment that lost packets or bytes is reported, not silently patched.

/// Length of a TS packet.
pub const PACKET: usize = 188;
/// 90 kHz timestamps are 33 bits wide.
pub const TS_MASK: u64 = (1 << 33) - 1;
/// H.264 elementary stream type in a PMT.
pub const STREAM_TYPE_H264: u8 = 0x1b;
/// AAC with ADTS framing.
pub const STREAM_TYPE_AAC_ADTS: u8 = 0x0f;

const PID_PAT: u16 = 0;
const PID_PMT: u16 = 0x1000;
const PID_VIDEO: u16 = 0x100;
const PID_AUDIO: u16 = 0x101;

/// Why a segment could not be demuxed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TsError {
    #[error("empty segment (0 bytes)")]
    Empty,
    #[error("truncated: {len} bytes is not a whole number of 188-byte TS packets")]
    Truncated { len: usize },
    #[error("lost sync: no 0x47 sync byte at byte offset {offset}")]
    LostSync { offset: usize },
    #[error(
        "continuity counter jump on PID {pid:#x} at packet {packet}: expected {expected}, got {got} (packets lost or corrupt)"
    )]
    Continuity {
        pid: u16,
        packet: usize,
        expected: u8,
        got: u8,
    },
    #[error("no PAT/PMT found")]
    NoProgram,
    #[error("no video stream: the program carries only stream types {0:02x?} (audio-only?)")]
    NoVideo(Vec<u8>),
    #[error("video stream type {0:#04x} ({name}) is not H.264 (0x1b): only H.264 is transcoded", name = video_codec_name(*.0))]
    NotH264(u8),
    #[error("zero video frames in the segment")]
    NoFrames,
    #[error("malformed PES on PID {pid:#x}: {why}")]
    BadPes { pid: u16, why: &'static str },
    #[error("malformed {table}: {why}")]
    BadTable {
        table: &'static str,
        why: &'static str,
    },
}

/// The name of a video stream type of a PMT.
pub fn video_codec_name(stream_type: u8) -> &'static str {
    match stream_type {
        0x01 => "MPEG-1 video",
        0x02 => "MPEG-2 video",
        0x10 => "MPEG-4 part 2",
        0x1b => "H.264",
        0x24 => "HEVC (H.265)",
        0x42 => "AVS",
        0xea => "VC-1",
        _ => "unknown",
    }
}

/// One H.264 access unit (Annex-B bytes) with its 90 kHz timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoAu {
    pub pts: u64,
    pub dts: u64,
    pub key: bool,
    pub data: Vec<u8>,
}

/// One audio PES packet, kept whole (header and payload) so it can be copied unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioPes {
    pub pts: u64,
    pub pes: Vec<u8>,
}

/// A demuxed segment.
#[derive(Debug, Clone, Default)]
pub struct Demuxed {
    pub video: Vec<VideoAu>,
    pub audio: Vec<AudioPes>,
    /// Stream type of the audio stream, if the program has one.
    pub audio_stream_type: Option<u8>,
    /// The audio elementary stream's ES-info descriptors, copied into the muxed PMT.
    pub audio_descriptors: Vec<u8>,
}

fn read_ts(b: &[u8]) -> u64 {
    (((b[0] as u64 >> 1) & 0x07) << 30)
        | ((b[1] as u64) << 22)
        | (((b[2] as u64) >> 1) << 15)
        | ((b[3] as u64) << 7)
        | ((b[4] as u64) >> 1)
}

fn write_ts(prefix: u8, ts: u64, out: &mut Vec<u8>) {
    let ts = ts & TS_MASK;
    out.push((prefix << 4) | (((ts >> 30) as u8 & 0x07) << 1) | 1);
    out.push((ts >> 22) as u8);
    out.push((((ts >> 15) as u8) << 1) | 1);
    out.push((ts >> 7) as u8);
    out.push(((ts as u8) << 1) | 1);
}

/// Parsed PES header: (pts, dts, payload offset).
fn parse_pes_header(pes: &[u8], pid: u16) -> Result<(Option<u64>, Option<u64>, usize), TsError> {
    let bad = |why| TsError::BadPes { pid, why };
    if pes.len() < 9 || pes[0..3] != [0, 0, 1] {
        return Err(bad("missing start code"));
    }
    let declared = u16::from_be_bytes([pes[4], pes[5]]) as usize;
    if declared != 0 && declared + 6 > pes.len() {
        return Err(bad("shorter than its declared length (truncated)"));
    }
    let flags = pes[7] >> 6;
    let hlen = pes[8] as usize;
    if 9 + hlen > pes.len() {
        return Err(bad("header longer than the packet"));
    }
    // a declared length that ends inside the header: what is kept of the packet would not parse again
    if declared != 0 && declared < 3 + hlen {
        return Err(bad("declared length shorter than its header"));
    }
    let (mut pts, mut dts) = (None, None);
    if flags & 0b10 != 0 {
        if hlen < 5 {
            return Err(bad("PTS flag set but header too short"));
        }
        pts = Some(read_ts(&pes[9..14]));
        dts = pts;
        if flags == 0b11 {
            if hlen < 10 {
                return Err(bad("DTS flag set but header too short"));
            }
            dts = Some(read_ts(&pes[14..19]));
        }
    }
    Ok((pts, dts, 9 + hlen))
}

/// The section a PSI packet's payload starts (after its pointer field). A packet that announces a section
/// start (PUSI) but whose adaptation field leaves it no payload has no pointer field: an error.
fn section_start<'a>(payload: &'a [u8], table: &'static str) -> Result<&'a [u8], TsError> {
    let (&pointer, rest) = payload.split_first().ok_or(TsError::BadTable {
        table,
        why: "section start with an empty payload (no pointer field)",
    })?;
    rest.get(usize::from(pointer)..).ok_or(TsError::BadTable {
        table,
        why: "pointer past end",
    })
}

/// Does this Annex-B access unit contain an IDR slice?
pub fn has_idr(data: &[u8]) -> bool {
    nal_units(data).any(|n| !n.is_empty() && n[0] & 0x1f == 5)
}

/// One video PES: its timestamps (either may be absent) and its payload.
#[derive(Debug, Clone)]
pub struct PesChunk {
    pub pts: Option<u64>,
    pub dts: Option<u64>,
    pub payload: Vec<u8>,
}

/// Iterate over the NAL units (without start codes) of an Annex-B buffer.
pub fn nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        let mut e = if k + 1 < starts.len() {
            starts[k + 1] - 3
        } else {
            data.len()
        };
        while e > s && data[e - 1] == 0 && k + 1 < starts.len() {
            e -= 1;
        }
        out.push(&data[s..e]);
    }
    out.into_iter()
}

/// Demux one segment. Strict: byte loss, continuity jumps and malformed PES are errors.
pub fn demux(data: &[u8]) -> Result<Demuxed, TsError> {
    if data.is_empty() {
        return Err(TsError::Empty);
    }
    if data.len() % PACKET != 0 {
        return Err(TsError::Truncated { len: data.len() });
    }
    let mut pmt_pid = None;
    let mut video: Option<(u16, u8)> = None;
    let mut audio: Option<(u16, u8, Vec<u8>)> = None;
    let mut other_types = Vec::new();
    let mut cc: std::collections::HashMap<u16, u8> = Default::default();
    let mut vbuf: Option<Vec<u8>> = None;
    let mut abuf: Option<Vec<u8>> = None;
    let mut out = Demuxed::default();

    // video PES payloads with their timestamps, assembled into access units at the end
    let mut vchunks: Vec<PesChunk> = Vec::new();
    let finish_video =
        |buf: Vec<u8>, pid: u16, chunks: &mut Vec<PesChunk>| -> Result<(), TsError> {
            let (pts, dts, off) = parse_pes_header(&buf, pid)?;
            if buf.len() > off {
                chunks.push(PesChunk {
                    pts,
                    dts,
                    payload: buf[off..].to_vec(),
                });
            }
            Ok(())
        };
    let finish_audio = |buf: Vec<u8>, pid: u16, out: &mut Demuxed| -> Result<(), TsError> {
        let (pts, _, _) = parse_pes_header(&buf, pid)?;
        let pts = pts.ok_or(TsError::BadPes {
            pid,
            why: "audio PES without PTS",
        })?;
        let declared = u16::from_be_bytes([buf[4], buf[5]]) as usize;
        let pes = if declared != 0 {
            buf[..declared + 6].to_vec()
        } else {
            buf
        };
        out.audio.push(AudioPes { pts, pes });
        Ok(())
    };

    for (n, pkt) in data.chunks(PACKET).enumerate() {
        if pkt[0] != 0x47 {
            return Err(TsError::LostSync { offset: n * PACKET });
        }
        let pusi = pkt[1] & 0x40 != 0;
        let pid = (u16::from(pkt[1] & 0x1f) << 8) | u16::from(pkt[2]);
        let afc = (pkt[3] >> 4) & 0x3;
        let counter = pkt[3] & 0x0f;
        if pid == 0x1fff {
            continue;
        }
        let mut off = 4;
        if afc & 0b10 != 0 {
            let alen = pkt[4] as usize;
            off = 5 + alen;
            if off > PACKET {
                return Err(TsError::BadPes {
                    pid,
                    why: "adaptation field longer than the packet",
                });
            }
        }
        let has_payload = afc & 0b01 != 0;
        if has_payload {
            if let Some(&prev) = cc.get(&pid) {
                let expected = (prev + 1) & 0x0f;
                // a repeated packet (same counter) is allowed once by the standard
                if counter != expected && counter != prev {
                    return Err(TsError::Continuity {
                        pid,
                        packet: n,
                        expected,
                        got: counter,
                    });
                }
            }
            cc.insert(pid, counter);
        } else {
            continue;
        }
        let payload = &pkt[off..];
        if pid == PID_PAT && pusi {
            let p = section_start(payload, "PAT")?;
            if p.len() < 8 || p[0] != 0 {
                return Err(TsError::BadTable {
                    table: "PAT",
                    why: "not a PAT section",
                });
            }
            let slen = ((usize::from(p[1] & 0x0f)) << 8) | usize::from(p[2]);
            let end = (3 + slen).saturating_sub(4).min(p.len());
            let mut i = 8;
            while i + 4 <= end {
                let prog = u16::from_be_bytes([p[i], p[i + 1]]);
                let ppid = (u16::from(p[i + 2] & 0x1f) << 8) | u16::from(p[i + 3]);
                if prog != 0 {
                    pmt_pid = Some(ppid);
                    break;
                }
                i += 4;
            }
            continue;
        }
        if Some(pid) == pmt_pid && pusi {
            let p = section_start(payload, "PMT")?;
            if p.len() < 12 || p[0] != 2 {
                return Err(TsError::BadTable {
                    table: "PMT",
                    why: "not a PMT section",
                });
            }
            let slen = ((usize::from(p[1] & 0x0f)) << 8) | usize::from(p[2]);
            let end = (3 + slen).saturating_sub(4).min(p.len());
            let pinfo = ((usize::from(p[10] & 0x0f)) << 8) | usize::from(p[11]);
            let mut i = 12 + pinfo;
            let (mut v, mut a) = (None, None);
            other_types.clear();
            while i + 5 <= end {
                let st = p[i];
                let epid = (u16::from(p[i + 1] & 0x1f) << 8) | u16::from(p[i + 2]);
                let ilen = ((usize::from(p[i + 3] & 0x0f)) << 8) | usize::from(p[i + 4]);
                let desc = p.get(i + 5..i + 5 + ilen).unwrap_or(&[]).to_vec();
                match st {
                    0x01 | 0x02 | 0x10 | 0x1b | 0x24 | 0x42 | 0xea if v.is_none() => {
                        v = Some((epid, st))
                    }
                    0x03 | 0x04 | 0x0f | 0x11 | 0x81 if a.is_none() => a = Some((epid, st, desc)),
                    _ => {}
                }
                other_types.push(st);
                i += 5 + ilen;
            }
            if video.is_none() {
                video = v;
            }
            if audio.is_none() {
                audio = a;
            }
            continue;
        }
        if let Some((vpid, _)) = video
            && pid == vpid
        {
            if pusi {
                if let Some(buf) = vbuf.take() {
                    finish_video(buf, pid, &mut vchunks)?;
                }
                vbuf = Some(payload.to_vec());
            } else if let Some(buf) = vbuf.as_mut() {
                buf.extend_from_slice(payload);
            }
            continue;
        }
        if let Some((apid, _, _)) = &audio
            && pid == *apid
        {
            if pusi {
                if let Some(buf) = abuf.take() {
                    finish_audio(buf, pid, &mut out)?;
                }
                abuf = Some(payload.to_vec());
            } else if let Some(buf) = abuf.as_mut() {
                buf.extend_from_slice(payload);
            }
        }
    }
    if pmt_pid.is_none() || (video.is_none() && audio.is_none() && other_types.is_empty()) {
        return Err(TsError::NoProgram);
    }
    let Some((vpid, vtype)) = video else {
        return Err(TsError::NoVideo(other_types));
    };
    if vtype != STREAM_TYPE_H264 {
        return Err(TsError::NotH264(vtype));
    }
    if let Some(buf) = vbuf.take() {
        finish_video(buf, vpid, &mut vchunks)?;
    }
    out.video = crate::h264::access_units(&vchunks);
    if let Some((apid, atype, desc)) = audio {
        if let Some(buf) = abuf.take() {
            finish_audio(buf, apid, &mut out)?;
        }
        out.audio_stream_type = Some(atype);
        out.audio_descriptors = desc;
    }
    if out.video.is_empty() {
        return Err(TsError::NoFrames);
    }
    Ok(out)
}

/// CRC-32/MPEG-2 as used by PSI sections.
pub fn crc32_mpeg(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The longest prefix of a descriptor loop (tag, length, data) that holds only whole descriptors and at most
/// `room` bytes.
fn whole_descriptors(desc: &[u8], room: usize) -> &[u8] {
    let mut end = 0;
    while let Some(&len) = desc.get(end + 1) {
        let next = end + 2 + usize::from(len);
        if next > desc.len() || next > room {
            break;
        }
        end = next;
    }
    &desc[..end]
}

/// A TS muxer for one rendition: PAT + PMT at every segment start, video PID 0x100, audio PID 0x101.
/// Keeps continuity counters across segments so consecutive segments concatenate cleanly.
#[derive(Debug, Default, Clone)]
pub struct TsMuxer {
    cc_pat: u8,
    cc_pmt: u8,
    cc_video: u8,
    cc_audio: u8,
}

/// One encoded frame to mux.
#[derive(Debug, Clone)]
pub struct EncodedFrame<'a> {
    pub pts: u64,
    pub dts: u64,
    pub key: bool,
    pub data: &'a [u8],
}

impl<'a> From<&'a VideoAu> for EncodedFrame<'a> {
    /// A demuxed access unit, muxed again as it came.
    fn from(a: &'a VideoAu) -> Self {
        EncodedFrame {
            pts: a.pts,
            dts: a.dts,
            key: a.key,
            data: &a.data,
        }
    }
}

impl TsMuxer {
    pub fn new() -> Self {
        Self::default()
    }

    fn section_packet(pid: u16, cc: &mut u8, section: &[u8], out: &mut Vec<u8>) {
        let mut pkt = vec![
            0x47,
            0x40 | (pid >> 8) as u8,
            pid as u8,
            0x10 | (*cc & 0x0f),
            0,
        ];
        *cc = (*cc + 1) & 0x0f;
        pkt.extend_from_slice(section);
        pkt.resize(PACKET, 0xff);
        out.extend_from_slice(&pkt);
    }

    fn psi(&mut self, has_video: bool, audio: Option<(u8, &[u8])>, out: &mut Vec<u8>) {
        // PAT: program 1 -> PMT PID
        let mut pat = vec![0x00, 0xb0, 0, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01];
        pat.extend_from_slice(&[0xe0 | (PID_PMT >> 8) as u8, PID_PMT as u8]);
        let len = pat.len() - 3 + 4;
        pat[1] = 0xb0 | ((len >> 8) as u8 & 0x0f);
        pat[2] = len as u8;
        let crc = crc32_mpeg(&pat);
        pat.extend_from_slice(&crc.to_be_bytes());
        Self::section_packet(PID_PAT, &mut self.cc_pat, &pat, out);
        // PMT
        let mut pmt = vec![0x02, 0xb0, 0, 0x00, 0x01, 0xc1, 0x00, 0x00];
        let pcr_pid = if has_video { PID_VIDEO } else { PID_AUDIO };
        pmt.extend_from_slice(&[0xe0 | (pcr_pid >> 8) as u8, pcr_pid as u8, 0xf0, 0x00]);
        if has_video {
            pmt.extend_from_slice(&[
                STREAM_TYPE_H264,
                0xe0 | (PID_VIDEO >> 8) as u8,
                PID_VIDEO as u8,
                0xf0,
                0x00,
            ]);
        }
        if let Some((st, desc)) = audio {
            // the section must fit one packet (after the pointer field), with the audio entry and the CRC
            let room = PACKET - 5 - (pmt.len() + 5 + 4);
            let desc = whole_descriptors(desc, room);
            let dl = desc.len();
            pmt.extend_from_slice(&[st, 0xe0 | (PID_AUDIO >> 8) as u8, PID_AUDIO as u8]);
            pmt.extend_from_slice(&[0xf0 | (dl >> 8) as u8, dl as u8]);
            pmt.extend_from_slice(desc);
        }
        let len = pmt.len() - 3 + 4;
        pmt[1] = 0xb0 | ((len >> 8) as u8 & 0x0f);
        pmt[2] = len as u8;
        let crc = crc32_mpeg(&pmt);
        pmt.extend_from_slice(&crc.to_be_bytes());
        Self::section_packet(PID_PMT, &mut self.cc_pmt, &pmt, out);
    }

    /// Split a PES into TS packets. `pcr` and `rai` go in the first packet's adaptation field.
    fn packetize(
        pid: u16,
        cc: &mut u8,
        pes: &[u8],
        pcr: Option<u64>,
        rai: bool,
        out: &mut Vec<u8>,
    ) {
        let mut rest = pes;
        let mut first = true;
        while !rest.is_empty() {
            let mut af: Vec<u8> = Vec::new();
            if first && (pcr.is_some() || rai) {
                let mut flags = 0u8;
                if rai {
                    flags |= 0x40;
                }
                af.push(0); // length, patched below
                if let Some(pcr) = pcr {
                    flags |= 0x10;
                    af.push(flags);
                    let base = pcr & TS_MASK;
                    af.extend_from_slice(&[
                        (base >> 25) as u8,
                        (base >> 17) as u8,
                        (base >> 9) as u8,
                        (base >> 1) as u8,
                        (((base & 1) as u8) << 7) | 0x7e,
                        0,
                    ]);
                } else {
                    af.push(flags);
                }
            }
            let room = PACKET - 4 - af.len();
            if rest.len() < room {
                // stuffing through the adaptation field
                let need = room - rest.len();
                if af.is_empty() {
                    if need == 1 {
                        af.push(0);
                    } else {
                        af.push(0);
                        af.push(0);
                        af.extend(std::iter::repeat_n(0xff, need - 2));
                    }
                } else {
                    af.extend(std::iter::repeat_n(0xff, need));
                }
            }
            if !af.is_empty() {
                af[0] = (af.len() - 1) as u8;
            }
            let take = (PACKET - 4 - af.len()).min(rest.len());
            let afc = if af.is_empty() { 0x10 } else { 0x30 };
            out.extend_from_slice(&[
                0x47,
                if first { 0x40 } else { 0 } | (pid >> 8) as u8,
                pid as u8,
                afc | (*cc & 0x0f),
            ]);
            *cc = (*cc + 1) & 0x0f;
            out.extend_from_slice(&af);
            out.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            first = false;
        }
    }

    fn video_pes(f: &EncodedFrame) -> Vec<u8> {
        let aud: &[u8] = &[0, 0, 0, 1, 9, 0xf0];
        let has_aud = nal_units(f.data)
            .next()
            .is_some_and(|n| !n.is_empty() && n[0] & 0x1f == 9);
        let with_dts = f.dts != f.pts;
        let hlen = if with_dts { 10 } else { 5 };
        let body = f.data.len() + if has_aud { 0 } else { aud.len() };
        let total = 3 + hlen + body;
        let len = if total > 0xffff { 0 } else { total as u16 };
        let mut pes = Vec::with_capacity(9 + hlen + body);
        pes.extend_from_slice(&[0, 0, 1, 0xe0]);
        pes.extend_from_slice(&len.to_be_bytes());
        pes.extend_from_slice(&[0x80, if with_dts { 0xc0 } else { 0x80 }, hlen as u8]);
        write_ts(if with_dts { 3 } else { 2 }, f.pts, &mut pes);
        if with_dts {
            write_ts(1, f.dts, &mut pes);
        }
        if !has_aud {
            pes.extend_from_slice(aud);
        }
        pes.extend_from_slice(f.data);
        pes
    }

    /// Mux one segment: PAT/PMT, then video frames and audio PES interleaved by decode time.
    /// The PMT lists H.264 video unless the segment has no video frames but has audio.
    /// Audio PES bytes are copied unchanged.
    pub fn mux_segment(
        &mut self,
        video: &[EncodedFrame],
        audio: &[AudioPes],
        audio_type: Option<(u8, &[u8])>,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let audio_type = if audio.is_empty() && audio_type.is_none() {
            None
        } else {
            audio_type.or(Some((STREAM_TYPE_AAC_ADTS, &[][..])))
        };
        // an audio-only segment (only sources make those) gets no video stream in its PMT
        self.psi(
            !video.is_empty() || audio_type.is_none(),
            audio_type,
            &mut out,
        );
        let (mut vi, mut ai) = (0, 0);
        // compare on unwrapped differences relative to the first video DTS to survive the 33-bit wrap
        let base = video
            .first()
            .map(|f| f.dts)
            .or(audio.first().map(|a| a.pts))
            .unwrap_or(0);
        let rel = |t: u64| -> i64 {
            let d = t.wrapping_sub(base) & TS_MASK;
            if d > TS_MASK / 2 {
                d as i64 - (TS_MASK as i64 + 1)
            } else {
                d as i64
            }
        };
        while vi < video.len() || ai < audio.len() {
            let take_video = match (video.get(vi), audio.get(ai)) {
                (Some(v), Some(a)) => rel(v.dts) <= rel(a.pts),
                (Some(_), None) => true,
                _ => false,
            };
            if take_video {
                let f = &video[vi];
                let pes = Self::video_pes(f);
                let pcr = f.dts.wrapping_sub(9000) & TS_MASK; // 100 ms before decode time
                Self::packetize(
                    PID_VIDEO,
                    &mut self.cc_video,
                    &pes,
                    Some(pcr),
                    f.key,
                    &mut out,
                );
                vi += 1;
            } else {
                Self::packetize(
                    PID_AUDIO,
                    &mut self.cc_audio,
                    &audio[ai].pes,
                    None,
                    false,
                    &mut out,
                );
                ai += 1;
            }
        }
        out
    }
}

/// Build an audio PES (stream id 0xc0) around ADTS frames, for sources that start from elementary streams.
pub fn audio_pes(pts: u64, payload: &[u8]) -> AudioPes {
    let total = 3 + 5 + payload.len();
    let len = if total > 0xffff { 0 } else { total as u16 };
    let mut pes = vec![0, 0, 1, 0xc0];
    pes.extend_from_slice(&len.to_be_bytes());
    pes.extend_from_slice(&[0x80, 0x80, 5]);
    write_ts(2, pts, &mut pes);
    pes.extend_from_slice(payload);
    AudioPes {
        pts: pts & TS_MASK,
        pes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(key: bool, n: usize) -> Vec<u8> {
        let mut d = vec![0, 0, 0, 1, if key { 0x65 } else { 0x41 }];
        d.extend((0..n).map(|i| (i % 251) as u8 | 1));
        d
    }

    #[test]
    fn mux_demux_roundtrip_keeps_audio_unchanged() {
        let frames: Vec<Vec<u8>> = (0..10)
            .map(|i| frame(i == 0, 300 + i as usize * 97))
            .collect();
        let enc: Vec<EncodedFrame> = frames
            .iter()
            .enumerate()
            .map(|(i, d)| EncodedFrame {
                pts: 9000 + 3003 * i as u64 + 3003,
                dts: 9000 + 3003 * i as u64,
                key: i == 0,
                data: d,
            })
            .collect();
        let audio: Vec<AudioPes> = (0..5)
            .map(|i| audio_pes(9000 + 1920 * i, &vec![0xaa; 200 + i as usize]))
            .collect();
        let mut mux = TsMuxer::new();
        let ts = mux.mux_segment(&enc, &audio, Some((STREAM_TYPE_AAC_ADTS, &[])));
        assert_eq!(ts.len() % PACKET, 0);
        let d = demux(&ts).unwrap();
        assert_eq!(d.video.len(), 10);
        assert!(d.video[0].key && !d.video[1].key);
        assert_eq!(d.video[3].pts, 9000 + 3003 * 4);
        assert_eq!(d.video[3].dts, 9000 + 3003 * 3);
        assert_eq!(d.audio, audio);
        assert_eq!(d.audio_stream_type, Some(STREAM_TYPE_AAC_ADTS));
        // a second segment from the same muxer continues the counters
        let ts2 = mux.mux_segment(&enc, &[], None);
        let mut both = ts.clone();
        both.extend_from_slice(&ts2);
        demux(&both).unwrap();
    }

    #[test]
    fn timestamps_wrap() {
        let d = frame(true, 10);
        let enc = [EncodedFrame {
            pts: TS_MASK - 10,
            dts: TS_MASK - 10,
            key: true,
            data: &d,
        }];
        let ts = TsMuxer::new().mux_segment(&enc, &[], None);
        assert_eq!(demux(&ts).unwrap().video[0].pts, TS_MASK - 10);
    }

    #[test]
    fn bad_inputs() {
        let d = frame(true, 5000);
        let enc = [EncodedFrame {
            pts: 100,
            dts: 100,
            key: true,
            data: &d,
        }];
        let audio = [audio_pes(100, &[1, 2, 3])];
        let ts = TsMuxer::new().mux_segment(&enc, &audio, Some((STREAM_TYPE_AAC_ADTS, &[])));
        assert_eq!(demux(&[]).unwrap_err(), TsError::Empty);
        assert_eq!(
            demux(&ts[..ts.len() - 50]).unwrap_err(),
            TsError::Truncated { len: ts.len() - 50 }
        );
        let mut bad = ts.clone();
        bad[PACKET * 3] = 0;
        assert_eq!(
            demux(&bad).unwrap_err(),
            TsError::LostSync { offset: PACKET * 3 }
        );
        // drop one video packet in the middle: continuity error
        let mut lost = ts[..PACKET * 4].to_vec();
        lost.extend_from_slice(&ts[PACKET * 5..]);
        assert!(matches!(
            demux(&lost).unwrap_err(),
            TsError::Continuity { pid: 0x100, .. }
        ));
        // audio only
        let a = TsMuxer::new().mux_segment(&[], &audio, Some((STREAM_TYPE_AAC_ADTS, &[])));
        assert_eq!(
            demux(&a).unwrap_err(),
            TsError::NoVideo(vec![STREAM_TYPE_AAC_ADTS])
        );
        // PAT/PMT only: zero frames
        let z = TsMuxer::new().mux_segment(&[], &[], None);
        assert_eq!(demux(&z).unwrap_err(), TsError::NoFrames);
    }

    #[test]
    fn a_pes_whose_declared_length_ends_inside_its_header_is_refused() {
        // Accepted, it came out cut to its declared length, shorter than a PES header: the segment muxed
        // from it did not demux again.
        let d = frame(true, 50);
        let enc = [EncodedFrame {
            pts: 100,
            dts: 100,
            key: true,
            data: &d,
        }];
        let mut audio = audio_pes(100, &[1, 2, 3]);
        audio.pes[4..6].copy_from_slice(&2u16.to_be_bytes());
        let ts = TsMuxer::new().mux_segment(&enc, &[audio], Some((STREAM_TYPE_AAC_ADTS, &[])));
        assert_eq!(
            demux(&ts).unwrap_err(),
            TsError::BadPes {
                pid: 0x101,
                why: "declared length shorter than its header"
            }
        );
    }

    /// One TS packet whose adaptation field fills it: `afc` 0b11 (announces a payload that has no room) or
    /// 0b10 (adaptation only), adaptation_field_length 183.
    fn adaptation_only_packet(pid: u16, pusi: bool, afc: u8, cc: u8) -> Vec<u8> {
        let mut pkt = vec![
            0x47,
            if pusi { 0x40 } else { 0 } | (pid >> 8) as u8,
            pid as u8,
            (afc << 4) | (cc & 0x0f),
            183,
            0x00,
        ];
        pkt.resize(PACKET, 0xff);
        pkt
    }

    #[test]
    fn pat_packets_with_an_empty_payload_are_an_error_not_a_panic() {
        for afc in [0b11, 0b10] {
            let seg: Vec<u8> = (0..3)
                .flat_map(|cc| adaptation_only_packet(PID_PAT, true, afc, cc))
                .collect();
            assert_eq!(seg.len(), 564);
            let err = demux(&seg).unwrap_err();
            if afc == 0b11 {
                assert!(
                    matches!(err, TsError::BadTable { table: "PAT", .. }),
                    "{err}"
                );
            } else {
                assert_eq!(err, TsError::NoProgram);
            }
        }
    }

    #[test]
    fn pmt_packet_with_an_empty_payload_is_an_error_not_a_panic() {
        // a good PAT (program 1 on PID 0x1000), then a PMT packet whose payload is empty
        let good = TsMuxer::new().mux_segment(&[], &[], None);
        let mut seg = good[..PACKET].to_vec();
        seg.extend(adaptation_only_packet(PID_PMT, true, 0b11, 0));
        let err = demux(&seg).unwrap_err();
        assert!(
            matches!(err, TsError::BadTable { table: "PMT", .. }),
            "{err}"
        );
    }

    #[test]
    fn pmt_with_long_audio_descriptors_still_fits_its_packet() {
        // 40 ISO 639 language descriptors (4 bytes each): as much as an input PMT packet can carry
        let desc: Vec<u8> = (0..40u8).flat_map(|i| [0x0a, 2, b'a', i]).collect();
        let d = frame(true, 100);
        let enc = [EncodedFrame {
            pts: 100,
            dts: 100,
            key: true,
            data: &d,
        }];
        let audio = [audio_pes(100, &[1, 2, 3])];
        let ts = TsMuxer::new().mux_segment(&enc, &audio, Some((STREAM_TYPE_AAC_ADTS, &desc)));
        let pmt = &ts[PACKET..2 * PACKET];
        assert_eq!(pmt[4], 0, "pointer field");
        let section = &pmt[5..];
        let len = 3 + ((usize::from(section[1] & 0x0f) << 8) | usize::from(section[2]));
        assert!(len <= section.len(), "section of {len} bytes in a packet");
        assert_eq!(crc32_mpeg(&section[..len]), 0, "CRC");
        // whole descriptors are kept, as many as fit
        let got = demux(&ts).unwrap().audio_descriptors;
        assert!(!got.is_empty() && got.len() % 4 == 0 && desc.starts_with(&got));
    }

    #[test]
    fn crc_of_known_pat() {
        // CRC-32/MPEG-2 check value of "123456789"
        assert_eq!(crc32_mpeg(b"123456789"), 0x0376_e6e7);
    }
}
