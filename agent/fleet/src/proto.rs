//! Wire documents (JSON).  Every document the device accepts is parsed with `deny_unknown_fields`, so a typo
//! in an operator's config is an error the operator sees, not a silently ignored key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Retained presence document on `fleet/{id}/status`.  The Last Will is `{"state":"offline"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Status {
    pub state: Presence,
    /// Wall clock of the heartbeat, Unix milliseconds (absent in the Last Will).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
    /// Unix milliseconds when this connection came up (absent in the Last Will).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    Online,
    Offline,
}

/// One encoder the box can use, as reported by the hardware inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderInfo {
    /// GStreamer element, e.g. `nvh264enc`, `vah264enc`, `x264enc`.
    pub element: String,
    /// Family used by selectors: `nvenc`, `vaapi`, `v4l2`, `x264`, ...
    pub api: String,
    pub codec: String,
    pub hardware: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sessions: Option<u32>,
}

/// What the daemon measures and knows; every field is optional so a box only reports what it can read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonSnapshot {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub encoders: Vec<EncoderInfo>,
    /// `api` of the encoder in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime_factor: Option<f64>,
    /// The root slot the box booted (`A` or `B`), on an A/B image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_slot: Option<String>,
    /// The version of the booted image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_version: Option<String>,
    /// The update in progress, or the outcome of the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<UpdateStatus>,
    /// Media engines rebuilt since the agent started, after one broke on a segment (a panic, or a state it
    /// could not flush away): a box whose count climbs is being fed input that breaks its engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_rebuilds: Option<u64>,
    /// Protocol participation, where the box has a chain account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainTelemetry>,
}

/// Where an image update stands on a box.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateStatus {
    pub version: String,
    pub state: UpdateState,
    /// The slot the update was written to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    /// Download progress, 0-100, while downloading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<u8>,
    /// Why it failed or was rolled back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When the state was reached (Unix ms).
    pub ts_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateState {
    Downloading,
    Installing,
    /// Written to the inactive slot; the box reboots into it once its streams are drained.
    Installed,
    /// Booted into the new slot; its health gate has not decided yet.
    Booted,
    /// The new slot passed its health gate and is kept.
    Succeeded,
    /// The new slot failed (health gate, boot tries) and the box is back on the old one.
    RolledBack,
    /// Refused or failed before the reboot; the box stays on its slot.
    Failed,
}

/// A box's protocol state as its chain keeper sees it. Token and ETH amounts are decimal strings in wei
/// (they do not fit a JSON number).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainTelemetry {
    pub address: String,
    /// The node answers.
    pub connected: bool,
    pub block: u64,
    pub round: u64,
    pub round_initialized: bool,
    pub active: bool,
    pub stake_wei: String,
    pub last_reward_round: u64,
    pub pending_txs: u64,
    pub gas_balance_wei: String,
    /// Rounds of automatic transactions the gas balance pays for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gas_rounds_left: Option<u64>,
    /// The gas balance will not last the configured number of days.
    pub gas_low: bool,
    pub failed_txs: u64,
}

/// Machine figures read from `/proc` and `/sys` by [`crate::sysstat`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemStats {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_total_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_available_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_s: Option<u64>,
}

/// Retained telemetry on `fleet/{id}/telemetry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Telemetry {
    pub device: String,
    pub seq: u64,
    pub ts_ms: u64,
    pub agent_version: String,
    pub agent_uptime_s: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_version: Option<u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(flatten)]
    pub daemon: DaemonSnapshot,
    pub system: SystemStats,
}

/// The desired runtime configuration.  Absent fields mean "keep what the box has".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Live: a tracing `EnvFilter` directive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    /// Live: maximum concurrent transcode sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_limit: Option<u32>,
    /// Live: the output ladder used by new sessions, as names of profiles the box knows (built-in or
    /// its config's custom profiles); the daemon refuses names it does not know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ladder: Option<Vec<String>>,
    /// Live: seconds between periodic telemetry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry_interval_s: Option<u32>,
    /// Live: when the box may reboot into an installed update, `HH:MM-HH:MM` UTC (may run over midnight);
    /// outside it an installed update waits. Unset: at once, once the streams have ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_window: Option<String>,
    /// On restart: preferred encoder api (`nvenc`, `vaapi`, `x264`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder: Option<String>,
}

/// Fields of [`RuntimeConfig`] that only take effect when the agent restarts.
pub const RESTART_FIELDS: &[&str] = &["encoder"];

impl RuntimeConfig {
    /// Restart-only fields whose value differs between `self` and `running`.
    pub fn restart_fields_changed(&self, running: &RuntimeConfig) -> Vec<String> {
        let mut v = Vec::new();
        if self.encoder != running.encoder {
            v.push("encoder".to_string());
        }
        v
    }
}

/// Retained desired document on `fleet/{id}/config/desired`, written by the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesiredDoc {
    /// Strictly increasing per device; a lower version than the applied one is stale and rejected.
    pub version: u64,
    pub config: RuntimeConfig,
}

