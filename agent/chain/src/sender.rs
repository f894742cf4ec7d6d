//! Sending transactions from the box's account: a dry run first (a call that would revert is refused with the
//! contract's named error before anything is signed), one nonce manager per account over the [`Journal`], local
//! signing with ethers-signers (EIP-1559, legacy where the node's blocks carry no base fee), receipts awaited
//! with a configurable number of confirmations, and a transaction stuck below the fee market replaced with the
//! same nonce and a bumped fee.
//!
//! A call that only succeeds up to some block (a verification window, a round, a job's end) says so
//! ([`Call::valid_through`]): the dry run and the head it is checked against are read once the nonce is held,
//! right before signing, and a call the chain could no longer mine in time is refused ([`SendError::TooLate`])
//! instead of being sent to revert.
//!
//! Order of effects for a new transaction: reserve nonce + write the signed record + flush, then broadcast.
//! [`Sender::open`] broadcasts again every record still pending (in nonce order) before anything new is
//! signed, so a kill -9 between any two steps neither reuses nor skips a nonce.

use std::time::Duration;

use ethers_core::types::transaction::eip2718::TypedTransaction;
use ethers_core::types::{
    Address, Bytes, Eip1559TransactionRequest, H256, Log, TransactionReceipt, TransactionRequest,
    U256,
};
use ethers_core::utils::keccak256;
use ethers_signers::{LocalWallet, Signer};
use serde::{Deserialize, Serialize};

use crate::journal::{Attempt, Fee, Journal, JournalError, TxRecord, TxState};
use crate::node::{Node, NodeError};
use crate::revert;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SendOptions {
    /// Blocks a receipt must have on top of it (1: the block that mined it).
    pub confirmations: u64,
    /// A transaction not mined after this many new blocks is re-signed with a bumped fee.
    pub stuck_after_blocks: u64,
    /// Fee increase per replacement, percent (nodes want at least 10).
    pub fee_bump_percent: u64,
    /// Never offer more than this per gas (wei); `None`: no ceiling.
    pub max_fee_per_gas: Option<U256>,
    /// Gas limit = estimate * this / 100.
    pub gas_limit_percent: u64,
    /// Sign legacy (type 0) transactions even where the node supports EIP-1559.
    pub legacy: bool,
    /// How often a pending transaction is looked at, milliseconds.
    pub poll_ms: u64,
    /// Give up waiting (the record stays pending and is followed again on the next start), seconds.
    pub wait_timeout_s: u64,
    /// A call valid through block N is sent only while the head is at most N - 1 - this: blocks of slack
    /// between the last look at the head and the block the transaction lands in.
    pub deadline_margin_blocks: u64,
}

impl Default for SendOptions {
    fn default() -> Self {
        Self {
            confirmations: 1,
            stuck_after_blocks: 3,
            fee_bump_percent: 25,
            max_fee_per_gas: None,
            gas_limit_percent: 130,
            legacy: false,
            poll_ms: 1000,
            wait_timeout_s: 600,
            deadline_margin_blocks: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{label}: refused before sending, it would revert with {reason}")]
    WouldRevert { label: String, reason: String },
    #[error("{label}: transaction {hash:?} reverted in block {block}: {reason}")]
    Reverted {
        label: String,
        hash: H256,
        block: u64,
        reason: String,
    },
    #[error(
        "{label}: not sent: it must be mined by block {valid_through}, and the head is already {head} (margin {margin} blocks)"
    )]
    TooLate {
        label: String,
        valid_through: u64,
        head: u64,
        margin: u64,
    },
    #[error("{label}: the node refused the transaction: {reason}")]
    Rejected { label: String, reason: String },
    #[error(
        "{label}: nonce {nonce} was used by a transaction this box did not sign (is the key used elsewhere?)"
    )]
    Dropped { label: String, nonce: u64 },
    #[error(
        "{label}: no receipt for nonce {nonce} within {waited_s} s (still pending: it is followed again on the next start)"
    )]
    Timeout {
        label: String,
        nonce: u64,
        waited_s: u64,
    },
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("signing: {0}")]
    Sign(String),
}

/// A contract call to send.
#[derive(Debug, Clone)]
pub struct Call {
    pub label: String,
    pub to: Address,
    pub data: Bytes,
    pub value: U256,
    /// The last block in which the call can succeed (its window, round or job ends after it); `None`: no
    /// deadline.
    pub valid_through: Option<u64>,
}

