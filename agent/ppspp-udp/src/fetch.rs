//! Fetching static content (a file by its swarm ID) to the end: what `edge-agent swarm fetch` and a box's
//! update from its site's swarm both do.

use crate::Node;
use ppspp::{Event, Swarm, SwarmConfig};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("swarm id: {0}")]
    SwarmId(ppspp::Error),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("not complete after {0:?} ({1} of {2} chunks)")]
    Timeout(Duration, u64, String),
    #[error("no chunk arrived for {0:?} ({1} of {2} chunks)")]
    Stalled(Duration, u64, String),
    #[error("the content is larger than the {0} bytes allowed")]
    TooLarge(u64),
    #[error("the swarm task ended")]
    Ended,
}

/// Limits of a fetch.
#[derive(Debug, Clone, Copy)]
pub struct FetchLimits {
    /// The whole fetch.
    pub timeout: Duration,
    /// Without a new chunk (the first one included).
    pub stall: Duration,
    /// Largest content accepted: known from the first chunk's hashes, refused before it is fetched.
    pub max_bytes: Option<u64>,
}

/// Fetches the content whose swarm ID (Merkle root) is `id` from `peers`, and the peers they lead to (PEX),
/// until every chunk has arrived and been verified against the root. `progress(have, total)` is called
/// about twice a second (`total` once the size is known). The node is handed back running with the content:
/// it goes on serving the content to whoever asks, until it is stopped or dropped.
pub async fn fetch_static(
    cfg: SwarmConfig,
    id: &[u8],
    peers: &[SocketAddr],
    bind: SocketAddr,
    limits: FetchLimits,
    mut progress: impl FnMut(u64, Option<u64>),
) -> Result<(Node, Vec<u8>), FetchError> {
    let chunk = u64::from(cfg.chunk_size);
    let swarm = Swarm::new_static_leech(cfg, id, Instant::now()).map_err(FetchError::SwarmId)?;
    let mut node = Node::spawn(swarm, bind)
        .await
        .map_err(|source| FetchError::Bind { addr: bind, source })?;
    for p in peers {
        node.connect(*p);
    }
    let t0 = Instant::now();
    let mut have = 0u64;
    let mut last_new = Instant::now();
    let of = |total: Option<u64>| total.map_or("?".to_string(), |n| n.to_string());
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let Some((h, n)) = node.progress().await else { return Err(FetchError::Ended) };
                if h > have {
                    last_new = Instant::now();
                }
                let total = n;
                have = h;
                // n chunks hold more than (n - 1) x chunk bytes.
                if let (Some(max), Some(n)) = (limits.max_bytes, total)
                    && n.saturating_sub(1).saturating_mul(chunk) >= max
                {
                    return Err(FetchError::TooLarge(max));
                }
                progress(have, total);
                if t0.elapsed() > limits.timeout {
                    return Err(FetchError::Timeout(limits.timeout, have, of(total)));
                }
                if last_new.elapsed() > limits.stall {
                    return Err(FetchError::Stalled(limits.stall, have, of(total)));
                }
            }
            e = node.next_event() => match e {
                Some(Event::Complete) => break,
                Some(Event::BadData { peer, chunk }) => {
                    tracing::warn!(%peer, chunk, "bad data from a peer; choked");
                }
                Some(ev) => tracing::debug!(?ev, "swarm event"),
                None => return Err(FetchError::Ended),
            },
        }
    }
    let data = node.content().await.ok_or(FetchError::Ended)?;
    if let Some(max) = limits.max_bytes
        && data.len() as u64 > max
    {
        return Err(FetchError::TooLarge(max));
    }
    let n = data.len().div_ceil(chunk as usize) as u64;
    progress(n, Some(n));
    Ok((node, data))
}
