//! Fetching a challenged segment's proof bundle (`proof::bundle`) from the URL in the verify transaction's
//! dataStorageHash. Nothing fetched is trusted: the manifest is checked against the chain's dataHash and
//! transcodedDataHash, the input against dataHash, each rendition against its hash.

use std::time::Duration;

use chain::H256;
use proof::bundle::{self, BundleError, Manifest};

/// A proof bundle whose every byte matches the hashes on chain.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub manifest: Manifest,
    pub input: Vec<u8>,
    /// In the job's profile order.
    pub renditions: Vec<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The transcoder's data is unreachable (may be transient: tried again before it counts against it).
    #[error("fetching {url}: {detail}")]
    Unreachable { url: String, detail: String },
    /// What the transcoder serves is not what it claimed: final.
    #[error("{url}: {source}")]
    Bad { url: String, source: BundleError },
    #[error("dataStorageHash {0:?} is not an http(s) URL")]
    NotAUrl(String),
}

impl FetchError {
    /// The transcoder served something that contradicts its claim (as opposed to nothing at all, yet).
    pub fn is_final(&self) -> bool {
        matches!(self, FetchError::Bad { .. } | FetchError::NotAUrl(_))
    }
}

/// The challenged segment, as the Verifier's request names it.
#[derive(Debug, Clone, Copy)]
pub struct Challenge {
    pub job_id: u64,
    pub seg_no: u64,
    pub data_hash: H256,
    pub transcoded_data_hash: H256,
}

pub struct Fetcher {
    http: reqwest::Client,
    /// Largest file accepted (a segment of a few seconds; anything far larger is not a segment).
    max_bytes: usize,
}

impl Fetcher {
    pub fn new(timeout: Duration) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .expect("a client with a timeout and rustls builds"),
            max_bytes: 64 << 20,
        }
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let unreachable = |detail: String| FetchError::Unreachable {
            url: url.to_string(),
            detail,
        };
        let mut resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(unreachable(format!("HTTP {}", resp.status())));
        }
        let mut out = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| unreachable(e.to_string()))? {
            if out.len() + chunk.len() > self.max_bytes {
                return Err(FetchError::Bad {
                    url: url.to_string(),
                    source: BundleError::Malformed(format!("larger than {} bytes", self.max_bytes)),
                });
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// The bundle at `data_storage_hash` for `c`, checked file by file.
    pub async fn bundle(
        &self,
        data_storage_hash: &str,
        c: &Challenge,
    ) -> Result<Bundle, FetchError> {
        let base = data_storage_hash.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(FetchError::NotAUrl(data_storage_hash.into()));
        }
        let bad = |url: String| move |source| FetchError::Bad { url, source };
        let url = format!("{base}/{}", bundle::MANIFEST);
        let manifest = Manifest::parse(&self.get(&url).await?).map_err(bad(url.clone()))?;
        manifest
            .check(c.job_id, c.seg_no, c.data_hash, c.transcoded_data_hash)
            .map_err(bad(url))?;
        let url = format!("{base}/{}", bundle::INPUT);
        let input = self.get(&url).await?;
        bundle::check_file(bundle::INPUT, &input, c.data_hash).map_err(bad(url))?;
        let mut renditions = Vec::new();
        for (i, want) in manifest.rendition_hashes.iter().enumerate() {
            let name = bundle::rendition_file(i);
            let url = format!("{base}/{name}");
            let r = self.get(&url).await?;
            bundle::check_file(&name, &r, *want).map_err(bad(url))?;
            renditions.push(r);
        }
        Ok(Bundle {
            manifest,
            input,
            renditions,
        })
    }
}
