//! The keeper's start-up duty and the service URI op against a real anvil: the configured service URI is
//! published in the ServiceRegistry once; a restart with the same URI sends nothing, a changed URI replaces it,
//! no URI leaves the registry alone, and a URI the registry would refuse is refused before signing. The op
//! (`Client::set_service_uri`) does the same by hand, and the contract's own bound answers with its named
//! error.

use std::sync::Arc;
use std::time::Duration;

use chain::bindings::service_registry as sr;
use chain::devnet::{DEV_PASSWORD, Devnet, DevnetOptions};
use chain::journal::Journal;
use chain::keeper::{Keeper, KeeperConfig, KeeperStatus};
use chain::keys::PasswordSource;
use chain::node::{LogFilter, Node, NodeOptions};
use chain::ops::{self, MAX_SERVICE_URI_BYTES, OpError};
use chain::protocol::Protocol;
use chain::sender::{Call, SendError, SendOptions, Sender};
use chain::{Address, ChainConfig, U256};

const URI: &str = "http://203.0.113.7:8935";
const MOVED: &str = "https://box-7.example.net:8935";

fn devnet() -> Devnet {
    Devnet::start_with(DevnetOptions {
        accounts: vec!["box".into(), "operator".into()],
        ..Default::default()
    })
    .expect("devnet")
}

fn fast() -> SendOptions {
    SendOptions {
        poll_ms: 20,
        ..Default::default()
    }
}

async fn protocol(net: &Devnet) -> Protocol {
    let node = Node::connect(&net.url, NodeOptions::default(), &net.deployment)
        .await
        .unwrap();
    Protocol::new(node, net.deployment.clone())
}

async fn sender(net: &Devnet, dir: &std::path::Path) -> Arc<Sender> {
    let acct = net.account_named("box").unwrap();
    let wallet =
        chain::keys::decrypt(&acct.keystore, DEV_PASSWORD, net.deployment.chain_id).unwrap();
    let proto = protocol(net).await;
    Arc::new(
        Sender::open(
            proto.node,
            wallet,
            Journal::open(&dir.join("journal")).unwrap(),
            fast(),
        )
        .await
        .unwrap(),
    )
}

/// Runs a keeper configured with `uri` until it is following blocks with its start-up duty done (or it
/// reported an error), stops it, and returns its status.
async fn run_keeper(proto: &Protocol, sender: &Arc<Sender>, uri: Option<&str>) -> KeeperStatus {
    let cfg = KeeperConfig {
        reward: false,
        poll_ms: 50,
        ..Default::default()
    };
    let (keeper, mut status) = Keeper::new(proto.clone(), sender.clone(), cfg);
    let keeper = keeper.with_service_uri(uri.map(str::to_string));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(keeper.run(async {
        let _ = stopped.await;
    }));
    let s = tokio::time::timeout(
        Duration::from_secs(60),
        // `connected` comes with the first block followed, after the service URI was dealt with
        status.wait_for(|s| s.connected || s.last_error.is_some()),
    )
    .await
    .expect("the keeper follows the chain within a minute")
    .expect("status channel")
    .clone();
    stop.send(()).unwrap();
    task.await.unwrap();
    s
}

/// The ServiceURIUpdate events of the registry so far: (address, uri).
async fn updates(proto: &Protocol) -> Vec<(Address, String)> {
    let head = proto.node.block_number().await.unwrap();
    proto
        .node
        .logs(&LogFilter {
            from_block: 0,
            to_block: head,
            addresses: vec![proto.deployment.service_registry],
            topics0: vec![sr::events::ServiceURIUpdate::TOPIC],
        })
        .await
        .unwrap()
        .iter()
        .map(|l| {
            let e = sr::events::ServiceURIUpdate::decode(&l.topics, &l.data).unwrap();
            (e.addr, e.service_uri)
        })
        .collect()
}

