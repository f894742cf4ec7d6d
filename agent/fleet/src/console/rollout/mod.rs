//! A staged rollout of a desired config as a sans-IO state machine: wall-clock `now_ms` and events in
//! (a device reported a version, refused one, went offline), actions out (publish this desired document to
//! that device).  No clock, no broker, no files: the driver (`console::driver`) feeds it and carries out
//! its actions; the unit tests below drive it with fake time.
//!
//! Waves: a canary of `canary` boxes, then boxes up to each cumulative percentage of `waves`, then all.
//! A wave starts by publishing the new config to its boxes; it passes once every box that has not failed
//! reports the new version and the wave then stays healthy for `soak_s`.  A box fails when it refuses the
//! config, is or goes offline, or does not report within `report_timeout_s`.  When the failed share of a
//! wave exceeds `max_failure_ratio` the rollout halts by itself; rollback re-publishes every reached box's
//! previous desired config (under a newer version, as versions only grow).

use serde::{Deserialize, Serialize};

use crate::proto::{DesiredDoc, RuntimeConfig};

/// What the operator asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutSpec {
    /// Selector (`board=…,encoder=…,label.site=…`) the targets were chosen by.
    pub selector: String,
    /// The desired config every target gets.
    pub config: RuntimeConfig,
    /// Boxes in the canary wave (at least one when there are targets).
    #[serde(default = "d_canary")]
    pub canary: usize,
    /// Cumulative percentages of the targets reached after each wave following the canary; a final wave
    /// takes all that remain.
    #[serde(default = "d_waves")]
    pub waves: Vec<u8>,
    /// How long a wave must stay healthy after its boxes applied the config.
    #[serde(default = "d_soak")]
    pub soak_s: u64,
    /// A box that has not reported the new version this long after it was sent counts as failed.
    #[serde(default = "d_report_timeout")]
    pub report_timeout_s: u64,
    /// Halt when more than this share of a wave failed (0.0: any failure halts).
    #[serde(default)]
    pub max_failure_ratio: f64,
    /// Roll back by itself when it halts.
    #[serde(default)]
    pub auto_rollback: bool,
}

fn d_canary() -> usize {
    1
}
fn d_waves() -> Vec<u8> {
    vec![25, 50]
}
fn d_soak() -> u64 {
    60
}
fn d_report_timeout() -> u64 {
    120
}

