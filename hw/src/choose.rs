//! Pure logic over a [`SystemDescription`]: which encoders/decoders the box has ([`Inventory`])
//! and which one to use ([`Selection`]), with a reason a person can act on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::board::{BoardProfile, Boards, EncoderEntry, EncoderKind, Requirement};
use crate::description::{ElementStatus, SystemDescription};
use crate::{SOFTWARE_DECODER, SOFTWARE_ENCODER};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectError {
    /// Not even the software encoder can run: the box cannot transcode at all.
    #[error(
        "no usable H.264 encoder: {why}; install gstreamer1.0-plugins-ugly (x264enc) and gstreamer1.0-libav (avdec_h264)"
    )]
    NoEncoder { why: String },
}

/// The encoder the media engine should build its pipeline with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    /// Board profile that applied.
    pub board: String,
    pub kind: EncoderKind,
    /// H.264 encoder element factory name.
    pub encoder: String,
    /// H.264 decoder element factory name.
    pub decoder: String,
    /// Scaler element matching the decoder/encoder memory.
    pub scaler: String,
    /// Encoder properties from the board profile (GStreamer string syntax).
    pub encoder_properties: BTreeMap<String, String>,
    /// Concurrent encode sessions (renditions across all streams) the box should take; `None`
    /// when no cap is known.
    pub session_limit: Option<u32>,
    /// DRM render node the VA elements open, when relevant.
    pub render_node: Option<String>,
    /// True when hardware was expected or present but software is used.
    pub fallback: bool,
    /// One line saying why this encoder was chosen (and why better ones were not).
    pub reason: String,
}

/// How one encoder or decoder element fares on this box.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodecEntry {
    pub kind: EncoderKind,
    pub element: String,
    pub status: ElementStatus,
    /// The device the element needs is present (render node, NVIDIA driver, Tegra).
    pub device_present: bool,
    /// Ready and its device is present.
    pub usable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionLimit {
    pub element: String,
    /// `None`: no known cap.
    pub max: Option<u32>,
}

/// Drivers and device files that matter for acceleration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drivers {
    /// `path (driver)` for each render node.
    pub render_nodes: Vec<String>,
    pub nvidia: Option<String>,
    pub nvidia_gpus: Vec<String>,
    pub tegra: Option<String>,
}

/// What the box has, for `edge-agent hw` and fleet telemetry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    /// Matching board profile, if any.
    pub board: Option<String>,
    pub cpu_model: Option<String>,
    pub cpu_cores: u32,
    pub encoders: Vec<CodecEntry>,
    pub decoders: Vec<CodecEntry>,
    /// Session caps of the usable encoders of the board.
    pub sessions: Vec<SessionLimit>,
    pub drivers: Drivers,
}

fn requirement_met(board: &BoardProfile, e: &EncoderEntry, d: &SystemDescription) -> bool {
    match e.requires {
        Requirement::RenderNode => !board.usable_render_nodes(d).is_empty(),
        Requirement::NvidiaDriver => d.nvidia_driver_version.is_some(),
        Requirement::Tegra => d.tegra_release.is_some(),
        Requirement::None => true,
    }
}

fn describe_nodes(d: &SystemDescription) -> String {
    if d.render_nodes.is_empty() {
        return "no DRM render node".into();
    }
    let nodes: Vec<String> = d
        .render_nodes
        .iter()
        .map(|n| {
            format!(
                "{} ({})",
                n.path,
                n.driver.as_deref().unwrap_or("no driver")
            )
        })
        .collect();
    nodes.join(", ")
}

/// Why an entry cannot be used, or `None` if it can.
fn unusable_because(
    board: &BoardProfile,
    e: &EncoderEntry,
    d: &SystemDescription,
) -> Option<String> {
    if !requirement_met(board, e, d) {
        let missing = match e.requires {
            Requirement::RenderNode if d.render_nodes.is_empty() => "no DRM render node".to_owned(),
            Requirement::RenderNode => format!(
                "no render node with driver {} ({})",
                board.matches.render_drivers.join("/"),
                describe_nodes(d)
            ),
            Requirement::NvidiaDriver => "no NVIDIA driver (/proc/driver/nvidia/version)".into(),
            Requirement::Tegra => "no /etc/nv_tegra_release".into(),
            Requirement::None => unreachable!("Requirement::None is always met"),
        };
        return Some(format!("{}: {missing}", e.element));
    }
    match d.element(&e.element) {
        ElementStatus::Ready => None,
        ElementStatus::Missing => Some(format!(
            "{}: element not registered (plugin missing, or it found no device)",
            e.element
        )),
        ElementStatus::Failed { error } => {
            Some(format!("{}: failed to reach READY: {error}", e.element))
        }
    }
}

