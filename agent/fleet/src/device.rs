//! Device-side driver: runs [`crate::core::Core`] against a real MQTT v5 connection (rumqttc over mutual
//! TLS) and the daemon's [`Hooks`].

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{LastWill, Packet, PublishProperties};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use rumqttc::{TlsConfiguration, Transport};
use tokio::sync::mpsc;

use crate::config::DeviceConfig;
use crate::core::{Action, Core, Inbound, Limits, Outgoing, Persisted};
use crate::proto::{Command, DaemonSnapshot, RuntimeConfig, UpdateRequest, now_ms};
use crate::{Error, sysstat, tls};

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What the fleet side needs from the daemon.  Implemented by `edge-agent` over its shared state
/// (`agent/edge-agent/src/daemon/fleet.rs`) and by the standalone agent of `edge-fleet device`.
pub trait Hooks: Send + Sync + 'static {
    /// What the daemon measures right now (cheap; called about once a second).
    fn snapshot(&self) -> DaemonSnapshot;
    /// Applies the live parts of an already validated config (log level, session limit, profiles,
    /// telemetry interval).  `at_startup` is true once at start with the persisted config, when the
    /// restart-only parts (encoder) may be applied too.  An `Err` leaves the running config as it was.
    fn apply_config(&self, config: &RuntimeConfig, at_startup: bool) -> Result<(), String>;
    /// Changes the log filter (a validated `EnvFilter` directive).
    fn set_log_level(&self, directive: &str) -> Result<(), String>;
    /// Restarts the media pipeline(s); the value goes into the command result.
    fn restart_pipeline(&self) -> BoxFuture<Result<serde_json::Value, String>>;
    /// Daemon state for a diagnostics bundle (kept small; the bundle is bounded anyway).
    fn diagnostics(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    /// Installs an image update and reboots into it once the box is drained; the value goes into the
    /// command result. An agent that does not run on an A/B image refuses.
    fn update(&self, _req: UpdateRequest) -> BoxFuture<Result<serde_json::Value, String>> {
        Box::pin(async { Err("this agent does not run on an updatable image".to_string()) })
    }
    /// The broker connection went up (`true`) or down.
    fn connection(&self, _connected: bool) {}
}

const STATE_FILE: &str = "fleet-state.json";
/// Largest MQTT packet we accept from the broker (matches `max_packet_size` in broker/mosquitto.conf).
pub const MAX_PACKET: u32 = 1024 * 1024;

fn load_state(dir: Option<&Path>) -> Persisted {
    let Some(dir) = dir else {
        return Persisted::default();
    };
    let path = dir.join(STATE_FILE);
    match std::fs::read(&path) {
        Ok(b) => match serde_json::from_slice(&b) {
            Ok(p) => p,
            Err(e) => {
                let aside = dir.join(format!("{STATE_FILE}.corrupt"));
                tracing::error!(path = %path.display(), error = %e, aside = %aside.display(), "fleet state unreadable; moved aside, starting without it");
                let _ = std::fs::rename(&path, &aside);
                Persisted::default()
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Persisted::default(),
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "fleet state unreadable; starting without it");
            Persisted::default()
        }
    }
}

fn save_state(dir: &Path, p: &Persisted) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{STATE_FILE}.tmp"));
    let data = serde_json::to_vec(p).map_err(std::io::Error::other)?;
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&data)?;
        f.sync_all()?;
    }
    std::fs::rename(tmp, dir.join(STATE_FILE))
}

/// Runs blocking work (file I/O) on tokio's blocking threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Other(format!("blocking task: {e}")))
}

/// Writes the persisted state off the async threads (the write ends with an fsync). Saves may overlap;
/// each carries a number and the file only ever goes forward: a save older than the one written is dropped.
#[derive(Default)]
struct Saver {
    next: u64,
    written: Arc<std::sync::Mutex<u64>>,
    last: Option<tokio::task::JoinHandle<()>>,
}

