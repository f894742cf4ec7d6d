//! `edge-agent demo`: the whole network on one machine, each role a process of its own, on loopback and
//! embedded defaults: a local chain (anvil, contracts deployed, accounts funded), two transcoder boxes
//! (bonded, registered, their service URIs in the ServiceRegistry), the verifier, a broadcaster streaming
//! the test source (or `--input`) over a PPSPP live swarm, and viewers that fetch the renditions' swarms
//! from the elected box and from each other. It shows progress, prints the URL to watch, and ends with a
//! summary and an exit status that says whether every stage worked (see [`report`]).

mod procs;
mod report;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use procs::{Proc, free_port, http_get, wait_for};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Working directory (chain state, keys, logs, HLS of every role); emptied first.
    #[arg(long, default_value = "out/demo")]
    dir: PathBuf,
    /// Seconds of the built-in test source to stream.
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Stream this file (MPEG-TS or MP4, H.264) instead of the test source.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Segment length, seconds.
    #[arg(long, default_value_t = 2.0)]
    segment_seconds: f64,
    /// Viewer processes.
    #[arg(long, default_value_t = 3)]
    viewers: usize,
    /// The job's ladder.
    #[arg(long, default_value = "P360p30fps16x9,P240p30fps16x9")]
    ladder: String,
    /// A block every this many milliseconds.
    #[arg(long, default_value_t = 250)]
    block_ms: u64,
    /// Keep everything running after the summary, to watch in a browser (Ctrl-C ends it).
    #[arg(long)]
    keep: bool,
    /// Write the summary (JSON) here too.
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Share of the swarm datagrams every peer (broadcaster, boxes, viewers) drops when it sends them,
    /// 0..=1: a lossy network, on real UDP.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Share of the swarm datagrams every peer holds back for up to 40 ms, so later ones overtake them.
    #[arg(long, default_value_t = 0.0)]
    reorder: f64,
    /// Extra viewers that corrupt every chunk they upload: the honest viewers must refuse their chunks,
    /// choke them, and still get the whole stream.
    #[arg(long, default_value_t = 0)]
    bad_viewers: usize,
}

const STREAM: &str = "demo";
const TRANSCODERS: [&str; 2] = ["transcoder-a", "transcoder-b"];

