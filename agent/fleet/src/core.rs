//! The device's protocol logic as a sans-IO state machine: it is fed connection events, inbound messages,
//! finished work and the current time, and answers with [`Action`]s for the driver ([`crate::device`]) to
//! carry out.  No sockets, no clocks, no tasks in here, so every rule is unit-testable.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::proto::{
    Command, CommandRequest, CommandResult, ConfigError, DaemonSnapshot, DesiredDoc, Presence,
    ReportedDoc, RuntimeConfig, Status, SystemStats, Telemetry,
};
use crate::topics;

/// Exponential reconnect backoff with jitter: attempt n waits a uniformly random time in [d/2, d] with
/// d = min(max, min * 2^n).
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max: max.max(min),
            attempt: 0,
        }
    }
    /// Next delay; `unit` is a random number in [0, 1).
    pub fn next_delay(&mut self, unit: f64) -> Duration {
        let exp = self.min.saturating_mul(1u32 << self.attempt.min(20));
        let d = exp.min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        d.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
    }
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// An MQTT publish the driver must send.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
    pub correlation: Option<Bytes>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Publish(Outgoing),
    Subscribe(Vec<String>),
    /// Apply `config` through the hooks, then call [`Core::config_applied`].
    ApplyConfig {
        version: u64,
        config: RuntimeConfig,
    },
    /// Run the command, then call [`Core::command_done`] with the same id.
    RunCommand {
        id: String,
        command: Command,
    },
    /// The persistent part ([`Core::persisted`]) changed; save it.
    Persist,
}

/// An inbound MQTT publish.
#[derive(Debug, Clone, Default)]
pub struct Inbound {
    pub topic: String,
    pub payload: Bytes,
    pub response_topic: Option<String>,
    pub correlation: Option<Bytes>,
}

/// What survives a restart (state_dir/fleet-state.json).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Persisted {
    pub applied_version: u64,
    pub applied: RuntimeConfig,
    #[serde(default)]
    pub results: Vec<CommandResult>,
}

#[derive(Debug, Clone)]
struct Reply {
    topic: String,
    correlation: Option<Bytes>,
}

/// Commands that may run at once; more are answered "busy" (each runs as its own task).
pub const MAX_IN_FLIGHT: usize = 32;
/// Repeats of a running command's id that wait for its result; more are answered at once.
pub const MAX_WAITING_REPLIES: usize = 16;

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_payload_bytes: usize,
    pub result_cache: usize,
    pub telemetry_buffer: usize,
    pub heartbeat: Duration,
    pub telemetry_interval: Duration,
}

pub struct Core {
    id: String,
    agent_version: String,
    labels: BTreeMap<String, String>,
    limits: Limits,
    connected: bool,
    since_ms: u64,
    applied_version: u64,
    applied: RuntimeConfig,
    /// The config in force when this process started (restart-only fields come from it).
    boot: RuntimeConfig,
    last_error: Option<ConfigError>,
    /// Desired version being applied right now (between ApplyConfig and config_applied).
    applying: Option<u64>,
    results: VecDeque<CommandResult>,
    in_flight: BTreeMap<String, Vec<Reply>>,
    buffered: VecDeque<Telemetry>,
    dropped_telemetry: u64,
    seq: u64,
    next_heartbeat: Option<Instant>,
    next_telemetry: Option<Instant>,
    last_change_key: Option<String>,
}

