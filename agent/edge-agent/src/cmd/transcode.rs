//! `edge-agent transcode`: a file or the built-in test source through the same per-stream engine the daemon
//! uses, to an HLS ladder on disk.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use media::hls::HlsMode;
use media::{EngineConfig, Profile};
use serde::Serialize;

use crate::pipeline::StreamPipeline;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Input file: MPEG-TS or MP4 with H.264 video (AAC audio optional).
    #[arg(
        long,
        short,
        conflicts_with = "test_source",
        required_unless_present = "test_source"
    )]
    input: Option<PathBuf>,
    /// Use the built-in test source (moving SMPTE bars with an AAC tone) instead of a file.
    #[arg(long)]
    test_source: bool,
    /// Test source: duration in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Test source: frame size, WxH.
    #[arg(long, default_value = "1280x720", value_parser = parse_size)]
    test_size: (u32, u32),
    /// Test source: frame rate.
    #[arg(long, default_value_t = 30)]
    test_fps: u32,
    /// Test source: no audio track.
    #[arg(long)]
    no_audio: bool,
    /// Ladder: comma-separated profile names (standard or from the config's custom profiles) or inline
    /// profiles `WxH@FPS:KBPS` (e.g. `1280x720@30:3000`).  Default: the config's `media.ladder`.
    #[arg(long, value_delimiter = ',', conflicts_with = "options")]
    ladder: Vec<String>,
    /// Ladder as a job's transcodingOptions (concatenated 8-hex-digit profile IDs).
    #[arg(long)]
    options: Option<String>,
    /// Keyframe interval in frames for every rendition (default: one keyframe per segment, at its start).
    #[arg(long)]
    gop: Option<u32>,
    /// Output directory (master.m3u8 plus one directory per rendition).
    #[arg(long, short, default_value = "out/hls")]
    out: PathBuf,
    /// Target segment length in seconds when splitting the input (default: the config's).
    #[arg(long)]
    segment_seconds: Option<f64>,
    /// Engine tuning as TOML (`[layout]`, `[backend]` tables of media::EngineConfig), e.g. from a file
    /// written by the benchmark.
    #[arg(long)]
    engine: Option<PathBuf>,
    /// Pipelines working on consecutive segments at once (each segment's encoders drain at its end; a second
    /// engine keeps the CPU busy meanwhile).  Output is the same for any value.
    #[arg(long, default_value_t = 2)]
    engines: usize,
    /// `restart` (fresh encoders per segment; the default here), `continuous` (one engine whose encoders
    /// run on across segments without lookahead, as the daemon runs a live stream) or `lookahead` (one
    /// engine, encoders running on with their lookahead and B-frames: a file's best quality).
    #[arg(long)]
    segment_mode: Option<media::engine::SegmentMode>,
    /// Extra x264 options (`key=value:key=value`) appended to the software encoder's option string, e.g.
    /// `me=dia` as in the tuned benchmark layout.  Ignored by hardware encoders.
    #[arg(long, default_value = "")]
    x264_opts: String,
    /// Use the software encoder even if the box has an accelerator.
    #[arg(long)]
    software: bool,
    /// Configuration file (custom profiles, hw settings).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Print JSON lines (one per segment, then a summary) instead of a progress bar.
    #[arg(long)]
    json: bool,
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s.split_once('x').ok_or("expected WxH")?;
    Ok((
        w.parse().map_err(|_| "bad width")?,
        h.parse().map_err(|_| "bad height")?,
    ))
}

/// `WxH@FPS:KBPS` → a custom profile named `{H}p{FPS}fps{KBPS}k`.
fn parse_inline(s: &str) -> Option<Result<Profile, String>> {
    let (size, rest) = s.split_once('@')?;
    let (fps, kbps) = rest.split_once(':')?;
    let (w, h) = parse_size(size).ok()?;
    let (fps, kbps) = (fps.parse().ok()?, kbps.parse().ok()?);
    Some(Profile::new(&format!("{h}p{fps}fps{kbps}k"), w, h, fps, kbps).map_err(|e| e.to_string()))
}

