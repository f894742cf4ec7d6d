//! # ppspp-udp
//!
//! A thin tokio driver for the sans-IO [`ppspp::Swarm`]: it owns one UDP socket, feeds received datagrams
//! and timer expiries into the state machine with the current time, sends what it emits, and forwards its
//! events over a channel. All protocol logic stays in `ppspp`. For tests of lossy networks it can drop and
//! reorder what it sends ([`Impairment`]).

mod impair;
pub use impair::{ENV as IMPAIR_ENV, Impairment, ParseError as ImpairmentError};
use impair::{Fate, Impairer};

use ppspp::{Event, Stats, Swarm};
use std::net::SocketAddr;
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
    events: mpsc::UnboundedReceiver<Event>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

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
        let sock = bind_socket(bind)?;
        let local = sock.local_addr()?;
        let swarm_id = swarm.swarm_id().to_vec();
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        if !impair.is_none() {
            tracing::warn!(%local, ?impair, "this node drops and reorders what it sends");
        }
        let out = Out {
            sock,
            impair: (!impair.is_none()).then(|| Impairer::new(impair, random_seed())),
        };
        let task = tokio::spawn(run(swarm, out, cmd_rx, ev_tx));
        Ok(Node {
            local,
            swarm_id,
            cmd: cmd_tx,
            events: ev_rx,
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

async fn flush(
    swarm: &mut Swarm,
    out: &mut Out,
    ev: &mpsc::UnboundedSender<Event>,
) -> std::io::Result<()> {
    while let Some(t) = swarm.poll_transmit() {
        out.send(t.dst, t.payload).await?;
    }
    while let Some(e) = swarm.poll_event() {
        let _ = ev.send(e);
    }
    Ok(())
}

async fn run(
    mut swarm: Swarm,
    mut out: Out,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    ev: mpsc::UnboundedSender<Event>,
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

/// Random 64-bit seed from the standard library's randomly keyed hasher (no extra dependency).
pub fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id() as u64);
    h.finish()
}
