use super::*;
use crate::engine::{Rendition as Out, SegmentStats};

fn seg_of(seq: u64, profiles: &[&str]) -> SegmentOutput {
    SegmentOutput {
        seq,
        renditions: profiles
            .iter()
            .map(|name| Out {
                profile: (*name).into(),
                // the bytes say which profile and segment they are, so a misplaced file shows
                data: format!("{name}:{seq}").into_bytes(),
                width: 640,
                height: 360,
                fps: (30, 1),
                frames: 60,
                frames_fed: 60,
                duration: 2.0,
                first_pts: seq.wrapping_mul(180_000),
                codecs: "avc1.64001f".into(),
                video_bytes: 1000,
            })
            .collect(),
        stats: SegmentStats::default(),
    }
}

fn seg(seq: u64) -> SegmentOutput {
    seg_of(seq, &["P720p30fps16x9", "P360p30fps16x9"])
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap()
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort_by_key(|f| {
        (
            f.strip_suffix(".ts")
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(u64::MAX),
            f.clone(),
        )
    });
    v
}

const LIVE3: HlsMode = HlsMode::Live { window: 3 };

#[test]
fn resume_extends_the_playlists_of_an_earlier_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = HlsWriter::new(dir.path(), LIVE3, 2.0).unwrap();
    for seq in [0, 1, 2, 4] {
        w.write_segment(&seg(seq)).unwrap();
    }
    let master_before = read(&w.master_path());
    let pl_before = read(&dir.path().join("P360p30fps16x9/index.m3u8"));
    drop(w); // as if killed: nothing is finished

    let mut w = HlsWriter::resume(dir.path(), LIVE3, 2.0).unwrap();
    assert_eq!(w.last_seq(), Some(4));
    assert_eq!(read(&w.master_path()), master_before);
    assert_eq!(
        read(&dir.path().join("P360p30fps16x9/index.m3u8")),
        pl_before
    );
    // A replayed old segment is refused; the next one extends the window.
    assert!(matches!(
        w.write_segment(&seg(4)),
        Err(HlsError::OutOfOrder { .. })
    ));
    w.write_segment(&seg(5)).unwrap();
    let pl = read(&dir.path().join("P720p30fps16x9/index.m3u8"));
    assert!(pl.contains("#EXT-X-MEDIA-SEQUENCE:2\n"), "{pl}");
    assert!(
        pl.ends_with("#EXT-X-DISCONTINUITY\n#EXTINF:2.000000,\n4.ts\n#EXTINF:2.000000,\n5.ts\n"),
        "{pl}"
    );
}

#[test]
fn a_crash_before_the_commit_leaves_nothing_and_after_it_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = HlsWriter::new(dir.path(), LIVE3, 2.0).unwrap();
    for seq in 0..3 {
        w.write_segment(&seg(seq)).unwrap();
    }
    let committed = read(&dir.path().join("P720p30fps16x9/index.m3u8"));
    // killed while writing segment 3: one rendition's file renamed, the other's still a temporary file
    fs::write(dir.path().join("P720p30fps16x9/3.ts"), b"partial").unwrap();
    fs::write(dir.path().join("P360p30fps16x9/3.ts.tmp"), b"partial").unwrap();
    drop(w);
    let w = HlsWriter::resume(dir.path(), LIVE3, 2.0).unwrap();
    assert_eq!(w.last_seq(), Some(2));
    for r in ["P720p30fps16x9", "P360p30fps16x9"] {
        assert_eq!(
            files(&dir.path().join(r)),
            ["0.ts", "1.ts", "2.ts", "index.m3u8"],
            "{r}"
        );
    }
    assert_eq!(
        read(&dir.path().join("P720p30fps16x9/index.m3u8")),
        committed
    );

    // killed after the commit of segment 3, before its playlists: they are rendered again from the record
    let mut w = w;
    w.write_segment(&seg(3)).unwrap();
    let after = read(&dir.path().join("P360p30fps16x9/index.m3u8"));
    fs::write(dir.path().join("P360p30fps16x9/index.m3u8"), &committed).unwrap();
    drop(w);
    let w = HlsWriter::resume(dir.path(), LIVE3, 2.0).unwrap();
    assert_eq!(w.last_seq(), Some(3));
    assert_eq!(read(&dir.path().join("P360p30fps16x9/index.m3u8")), after);
    assert!(after.ends_with("3.ts\n"), "{after}");
}

