//! Claims and verification on chain: typed reads of a job's claims and of a segment's verification, and the
//! calls a transcoder (claimWork, verify, batchDistributeFees), a finder (missedVerificationSlash) and the
//! trusted solver (Verifier callback) send. The calls are [`Call`]s for the [`crate::sender::Sender`]; what
//! decides when to send them lives with the proof state (`proof` crate) and the verifier role.

use ethers_core::types::{Address, Bytes, H256, Log, U256};
use serde::Serialize;

use crate::bindings::{jobs_manager as jm, verifier as vf};
use crate::protocol::{Protocol, ViewError};
use crate::sender::Call;

/// A claim's status as the JobsManager keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimStatus {
    None,
    Pending,
    Slashed,
    Complete,
}

impl From<u8> for ClaimStatus {
    fn from(v: u8) -> Self {
        match v {
            1 => Self::Pending,
            2 => Self::Slashed,
            3 => Self::Complete,
            _ => Self::None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClaimView {
    pub claim_id: u64,
    pub first: u64,
    pub last: u64,
    pub root: H256,
    pub claim_block: u64,
    pub end_verification_block: u64,
    pub end_slashing_block: u64,
    pub status: ClaimStatus,
}

/// What the chain knows of one challenged segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VerificationView {
    /// Submitted by the transcoder (verify mined).
    pub requested: bool,
    /// The Verifier answered.
    pub answered: bool,
}

/// A verification request as the Verifier emitted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct VerifyRequest {
    pub request_id: u64,
    pub job_id: u64,
    pub claim_id: u64,
    pub seg_no: u64,
    pub transcoding_options: String,
    pub data_storage_hash: String,
    pub data_hash: H256,
    pub transcoded_data_hash: H256,
    pub block: u64,
}

impl VerifyRequest {
    pub fn from_log(l: &Log) -> Option<Self> {
        let e = vf::events::VerifyRequest::decode(&l.topics, &l.data).ok()?;
        Some(Self {
            request_id: small(e.request_id)?,
            job_id: small(e.job_id)?,
            claim_id: small(e.claim_id)?,
            seg_no: small(e.segment_number)?,
            transcoding_options: e.transcoding_options,
            data_storage_hash: e.data_storage_hash,
            data_hash: e.data_hash,
            transcoded_data_hash: e.transcoded_data_hash,
            block: l.block_number.map_or(0, |b| b.low_u64()),
        })
    }
}

/// A number from a log that must fit in u64 (ids, segment numbers): a log claiming more is not ours to read.
fn small(v: U256) -> Option<u64> {
    (v <= U256::from(u64::MAX)).then(|| v.low_u64())
}

/// A solver's verdict on a request, with its evidence (all of it lands in the `Callback` event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Verdict {
    pub passed: bool,
    /// The transcodedDataHash the solver computed (bit-exact mode), or of the renditions it measured.
    pub computed_hash: H256,
    /// 0 bit-exact, 1 fidelity (the Verifier's MODE_* constants).
    pub mode: u8,
    /// The deciding margin x1000 (negative fails); 0 in bit-exact mode.
    pub score: i64,
    /// keccak256 of the solver's full report.
    pub report_hash: H256,
}

/// The JobsManager events about claims, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimEvent {
    NewClaim {
        transcoder: Address,
        job_id: u64,
        claim_id: u64,
    },
    Passed {
        job_id: u64,
        claim_id: u64,
        seg_no: u64,
    },
    Failed {
        job_id: u64,
        claim_id: u64,
        seg_no: u64,
    },
    FeesDistributed {
        job_id: u64,
        claim_id: u64,
        fees: U256,
    },
    Slashed {
        job_id: u64,
        claim_id: u64,
        finder: Address,
    },
}

impl ClaimEvent {
    /// topic0 of every event [`ClaimEvent::from_log`] reads.
    pub const TOPICS: [H256; 5] = [
        jm::events::NewClaim::TOPIC,
        jm::events::PassedVerification::TOPIC,
        jm::events::FailedVerification::TOPIC,
        jm::events::DistributeFees::TOPIC,
        jm::events::ClaimSlashed::TOPIC,
    ];

