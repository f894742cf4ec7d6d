//! The cargo-fuzz target (fuzz/fuzz_targets), run in the ordinary test build on hand-made seeds and seeded
//! mutations of them (see the fuzz-smoke crate). The coverage-guided campaign is `./x fuzz`.
#[path = "../fuzz/fuzz_targets/demux.rs"]
mod demux;

use fuzz_smoke::Smoke;
use media::ts::{AudioPes, EncodedFrame, PACKET, TsMuxer};

/// An MPEG audio PES packet with its PTS: the header the demuxer reads, and a few ADTS-looking bytes.
fn audio_pes(pts: u64) -> AudioPes {
    let ts = [
        0x21 | ((pts >> 29) & 0x0e) as u8,
        (pts >> 22) as u8,
        ((pts >> 14) & 0xfe) as u8 | 1,
        (pts >> 7) as u8,
        ((pts << 1) & 0xfe) as u8 | 1,
    ];
    let payload = [0xff, 0xf1, 0x50, 0x80, 0x02, 0x1f, 0xfc, 0x21, 0x00, 0x49];
    let len = (3 + ts.len() + payload.len()) as u16;
    let mut pes = vec![0, 0, 1, 0xc0];
    pes.extend_from_slice(&len.to_be_bytes());
    pes.extend_from_slice(&[0x80, 0x80, 5]);
    pes.extend_from_slice(&ts);
    pes.extend_from_slice(&payload);
    AudioPes { pts, pes }
}

#[test]
fn demux_on_muxed_segments_with_and_without_audio_and_their_mutants() {
    // Annex B access units: delimiter, SPS, PPS and an IDR slice; then delimiter and a P slice
    let key: Vec<u8> = [
        &[0, 0, 0, 1, 9, 0xf0][..],
        &[0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0xd9],
        &[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80],
    ]
    .concat()
    .into_iter()
    .chain(
        [0, 0, 1, 0x65]
            .into_iter()
            .chain((0..300u32).map(|i| (i * 13) as u8 | 1)),
    )
    .collect();
    let delta: Vec<u8> = [0, 0, 0, 1, 9, 0x30, 0, 0, 1, 0x41]
        .into_iter()
        .chain((0..90u8).map(|i| i | 1))
        .collect();
    let frames: Vec<EncodedFrame> = (0..4u64)
        .map(|i| EncodedFrame {
            pts: 126_000 + i * 3000,
            dts: 126_000 + i * 3000,
            key: i == 0,
            data: if i == 0 { &key } else { &delta },
        })
        .collect();
    let audio: Vec<AudioPes> = (0..3).map(|i| audio_pes(126_000 + i * 1920)).collect();
    let with_audio = TsMuxer::new().mux_segment(&frames, &audio, Some((0x0f, &[])));
    let video_only = TsMuxer::new().mux_segment(&frames[..2], &[], None);
    // the target also cuts its input into 187-byte pieces behind restored sync bytes: the same segments so cut
    let unframed =
        |ts: &[u8]| -> Vec<u8> { ts.chunks(PACKET).flat_map(|p| p[1..].to_vec()).collect() };
    let seeds = vec![
        unframed(&video_only),
        unframed(&with_audio),
        video_only,
        with_audio,
    ];
    Smoke::new(env!("CARGO_MANIFEST_DIR"), "demux")
        .max_len(8192)
        .runs(100_000)
        .check(&seeds, demux::run);
}
