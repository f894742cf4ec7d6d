//! Protocol participation for the daemon (`[chain]` table): opens the keystore and the transaction journal,
//! runs `chain::keeper::Keeper` (round initialization when configured, reward once per round) and the claim
//! life cycle of the box's jobs (`proof::driver::Driver`: claims, challenges answered, fees distributed, kept
//! data deleted) as subsystems, and turns their status into `/metrics` lines and fleet telemetry.
//!
//! A keystore or deployment file that cannot be read stops the daemon at start with the reason; a node that
//! is down (or on the wrong chain) is logged and waited for, and the box keeps transcoding meanwhile.

use std::fmt::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use chain::keeper::{Keeper, KeeperStatus};
use chain::{ChainConfig, U256};
use tokio::sync::watch;

use super::Shared;

/// The opened keeper and claim driver (not yet running) and their status channels.
pub struct Chain {
    keeper: Keeper,
    driver: proof::driver::Driver,
    pub status: watch::Receiver<KeeperStatus>,
    pub claims: watch::Receiver<proof::driver::DriverStatus>,
    /// Checks jobs' segments (job, stream, election, broadcaster signature) before they are transcoded.
    pub gate: Arc<chain::jobs::SegmentGate>,
    /// Receipts of the jobs' segments.
    pub proof: proof::ProofStore,
}

/// Reads the deployment, decrypts the keystore (off the async workers: scrypt takes a while) and opens the
/// journal; broadcasts again what an earlier run left pending.
pub async fn open(
    cfg: &ChainConfig,
    data_dir: &Path,
    ingest_listen: &str,
) -> anyhow::Result<Chain> {
    let deployment = chain::Deployment::load(&cfg.deployment)?;
    let node = chain::node::Node::new(&cfg.rpc_url, cfg.node_options())?;
    let (path, source, chain_id) = (
        cfg.keystore.clone(),
        cfg.password.clone(),
        deployment.chain_id,
    );
    let wallet = tokio::task::spawn_blocking(move || chain::keys::open(&path, &source, chain_id))
        .await
        .context("keystore task")?
        .context("opening the chain keystore")?;
    let state = cfg
        .state_dir
        .clone()
        .unwrap_or_else(|| data_dir.join("chain"));
    let journal = chain::journal::Journal::open(&state.join("journal"))?;
    let proof = proof::ProofStore::open(&data_dir.join("proof/store"))?;
    let sender = Arc::new(
        chain::sender::Sender::open(node.clone(), wallet, journal, cfg.send.clone()).await?,
    );
    tracing::info!(account = ?sender.address(), node = node.shown_url(), chain_id, "chain account opened");
    let proto = chain::protocol::Protocol::new(node, deployment);
    let gate = Arc::new(chain::jobs::SegmentGate::new(
        proto.clone(),
        sender.address(),
    ));
    let (driver, claims) = proof::driver::Driver::open(
        proof.clone(),
        proto.clone(),
        sender.clone(),
        driver_options(cfg, ingest_listen),
    )
    .await
    .context("reading the JobsManager's windows")?;
    let (keeper, status) = Keeper::new(proto, sender, cfg.keeper.clone());
    let keeper = keeper.with_service_uri(cfg.service_uri.clone());
    Ok(Chain {
        keeper,
        driver,
        status,
        claims,
        gate,
        proof,
    })
}

fn driver_options(cfg: &ChainConfig, ingest_listen: &str) -> proof::driver::DriverOptions {
    let c = &cfg.claims;
    let data_url = c
        .data_url
        .clone()
        .unwrap_or_else(|| format!("http://{ingest_listen}/proof"));
    proof::driver::DriverOptions {
        poll: std::time::Duration::from_secs_f64(c.poll_s.clamp(0.05, 60.0)),
        data_url,
        policy: proof::Policy {
            max_segments: c.max_segments.max(1),
            claim_after_blocks: c.claim_after_blocks,
            ..Default::default()
        },
        // fault injection for the slashing tests: a box that never answers its challenges
        ignore_challenges: crate::receipts::fault() == Some("ignore-challenges"),
        ..Default::default()
    }
}

pub fn spawn(
    tasks: &mut tokio::task::JoinSet<anyhow::Result<()>>,
    shared: Arc<Shared>,
    chain: Chain,
) {
    let stop = shared.shutdown.clone();
    tasks.spawn(async move {
        chain.keeper.run(stop.cancelled_owned()).await;
        Ok(())
    });
    let stop = shared.shutdown.clone();
    tasks.spawn(async move {
        chain.driver.run(stop.cancelled_owned()).await;
        Ok(())
    });
}

/// Prometheus lines of the claim life cycle.
pub fn claim_metrics(s: &proof::driver::DriverStatus, out: &mut String) {
    let counters: [(&str, &str, u64); 8] = [
        (
            "claims_sent_total",
            "claimWork transactions sent.",
            s.claims_sent,
        ),
        ("claims_mined_total", "Claims mined.", s.claims_mined),
        (
            "verifications_sent_total",
            "Challenged segments submitted for verification.",
            s.verifications_sent,
        ),
        (
            "verifications_passed_total",
            "Verifications passed.",
            s.verifications_passed,
        ),
        (
            "verifications_failed_total",
            "Verifications failed.",
            s.verifications_failed,
        ),
        ("claims_slashed_total", "Claims slashed.", s.claims_slashed),
        (
            "failed_transactions_total",
            "Claim life cycle transactions that reverted, were refused or dropped.",
            s.failed_txs,
        ),
        (
            "kept_segments_released_total",
            "Segments whose kept input and renditions were deleted (no challenge can come).",
            s.inputs_released,
        ),
    ];
    samples(out, "edge_agent_proof", "counter", &counters);
    let fees: f64 = s.fees_distributed_wei.parse::<f64>().unwrap_or(0.0) / 1e18;
    samples(
        out,
        "edge_agent_proof",
        "counter",
        &[(
            "fees_distributed_eth",
            "Fees of this box's claims moved to its earnings.",
            fees,
        )],
    );
}

