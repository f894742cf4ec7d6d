//! The verdict on one challenged segment. The transcoder's manifest says how its renditions were encoded:
//! - bit-exact: the input is transcoded again with a fresh engine in the deterministic software mode
//!   (`media::EngineConfig::bit_exact`) and the transcodedDataHash of that output must equal the claimed
//!   one (the Verifier contract enforces `passed == (computed == claimed)` in this mode);
//! - fidelity (hardware encoders and every other non-deterministic encode): the claimed renditions are measured
//!   against the input and the job's profiles (`media::fidelity`); the deciding per-frame margin is the score.
//!
//! In both modes the pixel count the transcoder bills (the manifest's) must be what its renditions hold, and
//! the renditions must be the job's profiles in the job's order. A bundle that contradicts the chain's hashes
//! fails; one that cannot be fetched at all fails only when the solver gives up on it (its caller decides).

use chain::H256;
use chain::claims::Verdict;
use chain::hashes;
use media::profiles::{Profile, ProfileSet};
use proof::EncodeMode;
use serde::Serialize;

use crate::fetch::{Bundle, Challenge, FetchError};

/// The Verifier contract's MODE_BIT_EXACT and MODE_FIDELITY.
pub const MODE_BIT_EXACT: u8 = 0;
pub const MODE_FIDELITY: u8 = 1;

/// The full report; its keccak256 goes on chain with the verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub job_id: u64,
    pub seg_no: u64,
    pub mode: EncodeMode,
    pub passed: bool,
    /// Why it failed (the first reason found).
    pub reason: Option<String>,
    pub claimed_hash: H256,
    pub computed_hash: H256,
    pub profiles: Vec<String>,
    pub pixels_billed: Option<u64>,
    pub pixels_measured: Option<u64>,
    pub fidelity: Option<media::fidelity::FidelityReport>,
}

#[derive(Debug, Clone)]
pub struct Judgement {
    pub verdict: Verdict,
    pub report: Report,
    /// The serialized report (what `report_hash` is the keccak256 of).
    pub report_json: Vec<u8>,
}

/// Judges a fetched bundle (or a fetch that failed for good). Blocking: runs GStreamer pipelines.
pub fn judge(
    c: &Challenge,
    set: &ProfileSet,
    transcoding_options: &str,
    fetched: Result<Bundle, FetchError>,
) -> Judgement {
    let mut r = Report {
        job_id: c.job_id,
        seg_no: c.seg_no,
        mode: EncodeMode::Fidelity,
        passed: false,
        reason: None,
        claimed_hash: c.transcoded_data_hash,
        computed_hash: H256::zero(),
        profiles: Vec::new(),
        pixels_billed: None,
        pixels_measured: None,
        fidelity: None,
    };
    let score = match fetched {
        Err(e) => {
            r.reason = Some(format!("the proof bundle: {e}"));
            -1000
        }
        Ok(b) => match measure(&mut r, set, transcoding_options, &b) {
            Ok(score) => score,
            Err(reason) => {
                r.reason = Some(reason);
                r.passed = false;
                -1000
            }
        },
    };
    let report_json = serde_json::to_vec(&r).expect("a report serializes");
    let mode = match r.mode {
        EncodeMode::BitExact => MODE_BIT_EXACT,
        EncodeMode::Fidelity => MODE_FIDELITY,
    };
    Judgement {
        verdict: Verdict {
            passed: r.passed,
            computed_hash: r.computed_hash,
            mode,
            score: if mode == MODE_BIT_EXACT { 0 } else { score },
            report_hash: hashes::data_hash(&report_json),
        },
        report: r,
        report_json,
    }
}

/// Fills the report from a checked bundle; returns the score (x1000), or why it fails outright.
fn measure(
    r: &mut Report,
    set: &ProfileSet,
    transcoding_options: &str,
    b: &Bundle,
) -> Result<i64, String> {
    let m = &b.manifest;
    r.mode = m.mode;
    r.pixels_billed = Some(m.pixels);
    let profiles: Vec<Profile> = set
        .parse_options(transcoding_options)
        .map_err(|e| format!("the job's transcodingOptions: {e}"))?;
    r.profiles = profiles.iter().map(|p| p.name.clone()).collect();
    if m.profiles != r.profiles {
        return Err(format!(
            "the renditions are for {:?}, the job asks for {:?} in that order",
            m.profiles, r.profiles
        ));
    }
    let score = match m.mode {
        EncodeMode::BitExact => {
            let out = media::Transcoder::new(media::EngineConfig::bit_exact(profiles.clone()))
                .map_err(|e| format!("re-transcoding: {e}"))?
                .push_segment(r.seg_no, &b.input)
                .map_err(|e| format!("re-transcoding the input: {e}"))?;
            let mine: Vec<&[u8]> = out.renditions.iter().map(|x| x.data.as_slice()).collect();
            r.computed_hash = hashes::transcoded_data_hash(&mine);
            r.pixels_measured = Some(
                out.renditions
                    .iter()
                    .map(|x| u64::from(x.width) * u64::from(x.height) * x.frames as u64)
                    .sum(),
            );
            r.passed = r.computed_hash == r.claimed_hash;
            if !r.passed {
                r.reason = Some("the renditions differ from a deterministic re-transcode".into());
            }
            0
        }
        EncodeMode::Fidelity => {
            // the renditions' hashes were checked against the claim: computed == claimed here
            r.computed_hash = hashes::transcoded_data_hash(&b.renditions);
            let pairs: Vec<(&Profile, &[u8])> = profiles
                .iter()
                .zip(&b.renditions)
                .map(|(p, d)| (p, d.as_slice()))
                .collect();
            let f = media::fidelity::compare(&b.input, &pairs)
                .map_err(|e| format!("the input cannot be measured: {e}"))?;
            r.pixels_measured = Some(f.renditions.iter().map(|x| x.pixels).sum());
            r.passed = f.passed;
            if !f.passed {
                r.reason = Some(
                    f.renditions
                        .iter()
                        .flat_map(|x| {
                            x.failures
                                .iter()
                                .map(move |e| format!("{}: {e}", x.profile))
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                );
            }
            let score = f.score_milli;
            r.fidelity = Some(f);
            score
        }
    };
    if r.pixels_measured != r.pixels_billed {
        r.passed = false;
        r.reason = Some(format!(
            "bills {} pixels, the renditions hold {}",
            m.pixels,
            r.pixels_measured.unwrap_or(0)
        ));
        return Ok(score.min(-1));
    }
    Ok(score)
}
