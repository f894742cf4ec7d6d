//! Operator side: a client with the `operator` certificate that reads the fleet's retained state, rolls out
//! desired configs and runs commands (request/response with correlation data).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Filter, Packet, PublishProperties};
use rumqttc::v5::{AsyncClient, Event};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::proto::{
    CommandRequest, CommandResult, DesiredDoc, Presence, ReportedDoc, RuntimeConfig, Status,
    Telemetry,
};
use crate::{Error, tls, topics};

/// Everything the operator knows about one device (from retained messages and live updates).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeviceView {
    pub id: String,
    pub status: Option<Status>,
    pub telemetry: Option<Telemetry>,
    pub desired: Option<DesiredDoc>,
    pub reported: Option<ReportedDoc>,
    /// Documents on this device's topics that did not parse (kept for `show`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unparsable: Vec<String>,
}

/// Unparsable documents kept per device (the latest ones).
pub const MAX_UNPARSABLE: usize = 16;
/// Command results kept for requests no one waits for yet (the latest ones).
pub const MAX_UNCLAIMED_RESULTS: usize = 256;

/// Appends `item`, dropping the oldest beyond `cap`.
fn push_bounded<T>(v: &mut Vec<T>, item: T, cap: usize) {
    if cap == 0 {
        v.clear();
        return;
    }
    if v.len() >= cap {
        v.drain(..=v.len() - cap);
    }
    v.push(item);
}

impl DeviceView {
    /// Notes a document on this device's topics that did not parse (the latest [`MAX_UNPARSABLE`] are kept).
    pub fn note_unparsable(&mut self, msg: String) {
        push_bounded(&mut self.unparsable, msg, MAX_UNPARSABLE);
    }

    pub fn online(&self) -> bool {
        self.status
            .as_ref()
            .is_some_and(|s| s.state == Presence::Online)
    }
    /// Latest wall-clock time the device was heard from (heartbeat or telemetry), Unix ms.
    pub fn last_seen_ms(&self) -> Option<u64> {
        let a = self.status.as_ref().and_then(|s| s.ts_ms);
        let b = self.telemetry.as_ref().map(|t| t.ts_ms);
        a.max(b)
    }
    pub fn encoder(&self) -> Option<&str> {
        self.telemetry.as_ref()?.daemon.encoder.as_deref()
    }
    pub fn version(&self) -> Option<&str> {
        self.telemetry
            .as_ref()
            .map(|t| t.agent_version.as_str())
            .or_else(|| self.status.as_ref()?.agent_version.as_deref())
    }
    /// Next desired version for this device: above both what was asked and what is applied.
    pub fn next_version(&self) -> u64 {
        let d = self.desired.as_ref().map_or(0, |d| d.version);
        let r = self.reported.as_ref().map_or(0, |r| r.applied_version);
        // the versions come from the broker (a device's reported document): never wrap
        d.max(r).saturating_add(1)
    }
}

/// `key=value[,key=value...]`; every term must match.  Keys: `id`, `encoder` (in use, or available in the
/// inventory by api or element), `board`, `version`, `slot`, `label.NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector(Vec<(String, String)>);

impl std::str::FromStr for Selector {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let mut terms = Vec::new();
        for t in s.split(',').filter(|t| !t.trim().is_empty()) {
            let (k, v) = t
                .split_once('=')
                .ok_or_else(|| Error::Other(format!("selector term `{t}` is not key=value")))?;
            let k = k.trim();
            let known = ["id", "encoder", "board", "version", "slot"];
            if !known.contains(&k) && !k.starts_with("label.") {
                return Err(Error::Other(format!(
                    "unknown selector key `{k}` (known: {}, label.NAME)",
                    known.join(", ")
                )));
            }
            terms.push((k.to_string(), v.trim().to_string()));
        }
        if terms.is_empty() {
            return Err(Error::Other("empty selector".into()));
        }
        Ok(Selector(terms))
    }
}

impl Selector {
    pub fn matches(&self, d: &DeviceView) -> bool {
        let t = d.telemetry.as_ref();
        self.0.iter().all(|(k, v)| match k.as_str() {
            "id" => &d.id == v,
            "encoder" => t.is_some_and(|t| {
                t.daemon.encoder.as_deref() == Some(v)
                    || t.daemon
                        .encoders
                        .iter()
                        .any(|e| &e.api == v || &e.element == v)
            }),
            "board" => t.and_then(|t| t.daemon.board.as_deref()) == Some(v),
            "version" => d.version() == Some(v),
            "slot" => t.and_then(|t| t.daemon.image_slot.as_deref()) == Some(v),
            l => {
                let name = l.strip_prefix("label.").unwrap_or(l);
                t.and_then(|t| t.labels.get(name)) == Some(v)
            }
        })
    }
}

