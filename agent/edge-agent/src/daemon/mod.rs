//! `edge-agent run`: the daemon.  Loads the configuration, probes the hardware once, starts each subsystem
//! as a task under one shutdown token, tells systemd when it is ready and keeps its watchdog fed.
//!
//! The subsystems only share [`Shared`]; none of them knows about another.

pub mod chain;
pub mod fleet;
pub mod image;
pub mod sd;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::logging::LogHandle;

/// The part of the configuration that can change while the daemon runs (fleet desired config, commands).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuntimeConfig {
    pub log_level: String,
    /// Effective concurrent-stream limit (never 0: resolved against the board/encoder limit at start).
    pub max_sessions: u32,
    /// Profile names of the ladder used for new streams.
    pub ladder: Vec<String>,
    /// When an installed update may reboot the box (`HH:MM-HH:MM` UTC, from the fleet's desired config).
    pub maintenance_window: Option<String>,
}

/// Live numbers about one stream, for telemetry and `/metrics`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StreamStats {
    pub segments_ok: u64,
    pub segments_failed: u64,
    /// Frames per second of the last segment (decoded input frames / wall time).
    pub fps: f64,
    /// Media duration / wall time of the last segment.
    pub realtime_factor: f64,
    pub last_error: Option<String>,
    /// Input frames that produced no output since the stream started, by cause.
    pub frames_dropped: DroppedTotals,
}

/// [`media::Dropped`] summed over a stream's segments.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DroppedTotals {
    pub before_keyframe: u64,
    pub undecodable: u64,
    pub duplicate_timestamp: u64,
}

impl DroppedTotals {
    pub fn add(&mut self, d: &media::Dropped) {
        self.before_keyframe += d.before_keyframe as u64;
        self.undecodable += d.undecodable as u64;
        self.duplicate_timestamp += d.duplicate_timestamp as u64;
    }

    /// (Prometheus label value, count) for each cause.
    pub fn by_reason(&self) -> [(&'static str, u64); 3] {
        [
            ("before_keyframe", self.before_keyframe),
            ("undecodable", self.undecodable),
            ("duplicate_timestamp", self.duplicate_timestamp),
        ]
    }
}

/// What one transcoded segment adds to its stream's numbers.
pub struct SegmentDone<'a> {
    /// Decoded input frames per wall-clock second.
    pub fps: f64,
    /// Media seconds per wall-clock second.
    pub realtime_factor: f64,
    pub dropped: &'a media::Dropped,
}

/// State shared by the subsystems.
pub struct Shared {
    pub config: Config,
    pub started: Instant,
    pub log: LogHandle,
    pub runtime: watch::Sender<RuntimeConfig>,
    pub hw: crate::hwsel::HwState,
    pub streams: Mutex<BTreeMap<String, StreamStats>>,
    pub segments_total: AtomicU64,
    /// Media engines rebuilt after one broke (a panic, or a failure it could not recover from), all streams.
    pub engine_rebuilds: Arc<AtomicU64>,
    /// The most streams this box takes: its calibration's figure, else its encoder table's. A desired session
    /// limit above it is refused.
    pub capacity: AtomicU32,
    /// Bumped to make every stream rebuild its pipeline before its next segment (fleet `restart-pipeline`).
    pub pipeline_generation: AtomicU64,
    pub shutdown: CancellationToken,
    /// Segments in work, for the watchdog.
    pub work: crate::streams::Liveness,
    /// The chain keeper's view, when the box has a `[chain]` account.
    pub chain: Option<watch::Receiver<::chain::keeper::KeeperStatus>>,
    /// Checks segments sent for an on-chain job (`X-Job-Id`) before they are transcoded.
    pub job_gate: Option<std::sync::Arc<::chain::jobs::SegmentGate>>,
    /// Receipts of on-chain jobs' segments.
    pub proof: Option<::proof::ProofStore>,
    /// The claim life cycle's view, when the box has a `[chain]` account.
    pub claims: Option<watch::Receiver<::proof::driver::DriverStatus>>,
    /// The A/B image the box booted, when it runs on one.
    pub image: Option<image::ImageEnv>,
    /// An image update is being downloaded or installed, or waits for its reboot.
    pub updating: std::sync::atomic::AtomicBool,
    /// The update in progress (download, install), for telemetry.
    pub update_progress: Mutex<Option<::fleet::proto::UpdateStatus>>,
    /// The update bundle this box fetched from its site's swarm: served to the other boxes of the site
    /// until the reboot into it.
    pub bundle_seed: Mutex<Option<ppspp_udp::Node>>,
    /// The fleet broker connection is up.
    pub fleet_connected: std::sync::atomic::AtomicBool,
}

