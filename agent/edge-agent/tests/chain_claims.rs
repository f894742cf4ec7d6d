//! The Job -> Claim -> Verify loop end to end, on a real anvil, with the real pipeline (software encoder):
//! `edge-agent broadcast` sends signed segments to a transcoder daemon, which stores receipts, claims them
//! with Merkle roots, answers the challenges with proofs; `edge-agent verify` (the trusted solver) fetches
//! each challenged segment's bundle, measures it and calls back; the daemon distributes the fees, and the
//! transcoder withdraws them. The cheating transcoders (wrong output, an ignored challenge) are slashed.

mod chain_common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chain::bindings::{jobs_manager as jm, verifier as vf};
use chain::{Address, H256, U256};
use chain_common::*;
use serde_json::json;

const LADDER: &str = "P360p30fps16x9,P240p30fps16x9";

/// A devnet with a registered, active transcoder, its daemon, the verifier daemon and a block every 250 ms.
struct Loop {
    net: Net,
    tmp: PathBuf,
    port: u16,
    daemon: Option<KillOnDrop>,
    verifier: Option<KillOnDrop>,
    miner: Option<Miner>,
    fault: Option<&'static str>,
    /// Blocks the daemon waits before claiming what it has.
    claim_after: u64,
    /// The daemon offers bit-exact verification (deterministic software encodes).
    bit_exact: bool,
}

impl Loop {
    fn start(tmp: &Path, params: &[(&str, &str)], fault: Option<&'static str>) -> Loop {
        Self::start_with(tmp, params, fault, 6)
    }

    fn start_with(
        tmp: &Path,
        params: &[(&str, &str)],
        fault: Option<&'static str>,
        claim_after: u64,
    ) -> Loop {
        let net = Net::start_with_params(
            &tmp.join("devnet"),
            &["transcoder", "broadcaster", "verifier", "finder"],
            params,
        );
        let t_cfg = net.config("transcoder");
        let t_cfg = t_cfg.to_str().unwrap();
        net.next_round();
        ok(&["round", "init", "-c", t_cfg]);
        ok(&["bond", "500", "--to", "self", "-c", t_cfg]);
        register(t_cfg);
        net.next_round();
        ok(&["round", "init", "-c", t_cfg]);
        let mut l = Loop {
            net,
            tmp: tmp.to_path_buf(),
            port: free_port(),
            daemon: None,
            verifier: None,
            miner: None,
            fault,
            claim_after,
            bit_exact: false,
        };
        l.start_daemon(None);
        let v_cfg = l.net.config("verifier");
        let reports = tmp.join("reports");
        l.verifier = Some(spawn_logged(
            &[
                "verify",
                "-c",
                v_cfg.to_str().unwrap(),
                "--reports",
                reports.to_str().unwrap(),
                "--poll",
                "0.2",
                "--give-up-after",
                "10",
                "--log",
                "info",
            ],
            &[],
            &tmp.join("verifier.log"),
        ));
        l.miner = Some(Miner::start(&l.net, Duration::from_millis(250)));
        l
    }

    /// (Re)starts the transcoder daemon, optionally with a crash point.
    fn start_daemon(&mut self, crash_at: Option<&str>) {
        self.daemon = None;
        let t_cfg = self.net.config("transcoder");
        let listen = format!("127.0.0.1:{}", self.port);
        let claim_after = self.claim_after.to_string();
        let mut envs = vec![
            ("EDGE_AGENT__INGEST__LISTEN", listen.as_str()),
            (
                "EDGE_AGENT__MEDIA__LADDER",
                "[\"P360p30fps16x9\", \"P240p30fps16x9\"]",
            ),
            ("EDGE_AGENT__CHAIN__CLAIMS__MAX_SEGMENTS", "10"),
            (
                "EDGE_AGENT__CHAIN__CLAIMS__CLAIM_AFTER_BLOCKS",
                claim_after.as_str(),
            ),
            ("EDGE_AGENT__CHAIN__CLAIMS__POLL_S", "0.2"),
            // rounds pass every 5 s here: the box initializes them (jobs need an initialized round)
            ("EDGE_AGENT__CHAIN__KEEPER__INITIALIZE_ROUND", "true"),
            ("EDGE_AGENT__CHAIN__KEEPER__POLL_MS", "200"),
        ];
        if self.bit_exact {
            envs.push(("EDGE_AGENT__CHAIN__CLAIMS__BIT_EXACT", "true"));
        }
        if let Some(f) = self.fault {
            envs.push(("EDGE_AGENT_FAULT", f));
        }
        if let Some(c) = crash_at {
            envs.push(("EDGE_AGENT_CRASH_AT", c));
        }
        let log = self.tmp.join(format!(
            "transcoder-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
        ));
        self.daemon = Some(spawn_logged(
            &["run", "-c", t_cfg.to_str().unwrap()],
            &envs,
            &log,
        ));
        if crash_at.is_none() {
            let port = self.port;
            wait_for("the transcoder daemon", Duration::from_secs(60), || {
                http_get(port, "/healthz").is_some()
            });
        }
    }

