//! The daemon's swarm side (wiring over `segment_swarm`):
//! - `POST /swarm/join`: a broadcaster names its live swarm; the box joins it and feeds every segment record
//!   into the same per-stream pipeline as the HTTP ingest (gate, transcode, receipt), in order;
//! - every transcoded segment leaves again on one live swarm per rendition, keyed by a fresh Ed25519 key per
//!   stream and rendition; `GET /swarm/{stream}` lists them for viewers.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use segment_swarm::manifest::{RenditionSwarm, SourceSwarm, SwarmManifest};
use segment_swarm::node::{random_key, swarm_config};
use segment_swarm::{Publisher, Record, RenditionMeta, SegmentMeta, Subscriber};
use serde::{Deserialize, Serialize};

use crate::config::SwarmConfig;
use crate::ingest::{App, SegmentReport, error};
pub use crate::request::JoinRequest;

/// Rendition swarms keep serving this long after their stream ended, so that late viewers finish.
const LINGER: Duration = Duration::from_secs(60);

/// What `/swarm/join` answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinAnswer {
    pub stream: String,
    /// The UDP address the box reads the stream on (it relays from there too).
    pub local: SocketAddr,
    /// Where to fetch the stream's swarm manifest.
    pub manifest: String,
}

struct StreamSwarms {
    job_id: Option<u64>,
    source: Option<SourceSwarm>,
    source_task: Option<tokio::task::AbortHandle>,
    /// One per rendition, in ladder order; made with the stream's first segment.
    renditions: Vec<(String, Publisher)>,
    /// The last segment published.
    last_seq: Option<u64>,
}

impl StreamSwarms {
    fn new() -> Self {
        StreamSwarms {
            job_id: None,
            source: None,
            source_task: None,
            renditions: Vec::new(),
            last_seq: None,
        }
    }
}

/// Every stream's swarms.
pub struct Swarms {
    cfg: SwarmConfig,
    hls_dir: PathBuf,
    /// Where the joins in force are kept ([`joins_dir`]).
    joins_dir: PathBuf,
    /// Streams that ended, whose rendition swarms still serve ([`LINGER`]): their manifest stays readable,
    /// so a viewer that was following a restarted transcoder still finds its swarms.
    ended: Mutex<HashMap<String, (std::time::Instant, Listed)>>,
    streams: Mutex<HashMap<String, StreamSwarms>>,
}

impl Swarms {
    /// `data_dir`: the daemon's; the HLS output is under its `hls/`.
    pub fn new(cfg: SwarmConfig, data_dir: &std::path::Path) -> Self {
        Swarms {
            cfg,
            hls_dir: data_dir.join("hls"),
            joins_dir: joins_dir(data_dir),
            ended: Mutex::new(HashMap::new()),
            streams: Mutex::new(HashMap::new()),
        }
    }

    fn bind(&self) -> SocketAddr {
        SocketAddr::new(self.cfg.bind, 0)
    }

