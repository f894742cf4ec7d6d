//! A challenged segment's proof bundle: what a transcoder keeps for a segment until no challenge can come,
//! and what a verifier fetches through the verify transaction's dataStorageHash (a URL `<base>/<job>/<seg>`):
//! `manifest.json`, the input as received (`input.ts`) and each rendition in the job's profile order
//! (`0.ts`, `1.ts`, ...). Nothing in it is trusted: the verifier checks every file against the hashes on
//! chain (the input against dataHash, the rendition hashes against transcodedDataHash, each rendition
//! against its hash).

use chain::H256;
use chain::hashes;
use serde::{Deserialize, Serialize};

use crate::receipt::EncodeMode;

pub const MANIFEST: &str = "manifest.json";
pub const INPUT: &str = "input.ts";

/// File name of the `i`-th rendition (job profile order).
pub fn rendition_file(i: usize) -> String {
    format!("{i}.ts")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub job_id: u64,
    pub stream_id: String,
    pub seg_no: u64,
    pub data_hash: H256,
    /// Profile names in the job's order.
    pub profiles: Vec<String>,
    /// keccak256 of each rendition, in the same order.
    pub rendition_hashes: Vec<H256>,
    /// How the renditions were encoded: how they must be compared.
    pub mode: EncodeMode,
    /// What the transcoder bills for the segment: width x height x frames, summed over the renditions.
    pub pixels: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BundleError {
    #[error("the manifest is malformed: {0}")]
    Malformed(String),
    #[error("the manifest is for job {job} segment {seg_no}, not the one challenged")]
    WrongSegment { job: u64, seg_no: u64 },
    #[error("the manifest's dataHash {got:?} is not the claimed {want:?}")]
    DataHash { want: H256, got: H256 },
    #[error(
        "the manifest's rendition hashes give transcodedDataHash {got:?}, not the claimed {want:?}"
    )]
    TranscodedHash { want: H256, got: H256 },
    #[error("{profiles} profiles for {hashes} rendition hashes")]
    Shape { profiles: usize, hashes: usize },
    #[error("{what}: its keccak256 is {got:?}, not {want:?}")]
    File { what: String, want: H256, got: H256 },
}

impl Manifest {
    pub fn parse(bytes: &[u8]) -> Result<Self, BundleError> {
        serde_json::from_slice(bytes).map_err(|e| BundleError::Malformed(e.to_string()))
    }

    /// The manifest matches the challenged segment's hashes from the chain.
    pub fn check(
        &self,
        job_id: u64,
        seg_no: u64,
        data_hash: H256,
        transcoded_data_hash: H256,
    ) -> Result<(), BundleError> {
        if self.job_id != job_id || self.seg_no != seg_no {
            return Err(BundleError::WrongSegment {
                job: self.job_id,
                seg_no: self.seg_no,
            });
        }
        if self.profiles.len() != self.rendition_hashes.len() {
            return Err(BundleError::Shape {
                profiles: self.profiles.len(),
                hashes: self.rendition_hashes.len(),
            });
        }
        if self.data_hash != data_hash {
            return Err(BundleError::DataHash {
                want: data_hash,
                got: self.data_hash,
            });
        }
        let got = hashes::transcoded_data_hash_of(&self.rendition_hashes);
        if got != transcoded_data_hash {
            return Err(BundleError::TranscodedHash {
                want: transcoded_data_hash,
                got,
            });
        }
        Ok(())
    }
}

/// `bytes` hash to `want`.
pub fn check_file(what: &str, bytes: &[u8], want: H256) -> Result<(), BundleError> {
    let got = hashes::data_hash(bytes);
    if got == want {
        Ok(())
    } else {
        Err(BundleError::File {
            what: what.into(),
            want,
            got,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> (Manifest, H256) {
        let r = [b"a".to_vec(), b"b".to_vec()];
        let m = Manifest {
            job_id: 3,
            stream_id: "cam".into(),
            seg_no: 7,
            data_hash: hashes::data_hash(b"in"),
            profiles: vec!["P360p30fps16x9".into(), "P240p30fps16x9".into()],
            rendition_hashes: r.iter().map(|x| hashes::data_hash(x)).collect(),
            mode: EncodeMode::Fidelity,
            pixels: 1,
        };
        (m, hashes::transcoded_data_hash(&r))
    }

    #[test]
    fn a_manifest_is_checked_against_the_chain_hashes() {
        let (m, t) = manifest();
        let d = m.data_hash;
        assert_eq!(m.check(3, 7, d, t), Ok(()));
        assert!(matches!(
            m.check(3, 8, d, t),
            Err(BundleError::WrongSegment { .. })
        ));
        assert!(matches!(
            m.check(3, 7, H256::zero(), t),
            Err(BundleError::DataHash { .. })
        ));
        assert!(matches!(
            m.check(3, 7, d, H256::zero()),
            Err(BundleError::TranscodedHash { .. })
        ));
        let back = Manifest::parse(&serde_json::to_vec(&m).unwrap()).unwrap();
        assert_eq!(back, m);
        assert!(Manifest::parse(b"{\"job_id\": 1}").is_err());
        assert!(check_file("0.ts", b"a", m.rendition_hashes[0]).is_ok());
        assert!(check_file("0.ts", b"x", m.rendition_hashes[0]).is_err());
    }
}
