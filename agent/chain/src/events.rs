//! Event watching by log polling from a cursor persisted in the [`Journal`]: it survives restarts of the agent
//! and of the node, and short reorgs (the hashes of recent blocks are kept and checked; events of blocks that
//! left the chain are handed back as [`Event::Retracted`] before the new chain's events).
//!
//! Cost per poll: one `eth_getBlockByNumber(latest)` when nothing is new, and also when the one new block's
//! logs bloom names none of the watched contracts; else one `eth_getLogs` more, and one header more when the
//! new head does not build on the cursor.

use std::collections::BTreeMap;

use ethers_core::abi::ethereum_types::BloomInput;
use ethers_core::types::{Address, H256, Log};
use serde::{Deserialize, Serialize};

use crate::journal::{Journal, JournalError};
use crate::node::{LogFilter, Node, NodeError};

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("reorg deeper than the {0} blocks this watcher remembers")]
    TooDeep(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Log(Log),
    /// A log delivered earlier whose block is no longer on the chain.
    Retracted(Log),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Cursor {
    /// Last block whose logs were delivered, and its hash.
    number: u64,
    hash: H256,
    /// Hashes of recent delivered blocks (heads seen and blocks with logs), for finding a fork point.
    recent: BTreeMap<u64, H256>,
    /// Logs delivered for recent blocks, to retract them if their block leaves the chain.
    delivered: BTreeMap<u64, Vec<Log>>,
}

pub struct Watcher {
    node: Node,
    journal: Journal,
    key: String,
    addresses: Vec<Address>,
    topics0: Vec<H256>,
    cursor: Cursor,
    /// Blocks of history kept for reorg handling.
    depth: usize,
    /// Largest block range per eth_getLogs.
    max_range: u64,
    /// Save the cursor in `poll` (else the caller saves it with [`Watcher::commit`] once it has recorded
    /// what it was handed).
    autosave: bool,
}

impl Watcher {
    /// A watcher named `name` (its cursor's key) over `addresses`; on first use it starts after block
    /// `start_after`.
    pub fn open(
        node: Node,
        journal: Journal,
        name: &str,
        addresses: Vec<Address>,
        topics0: Vec<H256>,
        start_after: u64,
    ) -> Result<Self, WatchError> {
        let key = format!("watch/{name}");
        let cursor = journal.get_meta(&key)?.unwrap_or(Cursor {
            number: start_after,
            ..Default::default()
        });
        Ok(Self {
            node,
            journal,
            key,
            addresses,
            topics0,
            cursor,
            depth: 64,
            max_range: 2_000,
            autosave: true,
        })
    }

    /// The cursor is saved only by [`Watcher::commit`]: a caller that records the events it is handed
    /// commits after that record, so a crash in between hands the same events over again (at least once).
    pub fn deferred(mut self) -> Self {
        self.autosave = false;
        self
    }

    /// Saves the cursor (the events handed out so far are taken care of).
    pub fn commit(&self) -> Result<(), WatchError> {
        self.journal.put_meta(&self.key, &self.cursor)?;
        Ok(())
    }

    /// Last block whose events were delivered.
    pub fn cursor(&self) -> u64 {
        self.cursor.number
    }

    /// New events since the last poll (retractions first). The cursor is saved before returning.
    pub async fn poll(&mut self) -> Result<Vec<Event>, WatchError> {
        let Some(head) = self.node.header(None).await? else {
            return Ok(Vec::new());
        };
        let head_n = head.number.as_u64();
        let c = &self.cursor;
        if head_n == c.number && head.hash == c.hash {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let builds_on_cursor = head_n == c.number + 1 && head.parent_hash == c.hash;
        if !builds_on_cursor && c.hash != H256::zero() {
            self.unwind(head_n, &mut out).await?;
        }
        // one new block whose bloom names none of our contracts: no eth_getLogs
        let nothing_for_us = head.logs_bloom.is_some_and(|bloom| {
            !self
                .addresses
                .iter()
                .any(|a| bloom.contains_input(BloomInput::Raw(a.as_bytes())))
        });
        if builds_on_cursor && nothing_for_us {
            self.advance(head_n, head.hash, !out.is_empty())?;
            return Ok(out);
        }
        let mut from = self.cursor.number + 1;
        while from <= head_n {
            let to = head_n.min(from + self.max_range - 1);
            let logs = self
                .node
                .logs(&LogFilter {
                    from_block: from,
                    to_block: to,
                    addresses: self.addresses.clone(),
                    topics0: self.topics0.clone(),
                })
                .await?;
            // the head moved to another fork between the two calls: deliver nothing now, look again next poll
            if logs.iter().any(|l| {
                l.block_number.map(|b| b.as_u64()) == Some(head_n)
                    && l.block_hash != Some(head.hash)
            }) {
                self.save()?;
                return Ok(out);
            }
            for l in logs {
                if l.removed == Some(true) {
                    continue;
                }
                let (Some(n), Some(h)) = (l.block_number, l.block_hash) else {
                    continue;
                };
                self.cursor.recent.insert(n.as_u64(), h);
                self.cursor
                    .delivered
                    .entry(n.as_u64())
                    .or_default()
                    .push(l.clone());
                out.push(Event::Log(l));
            }
            from = to + 1;
        }
        self.advance(head_n, head.hash, !out.is_empty())?;
        Ok(out)
    }

    /// Moves the cursor to the new head. It is written to disk whenever something was delivered (and every 32
    /// blocks): after a restart, blocks since the last write are scanned again, and they held nothing.
    fn advance(&mut self, head_n: u64, hash: H256, delivered: bool) -> Result<(), WatchError> {
        self.cursor.number = head_n;
        self.cursor.hash = hash;
        self.cursor.recent.insert(head_n, hash);
        self.prune(head_n);
        if delivered || head_n % 32 == 0 {
            self.save()?;
        }
        Ok(())
    }

    /// The cursor's block is no longer on the chain (or the chain got shorter): find the newest remembered
    /// block that still is, retract what was delivered after it, and move the cursor there.
    async fn unwind(&mut self, head_n: u64, out: &mut Vec<Event>) -> Result<(), WatchError> {
        if self.cursor.number <= head_n {
            if let Some(h) = self.node.header(Some(self.cursor.number)).await? {
                if h.hash == self.cursor.hash {
                    return Ok(());
                }
            }
        }
        let remembered: Vec<(u64, H256)> = self
            .cursor
            .recent
            .iter()
            .rev()
            .map(|(n, h)| (*n, *h))
            .collect();
        let mut fork = None;
        for (n, h) in remembered {
            if n > head_n {
                continue;
            }
            if self.node.header(Some(n)).await?.map(|x| x.hash) == Some(h) {
                fork = Some((n, h));
                break;
            }
        }
        let (n, h) = match fork {
            Some(f) => f,
            None if self.cursor.recent.len() < self.depth => {
                // everything remembered is gone (a chain restarted without its history): start over after the
                // oldest remembered block's predecessor
                let first = self
                    .cursor
                    .recent
                    .keys()
                    .next()
                    .copied()
                    .unwrap_or(self.cursor.number);
                (first.saturating_sub(1).min(head_n), H256::zero())
            }
            None => return Err(WatchError::TooDeep(self.depth)),
        };
        tracing::warn!(
            from = self.cursor.number,
            to = n,
            "chain reorganised: retracting events after the fork"
        );
        let gone: Vec<u64> = self
            .cursor
            .delivered
            .range(n + 1..)
            .map(|(k, _)| *k)
            .collect();
        for b in gone {
            for l in self.cursor.delivered.remove(&b).unwrap_or_default() {
                out.push(Event::Retracted(l));
            }
        }
        self.cursor.recent.retain(|k, _| *k <= n);
        self.cursor.number = n;
        self.cursor.hash = h;
        Ok(())
    }

    fn prune(&mut self, head_n: u64) {
        let keep_from = head_n.saturating_sub(self.depth as u64);
        self.cursor.recent.retain(|k, _| *k >= keep_from);
        self.cursor.delivered.retain(|k, _| *k >= keep_from);
    }

    fn save(&self) -> Result<(), WatchError> {
        if self.autosave {
            self.commit()?;
        }
        Ok(())
    }
}
