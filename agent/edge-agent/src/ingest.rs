//! The daemon's data path: HTTP segment ingest, one stream worker (OS thread, one long-lived media pipeline)
//! per stream, HLS output on disk and over HTTP, health and Prometheus metrics.
//!
//! | route | |
//! |---|---|
//! | `PUT /live/{stream}/{seq}.ts` | transcode one MPEG-TS segment; answers with the renditions (JSON) or a 4xx/5xx with the error |
//! | `DELETE /live/{stream}` | end a stream: playlists get `#EXT-X-ENDLIST`, the session is freed |
//! | `GET /hls/{stream}/...` | the HLS output (master playlist `master.m3u8`) |
//! | `POST /swarm/join` | read a stream from a broadcaster's live swarm (`live_swarm::JoinRequest`, JSON) |
//! | `GET /swarm/{stream}` | the stream's swarm manifest: its rendition swarms (`segment_swarm::SwarmManifest`) |
//! | `GET /proof/{job}/{seq}/{file}` | a job segment's proof bundle, kept until no challenge can come (`proof::bundle`) |
//! | `GET /healthz` | liveness and what the box runs (JSON) |
//! | `GET /metrics` | Prometheus text format |

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde::Serialize;
use tokio::sync::oneshot;

use crate::daemon::Shared;
use crate::pipeline::PushError;
use crate::request::{job_id_header, segment_seq, signature_header};
pub(crate) use crate::request::{safe_join, valid_stream_id};

/// A stream that receives no segment for this long is ended and its session freed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Segments a stream may have queued before the ingest answers 429.
const QUEUE_DEPTH: usize = 4;

#[derive(Clone)]
pub(crate) struct App {
    pub(crate) shared: Arc<Shared>,
    workers: Workers,
    next_id: Arc<std::sync::atomic::AtomicU64>,
    /// Broadcasters' swarms this box reads from, and the rendition swarms it publishes.
    pub(crate) swarms: Arc<crate::live_swarm::Swarms>,
}

struct Worker {
    id: u64,
    tx: mpsc::SyncSender<Job>,
}

type Workers = Arc<Mutex<HashMap<String, Worker>>>;

struct Job {
    seq: u64,
    data: Bytes,
    /// Set for a segment of an on-chain job (checked by the gate): transcoded into the job's profiles, and
    /// its receipt stored before it is acknowledged.
    on_chain: Option<crate::receipts::JobSegment>,
    reply: oneshot::Sender<Result<SegmentReport, PushError>>,
}

/// What the ingest answers for one transcoded segment.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentReport {
    pub stream: String,
    pub seq: u64,
    pub wall_ms: u64,
    pub input_duration: f64,
    pub renditions: Vec<RenditionReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RenditionReport {
    pub profile: String,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub duration: f64,
    /// Size of the MPEG-TS segment.
    pub bytes: usize,
    /// Size of the H.264 elementary stream alone (for bitrate against the profile).
    pub video_bytes: usize,
    /// Video frames in the segment.
    pub frames: usize,
    /// RFC 6381 codec strings.
    pub codecs: String,
    /// First video PTS, 90 kHz.
    pub first_pts: u64,
    pub uri: String,
}

pub async fn serve(shared: Arc<Shared>, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    let app = App {
        shared: shared.clone(),
        workers: Arc::new(Mutex::new(HashMap::new())),
        next_id: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        swarms: Arc::new(crate::live_swarm::Swarms::new(
            shared.config.swarm.clone(),
            shared.config.agent.data_dir.join("hls"),
        )),
    };
    let router = Router::new()
        .route(
            "/live/{stream}/{segment}",
            put(put_segment).post(put_segment),
        )
        .route("/live/{stream}", axum::routing::delete(end_stream))
        .route("/hls/{stream}/{*path}", get(get_hls))
        .route("/proof/{job}/{seq}/{file}", get(get_proof))
        .route("/swarm/join", axum::routing::post(crate::live_swarm::join))
        .route("/swarm/{stream}", get(crate::live_swarm::manifest))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(
            shared.config.ingest.max_segment_bytes,
        ))
        .with_state(app.clone());
    let stop = shared.shutdown.clone();
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await?;
    // Closing the job channels lets every worker finish its playlists and return its pipeline to NULL.
    let workers: Vec<_> = app.workers.lock().unwrap().drain().collect();
    drop(workers);
    Ok(())
}

