//! The transaction commands: tokens, bonding and delegation, earnings, transcoder registration, round
//! initialization and the broadcaster's deposit. Each refuses with a readable reason before sending a
//! transaction that would revert (checks in `chain::ops`, then a dry run of the call itself).

use chain::ops::Client;
use chain::sender::Mined;

use super::{
    ChainArgs, block_on, format_units, parse_address, parse_amount, parse_percent, print_txs,
};

#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TokenCommand {
    /// Token balance of an address (default: own).
    Balance { address: Option<String> },
    /// Send tokens (AMOUNT in tokens, e.g. `12.5`, or with `wei`).
    Transfer { to: String, amount: String },
    /// Take tokens from the faucet (dev chains only).
    Faucet,
}

#[derive(Debug, clap::Args)]
pub struct BondArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// Tokens to bond (e.g. `500`, `0.5`, `100wei`); `0` moves an existing bond.
    amount: String,
    /// Address to bond to: own address (`self`) to self-bond as a transcoder, another to delegate.
    #[arg(long)]
    to: String,
}

#[derive(Debug, clap::Args)]
pub struct UnbondArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// Tokens to unbond, or `all` (the whole bond, unclaimed rewards included).
    amount: String,
}

#[derive(Debug, clap::Args)]
pub struct PlainArgs {
    #[command(flatten)]
    chain: ChainArgs,
}

#[derive(Debug, clap::Args)]
pub struct ClaimArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// Claim up to this round (default: the last finished round).
    #[arg(long)]
    end_round: Option<u64>,
}

#[derive(Debug, clap::Args)]
pub struct TranscoderArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(subcommand)]
    command: TranscoderCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TranscoderCommand {
    /// Register (or update the terms of) this account as a transcoder; needs a self-bond.
    Register {
        /// Share of rewards the transcoder keeps, percent.
        #[arg(long)]
        reward_cut: String,
        /// Share of fees passed to delegators, percent.
        #[arg(long)]
        fee_share: String,
        /// Price per segment (e.g. `1gwei`, `1000wei`, or ETH as a decimal).
        #[arg(long)]
        price: String,
    },
    /// Call reward for the current round now (the daemon does this by itself when it runs with `[chain]`).
    Reward,
}

#[derive(Debug, clap::Args)]
pub struct RoundArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(subcommand)]
    command: RoundCommand,
}

#[derive(Debug, clap::Subcommand)]
enum RoundCommand {
    /// Initialize the current round (anyone may, once per round).
    Init,
}

#[derive(Debug, clap::Args)]
pub struct BroadcasterArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(subcommand)]
    command: BroadcasterCommand,
}

#[derive(Debug, clap::Subcommand)]
enum BroadcasterCommand {
    /// Deposit ETH (AMOUNT in ETH, or with `wei`/`gwei`) to pay for jobs.
    Deposit { amount: String },
    /// Withdraw the whole deposit (once no job of this broadcaster is open).
    Withdraw,
}

/// Connects, runs `op`, prints the transactions.
fn transact<F>(chain: &ChainArgs, action: &str, op: F) -> anyhow::Result<()>
where
    F: AsyncFnOnce(&Client) -> anyhow::Result<Vec<Mined>>,
{
    block_on(async {
        let c = chain.connect().await?;
        let txs = op(&c).await?;
        print_txs(chain.json, action, c.address(), &txs)
    })
}

pub fn token(a: TokenArgs) -> anyhow::Result<()> {
    match a.command {
        TokenCommand::Balance { address } => block_on(async {
            let c = a.chain.connect().await?;
            let who = match &address {
                Some(s) => parse_address(s, c.address())?,
                None => c.address(),
            };
            let v = c.proto.token_balance(who).await?;
            if a.chain.json {
                println!(
                    "{}",
                    serde_json::json!({"address": who, "balance_wei": v.to_string(), "balance": format_units(v)})
                );
            } else {
                println!("{} tokens ({who:?})", format_units(v));
            }
            Ok(())
        }),
        TokenCommand::Transfer { to, amount } => {
            let amount = parse_amount(&amount)?;
            transact(&a.chain, "token transfer", async |c| {
                let to = parse_address(&to, c.address())?;
                Ok(vec![c.transfer(to, amount).await?])
            })
        }
        TokenCommand::Faucet => transact(&a.chain, "token faucet", async |c| {
            Ok(vec![c.faucet().await?])
        }),
    }
}

pub fn bond(a: BondArgs) -> anyhow::Result<()> {
    let amount = parse_amount(&a.amount)?;
    transact(&a.chain, "bond", async |c| {
        let to = parse_address(&a.to, c.address())?;
        Ok(c.bond(amount, to).await?)
    })
}

pub fn unbond(a: UnbondArgs) -> anyhow::Result<()> {
    let amount = match a.amount.as_str() {
        "all" => None,
        s => Some(parse_amount(s)?),
    };
    transact(&a.chain, "unbond", async |c| {
        Ok(vec![c.unbond(amount).await?])
    })
}

pub fn withdraw_stake(a: PlainArgs) -> anyhow::Result<()> {
    transact(&a.chain, "withdraw-stake", async |c| {
        Ok(vec![c.withdraw_stake().await?])
    })
}

pub fn withdraw_fees(a: PlainArgs) -> anyhow::Result<()> {
    transact(&a.chain, "withdraw-fees", async |c| {
        Ok(vec![c.withdraw_fees().await?])
    })
}

pub fn claim_earnings(a: ClaimArgs) -> anyhow::Result<()> {
    transact(&a.chain, "claim-earnings", async |c| {
        Ok(vec![c.claim_earnings(a.end_round).await?])
    })
}

pub fn transcoder(a: TranscoderArgs) -> anyhow::Result<()> {
    match a.command {
        TranscoderCommand::Register {
            reward_cut,
            fee_share,
            price,
        } => {
            let (rc, fs, price) = (
                parse_percent(&reward_cut)?,
                parse_percent(&fee_share)?,
                parse_amount(&price)?,
            );
            transact(&a.chain, "transcoder register", async |c| {
                Ok(vec![c.register_transcoder(rc, fs, price).await?])
            })
        }
        TranscoderCommand::Reward => transact(&a.chain, "transcoder reward", async |c| {
            Ok(vec![c.reward().await?])
        }),
    }
}

pub fn round(a: RoundArgs) -> anyhow::Result<()> {
    match a.command {
        RoundCommand::Init => transact(&a.chain, "round init", async |c| {
            Ok(vec![c.initialize_round().await?])
        }),
    }
}

pub fn broadcaster(a: BroadcasterArgs) -> anyhow::Result<()> {
    match a.command {
        BroadcasterCommand::Deposit { amount } => {
            let amount = parse_amount(&amount)?;
            transact(&a.chain, "broadcaster deposit", async |c| {
                Ok(vec![c.deposit(amount).await?])
            })
        }
        BroadcasterCommand::Withdraw => transact(&a.chain, "broadcaster withdraw", async |c| {
            Ok(vec![c.withdraw_deposit().await?])
        }),
    }
}
