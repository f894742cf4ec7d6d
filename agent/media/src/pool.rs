//! Several engines working on consecutive segments of one stream at once (in the restart mode; a
//! continuous stream has one engine, whose encoders run on from segment to segment).
//!
//! Every output segment depends only on its input segment (the encoders restart at each segment), so
//! segment N+1 can be transcoded while segment N's encoders drain; results come back in submission order
//! and are identical to what one engine produces, except for the TS continuity counters, which each engine
//! keeps for itself (every segment starts with PAT/PMT and a keyframe, so players do not depend on them
//! across segment files).
//!
//! An engine that breaks (it panics, or it cannot return to a clean state after a failure) fails the
//! segment it was working on and is replaced by a new one before its next segment; [`TranscoderPool::rebuilds`]
//! counts the replacements. A broken engine is never a lasting state of the pool.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::engine::{
    BuildError, EngineConfig, SegmentError, SegmentMode, SegmentOutput, Transcoder,
};
use crate::ts::VideoAu;

type Reply = mpsc::Sender<Result<SegmentOutput, SegmentError>>;

struct Job {
    seq: u64,
    data: Arc<Vec<u8>>,
    /// The preroll the segment submitted before this one left, for a segment cut mid-GOP whose previous
    /// segment went to another engine.
    previous: Option<Arc<Vec<VideoAu>>>,
    reply: Reply,
    /// Fault injection: the engine thread panics on this job (see [`TranscoderPool::panic_at`]).
    panic: bool,
}

/// What a worker thread gets: a segment, or the word that no segment follows for now.
enum Msg {
    Segment(Job),
    /// Complete a segment the engine holds (lookahead mode): the stream ends, or pauses.
    Finish,
}

/// What a worker thread runs segments on: the real engine, or a stand-in in unit tests.
trait Engine: Send + 'static {
    /// The outputs this segment completed, in order ([`Transcoder::push`]).
    fn push(
        &mut self,
        seq: u64,
        data: &[u8],
        previous: Option<&[VideoAu]>,
    ) -> Vec<Result<SegmentOutput, SegmentError>>;
    /// Completes the segment the engine holds, if any ([`Transcoder::finish`]).
    fn finish(&mut self) -> Option<Result<SegmentOutput, SegmentError>>;
    fn holds_segment(&self) -> bool;
    fn is_broken(&self) -> bool;
}

impl Engine for Transcoder {
    fn push(
        &mut self,
        seq: u64,
        data: &[u8],
        previous: Option<&[VideoAu]>,
    ) -> Vec<Result<SegmentOutput, SegmentError>> {
        Transcoder::push(self, seq, data, previous)
    }
    fn finish(&mut self) -> Option<Result<SegmentOutput, SegmentError>> {
        Transcoder::finish(self)
    }
    fn holds_segment(&self) -> bool {
        Transcoder::holds_segment(self)
    }
    fn is_broken(&self) -> bool {
        Transcoder::is_broken(self)
    }
}

type Factory<E> = Arc<dyn Fn() -> Result<E, BuildError> + Send + Sync>;

/// The engines' worker threads, generic over the engine so that the recovery logic is testable without
/// GStreamer.
struct Workers<E: Engine> {
    factory: Factory<E>,
    senders: Vec<mpsc::Sender<Msg>>,
    threads: Vec<Option<thread::JoinHandle<()>>>,
    rebuilds: Arc<AtomicU64>,
    /// How long a held segment waits for the next one (lookahead mode).
    hold: Duration,
}

impl<E: Engine> Workers<E> {
    fn new(
        factory: Factory<E>,
        n: usize,
        rebuilds: Arc<AtomicU64>,
        hold: Duration,
    ) -> Result<Self, BuildError> {
        let mut w = Workers {
            factory,
            senders: Vec::new(),
            threads: Vec::new(),
            rebuilds,
            hold,
        };
        for k in 0..n.max(1) {
            // the first engines are built here, so that a configuration that cannot build fails at once
            let engine = (w.factory)()?;
            let (tx, h) = w.spawn(k, Some(engine))?;
            w.senders.push(tx);
            w.threads.push(Some(h));
        }
        Ok(w)
    }

