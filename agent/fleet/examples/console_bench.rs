//! Benchmark (run by scripts/bench.d/console.sh): `edge-fleet serve` with N boxes (default 1,000) publishing
//! telemetry every 10 s over a real mosquitto with mutual TLS. The boxes are the real device driver
//! (`fleet::device::run` with idle hooks), N of them in this process; one more box is a separate
//! `edge-fleet device` process, killed with SIGKILL for the offline figures. Prints JSON lines:
//! - `console_all_online`: from the console's start to every box listed online with telemetry;
//! - `console_steady`: the console's CPU seconds and memory over a WINDOW_S steady window, against
//!   mosquitto's CPU in the same window (it delivers the same telemetry: the baseline), as a ratio;
//! - `console_page_first_load`: headless Chromium (tests/browser/console.mjs) from the navigation to all
//!   N + 1 boxes listed online in the page's table;
//! - `console_offline_delay`: from the SIGKILL to a bare MQTT subscriber getting the box's Last Will (the
//!   baseline), to `/metrics` showing it offline, to the page showing it offline; each as a ratio to the
//!   baseline.
//!
//! `cargo run --release -p fleet --example console_bench -- [N] [WINDOW_S]` (with the `edge-fleet` binary of
//! the same build beside it: the console and the killed box)

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleet::proto::{Presence, Status, now_ms};
use fleet::testkit::{Broker, IdleHooks, make_pki};
use rumqttc::v5::Event;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::Packet;

