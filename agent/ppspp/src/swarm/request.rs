//! Downloading: what peers have (HAVE, its periodic refresh, and the HAVE messages we send), being choked,
//! scheduling requests (rarest-first for static content, in order from the play position for live, spread
//! over the peers that have each chunk within a per-channel window), and receiving DATA: INTEGRITY
//! candidates, verification against the Merkle tree or signed munro, bad or unverifiable data, arrivals
//! (cancelling duplicates, the delivery-rate estimate) and completion.

use super::congestion::update_rtt;
use super::{ChanState, Channel, Content, Event, Swarm};
use crate::bin::{Bin, range_to_bins};
use crate::live::munro_of;
use crate::merkle::{Hash, digest, node};
use crate::wire::{Addressing, ChunkSpec, Message};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

impl Swarm {
    /// HAVE messages for everything we hold (and may serve).
    pub(super) fn have_messages(&self, a: Addressing) -> Vec<Message> {
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        let mut keys: Vec<u64> = self.chunks.keys().copied().collect();
        if let Content::LiveSource { .. } = self.content {
            // Announce only complete (signed) munros.
            keys.retain(|c| {
                self.munro_sigs
                    .contains_key(&munro_of(*c, self.cfg.chunks_per_munro))
            });
            // Under super-seeding, chunks still pending the delayed announcement are not announced here.
            if let Some((_, s, _)) = self.delayed_have.front() {
                let s = *s;
                keys.retain(|c| *c < s);
            }
        }
        keys.sort_unstable();
        for c in keys {
            match ranges.last_mut() {
                Some((_, e)) if *e + 1 == c => *e = c,
                _ => ranges.push((c, c)),
            }
        }
        ranges
            .into_iter()
            .flat_map(|(s, e)| self.range_specs(a, s, e))
            .map(Message::Have)
            .collect()
    }

    pub(super) fn range_specs(&self, a: Addressing, s: u64, e: u64) -> Vec<ChunkSpec> {
        match a {
            Addressing::Bins32 | Addressing::Bins64 => range_to_bins(s, e)
                .into_iter()
                .map(|b| ChunkSpec::from_bin(a, b, self.cfg.chunk_size))
                .collect(),
            _ => vec![ChunkSpec::from_range(a, s, e, self.cfg.chunk_size)],
        }
    }

    /// HAVE: the peer has these chunks (live: they exist, which starts their playback deadline).
    pub(super) fn on_have(&mut self, now: Instant, id: u32, spec: ChunkSpec) {
        let cs = self.cfg.chunk_size;
        let ch = self.channels.get_mut(&id).unwrap();
        self.stats.haves_in += 1;
        if let Some((s, mut e)) = spec.chunks(cs) {
            if let Content::Static {
                nchunks: Some(n), ..
            } = &self.content
            {
                e = e.min(n.saturating_sub(1));
            }
            ch.remote_have.set_range(s, e);
            if self.is_live() && !matches!(self.content, Content::LiveSource { .. }) {
                // Only the part of the range inside our discard window matters (and is bounded).
                let s = s.max(e.saturating_sub(self.cfg.live_discard_window));
                for c in s..=e {
                    self.first_seen.entry(c).or_insert(now);
                }
                if self.newest.is_none_or(|n| e > n) {
                    self.newest = Some(e);
                }
                self.join_earlier(s);
            }
        }
    }

    /// A live leech that has delivered nothing yet moves its starting point back when a HAVE shows older
    /// chunks within `live_join_back` (a source announces each fresh munro to one peer first, so the first
    /// HAVE a joining peer sees need not be the oldest).
    fn join_earlier(&mut self, have_from: u64) {
        let per = self.cfg.chunks_per_munro;
        let (Some(newest), Content::LiveLeech { play: Some(p), .. }) =
            (self.newest, &mut self.content)
        else {
            return;
        };
        if self.live_started || self.cfg.live_join_back == 0 {
            return;
        }
        let floor = (newest + 1)
            .saturating_sub(per)
            .saturating_sub(self.cfg.live_join_back);
        let start = have_from.div_ceil(per).saturating_mul(per).max(floor);
        if start < *p {
            *p = start;
            self.deliver = Some(start);
        }
    }

    /// CHOKE: the peer stopped serving us; our requests to it are forgotten (they go elsewhere).
    pub(super) fn on_choke(&mut self, id: u32) {
        let ch = self.channels.get_mut(&id).unwrap();
        ch.remote_chokes_us = true;
        let outs: Vec<u64> = std::mem::take(&mut ch.outstanding).into_keys().collect();
        for c in outs {
            if self.requested.get(&c) == Some(&id) {
                self.requested.remove(&c);
            }
        }
    }

