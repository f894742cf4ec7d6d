//! LEDBAT congestion control (RFC 6817), sender side, driven by the one-way delay samples that PPSPP ACKs
//! carry. Sans-IO: all times are passed in.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Parameters (RFC 6817 §2.5 / §3.2).
#[derive(Clone, Debug)]
pub struct LedbatParams {
    /// Target queueing delay (RFC: at most 100 ms).
    pub target: Duration,
    pub gain: f64,
    /// Bytes per segment.
    pub mss: usize,
    pub init_cwnd: usize,
    pub min_cwnd: usize,
    /// Upper bound on the window (the socket buffer is the practical limit).
    pub max_cwnd: usize,
    /// Minutes of base-delay history kept.
    pub base_history: usize,
    pub current_filter: usize,
    /// Use slow start until the first loss or until queueing delay exceeds target/2 (an extension RFC 6817
    /// §4.2 permits; it makes short transfers on fast paths practical).
    pub slow_start: bool,
    /// Random loss tolerated, as a share of recent datagrams: a loss seen while the queueing delay is under
    /// target/2 and the recent loss share under this is taken for a lossy path, not congestion, and does
    /// not cut the window. 0 (the default) is RFC 6817: every loss halves it (at most once per RTT), which
    /// caps a sender at about `mss / (rtt · sqrt(loss))`, too little for a live stream on a path with a
    /// few percent of random loss. Queueing delay still backs the sender off, as does heavy loss.
    pub random_loss: f64,
}

impl Default for LedbatParams {
    fn default() -> Self {
        LedbatParams {
            target: Duration::from_millis(100),
            gain: 1.0,
            mss: 1500,
            init_cwnd: 2,
            min_cwnd: 2,
            max_cwnd: 4 << 20,
            base_history: 10,
            current_filter: 4,
            slow_start: true,
            random_loss: 0.0,
        }
    }
}

/// LEDBAT state for one path.
#[derive(Clone, Debug)]
pub struct Ledbat {
    p: LedbatParams,
    cwnd: f64,
    /// Base delays, one per minute (µs, as signed: clocks are not synchronised).
    base: VecDeque<(Instant, i64)>,
    current: VecDeque<i64>,
    slow_start: bool,
    last_loss_cut: Option<Instant>,
    /// Moving share of lost datagrams among recent ACKs and losses.
    loss_share: f64,
}

/// Weight of one ACK or loss in [`Ledbat`]'s moving loss share.
const LOSS_EWMA: f64 = 1.0 / 16.0;

impl Ledbat {
    pub fn new(p: LedbatParams) -> Self {
        let cwnd = (p.init_cwnd * p.mss) as f64;
        let ss = p.slow_start;
        Ledbat {
            p,
            cwnd,
            base: VecDeque::new(),
            current: VecDeque::new(),
            slow_start: ss,
            last_loss_cut: None,
            loss_share: 0.0,
        }
    }

    pub fn cwnd(&self) -> usize {
        self.cwnd as usize
    }

    fn base_delay(&self) -> i64 {
        self.base.iter().map(|(_, d)| *d).min().unwrap_or(0)
    }

    /// Queueing delay estimate, from the filtered current delay minus the base delay.
    pub fn queuing_delay(&self) -> Duration {
        let cur = self.current.iter().copied().min().unwrap_or(0);
        Duration::from_micros((cur - self.base_delay()).max(0) as u64)
    }

    /// An ACK for `bytes` with one-way delay sample `delay_us`.
    pub fn on_ack(&mut self, now: Instant, delay_us: i64, bytes: usize) {
        self.loss_share *= 1.0 - LOSS_EWMA;
        // base delay history, one bucket per minute
        match self.base.back_mut() {
            Some((t, d)) if now.duration_since(*t) < Duration::from_secs(60) => {
                *d = (*d).min(delay_us)
            }
            _ => {
                self.base.push_back((now, delay_us));
                if self.base.len() > self.p.base_history {
                    self.base.pop_front();
                }
            }
        }
        self.current.push_back(delay_us);
        if self.current.len() > self.p.current_filter {
            self.current.pop_front();
        }
        let q = self.queuing_delay().as_secs_f64();
        let target = self.p.target.as_secs_f64();
        if self.slow_start {
            if q > target / 2.0 {
                self.slow_start = false;
            } else {
                self.cwnd += bytes as f64;
            }
        } else {
            let off_target = (target - q) / target;
            self.cwnd += self.p.gain * off_target * bytes as f64 * self.p.mss as f64 / self.cwnd;
        }
        self.clamp();
    }