/// Tokens or ETH as a float, for gauges (precision beyond 1e-9 does not matter on a graph).
fn units(v: U256) -> f64 {
    let gwei = v / U256::exp10(9);
    gwei.min(U256::from(u64::MAX)).as_u64() as f64 / 1e9
}

/// Prometheus lines (HELP, TYPE, sample) of unlabelled metrics `<prefix>_<name>`.
fn samples<V: std::fmt::Display>(
    out: &mut String,
    prefix: &str,
    kind: &str,
    items: &[(&str, &str, V)],
) {
    for (name, help, v) in items {
        let _ = writeln!(
            out,
            "# HELP {prefix}_{name} {help}\n# TYPE {prefix}_{name} {kind}\n{prefix}_{name} {v}"
        );
    }
}

/// Prometheus lines of the keeper's status.
pub fn metrics(s: &KeeperStatus, out: &mut String) {
    let b = |v: bool| u8::from(v);
    let gauges: [(&str, &str, f64); 11] = [
        (
            "connected",
            "The Ethereum node answers.",
            f64::from(b(s.connected)),
        ),
        ("block", "Latest block seen.", s.block as f64),
        ("round", "Current protocol round.", s.round as f64),
        (
            "round_initialized",
            "The current round is initialized.",
            f64::from(b(s.round_initialized)),
        ),
        (
            "active",
            "This box is in the current round's active transcoder set.",
            f64::from(b(s.active)),
        ),
        (
            "stake_tokens",
            "Stake bonded to this transcoder (own and delegated), tokens.",
            units(s.stake),
        ),
        (
            "last_reward_round",
            "Last round this box called reward for.",
            s.last_reward_round as f64,
        ),
        (
            "pending_transactions",
            "Transactions signed and not yet mined.",
            s.pending_txs as f64,
        ),
        (
            "gas_balance_eth",
            "ETH balance of the box's account.",
            units(s.gas_balance),
        ),
        (
            "gas_rounds_left",
            "Rounds of automatic transactions the ETH balance pays for.",
            s.gas_rounds_left.map_or(f64::NAN, |r| r as f64),
        ),
        (
            "gas_low",
            "The ETH balance will not last the configured days.",
            f64::from(b(s.gas_low)),
        ),
    ];
    samples(out, "edge_agent_chain", "gauge", &gauges);
    let counters: [(&str, &str, u64); 4] = [
        (
            "rewards_sent_total",
            "Reward transactions sent.",
            s.rewards_sent,
        ),
        (
            "round_initializations_sent_total",
            "initializeRound transactions sent.",
            s.initializations_sent,
        ),
        (
            "failed_transactions_total",
            "Automatic transactions that reverted, were refused or dropped.",
            s.failed_txs,
        ),
        (
            "rpc_requests_total",
            "JSON-RPC requests sent to the node.",
            s.rpc_calls,
        ),
    ];
    samples(out, "edge_agent_chain", "counter", &counters);
}

pub fn telemetry(s: &KeeperStatus) -> fleet::proto::ChainTelemetry {
    fleet::proto::ChainTelemetry {
        address: format!("{:?}", s.address),
        connected: s.connected,
        block: s.block,
        round: s.round,
        round_initialized: s.round_initialized,
        active: s.active,
        stake_wei: s.stake.to_string(),
        last_reward_round: s.last_reward_round,
        pending_txs: s.pending_txs,
        gas_balance_wei: s.gas_balance.to_string(),
        gas_rounds_left: s.gas_rounds_left,
        gas_low: s.gas_low,
        failed_txs: s.failed_txs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> KeeperStatus {
        KeeperStatus {
            address: chain::Address::repeat_byte(0xab),
            connected: true,
            block: 85,
            round: 4,
            round_initialized: true,
            active: true,
            stake: U256::exp10(18) * 2260,
            last_reward_round: 4,
            gas_balance: U256::exp10(17) * 5,
            gas_rounds_left: Some(2000),
            gas_low: true,
            rewards_sent: 3,
            rpc_calls: 120,
            ..Default::default()
        }
    }

    #[test]
    fn status_becomes_prometheus_lines() {
        let mut out = String::new();
        metrics(&status(), &mut out);
        for line in [
            "edge_agent_chain_round 4",
            "edge_agent_chain_active 1",
            "edge_agent_chain_stake_tokens 2260",
            "edge_agent_chain_gas_balance_eth 0.5",
            "edge_agent_chain_gas_low 1",
            "edge_agent_chain_rewards_sent_total 3",
            "edge_agent_chain_failed_transactions_total 0",
            "edge_agent_chain_rpc_requests_total 120",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} missing in\n{out}");
        }
    }

    #[test]
    fn status_reaches_the_fleet_telemetry_document() {
        let snap = fleet::proto::DaemonSnapshot {
            chain: Some(telemetry(&status())),
            ..Default::default()
        };
        let json = serde_json::to_value(&snap).unwrap();
        assert_eq!(json["chain"]["stake_wei"], "2260000000000000000000");
        assert_eq!(json["chain"]["gas_low"], true);
        assert_eq!(
            json["chain"]["address"],
            format!("{:?}", chain::Address::repeat_byte(0xab))
        );
        // the operator side reads it back with deny_unknown_fields
        let back: fleet::proto::DaemonSnapshot = serde_json::from_value(json).unwrap();
        assert_eq!(back, snap);
    }
}