pub(crate) fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "error": msg.into() })),
    )
        .into_response()
}

async fn put_segment(
    State(app): State<App>,
    UrlPath((stream, segment)): UrlPath<(String, String)>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    if !valid_stream_id(&stream) {
        return error(
            StatusCode::BAD_REQUEST,
            "stream id must be 1-64 characters of [A-Za-z0-9_-]",
        );
    }
    let Some(seq) = segment_seq(&segment) else {
        return error(
            StatusCode::BAD_REQUEST,
            "segment must be named {seq}.ts with a decimal sequence number",
        );
    };
    let Ok(job_id) = job_id_header(headers.get("x-job-id").map(|v| v.as_bytes())) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("segment {seq}: X-Job-Id is not a job number"),
        );
    };
    let sig = signature_header(headers.get("x-broadcaster-signature").map(|v| v.as_bytes()));
    match app.ingest(&stream, seq, body, job_id, sig).await {
        Ok(report) => {
            app.swarms.publish(&stream, &report, None).await;
            axum::Json(report).into_response()
        }
        Err((status, msg)) => error(status, msg),
    }
}

impl App {
    /// One segment through the stream's pipeline, whichever way it came (HTTP ingest or a broadcaster's
    /// swarm): for an on-chain job (`job_id`), the gate checks the job and the broadcaster's signature first
    /// and the receipt is stored before the answer.
    pub(crate) async fn ingest(
        &self,
        stream: &str,
        seq: u64,
        body: Bytes,
        job_id: Option<u64>,
        sig: Option<&str>,
    ) -> Result<SegmentReport, (StatusCode, String)> {
        let mut on_chain = None;
        if let Some(job_id) = job_id {
            // a segment of an on-chain job: nothing is done with it unless the job and the signature check out
            let Some(gate) = &self.shared.job_gate else {
                return Err((
                    StatusCode::BAD_REQUEST,
                    format!(
                        "segment {seq}: this box takes no on-chain jobs (no [chain] configured)"
                    ),
                ));
            };
            let checked = gate.check(job_id, stream, seq, &body, sig).await;
            if let Err(e) = &checked {
                use ::chain::jobs::GateError as G;
                let status = match e {
                    G::UnknownJob(_) => StatusCode::NOT_FOUND,
                    G::Ended { .. } => StatusCode::GONE,
                    G::WrongSigner { .. } | G::NotOurs { .. } => StatusCode::FORBIDDEN,
                    G::InsufficientDeposit { .. } => StatusCode::PAYMENT_REQUIRED,
                    G::Chain { .. } => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::BAD_REQUEST,
                };
                tracing::warn!(stream, seq, job_id, error = %e, "job segment refused");
                return Err((status, e.to_string()));
            }
            let signature = sig
                .and_then(|s| s.trim().parse::<::chain::Bytes>().ok())
                .unwrap_or_default();
            on_chain = checked.ok().map(|job| crate::receipts::JobSegment {
                job,
                signature,
                bit_exact: crate::receipts::bit_exact(&self.shared.config),
            });
        }
        let (reply, answer) = oneshot::channel();
        let job = Job {
            seq,
            data: body,
            on_chain,
            reply,
        };
        self.submit(stream, job)?;
        match answer.await {
            Ok(Ok(report)) => Ok(report),
            Ok(Err(PushError::AlreadyWritten(e))) => Err((StatusCode::CONFLICT, e)),
            Ok(Err(PushError::Failed(e))) => Err((StatusCode::UNPROCESSABLE_ENTITY, e)),
            Err(_) => Err((
                StatusCode::SERVICE_UNAVAILABLE,
                "stream worker stopped before answering".into(),
            )),
        }
    }

