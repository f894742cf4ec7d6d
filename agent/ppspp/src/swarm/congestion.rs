//! Congestion control and timing: ACKs of our DATA (LEDBAT delay samples, the acknowledged hashes, the
//! RTT estimate), the retransmission timeout, and RTO expiry: requests outstanding too long are given up (to
//! be re-requested, preferably from another peer) and DATA in flight too long is a loss signal for LEDBAT.

use super::Swarm;
use crate::wire::ChunkSpec;
use std::time::{Duration, Instant};

impl Swarm {
    /// ACK of DATA we sent: frees its bytes from the window, marks its hashes delivered, feeds LEDBAT and
    /// the RTT estimate.
    pub(super) fn on_ack(&mut self, now: Instant, id: u32, spec: ChunkSpec, delay_sample: u64) {
        let cs = self.cfg.chunk_size;
        let ch = self.channels.get_mut(&id).unwrap();
        if let Some((s, _)) = spec.chunks(cs)
            && let Some((sent, bytes, hashes)) = ch.flight.remove(&s)
        {
            ch.flight_bytes -= bytes;
            for h in hashes {
                ch.sent_hashes.insert(h);
            }
            ch.ledbat.on_ack(now, delay_sample as i64, bytes);
            let rtt = now.saturating_duration_since(sent);
            update_rtt(&mut ch.srtt, rtt);
        }
    }

    /// A channel's retransmission timeout, for our requests and for the DATA we sent: SRTT + 4·RTTVAR
    /// (RFC 6298), at least `min_rto`; ten times `min_rto` before the first RTT sample. A live peer delivers
    /// in order, so a lost request holds up everything after it: at 2·SRTT + 4·RTTVAR, 10 % loss cost a
    /// third more delay and origin upload (BENCHMARKS.md, "many viewers").
    pub(super) fn rto(&self, id: u32) -> Duration {
        let ch = &self.channels[&id];
        match ch.srtt {
            Some((s, v)) => (s + v * 4).max(self.cfg.min_rto),
            None => self.cfg.min_rto * 10,
        }
    }

    /// RTO expiry on one established channel: lost requests are dropped (and counted as retransmitted; the
    /// scheduler asks again, preferring the peers that failed the chunk least), lost DATA leaves the window
    /// and signals LEDBAT.
    pub(super) fn detect_losses(&mut self, now: Instant, id: u32) {
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
            *self
                .timed_out_at
                .entry(c)
                .or_default()
                .entry(id)
                .or_default() += 1;
        }
    }
}

pub(super) fn update_rtt(srtt: &mut Option<(Duration, Duration)>, rtt: Duration) {
    *srtt = Some(match *srtt {
        None => (rtt, rtt / 2),
        Some((s, v)) => {
            let diff = s.abs_diff(rtt);
            ((s * 7 + rtt) / 8, (v * 3 + diff) / 4)
        }
    });
}
