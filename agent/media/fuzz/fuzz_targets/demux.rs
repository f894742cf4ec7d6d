//! Segments come from the network (any broadcaster can PUT one): the demuxer must never panic, whatever the
//! bytes. The input is tried as is; cut into 188-byte packets with their sync bytes restored, so that most
//! inputs get past the framing checks; and so cut after a valid PAT and PMT, so that the PES paths are
//! reached. What demuxes must survive the muxer and demux again to the same access units and audio.
#![cfg_attr(fuzzing, no_main)]
use media::ts::{self, EncodedFrame, PACKET, TsMuxer};

fn check(data: &[u8]) {
    let Ok(d) = ts::demux(data) else { return };
    assert!(!d.video.is_empty());
    let frames: Vec<EncodedFrame> = d.video.iter().map(Into::into).collect();
    let audio_type = d
        .audio_stream_type
        .map(|t| (t, d.audio_descriptors.as_slice()));
    let again = ts::demux(&TsMuxer::new().mux_segment(&frames, &d.audio, audio_type))
        .expect("a muxed segment demuxes");
    assert_eq!(again.video.len(), d.video.len());
    for (a, b) in again.video.iter().zip(&d.video) {
        assert_eq!((a.pts, a.dts, a.key), (b.pts, b.dts, b.key));
        assert!(a.data.ends_with(&b.data));
    }
    assert_eq!(again.audio, d.audio);
    assert_eq!(again.audio_stream_type, d.audio_stream_type);
    assert!(d.audio_descriptors.starts_with(&again.audio_descriptors));
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

/// The target's body; also run by the crate's tests (tests/fuzz_targets.rs).
pub fn run(data: &[u8]) {
    check(data);
    let framed: Vec<u8> = data
        .chunks_exact(PACKET - 1)
        .flat_map(|p| std::iter::once(0x47).chain(p.iter().copied()))
        .collect();
    check(&framed);
    // H.264 on PID 0x100
    let mut with_program = TsMuxer::new().mux_segment(&[], &[], None);
    with_program.extend_from_slice(&framed);
    check(&with_program);
}
