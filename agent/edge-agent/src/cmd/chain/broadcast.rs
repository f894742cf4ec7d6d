//! `edge-agent broadcast`: the broadcaster's side of a job. Cuts a file or the test source into segments at
//! keyframes, tops up the deposit, creates the job on chain with the ladder's transcodingOptions, finds the
//! elected transcoder, and sends it every segment signed (EIP-191 over the segment hash, hash rule 5): the
//! signature travels as the `X-Broadcaster-Signature` header of the ingest PUT, with the job id in `X-Job-Id`.
//! Then it copies the transcoder's HLS output (master and media playlists, segments) into `--out`.
//!
//! With `--swarm`, the segments travel over PPSPP instead: the broadcaster publishes a live swarm (its
//! chunks signed by a fresh Ed25519 key, each segment a `segment_swarm` record carrying its EIP-191
//! signature), asks the transcoder to join it (`POST /swarm/join`) and paces the segments at their media
//! duration, like a camera; the transcoder and any other peer relay it from there.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use chain::U256;
use chain::hashes;

use super::{ChainArgs, block_on, format_units, parse_amount};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    chain: ChainArgs,
    /// Input file (MPEG-TS or MP4 with H.264); without it, the built-in test source.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Seconds of test source.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Segment length, seconds (cut at the first keyframe after it).
    #[arg(long, default_value_t = 2.0)]
    segment_seconds: f64,
    /// Stream id (the job's streamId and the ingest path).
    #[arg(long)]
    stream: String,
    /// Profile names of the ladder, in the job's order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "P360p30fps16x9,P240p30fps16x9"
    )]
    ladder: Vec<String>,
    /// Highest price per segment and profile the job accepts (e.g. `1gwei`).
    #[arg(long, default_value = "1gwei")]
    max_price: String,
    /// The job runs this many blocks.
    #[arg(long, default_value_t = 1000)]
    blocks: u64,
    /// Base URL of the elected transcoder's ingest (default: the service URI it published in the
    /// ServiceRegistry).
    #[arg(long)]
    transcoder: Option<String>,
    /// Send the segments over a PPSPP live swarm rather than HTTP PUTs.
    #[arg(long)]
    swarm: bool,
    /// With --swarm: UDP address the broadcaster's swarm binds.
    #[arg(long, default_value = "0.0.0.0:0")]
    swarm_bind: std::net::SocketAddr,
    /// With --swarm: publish segments as fast as they are made rather than at their media duration.
    #[arg(long)]
    no_pacing: bool,
    /// Where to write the broadcaster's copy of the HLS output.
    #[arg(long, default_value = "out/broadcast")]
    out: PathBuf,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let segments = match &a.input {
        Some(p) => media::sources::split_file(p, a.segment_seconds)
            .with_context(|| format!("cutting {} into segments", p.display()))?,
        None => media::sources::TestSource {
            duration: a.duration,
            segment_secs: a.segment_seconds,
            ..Default::default()
        }
        .segments()
        .context("generating the test source")?,
    };
    let options = hashes::transcoding_options(&a.ladder);
    let max_price = parse_amount(&a.max_price)?;
    block_on(async {
        let c = a.chain.connect().await?;
        let me = c.address();
        // enough deposit for every segment at the highest price
        let need =
            max_price * U256::from(segments.len() as u64) * U256::from(a.ladder.len() as u64);
        let have = c.deposit_of(me).await?;
        if have < need {
            c.deposit(need - have).await?;
        }
        // a job needs the current round initialized: anyone may do it, so the broadcaster does when nobody
        // has yet (a round may also begin between the check and the job: try again then)
        let mut tries = 0;
        let job_id = loop {
            tries += 1;
            if !c.proto.round_initialized().await? {
                if let Err(e) = c.initialize_round().await {
                    tracing::info!(error = %e, "round initialization (someone else may have done it)");
                }
            }
            let head = c.proto.node.block_number().await?;
            match c
                .create_job(&a.stream, &options, max_price, head + a.blocks)
                .await
            {
                Ok(id) => break id,
                // the next block starts a round: wait for it, then initialize it
                Err(e) if tries < 10 && e.to_string().contains("not initialized") => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        // the election's seed is the creation block's hash: known once the next block exists
        let job = c.proto.job(job_id).await?;
        let waiting = std::time::Instant::now();
        while c.proto.node.block_number().await? <= job.creation_block {
            if waiting.elapsed() > Duration::from_secs(300) {
                bail!(
                    "job {job_id}: no block after the job's block {} in 5 minutes: is the chain producing blocks?",
                    job.creation_block
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (elected, price) = c.proto.elected(&job).await?;
        if elected.is_zero() {
            bail!(
                "job {job_id}: no active transcoder accepts {} wei per segment",
                max_price
            );
        }
        eprintln!(
            "job {job_id} for stream {} ({} segments, profiles {options}): elected transcoder {elected:?} at {} wei per segment",
            a.stream,
            segments.len(),
            price
        );
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()?;
        let base = match &a.transcoder {
            Some(t) => t.clone(),
            None => {
                let uri = c.proto.service_uri(elected).await?;
                if uri.is_empty() {
                    bail!(
                        "job {job_id}: the elected transcoder {elected:?} published no service URI; give --transcoder"
                    );
                }
                eprintln!("the elected transcoder's service URI (ServiceRegistry): {uri}");
                uri
            }
        };
        let base = base.trim_end_matches('/');
        if a.swarm {
            send_over_swarm(&a, &c, &http, base, job_id, &segments).await?;
        } else {
            for (seq, seg) in segments.iter().enumerate() {
                let seq = seq as u64;
                let sig = c
                    .sender
                    .sign_segment(&a.stream, seq, hashes::data_hash(seg))?;
                let r = http
                    .put(format!("{base}/live/{}/{seq}.ts", a.stream))
                    .header("X-Job-Id", job_id.to_string())
                    .header("X-Broadcaster-Signature", format!("0x{}", hex_lower(&sig)))
                    .body(seg.clone())
                    .send()
                    .await
                    .with_context(|| format!("sending segment {seq} to the transcoder"))?;
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                if !status.is_success() {
                    bail!("segment {seq}: the transcoder answered {status}: {body}");
                }
            }
        }
        let files = mirror_hls(&http, base, &a.stream, &a.out).await?;
        let out = serde_json::json!({
            "job_id": job_id,
            "stream": a.stream,
            "transcoding_options": options,
            "segments": segments.len(),
            "transcoder": elected,
            "price_per_segment": price.to_string(),
            "deposit": format_units(c.deposit_of(me).await?),
            "master": a.out.join("master.m3u8"),
            "files": files,
        });
        if a.chain.json {
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            println!(
                "job {job_id}: {} segments transcoded by {elected:?}; HLS in {}",
                segments.len(),
                a.out.display()
            );
        }
        Ok(())
    })
}

/// The swarm path: a live source, the transcoder asked to join it, the segments paced like a camera, an
/// end record, then a wait until the transcoder's playlists list the last segment.
async fn send_over_swarm(
    a: &Args,
    c: &chain::ops::Client,
    http: &reqwest::Client,
    base: &str,
    job_id: u64,
    segments: &[Vec<u8>],
) -> anyhow::Result<()> {
    use segment_swarm::{Publisher, Record, SegmentMeta, node};
    let bind = a.swarm_bind;
    let mut publisher = Publisher::spawn(node::swarm_config(), node::random_key(), bind)
        .await
        .with_context(|| format!("binding the broadcaster's swarm on {bind}"))?;
    // the address the transcoder reaches us at: the one the OS routes to it from
    let advertise = route_to(base)
        .map(|ip| std::net::SocketAddr::new(ip, publisher.local_addr().port()))
        .unwrap_or(publisher.local_addr());
    let join = crate::live_swarm::JoinRequest {
        stream: a.stream.clone(),
        job_id: Some(job_id),
        swarm_id: publisher.swarm_id_hex(),
        peers: vec![advertise],
    };
    let r = http
        .post(format!("{base}/swarm/join"))
        .json(&join)
        .send()
        .await
        .context("asking the transcoder to join the swarm")?;
    if !r.status().is_success() {
        let status = r.status();
        bail!(
            "the transcoder refused to join the swarm: {status}: {}",
            r.text().await.unwrap_or_default()
        );
    }
    eprintln!(
        "swarm {} on {advertise}: the transcoder joined; publishing {} segments",
        join.swarm_id,
        segments.len()
    );
    // the transcoder's first handshake reaches us within a round trip; a peer that joins later starts at
    // a recent munro, so give it a moment before the first record
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = std::time::Instant::now();
    for (seq, seg) in segments.iter().enumerate() {
        let due = start + Duration::from_secs_f64(a.segment_seconds * seq as f64);
        if !a.no_pacing {
            tokio::time::sleep_until(due.into()).await;
        }
        // the camera's cut: glass-to-glass counts from here, hashing and signing included
        let cut_at_us = unix_us();
        let seq = seq as u64;
        // hashed beside the runtime: this one thread also drives the swarm, which must not stall meanwhile
        let data = seg.clone();
        let (data, hash) = tokio::task::spawn_blocking(move || {
            let hash = hashes::data_hash(&data);
            (data, hash)
        })
        .await
        .context("hashing a segment")?;
        let sig = c.sender.sign_segment(&a.stream, seq, hash)?;
        let record = Record::Segment {
            meta: SegmentMeta {
                stream: a.stream.clone(),
                seq,
                job_id: Some(job_id),
                signature: Some(format!("0x{}", hex_lower(&sig))),
                duration: a.segment_seconds,
                rendition: None,
                cut_at_us: Some(cut_at_us),
            },
            data,
        };
        publisher.publish(&record)?;
        tracing::info!(seq, bytes = seg.len(), "segment published");
    }
    let last = segments.len().checked_sub(1).map(|l| l as u64);
    // wait for the transcoder to list the last segment before ending the stream
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    if let Some(last) = last {
        loop {
            if last_listed(http, base, &a.stream).await == Some(last) {
                break;
            }
            if std::time::Instant::now() > deadline {
                bail!("the transcoder did not list segment {last} within 120 s of its publication");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    publisher.publish(&Record::End {
        stream: a.stream.clone(),
        last_seq: last,
    })?;
    let stats = publisher.node().stats().await.unwrap_or_default();
    let bytes: usize = segments.iter().map(Vec::len).sum();
    eprintln!(
        "stream ended: {} segments, {bytes} bytes; the broadcaster uploaded {} bytes of chunks ({:.2}x the stream)",
        segments.len(),
        stats.data_bytes_up,
        stats.data_bytes_up as f64 / bytes.max(1) as f64
    );
    // let the end record reach the peers before the source leaves
    tokio::time::sleep(Duration::from_secs(2)).await;
    publisher.stop().await?;
    Ok(())
}

/// The newest segment number the transcoder's first media playlist lists.
async fn last_listed(http: &reqwest::Client, base: &str, stream: &str) -> Option<u64> {
    let get = |path: String| async move {
        let r = http
            .get(format!("{base}/hls/{stream}/{path}"))
            .send()
            .await
            .ok()?;
        r.status().is_success().then_some(())?;
        r.text().await.ok()
    };
    let master = get("master.m3u8".into()).await?;
    let playlist = master
        .lines()
        .find(|l| l.ends_with("index.m3u8"))?
        .to_string();
    let text = get(playlist).await?;
    text.lines()
        .filter_map(|l| l.trim().strip_suffix(".ts")?.parse::<u64>().ok())
        .max()
}

/// The local address the OS would send from to reach the host of `url` (no packet is sent).
fn route_to(url: &str) -> Option<std::net::IpAddr> {
    let url = reqwest::Url::parse(url).ok()?;
    let port = url.port_or_known_default()?;
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(url.host_str()?, port))
        .ok()?
        .next()?;
    let sock = std::net::UdpSocket::bind(if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })
    .ok()?;
    sock.connect(addr).ok()?;
    Some(sock.local_addr().ok()?.ip())
}

fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Copies `master.m3u8`, every media playlist it names and every segment those name, into `out`.
async fn mirror_hls(
    http: &reqwest::Client,
    base: &str,
    stream: &str,
    out: &std::path::Path,
) -> anyhow::Result<usize> {
    let get = |path: String| async move {
        let r = http
            .get(format!("{base}/hls/{stream}/{path}"))
            .send()
            .await
            .with_context(|| format!("fetching {path}"))?;
        if !r.status().is_success() {
            bail!("fetching {path}: {}", r.status());
        }
        Ok::<_, anyhow::Error>(r.bytes().await?.to_vec())
    };
    let uris = |text: &str| -> Vec<String> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            // only relative paths inside the stream's directory
            .filter(|l| !l.contains("..") && !l.contains("://") && !l.starts_with('/'))
            .map(str::to_string)
            .collect()
    };
    let write = |rel: &str, data: &[u8]| -> anyhow::Result<()> {
        let p = out.join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(&p, data).with_context(|| format!("writing {}", p.display()))
    };
    let master = get("master.m3u8".into()).await?;
    let mut n = 1;
    for playlist in uris(&String::from_utf8_lossy(&master)) {
        let text = get(playlist.clone()).await?;
        let dir = playlist.rsplit_once('/').map(|(d, _)| d.to_string());
        for seg in uris(&String::from_utf8_lossy(&text)) {
            let rel = match &dir {
                Some(d) => format!("{d}/{seg}"),
                None => seg,
            };
            write(&rel, &get(rel.clone()).await?)?;
            n += 1;
        }
        write(&playlist, &text)?;
        n += 1;
    }
    write("master.m3u8", &master)?;
    Ok(n)
}
