//! The broadcaster's side of a job against a real anvil and a real transcoder daemon: `edge-agent broadcast`
//! tops up the deposit, creates the job with the ladder's transcodingOptions, finds the elected transcoder
//! (the active one), sends it the test source's segments signed, and copies back a playable HLS ladder.

mod chain_common;

use std::process::{Command, Stdio};
use std::time::Duration;

use chain::bindings::jobs_manager as jm;
use chain::hashes;
use chain_common::*;

#[test]
fn broadcast_creates_a_job_elects_the_active_transcoder_and_gets_the_ladder_back() {
    let tmp = tempfile::tempdir().unwrap();
    let net = Net::start(&tmp.path().join("devnet"), &["transcoder", "broadcaster"]);
    let (t_cfg, b_cfg) = (net.config("transcoder"), net.config("broadcaster"));
    let (t_cfg, b_cfg) = (t_cfg.to_str().unwrap(), b_cfg.to_str().unwrap());
    let (t, b) = (net.address("transcoder"), net.address("broadcaster"));

    net.next_round();
    ok(&["round", "init", "-c", t_cfg]);
    ok(&["bond", "500", "--to", "self", "-c", t_cfg]);
    register(t_cfg);
    net.next_round();
    ok(&["round", "init", "-c", t_cfg]);

    let port = free_port();
    let daemon = KillOnDrop(
        Command::new(BIN)
            .args(["run", "-c", t_cfg])
            .env("RUST_BACKTRACE", "0")
            .env("EDGE_AGENT__INGEST__LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "EDGE_AGENT__MEDIA__LADDER",
                "[\"P360p30fps16x9\", \"P240p30fps16x9\"]",
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("the transcoder daemon", Duration::from_secs(60), || {
        http_get(port, "/healthz").is_some()
    });

    // a block every 300 ms while the broadcaster works (the election waits for the job's block to have a
    // successor, and this devnet mines only on transactions)
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let miner = {
        let (stop, url) = (
            stop.clone(),
            net.info["rpc_url"].as_str().unwrap().to_string(),
        );
        std::thread::spawn(move || {
            let rpc = chain::rpc::Rpc::new(&url).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = rpc.mine(1);
                std::thread::sleep(Duration::from_millis(300));
            }
        })
    };
    let out = tmp.path().join("hls");
    let v = ok(&[
        "broadcast",
        "-c",
        b_cfg,
        "--stream",
        "cam1",
        "--duration",
        "4",
        "--max-price",
        "2gwei",
        "--transcoder",
        &format!("http://127.0.0.1:{port}"),
        "--out",
        out.to_str().unwrap(),
    ]);

    // ---- a segment whose signature is not the broadcaster's, or that has none, is never transcoded
    let job = v["job_id"].as_u64().unwrap().to_string();
    let seg = std::fs::read(out.join("P360p30fps16x9/0.ts")).unwrap(); // any TS bytes will do
    let w = chain::keys::decrypt(
        &net.keystore("transcoder"),
        chain::devnet::DEV_PASSWORD,
        31337,
    )
    .unwrap();
    let forged = chain::sign_segment(&w, "cam1", 2, hashes::data_hash(&seg)).unwrap();
    let forged = format!("0x{}", hex::encode(&forged));
    let (status, body) = http_put(
        port,
        "/live/cam1/2.ts",
        &[("X-Job-Id", &job), ("X-Broadcaster-Signature", &forged)],
        &seg,
    );
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("segment 2") && body.contains("not by job"),
        "{body}"
    );
    let (status, body) = http_put(port, "/live/cam1/2.ts", &[("X-Job-Id", &job)], &seg);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("needs the broadcaster's signature"), "{body}");
    let (status, body) = http_put(
        port,
        "/live/other/0.ts",
        &[("X-Job-Id", &job), ("X-Broadcaster-Signature", &forged)],
        &seg,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("job 0 is for stream"), "{body}");
    let (status, body) = http_put(port, "/live/cam1/2.ts", &[("X-Job-Id", "999")], &seg);
    assert_eq!(status, 404, "{body}");
    assert!(
        http_get(port, "/hls/cam1/P360p30fps16x9/2.ts").is_none_or(|b| b.contains("error")),
        "segment 2 was not transcoded"
    );
    let playlist = http_get(port, "/hls/cam1/P360p30fps16x9/index.m3u8").unwrap();
    assert!(!playlist.contains("2.ts"), "{playlist}");

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    miner.join().unwrap();
    drop(daemon);

    // ---- a receipt per accepted segment, none for the refused one: hashes in the job's profile order, the
    // broadcaster's signature, the input kept for a challenge
    let store = proof::ProofStore::open(&net.dir.join("transcoder/proof/store")).unwrap();
    let job_id = v["job_id"].as_u64().unwrap();
    for seq in 0..2u64 {
        let r = store
            .receipt(job_id, seq)
            .unwrap()
            .expect("receipt stored")
            .receipt;
        let renditions: Vec<Vec<u8>> = ["P360p30fps16x9", "P240p30fps16x9"]
            .iter()
            .map(|p| std::fs::read(out.join(format!("{p}/{seq}.ts"))).unwrap())
            .collect();
        assert_eq!(
            r.transcoded_data_hash,
            hashes::transcoded_data_hash(&renditions),
            "segment {seq}"
        );
        assert!(r.check().is_ok());
        let input = std::fs::read(r.input.as_ref().unwrap()).unwrap();
        assert_eq!(
            hashes::data_hash(&input),
            r.data_hash,
            "the input is kept as received"
        );
        assert_eq!(
            hashes::segment_signer("cam1", seq, r.data_hash, &r.broadcaster_sig),
            Ok(b)
        );
    }
    assert!(
        store.receipt(job_id, 2).unwrap().is_none(),
        "no receipt for a refused segment"
    );
    assert_eq!(store.job(job_id).unwrap().stream_id, "cam1");

    assert_eq!(v["segments"], 2, "{v}");
    assert_eq!(
        v["transcoder"],
        format!("{t:?}"),
        "the only active transcoder is elected"
    );
    assert_eq!(
        v["price_per_segment"], "1000000000",
        "at the transcoder's price, not the max"
    );
    let job_id = v["job_id"].as_u64().unwrap();
    let job = net.call(
        net.deployment.jobs_manager,
        jm::get_job(job_id.into()),
        jm::decode_get_job,
    );
    assert_eq!(job.stream_id, "cam1");
    assert_eq!(job.broadcaster_address, b);
    assert_eq!(
        job.transcoding_options,
        hashes::transcoding_options(&["P360p30fps16x9", "P240p30fps16x9"])
    );
    let dep = net.call(
        net.deployment.jobs_manager,
        jm::broadcasters(b),
        jm::decode_broadcasters,
    );
    assert_eq!(
        dep.deposit,
        chain::U256::from(2 * 2 * 2_000_000_000u64),
        "deposit covers 2 segments x 2 profiles at the max price"
    );
    let master = std::fs::read_to_string(out.join("master.m3u8")).unwrap();
    assert_eq!(master.matches("#EXT-X-STREAM-INF").count(), 2, "{master}");
    for p in ["P360p30fps16x9", "P240p30fps16x9"] {
        for s in 0..2 {
            let seg = out.join(format!("{p}/{s}.ts"));
            assert!(
                std::fs::metadata(&seg)
                    .map(|m| m.len() > 1000)
                    .unwrap_or(false),
                "{} copied",
                seg.display()
            );
        }
    }
}
