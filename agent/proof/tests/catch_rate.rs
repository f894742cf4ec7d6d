//! Catch-rate simulation on a real anvil with the real contracts: a transcoder that fakes `k` of the `n`
//! segments of every claim is caught (a failed verification slashes the claim) exactly when the challenge rule
//! (hash rule 8) picks one of its fakes, so with 1-in-`v` challenges a claim goes uncaught with probability
//! `(1 - 1/v)^k`. Every claim here is real: receipts signed by the broadcaster's wallet, a sorted-pair Merkle
//! root, `claimWork`, `verify` of every challenged segment with its proof, and the trusted solver's bit-exact
//! verdict (`callback`, mode 0: passed iff the honest re-encode's hash equals the claimed one). No media: a
//! segment's "honest rendition" is a deterministic byte string the solver can recompute.
//!
//! Checked: per claim, slashed == (a fake segment was challenged), so no honest claim and no uncaught
//! fake claim is ever slashed (0 false slashes) and none that should be is missed; over all claims of a
//! setting, the observed catch count lies within the 99.9 % binomial band `M p ± 3.29 sqrt(M p (1 - p))`
//! (normal approximation). The block hashes (the challenges' randomness) differ from run to run, so the
//! band is a statistical check: about 1 run in 1000 per setting falls outside it by chance.

use std::path::Path;
use std::time::Instant;

use chain::claims::{ClaimEvent, ClaimStatus, Verdict, VerifyRequest};
use chain::devnet::{Devnet, DevnetOptions};
use chain::hashes::{self, MerkleTree};
use chain::keys::PasswordSource;
use chain::ops::{self, Client};
use chain::sender::SendOptions;
use chain::{Bytes, ChainConfig, H256, U256};
use proof::{EncodeMode, Receipt};

const STREAM: &str = "catch-rate";
/// Segments per claim.
const N: u64 = 8;
/// 99.9 % two-sided normal quantile.
const Z: f64 = 3.29;
const PROFILES: [&str; 1] = ["P240p30fps16x9"];

/// One setting: `claims` claims of `N` segments, `fakes` of them faked in each.
#[derive(Debug, Clone, Copy)]
struct Setting {
    fakes: u64,
    claims: u64,
}

/// What became of one claim.
#[derive(Debug)]
struct Outcome {
    claim_id: u64,
    fake_positions: Vec<u64>,
    challenged: Vec<u64>,
    slashed: bool,
    passed: u64,
    failed: u64,
}

impl Outcome {
    fn fake_challenged(&self) -> bool {
        self.challenged
            .iter()
            .any(|s| self.fake_positions.contains(s))
    }
}

fn gwei(n: u64) -> U256 {
    U256::from(n) * U256::exp10(9)
}

fn tokens(n: u64) -> U256 {
    U256::from(n) * U256::exp10(18)
}

/// The input bytes of segment `seg` (what the broadcaster signed).
fn input(seg: u64) -> Vec<u8> {
    format!("input segment {seg} of {STREAM}").into_bytes()
}

/// The honest rendition of segment `seg`: what a bit-exact re-encode gives, known to the solver.
fn honest_rendition(seg: u64) -> Vec<u8> {
    format!("honest rendition of segment {seg}").into_bytes()
}

/// A small deterministic generator (xorshift64*) to place the fakes inside each claim.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `k` distinct offsets in `0..n`.
    fn pick(&mut self, k: u64, n: u64) -> Vec<u64> {
        let mut all: Vec<u64> = (0..n).collect();
        for i in (1..all.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            all.swap(i, j);
        }
        let mut out = all[..k as usize].to_vec();
        out.sort_unstable();
        out
    }
}

/// Starts anvil with the contracts deployed at `VERIFICATION_RATE = rate` (one deployment at a time in this
/// process: the rate travels to `contracts/deploy.sh` through the environment).
fn devnet(rate: u64) -> Devnet {
    static ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _held = ENV.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: the only environment writes of this test binary are here, under the lock, and no other thread
    // of this process reads the environment while the deployment runs.
    unsafe { std::env::set_var("VERIFICATION_RATE", rate.to_string()) };
    let net = Devnet::start_with(DevnetOptions {
        accounts: vec!["transcoder".into(), "broadcaster".into(), "verifier".into()],
        ..Default::default()
    });
    // SAFETY: as above.
    unsafe { std::env::remove_var("VERIFICATION_RATE") };
    net.unwrap_or_else(|e| panic!("starting the devnet (VERIFICATION_RATE={rate}): {e}"))
}