/// Retained reported document on `fleet/{id}/config/reported`, written by the device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportedDoc {
    /// Version of the config in force (0: none applied yet).
    pub applied_version: u64,
    pub applied: RuntimeConfig,
    /// Restart-only fields of the applied config that wait for the next start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_restart: Vec<String>,
    /// The last desired document that was refused, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<ConfigError>,
    pub ts_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigError {
    /// Version of the refused document, when it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    pub reason: String,
}

/// A command on `fleet/{id}/cmd/req`.  The response goes to the MQTT v5 response topic, with the request's
/// correlation data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    /// Idempotency key: a repeated id returns the first result.
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub args: serde_json::Value,
}

/// The commands a device knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Ping,
    RestartPipeline,
    SetLogLevel {
        level: String,
    },
    CollectDiagnostics {
        max_bytes: Option<usize>,
    },
    Reboot,
    /// Install a new image into the inactive slot and boot it.
    Update(UpdateRequest),
}

/// The `update` command's arguments: where the bundle is (an address, or a PPSPP swarm of the site's boxes),
/// and what it must be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    /// `https://` (or `http://` on a closed site network) address of the signed update bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Instead of `url`: the bundle's PPSPP swarm ID, the hex Merkle root of the file cut into
    /// [`BUNDLE_CHUNK_SIZE`] chunks under SHA-256 (what `edge-agent swarm seed FILE --hash sha256
    /// --chunk-size 8192` prints). The box fetches it from `peers` and from the boxes they lead it to, and
    /// serves it to them while it does, so a site's uplink carries the bundle about once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm: Option<String>,
    /// With `swarm`: the peers to start from, `IP:port` separated by commas (at most
    /// [`BUNDLE_SWARM_MAX_PEERS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peers: Option<String>,
    /// SHA-256 of the bundle file, 64 hex digits: a download that differs is refused before the update
    /// client sees it.
    pub sha256: String,
    /// The image version the bundle carries; the box refuses a bundle whose manifest says otherwise.
    pub version: String,
}

/// Chunk size of an update bundle's swarm (all peers of a swarm must agree on it).
pub const BUNDLE_CHUNK_SIZE: u32 = 8192;
/// Peers an `update` command may name for its swarm.
pub const BUNDLE_SWARM_MAX_PEERS: usize = 16;

/// Where an `update` command's bundle comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleSource {
    Url(String),
    Swarm {
        /// The Merkle root (32 bytes, SHA-256).
        id: Vec<u8>,
        peers: Vec<std::net::SocketAddr>,
    },
}

impl UpdateRequest {
    /// The bundle's source, checked: exactly one of `url` and `swarm`; a swarm's ID and peers well formed.
    pub fn source(&self) -> Result<BundleSource, String> {
        match (&self.url, &self.swarm, &self.peers) {
            (Some(url), None, None) => {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(format!(
                        "update url `{url}`: expected an http:// or https:// address"
                    ));
                }
                Ok(BundleSource::Url(url.clone()))
            }
            (None, Some(id), Some(peers)) => {
                let id = hex::decode(id)
                    .ok()
                    .filter(|id| id.len() == 32)
                    .ok_or("update swarm: expected the bundle's Merkle root, 64 hex digits")?;
                let peers = peers
                    .split(',')
                    .map(|p| {
                        p.trim().parse().map_err(|_| {
                            format!("update peers: `{}` is not an IP address and port", p.trim())
                        })
                    })
                    .collect::<Result<Vec<std::net::SocketAddr>, String>>()?;
                if peers.len() > BUNDLE_SWARM_MAX_PEERS {
                    return Err(format!(
                        "update peers: {} given, at most {BUNDLE_SWARM_MAX_PEERS}",
                        peers.len()
                    ));
                }
                Ok(BundleSource::Swarm { id, peers })
            }
            (None, Some(_), None) => Err("update swarm: name its peers (peers=IP:port,…)".into()),
            (None, None, _) => Err("update: give the bundle's url, or its swarm and peers".into()),
            (Some(_), _, _) => Err("update: give a url or a swarm and its peers, not both".into()),
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        self.source()?;
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("update sha256: expected 64 hex digits".into());
        }
        let v = &self.version;
        if v.is_empty()
            || v.len() > 128
            || !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._+-~".contains(&b))
        {
            return Err(format!(
                "update version `{v}`: expected 1-128 of [A-Za-z0-9._+~-]"
            ));
        }
        Ok(())
    }
}

impl Command {
    pub const NAMES: &[&str] = &[
        "ping",
        "restart_pipeline",
        "set_log_level",
        "collect_diagnostics",
        "reboot",
        "update",
    ];