impl Saver {
    fn save(&mut self, dir: PathBuf, p: Persisted) {
        self.next += 1;
        let n = self.next;
        let written = self.written.clone();
        self.last = Some(tokio::task::spawn_blocking(move || {
            let mut w = written.lock().unwrap_or_else(|e| e.into_inner());
            if *w > n {
                return;
            }
            match save_state(&dir, &p) {
                Ok(()) => *w = n,
                Err(e) => {
                    tracing::error!(dir = %dir.display(), error = %e, "saving fleet state failed")
                }
            }
        }));
    }

    /// Waits for the saves started so far.
    async fn flush(&mut self) {
        if let Some(h) = self.last.take() {
            let _ = h.await;
        }
    }
}

enum Net {
    Connected { session_present: bool },
    Disconnected(String),
    Message(Inbound),
}

enum Done {
    Command {
        id: String,
        name: &'static str,
        outcome: Result<serde_json::Value, String>,
    },
}

/// MQTT options for a client with `id` over mutual TLS.
pub(crate) fn mqtt_options(
    id: &str,
    host: &str,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
    keep_alive: Duration,
) -> MqttOptions {
    let mut o = MqttOptions::new(id, host, port);
    o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls)));
    o.set_keep_alive(keep_alive);
    o.set_connection_timeout(5);
    o.set_max_packet_size(Some(MAX_PACKET));
    // Small request/response messages: do not let Nagle + delayed ACK add tens of ms per round trip.
    let mut net = rumqttc::NetworkOptions::new();
    net.set_tcp_nodelay(true);
    o.set_network_options(net);
    o
}

fn props(correlation: Option<bytes::Bytes>) -> Option<PublishProperties> {
    correlation.map(|c| PublishProperties {
        correlation_data: Some(c),
        ..Default::default()
    })
}

