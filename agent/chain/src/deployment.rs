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
    /// where transcoders publish the URI their box listens on
    pub service_registry: Address,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!(
            "chain-deployment-{}-{name}.json",
            std::process::id()
        ));
        std::fs::write(&p, text).unwrap();
        p
    }

    const GOOD: &str = r#"{"bondingManager":"0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9","chainId":31337,
        "controller":"0x5FbDB2315678afecb367f032d93F642f64180aa3","deployBlock":0,
        "deployer":"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266","jobsManager":"0x5FC8d32690cc91D4c39d9d3abcBD16989F875707",
        "minter":"0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9","roundsManager":"0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0",
        "solver":"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266","token":"0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
        "verifier":"0x0165878A594ca255338adfa4d48449f69242Eb8F",
        "serviceRegistry":"0xa513E6E4b8f2a923D98304ec87F64353C4D5C853"}"#;

    #[test]
    fn loads_what_deploy_sh_writes() {
        let p = write("good", GOOD);
        let d = Deployment::load(&p).unwrap();
        assert_eq!(d.chain_id, 31337);
        assert_eq!(
            format!("{:?}", d.jobs_manager),
            "0x5fc8d32690cc91d4c39d9d3abcbd16989f875707"
        );
        assert_eq!(
            format!("{:?}", d.service_registry),
            "0xa513e6e4b8f2a923d98304ec87f64353c4d5c853"
        );
        let _ = std::fs::remove_file(p);
    }

    #[test]
    fn refuses_bad_files_with_a_clear_error() {
        let missing = Deployment::load(Path::new("/nonexistent/deployment.json")).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("reading deployment file /nonexistent/deployment.json"),
            "{missing}"
        );
        let p = write(
            "unknown",
            &GOOD.replace("\"chainId\"", "\"extra\":1,\"chainId\""),
        );
        let e = Deployment::load(&p).unwrap_err();
        assert!(e.to_string().contains("unknown field `extra`"), "{e}");
        let _ = std::fs::remove_file(p);
        let p = write(
            "missing-field",
            &GOOD.replace("\"verifier\"", "\"verifierX\""),
        );
        let e = Deployment::load(&p).unwrap_err();
        assert!(e.to_string().contains("malformed"), "{e}");
        let _ = std::fs::remove_file(p);
        let p = write(
            "bad-address",
            &GOOD.replace("0x5FbDB2315678afecb367f032d93F642f64180aa3", "0x5FbD"),
        );
        assert!(Deployment::load(&p).is_err());
        let _ = std::fs::remove_file(p);
    }
}
