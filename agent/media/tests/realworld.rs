//! Real-world inputs: one input per trait that broadcasters' streams have and test sources do not (4:4:4 and
//! 10-bit H.264, 33.3 fps, variable frame rate, open GOP, FLV and MP4 containers, B-frames without DTS, segments cut
//! mid-GOP, a stream joined mid-GOP, resolution changes, non-square pixels, interlacing, MP3 audio, HEVC),
//! each made with ffmpeg, transcoded by the engine (files through `sources::split_file`, live segments
//! straight into the engine or a two-engine pool), written as HLS, and checked with ffprobe, independently
//! of the engine's own report: frame count and duration of every rendition against the source's decodable
//! frames (within one frame per segment), size, aspect, pixel format, profile, frame-rate regularity, audio
//! present exactly when the source has it, and a master playlist that states what was written.
//!
//! `REALWORLD_KEEP=DIR` keeps each case's HLS output in `DIR/<case>/` (the browser check plays them) and
//! `REALWORLD_REPORT=FILE` writes the per-input table of BENCHMARKS.md (frames in, out, dropped, wall time
//! against ffmpeg transcoding the same input to the same ladder).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::ffprobe_with;
use media::hls::{HlsMode, HlsWriter};
use media::pool::TranscoderPool;
use media::{EngineConfig, Profile, SegmentError, SegmentOutput, Transcoder, sources, ts};

fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-v", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg runs (apt package ffmpeg)");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What ffprobe sees in a file.
#[derive(Debug, Clone, Default)]
struct Probe {
    /// Decoded video frames.
    frames: usize,
    width: u32,
    height: u32,
    /// Display aspect (width / height on screen).
    dar: f64,
    pix_fmt: String,
    field_order: String,
    profile: String,
    /// Decoded video frames' PTS in seconds, sorted.
    pts: Vec<f64>,
    audio: Option<String>,
}

impl Probe {
    fn of(path: &Path) -> Probe {
        let s = ffprobe_with(&["-count_frames", "-show_streams"], path);
        let mut p = Probe::default();
        for st in s["streams"].as_array().unwrap() {
            match st["codec_type"].as_str() {
                Some("video") if p.width == 0 => {
                    p.frames = st["nb_read_frames"]
                        .as_str()
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0);
                    p.width = st["width"].as_u64().unwrap_or(0) as u32;
                    p.height = st["height"].as_u64().unwrap_or(0) as u32;
                    p.pix_fmt = st["pix_fmt"].as_str().unwrap_or("").into();
                    p.field_order = st["field_order"].as_str().unwrap_or("").into();
                    p.profile = st["profile"].as_str().unwrap_or("").into();
                    let sar = st["sample_aspect_ratio"]
                        .as_str()
                        .and_then(|r| r.split_once(':'))
                        .and_then(|(a, b)| Some((a.parse::<f64>().ok()?, b.parse::<f64>().ok()?)))
                        .filter(|(a, b)| *a > 0.0 && *b > 0.0)
                        .map_or(1.0, |(a, b)| a / b);
                    p.dar = f64::from(p.width) * sar / f64::from(p.height.max(1));
                }
                Some("audio") if p.audio.is_none() => {
                    p.audio = st["codec_name"].as_str().map(String::from);
                }
                _ => {}
            }
        }
        // the decoded frames' times (packets that do not decode have none here)
        let fr = ffprobe_with(
            &["-select_streams", "v:0", "-show_entries", "frame=pts_time"],
            path,
        );
        p.pts = fr["frames"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|x| x["pts_time"].as_str()?.parse().ok())
            .collect();
        p.pts.sort_by(f64::total_cmp);
        p
    }

    fn duration(&self, fps: f64) -> f64 {
        match (self.pts.first(), self.pts.last()) {
            (Some(a), Some(b)) => b - a + 1.0 / fps,
            _ => 0.0,
        }
    }
}

