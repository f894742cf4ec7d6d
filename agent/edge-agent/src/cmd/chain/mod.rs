//! The manual steps of the protocol: `account`, `token`, `bond`, `unbond`, `withdraw-stake`,
//! `claim-earnings`, `withdraw-fees`, `transcoder`, `round`, `broadcaster`, `service-uri`, `status`, the
//! verifier's and the finder's (`verify`, `slash-missed`, `spot-check`), and `devnet` for a local chain. Each command reads the `[chain]` table of the configuration (flags override it), connects through
//! `chain::ops`, and prints text or, with `--json`, one JSON document.

pub mod account;
pub mod broadcast;
pub mod devnet;
pub mod service;
pub mod stake;
pub mod status;
pub mod verify;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chain::keys::PasswordSource;
use chain::sender::Mined;
use chain::{Address, ChainConfig, U256};

/// Where the chain is and which key to use; every flag overrides the configuration file's `[chain]` table.
#[derive(Debug, Clone, clap::Args)]
pub struct ChainArgs {
    /// Configuration file with a `[chain]` table (default: /etc/edge-agent/config.toml when it exists).
    #[arg(long, short, global = true)]
    pub config: Option<PathBuf>,
    /// JSON-RPC URL of an Ethereum node.
    #[arg(long, global = true, env = "EDGE_AGENT_RPC_URL")]
    pub rpc_url: Option<String>,
    /// Deployment file (chain id and contract addresses).
    #[arg(long, global = true, env = "EDGE_AGENT_DEPLOYMENT")]
    pub deployment: Option<PathBuf>,
    /// Keystore file of the account.
    #[arg(long, global = true, env = "EDGE_AGENT_KEYSTORE")]
    pub keystore: Option<PathBuf>,
    /// File holding the keystore password.
    #[arg(long, global = true, conflicts_with = "password_env")]
    pub password_file: Option<PathBuf>,
    /// Environment variable holding the keystore password.
    #[arg(long, global = true)]
    pub password_env: Option<String>,
    /// Transaction journal directory (default: `<agent.data_dir>/chain`).
    #[arg(long, global = true)]
    pub state_dir: Option<PathBuf>,
    /// Blocks a receipt needs on top of it before a command reports success.
    #[arg(long, global = true)]
    pub confirmations: Option<u64>,
    /// Print one JSON document instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

impl ChainArgs {
    /// The effective chain configuration and journal directory.
    pub fn resolve(&self) -> anyhow::Result<(ChainConfig, PathBuf)> {
        let cfg = crate::config::Config::load(self.config.as_deref(), std::env::vars())?;
        let mut chain = cfg.chain.clone().unwrap_or_default();
        if let Some(u) = &self.rpc_url {
            chain.rpc_url = u.clone();
        }
        if let Some(d) = &self.deployment {
            chain.deployment = d.clone();
        }
        if let Some(k) = &self.keystore {
            chain.keystore = k.clone();
        }
        if let Some(f) = &self.password_file {
            chain.password = PasswordSource::File(f.clone());
        }
        if let Some(v) = &self.password_env {
            chain.password = PasswordSource::Env(v.clone());
        }
        if let Some(c) = self.confirmations {
            chain.send.confirmations = c;
        }
        let state = self
            .state_dir
            .clone()
            .or_else(|| chain.state_dir.clone())
            .unwrap_or_else(|| cfg.agent.data_dir.join("chain"));
        Ok((chain, state))
    }

    pub async fn connect(&self) -> anyhow::Result<chain::ops::Client> {
        let (cfg, state) = self.resolve()?;
        chain::ops::connect(&cfg, &state).await.with_context(|| {
            format!(
                "connecting to the chain at {}",
                chain::node::redact(&cfg.rpc_url)
            )
        })
    }
}

/// Runs an async command on a small runtime of its own.
pub fn block_on<T, F: std::future::Future<Output = anyhow::Result<T>>>(f: F) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(f)
}