    fn spawn(
        &self,
        k: usize,
        engine: Option<E>,
    ) -> Result<(mpsc::Sender<Msg>, thread::JoinHandle<()>), BuildError> {
        let (tx, rx) = mpsc::channel::<Msg>();
        let factory = self.factory.clone();
        let rebuilds = self.rebuilds.clone();
        let hold = self.hold;
        let h = thread::Builder::new()
            .name(format!("media-engine-{k}"))
            .spawn(move || worker(k, engine, factory, rebuilds, rx, hold))
            .map_err(|e| BuildError::Init(format!("spawning engine thread: {e}")))?;
        Ok((tx, h))
    }

    /// Hands a job to worker `k`; a worker whose thread is gone is started again (its engine is built for
    /// the job).
    fn send(&mut self, k: usize, job: Job) {
        let job = match self.senders[k].send(Msg::Segment(job)) {
            Ok(()) => return,
            Err(mpsc::SendError(Msg::Segment(job))) => job,
            Err(mpsc::SendError(Msg::Finish)) => unreachable!("a segment was sent"),
        };
        tracing::error!(
            engine = k,
            "media engine thread is gone: starting a new one"
        );
        if let Some(h) = self.threads[k].take() {
            let _ = h.join();
        }
        match self.spawn(k, None) {
            Ok((tx, h)) => {
                self.senders[k] = tx;
                self.threads[k] = Some(h);
                let _ = self.senders[k].send(Msg::Segment(job));
            }
            Err(e) => {
                let _ = job.reply.send(Err(SegmentError::Broken {
                    seq: job.seq,
                    why: e.to_string(),
                }));
            }
        }
    }
}

impl<E: Engine> Drop for Workers<E> {
    fn drop(&mut self) {
        self.senders.clear(); // closes the channels: workers finish their job and exit, dropping (NULL) engines
        for h in self.threads.drain(..).flatten() {
            let _ = h.join();
        }
    }
}

