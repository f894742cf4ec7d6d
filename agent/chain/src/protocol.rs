//! Typed reads of the protocol's state over a [`Node`]: rounds, bonds, transcoders, earnings, balances, the
//! service URIs of the ServiceRegistry. Every read is one `eth_call` against the deployment's contracts;
//! [`Protocol::status`] gathers what an operator's `edge-agent status` shows.

use ethers_core::types::{Address, Bytes, U256};
use serde::Serialize;

use crate::abi::AbiError;
use crate::bindings::{
    bonding_manager as bm, minter, rounds_manager as rm, service_registry as sr, token,
};
use crate::deployment::Deployment;
use crate::node::{Node, NodeError};

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("decoding the answer of {what}: {source}")]
    Abi {
        what: &'static str,
        source: AbiError,
    },
}

#[derive(Clone, Debug)]
pub struct Protocol {
    pub node: Node,
    pub deployment: Deployment,
}

/// A bond as the BondingManager keeps it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Bond {
    pub bonded: U256,
    pub delegate: Address,
    pub start_round: u64,
    pub last_claim_round: u64,
    pub fees: U256,
    pub unbonding: U256,
    pub withdraw_round: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TranscoderInfo {
    pub registered: bool,
    pub reward_cut: U256,
    pub fee_share: U256,
    pub price_per_segment: U256,
    pub last_reward_round: u64,
    /// Self-bond plus delegations.
    pub total_stake: U256,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoundInfo {
    pub block: u64,
    pub round: u64,
    pub length: u64,
    pub start_block: u64,
    pub initialized: bool,
    pub locked: bool,
}

/// What `edge-agent status` shows for one account.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub address: Address,
    pub chain_id: u64,
    pub round: RoundInfo,
    pub eth_balance: U256,
    pub token_balance: U256,
    pub bond: Bond,
    pub transcoder: TranscoderInfo,
    pub active: bool,
    /// Other addresses bonded to this account (from the Bond events since the deployment).
    pub delegators: Vec<Address>,
    pub active_set: Vec<Address>,
    /// Bond and fees after claiming up to the last finished round.
    pub pending_stake: U256,
    pub pending_fees: U256,
}

impl Protocol {
    pub fn new(node: Node, deployment: Deployment) -> Self {
        Self { node, deployment }
    }

    /// One `eth_call` of a view and its decoding.
    pub(crate) async fn read<T>(
        &self,
        what: &'static str,
        to: Address,
        data: Bytes,
        decode: fn(&[u8]) -> Result<T, AbiError>,
    ) -> Result<T, ViewError> {
        let out = self.node.call(None, to, &data, U256::zero(), None).await?;
        decode(&out).map_err(|source| ViewError::Abi { what, source })
    }

    pub async fn round_length(&self) -> Result<u64, ViewError> {
        let d = &self.deployment;
        Ok(self
            .read(
                "roundLength",
                d.rounds_manager,
                rm::round_length(),
                rm::decode_round_length,
            )
            .await?
            .as_u64())
    }

    pub async fn round_initialized(&self) -> Result<bool, ViewError> {
        let d = &self.deployment;
        self.read(
            "currentRoundInitialized",
            d.rounds_manager,
            rm::current_round_initialized(),
            rm::decode_current_round_initialized,
        )
        .await
    }

    pub async fn round(&self) -> Result<RoundInfo, ViewError> {
        let d = &self.deployment;
        let length = self.round_length().await?;
        let block = self.node.block_number().await?;
        let initialized = self.round_initialized().await?;
        let locked = self
            .read(
                "currentRoundLocked",
                d.rounds_manager,
                rm::current_round_locked(),
                rm::decode_current_round_locked,
            )
            .await?;
        // eth_call runs on the latest block, whose number the contracts see as block.number
        let round = block / length.max(1);
        Ok(RoundInfo {
            block,
            round,
            length,
            start_block: round * length,
            initialized,
            locked,
        })
    }

    pub async fn bond(&self, who: Address) -> Result<Bond, ViewError> {
        let d = &self.deployment;
        let g = self
            .read(
                "getDelegator",
                d.bonding_manager,
                bm::get_delegator(who),
                bm::decode_get_delegator,
            )
            .await?;
        Ok(Bond {
            bonded: g.bonded_amount,
            delegate: g.delegate_address,
            start_round: g.start_round.as_u64(),
            last_claim_round: g.last_claim_round.as_u64(),
            fees: g.fees,
            unbonding: g.unbonding_amount,
            withdraw_round: g.withdraw_round.as_u64(),
        })
    }

