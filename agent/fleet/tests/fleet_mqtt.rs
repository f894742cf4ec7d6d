//! Integration tests against a real mosquitto (started by each test on 127.0.0.1 and a free port) with the
//! repo's broker config and ACL, over mutual TLS.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Device, TestHooks, operator, pki, wait_for};
use fleet::operator::Selector;
use fleet::proto::{CommandRequest, DesiredDoc, Presence, RuntimeConfig};
use fleet::testkit::Broker;

const T: Duration = Duration::from_secs(10);

fn req(id: &str, name: &str, args: serde_json::Value) -> CommandRequest {
    CommandRequest {
        id: id.into(),
        name: name.into(),
        args,
    }
}

fn online(op: &fleet::operator::Operator, id: &str) -> bool {
    op.devices.get(id).is_some_and(|d| d.online())
}

/// The standalone device binary with a [fleet] TOML file.
fn spawn_device_process(b: &Broker, dir: &std::path::Path, id: &str) -> Child {
    let mut c = b.device_config(id);
    c.state_dir = Some(dir.join(format!("{id}-state")));
    let file = dir.join(format!("{id}.toml"));
    #[derive(serde::Serialize)]
    struct F {
        fleet: fleet::DeviceConfig,
    }
    std::fs::write(&file, toml::to_string(&F { fleet: c }).unwrap()).unwrap();
    Command::new(env!("CARGO_BIN_EXE_edge-fleet"))
        .args(["--log", "info", "device", "--config"])
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{id}.log"))).unwrap())
        .spawn()
        .expect("edge-fleet device")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_last_will_on_kill9_and_back_online() {
    let dir = tempfile::tempdir().unwrap();
    pki(&dir.path().join("pki"), &["box-1"]);
    let b = Broker::start(&dir.path().join("pki"), &dir.path().join("broker"));
    let mut op = operator(&b).await;

    let mut child = spawn_device_process(&b, dir.path(), "box-1");
    wait_for(&mut op, T, "box-1 online", |op| {
        online(op, "box-1").then_some(())
    })
    .await;
    // Telemetry from the real process arrives and parses (the operator's view holds it typed).
    let t = wait_for(&mut op, T, "telemetry", |op| {
        op.devices.get("box-1")?.telemetry.clone()
    })
    .await;
    assert_eq!(t.device, "box-1");
    assert!(t.system.mem_total_bytes.unwrap() > 0);
    assert!(t.system.uptime_s.is_some());

    child.kill().unwrap(); // SIGKILL: no goodbye, the broker must fire the Last Will
    let killed = Instant::now();
    child.wait().unwrap();
    wait_for(
        &mut op,
        Duration::from_secs(5),
        "offline via Last Will",
        |op| {
            op.devices
                .get("box-1")
                .and_then(|d| d.status.as_ref())
                .filter(|s| s.state == Presence::Offline && s.ts_ms.is_none())
                .map(|_| ())
        },
    )
    .await;
    let lw = killed.elapsed();
    assert!(lw < Duration::from_secs(5), "Last Will took {lw:?}");

    let mut child = spawn_device_process(&b, dir.path(), "box-1");
    wait_for(&mut op, T, "box-1 online again", |op| {
        online(op, "box-1").then_some(())
    })
    .await;
    // A clean stop says offline itself (with a timestamp, unlike the Last Will).
    nix_term(&child);
    let status = child.wait().unwrap();
    let end = Instant::now() + T;
    loop {
        let clean = op
            .devices
            .get("box-1")
            .and_then(|d| d.status.as_ref())
            .is_some_and(|s| s.state == Presence::Offline && s.ts_ms.is_some());
        if clean {
            break;
        }
        assert!(
            Instant::now() < end,
            "no clean offline after SIGTERM (exit {status}); device log:\n{}\nbroker log:\n{}",
            std::fs::read_to_string(dir.path().join("box-1.log")).unwrap_or_default(),
            b.log()
        );
        op.next_event(Duration::from_millis(200)).await.unwrap();
    }
    eprintln!("last will after kill -9: {lw:?}");
}

fn nix_term(c: &Child) {
    Command::new("kill")
        .args(["-TERM", &c.id().to_string()])
        .status()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_by_encoder_versions_stale_and_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let ids = ["nv-1", "va-1", "nv-2"];
    pki(&dir.path().join("pki"), &ids);
    let b = Broker::start(&dir.path().join("pki"), &dir.path().join("broker"));
    let hooks: Vec<Arc<TestHooks>> = ["nvenc", "vaapi", "nvenc"]
        .iter()
        .map(|e| TestHooks::new(e))
        .collect();
    let _devs: Vec<Device> = ids
        .iter()
        .zip(&hooks)
        .map(|(id, h)| Device::start(b.device_config(id), h.clone()))
        .collect();
    let mut op = operator(&b).await;
    wait_for(&mut op, T, "telemetry of all three", |op| {
        ids.iter()
            .all(|id| op.devices.get(*id).is_some_and(|d| d.telemetry.is_some()))
            .then_some(())
    })
    .await;

    // Rollout to encoder=nvenc reaches exactly nv-1 and nv-2.
    let sel: Selector = "encoder=nvenc".parse().unwrap();
    let targets: Vec<String> = op
        .devices
        .values()
        .filter(|d| sel.matches(d))
        .map(|d| d.id.clone())
        .collect();
    assert_eq!(targets, vec!["nv-1".to_string(), "nv-2".to_string()]);
    let cfg = RuntimeConfig {
        session_limit: Some(4),
        log_level: Some("info,media=debug".into()),
        ladder: Some(vec!["720p".into(), "360p".into()]),
        ..Default::default()
    };
    for t in &targets {
        op.set_desired(
            t,
            &DesiredDoc {
                version: 1,
                config: cfg.clone(),
            },
        )
        .await
        .unwrap();
    }
    for t in &targets {
        let r = op.wait_reported(t, 1, T).await.unwrap().expect("applied");
        assert_eq!(r.applied, cfg);
    }
    for (h, want) in hooks.iter().zip([1, 0, 1]) {
        assert_eq!(h.applied.lock().unwrap().len(), want);
    }
    assert_eq!(*hooks[0].log_level.lock().unwrap(), "info,media=debug");
    tokio::time::sleep(Duration::from_millis(300)).await;
    op.next_event(Duration::from_millis(200)).await.unwrap();
    assert_eq!(
        op.devices["va-1"]
            .reported
            .as_ref()
            .map(|r| r.applied_version),
        Some(0),
        "the vaapi box was not targeted"
    );

    // v2 applies; then v1 again is stale.
    let v2 = RuntimeConfig {
        session_limit: Some(6),
        ..cfg.clone()
    };
    op.set_desired(
        "nv-1",
        &DesiredDoc {
            version: 2,
            config: v2.clone(),
        },
    )
    .await
    .unwrap();
    op.wait_reported("nv-1", 2, T)
        .await
        .unwrap()
        .expect("v2 applied");
    op.set_desired(
        "nv-1",
        &DesiredDoc {
            version: 1,
            config: cfg.clone(),
        },
    )
    .await
    .unwrap();
    let e = op
        .wait_reported("nv-1", 1, T)
        .await
        .unwrap()
        .expect_err("stale refused");
    assert!(e.contains("stale"), "{e}");

    // Invalid configs are refused and v2 keeps running: out-of-range value, unknown key, daemon refusal,
    // malformed JSON.
    op.set_desired(
        "nv-1",
        &DesiredDoc {
            version: 3,
            config: RuntimeConfig {
                session_limit: Some(0),
                ..Default::default()
            },
        },
    )
    .await
    .unwrap();
    let e = op
        .wait_reported("nv-1", 3, T)
        .await
        .unwrap()
        .expect_err("invalid");
    assert!(e.contains("session_limit"), "{e}");
    op.set_desired_raw(
        "nv-1",
        br#"{"version":4,"config":{"sesion_limit":2}}"#.to_vec(),
    )
    .await
    .unwrap();
    let e = op
        .wait_reported("nv-1", 4, T)
        .await
        .unwrap()
        .expect_err("unknown key");
    assert!(e.contains("unknown field"), "{e}");
    op.set_desired(
        "nv-1",
        &DesiredDoc {
            version: 5,
            config: RuntimeConfig {
                session_limit: Some(64),
                ..Default::default()
            },
        },
    )
    .await
    .unwrap();
    let e = op
        .wait_reported("nv-1", 5, T)
        .await
        .unwrap()
        .expect_err("daemon refuses");
    assert!(e.contains("hardware limit"), "{e}");
    op.set_desired_raw("nv-1", b"{\"version\":6,".to_vec())
        .await
        .unwrap();
    wait_for(&mut op, T, "malformed refused", |op| {
        let r = op.devices.get("nv-1")?.reported.as_ref()?;
        r.last_error
            .as_ref()
            .filter(|e| e.reason.contains("invalid desired document"))
            .map(|_| ())
    })
    .await;
    let r = op.devices["nv-1"].reported.clone().unwrap();
    assert_eq!(r.applied_version, 2);
    assert_eq!(r.applied, v2);
    assert_eq!(
        *hooks[0].running.lock().unwrap(),
        v2,
        "running config untouched"
    );

    // Still alive and answering.
    let r = op
        .command("nv-1", &req("alive", "ping", serde_json::Value::Null), T, T)
        .await
        .unwrap();
    assert!(r.ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_correlated_idempotent_and_bad_input_answered() {
    let dir = tempfile::tempdir().unwrap();
    pki(&dir.path().join("pki"), &["box-1"]);
    let b = Broker::start(&dir.path().join("pki"), &dir.path().join("broker"));
    let hooks = TestHooks::new("x264");
    let mut cfg = b.device_config("box-1");
    let marker = dir.path().join("rebooted");
    cfg.reboot_command = vec!["touch".into(), marker.display().to_string()];
    cfg.diagnostics_max_bytes = 8192;
    let log = dir.path().join("agent.log");
    std::fs::write(&log, "line\n".repeat(10_000)).unwrap();
    cfg.log_file = Some(log);
    let _d = Device::start(cfg, hooks.clone());
    let mut op = operator(&b).await;
    wait_for(&mut op, T, "online", |op| online(op, "box-1").then_some(())).await;

    // Two requests in flight at once: each result comes back under its own correlation data.
    let c1 = op
        .send_command_raw(
            "box-1",
            serde_json::to_vec(&req("r1", "restart_pipeline", serde_json::Value::Null)).unwrap(),
            T,
        )
        .await
        .unwrap();
    let c2 = op
        .send_command_raw(
            "box-1",
            serde_json::to_vec(&req("p1", "ping", serde_json::Value::Null)).unwrap(),
            T,
        )
        .await
        .unwrap();
    let r2 = op.wait_result(&c2, T).await.unwrap();
    let r1 = op.wait_result(&c1, T).await.unwrap();
    assert_eq!(r1.id.as_deref(), Some("r1"));
    assert_eq!(r2.id.as_deref(), Some("p1"));
    assert!(r1.ok && r2.ok, "{r1:?} {r2:?}");
    assert_eq!(r1.result, Some(serde_json::json!({"restarted": 1})));

    // A repeated id returns the first result and does not run again.
    let again = op
        .command(
            "box-1",
            &req("r1", "restart_pipeline", serde_json::Value::Null),
            T,
            T,
        )
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!((again.ts_ms, &again.result), (r1.ts_ms, &r1.result));
    assert_eq!(*hooks.restarts.lock().unwrap(), 1);

    let r = op
        .command(
            "box-1",
            &req(
                "l1",
                "set_log_level",
                serde_json::json!({"level": "debug,rumqttc=warn"}),
            ),
            T,
            T,
        )
        .await
        .unwrap();
    assert!(r.ok, "{r:?}");
    assert_eq!(*hooks.log_level.lock().unwrap(), "debug,rumqttc=warn");
    let r = op
        .command(
            "box-1",
            &req(
                "l2",
                "set_log_level",
                serde_json::json!({"level": "debug,[[["}),
            ),
            T,
            T,
        )
        .await
        .unwrap();
    assert!(!r.ok && r.error.unwrap().contains("not a valid filter"));

    let r = op
        .command(
            "box-1",
            &req(
                "d1",
                "collect_diagnostics",
                serde_json::json!({"max_bytes": 4096}),
            ),
            T,
            T,
        )
        .await
        .unwrap();
    assert!(r.ok);
    let bundle = r.result.unwrap();
    let size = serde_json::to_vec(&bundle).unwrap().len();
    assert!(size <= 4096, "bundle of {size} bytes");
    assert_eq!(bundle["log_truncated"], true);
    assert!(bundle["log_tail"].as_str().unwrap().ends_with("line\n"));
    assert_eq!(bundle["daemon"]["encoder"], "x264");

    let r = op
        .command("box-1", &req("b1", "reboot", serde_json::Value::Null), T, T)
        .await
        .unwrap();
    assert!(r.ok, "{r:?}");
    assert!(marker.exists(), "the configured reboot command ran");

    // Bad input: each gets an error response, nothing crashes.
    let r = op
        .command_raw("box-1", b"{not json".to_vec(), T, T)
        .await
        .unwrap();
    assert!(!r.ok && r.error.unwrap().contains("invalid command"));
    let r = op
        .command_raw("box-1", vec![b'x'; 64 * 1024], T, T)
        .await
        .unwrap();
    assert!(!r.ok && r.error.unwrap().contains("exceeds the limit"));
    let r = op
        .command(
            "box-1",
            &req("u1", "self_destruct", serde_json::Value::Null),
            T,
            T,
        )
        .await
        .unwrap();
    assert!(!r.ok && r.error.unwrap().contains("unknown command"));
    let r = op
        .command(
            "box-1",
            &req("a1", "ping", serde_json::json!({"x": 1})),
            T,
            T,
        )
        .await
        .unwrap();
    assert!(!r.ok && r.error.unwrap().contains("no arguments"));
    let r = op
        .command("box-1", &req("p2", "ping", serde_json::Value::Null), T, T)
        .await
        .unwrap();
    assert!(r.ok, "still serving after bad input");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_commands_delivered_on_reconnect_unless_expired() {
    let dir = tempfile::tempdir().unwrap();
    pki(&dir.path().join("pki"), &["box-1"]);
    let b = Broker::start(&dir.path().join("pki"), &dir.path().join("broker"));
    let mut cfg = b.device_config("box-1");
    cfg.state_dir = Some(dir.path().join("state"));
    let hooks = TestHooks::new("vaapi");
    let d = Device::start(cfg.clone(), hooks.clone());
    let mut op = operator(&b).await;
    wait_for(&mut op, T, "online", |op| online(op, "box-1").then_some(())).await;
    let first = op
        .command(
            "box-1",
            &req("x1", "restart_pipeline", serde_json::Value::Null),
            T,
            T,
        )
        .await
        .unwrap();
    assert!(first.ok);
    d.stop().await;
    wait_for(&mut op, T, "offline", |op| {
        (!online(op, "box-1")).then_some(())
    })
    .await;

    let keep = op
        .send_command_raw(
            "box-1",
            serde_json::to_vec(&req("k1", "ping", serde_json::Value::Null)).unwrap(),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let stale = op
        .send_command_raw(
            "box-1",
            serde_json::to_vec(&req("s1", "restart_pipeline", serde_json::Value::Null)).unwrap(),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let hooks2 = TestHooks::new("vaapi");
    let _d = Device::start(cfg, hooks2.clone());
    let r = op
        .wait_result(&keep, T)
        .await
        .expect("queued command delivered on reconnect");
    assert!(r.ok && r.id.as_deref() == Some("k1"));
    assert!(
        op.wait_result(&stale, Duration::from_secs(2))
            .await
            .is_err(),
        "expired command must not run"
    );
    assert_eq!(*hooks2.restarts.lock().unwrap(), 0);

    // The result cache survived the restart (state_dir): the first result comes back.
    let again = op
        .command(
            "box-1",
            &req("x1", "restart_pipeline", serde_json::Value::Null),
            T,
            T,
        )
        .await
        .unwrap();
    assert!(again.duplicate && again.ts_ms == first.ts_ms);
    assert_eq!(*hooks2.restarts.lock().unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_device_back_within_5s_results_kept() {
    let dir = tempfile::tempdir().unwrap();
    pki(&dir.path().join("pki"), &["box-1"]);
    let mut b = Broker::start(&dir.path().join("pki"), &dir.path().join("broker"));
    let hooks = TestHooks::new("nvenc");
    let _d = Device::start(b.device_config("box-1"), hooks.clone());
    let mut op = operator(&b).await;
    wait_for(&mut op, T, "online", |op| online(op, "box-1").then_some(())).await;
    let first = op
        .command(
            "box-1",
            &req("r1", "restart_pipeline", serde_json::Value::Null),
            T,
            T,
        )
        .await
        .unwrap();
    assert!(first.ok);
    drop(op);

    b.restart();
    let up = fleet::proto::now_ms();
    let t0 = Instant::now();
    let mut op = operator(&b).await;
    let since = wait_for(
        &mut op,
        Duration::from_secs(8),
        "device reconnected",
        |op| {
            let s = op.devices.get("box-1")?.status.as_ref()?;
            (s.state == Presence::Online && s.since_ms? >= up.saturating_sub(50))
                .then_some(s.since_ms?)
        },
    )
    .await;
    let took = since.saturating_sub(up);
    eprintln!(
        "device back {took} ms after the broker listened again ({:?} wall)",
        t0.elapsed()
    );
    assert!(took < 5000, "reconnect took {took} ms");

    // The acknowledged result is still there (same first run), and commands work.
    let again = op
        .command(
            "box-1",
            &req("r1", "restart_pipeline", serde_json::Value::Null),
            T,
            T,
        )
        .await
        .unwrap();
    assert!(again.duplicate && again.ts_ms == first.ts_ms);
    let r = op
        .command(
            "box-1",
            &req("r2", "restart_pipeline", serde_json::Value::Null),
            T,
            T,
        )
        .await
        .unwrap();
    assert_eq!(r.result, Some(serde_json::json!({"restarted": 2})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_of_a_command_running_across_a_broker_restart_is_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    pki(&dir.path().join("pki"), &["box-1"]);
    let mut b = Broker::start(&dir.path().join("pki"), &dir.path().join("broker"));
    let hooks = TestHooks::new("nvenc");
    hooks
        .restart_delay_ms
        .store(1500, std::sync::atomic::Ordering::Relaxed);
    let _d = Device::start(b.device_config("box-1"), hooks.clone());
    let mut op = operator(&b).await;
    wait_for(&mut op, T, "online", |op| online(op, "box-1").then_some(())).await;
    let corr = op
        .send_command_raw(
            "box-1",
            serde_json::to_vec(&req("slow", "restart_pipeline", serde_json::Value::Null)).unwrap(),
            T,
        )
        .await
        .unwrap();
    // Let the device receive it and start, then take the broker away while the command runs.
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.restart();
    let r = op
        .wait_result(&corr, Duration::from_secs(15))
        .await
        .expect("the result arrives after the broker restart");
    assert!(r.ok && r.id.as_deref() == Some("slow"), "{r:?}");
    assert_eq!(
        *hooks.restarts.lock().unwrap(),
        1,
        "ran once, not again for the re-sent request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_buffered_within_bound_while_offline() {
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::mqttbytes::v5::Packet;
    use rumqttc::v5::{AsyncClient, Event, MqttOptions};

    let dir = tempfile::tempdir().unwrap();
    pki(&dir.path().join("pki"), &["box-1"]);
    let mut b = Broker::start(&dir.path().join("pki"), &dir.path().join("broker"));
    let mut cfg = b.device_config("box-1");
    cfg.telemetry_interval_s = 1;
    cfg.telemetry_buffer = 3;
    let _d = Device::start(cfg, TestHooks::new("x264"));

    // A watcher with a persistent session (the broker keeps its subscription across the restart), so it
    // cannot miss the flush however fast the device comes back.
    let (ca, cert, key) = b.operator_files();
    let tls = fleet::tls::client_config(&ca, &cert, &key).unwrap();
    let mut o = MqttOptions::new("telemetry-watcher", "127.0.0.1", b.port);
    o.set_transport(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Rustls(tls),
    ));
    o.set_keep_alive(Duration::from_secs(5));
    o.set_clean_start(false);
    o.set_session_expiry_interval(Some(600));
    let (c, mut el) = AsyncClient::new(o, 10);
    c.subscribe(fleet::topics::telemetry("box-1"), QoS::AtLeastOnce)
        .await
        .unwrap();
    c.subscribe(fleet::topics::status("box-1"), QoS::AtLeastOnce)
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watcher = tokio::spawn(async move {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    // (seq, ts) for telemetry; (0, since_ms) for an online status.
                    if p.topic.ends_with(b"/telemetry") {
                        let t: fleet::proto::Telemetry =
                            serde_json::from_slice(&p.payload).unwrap();
                        let _ = tx.send((t.seq, t.ts_ms));
                    } else if let Ok(st) =
                        serde_json::from_slice::<fleet::proto::Status>(&p.payload)
                    {
                        if let Some(since) = st.since_ms {
                            let _ = tx.send((0, since));
                        }
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    let mut before = 0;
    while before < 2 {
        before = before.max(tokio::time::timeout(T, rx.recv()).await.unwrap().unwrap().0);
    }

    let down = fleet::proto::now_ms();
    b.stop();
    tokio::time::sleep(Duration::from_millis(5000)).await;
    // taken before the restart: a device that reconnects while start_again() still waits for the port
    // would otherwise have a session older than `up`
    let up = fleet::proto::now_ms();
    b.start_again();
    // Samples measured while offline are those stamped after the broker went down and before the
    // device's new session began (its online status' since_ms).
    let mut samples = Vec::new();
    let mut reconnected = None;
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end {
        match tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            Ok(Some((0, since))) if since >= up => reconnected = Some(since),
            Ok(Some((0, _))) => {}
            Ok(Some((seq, ts))) => {
                samples.push((seq, ts));
                if reconnected.is_some_and(|r| ts > r + 1500) {
                    break;
                }
            }
            _ => continue,
        }
    }
    let reconnected = reconnected.expect("device reconnected");
    let mut offline_samples: Vec<u64> = samples
        .iter()
        .filter(|(_, ts)| *ts > down && *ts < reconnected)
        .map(|(seq, _)| *seq)
        .collect();
    watcher.abort();
    offline_samples.sort();
    offline_samples.dedup();
    assert_eq!(
        offline_samples.len(),
        3,
        "exactly the bound: {offline_samples:?}"
    );
    assert!(
        offline_samples.windows(2).all(|w| w[1] == w[0] + 1),
        "{offline_samples:?}"
    );
    // Oldest dropped first: what was kept is the newest offline samples, so the buffered run ends right where
    // the live samples after reconnection begin.  (How many samples the device took while offline depends on
    // how fast it noticed the broker was gone; when it took more than the bound, the first kept one is past
    // the first one taken.)
    let first_live = samples
        .iter()
        .filter(|(_, ts)| *ts >= reconnected)
        .map(|(seq, _)| *seq)
        .min()
        .expect("samples after reconnection");
    assert_eq!(
        offline_samples.last().copied().map(|s| s + 1),
        Some(first_live),
        "the kept samples are the newest: before={before} {offline_samples:?}, first live {first_live}"
    );
    assert!(offline_samples[0] > before, "{before} {offline_samples:?}");
}
