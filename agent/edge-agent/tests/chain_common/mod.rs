//! A local chain for the CLI and daemon tests, started the way an operator starts it (`edge-agent devnet`),
//! plus the real `edge-agent` binary run as a subprocess whose every output is kept, so a test can search all
//! of it for secrets.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chain::abi::AbiError;
use chain::bindings::rounds_manager as rm;
use chain::rpc::Rpc;
use chain::{Address, Bytes, Deployment, U256};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_edge-agent");

/// Everything every `edge-agent` process of this test printed.
pub static OUTPUT: Mutex<String> = Mutex::new(String::new());

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn tokens(n: u64) -> U256 {
    U256::from(n) * U256::exp10(18)
}

/// `edge-agent devnet` running in the background, and a blocking RPC client to its anvil.
pub struct Net {
    child: Child,
    pub dir: PathBuf,
    pub port: u16,
    pub rpc: Rpc,
    pub info: Value,
    pub deployment: Deployment,
    pub round_length: u64,
}

impl Net {
    pub fn start(dir: &Path, accounts: &[&str]) -> Net {
        Self::start_on(dir, free_port(), accounts, &[])
    }

    /// With deployment parameters of `contracts/deploy.sh` (e.g. `VERIFICATION_RATE`).
    pub fn start_with_params(dir: &Path, accounts: &[&str], params: &[(&str, &str)]) -> Net {
        Self::start_on(dir, free_port(), accounts, params)
    }

    fn start_on(dir: &Path, port: u16, accounts: &[&str], params: &[(&str, &str)]) -> Net {
        let mut child = Command::new(BIN)
            .args([
                "devnet",
                "--json",
                "--block-time",
                "0",
                "--port",
                &port.to_string(),
                "--dir",
            ])
            .arg(dir)
            .args(["--accounts", &accounts.join(",")])
            .env("RUST_BACKTRACE", "0")
            .envs(params.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("edge-agent devnet");
        let mut text = String::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines.by_ref() {
            let line = line.unwrap();
            text.push_str(&line);
            text.push('\n');
            if line == "}" {
                break;
            }
        }
        // keep draining so the devnet never blocks on a full pipe
        std::thread::spawn(move || for _ in lines {});
        let info: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("devnet said {text:?}: {e}"));
        let rpc = Rpc::new(info["rpc_url"].as_str().unwrap()).unwrap();
        let deployment = Deployment::load(Path::new(info["deployment"].as_str().unwrap())).unwrap();
        let mut net = Net {
            child,
            dir: dir.to_path_buf(),
            port,
            rpc,
            info,
            deployment,
            round_length: 0,
        };
        net.round_length = net
            .call(
                net.deployment.rounds_manager,
                rm::round_length(),
                rm::decode_round_length,
            )
            .as_u64();
        net
    }

    pub fn config(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.toml"))
    }

    pub fn keystore(&self, name: &str) -> PathBuf {
        self.dir.join(format!("keys/{name}.json"))
    }

