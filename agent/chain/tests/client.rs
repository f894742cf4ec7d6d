//! The agent's chain client against a real anvil: chain-id and deployment checks, a call that would revert
//! refused with the contract's named error, confirmations, the legacy fallback, a transaction stuck below the
//! fee market replaced with a bumped fee (same nonce, mined once), and event watching that retracts a
//! reorged-out event and resumes from its persisted cursor.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chain::bindings::{bonding_manager as bm, token};
use chain::devnet::{DEV_PASSWORD, Devnet, DevnetOptions};
use chain::events::{Event, Watcher};
use chain::journal::Journal;
use chain::node::{Node, NodeError, NodeOptions};
use chain::sender::{Call, SendError, SendOptions, Sender};
use chain::{Address, U256};
use serde_json::json;

fn devnet() -> Devnet {
    Devnet::start_with(DevnetOptions {
        accounts: vec!["box".into()],
        ..Default::default()
    })
    .expect("devnet")
}

async fn sender(net: &Devnet, dir: &std::path::Path, opts: SendOptions) -> Sender {
    let acct = net.account_named("box").unwrap();
    let wallet =
        chain::keys::decrypt(&acct.keystore, DEV_PASSWORD, net.deployment.chain_id).unwrap();
    let node = Node::connect(&net.url, NodeOptions::default(), &net.deployment)
        .await
        .unwrap();
    Sender::open(
        node,
        wallet,
        Journal::open(&dir.join("journal")).unwrap(),
        opts,
    )
    .await
    .unwrap()
}

fn transfer(net: &Devnet, wei: u64) -> Call {
    Call::new(
        "transfer",
        net.deployment.token,
        token::transfer(Address::repeat_byte(0x42), wei.into()),
    )
}

#[tokio::test]
async fn wrong_chain_and_foreign_deployment_are_refused_clearly() {
    let net = devnet();
    let mut other = net.deployment.clone();
    other.chain_id = 1;
    let e = Node::connect(&net.url, NodeOptions::default(), &other)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            NodeError::WrongChain {
                node: 31337,
                deployment: 1,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("chain id 31337") && e.to_string().contains("chain id 1"),
        "{e}"
    );
    let mut foreign = net.deployment.clone();
    foreign.controller = Address::repeat_byte(0x77);
    let e = Node::connect(&net.url, NodeOptions::default(), &foreign)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("belongs to another chain"), "{e}");
}

#[tokio::test]
async fn would_revert_is_refused_with_the_named_error_and_nothing_is_signed() {
    let net = devnet();
    let dir = tempfile::tempdir().unwrap();
    let s = sender(&net, dir.path(), SendOptions::default()).await;
    let e = s
        .send(Call::new(
            "withdraw stake",
            net.deployment.bonding_manager,
            bm::withdraw_stake(),
        ))
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, SendError::WouldRevert { .. }), "{text}");
    assert!(
        text.contains("RoundNotInitialized()") && text.contains("edge-agent round init"),
        "{text}"
    );
    assert_eq!(
        s.journal().next_nonce(s.address()).unwrap(),
        None,
        "no nonce was reserved"
    );
}

/// A call with a deadline (a round, a verification window) that the next block could already miss is refused
/// before anything is signed; one with room to spare is sent and mined.
#[tokio::test]
async fn a_call_the_chain_could_not_mine_before_its_deadline_is_not_sent() {
    let net = devnet();
    let dir = tempfile::tempdir().unwrap();
    let s = sender(&net, dir.path(), SendOptions::default()).await;
    let head = s.node().block_number().await.unwrap();
    let e = s
        .submit(transfer(&net, 1).valid_through(head + 1))
        .await
        .unwrap_err();
    assert!(
        matches!(e, SendError::TooLate { valid_through, .. } if valid_through == head + 1),
        "{e}"
    );
    assert!(e.to_string().contains("not sent"), "{e}");
    assert_eq!(
        s.journal().next_nonce(s.address()).unwrap(),
        None,
        "no nonce was reserved"
    );
    // the earlier of two deadlines counts
    let call = transfer(&net, 1)
        .valid_through(head + 100)
        .valid_through(head + 50);
    assert_eq!(call.valid_through, Some(head + 50));
    let done = s.send(call).await.unwrap();
    assert!(done.block <= head + 50, "{done:?}");
}

