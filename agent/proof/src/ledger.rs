//! The claim life cycle of every job, over the [`ProofStore`]: [`Ledger::step`] takes the current block and
//! says what to send; [`Ledger::apply`] takes what happened (a transaction sent, an event seen) and records
//! it. Every record is flushed before `step` hands out an action that depends on it, so a restart at any
//! point finds either the action still due or its effect recorded: never a second claim over a segment, never
//! a challenge left unanswered while its window is open.

use chain::hashes::MerkleTree;
use chain::{Bytes, H256};

use crate::claim::{Answer, ClaimRecord, Due, Stage, Windows};
use crate::receipt::Receipt;
use crate::store::{JobRecord, ProofStore, StoreError};

/// When to claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Most segments in one claim (claim gas is flat in this; the escrow is not).
    pub max_segments: u64,
    /// Claim the contiguous receipts once the oldest of them is this many blocks old.
    pub claim_after_blocks: u64,
    /// Claim whatever is there this many blocks before the job ends (claimWork reverts after the end).
    pub end_margin_blocks: u64,
    /// The first claim (the election) must be mined within 256 blocks of the job's creation: claim whatever
    /// is there this many blocks before that.
    pub election_margin_blocks: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_segments: 100,
            claim_after_blocks: 20,
            end_margin_blocks: 10,
            election_margin_blocks: 40,
        }
    }
}

/// Blocks after a job's creation in which its first claim (the election) must be mined.
pub const ELECTION_WINDOW: u64 = 256;

/// Something to send to the chain (or to do on disk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// claimWork(job, [first, last], root).
    Claim {
        job_id: u64,
        first: u64,
        last: u64,
        root: H256,
    },
    /// The hash of block `number` is needed (challenges of the claim starting at `first`).
    BlockHash {
        job_id: u64,
        first: u64,
        number: u64,
    },
    /// verify(...) for a challenged segment: its receipt and Merkle proof against the claim root.
    Verify {
        job_id: u64,
        claim_id: u64,
        receipt: Box<Receipt>,
        proof: Bytes,
    },
    /// batchDistributeFees(job, claim ids).
    DistributeFees { job_id: u64, claim_ids: Vec<u64> },
    /// No challenge can come for these segments any more: their input files can be deleted.
    ReleaseInputs { job_id: u64, segments: Vec<u64> },
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    ClaimSent {
        job_id: u64,
        first: u64,
        block: u64,
    },
    /// The claimWork recorded as sent is not on chain and nothing of this box is pending: send it again.
    ClaimNotSent {
        job_id: u64,
        first: u64,
    },
    ClaimMined {
        job_id: u64,
        first: u64,
        claim_id: u64,
        claim_block: u64,
    },
    BlockHash {
        job_id: u64,
        first: u64,
        hash: H256,
    },
    VerifySent {
        job_id: u64,
        claim_id: u64,
        seg_no: u64,
    },
    /// The verify recorded as sent is not on chain and nothing of this box is pending: send it again.
    VerifyNotSent {
        job_id: u64,
        claim_id: u64,
        seg_no: u64,
    },
    Verified {
        job_id: u64,
        claim_id: u64,
        seg_no: u64,
        passed: bool,
    },
    FeesDistributed {
        job_id: u64,
        claim_id: u64,
    },
    Slashed {
        job_id: u64,
        claim_id: u64,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("job {job}: claim {first}..={last} has no receipt for segment {missing}")]
    MissingReceipt {
        job: u64,
        first: u64,
        last: u64,
        missing: u64,
    },
    #[error("job {job}: no claim starts at segment {first}")]
    NoSuchClaim { job: u64, first: u64 },
}

pub struct Ledger {
    pub store: ProofStore,
    pub windows: Windows,
    pub policy: Policy,
}

impl Ledger {
    pub fn new(store: ProofStore, windows: Windows, policy: Policy) -> Self {
        Self {
            store,
            windows,
            policy,
        }
    }