    pub fn address(&self, name: &str) -> Address {
        let a = self.info["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("no account {name}"));
        a["address"].as_str().unwrap().parse().unwrap()
    }

    pub fn call<T>(&self, to: Address, data: Bytes, decode: fn(&[u8]) -> Result<T, AbiError>) -> T {
        decode(&self.rpc.call(to, &data).expect("eth_call")).expect("decode")
    }

    pub fn block(&self) -> u64 {
        self.rpc.block_number().unwrap()
    }

    pub fn round(&self) -> u64 {
        self.block() / self.round_length
    }

    pub fn mine(&self, n: u64) {
        if n > 0 {
            self.rpc.mine(n).unwrap();
        }
    }

    /// Mines up to the first block of the next round.
    pub fn next_round(&self) -> u64 {
        let b = self.block();
        let next = (b / self.round_length + 1) * self.round_length;
        self.mine(next - b);
        next / self.round_length
    }

    pub fn set_automine(&self, on: bool) {
        self.rpc.request("evm_setAutomine", json!([on])).unwrap();
    }

    /// Transactions mined from `from` (the node's nonce).
    pub fn nonce(&self, from: Address) -> u64 {
        let v = self
            .rpc
            .request("eth_getTransactionCount", json!([from, "latest"]))
            .unwrap();
        u64::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    }

    /// Every transaction `from` sent, with its receipt status, over the whole chain (nonce order).
    pub fn transactions_from(&self, from: Address) -> Vec<(u64, String, bool)> {
        let mut out = Vec::new();
        for n in 0..=self.block() {
            let b = self
                .rpc
                .request("eth_getBlockByNumber", json!([format!("0x{n:x}"), true]))
                .unwrap();
            for tx in b["transactions"].as_array().unwrap() {
                if tx["from"].as_str().unwrap().parse::<Address>().unwrap() == from {
                    let hash = tx["hash"].as_str().unwrap().to_string();
                    let r = self
                        .rpc
                        .request("eth_getTransactionReceipt", json!([hash]))
                        .unwrap();
                    let nonce = u64::from_str_radix(
                        tx["nonce"].as_str().unwrap().trim_start_matches("0x"),
                        16,
                    )
                    .unwrap();
                    out.push((nonce, hash, r["status"] == "0x1"));
                }
            }
        }
        out.sort();
        out
    }

    /// Each reverted transaction of `from`, one line apiece: nonce, hash, the block it landed in (and that
    /// block's round), the journal's label for it when `journal` can be opened (the daemon that holds it has
    /// stopped), and the contract's error replayed on the state before that block. Empty when none reverted.
    pub fn explain_reverts(&self, from: Address, journal: Option<&Path>) -> String {
        let labels: std::collections::HashMap<u64, String> = journal
            .and_then(|p| chain::journal::Journal::open(p).ok())
            .and_then(|j| j.all(from).ok())
            .map(|recs| recs.into_iter().map(|r| (r.nonce, r.label)).collect())
            .unwrap_or_default();
        let mut out = String::new();
        for (nonce, hash, ok) in self.transactions_from(from) {
            if ok {
                continue;
            }
            let tx = self
                .rpc
                .request("eth_getTransactionByHash", json!([hash]))
                .unwrap_or(Value::Null);
            let block = tx["blockNumber"]
                .as_str()
                .and_then(|b| u64::from_str_radix(b.trim_start_matches("0x"), 16).ok())
                .unwrap_or(0);
            let reason = match self.rpc.request(
                "eth_call",
                json!([{"from": from, "to": tx["to"], "data": tx["input"], "value": tx["value"]},
                    format!("0x{:x}", block.saturating_sub(1))]),
            ) {
                Ok(_) => {
                    "the call succeeds when replayed on the state before its block".to_string()
                }
                Err(e) => match e.revert_data() {
                    Some(d) => chain::revert::explain(d),
                    None => e.to_string(),
                },
            };
            let label = labels.get(&nonce).map_or("?", |l| l.as_str());
            out.push_str(&format!(
                "reverted: nonce {nonce} {label:?} {hash} in block {block} (round {}): {reason}\n",
                block / self.round_length.max(1)
            ));
        }
        out
    }

    /// kill -9 anvil (it saved its state within the last second), stop the devnet command, keep the node away
    /// for `down`, and start it again from the saved state on the same port.
    pub fn kill_anvil_and_restart(&mut self, accounts: &[&str], down: Duration) {
        // let the once-a-second state dump catch up with the last transactions
        std::thread::sleep(Duration::from_millis(2500));
        let anvil = self.info["anvil_pid"].as_u64().unwrap() as i32;
        kill(Pid::from_raw(anvil), Signal::SIGKILL).unwrap();
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(down);
        let dir = self.dir.clone();
        let restarted = Net::start_on(&dir, self.port, accounts, &[]);
        drop(std::mem::replace(self, restarted));
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `edge-agent ARGS`, keeps its output in [`OUTPUT`].
pub fn run(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let o = Command::new(BIN)
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .env_remove("RUST_LOG")
        .envs(envs.iter().copied())
        .output()
        .expect("run edge-agent");
    let mut all = OUTPUT.lock().unwrap();
    all.push_str(&String::from_utf8_lossy(&o.stdout));
    all.push_str(&String::from_utf8_lossy(&o.stderr));
    o
}

/// `edge-agent ARGS --json`, which must succeed; its JSON.
pub fn ok(args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    let o = run(&a, &[]);
    assert!(
        o.status.success(),
        "edge-agent {args:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "edge-agent {args:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

/// Registers the account of `config` as a transcoder (10 % reward cut, 50 % fee share, 1 gwei a segment).
pub fn register(config: &str) {
    ok(&[
        "transcoder",
        "register",
        "--reward-cut",
        "10",
        "--fee-share",
        "50",
        "--price",
        "1gwei",
        "-c",
        config,
    ]);
}

/// `edge-agent ARGS`, which must fail; its error text.
pub fn refused(args: &[&str]) -> String {
    let o = run(args, &[]);
    assert!(
        !o.status.success(),
        "edge-agent {args:?} succeeded: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn u256(v: &Value) -> U256 {
    match v {
        Value::String(s) if s.starts_with("0x") => U256::from_str_radix(&s[2..], 16).unwrap(),
        Value::String(s) => U256::from_dec_str(s).unwrap(),
        Value::Number(n) => U256::from(n.as_u64().unwrap()),
        other => panic!("not a number: {other}"),
    }
}

/// Waits until `f` holds (polling), or panics with `what`.
pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// GET over plain HTTP/1.1 (one request per connection); `None` while nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// PUT over plain HTTP/1.1 with extra headers; the status and the body.
pub fn http_put(port: u16, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        s,
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The value of an unlabelled Prometheus sample.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
}

/// A child process killed when the test ends, passing or failing.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A block every `every` on a devnet that mines only on transactions (elections, windows and rounds need
/// blocks to pass while the processes work); stops when dropped.
pub struct Miner {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Miner {
    pub fn start(net: &Net, every: Duration) -> Miner {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, url) = (
            stop.clone(),
            net.info["rpc_url"].as_str().unwrap().to_string(),
        );
        let thread = std::thread::spawn(move || {
            let rpc = Rpc::new(&url).unwrap();
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = rpc.mine(1);
                std::thread::sleep(every);
            }
        });
        Miner {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Miner {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `edge-agent ARGS` in the background with its output in `log` (read it with [`tail`] when a test fails).
pub fn spawn_logged(args: &[&str], envs: &[(&str, &str)], log: &Path) -> KillOnDrop {
    let f = std::fs::File::create(log).unwrap();
    KillOnDrop(
        Command::new(BIN)
            .args(args)
            .env("RUST_BACKTRACE", "0")
            .env_remove("RUST_LOG")
            .envs(envs.iter().copied())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .expect("spawn edge-agent"),
    )
}

/// The last `n` lines of a log file.
pub fn tail(log: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