impl RolloutSpec {
    pub fn check(&self) -> Result<(), String> {
        crate::validate::runtime_config(&self.config)?;
        if !(0.0..=1.0).contains(&self.max_failure_ratio) {
            return Err("max_failure_ratio must be within 0..=1".into());
        }
        if self.waves.iter().any(|p| *p == 0 || *p > 100) {
            return Err("wave percentages must be within 1..=100".into());
        }
        if self.waves.windows(2).any(|w| w[0] >= w[1]) {
            return Err("wave percentages must increase".into());
        }
        if self.report_timeout_s == 0 {
            return Err("report_timeout_s must be above 0".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Running,
    Paused,
    /// Stopped by itself: too many failures in a wave.
    Halted,
    Completed,
    Aborted,
    RollingBack,
    RolledBack,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Running => "running",
            Phase::Paused => "paused",
            Phase::Halted => "halted",
            Phase::Completed => "completed",
            Phase::Aborted => "aborted",
            Phase::RollingBack => "rolling_back",
            Phase::RolledBack => "rolled_back",
        }
    }
}

/// One target box and how far it got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub device: String,
    pub wave: usize,
    /// Version the new config is published under.
    pub version: u64,
    /// Desired document the box had before (what rollback re-publishes).
    pub previous: Option<DesiredDoc>,
    pub online: bool,
    pub state: TargetState,
    /// Highest version the box reported applied (used to pick rollback versions above it).
    #[serde(default)]
    pub reported_version: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", deny_unknown_fields)]
pub enum TargetState {
    Waiting,
    Sent { at_ms: u64 },
    Applied { at_ms: u64 },
    Failed { at_ms: u64, reason: String },
    RollingBack { version: u64, at_ms: u64 },
    RolledBack { version: u64, at_ms: u64 },
    RollbackFailed { version: u64, reason: String },
}

/// Initial facts about a target, from the console's view of the fleet.
#[derive(Debug, Clone)]
pub struct TargetInit {
    pub device: String,
    pub previous: Option<DesiredDoc>,
    pub next_version: u64,
    pub reported_version: u64,
    pub online: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A config report: the applied version, and the last refusal if any.
    Reported {
        device: String,
        applied_version: u64,
        refused: Option<(Option<u64>, String)>,
    },
    Presence {
        device: String,
        online: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Publish { device: String, doc: DesiredDoc },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    pub id: String,
    pub spec: RolloutSpec,
    pub created_ms: u64,
    pub phase: Phase,
    /// Why it halted, was aborted, or what the operator did last.
    pub note: Option<String>,
    pub wave: usize,
    pub waves: usize,
    /// When the current wave's soak ends (set once all its healthy boxes applied).
    pub soak_until_ms: Option<u64>,
    /// Waves whose failures the operator accepted by resuming after a halt.
    #[serde(default)]
    pub accepted_waves: Vec<usize>,
    pub targets: Vec<Target>,
}

/// Sizes of the waves for `n` targets.
pub fn wave_sizes(n: usize, canary: usize, percents: &[u8]) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut reached = 0;
    let mut push = |upto: usize, sizes: &mut Vec<usize>| {
        let upto = upto.min(n);
        if upto > reached {
            sizes.push(upto - reached);
            reached = upto;
        }
    };
    push(canary.max(1), &mut sizes);
    for p in percents {
        push((n * *p as usize).div_ceil(100), &mut sizes);
    }
    push(n, &mut sizes);
    sizes
}

impl Rollout {
    /// A new rollout over `targets` (sorted by device id so waves are reproducible).
    pub fn new(id: String, spec: RolloutSpec, mut targets: Vec<TargetInit>, now_ms: u64) -> Self {
        targets.sort_by(|a, b| a.device.cmp(&b.device));
        let sizes = wave_sizes(targets.len(), spec.canary, &spec.waves);
        let mut wave_of = Vec::new();
        for (w, n) in sizes.iter().enumerate() {
            wave_of.extend(std::iter::repeat_n(w, *n));
        }
        let targets = targets
            .into_iter()
            .zip(wave_of)
            .map(|(t, wave)| Target {
                device: t.device,
                wave,
                version: t.next_version,
                previous: t.previous,
                online: t.online,
                state: TargetState::Waiting,
                reported_version: t.reported_version,
            })
            .collect();
        Rollout {
            id,
            spec,
            created_ms: now_ms,
            phase: if sizes.is_empty() {
                Phase::Completed
            } else {
                Phase::Running
            },
            note: None,
            wave: 0,
            waves: sizes.len(),
            soak_until_ms: None,
            accepted_waves: Vec::new(),
            targets,
        }
    }

    pub fn active(&self) -> bool {
        matches!(
            self.phase,
            Phase::Running | Phase::Paused | Phase::Halted | Phase::RollingBack
        )
    }

    pub fn failed(&self) -> impl Iterator<Item = (&str, &str)> {
        self.targets.iter().filter_map(|t| match &t.state {
            TargetState::Failed { reason, .. } => Some((t.device.as_str(), reason.as_str())),
            _ => None,
        })
    }

