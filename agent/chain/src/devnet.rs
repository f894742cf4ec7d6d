//! A local chain for the demo, the CLI and the tests: anvil on 127.0.0.1 with the whole contract set deployed
//! by `contracts/deploy.sh`, named accounts funded with ETH and tokens, each with an encrypted keystore, and the
//! files the other commands read (`deployment.json`, `keys/<name>.json`, `keys/password`).
//!
//! With a directory, the chain is persistent: anvil saves its state there every second and on exit, and a
//! later start (or [`Devnet::restart`]) continues from it on the same port. Without one, everything lives in a
//! temporary directory that goes away with the value. The anvil process dies with the value.
//! Needs the pinned toolchain in contracts/node_modules (`./x setup`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ethers_core::types::{Address, U256};
use ethers_signers::{LocalWallet, Signer};
use serde_json::json;

use crate::bindings::token;
use crate::deployment::Deployment;
use crate::rpc::Rpc;

/// anvil's public development keys (mnemonic "test test ... junk"), accounts 0..=3.
pub const DEV_KEYS: [&str; 4] = [
    "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
];

/// The named account that is dev account 0: the deployer and the Verifier's trusted solver.
pub const SOLVER_ACCOUNT: &str = "verifier";

/// Password of the dev keystores (a dev chain's keys are not secrets; real boxes use their own).
pub const DEV_PASSWORD: &str = "edge-devnet";

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
    #[error("devnet directory {0}: {1}")]
    Dir(String, std::io::Error),
    #[error(transparent)]
    Deployment(#[from] crate::deployment::DeploymentError),
    #[error(transparent)]
    Rpc(#[from] crate::rpc::RpcError),
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
}

#[derive(Debug, Clone)]
pub struct DevnetOptions {
    /// Persistent directory (state, deployment, keystores); `None`: a temporary one.
    pub dir: Option<PathBuf>,
    /// Port on 127.0.0.1; 0 lets anvil choose.
    pub port: u16,
    /// Mine a block every this many seconds; `None`: a block per transaction (and `anvil_mine`).
    pub block_time: Option<u64>,
    /// Accounts to create, fund and write keystores for.
    pub accounts: Vec<String>,
    /// ETH each named account gets.
    pub eth: U256,
    /// Tokens each named account gets (wei).
    pub tokens: U256,
}

impl Default for DevnetOptions {
    fn default() -> Self {
        Self {
            dir: None,
            port: 0,
            block_time: None,
            accounts: Vec::new(),
            eth: U256::exp10(20),
            tokens: U256::exp10(21),
        }
    }
}

/// A named, funded account of the devnet.
#[derive(Debug, Clone)]
pub struct DevAccount {
    pub name: String,
    pub address: Address,
    pub keystore: PathBuf,
}

pub struct Devnet {
    anvil: Child,
    pub url: String,
    pub port: u16,
    pub rpc: Rpc,
    pub deployment: Deployment,
    pub dir: PathBuf,
    pub accounts: Vec<DevAccount>,
    opts: DevnetOptions,
    _temp: Option<TempDir>,
}

/// The contracts/ directory of this checkout (`EDGE_AGENT_CONTRACTS_DIR` overrides).
pub fn contracts_dir() -> PathBuf {
    std::env::var_os("EDGE_AGENT_CONTRACTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contracts"))
}

fn anvil_bin() -> Result<PathBuf, DevnetError> {
    let p = contracts_dir().join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    if p.exists() {
        Ok(p)
    } else {
        Err(DevnetError::Toolchain(p.display().to_string()))
    }
}

impl Devnet {
    /// A throwaway chain with the contracts deployed (no named accounts): what the bindings' tests use.
    pub fn start() -> Result<Self, DevnetError> {
        Self::start_with(DevnetOptions::default())
    }

    pub fn start_with(opts: DevnetOptions) -> Result<Self, DevnetError> {
        let (dir, temp) = match &opts.dir {
            Some(d) => (d.clone(), None),
            None => {
                let t = TempDir::new()?;
                (t.0.clone(), Some(t))
            }
        };
        std::fs::create_dir_all(dir.join("keys"))
            .map_err(|e| DevnetError::Dir(dir.display().to_string(), e))?;
        let (anvil, port) = spawn_anvil(&dir, opts.port, opts.block_time, opts.dir.is_some())?;
        let url = format!("http://127.0.0.1:{port}");
        let mut net = Devnet {
            anvil,
            rpc: Rpc::new(&url)?,
            url,
            port,
            deployment: placeholder(),
            dir: dir.clone(),
            accounts: Vec::new(),
            opts,
            _temp: temp,
        };
        net.wait_ready()?;
        let deployment_file = dir.join("deployment.json");
        let reuse = deployment_file.exists() && {
            let d = Deployment::load(&deployment_file)?;
            net.rpc
                .request("eth_getCode", json!([d.controller, "latest"]))
                .ok()
                .and_then(|v| v.as_str().map(|s| s.len() > 2))
                .unwrap_or(false)
        };
        if !reuse {
            deploy(&net.url, &deployment_file)?;
        }
        net.deployment = Deployment::load(&deployment_file)?;
        for name in net.opts.accounts.clone() {
            let acct = net.account(&name, !reuse)?;
            net.accounts.push(acct);
        }
        Ok(net)
    }