#[test]
fn segments_leaving_the_window_stay_for_a_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = HlsWriter::new(dir.path(), HlsMode::Live { window: 2 }, 2.0).unwrap();
    let d = dir.path().join("P360p30fps16x9");
    for seq in 0..4 {
        w.write_segment(&seg(seq)).unwrap();
    }
    // window 2: 2 and 3 listed; 0 left the playlist with segment 2 and 1 with segment 3, and each is kept
    // for window + 1 = 3 segments after it left
    assert_eq!(w.listed(), [2, 3]);
    assert_eq!(files(&d), ["0.ts", "1.ts", "2.ts", "3.ts", "index.m3u8"]);
    w.write_segment(&seg(4)).unwrap();
    assert_eq!(
        files(&d),
        ["0.ts", "1.ts", "2.ts", "3.ts", "4.ts", "index.m3u8"]
    );
    w.write_segment(&seg(5)).unwrap();
    assert_eq!(
        files(&d),
        ["1.ts", "2.ts", "3.ts", "4.ts", "5.ts", "index.m3u8"]
    );
    w.write_segment(&seg(6)).unwrap();
    w.write_segment(&seg(7)).unwrap();
    assert_eq!(
        files(&d),
        ["3.ts", "4.ts", "5.ts", "6.ts", "7.ts", "index.m3u8"]
    );
    // what was retired and not yet deleted survives a restart, and goes on time after it
    drop(w);
    let mut w = HlsWriter::resume(dir.path(), HlsMode::Live { window: 2 }, 2.0).unwrap();
    assert_eq!(
        files(&d),
        ["3.ts", "4.ts", "5.ts", "6.ts", "7.ts", "index.m3u8"]
    );
    w.write_segment(&seg(8)).unwrap();
    assert_eq!(
        files(&d),
        ["4.ts", "5.ts", "6.ts", "7.ts", "8.ts", "index.m3u8"]
    );
}

#[test]
fn a_stream_started_again_at_zero_is_a_new_session_in_the_same_playlists() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = HlsWriter::new(dir.path(), HlsMode::Event, 2.0).unwrap();
    for seq in 0..3 {
        w.write_segment(&seg(seq)).unwrap();
    }
    // a retry of the last segment is refused; 0 again right after 0 would be a retry too
    assert!(w.place(2).is_err() && w.place(1).is_err());
    assert_eq!(place(Some(0), false, 0, None, None).ok(), None);
    // the broadcaster restarts and counts from 0: a new session, numbered after every earlier file
    assert_eq!(w.place(0).unwrap(), Placement::NewSession);
    assert_eq!(w.file_for(0).as_deref(), Some("3.ts"));
    assert_eq!(w.write_segment(&seg(0)).unwrap(), "3.ts");
    assert_eq!(w.write_segment(&seg(1)).unwrap(), "4.ts");
    assert_eq!(w.session(), 1);
    let pl = read(&dir.path().join("P720p30fps16x9/index.m3u8"));
    assert!(
        pl.contains(
            "2.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:2.000000,\n3.ts\n#EXTINF:2.000000,\n4.ts\n"
        ),
        "{pl}"
    );
    assert_eq!(
        fs::read(dir.path().join("P720p30fps16x9/3.ts")).unwrap(),
        b"P720p30fps16x9:0"
    );
    // ended (DELETE, idle): the playlists end; starting again continues them after a discontinuity
    w.finish().unwrap();
    assert!(read(&dir.path().join("P360p30fps16x9/index.m3u8")).ends_with("#EXT-X-ENDLIST\n"));
    drop(w);
    let mut w = HlsWriter::resume(dir.path(), HlsMode::Event, 2.0).unwrap();
    assert!(w.is_ended());
    assert_eq!(w.place(1).unwrap(), Placement::NewSession);
    assert_eq!(w.write_segment(&seg(1)).unwrap(), "6.ts");
    let pl = read(&dir.path().join("P360p30fps16x9/index.m3u8"));
    assert!(!pl.contains("ENDLIST"), "{pl}");
    assert!(
        pl.ends_with("4.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:2.000000,\n6.ts\n"),
        "{pl}"
    );
    assert_eq!(pl.matches("#EXTINF").count(), 6);
}

