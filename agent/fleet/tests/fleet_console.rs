//! `edge-fleet serve` against a real mosquitto (mutual TLS, the repo's config and ACL) and real
//! `edge-fleet device` processes: a staged rollout that halts on canary refusals, survives a restart of
//! the console and is rolled back; logins on the API and the metrics; the metrics in the Prometheus text
//! format showing a box going offline after kill -9; the web page in headless Chromium; a device certificate
//! acting as the console.

mod console_support;

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use console_support::{
    BrowserCheck, PASSWORD, USER, device, get_json, http, passwords, serve, until,
};
use fleet::console::client::Client;
use fleet::console::rollout::RolloutSpec;
use fleet::proto::RuntimeConfig;
use fleet::testkit::{Broker, make_pki};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

async fn rollout(url: &str, id: &str) -> Value {
    get_json(&format!("{url}/api/rollouts/{id}")).await
}

fn failed(r: &Value) -> Vec<(String, String)> {
    r["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["state"]["state"] == "failed")
        .map(|t| {
            (
                t["device"].as_str().unwrap().to_string(),
                t["state"]["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn wait_phase(url: &str, id: &str, phase: &str) -> Value {
    until(T, &format!("rollout {id} {phase}"), || async {
        let r = rollout(url, id).await;
        (r["phase"] == phase).then_some(r)
    })
    .await
}

/// `edge-fleet rollout ...` with the login in the environment; its JSON answer.
fn cli(url: &str, args: &[&str]) -> Value {
    let out = std::process::Command::new(console_support::BIN)
        .args(["--json", "rollout"])
        .args(args)
        .env("EDGE_FLEET_URL", url)
        .env("EDGE_FLEET_USER", USER)
        .env("EDGE_FLEET_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "edge-fleet rollout {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_rollout_halts_on_canary_refusals_survives_a_restart_and_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<String> = (0..20).map(|i| format!("box-{i:02}")).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    make_pki(&dir.path().join("pki"), &id_refs).unwrap();
    let b = Broker::start(&dir.path().join("pki"), &dir.path().join("broker"));
    // three of the five canary boxes (the first five ids) can run at most 2 sessions
    let refusers = ["box-00", "box-02", "box-04"];
    let _devices: Vec<_> = ids
        .iter()
        .map(|id| {
            let cap = refusers.contains(&id.as_str()).then_some(2);
            device(&b, dir.path(), id, "ams", cap)
        })
        .collect();
    passwords(dir.path());
    let (mut console, url) = serve(&b, dir.path(), "operator");
    reporting(&url, 20).await;

    // Rollout 1 (session_limit 2): every wave passes; canary 5, then up to 50%, then the rest.
    let c = Client::new(&url, USER, PASSWORD).unwrap();
    let spec = RolloutSpec {
        selector: "label.site=ams".into(),
        config: Some(RuntimeConfig {
            session_limit: Some(2),
            ..Default::default()
        }),
        image: None,
        rollback_image: None,
        canary: 5,
        waves: vec![50],
        soak_s: 1,
        report_timeout_s: 20,
        max_failure_ratio: 0.2,
        auto_rollback: false,
    };
    let t0 = Instant::now();
    let r1 = c.start(&spec).await.unwrap();
    assert_eq!((r1.targets.len(), r1.waves), (20, 3));
    let r1 = wait_phase(&url, &r1.id, "completed").await;
    eprintln!(
        "rollout over 3 waves of 20 boxes (1 s soak): {:?}",
        t0.elapsed()
    );
    assert!(failed(&r1).is_empty(), "{r1}");

    // Rollout 2 (session_limit 4), started with the CLI: 3 of the 5 canaries refuse it.
    let r2 = cli(
        &url,
        &[
            "start",
            "--select",
            "label.site=ams",
            "--set",
            "session_limit=4",
            "--canary",
            "5",
            "--waves",
            "50",
            "--soak",
            "1",
            "--report-timeout",
            "20",
            "--max-failures",
            "0.2",
        ],
    );
    let id = r2["id"].as_str().unwrap().to_string();
    let halted = wait_phase(&url, &id, "halted").await;
    let f = failed(&halted);
    assert_eq!(
        f.iter().map(|(d, _)| d.as_str()).collect::<Vec<_>>(),
        refusers,
        "{halted}"
    );
    for (_, why) in &f {
        assert!(
            why.contains("refused") && why.contains("session_limit 4 above this box's limit 2"),
            "{why}"
        );
    }
    // it halts as soon as a second canary fails; the third is recorded too
    assert!(
        halted["note"]
            .as_str()
            .unwrap()
            .contains("of 5 boxes failed")
    );
    assert_eq!(halted["wave"], 0, "halted before the next wave");
    // give a wrongly continuing rollout time to show itself: the next wave never gets the config
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let devs = get_json(&format!("{url}/api/devices")).await;
    for d in devs.as_array().unwrap() {
        let n: usize = d["device"].as_str().unwrap()[4..].parse().unwrap();
        let (desired, applied) = (&d["desired_version"], &d["applied_version"]);
        match n {
            0 | 2 | 4 => {
                assert_eq!(
                    (desired, applied),
                    (&Value::from(2), &Value::from(1)),
                    "{d}"
                );
                assert!(
                    d["last_config_error"]["reason"]
                        .as_str()
                        .unwrap()
                        .contains("above this box's limit")
                );
            }
            1 | 3 => assert_eq!(
                (desired, applied),
                (&Value::from(2), &Value::from(2)),
                "{d}"
            ),
            _ => assert_eq!(
                (desired, applied),
                (&Value::from(1), &Value::from(1)),
                "{d}"
            ),
        }
    }

    // The console restarts: the halted rollout and its failures are still there.
    console.term();
    drop(console);
    let (_console, url) = serve(&b, dir.path(), "operator");
    let again = rollout(&url, &id).await;
    assert_eq!(again["phase"], "halted");
    assert_eq!(failed(&again), f);

    // Rollback (CLI): the five canaries get the old config back, under version 3.
    let rb = cli(&url, &["rollback", &id]);
    assert_eq!(rb["phase"], "rolling_back");
    let done = wait_phase(&url, &id, "rolled_back").await;
    for n in 0..5 {
        let d = get_json(&format!("{url}/api/devices/box-{n:02}")).await;
        assert_eq!(d["reported"]["applied_version"], 3, "{d}");
        assert_eq!(d["reported"]["applied"]["session_limit"], 2, "{d}");
    }
    let status = cli(&url, &["status"]);
    assert_eq!(status.as_array().unwrap().len(), 2);
    eprintln!("rolled back: {}", done["targets"][1]);
}

/// Strict line rules of the text format on top of the parser crate: comments are HELP/TYPE, samples are
/// `name{label="value",...} number`, a family's TYPE comes before its samples.
fn check_text_format(text: &str) {
    let mut typed = std::collections::BTreeSet::new();
    for line in text.lines() {
        if let Some(c) = line.strip_prefix("# ") {
            let mut w = c.split(' ');
            let kind = w.next().unwrap();
            let name = w.next().unwrap();
            assert!(kind == "HELP" || kind == "TYPE", "{line}");
            if kind == "TYPE" {
                assert!(typed.insert(name.to_string()), "TYPE twice: {line}");
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap();
        let name = &line[..name_end];
        assert!(
            name.chars()
                .enumerate()
                .all(|(i, c)| c.is_ascii_alphabetic()
                    || c == '_'
                    || c == ':'
                    || (i > 0 && c.is_ascii_digit())),
            "{line}"
        );
        assert!(typed.contains(name), "sample before its TYPE: {line}");
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
}

/// A broker, box-1 (site ams) and box-2 (site fra), and the console on the operator certificate.
/// (Fields drop in order: the processes before the broker.)
struct TwoBoxes {
    _console: console_support::Proc,
    box1: console_support::Proc,
    _box2: console_support::Proc,
    _broker: Broker,
    url: String,
}

fn two_boxes(dir: &std::path::Path) -> TwoBoxes {
    make_pki(&dir.join("pki"), &["box-1", "box-2"]).unwrap();
    let b = Broker::start(&dir.join("pki"), &dir.join("broker"));
    let box1 = device(&b, dir, "box-1", "ams", None);
    let box2 = device(&b, dir, "box-2", "fra", None);
    passwords(dir);
    let (console, url) = serve(&b, dir, "operator");
    TwoBoxes {
        _broker: b,
        box1,
        _box2: box2,
        _console: console,
        url,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_required_metrics_parse_and_show_a_box_going_offline() {
    let dir = tempfile::tempdir().unwrap();
    let mut boxes = two_boxes(dir.path());
    let url = boxes.url.clone();
    reporting(&url, 2).await;

    let h = http();
    for path in [
        "/api/devices",
        "/api/devices/box-1",
        "/api/rollouts",
        "/api/rollouts/1",
        "/metrics",
        "/",
        "/rollouts.js",
    ] {
        let u = format!("{url}{path}");
        let r = h.get(&u).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} without a login");
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
        let r = h
            .get(&u)
            .basic_auth(USER, Some("wrong password"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path} with a wrong password");
        let r = h
            .get(&u)
            .basic_auth("nobody", Some(PASSWORD))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path} as an unknown user");
    }
    let r = h
        .post(format!("{url}/api/rollouts"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // logged in, but posted the way another site's form could: refused before anything happens
    let r = h
        .post(format!("{url}/api/rollouts"))
        .basic_auth(USER, Some(PASSWORD))
        .header("content-type", "text/plain")
        .body(r#"{"selector": "id=box-1", "config": {"session_limit": 1}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415, "a POST without a JSON content type");
    assert!(get_json(&format!("{url}/api/rollouts")).await == serde_json::json!([]));
    for path in [
        "/api/devices",
        "/api/devices/box-1",
        "/api/rollouts",
        "/metrics",
    ] {
        let r = h
            .get(format!("{url}{path}"))
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path} with a login");
    }

    let scrape = || async {
        let r = http()
            .get(format!("{url}/metrics"))
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .await
            .unwrap();
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        let text = r.text().await.unwrap();
        check_text_format(&text);
        let s = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
        (text, s)
    };
    let value = |s: &prometheus_parse::Scrape, metric: &str, device: &str| -> Option<f64> {
        s.samples
            .iter()
            .find(|x| x.metric == metric && x.labels.get("device") == Some(device))
            .map(|x| match x.value {
                prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                ref other => panic!("{metric}: {other:?}"),
            })
    };
    let (text, s) = scrape().await;
    for d in ["box-1", "box-2"] {
        assert_eq!(
            value(&s, "edge_fleet_device_online", d),
            Some(1.0),
            "{text}"
        );
        let age = value(&s, "edge_fleet_telemetry_age_seconds", d).unwrap();
        assert!((0.0..10.0).contains(&age), "{d} telemetry {age} s old");
        assert!(value(&s, "edge_fleet_memory_total_bytes", d).unwrap() > 0.0);
    }
    let site = s
        .samples
        .iter()
        .find(|x| x.metric == "edge_fleet_device_online" && x.labels.get("device") == Some("box-2"))
        .unwrap();
    assert_eq!(site.labels.get("site"), Some("fra"));
    assert!(site.labels.get("board").is_some() && site.labels.get("encoder").is_some());
    assert!(s.docs.contains_key("edge_fleet_telemetry_age_seconds"));

    // kill -9: the broker's Last Will reaches the console, the next scrape shows the box offline.
    boxes.box1.0.kill().unwrap();
    let killed = Instant::now();
    boxes.box1.0.wait().unwrap();
    let (_, s) = until(
        Duration::from_secs(5),
        "box-1 offline in /metrics",
        || async {
            let (t, s) = scrape().await;
            (value(&s, "edge_fleet_device_online", "box-1") == Some(0.0)).then_some((t, s))
        },
    )
    .await;
    let delay = killed.elapsed();
    eprintln!("kill -9 to offline in /metrics: {delay:?}");
    assert_eq!(value(&s, "edge_fleet_device_online", "box-2"), Some(1.0));
    let d = get_json(&format!("{url}/api/devices/box-1")).await;
    assert_eq!(d["status"]["state"], "offline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_certificate_cannot_act_as_the_operator() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pki");
    make_pki(&p, &["box-1", "box-2"]).unwrap();
    // the PKI never issues a device certificate named like the operator
    assert!(fleet::pki::issue(&p, fleet::pki::Role::Device, "operator").is_err());
    let b = Broker::start(&p, &dir.path().join("broker"));
    let _box2 = device(&b, dir.path(), "box-2", "ams", None);
    passwords(dir.path());
    // the real console, for comparison, sees box-2
    let (_real, real_url) = serve(&b, dir.path(), "operator");
    until(T, "box-2 online in the real console", || async {
        let d = get_json(&format!("{real_url}/api/devices/box-2")).await;
        (d["status"]["state"] == "online").then_some(())
    })
    .await;
    // a console running on box-1's certificate: the ACL gives it box-1's subtree only
    std::fs::create_dir_all(dir.path().join("evil")).unwrap();
    std::fs::copy(
        dir.path().join("passwords"),
        dir.path().join("evil/passwords"),
    )
    .unwrap();
    let (_evil, evil_url) = serve(&b, &dir.path().join("evil"), "box-1");
    tokio::time::sleep(Duration::from_secs(2)).await; // box-2 heartbeats every second
    let devs = get_json(&format!("{evil_url}/api/devices")).await;
    assert!(
        devs.as_array()
            .unwrap()
            .iter()
            .all(|d| d["device"] != "box-2"),
        "box-1's certificate read box-2's state: {devs}"
    );
    let r = http()
        .post(format!("{evil_url}/api/rollouts"))
        .basic_auth(USER, Some(PASSWORD))
        .json(&serde_json::json!({"selector": "id=box-2", "config": {"session_limit": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "no box to target");
    let d = get_json(&format!("{real_url}/api/devices/box-2")).await;
    assert!(d["desired"].is_null(), "{d}");
}

/// The web page in headless Chromium (Debian's chromium, puppeteer-core from tests/browser, installed by
/// `./x setup`): both boxes listed online, box-1 shown offline after kill -9 without a reload, the label
/// filter leaving box-2 alone, box-2's page plotting its telemetry. The screenshots are kept in the target directory (`tmp/console-fleet.png`, the
/// table with box-1 offline; `tmp/console-page.png`, box-2's page).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_lists_the_boxes_shows_one_going_offline_and_plots_telemetry() {
    let dir = tempfile::tempdir().unwrap();
    let mut boxes = two_boxes(dir.path());
    let url = boxes.url.clone();
    let shot = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-page.png");
    let _ = std::fs::remove_file(&shot);
    let fleet_shot = shot.with_file_name("console-fleet.png");
    let mut page = BrowserCheck::start(
        dir.path(),
        "console.mjs",
        &[
            "--url",
            &url,
            "--user",
            USER,
            "--password",
            PASSWORD,
            "--devices",
            "box-1,box-2",
            "--offline",
            "box-1",
            "--plot",
            "box-2",
            "--filter",
            "site=fra",
            "--filtered",
            "box-2",
            "--timeout",
            "60",
        ]
        .map(OsStr::new)
        .into_iter()
        .chain([
            OsStr::new("--screenshot"),
            shot.as_os_str(),
            OsStr::new("--fleet-screenshot"),
            fleet_shot.as_os_str(),
        ])
        .collect::<Vec<_>>(),
    );
    let listed = page.next();
    assert_eq!(listed["event"], "listed");
    let rows = listed["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{listed}");
    assert!(
        rows.iter().all(|r| r[1] == "online"),
        "both online: {listed}"
    );

    boxes.box1.0.kill().unwrap();
    let killed = Instant::now();
    boxes.box1.0.wait().unwrap();
    let offline = page.next();
    assert_eq!(offline["event"], "offline");
    assert_eq!(offline["device"], "box-1");
    eprintln!("kill -9 to offline on the page: {:?}", killed.elapsed());

    let filtered = page.next();
    assert_eq!(filtered["event"], "filtered", "{filtered}");

    let plotted = page.next();
    assert_eq!(plotted["event"], "plotted", "{plotted}");
    assert!(plotted["points"].as_u64().unwrap() >= 2, "{plotted}");
    page.finish();
    assert_screenshot(&shot);
}

fn assert_screenshot(shot: &std::path::Path) {
    let png = std::fs::read(shot).expect("the screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real screenshot"
    );
    eprintln!("screenshot: {}", shot.display());
}

/// Rollouts from the page, as an operator clicks them (`tests/browser/rollout.mjs`): one started from the
/// form, paused, resumed and aborted with its buttons; a second one, whose box refuses the config, halted by
/// itself with the box and its reason listed (screenshot in the target directory, `tmp/console-rollout.png`),
/// then rolled back with its button; a third, of an image from the site's swarm (root and seeders typed into
/// the bundle fields), halted by the box's refusal. Every step is checked against the API too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollouts_are_started_paused_resumed_aborted_and_rolled_back_from_the_page() {
    let dir = tempfile::tempdir().unwrap();
    make_pki(&dir.path().join("pki"), &["box-1", "box-2"]).unwrap();
    let b = Broker::start(&dir.path().join("pki"), &dir.path().join("broker"));
    let _box1 = device(&b, dir.path(), "box-1", "ams", None);
    let _box2 = device(&b, dir.path(), "box-2", "fra", Some(2));
    passwords(dir.path());
    let (_console, url) = serve(&b, dir.path(), "operator");
    reporting(&url, 2).await;
    let shot = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-rollout.png");
    let _ = std::fs::remove_file(&shot);
    let mut page = BrowserCheck::start(
        dir.path(),
        "rollout.mjs",
        &[
            "--url",
            &url,
            "--user",
            USER,
            "--password",
            PASSWORD,
            "--select",
            "label.site=ams",
            "--config",
            r#"{"session_limit": 3}"#,
            "--bad-select",
            "label.site=fra",
            "--bad-config",
            r#"{"session_limit": 9}"#,
            "--swarm",
            &SWARM_ROOT,
            "--peers",
            "192.168.7.10:7000",
            "--sha256",
            &SWARM_SHA,
            "--version",
            "1.2.0",
            "--timeout",
            "60",
        ]
        .map(OsStr::new)
        .into_iter()
        .chain([OsStr::new("--screenshot"), shot.as_os_str()])
        .collect::<Vec<_>>(),
    );
    let started = page.next();
    assert_eq!(started["event"], "started", "{started}");
    let id = started["id"].as_str().unwrap().to_string();
    let r = get_json(&format!("{url}/api/rollouts/{id}")).await;
    assert_eq!(r["spec"]["selector"], "label.site=ams");
    assert_eq!(r["spec"]["config"]["session_limit"], 3);
    assert_eq!(r["targets"][0]["device"], "box-1");
    for want in ["paused", "resumed", "aborted"] {
        let ev = page.next();
        assert_eq!(ev["event"], want, "{ev}");
    }
    let r = get_json(&format!("{url}/api/rollouts/{id}")).await;
    assert_eq!(r["phase"], "aborted", "{r}");
    assert_eq!(r["note"], "aborted by the operator");

    let halted = page.next();
    assert_eq!(halted["event"], "halted", "{halted}");
    let failed = halted["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{halted}");
    assert_eq!(failed[0][0], "box-2");
    let why = failed[0][1].as_str().unwrap();
    assert!(
        why.contains("refused the config") && why.contains("above this box's limit 2"),
        "{why}"
    );
    let rolled = page.next();
    assert_eq!(rolled["event"], "rolled_back", "{rolled}");
    // The image rollout from the site's swarm: the spec as the `update` command takes it, and box-1 (not on
    // an A/B image) refusing it.
    let img = page.next();
    assert_eq!(img["event"], "image_halted", "{img}");
    let r = get_json(&format!(
        "{url}/api/rollouts/{}",
        img["id"].as_str().unwrap()
    ))
    .await;
    assert_eq!(
        r["spec"]["image"],
        serde_json::json!({"swarm": *SWARM_ROOT, "peers": "192.168.7.10:7000",
            "sha256": *SWARM_SHA, "version": "1.2.0"}),
        "{r}"
    );
    assert_eq!(img["failed"][0][0], "box-1", "{img}");
    let why = img["failed"][0][1].as_str().unwrap();
    assert!(why.contains("updatable image"), "{why}");
    page.finish();
    let bad = halted["id"].as_str().unwrap();
    let r = get_json(&format!("{url}/api/rollouts/{bad}")).await;
    assert_eq!(r["phase"], "rolled_back", "{r}");
    let d = get_json(&format!("{url}/api/devices/box-2")).await;
    assert!(
        d["desired"]["config"]["session_limit"].is_null(),
        "the old (empty) config: {d}"
    );
    assert_screenshot(&shot);
}

/// The image rollout of the page test: a bundle's swarm root and SHA-256 (any well-formed ones).
static SWARM_ROOT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| "5e".repeat(32));
static SWARM_SHA: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| "a1".repeat(32));

/// Waits until `n` boxes are online in the console with telemetry.
async fn reporting(url: &str, n: usize) {
    until(T, &format!("{n} boxes online with telemetry"), || async {
        let d = get_json(&format!("{url}/api/devices")).await;
        let online = d
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["online"] == true && !d["telemetry_ts_ms"].is_null())
            .count();
        (online == n).then_some(())
    })
    .await;
}
