//! Claims on a real anvil with the real contracts, driven by the real `proof::driver::Driver` over a
//! `ProofStore` filled the way the daemon fills it (receipts of real-size input and rendition bytes, signed by
//! the job's broadcaster):
//!
//! 1. gas: one claim each of 1 (the job's first claim, with the election), 10, 100 and 1000 segments
//!    (policy `max_segments` 100000, claimed as soon as stored), the `claimWork` gas of each from its mined
//!    receipt (the chain client's journal), and the `verify` gas of that claim's challenged segments, whose
//!    Merkle proof grows with log2 n. Anvil mines a block per transaction; the bench mines one more per pass.
//! 2. latency: with anvil mining a block per second (`--block-time 1`), the driver polling every 0.2 s and
//!    `claim_after_blocks` = 0, the wall time from the last receipt of a burst stored (flushed, as the daemon
//!    stores it before it answers the segment) until the claim covering it is mined (seen on the node), and
//!    until the driver has recorded it as mined (the chain client's sender polls for receipts every
//!    `SendOptions::poll_ms`, 1 s by default as in the daemon). 1 in 1000 segments is challenged on that
//!    chain (the 2018 mainnet rate), so a repetition seldom finds the driver busy with a verify.
//!
//! Usage: claim_bench [REPETITIONS] [INPUT_KIB]   (defaults 10 and 512). Markdown tables on stdout.
use std::error::Error;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chain::devnet::{Devnet, DevnetOptions};
use chain::hashes::{self, MerkleTree};
use chain::journal::TxState;
use chain::keys::PasswordSource;
use chain::ops::{self, Client};
use chain::protocol::Protocol;
use chain::sender::{SendOptions, Sender};
use chain::{ChainConfig, U256};
use proof::driver::{Driver, DriverOptions};
use proof::{EncodeMode, JobRecord, Policy, ProofStore, Receipt, Stage};

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

const STREAM: &str = "bench-stream";
const PROFILES: [&str; 2] = ["P360p30fps16x9", "P240p30fps16x9"];
/// Claim sizes of the gas part; the first (one segment) is the job's first claim, which runs the election.
const SIZES: [u64; 4] = [1, 10, 100, 1000];
/// Receipts stored back to back in each latency repetition.
const BURST: u64 = 4;
const DRIVER_POLL: Duration = Duration::from_millis(200);

fn gwei(n: u64) -> U256 {
    U256::from(n) * U256::exp10(9)
}

/// Real-size segment bytes: a random-looking buffer (xorshift64*), stamped with the segment number so that
/// every segment hashes differently; hashing covers every byte, as for a real segment.
struct Media {
    input: Vec<u8>,
    renditions: [Vec<u8>; 2],
}

impl Media {
    fn new(input_kib: usize) -> Self {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut bytes = |n: usize| -> Vec<u8> {
            let mut v = Vec::with_capacity(n + 8);
            while v.len() < n {
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                v.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
            }
            v.truncate(n);
            v
        };
        let n = input_kib.max(1) * 1024;
        // a 360p rendition about a quarter of the input, 240p an eighth
        Self {
            input: bytes(n),
            renditions: [bytes(n / 4), bytes(n / 8)],
        }
    }

    /// The receipt of segment `seg`, signed by the broadcaster's sender (hash rule 5).
    fn receipt(&mut self, seg: u64, broadcaster: &Sender) -> Res<Receipt> {
        let stamp = seg.to_be_bytes();
        self.input[..8].copy_from_slice(&stamp);
        for r in &mut self.renditions {
            r[..8].copy_from_slice(&stamp);
        }
        let sig = broadcaster.sign_segment(STREAM, seg, hashes::data_hash(&self.input))?;
        Ok(Receipt::new(
            STREAM,
            seg,
            &self.input,
            &self.renditions,
            sig,
            EncodeMode::Fidelity,
        ))
    }
}

