//! Receipts for the segments of on-chain jobs: after a job segment is transcoded (into the job's profiles, in
//! the job's order), its input is kept for a possible challenge and a receipt goes into the proof store
//! (`proof::ProofStore`), durably, before the segment is acknowledged.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chain::Bytes;
use proof::{EncodeMode, JobRecord, ProofStore, Receipt};

/// What the ingest learned about a job segment before handing it to the stream's worker.
#[derive(Debug, Clone)]
pub struct JobSegment {
    pub job: chain::jobs::Job,
    /// The broadcaster's signature, as received (checked by the gate).
    pub signature: Bytes,
}

impl JobSegment {
    /// The job's profile names, in its transcodingOptions order.
    pub fn ladder(&self, set: &media::profiles::ProfileSet) -> anyhow::Result<Vec<String>> {
        Ok(set
            .parse_options(&self.job.transcoding_options)
            .with_context(|| format!("job {}: transcodingOptions", self.job.job_id))?
            .into_iter()
            .map(|p| p.name)
            .collect())
    }
}

/// Keeps the input, reads the renditions back from the stream's HLS output
/// (`<data_dir>/hls/<stream>/<profile>/<seq>.ts`), and stores the receipt. Returns its Merkle leaf.
pub fn store(
    store: &ProofStore,
    data_dir: &Path,
    js: &JobSegment,
    ladder: &[String],
    seq: u64,
    input: &[u8],
    block: u64,
) -> anyhow::Result<chain::H256> {
    let job = &js.job;
    store.put_job(&JobRecord {
        job_id: job.job_id,
        stream_id: job.stream_id.clone(),
        transcoding_options: job.transcoding_options.clone(),
        creation_block: job.creation_block,
        end_block: job.end_block,
        price_per_segment: job.price_per_segment,
    })?;
    let hls_dir = data_dir.join("hls").join(&job.stream_id);
    let outputs: Vec<PathBuf> = ladder
        .iter()
        .map(|p| hls_dir.join(p).join(format!("{seq}.ts")))
        .collect();
    let renditions = outputs
        .iter()
        .map(|p| std::fs::read(p).with_context(|| format!("reading rendition {}", p.display())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let kept = data_dir
        .join("proof/inputs")
        .join(job.job_id.to_string())
        .join(format!("{seq}.ts"));
    write_synced(&kept, input)?;
    // the engine's live streams are not bit-exact across encoder states: a verifier compares by fidelity
    let mut receipt = Receipt::new(
        &job.stream_id,
        seq,
        input,
        &renditions,
        js.signature.clone(),
        EncodeMode::Fidelity,
    );
    receipt.input = Some(kept);
    receipt.outputs = outputs;
    store.put_receipt(job.job_id, block, &receipt)?;
    Ok(receipt.leaf())
}

fn write_synced(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let mut f =
        std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    Ok(())
}