    /// Every `have_refresh`, re-announces what we have to each peer that lacks some of it.
    pub(super) fn refresh_haves(&mut self, now: Instant) {
        if now >= self.next_have_refresh {
            self.next_have_refresh = now + self.cfg.have_refresh;
            let ids: Vec<u32> = self.channels.keys().copied().collect();
            for id in ids {
                let ch = &self.channels[&id];
                if ch.state != ChanState::Established
                    || ch.we_choke
                    || self.chunks.keys().all(|c| ch.remote_have.get(*c))
                {
                    continue;
                }
                let msgs = self.have_messages(ch.ctx.addressing);
                self.channels.get_mut(&id).unwrap().pending.extend(msgs);
            }
        }
    }

    /// INTEGRITY: an unverified hash, kept as a candidate until the DATA it covers arrives.
    pub(super) fn on_integrity(
        &self,
        spec: ChunkSpec,
        hash: Vec<u8>,
        cands: &mut BTreeMap<Bin, Hash>,
    ) {
        let cs = self.cfg.chunk_size;
        if let (Some((s, e)), Some(h)) = (spec.chunks(cs), Hash::from_slice(&hash)) {
            let bins = range_to_bins(s, e);
            if bins.len() == 1 && !self.store.contains(bins[0]) {
                cands.insert(bins[0], h);
            }
        }
    }

    fn max_outstanding(&self) -> usize {
        (self.cfg.max_outstanding_bytes / self.cfg.chunk_size as usize).max(4)
    }

    /// Requests kept outstanding on a channel: a quarter second of its measured delivery rate, at least 16.
    fn window(c: &Channel, max_out: usize) -> usize {
        ((c.rate * 0.25) as usize).clamp(16.min(max_out), max_out)
    }

    pub(super) fn schedule_requests(&mut self, now: Instant) {
        let max_out = self.max_outstanding();
        let needy: Vec<u32> = {
            let mut v: Vec<u32> = self
                .channels
                .iter()
                .filter(|(_, c)| {
                    c.state == ChanState::Established
                        && !c.remote_chokes_us
                        && !c.we_choke
                        && c.outstanding.len() <= Self::window(c, max_out) / 2
                })
                .map(|(id, _)| *id)
                .collect();
            v.sort_unstable();
            v
        };
        if needy.is_empty() {
            return;
        }
        match &self.content {
            Content::Static { nchunks, .. } => {
                let mut cands: Vec<(u32, u64)> = Vec::new();
                let (lo, hi) = match nchunks {
                    Some(n) => (
                        self.first_missing,
                        (*n).min(self.first_missing + self.cfg.rarest_window),
                    ),
                    // Before the size is known, ask for the first chunk (it brings the peaks).
                    None => (0, 1),
                };
                for c in lo..hi {
                    if self.chunks.contains_key(&c) || self.requested.contains_key(&c) {
                        continue;
                    }
                    let avail = self
                        .channels
                        .values()
                        .filter(|ch| ch.remote_have.get(c))
                        .count() as u32;
                    if avail > 0 {
                        cands.push((avail, c));
                    }
                }
                // Rarest first; ties broken by a per-peer permutation of aligned 16-chunk blocks (in order
                // inside a block) so that peers fetch different parts and DATA can carry whole bins.
                let salt = self.cfg.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                cands.sort_unstable_by_key(|(a, c)| {
                    (
                        *a,
                        ((c / 16) ^ salt).wrapping_mul(0xD6E8_FEB8_6659_FD93) >> 16,
                        *c,
                    )
                });
                self.assign(now, &needy, cands.into_iter().map(|(_, c)| c), max_out);
            }
            Content::LiveLeech { play, .. } => {
                let Some(newest) = self.newest else { return };
                let start = match play {
                    Some(p) => *p,
                    None => {
                        // Join at the start of the newest complete munro, or up to `live_join_back`
                        // chunks earlier where a peer still has them.
                        let per = self.cfg.chunks_per_munro;
                        let oldest = self
                            .channels
                            .values()
                            .filter_map(|c| c.remote_have.first())
                            .min()
                            .unwrap_or(newest);
                        let back = (newest + 1)
                            .saturating_sub(per)
                            .saturating_sub(self.cfg.live_join_back);
                        let p = back.max(oldest).min(newest).div_ceil(per) * per;
                        let p = p.min((newest + 1).saturating_sub(per) / per * per);
                        if let Content::LiveLeech { play, .. } = &mut self.content {
                            *play = Some(p);
                        }
                        self.deliver = Some(p);
                        self.live_join_at.get_or_insert(now);
                        p
                    }
                };
                // Rarest first, then oldest: a fresh munro the source told only us of (super-seeding) goes
                // before older chunks that several peers can give us, else it waits behind them in our
                // window to the source while the rest of the swarm waits for it.
                let mut cands: Vec<(usize, u64)> = (start..=newest.min(start + 4096))
                    .filter(|c| !self.chunks.contains_key(c) && !self.requested.contains_key(c))
                    .map(|c| {
                        let holders = self
                            .channels
                            .values()
                            .filter(|ch| ch.remote_have.get(c))
                            .count();
                        (holders, c)
                    })
                    .collect();
                cands.sort_unstable();
                self.assign(now, &needy, cands.into_iter().map(|(_, c)| c), max_out);
            }
            Content::LiveSource { .. } => {}
        }
    }