    /// A loss: halve at most once per `rtt`, unless it looks like random loss (see
    /// [`LedbatParams::random_loss`]).
    pub fn on_loss(&mut self, now: Instant, rtt: Duration) {
        self.loss_share = self.loss_share * (1.0 - LOSS_EWMA) + LOSS_EWMA;
        if self.loss_share < self.p.random_loss && self.queuing_delay() < self.p.target / 2 {
            return;
        }
        self.slow_start = false;
        if self
            .last_loss_cut
            .is_some_and(|t| now.duration_since(t) < rtt)
        {
            return;
        }
        self.last_loss_cut = Some(now);
        self.cwnd /= 2.0;
        self.clamp();
    }

    fn clamp(&mut self) {
        let lo = (self.p.min_cwnd * self.p.mss) as f64;
        self.cwnd = self.cwnd.clamp(lo, self.p.max_cwnd as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_without_queueing_and_backs_off_with_it() {
        let t0 = Instant::now();
        let mut l = Ledbat::new(LedbatParams {
            slow_start: false,
            ..Default::default()
        });
        let w0 = l.cwnd();
        for i in 0..200 {
            l.on_ack(t0 + Duration::from_millis(i), 5_000, 1500);
        }
        let grown = l.cwnd();
        assert!(grown > w0);
        // 160 ms of queueing delay over a 100 ms target: the window must shrink.
        for i in 200..400 {
            l.on_ack(t0 + Duration::from_millis(i), 165_000, 1500);
        }
        assert!(l.cwnd() < grown);
        let mut l2 = Ledbat::new(LedbatParams {
            init_cwnd: 64,
            ..Default::default()
        });
        let before = l2.cwnd();
        l2.on_loss(t0 + Duration::from_secs(1), Duration::from_millis(10));
        assert!(l2.cwnd() <= before / 2 + 1);
        // At most one cut per RTT.
        l2.on_loss(
            t0 + Duration::from_secs(1) + Duration::from_millis(1),
            Duration::from_millis(10),
        );
        assert!(l2.cwnd() >= before / 2 - 1);
    }

    #[test]
    fn random_loss_without_queueing_keeps_the_window_but_heavy_loss_or_a_queue_cut_it() {
        let t0 = Instant::now();
        let p = LedbatParams {
            init_cwnd: 64,
            slow_start: false,
            random_loss: 0.25,
            ..Default::default()
        };
        let rtt = Duration::from_millis(10);
        // one loss in ten datagrams, no queue: the window holds
        let mut l = Ledbat::new(p.clone());
        let w0 = l.cwnd();
        for i in 0..1000u64 {
            let t = t0 + Duration::from_millis(i);
            if i % 10 == 0 {
                l.on_loss(t, rtt);
            } else {
                l.on_ack(t, 5_000, 1500);
            }
        }
        assert!(l.cwnd() >= w0, "random loss cut the window");
        // every other datagram lost: congestion
        let mut l = Ledbat::new(p.clone());
        for i in 0..100u64 {
            let t = t0 + Duration::from_millis(20 * i);
            if i % 2 == 0 {
                l.on_loss(t, rtt);
            } else {
                l.on_ack(t, 5_000, 1500);
            }
        }
        assert!(l.cwnd() < w0 / 4, "heavy loss kept the window");
        // a loss with a standing queue (80 ms over a 100 ms target) cuts at once
        let mut l = Ledbat::new(p);
        l.on_ack(t0, 5_000, 1500);
        for i in 1..5 {
            l.on_ack(t0 + Duration::from_millis(i), 85_000, 1500);
        }
        let w = l.cwnd();
        l.on_loss(t0 + Duration::from_millis(10), rtt);
        assert!(l.cwnd() <= w / 2 + 1, "a loss with a queue did not cut");
        // the RFC default: every loss cuts
        let mut l = Ledbat::new(LedbatParams {
            init_cwnd: 64,
            ..Default::default()
        });
        l.on_loss(t0, rtt);
        assert!(l.cwnd() <= w0 / 2 + 1);
    }

    #[test]
    fn slow_start_exits_on_delay() {
        let t0 = Instant::now();
        let mut l = Ledbat::new(LedbatParams::default());
        for i in 0..10 {
            l.on_ack(t0 + Duration::from_millis(i), 1_000, 1500);
        }
        assert!(l.cwnd() >= 12 * 1500);
        // Queueing delay above target/2 (filtered over the last 4 samples) ends slow start.
        for i in 0..4 {
            l.on_ack(t0 + Duration::from_millis(20 + i), 1_000 + 60_000, 1500);
        }
        let w = l.cwnd();
        l.on_ack(t0 + Duration::from_millis(30), 1_000 + 60_000, 1500);
        assert!(l.cwnd() < w + 1500 / 2, "still in slow start");
    }
}
