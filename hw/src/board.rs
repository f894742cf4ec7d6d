//! Board profiles: which encoder/decoder elements a class of box should use, in order of
//! preference, with session limits and element tuning.  The profiles in `hw/boards/*.toml` are
//! compiled into the binary; a directory of `*.toml` files can add profiles or replace embedded
//! ones by name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::description::{SystemDescription, version_at_least};

/// The profiles shipped in the binary, as (file name, contents).
pub const EMBEDDED: &[(&str, &str)] = &[
    ("intel-igpu.toml", include_str!("../boards/intel-igpu.toml")),
    ("amd-vcn.toml", include_str!("../boards/amd-vcn.toml")),
    (
        "nvidia-geforce.toml",
        include_str!("../boards/nvidia-geforce.toml"),
    ),
    (
        "nvidia-datacenter.toml",
        include_str!("../boards/nvidia-datacenter.toml"),
    ),
    (
        "jetson-orin.toml",
        include_str!("../boards/jetson-orin.toml"),
    ),
    (
        "jetson-nano.toml",
        include_str!("../boards/jetson-nano.toml"),
    ),
    (
        "generic-x86.toml",
        include_str!("../boards/generic-x86.toml"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("board profile {path}: {source}")]
    Parse {
        path: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("board profile {path}: {reason}")]
    Invalid { path: String, reason: String },
    #[error("board profile directory {dir}: {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Hardware family an encoder entry drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncoderKind {
    /// VA-API through the `va` plugin (gst-plugins-bad, `vah264enc`).
    Va,
    /// VA-API through the older `vaapi` plugin (gstreamer-vaapi, `vaapih264enc`).
    Vaapi,
    /// NVIDIA NVENC through the `nvcodec` plugin (`nvh264enc`).
    Nvenc,
    /// NVIDIA Jetson V4L2 encoder (`nvv4l2h264enc`).
    JetsonV4l2,
    /// CPU: `x264enc`.
    Software,
}

/// What must be present on the box, besides the element reaching READY, for an entry to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Requirement {
    /// A DRM render node whose driver is in the board's `match.render_drivers` (or any, if empty).
    RenderNode,
    /// `/proc/driver/nvidia/version` present.
    NvidiaDriver,
    /// `/etc/nv_tegra_release` present.
    Tegra,
    None,
}

/// Conditions a box must meet for a board profile to apply.  Every field that is set must match;
/// a profile with an empty `[match]` applies to every box (use it for the fallback only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardMatch {
    /// Some render node's kernel driver is one of these (`i915`, `xe`, `amdgpu`, ...).
    #[serde(default)]
    pub render_drivers: Vec<String>,
    /// The NVIDIA proprietary driver is loaded (true) or not (false).
    #[serde(default)]
    pub nvidia_driver: Option<bool>,
    /// Some NVIDIA GPU model contains one of these (case-insensitive).
    #[serde(default)]
    pub nvidia_models: Vec<String>,
    /// `/etc/nv_tegra_release` present (true) or absent (false).
    #[serde(default)]
    pub tegra: Option<bool>,
    /// The device-tree model contains one of these (case-insensitive).
    #[serde(default)]
    pub device_tree_models: Vec<String>,
    /// The CPU architecture is one of these.
    #[serde(default)]
    pub arch: Vec<String>,
}

/// How many concurrent encode sessions (one per rendition per stream) the encoder takes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sessions {
    /// A fixed cap.
    #[serde(default)]
    pub max: Option<u32>,
    /// A cap that depends on the NVIDIA driver version: the last entry whose `min_driver` the
    /// loaded driver reaches wins (falls back to `max` when no driver version is known).
    #[serde(default)]
    pub by_driver: Vec<DriverSessions>,
    /// A cap proportional to the CPU count (software encoding), at least 1.
    #[serde(default)]
    pub per_core: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriverSessions {
    pub min_driver: String,
    pub max: u32,
}