    /// Publishes a transcoded segment's renditions (read back from the HLS output it was just written to)
    /// on the stream's rendition swarms, made on first use.
    pub async fn publish(&self, stream: &str, report: &SegmentReport, cut_at_us: Option<u64>) {
        if !self.cfg.publish {
            return;
        }
        let target = report
            .renditions
            .iter()
            .map(|r| r.duration)
            .fold(0.0f64, f64::max)
            .max(1.0);
        let want: Vec<String> = report
            .renditions
            .iter()
            .map(|r| r.profile.clone())
            .collect();
        let same = self
            .streams
            .lock()
            .unwrap()
            .get(stream)
            .is_some_and(|st| st.renditions.iter().map(|(n, _)| n).eq(want.iter()));
        // a stream's first segment, or a new ladder: new swarms (the old ones end)
        let mut fresh = Vec::new();
        if !same {
            for name in &want {
                match Publisher::spawn(swarm_config(), random_key(), self.bind()).await {
                    Ok(p) => fresh.push((name.clone(), p)),
                    Err(e) => {
                        tracing::warn!(stream, rendition = name, error = %e, "cannot publish the rendition swarm");
                        return;
                    }
                }
            }
        }
        let mut map = self.streams.lock().unwrap();
        let st = map
            .entry(stream.to_string())
            .or_insert_with(StreamSwarms::new);
        if !same {
            for (_, mut p) in std::mem::replace(&mut st.renditions, fresh) {
                let _ = p.publish(&Record::End {
                    stream: stream.to_string(),
                    last_seq: None,
                });
                linger(p);
            }
        }
        for (r, (_, p)) in report.renditions.iter().zip(st.renditions.iter_mut()) {
            let path = self.hls_dir.join(stream).join(&r.uri);
            let data = match std::fs::read(&path) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(stream, seq = report.seq, path = %path.display(), error = %e, "rendition not published");
                    continue;
                }
            };
            let fps_den = 1000u32;
            let record = Record::Segment {
                meta: SegmentMeta {
                    stream: stream.to_string(),
                    seq: report.seq,
                    job_id: st.job_id,
                    signature: None,
                    duration: r.duration,
                    rendition: Some(RenditionMeta {
                        profile: r.profile.clone(),
                        width: r.width,
                        height: r.height,
                        fps: ((r.fps * f64::from(fps_den)).round() as u32, fps_den),
                        frames: r.frames,
                        codecs: r.codecs.clone(),
                        first_pts: r.first_pts,
                        target_duration: target,
                    }),
                    cut_at_us,
                },
                data,
            };
            if let Err(e) = p.publish(&record) {
                tracing::warn!(stream, seq = report.seq, error = %e, "rendition not published");
            }
        }
        st.last_seq = Some(report.seq);
    }

    /// Ends a stream's swarms: an end record on each rendition swarm, which keeps serving a while; the
    /// stream's join, if any, is not made again after a restart.
    pub fn end(&self, stream: &str) {
        let _ = std::fs::remove_file(self.joins_dir.join(format!("{stream}.json")));
        let Some(mut st) = self.streams.lock().unwrap().remove(stream) else {
            return;
        };
        self.ended.lock().unwrap().insert(
            stream.to_string(),
            (std::time::Instant::now(), Listed::of(&st)),
        );
        let last = st.last_seq;
        for (_, mut p) in st.renditions.drain(..) {
            let _ = p.publish(&Record::End {
                stream: stream.to_string(),
                last_seq: last,
            });
            linger(p);
        }
        if let Some(t) = st.source_task.take() {
            // the source task ends itself after the end record; this covers a DELETE while it reads
            tokio::spawn(async move {
                tokio::time::sleep(LINGER).await;
                t.abort();
            });
        }
    }

    fn manifest(&self, stream: &str, host: Option<IpAddr>) -> Option<SwarmManifest> {
        let listed = match self.streams.lock().unwrap().get(stream) {
            Some(st) => Listed::of(st),
            None => {
                let mut ended = self.ended.lock().unwrap();
                ended.retain(|_, (at, _)| at.elapsed() < LINGER);
                ended.get(stream)?.1.clone()
            }
        };
        let cfg = swarm_config();
        let ip = self
            .cfg
            .advertise
            .or((!self.cfg.bind.is_unspecified()).then_some(self.cfg.bind))
            .or(host)
            .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
        Some(SwarmManifest {
            stream: stream.to_string(),
            job_id: listed.job_id,
            chunk_size: cfg.chunk_size,
            chunks_per_munro: cfg.chunks_per_munro,
            source: listed.source,
            renditions: listed
                .renditions
                .into_iter()
                .map(|(profile, swarm_id, port)| RenditionSwarm {
                    profile,
                    swarm_id,
                    peers: vec![SocketAddr::new(ip, port)],
                })
                .collect(),
        })
    }
}

/// What a stream's manifest lists: its job, its source swarm, and per rendition (profile, swarm id, port).
#[derive(Clone)]
struct Listed {
    job_id: Option<u64>,
    source: Option<SourceSwarm>,
    renditions: Vec<(String, String, u16)>,
}

impl Listed {
    fn of(st: &StreamSwarms) -> Self {
        Listed {
            job_id: st.job_id,
            source: st.source.clone(),
            renditions: st
                .renditions
                .iter()
                .map(|(name, p)| (name.clone(), p.swarm_id_hex(), p.local_addr().port()))
                .collect(),
        }
    }
}

