//! `edge-agent account new|import|show`: the box's encrypted keystore. The password comes from the configured
//! source (`--password-file`, `--password-env`, or the systemd credential); a private key to import is read
//! from a file or standard input, never from the command line.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use chain::Address;
use zeroize::Zeroizing;

use super::{ChainArgs, format_units, keystore_path};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Create a new random key in the keystore file (refuses to overwrite one).
    New,
    /// Encrypt an existing private key (hex) into the keystore file.
    Import {
        /// File holding the private key as hex; `-` reads standard input.
        #[arg(long)]
        private_key_file: PathBuf,
    },
    /// The keystore's address, and its balances when the chain is reachable.
    Show,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (cfg, _) = args.chain.resolve()?;
    let path = keystore_path(&cfg.keystore)?;
    match args.command {
        Command::New => {
            let password = cfg.password.read()?;
            let a = chain::keys::create(path, &password)?;
            print_account(args.chain.json, "created", a, path)
        }
        Command::Import { private_key_file } => {
            let password = cfg.password.read()?;
            let mut key = Zeroizing::new(String::new());
            if private_key_file.as_os_str() == "-" {
                std::io::stdin()
                    .read_to_string(&mut key)
                    .context("reading the private key from standard input")?;
            } else {
                *key = std::fs::read_to_string(&private_key_file).with_context(|| {
                    format!(
                        "reading the private key from {}",
                        private_key_file.display()
                    )
                })?;
            }
            let a = chain::keys::import(path, &key, &password)?;
            print_account(args.chain.json, "imported", a, path)
        }
        Command::Show => {
            let a = chain::keys::address_of(path)?
                .with_context(|| format!("{} declares no address", path.display()))?;
            // balances only where the chain is configured and answers: `show` works offline too
            let balances = super::block_on(async {
                let Ok(d) = chain::Deployment::load(&cfg.deployment) else {
                    return Ok(None);
                };
                let Ok(node) =
                    chain::node::Node::connect(&cfg.rpc_url, cfg.node_options(), &d).await
                else {
                    return Ok(None);
                };
                let p = chain::protocol::Protocol::new(node.clone(), d);
                Ok(Some((node.balance(a).await?, p.token_balance(a).await?)))
            })?;
            let (eth, tok) = balances.unzip();
            if args.chain.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "address": a, "keystore": path,
                        "eth": eth.map(|v| v.to_string()), "tokens": tok.map(|v| v.to_string()),
                    }))?
                );
            } else {
                println!("address  {a:?}\nkeystore {}", path.display());
                if let (Some(e), Some(t)) = (eth, tok) {
                    println!("eth      {}\ntokens   {}", format_units(e), format_units(t));
                }
            }
            Ok(())
        }
    }
}

fn print_account(json: bool, what: &str, a: Address, path: &std::path::Path) -> anyhow::Result<()> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"address": a, "keystore": path, what: true})
            )?
        );
    } else {
        println!("{what} {a:?} in {}", path.display());
    }
    Ok(())
}