    pub fn from_log(l: &Log) -> Option<Self> {
        let (t, d) = (&l.topics, &l.data);
        let n = small;
        let t0 = *t.first()?;
        match () {
            _ if t0 == jm::events::NewClaim::TOPIC => {
                let e = jm::events::NewClaim::decode(t, d).ok()?;
                Some(Self::NewClaim {
                    transcoder: e.transcoder,
                    job_id: n(e.job_id)?,
                    claim_id: n(e.claim_id)?,
                })
            }
            _ if t0 == jm::events::PassedVerification::TOPIC => {
                let e = jm::events::PassedVerification::decode(t, d).ok()?;
                Some(Self::Passed {
                    job_id: n(e.job_id)?,
                    claim_id: n(e.claim_id)?,
                    seg_no: n(e.segment_number)?,
                })
            }
            _ if t0 == jm::events::FailedVerification::TOPIC => {
                let e = jm::events::FailedVerification::decode(t, d).ok()?;
                Some(Self::Failed {
                    job_id: n(e.job_id)?,
                    claim_id: n(e.claim_id)?,
                    seg_no: n(e.segment_number)?,
                })
            }
            _ if t0 == jm::events::DistributeFees::TOPIC => {
                let e = jm::events::DistributeFees::decode(t, d).ok()?;
                Some(Self::FeesDistributed {
                    job_id: n(e.job_id)?,
                    claim_id: n(e.claim_id)?,
                    fees: e.fees,
                })
            }
            _ if t0 == jm::events::ClaimSlashed::TOPIC => {
                let e = jm::events::ClaimSlashed::decode(t, d).ok()?;
                Some(Self::Slashed {
                    job_id: n(e.job_id)?,
                    claim_id: n(e.claim_id)?,
                    finder: e.finder,
                })
            }
            _ => None,
        }
    }
}

impl Protocol {
    pub async fn claim(&self, job_id: u64, claim_id: u64) -> Result<ClaimView, ViewError> {
        let c = self
            .read(
                "getClaim",
                self.deployment.jobs_manager,
                jm::get_claim(job_id.into(), claim_id.into()),
                jm::decode_get_claim,
            )
            .await?;
        Ok(ClaimView {
            claim_id,
            first: c.first_segment.low_u64(),
            last: c.last_segment.low_u64(),
            root: c.claim_root,
            claim_block: c.claim_block.low_u64(),
            end_verification_block: c.end_verification_block.low_u64(),
            end_slashing_block: c.end_verification_slashing_block.low_u64(),
            status: c.status.into(),
        })
    }

    /// Every claim of a job, in claim id order.
    pub async fn claims(&self, job_id: u64) -> Result<Vec<ClaimView>, ViewError> {
        let n = self.job(job_id).await?.claims;
        let mut out = Vec::with_capacity(n as usize);
        for id in 0..n {
            out.push(self.claim(job_id, id).await?);
        }
        Ok(out)
    }

    pub async fn verification(
        &self,
        job_id: u64,
        claim_id: u64,
        seg_no: u64,
    ) -> Result<VerificationView, ViewError> {
        let v = self
            .read(
                "isVerificationRequested",
                self.deployment.jobs_manager,
                jm::is_verification_requested(job_id.into(), claim_id.into(), seg_no.into()),
                jm::decode_is_verification_requested,
            )
            .await?;
        Ok(VerificationView {
            requested: v.requested,
            answered: v.answered,
        })
    }

    /// What the Verifier charges per verification (msg.value of `verify`).
    pub async fn verifier_price(&self) -> Result<U256, ViewError> {
        self.read(
            "getPrice",
            self.deployment.verifier,
            vf::get_price(),
            vf::decode_get_price,
        )
        .await
    }

    /// `claimWork(job, [first, last], root)`.
    pub fn claim_work(&self, job_id: u64, first: u64, last: u64, root: H256) -> Call {
        Call::new(
            format!("claim job {job_id} segments {first}..={last}"),
            self.deployment.jobs_manager,
            jm::claim_work(job_id.into(), [first.into(), last.into()], root),
        )
    }

