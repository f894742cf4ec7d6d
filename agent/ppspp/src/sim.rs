//! A deterministic simulated network for [`Swarm`] peers: seeded loss, delay, jitter (reordering), MTU
//! and per-node uplink bandwidth, on fake time. Used by the crate's tests; public so that users can test
//! their own configurations the same way.

use crate::swarm::{Event, Swarm};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

/// Network conditions.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    /// Probability a datagram is lost.
    pub loss: f64,
    /// One-way base delay.
    pub delay: Duration,
    /// Extra uniformly random delay per datagram; reorders datagrams.
    pub jitter: Duration,
    /// Datagrams larger than this are dropped.
    pub mtu: usize,
    /// Per-node uplink in bytes per second (`None` = unlimited).
    pub uplink: Option<u64>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            loss: 0.0,
            delay: Duration::from_millis(10),
            jitter: Duration::ZERO,
            mtu: 1500,
            uplink: None,
        }
    }
}

/// One simulated node.
pub struct SimNode {
    pub addr: SocketAddr,
    pub swarm: Swarm,
    pub events: Vec<(Duration, Event)>,
    /// Flip the last byte of every datagram this node sends that is at least this long (a corrupting peer).
    pub corrupt_from_len: Option<usize>,
    /// Node is offline until this time (joins later).
    pub joins_at: Duration,
    /// Node goes offline (stops receiving and ticking) at this time.
    pub leaves_at: Option<Duration>,
    /// Addresses this node connects to when it joins.
    pub connect_to: Vec<SocketAddr>,
    joined: bool,
    uplink_free: Instant,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Instant,
    seq: u64,
    dst: usize,
    src: SocketAddr,
    payload: Vec<u8>,
}

/// What happened to one datagram, for [`SimNet::trace`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceKind {
    /// Handed to the network (after uplink queueing); arrives at `at` of the later `Delivered` record.
    Sent,
    /// Dropped by the simulated random loss.
    Lost,
    /// Dropped for exceeding the MTU.
    TooBig,
    /// Handed to the destination's `handle_datagram`.
    Delivered,
}

/// One record of the datagram trace: fake time since start, what happened, endpoints and payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceRecord {
    pub at: Duration,
    pub kind: TraceKind,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub payload: Vec<u8>,
}

/// The simulated network.
pub struct SimNet {
    pub cfg: SimConfig,
    pub start: Instant,
    pub now: Instant,
    pub nodes: Vec<SimNode>,
    queue: BinaryHeap<Reverse<InFlight>>,
    /// Node index by address.
    by_addr: HashMap<SocketAddr, usize>,
    /// Each joined node's next timer, pushed whenever the node was touched; an entry whose node's
    /// `poll_timeout` has moved since is stale and skipped.
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    rng: u64,
    seq: u64,
    pub dropped_loss: u64,
    pub dropped_mtu: u64,
    pub delivered: u64,
    /// FNV-1a digest of every datagram fate (time, kind, endpoints, payload), always kept: two runs with
    /// the same seed and inputs must end with the same value.
    pub trace_digest: u64,
    /// Full datagram trace, kept only after [`SimNet::record_trace`].
    pub trace: Option<Vec<TraceRecord>>,
}

impl SimNet {
    /// `start` is the fake clock's origin (any `Instant`; the simulation never reads the clock itself).
    pub fn new(cfg: SimConfig, start: Instant) -> Self {
        let rng = cfg.seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1;
        SimNet {
            cfg,
            start,
            now: start,
            nodes: Vec::new(),
            queue: BinaryHeap::new(),
            by_addr: HashMap::new(),
            timers: BinaryHeap::new(),
            rng,
            seq: 0,
            dropped_loss: 0,
            dropped_mtu: 0,
            delivered: 0,
            trace_digest: 0xcbf2_9ce4_8422_2325,
            trace: None,
        }
    }

    /// Starts keeping the full datagram trace in [`SimNet::trace`] (for debugging a scenario).
    pub fn record_trace(&mut self) {
        self.trace.get_or_insert_with(Vec::new);
    }

