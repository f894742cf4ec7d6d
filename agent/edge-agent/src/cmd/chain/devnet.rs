//! `edge-agent devnet`: a local chain for the demo and for trying the CLI. Starts anvil on 127.0.0.1, deploys
//! the contracts (`contracts/deploy.sh`), funds the named accounts with ETH and tokens, writes their keystores
//! and one configuration file per account (`<dir>/<name>.toml`, with its `[chain]` table), and runs until
//! interrupted. The chain's state is kept in `<dir>`: a later start continues it.

use std::path::PathBuf;

use anyhow::Context;
use chain::devnet::{Devnet, DevnetOptions};

use super::{block_on, parse_amount};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory for the chain state, deployment, keystores and per-account configs.
    #[arg(long, default_value = "out/devnet")]
    dir: PathBuf,
    /// Port of the node on 127.0.0.1.
    #[arg(long, default_value_t = 8545)]
    port: u16,
    /// Seconds per block (0: a block per transaction).
    #[arg(long, default_value_t = 1)]
    block_time: u64,
    /// Accounts to create and fund (comma-separated); `verifier` is dev account 0, the Verifier's solver.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "transcoder,delegator,broadcaster,verifier"
    )]
    accounts: Vec<String>,
    /// ETH per account.
    #[arg(long, default_value = "100")]
    eth: String,
    /// Tokens per account.
    #[arg(long, default_value = "1000")]
    tokens: String,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Set up, print the summary and stop (the state stays in --dir).
    #[arg(long)]
    no_wait: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let net = Devnet::start_with(DevnetOptions {
        dir: Some(a.dir.clone()),
        port: a.port,
        block_time: (a.block_time > 0).then_some(a.block_time),
        accounts: a.accounts.clone(),
        eth: parse_amount(&a.eth)?,
        tokens: parse_amount(&a.tokens)?,
    })
    .context("starting the devnet")?;
    let dir = std::fs::canonicalize(&a.dir).unwrap_or(a.dir.clone());
    let mut accounts = Vec::new();
    for acct in &net.accounts {
        let config = dir.join(format!("{}.toml", acct.name));
        let data = dir.join(&acct.name);
        let block_time = if a.block_time > 0 {
            a.block_time as f64
        } else {
            1.0
        };
        let text = format!(
            "# {name} on the local devnet (written by `edge-agent devnet`)\n\
             [agent]\ndata_dir = {data:?}\n\n\
             [chain]\nrpc_url = {url:?}\ndeployment = {dep:?}\nkeystore = {key:?}\npassword = {{ file = {pw:?} }}\n\n\
             [chain.keeper]\nblock_time_s = {block_time:.1}\npoll_ms = 500\n",
            name = acct.name,
            data = data.display().to_string(),
            url = net.url,
            dep = dir.join("deployment.json").display().to_string(),
            key = acct
                .keystore
                .canonicalize()
                .unwrap_or(acct.keystore.clone())
                .display()
                .to_string(),
            pw = dir.join("keys/password").display().to_string(),
        );
        std::fs::write(&config, text).with_context(|| format!("writing {}", config.display()))?;
        accounts.push(serde_json::json!({
            "name": acct.name, "address": acct.address, "keystore": acct.keystore, "config": config,
        }));
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "rpc_url": net.url, "chain_id": net.deployment.chain_id, "dir": dir, "anvil_pid": net.anvil_pid(),
                "deployment": dir.join("deployment.json"), "accounts": accounts,
            }))?
        );
    } else {
        println!(
            "devnet: {} (chain {}), state in {}",
            net.url,
            net.deployment.chain_id,
            dir.display()
        );
        for acct in &accounts {
            println!(
                "  {:<12} {}  config {}",
                acct["name"].as_str().unwrap_or_default(),
                acct["address"].as_str().unwrap_or_default(),
                acct["config"].as_str().unwrap_or_default()
            );
        }
        println!(
            "try: edge-agent status -c {}",
            dir.join("transcoder.toml").display()
        );
    }
    if a.no_wait {
        return Ok(());
    }
    block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        Ok(())
    })?;
    drop(net);
    Ok(())
}