    /// Gives candidate chunks (in priority order) to channels that have them, least loaded first. Static
    /// content goes to a peer that is still fetching it too, where one has the chunk and room, before a
    /// peer that has all of it: the boxes of a site fetching one bundle take it from each other and spare
    /// the seeder beyond the site's uplink.
    fn assign(
        &mut self,
        now: Instant,
        needy: &[u32],
        cands: impl Iterator<Item = u64>,
        max_out: usize,
    ) {
        let mut per: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
        let mut load: BTreeMap<u32, usize> = needy
            .iter()
            .map(|id| (*id, self.channels[id].outstanding.len()))
            .collect();
        let win: BTreeMap<u32, usize> = needy
            .iter()
            .map(|id| (*id, Self::window(&self.channels[id], max_out)))
            .collect();
        // Seeds among the needy: counted first (cheap), the whole range checked once per channel.
        if let Content::Static {
            nchunks: Some(n), ..
        } = self.content
            && n > 0
        {
            for id in needy {
                let ch = self.channels.get_mut(id).unwrap();
                if !ch.remote_complete && ch.remote_have.len() >= n {
                    ch.remote_complete = ch.remote_have.all_in(0, n - 1);
                }
            }
        }
        let seeds: Vec<u32> = needy
            .iter()
            .filter(|id| self.channels[*id].remote_complete)
            .copied()
            .collect();
        for c in cands {
            let failed = self.timed_out_at.get(&c);
            let best = needy
                .iter()
                .filter(|id| load[id] < win[id] && self.channels[id].remote_have.get(c))
                .min_by_key(|id| {
                    let fails = failed.and_then(|f| f.get(*id)).copied().unwrap_or(0);
                    (fails, seeds.contains(id), load[id], **id)
                });
            if let Some(&id) = best {
                *load.get_mut(&id).unwrap() += 1;
                per.entry(id).or_default().push(c);
            }
            if load.iter().all(|(id, l)| *l >= win[id]) {
                break;
            }
        }
        for (id, mut cs) in per {
            cs.sort_unstable();
            let ch = self.channels.get_mut(&id).unwrap();
            for c in &cs {
                ch.outstanding.insert(*c, now);
            }
            let a = ch.ctx.addressing;
            for c in &cs {
                self.requested.insert(*c, id);
            }
            self.stats.chunks_requested_out += cs.len() as u64;
            let ranges = coalesce(cs.iter().map(|c| (*c, *c)));
            let msgs: Vec<Message> = ranges
                .into_iter()
                .flat_map(|(s, e)| self.range_specs(a, s, e))
                .map(Message::Request)
                .collect();
            self.channels.get_mut(&id).unwrap().pending.extend(msgs);
        }
    }