async fn connect(net: &Devnet, name: &str, state: &Path) -> Client {
    let acct = net
        .account_named(name)
        .unwrap_or_else(|| panic!("devnet account {name}"));
    let cfg = ChainConfig {
        rpc_url: net.url.clone(),
        deployment: net.deployment_file(),
        keystore: acct.keystore.clone(),
        password: PasswordSource::File(net.password_file()),
        send: SendOptions {
            poll_ms: 20,
            ..Default::default()
        },
        ..Default::default()
    };
    ops::connect(&cfg, &state.join(name))
        .await
        .unwrap_or_else(|e| panic!("connecting {name}: {e}"))
}

/// Mines up to the first block of the next round.
async fn next_round(net: &Devnet, c: &Client) {
    let len = c.proto.round_length().await.expect("roundLength");
    let b = net.rpc.block_number().expect("block number");
    net.rpc.mine((b / len + 1) * len - b).expect("anvil_mine");
}

/// The chain, its three parties, and one job whose transcoder is the bonded, registered, active
/// "transcoder" (the only active one, so the first claim elects it).
struct World {
    net: Devnet,
    _state: tempfile::TempDir,
    transcoder: Client,
    broadcaster: Client,
    solver: Client,
    job: u64,
    rate: u64,
    next_seg: u64,
    claim_gas: Vec<U256>,
}

impl World {
    async fn start(rate: u64) -> World {
        let net = devnet(rate);
        let state = tempfile::tempdir().expect("tempdir");
        let t = connect(&net, "transcoder", state.path()).await;
        let b = connect(&net, "broadcaster", state.path()).await;
        let solver = connect(&net, "verifier", state.path()).await;
        assert_eq!(
            solver.address(),
            net.deployment.solver,
            "the devnet's \"verifier\" account is the Verifier's trusted solver"
        );
        let on_chain_rate = t
            .proto
            .job_windows()
            .await
            .expect("windows")
            .verification_rate;
        assert_eq!(
            on_chain_rate, rate,
            "VERIFICATION_RATE reached the deployment"
        );

        next_round(&net, &t).await;
        t.initialize_round().await.expect("initializeRound");
        t.bond(tokens(500), t.address()).await.expect("bond");
        t.register_transcoder(100_000, 500_000, gwei(1))
            .await
            .expect("register transcoder");
        next_round(&net, &t).await;
        t.initialize_round().await.expect("initializeRound");
        let round = t.proto.round().await.expect("round").round;
        assert!(
            t.proto.is_active(t.address(), round).await.expect("active"),
            "the transcoder is active in round {round}"
        );

        b.deposit(U256::exp10(18)).await.expect("deposit");
        let head = net.rpc.block_number().expect("block number");
        let options = hashes::transcoding_options(&PROFILES);
        let job = b
            .create_job(STREAM, &options, gwei(1), head + 1_000_000)
            .await
            .expect("job");
        // the election's seed is the creation block's hash: the first claim comes in a later block
        net.rpc.mine(1).expect("anvil_mine");
        World {
            net,
            _state: state,
            transcoder: t,
            broadcaster: b,
            solver,
            job,
            rate,
            next_seg: 0,
            claim_gas: Vec::new(),
        }
    }

