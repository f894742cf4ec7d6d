//! Several engines working on consecutive segments of one stream at once.
//!
//! Every output segment depends only on its input segment (the encoders restart at each segment), so
//! segment N+1 can be transcoded while segment N's encoders drain; results come back in submission order
//! and are identical to what one engine produces, except for the TS continuity counters, which each engine
//! keeps for itself (every segment starts with PAT/PMT and a keyframe, so players do not depend on them
//! across segment files).

use std::collections::VecDeque;
use std::sync::mpsc;
use std::thread;

use crate::engine::{BuildError, EngineConfig, SegmentError, SegmentOutput, Transcoder};

type Job = (
    u64,
    Vec<u8>,
    mpsc::Sender<Result<SegmentOutput, SegmentError>>,
);

/// A pool of `n` engines (each its own pipeline and thread), fed round-robin.
pub struct TranscoderPool {
    senders: Vec<mpsc::Sender<Job>>,
    threads: Vec<thread::JoinHandle<()>>,
    pending: VecDeque<(u64, mpsc::Receiver<Result<SegmentOutput, SegmentError>>)>,
    submitted: usize,
}

impl TranscoderPool {
    /// Build `n` (at least 1) engines with the same configuration.
    pub fn new(cfg: EngineConfig, n: usize) -> Result<Self, BuildError> {
        let mut senders = Vec::new();
        let mut threads = Vec::new();
        for k in 0..n.max(1) {
            let mut engine = Transcoder::new(cfg.clone())?;
            let (tx, rx) = mpsc::channel::<Job>();
            let h = thread::Builder::new()
                .name(format!("media-engine-{k}"))
                .spawn(move || {
                    for (seq, data, reply) in rx {
                        let _ = reply.send(engine.push_segment(seq, &data));
                    }
                })
                .map_err(|e| BuildError::Init(format!("spawning engine thread: {e}")))?;
            senders.push(tx);
            threads.push(h);
        }
        Ok(TranscoderPool {
            senders,
            threads,
            pending: VecDeque::new(),
            submitted: 0,
        })
    }

    /// Number of engines.
    pub fn size(&self) -> usize {
        self.senders.len()
    }

    /// Segments submitted and not yet received.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Queue a segment on the next engine (round-robin). Does not block.
    pub fn submit(&mut self, seq: u64, data: Vec<u8>) {
        let (tx, rx) = mpsc::channel();
        let k = self.submitted % self.senders.len();
        self.submitted += 1;
        if self.senders[k].send((seq, data, tx)).is_err() {
            // the worker is gone (it panicked): its receiver reports that below
        }
        self.pending.push_back((seq, rx));
    }

    /// The result of the oldest submitted segment (blocks until it is done); `None` if nothing is pending.
    pub fn recv(&mut self) -> Option<Result<SegmentOutput, SegmentError>> {
        let (seq, rx) = self.pending.pop_front()?;
        Some(rx.recv().unwrap_or_else(|_| {
            Err(SegmentError::Broken {
                seq,
                why: "engine thread ended (panicked?)".into(),
            })
        }))
    }
}

impl Drop for TranscoderPool {
    fn drop(&mut self) {
        self.senders.clear(); // closes the channels: workers finish their job and exit, dropping (NULL) engines
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
    }
}
