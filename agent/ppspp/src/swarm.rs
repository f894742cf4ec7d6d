//! The sans-IO peer: one swarm, any number of channels. Datagrams and `now` go in; datagrams, events and
//! the next timeout come out. It never reads a clock and never touches a socket.

use crate::bin::{Bin, peaks, range_to_bins};
use crate::ledbat::{Ledbat, LedbatParams};
use crate::live::{SourceKey, SourcePublicKey, munro_of};
use crate::merkle::{Hash, HashStore, digest, node};
use crate::wire::{
    self, Addressing, ChunkSpec, Datagram, Handshake, HandshakeOption, HashFunc, IntegrityMethod,
    Message, WireCtx, msg, sigalg,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::{Duration, Instant};

/// Protocol version spoken (RFC 7574 is version 1).
pub const VERSION: u8 = 1;

/// Tunables. All durations are protocol timers driven by the caller's `now`.
#[derive(Clone, Debug)]
pub struct SwarmConfig {
    /// Chunk size in bytes (RFC default 1024).
    pub chunk_size: u32,
    /// Addressing this peer proposes when it initiates; as responder it follows the initiator.
    pub addressing: Addressing,
    /// Merkle hash function for static content (live uses the same function for the munro subtrees).
    pub hash: HashFunc,
    pub keepalive: Duration,
    pub channel_timeout: Duration,
    pub handshake_retry: Duration,
    pub handshake_attempts: u32,
    /// Outstanding requested bytes per channel.
    pub max_outstanding_bytes: usize,
    /// Largest datagram this peer builds; DATA carries `2^k` chunks when they fit.
    pub max_datagram: usize,
    pub min_rto: Duration,
    pub ledbat: LedbatParams,
    /// Ask peers for more peers (PEX_REQ) and connect to what they return, up to `max_peers`.
    pub pex: bool,
    pub max_peers: usize,
    /// Seed for channel IDs and other choices (deterministic simulations).
    pub seed: u64,
    /// Live: chunks per signed munro (power of two).
    pub chunks_per_munro: u64,
    /// Live: how many chunks behind the newest a peer keeps and serves.
    pub live_discard_window: u64,
    /// Live: a chunk not received this long after it was first announced is skipped.
    pub playback_deadline: Duration,
    /// Live source: announce a fresh munro to one peer at once and to the rest after this delay (so peers
    /// fetch it from each other and the source uploads each chunk about once). Zero announces to all.
    pub superseed_delay: Duration,
    /// Static rarest-first considers this many chunks past the first missing one.
    pub rarest_window: u64,
    /// HAVE is not acknowledged, so every this often a peer re-announces what it has to each peer that
    /// lacks some of it (a lost HAVE must not starve a peer).
    pub have_refresh: Duration,
}

impl Default for SwarmConfig {
    fn default() -> Self {
        SwarmConfig {
            chunk_size: 1024,
            addressing: Addressing::ChunkRanges32,
            hash: HashFunc::Sha1,
            keepalive: Duration::from_secs(10),
            channel_timeout: Duration::from_secs(60),
            handshake_retry: Duration::from_millis(500),
            handshake_attempts: 8,
            max_outstanding_bytes: 1 << 20,
            max_datagram: 1500,
            min_rto: Duration::from_millis(100),
            ledbat: LedbatParams::default(),
            pex: true,
            max_peers: 32,
            seed: 1,
            chunks_per_munro: 16,
            live_discard_window: 8192,
            playback_deadline: Duration::from_secs(3),
            superseed_delay: Duration::from_millis(400),
            rarest_window: 4096,
            have_refresh: Duration::from_secs(2),
        }
    }
}

/// A datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub dst: SocketAddr,
    pub payload: Vec<u8>,
}

/// What happened, for the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Connected(SocketAddr),
    Disconnected {
        peer: SocketAddr,
        reason: &'static str,
    },
    /// Static content: every chunk is here and verified.
    Complete,
    /// Live: the next chunk in order, verified.
    LiveData {
        chunk: u64,
        data: Vec<u8>,
    },
    /// Live: chunks `first..=last` missed their playback deadline and were skipped.
    LiveSkipped {
        first: u64,
        last: u64,
    },
    /// A peer sent data that failed verification; it was choked and its data discarded.
    BadData {
        peer: SocketAddr,
        chunk: u64,
    },
    PeersDiscovered(Vec<SocketAddr>),
}

/// Counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub datagrams_in: u64,
    pub datagrams_out: u64,
    pub malformed_datagrams: u64,
    pub unknown_channel: u64,
    pub rejected_handshakes: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub data_bytes_up: u64,
    pub chunks_verified: u64,
    pub chunks_duplicate: u64,
    pub chunks_bad: u64,
    pub requests_retransmitted: u64,
    /// Chunks requested from us / by us.
    pub chunks_requested_in: u64,
    pub chunks_requested_out: u64,
    pub haves_in: u64,
    /// DATA dropped because the hashes needed to verify it had not arrived (lost).
    pub chunks_unverifiable: u64,
    pub losses: u64,
}