/// A devnet with an active transcoder, a broadcaster with a deposit, and one job of theirs.
struct Setup {
    net: Devnet,
    dir: tempfile::TempDir,
    transcoder: Client,
    broadcaster: Client,
    job: chain::jobs::Job,
}

fn chain_config(net: &Devnet, name: &str, send: SendOptions) -> Res<ChainConfig> {
    let acct = net
        .account_named(name)
        .ok_or_else(|| format!("devnet account {name} missing"))?;
    Ok(ChainConfig {
        rpc_url: net.url.clone(),
        deployment: net.deployment_file(),
        keystore: acct.keystore.clone(),
        password: PasswordSource::File(net.password_file()),
        send,
        ..Default::default()
    })
}

async fn connect(net: &Devnet, name: &str, state: &Path, send: SendOptions) -> Res<Client> {
    Ok(ops::connect(&chain_config(net, name, send)?, &state.join(name)).await?)
}

async fn next_round(net: &Devnet, c: &Client) -> Res<()> {
    let len = c.proto.round_length().await?;
    let b = net.rpc.block_number()?;
    net.rpc.mine((b / len + 1) * len - b)?;
    Ok(())
}

/// Starts anvil (a block per `block_time` seconds, or per transaction) with the contracts deployed at
/// `VERIFICATION_RATE = rate`. Called before the async runtime exists: the rate reaches contracts/deploy.sh
/// through this process's environment.
fn devnet(block_time: Option<u64>, rate: u64) -> Res<Devnet> {
    // SAFETY: no other thread of this process reads the environment at this point (only anvil's stdout
    // readers run, and they do not).
    unsafe { std::env::set_var("VERIFICATION_RATE", rate.to_string()) };
    let net = Devnet::start_with(DevnetOptions {
        block_time,
        accounts: vec!["transcoder".into(), "broadcaster".into()],
        ..Default::default()
    });
    // SAFETY: as above.
    unsafe { std::env::remove_var("VERIFICATION_RATE") };
    Ok(net?)
}

/// Makes the devnet's transcoder active and creates the broadcaster's job.
async fn setup(net: Devnet) -> Res<Setup> {
    let dir = tempfile::tempdir()?;
    let fast = SendOptions {
        poll_ms: 50,
        ..Default::default()
    };
    let t = connect(&net, "transcoder", dir.path(), fast.clone()).await?;
    let b = connect(&net, "broadcaster", dir.path(), fast).await?;
    next_round(&net, &t).await?;
    t.initialize_round().await?;
    t.bond(U256::from(500) * U256::exp10(18), t.address())
        .await?;
    t.register_transcoder(100_000, 500_000, gwei(1)).await?;
    next_round(&net, &t).await?;
    t.initialize_round().await?;
    b.deposit(U256::exp10(17)).await?;
    let head = net.rpc.block_number()?;
    let options = hashes::transcoding_options(&PROFILES);
    let job_id = b
        .create_job(STREAM, &options, gwei(1), head + 100_000)
        .await?;
    let job = b.proto.job(job_id).await?;
    Ok(Setup {
        net,
        dir,
        transcoder: t,
        broadcaster: b,
        job,
    })
}

