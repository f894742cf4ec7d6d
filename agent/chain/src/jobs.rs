//! The Job -> Claim -> Verify side of the protocol: typed reads of jobs and the JobsManager's windows, the
//! election as the contract computes it, and the broadcaster's job creation.

use ethers_core::types::{Address, U256};
use serde::Serialize;

use crate::bindings::{bonding_manager as bm, jobs_manager as jm, rounds_manager as rm};
use crate::ops::{Client, OpError};
use crate::protocol::{Protocol, ViewError};
use crate::sender::Call;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Job {
    pub job_id: u64,
    pub stream_id: String,
    pub transcoding_options: String,
    pub max_price_per_segment: U256,
    pub broadcaster: Address,
    /// Zero until the first claim elects it.
    pub transcoder: Address,
    pub creation_round: u64,
    pub creation_block: u64,
    pub end_block: u64,
    pub price_per_segment: U256,
    pub escrow: U256,
    pub claims: u64,
}

/// The JobsManager's windows (blocks) and challenge rate.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct JobWindows {
    pub verification_rate: u64,
    pub verification_period: u64,
    pub slashing_period: u64,
}

impl Protocol {
    pub async fn job(&self, job_id: u64) -> Result<Job, ViewError> {
        let d = &self.deployment;
        let j = self
            .read(
                "getJob",
                d.jobs_manager,
                jm::get_job(job_id.into()),
                jm::decode_get_job,
            )
            .await?;
        Ok(Job {
            job_id,
            stream_id: j.stream_id,
            transcoding_options: j.transcoding_options,
            max_price_per_segment: j.max_price_per_segment,
            broadcaster: j.broadcaster_address,
            transcoder: j.transcoder_address,
            creation_round: j.creation_round.as_u64(),
            creation_block: j.creation_block.as_u64(),
            end_block: j.end_block.as_u64(),
            price_per_segment: j.price_per_segment,
            escrow: j.escrow,
            claims: j.total_claims.as_u64(),
        })
    }

    pub async fn job_windows(&self) -> Result<JobWindows, ViewError> {
        let jm_addr = self.deployment.jobs_manager;
        let u = jm::decode_verification_rate; // every window is one uint256
        Ok(JobWindows {
            verification_rate: self
                .read("verificationRate", jm_addr, jm::verification_rate(), u)
                .await?
                .as_u64(),
            verification_period: self
                .read("verificationPeriod", jm_addr, jm::verification_period(), u)
                .await?
                .as_u64(),
            slashing_period: self
                .read(
                    "verificationSlashingPeriod",
                    jm_addr,
                    jm::verification_slashing_period(),
                    u,
                )
                .await?
                .as_u64(),
        })
    }

    /// The transcoder the contract elects for `job` (its first claim must come from it), and its price; zero
    /// when nobody is eligible. Needs the job's creation block to be mined (its hash is the seed).
    pub async fn elected(&self, job: &Job) -> Result<(Address, U256), ViewError> {
        let d = &self.deployment;
        let seed = self
            .read(
                "blockHash",
                d.rounds_manager,
                rm::block_hash(job.creation_block.into()),
                rm::decode_block_hash,
            )
            .await?;
        let e = self
            .read(
                "electActiveTranscoder",
                d.bonding_manager,
                bm::elect_active_transcoder(
                    job.max_price_per_segment,
                    seed,
                    job.creation_round.into(),
                ),
                bm::decode_elect_active_transcoder,
            )
            .await?;
        Ok((e.elected, e.price_per_segment))
    }
}

impl Client {
    /// Creates a job for `stream_id` with `transcoding_options` (the profiles' IDs in order); returns its id.
    pub async fn create_job(
        &self,
        stream_id: &str,
        transcoding_options: &str,
        max_price_per_segment: U256,
        end_block: u64,
    ) -> Result<u64, OpError> {
        if !self.proto.round_initialized().await? {
            return Err(crate::ops::not_initialized());
        }
        let m = self
            .sender
            .send(Call::new(
                format!("job for stream {stream_id}"),
                self.proto.deployment.jobs_manager,
                jm::job(
                    stream_id.to_string(),
                    transcoding_options.to_string(),
                    max_price_per_segment,
                    end_block.into(),
                ),
            ))
            .await?;
        m.logs
            .iter()
            .filter(|l| l.topics.first() == Some(&jm::events::NewJob::TOPIC))
            .find_map(|l| jm::events::NewJob::decode(&l.topics, &l.data).ok())
            .map(|e| e.job_id.as_u64())
            .ok_or_else(|| OpError::Refused("the job transaction emitted no NewJob event".into()))
    }

    /// The broadcaster's deposit held by the JobsManager.
    pub async fn deposit_of(&self, who: Address) -> Result<U256, OpError> {
        let d = &self.proto.deployment;
        let b = self
            .proto
            .read(
                "broadcasters",
                d.jobs_manager,
                jm::broadcasters(who),
                jm::decode_broadcasters,
            )
            .await?;
        Ok(b.deposit)
    }
}

