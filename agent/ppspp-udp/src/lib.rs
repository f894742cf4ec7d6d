//! # ppspp-udp
//!
//! A thin tokio driver for the sans-IO [`ppspp::Swarm`]: it owns one UDP socket, feeds received datagrams
//! and timer expiries into the state machine with the current time, sends what it emits, and forwards its
//! events over a bounded channel ([`EVENT_QUEUE`]). All protocol logic stays in `ppspp`. It gives the swarm
//! its secret random bytes from the operating system ([`os_random`], [`ppspp::Swarm::set_entropy`]). For
//! tests of lossy networks it can drop and reorder what it sends ([`Impairment`]).

mod fetch;
mod impair;
pub use fetch::{FetchError, FetchLimits, fetch_static};
pub use impair::{ENV as IMPAIR_ENV, Impairment, ParseError as ImpairmentError};
use impair::{Fate, Impairer};

use ppspp::{Event, Stats, Swarm};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

enum Cmd {
    Connect(SocketAddr),
    Publish(Vec<u8>),
    Stats(oneshot::Sender<Stats>),
    Content(oneshot::Sender<Option<Vec<u8>>>),
    Progress(oneshot::Sender<(u64, Option<u64>)>),
    Stop,
}

/// A running peer.
pub struct Node {
    local: SocketAddr,
    swarm_id: Vec<u8>,
    cmd: mpsc::UnboundedSender<Cmd>,
    events: mpsc::Receiver<Event>,
    events_dropped: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Events a node holds for its application at most. When the application does not take them as fast as
/// they come, newer ones are dropped (and counted: [`Node::events_dropped`]) rather than held without bound
/// or stalling the swarm. 4096 live chunks of 1 KiB are several seconds of a 6 Mbit/s stream.
pub const EVENT_QUEUE: usize = 16384;

/// Socket buffer size asked for (the kernel caps it at net.core.[rw]mem_max).
const SOCKET_BUFFER: usize = 8 << 20;

fn bind_socket(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}

impl Node {
    /// Binds `bind` and runs `swarm` on it in a tokio task, with the impairment `PPSPP_IMPAIR` asks for (none
    /// when it is unset; an unreadable value is an `InvalidInput` error).
    pub async fn spawn(swarm: Swarm, bind: SocketAddr) -> std::io::Result<Node> {
        let impair = Impairment::from_env()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        Self::spawn_impaired(swarm, bind, impair).await
    }

