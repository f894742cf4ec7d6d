//! The A/B image the daemon runs on (see `image/`): which root slot was booted, the image's version, and
//! the fleet's `update` command: download the bundle, check its SHA-256, hand it to RAUC, reboot into the new
//! slot once the streams are drained, and tell the fleet how it ended.
//!
//! The boot side is not the agent's: GRUB counts the try, the health gate (`edge-health.service`) keeps the
//! slot with `rauc status mark-good` or rolls back. The agent reads the outcome from what is on disk:
//! - `update/status.json`: the update it installed (version, target slot), written before the reboot;
//! - `update/gate-<slot>.json`: the health gate's last verdict on each slot (passed, reason, when);
//! - the kernel command line's `rauc.slot=`: the slot GRUB booted.
//!
//! A box whose kernel command line has no `rauc.slot=` is not on an A/B image: it refuses `update`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fleet::proto::{
    BUNDLE_CHUNK_SIZE, BundleSource, UpdateRequest, UpdateState, UpdateStatus, now_ms,
};
use fleet::window::MaintenanceWindow;
use serde::Deserialize;
use sha2::Digest;

use super::Shared;

/// Where the image keeps its version.
pub const VERSION_FILE: &str = "/etc/edge-image/version";
/// Largest bundle the agent downloads.
const MAX_BUNDLE_BYTES: u64 = 2 << 30;
/// How long an update waits for the health gate's verdict on the running boot.
const GATE_WAIT: Duration = Duration::from_secs(10 * 60);
/// How long a reboot waits for the streams to end before it goes ahead anyway.
const DRAIN_MAX: Duration = Duration::from_secs(30 * 60);

/// What the daemon knows of its image.
#[derive(Debug, Clone)]
pub struct ImageEnv {
    /// The booted slot (`A` or `B`).
    pub slot: String,
    pub version: Option<String>,
    /// `<data_dir>/update`: the update's files and records.
    pub dir: PathBuf,
    /// The update client's command (`rauc`).
    pub rauc: Vec<String>,
}

impl ImageEnv {
    /// Reads the booted slot from `/proc/cmdline` and the version from [`VERSION_FILE`]; `None` when the box
    /// is not on an A/B image.
    pub fn detect(data_dir: &Path) -> Option<Self> {
        let cmdline = std::fs::read_to_string("/proc/cmdline").ok()?;
        let slot = booted_slot(&cmdline)?;
        let version = std::fs::read_to_string(VERSION_FILE)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty());
        Some(ImageEnv {
            slot,
            version,
            dir: data_dir.join("update"),
            rauc: vec!["rauc".into()],
        })
    }

    /// The other slot of a two-slot box: where an update is written.
    pub fn other_slot(&self) -> &'static str {
        if self.slot == "A" { "B" } else { "A" }
    }

    fn status_path(&self) -> PathBuf {
        self.dir.join("status.json")
    }

    /// The update's state now, from the records on disk and the booted slot.
    pub fn update_status(&self) -> Option<UpdateStatus> {
        let record: Option<UpdateStatus> = read_json(&self.status_path());
        let target = record.as_ref().and_then(|r| r.slot.clone())?;
        let gate: Option<GateVerdict> = read_json(&self.dir.join(format!("gate-{target}.json")));
        resolve(record, &self.slot, boot_time(), gate.as_ref())
    }

    /// Writes the update's state (atomically; it must survive a power cut).
    fn record(&self, status: &UpdateStatus) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join("status.json.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(status).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
        std::fs::rename(tmp, self.status_path())
    }
}

/// The health gate's verdict on a boot (`update/gate.json`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct GateVerdict {
    pub slot: String,
    pub passed: bool,
    #[serde(default)]
    pub reason: String,
    /// Unix seconds.
    pub at: u64,
}

/// `rauc.slot=X` on a kernel command line.
pub fn booted_slot(cmdline: &str) -> Option<String> {
    cmdline
        .split_ascii_whitespace()
        .find_map(|w| w.strip_prefix("rauc.slot="))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn read_json<T: serde::de::DeserializeOwned>(p: &Path) -> Option<T> {
    let bytes = std::fs::read(p).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(path = %p.display(), error = %e, "unreadable update record; ignored");
            None
        }
    }
}

