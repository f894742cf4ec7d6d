//! Stream workers: one OS thread per stream (GStreamer calls block), each owning its media pipeline and HLS
//! writer, fed through a short bounded queue.
//!
//! - **Admission.** A stream takes a session slot from its first segment until its worker has *finished*
//!   (playlists ended, pipeline back to NULL), not merely until it was asked to end.  The limit is the
//!   configured (or probed) number of streams, and, on a hardware encoder with a session limit, the encoder
//!   sessions the streams' ladders really use (a job's ladder may be longer than the configured one).
//! - **Ending.** DELETE and the idle timeout end the stream's session (`#EXT-X-ENDLIST`); the daemon's
//!   shutdown does not: the stream resumes where it was when the daemon comes back.  A stream started again
//!   while its previous worker is still finishing waits for that worker, so two pipelines never write one
//!   directory.
//! - **Liveness.** Each worker says when it starts and ends a segment ([`Liveness`]); the systemd watchdog is
//!   fed only while no segment has been in work for longer than [`STALL_LIMIT`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use tokio::sync::oneshot;

use crate::daemon::Shared;
use crate::ingest::SegmentReport;
use crate::pipeline::PushError;

/// A stream that receives no segment for this long is ended and its session freed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Segments a stream may have queued before the ingest answers 429.
pub(crate) const QUEUE_DEPTH: usize = 4;
/// A segment in work for longer than this means the data path is stuck: the engine's own timeouts (30 s a
/// step) and a rebuild fit well inside it.
pub const STALL_LIMIT: Duration = Duration::from_secs(120);

pub(crate) struct Job {
    pub seq: u64,
    pub data: Vec<u8>,
    /// Profile names this segment is transcoded into (the job's, or the configured ladder).
    pub ladder: Vec<String>,
    /// Where it comes from, when known (the broadcaster's swarm id): one source is one HLS session.
    pub source: Option<String>,
    /// Set for a segment of an on-chain job (checked by the gate): transcoded into the job's profiles, and
    /// its receipt stored before it is acknowledged.
    pub on_chain: Option<crate::receipts::JobSegment>,
    pub reply: oneshot::Sender<Result<SegmentReport, PushError>>,
}

struct Worker {
    id: u64,
    tx: mpsc::SyncSender<Job>,
    /// Set by [`Workers::end`]: the worker ends the session when its queue closes.
    end: Arc<AtomicBool>,
    /// Closed (sender dropped) when the worker has finished.
    finished: Option<oneshot::Receiver<()>>,
    /// Encoder sessions its ladder uses.
    encodes: u32,
    /// Bytes of segments queued and not yet transcoded.
    queued: Arc<AtomicUsize>,
    handle: JoinHandle<()>,
}

/// A worker that takes no more segments and is still finishing; it removes its own entry as its last step.
struct Leaving {
    stream: String,
    id: u64,
    encodes: u32,
    handle: JoinHandle<()>,
}

#[derive(Default)]
struct Registry {
    running: HashMap<String, Worker>,
    leaving: Vec<Leaving>,
}

impl Registry {
    /// Streams and encoder sessions held, by running workers and by leaving ones not yet finished.
    fn held(&self) -> (usize, u32) {
        let encodes = self.running.values().map(|w| w.encodes).sum::<u32>()
            + self.leaving.iter().map(|l| l.encodes).sum::<u32>();
        (self.running.len() + self.leaving.len(), encodes)
    }

    /// Moves the stream's running worker (only worker `id`, when given) to the leaving ones, closing its
    /// queue; with `end`, it ends the session when it has done what is queued.  Returns the signal that it
    /// has finished.
    fn retire(
        &mut self,
        stream: &str,
        id: Option<u64>,
        end: bool,
    ) -> Option<Option<oneshot::Receiver<()>>> {
        if id.is_some_and(|id| self.running.get(stream).is_none_or(|w| w.id != id)) {
            return None;
        }
        let w = self.running.remove(stream)?;
        // before the queue closes, so the worker sees it when it does
        w.end.store(end, Ordering::Relaxed);
        self.leaving.push(Leaving {
            stream: stream.to_string(),
            id: w.id,
            encodes: w.encodes,
            handle: w.handle,
        });
        Some(w.finished)
    }
}

/// The stream workers of the daemon.
#[derive(Clone, Default)]
pub(crate) struct Workers {
    registry: Arc<Mutex<Registry>>,
    next_id: Arc<AtomicU64>,
}

