//! A lossy, reordering network on a real socket, for tests and demos of how the protocol copes with loss:
//! each datagram a node sends is dropped with probability `loss`, and held back for a random time of up to
//! `max_delay` with probability `reorder` (so that later datagrams overtake it). Kernel netem does the same
//! on machines that have it; this works everywhere, on the real binaries and real UDP. It can also make the
//! node a hostile peer: `corrupt` is the share of its chunk-carrying datagrams whose last byte (DATA is
//! always last) it flips.
//!
//! Off unless asked for: by [`Impairment`] in code, or for every node of a process by the environment
//! variable `PPSPP_IMPAIR`, e.g. `PPSPP_IMPAIR=loss=0.1,reorder=0.1,delay_ms=40` or `corrupt=1`.

use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The environment variable [`Impairment::from_env`] reads.
pub const ENV: &str = "PPSPP_IMPAIR";

/// What a node does to the datagrams it sends.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Impairment {
    /// Share of datagrams dropped, 0..=1.
    pub loss: f64,
    /// Share of the datagrams not dropped that are held back, 0..=1.
    pub reorder: f64,
    /// Longest hold-back of a reordered datagram (each gets a uniform random delay up to this).
    pub max_delay: Duration,
    /// Share of the datagrams of at least [`CORRUPT_FROM`] bytes (those that carry a chunk) sent with their
    /// last byte flipped, 0..=1.
    pub corrupt: f64,
}

/// Datagrams this long or longer carry DATA of a 1 KiB chunk; shorter ones are control messages.
pub const CORRUPT_FROM: usize = 512;

/// `PPSPP_IMPAIR` could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{ENV}: {0} (expected e.g. loss=0.1,reorder=0.1,delay_ms=40,corrupt=0)")]
pub struct ParseError(String);

impl Impairment {
    /// No loss, no reordering.
    pub fn none() -> Self {
        Self::default()
    }

    pub fn is_none(&self) -> bool {
        self.loss <= 0.0 && self.reorder <= 0.0 && self.corrupt <= 0.0
    }

    /// Parses `loss=F,reorder=F,delay_ms=N,corrupt=F` (any subset, any order; an empty string is no impairment).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let mut out = Impairment {
            max_delay: Duration::from_millis(40),
            ..Self::default()
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| ParseError(format!("`{part}` is not key=value")))?;
            let share = || -> Result<f64, ParseError> {
                match v.parse::<f64>() {
                    Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
                    _ => Err(ParseError(format!("{k}: `{v}` is not a share in 0..=1"))),
                }
            };
            match k {
                "loss" => out.loss = share()?,
                "reorder" => out.reorder = share()?,
                "corrupt" => out.corrupt = share()?,
                "delay_ms" => {
                    let ms = v
                        .parse::<u64>()
                        .ok()
                        .filter(|&ms| ms <= 10_000)
                        .ok_or_else(|| ParseError(format!("delay_ms: `{v}` is not 0..=10000")))?;
                    out.max_delay = Duration::from_millis(ms);
                }
                _ => return Err(ParseError(format!("unknown key `{k}`"))),
            }
        }
        Ok(out)
    }

    /// The impairment `PPSPP_IMPAIR` asks for; none when it is unset.
    pub fn from_env() -> Result<Self, ParseError> {
        match std::env::var(ENV) {
            Ok(s) => Self::parse(&s),
            Err(std::env::VarError::NotPresent) => Ok(Self::none()),
            Err(e) => Err(ParseError(e.to_string())),
        }
    }
}

/// The `PPSPP_IMPAIR` spelling of an impairment: what [`Impairment::parse`] reads back.
impl std::fmt::Display for Impairment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "loss={},reorder={},delay_ms={}",
            self.loss,
            self.reorder,
            self.max_delay.as_millis()
        )?;
        if self.corrupt > 0.0 {
            write!(f, ",corrupt={}", self.corrupt)?;
        }
        Ok(())
    }
}

/// What happens to one datagram.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fate {
    Send,
    Drop,
    Hold(Duration),
}

/// The random decisions of an [`Impairment`] and the datagrams it holds back.
pub(crate) struct Impairer {
    cfg: Impairment,
    rng: u64,
    held: BinaryHeap<Held>,
    held_seq: u64,
    pub dropped: u64,
    pub reordered: u64,
    pub corrupted: u64,
}

struct Held {
    due: Instant,
    seq: u64,
    dst: SocketAddr,
    payload: Vec<u8>,
}

impl PartialEq for Held {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Held {
    // earliest due first out of the max-heap
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.due, o.seq).cmp(&(self.due, self.seq))
    }
}

impl Impairer {
    pub fn new(cfg: Impairment, seed: u64) -> Self {
        Impairer {
            cfg,
            rng: seed | 1,
            held: BinaryHeap::new(),
            held_seq: 0,
            dropped: 0,
            reordered: 0,
            corrupted: 0,
        }
    }

