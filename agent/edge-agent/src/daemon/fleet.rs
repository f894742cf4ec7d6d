//! Fleet management for the daemon: implements [`fleet::device::Hooks`] over [`Shared`] and runs
//! [`fleet::device::run`] as a subsystem when the config has a `[fleet]` table.
//!
//! Wiring (in `daemon/mod.rs`): `pub mod fleet;`, then in `run_async` after `shared` exists:
//! ```ignore
//! if let Some(cfg) = shared.config.fleet.clone() {
//!     fleet::spawn(&mut tasks, shared.clone(), cfg);
//! }
//! ```
//! and in `config.rs`: `pub fleet: Option<fleet::DeviceConfig>` in `Config` (default `None`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use fleet::device::{BoxFuture, Hooks};
use fleet::proto::{DaemonSnapshot, EncoderInfo, RuntimeConfig as Desired};

use super::Shared;

/// Encoder family name used by fleet selectors (`encoder=nvenc`).
pub fn kind_api(kind: &hw::EncoderKind) -> &'static str {
    match kind {
        hw::EncoderKind::Va | hw::EncoderKind::Vaapi => "vaapi",
        hw::EncoderKind::Nvenc => "nvenc",
        hw::EncoderKind::JetsonV4l2 => "v4l2",
        hw::EncoderKind::Software => "x264",
    }
}

/// The usable encoders of the inventory, with their driver and session cap.
fn inventory_encoders(inv: &hw::Inventory) -> Vec<EncoderInfo> {
    inv.encoders
        .iter()
        .filter(|e| e.usable)
        .map(|e| {
            let driver = match e.kind {
                hw::EncoderKind::Va | hw::EncoderKind::Vaapi => {
                    (!inv.drivers.render_nodes.is_empty())
                        .then(|| inv.drivers.render_nodes.join(", "))
                }
                hw::EncoderKind::Nvenc => inv.drivers.nvidia.clone(),
                hw::EncoderKind::JetsonV4l2 => inv.drivers.tegra.clone(),
                hw::EncoderKind::Software => None,
            };
            EncoderInfo {
                element: e.element.clone(),
                api: kind_api(&e.kind).to_string(),
                codec: "h264".into(),
                hardware: e.kind != hw::EncoderKind::Software,
                driver,
                max_sessions: inv
                    .sessions
                    .iter()
                    .find(|l| l.element == e.element)
                    .and_then(|l| l.max),
            }
        })
        .collect()
}

pub struct DaemonHooks {
    shared: Arc<Shared>,
}

impl DaemonHooks {
    pub fn new(shared: Arc<Shared>) -> Self {
        DaemonHooks { shared }
    }
}

impl Hooks for DaemonHooks {
    fn snapshot(&self) -> DaemonSnapshot {
        let s = &self.shared;
        let rt = s.runtime();
        let (n, fps, rtf) = {
            let streams = s.streams.lock().unwrap();
            let n = streams.len() as u32;
            let measured: Vec<_> = streams.values().filter(|st| st.segments_ok > 0).collect();
            let fps = (!measured.is_empty()).then(|| measured.iter().map(|st| st.fps).sum::<f64>());
            // The slowest stream decides whether the box keeps up.
            let rtf = measured
                .iter()
                .map(|st| st.realtime_factor)
                .fold(None, |a: Option<f64>, x| Some(a.map_or(x, |a| a.min(x))));
            (n, fps, rtf)
        };
        DaemonSnapshot {
            board: Some(s.hw.selection.board.clone()).filter(|b| !b.is_empty()),
            encoders: inventory_encoders(&s.hw.inventory),
            encoder: Some(kind_api(&s.hw.selection.kind).to_string()),
            streams: Some(n),
            sessions: Some(n),
            session_limit: Some(rt.max_sessions),
            fps: fps.map(|f| (f * 10.0).round() / 10.0),
            realtime_factor: rtf.map(|r| (r * 100.0).round() / 100.0),
            image_slot: s.image.as_ref().map(|i| i.slot.clone()),
            image_version: s.image.as_ref().and_then(|i| i.version.clone()),
            update: s
                .update_progress
                .lock()
                .unwrap()
                .clone()
                .or_else(|| s.image.as_ref().and_then(|i| i.update_status())),
            engine_rebuilds: Some(s.engine_rebuilds.load(std::sync::atomic::Ordering::Relaxed)),
            chain: s
                .chain
                .as_ref()
                .map(|c| super::chain::telemetry(&c.borrow())),
        }
    }