enum Content {
    /// Static content with a Merkle tree; `root` is the swarm ID.
    Static {
        root: Hash,
        nchunks: Option<u64>,
        last_len: Option<usize>,
        complete_sent: bool,
    },
    LiveSource {
        key: SourceKey,
        partial: Vec<u8>,
        next_chunk: u64,
    },
    LiveLeech {
        key: SourcePublicKey,
        play: Option<u64>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ChanState {
    HandshakeSent,
    Established,
}

struct Channel {
    addr: SocketAddr,
    remote_id: u32,
    state: ChanState,
    ctx: WireCtx,
    attempts: u32,
    last_send: Instant,
    last_recv: Instant,
    /// Chunks the remote has.
    remote_have: BitSet,
    remote_chokes_us: bool,
    /// We choke it: it sent bad data. We neither serve it nor accept its data.
    we_choke: bool,
    /// We choke it by the application's choice ([`Swarm::choke`]): its requests are not served.
    choking: bool,
    /// Our outstanding requests on this channel: chunk -> sent.
    outstanding: BTreeMap<u64, Instant>,
    /// Request->data latency estimate (srtt, rttvar).
    srtt: Option<(Duration, Duration)>,
    /// Upload: chunks requested by the remote, in order.
    queue: VecDeque<u64>,
    queued: BTreeSet<u64>,
    /// Upload: DATA in flight: first chunk -> (sent, bytes).
    flight: BTreeMap<u64, (Instant, usize, Vec<Bin>)>,
    flight_bytes: usize,
    ledbat: Ledbat,
    /// Hashes (and munro signatures) the remote acknowledged receiving (the DATA carrying them was ACKed).
    sent_hashes: BTreeSet<Bin>,
    /// Chunks already sent on this channel: a request for one again means the receiver could not use it
    /// (lost, or its hashes were lost), so it is re-sent with all its hashes.
    served: BTreeSet<u64>,
    /// Hashes sent but not yet acknowledged: bin -> sent at (resent after an RTO).
    hash_pending: BTreeMap<Bin, Instant>,
    /// Delivery rate estimate (chunks/s) and the current measuring interval.
    rate: f64,
    rate_window: (Instant, u64),
    /// Control messages to flush at the end of the current input.
    pending: Vec<Message>,
    pex_requested_by_remote: bool,
    /// Unverified hashes received (INTEGRITY may come in earlier datagrams than the DATA it covers).
    hash_cands: BTreeMap<Bin, Hash>,
    munro_cands: Vec<(Bin, u64, Vec<u8>)>,
}

/// A bit set over chunk numbers: a window of at most [`BitSet::MAX_SPAN`] chunks starting at `base`
/// (bits below `base` were discarded and read as unset). Bounded: a peer cannot make us allocate more than
/// 2 MiB per channel or loop over more than that many words.
#[derive(Clone, Debug, Default)]
struct BitSet {
    base: u64,
    words: Vec<u64>,
}

impl BitSet {
    const MAX_SPAN: u64 = 1 << 24;

    fn get(&self, i: u64) -> bool {
        if i < self.base {
            return false;
        }
        let i = i - self.base;
        self.words
            .get((i / 64) as usize)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn set_range(&mut self, s: u64, e: u64) {
        if self.words.is_empty() {
            self.base = s & !63;
        }
        let s = s.max(self.base);
        let e = e.min(self.base.saturating_add(Self::MAX_SPAN - 1));
        if s > e {
            return;
        }
        let (s, e) = (s - self.base, e - self.base);
        let need = (e / 64 + 1) as usize;
        if self.words.len() < need {
            self.words.resize(need, 0);
        }
        let (sw, ew) = ((s / 64) as usize, (e / 64) as usize);
        let lo = !0u64 << (s % 64);
        let hi = !0u64 >> (63 - e % 64);
        if sw == ew {
            self.words[sw] |= lo & hi;
        } else {
            self.words[sw] |= lo;
            for w in &mut self.words[sw + 1..ew] {
                *w = !0;
            }
            self.words[ew] |= hi;
        }
    }

    /// Forgets chunks below `first_kept` (live discard window), sliding the window forward.
    fn discard_before(&mut self, first_kept: u64) {
        let first_kept = first_kept & !63;
        if first_kept <= self.base {
            return;
        }
        let drop = ((first_kept - self.base) / 64) as usize;
        self.words.drain(..drop.min(self.words.len()));
        self.base = first_kept;
    }
}

/// One PPSPP peer in one swarm.
pub struct Swarm {
    cfg: SwarmConfig,
    origin: Instant,
    swarm_id: Vec<u8>,
    content: Content,
    store: HashStore,
    chunks: BTreeMap<u64, Vec<u8>>,
    /// Live: signatures per munro: bin -> (timestamp, signature).
    munro_sigs: BTreeMap<Bin, (u64, Vec<u8>)>,
    channels: BTreeMap<u32, Channel>,
    by_addr: BTreeMap<SocketAddr, u32>,
    /// Chunk -> channel it is requested from.
    requested: BTreeMap<u64, u32>,
    /// Chunk -> channel whose request for it timed out last: the re-request goes to another peer that has
    /// the chunk when there is one (a peer that silently stopped serving must not get the same chunk again
    /// and again until its channel times out). Entries leave when the chunk is re-requested or arrives.
    timed_out_at: BTreeMap<u64, u32>,
    rng: u64,
    out: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
    /// Verified chunk ranges to announce with HAVE, and the channel they came from (not told again).
    new_have: Vec<(u64, u64, Option<u32>)>,
    /// Static: first chunk we do not have.
    first_missing: u64,
    /// Live: when each chunk was first announced to us (playback deadline), and delivery cursor.
    first_seen: BTreeMap<u64, Instant>,
    deliver: Option<u64>,
    newest: Option<u64>,
    /// Live source: (announce-to-all time, chunk range) pending under super-seeding.
    delayed_have: VecDeque<(Instant, u64, u64)>,
    superseed_rr: usize,
    last_tick: Instant,
    pex_seen: BTreeSet<SocketAddr>,
    /// Input was processed but its responses are not built yet: done lazily at the next
    /// [`Swarm::poll_transmit`], so that a burst of datagrams yields coalesced ACKs and requests.
    dirty: Option<Instant>,
    /// Wall-clock µs at `origin` (0 unless [`Swarm::set_wall_clock`] was called).
    epoch_us: u64,
    next_have_refresh: Instant,
}

fn us_since(origin: Instant, now: Instant) -> u64 {
    now.saturating_duration_since(origin).as_micros() as u64
}

impl Swarm {
    fn base(
        cfg: SwarmConfig,
        now: Instant,
        swarm_id: Vec<u8>,
        content: Content,
        store: HashStore,
    ) -> Self {
        let rng = cfg.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        Swarm {
            cfg,
            origin: now,
            swarm_id,
            content,
            store,
            chunks: BTreeMap::new(),
            munro_sigs: BTreeMap::new(),
            channels: BTreeMap::new(),
            by_addr: BTreeMap::new(),
            requested: BTreeMap::new(),
            timed_out_at: BTreeMap::new(),
            rng,
            out: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            new_have: Vec::new(),
            first_missing: 0,
            first_seen: BTreeMap::new(),
            deliver: None,
            newest: None,
            delayed_have: VecDeque::new(),
            superseed_rr: 0,
            last_tick: now,
            pex_seen: BTreeSet::new(),
            dirty: None,
            epoch_us: 0,
            next_have_refresh: now,
        }
    }

    /// A seeder of static content. The swarm ID is the Merkle root hash.
    pub fn new_static_seed(cfg: SwarmConfig, data: &[u8], now: Instant) -> Self {
        let cs = cfg.chunk_size as usize;
        let parts: Vec<&[u8]> = if data.is_empty() {
            vec![&[][..]]
        } else {
            data.chunks(cs).collect()
        };
        let (store, root) = HashStore::build(cfg.hash, parts.iter().copied());
        let n = parts.len() as u64;
        let last_len = parts.last().map(|p| p.len());
        let mut s = Self::base(
            cfg,
            now,
            root.as_bytes().to_vec(),
            Content::Static {
                root,
                nchunks: Some(n),
                last_len,
                complete_sent: true,
            },
            store,
        );
        for (i, p) in parts.iter().enumerate() {
            s.chunks.insert(i as u64, p.to_vec());
        }
        s.first_missing = n;
        s
    }

    /// A leecher of static content identified by its root hash.
    pub fn new_static_leech(
        cfg: SwarmConfig,
        swarm_id: &[u8],
        now: Instant,
    ) -> Result<Self, crate::Error> {
        if swarm_id.len() != cfg.hash.digest_len() {
            return Err(crate::Error::BadSwarmId(format!(
                "{} bytes, {:?} needs {}",
                swarm_id.len(),
                cfg.hash,
                cfg.hash.digest_len()
            )));
        }
        let root = Hash::from_slice(swarm_id).expect("length checked");
        let store = HashStore::new(cfg.hash);
        let content = Content::Static {
            root,
            nchunks: None,
            last_len: None,
            complete_sent: false,
        };
        Ok(Self::base(cfg, now, swarm_id.to_vec(), content, store))
    }

    /// The source of a live stream, signing with the Ed25519 key from `seed`.
    pub fn new_live_source(cfg: SwarmConfig, seed: [u8; 32], now: Instant) -> Self {
        let key = SourceKey::from_seed(seed);
        let id = key.swarm_id();
        let store = HashStore::new(cfg.hash);
        Self::base(
            cfg,
            now,
            id,
            Content::LiveSource {
                key,
                partial: Vec::new(),
                next_chunk: 0,
            },
            store,
        )
    }

    /// A peer of a live stream; the swarm ID carries the source's public key.
    pub fn new_live_leech(
        cfg: SwarmConfig,
        swarm_id: &[u8],
        now: Instant,
    ) -> Result<Self, crate::Error> {
        let key = SourcePublicKey::from_swarm_id(swarm_id).ok_or_else(|| {
            crate::Error::BadSwarmId("not an Ed25519 live swarm id (33 bytes, 0x0f + key)".into())
        })?;
        let store = HashStore::new(cfg.hash);
        Ok(Self::base(
            cfg,
            now,
            swarm_id.to_vec(),
            Content::LiveLeech { key, play: None },
            store,
        ))
    }

    /// Anchors protocol timestamps (DATA timestamps, signed munro times) to wall-clock time: `unix_us` is
    /// the time since the Unix epoch, in µs, at `now`. Without it timestamps count from the swarm's creation,
    /// which is valid for LEDBAT (only delay differences matter) but other implementations such as libswift
    /// expect wall-clock microseconds. The I/O driver calls this; the core never reads a clock.
    pub fn set_wall_clock(&mut self, now: Instant, unix_us: u64) {
        let since = us_since(self.origin, now);
        self.epoch_us = unix_us.saturating_sub(since);
    }

    fn timestamp(&self, now: Instant) -> u64 {
        self.epoch_us.wrapping_add(us_since(self.origin, now))
    }

    pub fn swarm_id(&self) -> &[u8] {
        &self.swarm_id
    }
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    pub fn is_live(&self) -> bool {
        !matches!(self.content, Content::Static { .. })
    }
    /// Established channels.
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.channels
            .values()
            .filter(|c| c.state == ChanState::Established)
            .map(|c| c.addr)
            .collect()
    }
    /// Static: (chunks verified, total chunks if known).
    pub fn progress(&self) -> (u64, Option<u64>) {
        let n = match &self.content {
            Content::Static { nchunks, .. } => *nchunks,
            _ => None,
        };
        (self.chunks.len() as u64, n)
    }
    /// Static: up to `limit` missing chunks, each with the peer it is currently requested from (diagnostics).
    pub fn missing_chunks(&self, limit: usize) -> Vec<(u64, Option<SocketAddr>)> {
        let Content::Static {
            nchunks: Some(n), ..
        } = &self.content
        else {
            return Vec::new();
        };
        (0..*n)
            .filter(|c| !self.chunks.contains_key(c))
            .take(limit)
            .map(|c| {
                (
                    c,
                    self.requested
                        .get(&c)
                        .and_then(|id| self.channels.get(id))
                        .map(|ch| ch.addr),
                )
            })
            .collect()
    }

    /// Stops serving `peer`: sends CHOKE and drops its queued requests (its requests are ignored until
    /// [`Swarm::unchoke`]). Returns false if there is no established channel to `peer`.
    pub fn choke(&mut self, now: Instant, peer: SocketAddr) -> bool {
        let Some(&id) = self.by_addr.get(&peer) else {
            return false;
        };
        let ch = self.channels.get_mut(&id).unwrap();
        if ch.state != ChanState::Established {
            return false;
        }
        if !ch.choking {
            ch.choking = true;
            ch.queue.clear();
            ch.queued.clear();
            ch.pending.push(Message::Choke);
        }
        self.flush(now);
        true
    }

    /// Serves `peer` again (sends UNCHOKE).
    pub fn unchoke(&mut self, now: Instant, peer: SocketAddr) -> bool {
        let Some(&id) = self.by_addr.get(&peer) else {
            return false;
        };
        let ch = self.channels.get_mut(&id).unwrap();
        if ch.state != ChanState::Established || ch.we_choke {
            return false;
        }
        if ch.choking {
            ch.choking = false;
            ch.pending.push(Message::Unchoke);
        }
        self.flush(now);
        true
    }

    pub fn is_complete(&self) -> bool {
        matches!(&self.content, Content::Static { nchunks: Some(n), .. } if self.chunks.len() as u64 == *n)
    }
    /// Static: the whole content once complete.
    pub fn content(&self) -> Option<Vec<u8>> {
        let Content::Static {
            nchunks: Some(n), ..
        } = &self.content
        else {
            return None;
        };
        if !self.is_complete() {
            return None;
        }
        let mut v = Vec::with_capacity(*n as usize * self.cfg.chunk_size as usize);
        for i in 0..*n {
            v.extend_from_slice(&self.chunks[&i]);
        }
        Some(v)
    }

    fn next_rand(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

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
            hash_pending: BTreeMap::new(),
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

    /// HAVE messages for everything we hold (and may serve).
    fn have_messages(&self, a: Addressing) -> Vec<Message> {
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

    fn range_specs(&self, a: Addressing, s: u64, e: u64) -> Vec<ChunkSpec> {
        match a {
            Addressing::Bins32 | Addressing::Bins64 => range_to_bins(s, e)
                .into_iter()
                .map(|b| ChunkSpec::from_bin(a, b, self.cfg.chunk_size))
                .collect(),
            _ => vec![ChunkSpec::from_range(a, s, e, self.cfg.chunk_size)],
        }
    }

    fn emit_datagram(&mut self, now: Instant, id: u32, dst_chan: u32, msgs: Vec<Message>) {
        let Some(ch) = self.channels.get_mut(&id) else {
            return;
        };
        let mut payload = Vec::with_capacity(64);
        payload.extend_from_slice(&dst_chan.to_be_bytes());
        let limit = self.cfg.max_datagram.max(64);
        for m in msgs {
            let mut one = Vec::new();
            wire::encode_message(&m, &mut one);
            if payload.len() > 4 && payload.len() + one.len() > limit {
                ch.last_send = now;
                self.stats.datagrams_out += 1;
                self.stats.bytes_up += payload.len() as u64;
                let full = std::mem::replace(&mut payload, dst_chan.to_be_bytes().to_vec());
                self.out.push_back(Transmit {
                    dst: ch.addr,
                    payload: full,
                });
            }
            payload.extend_from_slice(&one);
        }
        ch.last_send = now;
        self.stats.datagrams_out += 1;
        self.stats.bytes_up += payload.len() as u64;
        self.out.push_back(Transmit {
            dst: ch.addr,
            payload,
        });
    }

    /// Next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if let Some(now) = self.dirty.take() {
            self.flush(now);
        }
        self.out.pop_front()
    }
    /// Next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        if let Some(now) = self.dirty.take() {
            self.flush(now);
        }
        self.events.pop_front()
    }

