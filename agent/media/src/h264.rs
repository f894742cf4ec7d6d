//! The little of H.264 the engine reads itself: NAL unit boundaries, access unit boundaries (ITU-T H.264
//! 7.4.1.2.3), slice types and recovery points (to find where decoding can start), and the timestamps of
//! access units whose PES carried none.

use crate::ts::{PesChunk, TS_MASK, VideoAu};

/// NAL unit types the engine looks at.
const NAL_SLICE: u8 = 1;
const NAL_IDR: u8 = 5;
const NAL_SEI: u8 = 6;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;
/// SEI payload type of a recovery point.
const SEI_RECOVERY_POINT: u32 = 6;

/// Byte offsets of the NAL units of an Annex-B buffer: (offset of the start code, offset of the NAL header).
pub fn nal_offsets(data: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            let sc = if i > 0 && data[i - 1] == 0 { i - 1 } else { i };
            out.push((sc, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    out
}

/// The RBSP of a NAL unit's first bytes (emulation prevention bytes, 00 00 03 -> 00 00, removed), at most
/// `max` bytes.
pub(crate) fn rbsp(nal: &[u8], max: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(max.min(nal.len()));
    let mut zeros = 0;
    for &b in nal {
        if out.len() >= max {
            break;
        }
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// A bit reader over an RBSP, with Exp-Golomb codes.
pub(crate) struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bits<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Bits { data, pos: 0 }
    }

    pub(crate) fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(b))
    }

    pub(crate) fn bits(&mut self, n: u32) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Some(v)
    }

    /// Unsigned Exp-Golomb.
    pub(crate) fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        Some(((1u64 << zeros) - 1 + u64::from(rest)).min(u64::from(u32::MAX)) as u32)
    }
}

/// (first_mb_in_slice, slice_type % 5) of a slice NAL unit (header byte included).
fn slice_header(nal: &[u8]) -> Option<(u32, u32)> {
    let r = rbsp(nal.get(1..)?, 16);
    let mut b = Bits::new(&r);
    let first_mb = b.ue()?;
    let slice_type = b.ue()?;
    Some((first_mb, slice_type % 5))
}

/// Whether an SEI NAL unit carries a recovery point.
fn has_recovery_point(nal: &[u8]) -> bool {
    let r = rbsp(nal.get(1..).unwrap_or(&[]), 512);
    let mut i = 0;
    while i < r.len() && r[i] != 0x80 {
        let mut ptype = 0u32;
        while i < r.len() && r[i] == 0xff {
            ptype += 255;
            i += 1;
        }
        let Some(&last) = r.get(i) else { break };
        ptype += u32::from(last);
        i += 1;
        let mut size = 0usize;
        while i < r.len() && r[i] == 0xff {
            size += 255;
            i += 1;
        }
        let Some(&last) = r.get(i) else { break };
        size += usize::from(last);
        i += 1;
        if ptype == SEI_RECOVERY_POINT {
            return true;
        }
        i += size;
    }
    false
}

/// Where decoding can start: an access unit with an IDR slice, a recovery point SEI, or only I slices.
pub fn is_random_access(au: &[u8]) -> bool {
    let mut slices = 0;
    let mut pictures = 0;
    let mut intra = true;
    for n in crate::ts::nal_units(au) {
        let Some(&h) = n.first() else { continue };
        match h & 0x1f {
            NAL_IDR => return true,
            NAL_SEI if has_recovery_point(n) => return true,
            NAL_SLICE => {
                let header = slice_header(n);
                if matches!(header, Some((0, _))) {
                    pictures += 1;
                    // the second field of a pair may refer to the first: only the first picture counts
                    if pictures > 1 {
                        break;
                    }
                }
                slices += 1;
                // slice_type % 5: 2 = I, 4 = SI
                intra &= matches!(header, Some((_, 2 | 4)));
            }
            _ => {}
        }
    }
    slices > 0 && intra
}

/// What the slice headers of a stream need from its SPS to tell fields from frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpsTiming {
    log2_max_frame_num: u32,
    frame_mbs_only: bool,
    separate_colour_plane: bool,
}

