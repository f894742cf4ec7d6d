//! The live probe: reads sysfs/procfs/etc and tries GStreamer elements, producing a
//! [`SystemDescription`].  File locations are taken relative to a [`Roots`] so the file-reading
//! half can be exercised on a prepared directory tree; [`probe`] uses the real `/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::description::{Cpu, Dmi, ElementStatus, RenderNode, SystemDescription};

/// Where the probe looks; everything is `/` on a real box.
#[derive(Debug, Clone)]
pub struct Roots {
    pub root: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Roots {
            root: PathBuf::from("/"),
        }
    }
}

impl Roots {
    fn p(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
    }
}

/// How long one element may take to reach READY (a wedged driver must not hang the agent).
pub const ELEMENT_READY_TIMEOUT: Duration = Duration::from_secs(10);

fn read_trimmed(path: &Path) -> Option<String> {
    let s = std::fs::read_to_string(path).ok()?;
    let s = s
        .trim_matches(|c: char| c.is_whitespace() || c == '\0')
        .to_owned();
    (!s.is_empty()).then_some(s)
}

fn read_raw(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// Render nodes from `dev/dri`, with driver and PCI ids from `sys/class/drm/<node>/device`.
pub fn render_nodes(roots: &Roots) -> Vec<RenderNode> {
    let Ok(entries) = std::fs::read_dir(roots.p("/dev/dri")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("renderD"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let dev = roots.p(&format!("/sys/class/drm/{name}/device"));
            let driver = std::fs::read_link(dev.join("driver"))
                .ok()
                .and_then(|l| l.file_name().map(|f| f.to_string_lossy().into_owned()));
            RenderNode {
                path: format!("/dev/dri/{name}"),
                driver,
                vendor: read_trimmed(&dev.join("vendor")),
                device: read_trimmed(&dev.join("device")),
            }
        })
        .collect()
}

/// `Model:` of each `proc/driver/nvidia/gpus/*/information`.
pub fn nvidia_gpus(roots: &Roots) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(roots.p("/proc/driver/nvidia/gpus")) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    dirs.sort();
    dirs.iter()
        .filter_map(|d| read_raw(&d.join("information")))
        .filter_map(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("Model:"))
                .map(|m| m.trim().to_owned())
        })
        .collect()
}

/// CPU model from `proc/cpuinfo` and the number of CPUs this process may use.
pub fn cpu(roots: &Roots) -> Cpu {
    let model = read_raw(&roots.p("/proc/cpuinfo")).and_then(|info| {
        ["model name", "Model", "Hardware"].iter().find_map(|key| {
            info.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == *key && !v.trim().is_empty()).then(|| v.trim().to_owned())
            })
        })
    });
    let cores = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1);
    Cpu {
        model,
        cores,
        arch: std::env::consts::ARCH.to_owned(),
    }
}

/// Everything except the GStreamer elements.
pub fn probe_files(roots: &Roots) -> SystemDescription {
    let dmi = |f: &str| read_trimmed(&roots.p(&format!("/sys/class/dmi/id/{f}")));
    SystemDescription {
        render_nodes: render_nodes(roots),
        nvidia_driver_version: read_raw(&roots.p("/proc/driver/nvidia/version")),
        nvidia_gpus: nvidia_gpus(roots),
        tegra_release: read_raw(&roots.p("/etc/nv_tegra_release")),
        device_tree_model: read_trimmed(&roots.p("/proc/device-tree/model")),
        dmi: Dmi {
            sys_vendor: dmi("sys_vendor"),
            board_name: dmi("board_name"),
            product_name: dmi("product_name"),
        },
        cpu: cpu(roots),
        gstreamer_version: None,
        elements: BTreeMap::new(),
    }
}

/// Makes `name` and takes it to READY inside a throwaway pipeline, reporting the element's own
/// error message when it refuses (e.g. a VA driver that fails to initialise).
pub fn probe_element(name: &str) -> ElementStatus {
    let Some(factory) = gst::ElementFactory::find(name) else {
        return ElementStatus::Missing;
    };
    let (tx, rx) = mpsc::channel();
    let name_owned = name.to_owned();
    // Probe on a worker thread: a wedged driver must cost a timeout, not the agent.
    std::thread::Builder::new()
        .name(format!("hw-probe-{name}"))
        .spawn(move || {
            let _ = tx.send(try_ready(&factory, &name_owned));
        })
        .map_err(|e| ElementStatus::Failed {
            error: format!("cannot spawn probe thread: {e}"),
        })
        .map_or_else(
            |e| e,
            |_| {
                rx.recv_timeout(ELEMENT_READY_TIMEOUT)
                    .unwrap_or_else(|_| ElementStatus::Failed {
                        error: format!("did not reach READY within {ELEMENT_READY_TIMEOUT:?}"),
                    })
            },
        )
}

fn try_ready(factory: &gst::ElementFactory, name: &str) -> ElementStatus {
    match factory.create().build() {
        Ok(element) => ready_status(&element),
        Err(e) => ElementStatus::Failed {
            error: format!("cannot create {name}: {e}"),
        },
    }
}

/// Takes an (unparented) element to READY in a throwaway pipeline and back to NULL, returning
/// the element's own error message if it refuses.
pub fn ready_status(element: &gst::Element) -> ElementStatus {
    let pipeline = gst::Pipeline::new();
    if let Err(e) = pipeline.add(element) {
        return ElementStatus::Failed {
            error: format!("cannot add {} to a pipeline: {e}", element.name()),
        };
    }
    let result = pipeline.set_state(gst::State::Ready);
    let status = match result {
        Ok(_) => ElementStatus::Ready,
        Err(_) => {
            let bus_error = pipeline.bus().and_then(|bus| {
                bus.iter_filtered(&[gst::MessageType::Error])
                    .find_map(|m| match m.view() {
                        gst::MessageView::Error(err) => Some(match err.debug() {
                            Some(dbg) => format!("{} ({dbg})", err.error()),
                            None => err.error().to_string(),
                        }),
                        _ => None,
                    })
            });
            ElementStatus::Failed {
                error: bus_error.unwrap_or_else(|| "state change to READY failed".to_owned()),
            }
        }
    };
    let _ = pipeline.set_state(gst::State::Null);
    status
}

/// The full live probe: files under `/` and every element in `elements`.
/// Initialises GStreamer if needed; a GStreamer that cannot initialise marks every element failed.
pub fn probe(elements: &[String]) -> SystemDescription {
    probe_with(&Roots::default(), elements)
}

pub fn probe_with(roots: &Roots, elements: &[String]) -> SystemDescription {
    let mut d = probe_files(roots);
    match gst::init() {
        Ok(()) => {
            d.gstreamer_version = Some(gst::version_string().to_string());
            for name in elements {
                d.elements.insert(name.clone(), probe_element(name));
            }
        }
        Err(e) => {
            for name in elements {
                d.elements.insert(
                    name.clone(),
                    ElementStatus::Failed {
                        error: format!("GStreamer did not initialise: {e}"),
                    },
                );
            }
        }
    }
    d
}
