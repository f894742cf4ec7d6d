//! One stream's pipeline as the binary uses it: the media engine (built once) feeding the HLS writer.
//! Shared by `edge-agent transcode` and the daemon's stream workers, so both run the same code path.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use anyhow::Context;
use media::EngineConfig;
use media::hls::{HlsMode, HlsWriter, Placement};
use media::pool::TranscoderPool;

use crate::ingest::{RenditionReport, SegmentReport};

/// `engines` GStreamer pipelines (see `media::pool`) working on consecutive segments of one stream, feeding
/// one HLS writer in sequence order.
pub struct StreamPipeline {
    pool: TranscoderPool,
    hls: HlsWriter,
    /// Submission time of each segment in flight, oldest first.
    submitted: std::collections::VecDeque<(u64, Instant)>,
}

/// Why a segment was not added to the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushError {
    /// A segment at or before the last one written (a retry after a restart, or a late arrival): the
    /// playlists only move forward, so nothing is done.
    AlreadyWritten(String),
    /// The segment could not be transcoded or written; the message names the segment and the element.
    Failed(String),
}

impl std::fmt::Display for PushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushError::AlreadyWritten(m) | PushError::Failed(m) => f.write_str(m),
        }
    }
}

/// One pushed segment: the report the ingest answers with, and numbers for stats.
pub struct Pushed {
    pub report: SegmentReport,
    pub input_frames: usize,
}

