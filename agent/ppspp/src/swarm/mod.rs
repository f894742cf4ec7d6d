//! The sans-IO peer: one swarm, any number of channels. Datagrams and `now` go in; datagrams, events and
//! the next timeout come out. It never reads a clock and never touches a socket.
//!
//! This module holds the public types (`SwarmConfig`, `Event`, `Stats`, `Transmit`, `Swarm`), the
//! constructors and accessors, the `poll_*` outputs, datagram building, and the input dispatch:
//! `handle_datagram` decodes a datagram and hands each message to its handler, `handle_timeout` runs the
//! timers, `flush` sends what is due. The state machine is split by concern into submodules, each adding an
//! `impl Swarm` block: `handshake` (channels), `request` (downloading), `serve` (uploading), `live`, `pex`
//! and `congestion`; `bitset` is the per-peer availability set.

mod bitset;
mod congestion;
mod handshake;
mod live;
mod pex;
mod request;
mod serve;

use crate::bin::Bin;
use crate::ledbat::LedbatParams;
use crate::live::{SourceKey, SourcePublicKey};
use crate::merkle::{Hash, HashStore};
use crate::wire::{self, Addressing, Datagram, HashFunc, Message, WireCtx};
use handshake::{ChanState, Channel, HalfOpen, Opened};
use request::coalesce;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
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
    /// Handshakes from addresses that have not yet shown they receive our datagrams (see
    /// [`Swarm::handle_datagram`]) kept at once; past this, a random one is forgotten.
    pub max_half_open: usize,
    /// Seed for deterministic simulations: channel IDs follow it until [`Swarm::set_entropy`] gives the
    /// swarm secret random bytes (the I/O driver does, from the OS), and it salts the order in which chunks
    /// are requested.
    pub seed: u64,
    /// Live: chunks per signed munro (power of two).
    pub chunks_per_munro: u64,
    /// Live: how many chunks behind the newest a peer keeps and serves.
    pub live_discard_window: u64,
    /// Live: a joining peer starts this many chunks before the newest munro, where its peers still have
    /// them (0: at the newest munro; `u64::MAX`: at the oldest chunk any peer still serves).
    pub live_join_back: u64,
    /// Live: a chunk not received this long after it was first announced is skipped.
    pub playback_deadline: Duration,
    /// Live source: announce a fresh munro to one peer at once and to the rest after this delay (so peers
    /// fetch it from each other and the source uploads each chunk about once). Zero announces to all.
    pub superseed_delay: Duration,
    /// Live source: peers it serves at once. The others are choked (CHOKE) and fetch from each other, so
    /// the source sends each chunk about this many times at most, however many peers it has; a slot freed by
    /// a peer that leaves goes to a choked one. 0: every peer is served.
    pub source_slots: usize,
    /// Static rarest-first considers this many chunks past the first missing one.
    pub rarest_window: u64,
    /// HAVE is not acknowledged, so every this often a peer re-announces what it has to each peer that
    /// lacks some of it (a lost HAVE must not starve a peer).
    pub have_refresh: Duration,
}

impl SwarmConfig {
    /// A live stream carried over lossy paths (what a video segment swarm uses): 1 KiB chunks, 16-chunk
    /// signed munros, a 10 s playback deadline (a chunk lost for longer loses a whole segment, so waiting
    /// pays), a 32 Ki-chunk window kept for late peers, a joining peer starting at the oldest chunk its peers
    /// still have, a lost HAVE re-announced within half a second (a joining peer waits two of those before it
    /// fixes its start), and random loss without a queue not cutting the sending window (congestion still
    /// does: queueing delay, or a loss share above a quarter). A small mesh (8 peers opened, 16 taken: every
    /// peer announces every chunk to each of its peers), and a source that serves 4 peers and tells the rest
    /// of a munro 800 ms after the first: under loss, a peer that has not got a chunk from the others by then
    /// would ask the source, which then sends copies the swarm should have carried (BENCHMARKS.md, "many
    /// viewers"). The rest as [`SwarmConfig::default`].
    pub fn lossy_live() -> Self {
        SwarmConfig {
            chunk_size: 1024,
            chunks_per_munro: 16,
            playback_deadline: Duration::from_secs(10),
            live_discard_window: 32 * 1024,
            live_join_back: u64::MAX,
            have_refresh: Duration::from_millis(500),
            max_peers: 8,
            source_slots: 4,
            superseed_delay: Duration::from_millis(800),
            ledbat: crate::ledbat::LedbatParams {
                random_loss: 0.25,
                ..Default::default()
            },
            ..SwarmConfig::default()
        }
    }
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
            max_half_open: 1024,
            seed: 1,
            chunks_per_munro: 16,
            live_discard_window: 8192,
            live_join_back: 0,
            playback_deadline: Duration::from_secs(3),
            superseed_delay: Duration::from_millis(400),
            source_slots: 0,
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
    /// DATA payload bytes sent and received (chunks only: no headers, hashes or control messages; received
    /// counts duplicates and data that failed verification too).
    pub data_bytes_up: u64,
    pub data_bytes_down: u64,
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
    /// PEX_RES ignored: not an answer to a PEX_REQ of ours, or beyond what one request may bring.
    pub pex_ignored: u64,
    /// Half-open handshakes forgotten without their initiator showing it receives our datagrams (table
    /// full, or older than the channel timeout).
    pub half_open_dropped: u64,
}

