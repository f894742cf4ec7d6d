//! A staged rollout as a sans-IO state machine: wall-clock `now_ms` and events in (a device reported a
//! version, refused one, went offline, answered a command, reported its image), actions out (publish this
//! desired document to that device, send it this command).  No clock, no broker, no files: the driver
//! (`console::driver`) feeds it and carries out its actions; the unit tests (`tests.rs`) drive it with fake
//! time.
//!
//! A rollout carries one of two changes:
//! * a **desired config**, published as each box's desired document; a box has it when it reports the
//!   new version applied;
//! * an **image**, sent as the `update` command (download, verify, install into the inactive slot, reboot
//!   once drained); a box has it when it runs the new version and its health gate kept it.  A box is
//!   expected to go offline while it reboots: for an image the report timeout alone decides that it is
//!   lost, so give image rollouts minutes.  A refused command, a failed install or a slot rolled back by
//!   the box's health gate fail the box.  Rollback installs `rollback_image` (the version the fleet runs
//!   now); a box already back on it (as after a failed health gate) is rolled back without a command.
//!
//! Waves: a canary of `canary` boxes, then boxes up to each cumulative percentage of `waves`, then all.
//! A wave starts by publishing the new config to its boxes; it passes once every box that has not failed
//! reports the new version and the wave then stays healthy for `soak_s`.  A box fails when it refuses the
//! config, is or goes offline, or does not report within `report_timeout_s`.  When the failed share of a
//! wave exceeds `max_failure_ratio` the rollout halts by itself; rollback re-publishes every reached box's
//! previous desired config (under a newer version, as versions only grow).

use serde::{Deserialize, Serialize};

use crate::proto::{
    CommandRequest, CommandResult, DesiredDoc, RuntimeConfig, UpdateRequest, UpdateState,
    UpdateStatus,
};

/// What the operator asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutSpec {
    /// Selector (`board=…,encoder=…,label.site=…`) the targets were chosen by.
    pub selector: String,
    /// The desired config every target gets (a config rollout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<RuntimeConfig>,
    /// The signed image bundle every target installs (an image rollout, through the `update` command).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<UpdateRequest>,
    /// The bundle an image rollout's rollback installs: the version the targets run before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_image: Option<UpdateRequest>,
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
        match (&self.config, &self.image) {
            (Some(c), None) => {
                crate::validate::runtime_config(c)?;
                if self.rollback_image.is_some() {
                    return Err("rollback_image belongs to an image rollout".into());
                }
            }
            (None, Some(i)) => {
                i.validate()?;
                if let Some(r) = &self.rollback_image {
                    r.validate()?;
                    if r.version == i.version {
                        return Err("rollback_image has the new image's version".into());
                    }
                } else if self.auto_rollback {
                    return Err("auto_rollback of an image rollout needs rollback_image".into());
                }
            }
            (Some(_), Some(_)) => {
                return Err("a rollout carries a config or an image, not both".into());
            }
            (None, None) => return Err("a rollout needs a config or an image".into()),
        }
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
    /// The image version the box last reported running (image rollouts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_version: Option<String>,
    /// When the box's last reported update status was reached (its `ts_ms`).
    #[serde(default)]
    pub update_ts_ms: u64,
    /// `update_ts_ms` when the rollout's last command went out: only a newer update status speaks of it.
    #[serde(default)]
    pub update_ts_at_send_ms: u64,
    /// What the box answered to the rollout's last command (its result, or its error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<serde_json::Value>,
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
    /// The image version the box reports running.
    pub image_version: Option<String>,
    /// `ts_ms` of the box's last reported update status.
    pub update_ts_ms: u64,
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
    /// Telemetry's image facts: the version running, and the last update's state.
    Image {
        device: String,
        version: Option<String>,
        update: Option<UpdateStatus>,
    },
    /// A command result addressed to the console.
    Answer {
        device: String,
        result: CommandResult,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Publish {
        device: String,
        doc: DesiredDoc,
    },
    /// Send a command; a box offline longer than `expiry_s` never gets it.
    Command {
        device: String,
        request: CommandRequest,
        expiry_s: u64,
    },
}