impl StreamPipeline {
    /// Builds the engine for `cfg` writing HLS under `out_dir`.  With `resume`, playlists an earlier run left
    /// there (a crash, a restart) are read back and extended instead of replaced.  An engine that breaks is
    /// rebuilt before the next segment and counted on `rebuilds`.
    ///
    /// Recovery tests: with `EDGE_AGENT_ENGINE_PANIC_AT=<seq>` in the environment, the engine thread panics
    /// on segment `seq`, as a bug in the engine would.
    pub fn build(
        cfg: EngineConfig,
        engines: usize,
        out_dir: &Path,
        mode: HlsMode,
        segment_secs: f64,
        resume: bool,
        rebuilds: Arc<AtomicU64>,
    ) -> anyhow::Result<Self> {
        let mut pool = TranscoderPool::with_rebuild_counter(cfg, engines, rebuilds)
            .context("building the transcoding pipeline")?;
        if let Some(seq) = std::env::var("EDGE_AGENT_ENGINE_PANIC_AT")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            tracing::warn!(
                seq,
                "EDGE_AGENT_ENGINE_PANIC_AT: the engine will panic on this segment"
            );
            pool.panic_at(seq);
        }
        let hls = if resume {
            HlsWriter::resume(out_dir, mode, segment_secs)
        } else {
            HlsWriter::new(out_dir, mode, segment_secs)
        }
        .with_context(|| format!("HLS output in {}", out_dir.display()))?;
        if let Some(last) = hls.last_seq() {
            tracing::info!(last, "resuming the playlists of an earlier run");
        }
        Ok(Self {
            pool,
            hls,
            submitted: Default::default(),
        })
    }

    /// The daemon's form: ladder names resolved against the configuration, backend from the hardware
    /// selection (or the deterministic software mode, for bit-exact verification), live playlists with the
    /// configured window.
    pub fn new(
        shared: &crate::daemon::Shared,
        ladder: &[String],
        out_dir: &Path,
        deterministic: bool,
    ) -> anyhow::Result<Self> {
        let set = shared.config.profile_set()?;
        let profiles = ladder
            .iter()
            .map(|n| set.by_name(n).cloned())
            .collect::<Result<Vec<_>, _>>()
            .context("ladder")?;
        let cfg = if deterministic {
            EngineConfig::bit_exact(profiles)
        } else {
            EngineConfig {
                backend: shared.hw.backend(),
                mode: shared.config.media.segment_mode,
                ..EngineConfig::new(profiles)
            }
        };
        let media = &shared.config.media;
        // Segments of a live stream arrive one at a time: one engine.
        Self::build(
            cfg,
            1,
            out_dir,
            Self::live_mode(&shared.config),
            media.segment_seconds,
            true,
            shared.engine_rebuilds.clone(),
        )
    }

    /// The daemon's HLS mode: live playlists with the configured window.
    pub fn live_mode(config: &crate::config::Config) -> HlsMode {
        HlsMode::Live {
            window: config.media.playlist_window,
        }
    }

    /// At start, before any segment: every stream directory an earlier run left is made consistent (its
    /// playlists rendered from its last commit, files written after that commit deleted), so what is served
    /// is whole even for a stream that never comes back.
    pub fn recover_all(config: &crate::config::Config) -> anyhow::Result<usize> {
        let root = config.agent.data_dir.join("hls");
        let Ok(dirs) = std::fs::read_dir(&root) else {
            return Ok(0);
        };
        let mut n = 0;
        for d in dirs.flatten() {
            if d.file_type().is_ok_and(|t| t.is_dir()) {
                HlsWriter::resume(
                    d.path(),
                    Self::live_mode(config),
                    config.media.segment_seconds,
                )
                .with_context(|| format!("recovering {}", d.path().display()))?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Transcodes one segment and writes it to the HLS output.  The error names the segment and the element
    /// at fault; the pipeline stays usable for the next segment (an engine that broke on it is rebuilt).
    pub fn push(&mut self, seq: u64, data: Vec<u8>) -> Result<Pushed, PushError> {
        self.submit(seq, data)?;
        self.next().expect("one segment in flight")
    }

    /// Where the next segments come from, when that is known (a broadcaster's swarm id): a source's
    /// segments are one session, however they are numbered or replayed (`media::hls::place`).
    pub fn set_source(&mut self, source: Option<String>) {
        self.hls.set_source(source);
    }

    /// Segments submitted and not yet taken with [`StreamPipeline::next`].
    pub fn in_flight(&self) -> usize {
        self.submitted.len()
    }

    /// How many segments may be in flight before the oldest one's result is due (one per engine, one more
    /// in the lookahead mode, which answers a segment when the next one comes).
    pub fn depth(&self) -> usize {
        self.pool.depth()
    }

    /// No segment follows for now: what the engines hold is completed without waiting for a next one.
    pub fn end_of_input(&mut self) {
        self.pool.finish();
    }

    /// Hands a segment to the next engine without waiting (up to `engines` work at once).
    pub fn submit(&mut self, seq: u64, data: Vec<u8>) -> Result<(), PushError> {
        // behind segments in flight, a segment must come after them; otherwise the writer's session rule
        // says whether it continues the session, starts a new one, or was written already
        let placed = match self.submitted.back() {
            Some(&(last, _)) => media::hls::place(Some(last), false, seq, None, None),
            None => self.hls.place(seq),
        };
        match placed {
            Ok(Placement::Next) => {}
            Ok(Placement::NewSession) => {
                tracing::info!(seq, "the broadcaster started the stream again: new session")
            }
            Err(e) => {
                return Err(PushError::AlreadyWritten(format!(
                    "{e} (a retry or a late arrival): not added"
                )));
            }
        }
        self.submitted.push_back((seq, Instant::now()));
        self.pool.submit(seq, data);
        Ok(())
    }

    /// Waits for the oldest segment in flight and writes it to the HLS output; `None` when none is in flight.
    pub fn next(&mut self) -> Option<Result<Pushed, PushError>> {
        let (seq, started) = self.submitted.pop_front()?;
        let out = match self.pool.recv()? {
            Ok(out) => out,
            Err(e) => return Some(Err(PushError::Failed(e.to_string()))),
        };
        Some(self.write(seq, started, out))
    }

    fn write(
        &mut self,
        seq: u64,
        started: Instant,
        out: media::SegmentOutput,
    ) -> Result<Pushed, PushError> {
        let file = self
            .hls
            .write_segment(&out)
            .map_err(|e| PushError::Failed(format!("segment {seq}: HLS output: {e}")))?;
        let renditions = out
            .renditions
            .iter()
            .map(|r| RenditionReport {
                profile: r.profile.clone(),
                width: r.width,
                height: r.height,
                fps: f64::from(r.fps.0) / f64::from(r.fps.1.max(1)),
                duration: r.duration,
                bytes: r.data.len(),
                video_bytes: r.video_bytes,
                frames: r.frames,
                frames_fed: r.frames_fed,
                codecs: r.codecs.clone(),
                first_pts: r.first_pts,
                uri: format!("{}/{file}", r.profile),
            })
            .collect();
        Ok(Pushed {
            input_frames: out.stats.input_frames,
            report: SegmentReport {
                stream: String::new(),
                seq,
                wall_ms: started.elapsed().as_millis() as u64,
                input_duration: out.stats.input_duration,
                dropped: out.stats.dropped.clone(),
                repairs: out.stats.repairs.clone(),
                audio_dropped: out.stats.audio_dropped.clone(),
                segment_mode: out.stats.mode,
                renditions,
            },
        })
    }

    /// Ends the stream's session: the playlists get `#EXT-X-ENDLIST`.
    pub fn finish(&mut self) -> anyhow::Result<()> {
        self.hls.finish().context("closing playlists")
    }

    pub fn master_path(&self) -> std::path::PathBuf {
        self.hls.master_path()
    }
}