fn software_entry(board: Option<&BoardProfile>) -> EncoderEntry {
    board
        .and_then(|b| b.encoders.iter().find(|e| e.kind == EncoderKind::Software))
        .cloned()
        .unwrap_or_else(|| EncoderEntry {
            kind: EncoderKind::Software,
            element: SOFTWARE_ENCODER.into(),
            decoder: SOFTWARE_DECODER.into(),
            scaler: "videoscale".into(),
            requires: Requirement::None,
            sessions: crate::board::Sessions {
                per_core: Some(1.0),
                ..Default::default()
            },
            properties: BTreeMap::from([("speed-preset".into(), "veryfast".into())]),
        })
}

/// Picks the encoder: the first entry of the best-matching board profile whose device is present
/// and whose element reaches READY; otherwise software, with the reasons the others failed.
pub fn select(d: &SystemDescription, boards: &Boards) -> Result<Selection, SelectError> {
    let board = boards.best_match(d);
    let board_name = board.map_or_else(|| "none".to_owned(), |b| b.name.clone());
    let mut rejected: Vec<String> = Vec::new();

    if let Some(b) = board {
        for e in b
            .encoders
            .iter()
            .filter(|e| e.kind != EncoderKind::Software)
        {
            match unusable_because(b, e, d) {
                Some(why) => rejected.push(why),
                None => {
                    let (decoder, dec_note) = pick_decoder(&e.decoder, d);
                    let render_node = match e.requires {
                        Requirement::RenderNode => {
                            b.usable_render_nodes(d).first().map(|n| n.path.clone())
                        }
                        _ => None,
                    };
                    let mut reason = format!("board {}: {} reached READY", b.name, e.element);
                    if let Some(node) = &render_node {
                        reason.push_str(&format!(" on {}", describe_node(d, node)));
                    }
                    if let Some(v) = d
                        .nvidia_driver_number()
                        .filter(|_| e.kind == EncoderKind::Nvenc)
                    {
                        reason.push_str(&format!(" with NVIDIA driver {v}"));
                    }
                    if let Some(r) = d
                        .tegra_l4t_release()
                        .filter(|_| e.kind == EncoderKind::JetsonV4l2)
                    {
                        reason.push_str(&format!(" on L4T {r}"));
                    }
                    if !rejected.is_empty() {
                        reason.push_str(&format!(" (skipped {})", rejected.join("; ")));
                    }
                    reason.push_str(&dec_note);
                    return Ok(Selection {
                        board: b.name.clone(),
                        kind: e.kind,
                        encoder: e.element.clone(),
                        decoder,
                        scaler: e.scaler.clone(),
                        encoder_properties: e.properties.clone(),
                        session_limit: e.sessions.resolve(d),
                        render_node,
                        fallback: false,
                        reason,
                    });
                }
            }
        }
    }

    // Software.
    let sw = software_entry(board);
    for el in [&sw.element, &sw.decoder] {
        if let Some(why) = (!d.element(el).is_ready()).then(|| match d.element(el) {
            ElementStatus::Failed { error } => format!("{el} failed to reach READY: {error}"),
            _ => format!("{el} is not installed"),
        }) {
            let mut all = rejected.clone();
            all.push(why);
            return Err(SelectError::NoEncoder {
                why: all.join("; "),
            });
        }
    }
    let hardware_seen = !d.render_nodes.is_empty()
        || d.nvidia_driver_version.is_some()
        || d.tegra_release.is_some();
    let why = if let Some(note) = board.and_then(|b| b.note.as_deref()) {
        let mut s = note.to_owned();
        if !rejected.is_empty() {
            s.push_str(&format!("; {}", rejected.join("; ")));
        }
        s
    } else if !rejected.is_empty() {
        format!("no usable hardware encoder: {}", rejected.join("; "))
    } else if hardware_seen {
        format!(
            "no board profile supports this hardware ({}{}{})",
            describe_nodes(d),
            d.nvidia_driver_number()
                .map(|v| format!(", NVIDIA driver {v}"))
                .unwrap_or_default(),
            d.tegra_l4t_release()
                .map(|v| format!(", L4T {v}"))
                .unwrap_or_default(),
        )
    } else {
        "no accelerator found (no DRM render node, no NVIDIA driver, no Tegra release)".to_owned()
    };
    Ok(Selection {
        board: board_name.clone(),
        kind: EncoderKind::Software,
        encoder: sw.element.clone(),
        decoder: sw.decoder.clone(),
        scaler: sw.scaler.clone(),
        encoder_properties: sw.properties.clone(),
        session_limit: sw.sessions.resolve(d),
        render_node: None,
        fallback: hardware_seen || !rejected.is_empty() || board.is_some_and(|b| b.note.is_some()),
        reason: format!(
            "board {board_name}: software {} + {}: {why}",
            sw.element, sw.decoder
        ),
    })
}