/// What became of the recorded update, given the slot that was booted (and when: Unix seconds) and the
/// health gate's last verdict on the update's target slot. An update recorded as installed reboots into its
/// target slot: there the gate keeps it or fails it; a box that booted since the install and is on the
/// other slot was rolled back (the gate failed, or the boot never confirmed and GRUB gave up on it).
pub fn resolve(
    record: Option<UpdateStatus>,
    booted: &str,
    booted_at: u64,
    target_gate: Option<&GateVerdict>,
) -> Option<UpdateStatus> {
    let mut r = record?;
    if r.state != UpdateState::Installed && r.state != UpdateState::Booted {
        return Some(r);
    }
    let Some(target) = r.slot.clone() else {
        return Some(r);
    };
    let installed_s = r.ts_ms / 1000;
    let verdict = target_gate.filter(|g| g.slot == target && g.at >= installed_s);
    let failed = |r: &mut UpdateStatus, g: &GateVerdict| {
        r.state = UpdateState::RolledBack;
        r.detail = Some(format!(
            "slot {target} failed its health gate: {}",
            g.reason
        ));
    };
    match verdict {
        Some(g) if g.passed && booted == target => r.state = UpdateState::Succeeded,
        Some(g) if !g.passed => failed(&mut r, g),
        _ if booted == target => r.state = UpdateState::Booted,
        _ if booted_at > installed_s => {
            r.state = UpdateState::RolledBack;
            r.detail = Some(format!(
                "slot {target} did not confirm its boot; the box is back on slot {booted}"
            ));
        }
        // Not rebooted since the install yet.
        _ => {}
    }
    Some(r)
}

/// When this boot began (Unix seconds), from `/proc/stat`.
fn boot_time() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Waits, before the reboot into an installed update, until the maintenance window of the desired config is
/// open (no window: at once). The window is read again every minute, so a changed desired config applies;
/// while it waits the box reports its update as installed, waiting for the window.
async fn await_window(shared: &Shared) {
    let mut said = None;
    loop {
        let window = shared
            .runtime()
            .maintenance_window
            .and_then(|w| MaintenanceWindow::parse(&w).ok());
        let Some(w) = window else { return };
        let wait = w.wait_from(now_ms() / 1000);
        if wait.is_zero() {
            return;
        }
        if said != Some(w) {
            let detail = format!(
                "installed; the reboot waits for the maintenance window {w} (opens in {} min)",
                wait.as_secs().div_ceil(60)
            );
            tracing::info!(%detail, "update");
            if let Some(env) = &shared.image {
                let mut status = env.update_status().unwrap_or(UpdateStatus {
                    version: String::new(),
                    state: UpdateState::Installed,
                    slot: Some(env.other_slot().to_string()),
                    progress: None,
                    detail: None,
                    ts_ms: now_ms(),
                });
                status.detail = Some(detail);
                if let Err(e) = env.record(&status) {
                    tracing::error!(error = %e, "recording the update's state failed");
                }
            }
            said = Some(w);
        }
        tokio::time::sleep(wait.min(Duration::from_secs(60))).await;
    }
}

/// The fleet's `update`: runs to the install, then reboots in the background once the box is drained.
pub async fn update(shared: Arc<Shared>, req: UpdateRequest) -> Result<serde_json::Value, String> {
    let env = shared.image.clone().ok_or(
        "this box is not running on an A/B image (no rauc.slot= on its kernel command line)",
    )?;
    if shared.updating.swap(true, Ordering::SeqCst) {
        return Err("an update is already in progress".into());
    }
    if let Err(e) = await_gate(&env).await {
        shared.updating.store(false, Ordering::SeqCst);
        return Err(e);
    }
    let r = install(&shared, &env, &req).await;
    let (state, detail) = match &r {
        Ok(_) => (UpdateState::Installed, None),
        Err(e) => (UpdateState::Failed, Some(e.clone())),
    };
    let status = UpdateStatus {
        version: req.version.clone(),
        state,
        slot: Some(env.other_slot().to_string()),
        progress: None,
        detail,
        ts_ms: now_ms(),
    };
    if let Err(e) = env.record(&status) {
        tracing::error!(error = %e, "recording the update's state failed");
    }
    *shared.update_progress.lock().unwrap() = None;
    if r.is_err() {
        // A bundle this box would not install is not served to the others either.
        shared.bundle_seed.lock().unwrap().take();
        shared.updating.store(false, Ordering::SeqCst);
        return r;
    }
    tokio::spawn(reboot_when_drained(shared));
    r
}