    /// Hands a job to the stream's worker, starting one (within the session limit) if needed.
    fn submit(&self, stream: &str, job: Job) -> Result<(), (StatusCode, String)> {
        let mut workers = self.workers.lock().unwrap();
        let job = match workers.get(stream) {
            Some(w) => match w.tx.try_send(job) {
                Ok(()) => return Ok(()),
                Err(mpsc::TrySendError::Full(_)) => {
                    return Err((
                        StatusCode::TOO_MANY_REQUESTS,
                        format!("stream {stream}: {QUEUE_DEPTH} segments already queued"),
                    ));
                }
                // Cannot happen while the entry exists (a worker removes its entry before it drops its
                // receiver), but if it did, starting a new worker is the right answer.
                Err(mpsc::TrySendError::Disconnected(job)) => {
                    workers.remove(stream);
                    job
                }
            },
            None => job,
        };
        let limit = self.shared.runtime().max_sessions as usize;
        if workers.len() >= limit {
            return Err((
                StatusCode::SERVICE_UNAVAILABLE,
                format!("session limit reached ({limit} streams)"),
            ));
        }
        let (tx, rx) = mpsc::sync_channel(QUEUE_DEPTH);
        let shared = self.shared.clone();
        let name = stream.to_string();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let registry = self.workers.clone();
        std::thread::Builder::new()
            .name(format!("stream-{stream}"))
            .spawn(move || stream_worker(shared, name, rx, (registry, id)))
            .map_err(|e| {
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("spawning worker: {e}"),
                )
            })?;
        tx.try_send(job).map_err(|_| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "new worker refused job".to_string(),
            )
        })?;
        workers.insert(stream.to_string(), Worker { id, tx });
        // A stream counts as active (metrics, telemetry) from its first segment on, not from its first result.
        self.shared
            .streams
            .lock()
            .unwrap()
            .entry(stream.to_string())
            .or_default();
        Ok(())
    }
}

async fn end_stream(State(app): State<App>, UrlPath(stream): UrlPath<String>) -> Response {
    if app.end(&stream) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, format!("no stream {stream}"))
    }
}

impl App {
    /// Ends a stream: its worker closes the playlists and frees the session; its rendition swarms carry an
    /// end record. False when no such stream runs.
    pub(crate) fn end(&self, stream: &str) -> bool {
        let had = self.workers.lock().unwrap().remove(stream).is_some();
        self.swarms.end(stream);
        had
    }
}