fn driver_options() -> DriverOptions {
    DriverOptions {
        poll: DRIVER_POLL,
        data_url: "http://127.0.0.1:9/proof".into(),
        policy: Policy {
            max_segments: 100_000,
            claim_after_blocks: 0,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The store's claim covering segment `seg` of `job`.
fn claim_of(store: &ProofStore, job: u64, seg: u64) -> Res<Option<proof::ClaimRecord>> {
    Ok(store
        .claims(job)?
        .into_iter()
        .find(|c| c.first <= seg && seg <= c.last))
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

/// Gas of the claims and of their verifies, per claim size.
async fn gas_part(net: Devnet, input_kib: usize) -> Res<()> {
    let started = Instant::now();
    let s = setup(net).await?;
    let store = ProofStore::open(&s.dir.path().join("proof"))?;
    let job = s.job.job_id;
    store.put_job(&JobRecord::from(&s.job))?;
    // the election's seed is the creation block's hash
    s.net.rpc.mine(1)?;
    let Client { proto, sender } = s.transcoder;
    let sender = Arc::new(sender);
    let me = sender.address();
    let (mut driver, _status) = Driver::open(
        store.clone(),
        proto.clone(),
        sender.clone(),
        driver_options(),
    )
    .await?;
    let windows = proto.job_windows().await?;
    let mut media = Media::new(input_kib);

    // one claim per size, each stored whole before the driver's next pass and claimed by it
    let mut trees = Vec::new();
    let mut first = 0;
    let mut hashing = Duration::ZERO;
    for n in SIZES {
        let last = first + n - 1;
        let t = Instant::now();
        let mut leaves = Vec::with_capacity(n as usize);
        for seg in first..=last {
            let r = media.receipt(seg, &s.broadcaster.sender)?;
            leaves.push(r.leaf());
            store.insert_receipt(job, s.net.rpc.block_number()?, &r)?;
        }
        store.flush()?;
        hashing += t.elapsed();
        let mut passes = 0;
        while claim_of(&store, job, first)?
            .and_then(|c| c.claim_id())
            .is_none()
        {
            passes += 1;
            if passes > 20 {
                return Err(format!(
                    "the driver did not claim segments {first}..={last} in 20 passes"
                )
                .into());
            }
            driver.tick().await?;
        }
        let c = claim_of(&store, job, first)?.ok_or("claim vanished")?;
        if (c.first, c.last) != (first, last) {
            return Err(format!(
                "the driver claimed {}..={}, not {first}..={last}",
                c.first, c.last
            )
            .into());
        }
        trees.push((
            n,
            first,
            c.claim_id().unwrap_or_default(),
            MerkleTree::new(leaves).ok_or("empty claim")?,
        ));
        first = last + 1;
    }

    // let the driver answer the challenges until every verification window is closed
    let mut last_claim_block = 0;
    for c in store.claims(job)? {
        if let Stage::Mined { claim_block, .. } | Stage::Challenged { claim_block, .. } = c.stage {
            last_claim_block = last_claim_block.max(claim_block);
        }
    }
    while s.net.rpc.block_number()? < last_claim_block + windows.verification_period + 1 {
        driver.tick().await?;
        s.net.rpc.mine(1)?;
    }

    // gas from the journal of the transcoder's transactions (each mined receipt's gasUsed)
    let mut claim_gas = std::collections::HashMap::new();
    let mut verify_gas: std::collections::HashMap<u64, Vec<(u64, U256)>> = Default::default();
    for rec in sender.journal().all(me)? {
        let TxState::Mined {
            gas_used,
            success: true,
            ..
        } = rec.state
        else {
            continue;
        };
        let words: Vec<&str> = rec.label.split_whitespace().collect();
        match words.as_slice() {
            ["claim", "job", _, "segments", range] => {
                if let Some(f) = range
                    .split("..=")
                    .next()
                    .and_then(|f| f.parse::<u64>().ok())
                {
                    claim_gas.insert(f, gas_used);
                }
            }
            ["verify", "job", _, "claim", c, "segment", seg] => {
                if let (Ok(c), Ok(seg)) = (c.parse::<u64>(), seg.parse::<u64>()) {
                    verify_gas.entry(c).or_default().push((seg, gas_used));
                }
            }
            _ => {}
        }
    }
    println!(
        "## claimWork and verify gas (anvil, real contracts, claims made by proof::driver::Driver)\n"
    );
    println!(
        "| segments n | claimWork gas | verify gas, median (min..max) | verifies | proof hashes (log2 n) |"
    );
    println!("|---|---|---|---|---|");
    for (n, first, claim_id, tree) in &trees {
        let cg = claim_gas
            .get(first)
            .map_or("?".to_string(), |g| g.to_string());
        let label = if *first == 0 {
            format!("{n} (first claim: election)")
        } else {
            n.to_string()
        };
        let v = verify_gas.get(claim_id).cloned().unwrap_or_default();
        let (gas_col, proof_col) = if v.is_empty() {
            ("no segment challenged".to_string(), "-".to_string())
        } else {
            let g: Vec<f64> = v.iter().map(|(_, g)| g.as_u64() as f64).collect();
            let mut lens: Vec<usize> = v
                .iter()
                .filter_map(|(seg, _)| tree.proof((seg - first) as usize))
                .map(|p| p.len() / 32)
                .collect();
            lens.sort_unstable();
            lens.dedup();
            let lens: Vec<String> = lens.iter().map(ToString::to_string).collect();
            (
                format!(
                    "{:.0} ({:.0}..{:.0})",
                    median(&g),
                    g.iter().copied().fold(f64::INFINITY, f64::min),
                    max(&g)
                ),
                format!("{} ({:.1})", lens.join("/"), (*n as f64).log2()),
            )
        };
        println!("| {label} | {cg} | {gas_col} | {} | {proof_col} |", v.len());
    }
    println!(
        "\n1 in {} segments challenged; the driver answers challenges while the {}-block verification window \
         is open (anvil mines a block per transaction plus one per driver pass here, so a large claim's \
         window closes before all its challenges are answered). Receipts of {input_kib} KiB input + 2 \
         renditions, hashed and signed in {:.1} s; part 1 took {:.1} s.\n",
        windows.verification_rate,
        windows.verification_period,
        hashing.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One latency sample (seconds after the last receipt of the burst was stored).
struct Sample {
    built: f64,
    on_chain: f64,
    recorded: f64,
    block: u64,
}

/// Claim latency with a block a second.
async fn latency_part(net: Devnet, reps: usize, input_kib: usize) -> Res<()> {
    let started = Instant::now();
    let s = setup(net).await?;
    let setup_s = started.elapsed().as_secs_f64();
    let job = s.job.job_id;
    let store = ProofStore::open(&s.dir.path().join("proof"))?;
    store.put_job(&JobRecord::from(&s.job))?;
    // the driver's sender with the daemon's defaults (receipt polled every second, 1 confirmation)
    let state = s.dir.path().join("transcoder");
    drop(s.transcoder);
    let cfg = chain_config(&s.net, "transcoder", SendOptions::default())?;
    let Client { proto, sender } = ops::connect(&cfg, &state).await?;
    let send_opts = sender.options().clone();
    let sender = Arc::new(sender);
    let observer = Protocol::new(proto.node.clone(), proto.deployment.clone());
    let (driver, _status) =
        Driver::open(store.clone(), proto, sender.clone(), driver_options()).await?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(driver.run(async move {
        let _ = stop_rx.await;
    }));
    // the first claim needs a block after the job's
    while observer.node.block_number().await? <= s.job.creation_block {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut media = Media::new(input_kib);
    let mut samples = Vec::new();
    let mut next_seg = 0;
    for rep in 0..reps {
        // spread the store times over the block interval and the driver's poll phase
        tokio::time::sleep(Duration::from_millis(300 + (rep as u64 * 370) % 1000)).await;
        let receipts = (next_seg..next_seg + BURST)
            .map(|seg| media.receipt(seg, &s.broadcaster.sender))
            .collect::<Res<Vec<_>>>()?;
        let last = next_seg + BURST - 1;
        next_seg += BURST;
        for r in &receipts {
            let block = observer.node.block_number().await?;
            store.put_receipt(job, block, r)?;
        }
        let t0 = Instant::now();
        let (mut built, mut on_chain, mut recorded, mut block) = (None, None, None, 0);
        let mut known_claims = 0;
        while on_chain.is_none() || recorded.is_none() {
            if t0.elapsed() > Duration::from_secs(20) {
                return Err(format!("repetition {rep}: segment {last} not claimed in 20 s").into());
            }
            if let Some(c) = claim_of(&store, job, last)? {
                built.get_or_insert(t0.elapsed().as_secs_f64());
                if c.claim_id().is_some() {
                    recorded.get_or_insert(t0.elapsed().as_secs_f64());
                }
            }
            if on_chain.is_none() {
                let n = observer.job(job).await?.claims;
                for id in known_claims..n {
                    let v = observer.claim(job, id).await?;
                    if v.first <= last && last <= v.last {
                        on_chain = Some(t0.elapsed().as_secs_f64());
                        block = v.claim_block;
                    }
                }
                known_claims = n;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        samples.push(Sample {
            built: built.unwrap_or_default(),
            on_chain: on_chain.unwrap_or_default(),
            recorded: recorded.unwrap_or_default(),
            block,
        });
    }
    let _ = stop_tx.send(());
    running.await?;

    println!(
        "## Claim latency: last receipt stored -> claim mined (anvil --block-time 1, driver poll {:.1} s, \
         claim_after_blocks 0, {BURST} receipts of {input_kib} KiB per burst)\n",
        DRIVER_POLL.as_secs_f64()
    );
    println!(
        "| rep | claim built (s) | mined, seen on the node (s) | recorded by the driver (s) | block |"
    );
    println!("|---|---|---|---|---|");
    for (i, x) in samples.iter().enumerate() {
        println!(
            "| {i} | {:.2} | {:.2} | {:.2} | {} |",
            x.built, x.on_chain, x.recorded, x.block
        );
    }
    let col = |f: fn(&Sample) -> f64| samples.iter().map(f).collect::<Vec<f64>>();
    let (b, c, r) = (col(|x| x.built), col(|x| x.on_chain), col(|x| x.recorded));
    println!(
        "| **median** | {:.2} | {:.2} | {:.2} | |",
        median(&b),
        median(&c),
        median(&r)
    );
    println!(
        "| **max** | {:.2} | {:.2} | {:.2} | |",
        max(&b),
        max(&c),
        max(&r)
    );
    println!(
        "\nBound: claim built within one driver poll ({:.1} s) plus a pass over the store; mined at the next \
         block (block time 1 s; with {} confirmation the including block is enough), so on chain <= poll + \
         pass + block time; the driver records it when its sender next polls for the receipt (every {:.1} s) \
         and the pass ends. {reps} repetitions; setup at 1 block/s (bond, register, rounds, deposit, job) {setup_s:.1} s, part 2 {:.1} s.",
        DRIVER_POLL.as_secs_f64(),
        send_opts.confirmations,
        send_opts.poll_ms as f64 / 1000.0,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn run(gas_net: Devnet, latency_net: Devnet, reps: usize, input_kib: usize) -> Res<()> {
    gas_part(gas_net, input_kib).await?;
    latency_part(latency_net, reps, input_kib).await
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let reps: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let input_kib: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(512);
    let started = Instant::now();
    // part 1: a block per transaction, 1 in 2 segments challenged (the dev default)
    let gas_net = match devnet(None, 2) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("claim_bench: devnet: {e}");
            return ExitCode::FAILURE;
        }
    };
    // part 2: a block a second, 1 in 1000 challenged
    let t = Instant::now();
    let latency_net = match devnet(Some(1), 1000) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("claim_bench: devnet: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "claim_bench: devnets up in {:.1} s (the one at 1 block/s: {:.1} s)",
        started.elapsed().as_secs_f64(),
        t.elapsed().as_secs_f64()
    );
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("claim_bench: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(gas_net, latency_net, reps, input_kib)) {
        Ok(()) => {
            println!(
                "\nclaim_bench: {:.1} s in all",
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("claim_bench: {e}");
            ExitCode::FAILURE
        }
    }
}