    /// xorshift64*: uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn fate(&mut self) -> Fate {
        if self.cfg.loss > 0.0 && self.uniform() < self.cfg.loss {
            self.dropped += 1;
            return Fate::Drop;
        }
        if self.cfg.reorder > 0.0 && self.uniform() < self.cfg.reorder {
            self.reordered += 1;
            let d = self.cfg.max_delay.mul_f64(self.uniform());
            return Fate::Hold(d.max(Duration::from_millis(1)));
        }
        Fate::Send
    }

    /// Flips the last byte of a chunk-carrying datagram, as often as `corrupt` says.
    pub fn tamper(&mut self, payload: &mut [u8]) {
        if self.cfg.corrupt > 0.0
            && payload.len() >= CORRUPT_FROM
            && self.uniform() < self.cfg.corrupt
            && let Some(b) = payload.last_mut()
        {
            *b ^= 0xff;
            self.corrupted += 1;
        }
    }

    pub fn hold(&mut self, due: Instant, dst: SocketAddr, payload: Vec<u8>) {
        let seq = self.held_seq;
        self.held_seq += 1;
        self.held.push(Held {
            due,
            seq,
            dst,
            payload,
        });
    }

    /// When the next held datagram is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.held.peek().map(|h| h.due)
    }

    /// A held datagram whose time has come.
    pub fn pop_due(&mut self, now: Instant) -> Option<(SocketAddr, Vec<u8>)> {
        if self.next_due()? <= now {
            self.held.pop().map(|h| (h.dst, h.payload))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_docs_show_and_refuses_the_rest() {
        let i = Impairment::parse("loss=0.1,reorder=0.2,delay_ms=30").unwrap();
        assert_eq!(i.corrupt, 0.0);
        assert!(!Impairment::parse("corrupt=1").unwrap().is_none());
        assert_eq!(i.loss, 0.1);
        assert_eq!(i.reorder, 0.2);
        assert_eq!(i.max_delay, Duration::from_millis(30));
        assert!(Impairment::parse("").unwrap().is_none());
        assert!(Impairment::parse("loss=1.5").is_err());
        assert!(Impairment::parse("loss").is_err());
        assert!(Impairment::parse("jitter=3").is_err());
        assert!(Impairment::parse("delay_ms=-1").is_err());
        let i = Impairment::parse("loss=0.1,reorder=0.2,delay_ms=30,corrupt=1").unwrap();
        assert_eq!(Impairment::parse(&i.to_string()), Ok(i));
    }

    #[test]
    fn drops_and_holds_about_the_shares_asked_for() {
        let mut im = Impairer::new(
            Impairment {
                loss: 0.1,
                reorder: 0.2,
                max_delay: Duration::from_millis(40),
                corrupt: 0.0,
            },
            7,
        );
        let n = 100_000;
        let (mut drop, mut hold) = (0, 0);
        for _ in 0..n {
            match im.fate() {
                Fate::Drop => drop += 1,
                Fate::Hold(d) => {
                    assert!(d <= Duration::from_millis(40));
                    hold += 1
                }
                Fate::Send => {}
            }
        }
        let share = |k: i32| k as f64 / n as f64;
        assert!((share(drop) - 0.1).abs() < 0.01, "dropped {}", share(drop));
        // 20 % of the 90 % that were not dropped
        assert!((share(hold) - 0.18).abs() < 0.01, "held {}", share(hold));
    }

    #[test]
    fn corrupts_chunk_datagrams_only() {
        let mut im = Impairer::new(Impairment::parse("corrupt=1").unwrap(), 3);
        let mut control = vec![7u8; 100];
        im.tamper(&mut control);
        assert_eq!(control, vec![7u8; 100]);
        let mut data = vec![7u8; 1100];
        im.tamper(&mut data);
        assert_eq!(data[1099], 7 ^ 0xff);
        assert_eq!(data[..1099], vec![7u8; 1099][..]);
        assert_eq!(im.corrupted, 1);
    }

    #[test]
    fn held_datagrams_leave_in_due_order() {
        let mut im = Impairer::new(Impairment::none(), 1);
        let t0 = Instant::now();
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        im.hold(t0 + Duration::from_millis(30), a, vec![3]);
        im.hold(t0 + Duration::from_millis(10), a, vec![1]);
        im.hold(t0 + Duration::from_millis(20), a, vec![2]);
        assert_eq!(im.next_due(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(im.pop_due(t0), None);
        let later = t0 + Duration::from_millis(25);
        assert_eq!(im.pop_due(later).unwrap().1, vec![1]);
        assert_eq!(im.pop_due(later).unwrap().1, vec![2]);
        assert_eq!(im.pop_due(later), None);
    }
}
