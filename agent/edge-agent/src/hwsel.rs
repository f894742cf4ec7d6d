//! The one place where the `hw` crate's choice meets the `media` crate's encoder type (the two crates do not
//! know each other), plus the daemon's view of it.

use anyhow::Context;
use serde::Serialize;

use crate::config::HwConfig;

/// What the probe found and chose, fixed for the life of the process.
#[derive(Debug, Clone, Serialize)]
pub struct HwState {
    pub inventory: hw::Inventory,
    pub selection: hw::Selection,
    /// Concurrent streams the selection can carry with the configured ladder length.
    #[serde(skip)]
    streams_limit: u32,
}

/// Probes the box (blocking: GStreamer elements are taken to READY) and chooses the encoder, honouring
/// `[hw]` (board override, extra board directory, forced software).  Logs the one line that says why.
pub fn probe(cfg: &HwConfig) -> anyhow::Result<HwState> {
    probe_for_ladder(cfg, 1)
}

pub fn probe_for_ladder(cfg: &HwConfig, ladder_len: usize) -> anyhow::Result<HwState> {
    let mut boards =
        hw::Boards::load(cfg.boards_dir.as_deref()).context("loading board profiles")?;
    if !matches!(cfg.board.as_str(), "auto" | "") {
        // A named board applies whatever the box looks like; its encoders must still reach READY.
        let mut forced = boards
            .get(&cfg.board)
            .with_context(|| format!("hw.board = {:?}: no such board profile", cfg.board))?
            .clone();
        forced.matches = Default::default();
        forced.priority = i32::MAX;
        boards.insert(forced);
    }
    let description = hw::probe::probe(&boards.element_names());
    let inventory = hw::inventory(&description, &boards);
    let mut selection = if cfg.force_software {
        software_selection(
            &description,
            &boards,
            "forced by configuration (hw.force_software)",
        )?
    } else {
        hw::select(&description, &boards)?
    };
    if selection.kind == hw::EncoderKind::Software && selection.session_limit.is_none() {
        selection.session_limit = Some(inventory.cpu_cores.max(1));
    }
    selection.log();
    let sessions = selection.session_limit.unwrap_or(u32::MAX);
    let streams_limit = (sessions / ladder_len.max(1) as u32).max(1);
    Ok(HwState {
        inventory,
        selection,
        streams_limit,
    })
}

fn software_selection(
    d: &hw::SystemDescription,
    boards: &hw::Boards,
    why: &str,
) -> anyhow::Result<hw::Selection> {
    let mut s = hw::select(d, boards)?;
    if s.kind != hw::EncoderKind::Software {
        s = hw::Selection {
            board: s.board,
            kind: hw::EncoderKind::Software,
            encoder: hw::SOFTWARE_ENCODER.into(),
            decoder: hw::SOFTWARE_DECODER.into(),
            scaler: "videoscale".into(),
            encoder_properties: Default::default(),
            session_limit: None,
            render_node: None,
            fallback: true,
            reason: why.into(),
        };
    }
    Ok(s)
}

impl HwState {
    /// Concurrent streams this box takes with the ladder it was probed for.
    pub fn session_limit(&self) -> u32 {
        self.streams_limit
    }

    /// Encoder sessions the hardware encoder takes at once, where it has a limit (the software encoder has
    /// none: more sessions run slower, they do not fail).
    pub fn encoder_sessions(&self) -> Option<u32> {
        match self.selection.kind {
            hw::EncoderKind::Software => None,
            _ => self.selection.session_limit,
        }
    }

    pub fn encoder_element(&self) -> &str {
        &self.selection.encoder
    }

    pub fn selection_summary(&self) -> serde_json::Value {
        serde_json::json!({
            "board": self.selection.board,
            "kind": self.selection.kind,
            "encoder": self.selection.encoder,
            "decoder": self.selection.decoder,
            "fallback": self.selection.fallback,
            "reason": self.selection.reason,
        })
    }

    /// The media engine's encoder backend for this selection.
    pub fn backend(&self) -> media::Backend {
        backend_for(&self.selection)
    }
}

/// Maps a selection onto the media engine's backend; board tuning of the software encoder carries over.
pub fn backend_for(sel: &hw::Selection) -> media::Backend {
    match sel.kind {
        hw::EncoderKind::Va => media::Backend::Va,
        hw::EncoderKind::Vaapi => media::Backend::Vaapi,
        hw::EncoderKind::Nvenc => media::Backend::Nvenc,
        hw::EncoderKind::JetsonV4l2 => media::Backend::Jetson,
        hw::EncoderKind::Software => {
            let mut o = media::X264Options::default();
            if let Some(p) = sel.encoder_properties.get("speed-preset") {
                o.speed_preset = p.clone();
            }
            if let Some(t) = sel.encoder_properties.get("tune") {
                o.tune = t.clone();
            }
            media::Backend::Software(o)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_maps_to_the_same_elements() {
        let base = hw::Selection {
            board: "b".into(),
            kind: hw::EncoderKind::Software,
            encoder: "x264enc".into(),
            decoder: "avdec_h264".into(),
            scaler: "videoscale".into(),
            encoder_properties: [("speed-preset".to_string(), "faster".to_string())].into(),
            session_limit: None,
            render_node: None,
            fallback: false,
            reason: String::new(),
        };
        for (kind, enc) in [
            (hw::EncoderKind::Software, "x264enc"),
            (hw::EncoderKind::Va, "vah264enc"),
            (hw::EncoderKind::Vaapi, "vaapih264enc"),
            (hw::EncoderKind::Nvenc, "nvh264enc"),
            (hw::EncoderKind::JetsonV4l2, "nvv4l2h264enc"),
        ] {
            let b = backend_for(&hw::Selection {
                kind,
                ..base.clone()
            });
            assert_eq!(b.encoder_factory(), enc, "{kind:?}");
        }
        match backend_for(&base) {
            media::Backend::Software(o) => assert_eq!(o.speed_preset, "faster"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn live_probe_maps_onto_the_engine() {
        let st = probe(&HwConfig::default()).unwrap();
        assert!(st.session_limit() >= 1);
        // The engine builds exactly the element `hw` chose.
        assert_eq!(
            st.backend().encoder_factory(),
            st.selection.encoder,
            "{:?}",
            st.selection
        );
        let d = &st.inventory.drivers;
        if d.render_nodes.is_empty() && d.nvidia.is_none() && d.tegra.is_none() {
            // No accelerator (this CI machine): the software fallback.
            assert_eq!(
                st.selection.kind,
                hw::EncoderKind::Software,
                "{:?}",
                st.selection
            );
            assert_eq!(st.backend().encoder_factory(), "x264enc");
        }
        let forced = probe(&HwConfig {
            force_software: true,
            ..HwConfig::default()
        })
        .unwrap();
        assert_eq!(forced.selection.encoder, "x264enc");
    }
}