impl Call {
    pub fn new(label: impl Into<String>, to: Address, data: Bytes) -> Self {
        Self {
            label: label.into(),
            to,
            data,
            value: U256::zero(),
            valid_through: None,
        }
    }
    pub fn value(mut self, v: U256) -> Self {
        self.value = v;
        self
    }
    /// The call must be mined in block `last` or before (an earlier deadline already set is kept).
    pub fn valid_through(mut self, last: u64) -> Self {
        self.valid_through = Some(self.valid_through.map_or(last, |d| d.min(last)));
        self
    }
}

/// A mined, confirmed, successful transaction.
#[derive(Debug, Clone)]
pub struct Mined {
    pub label: String,
    pub nonce: u64,
    pub hash: H256,
    pub block: u64,
    pub gas_used: U256,
    pub effective_gas_price: U256,
    /// Signed versions before the one that was mined (fee bumps).
    pub replacements: usize,
    pub logs: Vec<Log>,
}

pub struct Sender {
    node: Node,
    wallet: LocalWallet,
    journal: Journal,
    opts: SendOptions,
    nonce_lock: tokio::sync::Mutex<()>,
}

impl Sender {
    /// Opens the sender for `wallet` and broadcasts again what the journal still has pending (nothing new is
    /// signed until that is done). Call [`Sender::settle`] to wait for those to be mined.
    pub async fn open(
        node: Node,
        wallet: LocalWallet,
        journal: Journal,
        opts: SendOptions,
    ) -> Result<Self, SendError> {
        let s = Self {
            node,
            wallet,
            journal,
            opts,
            nonce_lock: tokio::sync::Mutex::new(()),
        };
        for rec in s.journal.pending(s.address())? {
            tracing::info!(nonce = rec.nonce, label = %rec.label, hash = ?rec.latest().hash,
                "following a transaction left pending by an earlier run");
            s.rebroadcast(&rec).await;
        }
        Ok(s)
    }

    pub fn address(&self) -> Address {
        self.wallet.address()
    }

    /// The broadcaster's EIP-191 signature over segment `seg_no` of `stream_id` (hash rule 5), 65 bytes.
    pub fn sign_segment(
        &self,
        stream_id: &str,
        seg_no: u64,
        data_hash: H256,
    ) -> Result<Bytes, SendError> {
        crate::sign_segment(&self.wallet, stream_id, seg_no, data_hash)
            .map(Bytes::from)
            .map_err(|e| SendError::Sign(e.to_string()))
    }

