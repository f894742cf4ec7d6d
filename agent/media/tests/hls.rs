//! HLS writer: live sliding window, discontinuity on a gap, atomic files, VOD end list.
//! (Sessions, renditions by name and crash consistency: the unit tests in `src/hls/tests.rs`.)

use media::engine::{Rendition, SegmentOutput, SegmentStats};
use media::hls::{HlsMode, HlsWriter};

fn seg(seq: u64, dur: f64) -> SegmentOutput {
    let r = |name: &str, w, h| Rendition {
        profile: name.into(),
        data: vec![0x47; 188 * 100],
        width: w,
        height: h,
        fps: (30, 1),
        frames: (dur * 30.0) as usize,
        frames_fed: (dur * 30.0) as usize,
        duration: dur,
        first_pts: 0,
        codecs: "avc1.64001f".into(),
        video_bytes: 188 * 90,
    };
    SegmentOutput {
        seq,
        renditions: vec![r("hi", 1280, 720), r("lo", 406, 720)],
        stats: SegmentStats::default(),
    }
}

#[test]
fn live_window_slides_and_marks_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = HlsWriter::new(dir.path(), HlsMode::Live { window: 2 }, 2.0).unwrap();
    for (seq, dur) in [(0, 2.0), (1, 2.0), (3, 2.0), (4, 1.5), (5, 2.0)] {
        w.write_segment(&seg(seq, dur)).unwrap();
    }
    let m = std::fs::read_to_string(dir.path().join("hi/index.m3u8")).unwrap();
    // window of 2: segments 4 and 5; 3 entries slid out; the discontinuity before 3 slid out too
    assert!(m.contains("#EXT-X-MEDIA-SEQUENCE:3\n"), "{m}");
    assert!(m.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "{m}");
    assert!(
        m.contains("#EXTINF:1.500000,\n4.ts\n#EXTINF:2.000000,\n5.ts\n"),
        "{m}"
    );
    assert!(!m.contains("ENDLIST") && !m.contains("PLAYLIST-TYPE"));
    assert_eq!(w.listed(), [4, 5]);
    let mut files: Vec<String> = std::fs::read_dir(dir.path().join("hi"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["0.ts", "1.ts", "3.ts", "4.ts", "5.ts", "index.m3u8"],
        "segments that left the playlist stay for 3 more segments; no temp files left"
    );
    let master = std::fs::read_to_string(dir.path().join("master.m3u8")).unwrap();
    assert!(
        master.contains("RESOLUTION=406x720") && master.contains("FRAME-RATE=30.000"),
        "{master}"
    );
    // bandwidth from the real segment sizes: 18800 bytes over 1.5 s is the peak
    assert!(master.contains("BANDWIDTH=100267,"), "{master}");
    // out of order is an error
    assert!(w.write_segment(&seg(5, 2.0)).is_err());
}

#[test]
fn gap_inside_the_window_is_a_discontinuity_and_vod_ends() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = HlsWriter::new(dir.path(), HlsMode::Vod, 2.0).unwrap();
    for seq in [0, 1, 3] {
        w.write_segment(&seg(seq, 2.0)).unwrap();
    }
    let m = std::fs::read_to_string(dir.path().join("lo/index.m3u8")).unwrap();
    assert!(m.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n") && !m.contains("ENDLIST"));
    assert!(
        m.contains("1.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:2.000000,\n3.ts\n"),
        "{m}"
    );
    w.finish().unwrap();
    let m = std::fs::read_to_string(dir.path().join("lo/index.m3u8")).unwrap();
    assert!(
        m.contains("#EXT-X-PLAYLIST-TYPE:VOD\n") && m.ends_with("#EXT-X-ENDLIST\n"),
        "{m}"
    );
}