fn ladder() -> Vec<Profile> {
    vec![
        Profile::new("r360p30", 640, 360, 30, 900).unwrap(),
        Profile::new("r180p30", 320, 180, 30, 300).unwrap(),
    ]
}

/// How the segments reach the engine.
enum Feed {
    /// One engine, segment after segment.
    Engine,
    /// A pool of two engines on alternate segments (a segment cut mid-GOP decodes from the previous
    /// segment's bytes, which the other engine had).
    Pool,
}

/// One corpus input.
struct Case {
    name: &'static str,
    /// The input as segments.
    segments: Vec<Vec<u8>>,
    feed: Feed,
    /// The source's audio should reach the renditions (as AAC).
    audio: bool,
    /// Renditions keep the stream's first size even where the source's changes (letterboxing).
    resolution_changes: bool,
}

/// A row of the BENCHMARKS.md table.
struct Row {
    name: &'static str,
    frames_in: usize,
    frames_out: Vec<usize>,
    dropped: String,
    wall_s: f64,
    ffmpeg_s: f64,
}

fn run(case: &Case, dir: &Path) -> Row {
    let profiles = ladder();
    let started = Instant::now();
    let outs: Vec<SegmentOutput> = match case.feed {
        Feed::Engine => {
            let mut t = Transcoder::new(EngineConfig::new(profiles.clone())).unwrap();
            case.segments
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    t.push_segment(i as u64, s)
                        .unwrap_or_else(|e| panic!("{}: {e}", case.name))
                })
                .collect()
        }
        Feed::Pool => {
            let mut pool = TranscoderPool::new(EngineConfig::new(profiles.clone()), 2).unwrap();
            for (i, s) in case.segments.iter().enumerate() {
                pool.submit(i as u64, s.clone());
            }
            (0..case.segments.len())
                .map(|_| {
                    pool.recv()
                        .unwrap()
                        .unwrap_or_else(|e| panic!("{}: {e}", case.name))
                })
                .collect()
        }
    };
    let wall_s = started.elapsed().as_secs_f64();

    let hls_dir = dir.join("hls");
    let mut hls = HlsWriter::new(&hls_dir, HlsMode::Vod, 2.0).unwrap();
    for o in &outs {
        hls.write_segment(o).unwrap();
    }
    hls.finish().unwrap();

    // the source, as the segments carry it, probed on its own
    let src_file = dir.join("source.ts");
    std::fs::write(&src_file, case.segments.concat()).unwrap();
    let src = Probe::of(&src_file);
    let src_fps = src.frames.max(2) as f64 / src.duration(30.0).max(1e-3);
    let n = case.segments.len() as f64;
    let master = std::fs::read_to_string(hls_dir.join("master.m3u8")).unwrap();
    let mut frames_out = Vec::new();
    for p in &profiles {
        let what = format!("{} {}", case.name, p.name);
        let files: Vec<PathBuf> = (0..case.segments.len())
            .map(|i| hls_dir.join(&p.name).join(format!("{i}.ts")))
            .collect();
        let all = dir.join(format!("{}.ts", p.name));
        let bytes: Vec<u8> = files
            .iter()
            .flat_map(|f| std::fs::read(f).unwrap())
            .collect();
        std::fs::write(&all, &bytes).unwrap();
        let r = Probe::of(&all);
        // format every player decodes: 8-bit 4:2:0, progressive
        assert_eq!(r.pix_fmt, "yuv420p", "{what}: {r:?}");
        assert!(
            ["progressive", "unknown", ""].contains(&r.field_order.as_str()),
            "{what}: field order {}",
            r.field_order
        );
        assert!(
            ["High", "Main", "Constrained Baseline", "Baseline"].contains(&r.profile.as_str()),
            "{what}: profile {}",
            r.profile
        );
        // one size for the whole stream, square pixels at the source's display aspect, never larger
        let segs: Vec<Probe> = files.iter().map(|f| Probe::of(f)).collect();
        for s in &segs {
            assert_eq!(
                (s.width, s.height),
                (r.width, r.height),
                "{what}: size changed"
            );
        }
        assert!(
            r.width <= src.width.max(p.width) && r.height <= src.height.max(p.height),
            "{what}"
        );
        assert!(r.width <= p.width && r.height <= p.height, "{what}: {r:?}");
        if !case.resolution_changes {
            let first = Probe::of(&dir_segment(case, 0, dir));
            assert!(
                r.width <= first.width && r.height <= first.height,
                "{what}: wider or taller than the source"
            );
            let aspect = f64::from(r.width) / f64::from(r.height);
            assert!(
                (aspect / first.dar - 1.0).abs() < 0.02,
                "{what}: aspect {aspect:.3} against the source's {:.3}",
                first.dar
            );
        }
        // every decodable frame, at most the profile's rate, evenly
        let capped = src_fps > f64::from(p.fps) * 1.02;
        let out_fps = if capped { f64::from(p.fps) } else { src_fps };
        let expected = if capped {
            src.duration(src_fps) * f64::from(p.fps)
        } else {
            src.frames as f64
        };
        assert!(
            (r.frames as f64 - expected).abs() <= n + 1.0,
            "{what}: {} frames, expected {expected:.1} (source {} at {src_fps:.2} fps)",
            r.frames,
            src.frames
        );
        let (d_out, d_src) = (r.duration(out_fps), src.duration(src_fps));
        assert!(
            (d_out - d_src).abs() <= n / out_fps + 1e-3,
            "{what}: {d_out:.3} s against the source's {d_src:.3} s"
        );
        if capped {
            for (k, s) in segs.iter().enumerate() {
                let step = 1.0 / f64::from(p.fps);
                assert!(
                    s.pts
                        .windows(2)
                        .all(|w| ((w[1] - w[0]) - step).abs() < 0.0005),
                    "{what}: segment {k} not evenly spaced at {} fps: {:?}",
                    p.fps,
                    s.pts.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>()
                );
            }
        }
        // audio exactly when the source has it (as AAC)
        assert_eq!(r.audio.is_some(), case.audio, "{what}: audio {:?}", r.audio);
        if case.audio {
            assert_eq!(r.audio.as_deref(), Some("aac"), "{what}");
        }
        // the master playlist states what was written
        let line = master
            .lines()
            .zip(master.lines().skip(1))
            .find(|(_, uri)| uri.starts_with(&format!("{}/", p.name)))
            .map(|(inf, _)| inf.to_string())
            .unwrap_or_else(|| panic!("{what}: not in the master playlist:\n{master}"));
        let attr = |k: &str| -> String {
            let at = line
                .find(&format!("{k}="))
                .unwrap_or_else(|| panic!("{what}: no {k}"))
                + k.len()
                + 1;
            let rest = &line[at..];
            if let Some(q) = rest.strip_prefix('"') {
                q[..q.find('"').unwrap()].to_string()
            } else {
                rest.split(',').next().unwrap().to_string()
            }
        };
        assert_eq!(
            attr("RESOLUTION"),
            format!("{}x{}", r.width, r.height),
            "{what}"
        );
        assert_eq!(
            attr("CODECS").contains("mp4a"),
            case.audio,
            "{what}: {line}"
        );
        // FRAME-RATE is the highest rate in the stream (RFC 8216 4.4.6.2): at least the average, at most
        // one over the shortest frame interval
        let stated: f64 = attr("FRAME-RATE").parse().unwrap();
        let measured = r.frames as f64 / d_out;
        let shortest = segs
            .iter()
            .flat_map(|s| s.pts.windows(2).map(|w| w[1] - w[0]))
            .filter(|d| *d > 0.0)
            .fold(f64::INFINITY, f64::min);
        assert!(
            stated >= measured * 0.97 && stated <= 1.03 / shortest,
            "{what}: FRAME-RATE {stated} against {measured:.3} measured, {:.3} at most",
            1.0 / shortest
        );
        // BANDWIDTH is the peak segment bit rate (RFC 8216 4.3.4.2): at least every segment's
        let bandwidth: f64 = attr("BANDWIDTH").parse().unwrap();
        let peak = files
            .iter()
            .zip(&segs)
            .map(|(f, s)| std::fs::metadata(f).unwrap().len() as f64 * 8.0 / s.duration(out_fps))
            .fold(0.0, f64::max);
        assert!(
            bandwidth >= peak * 0.99,
            "{what}: BANDWIDTH {bandwidth} under the peak {peak:.0}"
        );
        frames_out.push(r.frames);
    }
    let dropped: Vec<String> = outs
        .iter()
        .flat_map(|o| {
            let d = &o.stats.dropped;
            [
                ("before keyframe", d.before_keyframe),
                ("undecodable", d.undecodable),
                ("duplicate timestamp", d.duplicate_timestamp),
            ]
        })
        .fold(Vec::<(&str, usize)>::new(), |mut acc, (k, v)| {
            match acc.iter_mut().find(|(a, _)| *a == k) {
                Some(e) => e.1 += v,
                None => acc.push((k, v)),
            }
            acc
        })
        .into_iter()
        .filter(|(_, v)| *v > 0)
        .map(|(k, v)| format!("{v} {k}"))
        .collect();

    // ffmpeg, the reference node's transcoder, on the same input (the segments as one MPEG-TS) and ladder, in
    // the same run
    let started = Instant::now();
    let (o0, o1) = (dir.join("ffmpeg0.ts"), dir.join("ffmpeg1.ts"));
    ffmpeg(&[
        "-i",
        src_file.to_str().unwrap(),
        "-filter_complex",
        "[0:v]split=2[a][b];[a]scale=640:360:force_original_aspect_ratio=decrease:force_divisible_by=2,fps=30[o0];[b]scale=320:180:force_original_aspect_ratio=decrease:force_divisible_by=2,fps=30[o1]",
        "-map",
        "[o0]",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-b:v",
        "900k",
        "-an",
        o0.to_str().unwrap(),
        "-map",
        "[o1]",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-b:v",
        "300k",
        "-an",
        o1.to_str().unwrap(),
    ]);
    let ffmpeg_s = started.elapsed().as_secs_f64();

    if let Ok(keep) = std::env::var("REALWORLD_KEEP") {
        let to = Path::new(&keep).join(case.name);
        let _ = std::fs::remove_dir_all(&to);
        std::fs::create_dir_all(&to).unwrap();
        copy_dir(&hls_dir, &to);
    }
    Row {
        name: case.name,
        frames_in: src.frames,
        frames_out,
        dropped: if dropped.is_empty() {
            "0".into()
        } else {
            dropped.join(", ")
        },
        wall_s,
        ffmpeg_s,
    }
}