    pub fn node(&self) -> &Node {
        &self.node
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn options(&self) -> &SendOptions {
        &self.opts
    }

    /// Follows every pending record to its end (mined, dropped); returns how each ended.
    pub async fn settle(&self) -> Vec<Result<Mined, SendError>> {
        let mut out = Vec::new();
        match self.journal.pending(self.address()) {
            Ok(recs) => {
                for rec in recs {
                    out.push(self.follow(rec.nonce).await);
                }
            }
            Err(e) => out.push(Err(e.into())),
        }
        out
    }

    /// [`Sender::settle`] for a long-running task: how each earlier transaction ended goes to the log.
    pub async fn settle_logged(&self) {
        for r in self.settle().await {
            if let Err(e) = r {
                tracing::warn!(error = %e, "a transaction left by an earlier run did not go through");
            }
        }
    }

    /// Dry run, sign, journal, broadcast, and wait for the confirmed receipt.
    pub async fn send(&self, call: Call) -> Result<Mined, SendError> {
        let nonce = self.submit(call).await?;
        self.follow(nonce).await
    }

    /// Would `call` succeed now? `Err(WouldRevert)` with the contract's error when not; else the gas estimate.
    pub async fn dry_run(&self, call: &Call) -> Result<U256, SendError> {
        match self
            .node
            .estimate_gas(self.address(), call.to, &call.data, call.value)
            .await
        {
            Ok(g) => Ok(g),
            Err(e) if e.is_node_answer() => Err(SendError::WouldRevert {
                label: call.label.clone(),
                reason: match e.revert_data() {
                    Some(d) => revert::explain(d),
                    None => match &e {
                        NodeError::Rpc { message, .. } => message.clone(),
                        _ => e.to_string(),
                    },
                },
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Dry run, reserve a nonce, sign, journal, broadcast. Returns the nonce.
    ///
    /// The dry run comes after the nonce is held (another task's send may have changed the state meanwhile),
    /// and the head is read after it: a call with a deadline the next block could miss is refused with
    /// [`SendError::TooLate`], nothing signed.
    pub async fn submit(&self, call: Call) -> Result<u64, SendError> {
        let _held = self.nonce_lock.lock().await;
        let gas = self.dry_run(&call).await? * self.opts.gas_limit_percent / 100;
        let from = self.address();
        let chain_next = self.node.nonce(from, true).await?;
        let nonce = self.journal.next_nonce(from)?.unwrap_or(0).max(chain_next);
        let head = self
            .node
            .header(None)
            .await?
            .ok_or_else(|| NodeError::Decode {
                method: "eth_getBlockByNumber".into(),
                detail: "no latest block".into(),
            })?;
        if let Some(last) = call.valid_through {
            let (head, margin) = (head.number.as_u64(), self.opts.deadline_margin_blocks);
            if head + 1 + margin > last {
                return Err(SendError::TooLate {
                    label: call.label,
                    valid_through: last,
                    head,
                    margin,
                });
            }
        }
        let fee = self.market_fee(head.base_fee_per_gas).await?;
        let attempt = self.sign(nonce, &call, gas, fee, head.number.as_u64())?;
        let mut rec = TxRecord {
            from,
            nonce,
            label: call.label.clone(),
            to: call.to,
            data: call.data,
            value: call.value,
            gas,
            attempts: vec![attempt],
            state: TxState::Pending,
        };
        self.journal.record(&rec)?;
        tracing::info!(nonce, label = %rec.label, hash = ?rec.latest().hash, "transaction signed and journaled");
        crate::crash_point("after-journal");
        match self.node.send_raw(&rec.latest().raw).await {
            Ok(_) => Ok(nonce),
            Err(e) if e.is_node_answer() && !already_known(&e) => {
                let reason = e.to_string();
                self.journal.reject(&mut rec, reason.clone())?;
                Err(SendError::Rejected {
                    label: rec.label,
                    reason,
                })
            }
            Err(e) => {
                // the node may or may not have it: it stays pending and is broadcast again while followed
                tracing::warn!(nonce, error = %e, "broadcast failed; will retry");
                Ok(nonce)
            }
        }
    }

    /// Waits for the journaled transaction `nonce` to be mined and confirmed, replacing it when stuck.
    pub async fn follow(&self, nonce: u64) -> Result<Mined, SendError> {
        let from = self.address();
        let started = std::time::Instant::now();
        let mut last_broadcast_head = None;
        // polls that saw the nonce used without a receipt of ours: a node may answer the new nonce a moment
        // before it answers the receipt, so one sighting is not enough to call it dropped
        let mut used_without_receipt = 0;
        loop {
            let mut rec = self.journal.get(from, nonce)?;
            match &rec.state {
                TxState::Pending => {}
                TxState::Mined { .. } | TxState::Rejected { .. } | TxState::Dropped => {
                    return self.outcome_of_record(&rec).await;
                }
            }
            let head = self.node.block_number().await?;
            if let Some((receipt, idx)) = self.find_receipt(&rec).await? {
                let block = receipt.block_number.map_or(0, |b| b.as_u64());
                if head + 1 >= block + self.opts.confirmations.max(1) {
                    return self.conclude(&mut rec, receipt, idx).await;
                }
            } else if self.node.nonce(from, false).await? > nonce {
                used_without_receipt += 1;
                // the nonce is used: one last look for our receipt (it may have been mined meanwhile)
                if used_without_receipt >= 3 && self.find_receipt(&rec).await?.is_none() {
                    rec.state = TxState::Dropped;
                    self.journal.update(&rec)?;
                    return Err(SendError::Dropped {
                        label: rec.label,
                        nonce,
                    });
                }
            } else if head >= rec.latest().block + self.opts.stuck_after_blocks {
                self.replace(&mut rec, head).await?;
                last_broadcast_head = Some(head);
            } else if last_broadcast_head != Some(head) {
                // once per block: a restarted node may have lost its pool
                self.rebroadcast(&rec).await;
                last_broadcast_head = Some(head);
            }
            if started.elapsed() > Duration::from_secs(self.opts.wait_timeout_s) {
                return Err(SendError::Timeout {
                    label: rec.label,
                    nonce,
                    waited_s: self.opts.wait_timeout_s,
                });
            }
            tokio::time::sleep(Duration::from_millis(self.opts.poll_ms)).await;
        }
    }

    async fn find_receipt(
        &self,
        rec: &TxRecord,
    ) -> Result<Option<(TransactionReceipt, usize)>, SendError> {
        for (i, a) in rec.attempts.iter().enumerate().rev() {
            if let Some(r) = self.node.receipt(a.hash).await? {
                if r.block_number.is_some() {
                    return Ok(Some((r, i)));
                }
            }
        }
        Ok(None)
    }

    async fn conclude(
        &self,
        rec: &mut TxRecord,
        r: TransactionReceipt,
        idx: usize,
    ) -> Result<Mined, SendError> {
        let block = r.block_number.map_or(0, |b| b.as_u64());
        let success = r.status == Some(1u64.into());
        rec.state = TxState::Mined {
            hash: r.transaction_hash,
            block,
            success,
            gas_used: r.gas_used.unwrap_or_default(),
        };
        self.journal.update(rec)?;
        if !success {
            return Err(SendError::Reverted {
                label: rec.label.clone(),
                hash: r.transaction_hash,
                block,
                reason: self.replay_revert(rec, block).await,
            });
        }
        tracing::info!(nonce = rec.nonce, label = %rec.label, hash = ?r.transaction_hash, block,
            gas_used = %r.gas_used.unwrap_or_default(), replacements = idx, "transaction mined");
        Ok(Mined {
            label: rec.label.clone(),
            nonce: rec.nonce,
            hash: r.transaction_hash,
            block,
            gas_used: r.gas_used.unwrap_or_default(),
            effective_gas_price: r.effective_gas_price.unwrap_or_default(),
            replacements: idx,
            logs: r.logs,
        })
    }

    /// A finished record met again (a follow after a restart, or a second follower).
    async fn outcome_of_record(&self, rec: &TxRecord) -> Result<Mined, SendError> {
        match &rec.state {
            TxState::Mined { hash, .. } => {
                let r = self
                    .node
                    .receipt(*hash)
                    .await?
                    .ok_or_else(|| NodeError::Decode {
                        method: "eth_getTransactionReceipt".into(),
                        detail: format!("no receipt for mined {hash:?}"),
                    })?;
                let idx = rec
                    .attempts
                    .iter()
                    .position(|a| a.hash == *hash)
                    .unwrap_or(0);
                let mut rec = rec.clone();
                self.conclude(&mut rec, r, idx).await
            }
            TxState::Rejected { reason } => Err(SendError::Rejected {
                label: rec.label.clone(),
                reason: reason.clone(),
            }),
            TxState::Dropped => Err(SendError::Dropped {
                label: rec.label.clone(),
                nonce: rec.nonce,
            }),
            TxState::Pending => unreachable!("only called for finished records"),
        }
    }

    /// Why a mined transaction reverted: the call replayed on the state before its block.
    async fn replay_revert(&self, rec: &TxRecord, block: u64) -> String {
        match self
            .node
            .call(
                Some(rec.from),
                rec.to,
                &rec.data,
                rec.value,
                Some(block.saturating_sub(1)),
            )
            .await
        {
            Err(e) => e
                .revert_data()
                .map(revert::explain)
                .unwrap_or_else(|| e.to_string()),
            Ok(_) => {
                "the call succeeds when replayed (out of gas, or state changed within the block)"
                    .into()
            }
        }
    }

    async fn rebroadcast(&self, rec: &TxRecord) {
        match self.node.send_raw(&rec.latest().raw).await {
            Ok(_) => tracing::debug!(nonce = rec.nonce, "broadcast again"),
            Err(e) => tracing::debug!(nonce = rec.nonce, error = %e, "broadcast again: not taken"),
        }
    }

    /// Re-signs the same nonce with a fee above both the old one (by the bump) and the market.
    async fn replace(&self, rec: &mut TxRecord, head: u64) -> Result<(), SendError> {
        let base = self
            .node
            .header(None)
            .await?
            .and_then(|h| h.base_fee_per_gas);
        let market = self.market_fee(base).await?;
        let bump = |old: U256| old * (100 + self.opts.fee_bump_percent.max(10)) / 100 + 1;
        let mut fee = match (rec.latest().fee, market) {
            (
                Fee::Eip1559 {
                    max_fee_per_gas,
                    max_priority_fee_per_gas,
                },
                Fee::Eip1559 {
                    max_fee_per_gas: m_max,
                    max_priority_fee_per_gas: m_prio,
                },
            ) => Fee::Eip1559 {
                max_fee_per_gas: bump(max_fee_per_gas).max(m_max),
                max_priority_fee_per_gas: bump(max_priority_fee_per_gas).max(m_prio),
            },
            (old, m) => Fee::Legacy {
                gas_price: bump(old.cap()).max(m.cap()),
            },
        };
        if let Some(cap) = self.opts.max_fee_per_gas {
            if fee.cap() > cap {
                if rec.latest().fee.cap() >= cap {
                    tracing::warn!(nonce = rec.nonce, cap = %cap, "transaction stuck at the configured fee ceiling");
                    return Ok(());
                }
                fee = clamp(fee, cap);
            }
        }
        let call = Call {
            label: rec.label.clone(),
            to: rec.to,
            data: rec.data.clone(),
            value: rec.value,
            valid_through: None,
        };
        let attempt = self.sign(rec.nonce, &call, rec.gas, fee, head)?;
        tracing::warn!(nonce = rec.nonce, label = %rec.label, old = ?rec.latest().hash, new = ?attempt.hash,
            fee_cap = %fee.cap(), "transaction stuck: replacing it with a higher fee");
        rec.attempts.push(attempt);
        self.journal.update(rec)?;
        self.rebroadcast(rec).await;
        Ok(())
    }

    /// What the market asks now: EIP-1559 (2 x base fee + tip) where blocks carry a base fee, else gas price.
    async fn market_fee(&self, base_fee: Option<U256>) -> Result<Fee, SendError> {
        let fee = match base_fee {
            Some(base) if !self.opts.legacy => {
                let tip = self
                    .node
                    .max_priority_fee()
                    .await?
                    .unwrap_or_else(|| U256::from(1_000_000_000u64));
                Fee::Eip1559 {
                    max_fee_per_gas: base * 2 + tip,
                    max_priority_fee_per_gas: tip,
                }
            }
            _ => Fee::Legacy {
                gas_price: self.node.gas_price().await?,
            },
        };
        Ok(match self.opts.max_fee_per_gas {
            Some(cap) if fee.cap() > cap => clamp(fee, cap),
            _ => fee,
        })
    }

    fn sign(
        &self,
        nonce: u64,
        call: &Call,
        gas: U256,
        fee: Fee,
        head: u64,
    ) -> Result<Attempt, SendError> {
        let chain_id = self.wallet.chain_id();
        let tx: TypedTransaction = match fee {
            Fee::Legacy { gas_price } => TransactionRequest::new()
                .from(self.address())
                .to(call.to)
                .data(call.data.clone())
                .value(call.value)
                .nonce(nonce)
                .gas(gas)
                .gas_price(gas_price)
                .chain_id(chain_id)
                .into(),
            Fee::Eip1559 {
                max_fee_per_gas,
                max_priority_fee_per_gas,
            } => Eip1559TransactionRequest::new()
                .from(self.address())
                .to(call.to)
                .data(call.data.clone())
                .value(call.value)
                .nonce(nonce)
                .gas(gas)
                .max_fee_per_gas(max_fee_per_gas)
                .max_priority_fee_per_gas(max_priority_fee_per_gas)
                .chain_id(chain_id)
                .into(),
        };
        let sig = self
            .wallet
            .sign_transaction_sync(&tx)
            .map_err(|e| SendError::Sign(e.to_string()))?;
        let raw = tx.rlp_signed(&sig);
        Ok(Attempt {
            hash: H256(keccak256(&raw)),
            raw,
            fee,
            block: head,
        })
    }
}

fn clamp(fee: Fee, cap: U256) -> Fee {
    match fee {
        Fee::Legacy { .. } => Fee::Legacy { gas_price: cap },
        Fee::Eip1559 {
            max_priority_fee_per_gas,
            ..
        } => Fee::Eip1559 {
            max_fee_per_gas: cap,
            max_priority_fee_per_gas: max_priority_fee_per_gas.min(cap),
        },
    }
}

fn already_known(e: &NodeError) -> bool {
    match e {
        NodeError::Rpc { message, .. } => {
            let m = message.to_ascii_lowercase();
            m.contains("already known") || m.contains("already imported")
        }
        _ => false,
    }
}
