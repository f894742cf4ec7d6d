//! Benchmark (run by scripts/bench.d/fleet.sh): command round-trip latency of the fleet layer against a
//! bare MQTT v5 request/response echo over the same broker and TLS, and device reconnect time after a
//! broker restart.  Prints JSON lines.
//!
//! `cargo run --release -p fleet --example fleet_bench -- [N] [RESTARTS]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fleet::proto::{CommandRequest, Presence};
use fleet::testkit::{Broker, IdleHooks, make_pki};
use rumqttc::v5::Event;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};

fn stats(name: &str, mut v: Vec<Duration>) -> serde_json::Value {
    v.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let p = |q: f64| us(v[((v.len() as f64 - 1.0) * q).round() as usize]);
    let mean = v.iter().map(|d| us(*d)).sum::<f64>() / v.len() as f64;
    serde_json::json!({"bench": name, "n": v.len(), "p50_us": p(0.5).round(), "p99_us": p(0.99).round(), "mean_us": mean.round()})
}

/// Baseline: an echo responder and a requester, plain rumqttc v5, QoS 1, response topic + correlation.
async fn raw_round_trips(b: &Broker, n: usize) -> Vec<Duration> {
    let (echo, mut echo_el) = b.operator_mqtt("bench-echo");
    echo.subscribe("fleet/raw/cmd/req", QoS::AtLeastOnce)
        .await
        .unwrap();
    tokio::spawn(async move {
        loop {
            if let Ok(Event::Incoming(Packet::Publish(p))) = echo_el.poll().await {
                let props = p.properties.unwrap_or_default();
                let out = PublishProperties {
                    correlation_data: props.correlation_data,
                    ..Default::default()
                };
                echo.publish_with_properties(
                    props.response_topic.unwrap(),
                    QoS::AtLeastOnce,
                    false,
                    p.payload,
                    out,
                )
                .await
                .unwrap();
            }
        }
    });
    let (req, mut el) = b.operator_mqtt("bench-req");
    req.subscribe("fleet/raw/cmd/res/bench", QoS::AtLeastOnce)
        .await
        .unwrap();
    // wait for SUBACKs
    let mut subacks = 0;
    while subacks < 1 {
        if let Ok(Event::Incoming(Packet::SubAck(_))) = el.poll().await {
            subacks += 1;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let corr = Bytes::from(format!("c{i}"));
        let props = PublishProperties {
            response_topic: Some("fleet/raw/cmd/res/bench".into()),
            correlation_data: Some(corr.clone()),
            message_expiry_interval: Some(30),
            ..Default::default()
        };
        let body = serde_json::to_vec(&CommandRequest {
            id: format!("r{i}"),
            name: "ping".into(),
            args: serde_json::Value::Null,
        })
        .unwrap();
        let t0 = Instant::now();
        req.publish_with_properties("fleet/raw/cmd/req", QoS::AtLeastOnce, false, body, props)
            .await
            .unwrap();
        loop {
            if let Ok(Event::Incoming(Packet::Publish(p))) = el.poll().await {
                if p.properties.and_then(|p| p.correlation_data) == Some(corr.clone()) {
                    break;
                }
            }
        }
        out.push(t0.elapsed());
    }
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(300);
    let restarts = args.get(1).copied().unwrap_or(5);
    let dir = std::env::temp_dir().join(format!("fleet-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    make_pki(&dir.join("pki"), &["bench-1"]).unwrap();
    let mut b = Broker::start(&dir.join("pki"), &dir.join("broker"));

    let raw = raw_round_trips(&b, n).await;

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let dev = tokio::spawn(fleet::device::run(
        b.device_config("bench-1"),
        Arc::new(IdleHooks),
        async move {
            let _ = stop_rx.await;
        },
    ));
    let (ca, cert, key) = b.operator_files();
    let mut op = fleet::operator::Operator::connect(
        "127.0.0.1",
        b.port,
        &ca,
        &cert,
        &key,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    op.follow().await.unwrap();
    while !op.devices.get("bench-1").is_some_and(|d| d.online()) {
        op.next_event(Duration::from_secs(5)).await.unwrap();
    }
    let mut fleet_rt = Vec::with_capacity(n);
    for i in 0..n {
        let req = CommandRequest {
            id: format!("f{i}"),
            name: "ping".into(),
            args: serde_json::Value::Null,
        };
        let t0 = Instant::now();
        let r = op
            .command(
                "bench-1",
                &req,
                Duration::from_secs(30),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        fleet_rt.push(t0.elapsed());
        assert!(r.ok);
    }
    let raw_s = stats("raw_mqtt5_echo_round_trip", raw);
    let fleet_s = stats("fleet_cmd_ping_round_trip", fleet_rt);
    println!("{raw_s}");
    println!("{fleet_s}");
    let ratio = fleet_s["p50_us"].as_f64().unwrap() / raw_s["p50_us"].as_f64().unwrap();
    println!(
        "{}",
        serde_json::json!({"bench": "fleet_vs_raw_p50_ratio", "ratio": (ratio * 100.0).round() / 100.0})
    );
    drop(op);

    // Reconnect after broker restart (SIGTERM + start): time from "broker listening" to the device's new
    // online status (its CONNACK time), against the 5 s requirement.
    let mut times = Vec::new();
    for _ in 0..restarts {
        b.restart();
        let up = fleet::proto::now_ms();
        let mut op = fleet::operator::Operator::connect(
            "127.0.0.1",
            b.port,
            &ca,
            &cert,
            &key,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        op.follow().await.unwrap();
        let since = loop {
            if let Some(s) = op.devices.get("bench-1").and_then(|d| d.status.clone()) {
                if s.state == Presence::Online && s.since_ms.unwrap_or(0) + 50 >= up {
                    break s.since_ms.unwrap();
                }
            }
            op.next_event(Duration::from_secs(10)).await.unwrap();
        };
        times.push(Duration::from_millis(since.saturating_sub(up)));
    }
    let rs = stats("reconnect_after_broker_restart", times);
    println!("{rs}");
    println!(
        "{}",
        serde_json::json!({"bench": "reconnect_p99_vs_5s_budget", "ratio": (rs["p99_us"].as_f64().unwrap() / 5e6 * 1000.0).round() / 1000.0})
    );
    let _ = stop_tx.send(());
    let _ = dev.await;
    drop(b);
    let _ = std::fs::remove_dir_all(&dir);
}
