//! Just enough of an H.264 sequence parameter set (ITU-T H.264 7.3.2.1.1) to know the profile, the
//! chroma format and the bit depth of a stream. Never panics: a short or malformed SPS gives `None`.

use serde::Serialize;

use crate::h264::{Bits, rbsp};

/// The format fields of one SPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SpsFormat {
    pub profile_idc: u8,
    /// constraint_set0..5 flags (the byte after profile_idc).
    pub constraints: u8,
    pub level_idc: u8,
    /// 0 = monochrome, 1 = 4:2:0, 2 = 4:2:2, 3 = 4:4:4.
    pub chroma_format_idc: u32,
    pub bit_depth_luma: u32,
    pub bit_depth_chroma: u32,
}

impl SpsFormat {
    /// Profile name as in Annex A.
    pub fn profile_name(&self) -> &'static str {
        match self.profile_idc {
            66 if self.constraints & 0x40 != 0 => "constrained-baseline",
            66 => "baseline",
            77 => "main",
            88 => "extended",
            100 => "high",
            110 => "high-10",
            122 => "high-4:2:2",
            244 => "high-4:4:4",
            44 => "cavlc-4:4:4-intra",
            _ => "other",
        }
    }

    /// "4:2:0" etc.
    pub fn chroma_name(&self) -> &'static str {
        match self.chroma_format_idc {
            0 => "4:0:0",
            1 => "4:2:0",
            2 => "4:2:2",
            3 => "4:4:4",
            _ => "?",
        }
    }

    /// Is this what a rendition must be: Baseline, Main or High profile, 4:2:0, 8-bit?
    pub fn is_8bit_420_bmh(&self) -> bool {
        matches!(self.profile_idc, 66 | 77 | 100)
            && self.chroma_format_idc == 1
            && self.bit_depth_luma == 8
            && self.bit_depth_chroma == 8
    }

    /// e.g. "high 4:2:0 8-bit (avc1.64001e)".
    pub fn describe(&self) -> String {
        let depth = if self.bit_depth_luma == self.bit_depth_chroma {
            format!("{}-bit", self.bit_depth_luma)
        } else {
            format!("{}/{}-bit", self.bit_depth_luma, self.bit_depth_chroma)
        };
        format!(
            "{} {} {} (avc1.{:02x}{:02x}{:02x})",
            self.profile_name(),
            self.chroma_name(),
            depth,
            self.profile_idc,
            self.constraints,
            self.level_idc
        )
    }
}

/// Parse an SPS NAL unit (with its one-byte NAL header, without start code).
pub fn parse(nal: &[u8]) -> Option<SpsFormat> {
    if nal.first()? & 0x1f != 7 {
        return None;
    }
    let data = rbsp(&nal[1..], usize::MAX);
    let mut r = Bits::new(&data);
    let profile_idc = r.bits(8)? as u8;
    let constraints = r.bits(8)? as u8;
    let level_idc = r.bits(8)? as u8;
    let _sps_id = r.ue()?;
    let (mut chroma, mut depth_l, mut depth_c) = (1, 8, 8);
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma = r.ue()?;
        if chroma == 3 {
            let _separate_colour_plane = r.bit()?;
        }
        depth_l = r.ue()?.saturating_add(8);
        depth_c = r.ue()?.saturating_add(8);
    }
    Some(SpsFormat {
        profile_idc,
        constraints,
        level_idc,
        chroma_format_idc: chroma,
        bit_depth_luma: depth_l,
        bit_depth_chroma: depth_c,
    })
}

/// Every distinct SPS format in a list of Annex-B access units.
pub fn formats<'a>(aus: impl IntoIterator<Item = &'a [u8]>) -> (Vec<SpsFormat>, usize) {
    let mut out: Vec<SpsFormat> = Vec::new();
    let mut bad = 0;
    for au in aus {
        for nal in crate::ts::nal_units(au) {
            if nal.first().map(|b| b & 0x1f) != Some(7) {
                continue;
            }
            match parse(nal) {
                Some(f) if !out.contains(&f) => out.push(f),
                Some(_) => {}
                None => bad += 1,
            }
        }
    }
    (out, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn high_420_8bit() {
        // x264 High profile SPS: 67 64 00 1e ac d9 ...: sps_id 0, chroma 1, depths 0/0
        let f = parse(&[0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0]).unwrap();
        assert_eq!(f.profile_idc, 100);
        assert_eq!(f.chroma_format_idc, 1);
        assert_eq!((f.bit_depth_luma, f.bit_depth_chroma), (8, 8));
        assert!(f.is_8bit_420_bmh());
        assert_eq!(f.describe(), "high 4:2:0 8-bit (avc1.64001e)");
    }

    #[test]
    fn high_444() {
        // profile 244, sps_id ue(0)=1, chroma ue(3)=00100, separate=0, depth ue(0)=1, ue(0)=1
        // bits: 1 00100 0 1 1 -> 1001 0001 1xxx xxxx
        let f = parse(&[0x67, 244, 0x00, 0x1e, 0b1001_0001, 0b1000_0000]).unwrap();
        assert_eq!(f.chroma_format_idc, 3);
        assert!(!f.is_8bit_420_bmh());
        assert_eq!(f.profile_name(), "high-4:4:4");
    }

    #[test]
    fn baseline_and_main_are_420_8bit() {
        let f = parse(&[0x67, 66, 0xc0, 0x1e, 0x80]).unwrap();
        assert!(f.is_8bit_420_bmh());
        assert_eq!(f.profile_name(), "constrained-baseline");
        let f = parse(&[0x67, 77, 0x40, 0x1e, 0x80]).unwrap();
        assert!(f.is_8bit_420_bmh());
    }

    #[test]
    fn garbage_never_panics() {
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&[0x67]), None);
        assert_eq!(parse(&[0x67, 100, 0, 30, 0, 0, 0, 0]), None);
        assert_eq!(parse(&[0x65, 100, 0, 30, 0x80]), None);
        for n in 0..64u8 {
            let v: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) ^ 0x67).collect();
            let _ = parse(&v);
        }
    }
}