    fn apply_config(&self, c: &Desired, at_startup: bool) -> Result<(), String> {
        let s = &self.shared;
        let mut next = s.runtime();
        // Check everything before changing anything: a refusal leaves the running config untouched.
        if let Some(n) = c.session_limit {
            let cap = s.capacity.load(std::sync::atomic::Ordering::Relaxed);
            if n > cap {
                return Err(format!(
                    "session_limit {n} is above this box's limit of {cap} (measured, or its encoder's)"
                ));
            }
            next.max_sessions = n;
        }
        // the whole desired document speaks for the window: absent is none
        if let Some(w) = &c.maintenance_window {
            fleet::window::MaintenanceWindow::parse(w)?;
        }
        next.maintenance_window = c.maintenance_window.clone();
        if let Some(ladder) = &c.ladder {
            let set = s.config.profile_set().map_err(|e| format!("{e:#}"))?;
            for name in ladder {
                set.by_name(name)
                    .map_err(|e| format!("ladder profile `{name}`: {e}"))?;
            }
            next.ladder = ladder.clone();
        }
        if let Some(l) = &c.log_level {
            s.log.set(l).map_err(|e| format!("{e:#}"))?;
            next.log_level = l.clone();
        }
        if let Some(e) = &c.encoder {
            let current = kind_api(&s.hw.selection.kind);
            if current != e {
                if at_startup {
                    tracing::warn!(
                        wanted = %e, selected = %current,
                        "fleet encoder preference differs from the probed selection; set [hw] to change it"
                    );
                } else {
                    tracing::info!(wanted = %e, "encoder change takes effect on restart");
                }
            }
        }
        s.runtime.send_replace(next);
        Ok(())
    }

    fn set_log_level(&self, directive: &str) -> Result<(), String> {
        self.shared
            .log
            .set(directive)
            .map_err(|e| format!("{e:#}"))?;
        self.shared
            .runtime
            .send_modify(|r| r.log_level = directive.to_string());
        Ok(())
    }

    fn restart_pipeline(&self) -> BoxFuture<Result<serde_json::Value, String>> {
        let s = self.shared.clone();
        Box::pin(async move {
            s.restart_pipelines();
            Ok(serde_json::json!({
                "pipeline_generation": s.pipeline_generation.load(Ordering::Relaxed),
                "streams": s.active_streams(),
                "note": "each stream rebuilds its pipeline before its next segment",
            }))
        })
    }

    fn update(
        &self,
        req: fleet::proto::UpdateRequest,
    ) -> BoxFuture<Result<serde_json::Value, String>> {
        Box::pin(super::image::update(self.shared.clone(), req))
    }

    fn connection(&self, connected: bool) {
        self.shared
            .fleet_connected
            .store(connected, Ordering::Relaxed);
    }

    fn diagnostics(&self) -> serde_json::Value {
        let s = &self.shared;
        serde_json::json!({
            "runtime": s.runtime(),
            "streams": *s.streams.lock().unwrap(),
            "segments_total": s.segments_total.load(Ordering::Relaxed),
            "hw": s.hw.selection_summary(),
            "inventory": s.hw.inventory,
            "agent_uptime_s": s.started.elapsed().as_secs(),
        })
    }
}

/// Starts the fleet subsystem; it stops when the daemon's shutdown token fires.  A fleet config that
/// cannot work (missing or bad certificate, invalid values) is logged as an error and leaves the box
/// transcoding without fleet management rather than stopping the daemon (first boot before provisioning).
pub fn spawn(
    tasks: &mut tokio::task::JoinSet<anyhow::Result<()>>,
    shared: Arc<Shared>,
    cfg: fleet::DeviceConfig,
) {
    let stop = shared.shutdown.clone();
    let hooks = Arc::new(DaemonHooks::new(shared));
    tasks.spawn(async move {
        let stopped = stop.clone();
        if let Err(e) =
            fleet::device::run(cfg, hooks, async move { stopped.cancelled().await }).await
        {
            tracing::error!(error = %e, "fleet management disabled");
            // Returning would end the daemon (a finished subsystem stops it): wait for shutdown.
            stop.cancelled().await;
        }
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoder_families() {
        assert_eq!(kind_api(&hw::EncoderKind::Nvenc), "nvenc");
        assert_eq!(kind_api(&hw::EncoderKind::Va), "vaapi");
        assert_eq!(kind_api(&hw::EncoderKind::Vaapi), "vaapi");
        assert_eq!(kind_api(&hw::EncoderKind::Software), "x264");
    }
}
