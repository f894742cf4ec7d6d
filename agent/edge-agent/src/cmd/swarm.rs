//! `edge-agent swarm`: move content between boxes with PPSPP (RFC 7574) over UDP.
//!
//!   edge-agent swarm seed FILE [--bind ADDR]                      prints the swarm ID, serves until Ctrl-C
//!                                                                 or SIGTERM, then prints its traffic (JSON)
//!   edge-agent swarm fetch SWARM_ID --peer HOST:PORT -o FILE      downloads, verifies, shows progress;
//!                                   [--linger SECS]               serves it on, then prints its traffic
//!   edge-agent swarm live-source [--input FILE|-] [--bind ADDR]   publishes a growing stream, prints the ID
//!   edge-agent swarm live-join SWARM_ID --peer HOST:PORT -o FILE  joins mid-stream, writes what arrives

use anyhow::{Context, Result, bail};
use ppspp::wire::HashFunc;
use ppspp::{Event, Swarm, SwarmConfig};
use ppspp_udp::Node;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct SwarmArgs {
    #[command(subcommand)]
    cmd: SwarmCmd,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum HashArg {
    Sha1,
    Sha256,
}

#[derive(Debug, clap::Args)]
struct Common {
    /// Local UDP address to bind.
    #[arg(long, default_value = "0.0.0.0:0")]
    bind: SocketAddr,
    /// Chunk size in bytes (all peers of a swarm must agree).
    #[arg(long, default_value_t = 1024)]
    chunk_size: u32,
    /// Merkle hash function.
    #[arg(long, value_enum, default_value_t = HashArg::Sha1)]
    hash: HashArg,
}

impl Common {
    fn config(&self) -> SwarmConfig {
        SwarmConfig {
            chunk_size: self.chunk_size,
            hash: match self.hash {
                HashArg::Sha1 => HashFunc::Sha1,
                HashArg::Sha256 => HashFunc::Sha256,
            },
            seed: ppspp_udp::random_seed(),
            ..Default::default()
        }
    }
}

#[derive(Debug, clap::Subcommand)]
enum SwarmCmd {
    /// Serve a file; prints its swarm ID (the Merkle root hash, hex).
    Seed {
        file: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Download a file by swarm ID from one or more peers.
    Fetch {
        swarm_id: String,
        /// A peer to start from (more are found by PEX).
        #[arg(long, required = true)]
        peer: Vec<SocketAddr>,
        #[arg(short, long)]
        output: PathBuf,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
        /// Once complete, go on serving the file to the other peers for this many seconds.
        #[arg(long, default_value_t = 0)]
        linger: u64,
        #[command(flatten)]
        common: Common,
    },
    /// Publish a live stream read from a file as it grows (or stdin); prints the swarm ID.
    LiveSource {
        #[arg(long, default_value = "-")]
        input: String,
        /// File holding the 32-byte Ed25519 secret seed, hex (default: `$SWARM_KEY_SEED`, else random). A
        /// secret is never an argument: every process on the machine can read a command line.
        #[arg(long, value_name = "FILE")]
        key_seed_file: Option<PathBuf>,
        /// Stop this many seconds after the input stops growing (0: serve until Ctrl-C).
        #[arg(long, default_value_t = 0)]
        idle_exit: u64,
        #[command(flatten)]
        common: Common,
    },
    /// Join a live stream mid-stream and write the chunks that arrive, in order.
    LiveJoin {
        swarm_id: String,
        #[arg(long, required = true)]
        peer: Vec<SocketAddr>,
        /// Output file, or - for stdout.
        #[arg(short, long, default_value = "-")]
        output: String,
        /// Stop after this many seconds (0: until Ctrl-C).
        #[arg(long, default_value_t = 0)]
        duration: u64,
        #[command(flatten)]
        common: Common,
    },
}

fn unhex(s: &str) -> Result<Vec<u8>> {
    let s = s.trim();
    if s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("not a hex string: {s:?}");
    }
    Ok((0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn run(a: SwarmArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match a.cmd {
            SwarmCmd::Seed { file, common } => seed(file, common).await,
            SwarmCmd::Fetch {
                swarm_id,
                peer,
                output,
                timeout,
                linger,
                common,
            } => fetch(swarm_id, peer, output, timeout, linger, common).await,
            SwarmCmd::LiveSource {
                input,
                key_seed_file,
                idle_exit,
                common,
            } => {
                let seed = key_seed(
                    key_seed_file.as_deref(),
                    std::env::var(KEY_SEED_ENV)
                        .ok()
                        .map(zeroize::Zeroizing::new),
                )?;
                live_source(input, seed, idle_exit, common).await
            }
            SwarmCmd::LiveJoin {
                swarm_id,
                peer,
                output,
                duration,
                common,
            } => live_join(swarm_id, peer, output, duration, common).await,
        }
    })
}

async fn seed(file: PathBuf, common: Common) -> Result<()> {
    let data = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let swarm = Swarm::new_static_seed(common.config(), &data, Instant::now());
    let mut node = Node::spawn(swarm, common.bind)
        .await
        .with_context(|| format!("binding {}", common.bind))?;
    println!("{}", hex(node.swarm_id()));
    eprintln!(
        "seeding {} ({} bytes) on {}",
        file.display(),
        data.len(),
        node.local_addr()
    );
    let stop = stop_signal()?;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            e = node.next_event() => match e {
                Some(ev) => tracing::debug!(?ev, "swarm event"),
                None => bail!("swarm task ended"),
            },
        }
    }
    print_stats(&node).await;
    node.stop().await?;
    Ok(())
}

