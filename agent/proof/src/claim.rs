//! A claim over a contiguous range of segments, and the stages it goes through on chain:
//! built -> sent -> mined (claim id and block known) -> challenges known -> each challenged segment's proof
//! sent -> verified -> fees distributed. Transitions are pure: a [`ClaimRecord`] and the current block in, the
//! next thing to send out ([`ClaimRecord::due`]).

use std::collections::{BTreeMap, BTreeSet};

use chain::H256;
use serde::{Deserialize, Serialize};

/// The contracts' windows, read from the JobsManager at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Windows {
    /// 1 in `verification_rate` segments is challenged.
    pub verification_rate: u64,
    /// Blocks after the claim in which challenged segments must be submitted.
    pub verification_period: u64,
    /// Blocks after that in which anyone may slash a missed verification; fees only after it.
    pub slashing_period: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// The proof (verify transaction) was sent.
    Sent,
    Passed,
    Failed,
}

// externally tagged: an internally tagged enum cannot read back the integer keys of `answers` from JSON
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Root computed and stored; claimWork not sent yet.
    Built,
    /// claimWork handed to the chain client (journaled there) in block `at`.
    Sent { at: u64 },
    /// claimWork mined: the contract's claim id and block.
    Mined { claim_id: u64, claim_block: u64 },
    /// The challenge rule evaluated: the challenged segments and what became of each.
    Challenged {
        claim_id: u64,
        claim_block: u64,
        answers: BTreeMap<u64, Option<Answer>>,
    },
    /// Fees distributed: done, but for the verdicts still awaited.
    Distributed {
        claim_id: u64,
        /// Challenged segments whose verification was requested and not answered when the fees were
        /// distributed. The solver has no deadline, and a bundle it cannot fetch fails verification (a
        /// slash): their data is kept until their verdicts come.
        #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
        awaiting: BTreeSet<u64>,
    },
    /// Slashed (a failed verification or a missed one): nothing more to do.
    Slashed { claim_id: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRecord {
    pub job_id: u64,
    pub first: u64,
    pub last: u64,
    pub root: H256,
    pub stage: Stage,
}

/// What a claim needs next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// Send claimWork.
    Send,
    /// The hash of this block decides the challenges (available from the block after it, for 256 blocks).
    BlockHash(u64),
    /// Submit this challenged segment's receipt and proof.
    Verify { claim_id: u64, seg_no: u64 },
    /// The slashing window is over: distribute the fees.
    Distribute { claim_id: u64 },
    /// No challenge can come any more and none is open: the inputs can go.
    Nothing,
    /// Waiting for the chain (a mined claim, a block, a window).
    Wait,
}

impl ClaimRecord {
    pub fn segments(&self) -> u64 {
        self.last - self.first + 1
    }

    pub fn claim_id(&self) -> Option<u64> {
        match &self.stage {
            Stage::Built | Stage::Sent { .. } => None,
            Stage::Mined { claim_id, .. }
            | Stage::Challenged { claim_id, .. }
            | Stage::Distributed { claim_id, .. }
            | Stage::Slashed { claim_id } => Some(*claim_id),
        }
    }

