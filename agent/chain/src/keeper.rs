//! The automatic part of the Bond -> Delegate -> Reward loop: initialize the round (when configured to) and
//! call `reward()` exactly once per round while this account is an active transcoder. At start it also makes
//! the ServiceRegistry hold the configured service URI (`[chain] service_uri`), sending `setServiceURI` only
//! when the published one differs.
//!
//! [`Planner`] is the decision, a pure function of what is known about the current block (tested without a
//! chain); [`Keeper`] is the thin async driver: it watches blocks and the RoundsManager's `NewRound` events,
//! reads the few views the planner needs once per round (or when an event says they changed), sends what the
//! planner asks for, and publishes a [`KeeperStatus`] for metrics and telemetry.

use std::sync::Arc;
use std::time::Duration;

use ethers_core::types::{Address, U256};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::bindings::{bonding_manager as bm, rounds_manager as rm};
use crate::events::Watcher;
use crate::protocol::Protocol;
use crate::sender::{Call, SendError, Sender};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KeeperConfig {
    /// Call `initializeRound()` when a round starts and nobody has yet.
    pub initialize_round: bool,
    /// Call `reward()` once per round while active.
    pub reward: bool,
    /// Gas a reward transaction is budgeted at (the gas report measures about 197k).
    pub reward_gas: u64,
    /// Gas an initializeRound transaction is budgeted at.
    pub initialize_gas: u64,
    /// Expected seconds per block, for the "gas lasts a week" estimate.
    pub block_time_s: f64,
    /// Warn when the gas balance lasts fewer days of rounds than this.
    pub gas_warn_days: f64,
    /// How often the node is asked for a new block, milliseconds.
    pub poll_ms: u64,
    /// Send nothing in a round's last blocks: a transaction mined in the next round would revert there.
    pub round_end_margin_blocks: u64,
}

impl Default for KeeperConfig {
    fn default() -> Self {
        Self {
            initialize_round: false,
            reward: true,
            reward_gas: 250_000,
            initialize_gas: 300_000,
            block_time_s: 12.0,
            gas_warn_days: 7.0,
            poll_ms: 4_000,
            round_end_margin_blocks: 2,
        }
    }
}

/// What is known at a block, as far as the planner needs it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    pub block: u64,
    pub round: u64,
    pub round_length: u64,
    pub round_initialized: bool,
    /// In the current round's active set (fixed when the round was initialized).
    pub active: bool,
    pub last_reward_round: u64,
    pub gas_balance: U256,
    pub gas_price: U256,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    InitializeRound { round: u64 },
    Reward { round: u64 },
}

/// Why nothing is sent now (for logs and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    RoundNotInitialized,
    NotActive,
    AlreadyRewarded,
    AlreadyTried,
    Disabled,
    RoundEnding,
    NotEnoughGas { have: U256, need: U256 },
}

#[derive(Debug, Clone)]
pub struct Planner {
    cfg: KeeperConfig,
    /// Rounds for which a transaction was sent (mined or failed): never a second one in the same round.
    tried_init: Option<u64>,
    tried_reward: Option<u64>,
}

impl Planner {
    pub fn new(cfg: KeeperConfig) -> Self {
        Self {
            cfg,
            tried_init: None,
            tried_reward: None,
        }
    }

    pub fn decide(&self, o: &Observation) -> Result<Action, Wait> {
        let round_last_block = (o.round + 1) * o.round_length.max(1) - 1;
        if o.block + self.cfg.round_end_margin_blocks > round_last_block {
            return Err(Wait::RoundEnding);
        }
        if !o.round_initialized {
            if !self.cfg.initialize_round {
                return Err(Wait::RoundNotInitialized);
            }
            if self.tried_init == Some(o.round) {
                return Err(Wait::AlreadyTried);
            }
            self.gas_for(self.cfg.initialize_gas, o)?;
            return Ok(Action::InitializeRound { round: o.round });
        }
        if !self.cfg.reward {
            return Err(Wait::Disabled);
        }
        if !o.active {
            return Err(Wait::NotActive);
        }
        if o.last_reward_round >= o.round {
            return Err(Wait::AlreadyRewarded);
        }
        if self.tried_reward == Some(o.round) {
            return Err(Wait::AlreadyTried);
        }
        self.gas_for(self.cfg.reward_gas, o)?;
        Ok(Action::Reward { round: o.round })
    }