    /// Parses name and args; the error is what the operator reads.
    pub fn parse(name: &str, args: &serde_json::Value) -> Result<Command, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Level {
            level: String,
        }
        #[derive(Deserialize, Default)]
        #[serde(deny_unknown_fields)]
        struct Diag {
            #[serde(default)]
            max_bytes: Option<usize>,
        }
        let no_args = |c: Command| match args {
            serde_json::Value::Null => Ok(c),
            serde_json::Value::Object(m) if m.is_empty() => Ok(c),
            _ => Err(format!("command `{name}` takes no arguments")),
        };
        match name {
            "ping" => no_args(Command::Ping),
            "restart_pipeline" => no_args(Command::RestartPipeline),
            "reboot" => no_args(Command::Reboot),
            "set_log_level" => {
                let l: Level = serde_json::from_value(args.clone()).map_err(|e| {
                    format!("set_log_level args: {e} (expected {{\"level\": \"...\"}})")
                })?;
                crate::validate::log_level(&l.level)?;
                Ok(Command::SetLogLevel { level: l.level })
            }
            "collect_diagnostics" => {
                let d: Diag = if args.is_null() {
                    Diag::default()
                } else {
                    serde_json::from_value(args.clone())
                        .map_err(|e| format!("collect_diagnostics args: {e}"))?
                };
                Ok(Command::CollectDiagnostics {
                    max_bytes: d.max_bytes,
                })
            }
            "update" => {
                let u: UpdateRequest = serde_json::from_value(args.clone()).map_err(|e| {
                    format!(
                        "update args: {e} (expected {{\"url\": ..., \"sha256\": ..., \"version\": ...}})"
                    )
                })?;
                u.validate()?;
                Ok(Command::Update(u))
            }
            other => Err(format!(
                "unknown command `{other}` (known: {})",
                Command::NAMES.join(", ")
            )),
        }
    }
}

/// Response to a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandResult {
    /// Absent when the request could not be parsed far enough to read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the command finished on the device (Unix ms) - a repeated id carries the first run's time.
    pub ts_ms: u64,
    /// True when this is the stored result of an earlier request with the same id.
    #[serde(default)]
    pub duplicate: bool,
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_arguments_are_checked_before_anything_runs() {
        let ok = serde_json::json!({
            "url": "https://updates.example/edge-1.2.raucb",
            "sha256": "ab".repeat(32),
            "version": "1.2.0+g1234",
        });
        match Command::parse("update", &ok).unwrap() {
            Command::Update(u) => assert_eq!(u.version, "1.2.0+g1234"),
            c => panic!("parsed as {c:?}"),
        }
        let with = |k: &str, v: serde_json::Value| {
            let mut a = ok.clone();
            a[k] = v;
            Command::parse("update", &a).unwrap_err()
        };
        assert!(with("url", "file:///etc/shadow".into()).contains("http"));
        assert!(with("sha256", "abc".into()).contains("64 hex"));
        assert!(with("sha256", "zz".repeat(32).into()).contains("64 hex"));
        assert!(with("version", "1.2; reboot".into()).contains("version"));
        assert!(with("version", "".into()).contains("version"));
        let mut extra = ok.clone();
        extra["force"] = true.into();
        assert!(
            Command::parse("update", &extra)
                .unwrap_err()
                .contains("update args")
        );
        assert!(Command::parse("update", &serde_json::Value::Null).is_err());
    }

    #[test]
    fn an_update_from_a_swarm_names_its_root_and_peers() {
        let root = "0f".repeat(32);
        let ok = serde_json::json!({
            "swarm": root,
            "peers": "192.168.1.20:7000, [fd00::2]:7000",
            "sha256": "ab".repeat(32),
            "version": "1.2.0",
        });
        let Command::Update(u) = Command::parse("update", &ok).unwrap() else {
            panic!("not an update")
        };
        assert_eq!(
            u.source().unwrap(),
            BundleSource::Swarm {
                id: vec![0x0f; 32],
                peers: vec![
                    "192.168.1.20:7000".parse().unwrap(),
                    "[fd00::2]:7000".parse().unwrap()
                ],
            }
        );
        // What goes on the wire: no `url` key at all.
        assert_eq!(
            serde_json::to_value(&u).unwrap(),
            serde_json::json!({"swarm": root, "peers": "192.168.1.20:7000, [fd00::2]:7000",
                "sha256": "ab".repeat(32), "version": "1.2.0"})
        );
        let err = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut a = ok.clone();
            f(&mut a);
            Command::parse("update", &a).unwrap_err()
        };
        assert!(err(&|a| a["swarm"] = "0f".into()).contains("64 hex"));
        assert!(err(&|a| a["peers"] = "boxes.local:7000".into()).contains("IP address"));
        assert!(err(&|a| a["peers"] = vec!["10.0.0.1:1"; 17].join(",").into()).contains("at most"));
        assert!(
            err(&|a| {
                a.as_object_mut().unwrap().remove("peers");
            })
            .contains("peers")
        );
        assert!(err(&|a| a["url"] = "https://updates.example/b.raucb".into()).contains("not both"));
        assert!(
            err(&|a| {
                let o = a.as_object_mut().unwrap();
                o.remove("swarm");
                o.remove("peers");
            })
            .contains("url")
        );
    }

    #[test]
    fn update_status_wire_format() {
        let s = UpdateStatus {
            version: "1.2.0".into(),
            state: UpdateState::RolledBack,
            slot: Some("B".into()),
            progress: None,
            detail: Some("slot B failed its health gate".into()),
            ts_ms: 5,
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"version":"1.2.0","state":"rolled_back","slot":"B","detail":"slot B failed its health gate","ts_ms":5}"#
        );
    }
}
