//! Security against a real mosquitto with the repo's config: mutual TLS only, the fleet CA only, and the
//! ACL confining each device to its own subtree (checked through the broker's MQTT v5 reason codes).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Device, TestHooks, operator, pki, wait_for};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PubAckReason};
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use rumqttc::{TlsConfiguration, Transport};

fn opts(port: u16, id: &str, transport: Option<Transport>) -> MqttOptions {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(5));
    o.set_connection_timeout(3);
    if let Some(t) = transport {
        o.set_transport(t);
    }
    o
}

/// Polls until CONNACK (Ok) or the first connection error (Err), within 5 s.
async fn connect(el: &mut EventLoop) -> Result<(), String> {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    })
    .await
    .map_err(|_| "no answer within 5 s".to_string())?
}

fn tls_no_client_cert(ca: &std::path::Path) -> Transport {
    let mut roots = rustls::RootCertStore::empty();
    for c in fleet::tls::load_certs(ca).unwrap() {
        roots.add(c).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(cfg)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_plain_tcp_no_cert_and_foreign_ca() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("pki");
    let evil = dir.path().join("evil");
    pki(&good, &["box-1"]);
    pki(&evil, &["box-1"]);
    let b = fleet::testkit::Broker::start(&good, &dir.path().join("broker"));

    // Plain TCP: the listener speaks TLS only.
    let (_c, mut el) = AsyncClient::new(opts(b.port, "plain", None), 10);
    let e = connect(&mut el).await.expect_err("plain TCP refused");
    eprintln!("plain TCP: {e}");

    // TLS without a client certificate.
    let (_c, mut el) = AsyncClient::new(
        opts(
            b.port,
            "anon",
            Some(tls_no_client_cert(&good.join("ca.pem"))),
        ),
        10,
    );
    let e = connect(&mut el).await.expect_err("no client cert refused");
    eprintln!("no client cert: {e}");

    // A certificate with the right CN from another CA.
    let cfg = fleet::tls::client_config(
        &good.join("ca.pem"),
        &evil.join("box-1.pem"),
        &evil.join("box-1.key"),
    )
    .unwrap();
    let (_c, mut el) = AsyncClient::new(
        opts(
            b.port,
            "box-1",
            Some(Transport::tls_with_config(TlsConfiguration::Rustls(cfg))),
        ),
        10,
    );
    let e = connect(&mut el).await.expect_err("foreign CA refused");
    eprintln!("foreign CA: {e}");

    // The genuine certificate connects (so the refusals above are about the credentials).
    let cfg = fleet::tls::client_config(
        &good.join("ca.pem"),
        &good.join("box-1.pem"),
        &good.join("box-1.key"),
    )
    .unwrap();
    let (_c, mut el) = AsyncClient::new(
        opts(
            b.port,
            "box-1",
            Some(Transport::tls_with_config(TlsConfiguration::Rustls(cfg))),
        ),
        10,
    );
    connect(&mut el).await.expect("genuine cert accepted");

    // A device process given the foreign identity never comes online and says why.
    let mut cfg = b.device_config("box-1");
    cfg.cert_file = evil.join("box-1.pem");
    cfg.key_file = evil.join("box-1.key");
    let _d = Device::start(cfg, TestHooks::new("x264"));
    let mut op = operator(&b).await;
    op.snapshot(Duration::from_millis(1500)).await.unwrap();
    assert!(op.devices.get("box-1").is_none_or(|d| !d.online()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_confines_a_device_to_its_subtree() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pki");
    pki(&p, &["box-1", "box-2"]);
    let b = fleet::testkit::Broker::start(&p, &dir.path().join("broker"));
    let h2 = TestHooks::new("x264");
    let _d2 = Device::start(b.device_config("box-2"), h2.clone());
    let mut op = operator(&b).await;
    wait_for(&mut op, Duration::from_secs(10), "box-2 online", |op| {
        op.devices
            .get("box-2")
            .is_some_and(|d| d.online())
            .then_some(())
    })
    .await;

    // box-1 as a raw MQTT client (same cert a compromised box would have), even claiming box-2's client id.
    let cfg = fleet::tls::client_config(
        &p.join("ca.pem"),
        &p.join("box-1.pem"),
        &p.join("box-1.key"),
    )
    .unwrap();
    let (c, mut el) = AsyncClient::new(
        opts(
            b.port,
            "box-2-impostor",
            Some(Transport::tls_with_config(TlsConfiguration::Rustls(cfg))),
        ),
        10,
    );
    connect(&mut el).await.expect("box-1 connects");
    // Collect for 2.5 s: box-2 heartbeats every second and has retained state, so a working read would
    // show up.
    let events = tokio::spawn(async move {
        let mut acks = Vec::new();
        let mut subacks = Vec::new();
        let mut received = Vec::new();
        let end = tokio::time::Instant::now() + Duration::from_millis(2500);
        while let Ok(ev) = tokio::time::timeout_at(end, el.poll()).await {
            match ev {
                Ok(Event::Incoming(Packet::PubAck(a))) => acks.push(a.reason),
                Ok(Event::Incoming(Packet::SubAck(s))) => subacks.extend(s.return_codes),
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    received.push(String::from_utf8_lossy(&p.topic).into_owned())
                }
                Ok(_) => {}
                Err(e) => panic!("connection dropped: {e}"),
            }
        }
        (acks, subacks, received)
    });
    // Into box-2's subtree: a forged desired config and a forged command; then its own subtree.
    c.publish(
        fleet::topics::desired("box-2"),
        QoS::AtLeastOnce,
        true,
        br#"{"version":99,"config":{"session_limit":1}}"#.to_vec(),
    )
    .await
    .unwrap();
    c.publish(
        fleet::topics::cmd_request("box-2"),
        QoS::AtLeastOnce,
        false,
        br#"{"id":"evil","name":"reboot"}"#.to_vec(),
    )
    .await
    .unwrap();
    c.publish(
        fleet::topics::telemetry("box-1"),
        QoS::AtLeastOnce,
        false,
        b"{}".to_vec(),
    )
    .await
    .unwrap();
    c.subscribe("fleet/box-2/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    let (acks, subacks, received) = tokio::time::timeout(Duration::from_secs(5), events)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        acks[0],
        PubAckReason::NotAuthorized,
        "reason code 135 for another device's subtree"
    );
    assert_eq!(acks[1], PubAckReason::NotAuthorized);
    assert!(
        matches!(
            acks[2],
            PubAckReason::Success | PubAckReason::NoMatchingSubscribers
        ),
        "own subtree allowed: {:?}",
        acks[2]
    );
    // mosquitto 2.0 grants the SUBSCRIBE but applies the read ACL on delivery: nothing of box-2 arrives.
    assert_eq!(subacks.len(), 1, "{subacks:?}");
    assert!(
        received.is_empty(),
        "box-1 read box-2's messages: {received:?}"
    );

    // box-2 saw none of it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(h2.applied.lock().unwrap().is_empty());
    op.snapshot(Duration::from_millis(300)).await.unwrap();
    assert!(op.devices["box-2"].desired.is_none());
    assert_eq!(
        op.devices["box-2"]
            .reported
            .as_ref()
            .unwrap()
            .applied_version,
        0
    );
}
