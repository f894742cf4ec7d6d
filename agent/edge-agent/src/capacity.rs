//! The box's measured capacity (`media::capacity`) for its configured ladder on its chosen encoder, cached in
//! `<data_dir>/hw/capacity.json`. The cache holds for the same agent version, board, encoder, ladder, segment
//! mode and calibration input; anything else calibrates again. `edge-agent hw --calibrate` measures (or
//! shows the cached figure); the daemon takes a cached figure as its session limit when `[media]
//! max_sessions = 0`, and measures at start only with `[media] calibrate_at_start`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use media::capacity::{Calibration, CalibrationInput};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::hwsel::HwState;

/// What a calibration is valid for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Key {
    pub agent_version: String,
    pub board: String,
    pub encoder: String,
    pub ladder: Vec<String>,
    pub segment_mode: media::engine::SegmentMode,
    pub input: CalibrationInput,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cached {
    pub key: Key,
    pub calibration: Calibration,
    /// When it was measured (Unix ms).
    pub measured_at_ms: u64,
}

pub fn cache_path(data_dir: &Path) -> PathBuf {
    data_dir.join("hw").join("capacity.json")
}

/// The key for this box and configuration.
pub fn key(config: &Config, hw: &HwState) -> Key {
    Key {
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        board: hw.selection.board.clone(),
        encoder: hw.selection.encoder.clone(),
        ladder: config.media.ladder.clone(),
        segment_mode: config.media.segment_mode,
        input: input_for(hw),
    }
}

/// The calibration input: the default (1080p30, 6 s per stream, 20 % headroom), with the trials capped at the
/// hardware encoder's sessions or twice the CPU cores.
fn input_for(hw: &HwState) -> CalibrationInput {
    let cores = hw.inventory.cpu_cores.max(1);
    CalibrationInput {
        max_streams: hw.encoder_sessions().unwrap_or(cores * 2).clamp(1, 64),
        ..CalibrationInput::default()
    }
}

/// The cached calibration for `key`, if there is one (an unreadable or stale cache is none).
pub fn cached(data_dir: &Path, key: &Key) -> Option<Cached> {
    let bytes = std::fs::read(cache_path(data_dir)).ok()?;
    let c: Cached = serde_json::from_slice(&bytes).ok()?;
    (c.key == *key).then_some(c)
}

/// Measures the box for `config` and `hw` and caches the result (blocking: about a minute on a small box).
pub fn calibrate(config: &Config, hw: &HwState) -> anyhow::Result<Cached> {
    let set = config.profile_set()?;
    let profiles = config
        .media
        .ladder
        .iter()
        .map(|n| set.by_name(n).cloned())
        .collect::<Result<Vec<_>, _>>()
        .context("ladder")?;
    let cfg = media::EngineConfig {
        backend: hw.backend(),
        mode: config.media.segment_mode,
        ..media::EngineConfig::new(profiles)
    };
    let key = key(config, hw);
    let calibration = media::capacity::calibrate(&cfg, &key.input).context("calibration run")?;
    let c = Cached {
        key,
        calibration,
        measured_at_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    };
    let path = cache_path(&config.agent.data_dir);
    std::fs::create_dir_all(path.parent().expect("a file in a directory"))
        .with_context(|| format!("creating {}", path.display()))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&c)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(c)
}
