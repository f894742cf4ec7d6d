//! Shared helpers for the fleet integration tests: a test implementation of the daemon side
//! ([`TestHooks`], which records what the fleet layer asked of it) and waiting helpers.

#![allow(dead_code)]

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fleet::device::{BoxFuture, Hooks};
use fleet::operator::Operator;
use fleet::proto::{DaemonSnapshot, EncoderInfo, RuntimeConfig};
use fleet::testkit::Broker;

/// Daemon side for in-process devices: reports a fixed inventory with `encoder` in use, applies configs
/// into its own state (refusing session limits above its hardware limit, like the real daemon), counts
/// pipeline restarts.
pub struct TestHooks {
    pub encoder: String,
    pub hw_session_limit: u32,
    pub applied: Mutex<Vec<RuntimeConfig>>,
    pub running: Mutex<RuntimeConfig>,
    pub log_level: Mutex<String>,
    pub restarts: Mutex<u32>,
    /// How long `restart_pipeline` takes (ms).
    pub restart_delay_ms: std::sync::atomic::AtomicU64,
}

impl TestHooks {
    pub fn new(encoder: &str) -> Arc<TestHooks> {
        Arc::new(TestHooks {
            encoder: encoder.into(),
            hw_session_limit: 8,
            applied: Mutex::new(vec![]),
            running: Mutex::new(RuntimeConfig::default()),
            log_level: Mutex::new("info".into()),
            restarts: Mutex::new(0),
            restart_delay_ms: Default::default(),
        })
    }
}

impl Hooks for TestHooks {
    fn snapshot(&self) -> DaemonSnapshot {
        DaemonSnapshot {
            board: Some("test-board".into()),
            encoders: vec![EncoderInfo {
                element: format!("{}h264enc", self.encoder),
                api: self.encoder.clone(),
                codec: "h264".into(),
                hardware: self.encoder != "x264",
                driver: None,
                max_sessions: Some(self.hw_session_limit),
            }],
            encoder: Some(self.encoder.clone()),
            streams: Some(0),
            session_limit: self.running.lock().unwrap().session_limit,
            ..Default::default()
        }
    }

    fn apply_config(&self, config: &RuntimeConfig, _at_startup: bool) -> Result<(), String> {
        if let Some(n) = config.session_limit {
            if n > self.hw_session_limit {
                return Err(format!(
                    "session_limit {n} above the hardware limit {}",
                    self.hw_session_limit
                ));
            }
        }
        if let Some(l) = &config.log_level {
            *self.log_level.lock().unwrap() = l.clone();
        }
        self.applied.lock().unwrap().push(config.clone());
        *self.running.lock().unwrap() = config.clone();
        Ok(())
    }

    fn set_log_level(&self, directive: &str) -> Result<(), String> {
        *self.log_level.lock().unwrap() = directive.into();
        Ok(())
    }

    fn restart_pipeline(&self) -> BoxFuture<Result<serde_json::Value, String>> {
        let n = {
            let mut r = self.restarts.lock().unwrap();
            *r += 1;
            *r
        };
        let delay = self
            .restart_delay_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            Ok(serde_json::json!({ "restarted": n }))
        })
    }

    fn diagnostics(&self) -> serde_json::Value {
        serde_json::json!({ "running": *self.running.lock().unwrap() })
    }
}

/// A device running in this process; dropped = stopped (cleanly).
pub struct Device {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), fleet::Error>>>,
}

impl Device {
    pub fn start(cfg: fleet::DeviceConfig, hooks: Arc<TestHooks>) -> Device {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(fleet::device::run(cfg, hooks, async move {
            let _ = rx.await;
        }));
        Device {
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("device task").expect("device run");
        }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

pub fn pki(dir: &Path, devices: &[&str]) {
    fleet::testkit::make_pki(dir, devices).expect("pki");
}

pub async fn operator(b: &Broker) -> Operator {
    let (ca, cert, key) = b.operator_files();
    Operator::connect(
        "127.0.0.1",
        b.port,
        &ca,
        &cert,
        &key,
        Duration::from_secs(5),
    )
    .await
    .expect("operator connects")
}

/// Polls the operator's view until `f` returns Some, or panics after `timeout`.
pub async fn wait_for<T>(
    op: &mut Operator,
    timeout: Duration,
    what: &str,
    mut f: impl FnMut(&Operator) -> Option<T>,
) -> T {
    op.follow().await.expect("subscribe");
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f(op) {
            return v;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "timed out after {timeout:?} waiting for {what}"
        );
        op.next_event(left.min(Duration::from_millis(200)))
            .await
            .expect("operator events");
    }
}