/// Runs the device side until `shutdown` resolves.  Errors only for a config or identity that cannot
/// work at all; network trouble is retried forever with backoff and jitter.
pub async fn run<F>(cfg: DeviceConfig, hooks: Arc<dyn Hooks>, shutdown: F) -> Result<(), Error>
where
    F: Future<Output = ()> + Send,
{
    cfg.validate()?;
    // Files are read off the async threads: the daemon's other tasks share them.
    let (id, tls_cfg, persisted) = {
        let cfg = cfg.clone();
        blocking(move || {
            let id = tls::identity_of(&cfg.cert_file)?;
            if !crate::topics::valid_device_id(&id) {
                return Err(Error::Identity(format!(
                    "certificate CN `{id}` is not a valid device id"
                )));
            }
            let tls_cfg = tls::client_config(&cfg.ca_file, &cfg.cert_file, &cfg.key_file)?;
            Ok((id, tls_cfg, load_state(cfg.state_dir.as_deref())))
        })
        .await??
    };
    let started = Instant::now();
    let mut core = Core::new(
        id.clone(),
        env!("CARGO_PKG_VERSION").to_string(),
        cfg.labels.clone(),
        Limits {
            max_payload_bytes: cfg.max_payload_bytes,
            result_cache: cfg.result_cache,
            telemetry_buffer: cfg.telemetry_buffer,
            heartbeat: Duration::from_secs(cfg.heartbeat_s),
            telemetry_interval: Duration::from_secs(cfg.telemetry_interval_s),
        },
        persisted,
    );
    if let Some(c) = core.startup_config() {
        match hooks.apply_config(c, true) {
            Ok(()) => tracing::info!(
                version = core.applied().0,
                "persisted fleet config applied at startup"
            ),
            Err(e) => tracing::error!(error = %e, "persisted fleet config failed at startup"),
        }
    }

    let mut opts = mqtt_options(
        &id,
        &cfg.host,
        cfg.port,
        tls_cfg,
        Duration::from_secs(cfg.keep_alive_s),
    );
    opts.set_clean_start(false);
    opts.set_session_expiry_interval(Some(cfg.session_expiry_s));
    let (will_topic, will_payload) = core.last_will();
    opts.set_last_will(LastWill::new(
        will_topic,
        will_payload,
        QoS::AtLeastOnce,
        true,
        None,
    ));
    let (client, mut eventloop) = AsyncClient::new(opts, 256);

    let stopping = Arc::new(AtomicBool::new(false));
    let (net_tx, mut net_rx) = mpsc::unbounded_channel();
    let net_task = {
        let stopping = stopping.clone();
        let mut backoff = cfg.backoff();
        let id = id.clone();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                        backoff.reset();
                        let _ = net_tx.send(Net::Connected {
                            session_present: ack.session_present,
                        });
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let (response_topic, correlation) = match p.properties {
                            Some(pr) => (pr.response_topic, pr.correlation_data),
                            None => (None, None),
                        };
                        let _ = net_tx.send(Net::Message(Inbound {
                            topic: String::from_utf8_lossy(&p.topic).into_owned(),
                            payload: p.payload,
                            response_topic,
                            correlation,
                        }));
                    }
                    Ok(Event::Incoming(Packet::PubAck(a)))
                        if a.reason != rumqttc::v5::mqttbytes::v5::PubAckReason::Success
                            && a.reason
                                != rumqttc::v5::mqttbytes::v5::PubAckReason::NoMatchingSubscribers =>
                    {
                        tracing::error!(device = %id, reason = ?a.reason, "broker refused a publish");
                    }
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) if stopping.load(Ordering::SeqCst) => {
                        break;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if stopping.load(Ordering::SeqCst) {
                            break;
                        }
                        let _ = net_tx.send(Net::Disconnected(e.to_string()));
                        let d = backoff.next_delay(rand::random::<f64>());
                        tracing::debug!(delay_ms = d.as_millis() as u64, "reconnecting after backoff");
                        tokio::time::sleep(d).await;
                    }
                }
            }
        })
    };

    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let mut sampler = Some(sysstat::Sampler::default());
    let mut saver = Saver::default();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let exec = Arc::new(Exec {
        hooks: hooks.clone(),
        cfg: cfg.clone(),
        device: id.clone(),
    });
    let mut shutdown = std::pin::pin!(shutdown);
    let mut queue: std::collections::VecDeque<Action> = Default::default();
    let mut failures: u64 = 0;

    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(ev) = net_rx.recv() => match ev {
                Net::Connected { session_present } => {
                    tracing::info!(device = %id, session_present, "connected to fleet broker");
                    hooks.connection(true);
                    queue.extend(core.connected_event(Instant::now(), now_ms()));
                }
                Net::Disconnected(e) => {
                    if core.connected() {
                        failures = 0;
                        tracing::warn!(device = %id, error = %e, "fleet broker connection lost");
                    } else {
                        failures += 1;
                        // Say it at the first failure and then at 10, 100, 1000... (a refused
                        // certificate must be visible without flooding the journal).
                        if is_power_of_ten(failures) {
                            tracing::warn!(device = %id, error = %e, failures, "fleet broker unreachable; retrying with backoff");
                        } else {
                            tracing::debug!(device = %id, error = %e, "fleet broker unreachable");
                        }
                    }
                    hooks.connection(false);
                    core.disconnected_event();
                }
                Net::Message(m) => queue.extend(core.message(now_ms(), m)),
            },
            Some(d) = done_rx.recv() => match d {
                Done::Command { id: cid, name, outcome } => {
                    queue.extend(core.command_done(now_ms(), &cid, name, outcome));
                }
            },
            _ = tick.tick() => {
                let now = Instant::now();
                if let Some(a) = core.poll_heartbeat(now, now_ms()) {
                    queue.push_back(a);
                }
                let snap = hooks.snapshot();
                if core.telemetry_due(now, &snap) {
                    // /proc and /sys reads, off the async threads
                    let mut s = sampler.take().unwrap_or_default();
                    let (s, sys) = blocking(move || {
                        let sys = s.sample();
                        (s, sys)
                    })
                    .await?;
                    sampler = Some(s);
                    queue.extend(core.telemetry_sample(now, now_ms(), started.elapsed(), snap, sys));
                }
            }
        }
        while let Some(a) = queue.pop_front() {
            match a {
                Action::Publish(o) => publish(&client, o),
                Action::Subscribe(topics) => {
                    let subs = topics
                        .into_iter()
                        .map(|t| rumqttc::v5::mqttbytes::v5::Filter::new(t, QoS::AtLeastOnce));
                    if let Err(e) = client.try_subscribe_many(subs) {
                        tracing::error!(error = %e, "subscribe request not queued");
                    }
                }
                Action::ApplyConfig { version, config } => {
                    let r = hooks.apply_config(&config, false);
                    queue.extend(core.config_applied(now_ms(), version, config, r));
                }
                Action::RunCommand { id: cid, command } => {
                    let exec = exec.clone();
                    let tx = done_tx.clone();
                    let applied = core.applied().1.clone();
                    tokio::spawn(async move {
                        let name = command_name(&command);
                        tracing::info!(id = %cid, name, "running fleet command");
                        let outcome = exec.run(command, applied).await;
                        let _ = tx.send(Done::Command {
                            id: cid,
                            name,
                            outcome,
                        });
                    });
                }
                Action::Persist => {
                    if let Some(dir) = &cfg.state_dir {
                        saver.save(dir.clone(), core.persisted());
                    }
                }
            }
        }
    }

    // Clean shutdown: say offline ourselves (a clean DISCONNECT suppresses the Last Will).
    tracing::info!(device = %id, "fleet shutting down");
    saver.flush().await;
    if core.connected() {
        publish(&client, core.offline_publish(now_ms()));
        stopping.store(true, Ordering::SeqCst);
        let _ = client.try_disconnect();
        // Bounded: a dead broker must not hold the daemon's shutdown (the Last Will then says offline).
        if tokio::time::timeout(Duration::from_secs(5), net_task)
            .await
            .is_err()
        {
            tracing::warn!(device = %id, "offline status not confirmed sent within 5 s");
        }
    } else {
        stopping.store(true, Ordering::SeqCst);
        net_task.abort();
    }
    Ok(())
}

