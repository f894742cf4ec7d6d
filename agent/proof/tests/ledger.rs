//! The claim life cycle driven through a simulated chain with fake blocks: receipts stored as segments arrive,
//! claims built on the policy's triggers (size, age, job end, election window), never overlapping, challenges
//! computed by the contracts' rule and answered with proofs the contracts' check accepts, fees after the
//! slashing window, inputs released after that; a restart (the store reopened) at every step changes nothing.

use chain::hashes::{self, MerkleTree};
use chain::{Bytes, H256, U256};
use proof::ledger::ELECTION_WINDOW;
use proof::{
    Action, EncodeMode, Event, JobRecord, Ledger, Policy, ProofStore, Receipt, Stage, Windows,
};

const W: Windows = Windows {
    verification_rate: 2,
    verification_period: 30,
    slashing_period: 30,
};

/// Claims of at most 10 segments, made once the oldest receipt is 20 blocks old.
const CLAIMS_OF_10: Policy = Policy {
    max_segments: 10,
    claim_after_blocks: 20,
    end_margin_blocks: 10,
    election_margin_blocks: 40,
};

fn receipt(seg: u64) -> Receipt {
    let input = format!("input segment {seg}").into_bytes();
    let renditions = [
        format!("720p {seg}").into_bytes(),
        format!("360p {seg}").into_bytes(),
    ];
    let mut r = Receipt::new(
        "stream-1",
        seg,
        &input,
        &renditions,
        Bytes::from(vec![seg as u8; 65]),
        EncodeMode::Fidelity,
    );
    r.input = Some(format!("inputs/{seg}.ts").into());
    r
}

fn job() -> JobRecord {
    JobRecord {
        job_id: 7,
        stream_id: "stream-1".into(),
        transcoding_options: hashes::transcoding_options(&["P720p30fps16x9", "P360p30fps16x9"]),
        creation_block: 100,
        end_block: 10_000,
        price_per_segment: U256::from(1_000_000_000u64),
    }
}

fn ledger(dir: &std::path::Path, policy: Policy) -> Ledger {
    Ledger::new(ProofStore::open(dir).unwrap(), W, policy)
}

/// A ledger holding job 7 and the receipts of `segments` (signed in block 101).
fn ledger_with_receipts(
    dir: &std::path::Path,
    policy: Policy,
    segments: impl IntoIterator<Item = u64>,
) -> Ledger {
    let l = ledger(dir, policy);
    l.store.put_job(&job()).unwrap();
    for s in segments {
        l.store.put_receipt(7, 101, &receipt(s)).unwrap();
    }
    l
}