    /// A transaction for `a` was sent (whatever came of it).
    pub fn sent(&mut self, a: Action) {
        match a {
            Action::InitializeRound { round } => self.tried_init = Some(round),
            Action::Reward { round } => self.tried_reward = Some(round),
        }
    }

    fn gas_for(&self, gas: u64, o: &Observation) -> Result<(), Wait> {
        let need = o.gas_price * gas;
        if o.gas_balance < need {
            return Err(Wait::NotEnoughGas {
                have: o.gas_balance,
                need,
            });
        }
        Ok(())
    }

    /// Gas cost of one round's automatic transactions at `gas_price`.
    pub fn cost_per_round(&self, gas_price: U256) -> U256 {
        let mut gas = 0;
        if self.cfg.reward {
            gas += self.cfg.reward_gas;
        }
        if self.cfg.initialize_round {
            gas += self.cfg.initialize_gas;
        }
        gas_price * gas
    }

    /// Rounds the balance pays for, and whether that is less than `gas_warn_days`.
    pub fn gas_runway(&self, o: &Observation) -> (Option<u64>, bool) {
        let per_round = self.cost_per_round(o.gas_price);
        if per_round.is_zero() {
            return (None, false);
        }
        let rounds_left = (o.gas_balance / per_round)
            .min(U256::from(u64::MAX))
            .as_u64();
        let round_s = self.cfg.block_time_s * o.round_length.max(1) as f64;
        let rounds_wanted = (self.cfg.gas_warn_days * 86_400.0 / round_s).ceil() as u64;
        (Some(rounds_left), rounds_left < rounds_wanted)
    }
}

/// What the keeper publishes (for `/metrics` and the fleet telemetry).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct KeeperStatus {
    pub address: Address,
    pub connected: bool,
    pub block: u64,
    pub round: u64,
    pub round_initialized: bool,
    pub active: bool,
    pub registered: bool,
    /// Self-bond plus delegations.
    pub stake: U256,
    pub last_reward_round: u64,
    pub pending_txs: u64,
    pub gas_balance: U256,
    pub gas_rounds_left: Option<u64>,
    pub gas_low: bool,
    pub rewards_sent: u64,
    pub initializations_sent: u64,
    pub failed_txs: u64,
    pub rpc_calls: u64,
    pub last_error: Option<String>,
    /// The configured service URI, once the ServiceRegistry was seen to hold it (read, or set by this run).
    pub service_uri: Option<String>,
    pub service_uri_updates_sent: u64,
}

pub struct Keeper {
    proto: Protocol,
    sender: Arc<Sender>,
    planner: Planner,
    cfg: KeeperConfig,
    status: watch::Sender<KeeperStatus>,
    /// The URI to publish in the ServiceRegistry, and whether that was settled in this run.
    service_uri: Option<String>,
    service_uri_settled: bool,
}

impl Keeper {
    pub fn new(
        proto: Protocol,
        sender: Arc<Sender>,
        cfg: KeeperConfig,
    ) -> (Self, watch::Receiver<KeeperStatus>) {
        let (status, rx) = watch::channel(KeeperStatus {
            address: sender.address(),
            ..Default::default()
        });
        (
            Self {
                proto,
                sender,
                planner: Planner::new(cfg.clone()),
                cfg,
                status,
                service_uri: None,
                service_uri_settled: false,
            },
            rx,
        )
    }

    /// The service URI this box publishes in the ServiceRegistry (`[chain] service_uri`); `None`: the
    /// registry is left as it is.
    pub fn with_service_uri(mut self, uri: Option<String>) -> Self {
        self.service_uri = uri;
        self
    }