impl Core {
    pub fn new(
        id: String,
        agent_version: String,
        labels: BTreeMap<String, String>,
        limits: Limits,
        persisted: Persisted,
    ) -> Self {
        let mut results: VecDeque<CommandResult> = persisted.results.into();
        while results.len() > limits.result_cache {
            results.pop_front();
        }
        Core {
            id,
            agent_version,
            labels,
            limits,
            connected: false,
            since_ms: 0,
            applied_version: persisted.applied_version,
            boot: persisted.applied.clone(),
            applied: persisted.applied,
            last_error: None,
            applying: None,
            results,
            in_flight: BTreeMap::new(),
            buffered: VecDeque::new(),
            dropped_telemetry: 0,
            seq: 0,
            next_heartbeat: None,
            next_telemetry: None,
            last_change_key: None,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn connected(&self) -> bool {
        self.connected
    }
    pub fn applied(&self) -> (u64, &RuntimeConfig) {
        (self.applied_version, &self.applied)
    }
    pub fn buffered_telemetry(&self) -> usize {
        self.buffered.len()
    }
    pub fn dropped_telemetry(&self) -> u64 {
        self.dropped_telemetry
    }

    pub fn persisted(&self) -> Persisted {
        Persisted {
            applied_version: self.applied_version,
            applied: self.applied.clone(),
            results: self.results.iter().cloned().collect(),
        }
    }

    /// The config to apply once at startup (restart-only fields included), if one was persisted.
    pub fn startup_config(&self) -> Option<&RuntimeConfig> {
        (self.applied_version > 0).then_some(&self.applied)
    }

    fn telemetry_interval(&self) -> Duration {
        self.applied
            .telemetry_interval_s
            .map(|s| Duration::from_secs(s.into()))
            .unwrap_or(self.limits.telemetry_interval)
    }

    fn status_publish(&self, now_ms: u64) -> Action {
        let s = Status {
            state: Presence::Online,
            ts_ms: Some(now_ms),
            agent_version: Some(self.agent_version.clone()),
            since_ms: Some(self.since_ms),
        };
        Action::Publish(Outgoing {
            topic: topics::status(&self.id),
            payload: serde_json::to_vec(&s).expect("status serializes"),
            retain: true,
            correlation: None,
        })
    }

    /// The Last Will registered at connect time.
    pub fn last_will(&self) -> (String, Vec<u8>) {
        let s = Status {
            state: Presence::Offline,
            ts_ms: None,
            agent_version: None,
            since_ms: None,
        };
        (
            topics::status(&self.id),
            serde_json::to_vec(&s).expect("status serializes"),
        )
    }

    /// Published on a clean shutdown instead of waiting for the broker to fire the Last Will.
    pub fn offline_publish(&self, now_ms: u64) -> Outgoing {
        let s = Status {
            state: Presence::Offline,
            ts_ms: Some(now_ms),
            agent_version: Some(self.agent_version.clone()),
            since_ms: None,
        };
        Outgoing {
            topic: topics::status(&self.id),
            payload: serde_json::to_vec(&s).expect("status serializes"),
            retain: true,
            correlation: None,
        }
    }

    fn reported_publish(&self, now_ms: u64) -> Action {
        let doc = ReportedDoc {
            applied_version: self.applied_version,
            applied: self.applied.clone(),
            pending_restart: self.applied.restart_fields_changed(&self.boot),
            last_error: self.last_error.clone(),
            ts_ms: now_ms,
        };
        Action::Publish(Outgoing {
            topic: topics::reported(&self.id),
            payload: serde_json::to_vec(&doc).expect("reported serializes"),
            retain: true,
            correlation: None,
        })
    }

    fn telemetry_publish(&self, t: &Telemetry) -> Action {
        Action::Publish(Outgoing {
            topic: topics::telemetry(&self.id),
            payload: serde_json::to_vec(t).expect("telemetry serializes"),
            retain: true,
            correlation: None,
        })
    }

    /// The broker accepted our connection (CONNACK success).
    pub fn connected_event(&mut self, now: Instant, now_ms: u64) -> Vec<Action> {
        self.connected = true;
        self.since_ms = now_ms;
        let mut out = vec![
            Action::Subscribe(vec![
                topics::desired(&self.id),
                topics::cmd_request(&self.id),
            ]),
            self.status_publish(now_ms),
            self.reported_publish(now_ms),
        ];
        // Flush what was measured while offline, oldest first (the retained copy ends as the newest).
        while let Some(t) = self.buffered.pop_front() {
            out.push(self.telemetry_publish(&t));
        }
        self.next_heartbeat = Some(now + self.limits.heartbeat);
        // Fresh telemetry right after (re)connecting.
        self.next_telemetry = Some(now);
        out
    }

    pub fn disconnected_event(&mut self) {
        self.connected = false;
    }

    /// Heartbeat due?  Returns the status publish and schedules the next one.
    pub fn poll_heartbeat(&mut self, now: Instant, now_ms: u64) -> Option<Action> {
        match self.next_heartbeat {
            Some(t) if self.connected && now >= t => {
                self.next_heartbeat = Some(now + self.limits.heartbeat);
                Some(self.status_publish(now_ms))
            }
            _ => None,
        }
    }

    /// Should a telemetry sample be taken now?  Periodic, or early when the daemon's state changed
    /// (encoder, streams, sessions, session limit, board, inventory size).
    pub fn telemetry_due(&self, now: Instant, snap: &DaemonSnapshot) -> bool {
        let periodic = self.next_telemetry.is_none_or(|t| now >= t);
        periodic || self.last_change_key.as_deref() != Some(change_key(snap).as_str())
    }

    /// Records a sample: published when connected, else buffered (bounded, oldest dropped).
    pub fn telemetry_sample(
        &mut self,
        now: Instant,
        now_ms: u64,
        agent_uptime: Duration,
        snap: DaemonSnapshot,
        system: SystemStats,
    ) -> Vec<Action> {
        self.last_change_key = Some(change_key(&snap));
        self.next_telemetry = Some(now + self.telemetry_interval());
        self.seq += 1;
        let t = Telemetry {
            device: self.id.clone(),
            seq: self.seq,
            ts_ms: now_ms,
            agent_version: self.agent_version.clone(),
            agent_uptime_s: agent_uptime.as_secs(),
            config_version: (self.applied_version > 0).then_some(self.applied_version),
            labels: self.labels.clone(),
            daemon: snap,
            system,
        };
        if self.connected {
            vec![self.telemetry_publish(&t)]
        } else {
            if self.buffered.len() >= self.limits.telemetry_buffer {
                self.buffered.pop_front();
                self.dropped_telemetry += 1;
            }
            if self.limits.telemetry_buffer > 0 {
                self.buffered.push_back(t);
            }
            vec![]
        }
    }

    /// An inbound publish on one of our topics.
    pub fn message(&mut self, now_ms: u64, m: Inbound) -> Vec<Action> {
        if m.topic == topics::desired(&self.id) {
            self.desired(now_ms, &m.payload)
        } else if m.topic == topics::cmd_request(&self.id) {
            self.command(now_ms, m)
        } else {
            tracing::warn!(topic = %m.topic, "message on an unexpected topic ignored");
            vec![]
        }
    }

    fn refuse_config(&mut self, now_ms: u64, version: Option<u64>, reason: String) -> Vec<Action> {
        tracing::warn!(?version, %reason, "desired config refused; running config unchanged");
        self.last_error = Some(ConfigError { version, reason });
        vec![self.reported_publish(now_ms)]
    }

    fn desired(&mut self, now_ms: u64, payload: &[u8]) -> Vec<Action> {
        if payload.is_empty() {
            // The operator cleared the retained desired document: nothing to do.
            return vec![];
        }
        if payload.len() > self.limits.max_payload_bytes {
            return self.refuse_config(
                now_ms,
                None,
                format!(
                    "desired document of {} bytes exceeds the limit of {} bytes",
                    payload.len(),
                    self.limits.max_payload_bytes
                ),
            );
        }
        let doc: DesiredDoc = match serde_json::from_slice(payload) {
            Ok(d) => d,
            Err(e) => {
                let version = serde_json::from_slice::<serde_json::Value>(payload)
                    .ok()
                    .and_then(|v| v.get("version").and_then(|v| v.as_u64()));
                return self.refuse_config(
                    now_ms,
                    version,
                    format!("invalid desired document: {e}"),
                );
            }
        };
        if doc.version == 0 {
            return self.refuse_config(now_ms, Some(0), "version must be >= 1".into());
        }
        if Some(doc.version) == self.applying {
            return vec![];
        }
        if doc.version == self.applied_version {
            if doc.config != self.applied {
                return self.refuse_config(
                    now_ms,
                    Some(doc.version),
                    format!(
                        "stale version {}: already applied with a different config (use a higher version)",
                        doc.version
                    ),
                );
            }
            // Redelivery of the retained document (reconnect, restart, operator retry): already in
            // force; report again so a waiting operator gets an answer.
            if self
                .last_error
                .as_ref()
                .is_some_and(|e| e.version == Some(doc.version))
            {
                self.last_error = None;
            }
            return vec![self.reported_publish(now_ms)];
        }
        if doc.version < self.applied_version {
            return self.refuse_config(
                now_ms,
                Some(doc.version),
                format!(
                    "stale version {} (applied version is {})",
                    doc.version, self.applied_version
                ),
            );
        }
        if let Err(e) = crate::validate::runtime_config(&doc.config) {
            return self.refuse_config(now_ms, Some(doc.version), e);
        }
        self.applying = Some(doc.version);
        vec![Action::ApplyConfig {
            version: doc.version,
            config: doc.config,
        }]
    }

    /// The hooks finished applying `version`.
    pub fn config_applied(
        &mut self,
        now_ms: u64,
        version: u64,
        config: RuntimeConfig,
        result: Result<(), String>,
    ) -> Vec<Action> {
        if self.applying == Some(version) {
            self.applying = None;
        }
        match result {
            Ok(()) => {
                tracing::info!(version, "desired config applied");
                self.applied_version = version;
                self.applied = config;
                self.last_error = None;
                vec![self.reported_publish(now_ms), Action::Persist]
            }
            Err(e) => self.refuse_config(now_ms, Some(version), format!("apply failed: {e}")),
        }
    }

    fn reply_to(&self, m: &Inbound) -> Reply {
        let prefix = topics::cmd_response_prefix(&self.id);
        let topic = match &m.response_topic {
            Some(t)
                if t.starts_with(&prefix)
                    && t.len() > prefix.len()
                    && !t.contains(['+', '#', '\0']) =>
            {
                t.clone()
            }
            _ => topics::cmd_response_default(&self.id),
        };
        Reply {
            topic,
            correlation: m.correlation.clone(),
        }
    }

    fn respond(&self, reply: &Reply, r: &CommandResult) -> Action {
        Action::Publish(Outgoing {
            topic: reply.topic.clone(),
            payload: serde_json::to_vec(r).expect("result serializes"),
            retain: false,
            correlation: reply.correlation.clone(),
        })
    }

    fn error_result(
        now_ms: u64,
        id: Option<String>,
        name: Option<String>,
        error: String,
    ) -> CommandResult {
        CommandResult {
            id,
            name,
            ok: false,
            result: None,
            error: Some(error),
            ts_ms: now_ms,
            duplicate: false,
        }
    }

    fn command(&mut self, now_ms: u64, m: Inbound) -> Vec<Action> {
        let reply = self.reply_to(&m);
        if m.response_topic.as_deref() != Some(reply.topic.as_str()) {
            tracing::warn!(response_topic = ?m.response_topic, "command without a usable response topic; answering on the default topic");
        }
        if m.payload.len() > self.limits.max_payload_bytes {
            let r = Self::error_result(
                now_ms,
                None,
                None,
                format!(
                    "payload of {} bytes exceeds the limit of {} bytes",
                    m.payload.len(),
                    self.limits.max_payload_bytes
                ),
            );
            return vec![self.respond(&reply, &r)];
        }
        let req: CommandRequest = match serde_json::from_slice(&m.payload) {
            Ok(r) => r,
            Err(e) => {
                let id = serde_json::from_slice::<serde_json::Value>(&m.payload)
                    .ok()
                    .and_then(|v| v.get("id").and_then(|v| v.as_str()).map(str::to_string));
                let r = Self::error_result(now_ms, id, None, format!("invalid command: {e}"));
                return vec![self.respond(&reply, &r)];
            }
        };
        if req.id.is_empty() || req.id.len() > 128 {
            let r = Self::error_result(
                now_ms,
                None,
                Some(req.name),
                "command id must be 1..=128 bytes".into(),
            );
            return vec![self.respond(&reply, &r)];
        }
        if let Some(first) = self
            .results
            .iter()
            .find(|r| r.id.as_deref() == Some(&req.id))
        {
            let mut r = first.clone();
            r.duplicate = true;
            return vec![self.respond(&reply, &r)];
        }
        if let Some(waiting) = self.in_flight.get_mut(&req.id) {
            // Same id while the first run is still going: answer both with the one result (a bounded
            // number of repeats; beyond that the repeat is told to ask again later).
            if waiting.len() < MAX_WAITING_REPLIES {
                waiting.push(reply);
                return vec![];
            }
            let r = Self::error_result(
                now_ms,
                Some(req.id),
                Some(req.name),
                format!(
                    "already answering {MAX_WAITING_REPLIES} requests with this id; ask again when it finished"
                ),
            );
            return vec![self.respond(&reply, &r)];
        }
        match Command::parse(&req.name, &req.args) {
            Ok(_) if self.in_flight.len() >= MAX_IN_FLIGHT => {
                // not remembered: the same id may be asked again once a command finished
                let r = Self::error_result(
                    now_ms,
                    Some(req.id),
                    Some(req.name),
                    format!("busy: {MAX_IN_FLIGHT} commands running; ask again later"),
                );
                vec![self.respond(&reply, &r)]
            }
            Ok(command) => {
                self.in_flight.insert(req.id.clone(), vec![reply]);
                vec![Action::RunCommand {
                    id: req.id,
                    command,
                }]
            }
            Err(e) => {
                // Refusals are results too: a repeat of this id gets the same answer.
                let r = Self::error_result(now_ms, Some(req.id), Some(req.name), e);
                self.remember(r.clone());
                vec![self.respond(&reply, &r), Action::Persist]
            }
        }
    }

    fn remember(&mut self, r: CommandResult) {
        if self.limits.result_cache == 0 {
            return;
        }
        while self.results.len() >= self.limits.result_cache {
            self.results.pop_front();
        }
        self.results.push_back(r);
    }

    /// A command started by [`Action::RunCommand`] finished.
    pub fn command_done(
        &mut self,
        now_ms: u64,
        id: &str,
        name: &str,
        outcome: Result<serde_json::Value, String>,
    ) -> Vec<Action> {
        let (ok, result, error) = match outcome {
            Ok(v) => (true, Some(v), None),
            Err(e) => (false, None, Some(e)),
        };
        let r = CommandResult {
            id: Some(id.to_string()),
            name: Some(name.to_string()),
            ok,
            result,
            error,
            ts_ms: now_ms,
            duplicate: false,
        };
        let waiting = self.in_flight.remove(id).unwrap_or_default();
        let mut out = Vec::new();
        for (i, w) in waiting.iter().enumerate() {
            let mut r = r.clone();
            r.duplicate = i > 0;
            out.push(self.respond(w, &r));
        }
        self.remember(r);
        out.push(Action::Persist);
        out
    }
}

fn change_key(s: &DaemonSnapshot) -> String {
    format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{}",
        s.encoder,
        s.streams,
        s.sessions,
        s.session_limit,
        s.board,
        s.encoders.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core() -> Core {
        Core::new(
            "box-1".into(),
            "0.1.0".into(),
            BTreeMap::new(),
            Limits {
                max_payload_bytes: 1024,
                result_cache: 2,
                telemetry_buffer: 3,
                heartbeat: Duration::from_secs(10),
                telemetry_interval: Duration::from_secs(30),
            },
            Persisted::default(),
        )
    }

    fn desired(c: &mut Core, json: &str) -> Vec<Action> {
        c.message(
            1,
            Inbound {
                topic: topics::desired("box-1"),
                payload: Bytes::from(json.to_string()),
                ..Default::default()
            },
        )
    }

    fn cmd(c: &mut Core, json: &str) -> Vec<Action> {
        c.message(
            1,
            Inbound {
                topic: topics::cmd_request("box-1"),
                payload: Bytes::from(json.to_string()),
                response_topic: Some(topics::cmd_response("box-1", "op")),
                correlation: Some(Bytes::from_static(b"c1")),
            },
        )
    }

    #[test]
    fn running_commands_and_their_repeats_are_bounded() {
        // a flood of repeats of a running command's id must not pile up replies without end
        let mut c = core();
        let mut runs = 0;
        let mut answered_at_once = 0;
        for _ in 0..1000 {
            for a in cmd(&mut c, r#"{"id":"a","name":"ping"}"#) {
                match a {
                    Action::RunCommand { .. } => runs += 1,
                    Action::Publish(_) => answered_at_once += 1,
                    _ => {}
                }
            }
        }
        assert_eq!(runs, 1);
        assert_eq!(answered_at_once, 1000 - MAX_WAITING_REPLIES);
        let done = c.command_done(2, "a", "ping", Ok(serde_json::json!("pong")));
        let publishes = done
            .iter()
            .filter(|a| matches!(a, Action::Publish(_)))
            .count();
        assert_eq!(publishes, MAX_WAITING_REPLIES);
        // nor may a flood of distinct ids start commands without end
        let mut runs = 0;
        for i in 0..100 {
            let out = cmd(&mut c, &format!(r#"{{"id":"b{i}","name":"ping"}}"#));
            runs += out
                .iter()
                .filter(|a| matches!(a, Action::RunCommand { .. }))
                .count();
            if i >= MAX_IN_FLIGHT {
                assert!(result(&out).error.unwrap().contains("busy"));
            }
        }
        assert_eq!(runs, MAX_IN_FLIGHT);
        // a busy answer is not remembered: once one finished, the id runs
        c.command_done(3, "b0", "ping", Ok(serde_json::json!("pong")));
        let out = cmd(&mut c, r#"{"id":"b99","name":"ping"}"#);
        assert!(matches!(out[0], Action::RunCommand { .. }));
    }

    fn last_error(a: &[Action]) -> Option<ConfigError> {
        a.iter().find_map(|a| match a {
            Action::Publish(o) if o.topic.ends_with("/config/reported") => {
                serde_json::from_slice::<ReportedDoc>(&o.payload)
                    .unwrap()
                    .last_error
            }
            _ => None,
        })
    }

    fn result(a: &[Action]) -> CommandResult {
        a.iter()
            .find_map(|a| match a {
                Action::Publish(o) if o.topic.contains("/cmd/res/") => {
                    assert_eq!(o.correlation.as_deref(), Some(&b"c1"[..]));
                    Some(serde_json::from_slice(&o.payload).unwrap())
                }
                _ => None,
            })
            .expect("a command response")
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        assert_eq!(b.next_delay(1.0), Duration::from_millis(100));
        assert_eq!(b.next_delay(0.0), Duration::from_millis(100));
        assert_eq!(b.next_delay(1.0), Duration::from_millis(400));
        for _ in 0..40 {
            let d = b.next_delay(0.5);
            assert!(d <= Duration::from_millis(1000) && d >= Duration::from_millis(500));
        }
        b.reset();
        assert!(b.next_delay(0.9) <= Duration::from_millis(100));
    }

    #[test]
    fn config_versions_stale_invalid_and_redelivery() {
        let mut c = core();
        let a = desired(&mut c, r#"{"version":3,"config":{"session_limit":4}}"#);
        let Action::ApplyConfig { version, config } = &a[0] else {
            panic!("{a:?}")
        };
        assert_eq!(*version, 3);
        let a = c.config_applied(2, 3, config.clone(), Ok(()));
        assert!(a.contains(&Action::Persist));
        assert_eq!(c.applied().0, 3);
        // retained redelivery: re-reported, no error
        let a = desired(&mut c, r#"{"version":3,"config":{"session_limit":4}}"#);
        assert_eq!(a.len(), 1);
        assert!(last_error(&a).is_none());
        // same version, other content: refused
        let e = last_error(&desired(
            &mut c,
            r#"{"version":3,"config":{"session_limit":5}}"#,
        ))
        .unwrap();
        assert!(e.reason.contains("different config"), "{e:?}");
        // stale
        let e = last_error(&desired(&mut c, r#"{"version":2,"config":{}}"#)).unwrap();
        assert!(e.reason.contains("stale"), "{e:?}");
        // invalid value, unknown key, bad JSON: refused, running config untouched
        let e = last_error(&desired(
            &mut c,
            r#"{"version":4,"config":{"session_limit":0}}"#,
        ))
        .unwrap();
        assert_eq!(e.version, Some(4));
        let e = last_error(&desired(
            &mut c,
            r#"{"version":5,"config":{"sesion_limit":2}}"#,
        ))
        .unwrap();
        assert!(e.reason.contains("unknown field"), "{e:?}");
        assert_eq!(e.version, Some(5));
        assert!(last_error(&desired(&mut c, "{nope")).is_some());
        let big = format!(
            r#"{{"version":9,"config":{{"log_level":"{}"}}}}"#,
            "a".repeat(2000)
        );
        assert!(
            last_error(&desired(&mut c, &big))
                .unwrap()
                .reason
                .contains("exceeds")
        );
        assert_eq!(c.applied().0, 3);
        assert_eq!(c.applied().1.session_limit, Some(4));
        // a failing apply also leaves it
        let a = desired(&mut c, r#"{"version":6,"config":{"encoder":"nvenc"}}"#);
        assert!(matches!(a[0], Action::ApplyConfig { version: 6, .. }));
        c.config_applied(
            3,
            6,
            RuntimeConfig::default(),
            Err("no such encoder".into()),
        );
        assert_eq!(c.applied().0, 3);
    }

    #[test]
    fn commands_idempotent_and_errors_answered() {
        let mut c = core();
        let a = cmd(&mut c, r#"{"id":"a","name":"ping"}"#);
        assert!(matches!(&a[0], Action::RunCommand { id, command: Command::Ping } if id == "a"));
        // repeat while running: no second run
        assert!(cmd(&mut c, r#"{"id":"a","name":"ping"}"#).is_empty());
        let a = c.command_done(5, "a", "ping", Ok(serde_json::json!("pong")));
        let rs: Vec<_> = a
            .iter()
            .filter_map(|a| match a {
                Action::Publish(o) => {
                    Some(serde_json::from_slice::<CommandResult>(&o.payload).unwrap())
                }
                _ => None,
            })
            .collect();
        assert_eq!(rs.len(), 2);
        assert!(!rs[0].duplicate && rs[1].duplicate);
        let r = result(&cmd(&mut c, r#"{"id":"a","name":"reboot"}"#));
        assert!(r.duplicate && r.ok && r.ts_ms == 5 && r.name.as_deref() == Some("ping"));
        let r = result(&cmd(&mut c, r#"{"id":"b","name":"fly"}"#));
        assert!(!r.ok && r.error.unwrap().contains("unknown command"));
        let r = result(&cmd(&mut c, "[1,2"));
        assert!(!r.ok && r.id.is_none());
        let r = result(&cmd(&mut c, &"x".repeat(5000)));
        assert!(r.error.unwrap().contains("exceeds"));
        let r = result(&cmd(
            &mut c,
            r#"{"id":"c","name":"set_log_level","args":{"level":"[[["}}"#,
        ));
        assert!(!r.ok);
        // cache bound 2: "a" evicted by "b" and "c"
        assert!(matches!(
            &cmd(&mut c, r#"{"id":"a","name":"ping"}"#)[0],
            Action::RunCommand { .. }
        ));
    }

    #[test]
    fn foreign_response_topic_is_replaced() {
        let mut c = core();
        let a = c.message(
            1,
            Inbound {
                topic: topics::cmd_request("box-1"),
                payload: Bytes::from_static(br#"{"id":"x","name":"nope"}"#),
                response_topic: Some("fleet/box-2/cmd/res/op".into()),
                correlation: None,
            },
        );
        let Action::Publish(o) = &a[0] else { panic!() };
        assert_eq!(o.topic, topics::cmd_response_default("box-1"));
    }

    #[test]
    fn telemetry_buffered_within_bound_then_flushed() {
        let mut c = core();
        let t0 = Instant::now();
        for i in 0..5 {
            assert!(
                c.telemetry_sample(
                    t0,
                    i,
                    Duration::ZERO,
                    DaemonSnapshot::default(),
                    SystemStats::default()
                )
                .is_empty()
            );
        }
        assert_eq!(c.buffered_telemetry(), 3);
        assert_eq!(c.dropped_telemetry(), 2);
        let a = c.connected_event(t0, 10);
        let seqs: Vec<u64> = a
            .iter()
            .filter_map(|a| match a {
                Action::Publish(o) if o.topic.ends_with("/telemetry") => {
                    Some(serde_json::from_slice::<Telemetry>(&o.payload).unwrap().seq)
                }
                _ => None,
            })
            .collect();
        assert_eq!(seqs, vec![3, 4, 5]);
        assert!(c.telemetry_due(t0, &DaemonSnapshot::default()));
        c.telemetry_sample(
            t0,
            11,
            Duration::ZERO,
            DaemonSnapshot::default(),
            SystemStats::default(),
        );
        assert!(!c.telemetry_due(t0 + Duration::from_secs(1), &DaemonSnapshot::default()));
        let changed = DaemonSnapshot {
            streams: Some(1),
            ..Default::default()
        };
        assert!(c.telemetry_due(t0 + Duration::from_secs(1), &changed));
        assert!(c.telemetry_due(t0 + Duration::from_secs(30), &DaemonSnapshot::default()));
    }
}
