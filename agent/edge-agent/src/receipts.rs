//! Receipts for the segments of on-chain jobs: after a job segment is transcoded (into the job's profiles, in
//! the job's order), its proof bundle (input, renditions, manifest) is kept for a possible challenge and a
//! receipt goes into the proof store (`proof::ProofStore`), durably, before the segment is acknowledged.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chain::Bytes;
use proof::{EncodeMode, JobRecord, ProofStore, Receipt, bundle};

use crate::ingest::SegmentReport;

/// What the ingest learned about a job segment before handing it to the stream's worker.
#[derive(Debug, Clone)]
pub struct JobSegment {
    pub job: chain::jobs::Job,
    /// The broadcaster's signature, as received (checked by the gate).
    pub signature: Bytes,
    /// Encoded in the deterministic software mode, for bit-exact verification ([`bit_exact`]).
    pub bit_exact: bool,
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

/// Where a job segment's proof bundle is kept until no challenge can come (served at `/proof/{job}/{seq}/`).
pub fn kept_dir(data_dir: &Path, job: u64, seq: u64) -> PathBuf {
    data_dir
        .join("proof/kept")
        .join(job.to_string())
        .join(seq.to_string())
}

/// The box offers bit-exact verification of its jobs (`[chain.claims] bit_exact`): their segments are encoded
/// in the deterministic software mode and their receipts say so.
pub fn bit_exact(cfg: &crate::config::Config) -> bool {
    cfg.chain.as_ref().is_some_and(|c| c.claims.bit_exact)
}

/// Fault injection for the tests of the slashing path (`EDGE_AGENT_FAULT`): `wrong-output` claims renditions
/// that are not this segment's; `ignore-challenges` never answers a challenge.
pub fn fault() -> Option<&'static str> {
    static FAULT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    FAULT
        .get_or_init(|| std::env::var("EDGE_AGENT_FAULT").ok())
        .as_deref()
}

/// Keeps the segment's proof bundle (the input as received, the renditions read back from the stream's HLS
/// output `<data_dir>/hls/<stream>/<profile>/<n>.ts`, named in the report, a manifest) and stores the receipt. Returns its
/// Merkle leaf. Everything is on disk (fsynced) before the receipt is, and the receipt before the segment is
/// acknowledged.
pub fn store(
    store: &ProofStore,
    data_dir: &Path,
    js: &JobSegment,
    report: &SegmentReport,
    seq: u64,
    input: &[u8],
    block: u64,
) -> anyhow::Result<chain::H256> {
    let job = &js.job;
    store.put_job(&JobRecord::from(job))?;
    let hls_dir = data_dir.join("hls").join(&job.stream_id);
    let read =
        |p: &Path| std::fs::read(p).with_context(|| format!("reading rendition {}", p.display()));
    let mut renditions = report
        .renditions
        .iter()
        .map(|r| read(&hls_dir.join(&r.uri)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if fault() == Some("wrong-output") {
        // a cheating box: the previous segment's pictures (or, for the first, the ladder reversed)
        renditions = match seq.checked_sub(1) {
            Some(prev) => report
                .renditions
                .iter()
                .map(|r| read(&hls_dir.join(&r.profile).join(format!("{prev}.ts"))))
                .collect::<anyhow::Result<Vec<_>>>()?,
            None => renditions.into_iter().rev().collect(),
        };
    }
    let mode = if js.bit_exact {
        EncodeMode::BitExact
    } else {
        EncodeMode::Fidelity
    };
    let mut receipt = Receipt::new(
        &job.stream_id,
        seq,
        input,
        &renditions,
        js.signature.clone(),
        mode,
    )
    .made_by(match report.segment_mode {
        media::engine::SegmentMode::Restart => proof::SegmentRun::Restart,
        // the encoders ran on from the segment before (and, with lookahead, saw the next one's first frames)
        media::engine::SegmentMode::Continuous | media::engine::SegmentMode::Lookahead => {
            proof::SegmentRun::Continuous
        }
    });
    let dir = kept_dir(data_dir, job.job_id, seq);
    let kept_input = dir.join(bundle::INPUT);
    write_synced(&kept_input, input)?;
    let mut outputs = Vec::new();
    for (i, r) in renditions.iter().enumerate() {
        let p = dir.join(bundle::rendition_file(i));
        write_synced(&p, r)?;
        outputs.push(p);
    }
    let manifest = bundle::Manifest {
        job_id: job.job_id,
        stream_id: job.stream_id.clone(),
        seg_no: seq,
        data_hash: receipt.data_hash,
        profiles: report
            .renditions
            .iter()
            .map(|r| r.profile.clone())
            .collect(),
        rendition_hashes: receipt.rendition_hashes.clone(),
        mode,
        pixels: report
            .renditions
            .iter()
            .map(|r| u64::from(r.width) * u64::from(r.height) * r.frames as u64)
            .sum(),
    };
    let m = dir.join(bundle::MANIFEST);
    write_synced(&m, &serde_json::to_vec_pretty(&manifest)?)?;
    sync_dir(&dir)?;
    receipt.input = Some(kept_input);
    // the manifest goes with the bundle's directory when the files are released
    receipt.outputs = outputs;
    store.put_receipt(job.job_id, block, &receipt)?;
    Ok(receipt.leaf())
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
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