impl Shared {
    pub fn runtime(&self) -> RuntimeConfig {
        self.runtime.borrow().clone()
    }

    pub fn active_streams(&self) -> usize {
        self.streams.lock().unwrap().len()
    }

    /// Makes every stream rebuild its pipeline before its next segment.
    pub fn restart_pipelines(&self) {
        self.pipeline_generation.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_segment(&self, stream: &str, result: Result<SegmentDone<'_>, String>) {
        self.segments_total.fetch_add(1, Ordering::Relaxed);
        let mut streams = self.streams.lock().unwrap();
        let s = streams.entry(stream.to_string()).or_default();
        match result {
            Ok(done) => {
                s.segments_ok += 1;
                s.fps = done.fps;
                s.realtime_factor = done.realtime_factor;
                s.frames_dropped.add(done.dropped);
            }
            Err(e) => {
                s.segments_failed += 1;
                s.last_error = Some(e);
            }
        }
    }
}

/// Runs the daemon until SIGTERM/SIGINT.
pub fn run(config: Config, log: LogHandle) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("edge-agent")
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(run_async(config, log))
}

async fn run_async(config: Config, log: LogHandle) -> anyhow::Result<()> {
    let notifier = sd::Notifier::from_env();
    std::fs::create_dir_all(&config.agent.data_dir)
        .with_context(|| format!("creating data dir {}", config.agent.data_dir.display()))?;

    let hw_cfg = config.hw.clone();
    let ladder_len = config.media.ladder.len();
    let hw =
        tokio::task::spawn_blocking(move || crate::hwsel::probe_for_ladder(&hw_cfg, ladder_len))
            .await
            .context("hardware probe panicked")??;
    // streams an earlier run left (a crash, a power cut) are made consistent before anything is served
    let cfg = config.clone();
    let recovered =
        tokio::task::spawn_blocking(move || crate::pipeline::StreamPipeline::recover_all(&cfg))
            .await
            .context("recovering the HLS output panicked")?
            .context("recovering the HLS output")?;
    if recovered > 0 {
        tracing::info!(
            streams = recovered,
            "HLS output of an earlier run recovered"
        );
    }
    let calibrated = (config.media.max_sessions == 0)
        .then(|| {
            crate::capacity::cached(&config.agent.data_dir, &crate::capacity::key(&config, &hw))
        })
        .flatten();
    let max_sessions = if config.media.max_sessions > 0 {
        config.media.max_sessions
    } else if let Some(c) = &calibrated {
        tracing::info!(
            streams = c.calibration.streams,
            measured_at_ms = c.measured_at_ms,
            "session limit from this box's calibration"
        );
        c.calibration.streams
    } else {
        tracing::info!(
            limit = hw.session_limit(),
            "session limit from the encoder's table (no calibration for this ladder and encoder: `edge-agent hw --calibrate` measures it)"
        );
        hw.session_limit()
    };
    let chain = match &config.chain {
        Some(c) => Some(chain::open(c, &config.agent.data_dir, &config.ingest.listen).await?),
        None => None,
    };
    let (runtime, _) = watch::channel(RuntimeConfig {
        log_level: config.agent.log_level.clone(),
        max_sessions,
        ladder: config.media.ladder.clone(),
        maintenance_window: None,
    });
    let config_data_dir = config.agent.data_dir.clone();
    let capacity = calibrated
        .as_ref()
        .map_or(hw.session_limit(), |c| c.calibration.streams);
    let shared = std::sync::Arc::new(Shared {
        config,
        started: Instant::now(),
        log,
        runtime,
        hw,
        streams: Mutex::new(BTreeMap::new()),
        segments_total: AtomicU64::new(0),
        engine_rebuilds: Arc::default(),
        capacity: AtomicU32::new(capacity),
        pipeline_generation: AtomicU64::new(0),
        shutdown: CancellationToken::new(),
        work: Default::default(),
        chain: chain.as_ref().map(|c| c.status.clone()),
        job_gate: chain.as_ref().map(|c| c.gate.clone()),
        proof: chain.as_ref().map(|c| c.proof.clone()),
        claims: chain.as_ref().map(|c| c.claims.clone()),
        image: image::ImageEnv::detect(&config_data_dir),
        updating: Default::default(),
        update_progress: Mutex::new(None),
        bundle_seed: Mutex::new(None),
        fleet_connected: Default::default(),
    });
    if let Some(img) = &shared.image {
        tracing::info!(slot = %img.slot, version = ?img.version, update = ?img.update_status(), "running on an A/B image");
    }

    let mut tasks = tokio::task::JoinSet::new();
    if shared.config.media.max_sessions == 0
        && calibrated.is_none()
        && shared.config.media.calibrate_at_start
    {
        // measured beside the first streams (they share the CPU); the limit follows once it is known, unless
        // the fleet set one meanwhile
        let s = shared.clone();
        tokio::task::spawn_blocking(move || {
            let table = s.hw.session_limit();
            match crate::capacity::calibrate(&s.config, &s.hw) {
                Ok(c) => {
                    let streams = c.calibration.streams;
                    s.capacity
                        .store(streams, std::sync::atomic::Ordering::Relaxed);
                    s.runtime.send_if_modified(|rt| {
                        let take = rt.max_sessions == table;
                        if take {
                            rt.max_sessions = streams;
                        }
                        take
                    });
                    tracing::info!(streams, "calibrated: session limit");
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "calibration failed: the encoder's table stays the session limit")
                }
            }
        });
    }
    if let Some(c) = chain {
        chain::spawn(&mut tasks, shared.clone(), c);
    }
    if let Some(cfg) = shared.config.fleet.clone() {
        fleet::spawn(&mut tasks, shared.clone(), cfg);
    }
    // Subsystems.  Each returns when `shutdown` fires; an error from one stops the daemon.
    if !shared.config.ingest.listen.is_empty() {
        let s = shared.clone();
        let listener = tokio::net::TcpListener::bind(&s.config.ingest.listen)
            .await
            .with_context(|| format!("binding ingest on {}", s.config.ingest.listen))?;
        tracing::info!(addr = %listener.local_addr()?, "ingest listening");
        tasks.spawn(async move { crate::ingest::serve(s, listener).await.context("ingest") });
    }

    notifier.ready("serving").ok();
    tracing::info!(
        encoder = %shared.hw.encoder_element(),
        max_sessions,
        "edge-agent ready"
    );
    if let Some(every) = notifier.watchdog_interval() {
        // Fed only while the data path moves (or is idle): a segment stuck in work stops the pings, and
        // systemd restarts the agent one WatchdogSec later.  The pings come from the runtime that serves
        // ingest, so a blocked runtime stops them too.
        let n = notifier.clone();
        let s = shared.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = s.shutdown.cancelled() => return Ok(()),
                    _ = tick.tick() => match s.work.stalled(Instant::now(), crate::streams::STALL_LIMIT) {
                        None => { n.watchdog_ping().ok(); }
                        Some(d) => tracing::error!(in_work_s = d.as_secs(), "a segment is stuck in work: not feeding the watchdog"),
                    }
                }
            }
        });
    }

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let outcome = tokio::select! {
        _ = sigterm.recv() => { tracing::info!("SIGTERM: shutting down"); Ok(()) }
        _ = tokio::signal::ctrl_c() => { tracing::info!("SIGINT: shutting down"); Ok(()) }
        Some(done) = tasks.join_next() => match done {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(anyhow::anyhow!("subsystem panicked: {e}")),
        },
    };
    notifier.stopping().ok();
    shared.shutdown.cancel();
    // Give subsystems a bounded time to return to a clean state (pipelines to NULL, sessions closed).
    let drain = async {
        while let Some(r) = tasks.join_next().await {
            if let Ok(Err(e)) = r {
                tracing::warn!("subsystem stopped with error: {e:#}");
            }
        }
    };
    if tokio::time::timeout(std::time::Duration::from_secs(10), drain)
        .await
        .is_err()
    {
        tracing::warn!("subsystems did not stop within 10 s");
    }
    outcome
}
