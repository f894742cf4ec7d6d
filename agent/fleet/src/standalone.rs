//! The device side without the transcoding daemon (`edge-fleet device`): presence, system telemetry,
//! desired config for the log level, commands.  It has no pipeline, so `restart_pipeline` answers with an
//! error, and it reports no encoder; `edge-agent run` with a `[fleet]` table is the full device.

use std::sync::Mutex;

use tracing_subscriber::{EnvFilter, Registry, reload};

use crate::device::{BoxFuture, Hooks};
use crate::proto::{DaemonSnapshot, RuntimeConfig};

pub struct StandaloneHooks {
    log: reload::Handle<EnvFilter, Registry>,
    applied: Mutex<RuntimeConfig>,
    board: Option<String>,
    /// Sessions this box could run (`--max-sessions`): a desired `session_limit` above it is refused, as
    /// the daemon refuses one above its hardware's.
    session_cap: Option<u32>,
}

impl StandaloneHooks {
    pub fn new(log: reload::Handle<EnvFilter, Registry>) -> Self {
        let board = [
            "/sys/firmware/devicetree/base/model",
            "/sys/class/dmi/id/product_name",
        ]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| {
            s.trim_matches(|c: char| c.is_whitespace() || c == '\0')
                .to_string()
        })
        .filter(|s| !s.is_empty());
        StandaloneHooks {
            log,
            applied: Mutex::new(RuntimeConfig::default()),
            board,
            session_cap: None,
        }
    }

    pub fn with_session_cap(mut self, cap: Option<u32>) -> Self {
        self.session_cap = cap;
        self
    }
}

impl Hooks for StandaloneHooks {
    fn snapshot(&self) -> DaemonSnapshot {
        DaemonSnapshot {
            board: self.board.clone(),
            session_limit: self.applied.lock().unwrap().session_limit,
            ..Default::default()
        }
    }

    fn apply_config(&self, config: &RuntimeConfig, _at_startup: bool) -> Result<(), String> {
        if let (Some(n), Some(cap)) = (config.session_limit, self.session_cap) {
            if n > cap {
                return Err(format!("session_limit {n} above this box's limit {cap}"));
            }
        }
        if let Some(l) = &config.log_level {
            self.set_log_level(l)?;
        }
        *self.applied.lock().unwrap() = config.clone();
        Ok(())
    }

    fn set_log_level(&self, directive: &str) -> Result<(), String> {
        let f = EnvFilter::try_new(directive).map_err(|e| e.to_string())?;
        self.log.reload(f).map_err(|e| e.to_string())?;
        tracing::info!(directive, "log filter changed");
        Ok(())
    }

    fn restart_pipeline(&self) -> BoxFuture<Result<serde_json::Value, String>> {
        Box::pin(async { Err("no media pipeline: this is the standalone fleet agent".to_string()) })
    }

    fn diagnostics(&self) -> serde_json::Value {
        serde_json::json!({
            "mode": "standalone",
            "log_filter": self.log.with_current(|f| f.to_string()).ok(),
        })
    }
}