#[tokio::test]
async fn keeper_publishes_the_service_uri_once_and_only_when_it_differs() {
    let net = devnet();
    let dir = tempfile::tempdir().unwrap();
    let proto = protocol(&net).await;
    let sender = sender(&net, dir.path()).await;
    let me = sender.address();
    assert_eq!(
        proto.service_uri(me).await.unwrap(),
        "",
        "nothing published yet"
    );

    // first start: published
    let s = run_keeper(&proto, &sender, Some(URI)).await;
    assert_eq!(s.last_error, None);
    assert_eq!(s.service_uri.as_deref(), Some(URI));
    assert_eq!(s.service_uri_updates_sent, 1);
    assert_eq!(proto.service_uri(me).await.unwrap(), URI);
    assert_eq!(updates(&proto).await, vec![(me, URI.to_string())]);

    // restart with the same configuration: the registry holds it, nothing is sent
    let s = run_keeper(&proto, &sender, Some(URI)).await;
    assert_eq!(s.service_uri.as_deref(), Some(URI));
    assert_eq!(s.service_uri_updates_sent, 0, "no transaction when equal");
    assert_eq!(updates(&proto).await.len(), 1);

    // the box moved: replaced
    let s = run_keeper(&proto, &sender, Some(MOVED)).await;
    assert_eq!(s.service_uri.as_deref(), Some(MOVED));
    assert_eq!(s.service_uri_updates_sent, 1);
    assert_eq!(proto.service_uri(me).await.unwrap(), MOVED);
    assert_eq!(
        updates(&proto).await,
        vec![(me, URI.to_string()), (me, MOVED.to_string())]
    );

    // no service_uri configured: the registry is left alone
    let s = run_keeper(&proto, &sender, None).await;
    assert_eq!((s.service_uri, s.service_uri_updates_sent), (None, 0));
    assert_eq!(proto.service_uri(me).await.unwrap(), MOVED);

    // a URI the registry would refuse: reported, nothing signed
    let long = format!("http://{}.example:8935", "a".repeat(MAX_SERVICE_URI_BYTES));
    let s = run_keeper(&proto, &sender, Some(&long)).await;
    let e = s.last_error.expect("an error for a URI that is too long");
    assert!(e.contains("at most 256"), "{e}");
    assert_eq!((s.service_uri, s.service_uri_updates_sent), (None, 0));
    assert_eq!(proto.service_uri(me).await.unwrap(), MOVED);
    assert_eq!(updates(&proto).await.len(), 2);
    assert!(sender.journal().pending(me).unwrap().is_empty());
}

#[tokio::test]
async fn op_sets_the_service_uri_and_the_registry_enforces_its_bound() {
    let net = devnet();
    let state = tempfile::tempdir().unwrap();
    let acct = net.account_named("operator").unwrap();
    let cfg = ChainConfig {
        rpc_url: net.url.clone(),
        deployment: net.deployment_file(),
        keystore: acct.keystore.clone(),
        password: PasswordSource::File(net.password_file()),
        send: fast(),
        ..Default::default()
    };
    let c = ops::connect(&cfg, state.path()).await.unwrap();
    let out = c
        .proto
        .node
        .call(
            None,
            net.deployment.service_registry,
            &sr::max_service_uri_length(),
            U256::zero(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        sr::decode_max_service_uri_length(&out).unwrap(),
        U256::from(MAX_SERVICE_URI_BYTES),
        "the client's bound is the contract's"
    );

    let m = c.set_service_uri(URI).await.unwrap().expect("sent");
    assert_eq!(m.label, format!("setServiceURI {URI}"));
    let e = sr::events::ServiceURIUpdate::decode(&m.logs[0].topics, &m.logs[0].data).unwrap();
    assert_eq!((e.addr, e.service_uri.as_str()), (c.address(), URI));
    assert_eq!(c.proto.service_uri(c.address()).await.unwrap(), URI);
    assert!(
        c.set_service_uri(URI).await.unwrap().is_none(),
        "the same URI again: nothing sent"
    );
    let at_max = "x".repeat(MAX_SERVICE_URI_BYTES);
    assert!(c.set_service_uri(&at_max).await.unwrap().is_some());
    assert_eq!(c.proto.service_uri(c.address()).await.unwrap(), at_max);
    // "" withdraws it
    assert!(c.set_service_uri("").await.unwrap().is_some());
    assert_eq!(c.proto.service_uri(c.address()).await.unwrap(), "");

    // refused before signing
    for bad in [
        "x".repeat(MAX_SERVICE_URI_BYTES + 1),
        "http://h:1/\nx".to_string(),
    ] {
        match c.set_service_uri(&bad).await {
            Err(OpError::Refused(r)) => assert!(r.contains("service URI"), "{r}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    // and the contract itself refuses a 257-byte URI with its named error
    let too_long = Call::new(
        "setServiceURI (too long)",
        net.deployment.service_registry,
        sr::set_service_uri("x".repeat(MAX_SERVICE_URI_BYTES + 1)),
    );
    match c.sender.dry_run(&too_long).await {
        Err(SendError::WouldRevert { reason, .. }) => {
            assert!(
                reason.starts_with("ServiceURITooLong(101, 100)"),
                "{reason}"
            );
            assert!(reason.contains("256 bytes"), "{reason}");
        }
        other => panic!("expected a revert, got {other:?}"),
    }
    // another address's URI is read without its key
    let other = net.account_named("box").unwrap().address;
    assert_eq!(c.proto.service_uri(other).await.unwrap(), "");
}
