//! `edge-agent`: the one binary of an edge transcoder box.  CLI parsing and daemon wiring only; the
//! capabilities live in their own crates (`media`, `hw`, `ppspp`, `fleet`, ...).

mod capacity;
mod cmd;
mod config;
mod conn_limit;
mod daemon;
mod hwsel;
mod ingest;
mod live_swarm;
mod logging;
mod malloc;
mod pipeline;
mod receipts;
mod request;
mod streams;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "edge-agent",
    version,
    about = "Edge transcoder appliance agent"
)]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `media=debug`.  Default: the config's
    /// `agent.log_level` for `run`, `info` (or `$RUST_LOG`) otherwise.
    #[arg(long, global = true, env = "EDGE_AGENT_LOG")]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Transcode a file or the built-in test source to an HLS ladder.
    Transcode(cmd::transcode::Args),
    /// Show the hardware of this box and the encoder that will be used.
    Hw(cmd::hw::Args),
    /// List the standard profiles with their on-chain IDs.
    Profiles(cmd::profiles::Args),
    /// Print the effective configuration (defaults, file, environment overrides).
    Config(ConfigArgs),
    /// Run the daemon (systemd Type=notify).
    Run(ConfigArgs),
    /// Move content between boxes over PPSPP (RFC 7574): seed, fetch, live source and join.
    Swarm(cmd::swarm::SwarmArgs),
    /// The whole network on this machine: chain, two transcoder boxes, verifier, broadcaster, viewers.
    Demo(cmd::demo::Args),
    /// Watch a stream as a viewer node: join its rendition swarms, relay them, serve them as HLS locally.
    View(cmd::view::Args),
    /// The account's encrypted keystore: create, import, show.
    Account(cmd::chain::account::Args),
    /// Protocol tokens: balance, transfer, faucet (dev chains).
    Token(cmd::chain::stake::TokenArgs),
    /// Bond tokens to a transcoder (self-bond with `--to self`, or delegate).
    Bond(cmd::chain::stake::BondArgs),
    /// Start unbonding stake (withdrawable after the unbonding period).
    Unbond(cmd::chain::stake::UnbondArgs),
    /// Withdraw unbonded stake once its unbonding period is over.
    WithdrawStake(cmd::chain::stake::PlainArgs),
    /// Claim rewards and fees up to the last finished round.
    ClaimEarnings(cmd::chain::stake::ClaimArgs),
    /// Withdraw earned fees (ETH).
    WithdrawFees(cmd::chain::stake::PlainArgs),
    /// Register as a transcoder, or change the terms.
    Transcoder(cmd::chain::stake::TranscoderArgs),
    /// Rounds: initialize the current one.
    Round(cmd::chain::stake::RoundArgs),
    /// Broadcaster deposit for jobs: deposit, withdraw.
    Broadcaster(cmd::chain::stake::BroadcasterArgs),
    /// The URI this box is reached at, in the ServiceRegistry: publish it, or show the own or `--address`'s.
    ServiceUri(cmd::chain::service::Args),
    /// Broadcast a file or the test source as a job: deposit, job on chain, signed segments to the elected
    /// transcoder, its HLS output copied back.
    Broadcast(cmd::chain::broadcast::Args),
    /// Protocol state of this account: round, stake, delegators, active set, earnings, pending transactions.
    Status(cmd::chain::status::Args),
    /// A local chain with the contracts deployed and funded accounts, for the demo and the CLI.
    Devnet(cmd::chain::devnet::Args),
    /// The verifier daemon (trusted solver key): answers verification requests with a verdict and evidence.
    Verify(cmd::chain::verify::VerifyArgs),
    /// Slash a job's claims whose challenged segments were never submitted for verification (finder's fee).
    SlashMissed(cmd::chain::verify::SlashArgs),
    /// Check one rendition segment against the signed original in fidelity mode, without the chain.
    SpotCheck(cmd::chain::verify::SpotCheckArgs),
    // Each further subcommand lives in its own module under `cmd/`; add it here and in `main` below.
}

#[derive(Debug, clap::Args)]
struct ConfigArgs {
    /// Configuration file (default: /etc/edge-agent/config.toml when it exists, else embedded defaults).
    #[arg(long, short)]
    config: Option<PathBuf>,
}

fn load_config(args: &ConfigArgs) -> anyhow::Result<config::Config> {
    config::Config::load(args.config.as_deref(), std::env::vars())
}

fn default_filter(cli: &Option<String>) -> String {
    cli.clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".into())
}

fn main() -> anyhow::Result<()> {
    malloc::tune();
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => {
            let cfg = load_config(&args)?;
            let filter = cli
                .log
                .clone()
                .unwrap_or_else(|| cfg.agent.log_level.clone());
            let log = logging::init(&filter, cfg.agent.log_json)?;
            daemon::run(cfg, log)
        }
        Command::Config(args) => {
            let cfg = load_config(&args)?;
            print!("{}", toml::to_string_pretty(&cfg)?);
            Ok(())
        }
        command => {
            // chain commands print their own results; their progress logs are for --log info
            let quiet = matches!(
                command,
                Command::Account(_)
                    | Command::Token(_)
                    | Command::Bond(_)
                    | Command::Unbond(_)
                    | Command::WithdrawStake(_)
                    | Command::ClaimEarnings(_)
                    | Command::WithdrawFees(_)
                    | Command::Transcoder(_)
                    | Command::Round(_)
                    | Command::Broadcaster(_)
                    | Command::ServiceUri(_)
                    | Command::Status(_)
                    | Command::SlashMissed(_)
            );
            let filter = match (&cli.log, quiet) {
                (None, true) if std::env::var_os("RUST_LOG").is_none() => "warn".to_string(),
                _ => default_filter(&cli.log),
            };
            logging::init(&filter, false)?;
            match command {
                Command::Transcode(a) => cmd::transcode::run(a),
                Command::Hw(a) => cmd::hw::run(a),
                Command::Profiles(a) => cmd::profiles::run(a),
                Command::Swarm(a) => cmd::swarm::run(a),
                Command::View(a) => cmd::view::run(a),
                Command::Demo(a) => cmd::demo::run(a),
                Command::Account(a) => cmd::chain::account::run(a),
                Command::Token(a) => cmd::chain::stake::token(a),
                Command::Bond(a) => cmd::chain::stake::bond(a),
                Command::Unbond(a) => cmd::chain::stake::unbond(a),
                Command::WithdrawStake(a) => cmd::chain::stake::withdraw_stake(a),
                Command::ClaimEarnings(a) => cmd::chain::stake::claim_earnings(a),
                Command::WithdrawFees(a) => cmd::chain::stake::withdraw_fees(a),
                Command::Transcoder(a) => cmd::chain::stake::transcoder(a),
                Command::Round(a) => cmd::chain::stake::round(a),
                Command::Broadcaster(a) => cmd::chain::stake::broadcaster(a),
                Command::ServiceUri(a) => cmd::chain::service::run(a),
                Command::Status(a) => cmd::chain::status::run(a),
                Command::Broadcast(a) => cmd::chain::broadcast::run(a),
                Command::Devnet(a) => cmd::chain::devnet::run(a),
                Command::Verify(a) => cmd::chain::verify::verify(a),
                Command::SlashMissed(a) => cmd::chain::verify::slash_missed(a),
                Command::SpotCheck(a) => cmd::chain::verify::spot_check(a),
                Command::Run(_) | Command::Config(_) => unreachable!("handled above"),
            }
        }
    }
}