fn is_power_of_ten(mut n: u64) -> bool {
    if n == 0 {
        return false;
    }
    while n % 10 == 0 {
        n /= 10;
    }
    n == 1
}

fn publish(client: &AsyncClient, o: Outgoing) {
    let r = match props(o.correlation) {
        Some(p) => {
            client.try_publish_with_properties(o.topic, QoS::AtLeastOnce, o.retain, o.payload, p)
        }
        None => client.try_publish(o.topic, QoS::AtLeastOnce, o.retain, o.payload),
    };
    if let Err(e) = r {
        tracing::error!(error = %e, "publish not queued (client channel full)");
    }
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Ping => "ping",
        Command::RestartPipeline => "restart_pipeline",
        Command::SetLogLevel { .. } => "set_log_level",
        Command::CollectDiagnostics { .. } => "collect_diagnostics",
        Command::Reboot => "reboot",
        Command::Update(_) => "update",
    }
}

struct Exec {
    hooks: Arc<dyn Hooks>,
    cfg: DeviceConfig,
    device: String,
}

impl Exec {
    async fn run(&self, c: Command, applied: RuntimeConfig) -> Result<serde_json::Value, String> {
        match c {
            Command::Ping => Ok(serde_json::json!({ "pong": true, "device_ts_ms": now_ms() })),
            Command::SetLogLevel { level } => {
                self.hooks.set_log_level(&level)?;
                Ok(serde_json::json!({ "log_level": level }))
            }
            Command::RestartPipeline => self.hooks.restart_pipeline().await,
            Command::Reboot => self.reboot().await,
            Command::Update(req) => self.hooks.update(req).await,
            Command::CollectDiagnostics { max_bytes } => {
                let max = max_bytes
                    .unwrap_or(self.cfg.diagnostics_max_bytes)
                    .min(self.cfg.diagnostics_max_bytes);
                Ok(self.diagnostics(max, applied).await)
            }
        }
    }

