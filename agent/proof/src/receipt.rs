//! A receipt: what a transcoder keeps for one signed segment it transcoded, enough to build the claim's
//! Merkle leaf, to answer a challenge with the data the verifier needs, and to find the bytes again.

use std::path::PathBuf;

use chain::hashes;
use chain::{Bytes, H256};
use serde::{Deserialize, Serialize};

/// How the renditions were encoded, which decides how a verifier compares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncodeMode {
    /// The engine's deterministic software mode: a re-encode matches byte for byte.
    BitExact,
    /// Any other encoder (hardware, threaded x264, continuous streams): compared by fidelity.
    Fidelity,
}

/// Whether the encoders started afresh for a segment or ran on from the stream's previous one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentRun {
    /// Fresh encoders: the renditions depend on this segment alone (and, bit-exact, are reproducible).
    #[default]
    Restart,
    /// The encoders carried their state over from the previous segment: the renditions depend on the
    /// segments before too, so only a fidelity comparison can check them.
    Continuous,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub stream_id: String,
    pub seg_no: u64,
    /// keccak256 of the input segment (rule 2).
    pub data_hash: H256,
    /// keccak256 of each rendition, in the job's profile order.
    pub rendition_hashes: Vec<H256>,
    /// keccak256 of the concatenated rendition hashes (rule 3).
    pub transcoded_data_hash: H256,
    /// The broadcaster's 65-byte EIP-191 signature over the segment hash (rule 5), as received.
    pub broadcaster_sig: Bytes,
    /// Where the input segment is kept (until no challenge can come any more).
    pub input: Option<PathBuf>,
    /// Where each rendition is kept, in profile order.
    pub outputs: Vec<PathBuf>,
    pub mode: EncodeMode,
    /// How the segment followed the previous one in the encoders (receipts written before this field:
    /// restart, the only run there was).
    #[serde(default)]
    pub run: SegmentRun,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReceiptError {
    #[error("segment {seg_no}: transcodedDataHash does not match the rendition hashes")]
    TranscodedHash { seg_no: u64 },
    #[error("segment {seg_no}: the broadcaster signature is {len} bytes, not 65")]
    SignatureLength { seg_no: u64, len: usize },
    #[error("segment {seg_no}: {renditions} rendition hashes for {outputs} stored renditions")]
    Outputs {
        seg_no: u64,
        renditions: usize,
        outputs: usize,
    },
}

impl Receipt {
    /// A receipt from the renditions' bytes in profile order (hashes computed here).
    pub fn new<B: AsRef<[u8]>>(
        stream_id: &str,
        seg_no: u64,
        input: &[u8],
        renditions: &[B],
        broadcaster_sig: Bytes,
        mode: EncodeMode,
    ) -> Self {
        Self {
            stream_id: stream_id.to_string(),
            seg_no,
            data_hash: hashes::data_hash(input),
            rendition_hashes: renditions
                .iter()
                .map(|r| hashes::data_hash(r.as_ref()))
                .collect(),
            transcoded_data_hash: hashes::transcoded_data_hash(renditions),
            broadcaster_sig,
            input: None,
            outputs: Vec::new(),
            mode,
            run: SegmentRun::Restart,
        }
    }

    /// The same receipt, made by encoders that ran as `run` says.
    pub fn made_by(self, run: SegmentRun) -> Self {
        Self { run, ..self }
    }

    /// The claim's Merkle leaf (rule 6).
    pub fn leaf(&self) -> H256 {
        hashes::receipt_hash(
            &self.stream_id,
            self.seg_no,
            self.data_hash,
            self.transcoded_data_hash,
            &self.broadcaster_sig,
        )
    }

    /// The hashes agree with each other and the signature has its size.
    pub fn check(&self) -> Result<(), ReceiptError> {
        let seg_no = self.seg_no;
        if hashes::transcoded_data_hash_of(&self.rendition_hashes) != self.transcoded_data_hash {
            return Err(ReceiptError::TranscodedHash { seg_no });
        }
        if self.broadcaster_sig.len() != 65 {
            return Err(ReceiptError::SignatureLength {
                seg_no,
                len: self.broadcaster_sig.len(),
            });
        }
        if !self.outputs.is_empty() && self.outputs.len() != self.rendition_hashes.len() {
            return Err(ReceiptError::Outputs {
                seg_no,
                renditions: self.rendition_hashes.len(),
                outputs: self.outputs.len(),
            });
        }
        Ok(())
    }
}