    /// One claim of `N` segments with the segments at `fake_positions` (offsets in the claim) faked; every
    /// challenged segment is submitted and answered. Returns what happened.
    async fn claim(&mut self, fake_positions: Vec<u64>) -> Outcome {
        let (t, job) = (&self.transcoder, self.job);
        let first = self.next_seg;
        let last = first + N - 1;
        self.next_seg = last + 1;

        // the transcoder's receipts: the broadcaster's signature over the real input, the claimed renditions
        let receipts: Vec<Receipt> = (first..=last)
            .map(|seg| {
                let input = input(seg);
                let sig = self
                    .broadcaster
                    .sender
                    .sign_segment(STREAM, seg, hashes::data_hash(&input))
                    .expect("broadcaster signature");
                let rendition = if fake_positions.contains(&(seg - first)) {
                    b"fake".to_vec()
                } else {
                    honest_rendition(seg)
                };
                Receipt::new(STREAM, seg, &input, &[rendition], sig, EncodeMode::BitExact)
            })
            .collect();
        let tree = MerkleTree::new(receipts.iter().map(Receipt::leaf).collect()).expect("leaves");
        let m = t
            .sender
            .send(t.proto.claim_work(job, first, last, tree.root()))
            .await
            .unwrap_or_else(|e| panic!("claimWork {first}..={last}: {e}"));
        self.claim_gas.push(m.gas_used);
        let claim_id = chain::claims::new_claim_id(&m.logs).expect("NewClaim event");
        let claim_block = m.block;

        // the seed is the hash of block claimBlock + 1: the contract's view can read it from block
        // claimBlock + 2 on (rule 8)
        self.net.rpc.mine(2).expect("anvil_mine");
        let seed = self
            .net
            .rpc
            .block_hash(claim_block + 1)
            .expect("hash of claimBlock + 1");
        let mut challenged = Vec::new();
        for seg in first..=last {
            let by_contract = t
                .proto
                .is_challenged(claim_block, seg)
                .await
                .unwrap_or_else(|e| panic!("isChallenged({claim_block}, {seg}): {e}"));
            let by_rule = hashes::is_challenged(claim_block, seed, seg, self.rate);
            assert_eq!(
                by_contract, by_rule,
                "segment {seg} of the claim in block {claim_block}: the contract's isChallenged and rule 8 disagree"
            );
            if by_contract {
                challenged.push(seg);
            }
        }

        // the transcoder submits every challenged segment while the claim is pending
        let price = t.proto.verifier_price().await.expect("verifier price");
        let mut requests = Vec::new();
        for &seg in &challenged {
            let r = &receipts[(seg - first) as usize];
            let proof = tree.proof((seg - first) as usize).expect("proof");
            let call = t.proto.verify(
                job,
                claim_id,
                seg,
                format!("test://{job}/{seg}"),
                r.data_hash,
                r.transcoded_data_hash,
                r.broadcaster_sig.clone(),
                Bytes::from(proof),
                price,
            );
            let m = t
                .sender
                .send(call)
                .await
                .unwrap_or_else(|e| panic!("verify claim {claim_id} segment {seg}: {e}"));
            let req = m
                .logs
                .iter()
                .find_map(VerifyRequest::from_log)
                .expect("VerifyRequest event");
            assert_eq!((req.claim_id, req.seg_no), (claim_id, seg));
            requests.push(req);
        }

        // the solver re-encodes (bit-exact) and answers each request
        let (mut slashed, mut passed, mut failed) = (false, 0, 0);
        for req in requests {
            let computed = hashes::transcoded_data_hash(&[honest_rendition(req.seg_no)]);
            let verdict = Verdict {
                passed: computed == req.transcoded_data_hash,
                computed_hash: computed,
                mode: 0,
                score: 0,
                report_hash: H256::zero(),
            };
            let call =
                self.solver
                    .proto
                    .callback(req.request_id, req.transcoded_data_hash, &verdict);
            let m = self
                .solver
                .sender
                .send(call)
                .await
                .unwrap_or_else(|e| panic!("callback of request {}: {e}", req.request_id));
            for e in m.logs.iter().filter_map(ClaimEvent::from_log) {
                match e {
                    ClaimEvent::Passed { claim_id: c, .. } if c == claim_id => passed += 1,
                    ClaimEvent::Failed { claim_id: c, .. } if c == claim_id => failed += 1,
                    ClaimEvent::Slashed { claim_id: c, .. } if c == claim_id => slashed = true,
                    _ => {}
                }
            }
        }
        Outcome {
            claim_id,
            fake_positions: fake_positions.iter().map(|p| first + p).collect(),
            challenged,
            slashed,
            passed,
            failed,
        }
    }