    /// What to send at `block`. New claims are built (and flushed) here.
    pub fn step(&self, block: u64) -> Result<Vec<Action>, LedgerError> {
        let mut out = Vec::new();
        for job in self.store.jobs()? {
            self.build_claim(&job, block)?;
            let mut distribute = Vec::new();
            let mut release = Vec::new();
            for c in self.store.claims(job.job_id)? {
                match c.due(block, &self.windows) {
                    Due::Send => out.push(Action::Claim {
                        job_id: c.job_id,
                        first: c.first,
                        last: c.last,
                        root: c.root,
                    }),
                    Due::BlockHash(number) => out.push(Action::BlockHash {
                        job_id: c.job_id,
                        first: c.first,
                        number,
                    }),
                    Due::Verify { claim_id, .. } => {
                        // every unanswered challenge of the claim at once, not one per pass: the driver
                        // follows each transaction before the next pass, and the window closes after
                        // verification_period blocks whatever is left
                        for seg_no in c.unanswered() {
                            let (receipt, proof) = self.proof(&c, seg_no)?;
                            out.push(Action::Verify {
                                job_id: c.job_id,
                                claim_id,
                                receipt: Box::new(receipt),
                                proof,
                            });
                        }
                    }
                    Due::Distribute { claim_id } => distribute.push(claim_id),
                    Due::Nothing => {
                        let awaiting = c.awaiting_verdict();
                        release.extend(
                            self.kept_inputs(&c)?
                                .into_iter()
                                .filter(|s| !awaiting.contains(s)),
                        )
                    }
                    Due::Wait => {}
                }
            }
            if !distribute.is_empty() {
                out.push(Action::DistributeFees {
                    job_id: job.job_id,
                    claim_ids: distribute,
                });
            }
            if !release.is_empty() {
                out.push(Action::ReleaseInputs {
                    job_id: job.job_id,
                    segments: release,
                });
            }
        }
        Ok(out)
    }

    /// Records what happened, durably.
    pub fn apply(&self, e: &Event) -> Result<(), LedgerError> {
        let (job, first) = match e {
            Event::ClaimSent { job_id, first, .. }
            | Event::ClaimNotSent { job_id, first }
            | Event::ClaimMined { job_id, first, .. }
            | Event::BlockHash { job_id, first, .. } => (*job_id, *first),
            Event::VerifySent {
                job_id, claim_id, ..
            }
            | Event::VerifyNotSent {
                job_id, claim_id, ..
            }
            | Event::Verified {
                job_id, claim_id, ..
            }
            | Event::FeesDistributed { job_id, claim_id }
            | Event::Slashed { job_id, claim_id } => {
                match self.claim_by_id(*job_id, *claim_id)? {
                    Some(c) => (*job_id, c.first),
                    // an event about a claim this box did not make (another transcoder's): not ours
                    None => return Ok(()),
                }
            }
        };
        let mut c = self
            .store
            .claims(job)?
            .into_iter()
            .find(|c| c.first == first)
            .ok_or(LedgerError::NoSuchClaim { job, first })?;
        match *e {
            Event::ClaimSent { block, .. } => c.sent(block),
            Event::ClaimNotSent { .. } => c.unsent(),
            Event::ClaimMined {
                claim_id,
                claim_block,
                ..
            } => c.mined(claim_id, claim_block),
            Event::BlockHash { hash, .. } => c.challenges(hash, &self.windows),
            Event::VerifySent { seg_no, .. } => c.answer(seg_no, Answer::Sent),
            Event::VerifyNotSent { seg_no, .. } => c.verify_unsent(seg_no),
            Event::Verified { seg_no, passed, .. } => c.answer(
                seg_no,
                if passed {
                    Answer::Passed
                } else {
                    Answer::Failed
                },
            ),
            Event::FeesDistributed { .. } => c.distributed(),
            Event::Slashed { .. } => c.slashed(),
        }
        self.store.put_claim(&c)?;
        Ok(())
    }