#[test]
fn renditions_are_matched_by_profile_name_when_the_ladder_changes() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = HlsWriter::new(dir.path(), HlsMode::Live { window: 2 }, 2.0).unwrap();
    w.write_segment(&seg_of(0, &["hi", "mid"])).unwrap();
    w.write_segment(&seg_of(1, &["hi", "mid"])).unwrap();
    // the fleet changes the ladder: "hi" leaves, "lo" comes, "mid" moves to the front
    w.write_segment(&seg_of(2, &["mid", "lo"])).unwrap();
    for (profile, seq) in [("mid", 2), ("lo", 2), ("hi", 1), ("mid", 0)] {
        assert_eq!(
            fs::read(dir.path().join(profile).join(format!("{seq}.ts"))).unwrap(),
            format!("{profile}:{seq}").into_bytes()
        );
    }
    let master = read(&w.master_path());
    let listed: Vec<&str> = master.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(listed, ["mid/index.m3u8", "lo/index.m3u8"]);
    // the new profile's playlist is aligned on the stream's media sequence numbers
    let lo = read(&dir.path().join("lo/index.m3u8"));
    assert!(
        lo.contains("#EXT-X-MEDIA-SEQUENCE:2\n") && lo.ends_with("\n2.ts\n"),
        "{lo}"
    );
    // the profile that left has an ended playlist, and its directory goes after the grace period
    let hi = read(&dir.path().join("hi/index.m3u8"));
    assert!(hi.ends_with("1.ts\n#EXT-X-ENDLIST\n"), "{hi}");
    for seq in 3..6 {
        w.write_segment(&seg_of(seq, &["mid", "lo"])).unwrap();
    }
    assert!(!dir.path().join("hi").exists());
    assert!(dir.path().join("mid/5.ts").exists());
    // duplicates are refused
    assert!(matches!(
        w.write_segment(&seg_of(6, &["mid", "mid"])),
        Err(HlsError::DuplicateRendition { .. })
    ));
}

#[test]
fn resume_of_an_empty_directory_starts_fresh() {
    let dir = tempfile::tempdir().unwrap();
    let w = HlsWriter::resume(dir.path().join("new"), HlsMode::Vod, 2.0).unwrap();
    assert_eq!(w.last_seq(), None);
}

#[test]
fn a_damaged_record_is_an_error_not_a_fresh_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = HlsWriter::new(dir.path(), LIVE3, 2.0).unwrap();
    w.write_segment(&seg(0)).unwrap();
    fs::write(dir.path().join(record::RECORD_FILE), b"{\"format\":").unwrap();
    assert!(matches!(
        HlsWriter::resume(dir.path(), LIVE3, 2.0),
        Err(HlsError::Record { .. })
    ));
}

#[test]
fn sequence_numbers_at_the_end_of_the_range_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = HlsWriter::new(dir.path(), LIVE3, 2.0).unwrap();
    assert!(matches!(
        w.write_segment(&seg(u64::MAX)),
        Err(HlsError::Numbering { .. })
    ));
    w.write_segment(&seg(u64::MAX - 1)).unwrap();
    // a new session would be numbered past the last file number there is
    assert!(matches!(
        w.write_segment(&seg(0)),
        Err(HlsError::Numbering { .. })
    ));
    assert_eq!(w.last_seq(), Some(u64::MAX - 1));
}

#[test]
fn segments_of_one_source_are_one_session_whatever_their_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = HlsWriter::new(dir.path(), HlsMode::Event, 2.0).unwrap();
    w.set_source(Some("swarm-a".into()));
    for seq in 0..3 {
        w.write_segment(&seg(seq)).unwrap();
    }
    drop(w);
    // a box restarted while reading the swarm reads it again from its start: a replay, not a new session
    let mut w = HlsWriter::resume(dir.path(), HlsMode::Event, 2.0).unwrap();
    w.set_source(Some("swarm-a".into()));
    for seq in 0..3 {
        assert!(
            matches!(w.place(seq), Err(HlsError::OutOfOrder { .. })),
            "{seq}"
        );
    }
    assert_eq!(w.write_segment(&seg(3)).unwrap(), "3.ts");
    // the broadcaster's next stream comes in a new swarm: a new session, even at a higher number
    w.set_source(Some("swarm-b".into()));
    assert_eq!(w.place(7).unwrap(), Placement::NewSession);
    assert_eq!(w.write_segment(&seg(0)).unwrap(), "4.ts");
    assert_eq!(w.session(), 1);
    // the rule without sources is the one of the other tests
    assert_eq!(
        place(Some(5), false, 0, None, Some("swarm-b")).unwrap(),
        Placement::NewSession
    );
    assert_eq!(
        place(Some(5), false, 6, Some("x"), None).unwrap(),
        Placement::Next
    );
}
