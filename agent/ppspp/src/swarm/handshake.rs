//! Handshake and channels: the per-channel state (`Channel`), the handshake options we offer and accept,
//! opening a channel (`connect`, or a peer's HANDSHAKE on channel 0), simultaneous open, the handshake reply
//! that establishes a channel we initiated, closing and dropping channels, and each channel's timers
//! (handshake retries, the channel timeout, keep-alives; request and DATA loss detection is in `congestion`).
//!
//! Return routability (RFC 7574 §12.1): a HANDSHAKE on channel 0 proves nothing about its source address,
//! which anyone can forge. It gets a reply carrying our channel ID (unpredictable: see
//! [`Swarm::set_entropy`]) and a place in a bounded half-open table (`HalfOpen`), nothing more: no channel
//! slot, no event, no change to a channel already open with that address. Only a datagram sent to that
//! channel ID from that address (the initiator's next datagram, as in any PPSPP exchange) shows that the
//! initiator receives what we send there; then the channel opens, replacing an older one with the same
//! address (a peer that restarted). A datagram for an open channel from another address is never taken
//! for that channel.

use super::bitset::BitSet;
use super::{Event, Swarm, VERSION};
use crate::bin::Bin;
use crate::ledbat::Ledbat;
use crate::merkle::Hash;
use crate::wire::{
    self, Addressing, ChunkSpec, Handshake, HandshakeOption, IntegrityMethod, Message, WireCtx,
    msg, sigalg,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Where a channel is: our HANDSHAKE sent and unanswered, or both sides agreed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum ChanState {
    HandshakeSent,
    Established,
}

/// One channel to one peer: its handshake state and options, what it has, our requests to it, what we upload
/// to it (queue, DATA in flight, LEDBAT) and the hashes it has received from us.
pub(super) struct Channel {
    pub(super) addr: SocketAddr,
    pub(super) remote_id: u32,
    pub(super) state: ChanState,
    pub(super) ctx: WireCtx,
    /// Handshakes sent while opening; once open (as initiator), sends of the opening datagram.
    pub(super) attempts: u32,
    /// We opened the channel and the peer has not yet shown that our opening datagram (the one that opens
    /// its side, carrying our HAVE and PEX_REQ) reached it; with when that datagram was last sent. It is sent
    /// again every `handshake_retry` until then: without it the peer never opens its side, and a peer with
    /// nothing to ask for would wait deaf for its keep-alive.
    pub(super) unconfirmed: Option<Instant>,
    pub(super) last_send: Instant,
    pub(super) last_recv: Instant,
    /// Chunks the remote has.
    pub(super) remote_have: BitSet,
    /// Static content: the peer has all of it (a seed; once true, it stays true).
    pub(super) remote_complete: bool,
    pub(super) remote_chokes_us: bool,
    /// We choke it: it sent bad data. We neither serve it nor accept its data.
    pub(super) we_choke: bool,
    /// We choke it by the application's choice ([`Swarm::choke`]), or (a live source with
    /// `source_slots`) because it has no upload slot: its requests are not served.
    pub(super) choking: bool,
    /// Live source with `source_slots`: the peer holds one of the slots.
    pub(super) slot: bool,
    /// Our outstanding requests on this channel: chunk -> sent.
    pub(super) outstanding: BTreeMap<u64, Instant>,
    /// Request->data latency estimate (srtt, rttvar).
    pub(super) srtt: Option<(Duration, Duration)>,
    /// Upload: chunks requested by the remote, in order.
    pub(super) queue: VecDeque<u64>,
    pub(super) queued: BTreeSet<u64>,
    /// Upload: DATA in flight: first chunk -> (sent, bytes).
    pub(super) flight: BTreeMap<u64, (Instant, usize, Vec<Bin>)>,
    pub(super) flight_bytes: usize,
    pub(super) ledbat: Ledbat,
    /// Hashes (and munro signatures) the remote acknowledged receiving (the DATA carrying them was ACKed).
    pub(super) sent_hashes: BTreeSet<Bin>,
    /// Chunks already sent on this channel: a request for one again means the receiver could not use it
    /// (lost, or its hashes were lost), so it is re-sent with all its hashes.
    pub(super) served: BTreeSet<u64>,
    /// Delivery rate estimate (chunks/s) and the current measuring interval.
    pub(super) rate: f64,
    pub(super) rate_window: (Instant, u64),
    /// Control messages to flush at the end of the current input.
    pub(super) pending: Vec<Message>,
    pub(super) pex_requested_by_remote: bool,
    /// PEX_RES still accepted on this channel: [`PEX_RES_PER_REQ`] per PEX_REQ we sent, none unasked.
    pub(super) pex_budget: u32,
    /// Unverified hashes received (INTEGRITY may come in earlier datagrams than the DATA it covers).
    pub(super) hash_cands: BTreeMap<Bin, Hash>,
    pub(super) munro_cands: Vec<(Bin, u64, Vec<u8>)>,
}

impl Channel {
    /// Starts or stops choking the peer (CHOKE / UNCHOKE when that changes); choking drops its queued
    /// requests.
    pub(super) fn set_choking(&mut self, choke: bool) {
        if self.choking == choke {
            return;
        }
        self.choking = choke;
        if choke {
            self.queue.clear();
            self.queued.clear();
            self.pending.push(Message::Choke);
        } else {
            self.pending.push(Message::Unchoke);
        }
    }
}

/// PEX_RES messages accepted in answer to one PEX_REQ (we send at most 16 per answer).
pub(super) const PEX_RES_PER_REQ: u32 = 32;

/// Peers a full peer names when it refuses a handshake (see [`Swarm::refuse`]), and PEX_RES a channel we
/// opened takes before its handshake is answered.
pub(super) const REFERRALS: u32 = 8;

/// HAVE messages sent with the reply to an unproven handshake, and kept from the initiator's first datagram
/// (the rest follows once the channel opens): what an unproven address can make us send or hold is small.
const HALF_OPEN_HAVES: usize = 8;

/// A HANDSHAKE received on channel 0 and answered, from an address that has not yet shown it receives our
/// datagrams. `our_id` (the key of `Swarm::half_open`) was sent in the reply.
pub(super) struct HalfOpen {
    pub(super) addr: SocketAddr,
    pub(super) remote_id: u32,
    pub(super) addressing: Addressing,
    pub(super) created: Instant,
    /// HAVE that came in the handshake's datagram (libswift announces there), applied once the channel opens.
    pub(super) early_haves: Vec<ChunkSpec>,
    /// The reply carried only part of our HAVE; the whole goes once the channel opens.
    pub(super) haves_truncated: bool,
}

/// What a HANDSHAKE on channel 0 led to.
pub(super) enum Opened {
    /// An established channel (a repeated handshake): the rest of the datagram is for it.
    Channel(u32),
    /// Answered and half-open; the rest of the datagram is kept only as far as HAVE goes.
    HalfOpen,
    /// Refused, or answered without state for the rest of the datagram.
    Nothing,
}

impl Swarm {
    fn my_options(&self, addressing: Addressing) -> Vec<HandshakeOption> {
        let mut o = vec![
            HandshakeOption::Version(VERSION),
            HandshakeOption::MinVersion(VERSION),
            HandshakeOption::SwarmId(self.swarm_id.clone()),
        ];
        if self.is_live() {
            o.push(HandshakeOption::ContentIntegrity(
                IntegrityMethod::UnifiedMerkleTree,
            ));
            o.push(HandshakeOption::MerkleHash(self.cfg.hash));
            o.push(HandshakeOption::LiveSignature(sigalg::ED25519));
            o.push(HandshakeOption::ChunkAddressing(addressing));
            o.push(HandshakeOption::LiveDiscardWindow(
                self.cfg.live_discard_window,
            ));
        } else {
            o.push(HandshakeOption::ContentIntegrity(
                IntegrityMethod::MerkleHashTree,
            ));
            o.push(HandshakeOption::MerkleHash(self.cfg.hash));
            o.push(HandshakeOption::ChunkAddressing(addressing));
        }
        let all: Vec<u8> = (0..=msg::PEX_RES_CERT)
            .filter(|t| *t != msg::PEX_RES_CERT)
            .collect();
        o.push(HandshakeOption::SupportedMessages(wire::supported_bitmap(
            &all,
        )));
        o.push(HandshakeOption::ChunkSize(self.cfg.chunk_size));
        o
    }

    pub(super) fn ctx_for(&self, addressing: Addressing) -> WireCtx {
        WireCtx {
            addressing,
            hash_len: self.cfg.hash.digest_len(),
            sig_len: 64,
        }
    }

    /// A channel ID in use neither by a channel nor by a half-open handshake.
    fn fresh_channel_id(&mut self) -> u32 {
        loop {
            let id = self.next_rand() as u32;
            if id != 0 && !self.channels.contains_key(&id) && !self.half_open.contains_key(&id) {
                break id;
            }
        }
    }

    fn new_channel(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        state: ChanState,
        addressing: Addressing,
        id: Option<u32>,
    ) -> u32 {
        let id = match id {
            Some(id) => id,
            None => self.fresh_channel_id(),
        };
        let mut lp = self.cfg.ledbat.clone();
        lp.mss = (self.cfg.chunk_size as usize).max(lp.mss.min(self.cfg.max_datagram));
        let ch = Channel {
            addr,
            remote_id: 0,
            state,
            ctx: self.ctx_for(addressing),
            attempts: 1,
            unconfirmed: None,
            last_send: now,
            last_recv: now,
            remote_have: BitSet::default(),
            remote_complete: false,
            remote_chokes_us: false,
            we_choke: false,
            choking: false,
            slot: false,
            outstanding: BTreeMap::new(),
            srtt: None,
            queue: VecDeque::new(),
            queued: BTreeSet::new(),
            flight: BTreeMap::new(),
            flight_bytes: 0,
            ledbat: Ledbat::new(lp),
            sent_hashes: BTreeSet::new(),
            served: BTreeSet::new(),
            rate: 0.0,
            rate_window: (now, 0),
            pending: Vec::new(),
            pex_requested_by_remote: false,
            pex_budget: 0,
            hash_cands: BTreeMap::new(),
            munro_cands: Vec::new(),
        };
        self.channels.insert(id, ch);
        self.by_addr.insert(addr, id);
        id
    }

    /// Opens a channel to `addr` (no-op if one exists), and remembers `addr` as a bootstrap peer (up to
    /// [`BOOTSTRAP_MAX`](super::BOOTSTRAP_MAX)): while this peer has no channel at all, it tries its bootstrap
    /// peers again, waiting 1 s, then 2 s, up to 16 s between tries.
    pub fn connect(&mut self, now: Instant, addr: SocketAddr) {
        if !self.bootstrap.contains(&addr) && self.bootstrap.len() < super::BOOTSTRAP_MAX {
            self.bootstrap.push(addr);
        }
        self.open(now, addr);
    }

    /// Opens a channel to `addr` (no-op if one exists).
    pub(super) fn open(&mut self, now: Instant, addr: SocketAddr) {
        if self.by_addr.contains_key(&addr) {
            return;
        }
        let a = self.cfg.addressing;
        let id = self.new_channel(now, addr, ChanState::HandshakeSent, a, None);
        if self.cfg.pex {
            // a refusal may name other peers (see `refuse`)
            self.channels.get_mut(&id).unwrap().pex_budget = REFERRALS;
        }
        self.send_handshake(now, id);
    }

    /// Alone (no channel, established or opening): the bootstrap peers are tried again once the wait is over.
    pub(super) fn rejoin(&mut self, now: Instant) {
        if !self.channels.is_empty() || self.bootstrap.is_empty() {
            self.rejoin_at = None;
            return;
        }
        match self.rejoin_at {
            None => self.rejoin_at = Some(now + self.rejoin_backoff),
            Some(at) if now >= at => {
                self.rejoin_at = None;
                self.rejoin_backoff = (self.rejoin_backoff * 2).min(super::REJOIN_MAX);
                for a in self.bootstrap.clone() {
                    self.open(now, a);
                }
            }
            Some(_) => {}
        }
    }

    /// Our HANDSHAKE on channel `id`: to the peer's channel once established (an answer to its repeated
    /// handshake), to channel 0 while we wait for an answer (the responder answers a repeated handshake
    /// there; a handshake to its channel would be answered by nobody).
    fn send_handshake(&mut self, now: Instant, id: u32) {
        let ch = &self.channels[&id];
        let dst = if ch.state == ChanState::Established {
            ch.remote_id
        } else {
            0
        };
        self.send_handshake_to(now, id, dst);
    }

    fn send_handshake_to(&mut self, now: Instant, id: u32, dst_chan: u32) {
        let ch = &self.channels[&id];
        let hs = Handshake {
            source_channel: id,
            options: self.my_options(ch.ctx.addressing),
        };
        let msgs = vec![Message::Handshake(hs)];
        // The responder announces what it has right after its handshake, in a datagram of its own
        // (libswift, for one, does not act on HAVE carried in the handshake reply).
        let haves = if ch.state == ChanState::Established {
            self.have_messages(ch.ctx.addressing)
        } else {
            Vec::new()
        };
        self.emit_datagram(now, id, dst_chan, msgs);
        if let Some(ch) = self.channels.get_mut(&id) {
            ch.pending.extend(haves);
        }
        self.dirty.get_or_insert(now);
    }

    /// A HANDSHAKE on channel 0 from `from`. `rest` is what followed it in the datagram, `len` the
    /// datagram's length.
    pub(super) fn accept_handshake(
        &mut self,
        now: Instant,
        from: SocketAddr,
        hs: Handshake,
        rest: &[Message],
        len: usize,
    ) -> Opened {
        if hs.source_channel == 0 {
            return Opened::Nothing;
        }
        if let Err(why) = self.check_options(&hs) {
            tracing::debug!(%from, why, "rejecting handshake");
            self.stats.rejected_handshakes += 1;
            return Opened::Nothing;
        }
        let addressing = hs
            .find(|o| match o {
                HandshakeOption::ChunkAddressing(a) => Some(*a),
                _ => None,
            })
            .unwrap_or(Addressing::Bins32);
        match self.by_addr.get(&from).map(|id| (*id, &self.channels[id])) {
            // A repeated handshake from an established peer (our reply was lost): answer again.
            Some((id, ch))
                if ch.state == ChanState::Established && ch.remote_id == hs.source_channel =>
            {
                self.send_handshake(now, id);
                return Opened::Channel(id);
            }
            // Simultaneous open: both sides initiated. Answer on our pending channel; it opens once the
            // peer's answer comes to it (which also shows that the peer receives what we send).
            Some((id, ch)) if ch.state == ChanState::HandshakeSent => {
                let ctx = self.ctx_for(addressing);
                let ch = self.channels.get_mut(&id).unwrap();
                ch.remote_id = hs.source_channel;
                ch.ctx = ctx;
                self.send_handshake_to(now, id, hs.source_channel);
                return Opened::Nothing;
            }
            // New, or an established peer's address with another channel (a restarted peer, or a forgery):
            // half-open until proven; an open channel stays as it is meanwhile.
            _ => {}
        }
        if self.channels.len() >= self.cfg.max_peers * 2 {
            self.stats.rejected_handshakes += 1;
            self.refuse(from, hs.source_channel, len);
            return Opened::Nothing;
        }
        let our_id = match self.half_open_by_addr.get(&from) {
            Some(&id) if self.half_open[&id].remote_id == hs.source_channel => id,
            old => {
                if let Some(&old) = old {
                    self.forget_half_open(old);
                }
                while self.half_open.len() >= self.cfg.max_half_open.max(1) {
                    // Forget a random one: a flood of forged handshakes cannot predict which, so an honest
                    // initiator's entry survives a flood far larger than the table for a round trip.
                    let r = self.next_rand() as u32;
                    let victim = self
                        .half_open
                        .range(r..)
                        .next()
                        .or_else(|| self.half_open.iter().next())
                        .map(|(id, _)| *id);
                    match victim {
                        Some(v) => {
                            self.forget_half_open(v);
                            self.stats.half_open_dropped += 1;
                        }
                        None => break,
                    }
                }
                let id = self.fresh_channel_id();
                self.half_open.insert(
                    id,
                    HalfOpen {
                        addr: from,
                        remote_id: hs.source_channel,
                        addressing,
                        created: now,
                        early_haves: Vec::new(),
                        haves_truncated: false,
                    },
                );
                self.half_open_by_addr.insert(from, id);
                id
            }
        };
        let h = self.half_open.get_mut(&our_id).unwrap();
        for m in rest {
            if let Message::Have(spec) = m
                && h.early_haves.len() < HALF_OPEN_HAVES
            {
                h.early_haves.push(*spec);
            }
        }
        let reply = Handshake {
            source_channel: our_id,
            options: self.my_options(addressing),
        };
        let (haves, truncated) = self.unproven_haves(addressing);
        self.half_open.get_mut(&our_id).unwrap().haves_truncated = truncated;
        self.emit_to(from, hs.source_channel, vec![Message::Handshake(reply)]);
        // The responder announces what it has right after its handshake, in a datagram of its own
        // (libswift, for one, does not act on HAVE carried in the handshake reply, and asks for nothing
        // before it has a HAVE).
        if !haves.is_empty() {
            self.emit_to(from, hs.source_channel, haves);
        }
        Opened::HalfOpen
    }

    /// A full peer's answer to a handshake it cannot take: a few of its established, unchoked peers (PEX_RES,
    /// with PEX on) and a closing HANDSHAKE, so that the initiator goes on to them at once instead of
    /// retrying here until its attempts run out. Without it, a peer that knows only a full source (a viewer
    /// that found the box in a manifest) never joins. Stateless, and at most `max_len` bytes: the length of
    /// the handshake's datagram when its sender has not shown that it receives what we send, so that a
    /// forged handshake makes us send no more than it cost.
    fn refuse(&mut self, to: SocketAddr, their_channel: u32, max_len: usize) {
        let close = Message::Handshake(Handshake {
            source_channel: 0,
            options: vec![],
        });
        let size = |m: &Message| {
            let mut b = Vec::new();
            wire::encode_message(m, &mut b);
            b.len()
        };
        let mut room = max_len.saturating_sub(4 + size(&close));
        let mut msgs: Vec<Message> = Vec::new();
        if self.cfg.pex {
            let peers: Vec<SocketAddr> = self
                .channels
                .values()
                .filter(|c| c.state == ChanState::Established && !c.we_choke && c.addr != to)
                .map(|c| c.addr)
                .collect();
            // a different slice for each refused peer, so that referrals spread over the peers
            let skip = match peers.len() {
                0 => 0,
                n => (self.next_rand() % n as u64) as usize,
            };
            for a in peers
                .iter()
                .cycle()
                .skip(skip)
                .take(peers.len().min(REFERRALS as usize))
            {
                let m = super::pex::pex_res(*a);
                let n = size(&m);
                if n > room {
                    break;
                }
                room -= n;
                msgs.push(m);
            }
        }
        // The referrals come first: the closing HANDSHAKE ends the initiator's channel.
        msgs.push(close);
        self.emit_to(to, their_channel, msgs);
    }

    /// Our HAVE for the reply to an unproven handshake: at most [`HALF_OPEN_HAVES`] messages (and whether
    /// that is all), cached while what we have does not change, so that a flood of handshakes costs no
    /// walk over the chunks each.
    fn unproven_haves(&mut self, a: Addressing) -> (Vec<Message>, bool) {
        let key = (
            a,
            self.chunks.len(),
            self.chunks.keys().next().copied(),
            self.chunks.keys().next_back().copied(),
            self.munro_sigs.len(),
            self.delayed_have.front().map(|d| d.1),
        );
        if let Some((k, msgs, truncated)) = &self.unproven_have_cache
            && *k == key
        {
            return (msgs.clone(), *truncated);
        }
        let mut msgs = self.have_messages(a);
        let truncated = msgs.len() > HALF_OPEN_HAVES;
        msgs.truncate(HALF_OPEN_HAVES);
        self.unproven_have_cache = Some((key, msgs.clone(), truncated));
        (msgs, truncated)
    }

    pub(super) fn forget_half_open(&mut self, id: u32) -> Option<HalfOpen> {
        let h = self.half_open.remove(&id)?;
        if self.half_open_by_addr.get(&h.addr) == Some(&id) {
            self.half_open_by_addr.remove(&h.addr);
        }
        Some(h)
    }

    /// Half-open entries older than the channel timeout are forgotten (at most once a second).
    pub(super) fn expire_half_open(&mut self, now: Instant) {
        if now < self.half_open_sweep || self.half_open.is_empty() {
            return;
        }
        self.half_open_sweep = now + Duration::from_secs(1);
        let ttl = self.cfg.channel_timeout;
        let old: Vec<u32> = self
            .half_open
            .iter()
            .filter(|(_, h)| now.saturating_duration_since(h.created) >= ttl)
            .map(|(id, _)| *id)
            .collect();
        for id in old {
            self.forget_half_open(id);
            self.stats.half_open_dropped += 1;
        }
    }

    /// A datagram to the half-open channel `id` came from the address its handshake came from: the
    /// initiator receives what we send there. Opens the channel (replacing an older one with that address).
    pub(super) fn promote(&mut self, now: Instant, id: u32) -> bool {
        let Some(h) = self.forget_half_open(id) else {
            return false;
        };
        if let Some(&old) = self.by_addr.get(&h.addr) {
            self.drop_channel(old, "replaced by a new handshake");
        }
        if self.channels.len() >= self.cfg.max_peers * 2 {
            // filled up while this one was half-open: it believes itself connected, so it is told
            self.stats.rejected_handshakes += 1;
            self.refuse(h.addr, h.remote_id, usize::MAX);
            return false;
        }
        self.rejoin_backoff = super::REJOIN_MIN;
        let id = self.new_channel(now, h.addr, ChanState::Established, h.addressing, Some(id));
        let ch = self.channels.get_mut(&id).unwrap();
        ch.remote_id = h.remote_id;
        if h.haves_truncated {
            let haves = self.have_messages(h.addressing);
            self.channels.get_mut(&id).unwrap().pending.extend(haves);
        }
        for spec in h.early_haves {
            if !self.channels.contains_key(&id) {
                break;
            }
            self.on_have(now, id, spec);
        }
        self.events.push_back(Event::Connected(h.addr));
        true
    }

    fn check_options(&self, hs: &Handshake) -> Result<(), &'static str> {
        let mut min_ok = true;
        for o in &hs.options {
            match o {
                HandshakeOption::Version(v) if *v != VERSION => return Err("version"),
                HandshakeOption::MinVersion(v) if *v > VERSION => min_ok = false,
                HandshakeOption::SwarmId(s) if *s != self.swarm_id => return Err("swarm id"),
                HandshakeOption::ChunkSize(c) if *c != self.cfg.chunk_size => {
                    return Err("chunk size");
                }
                HandshakeOption::MerkleHash(h) if *h != self.cfg.hash => {
                    return Err("hash function");
                }
                HandshakeOption::ContentIntegrity(m) => {
                    let want = if self.is_live() {
                        IntegrityMethod::UnifiedMerkleTree
                    } else {
                        IntegrityMethod::MerkleHashTree
                    };
                    if *m != want {
                        return Err("integrity method");
                    }
                }
                HandshakeOption::LiveSignature(a) if *a != sigalg::ED25519 => {
                    return Err("signature algorithm");
                }
                _ => {}
            }
        }
        if !min_ok {
            return Err("min version");
        }
        // A missing CHUNK_SIZE option means the RFC default (1024) in theory, but deployed implementations
        // (libswift) omit it for other sizes agreed out of band (URL, metadata), so only an explicit mismatch
        // is rejected. Wrong-size data then simply fails verification.
        Ok(())
    }

    fn drop_channel(&mut self, id: u32, reason: &'static str) {
        if let Some(ch) = self.channels.remove(&id) {
            if self.by_addr.get(&ch.addr) == Some(&id) {
                self.by_addr.remove(&ch.addr);
            }
            for c in ch.outstanding.keys() {
                if self.requested.get(c) == Some(&id) {
                    self.requested.remove(c);
                }
            }
            for fails in self.timed_out_at.values_mut() {
                fails.remove(&id);
            }
            if ch.state == ChanState::Established {
                self.events.push_back(Event::Disconnected {
                    peer: ch.addr,
                    reason,
                });
            }
        }
    }

    /// HANDSHAKE on an open channel: a close (source channel 0), the peer's channel ID after a simultaneous
    /// open, or the reply that establishes a channel we initiated.
    pub(super) fn on_handshake(&mut self, now: Instant, id: u32, hs: Handshake) {
        let ch = self.channels.get_mut(&id).unwrap();
        if hs.source_channel == 0 {
            self.drop_channel(id, "peer closed the channel");
            return;
        }
        if ch.state == ChanState::Established {
            if hs.source_channel != ch.remote_id {
                // The peer's view after a simultaneous open: follow its channel id.
                ch.remote_id = hs.source_channel;
            }
            return;
        }
        if let Err(why) = self.check_options(&hs) {
            tracing::debug!(why, "handshake reply rejected");
            self.stats.rejected_handshakes += 1;
            self.drop_channel(id, "incompatible handshake");
            return;
        }
        let ch = self.channels.get_mut(&id).unwrap();
        ch.remote_id = hs.source_channel;
        self.establish(now, id);
    }

    /// A channel we initiated opens: the peer answered on our channel ID. Announces what we have, asks for
    /// peers, and sends at once even with nothing to say, since the responder opens its side of the channel
    /// only when a datagram reaches it there.
    pub(super) fn establish(&mut self, now: Instant, id: u32) {
        self.rejoin_backoff = super::REJOIN_MIN;
        let ch = self.channels.get_mut(&id).unwrap();
        ch.state = ChanState::Established;
        ch.attempts = 1;
        ch.unconfirmed = Some(now);
        let addr = ch.addr;
        self.send_opening(now, id);
        self.events.push_back(Event::Connected(addr));
    }

    /// The opening datagram of a channel we initiated: our HAVE and a PEX_REQ, or an empty datagram when
    /// there is nothing to say (the responder opens its side when any datagram reaches it there).
    fn send_opening(&mut self, now: Instant, id: u32) {
        let a = self.channels[&id].ctx.addressing;
        let mut msgs = self.have_messages(a);
        if self.cfg.pex {
            msgs.push(Message::PexReq);
        }
        let ch = self.channels.get_mut(&id).unwrap();
        if self.cfg.pex {
            ch.pex_budget = PEX_RES_PER_REQ;
        }
        if msgs.is_empty() {
            let remote = ch.remote_id;
            self.emit_datagram(now, id, remote, vec![]);
        } else {
            ch.pending.extend(msgs);
        }
    }

    /// Whether a datagram received on an open channel shows that the peer has opened its side: a half-open
    /// responder sends only its HANDSHAKE reply and HAVE (with INTEGRITY), so anything else does; with PEX,
    /// the answer to our PEX_REQ (PEX_RES, or an empty datagram from a peer that knows no one) is awaited, so
    /// that a lost PEX_REQ is asked again.
    pub(super) fn confirms_open(&self, msgs: &[Message]) -> bool {
        if msgs.is_empty() {
            return true;
        }
        if self.cfg.pex {
            return msgs.iter().any(|m| {
                matches!(
                    m,
                    Message::PexResV4(_) | Message::PexResV6(_) | Message::PexResCert(_)
                )
            });
        }
        msgs.iter().any(|m| {
            !matches!(
                m,
                Message::Handshake(_)
                    | Message::Have(_)
                    | Message::Integrity { .. }
                    | Message::SignedIntegrity { .. }
            )
        })
    }

    /// One channel's timers: handshake retries, the channel timeout (with a closing HANDSHAKE), lost requests
    /// and DATA (`detect_losses`), keep-alives.
    pub(super) fn channel_timers(&mut self, now: Instant, id: u32) {
        let ch = &self.channels[&id];
        match ch.state {
            ChanState::HandshakeSent => {
                if now.saturating_duration_since(ch.last_send) >= self.cfg.handshake_retry {
                    if ch.attempts >= self.cfg.handshake_attempts {
                        self.drop_channel(id, "no handshake reply");
                    } else {
                        self.channels.get_mut(&id).unwrap().attempts += 1;
                        self.send_handshake(now, id);
                    }
                }
            }
            ChanState::Established => {
                if now.saturating_duration_since(ch.last_recv) >= self.cfg.channel_timeout {
                    let remote = ch.remote_id;
                    let close = Handshake {
                        source_channel: 0,
                        options: vec![],
                    };
                    self.emit_datagram(now, id, remote, vec![Message::Handshake(close)]);
                    self.drop_channel(id, "timeout");
                    return;
                }
                if let Some(sent) = ch.unconfirmed
                    && now.saturating_duration_since(sent) >= self.cfg.handshake_retry
                {
                    let ch = self.channels.get_mut(&id).unwrap();
                    if ch.attempts >= self.cfg.handshake_attempts {
                        // a peer that never answers PEX_REQ (PEX off): the channel stays as it is
                        ch.unconfirmed = None;
                    } else {
                        ch.attempts += 1;
                        ch.unconfirmed = Some(now);
                        self.send_opening(now, id);
                    }
                }
                self.detect_losses(now, id);
                let ch = &self.channels[&id];
                if now.saturating_duration_since(ch.last_send) >= self.cfg.keepalive {
                    let remote = ch.remote_id;
                    self.emit_datagram(now, id, remote, vec![]);
                }
            }
        }
    }
}
