//! Device-side configuration: the `[fleet]` table of the agent's config file.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceConfig {
    /// Broker host name or address (must match the broker certificate's SAN).
    pub host: String,
    #[serde(default = "d_port")]
    pub port: u16,
    /// Fleet CA (PEM) that signed the broker certificate.
    pub ca_file: PathBuf,
    /// This device's client certificate (PEM); its CN is the device id.
    pub cert_file: PathBuf,
    /// Private key of `cert_file` (PEM, PKCS#8 or SEC1).
    pub key_file: PathBuf,
    /// Directory for the applied config and the command-result cache (survive restarts).  Without it they
    /// live in memory only.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// Free-form labels reported in telemetry and usable in selectors as `label.KEY=VALUE`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default = "d_keep_alive")]
    pub keep_alive_s: u64,
    /// How long the broker keeps this device's session (subscriptions and queued commands) while offline.
    #[serde(default = "d_session_expiry")]
    pub session_expiry_s: u32,
    #[serde(default = "d_heartbeat")]
    pub heartbeat_s: u64,
    /// Periodic telemetry; the desired config's `telemetry_interval_s` overrides it live.
    #[serde(default = "d_telemetry")]
    pub telemetry_interval_s: u64,
    /// Telemetry samples kept while offline (oldest dropped first).
    #[serde(default = "d_buffer")]
    pub telemetry_buffer: usize,
    #[serde(default = "d_backoff_min")]
    pub reconnect_min_ms: u64,
    #[serde(default = "d_backoff_max")]
    pub reconnect_max_ms: u64,
    /// Largest command or desired-config payload accepted; larger ones get an error response.
    #[serde(default = "d_max_payload")]
    pub max_payload_bytes: usize,
    /// Command results remembered for idempotency.
    #[serde(default = "d_result_cache")]
    pub result_cache: usize,
    /// Argv run by the `reboot` command.  Tests point it at something harmless.
    #[serde(default = "d_reboot")]
    pub reboot_command: Vec<String>,
    /// Log file whose tail goes into diagnostics bundles (else `journalctl -u edge-agent` when present).
    #[serde(default)]
    pub log_file: Option<PathBuf>,
    /// Upper bound of a diagnostics bundle.
    #[serde(default = "d_diag_max")]
    pub diagnostics_max_bytes: usize,
}

fn d_port() -> u16 {
    8883
}
fn d_keep_alive() -> u64 {
    5
}
fn d_session_expiry() -> u32 {
    7 * 24 * 3600
}
fn d_heartbeat() -> u64 {
    30
}
fn d_telemetry() -> u64 {
    30
}
fn d_buffer() -> usize {
    120
}
fn d_backoff_min() -> u64 {
    250
}
fn d_backoff_max() -> u64 {
    3000
}
fn d_max_payload() -> usize {
    16 * 1024
}
fn d_result_cache() -> usize {
    256
}
fn d_reboot() -> Vec<String> {
    vec!["systemctl".into(), "reboot".into()]
}
fn d_diag_max() -> usize {
    256 * 1024
}

impl DeviceConfig {
    /// A config with defaults for everything but the broker and the identity files.
    pub fn new(
        host: impl Into<String>,
        port: u16,
        ca: PathBuf,
        cert: PathBuf,
        key: PathBuf,
    ) -> Self {
        DeviceConfig {
            host: host.into(),
            port,
            ca_file: ca,
            cert_file: cert,
            key_file: key,
            state_dir: None,
            labels: BTreeMap::new(),
            keep_alive_s: d_keep_alive(),
            session_expiry_s: d_session_expiry(),
            heartbeat_s: d_heartbeat(),
            telemetry_interval_s: d_telemetry(),
            telemetry_buffer: d_buffer(),
            reconnect_min_ms: d_backoff_min(),
            reconnect_max_ms: d_backoff_max(),
            max_payload_bytes: d_max_payload(),
            result_cache: d_result_cache(),
            reboot_command: d_reboot(),
            log_file: None,
            diagnostics_max_bytes: d_diag_max(),
        }
    }

    pub fn validate(&self) -> Result<(), crate::Error> {
        let bad = |m: String| Err(crate::Error::Config(m));
        if !(5..=3600).contains(&self.keep_alive_s) {
            return bad("keep_alive_s must be in 5..=3600 (the MQTT client's minimum is 5)".into());
        }
        if self.heartbeat_s < 1 || self.telemetry_interval_s < 1 {
            return bad("heartbeat_s and telemetry_interval_s must be >= 1".into());
        }
        if self.reconnect_min_ms == 0 || self.reconnect_max_ms < self.reconnect_min_ms {
            return bad("need 0 < reconnect_min_ms <= reconnect_max_ms".into());
        }
        if self.reboot_command.is_empty() {
            return bad("reboot_command is empty".into());
        }
        if self.max_payload_bytes < 256 {
            return bad("max_payload_bytes must be >= 256".into());
        }
        Ok(())
    }

    pub fn backoff(&self) -> crate::core::Backoff {
        crate::core::Backoff::new(
            Duration::from_millis(self.reconnect_min_ms),
            Duration::from_millis(self.reconnect_max_ms),
        )
    }
}