    fn broadcast(&self, stream: &str, seconds: u32) -> u64 {
        let b_cfg = self.net.config("broadcaster");
        let v = ok(&[
            "broadcast",
            "-c",
            b_cfg.to_str().unwrap(),
            "--stream",
            stream,
            "--duration",
            &seconds.to_string(),
            "--ladder",
            LADDER,
            "--max-price",
            "2gwei",
            "--transcoder",
            &format!("http://127.0.0.1:{}", self.port),
            "--out",
            self.tmp.join("hls").to_str().unwrap(),
        ]);
        assert_eq!(v["segments"], seconds / 2, "{v}");
        v["job_id"].as_u64().unwrap()
    }

    fn job(&self, job: u64) -> jm::GetJobOutput {
        self.net.call(
            self.net.deployment.jobs_manager,
            jm::get_job(job.into()),
            jm::decode_get_job,
        )
    }

    fn claims(&self, job: u64) -> Vec<jm::GetClaimOutput> {
        let n = self.job(job).total_claims.as_u64();
        (0..n)
            .map(|i| {
                self.net.call(
                    self.net.deployment.jobs_manager,
                    jm::get_claim(job.into(), i.into()),
                    jm::decode_get_claim,
                )
            })
            .collect()
    }

    /// Waits until the claims cover segments 0..segments and every one is settled (complete or slashed).
    fn wait_settled(&self, job: u64, segments: u64, timeout: Duration) -> Vec<jm::GetClaimOutput> {
        let start = Instant::now();
        loop {
            let last = self.claims(job);
            let covered: u64 = last
                .iter()
                .map(|c| (c.last_segment - c.first_segment).as_u64() + 1)
                .sum();
            if covered == segments && last.iter().all(|c| c.status >= 2) {
                return last;
            }
            if start.elapsed() > timeout {
                panic!(
                    "job {job}: claims not settled in {timeout:?}: {last:?}\n--- transcoder\n{}\n--- verifier\n{}",
                    self.daemon_log_tail(),
                    tail(&self.tmp.join("verifier.log"), 40)
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The transcoder daemons' logs, oldest first (one per start).
    fn daemon_logs(&self) -> Vec<PathBuf> {
        let mut logs: Vec<_> = std::fs::read_dir(&self.tmp)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().contains("transcoder-"))
            .collect();
        logs.sort();
        logs
    }

    fn daemon_log_tail(&self) -> String {
        self.daemon_logs()
            .iter()
            .map(|p| tail(p, 40))
            .collect::<Vec<_>>()
            .join("\n---\n")
    }

    /// The transcoders' log lines about challenges and transactions (the tail alone is the keeper's rounds).
    fn daemon_proof_lines(&self) -> String {
        let logs = self.daemon_logs();
        let words = [
            "challenge",
            "verif",
            "claim",
            "transaction",
            "WARN",
            "ERROR",
        ];
        let lines: Vec<String> = logs
            .iter()
            .flat_map(|p| {
                std::fs::read_to_string(p)
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| words.iter().any(|w| l.contains(w)))
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        lines[lines.len().saturating_sub(80)..].join("\n")
    }

    fn logs(&self, address: Address, topic: H256) -> Vec<serde_json::Value> {
        self.net
            .rpc
            .request(
                "eth_getLogs",
                json!([{"fromBlock": "0x0", "toBlock": "latest", "address": address, "topics": [topic]}]),
            )
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    fn decode<T>(
        l: &serde_json::Value,
        f: fn(&[H256], &[u8]) -> Result<T, chain::abi::AbiError>,
    ) -> T {
        let topics: Vec<H256> = l["topics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().parse().unwrap())
            .collect();
        let data: chain::Bytes = l["data"].as_str().unwrap().parse().unwrap();
        f(&topics, &data).unwrap()
    }

    fn metrics(&self) -> String {
        http_get(self.port, "/metrics").unwrap_or_default()
    }

    fn bonded(&self, who: Address) -> U256 {
        use chain::bindings::bonding_manager as bm;
        self.net
            .call(
                self.net.deployment.bonding_manager,
                bm::get_delegator(who),
                bm::decode_get_delegator,
            )
            .bonded_amount
    }

    fn deposit(&self, who: Address) -> U256 {
        self.net
            .call(
                self.net.deployment.jobs_manager,
                jm::broadcasters(who),
                jm::decode_broadcasters,
            )
            .deposit
    }

    /// Rule 8 with the hash of block `claim_block + 1` from the node (the contract's view only sees the
    /// last 256 blocks).
    fn is_challenged(&self, claim_block: U256, seg: u64) -> bool {
        let n = claim_block.as_u64() + 1;
        let b = self
            .net
            .rpc
            .request("eth_getBlockByNumber", json!([format!("0x{n:x}"), false]))
            .unwrap();
        let hash: H256 = b["hash"].as_str().unwrap().parse().unwrap();
        let rate = self
            .net
            .call(
                self.net.deployment.jobs_manager,
                jm::verification_rate(),
                jm::decode_verification_rate,
            )
            .as_u64();
        chain::hashes::is_challenged(n - 1, hash, seg, rate)
    }
}

fn gwei(n: u64) -> U256 {
    U256::from(n) * U256::exp10(9)
}

#[test]
fn a_job_is_claimed_challenged_verified_and_paid() {
    let tmp = tempfile::tempdir().unwrap();
    // A block every 250 ms makes the deployment's 30-block verification window 7.5 s, and a debug-built
    // daemon on a loaded 2-core machine has left a challenged segment without its verify in it. This test is
    // about the whole loop, so the window is 30 s here; a missed window is what
    // `an_ignored_challenge_is_slashed_by_a_finder_who_earns_the_fee` tests.
    let l = Loop::start(tmp.path(), &[("VERIFICATION_PERIOD", "120")], None);
    let (t, b) = (l.net.address("transcoder"), l.net.address("broadcaster"));
    let job = l.broadcast("cam1", 60);
    let claims = l.wait_settled(job, 30, Duration::from_secs(300));

    // contiguous claims of at most 10 segments, each with its receipts' Merkle root, all complete
    let mut next = U256::zero();
    for c in &claims {
        assert_eq!(c.first_segment, next, "{claims:?}");
        assert!(c.last_segment - c.first_segment < U256::from(10));
        assert_eq!(c.status, 3, "complete: {claims:?}");
        next = c.last_segment + 1;
    }
    // every challenged segment (rule 8, as the contract evaluates it) was answered and passed
    let challenged: Vec<(u64, u64)> = claims
        .iter()
        .enumerate()
        .flat_map(|(id, c)| {
            (c.first_segment.as_u64()..=c.last_segment.as_u64())
                .filter(|s| l.is_challenged(c.claim_block, *s))
                .map(move |s| (id as u64, s))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(!challenged.is_empty(), "1 in 2 segments is challenged");
    let jmx = l.net.deployment.jobs_manager;
    let passed = || {
        let mut p: Vec<(u64, u64)> = l
            .logs(jmx, jm::events::PassedVerification::TOPIC)
            .iter()
            .map(|x| Loop::decode(x, jm::events::PassedVerification::decode))
            .map(|e| (e.claim_id.as_u64(), e.segment_number.as_u64()))
            .collect();
        p.sort();
        p
    };
    // the verifier's answers have no deadline: they may come after a claim's fees were distributed (a
    // failure then still slashes)
    let start = Instant::now();
    while passed().len() < challenged.len() {
        if start.elapsed() > Duration::from_secs(180) {
            let got = passed();
            let missing: Vec<_> = challenged.iter().filter(|c| !got.contains(c)).collect();
            // whether the transcoder's verify was mined (then the verifier is behind) or not
            let submitted: Vec<(u64, u64)> = l
                .logs(jmx, jm::events::Verify::TOPIC)
                .iter()
                .map(|x| Loop::decode(x, jm::events::Verify::decode))
                .map(|e| (e.claim_id.as_u64(), e.segment_number.as_u64()))
                .collect();
            panic!(
                "timed out waiting for every verdict: no PassedVerification for (claim, segment) {missing:?}; verify mined for {submitted:?}\n{}--- transcoder\n{}\n--- verifier\n{}",
                l.net.explain_reverts(t, None),
                l.daemon_proof_lines(),
                tail(&tmp.path().join("verifier.log"), 60)
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(passed(), challenged);
    assert!(
        l.logs(jmx, jm::events::FailedVerification::TOPIC)
            .is_empty()
            && l.logs(jmx, jm::events::ClaimSlashed::TOPIC).is_empty(),
        "no failure, no slash"
    );
    // the solver's verdicts: fidelity mode, the claimed hash, a non-negative margin, a report on disk
    let callbacks: Vec<vf::events::Callback> = l
        .logs(l.net.deployment.verifier, vf::events::Callback::TOPIC)
        .iter()
        .map(|x| Loop::decode(x, vf::events::Callback::decode))
        .collect();
    assert_eq!(callbacks.len(), challenged.len());
    for cb in &callbacks {
        assert!(
            cb.result && cb.mode == 1 && cb.score >= chain::I256::zero(),
            "{cb:?}"
        );
        assert_eq!(cb.computed_hash, cb.claimed_hash);
        let report =
            std::fs::read(tmp.path().join(format!("reports/{}.json", cb.request_id))).unwrap();
        assert_eq!(chain::hashes::data_hash(&report), cb.report_hash);
    }

    // fees: 30 segments x 2 profiles x the transcoder's 1 gwei, escrowed from the deposit, all distributed
    let fees: U256 = l
        .logs(jmx, jm::events::DistributeFees::TOPIC)
        .iter()
        .map(|x| Loop::decode(x, jm::events::DistributeFees::decode).fees)
        .fold(U256::zero(), |a, b| a + b);
    assert_eq!(fees, gwei(60));
    assert_eq!(l.job(job).escrow, U256::zero());
    assert_eq!(
        l.deposit(b),
        gwei(120) - gwei(60),
        "the deposit covered 30 x 2 at the 2 gwei max price; the claims took 60 gwei"
    );

    // kept data is deleted once no challenge can come; the metrics say what happened
    let kept = l.net.dir.join(format!("transcoder/proof/kept/{job}"));
    wait_for("kept bundles deleted", Duration::from_secs(30), || {
        std::fs::read_dir(&kept).map_or(true, |d| d.count() == 0)
    });
    let m = l.metrics();
    assert_eq!(
        metric(&m, "edge_agent_proof_verifications_passed_total"),
        Some(challenged.len() as f64),
        "{m}"
    );
    assert_eq!(
        metric(&m, "edge_agent_proof_claims_mined_total"),
        Some(claims.len() as f64)
    );
    assert_eq!(
        metric(&m, "edge_agent_proof_claims_slashed_total"),
        Some(0.0)
    );
    assert_eq!(
        metric(&m, "edge_agent_proof_kept_segments_released_total"),
        Some(30.0)
    );

    // the transcoder (the only stake: its cut and its delegators' share) withdraws exactly the fees
    let mut l = l;
    l.daemon = None;
    l.miner = None;
    l.net.next_round();
    let t_cfg = l.net.config("transcoder");
    let t_cfg = t_cfg.to_str().unwrap();
    ok(&["round", "init", "-c", t_cfg]);
    ok(&["claim-earnings", "-c", t_cfg]);
    let before = l.net.rpc.balance(t).unwrap();
    let o = run(
        &["withdraw-fees", "-c", t_cfg, "--json", "--log", "debug"],
        &[],
    );
    let journal = l.net.dir.join("transcoder/chain/journal");
    if !o.status.success() {
        eprint!("{}", l.net.explain_reverts(t, Some(&journal)));
        let j = chain::journal::Journal::open(&journal).unwrap();
        for r in j.all(t).unwrap().iter().rev().take(6) {
            eprintln!(
                "journal: {} {} {:?} {:?}",
                r.nonce,
                r.label,
                r.state,
                r.latest().hash
            );
        }
        for x in l.net.transactions_from(t).iter().rev().take(6) {
            eprintln!("chain: {x:?}");
        }
        panic!("{}", String::from_utf8_lossy(&o.stderr));
    }
    let w: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let tx = &w["transactions"][0];
    let gas = u256(&tx["gas_used"]) * u256(&tx["effective_gas_price"]);
    let after = l.net.rpc.balance(t).unwrap();
    assert_eq!(after + gas - before, fees, "{w}");
    // every transaction of the transcoder succeeded, in nonce order without gaps
    let txs = l.net.transactions_from(t);
    assert!(
        txs.iter().all(|x| x.2),
        "{}--- transcoder\n{}",
        l.net.explain_reverts(t, Some(&journal)),
        l.daemon_log_tail()
    );
    assert_eq!(
        txs.iter().map(|x| x.0).collect::<Vec<_>>(),
        (0..txs.len() as u64).collect::<Vec<_>>()
    );
}

#[test]
fn wrong_output_fails_verification_and_is_slashed() {
    let tmp = tempfile::tempdir().unwrap();
    let l = Loop::start(
        tmp.path(),
        &[("VERIFICATION_RATE", "1")],
        Some("wrong-output"),
    );
    let (t, b) = (l.net.address("transcoder"), l.net.address("broadcaster"));
    let bond = l.bonded(t);
    let job = l.broadcast("cam2", 6);
    let claims = l.wait_settled(job, 3, Duration::from_secs(240));
    assert!(claims.iter().all(|c| c.status == 2), "slashed: {claims:?}");
    let jmx = l.net.deployment.jobs_manager;
    assert!(
        !l.logs(jmx, jm::events::FailedVerification::TOPIC)
            .is_empty()
    );
    let callbacks: Vec<vf::events::Callback> = l
        .logs(l.net.deployment.verifier, vf::events::Callback::TOPIC)
        .iter()
        .map(|x| Loop::decode(x, vf::events::Callback::decode))
        .collect();
    assert!(
        callbacks
            .iter()
            .any(|c| !c.result && c.score < chain::I256::zero()),
        "{callbacks:?}"
    );
    // the escrow went back to the broadcaster; the transcoder's own bond lost failedVerificationSlashAmount
    assert_eq!(
        l.deposit(b),
        gwei(12),
        "3 segments x 2 profiles x 2 gwei, all refunded"
    );
    let slash = l.net.call(
        jmx,
        jm::failed_verification_slash_amount(),
        jm::decode_failed_verification_slash_amount,
    );
    let expected = claims
        .iter()
        .fold(bond, |b, _| b - b * slash / U256::from(1_000_000u64));
    assert_eq!(l.bonded(t), expected, "one slash per failed claim");
    // the daemon learns of it from the chain's events, which its watcher may not have read yet
    let counted = |m: &str| {
        metric(m, "edge_agent_proof_verifications_failed_total").unwrap_or(0.0) >= 1.0
            && metric(m, "edge_agent_proof_claims_slashed_total").unwrap_or(0.0) >= 1.0
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut m = l.metrics();
    while !counted(&m) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        m = l.metrics();
    }
    assert!(
        counted(&m),
        "the daemon did not count the failed verification and the slash in 60 s:\n{m}"
    );
}

#[test]
fn an_ignored_challenge_is_slashed_by_a_finder_who_earns_the_fee() {
    let tmp = tempfile::tempdir().unwrap();
    let l = Loop::start(
        tmp.path(),
        &[("VERIFICATION_RATE", "1")],
        Some("ignore-challenges"),
    );
    let (t, b, f) = (
        l.net.address("transcoder"),
        l.net.address("broadcaster"),
        l.net.address("finder"),
    );
    let bond = l.bonded(t);
    let job = l.broadcast("cam3", 2);
    let jmx = l.net.deployment.jobs_manager;
    // the claim is mined; nothing is submitted in its verification window
    wait_for("the claim", Duration::from_secs(120), || {
        l.claims(job).len() == 1
    });
    let c = &l.claims(job)[0];
    let f_cfg = l.net.config("finder");
    let f_cfg = f_cfg.to_str().unwrap();
    let early = refused(&["slash-missed", "--job", &job.to_string(), "-c", f_cfg]);
    assert!(
        early.contains("no claim has a challenged segment left unverified"),
        "{early}"
    );
    wait_for("the slashing window", Duration::from_secs(60), || {
        U256::from(l.net.block()) >= c.end_verification_block
    });
    let token_before = l.net.call(
        l.net.deployment.token,
        chain::bindings::token::balance_of(f),
        chain::bindings::token::decode_balance_of,
    );
    ok(&["slash-missed", "--job", &job.to_string(), "-c", f_cfg]);
    let slashed: Vec<jm::events::ClaimSlashed> = l
        .logs(jmx, jm::events::ClaimSlashed::TOPIC)
        .iter()
        .map(|x| Loop::decode(x, jm::events::ClaimSlashed::decode))
        .collect();
    assert_eq!(slashed.len(), 1);
    assert_eq!(slashed[0].finder, f);
    assert_eq!(
        slashed[0].refund,
        gwei(2),
        "1 segment x 2 profiles x 1 gwei back to the broadcaster"
    );
    assert_eq!(l.deposit(b), gwei(4), "the whole deposit is back");
    let amount = l.net.call(
        jmx,
        jm::missed_verification_slash_amount(),
        jm::decode_missed_verification_slash_amount,
    );
    let fee = l.net.call(jmx, jm::finder_fee(), jm::decode_finder_fee);
    let penalty = bond * amount / U256::from(1_000_000u64);
    assert_eq!(l.bonded(t), bond - penalty);
    let token_after = l.net.call(
        l.net.deployment.token,
        chain::bindings::token::balance_of(f),
        chain::bindings::token::decode_balance_of,
    );
    assert_eq!(
        token_after - token_before,
        penalty * fee / U256::from(1_000_000u64)
    );
    // the daemon learns of it
    wait_for(
        "the daemon records the slash",
        Duration::from_secs(30),
        || metric(&l.metrics(), "edge_agent_proof_claims_slashed_total") == Some(1.0),
    );
}

/// kill -9 (an abort at a crash point) at each stage of the claim life cycle, each followed by a restart:
/// the job still completes with every receipt claimed, every challenge answered, nothing slashed. The box
/// offers bit-exact verification here: the verifier re-transcodes each segment and matches every byte.
#[test]
fn kill_9_at_every_claim_stage_loses_nothing_and_is_never_slashed() {
    let tmp = tempfile::tempdir().unwrap();
    let mut l = Loop::start_with(tmp.path(), &[("VERIFICATION_RATE", "1")], None, 40);
    l.bit_exact = true;
    l.start_daemon(None);
    let t = l.net.address("transcoder");
    // the segments are all in (receipts stored) before the first claim is due
    let job = l.broadcast("cam4", 8);
    for point in [
        "before-claim",
        "after-claim-sent",
        "mid-verify",
        "mid-distribute",
    ] {
        l.start_daemon(Some(point));
        let d = &mut l.daemon.as_mut().unwrap().0;
        let start = Instant::now();
        loop {
            if let Some(status) = d.try_wait().unwrap() {
                assert!(!status.success(), "{point}: aborted");
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(180),
                "the daemon never reached {point}:\n{}\n--- verifier\n{}",
                l.daemon_log_tail(),
                tail(&tmp.path().join("verifier.log"), 30)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    l.start_daemon(None);
    let claims = l.wait_settled(job, 4, Duration::from_secs(240));
    assert!(claims.iter().all(|c| c.status == 3), "complete: {claims:?}");
    let jmx = l.net.deployment.jobs_manager;
    let mut passed: Vec<u64> = l
        .logs(jmx, jm::events::PassedVerification::TOPIC)
        .iter()
        .map(|x| {
            Loop::decode(x, jm::events::PassedVerification::decode)
                .segment_number
                .as_u64()
        })
        .collect();
    passed.sort();
    assert_eq!(
        passed,
        vec![0, 1, 2, 3],
        "every segment challenged and verified once"
    );
    assert!(l.logs(jmx, jm::events::ClaimSlashed::TOPIC).is_empty());
    let callbacks: Vec<vf::events::Callback> = l
        .logs(l.net.deployment.verifier, vf::events::Callback::TOPIC)
        .iter()
        .map(|x| Loop::decode(x, vf::events::Callback::decode))
        .collect();
    assert_eq!(callbacks.len(), 4);
    assert!(
        callbacks
            .iter()
            .all(|c| c.result && c.mode == 0 && c.computed_hash == c.claimed_hash),
        "bit-exact verdicts: {callbacks:?}"
    );
    let fees: U256 = l
        .logs(jmx, jm::events::DistributeFees::TOPIC)
        .iter()
        .map(|x| Loop::decode(x, jm::events::DistributeFees::decode).fees)
        .fold(U256::zero(), |a, b| a + b);
    assert_eq!(fees, gwei(8), "4 segments x 2 profiles x 1 gwei");
    let txs = l.net.transactions_from(t);
    assert!(
        txs.iter().all(|x| x.2),
        "no transaction reverted:\n{}",
        l.net.explain_reverts(t, None)
    );
}