fn step(msg: impl std::fmt::Display) {
    eprintln!("\x1b[1m==> {msg}\x1b[0m");
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let t0 = Instant::now();
    // the peers' lossy network (ppspp_udp reads it from the environment of each process)
    let lossy = ppspp_udp::Impairment {
        loss: a.loss,
        reorder: a.reorder,
        max_delay: Duration::from_millis(40),
        corrupt: 0.0,
    };
    let env_of = |i: ppspp_udp::Impairment| -> anyhow::Result<Vec<(String, String)>> {
        if i.is_none() {
            return Ok(Vec::new());
        }
        // refuse what the peers would refuse, here and with the flag's name
        ppspp_udp::Impairment::parse(&i.to_string())
            .context("--loss, --reorder: shares in 0..=1")?;
        Ok(vec![(ppspp_udp::IMPAIR_ENV.to_string(), i.to_string())])
    };
    let net = env_of(lossy)?;
    let corrupting = env_of(ppspp_udp::Impairment {
        corrupt: 1.0,
        ..lossy
    })?;
    if a.dir.exists() {
        std::fs::remove_dir_all(&a.dir).with_context(|| format!("emptying {}", a.dir.display()))?;
    }
    std::fs::create_dir_all(&a.dir)?;
    let dir = std::fs::canonicalize(&a.dir)?;
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)?;

    if let Some((_, v)) = net.first() {
        step(format!("every peer's swarm datagrams: {v}"));
    }
    step("local chain: anvil, contracts deployed, accounts funded");
    let mut accounts: Vec<&str> = TRANSCODERS.to_vec();
    accounts.extend(["broadcaster", "verifier"]);
    let rpc_port = free_port()?;
    let mut devnet = Proc::spawn(
        &logs,
        "devnet",
        &[
            "devnet".into(),
            "--block-time".into(),
            "0".into(),
            "--port".into(),
            rpc_port.to_string(),
            "--dir".into(),
            dir.join("chain").display().to_string(),
            "--accounts".into(),
            accounts.join(","),
        ],
        &[],
    )?;
    let rpc_url = format!("http://127.0.0.1:{rpc_port}");
    wait_for("the devnet", Duration::from_secs(180), || {
        dir.join("chain/verifier.toml").exists() && devnet.try_exit().is_none()
    })
    .with_context(|| format!("devnet: {}", devnet.tail(20)))?;
    let rpc = chain::rpc::Rpc::new(&rpc_url)?;
    let cfg = |name: &str| {
        dir.join("chain")
            .join(format!("{name}.toml"))
            .display()
            .to_string()
    };
    let round_length = 20u64;
    let next_round = |rpc: &chain::rpc::Rpc| -> anyhow::Result<()> {
        let b = rpc.block_number()?;
        rpc.mine((b / round_length + 1) * round_length - b)?;
        Ok(())
    };

    step("two transcoder boxes bond and register (the election will pick one)");
    next_round(&rpc)?;
    procs::run(&["round", "init", "-c", &cfg(TRANSCODERS[0])])?;
    for (i, t) in TRANSCODERS.iter().enumerate() {
        let c = cfg(t);
        procs::run(&[
            "bond",
            if i == 0 { "500" } else { "300" },
            "--to",
            "self",
            "-c",
            &c,
        ])?;
        procs::run(&[
            "transcoder",
            "register",
            "--reward-cut",
            "10",
            "--fee-share",
            "50",
            "--price",
            "1gwei",
            "-c",
            &c,
        ])?;
    }
    next_round(&rpc)?;
    procs::run(&["round", "init", "-c", &cfg(TRANSCODERS[0])])?;
    let miner = Miner::start(&rpc_url, Duration::from_millis(a.block_ms))?;

    step("transcoder daemons (software encoder), each publishing its service URI");
    let mut boxes = Vec::new();
    for t in TRANSCODERS {
        let port = free_port()?;
        let url = format!("http://127.0.0.1:{port}");
        let envs: Vec<(String, String)> = [
            ("EDGE_AGENT__INGEST__LISTEN", format!("127.0.0.1:{port}")),
            ("EDGE_AGENT__CHAIN__SERVICE_URI", url.clone()),
            ("EDGE_AGENT__MEDIA__PLAYLIST_WINDOW", "100000".into()),
            (
                "EDGE_AGENT__MEDIA__SEGMENT_SECONDS",
                a.segment_seconds.to_string(),
            ),
            ("EDGE_AGENT__SWARM__ADVERTISE", "127.0.0.1".into()),
            ("EDGE_AGENT__CHAIN__CLAIMS__MAX_SEGMENTS", "10".into()),
            ("EDGE_AGENT__CHAIN__CLAIMS__CLAIM_AFTER_BLOCKS", "20".into()),
            ("EDGE_AGENT__CHAIN__CLAIMS__POLL_S", "0.2".into()),
            ("EDGE_AGENT__CHAIN__KEEPER__INITIALIZE_ROUND", "true".into()),
            ("EDGE_AGENT__CHAIN__KEEPER__POLL_MS", "200".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(net.iter().cloned())
        .collect();
        let p = Proc::spawn(&logs, t, &["run".into(), "-c".into(), cfg(t)], &envs)?;
        boxes.push(report::Box_ {
            name: t.to_string(),
            url,
            data_dir: dir.join("chain").join(t),
            proc: p,
        });
    }
    for b in &mut boxes {
        let health = format!("{}/healthz", b.url);
        wait_for(
            &format!("{} ready", b.name),
            Duration::from_secs(90),
            || http_get(&health).is_some(),
        )
        .with_context(|| b.proc.tail(20))?;
    }

    step("verifier (the trusted solver)");
    let verifier = Proc::spawn(
        &logs,
        "verifier",
        &[
            "verify".into(),
            "-c".into(),
            cfg("verifier"),
            "--reports".into(),
            dir.join("reports").display().to_string(),
            "--poll".into(),
            "0.2".into(),
            "--give-up-after".into(),
            "20".into(),
            "--log".into(),
            "info".into(),
        ],
        &[],
    )?;

    step(format!(
        "broadcaster: {} over a PPSPP live swarm, {} s segments, ladder {}",
        a.input
            .as_ref()
            .map_or(format!("{} s of the test source", a.duration), |p| p
                .display()
                .to_string()),
        a.segment_seconds,
        a.ladder
    ));
    let mut bargs: Vec<String> = [
        "broadcast",
        "--swarm",
        "--swarm-bind",
        "127.0.0.1:0",
        "--stream",
        STREAM,
        "--ladder",
        &a.ladder,
        "--json",
        "-c",
        &cfg("broadcaster"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    bargs.extend([
        "--segment-seconds".into(),
        a.segment_seconds.to_string(),
        "--out".into(),
        dir.join("broadcaster-copy").display().to_string(),
        "--log".into(),
        "info".into(),
    ]);
    match &a.input {
        Some(p) => bargs.extend(["--input".into(), p.display().to_string()]),
        None => bargs.extend(["--duration".into(), a.duration.to_string()]),
    }
    let mut broadcaster = Proc::spawn(&logs, "broadcaster", &bargs, &net)?;

    // the elected box is the one that serves the stream's swarm manifest
    let mut elected = None;
    wait_for(
        "a transcoder serving the stream",
        Duration::from_secs(120),
        || {
            if broadcaster.try_exit().is_some() {
                return true;
            }
            elected = boxes.iter().position(|b| {
                http_get(&format!("{}/swarm/{STREAM}", b.url))
                    .is_some_and(|m| m.contains("swarm_id"))
            });
            elected.is_some()
        },
    )?;
    let Some(elected) = elected else {
        bail!(
            "the broadcaster stopped before any transcoder served the stream:\n{}",
            broadcaster.tail(20)
        );
    };
    let manifest = format!("{}/swarm/{STREAM}", boxes[elected].url);
    step(format!(
        "{} was elected; {} viewers join its rendition swarms",
        boxes[elected].name, a.viewers
    ));
    let mut viewers = Vec::new();
    let mut bad = Vec::new();
    for i in 0..a.viewers + a.bad_viewers {
        let honest = i < a.viewers;
        let name = if honest {
            format!("viewer-{}", i + 1)
        } else {
            format!("bad-viewer-{}", i + 1 - a.viewers)
        };
        let env = if honest { &net } else { &corrupting };
        let out = dir.join(&name);
        let p = Proc::spawn(
            &logs,
            &name,
            &[
                "view".into(),
                "--manifest".into(),
                manifest.clone(),
                "--out".into(),
                out.join("hls").display().to_string(),
                "--bind".into(),
                "127.0.0.1:0".into(),
                "--summary".into(),
                out.join("summary.json").display().to_string(),
                "--log".into(),
                "info".into(),
            ]
            .into_iter()
            .chain(a.keep.then(|| "--keep".to_string()))
            .collect::<Vec<_>>(),
            env,
        )?;
        let v = report::Viewer {
            name,
            dir: out,
            proc: p,
        };
        if honest {
            viewers.push(v);
        } else {
            bad.push(v);
        }
    }
    if let Some(url) = wait_url(&viewers[0].proc) {
        eprintln!("    watch: {url}  (ffplay, VLC, or any hls.js page)");
    }

    // progress until the broadcaster is done
    let status = loop {
        if let Some(s) = broadcaster.try_exit() {
            break s;
        }
        report::progress(&boxes[elected], &viewers, &rpc);
        std::thread::sleep(Duration::from_secs(2));
    };
    if !status.success() {
        bail!("the broadcaster failed:\n{}", broadcaster.tail(30));
    }
    step("the stream ended; waiting for viewers, claims, verifications and fees");
    for v in &mut viewers {
        if !a.keep && v.proc.wait_exit(Duration::from_secs(60)).is_none() {
            eprintln!("    {} has not seen the end of the stream", v.name);
        }
    }
    let job = report::broadcast_result(&broadcaster)?;
    let mut summary = report::settle(
        &dir,
        &cfg("broadcaster"),
        &boxes,
        elected,
        &viewers,
        &job,
        &rpc,
        t0,
    )?;
    summary.impairment = net.first().map(|(_, v)| v.clone());
    summary.bad_viewers = bad.len();
    summary.bad_chunks_refused = summary.viewers.iter().map(|v| v.bad_chunks).sum();
    if !bad.is_empty() && summary.bad_chunks_refused == 0 {
        summary.ok = false;
        summary
            .failures
            .push("no viewer was offered a corrupt chunk by the bad viewers".into());
    }
    drop(miner);
    let text = serde_json::to_string_pretty(&summary)?;
    println!("{text}");
    if let Some(p) = &a.summary {
        std::fs::write(p, &text)?;
    }
    report::print(&summary);
    if a.keep {
        eprintln!("still running (Ctrl-C ends it)");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(tokio::signal::ctrl_c())?;
    }
    drop(verifier);
    drop(bad);
    drop(viewers);
    drop(boxes);
    drop(devnet);
    if !summary.ok {
        bail!(
            "the demo network did not do everything it should: {}",
            summary.failures.join("; ")
        );
    }
    Ok(())
}

/// The URL a viewer printed (its first stdout line), once it did.
fn wait_url(p: &Proc) -> Option<String> {
    let mut url = None;
    let _ = wait_for("the viewer's URL", Duration::from_secs(30), || {
        url = std::fs::read_to_string(&p.log).ok().and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("http://"))
                .map(str::to_string)
        });
        url.is_some()
    });
    url
}

/// A block every `every`: the devnet mines on transactions only, and rounds, elections and windows need
/// blocks to pass while the processes work.
struct Miner {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Miner {
    fn start(url: &str, every: Duration) -> anyhow::Result<Miner> {
        let rpc = chain::rpc::Rpc::new(url)?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = rpc.mine(1);
                std::thread::sleep(every);
            }
        });
        Ok(Miner {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Miner {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