/// Segment `i` of a case written to its own file.
fn dir_segment(case: &Case, i: usize, dir: &Path) -> PathBuf {
    let f = dir.join(format!("segment{i}.ts"));
    std::fs::write(&f, &case.segments[i]).unwrap();
    f
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&t).unwrap();
            copy_dir(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), t).unwrap();
        }
    }
}

/// The common source: moving test pattern with a tone.
const SRC: &[&str] = &[
    "-f",
    "lavfi",
    "-i",
    "testsrc2=s=640x360:r=30",
    "-f",
    "lavfi",
    "-i",
    "sine=f=440:r=48000",
];

/// ffmpeg's own HLS segments (its MPEG-TS muxer, not ours) of a file.
fn ffmpeg_segments(input: &Path, dir: &Path, extra: &[&str]) -> Vec<Vec<u8>> {
    let seg_dir = dir.join("ffseg");
    std::fs::create_dir_all(&seg_dir).unwrap();
    let mut args: Vec<&str> = vec!["-i", input.to_str().unwrap(), "-c", "copy"];
    args.extend_from_slice(extra);
    let pattern = seg_dir.join("s%03d.ts");
    let list = seg_dir.join("list.m3u8");
    args.extend_from_slice(&[
        "-f",
        "hls",
        "-hls_time",
        "2",
        "-hls_list_size",
        "0",
        "-hls_segment_filename",
        pattern.to_str().unwrap(),
        list.to_str().unwrap(),
    ]);
    ffmpeg(&args);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&seg_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "ts"))
        .collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