/// Why a job's segment is refused before it is transcoded; each names the segment.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error(
        "segment {seq}: job {job} needs the broadcaster's signature (header X-Broadcaster-Signature)"
    )]
    NoSignature { job: u64, seq: u64 },
    #[error("segment {seq}: the signature is not hex")]
    SignatureNotHex { seq: u64 },
    #[error("segment {seq}: {source}")]
    Signature {
        seq: u64,
        source: crate::hashes::SignatureError,
    },
    #[error("segment {seq}: signed by {signer:?}, not by job {job}'s broadcaster {broadcaster:?}")]
    WrongSigner {
        job: u64,
        seq: u64,
        signer: Address,
        broadcaster: Address,
    },
    #[error("job {0} does not exist on chain")]
    UnknownJob(u64),
    #[error("segment {seq}: job {job} is for stream {expected:?}, not {got:?}")]
    WrongStream {
        job: u64,
        seq: u64,
        expected: String,
        got: String,
    },
    #[error("segment {seq}: job {job} ended at block {end_block}")]
    Ended { job: u64, seq: u64, end_block: u64 },
    #[error("segment {seq}: job {job} is {transcoder:?}'s, not this box's")]
    NotOurs {
        job: u64,
        seq: u64,
        transcoder: Address,
    },
    #[error(
        "segment {seq}: the broadcaster's deposit ({deposit} wei) does not cover one more segment of job {job} ({need} wei): deposit more"
    )]
    InsufficientDeposit {
        job: u64,
        seq: u64,
        deposit: U256,
        need: U256,
    },
    #[error("checking job {job}: {source}")]
    Chain { job: u64, source: ViewError },
}

/// Checks a job's segment before anything is done with it: the job exists, is for this stream, has not
/// ended, is (or will be, by the election) this box's, and the segment carries its broadcaster's signature.
/// Jobs are read from the chain once and kept; `check` hands the job back.
pub struct SegmentGate {
    proto: Protocol,
    me: Address,
    /// job -> (job, its transcoder, the transcoder's price per segment and profile)
    jobs: tokio::sync::Mutex<std::collections::HashMap<u64, (Job, Address, U256)>>,
}

impl SegmentGate {
    pub fn new(proto: Protocol, me: Address) -> Self {
        Self {
            proto,
            me,
            jobs: Default::default(),
        }
    }

    /// The job, its transcoder (the one set on chain, or the one the election picks) and its price.
    async fn job(&self, job_id: u64) -> Result<(Job, Address, U256), GateError> {
        if let Some(j) = self.jobs.lock().await.get(&job_id) {
            return Ok(j.clone());
        }
        let chain = |source| GateError::Chain {
            job: job_id,
            source,
        };
        let job = match self.proto.job(job_id).await {
            Ok(j) => j,
            Err(ViewError::Node(e))
                if e.revert_data().is_some_and(|d| {
                    crate::revert::name(&crate::revert::describe(d)) == "NoSuchJob"
                }) =>
            {
                return Err(GateError::UnknownJob(job_id));
            }
            Err(e) => return Err(chain(e)),
        };
        if job.broadcaster.is_zero() {
            return Err(GateError::UnknownJob(job_id));
        }
        let (transcoder, price) = if job.transcoder.is_zero() {
            self.proto.elected(&job).await.map_err(chain)?
        } else {
            (job.transcoder, job.price_per_segment)
        };
        self.jobs
            .lock()
            .await
            .insert(job_id, (job.clone(), transcoder, price));
        Ok((job, transcoder, price))
    }

    pub async fn check(
        &self,
        job_id: u64,
        stream: &str,
        seq: u64,
        segment: &[u8],
        signature: Option<&str>,
    ) -> Result<Job, GateError> {
        let (job, transcoder, price) = self.job(job_id).await?;
        if job.stream_id != stream {
            return Err(GateError::WrongStream {
                job: job_id,
                seq,
                expected: job.stream_id,
                got: stream.into(),
            });
        }
        if transcoder != self.me {
            return Err(GateError::NotOurs {
                job: job_id,
                seq,
                transcoder,
            });
        }
        let head = self
            .proto
            .node
            .block_number()
            .await
            .map_err(|e| GateError::Chain {
                job: job_id,
                source: e.into(),
            })?;
        if head >= job.end_block {
            return Err(GateError::Ended {
                job: job_id,
                seq,
                end_block: job.end_block,
            });
        }
        let sig = signature.ok_or(GateError::NoSignature { job: job_id, seq })?;
        let sig = hex::decode(sig.trim().trim_start_matches("0x"))
            .map_err(|_| GateError::SignatureNotHex { seq })?;
        let signer =
            crate::hashes::segment_signer(stream, seq, crate::hashes::data_hash(segment), &sig)
                .map_err(|source| GateError::Signature { seq, source })?;
        if signer != job.broadcaster {
            return Err(GateError::WrongSigner {
                job: job_id,
                seq,
                signer,
                broadcaster: job.broadcaster,
            });
        }
        // the claim escrows price x profiles per segment from the deposit: a segment it cannot pay for is
        // refused before any work is done
        let need = price * U256::from(job.transcoding_options.len() as u64 / 8);
        let deposit = self
            .proto
            .read(
                "broadcasters",
                self.proto.deployment.jobs_manager,
                jm::broadcasters(job.broadcaster),
                jm::decode_broadcasters,
            )
            .await
            .map_err(|source| GateError::Chain {
                job: job_id,
                source,
            })?
            .deposit;
        if deposit < need {
            return Err(GateError::InsufficientDeposit {
                job: job_id,
                seq,
                deposit,
                need,
            });
        }
        Ok(job)
    }
}
