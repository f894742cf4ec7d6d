//! Records over a running `ppspp_udp::Node`: the publishing side (a live source) and the receiving side
//! (a live leech that also serves what it has to other peers).

use std::net::SocketAddr;
use std::time::Instant;

use ppspp::{Event, Swarm, SwarmConfig};
use ppspp_udp::Node;

use crate::frame::{Deframer, FrameError, Record};

/// The swarm settings every segment swarm uses: [`SwarmConfig::lossy_live`] (1 KiB chunks, 16-chunk signed
/// munros, a 10 s playback deadline, a 32 MiB window kept for late peers, a joining peer starting at the oldest
/// chunk its peers still have, tuned for lossy paths) with a random seed.
pub fn swarm_config() -> SwarmConfig {
    SwarmConfig {
        seed: ppspp_udp::random_seed(),
        ..SwarmConfig::lossy_live()
    }
}

/// A random Ed25519 seed for a new live swarm.
pub fn random_key() -> [u8; 32] {
    let mut s = [0u8; 32];
    for c in s.chunks_mut(8) {
        c.copy_from_slice(&ppspp_udp::random_seed().to_le_bytes());
    }
    s
}

/// Why joining a swarm failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("swarm id: {0}")]
    SwarmId(String),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The source of one live swarm of records.
pub struct Publisher {
    node: Node,
    align: usize,
}

impl Publisher {
    /// A live source keyed by `key` (its public half is the swarm id), serving on `bind`.
    pub async fn spawn(
        cfg: SwarmConfig,
        key: [u8; 32],
        bind: SocketAddr,
    ) -> Result<Self, JoinError> {
        let align = cfg.chunk_size as usize * cfg.chunks_per_munro as usize;
        let swarm = Swarm::new_live_source(cfg, key, Instant::now());
        let node = Node::spawn(swarm, bind)
            .await
            .map_err(|source| JoinError::Bind { addr: bind, source })?;
        Ok(Publisher { node, align })
    }

    /// Appends one record to the stream; it leaves at once (records fill whole munros).
    pub fn publish(&mut self, r: &Record) -> Result<(), FrameError> {
        self.node.publish(r.encode(self.align)?);
        // a source acts on none of its node's events (connections, PEX): do not let them pile up
        while let Some(e) = self.node.try_event() {
            tracing::trace!(?e, "publisher event");
        }
        Ok(())
    }

    pub fn swarm_id_hex(&self) -> String {
        hex::encode(self.node.swarm_id())
    }
    pub fn local_addr(&self) -> SocketAddr {
        self.node.local_addr()
    }
    pub fn node(&self) -> &Node {
        &self.node
    }
    pub async fn stop(self) -> std::io::Result<()> {
        self.node.stop().await
    }
}

/// A member of one live swarm of records: receives them in order, serves its chunks to other peers.
pub struct Subscriber {
    node: Node,
    deframer: Deframer,
    ready: std::collections::VecDeque<Result<Record, FrameError>>,
}

impl Subscriber {
    /// Joins the live swarm `swarm_id` through `peers`.
    pub async fn join(
        cfg: SwarmConfig,
        swarm_id: &[u8],
        peers: &[SocketAddr],
        bind: SocketAddr,
    ) -> Result<Self, JoinError> {
        let per = cfg.chunks_per_munro;
        let swarm = Swarm::new_live_leech(cfg, swarm_id, Instant::now())
            .map_err(|e| JoinError::SwarmId(e.to_string()))?;
        let node = Node::spawn(swarm, bind)
            .await
            .map_err(|source| JoinError::Bind { addr: bind, source })?;
        for p in peers {
            node.connect(*p);
        }
        Ok(Subscriber {
            node,
            deframer: Deframer::new(per),
            ready: Default::default(),
        })
    }

