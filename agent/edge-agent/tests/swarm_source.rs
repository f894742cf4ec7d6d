//! A broadcaster that dies in the middle of a segment, while the daemon reads its live swarm: the segments
//! that arrived whole are transcoded and kept, the cut one is dropped, and after `swarm.source_idle_s` of
//! silence the stream ends cleanly: the playlists get `#EXT-X-ENDLIST` and the rendition swarms carry an end
//! record, so a viewer finishes instead of waiting.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use segment_swarm::manifest::SwarmManifest;
use segment_swarm::node::{random_key, swarm_config};
use segment_swarm::{Publisher, Record, SegmentMeta, Subscriber};

mod daemon_common;
use daemon_common::*;

const IDLE_S: u64 = 3;

fn segment(seq: u64, data: &[u8]) -> Record {
    Record::Segment {
        meta: SegmentMeta {
            stream: "b".into(),
            seq,
            job_id: None,
            signature: None,
            duration: 1.0,
            rendition: None,
            cut_at_us: None,
        },
        data: data.to_vec(),
    }
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcaster_that_dies_mid_segment_leaves_a_stream_that_ends_cleanly() {
    let segs = test_segments(3);
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start_with(
        dir.path(),
        1,
        &format!("[swarm]\nbind = \"127.0.0.1\"\nsource_idle_s = {IDLE_S}"),
        &[],
    );
    assert!(d.next_notify().contains("READY=1"));

    let cfg = swarm_config();
    let align = cfg.chunk_size as usize * cfg.chunks_per_munro as usize;
    let mut source = Publisher::spawn(cfg, random_key(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let join = serde_json::json!({
        "stream": "b",
        "swarm_id": source.swarm_id_hex(),
        "peers": [source.local_addr()],
    });
    let (status, body) = http(d.port, "POST", "/swarm/join", join.to_string().as_bytes());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    for seq in 0..2 {
        source.publish(&segment(seq, &segs[seq as usize])).unwrap();
    }
    let port = d.port;
    let listed = move || {
        let (status, body) = http(port, "GET", "/hls/b/P360p30fps16x9/index.m3u8", b"");
        let pl = String::from_utf8_lossy(&body).to_string();
        (status, pl)
    };
    wait_for(
        "segments 0 and 1 transcoded",
        Duration::from_secs(60),
        || {
            let (status, pl) = listed();
            status == 200 && pl.contains("\n1.ts\n")
        },
    );

    // a viewer joins a rendition swarm from the manifest
    let (status, body) = http(d.port, "GET", "/swarm/b", b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let manifest: SwarmManifest = serde_json::from_slice(&body).unwrap();
    let r = &manifest.renditions[0];
    let id = segment_swarm::manifest::parse_swarm_id(&r.swarm_id).unwrap();
    let peers: Vec<SocketAddr> = r.peers.clone();
    let mut viewer = Subscriber::join(swarm_config(), &id, &peers, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();

    // the broadcaster sends the first half of segment 2 and dies
    let cut = segment(2, &segs[2]).encode(align).unwrap();
    let half = cut.len() / 2 / align * align;
    source.node().publish(cut[..half].to_vec());
    tokio::time::sleep(Duration::from_millis(500)).await;
    source.stop().await.unwrap();
    let died = Instant::now();

    // the viewer gets the end record once the daemon has heard nothing for source_idle_s
    let end = tokio::time::timeout(Duration::from_secs(IDLE_S + 30), async {
        loop {
            match viewer.next().await {
                Some(Ok(Record::End { last_seq, .. })) => return last_seq,
                Some(_) => continue,
                None => panic!("the viewer's node stopped"),
            }
        }
    })
    .await
    .expect("an end record on the rendition swarm");
    assert_eq!(end, Some(1), "the cut segment is not part of the stream");
    assert!(
        died.elapsed() >= Duration::from_secs(IDLE_S - 1),
        "ended before the silence: {:?}",
        died.elapsed()
    );
    let _ = viewer.stop().await;

    let pl = tokio::task::spawn_blocking(move || {
        let mut pl = String::new();
        wait_for("the playlists ended", Duration::from_secs(10), || {
            pl = listed().1;
            pl.contains("ENDLIST")
        });
        pl
    })
    .await
    .unwrap();
    assert!(pl.ends_with("1.ts\n#EXT-X-ENDLIST\n"), "{pl}");
    assert!(!pl.contains("2.ts"), "{pl}");
}

/// A box killed (SIGKILL) while it reads a broadcaster's swarm reads it again when it comes back, without
/// being asked: the segments it had are not written twice, the next ones extend the same playlists, and a
/// viewer follows it onto its new rendition swarms and gets the whole stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_box_killed_mid_stream_reads_the_broadcasters_swarm_again() {
    let segs = test_segments(4);
    let dir = tempfile::tempdir().unwrap();
    let config = "[swarm]\nbind = \"127.0.0.1\"";
    let d = Daemon::start_with(dir.path(), 1, config, &[]);
    assert!(d.next_notify().contains("READY=1"));
    let cfg = swarm_config();
    let mut source = Publisher::spawn(cfg, random_key(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let join = serde_json::json!({
        "stream": "b",
        "swarm_id": source.swarm_id_hex(),
        "peers": [source.local_addr()],
    });
    let (status, body) = http(d.port, "POST", "/swarm/join", join.to_string().as_bytes());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    for seq in 0..2 {
        source.publish(&segment(seq, &segs[seq as usize])).unwrap();
    }
    let listed = |port: u16| {
        let (status, body) = http(port, "GET", "/hls/b/P360p30fps16x9/index.m3u8", b"");
        (status, String::from_utf8_lossy(&body).to_string())
    };
    let port = d.port;
    wait_for(
        "segments 0 and 1 transcoded",
        Duration::from_secs(60),
        || listed(port).1.contains("\n1.ts\n"),
    );
    let summary = dir.path().join("view.json");
    let mut viewer = std::process::Command::new(env!("CARGO_BIN_EXE_edge-agent"))
        .args([
            "view",
            "--listen",
            "",
            "--bind",
            "127.0.0.1:0",
            "--manifest",
        ])
        .arg(format!("http://127.0.0.1:{port}/swarm/b"))
        .arg("--out")
        .arg(dir.path().join("view"))
        .arg("--summary")
        .arg(&summary)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut d = d;
    d.child.kill().unwrap(); // SIGKILL
    d.child.wait().unwrap();
    drop(d);

    // back, on the same data dir and port, and nobody posts the join again
    let d = Daemon::start_on(port, dir.path(), 1, config, &[]);
    assert!(d.next_notify().contains("READY=1"));
    for seq in 2..4 {
        source.publish(&segment(seq, &segs[seq as usize])).unwrap();
    }
    let port = d.port;
    let pl = tokio::task::spawn_blocking(move || {
        let mut pl = String::new();
        wait_for(
            "segments 2 and 3 after the restart",
            Duration::from_secs(60),
            || {
                pl = listed(port).1;
                pl.contains("\n3.ts\n")
            },
        );
        pl
    })
    .await
    .unwrap();
    let files: Vec<&str> = pl.lines().filter(|l| l.ends_with(".ts")).collect();
    assert_eq!(files, ["0.ts", "1.ts", "2.ts", "3.ts"], "{pl}");
    assert!(!pl.contains("DISCONTINUITY"), "{pl}");

    // the broadcaster ends the stream; the viewer, now on the new swarms, ends with all of it
    source
        .publish(&Record::End {
            stream: "b".into(),
            last_seq: Some(3),
        })
        .unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        loop {
            if let Some(s) = viewer.try_wait().unwrap() {
                return s;
            }
            if t.elapsed() > Duration::from_secs(60) {
                let _ = viewer.kill();
                panic!("the viewer did not finish");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .unwrap();
    assert!(status.success(), "{status}");
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(s["ended"], true, "{s}");
    assert_eq!(
        (s["first_seq"].as_u64(), s["last_seq"].as_u64()),
        (Some(0), Some(3)),
        "{s}"
    );
    assert_eq!(s["segments"], 4, "{s}");
    let _ = source.stop().await;
    drop(d);
}
