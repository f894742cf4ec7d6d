//! How many streams of a ladder this box transcodes in real time, measured rather than read from a table:
//! `k` engines (the real pipeline, the configured encoder and segment mode) each transcode the same test
//! segments at once, for `k = 1, 2, …`, and the box carries `k` streams while the slowest of them still runs
//! faster than real time by the headroom. The trials stop at the first `k` that misses it, or at a ceiling
//! (a hardware encoder's session limit, or twice the CPU cores).
//!
//! [`decide`] is the rule over the trials' figures (pure, unit-tested); [`calibrate`] runs the trials.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::engine::{BuildError, EngineConfig, SegmentError, Transcoder};
use crate::sources::TestSource;

/// What a calibration runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationInput {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Seconds of video each stream transcodes per trial (in segments of `segment_secs`).
    pub seconds: f64,
    pub segment_secs: f64,
    /// The slowest stream must run at least this much faster than real time (1.2: 20 % to spare for
    /// what the test source does not have: harder content, network, the rest of the daemon).
    pub headroom: f64,
    /// Trials stop here (a hardware encoder's session limit, or twice the CPU cores).
    pub max_streams: u32,
}

impl Default for CalibrationInput {
    fn default() -> Self {
        CalibrationInput {
            width: 1920,
            height: 1080,
            fps: 30,
            seconds: 6.0,
            segment_secs: 2.0,
            headroom: 1.2,
            max_streams: 8,
        }
    }
}

/// One trial: `streams` engines at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    pub streams: u32,
    /// Seconds of video over wall seconds, for the slowest stream and over all of them.
    pub slowest_realtime: f64,
    pub mean_realtime: f64,
    pub wall_s: f64,
}

/// The outcome: the streams the box carries, and the trials that say so.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub streams: u32,
    /// Whether even one stream missed the headroom (the box is then given one stream, and says so).
    pub below_realtime: bool,
    pub input: CalibrationInput,
    pub trials: Vec<Trial>,
}

#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    #[error("calibration test source: {0}")]
    Source(String),
    #[error("calibration engine: {0}")]
    Build(#[from] BuildError),
    #[error("calibration segment: {0}")]
    Segment(#[from] SegmentError),
    #[error("calibration stream thread panicked")]
    Panicked,
}

/// The streams the box carries, from trials of 1, 2, … streams in order: the largest count whose slowest
/// stream kept the headroom, where every smaller count kept it too; at least one.
pub fn decide(trials: &[Trial], headroom: f64) -> (u32, bool) {
    let mut streams = 0;
    for t in trials {
        if t.slowest_realtime >= headroom {
            streams = t.streams;
        } else {
            break;
        }
    }
    (streams.max(1), streams == 0)
}

/// Runs the trials for `cfg` (its profiles, backend and segment mode) on the test source `input` asks for.
/// Blocking: minutes at most (each trial transcodes `input.seconds` of video per stream).
pub fn calibrate(
    cfg: &EngineConfig,
    input: &CalibrationInput,
) -> Result<Calibration, CalibrationError> {
    let segments = TestSource {
        width: input.width,
        height: input.height,
        fps: input.fps,
        duration: input.seconds,
        audio: true,
        segment_secs: input.segment_secs,
        ..Default::default()
    }
    .segments()
    .map_err(|e| CalibrationError::Source(e.to_string()))?;
    let segments = Arc::new(segments);
    let media_secs = segments.len() as f64 * input.segment_secs;
    let mut trials = Vec::new();
    for k in 1..=input.max_streams.max(1) {
        let trial = run_trial(cfg, &segments, k, media_secs)?;
        tracing::info!(
            streams = k,
            slowest_realtime = trial.slowest_realtime,
            wall_s = trial.wall_s,
            "calibration trial"
        );
        let kept = trial.slowest_realtime >= input.headroom;
        trials.push(trial);
        if !kept {
            break;
        }
    }
    let (streams, below_realtime) = decide(&trials, input.headroom);
    Ok(Calibration {
        streams,
        below_realtime,
        input: input.clone(),
        trials,
    })
}

/// `k` engines, each on its own thread, built first, then started together on the same segments.
fn run_trial(
    cfg: &EngineConfig,
    segments: &Arc<Vec<Vec<u8>>>,
    k: u32,
    media_secs: f64,
) -> Result<Trial, CalibrationError> {
    let engines = (0..k)
        .map(|_| Transcoder::new(cfg.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let start = Arc::new(std::sync::Barrier::new(k as usize + 1));
    let threads: Vec<_> = engines
        .into_iter()
        .map(|mut t| {
            let segments = segments.clone();
            let start = start.clone();
            std::thread::spawn(move || -> Result<Duration, SegmentError> {
                start.wait();
                let t0 = Instant::now();
                for (seq, s) in segments.iter().enumerate() {
                    t.push_segment(seq as u64, s)?;
                }
                Ok(t0.elapsed())
            })
        })
        .collect();
    let t0 = Instant::now();
    start.wait();
    let mut walls = Vec::new();
    for th in threads {
        walls.push(th.join().map_err(|_| CalibrationError::Panicked)??);
    }
    let slowest = walls.iter().max().copied().unwrap_or_default();
    let mean = walls.iter().map(Duration::as_secs_f64).sum::<f64>() / walls.len().max(1) as f64;
    Ok(Trial {
        streams: k,
        slowest_realtime: media_secs / slowest.as_secs_f64().max(1e-3),
        mean_realtime: media_secs / mean.max(1e-3),
        wall_s: t0.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(streams: u32, slowest_realtime: f64) -> Trial {
        Trial {
            streams,
            slowest_realtime,
            mean_realtime: slowest_realtime,
            wall_s: 1.0,
        }
    }

    #[test]
    fn the_box_carries_what_its_slowest_stream_kept_up_with() {
        assert_eq!(decide(&[t(1, 3.0), t(2, 1.6), t(3, 1.1)], 1.2), (2, false));
        assert_eq!(decide(&[t(1, 3.0), t(2, 1.25)], 1.2), (2, false));
        // a count after a miss does not count (noise on a loaded box)
        assert_eq!(decide(&[t(1, 3.0), t(2, 1.0), t(3, 1.3)], 1.2), (1, false));
        // not even one stream in real time: one, and it says so
        assert_eq!(decide(&[t(1, 0.8)], 1.2), (1, true));
        assert_eq!(decide(&[], 1.2), (1, true));
    }
}
