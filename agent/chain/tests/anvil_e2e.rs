//! The bindings against the real contracts on a real anvil: the Bond -> Reward and Job -> Claim -> Verify ->
//! Fees loops driven from Rust, with receipts hashed, signed (ethers-signers) and Merkle-proved by this crate
//! and accepted by the JobsManager; bad input rejected with the contracts' named errors.

mod common;

use chain::bindings::{
    bonding_manager as bm, controller, jobs_manager as jm, minter, rounds_manager as rm, token,
    verifier as vf,
};
use chain::hashes;
use chain::{H256, U256};
use common::*;
use serde_json::json;

const STREAM: &str = "0x1220abcdef-e2e";
/// Segments in the claim: each challenged segment costs two blocks (verify, the solver's answer), and all
/// must fit in the verification period (30 blocks).
const SEGMENTS: u64 = 8;

#[test]
fn bindings_drive_both_loops_on_anvil() {
    let n = Net::start();
    let d = n.net.deployment.clone();
    assert_eq!(d.chain_id, n.net.rpc.chain_id().unwrap());
    let first_gas_price = n.net.rpc.gas_price().unwrap();
    let t = addr(&n.transcoder);
    let b = addr(&n.broadcaster);

    // the registry knows every deployed address
    for (name, a) in [
        ("JobsManager", d.jobs_manager),
        ("BondingManager", d.bonding_manager),
        ("Verifier", d.verifier),
        ("ServiceRegistry", d.service_registry),
    ] {
        let id = H256(ethers_core::utils::keccak256(name));
        assert_eq!(
            n.call(
                d.controller,
                controller::get_contract(id),
                controller::decode_get_contract
            ),
            a,
            "{name}"
        );
    }

    // ---- Bond -> Reward
    n.next_round();
    n.bond(&n.transcoder, U256::from(500u64) * U256::from(ETHER), t);
    n.send(
        &n.transcoder,
        d.bonding_manager,
        bm::transcoder(U256::from(100_000), U256::from(1_000_000), U256::from(GWEI)),
    );
    n.next_round();
    let round = n.call(
        d.rounds_manager,
        rm::current_round(),
        rm::decode_current_round,
    );
    assert!(n.call(
        d.bonding_manager,
        bm::is_active_transcoder(t, round),
        bm::decode_is_active_transcoder
    ));
    let r = n.send(&n.transcoder, d.bonding_manager, bm::reward());
    let reward = event(&r, bm::events::Reward::TOPIC, bm::events::Reward::decode);
    assert_eq!(reward.transcoder, t);
    let mintable = n.call(
        d.minter,
        minter::current_mintable_tokens(),
        minter::decode_current_mintable_tokens,
    );
    assert_eq!(
        reward.amount, mintable,
        "the only active transcoder mints the whole round"
    );
    assert_eq!(
        n.revert_reason(&n.transcoder, d.bonding_manager, bm::reward()),
        format!("RewardAlreadyCalled({round:x})"),
        "reward twice in a round"
    );

    // ---- Job
    n.send_value(
        &n.broadcaster,
        d.jobs_manager,
        jm::deposit(),
        U256::from(ETHER),
    );
    let profiles = ["P720p30fps16x9", "P360p30fps16x9"];
    let options = hashes::transcoding_options(&profiles);
    let end = U256::from(n.block() + 500);
    assert_eq!(
        n.revert_reason(
            &n.broadcaster,
            d.jobs_manager,
            jm::job(STREAM.into(), "49d54ea".into(), U256::from(GWEI), end)
        ),
        "InvalidTranscodingOptions()"
    );
    let r = n.send(
        &n.broadcaster,
        d.jobs_manager,
        jm::job(STREAM.into(), options.clone(), U256::from(GWEI), end),
    );
    let job = event(&r, jm::events::NewJob::TOPIC, jm::events::NewJob::decode);
    assert_eq!(
        (
            job.broadcaster,
            job.stream_id.as_str(),
            job.transcoding_options.as_str()
        ),
        (b, STREAM, options.as_str())
    );
    let job_id = job.job_id;

    // ---- Claim: SEGMENTS segments, receipts built and signed here
    let segs = segments(STREAM, 0, SEGMENTS - 1, &n.broadcaster, profiles.len());
    let tree = tree(&segs);
    // the contract's own hash functions agree with this crate's
    for s in &segs {
        let sh = n.call(
            d.jobs_manager,
            jm::segment_hash(STREAM.into(), s.seg_no.into(), s.data_hash),
            jm::decode_segment_hash,
        );
        assert_eq!(sh, hashes::segment_hash(STREAM, s.seg_no, s.data_hash));
        let rh = n.call(
            d.jobs_manager,
            jm::receipt_hash(
                STREAM.into(),
                s.seg_no.into(),
                s.data_hash,
                s.transcoded_data_hash,
                s.sig.clone().into(),
            ),
            jm::decode_receipt_hash,
        );
        assert_eq!(rh, s.receipt);
        let proof = tree.proof(s.seg_no as usize).unwrap();
        assert!(n.call(
            d.jobs_manager,
            jm::verify_receipt_proof(proof.into(), tree.root(), s.receipt),
            jm::decode_verify_receipt_proof
        ));
    }
    let r = n.send(
        &n.transcoder,
        d.jobs_manager,
        jm::claim_work(
            job_id,
            [U256::zero(), U256::from(SEGMENTS - 1)],
            tree.root(),
        ),
    );
    let claim = event(
        &r,
        jm::events::NewClaim::TOPIC,
        jm::events::NewClaim::decode,
    );
    assert_eq!(
        (claim.transcoder, claim.job_id, claim.claim_id),
        (t, job_id, U256::zero())
    );
    let gas = r.gas_used.unwrap().as_u64();
    assert!(
        gas <= 150_000,
        "first claimWork (with the election) used {gas} gas, above the 150k target"
    );
    let c = n.call(
        d.jobs_manager,
        jm::get_claim(job_id, claim.claim_id),
        jm::decode_get_claim,
    );
    assert_eq!(c.claim_root, tree.root());
    let claim_block = c.claim_block.as_u64();
    let j = n.call(d.jobs_manager, jm::get_job(job_id), jm::decode_get_job);
    assert_eq!(
        j.escrow,
        U256::from(SEGMENTS * 2 * GWEI),
        "segments x profiles x price escrowed"
    );

    // ---- Challenges: this crate's rule == the contract's
    let rate = n
        .call(
            d.jobs_manager,
            jm::verification_rate(),
            jm::decode_verification_rate,
        )
        .as_u64();
    // blockhash(claimBlock + 1) decides, and is readable once that block is in the past (eth_call runs at
    // `latest`). A hash that challenges none of the segments (1 in 2^SEGMENTS) would leave Verify untested:
    // then the two blocks are mined again from a snapshot, a second later, for another hash.
    let mut tries = 0;
    let next_hash = loop {
        let snapshot = n.net.rpc.request("evm_snapshot", json!([])).unwrap();
        n.net.rpc.mine(2).unwrap();
        let h = n.net.rpc.block_hash(claim_block + 1).unwrap();
        if segs
            .iter()
            .any(|s| hashes::is_challenged(claim_block, h, s.seg_no, rate))
        {
            break h;
        }
        tries += 1;
        assert!(tries < 10, "no block hash challenged any segment");
        n.net.rpc.request("evm_revert", json!([snapshot])).unwrap();
        n.net.rpc.request("evm_increaseTime", json!([1])).unwrap();
    };
    let mut challenged = vec![];
    for s in &segs {
        let ours = hashes::is_challenged(claim_block, next_hash, s.seg_no, rate);
        let theirs = n.call(
            d.jobs_manager,
            jm::is_challenged(c.claim_block, s.seg_no.into()),
            jm::decode_is_challenged,
        );
        assert_eq!(ours, theirs, "segment {}", s.seg_no);
        if ours {
            challenged.push(s.seg_no);
        }
    }
    let verify = |seg: &Segment, tdh: H256, sig: Vec<u8>, proof: Vec<u8>| {
        jm::verify(
            job_id,
            claim.claim_id,
            seg.seg_no.into(),
            format!("ipfs://{STREAM}/{}", seg.seg_no),
            [seg.data_hash, tdh],
            sig.into(),
            proof.into(),
        )
    };

    // ---- bad input: named errors, nothing changes
    if let Some(s) = segs.iter().find(|s| !challenged.contains(&s.seg_no)) {
        let call = verify(
            s,
            s.transcoded_data_hash,
            s.sig.clone(),
            tree.proof(s.seg_no as usize).unwrap(),
        );
        assert_eq!(
            n.revert_reason(&n.transcoder, d.jobs_manager, call),
            format!("SegmentNotChallenged({:x})", s.seg_no)
        );
    }
    let first = challenged
        .first()
        .copied()
        .expect("verificationRate 2 challenges some of the claimed segments");
    let s = &segs[first as usize];
    let wrong_proof = tree.proof((first as usize + 1) % segs.len()).unwrap();
    let call = verify(s, s.transcoded_data_hash, s.sig.clone(), wrong_proof);
    assert_eq!(
        n.revert_reason(&n.transcoder, d.jobs_manager, call),
        "InvalidMerkleProof()"
    );
    let forged = chain::sign_segment(&n.delegator, STREAM, s.seg_no, s.data_hash).unwrap();
    let call = verify(
        s,
        s.transcoded_data_hash,
        forged,
        tree.proof(first as usize).unwrap(),
    );
    let reason = n.revert_reason(&n.transcoder, d.jobs_manager, call);
    assert!(
        reason.starts_with("InvalidBroadcasterSignature("),
        "{reason}"
    );
    assert!(
        reason
            .to_lowercase()
            .contains(&format!("{:x}", addr(&n.delegator)).to_lowercase()),
        "{reason}"
    );

    // ---- Verify every challenged segment; the solver answers through the Verifier
    for &seg in &challenged {
        let s = &segs[seg as usize];
        let r = n.send(
            &n.transcoder,
            d.jobs_manager,
            verify(
                s,
                s.transcoded_data_hash,
                s.sig.clone(),
                tree.proof(seg as usize).unwrap(),
            ),
        );
        let req = event(
            &r,
            vf::events::VerifyRequest::TOPIC,
            vf::events::VerifyRequest::decode,
        );
        assert_eq!(
            (
                req.segment_number,
                req.transcoded_data_hash,
                req.transcoding_options.as_str()
            ),
            (seg.into(), s.transcoded_data_hash, options.as_str())
        );
        // the solver recomputes the renditions' hash from the same bytes (in profile order) and answers
        let r = n.send(
            &n.deployer,
            d.verifier,
            vf::callback(
                req.request_id,
                req.transcoded_data_hash,
                true,
                s.transcoded_data_hash,
                0,
                chain::abi_int(0),
                H256::zero(),
            ),
        );
        let passed = event(
            &r,
            jm::events::PassedVerification::TOPIC,
            jm::events::PassedVerification::decode,
        );
        assert_eq!(passed.segment_number, U256::from(seg));
    }

    // ---- Fees after the slashing window, then withdrawn through the BondingManager
    let end_slashing = c.end_verification_slashing_block.as_u64();
    let mined = end_slashing.saturating_sub(n.block());
    n.net.rpc.mine(mined).unwrap();
    let r = n.send(
        &n.transcoder,
        d.jobs_manager,
        jm::distribute_fees(job_id, claim.claim_id),
    );
    let fees = event(
        &r,
        jm::events::DistributeFees::TOPIC,
        jm::events::DistributeFees::decode,
    );
    assert_eq!(fees.fees, U256::from(SEGMENTS * 2 * GWEI));
    n.next_round();
    let r = n.send(&n.transcoder, d.bonding_manager, bm::withdraw_fees());
    let w = event(
        &r,
        bm::events::WithdrawFees::TOPIC,
        bm::events::WithdrawFees::decode,
    );
    assert_eq!(
        (w.delegator, w.amount),
        (t, fees.fees),
        "the sole staker gets all the fees back"
    );
    let tok = n.call(d.token, token::symbol(), token::decode_symbol);
    assert_eq!(tok, "ETT");
    // about 50 transactions later, the node suggests no more than at the start (its blocks are nearly empty)
    let gas_price = n.net.rpc.gas_price().unwrap();
    assert!(
        gas_price <= first_gas_price,
        "gas price suggestion rose from {first_gas_price} to {gas_price}"
    );
}