    /// Verifies and stores DATA for chunks `s..=e`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_data(
        &mut self,
        now: Instant,
        id: u32,
        s: u64,
        e: u64,
        data: &[u8],
        cands: &mut BTreeMap<Bin, Hash>,
        munro_cands: &mut Vec<(Bin, u64, Vec<u8>)>,
    ) {
        let cs = self.cfg.chunk_size as usize;
        self.stats.data_bytes_down += data.len() as u64;
        let count = e - s + 1;
        if count > 1 << 16
            || data.len() > count as usize * cs
            || data.len() <= (count as usize - 1) * cs
        {
            self.bad_data(id, s);
            return;
        }
        // Establish the verified top: peaks (static) or signed munros (live).
        match &mut self.content {
            Content::Static { root, nchunks, .. } => {
                if nchunks.is_none() {
                    let root = *root;
                    match self.store.accept_peaks(&root, cands) {
                        Some(n) => {
                            if let Content::Static { nchunks, .. } = &mut self.content {
                                *nchunks = Some(n);
                            }
                        }
                        // No complete peak set in this datagram: the hashes were lost.
                        None if !cands.keys().any(|b| b.first_chunk() == 0) => {
                            self.unverifiable(id, s, e);
                            return;
                        }
                        None => {
                            self.bad_data(id, s);
                            return;
                        }
                    }
                }
            }
            Content::LiveLeech { key, .. } => {
                let key = key.clone();
                for (munro, ts, sig) in munro_cands.drain(..) {
                    if self.store.contains(munro) {
                        continue;
                    }
                    let Some(h) = cands.get(&munro) else { continue };
                    if key.verify(munro, ts, h, &sig) {
                        self.store.insert(munro, *h);
                        self.munro_sigs.insert(munro, (ts, sig));
                    } else {
                        self.bad_data(id, s);
                        return;
                    }
                }
            }
            Content::LiveSource { .. } => return,
        }
        let n = match &self.content {
            Content::Static { nchunks, .. } => *nchunks,
            _ => None,
        };
        if n.is_some_and(|n| e >= n) {
            self.bad_data(id, s);
            return;
        }
        let mut got = Vec::new();
        for b in range_to_bins(s, e) {
            let off = ((b.first_chunk() - s) as usize) * cs;
            let end = (off + b.chunk_count() as usize * cs).min(data.len());
            let bytes = &data[off..end];
            let parts: Vec<&[u8]> = bytes.chunks(cs).collect();
            if parts.len() as u64 != b.chunk_count() {
                self.bad_data(id, s);
                return;
            }
            if (b.first_chunk()..=b.last_chunk()).all(|c| self.chunks.contains_key(&c)) {
                self.stats.chunks_duplicate += b.chunk_count();
                self.arrived(now, id, b.first_chunk(), b.last_chunk(), false);
                continue;
            }
            // Short chunk only allowed at the very end of static content.
            let last_short = parts.last().is_some_and(|p| p.len() < cs);
            if last_short && n.is_none_or(|n| b.last_chunk() + 1 != n) {
                self.bad_data(id, b.first_chunk());
                return;
            }
            match self.verify_bin(b, &parts, cands) {
                Verdict::Ok => {}
                Verdict::Missing => {
                    self.unverifiable(id, b.first_chunk(), b.last_chunk());
                    continue;
                }
                Verdict::Mismatch => {
                    self.bad_data(id, b.first_chunk());
                    return;
                }
            }
            for (i, p) in parts.iter().enumerate() {
                let c = b.first_chunk() + i as u64;
                self.chunks.insert(c, p.to_vec());
                self.timed_out_at.remove(&c);
            }
            if let (true, Content::Static { last_len, .. }) = (last_short, &mut self.content) {
                *last_len = parts.last().map(|p| p.len());
            }
            self.stats.chunks_verified += b.chunk_count();
            got.push((b.first_chunk(), b.last_chunk()));
            self.arrived(now, id, b.first_chunk(), b.last_chunk(), true);
        }
        for (s, e) in got {
            self.new_have.push((s, e, Some(id)));
        }
        self.after_progress(now);
    }

    /// Verify a bin's chunks: build its subtree, then check it against the verified tree.
    fn verify_bin(&mut self, b: Bin, parts: &[&[u8]], cands: &mut BTreeMap<Bin, Hash>) -> Verdict {
        let f = self.cfg.hash;
        let mut level: Vec<Hash> = parts.iter().map(|p| digest(f, &[p])).collect();
        let mut nodes: Vec<(Bin, Hash)> = level
            .iter()
            .enumerate()
            .map(|(i, h)| (Bin::chunk(b.first_chunk() + i as u64), *h))
            .collect();
        let mut layer = 0;
        while level.len() > 1 {
            layer += 1;
            level = level.chunks(2).map(|p| node(f, &p[0], &p[1])).collect();
            for (i, h) in level.iter().enumerate() {
                nodes.push((Bin::new(layer, (b.first_chunk() >> layer) + i as u64), *h));
            }
        }
        // Walk up from `b` with the subtree hash.
        let mut cur = b;
        let mut h = level[0];
        let mut learned = Vec::new();
        loop {
            if let Some(v) = self.store.get(cur) {
                if v != h {
                    return Verdict::Mismatch;
                }
                break;
            }
            if cur.layer() >= 40 {
                return Verdict::Missing;
            }
            learned.push((cur, h));
            let sib = cur.sibling();
            let Some(sh) = self.store.get(sib).or_else(|| cands.get(&sib).copied()) else {
                return Verdict::Missing;
            };
            learned.push((sib, sh));
            h = if cur.is_left() {
                node(f, &h, &sh)
            } else {
                node(f, &sh, &h)
            };
            cur = cur.parent();
        }
        for (b, h) in nodes.into_iter().chain(learned) {
            cands.remove(&b);
            self.store.insert(b, h);
        }
        Verdict::Ok
    }

    /// Data we cannot verify yet (its hashes were lost): drop it, and let the request be retried.
    fn unverifiable(&mut self, id: u32, s: u64, e: u64) {
        self.stats.chunks_unverifiable += e - s + 1;
        for c in s..=e {
            if self.requested.get(&c) == Some(&id) {
                self.requested.remove(&c);
            }
            if let Some(ch) = self.channels.get_mut(&id) {
                ch.outstanding.remove(&c);
            }
        }
    }

    fn arrived(&mut self, now: Instant, from_id: u32, s: u64, e: u64, fresh: bool) {
        for c in s..=e {
            if let Some(owner) = self.requested.remove(&c) {
                if let Some(ch) = self.channels.get_mut(&owner)
                    && let Some(sent) = ch.outstanding.remove(&c)
                {
                    if owner == from_id {
                        update_rtt(&mut ch.srtt, now.saturating_duration_since(sent));
                        ch.rate_window.1 += 1;
                        let el = now.saturating_duration_since(ch.rate_window.0);
                        if el >= Duration::from_millis(50) {
                            let r = ch.rate_window.1 as f64 / el.as_secs_f64();
                            ch.rate = if ch.rate == 0.0 {
                                r
                            } else {
                                0.5 * ch.rate + 0.5 * r
                            };
                            ch.rate_window = (now, 0);
                        }
                    } else if fresh {
                        let a = ch.ctx.addressing;
                        let specs = self.range_specs(a, c, c);
                        let ch = self.channels.get_mut(&owner).unwrap();
                        ch.pending.extend(specs.into_iter().map(Message::Cancel));
                    }
                }
            } else if let Some(ch) = self.channels.get_mut(&from_id) {
                ch.outstanding.remove(&c);
            }
        }
    }

    fn bad_data(&mut self, id: u32, chunk: u64) {
        self.stats.chunks_bad += 1;
        let Some(ch) = self.channels.get_mut(&id) else {
            return;
        };
        if !ch.we_choke {
            ch.we_choke = true;
            ch.pending.push(Message::Choke);
            ch.queue.clear();
            ch.queued.clear();
            let addr = ch.addr;
            tracing::warn!(peer = %addr, chunk, "bad data: peer choked, data discarded");
            self.events.push_back(Event::BadData { peer: addr, chunk });
        }
        let ch = self.channels.get_mut(&id).unwrap();
        let outs: Vec<u64> = std::mem::take(&mut ch.outstanding).into_keys().collect();
        let a = ch.ctx.addressing;
        let cancels: Vec<Message> = coalesce(outs.iter().map(|c| (*c, *c)))
            .into_iter()
            .flat_map(|(s, e)| self.range_specs(a, s, e))
            .map(Message::Cancel)
            .collect();
        self.channels.get_mut(&id).unwrap().pending.extend(cancels);
        for c in outs {
            if self.requested.get(&c) == Some(&id) {
                self.requested.remove(&c);
            }
        }
    }

    pub(super) fn after_progress(&mut self, _now: Instant) {
        if let Content::Static {
            nchunks: Some(n),
            complete_sent,
            ..
        } = &mut self.content
        {
            while self.first_missing < *n && self.chunks.contains_key(&self.first_missing) {
                self.first_missing += 1;
            }
            if !*complete_sent && self.chunks.len() as u64 == *n {
                *complete_sent = true;
                self.events.push_back(Event::Complete);
            }
        }
        self.deliver_live(_now);
    }
}

enum Verdict {
    Ok,
    Missing,
    Mismatch,
}

pub(super) fn coalesce(it: impl Iterator<Item = (u64, u64)>) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = it.collect();
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (s, e) in v {
        match out.last_mut() {
            Some((_, pe)) if s <= *pe + 1 => *pe = (*pe).max(e),
            _ => out.push((s, e)),
        }
    }
    out
}
