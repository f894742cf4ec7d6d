//! Test harness: a real mosquitto on 127.0.0.1 and a free port, with a fresh fleet PKI.  Used by this
//! crate's integration tests and by `agent/edge-agent/tests/fleet_*.rs`.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::pki::{self, Role};

pub const MOSQUITTO_CONF_TEMPLATE: &str = include_str!("../broker/mosquitto.conf.in");
pub const ACL: &str = include_str!("../broker/acl");

/// Renders the broker config template.
pub fn render_conf(
    port: u16,
    bind: &str,
    pki: &Path,
    state: &Path,
    acl: &Path,
    user: &str,
) -> String {
    MOSQUITTO_CONF_TEMPLATE
        .replace("@USER@", user)
        .replace("@PORT@", &port.to_string())
        .replace("@BIND@", bind)
        .replace("@PKI@", &pki.display().to_string())
        .replace("@STATE@", &state.display().to_string())
        .replace("@ACL@", &acl.display().to_string())
}

pub fn mosquitto_bin() -> PathBuf {
    for p in ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    "mosquitto".into()
}

/// CA, broker (127.0.0.1), operator and the given device certificates in `dir`.
pub fn make_pki(dir: &Path, devices: &[&str]) -> Result<(), crate::Error> {
    pki::create_ca(dir, "test fleet CA")?;
    pki::issue(dir, Role::Broker, "127.0.0.1")?;
    // the broker file name is the SAN; give it the fixed name the config expects
    std::fs::rename(dir.join("127.0.0.1.pem"), dir.join("broker.pem"))
        .and_then(|_| std::fs::rename(dir.join("127.0.0.1.key"), dir.join("broker.key")))
        .map_err(|e| crate::Error::Other(e.to_string()))?;
    pki::issue(dir, Role::Operator, "")?;
    for d in devices {
        pki::issue(dir, Role::Device, d)?;
    }
    Ok(())
}

/// Tests run the broker as whoever runs them (root in CI), so it can read the test PKI in a private dir.
fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running mosquitto.  Killed on drop.
pub struct Broker {
    pub port: u16,
    pub pki: PathBuf,
    dir: PathBuf,
    child: Option<Child>,
}

impl Broker {
    /// Starts mosquitto with the repo's config on a free port; `dir` holds config, state and log.
    pub fn start(pki: &Path, dir: &Path) -> Broker {
        let mut b = Broker {
            port: free_port(),
            pki: pki.to_path_buf(),
            dir: dir.to_path_buf(),
            child: None,
        };
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        let state = self.dir.join("state");
        std::fs::create_dir_all(&state).expect("state dir");
        let acl = self.dir.join("acl");
        std::fs::write(&acl, ACL).expect("acl");
        let conf = self.dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            render_conf(
                self.port,
                "127.0.0.1",
                &self.pki,
                &state,
                &acl,
                &current_user(),
            ),
        )
        .expect("conf");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("mosquitto.log"))
            .expect("log");
        let child = Command::new(mosquitto_bin())
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("mosquitto runs (apt install mosquitto)");
        self.child = Some(child);
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "mosquitto did not listen on {}: {}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops with SIGTERM (mosquitto saves its persistence file), then starts again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Starts again after [`Broker::stop`], on the same port with the same state.
    pub fn start_again(&mut self) {
        if self.child.is_none() {
            self.spawn();
        }
    }

    /// SIGTERM and wait.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }

    /// A device config for `device` (its cert/key from the PKI dir) pointing at this broker.
    pub fn device_config(&self, device: &str) -> crate::DeviceConfig {
        let mut c = crate::DeviceConfig::new(
            "127.0.0.1",
            self.port,
            self.pki.join("ca.pem"),
            self.pki.join(format!("{device}.pem")),
            self.pki.join(format!("{device}.key")),
        );
        c.heartbeat_s = 1;
        c.telemetry_interval_s = 2;
        c.keep_alive_s = 5;
        c.reconnect_min_ms = 100;
        c.reconnect_max_ms = 1000;
        c.reboot_command = vec!["true".into()];
        c
    }

    pub fn operator_files(&self) -> (PathBuf, PathBuf, PathBuf) {
        (
            self.pki.join("ca.pem"),
            self.pki.join("operator.pem"),
            self.pki.join("operator.key"),
        )
    }

    /// `edge-fleet serve` (`bin`) against this broker with the `cert` certificate, on a free port, logging
    /// at `log` to `dir/serve.log` (appended: a console restarted in a test keeps one log), with its
    /// password file `dir/passwords` and its state in `dir/console-state`. Returns the process and the URL
    /// it listens on.
    pub fn console(&self, bin: &Path, dir: &Path, cert: &str, log: &str) -> (Child, String) {
        use std::io::BufRead;
        let mut child = Command::new(bin)
            .args(["--log", log, "serve", "--broker"])
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--ca")
            .arg(self.pki.join("ca.pem"))
            .arg("--cert")
            .arg(self.pki.join(format!("{cert}.pem")))
            .arg("--key")
            .arg(self.pki.join(format!("{cert}.key")))
            .args(["--listen", "127.0.0.1:0", "--passwords"])
            .arg(dir.join("passwords"))
            .arg("--state-dir")
            .arg(dir.join("console-state"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join("serve.log"))
                    .expect("serve.log"),
            )
            .spawn()
            .expect("edge-fleet serve");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("serve's first line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("serve said `{line}`"))
            .to_string();
        (child, url)
    }

    /// The broker's process id while it runs (for CPU figures).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A bare MQTT v5 client with the operator's certificate, no fleet layer: the benchmarks' baseline.
    pub fn operator_mqtt(&self, id: &str) -> (rumqttc::v5::AsyncClient, rumqttc::v5::EventLoop) {
        use rumqttc::v5::MqttOptions;
        use rumqttc::{TlsConfiguration, Transport};
        let (ca, cert, key) = self.operator_files();
        let tls = crate::tls::client_config(&ca, &cert, &key).expect("operator TLS files");
        let mut o = MqttOptions::new(id, "127.0.0.1", self.port);
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls)));
        o.set_keep_alive(Duration::from_secs(10));
        let mut net = rumqttc::NetworkOptions::new();
        net.set_tcp_nodelay(true);
        o.set_network_options(net);
        rumqttc::v5::AsyncClient::new(o, 64)
    }
}

/// Writes the console's password file `file` with one operator, through `edge-fleet passwd` (`bin`; the
/// password goes on stdin).
pub fn console_passwords(bin: &Path, file: &Path, user: &str, password: &str) {
    use std::io::Write;
    let mut c = Command::new(bin)
        .args(["passwd", "--file"])
        .arg(file)
        .arg(user)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("edge-fleet passwd");
    writeln!(c.stdin.take().expect("piped"), "{password}").expect("password on stdin");
    assert!(c.wait().expect("edge-fleet passwd").success());
}

/// A box with nothing behind it (benchmarks): telemetry without a daemon, every config accepted, no
/// pipeline to restart.
pub struct IdleHooks;

impl crate::device::Hooks for IdleHooks {
    fn snapshot(&self) -> crate::proto::DaemonSnapshot {
        crate::proto::DaemonSnapshot::default()
    }
    fn apply_config(&self, _: &crate::proto::RuntimeConfig, _: bool) -> Result<(), String> {
        Ok(())
    }
    fn set_log_level(&self, _: &str) -> Result<(), String> {
        Ok(())
    }
    fn restart_pipeline(&self) -> crate::device::BoxFuture<Result<serde_json::Value, String>> {
        Box::pin(async { Err("no pipeline".into()) })
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
