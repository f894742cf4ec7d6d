//! `edge-agent view`: a viewer node. Reads a stream's swarm manifest from its transcoder, joins every
//! rendition swarm (fetching from the transcoder and from other viewers, and serving them in turn), writes
//! the segments as HLS and serves it on a local address for any player (ffplay, VLC, hls.js).
//!
//! A segment is written once every rendition of it has arrived, in sequence order; one that a rendition
//! lost (a playback deadline passed) is left out, and the playlists mark the gap as a discontinuity.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use media::hls::{HlsMode, HlsWriter};
use segment_swarm::manifest::{SwarmManifest, parse_swarm_id};
use segment_swarm::{Record, Subscriber};
use serde::Serialize;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The stream's swarm manifest: `http://TRANSCODER/swarm/STREAM`, or a file.
    #[arg(long)]
    manifest: String,
    /// Where the HLS output goes (master.m3u8 and one directory per rendition).
    #[arg(long, default_value = "out/view")]
    out: PathBuf,
    /// Serve the HLS output over HTTP here (empty: do not serve).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// UDP address the swarm sockets bind.
    #[arg(long, default_value = "0.0.0.0:0")]
    bind: SocketAddr,
    /// Other viewers to start from (more come by PEX).
    #[arg(long)]
    peer: Vec<SocketAddr>,
    /// Stop after this many seconds (0: when the stream ends).
    #[arg(long, default_value_t = 0)]
    duration: u64,
    /// Keep serving after the stream ended, until Ctrl-C.
    #[arg(long)]
    keep: bool,
    /// Wait this long for the manifest to list the rendition swarms.
    #[arg(long, default_value_t = 60)]
    wait: u64,
    /// Write a JSON summary here as well as printing it.
    #[arg(long)]
    summary: Option<PathBuf>,
}

/// What a viewer reports when it stops.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub stream: String,
    pub renditions: Vec<String>,
    /// Segments written (every rendition present).
    pub segments: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Segments left out because a rendition lost them.
    pub incomplete: u64,
    pub records_lost: u64,
    pub ended: bool,
    /// Glass-to-glass delay per segment: the broadcaster's cut to this viewer's playlist listing it, ms.
    pub delay_ms_p50: Option<u64>,
    pub delay_ms_max: Option<u64>,
    /// Chunk bytes this viewer received (duplicates included) and served to other peers (all renditions);
    /// datagram headers, hashes and control messages are not counted.
    pub bytes_down: u64,
    pub bytes_up: u64,
    /// Chunks from peers that failed verification (each such peer is choked and its chunks fetched
    /// elsewhere).
    pub bad_chunks: u64,
    pub url: Option<String>,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(view(a))
}

async fn fetch_manifest(src: &str, wait: Duration) -> anyhow::Result<SwarmManifest> {
    let deadline = Instant::now() + wait;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    loop {
        let got: anyhow::Result<SwarmManifest> =
            if src.starts_with("http://") || src.starts_with("https://") {
                async {
                    let r = http.get(src).send().await?;
                    if !r.status().is_success() {
                        bail!("{}", r.status());
                    }
                    Ok(r.json().await?)
                }
                .await
            } else {
                std::fs::read(src)
                    .map_err(anyhow::Error::from)
                    .and_then(|b| Ok(serde_json::from_slice(&b)?))
            };
        match got {
            Ok(m) if !m.renditions.is_empty() => return Ok(m),
            Ok(_) | Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await
            }
            Ok(_) => bail!("the manifest {src} lists no rendition swarm yet"),
            Err(e) => return Err(e.context(format!("fetching the manifest {src}"))),
        }
    }
}