/// One stream: owns the media pipeline (built once, rebuilt on request; an engine that breaks is rebuilt by
/// the pipeline's pool before the next segment) and the HLS writer.  Runs on its own OS thread because GStreamer calls block.
fn stream_worker(
    shared: Arc<Shared>,
    stream: String,
    rx: mpsc::Receiver<Job>,
    (registry, id): (Workers, u64),
) {
    let span = tracing::info_span!("stream", id = %stream);
    let _g = span.enter();
    let dir = shared.config.agent.data_dir.join("hls").join(&stream);
    // (pipeline generation, ladder, pipeline, deterministic encoder)
    let mut state: Option<(u64, Vec<String>, crate::pipeline::StreamPipeline, bool)> = None;
    loop {
        let job = match rx.recv_timeout(IDLE_TIMEOUT) {
            Ok(job) => job,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // Leave the registry under its lock, so no job can be queued to a worker that is leaving.
                let mut workers = registry.lock().unwrap();
                match rx.try_recv() {
                    Ok(job) => job,
                    Err(_) => {
                        if workers.get(&stream).is_some_and(|w| w.id == id) {
                            workers.remove(&stream);
                        }
                        tracing::info!("idle for {IDLE_TIMEOUT:?}: ending stream");
                        break;
                    }
                }
            }
            // Ended by DELETE /live/{stream} or by shutdown: the registry entry is already gone.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let generation = shared.pipeline_generation.load(Ordering::Relaxed);
        if state.as_ref().is_some_and(|(g, ..)| *g != generation) {
            tracing::info!("restarting pipeline on request");
            state = None;
        }
        // a job's segments go into the job's profiles, in its order; others into the configured ladder
        let ladder = match &job.on_chain {
            Some(js) => match shared.config.profile_set().and_then(|set| js.ladder(&set)) {
                Ok(l) => l,
                Err(e) => {
                    let msg = format!("segment {}: {e:#}", job.seq);
                    let _ = job.reply.send(Err(PushError::Failed(msg)));
                    continue;
                }
            },
            None => shared.runtime().ladder,
        };
        // a job's segments are encoded in the deterministic mode when the box offers bit-exact verification
        let deterministic = job.on_chain.as_ref().is_some_and(|js| js.bit_exact);
        if state
            .as_ref()
            .is_some_and(|(_, l, _, d)| *l != ladder || *d != deterministic)
        {
            tracing::info!(
                ?ladder,
                deterministic,
                "the stream's ladder or encoder changed: new pipeline"
            );
            state = None;
        }
        if state.is_none() {
            match crate::pipeline::StreamPipeline::new(&shared, &ladder, &dir, deterministic) {
                Ok(p) => state = Some((generation, ladder.clone(), p, deterministic)),
                Err(e) => {
                    let msg = format!("{e:#}");
                    tracing::error!("cannot build pipeline: {msg}");
                    shared.record_segment(&stream, Err(msg.clone()));
                    let _ = job.reply.send(Err(PushError::Failed(msg)));
                    continue;
                }
            }
        }
        let (_, _, pipeline, _) = state.as_mut().expect("built above");
        let started = Instant::now();
        let mut result = pipeline.push(job.seq, &job.data);
        if let (Ok(_), Some(js), Some(store)) = (&result, &job.on_chain, &shared.proof) {
            let block = shared.chain.as_ref().map_or(0, |c| c.borrow().block);
            let data_dir = &shared.config.agent.data_dir;
            let report = &result.as_ref().expect("matched Ok").report;
            match crate::receipts::store(store, data_dir, js, report, job.seq, &job.data, block) {
                Ok(leaf) => {
                    tracing::info!(seq = job.seq, job = js.job.job_id, ?leaf, "receipt stored")
                }
                Err(e) => {
                    result = Err(PushError::Failed(format!(
                        "segment {}: storing its receipt: {e:#}",
                        job.seq
                    )))
                }
            }
        }
        match &result {
            Ok(r) => {
                let wall = started.elapsed().as_secs_f64().max(1e-6);
                let frames = r.input_frames as f64;
                shared.record_segment(&stream, Ok((frames / wall, r.report.input_duration / wall)));
                tracing::info!(
                    seq = job.seq,
                    wall_ms = r.report.wall_ms,
                    "segment transcoded"
                );
            }
            Err(e @ PushError::AlreadyWritten(_)) => tracing::info!(seq = job.seq, "{e}"),
            Err(e @ PushError::Failed(_)) => {
                tracing::warn!(seq = job.seq, "segment failed: {e}");
                shared.record_segment(&stream, Err(e.to_string()));
            }
        }
        let _ = job.reply.send(result.map(|r| {
            let mut report = r.report;
            report.stream = stream.clone();
            report
        }));
    }
    if let Some((_, _, mut p, _)) = state.take()
        && let Err(e) = p.finish()
    {
        tracing::warn!("finishing playlists: {e:#}");
    }
    // Drop the stream's stats unless a new worker for the same stream id started meanwhile (after a DELETE).
    let workers = registry.lock().unwrap();
    if !workers.contains_key(&stream) {
        shared.streams.lock().unwrap().remove(&stream);
    }
}

