//! The daemon's automation against a real anvil: across six rounds the box initializes each round (configured
//! to) and calls reward exactly once per round while it is in the active set, and not in a round where it has
//! left it; anvil is killed (kill -9) and restarted from its saved state mid-loop and the daemon is restarted
//! twice, and the chain's own receipts show nothing lost, nothing sent twice, no failed transaction. The
//! status reaches /metrics, a gas balance that will not last is warned about, and no secret is logged.

mod chain_common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chain::bindings::bonding_manager as bm;
use chain::{Address, H256};
use chain_common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;

struct Daemon {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Daemon {
    fn start(net: &Net, name: &str, log: std::path::PathBuf, extra: &[(&str, &str)]) -> Daemon {
        let port = free_port();
        let child = Command::new(BIN)
            .args(["run", "-c"])
            .arg(net.config(name))
            .env("RUST_BACKTRACE", "0")
            .env("EDGE_AGENT__INGEST__LISTEN", format!("127.0.0.1:{port}"))
            .env("EDGE_AGENT__CHAIN__KEEPER__POLL_MS", "200")
            .env("EDGE_AGENT__CHAIN__KEEPER__INITIALIZE_ROUND", "true")
            .envs(extra.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let d = Daemon { child, port, log };
        wait_for("the daemon's metrics", Duration::from_secs(60), || {
            d.metrics()
                .is_some_and(|m| metric(&m, "edge_agent_chain_connected") == Some(1.0))
        });
        d
    }

    fn metrics(&self) -> Option<String> {
        http_get(self.port, "/metrics")
    }

    fn stop(mut self) -> String {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log).unwrap()
    }
}

impl Drop for Daemon {
    // a failing assertion must not leave the daemon running
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Rounds in which `t` got a Reward event, from the chain's logs.
fn reward_rounds(net: &Net, t: Address) -> Vec<u64> {
    let logs = net
        .rpc
        .request(
            "eth_getLogs",
            json!([{
                "fromBlock": "0x0", "toBlock": "latest", "address": net.deployment.bonding_manager,
                "topics": [bm::events::Reward::TOPIC, H256::from(t)],
            }]),
        )
        .unwrap();
    logs.as_array()
        .unwrap()
        .iter()
        .map(|l| {
            u64::from_str_radix(
                l["blockNumber"].as_str().unwrap().trim_start_matches("0x"),
                16,
            )
            .unwrap()
                / net.round_length
        })
        .collect()
}

#[test]
fn daemon_rewards_once_per_round_while_active_across_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let accounts = ["transcoder", "delegator"];
    let mut net = Net::start(&tmp.path().join("devnet"), &accounts);
    let (t_cfg, d_cfg) = (net.config("transcoder"), net.config("delegator"));
    let (t_cfg, d_cfg) = (t_cfg.to_str().unwrap(), d_cfg.to_str().unwrap());
    let t = net.address("transcoder");

    net.next_round();
    ok(&["round", "init", "-c", d_cfg]);
    ok(&["bond", "500", "--to", "self", "-c", t_cfg]);
    register(t_cfg);
    ok(&["bond", "300", "--to", &format!("{t:?}"), "-c", d_cfg]);

    // a gas balance that would have to last 100000 days is "low": warned in the log and in /metrics
    let daemon = Daemon::start(
        &net,
        "transcoder",
        tmp.path().join("daemon1.log"),
        &[("EDGE_AGENT__CHAIN__KEEPER__GAS_WARN_DAYS", "100000")],
    );
    let mut expected = Vec::new();
    let wait_reward = |net: &Net, round: u64| {
        wait_for(
            &format!("reward of round {round}"),
            Duration::from_secs(60),
            || reward_rounds(net, t).contains(&round),
        );
    };
    for _ in 0..2 {
        let r = net.next_round();
        wait_reward(&net, r);
        expected.push(r);
    }
    let m = daemon.metrics().unwrap();
    assert_eq!(metric(&m, "edge_agent_chain_active"), Some(1.0));
    assert_eq!(metric(&m, "edge_agent_chain_gas_low"), Some(1.0));
    assert_eq!(
        metric(&m, "edge_agent_chain_failed_transactions_total"),
        Some(0.0)
    );

    // ---- anvil dies (kill -9), stays away longer than a request's retries, and comes back from its saved
    // state; the daemon rides it out
    net.kill_anvil_and_restart(&accounts, Duration::from_secs(6));
    let r = net.next_round();
    wait_reward(&net, r);
    expected.push(r);
    let mut logs = daemon.stop();
    assert!(
        logs.contains("gas balance will not last"),
        "gas warning logged"
    );
    assert!(
        logs.contains("node unavailable"),
        "the outage was seen and waited out"
    );

    // ---- the transcoder unbonds everything: still active this round, out of the next round's set
    ok(&["unbond", "all", "-c", t_cfg]);
    let daemon = Daemon::start(&net, "transcoder", tmp.path().join("daemon2.log"), &[]);
    let out_round = net.next_round();
    wait_for(
        "the daemon to initialize the round",
        Duration::from_secs(60),
        || {
            daemon.metrics().is_some_and(|m| {
                metric(&m, "edge_agent_chain_round") == Some(out_round as f64)
                    && metric(&m, "edge_agent_chain_round_initialized") == Some(1.0)
            })
        },
    );
    net.mine(3);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        metric(&daemon.metrics().unwrap(), "edge_agent_chain_active"),
        Some(0.0)
    );
    logs += &daemon.stop();

    // ---- back in: bond and register again; active (and rewarded) from the next round on
    ok(&["bond", "500", "--to", "self", "-c", t_cfg]);
    register(t_cfg);
    let daemon = Daemon::start(&net, "transcoder", tmp.path().join("daemon3.log"), &[]);
    let r = net.next_round();
    wait_reward(&net, r);
    expected.push(r);
    net.mine(5);
    std::thread::sleep(Duration::from_secs(2));
    let m = daemon.metrics().unwrap();
    logs += &daemon.stop();

    // ---- the chain's record: one reward per active round, none in the round out of the set
    assert_eq!(
        reward_rounds(&net, t),
        expected,
        "exactly one reward per active round"
    );
    assert!(!expected.contains(&out_round));
    assert_eq!(expected.len(), 4);
    let txs = net.transactions_from(t);
    assert!(
        txs.iter().all(|(_, _, ok)| *ok),
        "no failed transaction: {txs:?}"
    );
    assert!(
        txs.iter().enumerate().all(|(i, (n, _, _))| *n == i as u64),
        "no nonce reused or skipped: {txs:?}"
    );
    assert_eq!(
        metric(&m, "edge_agent_chain_failed_transactions_total"),
        Some(0.0)
    );
    assert!(metric(&m, "edge_agent_chain_rpc_requests_total").unwrap() > 0.0);

    let w =
        chain::keys::decrypt(&net.keystore("transcoder"), chain::devnet::DEV_PASSWORD, 1).unwrap();
    for secret in [
        hex::encode(w.signer().to_bytes()),
        chain::devnet::DEV_PASSWORD.to_string(),
    ] {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret appears in the daemon's log"
        );
    }
}