/// One engine thread: runs the jobs in order on its engine, replacing the engine when it breaks. A segment
/// the engine holds (lookahead mode) is answered when the next one completes it, or is completed after
/// `hold` without a next one, at [`Msg::Finish`], or when the pool goes.
fn worker<E: Engine>(
    k: usize,
    mut engine: Option<E>,
    factory: Factory<E>,
    rebuilds: Arc<AtomicU64>,
    rx: mpsc::Receiver<Msg>,
    hold: Duration,
) {
    // Builds a replacement engine; the error is kept for the segments that find no engine.
    let rebuild = |engine: &mut Option<E>| -> Result<(), String> {
        match panic::catch_unwind(AssertUnwindSafe(|| factory())) {
            Ok(Ok(e)) => {
                *engine = Some(e);
                rebuilds.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(engine = k, "media engine rebuilt");
                Ok(())
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(p) => Err(format!("panicked while building: {}", panic_message(&*p))),
        }
    };
    let mut build_error = None;
    // the segments the engine owes an answer for: the one in work, and one it holds
    let mut owed: VecDeque<(u64, Reply)> = VecDeque::new();
    loop {
        let holds = engine.as_ref().is_some_and(|e| e.holds_segment());
        let msg = if holds {
            // Timeout and Disconnected alike: complete the held segment (a closed channel ends the loop next)
            rx.recv_timeout(hold).ok().unwrap_or(Msg::Finish)
        } else {
            match rx.recv() {
                Ok(m) => m,
                Err(_) => break,
            }
        };
        let mut lost = false;
        match msg {
            Msg::Finish => {
                let Some(e) = engine.as_mut() else { continue };
                match panic::catch_unwind(AssertUnwindSafe(|| e.finish())) {
                    Ok(r) => {
                        if let Some(r) = r {
                            answer(&mut owed, r);
                        }
                        lost = e.is_broken();
                    }
                    Err(p) => {
                        let why = format!("panicked: {}", panic_message(&*p));
                        tracing::error!(engine = k, %why, "media engine crashed: replacing it");
                        fail_all(&mut owed, &why);
                        let _ = panic::catch_unwind(AssertUnwindSafe(|| drop(engine.take())));
                        lost = true;
                    }
                }
            }
            Msg::Segment(job) => {
                // no engine: the last rebuild failed, or this thread was started again; try once more
                if engine.is_none()
                    && let Err(why) = rebuild(&mut engine)
                {
                    tracing::error!(engine = k, %why, "cannot rebuild the media engine");
                    build_error = Some(why);
                }
                owed.push_back((job.seq, job.reply));
                match engine.as_mut() {
                    None => {
                        let why = format!(
                            "no engine: {}",
                            build_error.as_deref().unwrap_or("not built")
                        );
                        for (seq, reply) in owed.drain(..) {
                            let _ = reply.send(Err(SegmentError::Broken {
                                seq,
                                why: why.clone(),
                            }));
                        }
                    }
                    Some(e) => {
                        let (seq, data, inject) = (job.seq, &job.data, job.panic);
                        let previous = job.previous.as_deref().map(Vec::as_slice);
                        match panic::catch_unwind(AssertUnwindSafe(|| {
                            if inject {
                                panic!("injected fault at segment {seq}");
                            }
                            e.push(seq, data, previous)
                        })) {
                            Ok(results) => {
                                for r in results {
                                    answer(&mut owed, r);
                                }
                                if e.is_broken() {
                                    tracing::warn!(
                                        engine = k,
                                        seq,
                                        "media engine broke: replacing it"
                                    );
                                    engine = None;
                                    lost = true;
                                }
                            }
                            Err(p) => {
                                let why = format!("panicked: {}", panic_message(&*p));
                                tracing::error!(engine = k, seq, %why, "media engine crashed: replacing it");
                                fail_all(&mut owed, &why);
                                // dropping it takes its pipeline to NULL
                                let _ =
                                    panic::catch_unwind(AssertUnwindSafe(|| drop(engine.take())));
                                lost = true;
                            }
                        }
                    }
                }
            }
        }
        // what an engine that holds nothing still owes, it will never answer
        if !engine.as_ref().is_some_and(|e| e.holds_segment()) {
            fail_all(&mut owed, "the engine returned no result for the segment");
        }
        // replace an engine lost on this segment now, so that the next segment does not wait for it
        if lost {
            build_error = rebuild(&mut engine).err();
            if let Some(why) = &build_error {
                tracing::error!(engine = k, %why, "cannot rebuild the media engine");
            }
        }
    }
}

/// Sends a result to the segment it is about.
fn answer(owed: &mut VecDeque<(u64, Reply)>, r: Result<SegmentOutput, SegmentError>) {
    let seq = crate::engine::result_seq(&r);
    match owed.iter().position(|(s, _)| *s == seq) {
        Some(i) => {
            if let Some((_, reply)) = owed.remove(i) {
                let _ = reply.send(r);
            }
        }
        None => tracing::warn!(seq, "a media engine result for no segment in work: dropped"),
    }
}

/// Answers every owed segment with a crash.
fn fail_all(owed: &mut VecDeque<(u64, Reply)>, why: &str) {
    for (seq, reply) in owed.drain(..) {
        let _ = reply.send(Err(SegmentError::Crashed {
            seq,
            why: why.to_string(),
        }));
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

type Pending = VecDeque<(u64, mpsc::Receiver<Result<SegmentOutput, SegmentError>>)>;

/// The submission side shared by the pool and its tests.
struct Queue<E: Engine> {
    workers: Workers<E>,
    pending: Pending,
    submitted: usize,
    panic_at: Option<u64>,
    /// The preroll the last submitted segment leaves (its sequence number, the access units).
    last: Option<(u64, Arc<Vec<VideoAu>>)>,
}

impl<E: Engine> Queue<E> {
    fn new(
        factory: Factory<E>,
        n: usize,
        rebuilds: Arc<AtomicU64>,
        hold: Duration,
    ) -> Result<Self, BuildError> {
        Ok(Queue {
            workers: Workers::new(factory, n, rebuilds, hold)?,
            pending: VecDeque::new(),
            submitted: 0,
            panic_at: None,
            last: None,
        })
    }

    fn submit(&mut self, seq: u64, data: Vec<u8>) {
        let (reply, rx) = mpsc::channel();
        let k = self.submitted % self.workers.senders.len();
        self.submitted += 1;
        let panic = self.panic_at == Some(seq);
        let data = Arc::new(data);
        // the chain of prerolls runs here, in submission order, since consecutive segments go to
        // different engines (a GOP may span several segments)
        let previous = self
            .last
            .take()
            .filter(|(s, _)| s.checked_add(1) == Some(seq))
            .map(|(_, t)| t);
        self.last = crate::timeline::tail_after(&data, previous.as_deref().map(Vec::as_slice))
            .map(|t| (seq, Arc::new(t)));
        self.workers.send(
            k,
            Job {
                seq,
                data,
                previous,
                reply,
                panic,
            },
        );
        self.pending.push_back((seq, rx));
    }

    fn recv(&mut self) -> Option<Result<SegmentOutput, SegmentError>> {
        let (seq, rx) = self.pending.pop_front()?;
        Some(rx.recv().unwrap_or_else(|_| {
            Err(SegmentError::Crashed {
                seq,
                why: "engine thread ended without an answer".into(),
            })
        }))
    }
}

/// A pool of `n` engines (each its own pipeline and thread), fed round-robin.
pub struct TranscoderPool {
    queue: Queue<Transcoder>,
    lookahead: bool,
}

impl TranscoderPool {
    /// Build `n` (at least 1) engines with the same configuration; one in the continuous mode, whose
    /// encoders carry their state from each segment to the next.
    pub fn new(cfg: EngineConfig, n: usize) -> Result<Self, BuildError> {
        Self::with_rebuild_counter(cfg, n, Arc::default())
    }

    /// The same, counting the engines it rebuilds on `rebuilds` (which several pools may share).
    pub fn with_rebuild_counter(
        cfg: EngineConfig,
        n: usize,
        rebuilds: Arc<AtomicU64>,
    ) -> Result<Self, BuildError> {
        let n = if cfg.mode.runs_on() { 1 } else { n };
        let lookahead = cfg.mode == SegmentMode::Lookahead;
        let hold = Duration::from_millis(cfg.lookahead_hold_ms);
        let factory: Factory<Transcoder> = Arc::new(move || Transcoder::new(cfg.clone()));
        Ok(TranscoderPool {
            queue: Queue::new(factory, n, rebuilds, hold)?,
            lookahead,
        })
    }

    /// How many segments may be in flight before the next result is due: one per engine, and one more
    /// in the lookahead mode, whose engine answers a segment when the next one arrives.
    pub fn depth(&self) -> usize {
        self.size() + usize::from(self.lookahead)
    }

    /// No segment follows for now (the input ended): the engines complete what they hold (lookahead mode)
    /// without waiting for the next one.
    pub fn finish(&mut self) {
        for tx in &self.queue.workers.senders {
            let _ = tx.send(Msg::Finish);
        }
    }

    /// Number of engines.
    pub fn size(&self) -> usize {
        self.queue.workers.senders.len()
    }

    /// Segments submitted and not yet received.
    pub fn in_flight(&self) -> usize {
        self.queue.pending.len()
    }

    /// Engines built to replace one that broke (the count on the pool's counter).
    pub fn rebuilds(&self) -> u64 {
        self.queue.workers.rebuilds.load(Ordering::Relaxed)
    }

    /// Fault injection for tests of the recovery path: the engine thread that gets segment `seq` panics
    /// instead of transcoding it.
    #[doc(hidden)]
    pub fn panic_at(&mut self, seq: u64) {
        self.queue.panic_at = Some(seq);
    }

    /// Queue a segment on the next engine (round-robin). Does not block.
    pub fn submit(&mut self, seq: u64, data: Vec<u8>) {
        self.queue.submit(seq, data);
    }

    /// The result of the oldest submitted segment (blocks until it is done); `None` if nothing is pending.
    pub fn recv(&mut self) -> Option<Result<SegmentOutput, SegmentError>> {
        self.queue.recv()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// An engine that panics on segment 13, reports itself broken after segment 21, and otherwise answers
    /// with its own build number (in `renditions.len()`).
    struct Fake {
        id: usize,
        broken: bool,
    }

    /// What the fakes answer: an output whose `renditions.len()` is the engine's build number.
    fn output(seq: u64, id: usize) -> SegmentOutput {
        SegmentOutput {
            seq,
            renditions: (0..id)
                .map(|_| crate::engine::Rendition {
                    profile: String::new(),
                    data: vec![],
                    width: 0,
                    height: 0,
                    fps: (0, 1),
                    frames: 0,
                    frames_fed: 0,
                    duration: 0.0,
                    first_pts: 0,
                    codecs: String::new(),
                    video_bytes: 0,
                })
                .collect(),
            stats: Default::default(),
        }
    }

    impl Engine for Fake {
        fn push(
            &mut self,
            seq: u64,
            _: &[u8],
            _: Option<&[VideoAu]>,
        ) -> Vec<Result<SegmentOutput, SegmentError>> {
            vec![self.segment(seq)]
        }
        fn finish(&mut self) -> Option<Result<SegmentOutput, SegmentError>> {
            None
        }
        fn holds_segment(&self) -> bool {
            false
        }
        fn is_broken(&self) -> bool {
            self.broken
        }
    }

    impl Fake {
        fn segment(&mut self, seq: u64) -> Result<SegmentOutput, SegmentError> {
            if self.broken {
                return Err(SegmentError::Broken {
                    seq,
                    why: "earlier failure".into(),
                });
            }
            match seq {
                13 => panic!("bug at segment 13"),
                21 => {
                    self.broken = true;
                    Err(SegmentError::Timeout {
                        seq,
                        waited_ms: 1,
                        stage: "test".into(),
                    })
                }
                _ => Ok(output(seq, self.id)),
            }
        }
    }

    /// A lookahead engine: holds each segment until the next one (or `finish`) completes it; panics on
    /// segment 13 (losing the one it holds too).
    struct Holding {
        held: Option<u64>,
    }

    impl Engine for Holding {
        fn push(
            &mut self,
            seq: u64,
            _: &[u8],
            _: Option<&[VideoAu]>,
        ) -> Vec<Result<SegmentOutput, SegmentError>> {
            assert_ne!(seq, 13, "bug at segment 13");
            self.held
                .replace(seq)
                .map(|h| Ok(output(h, 1)))
                .into_iter()
                .collect()
        }
        fn finish(&mut self) -> Option<Result<SegmentOutput, SegmentError>> {
            self.held.take().map(|h| Ok(output(h, 1)))
        }
        fn holds_segment(&self) -> bool {
            self.held.is_some()
        }
        fn is_broken(&self) -> bool {
            false
        }
    }

    fn fakes(fail_builds_after: usize) -> (Factory<Fake>, Arc<AtomicUsize>) {
        let built = Arc::new(AtomicUsize::new(0));
        let b = built.clone();
        let f: Factory<Fake> = Arc::new(move || {
            let id = b.fetch_add(1, Ordering::SeqCst) + 1;
            if id > fail_builds_after {
                return Err(BuildError::NoProfiles);
            }
            Ok(Fake { id, broken: false })
        });
        (f, built)
    }

    const HOLD: Duration = Duration::from_millis(200);

    fn run(q: &mut Queue<Fake>, seq: u64) -> Result<usize, SegmentError> {
        q.submit(seq, vec![]);
        q.recv().unwrap().map(|o| o.renditions.len())
    }

    #[test]
    fn a_panicking_engine_is_replaced_before_the_next_segment() {
        let (f, _) = fakes(usize::MAX);
        let mut q = Queue::new(f, 1, Arc::default(), HOLD).unwrap();
        assert_eq!(run(&mut q, 12), Ok(1));
        let err = run(&mut q, 13).unwrap_err();
        assert!(
            matches!(&err, SegmentError::Crashed { seq: 13, why } if why.contains("bug at segment 13"))
        );
        assert!(err.to_string().starts_with("segment 13: element "), "{err}");
        assert_eq!(run(&mut q, 14), Ok(2), "engine 2 answers");
        assert_eq!(q.workers.rebuilds.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_broken_engine_is_replaced_before_the_next_segment() {
        let (f, _) = fakes(usize::MAX);
        let mut q = Queue::new(f, 1, Arc::default(), HOLD).unwrap();
        assert!(matches!(
            run(&mut q, 21),
            Err(SegmentError::Timeout { seq: 21, .. })
        ));
        assert_eq!(run(&mut q, 22), Ok(2));
        assert_eq!(q.workers.rebuilds.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_failed_rebuild_is_retried_for_every_segment() {
        // engine 1 builds, engine 2 does not: every segment after the crash is refused, none panics
        let (f, built) = fakes(1);
        let mut q = Queue::new(f, 1, Arc::default(), HOLD).unwrap();
        assert!(run(&mut q, 13).is_err());
        for seq in 14..17 {
            let err = run(&mut q, seq).unwrap_err();
            assert!(matches!(err, SegmentError::Broken { .. }), "{err}");
            assert!(err.to_string().contains("no profiles configured"), "{err}");
        }
        assert_eq!(q.workers.rebuilds.load(Ordering::Relaxed), 0);
        assert_eq!(
            built.load(Ordering::SeqCst),
            5,
            "one build tried per segment"
        );
    }

    #[test]
    fn injected_panic_goes_the_same_way() {
        let (f, _) = fakes(usize::MAX);
        let mut q = Queue::new(f, 2, Arc::default(), HOLD).unwrap();
        q.panic_at = Some(5);
        // two engines, round-robin: segment 5 crashes engine 1 while engine 0 does segments 4 and 6
        for seq in 4..8 {
            q.submit(seq, vec![]);
        }
        let got: Vec<_> = (4..8)
            .map(|_| q.recv().unwrap().map(|o| o.seq).map_err(|e| e.seq()))
            .collect();
        assert_eq!(got, [Ok(4), Err(5), Ok(6), Ok(7)]);
        assert_eq!(q.workers.rebuilds.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_held_segment_is_answered_by_the_next_one_or_after_the_hold() {
        let f: Factory<Holding> = Arc::new(|| Ok(Holding { held: None }));
        let mut q = Queue::new(f, 1, Arc::default(), HOLD).unwrap();
        // back to back: each answer comes with the next segment, in order
        for seq in 0..4 {
            q.submit(seq, vec![]);
        }
        for seq in 0..3 {
            assert_eq!(q.recv().unwrap().map(|o| o.seq), Ok(seq));
        }
        // the last one: completed once it has waited the hold for a next one
        let t = std::time::Instant::now();
        assert_eq!(q.recv().unwrap().map(|o| o.seq), Ok(3));
        assert!(t.elapsed() >= HOLD / 2, "{:?}", t.elapsed());
        // at the word that nothing follows, at once
        q.submit(4, vec![]);
        q.workers.senders[0].send(Msg::Finish).unwrap();
        let t = std::time::Instant::now();
        assert_eq!(q.recv().unwrap().map(|o| o.seq), Ok(4));
        assert!(t.elapsed() < HOLD, "{:?}", t.elapsed());
    }

    #[test]
    fn a_crash_fails_the_held_segment_too_and_the_stream_goes_on() {
        let f: Factory<Holding> = Arc::new(|| Ok(Holding { held: None }));
        let mut q = Queue::new(f, 1, Arc::default(), Duration::from_secs(60)).unwrap();
        for seq in 11..15 {
            q.submit(seq, vec![]);
        }
        q.workers.senders[0].send(Msg::Finish).unwrap();
        let got: Vec<_> = (11..15)
            .map(|_| q.recv().unwrap().map(|o| o.seq).map_err(|e| e.seq()))
            .collect();
        assert_eq!(got, [Ok(11), Err(12), Err(13), Ok(14)]);
        assert_eq!(q.workers.rebuilds.load(Ordering::Relaxed), 1);
    }
}
