//! The real `edge-agent run` daemon with a `[fleet]` table against a real mosquitto: presence with Last Will
//! on kill -9, telemetry from the daemon's state, live config through the daemon's hooks (and its own
//! refusals), commands through the daemon.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fleet::operator::Operator;
use fleet::proto::{CommandRequest, DesiredDoc, Presence, RuntimeConfig};
use fleet::testkit::{Broker, make_pki};

const T: Duration = Duration::from_secs(15);

fn write_config(b: &Broker, dir: &Path, id: &str) -> std::path::PathBuf {
    let mut f = b.device_config(id);
    f.state_dir = Some(dir.join("fleet-state"));
    #[derive(serde::Serialize)]
    struct Agent {
        data_dir: std::path::PathBuf,
        log_level: String,
    }
    #[derive(serde::Serialize)]
    struct Ingest {
        listen: String,
    }
    #[derive(serde::Serialize)]
    struct File {
        agent: Agent,
        ingest: Ingest,
        fleet: fleet::DeviceConfig,
    }
    let file = File {
        agent: Agent {
            data_dir: dir.join("data"),
            log_level: "info".into(),
        },
        ingest: Ingest {
            listen: "127.0.0.1:0".into(),
        },
        fleet: f,
    };
    let path = dir.join("agent.toml");
    std::fs::write(&path, toml::to_string(&file).unwrap()).unwrap();
    path
}

fn spawn_agent(config: &Path, log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_edge-agent"))
        .arg("run")
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("edge-agent run")
}