fn block_hash(n: u64) -> H256 {
    H256::from_low_u64_be(n.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// Plays the chain: mines what the ledger sends, one block per step, and answers with events.
struct Chain {
    block: u64,
    /// Blocks each pass of the ledger costs (the daemon follows every transaction it sends: about a second,
    /// 4-5 blocks on the test devnet).
    blocks_per_step: u64,
    next_claim_id: u64,
    claims: Vec<(u64, u64, u64, H256, u64)>, // (claim id, first, last, root, block)
    verified: Vec<(u64, u64)>,
    /// Blocks from a verify to the solver's verdict (0: in the same block). The solver has no deadline:
    /// its verdict may come after the claim's fees.
    verdict_after: u64,
    /// Verdicts to come: (block, claim id, segment).
    verdicts: Vec<(u64, u64, u64)>,
    distributed: Vec<u64>,
    released: Vec<u64>,
}

impl Chain {
    fn new(blocks_per_step: u64) -> Self {
        Chain {
            block: 101,
            blocks_per_step,
            next_claim_id: 0,
            claims: vec![],
            verified: vec![],
            verdict_after: 0,
            verdicts: vec![],
            distributed: vec![],
            released: vec![],
        }
    }

    fn verdict(&self, l: &Ledger, claim_id: u64, seg_no: u64) {
        l.apply(&Event::Verified {
            job_id: 7,
            claim_id,
            seg_no,
            passed: true,
        })
        .unwrap();
    }

    fn step(&mut self, l: &Ledger) {
        let block = self.block;
        let (due, later): (Vec<_>, Vec<_>) = self.verdicts.iter().partition(|v| v.0 <= block);
        self.verdicts = later;
        for (_, claim_id, seg_no) in due {
            self.verdict(l, claim_id, seg_no);
        }
        for a in l.step(self.block).unwrap() {
            match a {
                Action::Claim {
                    job_id,
                    first,
                    last,
                    root,
                } => {
                    assert!(
                        self.claims.iter().all(|c| last < c.1 || first > c.2),
                        "claims never overlap: {first}..={last} against {:?}",
                        self.claims
                    );
                    l.apply(&Event::ClaimSent {
                        job_id,
                        first,
                        block: self.block,
                    })
                    .unwrap();
                    let id = self.next_claim_id;
                    self.next_claim_id += 1;
                    self.claims.push((id, first, last, root, self.block + 1));
                    l.apply(&Event::ClaimMined {
                        job_id,
                        first,
                        claim_id: id,
                        claim_block: self.block + 1,
                    })
                    .unwrap();
                }
                Action::BlockHash {
                    job_id,
                    first,
                    number,
                } => {
                    assert!(
                        number < self.block,
                        "a block hash is asked for once it exists"
                    );
                    l.apply(&Event::BlockHash {
                        job_id,
                        first,
                        hash: block_hash(number),
                    })
                    .unwrap();
                }
                Action::Verify {
                    job_id,
                    claim_id,
                    receipt,
                    proof,
                } => {
                    let &(_, first, _, root, claim_block) =
                        self.claims.iter().find(|c| c.0 == claim_id).unwrap();
                    assert!(
                        self.block < claim_block + W.verification_period,
                        "inside the verification window"
                    );
                    assert!(
                        hashes::is_challenged(
                            claim_block,
                            block_hash(claim_block + 1),
                            receipt.seg_no,
                            W.verification_rate
                        ),
                        "only challenged segments"
                    );
                    assert!(receipt.seg_no >= first);
                    assert!(
                        hashes::verify_proof(&proof, root, receipt.leaf()),
                        "the contracts accept the proof"
                    );
                    assert!(
                        !self.verified.contains(&(claim_id, receipt.seg_no)),
                        "each challenge answered once"
                    );
                    self.verified.push((claim_id, receipt.seg_no));
                    l.apply(&Event::VerifySent {
                        job_id,
                        claim_id,
                        seg_no: receipt.seg_no,
                    })
                    .unwrap();
                    if self.verdict_after == 0 {
                        self.verdict(l, claim_id, receipt.seg_no);
                    } else {
                        self.verdicts.push((
                            self.block + self.verdict_after,
                            claim_id,
                            receipt.seg_no,
                        ));
                    }
                }
                Action::DistributeFees { job_id, claim_ids } => {
                    for id in claim_ids {
                        let c = self.claims.iter().find(|c| c.0 == id).unwrap();
                        assert!(self.block >= c.4 + W.verification_period + W.slashing_period);
                        assert!(!self.distributed.contains(&id));
                        self.distributed.push(id);
                        l.apply(&Event::FeesDistributed {
                            job_id,
                            claim_id: id,
                        })
                        .unwrap();
                    }
                }
                Action::ReleaseInputs { job_id, segments } => {
                    for s in &segments {
                        let c = self.claims.iter().find(|c| *s >= c.1 && *s <= c.2).unwrap();
                        assert!(
                            self.distributed.contains(&c.0),
                            "inputs go only after the claim is settled"
                        );
                        assert!(
                            !self.verdicts.iter().any(|v| v.1 == c.0 && v.2 == *s),
                            "segment {s}'s data stays until its verdict"
                        );
                    }
                    assert_eq!(l.release(job_id, &segments).unwrap().len(), segments.len());
                    self.released.extend(segments);
                }
            }
        }
        self.block += self.blocks_per_step;
    }
}

#[test]
fn full_life_cycle_with_a_restart_at_every_block() {
    let dir = tempfile::tempdir().unwrap();
    let policy = CLAIMS_OF_10;
    let l = ledger(dir.path(), policy);
    l.store.put_job(&job()).unwrap();
    let mut chain = Chain::new(1);
    drop(l);
    // 25 segments, one per block; then let every window pass
    for seg in 0..25u64 {
        let l = ledger(dir.path(), policy);
        l.store.put_receipt(7, chain.block, &receipt(seg)).unwrap();
        chain.step(&l);
    }
    for _ in 0..120 {
        let l = ledger(dir.path(), policy);
        chain.step(&l);
    }
    let ranges: Vec<(u64, u64)> = chain.claims.iter().map(|c| (c.1, c.2)).collect();
    assert_eq!(
        ranges,
        vec![(0, 9), (10, 19), (20, 24)],
        "full claims of 10, then the rest once its oldest receipt is 20 blocks old"
    );
    for &(id, first, last, root, _) in &chain.claims {
        let leaves: Vec<H256> = (first..=last).map(|s| receipt(s).leaf()).collect();
        assert_eq!(
            MerkleTree::new(leaves).unwrap().root(),
            root,
            "claim {id}'s root is over its receipts in order"
        );
    }
    let expected: usize = chain
        .claims
        .iter()
        .map(|&(_, first, last, _, b)| {
            (first..=last)
                .filter(|s| hashes::is_challenged(b, block_hash(b + 1), *s, 2))
                .count()
        })
        .sum();
    assert_eq!(chain.verified.len(), expected, "every challenge answered");
    assert!(expected > 0);
    assert_eq!(chain.distributed, vec![0, 1, 2]);
    let mut released = chain.released.clone();
    released.sort();
    assert_eq!(
        released,
        (0..25).collect::<Vec<_>>(),
        "every input released once"
    );
    let l = ledger(dir.path(), policy);
    assert!(
        l.store
            .all_claims()
            .unwrap()
            .iter()
            .all(|c| matches!(c.stage, Stage::Distributed { .. }))
    );
    assert!(
        l.step(chain.block).unwrap().is_empty(),
        "nothing left to do"
    );
}

#[test]
fn first_claim_before_the_election_window_closes_and_none_after_the_job_ends() {
    let dir = tempfile::tempdir().unwrap();
    let policy = Policy {
        max_segments: 100,
        claim_after_blocks: 1000,
        end_margin_blocks: 10,
        election_margin_blocks: 40,
    };
    let l = ledger(dir.path(), policy);
    let j = job();
    l.store.put_job(&j).unwrap();
    l.store.put_receipt(7, 101, &receipt(0)).unwrap();
    assert!(
        l.step(j.creation_block + 100).unwrap().is_empty(),
        "not yet: no trigger"
    );
    let a = l.step(j.creation_block + ELECTION_WINDOW - 40).unwrap();
    assert!(
        matches!(
            a.as_slice(),
            [Action::Claim {
                first: 0,
                last: 0,
                ..
            }]
        ),
        "{a:?}"
    );

    let mut ended = job();
    ended.job_id = 8;
    ended.end_block = 300;
    l.store.put_job(&ended).unwrap();
    l.store.put_receipt(8, 250, &receipt(0)).unwrap();
    let a = l.step(295).unwrap();
    assert!(
        a.iter()
            .any(|a| matches!(a, Action::Claim { job_id: 8, .. })),
        "claimed before the end: {a:?}"
    );
    l.store.put_receipt(8, 296, &receipt(1)).unwrap();
    let a = l.step(300).unwrap();
    assert!(
        !a.iter().any(|a| matches!(
            a,
            Action::Claim {
                job_id: 8,
                first: 1,
                ..
            }
        )),
        "no claim once the job ended"
    );
}

#[test]
fn a_gap_is_skipped_and_a_conflicting_receipt_refused() {
    let dir = tempfile::tempdir().unwrap();
    let policy = Policy {
        max_segments: 100,
        claim_after_blocks: 3,
        end_margin_blocks: 10,
        election_margin_blocks: 40,
    };
    let l = ledger_with_receipts(dir.path(), policy, [0, 1, 2, 4, 5]);
    let a = l.step(104).unwrap();
    assert!(
        matches!(
            a.as_slice(),
            [Action::Claim {
                first: 0,
                last: 2,
                ..
            }]
        ),
        "{a:?}"
    );
    l.apply(&Event::ClaimSent {
        job_id: 7,
        first: 0,
        block: 104,
    })
    .unwrap();
    let a = l.step(105).unwrap();
    assert!(
        matches!(
            a.as_slice(),
            [Action::Claim {
                first: 4,
                last: 5,
                ..
            }]
        ),
        "the next claim starts after the gap: {a:?}"
    );
    // the same receipt again is fine; a different one for a stored segment is not
    l.store.put_receipt(7, 106, &receipt(4)).unwrap();
    let mut other = receipt(4);
    other.transcoded_data_hash = H256::repeat_byte(1);
    assert!(l.store.put_receipt(7, 106, &other).is_err());
    assert!(receipt(3).check().is_ok());
    assert!(other.check().is_err());
}

/// The challenged segments of a claim of segments 0..=9 made in block `b` (the fake chain's hashes).
fn challenged_of(b: u64) -> Vec<u64> {
    (0..10)
        .filter(|s| hashes::is_challenged(b, block_hash(b + 1), *s, W.verification_rate))
        .collect()
}

/// Every challenge of a claim is due in the first step after the challenges are known, not one per step:
/// the daemon follows each transaction before its next pass, and a second or third challenge handed out a
/// pass later each can miss the 30-block window (chain_claims: no PassedVerification for (20, 25)).
#[test]
fn every_challenge_of_a_claim_is_due_in_the_same_step() {
    let dir = tempfile::tempdir().unwrap();
    let policy = Policy {
        max_segments: 10,
        claim_after_blocks: 1000,
        end_margin_blocks: 10,
        election_margin_blocks: 40,
    };
    let l = ledger_with_receipts(dir.path(), policy, 0..10);
    let a = l.step(102).unwrap();
    assert!(
        matches!(
            a.as_slice(),
            [Action::Claim {
                first: 0,
                last: 9,
                ..
            }]
        ),
        "{a:?}"
    );
    // a claim block whose next block's hash challenges at least 3 of the 10 segments
    let claim_block = (103u64..).find(|b| challenged_of(*b).len() >= 3).unwrap();
    l.apply(&Event::ClaimSent {
        job_id: 7,
        first: 0,
        block: 102,
    })
    .unwrap();
    l.apply(&Event::ClaimMined {
        job_id: 7,
        first: 0,
        claim_id: 0,
        claim_block,
    })
    .unwrap();
    assert_eq!(
        l.step(claim_block + 2).unwrap(),
        vec![Action::BlockHash {
            job_id: 7,
            first: 0,
            number: claim_block + 1
        }]
    );
    l.apply(&Event::BlockHash {
        job_id: 7,
        first: 0,
        hash: block_hash(claim_block + 1),
    })
    .unwrap();
    let due: Vec<u64> = l
        .step(claim_block + 3)
        .unwrap()
        .iter()
        .filter_map(|a| match a {
            Action::Verify {
                claim_id: 0,
                receipt,
                ..
            } => Some(receipt.seg_no),
            _ => None,
        })
        .collect();
    assert_eq!(
        due,
        challenged_of(claim_block),
        "every challenge at once, not one per pass"
    );
}

/// The life cycle on a chain where every pass costs 14 blocks: with one verify per claim per pass, only the
/// first challenge of each claim fits in the 30-block window.
#[test]
fn every_challenge_is_answered_when_each_pass_costs_many_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let policy = CLAIMS_OF_10;
    let l = ledger_with_receipts(dir.path(), policy, 0..30);
    let mut chain = Chain::new(14);
    for _ in 0..40 {
        chain.step(&l);
    }
    let per_claim: Vec<usize> = chain
        .claims
        .iter()
        .map(|&(_, first, last, _, b)| {
            (first..=last)
                .filter(|s| hashes::is_challenged(b, block_hash(b + 1), *s, W.verification_rate))
                .count()
        })
        .collect();
    assert_eq!(chain.claims.len(), 3);
    assert!(
        per_claim.iter().any(|n| *n >= 2),
        "a claim with two challenges (the case under test): {per_claim:?}"
    );
    assert_eq!(
        chain.verified.len(),
        per_claim.iter().sum::<usize>(),
        "every challenge answered inside its window"
    );
}

/// The solver answers 100 blocks after each verify, long after the claim's fees (60 blocks of windows): the
/// challenged segments' data stays until their verdicts, everything else goes with the fees.
#[test]
fn a_verdict_after_the_fees_keeps_its_segments_data_until_it_comes() {
    let dir = tempfile::tempdir().unwrap();
    let policy = CLAIMS_OF_10;
    let l = ledger_with_receipts(dir.path(), policy, 0..30);
    let mut chain = Chain::new(1);
    chain.verdict_after = 100;
    let mut released_before_verdicts = None;
    for _ in 0..400 {
        chain.step(&l);
        if released_before_verdicts.is_none() && chain.distributed.len() == 3 {
            released_before_verdicts = Some(chain.released.len());
        }
    }
    assert_eq!(chain.distributed, vec![0, 1, 2]);
    assert!(chain.verdicts.is_empty(), "every verdict came");
    let challenged = chain.verified.len();
    assert!(challenged > 0);
    assert!(
        released_before_verdicts.unwrap() <= 30 - challenged,
        "the challenged segments were kept past the fees"
    );
    let mut released = chain.released.clone();
    released.sort();
    assert_eq!(released, (0..30).collect::<Vec<_>>(), "then released, once");
}
