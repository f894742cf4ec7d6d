//! Gas report of the protocol's hot paths, measured from real transaction receipts on a fresh anvil (gas
//! includes the 21000 intrinsic cost and calldata). Writes a Markdown table.
//!
//!   cargo run --release -p chain --example gas_report -- [OUT.md]   (default: contracts/GAS.md)
//!
//! Also run by `./x bench gas`. Fails when claimWork exceeds the 150k target.

#[path = "../tests/common/mod.rs"]
mod common;

use std::fmt::Write as _;

use chain::bindings::{
    bonding_manager as bm, jobs_manager as jm, service_registry as sr, verifier as vf,
};
use chain::{U256, hashes};
use common::*;
use ethers_signers::Signer as _;

const CLAIM_TARGET: u64 = 150_000;

fn main() {
    let out = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| chain::devnet::contracts_dir().join("GAS.md"));
    let n = Net::start();
    let d = n.net.deployment.clone();
    let t = addr(&n.transcoder);
    let mut rows: Vec<(String, u64, String)> = vec![];
    let mut row = |op: &str, r: &ethers_core::types::TransactionReceipt, note: &str| {
        let g = r.gas_used.expect("gas used").as_u64();
        println!("{op:<58} {g:>9}");
        rows.push((op.to_string(), g, note.to_string()));
    };

    n.next_round();
    row(
        "bond (first bond, to self)",
        &n.bond(&n.transcoder, U256::from(1000u64) * U256::from(ETHER), t),
        "fresh delegator",
    );
    let r = n.send(
        &n.transcoder,
        d.bonding_manager,
        bm::transcoder(U256::from(100_000), U256::from(500_000), U256::from(GWEI)),
    );
    row("transcoder (register into the pool)", &r, "");
    row(
        "bond (delegation to a registered transcoder)",
        &n.bond(&n.delegator, U256::from(500u64) * U256::from(ETHER), t),
        "re-sorts the pool",
    );
    n.next_round();
    row(
        "reward",
        &n.send(&n.transcoder, d.bonding_manager, bm::reward()),
        "mint + pool update",
    );
    n.send_value(
        &n.broadcaster,
        d.jobs_manager,
        jm::deposit(),
        U256::from(10u64) * U256::from(ETHER),
    );

    let profiles = ["P720p30fps16x9", "P360p30fps16x9"];
    let options = hashes::transcoding_options(&profiles);
    let end = U256::from(n.block() + 2000);
    let mut jobs = vec![];
    for i in 0..3 {
        let stream = format!("gas-stream-{i}");
        n.send(
            &n.broadcaster,
            d.jobs_manager,
            jm::job(stream.clone(), options.clone(), U256::from(GWEI), end),
        );
        jobs.push(stream);
    }
    // first claims elect the transcoder; later claims only escrow and record
    let mut claim_gas = vec![];
    for (i, count) in [10u64, 100, 1000].into_iter().enumerate() {
        let segs = segments(&jobs[i], 0, count - 1, &n.broadcaster, profiles.len());
        let tree = tree(&segs);
        let r = n.send(
            &n.transcoder,
            d.jobs_manager,
            jm::claim_work(
                U256::from(i),
                [U256::zero(), U256::from(count - 1)],
                tree.root(),
            ),
        );
        claim_gas.push(r.gas_used.unwrap().as_u64());
        row(
            &format!("claimWork, first claim of a job (elects), {count} segments"),
            &r,
            "",
        );
    }
    let mut trees = vec![];
    for (k, count) in [10u64, 100, 1000].into_iter().enumerate() {
        let first = 10_000 * (k as u64 + 1);
        let segs = segments(
            &jobs[0],
            first,
            first + count - 1,
            &n.broadcaster,
            profiles.len(),
        );
        let tree = tree(&segs);
        let r = n.send(
            &n.transcoder,
            d.jobs_manager,
            jm::claim_work(
                U256::zero(),
                [U256::from(first), U256::from(first + count - 1)],
                tree.root(),
            ),
        );
        claim_gas.push(r.gas_used.unwrap().as_u64());
        row(&format!("claimWork, later claim, {count} segments"), &r, "");
        trees.push((first, segs, tree));
    }

    // verify a challenged segment of the 1000-segment claim (claim 3 of job 0), then the solver's answer
    n.net.rpc.mine(2).unwrap();
    let c = n.call(
        d.jobs_manager,
        jm::get_claim(U256::zero(), U256::from(3)),
        jm::decode_get_claim,
    );
    let (first, segs, tree) = &trees[2];
    let seg = segs
        .iter()
        .find(|s| {
            n.call(
                d.jobs_manager,
                jm::is_challenged(c.claim_block, s.seg_no.into()),
                jm::decode_is_challenged,
            )
        })
        .expect("a challenged segment");
    let proof = tree.proof((seg.seg_no - first) as usize).unwrap();
    let proof_len = proof.len() / 32;
    let r = n.send(
        &n.transcoder,
        d.jobs_manager,
        jm::verify(
            U256::zero(),
            U256::from(3),
            seg.seg_no.into(),
            "ipfs://segment".into(),
            [seg.data_hash, seg.transcoded_data_hash],
            seg.sig.clone().into(),
            proof.into(),
        ),
    );
    let req = event(
        &r,
        vf::events::VerifyRequest::TOPIC,
        vf::events::VerifyRequest::decode,
    );
    row(
        "verify (challenged segment, signature + Merkle proof, request)",
        &r,
        &format!("proof of {proof_len} siblings (1000-leaf claim)"),
    );
    let r = n.send(
        &n.deployer,
        d.verifier,
        vf::callback(
            req.request_id,
            req.transcoded_data_hash,
            true,
            seg.transcoded_data_hash,
            0,
            chain::abi_int(0),
            chain::H256::zero(),
        ),
    );
    row(
        "Verifier.callback -> receiveVerification (pass)",
        &r,
        "solver's answer",
    );
    // the claims' other challenged segments stay unverified: fee distribution after the windows ignores them
    let end_slashing = c.end_verification_slashing_block.as_u64();
    n.net
        .rpc
        .mine(end_slashing.saturating_sub(n.block()) + 1)
        .unwrap();
    row(
        "distributeFees (one claim)",
        &n.send(
            &n.transcoder,
            d.jobs_manager,
            jm::distribute_fees(U256::zero(), U256::zero()),
        ),
        "",
    );
    let r = n.send(
        &n.transcoder,
        d.jobs_manager,
        jm::batch_distribute_fees(
            U256::zero(),
            vec![U256::from(1), U256::from(2), U256::from(3)],
        ),
    );
    row("batchDistributeFees (3 claims)", &r, "");

    // baseline in the same run: a plain ERC-20 transfer of the protocol token
    let r = n.send(
        &n.delegator,
        d.token,
        chain::bindings::token::transfer(addr(&n.broadcaster), U256::from(GWEI)),
    );
    row(
        "baseline: Token.transfer (plain ERC-20 transfer)",
        &r,
        "reference point",
    );
    let baseline = r.gas_used.unwrap().as_u64();

    // worst case of the election: 10 active transcoders (numActiveTranscoders of the dev config)
    let rl = n.round_length();
    let extra: Vec<ethers_signers::LocalWallet> = (0..9u8)
        .map(|i| {
            let key = ethers_core::utils::keccak256([b'g', b'a', b's', i]);
            ethers_signers::LocalWallet::from_bytes(&key)
                .unwrap()
                .with_chain_id(d.chain_id)
        })
        .collect();
    for w in &extra {
        if n.block() % rl + 8 >= rl - 2 {
            n.next_round();
        }
        n.send_value(&n.deployer, addr(w), Default::default(), U256::from(ETHER));
        n.bond(w, U256::from(100u64) * U256::from(ETHER), addr(w));
        n.send(
            w,
            d.bonding_manager,
            bm::transcoder(U256::zero(), U256::zero(), U256::from(GWEI)),
        );
    }
    n.next_round();
    let round = n.call(
        d.rounds_manager,
        chain::bindings::rounds_manager::current_round(),
        chain::bindings::rounds_manager::decode_current_round,
    );
    let active = n.call(
        d.bonding_manager,
        bm::get_active_transcoders(round),
        bm::decode_get_active_transcoders,
    );
    assert_eq!(active.len(), 10, "10 active transcoders");
    n.send(
        &n.broadcaster,
        d.jobs_manager,
        jm::job(
            "gas-stream-10".into(),
            options.clone(),
            U256::from(GWEI),
            U256::from(n.block() + 500),
        ),
    );
    let job = n.call(
        d.jobs_manager,
        jm::get_job(U256::from(3)),
        jm::decode_get_job,
    );
    n.net.rpc.mine(1).unwrap();
    let seed = n.net.rpc.block_hash(job.creation_block.as_u64()).unwrap();
    let elected = n
        .call(
            d.bonding_manager,
            bm::elect_active_transcoder(U256::from(GWEI), seed, job.creation_round),
            bm::decode_elect_active_transcoder,
        )
        .elected;
    let wallet = std::iter::once(&n.transcoder)
        .chain(extra.iter())
        .find(|w| addr(w) == elected)
        .expect("elected is ours");
    let segs = segments("gas-stream-10", 0, 9, &n.broadcaster, profiles.len());
    let r = n.send(
        wallet,
        d.jobs_manager,
        jm::claim_work(
            U256::from(3),
            [U256::zero(), U256::from(9)],
            common::tree(&segs).root(),
        ),
    );
    claim_gas.push(r.gas_used.unwrap().as_u64());
    row(
        "claimWork, first claim, election among 10 active transcoders, 10 segments",
        &r,
        "worst case of the dev config",
    );

    n.next_round();
    row(
        "withdrawFees (claims 2 rounds of earnings first)",
        &n.send(&n.transcoder, d.bonding_manager, bm::withdraw_fees()),
        "",
    );
    row(
        "unbond (part of a delegation)",
        &n.send(
            &n.delegator,
            d.bonding_manager,
            bm::unbond(U256::from(ETHER)),
        ),
        "",
    );
    let uri = |u: &str| sr::set_service_uri(u.to_string());
    row(
        "setServiceURI (first, 23-byte URI)",
        &n.send(
            &n.transcoder,
            d.service_registry,
            uri("http://203.0.113.7:8935"),
        ),
        "a transcoder publishes where its box listens",
    );
    row(
        "setServiceURI (replace, 23-byte URI)",
        &n.send(
            &n.transcoder,
            d.service_registry,
            uri("http://203.0.113.8:8935"),
        ),
        "the box moved",
    );
    row(
        "setServiceURI (first, 256-byte URI, the maximum)",
        &n.send(&n.delegator, d.service_registry, uri(&"x".repeat(256))),
        "",
    );

    let max_claim = *claim_gas.iter().max().unwrap();
    let min_later = claim_gas[3..6].iter().min().copied().unwrap();
    let max_later = claim_gas[3..6].iter().max().copied().unwrap();
    let mut md = String::new();
    md.push_str("# Gas report\n\n");
    md.push_str("Generated by `./x bench gas` (`cargo run --release -p chain --example gas_report`): real transactions on a\n");
    md.push_str("fresh anvil with the dev deployment (`contracts/deploy.sh`), gas from the receipts (includes the 21000\n");
    md.push_str("intrinsic gas and calldata). Gas does not depend on machine load. Target: claimWork flat in the segment count,\n");
    md.push_str(&format!("<= {CLAIM_TARGET} gas.\n\n"));
    md.push_str("| operation | gas | note |\n|---|---:|---|\n");
    for (op, g, note) in &rows {
        writeln!(md, "| {op} | {g} | {note} |").unwrap();
    }
    writeln!(
        md,
        "\nclaimWork: later claims {min_later}..{max_later} gas for 10..1000 segments (ratio 1000/10 = {:.3}); first claims \
         (with the election) up to {max_claim}, {:.2}x the plain token transfer baseline ({baseline}).",
        claim_gas[5] as f64 / claim_gas[3] as f64,
        max_claim as f64 / baseline as f64
    )
    .unwrap();
    std::fs::write(&out, md).expect("write the report");
    println!("wrote {}", out.display());
    if max_claim > CLAIM_TARGET {
        eprintln!("claimWork used {max_claim} gas, above the {CLAIM_TARGET} target");
        std::process::exit(1);
    }
}