    fn wait_ready(&self) -> Result<(), DevnetError> {
        let start = Instant::now();
        while self.rpc.chain_id().is_err() {
            if start.elapsed() > Duration::from_secs(10) {
                return Err(DevnetError::Anvil("anvil does not answer".into()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Creates (or finds) the keystore of `name` and, on a fresh chain, funds it with ETH and tokens. The
    /// account named [`SOLVER_ACCOUNT`] is dev account 0, the deployer and the Verifier's trusted solver.
    fn account(&self, name: &str, fund: bool) -> Result<DevAccount, DevnetError> {
        let keystore = self.dir.join("keys").join(format!("{name}.json"));
        let password = self.password_file();
        if !password.exists() {
            std::fs::write(&password, format!("{DEV_PASSWORD}\n"))
                .map_err(|e| DevnetError::Dir(password.display().to_string(), e))?;
        }
        let solver = name == SOLVER_ACCOUNT;
        let address = if keystore.exists() {
            crate::keys::decrypt(&keystore, DEV_PASSWORD, self.deployment.chain_id)?.address()
        } else if solver {
            crate::keys::import(&keystore, DEV_KEYS[0], DEV_PASSWORD)?
        } else {
            crate::keys::create(&keystore, DEV_PASSWORD)?
        };
        if fund && !solver {
            self.fund(address, self.opts.eth, self.opts.tokens)?;
        }
        Ok(DevAccount {
            name: name.into(),
            address,
            keystore,
        })
    }

    /// Gives `to` ETH (anvil_setBalance) and tokens (from the genesis holder, dev account 0).
    pub fn fund(&self, to: Address, eth: U256, tokens: U256) -> Result<(), DevnetError> {
        self.rpc.request("anvil_setBalance", json!([to, eth]))?;
        if !tokens.is_zero() {
            self.rpc.send(
                &self.wallet(0),
                self.deployment.token,
                token::transfer(to, tokens),
                U256::zero(),
            )?;
        }
        Ok(())
    }

    /// The password file of the dev keystores.
    pub fn password_file(&self) -> PathBuf {
        self.dir.join("keys/password")
    }

    pub fn deployment_file(&self) -> PathBuf {
        self.dir.join("deployment.json")
    }

    pub fn account_named(&self, name: &str) -> Option<&DevAccount> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// Dev wallet `i` (0 deployed the contracts and is the Verifier's solver), bound to this chain.
    pub fn wallet(&self, i: usize) -> LocalWallet {
        DEV_KEYS[i]
            .parse::<LocalWallet>()
            .expect("valid dev key")
            .with_chain_id(self.deployment.chain_id)
    }

    /// Process id of the anvil serving this chain.
    pub fn anvil_pid(&self) -> u32 {
        self.anvil.id()
    }

    /// Kills anvil at once (SIGKILL: no final state dump).
    pub fn kill(&mut self) {
        let _ = self.anvil.kill();
        let _ = self.anvil.wait();
    }

    /// Starts anvil again on the same port from the state it last saved (persistent devnets only).
    pub fn restart(&mut self) -> Result<(), DevnetError> {
        self.kill();
        let (anvil, _) = spawn_anvil(&self.dir, self.port, self.opts.block_time, true)?;
        self.anvil = anvil;
        self.wait_ready()
    }
}

fn spawn_anvil(
    dir: &Path,
    port: u16,
    block_time: Option<u64>,
    persist: bool,
) -> Result<(Child, u16), DevnetError> {
    let mut cmd = Command::new(anvil_bin()?);
    cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()]);
    if let Some(b) = block_time {
        cmd.args(["--block-time", &b.to_string()]);
    }
    if persist {
        cmd.arg("--state")
            .arg(dir.join("anvil-state.json"))
            .args(["--state-interval", "1"]);
    }
    let mut anvil = cmd
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
            let _ = anvil.wait();
            return Err(DevnetError::Anvil(format!(
                "anvil printed no listening address (port {port} in use?)"
            )));
        }
    };
    let port = addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| DevnetError::Anvil(format!("unexpected listening address {addr}")))?;
    Ok((anvil, port))
}

fn deploy(url: &str, out: &Path) -> Result<(), DevnetError> {
    // one deploy at a time in this process: concurrent forge runs would share contracts/{cache,out,broadcast}
    static DEPLOY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _serial = DEPLOY.lock().unwrap_or_else(|e| e.into_inner());
    let o = Command::new(contracts_dir().join("deploy.sh"))
        .args(["--rpc-url", url, "--out"])
        .arg(out)
        .output()
        .map_err(|e| DevnetError::Deploy(e.to_string()))?;
    if !o.status.success() {
        return Err(DevnetError::Deploy(
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ));
    }
    Ok(())
}

impl Drop for Devnet {
    fn drop(&mut self) {
        // SIGTERM first so a persistent anvil writes its final state
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.anvil.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = self.anvil.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
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
        service_registry: z,
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
        std::fs::create_dir_all(&p).map_err(|e| DevnetError::Dir(p.display().to_string(), e))?;
        Ok(Self(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
