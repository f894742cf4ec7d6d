//! The manual steps of the protocol, as an operator's CLI runs them: each checks what it can before anything
//! is signed (and the [`Sender`] dry-runs the call itself), so a step that would revert is refused with the
//! contract's reason instead of costing gas.

use std::path::Path;

use ethers_core::types::{Address, U256};

use crate::bindings::{
    bonding_manager as bm, jobs_manager as jm, rounds_manager as rm, service_registry as sr, token,
};
use crate::config::ChainConfig;
use crate::deployment::Deployment;
use crate::journal::Journal;
use crate::node::Node;
use crate::protocol::{Protocol, ViewError};
use crate::sender::{Call, Mined, SendError, Sender};

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Send(#[from] SendError),
    #[error(transparent)]
    View(#[from] ViewError),
    #[error(transparent)]
    Node(#[from] crate::node::NodeError),
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    #[error(transparent)]
    Deployment(#[from] crate::deployment::DeploymentError),
}

pub(crate) fn not_initialized() -> OpError {
    OpError::Refused(
        "the current round is not initialized yet: run `edge-agent round init` (anyone may) and retry".into(),
    )
}

/// Longest service URI the ServiceRegistry accepts, in bytes (its `MAX_SERVICE_URI_LENGTH`).
pub const MAX_SERVICE_URI_BYTES: usize = 256;

/// The `setServiceURI(uri)` transaction, refused here when the registry would refuse it (too long) or the URI
/// could not be one (control characters).
pub fn service_uri_call(d: &Deployment, uri: &str) -> Result<Call, OpError> {
    if uri.len() > MAX_SERVICE_URI_BYTES {
        return Err(OpError::Refused(format!(
            "the service URI is {} bytes long; the ServiceRegistry takes at most {MAX_SERVICE_URI_BYTES}",
            uri.len()
        )));
    }
    if uri.chars().any(char::is_control) {
        return Err(OpError::Refused(format!(
            "the service URI {uri:?} contains control characters"
        )));
    }
    Ok(Call::new(
        format!("setServiceURI {uri}"),
        d.service_registry,
        sr::set_service_uri(uri.to_string()),
    ))
}

/// One account's access to the protocol: views plus signed transactions.
pub struct Client {
    pub proto: Protocol,
    pub sender: Sender,
}

/// Reads the deployment, connects (chain id checked), opens the keystore and the journal, and follows up
/// transactions an earlier run left pending.
pub async fn connect(cfg: &ChainConfig, state_dir: &Path) -> Result<Client, OpError> {
    let deployment = Deployment::load(&cfg.deployment)?;
    let node = Node::connect(&cfg.rpc_url, cfg.node_options(), &deployment).await?;
    let wallet = crate::keys::open(&cfg.keystore, &cfg.password, deployment.chain_id)?;
    let journal = Journal::open(&state_dir.join("journal"))?;
    let sender = Sender::open(node.clone(), wallet, journal, cfg.send.clone()).await?;
    for r in sender.settle().await {
        match r {
            Ok(m) => {
                tracing::info!(label = %m.label, hash = ?m.hash, block = m.block, "earlier transaction mined")
            }
            Err(SendError::Node(e)) => return Err(e.into()),
            Err(e) => tracing::warn!(error = %e, "earlier transaction did not succeed"),
        }
    }
    Ok(Client {
        proto: Protocol::new(node, deployment),
        sender,
    })
}

impl Client {
    pub fn address(&self) -> Address {
        self.sender.address()
    }

    fn d(&self) -> &Deployment {
        &self.proto.deployment
    }

    async fn need_initialized(&self) -> Result<(), OpError> {
        if !self.proto.round_initialized().await? {
            return Err(not_initialized());
        }
        Ok(())
    }

    pub async fn transfer(&self, to: Address, amount: U256) -> Result<Mined, OpError> {
        let have = self.proto.token_balance(self.address()).await?;
        if have < amount {
            return Err(OpError::Refused(format!(
                "token balance {have} wei is less than {amount} wei"
            )));
        }
        Ok(self
            .sender
            .send(Call::new(
                "token transfer",
                self.d().token,
                token::transfer(to, amount),
            ))
            .await?)
    }

    pub async fn faucet(&self) -> Result<Mined, OpError> {
        if !self.proto.is_dev_chain().await? {
            return Err(OpError::Refused(
                "this chain's token has no faucet (only dev chains do)".into(),
            ));
        }
        Ok(self
            .sender
            .send(Call::new("token faucet", self.d().token, token::faucet()))
            .await?)
    }

    /// Bonds `amount` more to `to` (self-bond when `to` is this account), approving the tokens first when
    /// the allowance is short. Returns the approval (if one was needed) and the bond.
    pub async fn bond(&self, amount: U256, to: Address) -> Result<Vec<Mined>, OpError> {
        self.need_initialized().await?;
        let me = self.address();
        let have = self.proto.token_balance(me).await?;
        if have < amount {
            return Err(OpError::Refused(format!(
                "token balance {have} wei is less than the {amount} wei to bond"
            )));
        }
        let current = self.proto.bond(me).await?;
        if current.delegate != to
            && current.delegate != Address::zero()
            && !current.bonded.is_zero()
            && self.proto.transcoder(me).await?.registered
        {
            return Err(OpError::Refused(
                "a registered transcoder cannot move its bond to another address: unbond first"
                    .into(),
            ));
        }
        let mut out = Vec::new();
        let bonding = self.d().bonding_manager;
        if self.proto.allowance(me, bonding).await? < amount {
            out.push(
                self.sender
                    .send(Call::new(
                        "approve tokens for bonding",
                        self.d().token,
                        token::approve(bonding, amount),
                    ))
                    .await?,
            );
        }
        out.push(
            self.sender
                .send(Call::new(
                    format!("bond {amount} wei to {to:?}"),
                    bonding,
                    bm::bond(amount, to),
                ))
                .await?,
        );
        Ok(out)
    }

    /// Starts unbonding `amount`, or the whole bond (rewards not yet claimed included) when `None`.
    pub async fn unbond(&self, amount: Option<U256>) -> Result<Mined, OpError> {
        self.need_initialized().await?;
        let me = self.address();
        let round = self.proto.round().await?.round;
        // unbond claims earnings up to the last finished round first: that is the bond it works on
        let (bonded, _) = self
            .proto
            .pending_earnings(me, round.saturating_sub(1))
            .await?;
        let amount = amount.unwrap_or(bonded);
        if amount.is_zero() || amount > bonded {
            return Err(OpError::Refused(format!(
                "the amount {amount} wei is more than the bonded stake {bonded} wei (or zero)"
            )));
        }
        Ok(self
            .sender
            .send(Call::new(
                "unbond",
                self.d().bonding_manager,
                bm::unbond(amount),
            ))
            .await?)
    }

    pub async fn withdraw_stake(&self) -> Result<Mined, OpError> {
        self.need_initialized().await?;
        let b = self.proto.bond(self.address()).await?;
        if b.unbonding.is_zero() {
            return Err(OpError::Refused(
                "there is no unbonded stake to withdraw".into(),
            ));
        }
        let round = self.proto.round().await?.round;
        if round < b.withdraw_round {
            return Err(OpError::Refused(format!(
                "the unbonding period is not over: {} wei can be withdrawn from round {} on (now round {round})",
                b.unbonding, b.withdraw_round
            )));
        }
        Ok(self
            .sender
            .send(Call::new(
                "withdraw stake",
                self.d().bonding_manager,
                bm::withdraw_stake(),
            ))
            .await?)
    }

    /// Claims rewards and fees up to `end_round` (default: the last finished round).
    pub async fn claim_earnings(&self, end_round: Option<u64>) -> Result<Mined, OpError> {
        self.need_initialized().await?;
        let round = self.proto.round().await?.round;
        let end = end_round.unwrap_or(round.saturating_sub(1));
        let b = self.proto.bond(self.address()).await?;
        if end >= round || end <= b.last_claim_round {
            return Err(OpError::Refused(format!(
                "nothing to claim up to round {end}: earnings are claimed up to the last finished round ({}), \
                 and this account has claimed up to round {}",
                round.saturating_sub(1),
                b.last_claim_round
            )));
        }
        Ok(self
            .sender
            .send(Call::new(
                format!("claim earnings to round {end}"),
                self.d().bonding_manager,
                bm::claim_earnings(end.into()),
            ))
            .await?)
    }

    pub async fn withdraw_fees(&self) -> Result<Mined, OpError> {
        self.need_initialized().await?;
        Ok(self
            .sender
            .send(Call::new(
                "withdraw fees",
                self.d().bonding_manager,
                bm::withdraw_fees(),
            ))
            .await?)
    }

    /// Registers (or updates) this account as a transcoder; cuts in millionths, price in wei per segment.
    pub async fn register_transcoder(
        &self,
        reward_cut: u64,
        fee_share: u64,
        price: U256,
    ) -> Result<Mined, OpError> {
        if reward_cut > 1_000_000 || fee_share > 1_000_000 {
            return Err(OpError::Refused(
                "reward cut and fee share are at most 100 %".into(),
            ));
        }
        let r = self.proto.round().await?;
        if !r.initialized {
            return Err(not_initialized());
        }
        if r.locked {
            return Err(OpError::Refused(
                "the round is in its lock period: register after the next round starts".into(),
            ));
        }
        let me = self.address();
        let b = self.proto.bond(me).await?;
        if b.delegate != me || b.bonded.is_zero() {
            return Err(OpError::Refused(
                "register needs a self-bond first: `edge-agent bond AMOUNT --to <own address>`"
                    .into(),
            ));
        }
        Ok(self
            .sender
            .send(Call::new(
                "register transcoder",
                self.d().bonding_manager,
                bm::transcoder(reward_cut.into(), fee_share.into(), price),
            ))
            .await?)
    }

    pub async fn initialize_round(&self) -> Result<Mined, OpError> {
        let r = self.proto.round().await?;
        if r.initialized {
            return Err(OpError::Refused(format!(
                "round {} is already initialized: nothing to do",
                r.round
            )));
        }
        Ok(self
            .sender
            .send(Call::new(
                format!("initializeRound round {}", r.round),
                self.d().rounds_manager,
                rm::initialize_round(),
            ))
            .await?)
    }

    pub async fn reward(&self) -> Result<Mined, OpError> {
        self.need_initialized().await?;
        let round = self.proto.round().await?.round;
        if !self.proto.is_active(self.address(), round).await? {
            return Err(OpError::Refused(format!(
                "this account is not in round {round}'s active transcoder set: no reward to call"
            )));
        }
        Ok(self
            .sender
            .send(Call::new("reward", self.d().bonding_manager, bm::reward()))
            .await?)
    }

    pub async fn deposit(&self, amount: U256) -> Result<Mined, OpError> {
        if self.proto.node.balance(self.address()).await? < amount {
            return Err(OpError::Refused(format!(
                "the ETH balance is less than the {amount} wei to deposit"
            )));
        }
        Ok(self
            .sender
            .send(
                Call::new("broadcaster deposit", self.d().jobs_manager, jm::deposit())
                    .value(amount),
            )
            .await?)
    }

    /// Publishes `uri` in the ServiceRegistry as where this account's box can be reached (`""` withdraws it).
    /// `None` when it is the published one already: nothing is sent.
    pub async fn set_service_uri(&self, uri: &str) -> Result<Option<Mined>, OpError> {
        let call = service_uri_call(self.d(), uri)?;
        if self.proto.service_uri(self.address()).await? == uri {
            return Ok(None);
        }
        Ok(Some(self.sender.send(call).await?))
    }

    pub async fn withdraw_deposit(&self) -> Result<Mined, OpError> {
        Ok(self
            .sender
            .send(Call::new(
                "broadcaster withdraw",
                self.d().jobs_manager,
                jm::withdraw(),
            ))
            .await?)
    }
}
