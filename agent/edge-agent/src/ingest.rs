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

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
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
use crate::streams::{Job, Workers};

#[derive(Clone)]
pub(crate) struct App {
    pub(crate) shared: Arc<Shared>,
    workers: Workers,
    /// Broadcasters' swarms this box reads from, and the rendition swarms it publishes.
    pub(crate) swarms: Arc<crate::live_swarm::Swarms>,
}

/// What the ingest answers for one transcoded segment.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentReport {
    pub stream: String,
    pub seq: u64,
    pub wall_ms: u64,
    pub input_duration: f64,
    /// Input frames that produced no output, by cause (before the first keyframe, undecodable, duplicate
    /// timestamp).
    pub dropped: media::Dropped,
    /// Timestamp repairs, in words.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repairs: Vec<String>,
    /// Why the input's audio is not in the renditions, when it has audio that is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio_dropped: Option<String>,
    /// `continuous` when the encoders ran on from the stream's previous segment, `restart` when they started
    /// afresh for this one (the bit-exact mode always does).
    pub segment_mode: media::engine::SegmentMode,
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
    /// Frames fed to the encoder (fewer than decoded where the profile caps the frame rate).
    pub frames_fed: usize,
    /// RFC 6381 codec strings.
    pub codecs: String,
    /// First video PTS, 90 kHz.
    pub first_pts: u64,
    pub uri: String,
}

pub async fn serve(shared: Arc<Shared>, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    let app = App {
        shared: shared.clone(),
        workers: Workers::default(),
        swarms: Arc::new(crate::live_swarm::Swarms::new(
            shared.config.swarm.clone(),
            &shared.config.agent.data_dir,
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
    // broadcasters' swarms an earlier run was reading, read again
    crate::live_swarm::rejoin_all(&app).await;
    let listener =
        crate::conn_limit::LimitedListener::new(listener, shared.config.ingest.max_connections);
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await?;
    // Closing the job channels lets every worker finish what it has queued and return its pipeline to NULL;
    // the daemon waits for them (within its shutdown grace).
    let threads = app.workers.shutdown();
    tokio::task::spawn_blocking(move || {
        for t in threads {
            let _ = t.join();
        }
    })
    .await?;
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
    body: axum::body::Body,
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
    let body = match read_body(body, &headers, app.shared.config.ingest.max_segment_bytes).await {
        Ok(b) => b,
        Err((status, msg)) => return error(status, format!("segment {seq}: {msg}")),
    };
    match app.ingest(&stream, seq, body, job_id, sig, None).await {
        Ok(report) => {
            app.swarms.publish(&stream, &report, None).await;
            axum::Json(report).into_response()
        }
        Err((status, msg)) => error(status, msg),
    }
}

/// Reads a request body into one buffer, the one the engine will take: sized from Content-Length when it
/// is given, never beyond `limit` (413 as soon as it would be), no second copy.
async fn read_body(
    body: axum::body::Body,
    headers: &axum::http::HeaderMap,
    limit: usize,
) -> Result<Vec<u8>, (StatusCode, String)> {
    use http_body_util::BodyExt;
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("larger than the {limit} bytes a segment may have"),
        )
    };
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut out = Vec::with_capacity(announced.unwrap_or(0));
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| (StatusCode::BAD_REQUEST, format!("reading the body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(too_large());
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

impl App {
    /// One segment through the stream's pipeline, whichever way it came (HTTP ingest or a broadcaster's
    /// swarm, `source` naming it): for an on-chain job (`job_id`), the gate checks the job and the
    /// broadcaster's signature first and the receipt is stored before the answer.
    pub(crate) async fn ingest(
        &self,
        stream: &str,
        seq: u64,
        body: Vec<u8>,
        job_id: Option<u64>,
        sig: Option<&str>,
        source: Option<&str>,
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
        // a job's segments go into the job's profiles, in its order; others into the configured ladder
        let ladder = match &on_chain {
            Some(js) => self
                .shared
                .config
                .profile_set()
                .and_then(|set| js.ladder(&set))
                .map_err(|e| {
                    (
                        StatusCode::UNPROCESSABLE_ENTITY,
                        format!("segment {seq}: {e:#}"),
                    )
                })?,
            None => self.shared.runtime().ladder,
        };
        let (reply, answer) = oneshot::channel();
        let job = Job {
            seq,
            data: body,
            ladder,
            source: source.map(str::to_string),
            on_chain,
            reply,
        };
        self.workers.submit(&self.shared, stream, job)?;
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
}

/// Answers once the stream has ended: its queued segments done, its playlists ended, its slot free.
async fn end_stream(State(app): State<App>, UrlPath(stream): UrlPath<String>) -> Response {
    let Some(finished) = app.end(&stream) else {
        return error(StatusCode::NOT_FOUND, format!("no stream {stream}"));
    };
    match tokio::time::timeout(END_WAIT, finished).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(_) => error(
            StatusCode::ACCEPTED,
            format!("stream {stream} is ending; its worker is still busy"),
        ),
    }
}

/// How long DELETE waits for a stream's worker to finish (a full queue of segments).
const END_WAIT: Duration = Duration::from_secs(60);

impl App {
    /// Ends a stream: its worker ends the playlists and frees the session; its rendition swarms carry an
    /// end record.  The receiver closes when the worker has finished; `None` when no such stream runs.
    pub(crate) fn end(&self, stream: &str) -> Option<oneshot::Receiver<()>> {
        let finished = self.workers.end(stream);
        self.swarms.end(stream);
        finished
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
        "fleet": s.config.fleet.as_ref().map(|_| serde_json::json!({
            "connected": s.fleet_connected.load(std::sync::atomic::Ordering::Relaxed),
        })),
        "image": s.image.as_ref().map(|i| serde_json::json!({
            "slot": i.slot,
            "version": i.version,
        })),
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
    let _ = writeln!(
        out,
        "# HELP edge_agent_frames_dropped_total Input frames that produced no output, by cause.\n# TYPE edge_agent_frames_dropped_total counter"
    );
    for (id, st) in &streams {
        for (reason, n) in st.frames_dropped.by_reason() {
            let _ = writeln!(
                out,
                "edge_agent_frames_dropped_total{{stream=\"{id}\",reason=\"{reason}\"}} {n}"
            );
        }
    }
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