async fn view(a: Args) -> anyhow::Result<()> {
    let m = fetch_manifest(&a.manifest, Duration::from_secs(a.wait)).await?;
    let names: Vec<String> = m.renditions.iter().map(|r| r.profile.clone()).collect();
    eprintln!(
        "stream {}: {} renditions ({})",
        m.stream,
        names.len(),
        names.join(", ")
    );
    let cfg = segment_swarm::node::swarm_config();
    if cfg.chunk_size != m.chunk_size || cfg.chunks_per_munro != m.chunks_per_munro {
        bail!(
            "the manifest's swarms use {} B chunks in {}-chunk munros; this viewer speaks {} and {}",
            m.chunk_size,
            m.chunks_per_munro,
            cfg.chunk_size,
            cfg.chunks_per_munro
        );
    }
    // one task per rendition swarm, all feeding one channel: (rendition index, record or loss)
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let nodes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    for (i, r) in m.renditions.iter().enumerate() {
        let stats = join_rendition(i, r, &a.peer, a.bind, tx.clone()).await?;
        nodes.lock().unwrap().push(stats);
    }
    // A transcoder that restarts publishes its renditions on new swarms: follow the manifest and join them.
    if a.manifest.starts_with("http://") || a.manifest.starts_with("https://") {
        let (src, peers, bind, names, nodes) = (
            a.manifest.clone(),
            a.peer.clone(),
            a.bind,
            names.clone(),
            nodes.clone(),
        );
        let mut joined: Vec<String> = m.renditions.iter().map(|r| r.swarm_id.clone()).collect();
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(MANIFEST_POLL).await;
                if tx.is_closed() {
                    return;
                }
                let Ok(now) = fetch_manifest(&src, Duration::ZERO).await else {
                    continue; // the transcoder is away (restarting): ask again later
                };
                for r in &now.renditions {
                    let Some(i) = names.iter().position(|n| *n == r.profile) else {
                        continue;
                    };
                    if joined[i] == r.swarm_id {
                        continue;
                    }
                    eprintln!(
                        "{}: the transcoder moved to swarm {}",
                        r.profile, r.swarm_id
                    );
                    match join_rendition(i, r, &peers, bind, tx.clone()).await {
                        Ok(stats) => {
                            joined[i] = r.swarm_id.clone();
                            nodes.lock().unwrap().push(stats);
                        }
                        Err(e) => {
                            tracing::warn!(rendition = r.profile, "joining its new swarm: {e:#}")
                        }
                    }
                }
            }
        });
    }
    drop(tx);
    let url = serve(&a.listen, a.out.clone()).await?;
    if let Some(u) = &url {
        println!("{u}/master.m3u8");
        eprintln!("watch: {u}/master.m3u8");
    }
    let mut sum = Summary {
        stream: m.stream.clone(),
        renditions: names.clone(),
        url: url.clone(),
        ..Default::default()
    };
    let mut asm = Assembler::new(names.len(), &a.out)?;
    let stop = async {
        if a.duration == 0 {
            std::future::pending::<()>().await
        } else {
            tokio::time::sleep(Duration::from_secs(a.duration)).await
        }
    };
    tokio::pin!(stop);
    let mut ended = vec![false; names.len()];
    let mut delays = Vec::new();
    loop {
        let (i, rec) = tokio::select! {
            _ = &mut stop => break,
            _ = tokio::signal::ctrl_c() => break,
            r = rx.recv() => match r { Some(r) => r, None => break },
        };
        match rec {
            Err(e) => {
                sum.records_lost += 1;
                tracing::warn!(rendition = names[i], error = %e, "a record was lost");
            }
            Ok(Record::End { .. }) => {
                ended[i] = true;
                if ended.iter().all(|e| *e) {
                    sum.ended = true;
                    break;
                }
            }
            Ok(Record::Segment { meta, data }) => {
                let Some(rm) = meta.rendition.clone() else {
                    tracing::warn!(seq = meta.seq, "a record without rendition facts: ignored");
                    continue;
                };
                if rm.profile != names[i] {
                    tracing::warn!(seq = meta.seq, "a record of another rendition: ignored");
                    continue;
                }
                let r = media::Rendition {
                    profile: rm.profile,
                    data,
                    width: rm.width,
                    height: rm.height,
                    fps: rm.fps,
                    frames: rm.frames,
                    frames_fed: rm.frames,
                    duration: meta.duration,
                    first_pts: rm.first_pts,
                    codecs: rm.codecs,
                    video_bytes: 0,
                };
                for (seq, written) in asm.add(i, meta.seq, r, rm.target_duration, meta.cut_at_us)? {
                    if written {
                        sum.segments += 1;
                        sum.first_seq.get_or_insert(seq);
                        sum.last_seq = Some(seq);
                        if let Some(cut) = asm.cut_at(seq) {
                            let ms = unix_us().saturating_sub(cut) / 1000;
                            delays.push(ms);
                            tracing::info!(seq, delay_ms = ms, "segment listed");
                        }
                    } else {
                        sum.incomplete += 1;
                    }
                }
            }
        }
    }
    asm.finish()?;
    delays.sort_unstable();
    sum.delay_ms_p50 = delays.get(delays.len() / 2).copied();
    sum.delay_ms_max = delays.last().copied();
    // swarms a restarted transcoder left never end: give all of them one deadline
    let nodes: Vec<_> = std::mem::take(&mut *nodes.lock().unwrap());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    for n in nodes {
        if let Ok(Ok(s)) = tokio::time::timeout_at(deadline, n).await {
            sum.bytes_down += s.data_bytes_down;
            sum.bytes_up += s.data_bytes_up;
            sum.bad_chunks += s.chunks_bad;
        }
    }
    let text = serde_json::to_string_pretty(&sum)?;
    println!("{text}");
    if let Some(p) = &a.summary {
        std::fs::write(p, &text).with_context(|| format!("writing {}", p.display()))?;
    }
    if a.keep {
        eprintln!("the stream ended; serving until Ctrl-C");
        tokio::signal::ctrl_c().await?;
    }
    Ok(())
}

/// How often a viewer reads the manifest again, to follow a transcoder that restarted onto new swarms.
const MANIFEST_POLL: Duration = Duration::from_secs(2);