/// One way to encode on this board, tried in the order listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderEntry {
    pub kind: EncoderKind,
    /// H.264 encoder element factory name.
    pub element: String,
    /// Preferred H.264 decoder; `avdec_h264` is used when it does not reach READY.
    pub decoder: String,
    /// Scaler that works in the same memory as the decoder/encoder (`videoscale` for system memory).
    #[serde(default = "default_scaler")]
    pub scaler: String,
    pub requires: Requirement,
    #[serde(default)]
    pub sessions: Sessions,
    /// Encoder element properties (GStreamer string syntax, set with `set_property_from_str`).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

fn default_scaler() -> String {
    "videoscale".to_owned()
}

/// A board profile as written in `hw/boards/<name>.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardProfile {
    pub name: String,
    pub description: String,
    /// Among matching profiles the highest priority wins (ties: name order).
    pub priority: i32,
    /// Said in the selection reason when this board ends up on software (e.g. "no NVENC on Orin Nano").
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default, rename = "match")]
    pub matches: BoardMatch,
    pub encoders: Vec<EncoderEntry>,
}

impl BoardProfile {
    pub fn parse(path: &str, text: &str) -> Result<Self, BoardError> {
        let board: BoardProfile = toml::from_str(text).map_err(|source| BoardError::Parse {
            path: path.to_owned(),
            source,
        })?;
        board.validate(path)?;
        Ok(board)
    }

    fn validate(&self, path: &str) -> Result<(), BoardError> {
        let invalid = |reason: String| BoardError::Invalid {
            path: path.to_owned(),
            reason,
        };
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid(format!(
                "name {:?} must be non-empty [A-Za-z0-9_-]",
                self.name
            )));
        }
        if self.encoders.is_empty() {
            return Err(invalid("no [[encoders]] entry".into()));
        }
        for e in &self.encoders {
            if e.element.trim().is_empty() || e.decoder.trim().is_empty() {
                return Err(invalid(
                    "an encoder entry has an empty element or decoder".into(),
                ));
            }
            if let Some(p) = e.sessions.per_core
                && !(p.is_finite() && p > 0.0)
            {
                return Err(invalid(format!(
                    "{}: sessions.per_core must be > 0, got {p}",
                    e.element
                )));
            }
            for d in &e.sessions.by_driver {
                if d.min_driver.split('.').any(|p| p.parse::<u64>().is_err()) {
                    return Err(invalid(format!(
                        "{}: sessions.by_driver min_driver {:?} is not a dotted number",
                        e.element, d.min_driver
                    )));
                }
            }
        }
        Ok(())
    }

    /// Whether this profile applies to the described box.
    pub fn matches(&self, d: &SystemDescription) -> bool {
        let m = &self.matches;
        let contains_any = |hay: &str, needles: &[String]| {
            let hay = hay.to_ascii_lowercase();
            needles
                .iter()
                .any(|n| hay.contains(&n.to_ascii_lowercase()))
        };
        if !m.render_drivers.is_empty()
            && !d.render_nodes.iter().any(|n| {
                n.driver
                    .as_ref()
                    .is_some_and(|drv| m.render_drivers.iter().any(|w| w == drv))
            })
        {
            return false;
        }
        if let Some(want) = m.nvidia_driver
            && want != d.nvidia_driver_version.is_some()
        {
            return false;
        }
        if !m.nvidia_models.is_empty()
            && !d
                .nvidia_gpus
                .iter()
                .any(|g| contains_any(g, &m.nvidia_models))
        {
            return false;
        }
        if let Some(want) = m.tegra
            && want != d.tegra_release.is_some()
        {
            return false;
        }
        if !m.device_tree_models.is_empty()
            && !d
                .device_tree_model
                .as_deref()
                .is_some_and(|model| contains_any(model, &m.device_tree_models))
        {
            return false;
        }
        if !m.arch.is_empty() && !m.arch.contains(&d.cpu.arch) {
            return false;
        }
        true
    }

    /// Render nodes this board's VA entries may use (driver in `render_drivers`, or any if unset).
    pub fn usable_render_nodes<'a>(
        &self,
        d: &'a SystemDescription,
    ) -> Vec<&'a crate::description::RenderNode> {
        d.render_nodes
            .iter()
            .filter(|n| {
                self.matches.render_drivers.is_empty()
                    || n.driver
                        .as_ref()
                        .is_some_and(|drv| self.matches.render_drivers.contains(drv))
            })
            .collect()
    }
}

