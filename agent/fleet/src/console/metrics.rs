//! The fleet-wide Prometheus endpoint: one scrape covers every box, from the MQTT telemetry the console
//! holds.  Every per-box series carries `device`, `board`, `encoder` and `site` labels; each box's
//! figures state their staleness in `edge_fleet_telemetry_age_seconds` (the figures are the box's last
//! report, not a live reading).

use std::fmt::Write;

use super::fleet_state::FleetState;
use super::rollout::{Phase, Rollout};

/// Escapes a label value for the text format (backslash, double quote, newline).
fn esc(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    rows: Vec<(String, f64)>,
}

impl Family {
    fn new(name: &'static str, kind: &'static str, help: &'static str) -> Self {
        Family {
            name,
            help,
            kind,
            rows: Vec::new(),
        }
    }
}

/// The per-box families, in the order of the values `render` reads for each box.
fn per_box() -> [Family; 19] {
    use Family as F;
    [
        F::new(
            "edge_fleet_device_online",
            "gauge",
            "1 while the box is online (Last Will: 0)",
        ),
        F::new(
            "edge_fleet_telemetry_age_seconds",
            "gauge",
            "Age of the box's last telemetry: how stale its figures are",
        ),
        F::new(
            "edge_fleet_last_seen_age_seconds",
            "gauge",
            "Seconds since the box was last heard from (heartbeat or telemetry)",
        ),
        F::new(
            "edge_fleet_cpu_percent",
            "gauge",
            "CPU use in the last telemetry",
        ),
        F::new(
            "edge_fleet_load1",
            "gauge",
            "1-minute load average in the last telemetry",
        ),
        F::new(
            "edge_fleet_memory_available_bytes",
            "gauge",
            "Available memory in the last telemetry",
        ),
        F::new("edge_fleet_memory_total_bytes", "gauge", "Total memory"),
        F::new(
            "edge_fleet_temperature_celsius",
            "gauge",
            "Hottest thermal zone in the last telemetry",
        ),
        F::new(
            "edge_fleet_uptime_seconds",
            "gauge",
            "Machine uptime in the last telemetry",
        ),
        F::new("edge_fleet_streams", "gauge", "Streams being transcoded"),
        F::new("edge_fleet_sessions", "gauge", "Encoder sessions in use"),
        F::new(
            "edge_fleet_session_limit",
            "gauge",
            "Session limit in force",
        ),
        F::new("edge_fleet_fps", "gauge", "Summed output frames per second"),
        F::new(
            "edge_fleet_realtime_factor",
            "gauge",
            "Slowest stream's realtime factor",
        ),
        F::new(
            "edge_fleet_engine_rebuilds",
            "gauge",
            "Media engines rebuilt since the agent started (after one broke on a segment)",
        ),
        F::new(
            "edge_fleet_config_applied_version",
            "gauge",
            "Desired-config version the box applied",
        ),
        F::new(
            "edge_fleet_config_desired_version",
            "gauge",
            "Desired-config version published to the box",
        ),
        F::new(
            "edge_fleet_chain_active",
            "gauge",
            "1 while the box is an active transcoder on chain",
        ),
        F::new(
            "edge_fleet_chain_stake_wei",
            "gauge",
            "Bonded stake (wei, as a float)",
        ),
    ]
}

fn info_family() -> Family {
    Family::new(
        "edge_fleet_device_info",
        "gauge",
        "Always 1: the box's agent version and image slot as labels",
    )
}

fn devices_family() -> Family {
    Family::new(
        "edge_fleet_devices",
        "gauge",
        "Boxes known to the console, by presence",
    )
}

fn rollouts_family() -> Family {
    Family::new(
        "edge_fleet_rollouts",
        "gauge",
        "Rollouts held by the console, by phase",
    )
}

/// Every family the endpoint can serve (one with no sample is left out of a scrape).
pub fn family_names() -> Vec<&'static str> {
    per_box()
        .iter()
        .chain([&info_family(), &devices_family(), &rollouts_family()])
        .map(|f| f.name)
        .collect()
}

/// Every label name the endpoint's series carry.
pub const LABELS: [&str; 9] = [
    "device",
    "board",
    "encoder",
    "site",
    "agent_version",
    "image_slot",
    "image_version",
    "state",
    "phase",
];

