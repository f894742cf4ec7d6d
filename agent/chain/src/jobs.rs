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
        let out = self
            .node
            .call(
                None,
                d.jobs_manager,
                &jm::get_job(job_id.into()),
                U256::zero(),
                None,
            )
            .await?;
        let j = jm::decode_get_job(&out).map_err(|source| ViewError::Abi {
            what: "getJob",
            source,
        })?;
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
        let d = &self.deployment;
        let read = |data, what: &'static str| async move {
            let out = self
                .node
                .call(None, d.jobs_manager, &data, U256::zero(), None)
                .await?;
            jm::decode_verification_rate(&out)
                .map(|v| v.as_u64())
                .map_err(|source| ViewError::Abi { what, source })
        };
        Ok(JobWindows {
            verification_rate: read(jm::verification_rate(), "verificationRate").await?,
            verification_period: read(jm::verification_period(), "verificationPeriod").await?,
            slashing_period: read(
                jm::verification_slashing_period(),
                "verificationSlashingPeriod",
            )
            .await?,
        })
    }

    /// The transcoder the contract elects for `job` (its first claim must come from it), and its price; zero
    /// when nobody is eligible. Needs the job's creation block to be mined (its hash is the seed).
    pub async fn elected(&self, job: &Job) -> Result<(Address, U256), ViewError> {
        let d = &self.deployment;
        let seed = self
            .node
            .call(
                None,
                d.rounds_manager,
                &rm::block_hash(job.creation_block.into()),
                U256::zero(),
                None,
            )
            .await?;
        let seed = rm::decode_block_hash(&seed).map_err(|source| ViewError::Abi {
            what: "blockHash",
            source,
        })?;
        let out = self
            .node
            .call(
                None,
                d.bonding_manager,
                &bm::elect_active_transcoder(
                    job.max_price_per_segment,
                    seed,
                    job.creation_round.into(),
                ),
                U256::zero(),
                None,
            )
            .await?;
        let e = bm::decode_elect_active_transcoder(&out).map_err(|source| ViewError::Abi {
            what: "electActiveTranscoder",
            source,
        })?;
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
            return Err(OpError::Refused(
                "the current round is not initialized yet: run `edge-agent round init` (anyone may) and retry"
                    .into(),
            ));
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
        let out = self
            .proto
            .node
            .call(
                None,
                d.jobs_manager,
                &jm::broadcasters(who),
                U256::zero(),
                None,
            )
            .await?;
        let b = jm::decode_broadcasters(&out).map_err(|source| ViewError::Abi {
            what: "broadcasters",
            source,
        })?;
        Ok(b.deposit)
    }
}