    /// The input files of `segments` are deleted (or about to be): forget them. Returns their paths.
    pub fn release(
        &self,
        job: u64,
        segments: &[u64],
    ) -> Result<Vec<std::path::PathBuf>, LedgerError> {
        let mut paths = Vec::new();
        for s in segments {
            paths.extend(self.store.release_input(job, *s)?);
        }
        self.store.flush()?;
        Ok(paths)
    }

    fn claim_by_id(&self, job: u64, claim_id: u64) -> Result<Option<ClaimRecord>, LedgerError> {
        Ok(self
            .store
            .claims(job)?
            .into_iter()
            .find(|c| c.claim_id() == Some(claim_id)))
    }

    /// Builds the job's next claim when the policy says so. Claims never overlap: the next one starts after
    /// the last claimed segment, at the first receipt stored there.
    fn build_claim(&self, job: &JobRecord, block: u64) -> Result<(), LedgerError> {
        let claims = self.store.claims(job.job_id)?;
        if block >= job.end_block {
            return Ok(());
        }
        let first_claim = claims.is_empty();
        if first_claim && block > job.creation_block + ELECTION_WINDOW {
            return Ok(());
        }
        let from = claims.iter().map(|c| c.last + 1).max().unwrap_or(0);
        let Some(start) = self.store.first_receipt_from(job.job_id, from)? else {
            return Ok(());
        };
        let receipts = self.store.contiguous_from(
            job.job_id,
            start,
            self.policy.max_segments.max(1) as usize,
        )?;
        let Some(oldest) = receipts.iter().map(|s| s.block).min() else {
            return Ok(());
        };
        let p = &self.policy;
        let due = receipts.len() as u64 >= p.max_segments
            || block >= oldest + p.claim_after_blocks
            || block + p.end_margin_blocks >= job.end_block
            || (first_claim
                && block + p.election_margin_blocks >= job.creation_block + ELECTION_WINDOW);
        // the election needs the creation block's hash: no first claim in the creation block
        if !due || (first_claim && block <= job.creation_block) {
            return Ok(());
        }
        let leaves: Vec<H256> = receipts.iter().map(|s| s.receipt.leaf()).collect();
        let tree = MerkleTree::new(leaves).expect("at least one receipt");
        let last = receipts.last().expect("non-empty").receipt.seg_no;
        self.store.put_claim(&ClaimRecord {
            job_id: job.job_id,
            first: start,
            last,
            root: tree.root(),
            stage: Stage::Built,
        })?;
        Ok(())
    }

    /// A challenged segment's receipt and its Merkle proof against the claim root.
    fn proof(&self, c: &ClaimRecord, seg_no: u64) -> Result<(Receipt, Bytes), LedgerError> {
        let stored = self.store.receipts(c.job_id, c.first, c.last)?;
        let missing = |missing| LedgerError::MissingReceipt {
            job: c.job_id,
            first: c.first,
            last: c.last,
            missing,
        };
        if stored.len() as u64 != c.segments() {
            let have: std::collections::BTreeSet<u64> =
                stored.iter().map(|s| s.receipt.seg_no).collect();
            let gap = (c.first..=c.last)
                .find(|s| !have.contains(s))
                .unwrap_or(c.first);
            return Err(missing(gap));
        }
        let tree = MerkleTree::new(stored.iter().map(|s| s.receipt.leaf()).collect())
            .expect("at least one receipt");
        let idx = (seg_no - c.first) as usize;
        let proof = tree.proof(idx).ok_or_else(|| missing(seg_no))?;
        let receipt = stored[idx].receipt.clone();
        Ok((receipt, Bytes::from(proof)))
    }

    /// Segments of a finished claim whose input is still kept.
    fn kept_inputs(&self, c: &ClaimRecord) -> Result<Vec<u64>, LedgerError> {
        Ok(self
            .store
            .receipts(c.job_id, c.first, c.last)?
            .into_iter()
            .filter(|s| s.receipt.input.is_some())
            .map(|s| s.receipt.seg_no)
            .collect())
    }
}
