//! What the demo shows while it runs, and the summary that decides its exit status: every segment
//! signed and transcoded, claimed, verified where challenged, its fees distributed, no slash, and every
//! viewer's HLS complete and byte for byte the elected box's renditions.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use super::procs::{Proc, http_get, metric};

/// One transcoder box of the demo.
pub struct Box_ {
    pub name: String,
    pub url: String,
    pub data_dir: PathBuf,
    pub proc: Proc,
}

pub struct Viewer {
    pub name: String,
    pub dir: PathBuf,
    pub proc: Proc,
}

/// What the broadcaster reported.
pub struct Broadcast {
    pub job_id: u64,
    pub segments: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct ViewerResult {
    pub name: String,
    pub segments: u64,
    pub complete: bool,
    /// Every segment file equals the elected box's.
    pub identical: bool,
    pub delay_ms_p50: Option<u64>,
    pub delay_ms_max: Option<u64>,
    /// Chunk bytes this viewer served to other viewers.
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// Chunks from a peer that failed verification (the peer was choked).
    pub bad_chunks: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub ok: bool,
    pub failures: Vec<String>,
    pub job_id: u64,
    pub elected: String,
    pub segments: u64,
    pub transcoded: u64,
    pub claims: usize,
    pub claims_complete: usize,
    pub claims_slashed: usize,
    pub segments_claimed: u64,
    pub challenged: u64,
    pub verified: u64,
    pub fees_distributed_gwei: f64,
    pub viewers: Vec<ViewerResult>,
    /// All viewers' chunk uploads against the bytes of the stream they watched: how much of the stream
    /// the viewers carried for each other.
    pub viewer_relay_ratio: f64,
    /// What the box uploaded to the viewers against one copy of the stream: the viewers' downloads less
    /// what they uploaded to each other, per viewer's download (1.0: the box sent the stream once, however
    /// many watched; a relay sends one copy per viewer).
    pub origin_upload_ratio: f64,
    /// The lossy network the peers ran on (`PPSPP_IMPAIR`), if any.
    pub impairment: Option<String>,
    /// Viewers that corrupted every chunk they uploaded, and the chunks of theirs the honest viewers
    /// refused (choking them).
    pub bad_viewers: usize,
    pub bad_chunks_refused: u64,
    pub wall_s: f64,
}

/// One progress line.
pub fn progress(b: &Box_, viewers: &[Viewer], rpc: &chain::rpc::Rpc) {
    let m = http_get(&format!("{}/metrics", b.url)).unwrap_or_default();
    let ok = count_ts(&b.data_dir.join("hls").join(super::STREAM));
    let g = |n: &str| metric(&m, n).unwrap_or(0.0);
    let watched: Vec<String> = viewers
        .iter()
        .map(|v| count_ts(&v.dir.join("hls")).to_string())
        .collect();
    eprintln!(
        "    block {:>5} | {}: {ok} segments transcoded, {} claims mined, {} verifications passed, {:.0} gwei fees | viewers' segments: {}",
        rpc.block_number().unwrap_or(0),
        b.name,
        g("edge_agent_proof_claims_mined_total"),
        g("edge_agent_proof_verifications_passed_total"),
        g("edge_agent_proof_fees_distributed_eth") * 1e9,
        watched.join(" "),
    );
}

fn count_ts(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| {
                    std::fs::read_dir(e.path())
                        .map(|f| {
                            f.flatten()
                                .filter(|f| f.path().extension().is_some_and(|x| x == "ts"))
                                .count()
                        })
                        .unwrap_or(0)
                })
                .min()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

/// The job the broadcaster made and its segment count, from its `--json` document.
pub fn broadcast_result(p: &Proc) -> anyhow::Result<Broadcast> {
    let text = std::fs::read_to_string(&p.log)?;
    let start = text
        .rfind("\n{\n")
        .map(|i| i + 1)
        .or(text.starts_with("{\n").then_some(0));
    let doc: serde_json::Value = start
        .and_then(|s| {
            let end = text[s..].find("\n}")? + s + 2;
            serde_json::from_str(&text[s..end]).ok()
        })
        .with_context(|| format!("the broadcaster's report: {}", p.tail(10)))?;
    Ok(Broadcast {
        job_id: doc["job_id"].as_u64().context("job_id")?,
        segments: doc["segments"].as_u64().context("segments")?,
    })
}

/// Waits (up to a few minutes of blocks) until every claim of the job is settled, then checks everything.
#[allow(clippy::too_many_arguments)]
pub fn settle(
    dir: &Path,
    broadcaster_cfg: &str,
    boxes: &[Box_],
    elected: usize,
    viewers: &[Viewer],
    job: &Broadcast,
    rpc: &chain::rpc::Rpc,
    t0: Instant,
) -> anyhow::Result<Summary> {
    let b = &boxes[elected];
    let mut s = Summary {
        job_id: job.job_id,
        elected: b.name.clone(),
        segments: job.segments,
        ..Default::default()
    };
    let args = crate::cmd::chain::ChainArgs {
        config: Some(broadcaster_cfg.into()),
        rpc_url: None,
        deployment: None,
        keystore: None,
        password_file: None,
        password_env: None,
        state_dir: Some(dir.join("observer")),
        confirmations: None,
        json: false,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let c = rt.block_on(args.connect())?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let claims = loop {
        let claims = rt.block_on(c.proto.claims(job.job_id))?;
        let claimed: u64 = claims.iter().map(|c| c.last - c.first + 1).sum();
        let settled = claims.iter().all(|c| {
            matches!(
                c.status,
                chain::claims::ClaimStatus::Complete | chain::claims::ClaimStatus::Slashed
            )
        });
        // a claim's fees may go before the verifier's answer to one of its segments comes (answers have no
        // deadline), so the verdicts the box awaits are waited for too
        let m = http_get(&format!("{}/metrics", b.url)).unwrap_or_default();
        let count = |name: &str| metric(&m, name).unwrap_or(0.0) as u64;
        let answered = count("edge_agent_proof_verifications_passed_total")
            + count("edge_agent_proof_verifications_failed_total")
            >= count("edge_agent_proof_verifications_sent_total");
        if (claimed >= job.segments && settled && answered) || Instant::now() > deadline {
            break (claims, claimed);
        }
        progress(b, viewers, rpc);
        std::thread::sleep(Duration::from_secs(2));
    };
    let (claims, claimed) = claims;
    // challenged segments as the box saw them when they were (the chain answers `isChallenged` only while
    // the claim's block hash is within the last 256 blocks); a challenged segment never submitted would
    // have left its claim slashable, not complete
    let m = http_get(&format!("{}/metrics", b.url)).unwrap_or_default();
    let challenged = metric(&m, "edge_agent_proof_verifications_sent_total").unwrap_or(0.0) as u64;
    let verified = metric(&m, "edge_agent_proof_verifications_passed_total").unwrap_or(0.0) as u64;
    s.claims = claims.len();
    s.claims_complete = claims
        .iter()
        .filter(|c| c.status == chain::claims::ClaimStatus::Complete)
        .count();
    s.claims_slashed = claims
        .iter()
        .filter(|c| c.status == chain::claims::ClaimStatus::Slashed)
        .count();
    s.segments_claimed = claimed;
    s.challenged = challenged;
    s.verified = verified;
    s.fees_distributed_gwei =
        metric(&m, "edge_agent_proof_fees_distributed_eth").unwrap_or(0.0) * 1e9;
    // the stream has ended, so its counters left /metrics: count what its playlists list
    let source = b.data_dir.join("hls").join(super::STREAM);
    s.transcoded = count_ts(&source) as u64;
    let (mut up, mut down_bytes) = (0u64, 0u64);
    for v in viewers {
        let sum: serde_json::Value = std::fs::read(v.dir.join("summary.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let segments = sum["segments"].as_u64().unwrap_or(0);
        let identical = same_segments(&source, &v.dir.join("hls"), job.segments);
        let r = ViewerResult {
            name: v.name.clone(),
            segments,
            complete: segments == job.segments && sum["ended"].as_bool() == Some(true),
            identical,
            delay_ms_p50: sum["delay_ms_p50"].as_u64(),
            delay_ms_max: sum["delay_ms_max"].as_u64(),
            bytes_up: sum["bytes_up"].as_u64().unwrap_or(0),
            bytes_down: sum["bytes_down"].as_u64().unwrap_or(0),
            bad_chunks: sum["bad_chunks"].as_u64().unwrap_or(0),
        };
        up += r.bytes_up;
        down_bytes += r.bytes_down;
        s.viewers.push(r);
    }
    s.viewer_relay_ratio = up as f64 / down_bytes.max(1) as f64;
    let per_viewer = down_bytes as f64 / s.viewers.len().max(1) as f64;
    s.origin_upload_ratio = down_bytes.saturating_sub(up) as f64 / per_viewer.max(1.0);
    s.wall_s = t0.elapsed().as_secs_f64();

    let f = &mut s.failures;
    if s.transcoded != s.segments {
        f.push(format!(
            "{} of {} segments transcoded",
            s.transcoded, s.segments
        ));
    }
    if s.segments_claimed != s.segments {
        f.push(format!(
            "{} of {} segments claimed",
            s.segments_claimed, s.segments
        ));
    }
    if s.claims_complete != s.claims || s.claims == 0 {
        f.push(format!(
            "{} of {} claims complete (fees distributed)",
            s.claims_complete, s.claims
        ));
    }
    if s.fees_distributed_gwei <= 0.0 {
        f.push("no fees distributed".into());
    }
    if s.claims_slashed > 0 {
        f.push(format!("{} claims slashed", s.claims_slashed));
    }
    if s.verified != s.challenged {
        f.push(format!(
            "{} of {} challenged segments verified",
            s.verified, s.challenged
        ));
    }
    for v in &s.viewers {
        if !v.complete {
            f.push(format!(
                "{}: {} of {} segments",
                v.name, v.segments, s.segments
            ));
        }
        if !v.identical {
            f.push(format!("{}: segments differ from the transcoder's", v.name));
        }
    }
    s.ok = s.failures.is_empty();
    Ok(s)
}

/// Every rendition's segments 0..n exist in both trees and are equal.
fn same_segments(a: &Path, b: &Path, n: u64) -> bool {
    let Ok(dirs) = std::fs::read_dir(a) else {
        return false;
    };
    let mut renditions = 0;
    for d in dirs.flatten().filter(|d| d.path().is_dir()) {
        renditions += 1;
        for seq in 0..n {
            let rel = Path::new(&d.file_name()).join(format!("{seq}.ts"));
            match (std::fs::read(a.join(&rel)), std::fs::read(b.join(&rel))) {
                (Ok(x), Ok(y)) if x == y => {}
                _ => return false,
            }
        }
    }
    renditions > 0
}

/// The summary for a person.
pub fn print(s: &Summary) {
    let mark = |ok: bool| if ok { "ok " } else { "FAIL" };
    eprintln!();
    eprintln!("job {} on {}: {} segments", s.job_id, s.elected, s.segments);
    eprintln!(
        "  [{}] transcoded          {}/{}",
        mark(s.transcoded == s.segments),
        s.transcoded,
        s.segments
    );
    eprintln!(
        "  [{}] claimed             {} segments in {} claims",
        mark(s.segments_claimed == s.segments),
        s.segments_claimed,
        s.claims
    );
    eprintln!(
        "  [{}] verified            {}/{} challenged segments",
        mark(s.verified == s.challenged),
        s.verified,
        s.challenged
    );
    eprintln!(
        "  [{}] fees distributed    {}/{} claims, {:.0} gwei",
        mark(s.claims_complete == s.claims && s.claims > 0),
        s.claims_complete,
        s.claims,
        s.fees_distributed_gwei
    );
    eprintln!(
        "  [{}] slashes             {}",
        mark(s.claims_slashed == 0),
        s.claims_slashed
    );
    if s.bad_viewers > 0 {
        eprintln!(
            "  [{}] bad relays          {} corrupting viewers choked, {} of their chunks refused",
            mark(s.bad_chunks_refused > 0),
            s.bad_viewers,
            s.bad_chunks_refused
        );
    }
    for v in &s.viewers {
        eprintln!(
            "  [{}] {:<18} {}/{} segments, identical: {}, glass-to-glass p50 {} ms, max {} ms, relayed {} bytes",
            mark(v.complete && v.identical),
            v.name,
            v.segments,
            s.segments,
            v.identical,
            v.delay_ms_p50.map_or("-".into(), |d| d.to_string()),
            v.delay_ms_max.map_or("-".into(), |d| d.to_string()),
            v.bytes_up
        );
    }
    eprintln!(
        "        swarm             the box uploaded {:.2}x one copy of the stream to {} viewers (a relay: {}x); the viewers relayed {:.0} % of what they watched",
        s.origin_upload_ratio,
        s.viewers.len(),
        s.viewers.len(),
        s.viewer_relay_ratio * 100.0
    );
    eprintln!(
        "  {} in {:.0} s",
        if s.ok {
            "every stage worked"
        } else {
            "SOME STAGES FAILED"
        },
        s.wall_s
    );
}