/// A fleet event seen by the operator (for `watch`).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FleetEvent {
    Status {
        device: String,
        status: Status,
    },
    Telemetry {
        device: String,
        telemetry: Box<Telemetry>,
    },
    Desired {
        device: String,
        desired: DesiredDoc,
    },
    Reported {
        device: String,
        reported: ReportedDoc,
    },
    Unparsable {
        device: String,
        topic: String,
        error: String,
    },
    /// A command result addressed to this operator (also kept for [`Operator::wait_result`]).
    CommandResult {
        device: String,
        result: CommandResult,
    },
}

enum Net {
    Msg {
        topic: String,
        payload: Bytes,
        correlation: Option<Bytes>,
    },
    Connected,
    Error(String),
}

pub struct Operator {
    client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Net>,
    requester: String,
    task: tokio::task::JoinHandle<()>,
    pub devices: BTreeMap<String, DeviceView>,
    /// Command results that arrived before anyone waited for them, by correlation data.
    results: Vec<(Bytes, CommandResult)>,
    subscribed_all: bool,
    /// Response topics subscribed in this connection (cleared on reconnect: the session is clean).
    response_subs: std::collections::BTreeSet<String>,
    /// Requests without a result yet, by correlation data: re-sent after a reconnect (the device answers
    /// a repeated id with its first result, so a result produced while we were away is not lost).
    pending: BTreeMap<Bytes, (String, Vec<u8>, Duration)>,
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Operator {
    /// Connects with the operator certificate; fails if the broker refuses within `timeout`.
    pub async fn connect(
        host: &str,
        port: u16,
        ca: &Path,
        cert: &Path,
        key: &Path,
        timeout: Duration,
    ) -> Result<Operator, Error> {
        let tls = tls::client_config(ca, cert, key)?;
        let requester = format!("op-{}", hex::encode(rand::random::<[u8; 6]>()));
        let mut o =
            crate::device::mqtt_options(&requester, host, port, tls, Duration::from_secs(10));
        o.set_clean_start(true);
        let (client, mut el) = AsyncClient::new(o, 64);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = tx.send(Net::Connected);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send(Net::Msg {
                            topic: String::from_utf8_lossy(&p.topic).into_owned(),
                            payload: p.payload,
                            correlation: p.properties.and_then(|p| p.correlation_data),
                        });
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if tx.send(Net::Error(e.to_string())).is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
        let deadline = Instant::now() + timeout;
        let mut last_err = String::from("no answer");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, rx.recv()).await {
                Ok(Some(Net::Connected)) => break,
                Ok(Some(Net::Error(e))) => last_err = e,
                Ok(Some(Net::Msg { .. })) => {}
                Ok(None) | Err(_) => {
                    task.abort();
                    return Err(Error::Mqtt(format!(
                        "cannot connect to {host}:{port}: {last_err}"
                    )));
                }
            }
        }
        Ok(Operator {
            client,
            rx,
            requester,
            task,
            devices: BTreeMap::new(),
            results: Vec::new(),
            subscribed_all: false,
            response_subs: Default::default(),
            pending: BTreeMap::new(),
        })
    }

    fn handle(
        &mut self,
        topic: &str,
        payload: &[u8],
        correlation: Option<Bytes>,
    ) -> Option<FleetEvent> {
        let (id, kind) = topics::parse(topic)?;
        let id = id.to_string();
        if payload.is_empty() {
            return None; // a cleared retained message
        }
        let view = self
            .devices
            .entry(id.clone())
            .or_insert_with(|| DeviceView {
                id: id.clone(),
                ..Default::default()
            });
        let bad = |view: &mut DeviceView, e: serde_json::Error| {
            let msg = format!("{topic}: {e}");
            view.note_unparsable(msg.clone());
            Some(FleetEvent::Unparsable {
                device: id.clone(),
                topic: topic.to_string(),
                error: msg,
            })
        };
        match kind {
            topics::Kind::Status => match serde_json::from_slice::<Status>(payload) {
                Ok(s) => {
                    view.status = Some(s.clone());
                    Some(FleetEvent::Status {
                        device: id,
                        status: s,
                    })
                }
                Err(e) => bad(view, e),
            },
            topics::Kind::Telemetry => match serde_json::from_slice::<Telemetry>(payload) {
                Ok(t) => {
                    view.telemetry = Some(t.clone());
                    Some(FleetEvent::Telemetry {
                        device: id,
                        telemetry: Box::new(t),
                    })
                }
                Err(e) => bad(view, e),
            },
            topics::Kind::Desired => match serde_json::from_slice::<DesiredDoc>(payload) {
                Ok(d) => {
                    view.desired = Some(d.clone());
                    Some(FleetEvent::Desired {
                        device: id,
                        desired: d,
                    })
                }
                Err(e) => bad(view, e),
            },
            topics::Kind::Reported => match serde_json::from_slice::<ReportedDoc>(payload) {
                Ok(r) => {
                    view.reported = Some(r.clone());
                    Some(FleetEvent::Reported {
                        device: id,
                        reported: r,
                    })
                }
                Err(e) => bad(view, e),
            },
            topics::Kind::CmdResponse => {
                match (
                    correlation,
                    serde_json::from_slice::<CommandResult>(payload),
                ) {
                    (Some(c), Ok(r)) => {
                        // answered: nothing to ask again after a reconnect
                        self.pending.remove(&c);
                        push_bounded(&mut self.results, (c, r.clone()), MAX_UNCLAIMED_RESULTS);
                        Some(FleetEvent::CommandResult {
                            device: id,
                            result: r,
                        })
                    }
                    (None, Ok(r)) => Some(FleetEvent::CommandResult {
                        device: id,
                        result: r,
                    }),
                    (_, Err(e)) => bad(view, e),
                }
            }
            topics::Kind::CmdRequest => None,
        }
    }

    /// Next event, or `None` when `timeout` passes first.
    pub async fn next_event(&mut self, timeout: Duration) -> Result<Option<FleetEvent>, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.rx.recv()).await {
                Err(_) => return Ok(None),
                Ok(None) => return Err(Error::Mqtt("connection task ended".into())),
                Ok(Some(Net::Msg {
                    topic,
                    payload,
                    correlation,
                })) => {
                    if let Some(ev) = self.handle(&topic, &payload, correlation) {
                        return Ok(Some(ev));
                    }
                }
                Ok(Some(Net::Connected)) => {
                    // Reconnected with a clean session: subscriptions are gone, take them again, and
                    // ask again for every result still missing.
                    self.response_subs.clear();
                    if self.subscribed_all {
                        self.subscribe_all().await?;
                    }
                    let pending: Vec<_> = self
                        .pending
                        .iter()
                        .map(|(c, (d, p, e))| (c.clone(), d.clone(), p.clone(), *e))
                        .collect();
                    for (corr, device, payload, expiry) in pending {
                        tracing::info!(%device, "re-sending a command after reconnecting");
                        self.publish_request(&device, payload, expiry, corr).await?;
                    }
                }
                Ok(Some(Net::Error(e))) => {
                    tracing::warn!(error = %e, "operator connection trouble")
                }
            }
        }
    }

    async fn subscribe_all(&mut self) -> Result<(), Error> {
        self.subscribed_all = true;
        let f = [
            topics::ALL_STATUS.to_string(),
            topics::ALL_TELEMETRY.to_string(),
            topics::ALL_REPORTED.to_string(),
            "fleet/+/config/desired".to_string(),
        ]
        .into_iter()
        .map(|t| Filter::new(t, QoS::AtLeastOnce));
        self.client
            .subscribe_many(f)
            .await
            .map_err(|e| Error::Mqtt(e.to_string()))
    }

    /// Subscribes to the whole fleet and reads retained state until nothing new came for `settle`.
    pub async fn snapshot(
        &mut self,
        settle: Duration,
    ) -> Result<&BTreeMap<String, DeviceView>, Error> {
        if !self.subscribed_all {
            self.subscribe_all().await?;
        }
        let hard = Instant::now() + settle * 20;
        while Instant::now() < hard {
            if self.next_event(settle).await?.is_none() {
                break;
            }
        }
        Ok(&self.devices)
    }

    /// Subscribes to the whole fleet (for `watch` and rollouts) without waiting.
    pub async fn follow(&mut self) -> Result<(), Error> {
        if !self.subscribed_all {
            self.subscribe_all().await?;
        }
        Ok(())
    }

    /// Publishes a retained desired document for `device`.
    pub async fn set_desired(&mut self, device: &str, doc: &DesiredDoc) -> Result<(), Error> {
        let payload = serde_json::to_vec(doc).map_err(|e| Error::Other(e.to_string()))?;
        self.set_desired_raw(device, payload).await
    }

    /// Publishes any bytes as the retained desired document (tests use it for malformed input).
    pub async fn set_desired_raw(&mut self, device: &str, payload: Vec<u8>) -> Result<(), Error> {
        if !topics::valid_device_id(device) {
            return Err(Error::Other(format!("`{device}` is not a valid device id")));
        }
        // Only reports that arrive after this publish answer it (see wait_reported).
        if let Some(v) = self.devices.get_mut(device) {
            v.reported = None;
        }
        self.client
            .publish(topics::desired(device), QoS::AtLeastOnce, true, payload)
            .await
            .map_err(|e| Error::Mqtt(e.to_string()))
    }

    /// Waits until `device` reports `version` applied (Ok) or refused (Err with the device's reason), in a
    /// report that arrived after the last [`Operator::set_desired`] to it.
    pub async fn wait_reported(
        &mut self,
        device: &str,
        version: u64,
        timeout: Duration,
    ) -> Result<Result<ReportedDoc, String>, Error> {
        self.follow().await?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = self.devices.get(device).and_then(|d| d.reported.as_ref()) {
                if let Some(e) = r.last_error.as_ref().filter(|e| e.version == Some(version)) {
                    return Ok(Err(e.reason.clone()));
                }
                if r.applied_version == version {
                    return Ok(Ok(r.clone()));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout(format!(
                    "{device} did not report version {version} within {timeout:?}"
                )));
            }
            self.next_event(left).await?;
        }
    }

    /// Sends a command and waits for its correlated result.  `expiry` is the MQTT message expiry: a
    /// device that is offline longer never sees the command.
    pub async fn command(
        &mut self,
        device: &str,
        req: &CommandRequest,
        expiry: Duration,
        timeout: Duration,
    ) -> Result<CommandResult, Error> {
        let payload = serde_json::to_vec(req).map_err(|e| Error::Other(e.to_string()))?;
        self.command_raw(device, payload, expiry, timeout).await
    }

    /// Like [`Operator::command`] with arbitrary bytes as the request (tests send malformed ones).
    pub async fn command_raw(
        &mut self,
        device: &str,
        payload: Vec<u8>,
        expiry: Duration,
        timeout: Duration,
    ) -> Result<CommandResult, Error> {
        let corr = self.send_command_raw(device, payload, expiry).await?;
        self.wait_result(&corr, timeout).await
    }

    /// Sends without waiting; returns the correlation data to pass to [`Operator::wait_result`].
    pub async fn send_command_raw(
        &mut self,
        device: &str,
        payload: Vec<u8>,
        expiry: Duration,
    ) -> Result<Bytes, Error> {
        if !topics::valid_device_id(device) {
            return Err(Error::Other(format!("`{device}` is not a valid device id")));
        }
        let corr = Bytes::from(rand::random::<[u8; 16]>().to_vec());
        self.pending
            .insert(corr.clone(), (device.to_string(), payload.clone(), expiry));
        self.publish_request(device, payload, expiry, corr.clone())
            .await?;
        Ok(corr)
    }

    async fn publish_request(
        &mut self,
        device: &str,
        payload: Vec<u8>,
        expiry: Duration,
        corr: Bytes,
    ) -> Result<(), Error> {
        let resp = topics::cmd_response(device, &self.requester);
        if !self.response_subs.contains(&resp) {
            // The broker handles SUBSCRIBE before the PUBLISH that follows on this connection.
            self.client
                .subscribe(resp.clone(), QoS::AtLeastOnce)
                .await
                .map_err(|e| Error::Mqtt(e.to_string()))?;
            self.response_subs.insert(resp.clone());
        }
        let props = PublishProperties {
            response_topic: Some(resp),
            correlation_data: Some(corr),
            message_expiry_interval: Some(expiry.as_secs().clamp(1, u32::MAX as u64) as u32),
            content_type: Some("application/json".into()),
            ..Default::default()
        };
        self.client
            .publish_with_properties(
                topics::cmd_request(device),
                QoS::AtLeastOnce,
                false,
                payload,
                props,
            )
            .await
            .map_err(|e| Error::Mqtt(e.to_string()))
    }

    pub async fn wait_result(
        &mut self,
        corr: &Bytes,
        timeout: Duration,
    ) -> Result<CommandResult, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.results.iter().position(|(c, _)| c == corr) {
                return Ok(self.results.swap_remove(i).1);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.pending.remove(corr);
                return Err(Error::Timeout(format!(
                    "no command result within {timeout:?}"
                )));
            }
            self.next_event(left).await?;
        }
    }

    pub async fn disconnect(self) {
        let _ = self.client.disconnect().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Builds a desired config: `base`, then `key=value` overrides (value parsed as JSON, else a string).
pub fn merge_config(base: RuntimeConfig, sets: &[String]) -> Result<RuntimeConfig, Error> {
    let mut v = serde_json::to_value(base).map_err(|e| Error::Other(e.to_string()))?;
    let obj = v.as_object_mut().expect("config is an object");
    for s in sets {
        let (k, val) = s
            .split_once('=')
            .ok_or_else(|| Error::Other(format!("`{s}` is not key=value")))?;
        let val =
            serde_json::from_str(val).unwrap_or_else(|_| serde_json::Value::String(val.into()));
        if val.is_null() {
            obj.remove(k);
        } else {
            obj.insert(k.to_string(), val);
        }
    }
    serde_json::from_value(v).map_err(|e| Error::Other(format!("config: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{DaemonSnapshot, EncoderInfo, SystemStats};

    fn view(id: &str, encoder: &str, board: &str) -> DeviceView {
        DeviceView {
            id: id.into(),
            telemetry: Some(Telemetry {
                device: id.into(),
                seq: 1,
                ts_ms: 1,
                agent_version: "0.1.0".into(),
                agent_uptime_s: 1,
                config_version: None,
                labels: [("site".to_string(), "ams".to_string())].into(),
                daemon: DaemonSnapshot {
                    board: Some(board.into()),
                    encoder: Some(encoder.into()),
                    encoders: vec![EncoderInfo {
                        element: "x264enc".into(),
                        api: "x264".into(),
                        codec: "h264".into(),
                        hardware: false,
                        driver: None,
                        max_sessions: None,
                    }],
                    ..Default::default()
                },
                system: SystemStats::default(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn selectors() {
        let a = view("a", "nvenc", "jetson-orin");
        let b = view("b", "vaapi", "nuc");
        let s: Selector = "encoder=nvenc".parse().unwrap();
        assert!(s.matches(&a) && !s.matches(&b));
        let s: Selector = "encoder=x264".parse().unwrap();
        assert!(s.matches(&a) && s.matches(&b), "available in the inventory");
        let s: Selector = "board=nuc,label.site=ams".parse().unwrap();
        assert!(!s.matches(&a) && s.matches(&b));
        assert!("colour=red".parse::<Selector>().is_err());
        assert!("encoder".parse::<Selector>().is_err());
        assert!(
            !"id=a"
                .parse::<Selector>()
                .unwrap()
                .matches(&DeviceView::default())
        );
    }

    #[test]
    fn merge() {
        let c = merge_config(
            RuntimeConfig {
                session_limit: Some(2),
                ..Default::default()
            },
            &["log_level=debug".into(), "session_limit=5".into()],
        )
        .unwrap();
        assert_eq!(c.session_limit, Some(5));
        assert_eq!(c.log_level.as_deref(), Some("debug"));
        assert!(merge_config(RuntimeConfig::default(), &["bogus=1".into()]).is_err());
        let c = merge_config(c, &["session_limit=null".into()]).unwrap();
        assert_eq!(c.session_limit, None);
    }

    #[test]
    fn what_a_device_sends_is_kept_bounded() {
        // a device publishing garbage on its topics must not grow the operator's memory without end
        let mut v = DeviceView::default();
        for i in 0..1000 {
            v.note_unparsable(format!("bad {i}"));
        }
        assert_eq!(v.unparsable.len(), MAX_UNPARSABLE);
        assert_eq!(v.unparsable.last().unwrap(), "bad 999");
        assert_eq!(v.unparsable[0], format!("bad {}", 1000 - MAX_UNPARSABLE));
        let mut r = Vec::new();
        for i in 0..1000 {
            push_bounded(&mut r, i, 3);
        }
        assert_eq!(r, vec![997, 998, 999]);
        push_bounded(&mut r, 0, 0);
        assert!(r.is_empty());
    }

    #[test]
    fn the_next_version_does_not_wrap() {
        let mut v = DeviceView::default();
        assert_eq!(v.next_version(), 1);
        v.reported = Some(ReportedDoc {
            applied_version: u64::MAX,
            applied: RuntimeConfig::default(),
            pending_restart: vec![],
            last_error: None,
            ts_ms: 0,
        });
        assert_eq!(v.next_version(), u64::MAX);
    }
}