impl Workers {
    /// Hands a job to the stream's worker, starting one (within the limits) if needed.
    pub fn submit(
        &self,
        shared: &Arc<Shared>,
        stream: &str,
        job: Job,
    ) -> Result<(), (StatusCode, String)> {
        let mut reg = self.registry.lock().unwrap();
        let encodes = job.ladder.len() as u32;
        let job = match reg.running.get(stream).map(|w| w.encodes) {
            Some(current) => {
                if encodes > current {
                    let (_, held) = reg.held();
                    admit(
                        None,
                        (held - current, encodes),
                        shared.hw.encoder_sessions(),
                    )?;
                }
                let w = reg.running.get_mut(stream).expect("present");
                w.encodes = encodes;
                let len = job.data.len();
                let cap = shared.config.ingest.max_stream_queue_bytes;
                if w.queued.load(Ordering::Relaxed) + len > cap {
                    return Err((
                        StatusCode::TOO_MANY_REQUESTS,
                        format!("stream {stream}: {cap} bytes of segments already queued"),
                    ));
                }
                match w.tx.try_send(job) {
                    Ok(()) => {
                        w.queued.fetch_add(len, Ordering::Relaxed);
                        return Ok(());
                    }
                    Err(mpsc::TrySendError::Full(_)) => {
                        return Err((
                            StatusCode::TOO_MANY_REQUESTS,
                            format!("stream {stream}: {QUEUE_DEPTH} segments already queued"),
                        ));
                    }
                    // The worker left (a panic): start a new one.
                    Err(mpsc::TrySendError::Disconnected(job)) => {
                        reg.retire(stream, None, false);
                        job
                    }
                }
            }
            None => job,
        };
        // the previous worker of this stream, if it is still finishing: the new one waits for it (and holds
        // its slot meanwhile), so two pipelines never write one directory
        let mut before = Vec::new();
        let mut i = 0;
        while i < reg.leaving.len() {
            if reg.leaving[i].stream == stream {
                before.push(reg.leaving.swap_remove(i));
            } else {
                i += 1;
            }
        }
        let (streams, held) = reg.held();
        let limit = shared.runtime().max_sessions as usize;
        let admitted = admit(
            Some((streams, limit)),
            (held, encodes),
            shared.hw.encoder_sessions(),
        );
        if let Err(e) = admitted {
            reg.leaving.extend(before);
            return Err(e);
        }
        let (tx, rx) = mpsc::sync_channel(QUEUE_DEPTH);
        let end = Arc::new(AtomicBool::new(false));
        let (finished_tx, finished) = oneshot::channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let queued = Arc::new(AtomicUsize::new(job.data.len()));
        let ctx = WorkerCtx {
            shared: shared.clone(),
            stream: stream.to_string(),
            id,
            end: end.clone(),
            queued: queued.clone(),
            workers: self.clone(),
        };
        tx.try_send(job).expect("a new queue has room");
        let handle = std::thread::Builder::new()
            .name(format!("stream-{stream}"))
            .spawn(move || {
                for l in before {
                    let _ = l.handle.join();
                }
                ctx.run(rx);
                drop(finished_tx);
            })
            .map_err(|e| {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("spawning worker: {e}"),
                )
            })?;
        reg.running.insert(
            stream.to_string(),
            Worker {
                id,
                tx,
                end,
                finished: Some(finished),
                encodes,
                queued,
                handle,
            },
        );
        // A stream counts as active (metrics, telemetry) from its first segment on, not from its first result.
        shared
            .streams
            .lock()
            .unwrap()
            .entry(stream.to_string())
            .or_default();
        Ok(())
    }

    /// Ends a stream: its worker ends the session (playlists get `#EXT-X-ENDLIST`) once its queue is done,
    /// and frees the slot when it has finished, which the returned receiver tells (closed).  `None` when no
    /// such stream runs.
    pub fn end(&self, stream: &str) -> Option<oneshot::Receiver<()>> {
        self.registry.lock().unwrap().retire(stream, None, true)?
    }

    /// The daemon stops: every worker finishes what it has queued, leaves its session open (the stream
    /// resumes when the daemon is back) and returns its pipeline to NULL.  Returns the threads to join.
    pub fn shutdown(&self) -> Vec<JoinHandle<()>> {
        let mut reg = self.registry.lock().unwrap();
        let running: Vec<_> = reg.running.drain().map(|(_, w)| w.handle).collect();
        running
            .into_iter()
            .chain(reg.leaving.drain(..).map(|l| l.handle))
            .collect()
    }
}

/// Whether a stream may start (`streams`: streams held and the stream limit) or grow its ladder, given the
/// encoder sessions held and wanted and the encoder's session cap (none for the software encoder: more
/// sessions run slower, they do not fail).
fn admit(
    streams: Option<(usize, usize)>,
    (held, wanted): (u32, u32),
    encoder_cap: Option<u32>,
) -> Result<(), (StatusCode, String)> {
    if let Some((n, limit)) = streams
        && n >= limit
    {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            format!("session limit reached ({limit} streams)"),
        ));
    }
    match encoder_cap {
        Some(cap) if held + wanted > cap => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "encoder session limit reached: {held} of {cap} encoder sessions in use, this ladder needs {wanted}"
            ),
        )),
        _ => Ok(()),
    }
}

