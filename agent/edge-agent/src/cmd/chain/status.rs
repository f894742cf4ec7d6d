//! `edge-agent status`: the round, this account's bond and transcoder state, delegators, the active set,
//! pending rewards and fees, unbonding locks, and the transactions the journal still follows. Reads only: the
//! keystore is not decrypted (its address is public), nothing is signed.

use anyhow::Context;
use chain::journal::Journal;
use chain::node::Node;
use chain::protocol::Protocol;

use super::{ChainArgs, block_on, format_units, parse_address};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    chain: ChainArgs,
    /// Address to show (default: the keystore's).
    address: Option<String>,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let (cfg, state) = a.chain.resolve()?;
    let own = chain::keys::address_of(&cfg.keystore).ok().flatten();
    let who = match (&a.address, own) {
        (Some(s), _) => parse_address(s, own.unwrap_or_default())?,
        (None, Some(o)) => o,
        (None, None) => {
            anyhow::bail!("no address: give one, or a keystore (--keystore) whose address is shown")
        }
    };
    block_on(async move {
        let d = chain::Deployment::load(&cfg.deployment)?;
        let node = Node::connect(&cfg.rpc_url, cfg.node_options(), &d)
            .await
            .with_context(|| format!("connecting to {}", chain::node::redact(&cfg.rpc_url)))?;
        let s = Protocol::new(node, d).status(who).await?;
        // the journal is locked while the daemon runs: then its pending transactions are in /metrics
        let pending = match Journal::open(&state.join("journal")) {
            Ok(j) => Some(j.pending(who)?),
            Err(_) => None,
        };
        if a.chain.json {
            let mut v = serde_json::to_value(&s)?;
            v["pending_rewards"] = serde_json::json!(s.pending_stake.saturating_sub(s.bond.bonded));
            v["pending_transactions"] = match &pending {
                Some(p) => serde_json::json!(p.iter().map(|r| serde_json::json!({
                    "nonce": r.nonce, "label": r.label, "hash": r.latest().hash, "attempts": r.attempts.len(),
                })).collect::<Vec<_>>()),
                None => serde_json::Value::Null,
            };
            println!("{}", serde_json::to_string_pretty(&v)?);
            return Ok(());
        }
        let r = &s.round;
        println!("account      {:?} (chain {})", s.address, s.chain_id);
        println!(
            "round        {} ({}; block {}, started at {}, {} blocks a round{})",
            r.round,
            if r.initialized {
                "initialized"
            } else {
                "NOT initialized"
            },
            r.block,
            r.start_block,
            r.length,
            if r.locked { ", locked" } else { "" }
        );
        println!("eth          {}", format_units(s.eth_balance));
        println!("tokens       {}", format_units(s.token_balance));
        if s.bond.bonded.is_zero() {
            println!("bond         none");
        } else {
            println!(
                "bond         {} to {:?} (from round {})",
                format_units(s.bond.bonded),
                s.bond.delegate,
                s.bond.start_round
            );
        }
        if !s.bond.unbonding.is_zero() {
            println!(
                "unbonding    {} (withdrawable from round {})",
                format_units(s.bond.unbonding),
                s.bond.withdraw_round
            );
        }
        println!(
            "pending      rewards {}, fees {} wei (claimable up to round {})",
            format_units(s.pending_stake.saturating_sub(s.bond.bonded)),
            s.pending_fees,
            r.round.saturating_sub(1)
        );
        if s.transcoder.registered {
            let t = &s.transcoder;
            println!(
                "transcoder   registered, {}; stake {} (own {}, delegated {}); reward cut {} %, fee share {} %, price {} wei/segment; last reward round {}",
                if s.active {
                    "ACTIVE this round"
                } else {
                    "not active this round"
                },
                format_units(t.total_stake),
                format_units(s.bond.bonded),
                format_units(t.total_stake.saturating_sub(s.bond.bonded)),
                t.reward_cut.as_u64() as f64 / 10_000.0,
                t.fee_share.as_u64() as f64 / 10_000.0,
                t.price_per_segment,
                t.last_reward_round
            );
            println!("delegators   {}", s.delegators.len());
            for d in &s.delegators {
                println!("  {d:?}");
            }
        } else {
            println!("transcoder   not registered");
        }
        println!("active set   {} transcoder(s)", s.active_set.len());
        for t in &s.active_set {
            println!("  {t:?}");
        }
        match pending {
            Some(p) if p.is_empty() => println!("pending txs  none"),
            Some(p) => {
                println!("pending txs  {}", p.len());
                for r in p {
                    println!(
                        "  nonce {} {} {:?} ({} attempt(s))",
                        r.nonce,
                        r.label,
                        r.latest().hash,
                        r.attempts.len()
                    );
                }
            }
            None => println!("pending txs  (journal in use by the daemon: see its /metrics)"),
        }
        Ok(())
    })
}
