//! The lookahead mode on real pipelines: encoders that run on with their lookahead and B-frames, each
//! segment completed by the next one's first frames (or by a drain when none follows).

mod common;

use media::engine::{SegmentError, SegmentMode, SegmentOutput};
use media::sources::TestSource;
use media::{EngineConfig, Profile, Transcoder, ts};

fn segments(secs: f64) -> Vec<Vec<u8>> {
    TestSource {
        width: 640,
        height: 360,
        fps: 30,
        duration: secs,
        audio: true,
        bitrate_kbps: 3000,
        ..Default::default()
    }
    .segments()
    .unwrap()
}

fn engine() -> (Transcoder, Vec<Profile>) {
    let profiles = vec![
        Profile::new("P360p30fps16x9", 640, 360, 30, 1200).unwrap(),
        Profile::new("P240p30fps16x9", 426, 240, 30, 600).unwrap(),
    ];
    let t = Transcoder::new(EngineConfig {
        mode: SegmentMode::Lookahead,
        ..EngineConfig::new(profiles.clone())
    })
    .unwrap();
    (t, profiles)
}

fn seqs(r: &[Result<SegmentOutput, SegmentError>]) -> Vec<Result<u64, u64>> {
    r.iter()
        .map(|r| r.as_ref().map(|o| o.seq).map_err(SegmentError::seq))
        .collect()
}

/// Every rendition of `out` stands alone ([`common::assert_segment_stands_alone`]) with its input's 60 frames;
/// returns how many frames came out before they are shown (B-frames).
fn check_segment(out: &SegmentOutput, input: &[u8], dir: &std::path::Path) -> usize {
    let input = ts::demux(input).unwrap();
    let mut reordered = 0;
    for r in &out.renditions {
        assert_eq!((r.frames, r.frames_fed), (60, 60));
        assert!(
            (r.duration - out.stats.input_duration).abs() <= 1.0 / 30.0,
            "{} vs {}",
            r.duration,
            out.stats.input_duration
        );
        let (o, _) = common::assert_segment_stands_alone(
            &format!("{} segment {}", r.profile, out.seq),
            &r.data,
            &input,
            60,
            (r.width, r.height),
            &dir.join(format!("{}-{}.ts", r.profile, out.seq)),
        );
        // B-frames: frames that come out before they are shown
        reordered += o.video.iter().filter(|a| a.dts < a.pts).count();
    }
    reordered
}

#[test]
fn each_segment_is_completed_by_the_next_one_and_decodes_alone() {
    let segs = segments(8.0);
    assert_eq!(segs.len(), 4);
    let (mut t, profiles) = engine();
    let dir = tempfile::tempdir().unwrap();
    let mut outs = Vec::new();
    for (i, seg) in segs.iter().enumerate() {
        let got = t.push(i as u64, seg, None);
        // the first call completes nothing; each later one completes the segment before it
        let want: Vec<Result<u64, u64>> =
            i.checked_sub(1).map(|p| Ok(p as u64)).into_iter().collect();
        assert_eq!(seqs(&got), want);
        assert!(t.holds_segment());
        outs.extend(got.into_iter().map(Result::unwrap));
    }
    outs.push(t.finish().expect("the last segment is held").unwrap());
    assert!(!t.holds_segment());
    assert!(t.finish().is_none());
    let mut reordered = 0;
    for (i, out) in outs.iter().enumerate() {
        assert_eq!(out.seq, i as u64);
        assert_eq!(out.renditions.len(), profiles.len());
        assert_eq!(out.stats.mode, SegmentMode::Lookahead);
        reordered += check_segment(out, &segs[i], dir.path());
        // one encoder for the whole stream: its settings SEI only in the first segment
        for r in &out.renditions {
            let o = ts::demux(&r.data).unwrap();
            let restarted = o.video[0].data.windows(10).any(|w| w == b"x264 - cor");
            assert_eq!(restarted, i == 0, "{} segment {i}", r.profile);
        }
    }
    assert!(reordered > 0, "the encoders keep their B-frames");

    // after the drain the encoders restart, and the engine goes on
    let again = t.push(10, &segs[0], None);
    assert!(again.is_empty());
    let out = t.finish().unwrap().unwrap();
    assert_eq!(out.seq, 10);
    check_segment(&out, &segs[0], dir.path());
}

#[test]
fn a_bad_segment_fails_alone_and_the_held_one_still_comes_out() {
    let segs = segments(6.0);
    let (mut t, _) = engine();
    let dir = tempfile::tempdir().unwrap();
    assert!(t.push(0, &segs[0], None).is_empty());
    // garbage over the middle of a segment, sync bytes included: refused before the pipeline
    let mut corrupt = segs[1].clone();
    let mid = corrupt.len() / 2;
    for (i, b) in corrupt[mid..mid + 2000].iter_mut().enumerate() {
        *b = (i * 37 % 251) as u8;
    }
    let got = t.push(1, &corrupt, None);
    assert_eq!(seqs(&got), [Err(1)], "{got:?}");
    assert!(t.holds_segment(), "segment 0 still waits for a next one");
    let got = t.push(2, &segs[2], None);
    assert_eq!(seqs(&got), [Ok(0)]);
    let out0 = got.into_iter().next().unwrap().unwrap();
    check_segment(&out0, &segs[0], dir.path());
    // a segment whose frames the encoders cannot complete it with: too short to push the held one's last
    // frames out, so the encoders are drained and both come out
    let one_frame = {
        let dm = ts::demux(&segs[1]).unwrap();
        let first: Vec<ts::EncodedFrame> =
            dm.video[..1].iter().map(ts::EncodedFrame::from).collect();
        ts::TsMuxer::new().mux_segment(&first, &[], None)
    };
    let got = t.push(3, &one_frame, None);
    assert_eq!(seqs(&got), [Ok(2), Ok(3)], "{got:?}");
    assert!(!t.holds_segment());
    check_segment(got[0].as_ref().unwrap(), &segs[2], dir.path());
    assert_eq!(got[1].as_ref().unwrap().renditions[0].frames, 1);
}
