//! The deployment file written by `contracts/deploy.sh`: chain id and the address of every contract.

use std::path::Path;

use ethers_core::types::Address;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Deployment {
    pub chain_id: u64,
    /// block number when the deployment started
    pub deploy_block: u64,
    pub deployer: Address,
    /// the trusted solver registered in the Verifier at deployment
    pub solver: Address,
    pub controller: Address,
    pub token: Address,
    pub rounds_manager: Address,
    pub bonding_manager: Address,
    pub minter: Address,
    pub jobs_manager: Address,
    pub verifier: Address,
}

#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    #[error("reading deployment file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("deployment file {path} is malformed: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
}

impl Deployment {
    pub fn load(path: &Path) -> Result<Self, DeploymentError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| DeploymentError::Read {
            path: p.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| DeploymentError::Parse { path: p, source })
    }
}