/// Stops a publisher after [`LINGER`].
fn linger(p: Publisher) {
    tokio::spawn(async move {
        tokio::time::sleep(LINGER).await;
        let _ = p.stop().await;
    });
}

/// `GET /swarm/{stream}`.
pub(crate) async fn manifest(
    State(app): State<App>,
    UrlPath(stream): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| {
            h.parse::<SocketAddr>()
                .map(|a| a.ip())
                .ok()
                .or_else(|| h.parse::<IpAddr>().ok())
        });
    match app.swarms.manifest(&stream, host) {
        Some(m) => Json(m).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no stream {stream}")),
    }
}

/// `POST /swarm/join`.
pub(crate) async fn join(State(app): State<App>, body: Bytes) -> Response {
    let (req, id) = match crate::request::parse_join(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match app.join_swarm(req, id).await {
        Ok(a) => (StatusCode::OK, Json(a)).into_response(),
        Err((status, msg)) => error(status, msg),
    }
}

/// Where the joins in force are kept (one `<stream>.json` each), so that a box that restarts (a crash, a
/// power cut, an update) reads its broadcasters' swarms again without being asked.
fn joins_dir(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("swarm-joins")
}

/// At start: every join an earlier run had in force is made again.  One that fails is dropped with a warning;
/// one whose broadcaster is gone ends after `swarm.source_idle_s`, like any other.
pub(crate) async fn rejoin_all(app: &App) {
    let dir = joins_dir(&app.shared.config.agent.data_dir);
    let Ok(mut entries) = tokio::fs::read_dir(&dir).await else {
        return;
    };
    while let Ok(Some(e)) = entries.next_entry().await {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let parsed = tokio::fs::read(&path)
            .await
            .map_err(|e| e.to_string())
            .and_then(|b| crate::request::parse_join(&b));
        let result = match parsed {
            Ok((req, id)) => {
                let stream = req.stream.clone();
                app.join_swarm(req, id)
                    .await
                    .map(|_| stream)
                    .map_err(|(_, m)| m)
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(stream) => tracing::info!(
                stream,
                "joined the broadcaster's swarm again after a restart"
            ),
            Err(e) => {
                tracing::warn!(file = %path.display(), "a join of an earlier run could not be made again: {e}");
                let _ = tokio::fs::remove_file(&path).await;
            }
        }
    }
}

impl App {
    /// Joins a broadcaster's live swarm and reads it into the stream's pipeline; the join is kept on disk
    /// until the stream ends.
    pub(crate) async fn join_swarm(
        &self,
        req: JoinRequest,
        id: Vec<u8>,
    ) -> Result<JoinAnswer, (StatusCode, String)> {
        if req.job_id.is_some() && self.shared.job_gate.is_none() {
            return Err((
                StatusCode::BAD_REQUEST,
                "this box takes no on-chain jobs (no [chain] configured)".into(),
            ));
        }
        let swarms = self.swarms.clone();
        {
            let map = swarms.streams.lock().unwrap();
            if let Some(st) = map.get(&req.stream)
                && st.source_task.as_ref().is_some_and(|t| !t.is_finished())
            {
                if st
                    .source
                    .as_ref()
                    .is_some_and(|s| s.swarm_id == req.swarm_id)
                {
                    // the broadcaster asking again (a retry): already reading it
                    return Ok(answer(&req, None));
                }
                return Err((
                    StatusCode::CONFLICT,
                    format!("stream {} is already read from another swarm", req.stream),
                ));
            }
            let joined = map.values().filter(|s| s.source_task.is_some()).count();
            if joined >= swarms.cfg.max_joined {
                return Err((
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("already reading {joined} swarms (swarm.max_joined)"),
                ));
            }
        }
        let sub = Subscriber::join(swarm_config(), &id, &req.peers, swarms.bind())
            .await
            .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
        // kept before the answer: a box that restarts from here on reads the swarm again
        let dir = swarms.joins_dir.clone();
        let file = dir.join(format!("{}.json", req.stream));
        let bytes = serde_json::to_vec(&req).expect("a join request serializes");
        let kept = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            media::hls::write_atomic(&file, &bytes).map_err(std::io::Error::other)?;
            media::hls::sync_dir(&dir).map_err(std::io::Error::other)
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
        if let Err(e) = kept {
            let _ = sub.stop().await;
            return Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("keeping the join: {e}"),
            ));
        }
        let local = sub.local_addr();
        tracing::info!(stream = req.stream, job = ?req.job_id, swarm = req.swarm_id, %local, "joined the broadcaster's swarm");
        let span = tracing::info_span!("source", stream = %req.stream, job = ?req.job_id);
        let task = tokio::spawn(tracing::Instrument::instrument(
            read_source(self.clone(), req.clone(), sub),
            span,
        ));
        let mut map = swarms.streams.lock().unwrap();
        let st = map
            .entry(req.stream.clone())
            .or_insert_with(StreamSwarms::new);
        st.job_id = req.job_id;
        st.source = Some(SourceSwarm {
            swarm_id: req.swarm_id.clone(),
            peers: req.peers.clone(),
        });
        st.source_task = Some(task.abort_handle());
        Ok(answer(&req, Some(local)))
    }
}