    /// Runs `s.claims` claims with `s.fakes` fakes each; checks every claim's fate against the rule and
    /// returns the number caught.
    async fn run(&mut self, s: Setting, rng: &mut Rng) -> (u64, Vec<Outcome>) {
        let mut outcomes = Vec::new();
        for _ in 0..s.claims {
            let o = self.claim(rng.pick(s.fakes, N)).await;
            let fakes_challenged = o
                .challenged
                .iter()
                .filter(|x| o.fake_positions.contains(x))
                .count() as u64;
            assert_eq!(
                o.slashed,
                o.fake_challenged(),
                "claim {} (fakes {:?}, challenged {:?}): slashed must mean a fake segment was challenged",
                o.claim_id,
                o.fake_positions,
                o.challenged
            );
            assert_eq!(
                (o.failed, o.passed),
                (
                    fakes_challenged,
                    o.challenged.len() as u64 - fakes_challenged
                ),
                "claim {}: every challenged fake fails, every challenged honest segment passes",
                o.claim_id
            );
            outcomes.push(o);
        }
        // the chain agrees: slashed claims are Slashed, the others still Pending
        for o in &outcomes {
            let status = self
                .transcoder
                .proto
                .claim(self.job, o.claim_id)
                .await
                .expect("getClaim")
                .status;
            let want = if o.slashed {
                ClaimStatus::Slashed
            } else {
                ClaimStatus::Pending
            };
            assert_eq!(status, want, "claim {} status on chain", o.claim_id);
        }
        (
            outcomes.iter().filter(|o| o.slashed).count() as u64,
            outcomes,
        )
    }
}

/// Checks the observed catch count against the binomial band and prints the line.
fn check_band(v: u64, s: Setting, caught: u64, challenged_total: usize) {
    let p = 1.0 - (1.0 - 1.0 / v as f64).powi(s.fakes as i32);
    let m = s.claims as f64;
    let expected = m * p;
    let band = Z * (m * p * (1.0 - p)).sqrt();
    println!(
        "| {v} | {} | {N} | {} | {caught} | {expected:.1} | ±{band:.1} | [{:.1}, {:.1}] | {challenged_total} |",
        s.fakes,
        s.claims,
        expected - band,
        expected + band
    );
    assert!(
        (caught as f64 - expected).abs() <= band,
        "v={v}, k={}: {caught} of {} claims caught, predicted {expected:.1} ± {band:.1} (99.9 % band): \
         the catch rate does not follow 1-(1-1/v)^k",
        s.fakes,
        s.claims
    );
}

/// Runs `settings` (in order) on one job of a fresh chain deployed with `VERIFICATION_RATE = v`, printing a
/// markdown table; the checks are in [`World::run`] and [`check_band`].
async fn simulate(v: u64, settings: &[Setting]) {
    let started = Instant::now();
    let mut w = World::start(v).await;
    let mut rng = Rng(0x5eed_cafe_f00d_d00d ^ v);
    println!(
        "| v | k | n | claims | caught | expected | band (99.9 %) | range | challenged segments |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &s in settings {
        let (caught, outcomes) = w.run(s, &mut rng).await;
        let challenged: usize = outcomes.iter().map(|o| o.challenged.len()).sum();
        check_band(v, s, caught, challenged);
        if s.fakes == 0 {
            assert_eq!(caught, 0, "an honest claim was slashed");
            assert!(
                challenged > 0,
                "the honest claims had no challenged segment: the check would be empty"
            );
        }
    }
    let claims = w.claim_gas.len();
    let gas = w.claim_gas.iter().fold(U256::zero(), |a, g| a + g);
    println!(
        "v={v}: {claims} claims on job {} (first claim, with the election: {} gas; mean claimWork {} gas) in {:.1} s",
        w.job,
        w.claim_gas[0],
        gas / U256::from(claims),
        started.elapsed().as_secs_f64()
    );
}

/// 1 in 4 segments challenged: honest claims (k = 0, never caught), then k = 1 (p = 0.25) and k = 3
/// (p = 0.578).
#[tokio::test]
async fn one_in_four_challenges_catch_k_fakes_at_1_minus_three_quarters_to_the_k() {
    simulate(
        4,
        &[
            Setting {
                fakes: 0,
                claims: 20,
            },
            Setting {
                fakes: 1,
                claims: 100,
            },
            Setting {
                fakes: 3,
                claims: 80,
            },
        ],
    )
    .await;
}

/// 1 in 2 segments challenged, one fake per claim: p = 0.5.
#[tokio::test]
async fn one_in_two_challenges_catch_one_fake_half_the_time() {
    simulate(
        2,
        &[Setting {
            fakes: 1,
            claims: 60,
        }],
    )
    .await;
}
