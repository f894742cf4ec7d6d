//! RFC 6381 codec strings of what the engine writes, read from the bytes themselves.

use crate::ts;

/// "avc1.PPCCLL" from the first SPS in an Annex-B access unit.
pub fn avc1_codec(au: &[u8]) -> Option<String> {
    ts::nal_units(au)
        .find(|n| n.len() >= 4 && n[0] & 0x1f == 7)
        .map(|n| format!("avc1.{:02x}{:02x}{:02x}", n[1], n[2], n[3]))
}

/// "mp4a.40.N" from the first ADTS header of an audio PES, if it is AAC with ADTS framing.
pub fn mp4a_codec(pes: &[u8]) -> Option<String> {
    let off = 9 + *pes.get(8)? as usize;
    let a = pes.get(off..off + 3)?;
    // ADTS: 12-bit sync and layer 00 (an MPEG audio frame header has the 11-bit sync and a non-zero layer)
    if a[0] != 0xff || a[1] & 0xf6 != 0xf0 {
        return None;
    }
    Some(format!("mp4a.40.{}", (a[2] >> 6) + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_strings() {
        let au = [
            0, 0, 0, 1, 0x67, 0x64, 0x00, 0x1f, 0xac, 0, 0, 1, 0x65, 0x88,
        ];
        assert_eq!(avc1_codec(&au).as_deref(), Some("avc1.64001f"));
        let pes = [
            0, 0, 1, 0xc0, 0, 0, 0x80, 0x80, 5, 0, 0, 0, 0, 0, 0xff, 0xf1, 0x50, 0x80,
        ];
        assert_eq!(mp4a_codec(&pes).as_deref(), Some("mp4a.40.2"));
        // an MPEG-1 layer 3 frame header is not ADTS
        let mut mp3 = pes;
        mp3[15] = 0xfb;
        assert_eq!(mp4a_codec(&mp3), None);
    }
}