/// Cuts a TS file into live segments of `n` access units each, in decode order, wherever that falls
/// (mid-GOP), with the audio PES of each span.
fn cut_by_frames(file: &Path, n: usize) -> Vec<Vec<u8>> {
    let dm = ts::demux(&std::fs::read(file).unwrap()).unwrap();
    let mut mux = ts::TsMuxer::new();
    let mut out = Vec::new();
    let mut ai = 0;
    for chunk in dm.video.chunks(n) {
        let end = chunk.last().unwrap().dts;
        let audio: Vec<ts::AudioPes> = dm.audio[ai..]
            .iter()
            .take_while(|a| a.pts <= end)
            .cloned()
            .collect();
        ai += audio.len();
        out.push(remux(&mut mux, chunk, &audio, &dm, false));
    }
    out
}

/// Muxes access units and audio of a demuxed input again (with PTS only, as a muxer that drops DTS
/// writes them, when `strip_dts`).
fn remux(
    mux: &mut ts::TsMuxer,
    video: &[ts::VideoAu],
    audio: &[ts::AudioPes],
    dm: &ts::Demuxed,
    strip_dts: bool,
) -> Vec<u8> {
    let frames: Vec<ts::EncodedFrame> = video
        .iter()
        .map(|a| ts::EncodedFrame {
            dts: if strip_dts { a.pts } else { a.dts },
            ..a.into()
        })
        .collect();
    let at = dm
        .audio_stream_type
        .map(|t| (t, dm.audio_descriptors.as_slice()));
    mux.mux_segment(&frames, audio, at)
}