/// Renders the whole fleet at wall-clock `now_ms`.
pub fn render(fleet: &FleetState, rollouts: &[Rollout], now_ms: u64) -> String {
    let mut fams = per_box();
    let mut info = info_family();
    let mut online = 0.0;
    let mut offline = 0.0;
    for e in fleet.devices.values() {
        let v = &e.view;
        let t = v.telemetry.as_ref();
        let board = t.and_then(|t| t.daemon.board.as_deref()).unwrap_or("");
        let encoder = v.encoder().unwrap_or("");
        let site = t
            .and_then(|t| t.labels.get("site"))
            .map(String::as_str)
            .unwrap_or("");
        let labels = format!(
            "device=\"{}\",board=\"{}\",encoder=\"{}\",site=\"{}\"",
            esc(&v.id),
            esc(board),
            esc(encoder),
            esc(site)
        );
        if v.online() {
            online += 1.0;
        } else {
            offline += 1.0;
        }
        let age = |ms: u64| now_ms.saturating_sub(ms) as f64 / 1000.0;
        let values: [Option<f64>; 19] = [
            Some(if v.online() { 1.0 } else { 0.0 }),
            t.map(|t| age(t.ts_ms)),
            v.last_seen_ms().map(age),
            t.and_then(|t| t.system.cpu_percent),
            t.and_then(|t| t.system.load1),
            t.and_then(|t| t.system.mem_available_bytes.map(|b| b as f64)),
            t.and_then(|t| t.system.mem_total_bytes.map(|b| b as f64)),
            t.and_then(|t| t.system.temperature_c),
            t.and_then(|t| t.system.uptime_s.map(|b| b as f64)),
            t.and_then(|t| t.daemon.streams.map(f64::from)),
            t.and_then(|t| t.daemon.sessions.map(f64::from)),
            t.and_then(|t| t.daemon.session_limit.map(f64::from)),
            t.and_then(|t| t.daemon.fps),
            t.and_then(|t| t.daemon.realtime_factor),
            t.and_then(|t| t.daemon.engine_rebuilds.map(|n| n as f64)),
            v.reported.as_ref().map(|r| r.applied_version as f64),
            v.desired.as_ref().map(|d| d.version as f64),
            t.and_then(|t| t.daemon.chain.as_ref())
                .map(|c| if c.active { 1.0 } else { 0.0 }),
            t.and_then(|t| t.daemon.chain.as_ref())
                .and_then(|c| c.stake_wei.parse::<f64>().ok()),
        ];
        for (f, val) in fams.iter_mut().zip(values) {
            if let Some(x) = val.filter(|x| x.is_finite()) {
                f.rows.push((labels.clone(), x));
            }
        }
        if let Some(t) = t {
            info.rows.push((
                format!(
                    "{labels},agent_version=\"{}\",image_slot=\"{}\",image_version=\"{}\"",
                    esc(&t.agent_version),
                    esc(t.daemon.image_slot.as_deref().unwrap_or("")),
                    esc(t.daemon.image_version.as_deref().unwrap_or(""))
                ),
                1.0,
            ));
        }
    }
    let mut devices = devices_family();
    devices.rows.push(("state=\"online\"".into(), online));
    devices.rows.push(("state=\"offline\"".into(), offline));
    let mut ro = rollouts_family();
    for p in [
        Phase::Running,
        Phase::Paused,
        Phase::Halted,
        Phase::Completed,
        Phase::Aborted,
        Phase::RollingBack,
        Phase::RolledBack,
    ] {
        let n = rollouts.iter().filter(|r| r.phase == p).count();
        ro.rows
            .push((format!("phase=\"{}\"", p.as_str()), n as f64));
    }
    let mut out = String::new();
    for f in fams.iter().chain([&info, &devices, &ro]) {
        if f.rows.is_empty() {
            continue;
        }
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
        for (l, x) in &f.rows {
            let _ = writeln!(out, "{}{{{l}}} {x}", f.name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The Grafana dashboard shipped beside the crate: each query names only families and labels this
    /// endpoint serves, each `$variable` is defined, each legend's `{{label}}` exists.
    #[test]
    fn the_grafana_dashboard_asks_only_for_what_the_endpoint_serves() {
        let dash: serde_json::Value =
            serde_json::from_str(include_str!("../../examples/grafana-dashboard.json")).unwrap();
        let families: BTreeSet<&str> = family_names().into_iter().collect();
        let labels: BTreeSet<&str> = LABELS.into_iter().collect();
        let vars: BTreeSet<String> = dash["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_string())
            .collect();
        let ident = |s: &str| -> String {
            s.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        };
        let mut exprs: Vec<String> = Vec::new();
        let mut legends: Vec<String> = Vec::new();
        let mut ids = BTreeSet::new();
        for p in dash["panels"].as_array().unwrap() {
            assert!(ids.insert(p["id"].as_u64().unwrap()), "panel ids unique");
            assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "{}", p["title"]);
            let targets = p["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{} has a query", p["title"]);
            for t in targets {
                exprs.push(t["expr"].as_str().unwrap().to_string());
                legends.push(t["legendFormat"].as_str().unwrap_or("").to_string());
            }
        }
        for v in dash["templating"]["list"].as_array().unwrap() {
            let q = v["query"]["query"].as_str().unwrap();
            let args = q
                .strip_prefix("label_values(")
                .and_then(|r| r.strip_suffix(')'))
                .unwrap();
            let (metric, label) = args.split_once(", ").unwrap();
            assert!(families.contains(metric), "{q}");
            assert!(labels.contains(label), "{q}");
        }
        let mut used = BTreeSet::new();
        for e in &exprs {
            for (i, _) in e.match_indices("edge_fleet_") {
                let name = ident(&e[i..]);
                assert!(families.contains(name.as_str()), "`{name}` in {e}");
                used.insert(name);
            }
            // label matchers: {name="v", name=~"v"}
            for block in e.split('{').skip(1) {
                let inner = block.split('}').next().unwrap();
                for m in inner.split(',') {
                    let l = ident(m.trim());
                    assert!(labels.contains(l.as_str()), "label `{l}` in {e}");
                }
            }
            // grouping: by (a, b), on(a)
            for kw in ["by (", "by(", "on(", "on ("] {
                for (i, _) in e.match_indices(kw) {
                    let inner = e[i + kw.len()..].split(')').next().unwrap();
                    for l in inner.split(',') {
                        assert!(labels.contains(l.trim()), "label `{}` in {e}", l.trim());
                    }
                }
            }
            for (i, _) in e.match_indices('$') {
                let v = ident(&e[i + 1..]);
                assert!(vars.contains(&v), "${v} in {e} is not a dashboard variable");
            }
        }
        for l in &legends {
            for part in l.split("{{").skip(1) {
                let name = part.split("}}").next().unwrap();
                assert!(labels.contains(name), "legend {{{{{name}}}}}");
            }
        }
        // the fleet at a glance covers presence, staleness and the work
        for f in [
            "edge_fleet_devices",
            "edge_fleet_telemetry_age_seconds",
            "edge_fleet_fps",
            "edge_fleet_realtime_factor",
            "edge_fleet_device_info",
        ] {
            assert!(used.contains(f), "the dashboard shows {f}");
        }
    }
    use crate::operator::FleetEvent;
    use crate::proto::{DaemonSnapshot, Presence, Status, SystemStats, Telemetry};

    #[test]
    fn labels_escaped_and_staleness_stated() {
        let mut s = FleetState::new(4);
        s.apply(&FleetEvent::Status {
            device: "b-1".into(),
            status: Status {
                state: Presence::Online,
                ts_ms: Some(9_000),
                agent_version: None,
                since_ms: None,
            },
        });
        s.apply(&FleetEvent::Telemetry {
            device: "b-1".into(),
            telemetry: Box::new(Telemetry {
                device: "b-1".into(),
                seq: 1,
                ts_ms: 5_000,
                agent_version: "0.1".into(),
                agent_uptime_s: 1,
                config_version: None,
                labels: [("site".to_string(), "a\"b\\c\nd".to_string())].into(),
                daemon: DaemonSnapshot {
                    board: Some("nuc".into()),
                    fps: Some(f64::NAN),
                    ..Default::default()
                },
                system: SystemStats {
                    cpu_percent: Some(12.5),
                    ..Default::default()
                },
            }),
        });
        let text = render(&s, &[], 10_000);
        assert!(text.contains(
            "edge_fleet_telemetry_age_seconds{device=\"b-1\",board=\"nuc\",encoder=\"\",site=\"a\\\"b\\\\c\\nd\"} 5\n"
        ), "{text}");
        assert!(text.contains("edge_fleet_last_seen_age_seconds{device=\"b-1\""));
        assert!(text.contains("} 1\n"));
        assert!(!text.contains("edge_fleet_fps"), "NaN is left out");
        assert!(text.contains("edge_fleet_devices{state=\"online\"} 1"));
    }
}
