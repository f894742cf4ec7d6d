//! The console's in-memory view of the fleet: every box's latest documents (the operator's
//! [`DeviceView`]), a short telemetry history per box (for plots), and the command results seen.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use crate::operator::{DeviceView, FleetEvent};
use crate::proto::CommandResult;

/// One telemetry sample kept for plots.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    pub ts_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load1: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_available_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub streams: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fps: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realtime_factor: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DeviceEntry {
    #[serde(flatten)]
    pub view: DeviceView,
    pub history: VecDeque<Sample>,
    /// Command results addressed to this console, latest last.
    pub results: VecDeque<CommandResult>,
}

#[derive(Debug, Default)]
pub struct FleetState {
    pub devices: BTreeMap<String, DeviceEntry>,
    history_len: usize,
}

/// Command results kept per box.
pub const RESULTS_KEPT: usize = 32;

impl FleetState {
    pub fn new(history_len: usize) -> Self {
        FleetState {
            devices: BTreeMap::new(),
            history_len,
        }
    }

    fn entry(&mut self, id: &str) -> &mut DeviceEntry {
        self.devices
            .entry(id.to_string())
            .or_insert_with(|| DeviceEntry {
                view: DeviceView {
                    id: id.to_string(),
                    ..Default::default()
                },
                ..Default::default()
            })
    }

    pub fn apply(&mut self, ev: &FleetEvent) {
        let cap = self.history_len;
        match ev {
            FleetEvent::Status { device, status } => {
                self.entry(device).view.status = Some(status.clone())
            }
            FleetEvent::Telemetry { device, telemetry } => {
                let e = self.entry(device);
                let t = telemetry.as_ref();
                // a buffered sample flushed after a reconnect may be older than the latest one
                if e.history.back().is_none_or(|s| s.ts_ms < t.ts_ms) {
                    e.history.push_back(Sample {
                        ts_ms: t.ts_ms,
                        cpu_percent: t.system.cpu_percent,
                        load1: t.system.load1,
                        mem_available_bytes: t.system.mem_available_bytes,
                        temperature_c: t.system.temperature_c,
                        streams: t.daemon.streams,
                        fps: t.daemon.fps,
                        realtime_factor: t.daemon.realtime_factor,
                    });
                    while e.history.len() > cap {
                        e.history.pop_front();
                    }
                }
                if e.view.telemetry.as_ref().is_none_or(|o| o.ts_ms <= t.ts_ms) {
                    e.view.telemetry = Some(t.clone());
                }
            }
            FleetEvent::Desired { device, desired } => {
                self.entry(device).view.desired = Some(desired.clone())
            }
            FleetEvent::Reported { device, reported } => {
                self.entry(device).view.reported = Some(reported.clone())
            }
            FleetEvent::Unparsable { device, error, .. } => {
                self.entry(device).view.note_unparsable(error.clone())
            }
            FleetEvent::CommandResult { device, result } => {
                let e = self.entry(device);
                e.results.push_back(result.clone());
                while e.results.len() > RESULTS_KEPT {
                    e.results.pop_front();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{DaemonSnapshot, SystemStats, Telemetry};

    fn tel(ts: u64) -> FleetEvent {
        FleetEvent::Telemetry {
            device: "b".into(),
            telemetry: Box::new(Telemetry {
                device: "b".into(),
                seq: ts,
                ts_ms: ts,
                agent_version: "0".into(),
                agent_uptime_s: 0,
                config_version: None,
                labels: Default::default(),
                daemon: DaemonSnapshot::default(),
                system: SystemStats {
                    cpu_percent: Some(ts as f64),
                    ..Default::default()
                },
            }),
        }
    }

    #[test]
    fn history_is_bounded_and_ordered() {
        let mut s = FleetState::new(3);
        for ts in [1, 2, 3, 4, 2, 5] {
            s.apply(&tel(ts));
        }
        let e = &s.devices["b"];
        let ts: Vec<u64> = e.history.iter().map(|s| s.ts_ms).collect();
        assert_eq!(ts, [3, 4, 5]);
        assert_eq!(e.view.telemetry.as_ref().unwrap().ts_ms, 5);
    }
}