    fn note(&mut self, kind: TraceKind, src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
        let at = self.now - self.start;
        let mut h = self.trace_digest;
        let mut eat = |bytes: &[u8]| {
            for b in bytes {
                h = (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3);
            }
        };
        eat(&at.as_nanos().to_le_bytes());
        eat(&[kind as u8]);
        eat(src.to_string().as_bytes());
        eat(dst.to_string().as_bytes());
        eat(&(payload.len() as u64).to_le_bytes());
        eat(payload);
        self.trace_digest = h;
        if let Some(t) = &mut self.trace {
            t.push(TraceRecord {
                at,
                kind,
                src,
                dst,
                payload: payload.to_vec(),
            });
        }
    }

    /// The address the next added node will get.
    pub fn next_addr(&self) -> SocketAddr {
        let [_, a, b, c] = (self.nodes.len() as u32 + 1).to_be_bytes();
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, a, b, c), 7000))
    }

    pub fn add(&mut self, swarm: Swarm) -> usize {
        let addr = self.next_addr();
        self.by_addr.insert(addr, self.nodes.len());
        self.nodes.push(SimNode {
            addr,
            swarm,
            events: Vec::new(),
            corrupt_from_len: None,
            joins_at: Duration::ZERO,
            leaves_at: None,
            connect_to: Vec::new(),
            joined: false,
            uplink_free: self.start,
        });
        self.nodes.len() - 1
    }

    fn rand(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
    fn unit(&mut self) -> f64 {
        (self.rand() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Elapsed fake time.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Injects a raw datagram (e.g. garbage) to node `dst`.
    pub fn inject(&mut self, dst: usize, src: SocketAddr, payload: Vec<u8>) {
        self.seq += 1;
        let seq = self.seq;
        self.queue.push(Reverse(InFlight {
            at: self.now,
            seq,
            dst,
            src,
            payload,
        }));
    }

    fn collect(&mut self, i: usize) {
        let now = self.now;
        while let Some(ev) = self.nodes[i].swarm.poll_event() {
            let t = now - self.start;
            self.nodes[i].events.push((t, ev));
        }
        while let Some(t) = self.nodes[i].swarm.poll_transmit() {
            let mut payload = t.payload;
            if let Some(l) = self.nodes[i].corrupt_from_len
                && payload.len() >= l
            {
                *payload.last_mut().unwrap() ^= 0x5a;
            }
            let src = self.nodes[i].addr;
            if payload.len() > self.cfg.mtu {
                self.dropped_mtu += 1;
                self.note(TraceKind::TooBig, src, t.dst, &payload);
                continue;
            }
            let mut depart = now;
            if let Some(bw) = self.cfg.uplink {
                let n = &mut self.nodes[i];
                let start = n.uplink_free.max(now);
                n.uplink_free = start + Duration::from_secs_f64(payload.len() as f64 / bw as f64);
                depart = n.uplink_free;
            }
            if self.unit() < self.cfg.loss {
                self.dropped_loss += 1;
                self.note(TraceKind::Lost, src, t.dst, &payload);
                continue;
            }
            let jitter = self.cfg.jitter.mul_f64(self.unit());
            let dst = match self.by_addr.get(&t.dst) {
                Some(&d) if self.nodes.get(d).is_some_and(|n| n.addr == t.dst) => d,
                _ => match self.nodes.iter().position(|n| n.addr == t.dst) {
                    Some(d) => d,
                    None => continue,
                },
            };
            self.note(TraceKind::Sent, src, t.dst, &payload);
            self.seq += 1;
            let seq = self.seq;
            self.queue.push(Reverse(InFlight {
                at: depart + self.cfg.delay + jitter,
                seq,
                dst,
                src,
                payload,
            }));
        }
    }

    /// Runs until `stop` returns true or `limit` of fake time has elapsed; returns whether `stop` fired.
    ///
    /// Each step: nodes joining now connect, every node touched since the last step hands over what it
    /// sends (in node order), `stop` is asked, time moves to the next delivery, join or node timer, the
    /// datagrams due are delivered, and the nodes whose timer is due (in node order) handle it. Only nodes
    /// touched by a step are looked at, so a step costs what happens in it, not the number of nodes.
    pub fn run(&mut self, limit: Duration, mut stop: impl FnMut(&SimNet) -> bool) -> bool {
        let end = self.start + limit;
        // Nodes may have been changed from outside since the last call: look at each one once.
        let mut touched: BTreeSet<usize> = (0..self.nodes.len()).collect();
        self.timers.clear();
        let mut joins: BTreeMap<Instant, Vec<usize>> = BTreeMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if !n.joined {
                joins.entry(self.start + n.joins_at).or_default().push(i);
            }
        }
        loop {
            while let Some(e) = joins.first_entry() {
                if *e.key() > self.now {
                    break;
                }
                touched.extend(e.remove());
            }
            for &i in &touched {
                if !self.nodes[i].joined && self.start + self.nodes[i].joins_at <= self.now {
                    self.nodes[i].joined = true;
                    let now = self.now;
                    for a in self.nodes[i].connect_to.clone() {
                        self.nodes[i].swarm.connect(now, a);
                    }
                }
                self.collect(i);
                if self.nodes[i].joined
                    && let Some(t) = self.nodes[i].swarm.poll_timeout()
                {
                    self.timers.push(Reverse((t, i)));
                }
            }
            touched.clear();
            if stop(self) {
                return true;
            }
            // Next instant: a delivery, a join or a node timer.
            while let Some(&Reverse((t, i))) = self.timers.peek() {
                if self.timer_is(i, t) {
                    break;
                }
                self.timers.pop();
            }
            let next = [
                self.queue.peek().map(|r| r.0.at),
                self.timers.peek().map(|r| r.0.0),
                joins.keys().next().copied(),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next else { return false };
            if next > end {
                self.now = end;
                return false;
            }
            self.now = self.now.max(next);
            while self.queue.peek().is_some_and(|r| r.0.at <= self.now) {
                let Reverse(f) = self.queue.pop().unwrap();
                if !self.online(f.dst) {
                    continue;
                }
                self.delivered += 1;
                let dst = self.nodes[f.dst].addr;
                self.note(TraceKind::Delivered, f.src, dst, &f.payload);
                let now = self.now;
                self.nodes[f.dst]
                    .swarm
                    .handle_datagram(now, f.src, &f.payload);
                touched.insert(f.dst);
            }
            // Timers due: nodes with a timer entry up to now, nodes just delivered to, nodes joining now.
            let mut due: BTreeSet<usize> = touched.clone();
            while let Some(&Reverse((t, i))) = self.timers.peek() {
                if t > self.now {
                    break;
                }
                self.timers.pop();
                due.insert(i);
            }
            if let Some((&t, js)) = joins.first_key_value()
                && t <= self.now
            {
                due.extend(js.iter().copied());
            }
            for i in due {
                if !self.online(i) {
                    continue;
                }
                if self.nodes[i]
                    .swarm
                    .poll_timeout()
                    .is_some_and(|t| t <= self.now)
                {
                    let now = self.now;
                    self.nodes[i].swarm.handle_timeout(now);
                    touched.insert(i);
                }
            }
        }
    }

    /// Whether node `i` is on the network now (joined, or joining now, and not yet left).
    fn online(&self, i: usize) -> bool {
        let n = &self.nodes[i];
        self.start + n.joins_at <= self.now && n.leaves_at.is_none_or(|l| self.start + l > self.now)
    }

    /// Whether `t` is still joined node `i`'s next timer, as the step loop counts it.
    fn timer_is(&self, i: usize, t: Instant) -> bool {
        let n = &self.nodes[i];
        n.joined
            && n.leaves_at.is_none_or(|l| self.start + l > self.now)
            && n.swarm.poll_timeout() == Some(t)
    }
}

/// `len` pseudo-random bytes from `seed` (xorshift): test content that is the same on every run.
pub fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
