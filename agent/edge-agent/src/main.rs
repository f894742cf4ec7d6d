//! `edge-agent`: the one binary of an edge transcoder box.  CLI parsing and daemon wiring only; the
//! capabilities live in their own crates (`media`, `hw`, `ppspp`, `fleet`, ...).

mod cmd;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "edge-agent", version, about = "Edge transcoder appliance agent")]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `media=debug`.
    #[arg(long, global = true, env = "EDGE_AGENT_LOG", default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    // Each subcommand lives in its own module under `cmd/`; add new ones here and in `run` below.
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cli.log)?)
        .with_writer(std::io::stderr)
        .init();
    match cli.command {}
}