const USER: &str = "bench";
const PASSWORD: &str = "bench password";
const TELEMETRY_S: u64 = 10;

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// (CPU seconds so far, RSS bytes, peak RSS bytes) of a process, from /proc.
fn usage(pid: u32) -> (f64, u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // fields after the command name (which may hold spaces) start at ") "
    let rest: Vec<&str> = stat
        .rsplit_once(") ")
        .map_or(vec![], |(_, r)| r.split(' ').collect());
    let ticks = |i: usize| {
        rest.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let cpu = (ticks(11) + ticks(12)) / 100.0; // utime + stime, USER_HZ = 100
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (cpu, kb("VmRSS:"), kb("VmHWM:"))
}

/// The box killed for the offline figures: `edge-fleet device`, a process of its own.
fn victim(bin: &Path, b: &Broker, dir: &Path) -> Proc {
    let mut c = b.device_config("victim");
    c.telemetry_interval_s = TELEMETRY_S;
    c.heartbeat_s = 30;
    #[derive(serde::Serialize)]
    struct F {
        fleet: fleet::DeviceConfig,
    }
    let file = dir.join("victim.toml");
    std::fs::write(&file, toml::to_string(&F { fleet: c }).unwrap()).unwrap();
    Proc(
        Command::new(bin)
            .args(["--log", "warn", "device", "--config"])
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("edge-fleet device"),
    )
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn get(url: &str) -> Option<String> {
    let r = http()
        .get(url)
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .ok()?;
    r.status().is_success().then_some(())?;
    r.text().await.ok()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(1000) as usize;
    let window = Duration::from_secs(args.get(1).copied().unwrap_or(60));
    let bin = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("edge-fleet"))
        .filter(|p| p.exists())
        .expect("the edge-fleet binary beside the example (cargo build --release -p fleet)");
    let dir = std::env::temp_dir().join(format!("console-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let names: Vec<String> = (1..=n).map(|i| format!("box-{i:04}")).collect();
    let mut all: Vec<&str> = names.iter().map(String::as_str).collect();
    all.push("victim");
    let t = Instant::now();
    make_pki(&dir.join("pki"), &all).unwrap();
    eprintln!("{} device certificates in {:?}", all.len(), t.elapsed());
    let b = Broker::start(&dir.join("pki"), &dir.join("broker"));
    fleet::testkit::console_passwords(&bin, &dir.join("passwords"), USER, PASSWORD);

    // the baseline subscriber, before anything happens: it sees the victim's retained status, then its Will
    let (raw, mut raw_el) = b.operator_mqtt("bench-raw");
    raw.subscribe(fleet::topics::status("victim"), QoS::AtLeastOnce)
        .await
        .unwrap();
    let (will_tx, will_rx) = tokio::sync::oneshot::channel::<u64>();
    tokio::spawn(async move {
        let mut tx = Some(will_tx);
        while let Ok(ev) = raw_el.poll().await {
            if let Event::Incoming(Packet::Publish(p)) = ev
                && serde_json::from_slice::<Status>(&p.payload)
                    .is_ok_and(|s| s.state == Presence::Offline)
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(now_ms());
            }
        }
    });

    let (console, url) = b.console(&bin, &dir, "operator", "warn");
    let console = Proc(console);
    let console_pid = console.0.id();
    let started = Instant::now();
    for (i, id) in names.iter().enumerate() {
        let mut c = b.device_config(id);
        c.telemetry_interval_s = TELEMETRY_S;
        c.heartbeat_s = 30;
        c.labels.insert("site".into(), format!("site-{}", i % 10));
        tokio::spawn(fleet::device::run(
            c,
            Arc::new(IdleHooks),
            std::future::pending(),
        ));
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let mut victim = victim(&bin, &b, &dir);
    let online = loop {
        let rows: Vec<serde_json::Value> = get(&format!("{url}/api/devices"))
            .await
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let ready = rows
            .iter()
            .filter(|r| r["online"] == true && !r["telemetry_ts_ms"].is_null())
            .count();
        if ready == n + 1 {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "only {ready} of {} boxes online after 10 minutes",
            n + 1
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!(
        "{}",
        serde_json::json!({"bench": "console_all_online", "boxes": n + 1, "seconds": (online.as_secs_f64() * 10.0).round() / 10.0})
    );

    // steady state: every box's telemetry every 10 s, heartbeats every 30 s
    tokio::time::sleep(Duration::from_secs(5)).await;
    let broker_pid = b.pid().unwrap();
    let (c0, _, _) = usage(console_pid);
    let (m0, _, _) = usage(broker_pid);
    tokio::time::sleep(window).await;
    let (c1, rss, peak) = usage(console_pid);
    let (m1, _, _) = usage(broker_pid);
    let messages = (n as f64 + 1.0) * window.as_secs_f64() / TELEMETRY_S as f64;
    println!(
        "{}",
        serde_json::json!({
            "bench": "console_steady", "boxes": n + 1, "window_s": window.as_secs(),
            "telemetry_per_s": ((n as f64 + 1.0) / TELEMETRY_S as f64),
            "console_cpu_s": (c1 - c0), "console_cpu_percent": ((c1 - c0) / window.as_secs_f64() * 1000.0).round() / 10.0,
            "console_cpu_us_per_telemetry": ((c1 - c0) / messages * 1e6).round(),
            "console_rss_mib": rss / (1 << 20), "console_peak_rss_mib": peak / (1 << 20),
            "broker_cpu_s": (m1 - m0),
            "ratio_console_to_broker_cpu": ((c1 - c0) / (m1 - m0).max(0.01) * 100.0).round() / 100.0,
        })
    );

    // the page: first load, then the victim going offline
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser/console.mjs");
    let mut node = Proc(
        Command::new("node")
            .arg(&script)
            .args(["--url", &url, "--user", USER, "--password", PASSWORD])
            .args([
                "--devices",
                "victim",
                "--offline",
                "victim",
                "--timeout",
                "120",
            ])
            .args(["--min-online", &(n + 1).to_string()])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("browser.log")).unwrap())
            .spawn()
            .expect("node (./x setup installs it)"),
    );
    let (line_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<serde_json::Value>();
    let out = node.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let v = serde_json::from_str(&l)
                .unwrap_or(serde_json::json!({"event": "failed", "error": l}));
            let _ = line_tx.send(v);
        }
    });
    let next = |v: Option<serde_json::Value>| {
        let v = v.expect("the page check ended early (see browser.log)");
        assert_ne!(v["event"], "failed", "{v}");
        v
    };
    let listed = next(lines.recv().await);
    let load_ms = listed["load_ms"].as_u64().unwrap();
    println!(
        "{}",
        serde_json::json!({"bench": "console_page_first_load", "boxes": n + 1, "ms": load_ms, "rows": listed["rows"].as_array().map_or(0, Vec::len)})
    );

    let metrics_url = format!("{url}/metrics");
    let metrics = tokio::spawn(async move {
        loop {
            if let Some(t) = get(&metrics_url).await
                && t.lines().any(|l| {
                    l.starts_with("edge_fleet_device_online{device=\"victim\"") && l.ends_with(" 0")
                })
            {
                return now_ms();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let killed = now_ms();
    victim.0.kill().unwrap();
    let _ = victim.0.wait();
    let will = tokio::time::timeout(Duration::from_secs(60), will_rx)
        .await
        .expect("the Last Will within a minute")
        .unwrap();
    let in_metrics = tokio::time::timeout(Duration::from_secs(60), metrics)
        .await
        .expect("/metrics within a minute")
        .unwrap();
    let offline = next(lines.recv().await);
    let on_page = offline["at_ms"].as_u64().unwrap();
    let (w, m, p) = (
        will.saturating_sub(killed),
        in_metrics.saturating_sub(killed),
        on_page.saturating_sub(killed),
    );
    println!(
        "{}",
        serde_json::json!({
            "bench": "console_offline_delay", "boxes": n + 1,
            "last_will_ms": w, "metrics_ms": m, "page_ms": p,
            "ratio_metrics_to_will": ((m as f64) / (w.max(1) as f64) * 100.0).round() / 100.0,
            "ratio_page_to_will": ((p as f64) / (w.max(1) as f64) * 100.0).round() / 100.0,
        })
    );
    let _ = node.0.wait();
    drop(console);
    drop(b);
    let _ = std::fs::remove_dir_all(&dir);
}