    /// The next record, or the error that cost one; `None` once the node has stopped.
    pub async fn next(&mut self) -> Option<Result<Record, FrameError>> {
        loop {
            if let Some(r) = self.ready.pop_front() {
                return Some(r);
            }
            match self.node.next_event().await? {
                Event::LiveData { chunk, data } => {
                    let out = self.deframer.chunk(chunk, &data);
                    self.ready.extend(out);
                }
                Event::LiveSkipped { first, last } => {
                    tracing::warn!(first, last, "chunks missed their playback deadline");
                    self.ready
                        .extend(self.deframer.skipped(first, last).map(Err));
                }
                Event::BadData { peer, chunk } => {
                    tracing::warn!(%peer, chunk, "peer sent data that failed verification: choked")
                }
                e => tracing::debug!(?e, "swarm event"),
            }
        }
    }

    pub fn connect(&self, peer: SocketAddr) {
        self.node.connect(peer);
    }
    pub fn local_addr(&self) -> SocketAddr {
        self.node.local_addr()
    }
    pub fn node(&self) -> &Node {
        &self.node
    }
    pub fn stats(&self) -> &crate::frame::DeframeStats {
        &self.deframer.stats
    }
    pub async fn stop(self) -> std::io::Result<()> {
        self.node.stop().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::SegmentMeta;
    use std::time::Duration;

    /// Real UDP on loopback: a publisher, a subscriber that joined before the first record, and a second
    /// subscriber that joins through the first one only (so it is fed by a relay, not the source).
    #[tokio::test]
    async fn records_cross_real_udp_through_a_relay() {
        let lo: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut publisher = Publisher::spawn(swarm_config(), random_key(), lo)
            .await
            .unwrap();
        let id = hex::decode(publisher.swarm_id_hex()).unwrap();
        let mut a = Subscriber::join(swarm_config(), &id, &[publisher.local_addr()], lo)
            .await
            .unwrap();
        let mut b = Subscriber::join(swarm_config(), &id, &[a.local_addr()], lo)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sent: Vec<Record> = (0..5u64)
            .map(|seq| Record::Segment {
                meta: SegmentMeta {
                    stream: "t".into(),
                    seq,
                    duration: 2.0,
                    ..Default::default()
                },
                data: (0..(20_000 + seq as usize * 3_001))
                    .map(|i| (i % 251) as u8)
                    .collect(),
            })
            .chain([Record::End {
                stream: "t".into(),
                last_seq: Some(4),
            }])
            .collect();
        for r in &sent {
            publisher.publish(r).unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for (name, sub) in [("a", &mut a), ("b", &mut b)] {
            let mut got = Vec::new();
            while got.last() != sent.last() {
                let r = tokio::time::timeout(Duration::from_secs(20), sub.next())
                    .await
                    .unwrap_or_else(|_| {
                        panic!(
                            "{name}: {} records within 20 s, {:?}",
                            got.len(),
                            sub.stats()
                        )
                    })
                    .expect("node running");
                got.push(r.expect("no record lost"));
            }
            // even b, fed only through a relay that announces munros as they arrive, starts at the oldest
            // chunk still served (a joining peer waits a moment for HAVEs of older chunks)
            let seqs = |v: &[Record]| v.iter().map(Record::seq).collect::<Vec<_>>();
            assert_eq!(seqs(&got), seqs(&sent), "{name}");
            assert!(got == sent, "{name}: the records' bytes differ");
            // nothing is delivered twice, also not after HAVE refreshes re-announce old chunks
            let again = tokio::time::timeout(Duration::from_secs(5), sub.next()).await;
            assert!(
                again.is_err(),
                "{name}: delivered again: {:?}",
                again.map(|r| r.map(|r| r.map(|r| r.seq())))
            );
        }
        let up = publisher.node().stats().await.unwrap();
        assert!(up.data_bytes_up > 0);
        a.stop().await.unwrap();
        b.stop().await.unwrap();
        publisher.stop().await.unwrap();
    }
}
