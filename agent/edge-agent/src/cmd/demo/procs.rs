//! The demo's processes: every role is this same binary in a process of its own, its output in a log file
//! under the demo directory, killed when the demo ends.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A child process of the demo: killed on drop.
pub struct Proc {
    pub log: PathBuf,
    child: Child,
}

impl Proc {
    /// `edge-agent ARGS` with `envs`, stdout and stderr into `<dir>/<name>.log`.
    pub fn spawn(
        dir: &Path,
        name: &str,
        args: &[String],
        envs: &[(String, String)],
    ) -> anyhow::Result<Proc> {
        let log = dir.join(format!("{name}.log"));
        let f =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new(std::env::current_exe()?)
            .args(args)
            .env("RUST_BACKTRACE", "0")
            .env_remove("RUST_LOG")
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(f.try_clone()?)
            .stderr(f)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Proc { log, child })
    }

    /// Exit status once it has exited.
    pub fn try_exit(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits up to `timeout` for it to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Some(s) = self.try_exit() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// The last `n` lines of its log.
    pub fn tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.try_exit().is_none() {
            // SIGTERM first, so daemons close their playlists and journals; then kill
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            if self.wait_exit(Duration::from_secs(5)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// Runs `edge-agent ARGS` to completion; its stdout, or the error with its output.
pub fn run(args: &[&str]) -> anyhow::Result<String> {
    let o = Command::new(std::env::current_exe()?)
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running edge-agent {}", args.join(" ")))?;
    if !o.status.success() {
        bail!(
            "edge-agent {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// A free TCP port on 127.0.0.1 (bound and released; the demo's processes start right after).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// GET on 127.0.0.1: the body of a 2xx answer.
pub fn http_get(url: &str) -> Option<String> {
    let r = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .ok()?
        .get(url)
        .send()
        .ok()?;
    r.status().is_success().then(|| r.text().ok()).flatten()
}

/// A Prometheus sample without labels, from `/metrics` text.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

/// Polls `f` every 100 ms until it is true or `timeout` passes.
pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> anyhow::Result<()> {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{what}: not within {timeout:?}")
}