    /// Challenged segments whose verify has not been sent yet, in segment order. All of them are due
    /// together: the window is `verification_period` blocks and every pass of the driver costs blocks.
    pub fn unanswered(&self) -> Vec<u64> {
        match &self.stage {
            Stage::Challenged { answers, .. } => answers
                .iter()
                .filter(|(_, a)| a.is_none())
                .map(|(s, _)| *s)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Segments whose verification was requested and has no verdict yet: their data must stay.
    pub fn awaiting_verdict(&self) -> BTreeSet<u64> {
        match &self.stage {
            Stage::Challenged { answers, .. } => answers
                .iter()
                .filter(|(_, a)| **a == Some(Answer::Sent))
                .map(|(s, _)| *s)
                .collect(),
            Stage::Distributed { awaiting, .. } => awaiting.clone(),
            _ => BTreeSet::new(),
        }
    }

    pub fn is_finished(&self) -> bool {
        matches!(
            self.stage,
            Stage::Distributed { .. } | Stage::Slashed { .. }
        )
    }

    /// The next thing this claim needs at block `block`.
    pub fn due(&self, block: u64, w: &Windows) -> Due {
        match &self.stage {
            Stage::Built => Due::Send,
            Stage::Sent { .. } => Due::Wait,
            Stage::Mined { claim_block, .. } => {
                if block >= claim_block + 2 {
                    Due::BlockHash(claim_block + 1)
                } else {
                    Due::Wait
                }
            }
            Stage::Challenged {
                claim_id,
                claim_block,
                answers,
            } => {
                let verify_end = claim_block + w.verification_period;
                if block < verify_end {
                    if let Some((seg, _)) = answers.iter().find(|(_, a)| a.is_none()) {
                        return Due::Verify {
                            claim_id: *claim_id,
                            seg_no: *seg,
                        };
                    }
                }
                if answers.values().any(|a| *a == Some(Answer::Failed)) {
                    return Due::Nothing;
                }
                if block >= verify_end + w.slashing_period {
                    Due::Distribute {
                        claim_id: *claim_id,
                    }
                } else {
                    Due::Wait
                }
            }
            Stage::Distributed { .. } | Stage::Slashed { .. } => Due::Nothing,
        }
    }

    /// claimWork was sent in block `at`.
    pub fn sent(&mut self, at: u64) {
        if self.stage == Stage::Built {
            self.stage = Stage::Sent { at };
        }
    }

    /// The claimWork recorded as sent never reached the chain (refused before sending, or lost with a crash
    /// before the chain client journaled it): it is due again.
    pub fn unsent(&mut self) {
        if matches!(self.stage, Stage::Sent { .. }) {
            self.stage = Stage::Built;
        }
    }

    /// A verify recorded as sent never reached the chain: it is due again (while its window is open), and
    /// no verdict is awaited for it after the fees.
    pub fn verify_unsent(&mut self, seg_no: u64) {
        match &mut self.stage {
            Stage::Challenged { answers, .. } => {
                if let Some(slot) = answers.get_mut(&seg_no)
                    && *slot == Some(Answer::Sent)
                {
                    *slot = None;
                }
            }
            Stage::Distributed { awaiting, .. } => {
                awaiting.remove(&seg_no);
            }
            _ => {}
        }
    }

    /// claimWork mined as claim `claim_id` in `claim_block` (also from Built: a restart between the send and
    /// its record finds the claim on chain).
    pub fn mined(&mut self, claim_id: u64, claim_block: u64) {
        if matches!(self.stage, Stage::Built | Stage::Sent { .. }) {
            self.stage = Stage::Mined {
                claim_id,
                claim_block,
            };
        }
    }

    /// Applies the challenge rule with the hash of block `claim_block + 1`.
    pub fn challenges(&mut self, next_block_hash: H256, w: &Windows) {
        if let Stage::Mined {
            claim_id,
            claim_block,
        } = self.stage
        {
            let answers = (self.first..=self.last)
                .filter(|s| {
                    chain::hashes::is_challenged(
                        claim_block,
                        next_block_hash,
                        *s,
                        w.verification_rate,
                    )
                })
                .map(|s| (s, None))
                .collect();
            self.stage = Stage::Challenged {
                claim_id,
                claim_block,
                answers,
            };
        }
    }

    /// A challenged segment's verify was sent, or its result came back (also after the fees).
    pub fn answer(&mut self, seg_no: u64, a: Answer) {
        match &mut self.stage {
            Stage::Challenged { answers, .. } => {
                if let Some(slot) = answers.get_mut(&seg_no) {
                    // a result never goes back to "sent"
                    if !(a == Answer::Sent && matches!(slot, Some(Answer::Passed | Answer::Failed)))
                    {
                        *slot = Some(a);
                    }
                }
            }
            Stage::Distributed { awaiting, .. } if a != Answer::Sent => {
                awaiting.remove(&seg_no);
            }
            _ => {}
        }
    }

    pub fn distributed(&mut self) {
        if matches!(self.stage, Stage::Distributed { .. }) {
            return;
        }
        if let Some(claim_id) = self.claim_id() {
            self.stage = Stage::Distributed {
                claim_id,
                awaiting: self.awaiting_verdict(),
            };
        }
    }

    pub fn slashed(&mut self) {
        if let Some(claim_id) = self.claim_id() {
            self.stage = Stage::Slashed { claim_id };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Windows = Windows {
        verification_rate: 2,
        verification_period: 30,
        slashing_period: 30,
    };

    fn claim() -> ClaimRecord {
        ClaimRecord {
            job_id: 0,
            first: 0,
            last: 9,
            root: H256::repeat_byte(1),
            stage: Stage::Built,
        }
    }

    #[test]
    fn goes_through_every_stage_in_order() {
        let mut c = claim();
        assert_eq!(c.due(100, &W), Due::Send);
        c.sent(100);
        assert_eq!(c.due(101, &W), Due::Wait);
        c.mined(3, 101);
        assert_eq!(
            c.due(102, &W),
            Due::Wait,
            "the next block's hash is not known yet"
        );
        assert_eq!(c.due(103, &W), Due::BlockHash(102));
        c.challenges(H256::repeat_byte(7), &W);
        let Stage::Challenged { answers, .. } = &c.stage else {
            panic!()
        };
        let challenged: Vec<u64> = answers.keys().copied().collect();
        let expect: Vec<u64> = (0..=9)
            .filter(|s| chain::hashes::is_challenged(101, H256::repeat_byte(7), *s, 2))
            .collect();
        assert_eq!(challenged, expect);
        assert!(!challenged.is_empty());
        for s in &challenged {
            assert_eq!(
                c.due(104, &W),
                Due::Verify {
                    claim_id: 3,
                    seg_no: *s
                }
            );
            c.answer(*s, Answer::Sent);
        }
        assert_eq!(c.due(104, &W), Due::Wait);
        assert_eq!(
            c.due(101 + 59, &W),
            Due::Wait,
            "fees only after the slashing window"
        );
        assert_eq!(c.due(101 + 60, &W), Due::Distribute { claim_id: 3 });
        c.answer(challenged[0], Answer::Passed);
        c.answer(challenged[0], Answer::Sent);
        let Stage::Challenged { answers, .. } = &c.stage else {
            panic!()
        };
        assert_eq!(
            answers[&challenged[0]],
            Some(Answer::Passed),
            "a result is never undone"
        );
        c.distributed();
        assert_eq!(c.due(500, &W), Due::Nothing);
        assert!(c.is_finished());
    }

    #[test]
    fn a_verdict_still_awaited_when_the_fees_go_is_remembered_until_it_comes() {
        let mut c = claim();
        c.mined(3, 101);
        c.challenges(H256::repeat_byte(7), &W);
        let challenged: Vec<u64> = c.unanswered();
        assert!(challenged.len() >= 2, "{challenged:?}");
        for s in &challenged {
            c.answer(*s, Answer::Sent);
        }
        c.answer(challenged[0], Answer::Passed);
        let rest: BTreeSet<u64> = challenged[1..].iter().copied().collect();
        assert_eq!(c.awaiting_verdict(), rest);
        c.distributed();
        assert!(c.is_finished());
        assert_eq!(c.due(500, &W), Due::Nothing);
        assert_eq!(c.awaiting_verdict(), rest, "kept across the distribution");
        c.distributed();
        assert_eq!(
            c.awaiting_verdict(),
            rest,
            "a second distribution event changes nothing"
        );
        c.answer(challenged[1], Answer::Sent);
        assert_eq!(c.awaiting_verdict(), rest, "only a verdict ends the wait");
        // one verify never reached the chain (found after the window): nothing to wait for
        c.verify_unsent(challenged[1]);
        assert!(!c.awaiting_verdict().contains(&challenged[1]));
        for s in &challenged[2..] {
            c.answer(*s, Answer::Passed);
        }
        assert!(c.awaiting_verdict().is_empty());
        // a record written before the field existed reads back with nothing awaited
        let old: ClaimRecord = serde_json::from_str(
            r#"{"job_id":0,"first":0,"last":9,"root":"0x0101010101010101010101010101010101010101010101010101010101010101","stage":{"distributed":{"claim_id":3}}}"#,
        )
        .unwrap();
        assert!(old.is_finished() && old.awaiting_verdict().is_empty());
    }

    #[test]
    fn a_late_challenge_is_not_answered_and_a_failed_one_gets_no_fees() {
        let mut c = claim();
        c.mined(0, 10);
        c.challenges(H256::repeat_byte(7), &W);
        assert_eq!(
            c.due(40, &W),
            Due::Wait,
            "verification window over: nothing to send"
        );
        let mut f = claim();
        f.mined(0, 10);
        f.challenges(H256::repeat_byte(7), &W);
        let Stage::Challenged { answers, .. } = &f.stage else {
            panic!()
        };
        let s = *answers.keys().next().unwrap();
        f.answer(s, Answer::Failed);
        assert_eq!(f.due(200, &W), Due::Nothing);
    }
}
