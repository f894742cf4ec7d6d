//! A throwaway local chain for tests, examples and the gas report: a fresh anvil on 127.0.0.1 (port chosen by
//! anvil) with the whole contract set deployed by `contracts/deploy.sh`. The anvil process dies with the value.
//! Needs the pinned toolchain in contracts/node_modules (`./x setup`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ethers_signers::{LocalWallet, Signer};

use crate::deployment::Deployment;
use crate::rpc::Rpc;

/// anvil's public development keys (mnemonic "test test ... junk"), accounts 0..=3.
pub const DEV_KEYS: [&str; 4] = [
    "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
];

#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    #[error(
        "{0} is missing: run ./x setup (scripts/setup.d/20-contracts.sh installs the contracts toolchain)"
    )]
    Toolchain(String),
    #[error("starting anvil: {0}")]
    Anvil(String),
    #[error("contracts/deploy.sh failed: {0}")]
    Deploy(String),
    #[error(transparent)]
    Deployment(#[from] crate::deployment::DeploymentError),
    #[error(transparent)]
    Rpc(#[from] crate::rpc::RpcError),
}

pub struct Devnet {
    anvil: Child,
    pub url: String,
    pub rpc: Rpc,
    pub deployment: Deployment,
    _dir: TempDir,
}

/// The contracts/ directory of this checkout.
pub fn contracts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contracts")
}

impl Devnet {
    pub fn start() -> Result<Self, DevnetError> {
        let contracts = contracts_dir();
        let anvil_bin = contracts.join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
        if !anvil_bin.exists() {
            return Err(DevnetError::Toolchain(anvil_bin.display().to_string()));
        }
        let mut anvil = Command::new(&anvil_bin)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| DevnetError::Anvil(e.to_string()))?;
        let stdout = anvil.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("Listening on ") {
                    let _ = tx.send(rest.trim().to_string());
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a,
            Err(_) => {
                let _ = anvil.kill();
                return Err(DevnetError::Anvil(
                    "anvil printed no listening address".into(),
                ));
            }
        };
        let url = format!("http://{addr}");
        let dir = TempDir::new()?;
        let out = dir.0.join("deployment.json");
        let mut net = Devnet {
            anvil,
            rpc: Rpc::new(&url)?,
            url,
            deployment: placeholder(),
            _dir: dir,
        };
        let start = Instant::now();
        while net.rpc.chain_id().is_err() {
            if start.elapsed() > Duration::from_secs(10) {
                return Err(DevnetError::Anvil("anvil does not answer".into()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // one deploy at a time in this process: concurrent forge runs would share contracts/{cache,out,broadcast}
        static DEPLOY: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _serial = DEPLOY.lock().unwrap_or_else(|e| e.into_inner());
        let o = Command::new(contracts.join("deploy.sh"))
            .args(["--rpc-url", &net.url, "--out"])
            .arg(&out)
            .output()
            .map_err(|e| DevnetError::Deploy(e.to_string()))?;
        if !o.status.success() {
            return Err(DevnetError::Deploy(
                String::from_utf8_lossy(&o.stderr).into_owned(),
            ));
        }
        net.deployment = Deployment::load(&out)?;
        Ok(net)
    }

    /// Dev wallet `i` (0 deployed the contracts and is the Verifier's solver), bound to this chain.
    pub fn wallet(&self, i: usize) -> LocalWallet {
        DEV_KEYS[i]
            .parse::<LocalWallet>()
            .expect("valid dev key")
            .with_chain_id(self.deployment.chain_id)
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = self.anvil.kill();
        let _ = self.anvil.wait();
    }
}

fn placeholder() -> Deployment {
    let z = Default::default();
    Deployment {
        chain_id: 0,
        deploy_block: 0,
        deployer: z,
        solver: z,
        controller: z,
        token: z,
        rounds_manager: z,
        bonding_manager: z,
        minter: z,
        jobs_manager: z,
        verifier: z,
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self, DevnetError> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let p = std::env::temp_dir().join(format!("chain-devnet-{}-{stamp}", std::process::id()));
        std::fs::create_dir_all(&p).map_err(|e| DevnetError::Anvil(e.to_string()))?;
        Ok(Self(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
