//! Drives the [`Ledger`] against a real chain: a thin async task that reads the current block, reconciles
//! what the ledger believes with what the chain holds, asks the ledger what is due, and sends it through
//! the chain client's [`Sender`] (journaled, confirmed, replaced when stuck).
//!
//! Order of every step, so that a kill -9 anywhere loses nothing and sends nothing twice:
//! - a claim is recorded as sent before `claimWork` is signed; a claim recorded as sent that the chain does
//!   not hold once nothing of this box is pending goes back to "built" (it never left), and one the chain
//!   holds is taken as mined (its claim id read back), so a restart never claims a segment twice;
//! - a verify is recorded as sent before it is signed, and re-armed the same way while its window is open;
//! - results come from the JobsManager's events (a cursor persisted in the journal) and, for settled claims,
//!   from the claim's status on chain.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chain::claims::{ClaimEvent, ClaimStatus, ClaimView};
use chain::events::{Event as WatchEvent, Watcher};
use chain::protocol::Protocol;
use chain::sender::{SendError, Sender};
use chain::{Address, U256};
use serde::Serialize;
use tokio::sync::watch;

use crate::claim::{Answer, Stage, Windows};
use crate::ledger::{Action, Event, Ledger, LedgerError, Policy};
use crate::store::ProofStore;

#[derive(Debug, Clone)]
pub struct DriverOptions {
    pub poll: Duration,
    /// Base URL under which this box serves challenged segments' data (`<base>/<job>/<seg>/...`); the verify
    /// transaction carries `<base>/<job>/<seg>` as its dataStorageHash.
    pub data_url: String,
    /// A refused or lost transaction is tried again after this many blocks.
    pub retry_after_blocks: u64,
    pub policy: Policy,
    /// Fault injection for tests of the slashing path: never answer a challenge.
    pub ignore_challenges: bool,
}

impl Default for DriverOptions {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(1),
            data_url: "http://127.0.0.1:8935/proof".into(),
            retry_after_blocks: 3,
            policy: Policy::default(),
            ignore_challenges: false,
        }
    }
}

