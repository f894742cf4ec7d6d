//! Peer exchange (PEX, RFC 7574 §8.4): answering a peer's PEX_REQ with the addresses of our other established,
//! unchoked peers (PEX_RES goes only to a peer that asked), and connecting to the peers that PEX_RES messages
//! tell us about (up to `max_peers`), taking PEX_RES only in answer to our own PEX_REQ (or, on a channel we
//! opened, in the refusal of a full peer: see `Swarm::refuse`) and remembering at most [`PEX_SEEN_MAX`]
//! addresses; and asking again, once a second, while every peer chokes us.

use super::{ChanState, Event, PEX_SEEN_MAX, Swarm};
use crate::wire::Message;
use std::net::SocketAddr;
use std::time::Instant;

/// The PEX_RES naming `a` (v4 or v6).
pub(super) fn pex_res(a: SocketAddr) -> Message {
    match a {
        SocketAddr::V4(v4) => Message::PexResV4(v4),
        SocketAddr::V6(v6) => Message::PexResV6(v6),
    }
}

impl Swarm {
    /// PEX_REQ: answer with up to 16 other established peers.
    pub(super) fn on_pex_req(&mut self, now: Instant, id: u32) {
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
        if others.is_empty() {
            // no one to tell: an empty datagram answers, so that the asker knows its request arrived
            let remote = ch.remote_id;
            self.emit_datagram(now, id, remote, vec![]);
            return;
        }
        ch.pending.extend(others.into_iter().map(pex_res));
    }

    /// PEX_RES: taken only as an answer to our PEX_REQ on this channel (`PEX_RES_PER_REQ` per request) or
    /// in a refusal of our handshake (`REFERRALS`), so that a peer cannot make us remember, report or connect
    /// to addresses we did not ask for.
    pub(super) fn on_pex(&mut self, now: Instant, id: u32, a: SocketAddr) {
        let ch = self.channels.get_mut(&id).unwrap();
        if ch.pex_budget == 0 {
            self.stats.pex_ignored += 1;
            return;
        }
        ch.pex_budget -= 1;
        if !self.pex_seen.insert(a) {
            return;
        }
        self.pex_order.push_back(a);
        while self.pex_seen.len() > PEX_SEEN_MAX {
            match self.pex_order.pop_front() {
                Some(old) => {
                    self.pex_seen.remove(&old);
                }
                None => break,
            }
        }
        self.events.push_back(Event::PeersDiscovered(vec![a]));
        if self.cfg.pex
            && self.channels.len() < self.cfg.max_peers
            && !a.ip().is_unspecified()
            && a.port() != 0
        {
            self.open(now, a);
        }
    }

    /// A peer that every one of its peers chokes (a source's slots are taken, say) asks them all for more
    /// peers, once a second, until one serves it or it has `max_peers`: otherwise a viewer that joined
    /// through a busy source, before PEX had anyone to name, would wait for nothing.
    pub(super) fn ask_for_peers_when_choked(&mut self, now: Instant) {
        if !self.cfg.pex || now < self.choked_pex_at {
            return;
        }
        let est: Vec<u32> = self
            .channels
            .iter()
            .filter(|(_, c)| c.state == ChanState::Established)
            .map(|(id, _)| *id)
            .collect();
        if est.is_empty()
            || est.len() >= self.cfg.max_peers
            || est.iter().any(|id| !self.channels[id].remote_chokes_us)
        {
            return;
        }
        self.choked_pex_at = now + std::time::Duration::from_secs(1);
        for id in est {
            let ch = self.channels.get_mut(&id).unwrap();
            ch.pending.push(Message::PexReq);
            ch.pex_budget = super::handshake::PEX_RES_PER_REQ;
        }
    }
}