fn file_case(name: &'static str, dir: &Path, file: &str, args: &[&str], audio: bool) -> Case {
    let f = dir.join(file);
    let mut a: Vec<&str> = args.to_vec();
    a.push(f.to_str().unwrap());
    ffmpeg(&a);
    Case {
        name,
        segments: sources::split_file(&f, 2.0).unwrap_or_else(|e| panic!("{name}: {e}")),
        feed: Feed::Engine,
        audio,
        resolution_changes: false,
    }
}

#[test]
fn real_world_traits_transcode_completely_into_renditions_players_decode() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    fn with<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let mut v = SRC.to_vec();
        v.extend_from_slice(extra);
        v
    }
    let mut cases = vec![
        // 4:4:4 High 4:4:4 Predictive in MPEG-TS
        file_case(
            "yuv444",
            d,
            "yuv444.ts",
            &with(&[
                "-t", "4", "-pix_fmt", "yuv444p", "-c:v", "libx264", "-g", "60", "-c:a", "aac",
            ]),
            true,
        ),
        // 10-bit High 10 in MP4
        file_case(
            "high10",
            d,
            "high10.mp4",
            &with(&[
                "-t",
                "4",
                "-pix_fmt",
                "yuv420p10le",
                "-c:v",
                "libx264",
                "-g",
                "60",
                "-c:a",
                "aac",
            ]),
            true,
        ),
        // 33.3 fps into 30 fps profiles
        file_case(
            "fps33",
            d,
            "fps33.mp4",
            &with(&[
                "-t",
                "4",
                "-vf",
                "fps=100/3",
                "-c:v",
                "libx264",
                "-g",
                "67",
                "-c:a",
                "aac",
            ]),
            true,
        ),
        // variable frame rate (every fifth frame missing) in FLV
        file_case(
            "vfr-flv",
            d,
            "vfr.flv",
            &with(&[
                "-t",
                "4",
                "-vf",
                "select='not(eq(mod(n\\,5)\\,3))'",
                "-fps_mode",
                "vfr",
                "-c:v",
                "libx264",
                "-g",
                "48",
                "-c:a",
                "aac",
            ]),
            true,
        ),
        // non-square pixels, 1024x432 shown 1032 wide
        file_case(
            "anamorphic",
            d,
            "anamorphic.mp4",
            &[
                "-f",
                "lavfi",
                "-i",
                "testsrc2=s=1024x432:r=25",
                "-t",
                "4",
                "-vf",
                "setsar=129/128",
                "-c:v",
                "libx264",
                "-g",
                "50",
            ],
            false,
        ),
        // interlaced (MBAFF, top field first)
        file_case(
            "interlaced",
            d,
            "interlaced.ts",
            &with(&[
                "-t",
                "4",
                "-vf",
                "fps=25",
                "-flags",
                "+ilme+ildct",
                "-x264opts",
                "tff=1",
                "-c:v",
                "libx264",
                "-g",
                "50",
                "-c:a",
                "aac",
            ]),
            true,
        ),
        // open GOP at 23.976 fps: segments start at recovery-point I pictures whose leading B pictures refer to
        // the previous GOP
        file_case(
            "open-gop",
            d,
            "opengop.ts",
            &with(&[
                "-t",
                "4",
                "-vf",
                "fps=24000/1001",
                "-c:v",
                "libx264",
                "-x264opts",
                "open-gop=1:keyint=48:min-keyint=48:scenecut=0",
                "-bf",
                "3",
                "-c:a",
                "aac",
            ]),
            true,
        ),
        // MP3 audio in MPEG-TS: transcoded to AAC on the file path
        file_case(
            "mp3-file",
            d,
            "mp3.ts",
            &with(&[
                "-t",
                "4",
                "-c:v",
                "libx264",
                "-g",
                "60",
                "-c:a",
                "libmp3lame",
            ]),
            true,
        ),
    ];

    // B-frames whose DTS were stripped by a muxer: ffmpeg's segments, rewritten with PTS only
    let bf = d.join("bframes.ts");
    ffmpeg(&with(&[
        "-t",
        "4",
        "-c:v",
        "libx264",
        "-bf",
        "3",
        "-g",
        "60",
        "-c:a",
        "aac",
        bf.to_str().unwrap(),
    ]));
    let no_dts: Vec<Vec<u8>> = ffmpeg_segments(&bf, d, &[])
        .iter()
        .map(|s| {
            let dm = ts::demux(s).unwrap();
            remux(&mut ts::TsMuxer::new(), &dm.video, &dm.audio, &dm, true)
        })
        .collect();
    cases.push(Case {
        name: "bframes-no-dts",
        segments: no_dts,
        feed: Feed::Engine,
        audio: true,
        resolution_changes: false,
    });

    // live segments cut every 45 frames wherever that falls (GOP 120): most start mid-GOP, on two engines
    let long_gop = d.join("longgop.ts");
    ffmpeg(&with(&[
        "-t",
        "6",
        "-c:v",
        "libx264",
        "-g",
        "120",
        "-c:a",
        "aac",
        long_gop.to_str().unwrap(),
    ]));
    cases.push(Case {
        name: "cut-mid-gop",
        segments: cut_by_frames(&long_gop, 45),
        feed: Feed::Pool,
        audio: true,
        resolution_changes: false,
    });

    // a 12.5 s GOP at 24 fps cut every 2 s: up to 10.5 s of preroll before a segment's own pictures
    let very_long_gop = d.join("verylonggop.ts");
    ffmpeg(&with(&[
        "-t",
        "13",
        "-s",
        "320x180",
        "-vf",
        "fps=24",
        "-c:v",
        "libx264",
        "-g",
        "300",
        "-c:a",
        "aac",
        very_long_gop.to_str().unwrap(),
    ]));
    cases.push(Case {
        name: "cut-long-gop",
        segments: cut_by_frames(&very_long_gop, 48),
        feed: Feed::Engine,
        audio: true,
        resolution_changes: false,
    });

    // a stream joined mid-GOP: its first segment's frames before the first keyframe cannot be decoded
    let mut joined = cut_by_frames(&long_gop, 70);
    joined.remove(0);
    cases.push(Case {
        name: "joined-mid-gop",
        segments: joined,
        feed: Feed::Engine,
        audio: true,
        resolution_changes: false,
    });

    // ffmpeg's segments with MP3 audio, live: the audio is not carried (stated), the video is complete
    let mp3 = d.join("mp3.ts");
    cases.push(Case {
        name: "mp3-live",
        segments: ffmpeg_segments(&mp3, d, &[]),
        feed: Feed::Engine,
        audio: false,
        resolution_changes: false,
    });

    // resolution changes mid-stream: 640x360, then 4:3 480x360, then 1280x720
    let mut res = Vec::new();
    for (i, size) in ["640x360", "480x360", "1280x720"].iter().enumerate() {
        let f = d.join(format!("res{i}.ts"));
        let src = format!("testsrc2=s={size}:r=30");
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            &src,
            "-t",
            "2",
            "-c:v",
            "libx264",
            "-g",
            "60",
            "-output_ts_offset",
            &(i * 2).to_string(),
            f.to_str().unwrap(),
        ]);
        res.push(std::fs::read(&f).unwrap());
    }
    cases.push(Case {
        name: "resolution-change",
        segments: res,
        feed: Feed::Engine,
        audio: false,
        resolution_changes: true,
    });

    let mut rows = Vec::new();
    for c in &cases {
        let dir = d.join(c.name);
        std::fs::create_dir_all(&dir).unwrap();
        let row = run(c, &dir);
        eprintln!(
            "{}: {} frames in, {:?} out, dropped {}, {:.2} s (ffmpeg {:.2} s)",
            row.name, row.frames_in, row.frames_out, row.dropped, row.wall_s, row.ffmpeg_s
        );
        rows.push(row);
    }
    // a stream joined mid-GOP drops (and counts) what it cannot decode; a stream cut mid-GOP drops nothing
    let dropped = |n: &str| rows.iter().find(|r| r.name == n).unwrap().dropped.clone();
    assert_eq!(dropped("cut-mid-gop"), "0");
    assert!(
        dropped("joined-mid-gop").contains("before keyframe"),
        "{}",
        dropped("joined-mid-gop")
    );
    for r in &rows {
        if r.name != "joined-mid-gop" {
            assert_eq!(r.dropped, "0", "{}", r.name);
        }
    }
    if let Ok(f) = std::env::var("REALWORLD_REPORT") {
        let mut t = String::from(
            "| input | frames in | frames out (360p, 180p) | dropped | engine wall s | ffmpeg wall s | ratio |\n|---|---|---|---|---|---|---|\n",
        );
        for r in &rows {
            t.push_str(&format!(
                "| {} | {} | {} | {} | {:.2} | {:.2} | {:.2} |\n",
                r.name,
                r.frames_in,
                r.frames_out
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                r.dropped,
                r.wall_s,
                r.ffmpeg_s,
                r.wall_s / r.ffmpeg_s
            ));
        }
        std::fs::write(f, t).unwrap();
    }
}

/// Inputs the engine does not transcode get a clear error naming the codec, and the stream goes on.
#[test]
fn hevc_is_refused_up_front_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let hevc = tmp.path().join("hevc.ts");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x180:r=30",
        "-t",
        "1",
        "-c:v",
        "libx265",
        "-x265-params",
        "log-level=error",
        hevc.to_str().unwrap(),
    ]);
    let err = sources::split_file(&hevc, 2.0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the input's video is HEVC (H.265): only H.264 is transcoded"
    );
    let mut t = Transcoder::new(EngineConfig::new(ladder())).unwrap();
    let err = t
        .push_segment(0, &std::fs::read(&hevc).unwrap())
        .unwrap_err();
    assert!(
        matches!(
            err,
            SegmentError::Demux {
                source: ts::TsError::NotH264(0x24),
                ..
            }
        ),
        "{err}"
    );
}
