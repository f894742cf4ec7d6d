//! Handshake and channels: the per-channel state (`Channel`), the handshake options we offer and accept,
//! opening a channel (`connect`, or a peer's HANDSHAKE on channel 0), simultaneous open, the handshake reply
//! that establishes a channel we initiated, closing and dropping channels, and each channel's timers
//! (handshake retries, the channel timeout, keep-alives; request and DATA loss detection is in `congestion`).

use super::bitset::BitSet;
use super::{Event, Swarm, VERSION};
use crate::bin::Bin;
use crate::ledbat::Ledbat;
use crate::merkle::Hash;
use crate::wire::{
    self, Addressing, Handshake, HandshakeOption, IntegrityMethod, Message, WireCtx, msg, sigalg,
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
    pub(super) attempts: u32,
    pub(super) last_send: Instant,
    pub(super) last_recv: Instant,
    /// Chunks the remote has.
    pub(super) remote_have: BitSet,
    pub(super) remote_chokes_us: bool,
    /// We choke it: it sent bad data. We neither serve it nor accept its data.
    pub(super) we_choke: bool,
    /// We choke it by the application's choice ([`Swarm::choke`]): its requests are not served.
    pub(super) choking: bool,
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
    /// Unverified hashes received (INTEGRITY may come in earlier datagrams than the DATA it covers).
    pub(super) hash_cands: BTreeMap<Bin, Hash>,
    pub(super) munro_cands: Vec<(Bin, u64, Vec<u8>)>,
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

    fn ctx_for(&self, addressing: Addressing) -> WireCtx {
        WireCtx {
            addressing,
            hash_len: self.cfg.hash.digest_len(),
            sig_len: 64,
        }
    }

    fn new_channel(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        state: ChanState,
        addressing: Addressing,
    ) -> u32 {
        let id = loop {
            let id = self.next_rand() as u32;
            if id != 0 && !self.channels.contains_key(&id) {
                break id;
            }
        };
        let mut lp = self.cfg.ledbat.clone();
        lp.mss = (self.cfg.chunk_size as usize).max(lp.mss.min(self.cfg.max_datagram));
        let ch = Channel {
            addr,
            remote_id: 0,
            state,
            ctx: self.ctx_for(addressing),
            attempts: 1,
            last_send: now,
            last_recv: now,
            remote_have: BitSet::default(),
            remote_chokes_us: false,
            we_choke: false,
            choking: false,
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
            hash_cands: BTreeMap::new(),
            munro_cands: Vec::new(),
        };
        self.channels.insert(id, ch);
        self.by_addr.insert(addr, id);
        id
    }

    /// Opens a channel to `addr` (no-op if one exists).
    pub fn connect(&mut self, now: Instant, addr: SocketAddr) {
        if self.by_addr.contains_key(&addr) {
            return;
        }
        let a = self.cfg.addressing;
        let id = self.new_channel(now, addr, ChanState::HandshakeSent, a);
        self.send_handshake(now, id);
    }

    fn send_handshake(&mut self, now: Instant, id: u32) {
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
        let dst_chan = ch.remote_id;
        self.emit_datagram(now, id, dst_chan, msgs);
        if let Some(ch) = self.channels.get_mut(&id) {
            ch.pending.extend(haves);
        }
        self.dirty.get_or_insert(now);
    }

    pub(super) fn accept_handshake(
        &mut self,
        now: Instant,
        from: SocketAddr,
        hs: Handshake,
    ) -> Option<u32> {
        if hs.source_channel == 0 {
            return None;
        }
        if let Err(why) = self.check_options(&hs) {
            tracing::debug!(%from, why, "rejecting handshake");
            self.stats.rejected_handshakes += 1;
            return None;
        }
        let addressing = hs
            .find(|o| match o {
                HandshakeOption::ChunkAddressing(a) => Some(*a),
                _ => None,
            })
            .unwrap_or(Addressing::Bins32);
        // A repeated handshake from a known peer (our reply was lost) reuses its channel.
        let id = match self.by_addr.get(&from) {
            Some(&id) if self.channels[&id].remote_id == hs.source_channel => id,
            // Simultaneous open: both sides initiated; adopt our pending channel.
            Some(&id) if self.channels[&id].state == ChanState::HandshakeSent => {
                self.channels.get_mut(&id).unwrap().state = ChanState::Established;
                id
            }
            Some(&old) => {
                self.drop_channel(old, "replaced by a new handshake");
                self.new_channel(now, from, ChanState::Established, addressing)
            }
            None => {
                if self.channels.len() >= self.cfg.max_peers * 2 {
                    self.stats.rejected_handshakes += 1;
                    return None;
                }
                self.new_channel(now, from, ChanState::Established, addressing)
            }
        };
        let ch = self.channels.get_mut(&id).unwrap();
        ch.remote_id = hs.source_channel;
        ch.ctx = WireCtx {
            addressing,
            hash_len: self.cfg.hash.digest_len(),
            sig_len: 64,
        };
        self.send_handshake(now, id);
        self.events.push_back(Event::Connected(from));
        Some(id)
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
    pub(super) fn on_handshake(&mut self, id: u32, hs: Handshake) {
        let ch = self.channels.get_mut(&id).unwrap();
        if hs.source_channel == 0 {
            self.drop_channel(id, "peer closed the channel");
            return;
        }
        if ch.state == ChanState::Established && hs.source_channel != ch.remote_id {
            // The peer's view after a simultaneous open: follow its channel id.
            ch.remote_id = hs.source_channel;
        }
        if ch.state == ChanState::HandshakeSent {
            if let Err(why) = self.check_options(&hs) {
                tracing::debug!(why, "handshake reply rejected");
                self.stats.rejected_handshakes += 1;
                self.drop_channel(id, "incompatible handshake");
                return;
            }
            let ch = self.channels.get_mut(&id).unwrap();
            ch.remote_id = hs.source_channel;
            ch.state = ChanState::Established;
            let addr = ch.addr;
            let a = ch.ctx.addressing;
            let mut haves = self.have_messages(a);
            if self.cfg.pex {
                haves.push(Message::PexReq);
            }
            let ch = self.channels.get_mut(&id).unwrap();
            ch.pending.extend(haves);
            self.events.push_back(Event::Connected(addr));
        }
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