    /// `verify(...)` of a challenged segment: its receipt, where the verifier finds the data, its proof.
    #[allow(clippy::too_many_arguments)]
    pub fn verify(
        &self,
        job_id: u64,
        claim_id: u64,
        seg_no: u64,
        data_storage_hash: String,
        data_hash: H256,
        transcoded_data_hash: H256,
        broadcaster_sig: Bytes,
        proof: Bytes,
        price: U256,
    ) -> Call {
        Call::new(
            format!("verify job {job_id} claim {claim_id} segment {seg_no}"),
            self.deployment.jobs_manager,
            jm::verify(
                job_id.into(),
                claim_id.into(),
                seg_no.into(),
                data_storage_hash,
                [data_hash, transcoded_data_hash],
                broadcaster_sig,
                proof,
            ),
        )
        .value(price)
    }

    pub fn distribute_fees(&self, job_id: u64, claim_ids: &[u64]) -> Call {
        Call::new(
            format!("distribute fees of job {job_id} claims {claim_ids:?}"),
            self.deployment.jobs_manager,
            jm::batch_distribute_fees(
                job_id.into(),
                claim_ids.iter().map(|c| (*c).into()).collect(),
            ),
        )
    }

    pub fn missed_verification_slash(&self, job_id: u64, claim_id: u64, seg_no: u64) -> Call {
        Call::new(
            format!("slash job {job_id} claim {claim_id}: segment {seg_no} never verified"),
            self.deployment.jobs_manager,
            jm::missed_verification_slash(job_id.into(), claim_id.into(), seg_no.into()),
        )
    }

    /// The solver's answer to request `request_id` about `claimed_hash`.
    pub fn callback(&self, request_id: u64, claimed_hash: H256, v: &Verdict) -> Call {
        Call::new(
            format!(
                "verdict on request {request_id}: {}",
                if v.passed { "passed" } else { "failed" }
            ),
            self.deployment.verifier,
            vf::callback(
                request_id.into(),
                claimed_hash,
                v.passed,
                v.computed_hash,
                v.mode,
                crate::abi_int(v.score),
                v.report_hash,
            ),
        )
    }

    /// The solver's answer is on chain (the request is no longer pending).
    pub async fn request_answered(&self, request_id: u64) -> Result<bool, ViewError> {
        let r = self
            .read(
                "getRequest",
                self.deployment.verifier,
                vf::get_request(request_id.into()),
                vf::decode_get_request,
            )
            .await?;
        Ok(!r.pending)
    }

    /// `isChallenged(claimBlock, segNo)` as the contract evaluates it (rule 8, from `claimBlock + 2` on).
    pub async fn is_challenged(&self, claim_block: u64, seg_no: u64) -> Result<bool, ViewError> {
        self.read(
            "isChallenged",
            self.deployment.jobs_manager,
            jm::is_challenged(claim_block.into(), seg_no.into()),
            jm::decode_is_challenged,
        )
        .await
    }
}

impl Protocol {
    /// Challenged segments of `job`'s pending claims that were never submitted for verification and whose
    /// slashing window is open at the current block: what a finder may slash (one per claim: a slash settles
    /// the claim).
    pub async fn missed_verifications(&self, job_id: u64) -> Result<Vec<(u64, u64)>, ViewError> {
        let block = self.node.block_number().await?;
        let mut out = Vec::new();
        for c in self.claims(job_id).await? {
            if c.status != ClaimStatus::Pending
                || block < c.end_verification_block
                || block >= c.end_slashing_block
            {
                continue;
            }
            for seg in c.first..=c.last {
                if self.is_challenged(c.claim_block, seg).await?
                    && !self.verification(job_id, c.claim_id, seg).await?.requested
                {
                    out.push((c.claim_id, seg));
                    break;
                }
            }
        }
        Ok(out)
    }
}

/// The NewClaim of a mined claimWork: its claim id.
pub fn new_claim_id(logs: &[Log]) -> Option<u64> {
    logs.iter()
        .filter_map(ClaimEvent::from_log)
        .find_map(|e| match e {
            ClaimEvent::NewClaim { claim_id, .. } => Some(claim_id),
            _ => None,
        })
}
