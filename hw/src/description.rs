//! `SystemDescription`: everything the choosing logic looks at, gathered by the live probe
//! ([`crate::probe`]) or loaded from captured test data.  Plain data, serde both ways, so a box's
//! description can be captured with `cargo run -p hw --example probe` and replayed in tests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A snapshot of the facts that decide which encoder a box can use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemDescription {
    /// DRM render nodes (`/dev/dri/renderD*`) with the kernel driver bound to their device.
    #[serde(default)]
    pub render_nodes: Vec<RenderNode>,
    /// Contents of `/proc/driver/nvidia/version` (present only with the proprietary driver loaded).
    #[serde(default)]
    pub nvidia_driver_version: Option<String>,
    /// `Model:` lines of `/proc/driver/nvidia/gpus/*/information`, one per GPU.
    #[serde(default)]
    pub nvidia_gpus: Vec<String>,
    /// Contents of `/etc/nv_tegra_release` (Jetson L4T).
    #[serde(default)]
    pub tegra_release: Option<String>,
    /// `/proc/device-tree/model` (ARM boards; NUL terminator stripped).
    #[serde(default)]
    pub device_tree_model: Option<String>,
    /// DMI board and product names from `/sys/class/dmi/id`.
    #[serde(default)]
    pub dmi: Dmi,
    pub cpu: Cpu,
    /// GStreamer runtime version string, if GStreamer initialised.
    #[serde(default)]
    pub gstreamer_version: Option<String>,
    /// Every probed GStreamer element by factory name.
    #[serde(default)]
    pub elements: BTreeMap<String, ElementStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderNode {
    /// e.g. `/dev/dri/renderD128`.
    pub path: String,
    /// Kernel driver name (basename of `/sys/class/drm/renderDN/device/driver`), e.g. `i915`, `amdgpu`.
    #[serde(default)]
    pub driver: Option<String>,
    /// PCI vendor id as in sysfs, e.g. `0x8086`.
    #[serde(default)]
    pub vendor: Option<String>,
    /// PCI device id as in sysfs, e.g. `0x9a49`.
    #[serde(default)]
    pub device: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dmi {
    #[serde(default)]
    pub sys_vendor: Option<String>,
    #[serde(default)]
    pub board_name: Option<String>,
    #[serde(default)]
    pub product_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cpu {
    /// `model name` from `/proc/cpuinfo` (or `Model`/`Hardware` on ARM).
    #[serde(default)]
    pub model: Option<String>,
    /// Online logical CPUs usable by this process.
    pub cores: u32,
    /// `std::env::consts::ARCH` of the probing binary, e.g. `x86_64`, `aarch64`.
    pub arch: String,
}

/// What happened when the probe tried an element.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", deny_unknown_fields)]
pub enum ElementStatus {
    /// No such factory in the registry (plugin not installed, or it registered no element because
    /// it found no device, which is what `va`, `vaapi` and `nvcodec` do).
    Missing,
    /// Factory exists and an instance reached READY (device opened).
    Ready,
    /// Factory exists but the element could not be made or did not reach READY.
    Failed { error: String },
}

impl ElementStatus {
    pub fn is_ready(&self) -> bool {
        matches!(self, ElementStatus::Ready)
    }
}

impl SystemDescription {
    /// Status of an element; elements the probe did not look at count as missing.
    pub fn element(&self, name: &str) -> ElementStatus {
        self.elements
            .get(name)
            .cloned()
            .unwrap_or(ElementStatus::Missing)
    }

    /// The driver version number from `/proc/driver/nvidia/version`, e.g. `535.183.01`.
    pub fn nvidia_driver_number(&self) -> Option<String> {
        parse_nvidia_version(self.nvidia_driver_version.as_deref()?)
    }

    /// The L4T release from `/etc/nv_tegra_release`, e.g. `R35.4.1`.
    pub fn tegra_l4t_release(&self) -> Option<String> {
        parse_tegra_release(self.tegra_release.as_deref()?)
    }
}

/// Parses the version number out of `/proc/driver/nvidia/version`, whose first line reads like
/// `NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.183.01  Sun May 12 19:39:15 UTC 2024`
/// (the open kernel module says `NVIDIA UNIX Open Kernel Module for x86_64  550.54.14  Release Build ...`).
pub fn parse_nvidia_version(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.starts_with("NVRM version:"))?;
    line.split_whitespace()
        .find(|w| {
            let mut parts = w.split('.');
            let ok = parts.clone().count() >= 2;
            ok && parts.all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_owned)
}

/// Parses `# R35 (release), REVISION: 4.1, GCID: ..., BOARD: ..., EABI: aarch64, DATE: ...` into `R35.4.1`.
pub fn parse_tegra_release(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.trim_start().starts_with('#'))?;
    let line = line.trim_start().trim_start_matches('#').trim();
    let major = line.split_whitespace().next()?;
    if !major.starts_with('R') || !major[1..].bytes().all(|b| b.is_ascii_digit()) || major.len() < 2
    {
        return None;
    }
    let revision = line
        .split(',')
        .map(str::trim)
        .find_map(|f| f.strip_prefix("REVISION:"))
        .map(str::trim)?;
    Some(format!("{major}.{revision}"))
}

/// Compares dotted numeric versions (`535.183.01` vs `530`); non-numeric parts compare as 0.
pub fn version_at_least(have: &str, want: &str) -> bool {
    let parse = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    let (a, b) = (parse(have), parse(want));
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (
            a.get(i).copied().unwrap_or(0),
            b.get(i).copied().unwrap_or(0),
        );
        if x != y {
            return x > y;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvidia_version_proprietary_and_open() {
        let p = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.183.01  Sun May 12 19:39:15 UTC 2024\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n";
        assert_eq!(parse_nvidia_version(p).as_deref(), Some("535.183.01"));
        let o = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.14  Release Build  (dvs-builder@U16-I3-B03-4-3)  Thu Feb 22 01:25:25 UTC 2024\n";
        assert_eq!(parse_nvidia_version(o).as_deref(), Some("550.54.14"));
        assert_eq!(parse_nvidia_version("garbage"), None);
        assert_eq!(parse_nvidia_version(""), None);
    }

    #[test]
    fn tegra_release_parses() {
        let t = "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Tue Aug  1 19:57:35 UTC 2023\n# KERNEL_VARIANT: oot\n";
        assert_eq!(parse_tegra_release(t).as_deref(), Some("R35.4.1"));
        assert_eq!(parse_tegra_release("# nonsense"), None);
        assert_eq!(parse_tegra_release(""), None);
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(version_at_least("535.183.01", "530"));
        assert!(version_at_least("551.23", "551.23"));
        assert!(!version_at_least("525.147.05", "530"));
        assert!(version_at_least("1000", "999.99"));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let bad = r#"{"cpu":{"cores":2,"arch":"x86_64"},"gpu":"yes"}"#;
        let err = serde_json::from_str::<SystemDescription>(bad).unwrap_err();
        assert!(err.to_string().contains("unknown field `gpu`"), "{err}");
    }
}
