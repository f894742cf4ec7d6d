//! Reference driver of the media API, and a drop-in `AGENT` for scripts/bench.d/transcode.sh until
//! `edge-agent transcode` exists:
//!
//! ```text
//! cargo run --release -p media --example transcode -- transcode --input in.ts \
//!     --ladder 1280x720@30:3000,854x480@30:1500,640x360@30:800 --gop 60 --segment-seconds 2 --json --out out/hls
//! cargo run --release -p media --example transcode -- transcode --test-source --duration 10 --out out/hls
//! ```
//! Prints one JSON line per segment and a summary line (wall time, realtime factor, per-segment latency).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use media::engine::SegmentMode;
use media::hls::{HlsMode, HlsWriter};
use media::sources::{self, TestSource};
use media::{Backend, EngineConfig, Layout, Profile, ProfileSet, TranscoderPool, X264Options};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Transcode a file or the test source to HLS.
    Transcode(Args),
}

#[derive(clap::Args)]
struct Args {
    /// Input file (MPEG-TS or MP4, H.264 with or without AAC).
    #[arg(long, conflicts_with = "test_source")]
    input: Option<PathBuf>,
    /// Use the built-in test source instead of a file.
    #[arg(long)]
    test_source: bool,
    /// Test source duration in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Ladder: comma-separated profile names / IDs (P720p30fps16x9) or WxH@FPS:KBPS.
    #[arg(long, default_value = "P720p30fps16x9,P360p30fps16x9,P240p30fps16x9")]
    ladder: String,
    /// Keyframe interval in frames.
    #[arg(long)]
    gop: Option<u32>,
    #[arg(long, default_value_t = 2.0)]
    segment_seconds: f64,
    /// Software encoder (the only one this example maps; the agent maps the hw crate's choice).
    #[arg(long)]
    software: bool,
    /// Extra x264 options, e.g. "me=dia".
    #[arg(long, default_value = "")]
    x264_opts: String,
    /// Layout as TOML inline table fields, e.g. 'scaler="lanczos"' (see media::Layout).
    #[arg(long)]
    layout: Option<String>,
    /// Engines working on consecutive segments at once (media::TranscoderPool).
    #[arg(long, default_value_t = 1)]
    engines: usize,
    /// Encoders restarting at every segment (`restart`), running on across segments without lookahead
    /// (`continuous`) or with it (`lookahead`); one engine in the last two.
    #[arg(long, default_value = "restart")]
    segment_mode: SegmentMode,
    #[arg(long)]
    json: bool,
    #[arg(long)]
    out: PathBuf,
}

fn parse_ladder(s: &str, gop: Option<u32>) -> Result<Vec<Profile>> {
    let set = ProfileSet::default();
    s.split(',')
        .map(|item| {
            let item = item.trim();
            let mut p = if let Some((size, rest)) = item.split_once('@') {
                let (w, h) = size.split_once('x').context("WxH")?;
                let (fps, kbps) = rest.split_once(':').context("@FPS:KBPS")?;
                let name = format!("{h}p{fps}");
                Profile::new(&name, w.parse()?, h.parse()?, fps.parse()?, kbps.parse()?)?
            } else if let Ok(p) = set.by_name(item) {
                p.clone()
            } else {
                set.parse_options(item)?.remove(0)
            };
            p.gop = gop;
            Ok(p)
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn handle(
    r: Result<media::SegmentOutput, media::SegmentError>,
    hls: &mut HlsWriter,
    ok: &mut usize,
    failed: &mut usize,
    media_secs: &mut f64,
    lat: &mut Vec<f64>,
    json: bool,
) -> Result<()> {
    match r {
        Ok(out) => {
            *ok += 1;
            *media_secs += out.stats.input_duration;
            let ms = out.stats.wall.as_secs_f64() * 1000.0;
            lat.push(ms);
            hls.write_segment(&out)?;
            if json {
                let r: Vec<_> = out
                    .renditions
                    .iter()
                    .map(|r| serde_json::json!({"profile": r.profile, "width": r.width, "height": r.height, "frames": r.frames, "bytes": r.data.len()}))
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({"seq": out.seq, "wall_ms": ms, "renditions": r})
                );
            }
        }
        Err(e) => {
            *failed += 1;
            eprintln!("{e}");
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let Cmd::Transcode(a) = Cli::parse().cmd;
    let profiles = parse_ladder(&a.ladder, a.gop)?;
    let t0 = Instant::now();
    let segments = match (&a.input, a.test_source) {
        (Some(f), _) => sources::split_file(f, a.segment_seconds)
            .with_context(|| format!("splitting {}", f.display()))?,
        (None, true) => TestSource {
            duration: a.duration,
            segment_secs: a.segment_seconds,
            ..Default::default()
        }
        .segments()?,
        (None, false) => bail!("--input FILE or --test-source"),
    };
    let split_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let mut cfg = EngineConfig::new(profiles);
    let mut x = X264Options::default();
    if !a.x264_opts.is_empty() {
        x.option_string = format!("{}:{}", x.option_string, a.x264_opts);
    }
    cfg.backend = Backend::Software(x);
    if let Some(l) = &a.layout {
        cfg.layout = toml::from_str::<Layout>(l).context("--layout")?;
    }
    let _ = a.software;
    cfg.mode = a.segment_mode;
    let mut pool = TranscoderPool::new(cfg, a.engines).context("building the pipelines")?;
    let mut hls = HlsWriter::new(&a.out, HlsMode::Vod, a.segment_seconds)?;
    let start = Instant::now();
    let (mut ok, mut failed, mut media_secs) = (0usize, 0usize, 0.0f64);
    let mut lat = Vec::new();
    for (seq, seg) in segments.into_iter().enumerate() {
        if pool.in_flight() >= pool.depth() {
            let r = pool.recv().expect("a segment is pending");
            handle(
                r,
                &mut hls,
                &mut ok,
                &mut failed,
                &mut media_secs,
                &mut lat,
                a.json,
            )?;
        }
        pool.submit(seq as u64, seg);
    }
    pool.finish();
    while let Some(r) = pool.recv() {
        handle(
            r,
            &mut hls,
            &mut ok,
            &mut failed,
            &mut media_secs,
            &mut lat,
            a.json,
        )?;
    }
    hls.finish()?;
    let wall = start.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let rss_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    println!(
        "{}",
        serde_json::json!({
            "segments_ok": ok, "segments_failed": failed, "split_ms": split_ms, "transcode_s": wall,
            "realtime": media_secs / wall, "latency_ms_p50": pct(0.5), "latency_ms_p95": pct(0.95),
            "latency_ms_max": pct(1.0), "peak_rss_kib": rss_kib, "master": hls.master_path(),
        })
    );
    if failed > 0 {
        bail!("{failed} segment(s) failed");
    }
    Ok(())
}