/// Waits until the health gate has judged this boot (bounded by [`GATE_WAIT`]): an update must not race the
/// gate's `mark-good`, nor go out from a slot whose boot is still on trial.
async fn await_gate(env: &ImageEnv) -> Result<(), String> {
    let path = env.dir.join(format!("gate-{}.json", env.slot));
    let booted = boot_time();
    let t0 = std::time::Instant::now();
    loop {
        let verdict: Option<GateVerdict> = read_json(&path);
        if verdict.is_some_and(|g| g.at >= booted) {
            return Ok(());
        }
        if t0.elapsed() > GATE_WAIT {
            return Err(format!(
                "slot {} has no health-gate verdict since this boot (edge-health.service); not updating",
                env.slot
            ));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn install(
    shared: &Shared,
    env: &ImageEnv,
    req: &UpdateRequest,
) -> Result<serde_json::Value, String> {
    let progress = |state, pct| {
        *shared.update_progress.lock().unwrap() = Some(UpdateStatus {
            version: req.version.clone(),
            state,
            slot: Some(env.other_slot().to_string()),
            progress: pct,
            detail: None,
            ts_ms: now_ms(),
        });
    };
    tokio::fs::create_dir_all(&env.dir)
        .await
        .map_err(|e| format!("creating {}: {e}", env.dir.display()))?;
    let bundle = env.dir.join("bundle.raucb");
    progress(UpdateState::Downloading, Some(0));
    let t0 = std::time::Instant::now();
    let pct = |p| progress(UpdateState::Downloading, Some(p));
    let (bytes, via) = match req.source()? {
        BundleSource::Url(url) => {
            let bytes = download(&url, &req.sha256, &bundle, pct).await?;
            (bytes, serde_json::json!({ "https": url }))
        }
        BundleSource::Swarm { id, peers } => {
            let (bytes, node) = fetch_swarm(&id, &peers, &req.sha256, &bundle, pct).await?;
            let up = node.stats().await.map(|s| s.data_bytes_up).unwrap_or(0);
            let via = serde_json::json!({
                "swarm": req.swarm, "peers": peers.len(), "served_bytes_so_far": up,
                "serving_on": node.local_addr().to_string(),
            });
            // The other boxes of the site fetch from this one until it reboots.
            *shared.bundle_seed.lock().unwrap() = Some(node);
            (bytes, via)
        }
    };
    let download_s = t0.elapsed().as_secs_f64();
    tracing::info!(%via, bytes, download_s, "update bundle fetched and its SHA-256 checked");

    progress(UpdateState::Installing, None);
    let t1 = std::time::Instant::now();
    let result = rauc_install(env, &bundle, &req.version).await;
    let _ = tokio::fs::remove_file(&bundle).await;
    result?;
    let install_s = t1.elapsed().as_secs_f64();
    tracing::info!(version = %req.version, slot = env.other_slot(), install_s, "update installed");
    Ok(serde_json::json!({
        "version": req.version,
        "from_slot": env.slot,
        "slot": env.other_slot(),
        "bytes": bytes,
        "via": via,
        "download_s": (download_s * 100.0).round() / 100.0,
        "install_s": (install_s * 100.0).round() / 100.0,
        "reboot": "once the box has no stream",
    }))
}

/// How long a fetch from the site's swarm may take, and may go without a new chunk.
const SWARM_TIMEOUT: Duration = Duration::from_secs(60 * 60);
const SWARM_STALL: Duration = Duration::from_secs(120);

/// Fetches the bundle whose Merkle root is `id` from the site's swarm (`peers`, and the boxes PEX leads to),
/// every chunk verified against the root as it arrives, then writes it to `dest` and checks its SHA-256 as
/// [`download`] does. The node is handed back running: it serves the bundle to the other boxes.
async fn fetch_swarm(
    id: &[u8],
    peers: &[std::net::SocketAddr],
    sha256: &str,
    dest: &Path,
    progress: impl Fn(u8),
) -> Result<(u64, ppspp_udp::Node), String> {
    let cfg = ppspp::SwarmConfig {
        chunk_size: BUNDLE_CHUNK_SIZE,
        hash: ppspp::wire::HashFunc::Sha256,
        seed: ppspp_udp::random_seed(),
        ..Default::default()
    };
    let limits = ppspp_udp::FetchLimits {
        timeout: SWARM_TIMEOUT,
        stall: SWARM_STALL,
        max_bytes: Some(MAX_BUNDLE_BYTES),
    };
    let bind = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
    let mut last = None;
    let (node, data) = ppspp_udp::fetch_static(cfg, id, peers, bind, limits, |have, total| {
        if let Some(n) = total.filter(|n| *n > 0) {
            let pct = (have * 100 / n).min(100) as u8;
            if last != Some(pct) {
                last = Some(pct);
                progress(pct);
            }
        }
    })
    .await
    .map_err(|e| format!("fetching the bundle from the swarm: {e}"))?;
    // Hundreds of megabytes: hashed off the runtime's worker threads.
    let (digest, data) =
        tokio::task::spawn_blocking(move || (hex::encode(sha2::Sha256::digest(&data)), data))
            .await
            .map_err(|e| format!("hashing the bundle: {e}"))?;
    if !digest.eq_ignore_ascii_case(sha256) {
        return Err(format!(
            "the bundle's SHA-256 is {digest}, the command said {sha256}: refused"
        ));
    }
    let part = dest.with_extension("part");
    let write = async {
        let mut f = tokio::fs::File::create(&part).await?;
        tokio::io::AsyncWriteExt::write_all(&mut f, &data).await?;
        f.sync_all().await?;
        tokio::fs::rename(&part, dest).await
    };
    if let Err(e) = write.await {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(format!("writing {}: {e}", dest.display()));
    }
    Ok((data.len() as u64, node))
}

/// Downloads `url` to `dest`, hashing as it goes; a size above the bound or a digest that differs removes
/// the file and fails.
async fn download(
    url: &str,
    sha256: &str,
    dest: &Path,
    progress: impl Fn(u8),
) -> Result<u64, String> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| format!("http client: {e}"))?;
    let mut resp = client
        .get(url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("fetching {url}: {e}"))?;
    let total = resp.content_length();
    if total.is_some_and(|t| t > MAX_BUNDLE_BYTES) {
        return Err(format!(
            "the bundle at {url} is larger than {MAX_BUNDLE_BYTES} bytes"
        ));
    }
    let part = dest.with_extension("part");
    let mut file = tokio::fs::File::create(&part)
        .await
        .map_err(|e| format!("creating {}: {e}", part.display()))?;
    let mut hasher = sha2::Sha256::new();
    let mut got: u64 = 0;
    let mut last_pct = 0;
    let result = async {
        use tokio::io::AsyncWriteExt;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("downloading {url}: {e}"))?
        {
            got += chunk.len() as u64;
            if got > MAX_BUNDLE_BYTES {
                return Err(format!(
                    "the bundle at {url} is larger than {MAX_BUNDLE_BYTES} bytes"
                ));
            }
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|e| format!("writing {}: {e}", part.display()))?;
            if let Some(t) = total.filter(|t| *t > 0) {
                let pct = (got * 100 / t).min(100) as u8;
                if pct != last_pct {
                    last_pct = pct;
                    progress(pct);
                }
            }
        }
        file.sync_all()
            .await
            .map_err(|e| format!("writing {}: {e}", part.display()))?;
        let digest = hex::encode(hasher.finalize());
        if !digest.eq_ignore_ascii_case(sha256) {
            return Err(format!(
                "the bundle's SHA-256 is {digest}, the command said {sha256}: refused"
            ));
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(e);
    }
    tokio::fs::rename(&part, dest)
        .await
        .map_err(|e| format!("renaming {}: {e}", part.display()))?;
    Ok(got)
}