/// Segments in work, for the watchdog: fed only while the data path moves.
#[derive(Debug, Default)]
pub struct Liveness {
    busy: Mutex<HashMap<u64, Instant>>,
}

impl Liveness {
    fn start(&self, worker: u64, now: Instant) {
        self.busy.lock().unwrap().insert(worker, now);
    }

    fn done(&self, worker: u64) {
        self.busy.lock().unwrap().remove(&worker);
    }

    /// How long the oldest segment in work has been, if longer than `limit`.
    pub fn stalled(&self, now: Instant, limit: Duration) -> Option<Duration> {
        self.busy
            .lock()
            .unwrap()
            .values()
            .map(|since| now.saturating_duration_since(*since))
            .max()
            .filter(|d| *d > limit)
    }
}

struct WorkerCtx {
    shared: Arc<Shared>,
    stream: String,
    id: u64,
    end: Arc<AtomicBool>,
    queued: Arc<AtomicUsize>,
    workers: Workers,
}

/// A stream's pipeline and what it was built for.
struct Built {
    generation: u64,
    ladder: Vec<String>,
    deterministic: bool,
    pipeline: crate::pipeline::StreamPipeline,
}

impl WorkerCtx {
    fn run(self, rx: mpsc::Receiver<Job>) {
        let span = tracing::info_span!("stream", id = %self.stream);
        let _g = span.enter();
        let shared = &self.shared;
        let mut built: Option<Built> = None;
        let ending = loop {
            let job = match rx.recv_timeout(IDLE_TIMEOUT) {
                Ok(job) => job,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    // Leave the registry under its lock, so no job can be queued to a worker that is leaving.
                    let mut reg = self.workers.registry.lock().unwrap();
                    match rx.try_recv() {
                        Ok(job) => job,
                        Err(_) => {
                            reg.retire(&self.stream, Some(self.id), true);
                            tracing::info!("idle for {IDLE_TIMEOUT:?}: ending the stream");
                            break true;
                        }
                    }
                }
                // DELETE (`end` set) or the daemon's shutdown
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    break self.end.load(Ordering::Relaxed);
                }
            };
            shared.work.start(self.id, Instant::now());
            let (result, reply) = self.segment(&mut built, job);
            shared.work.done(self.id);
            let _ = reply.send(result.map(|mut report| {
                report.stream = self.stream.clone();
                report
            }));
            crate::malloc::release_free_pages();
        };
        if let Some(mut b) = built.take() {
            if ending && let Err(e) = b.pipeline.finish() {
                tracing::warn!("ending the playlists: {e:#}");
            }
            drop(b); // the pipeline goes to NULL here
        }
        // The slot is free from here on.  Drop the stream's stats unless a new worker for the same stream id
        // started meanwhile.
        let mut reg = self.workers.registry.lock().unwrap();
        reg.leaving.retain(|l| l.id != self.id);
        if reg
            .running
            .get(&self.stream)
            .is_some_and(|w| w.id == self.id)
        {
            // the queue closed without a retire (cannot happen today): leave nothing behind
            reg.running.remove(&self.stream);
        }
        if !reg.running.contains_key(&self.stream) {
            shared.streams.lock().unwrap().remove(&self.stream);
        }
    }

    /// One segment: the pipeline (re)built if needed, transcoded, written, its receipt stored.
    #[allow(clippy::type_complexity)]
    fn segment(
        &self,
        built: &mut Option<Built>,
        job: Job,
    ) -> (
        Result<SegmentReport, PushError>,
        oneshot::Sender<Result<SegmentReport, PushError>>,
    ) {
        let Job {
            seq,
            data,
            ladder,
            source,
            on_chain,
            reply,
        } = job;
        self.queued.fetch_sub(data.len(), Ordering::Relaxed);
        let result = self.transcode(built, seq, data, &ladder, source, on_chain.as_ref());
        (result, reply)
    }

    fn transcode(
        &self,
        built: &mut Option<Built>,
        seq: u64,
        data: Vec<u8>,
        ladder: &[String],
        source: Option<String>,
        on_chain: Option<&crate::receipts::JobSegment>,
    ) -> Result<SegmentReport, PushError> {
        let shared = &self.shared;
        let generation = shared.pipeline_generation.load(Ordering::Relaxed);
        // a job's segments are encoded in the deterministic mode when the box offers bit-exact verification
        let deterministic = on_chain.is_some_and(|js| js.bit_exact);
        if let Some(b) = built.as_ref() {
            if b.generation != generation {
                tracing::info!("restarting the pipeline on request");
                *built = None;
            } else if b.ladder != ladder || b.deterministic != deterministic {
                tracing::info!(
                    ?ladder,
                    deterministic,
                    "the stream's ladder or encoder changed: new pipeline"
                );
                *built = None;
            }
        }
        if built.is_none() {
            let dir = shared.config.agent.data_dir.join("hls").join(&self.stream);
            match crate::pipeline::StreamPipeline::new(shared, ladder, &dir, deterministic) {
                Ok(pipeline) => {
                    *built = Some(Built {
                        generation,
                        ladder: ladder.to_vec(),
                        deterministic,
                        pipeline,
                    })
                }
                Err(e) => {
                    let msg = format!("{e:#}");
                    tracing::error!("cannot build the pipeline: {msg}");
                    shared.record_segment(&self.stream, Err(msg.clone()));
                    return Err(PushError::Failed(msg));
                }
            }
        }
        let pipeline = &mut built.as_mut().expect("built above").pipeline;
        pipeline.set_source(source);
        let started = Instant::now();
        // the engine takes the segment's buffer; an on-chain job's input is kept for its proof bundle
        let input = on_chain.map(|_| data.clone());
        let mut result = pipeline.push(seq, data);
        if let (Ok(pushed), Some(js), Some(store), Some(input)) =
            (&result, on_chain, &shared.proof, &input)
        {
            let block = shared.chain.as_ref().map_or(0, |c| c.borrow().block);
            let data_dir = &shared.config.agent.data_dir;
            match crate::receipts::store(store, data_dir, js, &pushed.report, seq, input, block) {
                Ok(leaf) => {
                    tracing::info!(seq = seq, job = js.job.job_id, ?leaf, "receipt stored")
                }
                Err(e) => {
                    result = Err(PushError::Failed(format!(
                        "segment {}: storing its receipt: {e:#}",
                        seq
                    )))
                }
            }
        }
        match &result {
            Ok(r) => {
                let wall = started.elapsed().as_secs_f64().max(1e-6);
                let frames = r.input_frames as f64;
                shared.record_segment(
                    &self.stream,
                    Ok(crate::daemon::SegmentDone {
                        fps: frames / wall,
                        realtime_factor: r.report.input_duration / wall,
                        dropped: &r.report.dropped,
                    }),
                );
                if r.report.dropped.total() > 0 {
                    tracing::warn!(seq = seq, dropped = ?r.report.dropped, "input frames without output");
                }
                tracing::info!(seq = seq, wall_ms = r.report.wall_ms, "segment transcoded");
            }
            Err(e @ PushError::AlreadyWritten(_)) => tracing::info!(seq = seq, "{e}"),
            Err(e @ PushError::Failed(_)) => {
                tracing::warn!(seq = seq, "segment failed: {e}");
                shared.record_segment(&self.stream, Err(e.to_string()));
            }
        }
        result.map(|r| r.report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_follows_the_ladders_streams_use() {
        // an encoder with 6 sessions and a stream limit of 3 (the configured ladder has 2 profiles)
        let cap = Some(6);
        assert!(admit(Some((2, 3)), (4, 2), cap).is_ok());
        assert!(admit(Some((3, 3)), (4, 2), cap).is_err(), "stream limit");
        // a job whose ladder has 4 profiles does not fit beside two 2-profile streams
        let e = admit(Some((2, 3)), (4, 4), cap).unwrap_err();
        assert!(e.1.contains("4 of 6 encoder sessions"), "{}", e.1);
        assert!(admit(Some((1, 3)), (2, 4), cap).is_ok());
        // a running stream whose ladder grows is checked without the stream limit
        assert!(admit(None, (2, 4), cap).is_ok());
        assert!(admit(None, (4, 4), cap).is_err());
        // the software encoder has no session cap
        assert!(admit(Some((1, 3)), (100, 8), None).is_ok());
    }

    #[test]
    fn the_watchdog_sees_a_segment_stuck_in_work_and_nothing_else() {
        let l = Liveness::default();
        let t0 = Instant::now();
        let limit = Duration::from_secs(120);
        assert_eq!(
            l.stalled(t0 + Duration::from_secs(1000), limit),
            None,
            "idle is fine"
        );
        l.start(1, t0);
        l.start(2, t0 + Duration::from_secs(100));
        assert_eq!(l.stalled(t0 + Duration::from_secs(119), limit), None);
        assert_eq!(
            l.stalled(t0 + Duration::from_secs(130), limit),
            Some(Duration::from_secs(130))
        );
        l.done(1);
        assert_eq!(l.stalled(t0 + Duration::from_secs(130), limit), None);
        l.done(2);
        assert_eq!(l.stalled(t0 + Duration::from_secs(10_000), limit), None);
    }
}