/// Token and ETH amounts: decimal units of 10^18 (`12.5`), or integers with a unit (`100wei`, `3gwei`).
pub fn parse_amount(s: &str) -> anyhow::Result<U256> {
    let s = s.trim();
    for (suffix, exp) in [("gwei", 9u32), ("wei", 0)] {
        if let Some(n) = s.strip_suffix(suffix) {
            let n = U256::from_dec_str(n.trim()).with_context(|| format!("amount {s:?}"))?;
            return Ok(n * U256::exp10(exp as usize));
        }
    }
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() || frac.len() > 18 {
        bail!(
            "amount {s:?}: a decimal number with at most 18 decimals, or a number with `wei`/`gwei`"
        );
    }
    let int = if int.is_empty() {
        U256::zero()
    } else {
        U256::from_dec_str(int).with_context(|| format!("amount {s:?}"))?
    };
    let frac_v = if frac.is_empty() {
        U256::zero()
    } else {
        U256::from_dec_str(frac).with_context(|| format!("amount {s:?}"))?
            * U256::exp10(18 - frac.len())
    };
    Ok(int * U256::exp10(18) + frac_v)
}

/// `12.5` for 12.5 x 10^18 wei.
pub fn format_units(v: U256) -> String {
    let unit = U256::exp10(18);
    let (int, frac) = (v / unit, v % unit);
    if frac.is_zero() {
        return int.to_string();
    }
    let f = format!("{:0>18}", frac.to_string());
    format!("{int}.{}", f.trim_end_matches('0'))
}

/// An address, or `self` for the command's own account.
pub fn parse_address(s: &str, own: Address) -> anyhow::Result<Address> {
    if s == "self" {
        return Ok(own);
    }
    s.parse()
        .with_context(|| format!("{s:?} is not an address (0x + 40 hex digits) or `self`"))
}

/// Percentages of the CLI (`10`, `2.5`) in the contracts' millionths.
pub fn parse_percent(s: &str) -> anyhow::Result<u64> {
    let v: f64 = s
        .trim_end_matches('%')
        .parse()
        .with_context(|| format!("percentage {s:?}"))?;
    if !(0.0..=100.0).contains(&v) {
        bail!("percentage {s:?} is outside 0..=100");
    }
    Ok((v * 10_000.0).round() as u64)
}

pub fn tx_json(m: &Mined) -> serde_json::Value {
    serde_json::json!({
        "label": m.label,
        "hash": m.hash,
        "block": m.block,
        "nonce": m.nonce,
        "gas_used": m.gas_used.as_u64(),
        "effective_gas_price": m.effective_gas_price.to_string(),
        "replacements": m.replacements,
    })
}

/// Prints what a transaction command did.
pub fn print_txs(json: bool, action: &str, from: Address, txs: &[Mined]) -> anyhow::Result<()> {
    if json {
        let v = serde_json::json!({
            "ok": true,
            "action": action,
            "from": from,
            "transactions": txs.iter().map(tx_json).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for m in txs {
            println!(
                "{}: mined in block {} (tx {:?}, gas {})",
                m.label, m.block, m.hash, m.gas_used
            );
        }
    }
    Ok(())
}

/// A keystore path must not be a directory, and its directory must exist or be creatable.
pub fn keystore_path(p: &Path) -> anyhow::Result<&Path> {
    if p.is_dir() {
        bail!(
            "{} is a directory: give the keystore file's path",
            p.display()
        );
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        assert_eq!(parse_amount("1").unwrap(), U256::exp10(18));
        assert_eq!(parse_amount("0.5").unwrap(), U256::exp10(17) * 5);
        assert_eq!(
            parse_amount("12.000000000000000001").unwrap(),
            U256::exp10(18) * 12 + 1
        );
        assert_eq!(parse_amount("100wei").unwrap(), U256::from(100));
        assert_eq!(parse_amount("3gwei").unwrap(), U256::from(3_000_000_000u64));
        for bad in ["", ".", "x", "1.0000000000000000001", "-1", "1e18"] {
            assert!(parse_amount(bad).is_err(), "{bad}");
        }
        assert_eq!(format_units(parse_amount("12.5").unwrap()), "12.5");
        assert_eq!(format_units(U256::exp10(18) * 3), "3");
        assert_eq!(format_units(U256::one()), "0.000000000000000001");
    }

    #[test]
    fn percents_and_addresses() {
        assert_eq!(parse_percent("10").unwrap(), 100_000);
        assert_eq!(parse_percent("2.5%").unwrap(), 25_000);
        assert!(parse_percent("101").is_err());
        let me = Address::repeat_byte(7);
        assert_eq!(parse_address("self", me).unwrap(), me);
        assert!(parse_address("0x12", me).is_err());
    }
}
