//! Peer exchange (PEX, RFC 7574 §8.4): answering a peer's PEX_REQ with the addresses of our other established,
//! unchoked peers, and connecting to the peers that PEX_RES messages tell us about (up to `max_peers`).

use super::{ChanState, Event, Swarm};
use crate::wire::Message;
use std::net::SocketAddr;
use std::time::Instant;

impl Swarm {
    /// PEX_REQ: answer with up to 16 other established peers.
    pub(super) fn on_pex_req(&mut self, id: u32) {
        let ch = self.channels.get_mut(&id).unwrap();
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

    pub(super) fn on_pex(&mut self, now: Instant, a: SocketAddr) {
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
}
