//! The `[chain]` table of the agent's configuration: where the node is, which deployment, which key.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::keeper::KeeperConfig;
use crate::keys::PasswordSource;
use crate::node::NodeOptions;
use crate::sender::SendOptions;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ChainConfig {
    /// JSON-RPC endpoint (http:// or https://). Only its scheme, host and port are ever logged.
    pub rpc_url: String,
    /// The deployment file written by `contracts/deploy.sh` (chain id and contract addresses).
    pub deployment: PathBuf,
    /// Web3 Secret Storage (v3) keystore of this box's account.
    pub keystore: PathBuf,
    /// Where the keystore password comes from: `{ file = "..." }`, `{ env = "VAR" }` or
    /// `{ credential = "name" }` (systemd `LoadCredential=`).
    pub password: PasswordSource,
    /// The transaction journal and event cursors (sled); default: `<agent.data_dir>/chain`.
    pub state_dir: Option<PathBuf>,
    /// Per-request timeout to the node, seconds.
    pub timeout_s: u64,
    /// Further attempts after a transport failure.
    pub retries: u32,
    /// Where broadcasters reach this box (e.g. `http://203.0.113.7:8935`): published in the ServiceRegistry
    /// by the daemon at start, only when the registry holds another URI. `None`: the registry is left as it is.
    pub service_uri: Option<String>,
    pub send: SendOptions,
    pub keeper: KeeperConfig,
    pub claims: ClaimsConfig,
}

/// When the daemon claims its jobs' segments, and where verifiers fetch a challenged segment's data.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimsConfig {
    /// Base URL at which this box serves challenged segments' data to verifiers (the verify transaction's
    /// dataStorageHash is `<data_url>/<job>/<segment>`); default `http://<ingest.listen>/proof`.
    pub data_url: Option<String>,
    /// Most segments in one claim.
    pub max_segments: u64,
    /// Claim the segments received so far once the oldest unclaimed one is this many blocks old.
    pub claim_after_blocks: u64,
    /// Seconds between two passes over the claims.
    pub poll_s: f64,
    /// Encode job segments in the engine's deterministic software mode (x264, one thread, no B-frames, no
    /// lookahead), so that a verifier compares the renditions bit for bit with its own re-transcode. Off:
    /// the box's encoder (hardware where there is one) and verification by fidelity.
    pub bit_exact: bool,
}

impl Default for ClaimsConfig {
    fn default() -> Self {
        Self {
            data_url: None,
            max_segments: 100,
            claim_after_blocks: 20,
            poll_s: 1.0,
            bit_exact: false,
        }
    }
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            rpc_url: "http://127.0.0.1:8545".into(),
            deployment: PathBuf::from("/etc/edge-agent/deployment.json"),
            keystore: PathBuf::from("/var/lib/edge-agent/keystore.json"),
            password: PasswordSource::Credential("keystore-password".into()),
            state_dir: None,
            timeout_s: 10,
            retries: 4,
            service_uri: None,
            send: SendOptions::default(),
            keeper: KeeperConfig::default(),
            claims: ClaimsConfig::default(),
        }
    }
}

impl ChainConfig {
    pub fn node_options(&self) -> NodeOptions {
        NodeOptions {
            timeout: Duration::from_secs(self.timeout_s.max(1)),
            retries: self.retries,
            ..Default::default()
        }
    }
}