    /// Runs until `stop` resolves. Node outages are logged and waited out; nothing here ends the daemon.
    pub async fn run(mut self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let poll = Duration::from_millis(self.cfg.poll_ms.max(50));
        loop {
            let step = async {
                match self.session().await {
                    Ok(()) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "chain keeper: node unavailable or failing; retrying");
                        self.status.send_modify(|s| {
                            s.connected = false;
                            s.last_error = Some(e.to_string());
                        });
                    }
                }
                tokio::time::sleep(poll).await;
            };
            tokio::select! {
                _ = &mut stop => return,
                _ = step => {}
            }
        }
    }

    /// One connected stretch: settle what an earlier run left pending, then follow the chain block by block.
    async fn session(&mut self) -> Result<(), KeeperError> {
        self.proto
            .node
            .check_deployment(&self.proto.deployment)
            .await?;
        for r in self.sender.settle().await {
            match r {
                Ok(m) => {
                    tracing::info!(label = %m.label, hash = ?m.hash, "earlier transaction mined")
                }
                Err(SendError::Node(e)) => return Err(e.into()),
                Err(e) => {
                    tracing::warn!(error = %e, "earlier transaction did not succeed");
                    self.status.send_modify(|s| s.failed_txs += 1);
                }
            }
        }
        self.publish_service_uri().await?;
        let round_length = self.proto.round_length().await?;
        let d = self.proto.deployment.clone();
        // a round's initialization (by anyone) is the one event that changes what the planner sees mid-round
        let mut watcher = Watcher::open(
            self.proto.node.clone(),
            self.sender.journal().clone(),
            "keeper",
            vec![d.rounds_manager],
            vec![rm::events::NewRound::TOPIC],
            self.proto.node.block_number().await?.saturating_sub(1),
        )?;
        let mut obs: Option<Observation> = None;
        let poll = Duration::from_millis(self.cfg.poll_ms.max(50));
        loop {
            let events = watcher.poll().await?;
            let block = watcher.cursor();
            let round = block / round_length.max(1);
            // a new round, or its initialization (or a reorg of it): read the views again
            let refresh = obs.as_ref().is_none_or(|o| o.round != round) || !events.is_empty();
            if obs.as_ref().is_some_and(|o| o.block != block) || refresh {
                let o = if refresh {
                    self.observe(block, round, round_length).await?
                } else {
                    let mut o = obs.take().expect("checked");
                    o.block = block;
                    o
                };
                self.act(&o).await?;
                obs = Some(o);
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// Once per run: the registry must hold the configured service URI; `setServiceURI` is sent only when it
    /// holds another one. A node failure leaves it for the next session; a refused or failed transaction is
    /// logged and not tried again until the daemon restarts.
    async fn publish_service_uri(&mut self) -> Result<(), KeeperError> {
        let Some(want) = self.service_uri.clone() else {
            return Ok(());
        };
        if self.service_uri_settled {
            return Ok(());
        }
        let have = self.proto.service_uri(self.sender.address()).await?;
        if have == want {
            tracing::info!(uri = %want, "service URI already published");
            self.service_uri_settled = true;
            self.status.send_modify(|s| s.service_uri = Some(want));
            return Ok(());
        }
        let call = match crate::ops::service_uri_call(&self.proto.deployment, &want) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "chain.service_uri not published");
                self.service_uri_settled = true;
                self.status
                    .send_modify(|s| s.last_error = Some(e.to_string()));
                return Ok(());
            }
        };
        let nonce = match self.sender.submit(call).await {
            Ok(n) => n,
            Err(SendError::Node(e)) => return Err(e.into()),
            Err(e) => {
                self.service_uri_settled = true;
                self.fail(e);
                return Ok(());
            }
        };
        self.status.send_modify(|s| {
            s.pending_txs += 1;
            s.service_uri_updates_sent += 1;
        });
        let r = self.sender.follow(nonce).await;
        self.status
            .send_modify(|s| s.pending_txs = s.pending_txs.saturating_sub(1));
        match r {
            Ok(m) => {
                tracing::info!(uri = %want, previous = %have, hash = ?m.hash, block = m.block,
                    "service URI published");
                self.service_uri_settled = true;
                self.status.send_modify(|s| s.service_uri = Some(want));
                Ok(())
            }
            // the next session settles what is pending, then reads the registry again
            Err(SendError::Node(e)) => Err(e.into()),
            Err(e @ SendError::Timeout { .. }) => Err(KeeperError::Pending(e)),
            Err(e) => {
                self.service_uri_settled = true;
                self.fail(e);
                Ok(())
            }
        }
    }

    async fn observe(
        &self,
        block: u64,
        round: u64,
        round_length: u64,
    ) -> Result<Observation, KeeperError> {
        let me = self.sender.address();
        let node = &self.proto.node;
        let t = self.proto.transcoder(me).await?;
        let o = Observation {
            block,
            round,
            round_length,
            round_initialized: self.proto.round_initialized().await?,
            active: self.proto.is_active(me, round).await?,
            last_reward_round: t.last_reward_round,
            gas_balance: node.balance(me).await?,
            gas_price: node.gas_price().await?,
        };
        self.status.send_modify(|s| {
            s.registered = t.registered;
            s.stake = t.total_stake;
        });
        Ok(o)
    }

    async fn act(&mut self, o: &Observation) -> Result<(), KeeperError> {
        let (rounds_left, low) = self.planner.gas_runway(o);
        let was_low = self.status.borrow().gas_low;
        if low && !was_low {
            tracing::warn!(balance = %o.gas_balance, rounds_left = ?rounds_left, days = self.cfg.gas_warn_days,
                "gas balance will not last: fund this account with ETH");
        }
        self.publish(o, rounds_left, low);
        let action = match self.planner.decide(o) {
            Ok(a) => a,
            Err(Wait::NotEnoughGas { have, need }) => {
                tracing::warn!(%have, %need, "not enough ETH for the next automatic transaction");
                return Ok(());
            }
            Err(_) => return Ok(()),
        };
        let d = &self.proto.deployment;
        let call = match action {
            Action::InitializeRound { round } => Call::new(
                format!("initializeRound round {round}"),
                d.rounds_manager,
                rm::initialize_round(),
            ),
            // mined in the next round, reward() would revert (that round is not initialized yet)
            Action::Reward { round } => Call::new(
                format!("reward round {round}"),
                d.bonding_manager,
                bm::reward(),
            )
            .valid_through((round + 1) * o.round_length.max(1) - 1),
        };
        let nonce = match self.sender.submit(call).await {
            Ok(n) => n,
            Err(SendError::WouldRevert { label, reason }) => {
                // nothing was sent; the next block is looked at afresh
                tracing::info!(%label, %reason, "automatic transaction not sent: it would revert");
                return Ok(());
            }
            Err(e @ SendError::TooLate { .. }) => {
                // nothing was sent: the round ends before it could be mined
                tracing::info!(error = %e, "automatic transaction not sent");
                return Ok(());
            }
            Err(SendError::Node(e)) => return Err(e.into()),
            Err(e) => {
                self.planner.sent(action);
                self.fail(e);
                return Ok(());
            }
        };
        self.planner.sent(action);
        self.status.send_modify(|s| {
            s.pending_txs += 1;
            match action {
                Action::InitializeRound { .. } => s.initializations_sent += 1,
                Action::Reward { .. } => s.rewards_sent += 1,
            }
        });
        let r = self.sender.follow(nonce).await;
        self.status
            .send_modify(|s| s.pending_txs = s.pending_txs.saturating_sub(1));
        match r {
            Ok(m) => {
                tracing::info!(label = %m.label, hash = ?m.hash, block = m.block, "automatic transaction mined");
                if let Action::Reward { round } = action {
                    self.status.send_modify(|s| s.last_reward_round = round);
                }
                Ok(())
            }
            Err(SendError::Node(e)) => Err(e.into()),
            // still journaled as pending: a new session settles it before anything else is sent
            Err(e @ SendError::Timeout { .. }) => Err(KeeperError::Pending(e)),
            Err(e) => {
                self.fail(e);
                Ok(())
            }
        }
    }

    fn fail(&self, e: SendError) {
        tracing::error!(error = %e, "automatic transaction failed");
        self.status.send_modify(|s| {
            s.failed_txs += 1;
            s.last_error = Some(e.to_string());
        });
    }

    fn publish(&self, o: &Observation, rounds_left: Option<u64>, low: bool) {
        let calls = self.proto.node.calls();
        self.status.send_modify(|s| {
            s.connected = true;
            s.block = o.block;
            s.round = o.round;
            s.round_initialized = o.round_initialized;
            s.active = o.active;
            s.last_reward_round = s.last_reward_round.max(o.last_reward_round);
            s.gas_balance = o.gas_balance;
            s.gas_rounds_left = rounds_left;
            s.gas_low = low;
            s.rpc_calls = calls;
        });
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeeperError {
    #[error(transparent)]
    Node(#[from] crate::node::NodeError),
    #[error(transparent)]
    View(#[from] crate::protocol::ViewError),
    #[error(transparent)]
    Watch(#[from] crate::events::WatchError),
    #[error(transparent)]
    Pending(SendError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(round: u64) -> Observation {
        Observation {
            block: round * 20 + 1,
            round,
            round_length: 20,
            round_initialized: true,
            active: true,
            last_reward_round: round - 1,
            gas_balance: U256::exp10(18),
            gas_price: 1_000_000_000u64.into(),
        }
    }

    #[test]
    fn rewards_once_per_round_only_while_active() {
        let mut p = Planner::new(KeeperConfig::default());
        let o = obs(5);
        assert_eq!(p.decide(&o), Ok(Action::Reward { round: 5 }));
        p.sent(Action::Reward { round: 5 });
        assert_eq!(
            p.decide(&o),
            Err(Wait::AlreadyTried),
            "never twice in a round"
        );
        let mut done = obs(5);
        done.last_reward_round = 5;
        assert_eq!(
            Planner::new(KeeperConfig::default()).decide(&done),
            Err(Wait::AlreadyRewarded)
        );
        assert_eq!(p.decide(&obs(6)), Ok(Action::Reward { round: 6 }));
        let mut inactive = obs(7);
        inactive.active = false;
        assert_eq!(p.decide(&inactive), Err(Wait::NotActive));
        let mut ending = obs(9);
        ending.block = 9 * 20 + 18;
        assert_eq!(
            p.decide(&ending),
            Err(Wait::RoundEnding),
            "mined in the next round it would revert"
        );
        ending.block -= 1;
        assert_eq!(p.decide(&ending), Ok(Action::Reward { round: 9 }));
        let mut uninit = obs(8);
        uninit.round_initialized = false;
        assert_eq!(p.decide(&uninit), Err(Wait::RoundNotInitialized));
    }

    #[test]
    fn initializes_when_configured_and_checks_gas() {
        let mut p = Planner::new(KeeperConfig {
            initialize_round: true,
            ..Default::default()
        });
        let mut o = obs(3);
        o.round_initialized = false;
        assert_eq!(p.decide(&o), Ok(Action::InitializeRound { round: 3 }));
        p.sent(Action::InitializeRound { round: 3 });
        assert_eq!(p.decide(&o), Err(Wait::AlreadyTried));
        let mut poor = obs(4);
        poor.gas_balance = 1000.into();
        assert!(matches!(p.decide(&poor), Err(Wait::NotEnoughGas { .. })));
    }

    #[test]
    fn warns_when_gas_does_not_last_a_week() {
        let p = Planner::new(KeeperConfig::default());
        // 12 s blocks, 5760-block rounds (19.2 h): a week is 9 rounds; 250k gas at 1 gwei = 0.00025 ETH a round
        let mut o = obs(1);
        o.round_length = 5760;
        o.gas_balance = U256::from(250_000u64 * 1_000_000_000) * 20;
        assert_eq!(p.gas_runway(&o), (Some(20), false));
        o.gas_balance = U256::from(250_000u64 * 1_000_000_000) * 8;
        assert_eq!(p.gas_runway(&o), (Some(8), true));
    }
}
