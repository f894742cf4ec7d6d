//! Processes for the console tests: `edge-fleet device` boxes and `edge-fleet serve`, plus HTTP helpers.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fleet::testkit::Broker;

pub const BIN: &str = env!("CARGO_BIN_EXE_edge-fleet");
pub const USER: &str = "ops";
pub const PASSWORD: &str = "correct horse battery";

/// A child process killed (SIGKILL) on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    pub fn term(&mut self) {
        Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("process did not stop on SIGTERM");
    }
}

/// `edge-fleet device` for `id` with labels `site=SITE`, refusing session limits above `max_sessions`.
pub fn device(b: &Broker, dir: &Path, id: &str, site: &str, max_sessions: Option<u32>) -> Proc {
    let mut c = b.device_config(id);
    c.state_dir = Some(dir.join(format!("{id}-state")));
    c.labels.insert("site".into(), site.into());
    let file = dir.join(format!("{id}.toml"));
    #[derive(serde::Serialize)]
    struct F {
        fleet: fleet::DeviceConfig,
    }
    std::fs::write(&file, toml::to_string(&F { fleet: c }).unwrap()).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["--log", "info", "device", "--config"]).arg(&file);
    if let Some(n) = max_sessions {
        cmd.args(["--max-sessions", &n.to_string()]);
    }
    Proc(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(format!("{id}.log"))).unwrap())
            .spawn()
            .expect("edge-fleet device"),
    )
}

/// Writes the password file with `edge-fleet passwd` (password on stdin).
pub fn passwords(dir: &Path) -> PathBuf {
    let file = dir.join("passwords");
    fleet::testkit::console_passwords(Path::new(BIN), &file, USER, PASSWORD);
    file
}

/// `edge-fleet serve` on a free port with the given client certificate; returns it and its base URL.
pub fn serve(b: &Broker, dir: &Path, cert: &str) -> (Proc, String) {
    let (child, url) = b.console(Path::new(BIN), dir, cert, "info,fleet=debug");
    (Proc(child), url)
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

pub async fn get_json(url: &str) -> serde_json::Value {
    let r = http()
        .get(url)
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{url}");
    r.json().await.unwrap()
}

/// Polls `f` every 200 ms until it returns Some, or panics after `timeout`.
pub async fn until<T, F: std::future::Future<Output = Option<T>>>(
    timeout: Duration,
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < end, "timed out after {timeout:?}: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A check in headless Chromium (`tests/browser/SCRIPT`, puppeteer-core and Debian's chromium, installed by
/// `./x setup`) that reports one JSON document per line on stdout; its stderr goes to `browser.log` in `dir`.
pub struct BrowserCheck {
    proc: Proc,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    log: PathBuf,
}

impl BrowserCheck {
    pub fn start(dir: &Path, script: &str, args: &[&std::ffi::OsStr]) -> Self {
        use std::io::BufRead;
        let browser = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
        assert!(
            browser.join("node_modules/puppeteer-core").is_dir()
                && Path::new("/usr/bin/chromium").exists(),
            "the browser check's toolchain is missing: run ./x setup"
        );
        let log = dir.join("browser.log");
        let mut proc = Proc(
            Command::new("node")
                .arg(browser.join(script))
                .args(args)
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .expect("node"),
        );
        let lines = std::io::BufReader::new(proc.0.stdout.take().unwrap()).lines();
        BrowserCheck { proc, lines, log }
    }

    /// The next report; fails the test (with the browser's log) on a `failed` one or none.
    pub fn next(&mut self) -> serde_json::Value {
        let line = self.lines.next().and_then(Result::ok).unwrap_or_default();
        let log = || std::fs::read_to_string(&self.log).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("the page check said `{line}`\n{}", log()));
        assert_ne!(v["event"], "failed", "{v}\n{}", log());
        v
    }

    pub fn finish(mut self) {
        assert!(self.proc.0.wait().unwrap().success());
    }
}