fn answer(req: &JoinRequest, local: Option<SocketAddr>) -> JoinAnswer {
    JoinAnswer {
        stream: req.stream.clone(),
        local: local.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
        manifest: format!("/swarm/{}", req.stream),
    }
}

/// Reads one broadcaster's swarm: every segment record goes through [`App::ingest`], in order.  The end
/// record ends the stream; so does a silence of `swarm.source_idle_s` (a broadcaster that died, perhaps in
/// the middle of a segment: what was whole is kept, the rest is dropped, and the playlists and rendition
/// swarms end cleanly, so viewers finish instead of waiting).
async fn read_source(app: App, req: JoinRequest, mut sub: Subscriber) {
    let (mut ok, mut had, mut failed, mut lost) = (0u64, 0u64, 0u64, 0u64);
    let idle = Duration::from_secs(app.shared.config.swarm.source_idle_s);
    loop {
        let next = match tokio::time::timeout(idle, sub.next()).await {
            Ok(Some(n)) => n,
            Ok(None) => break,
            Err(_) => {
                tracing::warn!(
                    ok,
                    had,
                    failed,
                    lost,
                    "nothing from the broadcaster's swarm for {idle:?}: the broadcaster is gone, ending the stream"
                );
                drop(app.end(&req.stream));
                break;
            }
        };
        match next {
            Err(e) => {
                lost += 1;
                tracing::warn!(error = %e, "a segment of the broadcaster's swarm was lost");
            }
            Ok(Record::End { last_seq, .. }) => {
                tracing::info!(
                    ?last_seq,
                    ok,
                    had,
                    failed,
                    lost,
                    "the broadcaster ended the stream"
                );
                drop(app.end(&req.stream));
                break;
            }
            Ok(Record::Segment { meta, data }) => {
                if meta.stream != req.stream {
                    failed += 1;
                    tracing::warn!(
                        record_stream = meta.stream,
                        seq = meta.seq,
                        "a record of another stream: refused"
                    );
                    continue;
                }
                let job_id = meta.job_id.or(req.job_id);
                match app
                    .ingest(
                        &req.stream,
                        meta.seq,
                        data,
                        job_id,
                        meta.signature.as_deref(),
                        Some(&req.swarm_id),
                    )
                    .await
                {
                    Ok(report) => {
                        ok += 1;
                        app.swarms
                            .publish(&req.stream, &report, meta.cut_at_us)
                            .await;
                    }
                    // a segment written before a restart, replayed by the rejoined swarm
                    Err((StatusCode::CONFLICT, _)) => {
                        had += 1;
                        tracing::debug!(seq = meta.seq, "segment from the swarm already written");
                    }
                    Err((status, msg)) => {
                        failed += 1;
                        tracing::warn!(seq = meta.seq, %status, "segment from the swarm refused: {msg}");
                    }
                }
            }
        }
    }
    // keep relaying what we have to the other peers a while, then leave
    tokio::time::sleep(Duration::from_secs(5)).await;
    let _ = sub.stop().await;
}
