//! Live streams (RFC 7574 Unified Merkle Tree with signed munros): the source publishing stream bytes as
//! hashed, signed munros and announcing them (super-seeding: to one peer first, to the rest after a delay),
//! SIGNED_INTEGRITY candidates, the discard window that forgets old chunks, and in-order delivery to the
//! application with the playback deadline that skips chunks that did not arrive in time.

use super::{ChanState, Content, Event, Swarm};
use crate::bin::{Bin, range_to_bins};
use crate::live::munro_of;
use crate::merkle::{Hash, digest, node};
use crate::wire::{ChunkSpec, Message};
use std::time::{Duration, Instant};

/// How many times a fresh munro's HAVE is sent again to its one super-seeding peer that has not asked for it.
const SUPERSEED_AGAIN: u8 = 2;

impl Swarm {
    /// Live source: append stream bytes. Complete munros are hashed, signed and announced.
    pub fn publish(&mut self, now: Instant, data: &[u8]) -> Result<(), crate::Error> {
        let cs = self.cfg.chunk_size as usize;
        let per = self.cfg.chunks_per_munro;
        let ts = self.timestamp(now);
        let Content::LiveSource {
            key,
            partial,
            next_chunk,
        } = &mut self.content
        else {
            return Err(crate::Error::NotLiveSource);
        };
        partial.extend_from_slice(data);
        let mut announced = Vec::new();
        while partial.len() >= cs * per as usize {
            let block: Vec<u8> = partial.drain(..cs * per as usize).collect();
            let first = *next_chunk;
            let munro = munro_of(first, per);
            let mut level: Vec<Hash> = Vec::new();
            for (i, c) in block.chunks(cs).enumerate() {
                let h = digest(self.cfg.hash, &[c]);
                self.store.insert(Bin::chunk(first + i as u64), h);
                self.chunks.insert(first + i as u64, c.to_vec());
                level.push(h);
            }
            let mut layer = 0;
            while level.len() > 1 {
                layer += 1;
                level = level
                    .chunks(2)
                    .map(|p| node(self.cfg.hash, &p[0], &p[1]))
                    .collect();
                for (i, h) in level.iter().enumerate() {
                    self.store
                        .insert(Bin::new(layer, (first >> layer) + i as u64), *h);
                }
            }
            let sig = key.sign(munro, ts, &level[0]);
            self.munro_sigs.insert(munro, (ts, sig));
            *next_chunk += per;
            announced.push((first, first + per - 1));
        }
        for (s, e) in announced {
            self.newest = Some(e);
            if self.cfg.superseed_delay.is_zero() || self.channels.len() <= 1 {
                self.new_have.push((s, e, None));
            } else {
                // Tell one peer now (one we serve), everyone after the delay.
                let est: Vec<u32> = {
                    let mut v: Vec<u32> = self
                        .channels
                        .iter()
                        .filter(|(_, c)| c.state == ChanState::Established && !c.choking)
                        .map(|(id, _)| *id)
                        .collect();
                    v.sort_unstable();
                    v
                };
                if let Some(&id) = est.get(self.superseed_rr % est.len().max(1)) {
                    self.superseed_rr += 1;
                    let a = self.channels[&id].ctx.addressing;
                    let specs = self.range_specs(a, s, e);
                    let ch = self.channels.get_mut(&id).unwrap();
                    ch.pending.extend(specs.into_iter().map(Message::Have));
                    self.superseed_again.push_back((
                        now + self.cfg.superseed_delay / 4,
                        id,
                        s,
                        e,
                        SUPERSEED_AGAIN,
                    ));
                }
                self.delayed_have
                    .push_back((now + self.cfg.superseed_delay, s, e));
            }
        }
        self.discard_old();
        self.flush(now);
        Ok(())
    }

    fn discard_old(&mut self) {
        if !self.is_live() {
            return;
        }
        let Some(newest) = self.newest else { return };
        let keep_from = newest.saturating_sub(self.cfg.live_discard_window);
        if keep_from == 0 {
            return;
        }
        self.chunks.retain(|c, _| *c >= keep_from);
        self.store.discard_before(keep_from);
        self.munro_sigs.retain(|b, _| b.last_chunk() >= keep_from);
        self.requested.retain(|c, _| *c >= keep_from);
        self.timed_out_at.retain(|c, _| *c >= keep_from);
        for ch in self.channels.values_mut() {
            ch.remote_have.discard_before(keep_from);
            ch.served.retain(|c| *c >= keep_from);
            ch.sent_hashes.retain(|b| b.last_chunk() >= keep_from);
            ch.hash_cands.retain(|b, _| b.last_chunk() >= keep_from);
        }
        while let Some((&c, _)) = self.first_seen.first_key_value() {
            if c >= keep_from {
                break;
            }
            self.first_seen.pop_first();
        }
    }

