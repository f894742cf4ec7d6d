//! `edge-agent service-uri`: the URI at which an account's box is reached, as published in the ServiceRegistry
//! (where a broadcaster finds the transcoder elected for its job). With a URI it publishes this account's
//! (nothing is sent when the registry holds it already); without one it prints the published URI of this
//! account or of `--address`, reading only (the keystore is not decrypted, nothing is signed).

use anyhow::Context;
use chain::node::Node;
use chain::protocol::Protocol;

use super::{ChainArgs, block_on, parse_address, tx_json};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    chain: ChainArgs,
    /// URI to publish for this account, e.g. `http://203.0.113.7:8935` (`""` withdraws it); without it, the
    /// published one is printed.
    uri: Option<String>,
    /// Print the URI this address published instead of the own one.
    #[arg(long, conflicts_with = "uri")]
    address: Option<String>,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    match a.uri.clone() {
        Some(uri) => set(&a, &uri),
        None => show(&a),
    }
}

fn set(a: &Args, uri: &str) -> anyhow::Result<()> {
    block_on(async {
        let c = a.chain.connect().await?;
        let mined = c.set_service_uri(uri).await?;
        if a.chain.json {
            let v = serde_json::json!({
                "ok": true,
                "action": "service-uri",
                "from": c.address(),
                "service_uri": uri,
                "transactions": mined.iter().map(tx_json).collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else if let Some(m) = mined {
            println!(
                "{}: mined in block {} (tx {:?}, gas {})",
                m.label, m.block, m.hash, m.gas_used
            );
        } else {
            println!(
                "service URI of {:?} already {uri:?}: nothing sent",
                c.address()
            );
        }
        Ok(())
    })
}

fn show(a: &Args) -> anyhow::Result<()> {
    let (cfg, _) = a.chain.resolve()?;
    let own = chain::keys::address_of(&cfg.keystore).ok().flatten();
    let who = match (&a.address, own) {
        (Some(s), _) => parse_address(s, own.unwrap_or_default())?,
        (None, Some(o)) => o,
        (None, None) => {
            anyhow::bail!(
                "no address: give --address, or a keystore (--keystore) whose URI is shown"
            )
        }
    };
    block_on(async move {
        let d = chain::Deployment::load(&cfg.deployment)?;
        let node = Node::connect(&cfg.rpc_url, cfg.node_options(), &d)
            .await
            .with_context(|| format!("connecting to {}", chain::node::redact(&cfg.rpc_url)))?;
        let uri = Protocol::new(node, d).service_uri(who).await?;
        if a.chain.json {
            println!(
                "{}",
                serde_json::json!({"address": who, "service_uri": uri})
            );
        } else if uri.is_empty() {
            println!("none published ({who:?})");
        } else {
            println!("{uri} ({who:?})");
        }
        Ok(())
    })
}
