//! Subcommands: each module has an `Args` (clap) and a `run(args) -> anyhow::Result<()>`.

pub mod chain;
pub mod demo;
pub mod hw;
pub mod profiles;
pub mod swarm;
pub mod transcode;
pub mod view;