/// Checks the bundle (signature, compatible, version) with `rauc info`, then installs it with `rauc install`:
/// RAUC writes the inactive slot and puts it first in GRUB's boot order.
async fn rauc_install(env: &ImageEnv, bundle: &Path, version: &str) -> Result<(), String> {
    let info = run(env, &["info", "--output-format=json"], bundle).await?;
    let manifest: serde_json::Value =
        serde_json::from_str(&info).map_err(|e| format!("rauc info: unreadable answer: {e}"))?;
    let bundled = manifest
        .get("version")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    if bundled != version {
        return Err(format!(
            "the bundle carries version `{bundled}`, the command said `{version}`: refused"
        ));
    }
    run(env, &["install"], bundle).await.map(|_| ())
}

async fn run(env: &ImageEnv, args: &[&str], bundle: &Path) -> Result<String, String> {
    let what = format!("{} {}", env.rauc.join(" "), args.join(" "));
    let out = tokio::time::timeout(
        Duration::from_secs(30 * 60),
        tokio::process::Command::new(&env.rauc[0])
            .args(&env.rauc[1..])
            .args(args)
            .arg(bundle)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| format!("`{what}` did not finish within 30 minutes"))?
    .map_err(|e| format!("running `{what}`: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        // rauc prints its progress and the reason (`LastError: ...`) on stdout, a summary on stderr.
        let stdout = String::from_utf8_lossy(&out.stdout);
        let reason = stdout
            .find("LastError:")
            .map(|i| stdout[i..].trim())
            .unwrap_or("");
        let text = format!("{reason} {}", String::from_utf8_lossy(&out.stderr).trim());
        let text = text.trim().replace('\n', "; ");
        let mut start = text.len().saturating_sub(600);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        Err(format!(
            "`{what}` failed ({}): {}",
            out.status,
            &text[start..]
        ))
    }
}

/// Waits until no stream runs (bounded by [`DRAIN_MAX`]), then reboots with the fleet's reboot command.
async fn reboot_when_drained(shared: Arc<Shared>) {
    await_window(&shared).await;
    let t0 = std::time::Instant::now();
    loop {
        let n = shared.active_streams();
        if n == 0 {
            break;
        }
        if t0.elapsed() > DRAIN_MAX {
            tracing::warn!(
                streams = n,
                "streams still running after the drain limit; rebooting anyway"
            );
            break;
        }
        tracing::info!(
            streams = n,
            "update installed; waiting for the streams to end before the reboot"
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    // Give the fleet the command's result and a last telemetry sample first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let argv = shared
        .config
        .fleet
        .as_ref()
        .map(|f| f.reboot_command.clone())
        .unwrap_or_else(|| vec!["systemctl".into(), "reboot".into()]);
    tracing::warn!(?argv, "rebooting into the updated slot");
    let failed = match tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .status()
        .await
    {
        Ok(s) if s.success() => return,
        Ok(s) => format!("`{}` failed ({s})", argv.join(" ")),
        Err(e) => format!("`{}` could not run: {e}", argv.join(" ")),
    };
    // The new slot stays first in GRUB's order: the next reboot, whoever makes it, boots it. Until then the
    // box takes commands again, a new update included.
    tracing::error!(error = %failed, "rebooting into the updated slot failed");
    shared.updating.store(false, Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn installed(slot: &str, ts_s: u64) -> UpdateStatus {
        UpdateStatus {
            version: "2".into(),
            state: UpdateState::Installed,
            slot: Some(slot.into()),
            progress: None,
            detail: None,
            ts_ms: ts_s * 1000,
        }
    }

    fn gate(slot: &str, passed: bool, at: u64) -> GateVerdict {
        GateVerdict {
            slot: slot.into(),
            passed,
            reason: if passed { "ok" } else { "no READY" }.into(),
            at,
        }
    }

    #[test]
    fn the_booted_slot_comes_from_the_kernel_command_line() {
        assert_eq!(
            booted_slot("root=PARTUUID=x ro rauc.slot=B quiet").as_deref(),
            Some("B")
        );
        assert_eq!(booted_slot("root=/dev/sda1 ro"), None);
        assert_eq!(booted_slot("rauc.slot= ro"), None);
    }

    #[test]
    fn an_update_is_installed_booted_then_kept_or_rolled_back() {
        let b = |at| Some(gate("B", true, at));
        // Before the reboot: still on A, booted before the install.
        let r = resolve(Some(installed("B", 100)), "A", 10, None).unwrap();
        assert_eq!(r.state, UpdateState::Installed);
        // An old verdict on B (an earlier update) says nothing of this one.
        let r = resolve(Some(installed("B", 100)), "A", 10, b(50).as_ref()).unwrap();
        assert_eq!(r.state, UpdateState::Installed);
        // On B, the gate has not spoken yet.
        let r = resolve(Some(installed("B", 100)), "B", 120, None).unwrap();
        assert_eq!(r.state, UpdateState::Booted);
        // On B, the gate passed.
        let r = resolve(Some(installed("B", 100)), "B", 120, b(160).as_ref()).unwrap();
        assert_eq!(r.state, UpdateState::Succeeded);
        // The gate failed B: rolled back, with the gate's reason, on B until the reboot and on A after it.
        for booted in ["B", "A"] {
            let g = gate("B", false, 160);
            let r = resolve(Some(installed("B", 100)), booted, 170, Some(&g)).unwrap();
            assert_eq!(r.state, UpdateState::RolledBack);
            assert!(r.detail.unwrap().contains("no READY"));
        }
        // B never got as far as its gate (a panic, a hang, a power cut): the box booted A again.
        let r = resolve(Some(installed("B", 100)), "A", 200, None).unwrap();
        assert_eq!(r.state, UpdateState::RolledBack);
        assert!(r.detail.unwrap().contains("did not confirm"));
        // Final states stay as they are.
        let mut done = installed("B", 100);
        done.state = UpdateState::Failed;
        assert_eq!(
            resolve(Some(done), "A", 200, None).unwrap().state,
            UpdateState::Failed
        );
        assert_eq!(resolve(None, "A", 200, None), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bundle_from_the_swarm_is_checked_written_and_served_on() {
        let bundle: Vec<u8> = (0..500_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let cfg = ppspp::SwarmConfig {
            chunk_size: BUNDLE_CHUNK_SIZE,
            hash: ppspp::wire::HashFunc::Sha256,
            seed: 1,
            ..Default::default()
        };
        let seeder = ppspp_udp::Node::spawn(
            ppspp::Swarm::new_static_seed(cfg, &bundle, std::time::Instant::now()),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let root = seeder.swarm_id().to_vec();
        let peers = [seeder.local_addr()];
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("bundle.raucb");
        let sha = hex::encode(sha2::Sha256::digest(&bundle));
        let pcts = std::sync::Mutex::new(Vec::new());

        let (bytes, node) =
            fetch_swarm(&root, &peers, &sha, &dest, |p| pcts.lock().unwrap().push(p))
                .await
                .unwrap();
        assert_eq!(bytes, bundle.len() as u64);
        assert!(std::fs::read(&dest).unwrap() == bundle);
        assert_eq!(pcts.lock().unwrap().last(), Some(&100));
        // The node serves the bundle on (on every address: it is bound to 0.0.0.0): another box fetches it
        // from this one alone.
        let this_box = std::net::SocketAddr::from(([127, 0, 0, 1], node.local_addr().port()));
        let other = dir.path().join("other.raucb");
        let (_, _n) = fetch_swarm(&root, &[this_box], &sha, &other, |_| {})
            .await
            .unwrap();
        assert!(std::fs::read(&other).unwrap() == bundle);

        // A root and a SHA-256 that disagree: refused, nothing left behind.
        let wrong = dir.path().join("wrong.raucb");
        let e = fetch_swarm(&root, &peers, &"00".repeat(32), &wrong, |_| {})
            .await
            .err()
            .unwrap();
        assert!(e.contains("SHA-256") && e.contains("refused"), "{e}");
        assert!(!wrong.exists() && !wrong.with_extension("part").exists());
    }
}