    /// When [`Swarm::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let busy = self
            .channels
            .values()
            .any(|c| !c.outstanding.is_empty() || !c.flight.is_empty())
            || !self.delayed_have.is_empty()
            || self.deliver.is_some();
        let mut t: Option<Instant> = None;
        let mut upd = |x: Instant| t = Some(t.map_or(x, |y: Instant| y.min(x)));
        if busy {
            upd(self.last_tick + Duration::from_millis(10));
        }
        for c in self.channels.values() {
            match c.state {
                ChanState::HandshakeSent => upd(c.last_send + self.cfg.handshake_retry),
                ChanState::Established => {
                    upd(c.last_send + self.cfg.keepalive);
                    upd(self.next_have_refresh);
                    upd(c.last_recv + self.cfg.channel_timeout);
                }
            }
        }
        t
    }

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
                // Tell one peer now, everyone after the delay.
                let est: Vec<u32> = {
                    let mut v: Vec<u32> = self
                        .channels
                        .iter()
                        .filter(|(_, c)| c.state == ChanState::Established)
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
            ch.hash_pending.retain(|b, _| b.last_chunk() >= keep_from);
            ch.hash_cands.retain(|b, _| b.last_chunk() >= keep_from);
        }
        while let Some((&c, _)) = self.first_seen.first_key_value() {
            if c >= keep_from {
                break;
            }
            self.first_seen.pop_first();
        }
    }

    /// Feeds one received datagram.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, buf: &[u8]) {
        self.stats.datagrams_in += 1;
        self.stats.bytes_down += buf.len() as u64;
        if buf.len() < 4 {
            self.stats.malformed_datagrams += 1;
            return;
        }
        let chan = u32::from_be_bytes(buf[..4].try_into().unwrap());
        let mut ctx = if chan == 0 {
            WireCtx::default()
        } else {
            match self.channels.get(&chan) {
                Some(c) if c.addr == from => c.ctx,
                _ => {
                    self.stats.unknown_channel += 1;
                    return;
                }
            }
        };
        let dg = match wire::decode(buf, &mut ctx) {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!(%from, error = %e, "dropping malformed datagram");
                self.stats.malformed_datagrams += 1;
                return;
            }
        };
        self.process(now, from, dg);
        self.dirty = Some(now);
    }

    fn process(&mut self, now: Instant, from: SocketAddr, dg: Datagram) {
        let mut msgs = dg.messages.into_iter();
        let id = if dg.channel == 0 {
            // Only a HANDSHAKE may open a channel.
            let Some(Message::Handshake(hs)) = msgs.next() else {
                self.stats.malformed_datagrams += 1;
                return;
            };
            match self.accept_handshake(now, from, hs) {
                Some(id) => id,
                None => return,
            }
        } else {
            dg.channel
        };
        let Some(ch) = self.channels.get_mut(&id) else {
            return;
        };
        ch.last_recv = now;
        let mut candidates = std::mem::take(&mut ch.hash_cands);
        let mut munro_cands = std::mem::take(&mut ch.munro_cands);
        for m in msgs {
            if !self.channels.contains_key(&id) {
                return;
            }
            self.on_message(now, id, m, &mut candidates, &mut munro_cands);
        }
        if let Some(ch) = self.channels.get_mut(&id) {
            // Bounded: a peer cannot make us hold unlimited unverified hashes.
            if candidates.len() > 4096 {
                candidates.clear();
            }
            munro_cands.truncate(64);
            ch.hash_cands = candidates;
            ch.munro_cands = munro_cands;
        }
    }

    fn accept_handshake(&mut self, now: Instant, from: SocketAddr, hs: Handshake) -> Option<u32> {
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

    fn on_message(
        &mut self,
        now: Instant,
        id: u32,
        m: Message,
        cands: &mut BTreeMap<Bin, Hash>,
        munro_cands: &mut Vec<(Bin, u64, Vec<u8>)>,
    ) {
        let cs = self.cfg.chunk_size;
        let ch = self.channels.get_mut(&id).unwrap();
        match m {
            Message::Handshake(hs) => {
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
            Message::Have(spec) => {
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
                    }
                }
            }
            Message::Request(spec) => {
                if ch.we_choke || ch.choking {
                    return;
                }
                if let Some((s, e)) = spec.chunks(cs) {
                    let e = e.min(s + 65536);
                    self.stats.chunks_requested_in += e - s + 1;
                    for c in s..=e {
                        if self.chunks.contains_key(&c) && ch.queued.insert(c) {
                            ch.queue.push_back(c);
                        }
                    }
                }
            }
            Message::Cancel(spec) => {
                if let Some((s, e)) = spec.chunks(cs) {
                    for c in s..=e.min(s + 65536) {
                        ch.queued.remove(&c);
                    }
                    let q = &ch.queued;
                    ch.queue.retain(|c| q.contains(c));
                }
            }
            Message::Choke => {
                ch.remote_chokes_us = true;
                let outs: Vec<u64> = std::mem::take(&mut ch.outstanding).into_keys().collect();
                for c in outs {
                    if self.requested.get(&c) == Some(&id) {
                        self.requested.remove(&c);
                    }
                }
            }
            Message::Unchoke => ch.remote_chokes_us = false,
            Message::Ack { spec, delay_sample } => {
                if let Some((s, _)) = spec.chunks(cs)
                    && let Some((sent, bytes, hashes)) = ch.flight.remove(&s)
                {
                    ch.flight_bytes -= bytes;
                    for h in hashes {
                        ch.hash_pending.remove(&h);
                        ch.sent_hashes.insert(h);
                    }
                    ch.ledbat.on_ack(now, delay_sample as i64, bytes);
                    let rtt = now.saturating_duration_since(sent);
                    update_rtt(&mut ch.srtt, rtt);
                }
            }
            Message::Integrity { spec, hash } => {
                if let (Some((s, e)), Some(h)) = (spec.chunks(cs), Hash::from_slice(&hash)) {
                    let bins = range_to_bins(s, e);
                    if bins.len() == 1 && !self.store.contains(bins[0]) {
                        cands.insert(bins[0], h);
                    }
                }
            }
            Message::SignedIntegrity {
                spec,
                timestamp,
                signature,
            } => {
                if let Some((s, e)) = spec.chunks(cs) {
                    let bins = range_to_bins(s, e);
                    if bins.len() == 1 {
                        munro_cands.push((bins[0], timestamp, signature));
                    }
                }
            }
            Message::Data {
                spec,
                timestamp,
                data,
            } => {
                let delay = self
                    .epoch_us
                    .wrapping_add(us_since(self.origin, now))
                    .wrapping_sub(timestamp);
                ch.pending.push(Message::Ack {
                    spec,
                    delay_sample: delay,
                });
                if ch.we_choke {
                    return;
                }
                if let Some((s, e)) = spec.chunks(cs) {
                    self.on_data(now, id, s, e, &data, cands, munro_cands);
                }
            }
            Message::PexReq => {
                ch.pex_requested_by_remote = true;
                let me = ch.addr;
                let others: Vec<SocketAddr> = self
                    .channels
                    .values()
                    .filter(|c| c.state == ChanState::Established && c.addr != me && !c.we_choke)
                    .map(|c| c.addr)
                    .take(16)
                    .collect();
                let ch = self.channels.get_mut(&id).unwrap();
                for a in others {
                    ch.pending.push(match a {
                        SocketAddr::V4(v4) => Message::PexResV4(v4),
                        SocketAddr::V6(v6) => Message::PexResV6(v6),
                    });
                }
            }
            Message::PexResV4(a) => self.on_pex(now, SocketAddr::V4(a)),
            Message::PexResV6(a) => self.on_pex(now, SocketAddr::V6(a)),
            Message::PexResCert(_) => {}
        }
    }

    fn on_pex(&mut self, now: Instant, a: SocketAddr) {
        if !self.pex_seen.insert(a) {
            return;
        }
        self.events.push_back(Event::PeersDiscovered(vec![a]));
        if self.cfg.pex
            && self.channels.len() < self.cfg.max_peers
            && !a.ip().is_unspecified()
            && a.port() != 0
        {
            self.connect(now, a);
        }
    }

    /// Verifies and stores DATA for chunks `s..=e`.
    #[allow(clippy::too_many_arguments)]
    fn on_data(
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
            if parts.iter().all(|_| true)
                && (b.first_chunk()..=b.last_chunk()).all(|c| self.chunks.contains_key(&c))
            {
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
            self.stats.data_bytes_up += 0;
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

    fn after_progress(&mut self, _now: Instant) {
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

    fn deliver_live(&mut self, now: Instant) {
        let Content::LiveLeech { play, .. } = &mut self.content else {
            return;
        };
        let Some(pos) = play else { return };
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
            *play = Some(pos);
        }
        self.deliver = Some(pos);
    }

    /// Advances timers: retransmissions, keep-alives, channel timeouts, delayed announcements.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.dirty = None;
        self.last_tick = now;
        let ids: Vec<u32> = self.channels.keys().copied().collect();
        for id in ids {
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
                        continue;
                    }
                    let rto = self.rto(id);
                    let ch = self.channels.get_mut(&id).unwrap();
                    // Lost requests: re-request (possibly elsewhere).
                    let lost: Vec<u64> = ch
                        .outstanding
                        .iter()
                        .filter(|(_, t)| now.saturating_duration_since(**t) >= rto)
                        .map(|(c, _)| *c)
                        .collect();
                    for c in &lost {
                        ch.outstanding.remove(c);
                    }
                    // Lost DATA: congestion signal.
                    let flost: Vec<u64> = ch
                        .flight
                        .iter()
                        .filter(|(_, (t, _, _))| now.saturating_duration_since(*t) >= rto)
                        .map(|(c, _)| *c)
                        .collect();
                    for c in &flost {
                        if let Some((_, b, _)) = ch.flight.remove(c) {
                            ch.flight_bytes -= b;
                        }
                    }
                    debug_assert_eq!(
                        ch.flight_bytes,
                        ch.flight.values().map(|f| f.1).sum::<usize>(),
                        "flight_bytes out of step with the flight table"
                    );
                    if !flost.is_empty() {
                        ch.ledbat.on_loss(now, rto);
                        self.stats.losses += flost.len() as u64;
                    }
                    self.stats.requests_retransmitted += lost.len() as u64;
                    for c in lost {
                        if self.requested.get(&c) == Some(&id) {
                            self.requested.remove(&c);
                        }
                        self.timed_out_at.insert(c, id);
                    }
                    let ch = &self.channels[&id];
                    if now.saturating_duration_since(ch.last_send) >= self.cfg.keepalive {
                        let remote = ch.remote_id;
                        self.emit_datagram(now, id, remote, vec![]);
                    }
                }
            }
        }
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
        while let Some(&(t, s, e)) = self.delayed_have.front() {
            if t > now {
                break;
            }
            self.delayed_have.pop_front();
            self.new_have.push((s, e, None));
        }
        self.after_progress(now);
        self.flush(now);
    }

    fn rto(&self, id: u32) -> Duration {
        let ch = &self.channels[&id];
        match ch.srtt {
            Some((s, v)) => (s * 2 + v * 4).max(self.cfg.min_rto),
            None => self.cfg.min_rto * 10,
        }
    }

    /// Sends what is due: HAVE announcements, control messages, requests, DATA.
    fn flush(&mut self, now: Instant) {
        // HAVE announcements.
        if !self.new_have.is_empty() {
            let have = std::mem::take(&mut self.new_have);
            let ids: Vec<u32> = self.channels.keys().copied().collect();
            for id in ids {
                let ch = &self.channels[&id];
                if ch.state != ChanState::Established {
                    continue;
                }
                let a = ch.ctx.addressing;
                let msgs: Vec<Message> = coalesce(
                    have.iter()
                        .filter(|(_, _, src)| *src != Some(id))
                        .map(|(s, e, _)| (*s, *e)),
                )
                .into_iter()
                .flat_map(|(s, e)| self.range_specs(a, s, e))
                .map(Message::Have)
                .collect();
                self.channels.get_mut(&id).unwrap().pending.extend(msgs);
            }
        }
        self.schedule_requests(now);
        let ids: Vec<u32> = self.channels.keys().copied().collect();
        for id in &ids {
            let ch = self.channels.get_mut(id).unwrap();
            if ch.pending.is_empty() || ch.state != ChanState::Established {
                continue;
            }
            let msgs = std::mem::take(&mut ch.pending);
            let remote = ch.remote_id;
            self.emit_datagram(now, *id, remote, msgs);
        }
        self.upload(now);
    }

    fn max_outstanding(&self) -> usize {
        (self.cfg.max_outstanding_bytes / self.cfg.chunk_size as usize).max(4)
    }

    /// Requests kept outstanding on a channel: a quarter second of its measured delivery rate, at least 16.
    fn window(c: &Channel, max_out: usize) -> usize {
        ((c.rate * 0.25) as usize).clamp(16.min(max_out), max_out)
    }

    fn schedule_requests(&mut self, now: Instant) {
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
                        // Join at the start of the newest complete munro.
                        let per = self.cfg.chunks_per_munro;
                        let p = (newest + 1).saturating_sub(per) / per * per;
                        if let Content::LiveLeech { play, .. } = &mut self.content {
                            *play = Some(p);
                        }
                        self.deliver = Some(p);
                        p
                    }
                };
                let cands: Vec<u64> = (start..=newest.min(start + 4096))
                    .filter(|c| !self.chunks.contains_key(c) && !self.requested.contains_key(c))
                    .collect();
                self.assign(now, &needy, cands.into_iter(), max_out);
            }
            Content::LiveSource { .. } => {}
        }
    }

    /// Gives candidate chunks (in priority order) to channels that have them, least loaded first.
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
        for c in cands {
            let avoid = self.timed_out_at.get(&c);
            let best = needy
                .iter()
                .filter(|id| load[id] < win[id] && self.channels[id].remote_have.get(c))
                .min_by_key(|id| (Some(*id) == avoid, load[id], **id));
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
                self.timed_out_at.remove(c);
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

    /// Sends requested DATA within each channel's LEDBAT window, round robin.
    fn upload(&mut self, now: Instant) {
        let cs = self.cfg.chunk_size as usize;
        let per_dgram = {
            // Header, DATA spec and timestamp, plus room for a few INTEGRITY messages.
            let room = self
                .cfg
                .max_datagram
                .saturating_sub(4 + 1 + 16 + 8 + 6 * (1 + 16 + self.cfg.hash.digest_len()));
            let k = (room / cs).max(1);
            1u64 << (63 - (k as u64).leading_zeros())
        };
        let mut ids: Vec<u32> = self
            .channels
            .iter()
            .filter(|(_, c)| {
                !c.queue.is_empty()
                    && !c.we_choke
                    && !c.choking
                    && c.state == ChanState::Established
            })
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        let ts = self.timestamp(now);
        while !ids.is_empty() {
            ids.retain(|id| {
                let c = &self.channels[id];
                !c.queue.is_empty() && c.flight_bytes < c.ledbat.cwnd()
            });
            for &id in &ids.clone() {
                let ch = self.channels.get_mut(&id).unwrap();
                let Some(c) = ch.queue.pop_front() else {
                    continue;
                };
                ch.queued.remove(&c);
                let Some(_) = self.chunks.get(&c) else {
                    continue;
                };
                // Extend to an aligned bin of up to `per_dgram` chunks that were all requested.
                let mut count = 1u64;
                while count < per_dgram && c % (count * 2) == 0 {
                    let ch = &self.channels[&id];
                    let next: Vec<u64> = ch
                        .queue
                        .iter()
                        .skip(count as usize - 1)
                        .take(count as usize)
                        .copied()
                        .collect();
                    let want: Vec<u64> = (c + count..c + 2 * count).collect();
                    if next == want && want.iter().all(|x| self.chunks.contains_key(x)) {
                        count *= 2;
                    } else {
                        break;
                    }
                }
                let ch = self.channels.get_mut(&id).unwrap();
                for _ in 1..count {
                    if let Some(x) = ch.queue.pop_front() {
                        ch.queued.remove(&x);
                    }
                }
                let b = Bin::new(count.trailing_zeros(), c / count);
                self.send_data(now, id, b, ts);
            }
        }
    }

    fn send_data(&mut self, now: Instant, id: u32, b: Bin, ts: u64) {
        let a = self.channels[&id].ctx.addressing;
        let cs = self.cfg.chunk_size;
        let mut msgs = Vec::new();
        // Integrity: the verified top (peaks / signed munro), then uncles, top-down.
        let rto = self.rto(id);
        let ch = &self.channels[&id];
        let again = (b.first_chunk()..=b.last_chunk()).any(|c| ch.served.contains(&c));
        let need = |b: &Bin| {
            again
                || !ch.sent_hashes.contains(b)
                    && ch
                        .hash_pending
                        .get(b)
                        .is_none_or(|t| now.saturating_duration_since(*t) >= rto)
        };
        let mut sent = Vec::new();
        let top = match &self.content {
            Content::Static {
                nchunks: Some(n), ..
            } => {
                let ps = peaks(*n);
                if ps.iter().any(need) {
                    sent.extend(ps.iter().copied());
                    for p in &ps {
                        if let Some(h) = self.store.get(*p) {
                            msgs.push(Message::Integrity {
                                spec: ChunkSpec::from_bin(a, *p, cs),
                                hash: h.as_bytes().to_vec(),
                            });
                        }
                    }
                }
                ps.into_iter().find(|p| p.contains(b))
            }
            Content::Static { nchunks: None, .. } => None,
            _ => {
                let m = munro_of(b.first_chunk(), self.cfg.chunks_per_munro);
                if need(&m)
                    && let (Some(h), Some((t, sig))) = (self.store.get(m), self.munro_sigs.get(&m))
                {
                    let spec = ChunkSpec::from_bin(a, m, cs);
                    msgs.push(Message::Integrity {
                        spec,
                        hash: h.as_bytes().to_vec(),
                    });
                    msgs.push(Message::SignedIntegrity {
                        spec,
                        timestamp: *t,
                        signature: sig.clone(),
                    });
                    sent.push(m);
                }
                Some(m)
            }
        };
        let Some(top) = top else { return };
        let mut cur = b;
        let mut uncles = Vec::new();
        while cur.layer() < top.layer() {
            let s = cur.sibling();
            if need(&s) {
                if let Some(h) = self.store.get(s) {
                    uncles.push(Message::Integrity {
                        spec: ChunkSpec::from_bin(a, s, cs),
                        hash: h.as_bytes().to_vec(),
                    });
                }
                sent.push(s);
            }
            cur = cur.parent();
        }
        uncles.reverse();
        msgs.extend(uncles);
        let mut data = Vec::with_capacity((b.chunk_count() * cs as u64) as usize);
        for c in b.first_chunk()..=b.last_chunk() {
            match self.chunks.get(&c) {
                Some(d) => data.extend_from_slice(d),
                None => return,
            }
        }
        let bytes = data.len();
        self.stats.data_bytes_up += bytes as u64;
        let spec = match a {
            Addressing::Bins32 | Addressing::Bins64 => ChunkSpec::from_bin(a, b, cs),
            _ => ChunkSpec::from_range(a, b.first_chunk(), b.last_chunk(), cs),
        };
        msgs.push(Message::Data {
            spec,
            timestamp: ts,
            data,
        });
        let ch = self.channels.get_mut(&id).unwrap();
        for h in &sent {
            ch.hash_pending.insert(*h, now);
        }
        ch.served.extend(b.first_chunk()..=b.last_chunk());
        // A re-send of a chunk still in flight (its request came again: the first copy or its ACK was
        // lost) replaces the old entry: its bytes leave the window, or `flight_bytes` would keep them
        // forever and, once above the congestion window, stop all service on this channel.
        if let Some((_, old, _)) = ch.flight.insert(b.first_chunk(), (now, bytes, sent)) {
            ch.flight_bytes -= old;
        }
        ch.flight_bytes += bytes;
        let remote = ch.remote_id;
        // DATA consumes the rest of its datagram: hashes go before it, in the same datagram when they fit,
        // else in datagrams of their own sent first.
        let data_msg = msgs.pop().expect("data message");
        let mut payload = remote.to_be_bytes().to_vec();
        let mut enc = Vec::new();
        for m in &msgs {
            wire::encode_message(m, &mut enc);
        }
        let mut dm = Vec::new();
        wire::encode_message(&data_msg, &mut dm);
        if 4 + enc.len() + dm.len() <= self.cfg.max_datagram {
            payload.extend_from_slice(&enc);
        } else if !msgs.is_empty() {
            self.emit_datagram(now, id, remote, msgs);
        }
        payload.extend_from_slice(&dm);
        let ch = self.channels.get_mut(&id).unwrap();
        ch.last_send = now;
        let dst = ch.addr;
        self.stats.datagrams_out += 1;
        self.stats.bytes_up += payload.len() as u64;
        self.out.push_back(Transmit { dst, payload });
    }
}