/// What the driver has done, for `/metrics` and telemetry.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct DriverStatus {
    pub block: u64,
    pub claims_sent: u64,
    pub claims_mined: u64,
    pub verifications_sent: u64,
    pub verifications_passed: u64,
    pub verifications_failed: u64,
    pub claims_slashed: u64,
    pub fees_distributed_wei: String,
    pub failed_txs: u64,
    pub inputs_released: u64,
    pub last_error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    View(#[from] chain::protocol::ViewError),
    #[error(transparent)]
    Node(#[from] chain::node::NodeError),
    #[error(transparent)]
    Watch(#[from] chain::events::WatchError),
    #[error(transparent)]
    Journal(#[from] chain::journal::JournalError),
}

pub struct Driver {
    ledger: Ledger,
    proto: Protocol,
    sender: Arc<Sender>,
    watcher: Watcher,
    opts: DriverOptions,
    status: watch::Sender<DriverStatus>,
    fees: U256,
    /// Actions refused by a dry run, by what they are about: not tried again before this block.
    backoff: HashMap<String, u64>,
}

impl Driver {
    /// Reads the JobsManager's windows and opens the event cursor (kept in the chain client's journal).
    pub async fn open(
        store: ProofStore,
        proto: Protocol,
        sender: Arc<Sender>,
        opts: DriverOptions,
    ) -> Result<(Self, watch::Receiver<DriverStatus>), DriverError> {
        let w = proto.job_windows().await?;
        let windows = Windows {
            verification_rate: w.verification_rate,
            verification_period: w.verification_period,
            slashing_period: w.slashing_period,
        };
        let head = proto.node.block_number().await?;
        let watcher = Watcher::open(
            proto.node.clone(),
            sender.journal().clone(),
            "proof-claims",
            vec![proto.deployment.jobs_manager],
            ClaimEvent::TOPICS.to_vec(),
            head.saturating_sub(1),
        )?
        .deferred();
        let (status, rx) = watch::channel(DriverStatus::default());
        Ok((
            Self {
                ledger: Ledger::new(store, windows, opts.policy),
                proto,
                sender,
                watcher,
                opts,
                status,
                fees: U256::zero(),
                backoff: HashMap::new(),
            },
            rx,
        ))
    }

    fn me(&self) -> Address {
        self.sender.address()
    }

    /// Runs until `stop` completes. Transactions left pending by an earlier run are followed first.
    pub async fn run(mut self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        self.sender.settle_logged().await;
        loop {
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "claim life cycle: will retry");
                self.status
                    .send_modify(|s| s.last_error = Some(e.to_string()));
            }
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep(self.opts.poll) => {}
            }
        }
    }

    /// One pass: events, reconciliation with the chain, then whatever the ledger says is due.
    pub async fn tick(&mut self) -> Result<(), DriverError> {
        let block = self.proto.node.block_number().await?;
        self.status.send_modify(|s| s.block = block);
        self.events().await?;
        self.reconcile(block).await?;
        let mut actions = self.ledger.step(block)?;
        // verifies have a deadline (the claim's verification window) and the others do not: send them
        // first, before the follows of claims and fee distributions spend the window's blocks
        actions.sort_by_key(|a| !matches!(a, Action::Verify { .. }));
        for action in actions {
            self.act(action, block).await?;
        }
        Ok(())
    }

    async fn events(&mut self) -> Result<(), DriverError> {
        for ev in self.watcher.poll().await? {
            let log = match ev {
                WatchEvent::Log(l) => l,
                WatchEvent::Retracted(l) => {
                    // a result that left the chain: the reconciliation reads the claim's state again
                    tracing::warn!(block = ?l.block_number, "an event was retracted by a reorg");
                    continue;
                }
            };
            let Some(ev) = ClaimEvent::from_log(&log) else {
                continue;
            };
            let e = match ev {
                ClaimEvent::Passed {
                    job_id,
                    claim_id,
                    seg_no,
                }
                | ClaimEvent::Failed {
                    job_id,
                    claim_id,
                    seg_no,
                } => {
                    let passed = matches!(ev, ClaimEvent::Passed { .. });
                    if self.is_ours(job_id, claim_id)? {
                        self.status.send_modify(|s| {
                            if passed {
                                s.verifications_passed += 1
                            } else {
                                s.verifications_failed += 1
                            }
                        });
                        if passed {
                            tracing::info!(job_id, claim_id, seg_no, "verification passed");
                        } else {
                            tracing::error!(job_id, claim_id, seg_no, "verification FAILED");
                        }
                    }
                    Event::Verified {
                        job_id,
                        claim_id,
                        seg_no,
                        passed,
                    }
                }
                ClaimEvent::FeesDistributed {
                    job_id,
                    claim_id,
                    fees,
                } => {
                    if self.is_ours(job_id, claim_id)? {
                        self.fees += fees;
                        let total = self.fees.to_string();
                        self.status
                            .send_modify(|s| s.fees_distributed_wei = total.clone());
                    }
                    Event::FeesDistributed { job_id, claim_id }
                }
                ClaimEvent::Slashed {
                    job_id, claim_id, ..
                } => {
                    if self.is_ours(job_id, claim_id)? {
                        tracing::error!(job_id, claim_id, "claim slashed");
                        self.status.send_modify(|s| s.claims_slashed += 1);
                    }
                    Event::Slashed { job_id, claim_id }
                }
                ClaimEvent::NewClaim { .. } => continue,
            };
            self.ledger.apply(&e)?;
        }
        // recorded: the cursor may move past these events now
        self.watcher.commit()?;
        Ok(())
    }

    fn is_ours(&self, job: u64, claim_id: u64) -> Result<bool, DriverError> {
        Ok(self
            .ledger
            .store
            .claims(job)
            .map_err(LedgerError::from)?
            .iter()
            .any(|c| c.claim_id() == Some(claim_id)))
    }

    fn nothing_pending(&self) -> Result<bool, DriverError> {
        Ok(self.sender.journal().pending(self.me())?.is_empty())
    }

    /// Brings the ledger's claims in line with the chain: claims sent (or about to be) that were mined,
    /// claims and verifies that never left, claims settled on chain.
    async fn reconcile(&mut self, block: u64) -> Result<(), DriverError> {
        let w = self.ledger.windows;
        let mut on_chain: HashMap<u64, Vec<ClaimView>> = HashMap::new();
        for c in self.ledger.store.all_claims().map_err(LedgerError::from)? {
            if c.is_finished() && c.awaiting_verdict().is_empty() {
                continue;
            }
            let (job_id, first) = (c.job_id, c.first);
            match &c.stage {
                Stage::Built | Stage::Sent { .. } => {
                    if let std::collections::hash_map::Entry::Vacant(e) = on_chain.entry(job_id) {
                        e.insert(self.our_claims(job_id).await?);
                    }
                    let found = on_chain[&job_id]
                        .iter()
                        .find(|v| v.first == first && v.root == c.root)
                        .cloned();
                    if let Some(v) = found {
                        tracing::info!(
                            job_id,
                            first,
                            claim_id = v.claim_id,
                            "claim found on chain"
                        );
                        self.mined(job_id, first, v.claim_id, v.claim_block)?;
                    } else if let Stage::Sent { at } = c.stage
                        && block >= at + self.opts.retry_after_blocks
                        && self.nothing_pending()?
                    {
                        tracing::warn!(
                            job_id,
                            first,
                            "claim recorded as sent is not on chain: due again"
                        );
                        self.ledger.apply(&Event::ClaimNotSent { job_id, first })?;
                    }
                }
                Stage::Challenged {
                    claim_id,
                    claim_block,
                    answers,
                } => {
                    let claim_id = *claim_id;
                    let verify_end = claim_block + w.verification_period;
                    if block < verify_end {
                        let sent: Vec<u64> = answers
                            .iter()
                            .filter(|(_, a)| **a == Some(Answer::Sent))
                            .map(|(s, _)| *s)
                            .collect();
                        for seg_no in sent {
                            let v = self.proto.verification(job_id, claim_id, seg_no).await?;
                            if !v.requested && self.nothing_pending()? {
                                tracing::warn!(
                                    job_id,
                                    claim_id,
                                    seg_no,
                                    "verify recorded as sent is not on chain: due again"
                                );
                                self.ledger.apply(&Event::VerifyNotSent {
                                    job_id,
                                    claim_id,
                                    seg_no,
                                })?;
                            }
                        }
                    } else {
                        match self.proto.claim(job_id, claim_id).await?.status {
                            ClaimStatus::Complete => self
                                .ledger
                                .apply(&Event::FeesDistributed { job_id, claim_id })?,
                            ClaimStatus::Slashed => {
                                self.ledger.apply(&Event::Slashed { job_id, claim_id })?
                            }
                            ClaimStatus::Pending | ClaimStatus::None => {}
                        }
                    }
                }
                Stage::Distributed { claim_id, awaiting } => {
                    // the window is closed: a verify recorded as sent that the chain does not hold never
                    // will be, and no verdict can come for it
                    for &seg_no in awaiting {
                        let v = self.proto.verification(job_id, *claim_id, seg_no).await?;
                        if !v.requested {
                            tracing::warn!(
                                job_id,
                                claim_id,
                                seg_no,
                                "verify recorded as sent never reached the chain: its data goes"
                            );
                            self.ledger.apply(&Event::VerifyNotSent {
                                job_id,
                                claim_id: *claim_id,
                                seg_no,
                            })?;
                        }
                    }
                }
                Stage::Mined { .. } | Stage::Slashed { .. } => {}
            }
        }
        Ok(())
    }

    /// The job's claims on chain, if this box is the job's transcoder (none otherwise).
    async fn our_claims(&self, job_id: u64) -> Result<Vec<ClaimView>, DriverError> {
        let job = self.proto.job(job_id).await?;
        if job.transcoder != self.me() {
            return Ok(Vec::new());
        }
        Ok(self.proto.claims(job_id).await?)
    }

    fn mined(
        &mut self,
        job_id: u64,
        first: u64,
        claim_id: u64,
        claim_block: u64,
    ) -> Result<(), DriverError> {
        self.ledger.apply(&Event::ClaimMined {
            job_id,
            first,
            claim_id,
            claim_block,
        })?;
        self.status.send_modify(|s| s.claims_mined += 1);
        Ok(())
    }

    fn backed_off(&self, key: &str, block: u64) -> bool {
        self.backoff.get(key).is_some_and(|until| block < *until)
    }

    /// A transaction that did not go through: counted, logged, and (when refused before sending) not tried
    /// again for a few blocks.
    fn failed(&mut self, key: String, block: u64, e: &SendError) {
        tracing::warn!(what = %key, error = %e, "transaction did not go through");
        let msg = e.to_string();
        self.status.send_modify(|s| {
            s.failed_txs += 1;
            s.last_error = Some(msg);
        });
        self.backoff
            .insert(key, block + self.opts.retry_after_blocks);
    }

    async fn act(&mut self, action: Action, block: u64) -> Result<(), DriverError> {
        match action {
            Action::Claim {
                job_id,
                first,
                last,
                root,
            } => {
                let key = format!("claim {job_id}/{first}");
                if self.backed_off(&key, block) {
                    return Ok(());
                }
                chain::crash_point("before-claim");
                // recorded before it is signed: a restart finds it sent, never built twice
                self.ledger.apply(&Event::ClaimSent {
                    job_id,
                    first,
                    block,
                })?;
                let call = self.proto.claim_work(job_id, first, last, root);
                let nonce = match self.sender.submit(call).await {
                    Ok(n) => n,
                    Err(e) => {
                        if matches!(
                            e,
                            SendError::WouldRevert { .. } | SendError::Rejected { .. }
                        ) {
                            self.ledger.apply(&Event::ClaimNotSent { job_id, first })?;
                        }
                        self.failed(key, block, &e);
                        return Ok(());
                    }
                };
                self.status.send_modify(|s| s.claims_sent += 1);
                tracing::info!(job_id, first, last, ?root, "claim sent");
                chain::crash_point("after-claim-sent");
                match self.sender.follow(nonce).await {
                    Ok(m) => match chain::claims::new_claim_id(&m.logs) {
                        Some(claim_id) => {
                            tracing::info!(job_id, first, last, claim_id, block = m.block, gas = %m.gas_used, "claim mined");
                            self.mined(job_id, first, claim_id, m.block)?;
                        }
                        None => tracing::error!(
                            job_id,
                            first,
                            "claimWork mined without a NewClaim event"
                        ),
                    },
                    // the reconciliation finds it on chain or sends it again
                    Err(e) => self.failed(key, block, &e),
                }
            }
            Action::BlockHash {
                job_id,
                first,
                number,
            } => {
                let Some(h) = self.proto.node.header(Some(number)).await? else {
                    return Ok(());
                };
                self.ledger.apply(&Event::BlockHash {
                    job_id,
                    first,
                    hash: h.hash,
                })?;
                if let Some(c) = self
                    .ledger
                    .store
                    .claims(job_id)
                    .map_err(LedgerError::from)?
                    .iter()
                    .find(|c| c.first == first)
                    && let Stage::Challenged { answers, .. } = &c.stage
                {
                    let segs: Vec<u64> = answers.keys().copied().collect();
                    tracing::info!(job_id, first, challenged = ?segs, "challenges known");
                }
            }
            Action::Verify {
                job_id,
                claim_id,
                receipt,
                proof,
            } => {
                if self.opts.ignore_challenges {
                    return Ok(());
                }
                let seg_no = receipt.seg_no;
                let key = format!("verify {job_id}/{claim_id}/{seg_no}");
                if self.backed_off(&key, block) {
                    return Ok(());
                }
                let price = self.proto.verifier_price().await?;
                self.ledger.apply(&Event::VerifySent {
                    job_id,
                    claim_id,
                    seg_no,
                })?;
                let call = self.proto.verify(
                    job_id,
                    claim_id,
                    seg_no,
                    format!(
                        "{}/{job_id}/{seg_no}",
                        self.opts.data_url.trim_end_matches('/')
                    ),
                    receipt.data_hash,
                    receipt.transcoded_data_hash,
                    receipt.broadcaster_sig.clone(),
                    proof,
                    price,
                );
                let nonce = match self.sender.submit(call).await {
                    Ok(n) => n,
                    Err(e) => {
                        // submit broadcasts nothing when it fails (a broadcast error after the journal
                        // write is Ok): due again now, not only once the reconciliation sees nothing pending
                        self.ledger.apply(&Event::VerifyNotSent {
                            job_id,
                            claim_id,
                            seg_no,
                        })?;
                        self.failed(key, block, &e);
                        return Ok(());
                    }
                };
                self.status.send_modify(|s| s.verifications_sent += 1);
                chain::crash_point("mid-verify");
                match self.sender.follow(nonce).await {
                    Ok(m) => {
                        tracing::info!(
                            job_id,
                            claim_id,
                            seg_no,
                            block = m.block,
                            "challenged segment submitted for verification"
                        )
                    }
                    Err(e) => self.failed(key, block, &e),
                }
            }
            Action::DistributeFees { job_id, claim_ids } => {
                let key = format!("distribute {job_id}/{claim_ids:?}");
                if self.backed_off(&key, block) {
                    return Ok(());
                }
                let nonce = match self
                    .sender
                    .submit(self.proto.distribute_fees(job_id, &claim_ids))
                    .await
                {
                    Ok(n) => n,
                    Err(e) => {
                        self.failed(key, block, &e);
                        return Ok(());
                    }
                };
                chain::crash_point("mid-distribute");
                match self.sender.follow(nonce).await {
                    Ok(m) => {
                        tracing::info!(job_id, ?claim_ids, block = m.block, "fees distributed");
                        for claim_id in claim_ids {
                            self.ledger
                                .apply(&Event::FeesDistributed { job_id, claim_id })?;
                        }
                    }
                    Err(e) => self.failed(key, block, &e),
                }
            }
            Action::ReleaseInputs { job_id, segments } => {
                let paths = self.ledger.release(job_id, &segments)?;
                let n = segments.len() as u64;
                remove_kept(&paths);
                tracing::info!(
                    job_id,
                    segments = n,
                    "no challenge can come: kept data deleted"
                );
                self.status.send_modify(|s| s.inputs_released += n);
            }
        }
        Ok(())
    }
}

/// Deletes kept files, the bundle manifest beside them (`bundle::MANIFEST`) and the directories they leave
/// empty.
fn remove_kept(paths: &[PathBuf]) {
    let remove = |p: &std::path::Path| {
        if let Err(e) = std::fs::remove_file(p)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %p.display(), error = %e, "deleting kept data");
        }
    };
    for p in paths {
        remove(p);
        if let Some(dir) = p.parent() {
            remove(&dir.join(crate::bundle::MANIFEST));
            // only succeeds once the directory is empty
            let _ = std::fs::remove_dir(dir);
        }
    }
}