    /// Feeds one event; state changes take effect at the next [`Rollout::poll`].
    pub fn on_event(&mut self, ev: &Event, now_ms: u64) {
        let running = self.phase == Phase::Running;
        let wave = self.wave;
        let device = match ev {
            Event::Reported { device, .. } | Event::Presence { device, .. } => device,
        };
        let Some(t) = self.targets.iter_mut().find(|t| &t.device == device) else {
            return;
        };
        match ev {
            Event::Presence { online, .. } => {
                t.online = *online;
                let in_play = matches!(
                    t.state,
                    TargetState::Sent { .. } | TargetState::Applied { .. }
                );
                if !online && running && t.wave == wave && in_play {
                    t.state = TargetState::Failed {
                        at_ms: now_ms,
                        reason: "went offline".into(),
                    };
                }
            }
            Event::Reported {
                applied_version,
                refused,
                ..
            } => {
                t.reported_version = t.reported_version.max(*applied_version);
                match t.state.clone() {
                    TargetState::Sent { .. } => {
                        if let Some((Some(v), reason)) = refused {
                            if *v == t.version {
                                t.state = TargetState::Failed {
                                    at_ms: now_ms,
                                    reason: format!("refused the config: {reason}"),
                                };
                                return;
                            }
                        }
                        if *applied_version >= t.version {
                            t.state = TargetState::Applied { at_ms: now_ms };
                        }
                    }
                    TargetState::RollingBack { version, .. } => {
                        if let Some((Some(v), reason)) = refused {
                            if *v == version {
                                t.state = TargetState::RollbackFailed {
                                    version,
                                    reason: reason.clone(),
                                };
                                return;
                            }
                        }
                        if *applied_version >= version {
                            t.state = TargetState::RolledBack {
                                version,
                                at_ms: now_ms,
                            };
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Advances the rollout at `now_ms`; returns what to publish.
    pub fn poll(&mut self, now_ms: u64) -> Vec<Action> {
        match self.phase {
            Phase::Running => self.poll_running(now_ms),
            Phase::RollingBack => {
                let open = self
                    .targets
                    .iter()
                    .any(|t| matches!(t.state, TargetState::RollingBack { .. }));
                if !open {
                    self.phase = Phase::RolledBack;
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn poll_running(&mut self, now_ms: u64) -> Vec<Action> {
        let mut out = Vec::new();
        let wave = self.wave;
        let timeout = self.spec.report_timeout_s.saturating_mul(1000);
        for t in self.targets.iter_mut().filter(|t| t.wave == wave) {
            match t.state {
                TargetState::Waiting => {
                    out.push(Action::Publish {
                        device: t.device.clone(),
                        doc: DesiredDoc {
                            version: t.version,
                            config: self.spec.config.clone(),
                        },
                    });
                    t.state = if t.online {
                        TargetState::Sent { at_ms: now_ms }
                    } else {
                        TargetState::Failed {
                            at_ms: now_ms,
                            reason: "offline when its wave started".into(),
                        }
                    };
                }
                TargetState::Sent { at_ms } if now_ms.saturating_sub(at_ms) >= timeout => {
                    t.state = TargetState::Failed {
                        at_ms: now_ms,
                        reason: format!(
                            "did not report version {} within {} s",
                            t.version, self.spec.report_timeout_s
                        ),
                    };
                }
                _ => {}
            }
        }
        let in_wave: Vec<&Target> = self.targets.iter().filter(|t| t.wave == wave).collect();
        let failed = in_wave
            .iter()
            .filter(|t| matches!(t.state, TargetState::Failed { .. }))
            .count();
        let accepted = self.accepted_waves.contains(&wave);
        if !accepted && failed as f64 > self.spec.max_failure_ratio * in_wave.len() as f64 {
            self.phase = Phase::Halted;
            self.note = Some(format!(
                "halted in wave {}: {failed} of {} boxes failed (more than {:.0}%)",
                wave + 1,
                in_wave.len(),
                self.spec.max_failure_ratio * 100.0
            ));
            self.soak_until_ms = None;
            if self.spec.auto_rollback {
                out.extend(self.rollback(now_ms));
            }
            return out;
        }
        let pending = in_wave
            .iter()
            .any(|t| matches!(t.state, TargetState::Sent { .. }));
        if pending {
            return out;
        }
        match self.soak_until_ms {
            None => self.soak_until_ms = Some(now_ms + self.spec.soak_s.saturating_mul(1000)),
            Some(until) if now_ms >= until => {
                self.soak_until_ms = None;
                if self.wave + 1 >= self.waves {
                    self.phase = Phase::Completed;
                } else {
                    self.wave += 1;
                    out.extend(self.poll_running(now_ms));
                }
            }
            Some(_) => {}
        }
        out
    }

    pub fn pause(&mut self) -> Result<(), String> {
        if self.phase != Phase::Running {
            return Err(format!(
                "cannot pause a rollout that is {}",
                self.phase.as_str()
            ));
        }
        self.phase = Phase::Paused;
        self.note = Some("paused by the operator".into());
        Ok(())
    }

    /// Continues a paused rollout, or a halted one (the operator accepts the current wave's failures).
    pub fn resume(&mut self, now_ms: u64) -> Result<(), String> {
        match self.phase {
            Phase::Paused => {}
            Phase::Halted => self.accepted_waves.push(self.wave),
            p => return Err(format!("cannot resume a rollout that is {}", p.as_str())),
        }
        // the time spent paused counts neither against report timeouts nor as soak
        for t in &mut self.targets {
            if let TargetState::Sent { at_ms } = &mut t.state {
                *at_ms = now_ms;
            }
        }
        self.soak_until_ms = None;
        self.phase = Phase::Running;
        self.note = Some("resumed by the operator".into());
        Ok(())
    }

    pub fn abort(&mut self) -> Result<(), String> {
        if !self.active() {
            return Err(format!(
                "cannot abort a rollout that is {}",
                self.phase.as_str()
            ));
        }
        self.phase = Phase::Aborted;
        self.note = Some("aborted by the operator".into());
        Ok(())
    }

    /// Re-publishes the previous desired config to every box the new one was sent to.
    pub fn rollback(&mut self, now_ms: u64) -> Vec<Action> {
        let mut out = Vec::new();
        for t in &mut self.targets {
            if matches!(t.state, TargetState::Waiting) {
                continue;
            }
            let version = t.version.max(t.reported_version).saturating_add(1);
            let config = t
                .previous
                .as_ref()
                .map(|d| d.config.clone())
                .unwrap_or_default();
            out.push(Action::Publish {
                device: t.device.clone(),
                doc: DesiredDoc { version, config },
            });
            t.state = TargetState::RollingBack {
                version,
                at_ms: now_ms,
            };
        }
        self.phase = Phase::RollingBack;
        self.soak_until_ms = None;
        out
    }

    /// Rollback as an operator request: refused once the rollout completed or was rolled back.
    pub fn request_rollback(&mut self, now_ms: u64) -> Result<Vec<Action>, String> {
        match self.phase {
            Phase::Running | Phase::Paused | Phase::Halted | Phase::Aborted | Phase::Completed => {
                Ok(self.rollback(now_ms))
            }
            p => Err(format!("cannot roll back a rollout that is {}", p.as_str())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RolloutSpec {
        RolloutSpec {
            selector: "label.site=ams".into(),
            config: RuntimeConfig {
                session_limit: Some(4),
                ..Default::default()
            },
            canary: 2,
            waves: vec![50],
            soak_s: 10,
            report_timeout_s: 30,
            max_failure_ratio: 0.25,
            auto_rollback: false,
        }
    }

    fn init(n: usize) -> Vec<TargetInit> {
        (0..n)
            .map(|i| TargetInit {
                device: format!("box-{i:02}"),
                previous: Some(DesiredDoc {
                    version: 1,
                    config: RuntimeConfig {
                        session_limit: Some(2),
                        ..Default::default()
                    },
                }),
                next_version: 2,
                reported_version: 1,
                online: true,
            })
            .collect()
    }

    fn devices(a: &[Action]) -> Vec<String> {
        a.iter()
            .map(|Action::Publish { device, .. }| device.clone())
            .collect()
    }

    fn applied(r: &mut Rollout, d: &str, v: u64, now: u64) {
        r.on_event(
            &Event::Reported {
                device: d.into(),
                applied_version: v,
                refused: None,
            },
            now,
        );
    }

    #[test]
    fn wave_sizes_cover_every_target_once() {
        assert_eq!(wave_sizes(20, 5, &[25, 50]), vec![5, 5, 10]);
        assert_eq!(wave_sizes(20, 5, &[10]), vec![5, 15]);
        assert_eq!(wave_sizes(3, 5, &[50]), vec![3]);
        assert_eq!(wave_sizes(1, 0, &[]), vec![1]);
        assert_eq!(wave_sizes(0, 1, &[50]), Vec::<usize>::new());
        for n in 0..50 {
            assert_eq!(wave_sizes(n, 3, &[10, 30, 90]).iter().sum::<usize>(), n);
        }
    }

    #[test]
    fn waves_advance_after_report_and_soak() {
        let mut r = Rollout::new("r".into(), spec(), init(8), 0);
        assert_eq!(r.waves, 3); // 2, then up to 4 (50%), then the rest
        let a = r.poll(0);
        assert_eq!(devices(&a), ["box-00", "box-01"]);
        assert!(matches!(&a[0], Action::Publish { doc, .. } if doc.version == 2));
        assert!(r.poll(1000).is_empty(), "nothing sent twice");
        applied(&mut r, "box-00", 2, 1000);
        assert!(r.poll(2000).is_empty());
        applied(&mut r, "box-01", 2, 3000);
        assert!(r.poll(3000).is_empty(), "soak starts");
        assert!(r.poll(12_999).is_empty(), "still soaking");
        assert_eq!(devices(&r.poll(13_000)), ["box-02", "box-03"]);
        assert_eq!(r.wave, 1);
        for d in ["box-02", "box-03"] {
            applied(&mut r, d, 2, 14_000);
        }
        r.poll(14_000);
        assert_eq!(devices(&r.poll(24_000)).len(), 4);
        for d in ["box-04", "box-05", "box-06", "box-07"] {
            applied(&mut r, d, 2, 25_000);
        }
        r.poll(25_000);
        r.poll(35_000);
        assert_eq!(r.phase, Phase::Completed);
        assert_eq!(r.failed().count(), 0);
    }

    #[test]
    fn refusals_halt_the_wave_and_rollback_restores_the_old_config() {
        let mut s = spec();
        s.canary = 5;
        s.waves = vec![50];
        s.max_failure_ratio = 0.2;
        let mut r = Rollout::new("r".into(), s, init(20), 0);
        assert_eq!(devices(&r.poll(0)).len(), 5);
        for d in ["box-00", "box-02", "box-04"] {
            r.on_event(
                &Event::Reported {
                    device: d.into(),
                    applied_version: 1,
                    refused: Some((Some(2), "session_limit 4 above 2".into())),
                },
                500,
            );
        }
        applied(&mut r, "box-01", 2, 600);
        assert!(r.poll(1000).is_empty());
        assert_eq!(r.phase, Phase::Halted);
        let failed: Vec<_> = r.failed().map(|(d, _)| d).collect();
        assert_eq!(failed, ["box-00", "box-02", "box-04"]);
        assert!(r.failed().all(|(_, why)| why.contains("session_limit 4")));
        assert!(r.note.as_deref().unwrap().contains("3 of 5"));
        // halted: time passes, nothing more goes out
        assert!(r.poll(1_000_000).is_empty());
        assert!(
            r.targets
                .iter()
                .filter(|t| t.wave > 0)
                .all(|t| t.state == TargetState::Waiting)
        );

        let a = r.request_rollback(2000).unwrap();
        assert_eq!(
            devices(&a),
            ["box-00", "box-01", "box-02", "box-03", "box-04"]
        );
        for Action::Publish { doc, .. } in &a {
            assert_eq!(doc.version, 3, "above the refused/applied version 2");
            assert_eq!(doc.config.session_limit, Some(2), "the previous config");
        }
        assert_eq!(r.phase, Phase::RollingBack);
        for d in ["box-00", "box-01", "box-02", "box-03", "box-04"] {
            applied(&mut r, d, 3, 2500);
        }
        r.poll(3000);
        assert_eq!(r.phase, Phase::RolledBack);
        assert!(r.request_rollback(4000).is_err());
    }

    #[test]
    fn offline_and_silent_boxes_fail_and_tolerated_failures_pass() {
        let mut s = spec();
        s.canary = 4;
        s.waves = vec![];
        s.max_failure_ratio = 0.5;
        let mut t = init(6);
        t[3].online = false;
        let mut r = Rollout::new("r".into(), s, t, 0);
        r.poll(0);
        applied(&mut r, "box-00", 2, 100);
        r.on_event(
            &Event::Presence {
                device: "box-01".into(),
                online: false,
            },
            200,
        );
        r.poll(300);
        let failed: Vec<_> = r.failed().collect();
        assert_eq!(failed.len(), 2, "{failed:?}");
        assert!(failed[1].1.contains("offline when its wave started"));
        assert_eq!(r.phase, Phase::Running, "2 of 4 is not more than 50%");
        // box-02 never answers
        r.poll(29_999);
        assert_eq!(r.phase, Phase::Running);
        r.poll(30_000);
        assert_eq!(r.phase, Phase::Halted);
        assert!(
            r.failed()
                .any(|(d, why)| d == "box-02" && why.contains("within 30 s"))
        );
        // the operator accepts the failures: the next wave goes out after the soak
        r.resume(31_000).unwrap();
        assert!(r.poll(31_000).is_empty());
        assert_eq!(devices(&r.poll(41_000)), ["box-04", "box-05"]);
    }

    #[test]
    fn pause_holds_timeouts_and_abort_stops() {
        let mut r = Rollout::new("r".into(), spec(), init(4), 0);
        r.poll(0);
        r.pause().unwrap();
        assert!(r.poll(100_000).is_empty());
        assert_eq!(r.phase, Phase::Paused);
        r.resume(100_000).unwrap();
        r.poll(100_001);
        assert_eq!(r.phase, Phase::Running, "pause time did not count");
        assert!(r.pause().is_ok() && r.pause().is_err());
        r.abort().unwrap();
        assert!(r.poll(1_000_000).is_empty());
        assert!(r.resume(0).is_err());
    }

    #[test]
    fn auto_rollback_and_state_round_trips() {
        let mut s = spec();
        s.auto_rollback = true;
        s.max_failure_ratio = 0.0;
        let mut r = Rollout::new("r".into(), s, init(3), 0);
        r.poll(0);
        r.on_event(
            &Event::Reported {
                device: "box-01".into(),
                applied_version: 1,
                refused: Some((Some(2), "no".into())),
            },
            10,
        );
        let a = r.poll(20);
        assert_eq!(r.phase, Phase::RollingBack);
        assert_eq!(devices(&a), ["box-00", "box-01"]);
        let json = serde_json::to_string(&r).unwrap();
        let back: Rollout = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }
}
