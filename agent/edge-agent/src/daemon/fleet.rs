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

use anyhow::Context;
use fleet::device::{BoxFuture, Hooks};
use fleet::proto::{DaemonSnapshot, EncoderInfo, RuntimeConfig as Desired};

use super::Shared;

/// Encoder family name used by fleet selectors (`encoder=nvenc`) for a GStreamer element.
pub fn encoder_api(element: &str) -> String {
    let e = element.to_ascii_lowercase();
    let api = if e.starts_with("nv") {
        "nvenc"
    } else if e.starts_with("vaapi") || e.starts_with("va") {
        "vaapi"
    } else if e.starts_with("v4l2") {
        "v4l2"
    } else if e.starts_with("qsv") || e.starts_with("msdk") {
        "qsv"
    } else if e.starts_with("x264") {
        "x264"
    } else if e.starts_with("x265") {
        "x265"
    } else {
        return e;
    };
    api.to_string()
}

fn codec_of(element: &str) -> &'static str {
    if element.contains("265") || element.contains("hevc") {
        "h265"
    } else if element.contains("av1") {
        "av1"
    } else {
        "h264"
    }
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
        let element = s.hw.encoder_element().to_string();
        let limit = s.hw.session_limit();
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
        let board = Some(s.config.hw.board.clone()).filter(|b| !b.is_empty() && b != "auto");
        DaemonSnapshot {
            board,
            encoders: vec![EncoderInfo {
                api: encoder_api(&element),
                codec: codec_of(&element).into(),
                hardware: !element.starts_with("x26"),
                driver: None,
                max_sessions: Some(limit),
                element: element.clone(),
            }],
            encoder: Some(encoder_api(&element)),
            streams: Some(n),
            sessions: Some(n),
            session_limit: Some(rt.max_sessions),
            fps: fps.map(|f| (f * 10.0).round() / 10.0),
            realtime_factor: rtf.map(|r| (r * 100.0).round() / 100.0),
            image_slot: None,
        }
    }

    fn apply_config(&self, c: &Desired, at_startup: bool) -> Result<(), String> {
        let s = &self.shared;
        let mut next = s.runtime();
        // Check everything before changing anything: a refusal leaves the running config untouched.
        if let Some(n) = c.session_limit {
            let hw = s.hw.session_limit();
            if n > hw {
                return Err(format!(
                    "session_limit {n} is above this box's encoder limit of {hw}"
                ));
            }
            next.max_sessions = n;
        }
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
            let current = encoder_api(s.hw.encoder_element());
            if &current != e {
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

    fn diagnostics(&self) -> serde_json::Value {
        let s = &self.shared;
        serde_json::json!({
            "runtime": s.runtime(),
            "streams": *s.streams.lock().unwrap(),
            "segments_total": s.segments_total.load(Ordering::Relaxed),
            "hw": s.hw.selection_summary(),
            "agent_uptime_s": s.started.elapsed().as_secs(),
        })
    }
}

/// Starts the fleet subsystem; it stops when the daemon's shutdown token fires.
pub fn spawn(
    tasks: &mut tokio::task::JoinSet<anyhow::Result<()>>,
    shared: Arc<Shared>,
    cfg: fleet::DeviceConfig,
) {
    let stop = shared.shutdown.clone();
    let hooks = Arc::new(DaemonHooks::new(shared));
    tasks.spawn(async move {
        fleet::device::run(cfg, hooks, async move { stop.cancelled().await })
            .await
            .context("fleet")
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoder_families() {
        assert_eq!(encoder_api("nvh264enc"), "nvenc");
        assert_eq!(encoder_api("vah264enc"), "vaapi");
        assert_eq!(encoder_api("vaapih264enc"), "vaapi");
        assert_eq!(encoder_api("v4l2h264enc"), "v4l2");
        assert_eq!(encoder_api("x264enc"), "x264");
        assert_eq!(codec_of("nvh265enc"), "h265");
    }
}