async fn get_hls(
    State(app): State<App>,
    UrlPath((stream, path)): UrlPath<(String, String)>,
) -> Response {
    if !valid_stream_id(&stream) {
        return error(StatusCode::BAD_REQUEST, "bad stream id");
    }
    let Some(file) = safe_join(
        &app.shared.config.agent.data_dir.join("hls").join(&stream),
        &path,
    ) else {
        return error(StatusCode::BAD_REQUEST, "bad path");
    };
    let ctype = match file.extension().and_then(|e| e.to_str()) {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("ts") => "video/mp2t",
        _ => "application/octet-stream",
    };
    match tokio::fs::read(&file).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, ctype)], bytes).into_response(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            error(StatusCode::NOT_FOUND, "not found")
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// A kept proof bundle's file (manifest, input, renditions), for verifiers.
async fn get_proof(
    State(app): State<App>,
    UrlPath((job, seq, file)): UrlPath<(u64, u64, String)>,
) -> Response {
    let dir = crate::receipts::kept_dir(&app.shared.config.agent.data_dir, job, seq);
    let Some(path) = safe_join(&dir, &file) else {
        return error(StatusCode::BAD_REQUEST, "bad path");
    };
    let ctype = if file.ends_with(".json") {
        "application/json"
    } else {
        "video/mp2t"
    };
    match tokio::fs::read(&path).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, ctype)], bytes).into_response(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => error(
            StatusCode::NOT_FOUND,
            format!("job {job} segment {seq}: no {file} kept"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn healthz(State(app): State<App>) -> Response {
    let s = &app.shared;
    let rt = s.runtime();
    axum::Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": s.started.elapsed().as_secs(),
        "encoder": s.hw.selection_summary(),
        "streams": s.active_streams(),
        "max_sessions": rt.max_sessions,
        "ladder": rt.ladder,
    }))
    .into_response()
}

async fn metrics(State(app): State<App>) -> Response {
    let s = &app.shared;
    let rt = s.runtime();
    let mut out = String::new();
    use std::fmt::Write;
    let _ = writeln!(
        out,
        "# HELP edge_agent_info Agent version and encoder in use.\n# TYPE edge_agent_info gauge"
    );
    let _ = writeln!(
        out,
        "edge_agent_info{{version=\"{}\",encoder=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION"),
        s.hw.encoder_element()
    );
    let _ = writeln!(
        out,
        "# TYPE edge_agent_uptime_seconds gauge\nedge_agent_uptime_seconds {}",
        s.started.elapsed().as_secs()
    );
    let _ = writeln!(
        out,
        "# TYPE edge_agent_max_sessions gauge\nedge_agent_max_sessions {}",
        rt.max_sessions
    );
    let streams = s.streams.lock().unwrap().clone();
    let _ = writeln!(
        out,
        "# TYPE edge_agent_active_streams gauge\nedge_agent_active_streams {}",
        streams.len()
    );
    let _ = writeln!(out, "# TYPE edge_agent_segments_total counter");
    for (id, st) in &streams {
        let _ = writeln!(
            out,
            "edge_agent_segments_total{{stream=\"{id}\",result=\"ok\"}} {}",
            st.segments_ok
        );
        let _ = writeln!(
            out,
            "edge_agent_segments_total{{stream=\"{id}\",result=\"error\"}} {}",
            st.segments_failed
        );
    }
    let _ = writeln!(
        out,
        "# HELP edge_agent_engine_rebuilds_total Media engines rebuilt after one broke (all streams).\n# TYPE edge_agent_engine_rebuilds_total counter\nedge_agent_engine_rebuilds_total {}",
        s.engine_rebuilds.load(Ordering::Relaxed)
    );
    let _ = writeln!(out, "# TYPE edge_agent_realtime_factor gauge");
    for (id, st) in &streams {
        let _ = writeln!(
            out,
            "edge_agent_realtime_factor{{stream=\"{id}\"}} {:.3}",
            st.realtime_factor
        );
    }
    if let Some(c) = &s.chain {
        crate::daemon::chain::metrics(&c.borrow(), &mut out);
    }
    if let Some(c) = &s.claims {
        crate::daemon::chain::claim_metrics(&c.borrow(), &mut out);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
