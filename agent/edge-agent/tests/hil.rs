//! Hardware-in-the-loop: the real `edge-agent transcode` on whatever encoder `hw` picks on this box (on a
//! machine without an accelerator: the x264 fallback), fed a file made by an independent tool (ffmpeg), with
//! the output checked by an independent tool (ffprobe/ffmpeg): segment count and sequence numbers, durations
//! within one frame, resolutions, video bitrate within ±15 % of the profile, every segment decodes, and the
//! master playlist parses.

use std::path::Path;
use std::process::Command;

fn ffmpeg_input(path: &Path, secs: u32) {
    // testsrc2 moves and carries detail everywhere, so rate control can reach its target; plus a sine tone.
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size=1280x720:rate=30:duration={secs}"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=440:sample_rate=48000:duration={secs}"
        ))
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-g",
            "60",
            "-keyint_min",
            "60",
            "-sc_threshold",
            "0",
            "-b:v",
            "5000k",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-f",
            "mpegts",
        ])
        .arg(path)
        .status()
        .expect("ffmpeg");
    assert!(st.success());
}

fn ffprobe_json(args: &[&str], file: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json"])
        .args(args)
        .arg(file)
        .output()
        .expect("ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn transcode_on_the_selected_encoder_meets_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ts");
    ffmpeg_input(&input, 6);
    let out = dir.path().join("hls");
    let run = Command::new(env!("CARGO_BIN_EXE_edge-agent"))
        .args(["transcode", "--json", "--segment-seconds", "2", "--ladder"])
        .arg("P720p30fps16x9,P360p30fps16x9,P240p30fps16x9")
        .arg("--input")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (segments, summary) = lines.split_at(lines.len() - 1);
    let summary = &summary[0]["summary"];
    assert_eq!(summary["segments_failed"], 0);
    assert_eq!(segments.len(), 3, "6 s at 2 s segments");
    eprintln!("encoder: {}", summary["encoder"]);

    let expect = [
        ("P720p30fps16x9", 1280, 720, 4000.0),
        ("P360p30fps16x9", 640, 360, 1200.0),
        ("P240p30fps16x9", 426, 240, 600.0),
    ];
    let frame = 1.0 / 30.0;
    for (i, seg) in segments.iter().enumerate() {
        assert_eq!(seg["seq"], i as u64, "sequence numbers follow the input");
        let input_duration = seg["input_duration"].as_f64().unwrap();
        let rends = seg["renditions"].as_array().unwrap();
        assert_eq!(rends.len(), 3);
        for (r, (name, w, h, _)) in rends.iter().zip(expect) {
            assert_eq!(r["profile"], name);
            assert_eq!(
                (r["width"].as_u64().unwrap(), r["height"].as_u64().unwrap()),
                (w, h)
            );
            let d = r["duration"].as_f64().unwrap();
            assert!(
                (d - input_duration).abs() <= frame + 1e-6,
                "{name} seg {i}: {d} vs input {input_duration}"
            );
            assert!((d - 2.0).abs() <= frame + 1e-6, "{name} seg {i}: {d}");
        }
    }
    for (name, w, h, kbps) in expect {
        // Video bitrate over the whole run, from the elementary stream bytes the engine reports.
        let (bytes, secs) = segments.iter().fold((0.0, 0.0), |(b, s), seg| {
            let r = seg["renditions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["profile"] == name)
                .unwrap();
            (
                b + r["video_bytes"].as_f64().unwrap(),
                s + r["duration"].as_f64().unwrap(),
            )
        });
        let got = bytes * 8.0 / secs / 1000.0;
        assert!(
            (got / kbps - 1.0).abs() <= 0.15,
            "{name}: {got:.0} kbit/s against {kbps}"
        );
        for seq in 0..3 {
            let seg = out.join(name).join(format!("{seq}.ts"));
            let p = ffprobe_json(
                &[
                    "-show_streams",
                    "-show_frames",
                    "-select_streams",
                    "v",
                    "-show_entries",
                    "frame=key_frame,pict_type:stream=codec_name,width,height",
                ],
                &seg,
            );
            let s = &p["streams"][0];
            assert_eq!(s["codec_name"], "h264");
            assert_eq!(
                (s["width"].as_u64().unwrap(), s["height"].as_u64().unwrap()),
                (w, h)
            );
            let frames = p["frames"].as_array().unwrap();
            assert_eq!(frames.len(), 60, "{name} seg {seq}: 2 s at 30 fps");
            assert_eq!(
                frames[0]["key_frame"], 1,
                "{name} seg {seq} starts with a keyframe"
            );
            let a = ffprobe_json(&["-show_streams", "-select_streams", "a"], &seg);
            assert_eq!(
                a["streams"][0]["codec_name"], "aac",
                "{name} seg {seq} carries the audio"
            );
            // Decodes back without a single error.
            let dec = Command::new("ffmpeg")
                .args(["-v", "error", "-xerror", "-i"])
                .arg(&seg)
                .args(["-f", "null", "-"])
                .output()
                .unwrap();
            assert!(
                dec.status.success() && dec.stderr.is_empty(),
                "{}: {}",
                seg.display(),
                String::from_utf8_lossy(&dec.stderr)
            );
        }
    }
    // The master playlist parses as HLS and lists the three variants with their real sizes.
    let master = out.join("master.m3u8");
    let text = std::fs::read_to_string(&master).unwrap();
    for (name, w, h, _) in expect {
        assert!(
            text.contains(&format!("RESOLUTION={w}x{h}"))
                && text.contains(&format!("{name}/index.m3u8")),
            "{text}"
        );
    }
    let p = ffprobe_json(&["-show_programs"], &master);
    assert_eq!(p["programs"].as_array().unwrap().len(), 3, "{p}");
}