async fn fetch(
    swarm_id: String,
    peers: Vec<SocketAddr>,
    output: PathBuf,
    timeout: u64,
    linger: u64,
    common: Common,
) -> Result<()> {
    let id = unhex(&swarm_id).context("swarm id")?;
    let t0 = Instant::now();
    let limits = ppspp_udp::FetchLimits {
        timeout: Duration::from_secs(timeout),
        stall: Duration::from_secs(timeout),
        max_bytes: None,
    };
    let chunk = common.chunk_size as f64;
    let (node, data) = ppspp_udp::fetch_static(
        common.config(),
        &id,
        &peers,
        common.bind,
        limits,
        |have, total| {
            let mb = have as f64 * chunk / 1e6;
            let rate = mb / t0.elapsed().as_secs_f64().max(1e-3);
            match total {
                Some(n) => eprint!(
                    "\r{have}/{n} chunks ({:.1}%), {rate:.1} MB/s   ",
                    100.0 * have as f64 / n.max(1) as f64
                ),
                None => eprint!("\rconnecting... {:.0}s   ", t0.elapsed().as_secs_f64()),
            }
        },
    )
    .await?;
    std::fs::write(&output, &data).with_context(|| format!("writing {}", output.display()))?;
    eprintln!(
        "\ndone: {} bytes in {:.2}s, verified against {}",
        data.len(),
        t0.elapsed().as_secs_f64(),
        swarm_id
    );
    if linger > 0 {
        eprintln!("serving it to the other peers for {linger}s");
        let stop = stop_signal()?;
        tokio::select! {
            _ = stop => {}
            _ = tokio::time::sleep(Duration::from_secs(linger)) => {}
        }
    }
    print_stats(&node).await;
    node.stop().await?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM (a benchmark or a service manager stopping the process).
fn stop_signal() -> Result<impl std::future::Future<Output = ()>> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    })
}

/// The node's traffic, one JSON line on stdout (`bytes_up` counts every datagram sent, `data_bytes_up`
/// only the content in them).
async fn print_stats(node: &Node) {
    if let Some(s) = node.stats().await {
        println!(
            "{}",
            serde_json::json!({
                "bytes_up": s.bytes_up, "data_bytes_up": s.data_bytes_up, "bytes_down": s.bytes_down,
                "chunks_verified": s.chunks_verified, "chunks_duplicate": s.chunks_duplicate,
            })
        );
    }
}

/// Where a live source's secret seed may come from when no `--key-seed-file` is given (hex).
const KEY_SEED_ENV: &str = "SWARM_KEY_SEED";

/// The live source's secret seed: from `file` (hex, surrounding white space ignored), else from the
/// environment's value (hex), else none (a random one).
fn key_seed(
    file: Option<&std::path::Path>,
    env: Option<zeroize::Zeroizing<String>>,
) -> Result<Option<[u8; 32]>> {
    let text = match (file, env) {
        (Some(f), _) => zeroize::Zeroizing::new(
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?,
        ),
        (None, Some(v)) if !v.trim().is_empty() => v,
        (None, _) => return Ok(None),
    };
    let bytes = zeroize::Zeroizing::new(
        unhex(&text).map_err(|_| anyhow::anyhow!("the key seed is not hex"))?,
    );
    let seed: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| anyhow::anyhow!("the key seed must be 32 bytes, not {}", bytes.len()))?;
    Ok(Some(seed))
}