    pub async fn transcoder(&self, who: Address) -> Result<TranscoderInfo, ViewError> {
        let d = &self.deployment;
        let registered = self
            .read(
                "isRegisteredTranscoder",
                d.bonding_manager,
                bm::is_registered_transcoder(who),
                bm::decode_is_registered_transcoder,
            )
            .await?;
        let t = self
            .read(
                "getTranscoder",
                d.bonding_manager,
                bm::get_transcoder(who),
                bm::decode_get_transcoder,
            )
            .await?;
        Ok(TranscoderInfo {
            registered,
            reward_cut: t.reward_cut,
            fee_share: t.fee_share,
            price_per_segment: t.price_per_segment,
            last_reward_round: t.last_reward_round.as_u64(),
            total_stake: t.delegated_amount,
        })
    }

    pub async fn is_active(&self, who: Address, round: u64) -> Result<bool, ViewError> {
        let d = &self.deployment;
        self.read(
            "isActiveTranscoder",
            d.bonding_manager,
            bm::is_active_transcoder(who, round.into()),
            bm::decode_is_active_transcoder,
        )
        .await
    }

    pub async fn active_set(&self, round: u64) -> Result<Vec<Address>, ViewError> {
        let d = &self.deployment;
        self.read(
            "getActiveTranscoders",
            d.bonding_manager,
            bm::get_active_transcoders(round.into()),
            bm::decode_get_active_transcoders,
        )
        .await
    }

    pub async fn token_balance(&self, who: Address) -> Result<U256, ViewError> {
        let d = &self.deployment;
        self.read(
            "balanceOf",
            d.token,
            token::balance_of(who),
            token::decode_balance_of,
        )
        .await
    }

    pub async fn allowance(&self, owner: Address, spender: Address) -> Result<U256, ViewError> {
        let d = &self.deployment;
        self.read(
            "allowance",
            d.token,
            token::allowance(owner, spender),
            token::decode_allowance,
        )
        .await
    }

    pub async fn is_dev_chain(&self) -> Result<bool, ViewError> {
        let d = &self.deployment;
        self.read(
            "isDevChain",
            d.token,
            token::is_dev_chain(),
            token::decode_is_dev_chain,
        )
        .await
    }

    pub async fn mintable(&self) -> Result<U256, ViewError> {
        let d = &self.deployment;
        self.read(
            "currentMintableTokens",
            d.minter,
            minter::current_mintable_tokens(),
            minter::decode_current_mintable_tokens,
        )
        .await
    }

    /// The URI `who` published in the ServiceRegistry ("" when none): where its box can be reached.
    pub async fn service_uri(&self, who: Address) -> Result<String, ViewError> {
        let d = &self.deployment;
        self.read(
            "getServiceURI",
            d.service_registry,
            sr::get_service_uri(who),
            sr::decode_get_service_uri,
        )
        .await
    }

    /// Bond and fees of `who` after claiming up to `end_round`.
    pub async fn pending_earnings(
        &self,
        who: Address,
        end_round: u64,
    ) -> Result<(U256, U256), ViewError> {
        let d = &self.deployment;
        let p = self
            .read(
                "pendingEarnings",
                d.bonding_manager,
                bm::pending_earnings(who, end_round.into()),
                bm::decode_pending_earnings,
            )
            .await?;
        Ok((p.stake, p.fees))
    }

    /// Addresses whose current bond points at `transcoder`, from the Bond events since the deployment block.
    pub async fn delegators_of(&self, transcoder: Address) -> Result<Vec<Address>, ViewError> {
        let d = &self.deployment;
        let head = self.node.block_number().await?;
        let mut seen = std::collections::BTreeSet::new();
        let mut from = d.deploy_block;
        while from <= head {
            let to = head.min(from + 9_999);
            let logs = self
                .node
                .logs(&crate::node::LogFilter {
                    from_block: from,
                    to_block: to,
                    addresses: vec![d.bonding_manager],
                    topics0: vec![bm::events::Bond::TOPIC],
                })
                .await?;
            for l in logs {
                if let Ok(b) = bm::events::Bond::decode(&l.topics, &l.data) {
                    if b.delegate == transcoder {
                        seen.insert(b.delegator);
                    }
                }
            }
            from = to + 1;
        }
        let mut out = Vec::new();
        for a in seen {
            let b = self.bond(a).await?;
            if a != transcoder && b.delegate == transcoder && !b.bonded.is_zero() {
                out.push(a);
            }
        }
        Ok(out)
    }

    pub async fn status(&self, who: Address) -> Result<Status, ViewError> {
        let round = self.round().await?;
        let bond = self.bond(who).await?;
        let transcoder = self.transcoder(who).await?;
        let active = self.is_active(who, round.round).await?;
        let (pending_stake, pending_fees) = self
            .pending_earnings(who, round.round.saturating_sub(1))
            .await?;
        Ok(Status {
            address: who,
            chain_id: self.deployment.chain_id,
            eth_balance: self.node.balance(who).await?,
            token_balance: self.token_balance(who).await?,
            delegators: if transcoder.registered {
                self.delegators_of(who).await?
            } else {
                Vec::new()
            },
            active_set: self.active_set(round.round).await?,
            round,
            bond,
            transcoder,
            active,
            pending_stake,
            pending_fees,
        })
    }
}
