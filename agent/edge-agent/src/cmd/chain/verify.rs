//! The verifier's and the finder's commands:
//! - `edge-agent verify`: the solver daemon (holds the trusted solver's key; `verifier::Solver`) until
//!   SIGTERM/Ctrl-C;
//! - `edge-agent slash-missed --job J`: anyone slashes the claims of job J whose challenged segments were
//!   never submitted for verification (in their slashing window), and collects the finder's fee;
//! - `edge-agent spot-check`: a broadcaster or viewer checks one rendition segment against the signed
//!   original in fidelity mode, without the chain.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};

use super::{ChainArgs, block_on, print_txs};

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// Where every verdict's full report is written (`<request>.json`).
    #[arg(long, default_value = "verifier-reports")]
    reports: PathBuf,
    /// Seconds a transcoder's proof bundle may stay unreachable before the segment fails verification.
    #[arg(long, default_value_t = 120.0)]
    give_up_after: f64,
    /// Seconds between two polls of the chain.
    #[arg(long, default_value_t = 1.0)]
    poll: f64,
}

pub fn verify(a: VerifyArgs) -> anyhow::Result<()> {
    block_on(async move {
        let profiles = crate::config::Config::load(a.chain.config.as_deref(), std::env::vars())?
            .profile_set()?;
        let c = a.chain.connect().await?;
        let me = c.address();
        let opts = verifier::SolverOptions {
            poll: Duration::from_secs_f64(a.poll.clamp(0.05, 60.0)),
            fetch_timeout: Duration::from_secs(20),
            give_up_after: Duration::from_secs_f64(a.give_up_after.max(0.0)),
            reports_dir: a.reports.clone(),
            profiles,
        };
        let (solver, _status) = verifier::Solver::open(c.proto, Arc::new(c.sender), opts)
            .await
            .context("starting the verifier")?;
        tracing::info!(solver = ?me, reports = %a.reports.display(), "verifier running");
        let stop = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        solver.run(stop).await;
        Ok(())
    })
}

#[derive(Debug, clap::Args)]
pub struct SlashArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// The job whose claims to check.
    #[arg(long)]
    job: u64,
}

pub fn slash_missed(a: SlashArgs) -> anyhow::Result<()> {
    block_on(async move {
        let c = a.chain.connect().await?;
        let missed = c.proto.missed_verifications(a.job).await?;
        if missed.is_empty() {
            bail!(
                "job {}: no claim has a challenged segment left unverified in an open slashing window",
                a.job
            );
        }
        let mut txs = Vec::new();
        for (claim_id, seg) in missed {
            txs.push(
                c.sender
                    .send(c.proto.missed_verification_slash(a.job, claim_id, seg))
                    .await?,
            );
        }
        print_txs(a.chain.json, "slash-missed", c.address(), &txs)
    })
}

#[derive(Debug, clap::Args)]
pub struct SpotCheckArgs {
    /// The original segment (MPEG-TS) as the broadcaster sent it.
    #[arg(long)]
    input: PathBuf,
    /// A rendition segment of it (MPEG-TS).
    #[arg(long)]
    rendition: PathBuf,
    /// The rendition's profile name.
    #[arg(long)]
    profile: String,
    /// Check the broadcaster's signature over the original too: its hex, with --stream, --seq and
    /// --broadcaster.
    #[arg(long, requires_all = ["stream", "seq", "broadcaster"])]
    signature: Option<String>,
    #[arg(long)]
    stream: Option<String>,
    #[arg(long)]
    seq: Option<u64>,
    #[arg(long)]
    broadcaster: Option<chain::Address>,
    /// Configuration with custom profiles (default: /etc/edge-agent/config.toml when it exists).
    #[arg(long, short)]
    config: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

pub fn spot_check(a: SpotCheckArgs) -> anyhow::Result<()> {
    let set = crate::config::Config::load(a.config.as_deref(), std::env::vars())?.profile_set()?;
    let profile = set.by_name(&a.profile)?.clone();
    let input =
        std::fs::read(&a.input).with_context(|| format!("reading {}", a.input.display()))?;
    let rendition = std::fs::read(&a.rendition)
        .with_context(|| format!("reading {}", a.rendition.display()))?;
    if let (Some(sig), Some(stream), Some(seq), Some(b)) =
        (&a.signature, &a.stream, a.seq, a.broadcaster)
    {
        let sig: chain::Bytes = sig.trim().parse().context("signature hex")?;
        let signer =
            chain::hashes::segment_signer(stream, seq, chain::hashes::data_hash(&input), &sig)
                .map_err(|e| anyhow::anyhow!("segment {seq}: {e}"))?;
        if signer != b {
            bail!("segment {seq} is signed by {signer:?}, not by the broadcaster {b:?}");
        }
    }
    let report = media::fidelity::compare(&input, &[(&profile, &rendition)])
        .context("the original cannot be decoded")?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for r in &report.renditions {
            println!(
                "{}: {} (margin {:.3}){}",
                r.profile,
                if r.passed { "passed" } else { "FAILED" },
                r.margin,
                if r.failures.is_empty() {
                    String::new()
                } else {
                    format!(": {}", r.failures.join("; "))
                }
            );
        }
    }
    if !report.passed {
        bail!("the rendition does not pass the fidelity check");
    }
    Ok(())
}