#[test]
fn double_claim_with_one_claim_id_is_refused_and_two_are_slashed() {
    let n = Net::start();
    let d = n.net.deployment.clone();
    let t = addr(&n.transcoder);
    n.next_round();
    n.bond(&n.transcoder, U256::from(100u64) * U256::from(ETHER), t);
    n.send(
        &n.transcoder,
        d.bonding_manager,
        bm::transcoder(U256::zero(), U256::zero(), U256::from(GWEI)),
    );
    n.next_round();
    n.send_value(
        &n.broadcaster,
        d.jobs_manager,
        jm::deposit(),
        U256::from(ETHER),
    );
    let end = U256::from(n.block() + 500);
    n.send(
        &n.broadcaster,
        d.jobs_manager,
        jm::job(STREAM.into(), "49d54ea9".into(), U256::from(GWEI), end),
    );
    let a = tree(&segments(STREAM, 0, 4, &n.broadcaster, 1));
    let b = tree(&segments(STREAM, 4, 6, &n.broadcaster, 1));
    n.send(
        &n.transcoder,
        d.jobs_manager,
        jm::claim_work(U256::zero(), [U256::zero(), U256::from(4)], a.root()),
    );
    let reason = n.revert_reason(
        &n.deployer,
        d.jobs_manager,
        jm::double_claim_segment_slash(U256::zero(), U256::zero(), U256::zero(), U256::from(4)),
    );
    assert_eq!(reason, "SameClaim()");
    n.send(
        &n.transcoder,
        d.jobs_manager,
        jm::claim_work(U256::zero(), [U256::from(4), U256::from(6)], b.root()),
    );
    let before = n
        .call(
            d.bonding_manager,
            bm::get_delegator(t),
            bm::decode_get_delegator,
        )
        .bonded_amount;
    let r = n.send(
        &n.delegator,
        d.jobs_manager,
        jm::double_claim_segment_slash(U256::zero(), U256::zero(), U256::one(), U256::from(4)),
    );
    let slashed = event(
        &r,
        bm::events::TranscoderSlashed::TOPIC,
        bm::events::TranscoderSlashed::decode,
    );
    assert_eq!(slashed.penalty, before * 30_000 / 1_000_000);
    assert_eq!(slashed.finder, addr(&n.delegator));
    let bal = n.call(
        d.token,
        token::balance_of(addr(&n.delegator)),
        token::decode_balance_of,
    );
    assert_eq!(bal, slashed.finder_reward);
    assert_eq!(slashed.finder_reward, slashed.penalty * 50_000 / 1_000_000);
}