impl Action {
    pub fn device(&self) -> &str {
        match self {
            Action::Publish { device, .. } | Action::Command { device, .. } => device,
        }
    }
}

/// What the box says of an image version, from its telemetry.
#[derive(Debug, PartialEq)]
enum ImageFact {
    /// It runs the version and no health gate is pending on it.
    Running,
    /// Its update to the version failed or was rolled back, after the rollout's command went out.
    Failed(String),
    Unknown,
}

fn image_fact(t: &Target, update: Option<&UpdateStatus>, version: &str) -> ImageFact {
    if let Some(u) = update.filter(|u| u.version == version && u.ts_ms > t.update_ts_at_send_ms) {
        let why = |what: &str| {
            let detail = u.detail.as_deref().unwrap_or("no detail");
            ImageFact::Failed(format!("update to {version} {what}: {detail}"))
        };
        match u.state {
            UpdateState::Failed => return why("failed"),
            UpdateState::RolledBack => return why("rolled back"),
            _ => {}
        }
    }
    let gate_pending = update.is_some_and(|u| {
        u.version == version && matches!(u.state, UpdateState::Installed | UpdateState::Booted)
    });
    if t.image_version.as_deref() == Some(version) && !gate_pending {
        ImageFact::Running
    } else {
        ImageFact::Unknown
    }
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
                image_version: t.image_version,
                update_ts_ms: t.update_ts_ms,
                update_ts_at_send_ms: 0,
                answer: None,
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
        let image = self.spec.image.as_ref().map(|i| i.version.as_str());
        let rollback_image = self
            .spec
            .rollback_image
            .as_ref()
            .map(|i| i.version.as_str());
        let device = match ev {
            Event::Reported { device, .. }
            | Event::Presence { device, .. }
            | Event::Image { device, .. }
            | Event::Answer { device, .. } => device,
        };
        let Some(t) = self.targets.iter_mut().find(|t| &t.device == device) else {
            return;
        };
        match ev {
            Event::Image {
                version, update, ..
            } => {
                t.image_version = version.clone();
                if let Some(u) = update {
                    t.update_ts_ms = t.update_ts_ms.max(u.ts_ms);
                }
                match (t.state.clone(), image, rollback_image) {
                    (TargetState::Sent { .. }, Some(v), _) => {
                        match image_fact(t, update.as_ref(), v) {
                            ImageFact::Running => t.state = TargetState::Applied { at_ms: now_ms },
                            ImageFact::Failed(reason) => {
                                t.state = TargetState::Failed {
                                    at_ms: now_ms,
                                    reason,
                                }
                            }
                            ImageFact::Unknown => {}
                        }
                    }
                    (TargetState::RollingBack { version, .. }, Some(_), Some(v)) => {
                        match image_fact(t, update.as_ref(), v) {
                            ImageFact::Running => {
                                t.state = TargetState::RolledBack {
                                    version,
                                    at_ms: now_ms,
                                }
                            }
                            ImageFact::Failed(reason) => {
                                t.state = TargetState::RollbackFailed { version, reason }
                            }
                            ImageFact::Unknown => {}
                        }
                    }
                    _ => {}
                }
            }
            Event::Answer { result, .. } => {
                let rolling_back = matches!(t.state, TargetState::RollingBack { .. });
                let expected = command_id(&self.id, &t.device, rolling_back);
                if result.id.as_deref() != Some(expected.as_str()) {
                    return;
                }
                t.answer = Some(if result.ok {
                    result.result.clone().unwrap_or(serde_json::Value::Null)
                } else {
                    serde_json::json!({ "error": result.error })
                });
                if result.ok {
                    return;
                }
                let error = result
                    .error
                    .clone()
                    .unwrap_or_else(|| "no reason given".into());
                match t.state {
                    TargetState::Sent { .. } => {
                        t.state = TargetState::Failed {
                            at_ms: now_ms,
                            reason: format!("refused the update: {error}"),
                        }
                    }
                    TargetState::RollingBack { version, .. } => {
                        t.state = TargetState::RollbackFailed {
                            version,
                            reason: format!("refused the rollback update: {error}"),
                        }
                    }
                    _ => {}
                }
            }
            Event::Presence { online, .. } => {
                t.online = *online;
                // an image's box reboots into it: offline is expected until it reports
                let in_play = match t.state {
                    TargetState::Sent { .. } => image.is_none(),
                    TargetState::Applied { .. } => true,
                    _ => false,
                };
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
                if image.is_some() {
                    return; // config reports say nothing of an image
                }
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
                let timeout = self.spec.report_timeout_s.saturating_mul(1000);
                for t in &mut self.targets {
                    if let TargetState::RollingBack { version, at_ms } = t.state {
                        if now_ms.saturating_sub(at_ms) >= timeout {
                            t.state = TargetState::RollbackFailed {
                                version,
                                reason: format!(
                                    "did not report the rollback within {} s",
                                    self.spec.report_timeout_s
                                ),
                            };
                        }
                    }
                }
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
        let id = self.id.clone();
        for t in self.targets.iter_mut().filter(|t| t.wave == wave) {
            match t.state {
                TargetState::Waiting => {
                    match (&self.spec.image, &self.spec.config) {
                        (Some(img), _) => {
                            if image_fact(t, None, &img.version) == ImageFact::Running {
                                t.state = TargetState::Applied { at_ms: now_ms };
                                continue;
                            }
                            out.push(update_action(&id, t, img, false, timeout));
                        }
                        (None, Some(config)) => out.push(Action::Publish {
                            device: t.device.clone(),
                            doc: DesiredDoc {
                                version: t.version,
                                config: config.clone(),
                            },
                        }),
                        (None, None) => {
                            t.state = TargetState::Failed {
                                at_ms: now_ms,
                                reason: "the rollout names neither a config nor an image".into(),
                            };
                            continue;
                        }
                    }
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
                    let what = match &self.spec.image {
                        Some(img) => format!("image {}", img.version),
                        None => format!("version {}", t.version),
                    };
                    t.state = TargetState::Failed {
                        at_ms: now_ms,
                        reason: format!(
                            "did not report {what} within {} s",
                            self.spec.report_timeout_s
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
        let timeout = self.spec.report_timeout_s.saturating_mul(1000);
        for t in &mut self.targets {
            if matches!(t.state, TargetState::Waiting) {
                continue;
            }
            if self.spec.image.is_some() {
                // versions of images are names, not numbers: the state's number stays 0
                let Some(img) = &self.spec.rollback_image else {
                    continue; // refused before getting here (check, request_rollback)
                };
                t.state = if image_fact(t, None, &img.version) == ImageFact::Running {
                    TargetState::RolledBack {
                        version: 0,
                        at_ms: now_ms,
                    }
                } else {
                    out.push(update_action(&self.id, t, img, true, timeout));
                    TargetState::RollingBack {
                        version: 0,
                        at_ms: now_ms,
                    }
                };
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
        if self.spec.image.is_some() && self.spec.rollback_image.is_none() {
            return Err(
                "this image rollout names no rollback_image: start a rollout of the old image instead"
                    .into(),
            );
        }
        match self.phase {
            Phase::Running | Phase::Paused | Phase::Halted | Phase::Aborted | Phase::Completed => {
                Ok(self.rollback(now_ms))
            }
            p => Err(format!("cannot roll back a rollout that is {}", p.as_str())),
        }
    }
}

/// The id of the rollout's command to one box: the device answers a repeated id with its first result, so a
/// step repeated after a console restart installs nothing twice.
pub fn command_id(rollout: &str, device: &str, rollback: bool) -> String {
    let what = if rollback { "rollback" } else { "update" };
    format!("rollout-{rollout}-{what}-{device}")
}

fn update_action(
    rollout: &str,
    t: &mut Target,
    img: &UpdateRequest,
    rollback: bool,
    expiry_ms: u64,
) -> Action {
    t.update_ts_at_send_ms = t.update_ts_ms;
    t.answer = None;
    Action::Command {
        device: t.device.clone(),
        request: CommandRequest {
            id: command_id(rollout, &t.device, rollback),
            name: "update".into(),
            args: serde_json::to_value(img).unwrap_or_default(),
        },
        expiry_s: expiry_ms.div_ceil(1000).max(1),
    }
}

#[cfg(test)]
mod tests;