async fn wait_for<R>(
    op: &mut Operator,
    what: &str,
    mut f: impl FnMut(&Operator) -> Option<R>,
) -> R {
    op.follow().await.unwrap();
    let end = Instant::now() + T;
    loop {
        if let Some(r) = f(op) {
            return r;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        op.next_event(Duration::from_millis(200)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_agent_run_is_a_fleet_device() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    make_pki(&pki, &["agent-1"]).unwrap();
    let b = Broker::start(&pki, &dir.path().join("broker"));
    let cfg = write_config(&b, dir.path(), "agent-1");
    let log = dir.path().join("agent.log");
    let mut agent = spawn_agent(&cfg, &log);
    let (ca, cert, key) = b.operator_files();
    let mut op = Operator::connect("127.0.0.1", b.port, &ca, &cert, &key, T)
        .await
        .unwrap();

    let t = wait_for(&mut op, "telemetry from edge-agent", |op| {
        op.devices.get("agent-1")?.telemetry.clone()
    })
    .await;
    let enc = t.daemon.encoder.clone().expect("encoder in use reported");
    assert!(!t.daemon.encoders.is_empty());
    assert_eq!(t.daemon.streams, Some(0));
    assert_eq!(
        t.daemon.engine_rebuilds,
        Some(0),
        "the engine rebuild count is reported"
    );
    let limit = t.daemon.encoders[0].max_sessions.unwrap();
    assert!(op.devices["agent-1"].online());

    // Live config through the daemon: session limit within the hardware limit, a ladder of known profiles.
    let good = RuntimeConfig {
        session_limit: Some(1),
        ladder: Some(vec!["P360p30fps16x9".into()]),
        log_level: Some("debug".into()),
        maintenance_window: Some("02:00-04:00".into()),
        ..Default::default()
    };
    op.set_desired(
        "agent-1",
        &DesiredDoc {
            version: 1,
            config: good.clone(),
        },
    )
    .await
    .unwrap();
    op.wait_reported("agent-1", 1, T)
        .await
        .unwrap()
        .expect("applied by the daemon");
    let t = wait_for(&mut op, "config version 1 in telemetry", |op| {
        let t = op.devices.get("agent-1")?.telemetry.clone()?;
        (t.config_version == Some(1)).then_some(t)
    })
    .await;
    assert_eq!(t.daemon.session_limit, Some(1));
    // The daemon refuses what it cannot do; the old config stays.
    let bad_ladder = RuntimeConfig {
        ladder: Some(vec!["P9999p".into()]),
        ..good.clone()
    };
    op.set_desired(
        "agent-1",
        &DesiredDoc {
            version: 2,
            config: bad_ladder,
        },
    )
    .await
    .unwrap();
    let e = op
        .wait_reported("agent-1", 2, T)
        .await
        .unwrap()
        .expect_err("unknown profile refused");
    assert!(e.contains("P9999p"), "{e}");
    let too_many = RuntimeConfig {
        session_limit: Some(limit + 1),
        ..good.clone()
    };
    op.set_desired(
        "agent-1",
        &DesiredDoc {
            version: 3,
            config: too_many,
        },
    )
    .await
    .unwrap();
    let e = op
        .wait_reported("agent-1", 3, T)
        .await
        .unwrap()
        .expect_err("limit refused");
    assert!(e.contains("limit"), "{e}");
    assert_eq!(
        op.devices["agent-1"].reported.as_ref().unwrap().applied,
        good
    );

    // Commands through the daemon.
    let req = |id: &str, name: &str, args| CommandRequest {
        id: id.into(),
        name: name.into(),
        args,
    };
    let r = op
        .command(
            "agent-1",
            &req("rp", "restart_pipeline", serde_json::Value::Null),
            T,
            T,
        )
        .await
        .unwrap();
    assert!(r.ok, "{r:?}");
    assert_eq!(r.result.unwrap()["pipeline_generation"], 1);
    let r = op
        .command(
            "agent-1",
            &req("ll", "set_log_level", serde_json::json!({"level": "info"})),
            T,
            T,
        )
        .await
        .unwrap();
    assert!(r.ok, "{r:?}");
    let r = op
        .command(
            "agent-1",
            &req("dg", "collect_diagnostics", serde_json::Value::Null),
            T,
            T,
        )
        .await
        .unwrap();
    assert!(r.ok);
    let runtime = &r.result.unwrap()["daemon_state"]["runtime"];
    assert_eq!(runtime["max_sessions"], 1);
    // the window an installed update waits for, from the desired config
    assert_eq!(runtime["maintenance_window"], "02:00-04:00");

    // kill -9: Last Will; restart: online with the persisted config re-applied.
    agent.kill().unwrap();
    agent.wait().unwrap();
    let t0 = Instant::now();
    wait_for(&mut op, "offline by Last Will", |op| {
        let s = op.devices.get("agent-1")?.status.as_ref()?;
        (s.state == Presence::Offline).then_some(())
    })
    .await;
    assert!(t0.elapsed() < Duration::from_secs(5));
    let respawned = fleet::proto::now_ms();
    let mut agent = spawn_agent(&cfg, &log);
    wait_for(&mut op, "online again", |op| {
        op.devices
            .get("agent-1")
            .is_some_and(|d| d.online())
            .then_some(())
    })
    .await;
    let t = wait_for(&mut op, "persisted config back in force", |op| {
        let t = op.devices.get("agent-1")?.telemetry.clone()?;
        // a sample of the new process (not the retained one of the killed process)
        (t.ts_ms > respawned && t.config_version == Some(1) && t.daemon.session_limit == Some(1))
            .then_some(t)
    })
    .await;
    assert_eq!(t.daemon.encoder.as_deref(), Some(enc.as_str()));
    agent.kill().unwrap();
    agent.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_fleet_config_is_reported_and_the_daemon_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    make_pki(&pki, &["agent-1"]).unwrap();
    let b = Broker::start(&pki, &dir.path().join("broker"));
    let cfg = write_config(&b, dir.path(), "agent-1");
    // Not provisioned yet: the certificate file does not exist.
    std::fs::remove_file(pki.join("agent-1.pem")).unwrap();
    let log = dir.path().join("agent.log");
    let mut agent = spawn_agent(&cfg, &log);
    let end = Instant::now() + T;
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("fleet management disabled") {
            assert!(
                text.contains("agent-1.pem"),
                "the error names the file: {text}"
            );
            break;
        }
        assert!(agent.try_wait().unwrap().is_none(), "daemon exited: {text}");
        assert!(Instant::now() < end, "no fleet error logged: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(agent.try_wait().unwrap().is_none(), "daemon still serving");
    Command::new("kill")
        .args(["-TERM", &agent.id().to_string()])
        .status()
        .unwrap();
    assert!(agent.wait().unwrap().success(), "clean exit on SIGTERM");
}