impl Sessions {
    /// Resolves the cap for a box; `None` means no cap known besides the hardware's throughput.
    pub fn resolve(&self, d: &SystemDescription) -> Option<u32> {
        if let Some(drv) = d.nvidia_driver_number()
            && let Some(hit) = self
                .by_driver
                .iter()
                .filter(|s| version_at_least(&drv, &s.min_driver))
                .max_by(|a, b| {
                    if version_at_least(&a.min_driver, &b.min_driver) {
                        std::cmp::Ordering::Greater
                    } else {
                        std::cmp::Ordering::Less
                    }
                })
        {
            return Some(hit.max);
        }
        if let Some(max) = self.max {
            return Some(max);
        }
        self.per_core
            .map(|p| ((f64::from(d.cpu.cores.max(1)) * p).floor() as u32).max(1))
    }
}

/// The set of board profiles in force: embedded ones, possibly overridden from a directory.
#[derive(Debug, Clone)]
pub struct Boards {
    profiles: Vec<BoardProfile>,
}

impl Boards {
    /// Only the profiles compiled into the binary.
    pub fn embedded() -> Result<Self, BoardError> {
        let mut profiles = Vec::new();
        for (file, text) in EMBEDDED {
            profiles.push(BoardProfile::parse(&format!("<embedded>/{file}"), text)?);
        }
        Ok(Boards { profiles })
    }

    /// Embedded profiles, then every `*.toml` in `dir` (sorted by file name): a profile with the
    /// name of an embedded one replaces it, others are added.  Any unreadable or invalid file is
    /// an error naming it (nothing is silently skipped).
    pub fn load(dir: Option<&Path>) -> Result<Self, BoardError> {
        let mut boards = Self::embedded()?;
        let Some(dir) = dir else { return Ok(boards) };
        let io = |source| BoardError::Io {
            dir: dir.to_owned(),
            source,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(io)?;
        files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
        files.sort();
        for path in files {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|source| BoardError::Io {
                dir: path.clone(),
                source,
            })?;
            boards.insert(BoardProfile::parse(&shown, &text)?);
        }
        Ok(boards)
    }

    /// Adds a profile, replacing one with the same name.
    pub fn insert(&mut self, profile: BoardProfile) {
        match self.profiles.iter_mut().find(|p| p.name == profile.name) {
            Some(slot) => *slot = profile,
            None => self.profiles.push(profile),
        }
    }

    pub fn profiles(&self) -> &[BoardProfile] {
        &self.profiles
    }

    pub fn get(&self, name: &str) -> Option<&BoardProfile> {
        self.profiles.iter().find(|p| p.name == name)
    }

    /// The highest-priority profile that matches the box (ties broken by name).
    pub fn best_match(&self, d: &SystemDescription) -> Option<&BoardProfile> {
        self.profiles
            .iter()
            .filter(|p| p.matches(d))
            .max_by(|a, b| a.priority.cmp(&b.priority).then(b.name.cmp(&a.name)))
    }

    /// Every element name any profile refers to (encoders, decoders, scalers), plus the
    /// software pair, sorted: what the live probe tries.
    pub fn element_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .profiles
            .iter()
            .flat_map(|p| p.encoders.iter())
            .flat_map(|e| [e.element.clone(), e.decoder.clone(), e.scaler.clone()])
            .chain(
                [
                    crate::SOFTWARE_ENCODER,
                    crate::SOFTWARE_DECODER,
                    "videoscale",
                ]
                .map(str::to_owned),
            )
            .collect();
        names.sort();
        names.dedup();
        names
    }
}