/// Joins one rendition's swarm; its records go to `tx` tagged with `i` until its end record.  The receiver
/// gets the node's statistics when it has stopped.
async fn join_rendition(
    i: usize,
    r: &segment_swarm::manifest::RenditionSwarm,
    extra_peers: &[SocketAddr],
    bind: SocketAddr,
    tx: tokio::sync::mpsc::UnboundedSender<(usize, Result<Record, segment_swarm::FrameError>)>,
) -> anyhow::Result<tokio::sync::oneshot::Receiver<ppspp::Stats>> {
    let id = parse_swarm_id(&r.swarm_id).map_err(anyhow::Error::msg)?;
    let mut peers = r.peers.clone();
    peers.extend(extra_peers);
    let mut sub = Subscriber::join(segment_swarm::node::swarm_config(), &id, &peers, bind)
        .await
        .with_context(|| format!("joining the swarm of {}", r.profile))?;
    eprintln!(
        "{}: swarm {} on {}",
        r.profile,
        r.swarm_id,
        sub.local_addr()
    );
    let (stats_tx, stats_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        while let Some(rec) = sub.next().await {
            let end = matches!(rec, Ok(Record::End { .. }));
            if tx.send((i, rec)).is_err() || end {
                break;
            }
        }
        let stats = sub.node().stats().await.unwrap_or_default();
        // keep relaying a little after the end, for viewers behind this one
        tokio::time::sleep(Duration::from_secs(3)).await;
        let _ = stats_tx.send(stats);
        let _ = sub.stop().await;
    });
    Ok(stats_rx)
}

/// A segment's renditions so far, the broadcaster's cut time, the target duration.
type Pending = (Vec<Option<media::Rendition>>, Option<u64>, f64);

/// Puts the renditions of each segment together and writes complete segments in order.
struct Assembler {
    n: usize,
    out: PathBuf,
    hls: Option<HlsWriter>,
    pending: BTreeMap<u64, Pending>,
    cut: BTreeMap<u64, u64>,
    last: Option<u64>,
}

/// Segments after an incomplete one that may complete before it is given up.
const REORDER: usize = 2;

impl Assembler {
    fn new(n: usize, out: &std::path::Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        Ok(Assembler {
            n,
            out: out.to_path_buf(),
            hls: None,
            pending: BTreeMap::new(),
            cut: BTreeMap::new(),
            last: None,
        })
    }

    /// Adds rendition `i` of segment `seq`; returns the segments this decides: (seq, written or left out).
    fn add(
        &mut self,
        i: usize,
        seq: u64,
        r: media::Rendition,
        target: f64,
        cut: Option<u64>,
    ) -> anyhow::Result<Vec<(u64, bool)>> {
        if self.last.is_some_and(|l| seq <= l) {
            return Ok(vec![]);
        }
        let n = self.n;
        let e = self
            .pending
            .entry(seq)
            .or_insert_with(|| (vec![None; n], cut, target));
        e.0[i] = Some(r);
        let mut decided = Vec::new();
        while let Some((&first, (parts, ..))) = self.pending.first_key_value() {
            let complete = parts.iter().all(Option::is_some);
            let complete_after = self
                .pending
                .values()
                .skip(1)
                .filter(|(p, ..)| p.iter().all(Option::is_some))
                .count();
            if !complete && complete_after < REORDER {
                break;
            }
            let (parts, cut, target) = self.pending.remove(&first).expect("first exists");
            self.last = Some(first);
            if !complete {
                decided.push((first, false));
                continue;
            }
            let hls = match &mut self.hls {
                Some(h) => h,
                None => self.hls.insert(
                    HlsWriter::new(&self.out, HlsMode::Event, target).context("HLS output")?,
                ),
            };
            hls.write_segment(&media::SegmentOutput {
                seq: first,
                renditions: parts.into_iter().map(|p| p.expect("complete")).collect(),
                stats: Default::default(),
            })
            .with_context(|| format!("writing segment {first}"))?;
            if let Some(c) = cut {
                self.cut.insert(first, c);
            }
            decided.push((first, true));
        }
        Ok(decided)
    }

    fn cut_at(&self, seq: u64) -> Option<u64> {
        self.cut.get(&seq).copied()
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        // what is still incomplete stays out
        self.pending.clear();
        if let Some(h) = &mut self.hls {
            h.finish().context("closing the playlists")?;
        }
        Ok(())
    }
}

fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Serves `dir` over HTTP on `listen`; returns its base URL.
async fn serve(listen: &str, dir: PathBuf) -> anyhow::Result<Option<String>> {
    if listen.is_empty() {
        return Ok(None);
    }
    let l = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let addr = l.local_addr()?;
    let app = axum::Router::new()
        .route("/{*path}", axum::routing::get(file))
        .with_state(std::sync::Arc::new(dir));
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    Ok(Some(format!("http://{addr}")))
}

async fn file(
    State(dir): State<std::sync::Arc<PathBuf>>,
    UrlPath(path): UrlPath<String>,
) -> Response {
    let Some(p) = crate::ingest::safe_join(&dir, &path) else {
        return (StatusCode::BAD_REQUEST, "bad path").into_response();
    };
    let ctype = match p.extension().and_then(|e| e.to_str()) {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("ts") => "video/mp2t",
        _ => "application/octet-stream",
    };
    match tokio::fs::read(&p).await {
        Ok(b) => (
            [
                (header::CONTENT_TYPE, ctype),
                (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            b,
        )
            .into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