    async fn reboot(&self) -> Result<serde_json::Value, String> {
        let argv = &self.cfg.reboot_command;
        tracing::warn!(?argv, "reboot requested by the fleet operator");
        let out = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::process::Command::new(&argv[0])
                .args(&argv[1..])
                .kill_on_drop(true)
                .output(),
        )
        .await
        .map_err(|_| format!("`{}` did not finish within 30 s", argv.join(" ")))?
        .map_err(|e| format!("running `{}`: {e}", argv.join(" ")))?;
        if out.status.success() {
            Ok(serde_json::json!({ "reboot": "requested", "command": argv }))
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            Err(format!(
                "`{}` failed ({}): {}",
                argv.join(" "),
                out.status,
                tail_str(err.trim(), 512)
            ))
        }
    }

    async fn diagnostics(&self, max: usize, applied: RuntimeConfig) -> serde_json::Value {
        let (kernel, system) = blocking(|| {
            let kernel = std::fs::read_to_string("/proc/version")
                .ok()
                .map(|s| s.trim().to_string());
            (kernel, sysstat::Sampler::default().sample())
        })
        .await
        .unwrap_or_default();
        let mut b = serde_json::json!({
            "device": self.device,
            "agent_version": env!("CARGO_PKG_VERSION"),
            "ts_ms": now_ms(),
            "kernel": kernel,
            "system": system,
            "daemon": self.hooks.snapshot(),
            "daemon_state": self.hooks.diagnostics(),
            "applied_config": applied,
        });
        let (source, log) = self.log_tail().await;
        let used = serde_json::to_vec(&b).map(|v| v.len()).unwrap_or(max);
        // JSON escaping can grow text; budget conservatively.
        let budget = max.saturating_sub(used + 128) / 2;
        let obj = b.as_object_mut().expect("object");
        if used > max {
            obj.remove("daemon_state");
            obj.insert("truncated".into(), true.into());
        }
        if let Some(log) = log {
            let t = tail_str(&log, budget);
            obj.insert("log_source".into(), source.into());
            obj.insert("log_truncated".into(), (t.len() < log.len()).into());
            obj.insert("log_tail".into(), t.into());
        }
        obj.insert("max_bytes".into(), max.into());
        b
    }

    async fn log_tail(&self) -> (String, Option<String>) {
        if let Some(f) = &self.cfg.log_file {
            let path = f.clone();
            let tail = blocking(move || read_tail(&path, 1 << 20).ok())
                .await
                .ok()
                .flatten();
            return (f.display().to_string(), tail);
        }
        let out = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::process::Command::new("journalctl")
                .args([
                    "-u",
                    "edge-agent",
                    "-n",
                    "500",
                    "--no-pager",
                    "-o",
                    "short-iso",
                ])
                .kill_on_drop(true)
                .output(),
        )
        .await;
        match out {
            Ok(Ok(o)) if o.status.success() => (
                "journalctl -u edge-agent".into(),
                Some(String::from_utf8_lossy(&o.stdout).into_owned()),
            ),
            _ => ("none".into(), None),
        }
    }
}

fn read_tail(path: &PathBuf, max: u64) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(max)))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The last `max` bytes of `s`, cut at a char boundary.
fn tail_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut i = s.len() - max;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

#[cfg(test)]
mod tests {
    #[test]
    fn powers_of_ten() {
        let p: Vec<u64> = (0..=1000).filter(|n| super::is_power_of_ten(*n)).collect();
        assert_eq!(p, vec![1, 10, 100, 1000]);
    }
}