#[derive(Serialize)]
struct Summary {
    out: PathBuf,
    master: PathBuf,
    encoder: String,
    segments_ok: usize,
    segments_failed: usize,
    input_seconds: f64,
    wall_seconds: f64,
    realtime_factor: f64,
    latency_ms_p50: u64,
    latency_ms_p95: u64,
    latency_ms_max: u64,
    /// Input frames that produced no output, by cause, over all segments.
    frames_dropped: crate::daemon::DroppedTotals,
    errors: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = crate::config::Config::load(args.config.as_deref(), std::env::vars())?;
    let set = cfg.profile_set()?;
    let mut profiles = Vec::new();
    if let Some(o) = &args.options {
        profiles = set.parse_options(o).context("--options")?;
    } else {
        let names = if args.ladder.is_empty() {
            cfg.media.ladder.clone()
        } else {
            args.ladder.clone()
        };
        for n in &names {
            let p = match parse_inline(n) {
                Some(p) => p
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("--ladder {n}"))?,
                None => set
                    .by_name(n)
                    .cloned()
                    .with_context(|| format!("--ladder {n}"))?,
            };
            profiles.push(p);
        }
    }
    if let Some(g) = args.gop {
        for p in &mut profiles {
            p.gop = Some(g);
        }
    }
    let segment_secs = args.segment_seconds.unwrap_or(cfg.media.segment_seconds);

    // The backend comes from the hardware probe unless the engine file names one.
    let mut backend_given = false;
    let mut engine = match &args.engine {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let mut table: toml::Table =
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
            backend_given = table.contains_key("backend");
            table.insert("profiles".into(), toml::Value::try_from(&profiles)?);
            toml::Value::Table(table)
                .try_into::<EngineConfig>()
                .with_context(|| format!("engine settings in {}", path.display()))?
        }
        None => EngineConfig::new(profiles),
    };
    if let Some(m) = args.segment_mode {
        engine.mode = m;
    }
    if !backend_given {
        let mut hw_cfg = cfg.hw.clone();
        hw_cfg.force_software |= args.software;
        let hw = crate::hwsel::probe(&hw_cfg)?;
        engine.backend = hw.backend();
    }
    if let media::Backend::Software(x) = &mut engine.backend
        && !args.x264_opts.is_empty()
    {
        x.option_string = if x.option_string.is_empty() {
            args.x264_opts.clone()
        } else {
            format!("{}:{}", x.option_string, args.x264_opts)
        };
    }
    let encoder = engine.backend.encoder_factory().to_string();

    let load_started = Instant::now();
    let segments = match &args.input {
        Some(path) => media::sources::split_file(path, segment_secs)
            .with_context(|| format!("reading {}", path.display()))?,
        None => {
            if args.duration.is_nan() || args.duration <= 0.0 {
                bail!("--duration must be positive");
            }
            let src = media::sources::TestSource {
                width: args.test_size.0,
                height: args.test_size.1,
                fps: args.test_fps,
                duration: args.duration,
                audio: !args.no_audio,
                segment_secs,
                ..Default::default()
            };
            src.segments().context("generating the test source")?
        }
    };
    tracing::debug!(segments = segments.len(), took = ?load_started.elapsed(), "input segmented");

    let mut pipeline = StreamPipeline::build(
        engine,
        args.engines,
        &args.out,
        HlsMode::Vod,
        segment_secs,
        false,
        Default::default(),
    )?;
    let total = segments.len() as u64;
    let bar = (!args.json && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} segments {msg}",
            )
            .expect("static template"),
        );
        b
    });

    let started = Instant::now();
    let mut latencies = Vec::new();
    let (mut ok, mut input_seconds, mut errors) = (0usize, 0f64, Vec::new());
    let mut dropped = crate::daemon::DroppedTotals::default();
    let mut handle = |result: Result<crate::pipeline::Pushed, crate::pipeline::PushError>| -> anyhow::Result<()> {
        match result {
            Ok(p) => {
                ok += 1;
                input_seconds += p.report.input_duration;
                dropped.add(&p.report.dropped);
                if p.report.dropped.total() > 0 {
                    tracing::warn!(
                        seq = p.report.seq,
                        dropped = ?p.report.dropped,
                        "input frames without output"
                    );
                }
                latencies.push(p.report.wall_ms);
                if args.json {
                    println!("{}", serde_json::to_string(&p.report)?);
                }
                if let Some(b) = &bar {
                    let rt = input_seconds / started.elapsed().as_secs_f64().max(1e-6);
                    b.set_message(format!("{rt:.2}x realtime"));
                }
            }
            Err(e) => {
                tracing::warn!("{e}");
                errors.push(e.to_string());
            }
        }
        if let Some(b) = &bar {
            b.inc(1);
        }
        Ok(())
    };
    for (seq, data) in segments.into_iter().enumerate() {
        if let Err(e) = pipeline.submit(seq as u64, data) {
            handle(Err(e))?;
        }
        while pipeline.in_flight() >= pipeline.depth() {
            if let Some(r) = pipeline.next() {
                handle(r)?;
            }
        }
    }
    pipeline.end_of_input();
    while let Some(r) = pipeline.next() {
        handle(r)?;
    }
    pipeline.finish()?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let wall = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |q: f64| -> u64 {
        if latencies.is_empty() {
            return 0;
        }
        latencies[((latencies.len() as f64 - 1.0) * q).round() as usize]
    };
    let summary = Summary {
        master: pipeline.master_path(),
        out: args.out.clone(),
        encoder,
        segments_ok: ok,
        segments_failed: errors.len(),
        input_seconds,
        wall_seconds: wall,
        realtime_factor: input_seconds / wall.max(1e-6),
        latency_ms_p50: pct(0.5),
        latency_ms_p95: pct(0.95),
        latency_ms_max: latencies.last().copied().unwrap_or(0),
        frames_dropped: dropped,
        errors,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&serde_json::json!({ "summary": summary }))?
        );
    } else {
        eprintln!(
            "{} segments ({} failed) of {:.1} s in {:.2} s: {:.2}x realtime with {}; segment latency p50 {} ms, p95 {} ms; input frames dropped: {} before a keyframe, {} undecodable, {} duplicate timestamps\nmaster playlist: {}",
            summary.segments_ok + summary.segments_failed,
            summary.segments_failed,
            summary.input_seconds,
            summary.wall_seconds,
            summary.realtime_factor,
            summary.encoder,
            summary.latency_ms_p50,
            summary.latency_ms_p95,
            summary.frames_dropped.before_keyframe,
            summary.frames_dropped.undecodable,
            summary.frames_dropped.duplicate_timestamp,
            summary.master.display()
        );
    }
    if ok == 0 {
        bail!("no segment could be transcoded");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_profiles() {
        let p = parse_inline("1280x720@30:3000").unwrap().unwrap();
        assert_eq!(
            (p.width, p.height, p.fps, p.bitrate_kbps),
            (1280, 720, 30, 3000)
        );
        assert_eq!(p.name, "720p30fps3000k");
        assert!(parse_inline("P720p30fps16x9").is_none());
        assert!(parse_inline("0x720@30:3000").unwrap().is_err());
    }
}