/// Skips a scaling list of `size` coefficients (7.3.2.1.1.1).
fn skip_scaling_list(r: &mut Bits<'_>, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            let code = i64::from(r.ue()?);
            let delta = if code % 2 == 1 {
                (code + 1) / 2
            } else {
                -(code / 2)
            };
            next = (last + delta + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

/// The field-related facts of an SPS NAL unit (header byte included).
pub(crate) fn sps_timing(nal: &[u8]) -> Option<SpsTiming> {
    let data = rbsp(nal.get(1..)?, 512);
    let mut r = Bits::new(&data);
    let profile_idc = r.bits(8)?;
    r.bits(16)?; // constraints, level
    r.ue()?; // sps id
    let mut separate_colour_plane = false;
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        let chroma = r.ue()?;
        if chroma == 3 {
            separate_colour_plane = r.bit()? == 1;
        }
        r.ue()?; // bit depths
        r.ue()?;
        r.bit()?; // qpprime_y_zero_transform_bypass
        if r.bit()? == 1 {
            for i in 0..if chroma == 3 { 12 } else { 8 } {
                if r.bit()? == 1 {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    let log2_max_frame_num = r.ue()?.checked_add(4).filter(|&n| n <= 16)?;
    match r.ue()? {
        0 => {
            r.ue()?;
        }
        1 => {
            r.bit()?;
            r.ue()?; // offset_for_non_ref_pic, se(v) read as its code
            r.ue()?;
            for _ in 0..r.ue()?.min(255) {
                r.ue()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed
    r.ue()?; // width in MBs
    r.ue()?; // height in map units
    let frame_mbs_only = r.bit()? == 1;
    Some(SpsTiming {
        log2_max_frame_num,
        frame_mbs_only,
        separate_colour_plane,
    })
}

/// (frame_num, Some(bottom_field_flag) for a field) of a slice NAL unit, given its SPS.
fn picture_of(nal: &[u8], sps: &SpsTiming) -> Option<(u32, Option<bool>)> {
    let data = rbsp(nal.get(1..)?, 32);
    let mut r = Bits::new(&data);
    r.ue()?; // first_mb_in_slice
    r.ue()?; // slice_type
    r.ue()?; // pps id
    if sps.separate_colour_plane {
        r.bits(2)?;
    }
    let frame_num = r.bits(sps.log2_max_frame_num)?;
    if sps.frame_mbs_only || r.bit()? == 0 {
        return Some((frame_num, None));
    }
    Some((frame_num, Some(r.bit()? == 1)))
}

/// Whether a NAL unit starts a new access unit after one that already holds a picture (7.4.1.2.3): an
/// access unit delimiter, SPS, PPS, SEI, types 14 to 18, or the first slice of a new picture.
fn starts_access_unit(nal: &[u8]) -> bool {
    let Some(&h) = nal.first() else { return false };
    match h & 0x1f {
        NAL_AUD | NAL_SPS | NAL_PPS | NAL_SEI | 14..=18 => true,
        NAL_SLICE | NAL_IDR => nal.get(1).is_some_and(|b| b & 0x80 != 0), // first_mb_in_slice == 0
        _ => false,
    }
}

fn is_vcl(nal: &[u8]) -> bool {
    nal.first().is_some_and(|h| matches!(h & 0x1f, 1..=5))
}

/// Cuts the video elementary stream carried by `chunks` into access units. A PES timestamp belongs to the
/// first access unit that starts in that PES (ISO/IEC 13818-1 2.4.3.7); access units without one get
/// interpolated timestamps ([`interpolate`]). A stream with no start code at all is one access unit.
pub fn access_units(chunks: &[PesChunk]) -> Vec<VideoAu> {
    let mut es = Vec::with_capacity(chunks.iter().map(|c| c.payload.len()).sum());
    let mut marks = Vec::with_capacity(chunks.len()); // (offset where the PES starts, pts, dts)
    for c in chunks {
        marks.push((es.len(), c.pts, c.dts));
        es.extend_from_slice(&c.payload);
    }
    if es.is_empty() {
        return Vec::new();
    }
    // access unit start offsets: a frame, or a pair of fields (the second field of a pair stays with the
    // first, as a PES carries them, so that one unit is one decoded picture)
    let nals = nal_offsets(&es);
    let mut starts = vec![0usize];
    let mut has_vcl = false;
    // where non-picture NAL units after a picture would start the next unit, decided at its first slice
    let mut pending: Option<usize> = None;
    let mut sps: Option<SpsTiming> = None;
    // the current unit's first field: (frame_num, bottom)
    let mut first_field: Option<(u32, bool)> = None;
    for (k, &(sc, hdr)) in nals.iter().enumerate() {
        let end = nals.get(k + 1).map_or(es.len(), |n| n.0);
        let nal = &es[hdr..end.max(hdr)];
        if nal.first().is_some_and(|h| h & 0x1f == NAL_SPS) {
            sps = sps_timing(nal).or(sps);
        }
        if !is_vcl(nal) {
            if has_vcl && starts_access_unit(nal) && pending.is_none() {
                pending = Some(sc);
            }
            continue;
        }
        let field_of = |nal: &[u8]| match sps.as_ref().and_then(|s| picture_of(nal, s)) {
            Some((f, Some(bottom))) => Some((f, bottom)),
            _ => None,
        };
        if !has_vcl {
            // the first picture of this unit
            has_vcl = true;
            pending = None;
            first_field = field_of(nal);
            continue;
        }
        // a slice after non-picture units that start a new access unit (an AUD, SEI...) is a new picture
        // whatever its first_mb_in_slice says; otherwise a slice with first_mb_in_slice 0 is one
        if !(starts_access_unit(nal) || pending.is_some()) {
            continue;
        }
        let field = field_of(nal);
        let second_field = matches!(
            (first_field, field),
            (Some((f, b)), Some((g, c))) if f == g && b != c
        );
        if second_field {
            pending = None;
            first_field = None;
            continue;
        }
        starts.push(pending.take().unwrap_or(sc));
        first_field = field;
    }
    // a PES timestamp goes to the first access unit that starts inside that PES
    let mut stamps: Vec<Option<(u64, Option<u64>)>> = vec![None; starts.len()];
    for (k, &(off, pts, dts)) in marks.iter().enumerate() {
        let Some(pts) = pts else { continue };
        let pes_end = marks.get(k + 1).map_or(es.len(), |m| m.0);
        let i = starts.partition_point(|&s| s + 1 < off); // a 4-byte start code may begin one byte early
        if i < starts.len() && starts[i] < pes_end.max(off + 1) && stamps[i].is_none() {
            stamps[i] = Some((pts, dts));
        }
    }
    let mut aus: Vec<VideoAu> = starts
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let e = starts.get(i + 1).copied().unwrap_or(es.len());
            let data = es[s..e].to_vec();
            let (pts, dts) = match stamps[i] {
                Some((p, d)) => (p, d.unwrap_or(p)),
                None => (u64::MAX, u64::MAX),
            };
            VideoAu {
                pts,
                dts,
                key: is_random_access(&data),
                data,
            }
        })
        .collect();
    interpolate(&mut aus);
    aus
}

/// Fills in the timestamps of access units that had none (marked `u64::MAX`): the decode time steps on by
/// the stream's frame duration from the nearest stamped access unit, and the presentation time keeps the
/// stream's smallest PTS - DTS offset. A stream with no timestamp at all starts at 0.
pub fn interpolate(aus: &mut [VideoAu]) {
    let known: Vec<usize> = (0..aus.len()).filter(|&i| aus[i].pts != u64::MAX).collect();
    if known.len() == aus.len() {
        return;
    }
    let diff = |a: u64, b: u64| (a.wrapping_sub(b) & TS_MASK) as i64;
    // frame duration: median DTS step per access unit between consecutive stamped ones
    let mut steps: Vec<i64> = known
        .windows(2)
        .filter_map(|w| {
            let d = diff(aus[w[1]].dts, aus[w[0]].dts);
            let n = (w[1] - w[0]) as i64;
            (d > 0 && d < 90_000 * 10).then(|| d / n)
        })
        .filter(|&d| d > 0)
        .collect();
    steps.sort_unstable();
    let dur = steps.get(steps.len() / 2).copied().unwrap_or(3000);
    let offset = known
        .iter()
        .map(|&i| diff(aus[i].pts, aus[i].dts))
        .filter(|&d| d < 90_000 * 10)
        .min()
        .unwrap_or(0);
    let wrap = |t: i64| t.rem_euclid(TS_MASK as i64 + 1) as u64;
    let Some(&first) = known.first() else {
        for (i, au) in aus.iter_mut().enumerate() {
            au.dts = wrap(i as i64 * dur);
            au.pts = au.dts;
        }
        return;
    };
    for i in 0..aus.len() {
        if aus[i].pts != u64::MAX {
            continue;
        }
        // the stamped access unit before (or, for the leading ones, after) this one
        let (base, n) = match known.iter().rev().find(|&&k| k < i) {
            Some(&k) => (aus[k].dts, (i - k) as i64),
            None => (aus[first].dts, -((first - i) as i64)),
        };
        aus[i].dts = wrap(base as i64 + n * dur);
        aus[i].pts = wrap(aus[i].dts as i64 + offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slice NAL unit: header byte, then first_mb_in_slice and slice_type as Exp-Golomb codes.
    fn slice(idr: bool, first_mb_zero: bool, slice_type: u8) -> Vec<u8> {
        let mut bits = String::new();
        bits.push_str(if first_mb_zero { "1" } else { "010" }); // ue 0 or 1
        // ue(slice_type): 0 -> 1, 1 -> 010, 2 -> 011, 5 -> 00110, 7 -> 0001000
        bits.push_str(match slice_type {
            0 => "1",
            1 => "010",
            2 => "011",
            5 => "00110",
            7 => "0001000",
            _ => unreachable!(),
        });
        while bits.len() % 8 != 0 {
            bits.push('1');
        }
        let mut nal = vec![0, 0, 0, 1, if idr { 0x65 } else { 0x41 }];
        for c in bits.as_bytes().chunks(8) {
            nal.push(u8::from_str_radix(std::str::from_utf8(c).unwrap(), 2).unwrap());
        }
        nal.extend_from_slice(&[0x11, 0x22, 0x33]);
        nal
    }

    fn chunk(pts: Option<u64>, dts: Option<u64>, parts: &[&[u8]]) -> PesChunk {
        PesChunk {
            pts,
            dts,
            payload: parts.concat(),
        }
    }

    #[test]
    fn random_access_points() {
        assert!(is_random_access(&slice(true, true, 7)));
        assert!(is_random_access(&slice(false, true, 7))); // I slices only
        assert!(!is_random_access(&slice(false, true, 5))); // P
        assert!(!is_random_access(&slice(false, true, 1))); // B
        // recovery point SEI before a P slice (x264 --open-gop, periodic intra refresh)
        let sei = [0, 0, 1, 0x06, 0x06, 0x01, 0x84, 0x80];
        assert!(is_random_access(
            &[&sei[..], &slice(false, true, 5)].concat()
        ));
        // user data SEI (type 5) is not a recovery point
        let ud = [0, 0, 1, 0x06, 0x05, 0x01, 0x84, 0x80];
        assert!(!is_random_access(
            &[&ud[..], &slice(false, true, 5)].concat()
        ));
        assert!(!is_random_access(&[]));
    }

    #[test]
    fn one_access_unit_per_pes_is_kept_as_it_is() {
        let a = slice(true, true, 7);
        let b = slice(false, true, 5);
        let aus = access_units(&[
            chunk(Some(3000), Some(0), &[&a]),
            chunk(Some(6000), Some(3000), &[&b]),
        ]);
        assert_eq!(aus.len(), 2);
        assert_eq!((aus[0].pts, aus[0].dts, aus[0].key), (3000, 0, true));
        assert_eq!((aus[1].pts, aus[1].dts, aus[1].key), (6000, 3000, false));
        assert_eq!(aus[0].data, a);
    }

    #[test]
    fn several_pictures_in_one_pes_and_one_picture_over_several() {
        let sps = [0u8, 0, 0, 1, 0x67, 0x64, 0, 0x1f];
        let i = slice(true, true, 7);
        let p1 = slice(false, true, 5);
        let p1b = slice(false, false, 5); // second slice of the same picture
        let p2 = slice(false, true, 5);
        let aus = access_units(&[
            // SPS + IDR + first P (no timestamp for the P) in one PES
            chunk(Some(90_000), None, &[&sps, &i, &p1]),
            // the P's second slice, then the next picture, in a PES with the second P's timestamp
            chunk(None, None, &[&p1b]),
            chunk(Some(96_000), None, &[&p2[..5]]),
            chunk(None, None, &[&p2[5..]]),
        ]);
        assert_eq!(aus.len(), 3, "{aus:?}");
        assert_eq!(aus[0].data, [&sps[..], &i].concat());
        assert_eq!(aus[1].data, [&p1[..], &p1b].concat());
        assert_eq!(aus[2].data, p2);
        assert!(aus[0].key && !aus[1].key && !aus[2].key);
        // the PES timestamp of the third chunk is the second P's; the first P is interpolated between
        assert_eq!(aus[0].pts, 90_000);
        assert_eq!(aus[2].pts, 96_000);
        assert_eq!(aus[1].pts, 93_000);
    }

    #[test]
    fn missing_timestamps_are_interpolated_from_the_frame_duration() {
        let mk = |pts: u64| VideoAu {
            pts,
            dts: pts,
            key: false,
            data: vec![],
        };
        let mut aus = vec![
            mk(u64::MAX),
            mk(1000 + 3003),
            mk(u64::MAX),
            mk(1000 + 3 * 3003),
            mk(u64::MAX),
        ];
        interpolate(&mut aus);
        let pts: Vec<u64> = aus.iter().map(|a| a.pts).collect();
        assert_eq!(pts, [1000, 4003, 7006, 10009, 13012]);
        let mut none = vec![mk(u64::MAX), mk(u64::MAX)];
        interpolate(&mut none);
        assert_eq!((none[0].pts, none[1].pts), (0, 3000));
    }

    /// A NAL unit from a header byte and a string of bits (padded with the RBSP stop bit and zeros).
    fn nal(header: u8, bits: &str) -> Vec<u8> {
        let mut b: String = bits.chars().filter(|c| !c.is_whitespace()).collect();
        b.push('1');
        while b.len() % 8 != 0 {
            b.push('0');
        }
        let mut out = vec![0, 0, 0, 1, header];
        for c in b.as_bytes().chunks(8) {
            out.push(u8::from_str_radix(std::str::from_utf8(c).unwrap(), 2).unwrap());
        }
        out
    }

    /// Main profile SPS with log2_max_frame_num 4 and frame_mbs_only_flag 0 (fields allowed).
    fn field_sps() -> Vec<u8> {
        // profile 77, constraints 0, level 30, sps_id 0, log2_max_frame_num-4 0, poc type 0, log2_max_poc-4 0,
        // 1 ref frame, no gaps, 1x1 MBs, frame_mbs_only 0, mb_adaptive 0, direct_8x8 1, no crop, no VUI
        nal(
            0x67,
            "01001101 00000000 00011110 1 1 1 1 010 0 1 1 0 0 1 0 0",
        )
    }

    /// A field slice: first_mb 0, slice type (7 = I, 5 = P), pps 0, frame_num (4 bits), field, bottom.
    fn field(idr: bool, intra: bool, frame_num: u8, bottom: bool) -> Vec<u8> {
        let bits = format!(
            "1 {} 1 {:04b} 1 {} 1111",
            if intra { "0001000" } else { "00110" },
            frame_num,
            u8::from(bottom)
        );
        nal(if idr { 0x65 } else { 0x41 }, &bits)
    }

    #[test]
    fn the_two_fields_of_a_frame_are_one_unit() {
        let sps = field_sps();
        assert_eq!(
            sps_timing(&sps[4..]),
            Some(SpsTiming {
                log2_max_frame_num: 4,
                frame_mbs_only: false,
                separate_colour_plane: false
            })
        );
        let aud = [0u8, 0, 0, 1, 0x09, 0xf0];
        let aus = access_units(&[
            // an I top field and a P bottom field in one PES, an access unit delimiter before each field
            chunk(
                Some(90_000),
                None,
                &[
                    &aud,
                    &sps,
                    &field(false, true, 0, false),
                    &aud,
                    &field(false, false, 0, true),
                ],
            ),
            // the next frame: two P fields
            chunk(
                Some(93_600),
                None,
                &[
                    &aud,
                    &field(false, false, 1, false),
                    &aud,
                    &field(false, false, 1, true),
                ],
            ),
        ]);
        assert_eq!(aus.len(), 2, "{aus:?}");
        assert_eq!((aus[0].pts, aus[1].pts), (90_000, 93_600));
        assert!(
            aus[0].key,
            "an I first field with a P second field starts decoding"
        );
        assert!(!aus[1].key);
        // two frames (not fields) in one PES are two units
        let frames_sps = nal(0x67, "01001101 00000000 00011110 1 1 1 1 010 0 1 1 1 1 0 0");
        assert!(sps_timing(&frames_sps[4..]).unwrap().frame_mbs_only);
        let aus = access_units(&[chunk(
            Some(90_000),
            None,
            &[&frames_sps, &slice(true, true, 7), &slice(false, true, 5)],
        )]);
        assert_eq!(aus.len(), 2);
    }

    #[test]
    fn exp_golomb_and_emulation_prevention() {
        assert_eq!(rbsp(&[0, 0, 3, 1, 0, 0, 3], 16), [0, 0, 1, 0, 0]);
        let mut b = Bits::new(&[0b0010_0011, 0b0000_0000]);
        assert_eq!((b.ue(), b.ue()), (Some(3), Some(2)));
        assert_eq!(b.ue(), None); // runs out of bits
        // a malformed header never panics
        for n in 0..=255u8 {
            let _ = slice_header(&[0x41, n]);
            let _ = has_recovery_point(&[0x06, n, 0xff, 0xff]);
        }
    }
}