    pub(super) fn deliver_live(&mut self, now: Instant) {
        let Content::LiveLeech { play, .. } = &mut self.content else {
            return;
        };
        let Some(pos) = play else { return };
        // Before the first delivery a joining peer waits for HAVEs of older chunks: those the source sends
        // its other peers first (super-seeding), and a lost HAVE's re-announcement (every `have_refresh`;
        // two of them, so that one more loss does not cost the stream's start). A peer that starts at the
        // stream's first chunk has nothing older to wait for.
        let grace = (self.cfg.superseed_delay * 2).max(self.cfg.have_refresh * 2)
            + Duration::from_millis(100);
        if self.cfg.live_join_back > 0
            && *pos > 0
            && !self.live_started
            && self.live_join_at.is_some_and(|t| now < t + grace)
        {
            return;
        }
        let mut pos = *pos;
        loop {
            if let Some(d) = self.chunks.get(&pos) {
                self.events.push_back(Event::LiveData {
                    chunk: pos,
                    data: d.clone(),
                });
                pos += 1;
                continue;
            }
            // Skip a chunk whose deadline passed, if something later is available or announced.
            match self.first_seen.get(&pos) {
                Some(t) if now.saturating_duration_since(*t) >= self.cfg.playback_deadline => {
                    self.events.push_back(Event::LiveSkipped {
                        first: pos,
                        last: pos,
                    });
                    pos += 1;
                }
                // Never announced, and something after it is overdue: jump the whole gap at once.
                None => match self.first_seen.range(pos..).next() {
                    Some((&next, t))
                        if now.saturating_duration_since(*t) >= self.cfg.playback_deadline =>
                    {
                        self.events.push_back(Event::LiveSkipped {
                            first: pos,
                            last: next - 1,
                        });
                        pos = next;
                    }
                    _ => break,
                },
                _ => break,
            }
        }
        if let Content::LiveLeech { play, .. } = &mut self.content {
            self.live_started |= play.is_some_and(|p| p != pos);
            *play = Some(pos);
        }
        self.deliver = Some(pos);
    }

    /// Super-seeding: a fresh munro's one peer that has not asked for any of it (its HAVE, or its request,
    /// was lost) is told again, every quarter of the delay, up to [`SUPERSEED_AGAIN`] times; then munros
    /// whose delay has passed are announced to everyone. Without the repeat, one lost HAVE left a munro
    /// unfetched until the delay was over, and then every peer asked the source for it at once.
    pub(super) fn release_delayed_haves(&mut self, now: Instant) {
        while let Some(&(t, id, s, e, left)) = self.superseed_again.front() {
            if t > now {
                break;
            }
            self.superseed_again.pop_front();
            let Some(ch) = self.channels.get(&id) else {
                continue;
            };
            let asked = (s..=e)
                .any(|c| ch.served.contains(&c) || ch.queued.contains(&c) || ch.remote_have.get(c));
            if asked || ch.state != ChanState::Established {
                continue;
            }
            let specs = self.range_specs(ch.ctx.addressing, s, e);
            let ch = self.channels.get_mut(&id).unwrap();
            ch.pending.extend(specs.into_iter().map(Message::Have));
            if left > 1 {
                self.superseed_again.push_back((
                    now + self.cfg.superseed_delay / 4,
                    id,
                    s,
                    e,
                    left - 1,
                ));
            }
        }
        while let Some(&(t, s, e)) = self.delayed_have.front() {
            if t > now {
                break;
            }
            self.delayed_have.pop_front();
            self.new_have.push((s, e, None));
        }
    }

    /// SIGNED_INTEGRITY: a munro signature, kept as a candidate until the DATA it covers arrives.
    pub(super) fn on_signed_integrity(
        &self,
        spec: ChunkSpec,
        timestamp: u64,
        signature: Vec<u8>,
        munro_cands: &mut Vec<(Bin, u64, Vec<u8>)>,
    ) {
        let cs = self.cfg.chunk_size;
        if let Some((s, e)) = spec.chunks(cs) {
            let bins = range_to_bins(s, e);
            if bins.len() == 1 {
                munro_cands.push((bins[0], timestamp, signature));
            }
        }
    }
}
