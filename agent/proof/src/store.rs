//! The proof state in sled: jobs, receipts (job ++ segment number), claims (job ++ first segment). A receipt
//! is written once and never changed; a second, different receipt for a stored segment is refused (it could
//! only lead to a double claim).

use std::path::Path;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::claim::ClaimRecord;
use crate::receipt::Receipt;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("proof store {path}: {source}")]
    Open { path: String, source: sled::Error },
    #[error("proof store: {0}")]
    Db(#[from] sled::Error),
    #[error("proof store record is malformed: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("job {job}, segment {seg_no}: a different receipt is already stored")]
    Conflict { job: u64, seg_no: u64 },
    #[error("job {0} is not known to this box")]
    UnknownJob(u64),
}

/// A job this box works on, as the chain created it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub job_id: u64,
    pub stream_id: String,
    /// The job's profile IDs in order (its transcodingOptions, 8 hex characters each).
    pub transcoding_options: String,
    pub creation_block: u64,
    pub end_block: u64,
    pub price_per_segment: chain::U256,
}

impl From<&chain::jobs::Job> for JobRecord {
    fn from(job: &chain::jobs::Job) -> Self {
        Self {
            job_id: job.job_id,
            stream_id: job.stream_id.clone(),
            transcoding_options: job.transcoding_options.clone(),
            creation_block: job.creation_block,
            end_block: job.end_block,
            price_per_segment: job.price_per_segment,
        }
    }
}

/// A stored receipt with the block the box was at when it stored it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    pub block: u64,
    pub receipt: Receipt,
}

/// [`Stored`] as written (no copy of the receipt).
#[derive(Serialize)]
struct StoredRef<'a> {
    block: u64,
    receipt: &'a Receipt,
}

#[derive(Clone)]
pub struct ProofStore {
    db: sled::Db,
    jobs: sled::Tree,
    receipts: sled::Tree,
    claims: sled::Tree,
}

fn key(job: u64, n: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&job.to_be_bytes());
    k[8..].copy_from_slice(&n.to_be_bytes());
    k
}

fn decode<T: DeserializeOwned>(v: &[u8]) -> Result<T, StoreError> {
    Ok(serde_json::from_slice(v)?)
}

impl ProofStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = chain::journal::open_db(path).map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Self {
            jobs: db.open_tree("jobs")?,
            receipts: db.open_tree("receipts")?,
            claims: db.open_tree("claims")?,
            db,
        })
    }

    /// Makes everything written so far durable (fsync). The life cycle calls it before anything is sent.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    pub fn put_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        self.jobs
            .insert(job.job_id.to_be_bytes(), serde_json::to_vec(job)?)?;
        self.flush()
    }

    pub fn job(&self, job: u64) -> Result<JobRecord, StoreError> {
        match self.jobs.get(job.to_be_bytes())? {
            Some(v) => decode(&v),
            None => Err(StoreError::UnknownJob(job)),
        }
    }

    pub fn jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        self.jobs.iter().map(|kv| decode(&kv?.1)).collect()
    }

    /// Stores a receipt durably (flushed before it returns). Storing the same receipt again is a no-op.
    pub fn put_receipt(&self, job: u64, block: u64, receipt: &Receipt) -> Result<(), StoreError> {
        self.insert_receipt(job, block, receipt)?;
        self.flush()
    }

    /// Stores a receipt without waiting for the disk; [`ProofStore::flush`] makes it durable.
    pub fn insert_receipt(
        &self,
        job: u64,
        block: u64,
        receipt: &Receipt,
    ) -> Result<(), StoreError> {
        let k = key(job, receipt.seg_no);
        let v = serde_json::to_vec(&StoredRef { block, receipt })?;
        match self
            .receipts
            .compare_and_swap(k, None as Option<&[u8]>, Some(v))?
        {
            Ok(()) => Ok(()),
            Err(cur) => {
                let old: Stored = decode(&cur.current.unwrap_or_default())?;
                if old.receipt == *receipt {
                    Ok(())
                } else {
                    Err(StoreError::Conflict {
                        job,
                        seg_no: receipt.seg_no,
                    })
                }
            }
        }
    }

    pub fn receipt(&self, job: u64, seg_no: u64) -> Result<Option<Stored>, StoreError> {
        self.receipts
            .get(key(job, seg_no))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Receipts of `job` with segment numbers in `first..=last`, in order.
    pub fn receipts(&self, job: u64, first: u64, last: u64) -> Result<Vec<Stored>, StoreError> {
        self.receipts
            .range(key(job, first)..=key(job, last))
            .map(|kv| decode(&kv?.1))
            .collect()
    }

    /// The receipts of `job` from segment `from` on, as long as the segment numbers are contiguous.
    pub fn contiguous_from(
        &self,
        job: u64,
        from: u64,
        max: usize,
    ) -> Result<Vec<Stored>, StoreError> {
        let mut out: Vec<Stored> = Vec::new();
        for kv in self.receipts.range(key(job, from)..=key(job, u64::MAX)) {
            let s: Stored = decode(&kv?.1)?;
            let want = from + out.len() as u64;
            if s.receipt.seg_no != want || out.len() >= max {
                break;
            }
            out.push(s);
        }
        Ok(out)
    }

    /// The lowest stored segment number of `job` at or after `from`.
    pub fn first_receipt_from(&self, job: u64, from: u64) -> Result<Option<u64>, StoreError> {
        match self
            .receipts
            .range(key(job, from)..=key(job, u64::MAX))
            .next()
        {
            Some(kv) => Ok(Some(decode::<Stored>(&kv?.1)?.receipt.seg_no)),
            None => Ok(None),
        }
    }

    /// Forgets where the input and renditions of a receipt are kept (the files themselves are the caller's
    /// to delete); returns their paths.
    pub fn release_input(
        &self,
        job: u64,
        seg_no: u64,
    ) -> Result<Vec<std::path::PathBuf>, StoreError> {
        let Some(mut s) = self.receipt(job, seg_no)? else {
            return Ok(Vec::new());
        };
        let mut paths: Vec<_> = s.receipt.input.take().into_iter().collect();
        paths.append(&mut s.receipt.outputs);
        self.receipts
            .insert(key(job, seg_no), serde_json::to_vec(&s)?)?;
        Ok(paths)
    }

    pub fn put_claim(&self, c: &ClaimRecord) -> Result<(), StoreError> {
        self.claims
            .insert(key(c.job_id, c.first), serde_json::to_vec(c)?)?;
        self.flush()
    }

    pub fn claims(&self, job: u64) -> Result<Vec<ClaimRecord>, StoreError> {
        self.claims
            .range(key(job, 0)..=key(job, u64::MAX))
            .map(|kv| decode(&kv?.1))
            .collect()
    }

    pub fn all_claims(&self) -> Result<Vec<ClaimRecord>, StoreError> {
        self.claims.iter().map(|kv| decode(&kv?.1)).collect()
    }
}