    /// As [`Node::spawn`], dropping and reordering the datagrams it sends as `impair` says.
    pub async fn spawn_impaired(
        mut swarm: Swarm,
        bind: SocketAddr,
        impair: Impairment,
    ) -> std::io::Result<Node> {
        let unix_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        swarm.set_wall_clock(Instant::now(), unix_us);
        swarm.set_entropy(os_random());
        let sock = bind_socket(bind)?;
        let local = sock.local_addr()?;
        let swarm_id = swarm.swarm_id().to_vec();
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::channel(EVENT_QUEUE);
        let events_dropped = Arc::new(AtomicU64::new(0));
        if !impair.is_none() {
            tracing::warn!(%local, ?impair, "this node drops and reorders what it sends");
        }
        let out = Out {
            sock,
            impair: (!impair.is_none()).then(|| Impairer::new(impair, random_seed())),
        };
        let events = Events {
            tx: ev_tx,
            dropped: events_dropped.clone(),
        };
        let task = tokio::spawn(run(swarm, out, cmd_rx, events));
        Ok(Node {
            local,
            swarm_id,
            cmd: cmd_tx,
            events: ev_rx,
            events_dropped,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
    pub fn swarm_id(&self) -> &[u8] {
        &self.swarm_id
    }
    pub fn connect(&self, peer: SocketAddr) {
        let _ = self.cmd.send(Cmd::Connect(peer));
    }
    /// Live source: publish stream bytes.
    pub fn publish(&self, data: Vec<u8>) {
        let _ = self.cmd.send(Cmd::Publish(data));
    }
    /// Next event; `None` once the node stopped.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }
    /// An event already waiting, without waiting for one.
    pub fn try_event(&mut self) -> Option<Event> {
        self.events.try_recv().ok()
    }
    /// Events dropped because [`EVENT_QUEUE`] of them were waiting for the application.
    pub fn events_dropped(&self) -> u64 {
        self.events_dropped.load(Ordering::Relaxed)
    }
    pub async fn stats(&self) -> Option<Stats> {
        let (tx, rx) = oneshot::channel();
        self.cmd.send(Cmd::Stats(tx)).ok()?;
        rx.await.ok()
    }
    pub async fn content(&self) -> Option<Vec<u8>> {
        let (tx, rx) = oneshot::channel();
        self.cmd.send(Cmd::Content(tx)).ok()?;
        rx.await.ok().flatten()
    }
    pub async fn progress(&self) -> Option<(u64, Option<u64>)> {
        let (tx, rx) = oneshot::channel();
        self.cmd.send(Cmd::Progress(tx)).ok()?;
        rx.await.ok()
    }
    /// Stops the task and reports how it ended.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.cmd.send(Cmd::Stop);
        self.task
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

/// The socket, and what the impairment (if any) holds back.
struct Out {
    sock: UdpSocket,
    impair: Option<Impairer>,
}

impl Out {
    async fn send(&mut self, dst: SocketAddr, mut payload: Vec<u8>) -> std::io::Result<()> {
        if let Some(im) = &mut self.impair {
            im.tamper(&mut payload);
            match im.fate() {
                Fate::Send => {}
                Fate::Drop => return Ok(()),
                Fate::Hold(d) => {
                    im.hold(Instant::now() + d, dst, payload);
                    return Ok(());
                }
            }
        }
        send_now(&self.sock, dst, &payload).await
    }

    /// Sends the held-back datagrams whose time has come.
    async fn release(&mut self) -> std::io::Result<()> {
        let now = Instant::now();
        while let Some((dst, p)) = self.impair.as_mut().and_then(|im| im.pop_due(now)) {
            send_now(&self.sock, dst, &p).await?;
        }
        Ok(())
    }

    fn next_release(&self) -> Option<Instant> {
        self.impair.as_ref().and_then(Impairer::next_due)
    }
}

async fn send_now(sock: &UdpSocket, dst: SocketAddr, payload: &[u8]) -> std::io::Result<()> {
    loop {
        match sock.try_send_to(payload, dst) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => sock.writable().await?,
            // Unreachable peers, oversize datagrams etc.: UDP semantics, the protocol recovers.
            Err(e) => {
                tracing::debug!(%dst, error = %e, "send failed");
                return Ok(());
            }
        }
    }
}

/// The application's side of the events: bounded, never waited on.
struct Events {
    tx: mpsc::Sender<Event>,
    dropped: Arc<AtomicU64>,
}

impl Events {
    fn send(&self, e: Event) {
        match self.tx.try_send(e) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(e)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed);
                if n.is_power_of_two() || n == 0 {
                    tracing::warn!(dropped = n + 1, last = ?e, "application not taking swarm events; dropping");
                }
            }
            // The application let go of the node: nobody to tell.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

async fn flush(swarm: &mut Swarm, out: &mut Out, ev: &Events) -> std::io::Result<()> {
    while let Some(t) = swarm.poll_transmit() {
        out.send(t.dst, t.payload).await?;
    }
    while let Some(e) = swarm.poll_event() {
        ev.send(e);
    }
    Ok(())
}

async fn run(
    mut swarm: Swarm,
    mut out: Out,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    ev: Events,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 65536];
    let result = loop {
        if let Err(e) = flush(&mut swarm, &mut out, &ev).await {
            break Err(e);
        }
        let deadline = swarm.poll_timeout();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        let release_at = out.next_release();
        let release = async {
            match release_at {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = out.sock.recv_from(&mut buf) => {
                match r {
                    Ok((n, from)) => {
                        swarm.handle_datagram(Instant::now(), from, &buf[..n]);
                        // Drain what is already queued before flushing, in bounded batches.
                        for _ in 0..256 {
                            match out.sock.try_recv_from(&mut buf) {
                                Ok((n, from)) => swarm.handle_datagram(Instant::now(), from, &buf[..n]),
                                Err(_) => break,
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "recv failed"),
                }
                let now = Instant::now();
                if swarm.poll_timeout().is_some_and(|d| d <= now) {
                    swarm.handle_timeout(now);
                }
            }
            _ = sleep => swarm.handle_timeout(Instant::now()),
            _ = release => {
                if let Err(e) = out.release().await {
                    break Err(e);
                }
            }
            c = cmds.recv() => match c {
                None | Some(Cmd::Stop) => break Ok(()),
                Some(Cmd::Connect(a)) => swarm.connect(Instant::now(), a),
                Some(Cmd::Publish(d)) => {
                    if let Err(e) = swarm.publish(Instant::now(), &d) {
                        tracing::warn!(error = %e, "publish rejected");
                    }
                }
                Some(Cmd::Stats(tx)) => { let _ = tx.send(swarm.stats().clone()); }
                Some(Cmd::Content(tx)) => { let _ = tx.send(swarm.content()); }
                Some(Cmd::Progress(tx)) => { let _ = tx.send(swarm.progress()); }
            },
        }
    };
    if let Some(im) = &out.impair {
        tracing::info!(
            dropped = im.dropped,
            reordered = im.reordered,
            corrupted = im.corrupted,
            "impaired node stopped"
        );
    }
    result
}

/// `N` bytes from the operating system's random source (getrandom(2) on Linux): for channel IDs, live
/// source keys and every other secret.
///
/// # Panics
///
/// When the operating system has no random source to give (nothing safe can be done without one).
pub fn os_random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).expect("the operating system's random source failed");
    b
}

/// A random 64-bit seed from the operating system's random source ([`os_random`]); four of them make a
/// live source key.
pub fn random_seed() -> u64 {
    u64::from_le_bytes(os_random())
}