async fn live_source(
    input: String,
    key_seed: Option<[u8; 32]>,
    idle_exit: u64,
    common: Common,
) -> Result<()> {
    let seed: [u8; 32] = match key_seed {
        Some(s) => s,
        None => {
            let mut s = [0u8; 32];
            for c in s.chunks_mut(8) {
                c.copy_from_slice(&ppspp_udp::random_seed().to_le_bytes());
            }
            s
        }
    };
    let swarm = Swarm::new_live_source(common.config(), seed, Instant::now());
    let node = Node::spawn(swarm, common.bind)
        .await
        .with_context(|| format!("binding {}", common.bind))?;
    println!("{}", hex(node.swarm_id()));
    eprintln!("live source on {}", node.local_addr());
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    // Blocking reader: follows a growing file (like tail -f) or reads stdin.
    std::thread::spawn(move || -> Result<()> {
        use std::io::Read;
        let mut r: Box<dyn Read> = if input == "-" {
            Box::new(std::io::stdin())
        } else {
            Box::new(std::fs::File::open(&input).with_context(|| format!("opening {input}"))?)
        };
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                if input == "-" {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(50));
                if tx.blocking_send(Vec::new()).is_err() {
                    return Ok(());
                }
                continue;
            }
            if tx.blocking_send(buf[..n].to_vec()).is_err() {
                return Ok(());
            }
        }
    });
    let mut last_data = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            d = rx.recv() => match d {
                Some(d) if !d.is_empty() => { last_data = Instant::now(); node.publish(d); }
                Some(_) => {}
                None => { if idle_exit == 0 { tokio::signal::ctrl_c().await?; } break; }
            },
        }
        if idle_exit > 0 && last_data.elapsed() > Duration::from_secs(idle_exit) {
            break;
        }
    }
    if idle_exit > 0 {
        tokio::time::sleep(Duration::from_secs(idle_exit)).await;
    }
    node.stop().await?;
    Ok(())
}

async fn live_join(
    swarm_id: String,
    peers: Vec<SocketAddr>,
    output: String,
    duration: u64,
    common: Common,
) -> Result<()> {
    let id = unhex(&swarm_id).context("swarm id")?;
    let swarm = Swarm::new_live_leech(common.config(), &id, Instant::now()).context("swarm id")?;
    let mut node = Node::spawn(swarm, common.bind)
        .await
        .with_context(|| format!("binding {}", common.bind))?;
    for p in &peers {
        node.connect(*p);
    }
    let mut out: Box<dyn Write + Send> = if output == "-" {
        Box::new(std::io::stdout())
    } else {
        Box::new(std::fs::File::create(&output).with_context(|| format!("creating {output}"))?)
    };
    let stop = async {
        if duration == 0 {
            std::future::pending::<()>().await
        } else {
            tokio::time::sleep(Duration::from_secs(duration)).await
        }
    };
    tokio::pin!(stop);
    let (mut chunks, mut skipped) = (0u64, 0u64);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::signal::ctrl_c() => break,
            e = node.next_event() => match e {
                Some(Event::LiveData { data, .. }) => { out.write_all(&data)?; out.flush()?; chunks += 1; }
                Some(Event::LiveSkipped { first, last }) => { skipped += last - first + 1; tracing::warn!(first, last, "chunks missed their deadline"); }
                Some(ev) => tracing::debug!(?ev, "swarm event"),
                None => bail!("swarm task ended"),
            },
        }
    }
    eprintln!("received {chunks} chunks, skipped {skipped}");
    node.stop().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_source_seed_is_never_an_argument() {
        use clap::Parser;
        let seed = "11".repeat(32);
        // the old spelling, which put the secret in every process list, is refused
        assert!(
            crate::Cli::try_parse_from(["edge-agent", "swarm", "live-source", "--key-seed", &seed])
                .is_err()
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("seed");
        std::fs::write(&f, format!("{seed}\n")).unwrap();
        assert!(
            crate::Cli::try_parse_from([
                "edge-agent",
                "swarm",
                "live-source",
                "--key-seed-file",
                f.to_str().unwrap()
            ])
            .is_ok()
        );
        assert_eq!(key_seed(Some(&f), None).unwrap(), Some([0x11; 32]));
        let env = |s: &str| Some(zeroize::Zeroizing::new(s.to_string()));
        // the file wins over the environment
        assert_eq!(
            key_seed(Some(&f), env(&"22".repeat(32))).unwrap(),
            Some([0x11; 32])
        );
        assert_eq!(
            key_seed(None, env(&"22".repeat(32))).unwrap(),
            Some([0x22; 32])
        );
        assert_eq!(key_seed(None, env(" ")).unwrap(), None);
        assert_eq!(key_seed(None, None).unwrap(), None);
        assert!(key_seed(None, env("1122")).is_err());
        assert!(key_seed(None, env("zz")).is_err());
        assert!(key_seed(Some(&dir.path().join("missing")), None).is_err());
    }
}