fn describe_node(d: &SystemDescription, path: &str) -> String {
    d.render_nodes
        .iter()
        .find(|n| n.path == path)
        .map(|n| {
            format!(
                "{} ({})",
                n.path,
                n.driver.as_deref().unwrap_or("no driver")
            )
        })
        .unwrap_or_else(|| path.to_owned())
}

fn pick_decoder(preferred: &str, d: &SystemDescription) -> (String, String) {
    if d.element(preferred).is_ready() || preferred == SOFTWARE_DECODER {
        (preferred.to_owned(), String::new())
    } else {
        (
            SOFTWARE_DECODER.to_owned(),
            format!("; decoding with {SOFTWARE_DECODER} because {preferred} is not ready"),
        )
    }
}

/// Lists every encoder/decoder the known profiles mention, with how it fares on this box.
pub fn inventory(d: &SystemDescription, boards: &Boards) -> Inventory {
    let board = boards.best_match(d);
    let mut encoders: Vec<CodecEntry> = Vec::new();
    let mut decoders: Vec<CodecEntry> = Vec::new();
    let mut sessions: Vec<SessionLimit> = Vec::new();
    // The matching board first, then the others: the first entry for an element decides its
    // device check (a VA element's render-node driver list comes from its own board).
    let ordered = board.into_iter().chain(
        boards
            .profiles()
            .iter()
            .filter(|p| Some(p.name.as_str()) != board.map(|b| b.name.as_str())),
    );
    for b in ordered {
        for e in &b.encoders {
            let present = requirement_met(b, e, d);
            if !encoders.iter().any(|c| c.element == e.element) {
                let status = d.element(&e.element);
                encoders.push(CodecEntry {
                    kind: e.kind,
                    usable: present && status.is_ready(),
                    element: e.element.clone(),
                    status,
                    device_present: present,
                });
            }
            if !decoders.iter().any(|c| c.element == e.decoder) {
                let status = d.element(&e.decoder);
                decoders.push(CodecEntry {
                    kind: e.kind,
                    usable: present && status.is_ready(),
                    element: e.decoder.clone(),
                    status,
                    device_present: present,
                });
            }
            if Some(b.name.as_str()) == board.map(|b| b.name.as_str())
                && present
                && d.element(&e.element).is_ready()
                && !sessions.iter().any(|s| s.element == e.element)
            {
                sessions.push(SessionLimit {
                    element: e.element.clone(),
                    max: e.sessions.resolve(d),
                });
            }
        }
    }
    Inventory {
        board: board.map(|b| b.name.clone()),
        cpu_model: d.cpu.model.clone(),
        cpu_cores: d.cpu.cores,
        encoders,
        decoders,
        sessions,
        drivers: Drivers {
            render_nodes: d
                .render_nodes
                .iter()
                .map(|n| {
                    format!(
                        "{} ({})",
                        n.path,
                        n.driver.as_deref().unwrap_or("no driver")
                    )
                })
                .collect(),
            nvidia: d.nvidia_driver_number(),
            nvidia_gpus: d.nvidia_gpus.clone(),
            tegra: d.tegra_l4t_release(),
        },
    }
}

impl Selection {
    /// Emits the one log line that says what is used and why (a warning on fallback).
    pub fn log(&self) {
        if self.fallback {
            tracing::warn!(
                encoder = %self.encoder,
                decoder = %self.decoder,
                "hardware encoder not used, falling back to software: {}",
                self.reason
            );
        } else {
            tracing::info!(
                encoder = %self.encoder,
                decoder = %self.decoder,
                "using {:?} encoder: {}",
                self.kind,
                self.reason
            );
        }
    }
}