enum Verdict {
    Ok,
    Missing,
    Mismatch,
}

fn update_rtt(srtt: &mut Option<(Duration, Duration)>, rtt: Duration) {
    *srtt = Some(match *srtt {
        None => (rtt, rtt / 2),
        Some((s, v)) => {
            let diff = s.abs_diff(rtt);
            ((s * 7 + rtt) / 8, (v * 3 + diff) / 4)
        }
    });
}

fn coalesce(it: impl Iterator<Item = (u64, u64)>) -> Vec<(u64, u64)> {
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

#[allow(dead_code)]
fn _addr_types(_: SocketAddrV4, _: SocketAddrV6) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn flight_consistent(ch: &Channel) -> bool {
        ch.flight_bytes == ch.flight.values().map(|f| f.1).sum::<usize>()
    }

    /// A request that arrives twice (duplicated, or re-sent because the DATA was lost) makes the seeder send
    /// the chunk again while the first copy is still in flight. The window accounting must not keep the
    /// first copy's bytes: before the fix they leaked, `flight_bytes` stayed above the congestion window
    /// with nothing in flight, and the channel was never served again (the sim's 10 %-loss stall).
    #[test]
    fn resent_data_does_not_leak_flight_bytes() {
        let t0 = Instant::now();
        let data: Vec<u8> = (0..64 * 1024u32)
            .map(|i| (i * 7 + i / 1000) as u8)
            .collect();
        let cfg = |seed| SwarmConfig {
            seed,
            ..Default::default()
        };
        let mut seeder = Swarm::new_static_seed(cfg(1), &data, t0);
        let mut leech = Swarm::new_static_leech(cfg(2), seeder.swarm_id(), t0).unwrap();
        let (sa, la): (SocketAddr, SocketAddr) = (
            "10.0.0.1:7000".parse().unwrap(),
            "10.0.0.2:7000".parse().unwrap(),
        );
        leech.connect(t0, sa);
        let mut now = t0;
        // Pump until the leecher has sent a request; deliver seeder output normally until then.
        let mut request = None;
        for _ in 0..20 {
            now += Duration::from_millis(10);
            while let Some(t) = leech.poll_transmit() {
                let mut ctx = WireCtx {
                    addressing: Addressing::ChunkRanges32,
                    ..Default::default()
                };
                if request.is_none()
                    && wire::decode(&t.payload, &mut ctx)
                        .is_ok_and(|d| d.messages.iter().any(|m| matches!(m, Message::Request(_))))
                {
                    request = Some(t.payload.clone());
                }
                seeder.handle_datagram(now, la, &t.payload);
            }
            if request.is_some() {
                break;
            }
            while let Some(t) = seeder.poll_transmit() {
                leech.handle_datagram(now, sa, &t.payload);
            }
        }
        let request = request.expect("leecher sent no request");
        // The seeder's DATA is all lost; the same request arrives again.
        while seeder.poll_transmit().is_some() {}
        now += Duration::from_millis(5);
        seeder.handle_datagram(now, la, &request);
        while seeder.poll_transmit().is_some() {}
        let ch = seeder.channels.values().next().unwrap();
        assert!(!ch.flight.is_empty());
        assert!(
            flight_consistent(ch),
            "{} vs {:?}",
            ch.flight_bytes,
            ch.flight
        );
        // Everything times out unacknowledged: the window must be empty again, not stuck.
        for _ in 0..300 {
            now += Duration::from_millis(10);
            seeder.handle_timeout(now);
            while seeder.poll_transmit().is_some() {}
        }
        let ch = seeder.channels.values().next().unwrap();
        assert!(ch.flight.is_empty());
        assert_eq!(ch.flight_bytes, 0);
    }

    #[test]
    fn bitset_ranges_bounds_and_discard() {
        let mut b = BitSet::default();
        b.set_range(100, 300);
        assert!(!b.get(99) && b.get(100) && b.get(200) && b.get(300) && !b.get(301));
        b.set_range(5, 6); // below base: clipped away
        assert!(!b.get(5));
        b.set_range(64, 64);
        assert!(b.get(64));
        // A hostile range is clipped to the window, cheaply.
        b.set_range(0, u64::MAX - 1);
        assert!(b.get(BitSet::MAX_SPAN + 63));
        assert!(!b.get(BitSet::MAX_SPAN + 64 + 64));
        assert!(b.words.len() as u64 <= BitSet::MAX_SPAN / 64);
        b.discard_before(1000);
        assert!(!b.get(500) && b.get(1000) && b.get(5000));
        let mut c = BitSet::default();
        c.set_range(3, 3);
        assert!(c.get(3) && !c.get(2) && !c.get(4));
    }
}