/// Bootstrap peers remembered at most (see [`Swarm::connect`]).
pub const BOOTSTRAP_MAX: usize = 16;
/// First wait, once alone, before the bootstrap peers are tried again; it doubles with each try.
const REJOIN_MIN: Duration = Duration::from_secs(1);
/// Longest wait between two tries of the bootstrap peers.
const REJOIN_MAX: Duration = Duration::from_secs(16);

/// Addresses remembered from PEX at most (the oldest is forgotten first).
pub const PEX_SEEN_MAX: usize = 1024;

/// How much per-peer state a swarm holds (diagnostics; the bounds that peers cannot push past).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Channels (opened by us, or established by a peer that showed it receives our datagrams).
    pub channels: usize,
    /// Handshakes received from addresses not yet shown to receive our datagrams
    /// (≤ [`SwarmConfig::max_half_open`]).
    pub half_open: usize,
    /// Addresses learnt from PEX (≤ [`PEX_SEEN_MAX`]).
    pub pex_seen: usize,
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
    /// Chunk -> channels whose requests for it timed out, and how often: a re-request goes to the peer
    /// that has the chunk and failed it least, so every peer that has it is tried before any is asked
    /// again (peers that silently stopped serving, two or more of them, must not get the same chunk in
    /// turn until their channels time out). Entries leave when the chunk arrives or leaves the window.
    timed_out_at: BTreeMap<u64, BTreeMap<u32, u32>>,
    /// Key and counter of the generator of channel IDs and other random choices (SHA-256 of both).
    rng_key: [u8; 32],
    rng_ctr: u64,
    /// Handshakes answered, from addresses not yet shown to receive our datagrams: our channel ID -> entry.
    half_open: BTreeMap<u32, HalfOpen>,
    half_open_by_addr: BTreeMap<SocketAddr, u32>,
    half_open_sweep: Instant,
    /// The peers the application asked us to connect to ([`Swarm::connect`]), tried again while we have no
    /// channel at all (a full peer refused us and named no one, or every peer went away): when, and the wait
    /// after the next try (doubling up to [`REJOIN_MAX`]).
    bootstrap: Vec<SocketAddr>,
    rejoin_at: Option<Instant>,
    rejoin_backoff: Duration,
    /// Next time a peer that every peer chokes asks them all for more peers.
    choked_pex_at: Instant,
    /// The HAVE sent with replies to unproven handshakes, while what we have stays the same.
    #[allow(clippy::type_complexity)]
    unproven_have_cache: Option<(
        (
            Addressing,
            usize,
            Option<u64>,
            Option<u64>,
            usize,
            Option<u64>,
        ),
        Vec<Message>,
        bool,
    )>,
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
    /// Live: something was delivered (a chunk or a skip), so the starting point is fixed.
    live_started: bool,
    /// Live: when the starting point was first chosen; with `live_join_back`, delivery waits a grace period
    /// after it, for HAVEs of older chunks (super-seeding announces a munro to one peer first).
    live_join_at: Option<Instant>,
    newest: Option<u64>,
    /// Live source: (announce-to-all time, chunk range) pending under super-seeding.
    delayed_have: VecDeque<(Instant, u64, u64)>,
    /// Super-seeding: a fresh munro's HAVE to its one peer, announced again if that peer has not asked for
    /// any of it by then: (when, channel, first chunk, last chunk, times left).
    superseed_again: VecDeque<(Instant, u32, u64, u64, u8)>,
    superseed_rr: usize,
    last_tick: Instant,
    /// Addresses learnt from PEX (at most [`PEX_SEEN_MAX`]), and the order they came in (oldest first out).
    pex_seen: BTreeSet<SocketAddr>,
    pex_order: VecDeque<SocketAddr>,
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
        let mut h = Sha256::new();
        h.update(b"ppspp deterministic seed");
        h.update(cfg.seed.to_le_bytes());
        let rng_key: [u8; 32] = h.finalize().into();
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
            rng_key,
            rng_ctr: 0,
            half_open: BTreeMap::new(),
            half_open_by_addr: BTreeMap::new(),
            half_open_sweep: now,
            bootstrap: Vec::new(),
            choked_pex_at: now,
            rejoin_at: None,
            rejoin_backoff: REJOIN_MIN,
            unproven_have_cache: None,
            out: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            new_have: Vec::new(),
            first_missing: 0,
            first_seen: BTreeMap::new(),
            deliver: None,
            live_started: false,
            live_join_at: None,
            newest: None,
            delayed_have: VecDeque::new(),
            superseed_again: VecDeque::new(),
            superseed_rr: 0,
            last_tick: now,
            pex_seen: BTreeSet::new(),
            pex_order: VecDeque::new(),
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
    /// How much per-peer state this swarm holds.
    pub fn footprint(&self) -> Footprint {
        Footprint {
            channels: self.channels.len(),
            half_open: self.half_open.len(),
            pex_seen: self.pex_seen.len(),
        }
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

    /// Gives the swarm 32 secret random bytes (from the operating system's random source) for its channel
    /// IDs and every other random choice an attacker must not predict: a channel ID is what shows that a
    /// datagram comes from the peer the channel was opened with (a forger off the path does not see it).
    /// The I/O driver calls this before the swarm opens any channel; without it they follow
    /// [`SwarmConfig::seed`], predictably, as simulations want. The core reads no random source itself.
    pub fn set_entropy(&mut self, secret: [u8; 32]) {
        self.rng_key = secret;
        self.rng_ctr = 0;
    }

    /// SHA-256 of the key and a counter: unpredictable without the key, reproducible with it.
    fn next_rand(&mut self) -> u64 {
        let mut h = Sha256::new();
        h.update(self.rng_key);
        h.update(self.rng_ctr.to_le_bytes());
        self.rng_ctr += 1;
        let d = h.finalize();
        u64::from_le_bytes(d[..8].try_into().expect("8 of 32 bytes"))
    }

    fn emit_datagram(&mut self, now: Instant, id: u32, dst_chan: u32, msgs: Vec<Message>) {
        let Some(ch) = self.channels.get_mut(&id) else {
            return;
        };
        ch.last_send = now;
        let addr = ch.addr;
        self.emit_to(addr, dst_chan, msgs);
    }

    /// Queues `msgs` for `dst`'s channel `dst_chan`, in as many datagrams of at most `max_datagram` bytes
    /// as they need.
    fn emit_to(&mut self, dst: SocketAddr, dst_chan: u32, msgs: Vec<Message>) {
        let mut payload = Vec::with_capacity(64);
        payload.extend_from_slice(&dst_chan.to_be_bytes());
        let limit = self.cfg.max_datagram.max(64);
        for m in msgs {
            let mut one = Vec::new();
            wire::encode_message(&m, &mut one);
            if payload.len() > 4 && payload.len() + one.len() > limit {
                self.stats.datagrams_out += 1;
                self.stats.bytes_up += payload.len() as u64;
                let full = std::mem::replace(&mut payload, dst_chan.to_be_bytes().to_vec());
                self.out.push_back(Transmit { dst, payload: full });
            }
            payload.extend_from_slice(&one);
        }
        self.stats.datagrams_out += 1;
        self.stats.bytes_up += payload.len() as u64;
        self.out.push_back(Transmit { dst, payload });
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
            || !self.superseed_again.is_empty()
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
                    if let Some(sent) = c.unconfirmed {
                        upd(sent + self.cfg.handshake_retry);
                    }
                    upd(c.last_send + self.cfg.keepalive);
                    upd(self.next_have_refresh);
                    upd(c.last_recv + self.cfg.channel_timeout);
                }
            }
        }
        if self.channels.is_empty() && !self.bootstrap.is_empty() {
            // alone: the next tick arms the rejoin timer, the one after it rejoins
            upd(self.rejoin_at.unwrap_or(self.last_tick));
        }
        t
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
        // A channel is only ever fed from the address it was opened with; a half-open channel ID is only
        // accepted from the address its handshake came from (the proof that it receives our datagrams).
        let mut half_open = false;
        let mut ctx = if chan == 0 {
            WireCtx::default()
        } else {
            match (self.channels.get(&chan), self.half_open.get(&chan)) {
                (Some(c), _) if c.addr == from => c.ctx,
                (None, Some(h))
                    if h.addr == from
                        && now.saturating_duration_since(h.created) < self.cfg.channel_timeout =>
                {
                    half_open = true;
                    self.ctx_for(h.addressing)
                }
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
        if half_open && !self.promote(now, chan) {
            self.dirty = Some(now);
            return;
        }
        self.process(now, from, dg, buf.len());
        self.assign_slots();
        self.dirty = Some(now);
    }

    fn process(&mut self, now: Instant, from: SocketAddr, dg: Datagram, len: usize) {
        let mut msgs = dg.messages.into_iter();
        let id = if dg.channel == 0 {
            // Only a HANDSHAKE may open a channel.
            let Some(Message::Handshake(hs)) = msgs.next() else {
                self.stats.malformed_datagrams += 1;
                return;
            };
            let rest: Vec<Message> = msgs.collect();
            match self.accept_handshake(now, from, hs, &rest, len) {
                Opened::Channel(id) => {
                    msgs = rest.into_iter();
                    id
                }
                Opened::HalfOpen | Opened::Nothing => return,
            }
        } else {
            dg.channel
        };
        let Some(ch) = self.channels.get_mut(&id) else {
            return;
        };
        ch.last_recv = now;
        let msgs: Vec<Message> = msgs.collect();
        if ch.unconfirmed.is_some() && self.confirms_open(&msgs) {
            self.channels.get_mut(&id).unwrap().unconfirmed = None;
        }
        let ch = self.channels.get_mut(&id).unwrap();
        // Simultaneous open: the peer's handshake came on channel 0 and was answered; anything it sends to
        // our channel ID now shows it receives what we send, and opens the channel.
        if ch.state == ChanState::HandshakeSent
            && ch.remote_id != 0
            && !matches!(msgs.first(), Some(Message::Handshake(_)))
        {
            self.establish(now, id);
        }
        let Some(ch) = self.channels.get_mut(&id) else {
            return;
        };
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

    /// One message received on channel `id`, handed to the handler of its concern. `cands` and `munro_cands`
    /// are the channel's unverified hashes and munro signatures, kept across datagrams.
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
            Message::Handshake(hs) => self.on_handshake(now, id, hs),
            Message::Have(spec) => self.on_have(now, id, spec),
            Message::Request(spec) => self.on_request(id, spec),
            Message::Cancel(spec) => self.on_cancel(id, spec),
            Message::Choke => self.on_choke(id),
            Message::Unchoke => ch.remote_chokes_us = false,
            Message::Ack { spec, delay_sample } => self.on_ack(now, id, spec, delay_sample),
            Message::Integrity { spec, hash } => self.on_integrity(spec, hash, cands),
            Message::SignedIntegrity {
                spec,
                timestamp,
                signature,
            } => self.on_signed_integrity(spec, timestamp, signature, munro_cands),
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
            Message::PexReq => self.on_pex_req(now, id),
            Message::PexResV4(a) => self.on_pex(now, id, SocketAddr::V4(a)),
            Message::PexResV6(a) => self.on_pex(now, id, SocketAddr::V6(a)),
            Message::PexResCert(_) => {}
        }
    }

    /// Advances timers: retransmissions, keep-alives, channel timeouts, delayed announcements.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.dirty = None;
        self.last_tick = now;
        let ids: Vec<u32> = self.channels.keys().copied().collect();
        for id in ids {
            self.channel_timers(now, id);
        }
        self.expire_half_open(now);
        self.assign_slots();
        self.ask_for_peers_when_choked(now);
        self.rejoin(now);
        self.refresh_haves(now);
        self.release_delayed_haves(now);
        self.after_progress(now);
        self.flush(now);
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
}