#[tokio::test]
async fn confirmations_and_legacy_transactions() {
    let net = devnet();
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(
        sender(
            &net,
            dir.path(),
            SendOptions {
                confirmations: 3,
                legacy: true,
                poll_ms: 50,
                ..Default::default()
            },
        )
        .await,
    );
    let t = {
        let s = s.clone();
        let call = transfer(&net, 1);
        tokio::spawn(async move { s.send(call).await })
    };
    let start = Instant::now();
    while !t.is_finished() {
        assert!(start.elapsed() < Duration::from_secs(30), "no confirmation");
        tokio::time::sleep(Duration::from_millis(200)).await;
        net.rpc.mine(1).unwrap();
    }
    let m = t.await.unwrap().unwrap();
    assert!(
        net.rpc.block_number().unwrap() >= m.block + 2,
        "3 confirmations: the block and two on top"
    );
    let tx = net
        .rpc
        .request("eth_getTransactionByHash", json!([m.hash]))
        .unwrap();
    assert_eq!(tx["type"], "0x0", "legacy transaction");
}

#[tokio::test]
async fn a_transaction_stuck_below_the_fee_market_is_replaced() {
    let net = devnet();
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(
        sender(
            &net,
            dir.path(),
            SendOptions {
                stuck_after_blocks: 2,
                poll_ms: 50,
                ..Default::default()
            },
        )
        .await,
    );
    net.rpc.request("evm_setAutomine", json!([false])).unwrap();
    let nonce = s.submit(transfer(&net, 5)).await.unwrap();
    let first = s
        .journal()
        .get(s.address(), nonce)
        .unwrap()
        .latest()
        .clone();
    // the market jumps far above what the transaction offers
    net.rpc
        .request(
            "anvil_setNextBlockBaseFeePerGas",
            json!([U256::from(200_000_000_000u64)]),
        )
        .unwrap();
    let follow = {
        let s = s.clone();
        tokio::spawn(async move { s.follow(nonce).await })
    };
    let start = Instant::now();
    while !follow.is_finished() {
        assert!(start.elapsed() < Duration::from_secs(60), "never mined");
        net.rpc.mine(1).unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let m = follow.await.unwrap().unwrap();
    let rec = s.journal().get(s.address(), nonce).unwrap();
    assert!(
        m.replacements >= 1 && rec.attempts.len() >= 2,
        "replaced: {rec:?}"
    );
    assert_ne!(m.hash, first.hash);
    assert!(
        rec.latest().fee.cap() > first.fee.cap() * 110 / 100,
        "bumped by more than 10 %"
    );
    assert_eq!(
        s.node().nonce(s.address(), false).await.unwrap(),
        nonce + 1,
        "one nonce, mined once"
    );
    assert!(
        net.rpc
            .request("eth_getTransactionReceipt", json!([first.hash]))
            .unwrap()
            .is_null()
    );
}

#[tokio::test]
async fn watcher_retracts_reorged_events_and_resumes_from_its_cursor() {
    let net = devnet();
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("journal")).unwrap();
    let node = Node::connect(&net.url, NodeOptions::default(), &net.deployment)
        .await
        .unwrap();
    let open = |j: &Journal| {
        Watcher::open(
            node.clone(),
            j.clone(),
            "transfers",
            vec![net.deployment.token],
            vec![token::events::Transfer::TOPIC],
            net.rpc.block_number().unwrap(),
        )
        .unwrap()
    };
    let mut w = open(&journal);
    assert!(w.poll().await.unwrap().is_empty());
    let snap = net.rpc.request("evm_snapshot", json!([])).unwrap();
    let w0 = net.wallet(0);
    net.rpc
        .send(
            &w0,
            net.deployment.token,
            token::transfer(Address::repeat_byte(9), 7u64.into()),
            U256::zero(),
        )
        .unwrap();
    let ev = w.poll().await.unwrap();
    assert_eq!(ev.len(), 1);
    let Event::Log(delivered) = &ev[0] else {
        panic!("{ev:?}")
    };

    // the transfer's block leaves the chain; a longer chain without it replaces it
    net.rpc.request("evm_revert", json!([snap])).unwrap();
    net.rpc.mine(3).unwrap();
    let ev = w.poll().await.unwrap();
    assert_eq!(ev, vec![Event::Retracted(delivered.clone())]);

    // a new watcher on the same journal resumes after what was delivered: nothing twice
    drop(w);
    let mut w = open(&journal);
    assert!(w.poll().await.unwrap().is_empty());
    net.rpc
        .send(
            &w0,
            net.deployment.token,
            token::transfer(Address::repeat_byte(9), 8u64.into()),
            U256::zero(),
        )
        .unwrap();
    let ev = w.poll().await.unwrap();
    assert_eq!(ev.len(), 1);
    assert!(matches!(&ev[0], Event::Log(l) if l.data.as_ref()[31] == 8));
    assert!(
        w.poll().await.unwrap().is_empty(),
        "idle poll delivers nothing"
    );
}
