//! The Bond -> Delegate -> Reward loop through the real CLI against a real anvil (`edge-agent devnet`): keystore
//! creation and import, token funding, transcoder registration, delegation, round initialization, reward
//! (minted amount against the Minter's formula, the delegator's share against rewardCut), claim-earnings,
//! unbond, a withdraw refused before the unbonding period and accepted after it; a wrong keystore password;
//! no key or password in any output; and kill -9 between signing and receipt. The service URI: published,
//! not sent twice, read by another account, refused when too long.

mod chain_common;

use chain::U256;
use chain::bindings::{bonding_manager as bm, minter, token};
use chain_common::*;

fn cfg(net: &Net, name: &str) -> String {
    net.config(name).display().to_string()
}

#[test]
fn bond_delegate_reward_claim_unbond_withdraw_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let net = Net::start(&tmp.path().join("devnet"), &["transcoder", "delegator"]);
    let (t_cfg, d_cfg) = (cfg(&net, "transcoder"), cfg(&net, "delegator"));
    let (t, d) = (net.address("transcoder"), net.address("delegator"));
    let d_addr = format!("{d:?}");
    let t_addr = format!("{t:?}");

    // ---- accounts: a new keystore, an imported one, funded with tokens from the delegator
    let pw = tmp.path().join("pw");
    std::fs::write(&pw, "fresh password\n").unwrap();
    let new_ks = tmp.path().join("new.json");
    let created = ok(&[
        "account",
        "new",
        "--keystore",
        new_ks.to_str().unwrap(),
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    let fresh = created["address"].as_str().unwrap().to_string();
    let shown = ok(&[
        "account",
        "show",
        "-c",
        &d_cfg,
        "--keystore",
        new_ks.to_str().unwrap(),
    ]);
    assert_eq!(shown["address"], fresh);
    assert_eq!(u256(&shown["tokens"]), U256::zero());
    // the password as a systemd credential: the [chain] table's default source
    let creds = tmp.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("keystore-password"), "credential password\n").unwrap();
    let cred_ks = tmp.path().join("cred.json");
    let o = run(
        &[
            "account",
            "new",
            "--json",
            "--keystore",
            cred_ks.to_str().unwrap(),
        ],
        &[("CREDENTIALS_DIRECTORY", creds.to_str().unwrap())],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(chain::keys::decrypt(&cred_ks, "credential password", 1).is_ok());
    let key_file = tmp.path().join("key.hex");
    std::fs::write(&key_file, chain::devnet::DEV_KEYS[3]).unwrap();
    let imported = ok(&[
        "account",
        "import",
        "--private-key-file",
        key_file.to_str().unwrap(),
        "--keystore",
        tmp.path().join("imported.json").to_str().unwrap(),
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    assert_eq!(
        imported["address"],
        "0x90f79bf6eb2c4f870365e785982e1f101e93b906"
    );
    ok(&["token", "transfer", &fresh, "12.5", "-c", &d_cfg]);
    let bal = ok(&["token", "balance", &fresh, "-c", &d_cfg]);
    assert_eq!(bal["balance"], "12.5");
    assert!(
        refused(&["token", "transfer", &fresh, "1000000", "-c", &d_cfg]).contains("token balance")
    );

    // ---- transcoder: round init, self-bond, register; delegator bonds to it
    net.next_round();
    ok(&["round", "init", "-c", &t_cfg]);
    assert!(refused(&["round", "init", "-c", &t_cfg]).contains("already initialized"));
    assert!(
        refused(&[
            "transcoder",
            "register",
            "--reward-cut",
            "10",
            "--fee-share",
            "50",
            "--price",
            "1gwei",
            "-c",
            &t_cfg
        ])
        .contains("self-bond first"),
        "registration before a self-bond is refused before sending"
    );
    let bonded = ok(&["bond", "500", "--to", "self", "-c", &t_cfg]);
    assert_eq!(
        bonded["transactions"].as_array().unwrap().len(),
        2,
        "approve + bond: {bonded}"
    );
    register(&t_cfg);
    ok(&["bond", "300", "--to", &t_addr, "-c", &d_cfg]);

    // ---- next round: the transcoder is active; reward mints what the Minter's formula says
    let inflation_before = net.call(
        net.deployment.minter,
        minter::inflation(),
        minter::decode_inflation,
    );
    let round = net.next_round();
    ok(&["round", "init", "-c", &d_cfg]);
    let st = ok(&["status", "-c", &t_cfg]);
    assert_eq!(st["round"]["round"], round);
    assert_eq!(st["round"]["initialized"], true);
    assert_eq!(st["active"], true);
    assert_eq!(u256(&st["transcoder"]["total_stake"]), tokens(800));
    assert_eq!(st["delegators"].as_array().unwrap().len(), 1);
    assert_eq!(st["delegators"][0], d_addr);
    assert_eq!(st["active_set"][0], t_addr);

    let supply = net.call(
        net.deployment.token,
        token::total_supply(),
        token::decode_total_supply,
    );
    let inflation = net.call(
        net.deployment.minter,
        minter::inflation(),
        minter::decode_inflation,
    );
    let change = net.call(
        net.deployment.minter,
        minter::inflation_change(),
        minter::decode_inflation_change,
    );
    // 800 of 10M bonded is below the 50 % target: inflation rises by inflationChange
    assert_eq!(inflation, inflation_before + change);
    let mintable = supply * inflation / 1_000_000u64;
    ok(&["transcoder", "reward", "-c", &t_cfg]);
    assert!(refused(&["transcoder", "reward", "-c", &t_cfg]).contains("RewardAlreadyCalled"));
    let after = net.call(
        net.deployment.bonding_manager,
        bm::get_transcoder(t),
        bm::decode_get_transcoder,
    );
    let minted = after.delegated_amount - tokens(800);
    assert_eq!(
        minted, mintable,
        "the only active transcoder mints the round's whole mintable amount"
    );
    assert_eq!(after.last_reward_round, round.into());

    // the delegator's share of the round: (minted - rewardCut) * 300 / 800
    net.next_round();
    ok(&["round", "init", "-c", &d_cfg]);
    let delegators_pool = minted - minted * 100_000u64 / 1_000_000u64;
    let expected = tokens(300) + delegators_pool * tokens(300) / tokens(800);
    let ds = ok(&["status", "-c", &d_cfg]);
    assert_eq!(u256(&ds["pending_stake"]), expected, "{ds}");
    assert!(u256(&ds["pending_rewards"]) > U256::zero());
    ok(&["claim-earnings", "-c", &d_cfg]);
    let b = net.call(
        net.deployment.bonding_manager,
        bm::get_delegator(d),
        bm::decode_get_delegator,
    );
    assert_eq!(b.bonded_amount, expected);
    assert!(refused(&["claim-earnings", "-c", &d_cfg]).contains("nothing to claim"));

    // ---- unbond; withdraw before the unbonding period is refused (no transaction), after it succeeds
    let unbond_round = net.round();
    ok(&["unbond", "100", "-c", &d_cfg]);
    let nonce = net.nonce(d);
    let e = refused(&["withdraw-stake", "-c", &d_cfg]);
    assert!(
        e.contains("unbonding period is not over")
            && e.contains(&format!("round {}", unbond_round + 2)),
        "{e}"
    );
    assert_eq!(net.nonce(d), nonce, "a refused command sends nothing");
    let before = net.call(
        net.deployment.token,
        token::balance_of(d),
        token::decode_balance_of,
    );
    for _ in 0..2 {
        net.next_round();
        ok(&["round", "init", "-c", &d_cfg]);
    }
    ok(&["withdraw-stake", "-c", &d_cfg]);
    let after = net.call(
        net.deployment.token,
        token::balance_of(d),
        token::decode_balance_of,
    );
    assert_eq!(after - before, tokens(100));
    let text = run(&["status", "-c", &d_cfg], &[]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("bond "),
        "text status"
    );

    // ---- every transaction of both accounts succeeded: refusals cost nothing
    for who in [t, d] {
        let txs = net.transactions_from(who);
        assert!(txs.iter().all(|(_, _, ok)| *ok), "{txs:?}");
        assert!(
            txs.iter().enumerate().all(|(i, (n, _, _))| *n == i as u64),
            "contiguous nonces: {txs:?}"
        );
    }

    // ---- a wrong password is a clear error; no key or password ever appears in any output
    let wrong = tmp.path().join("wrong");
    std::fs::write(&wrong, "not it").unwrap();
    let e = refused(&[
        "unbond",
        "1",
        "-c",
        &d_cfg,
        "--password-file",
        wrong.to_str().unwrap(),
    ]);
    assert!(e.contains("wrong password for keystore"), "{e}");
    // debug logs too
    run(&["--log", "debug", "token", "balance", "-c", &t_cfg], &[]);
    let all = OUTPUT.lock().unwrap().clone();
    let mut secrets = vec![
        "credential password".to_string(),
        chain::devnet::DEV_PASSWORD.to_string(),
        "fresh password".into(),
        chain::devnet::DEV_KEYS[3].into(),
    ];
    for (ks, p) in [
        (net.keystore("transcoder"), chain::devnet::DEV_PASSWORD),
        (net.keystore("delegator"), chain::devnet::DEV_PASSWORD),
        (new_ks.clone(), "fresh password"),
    ] {
        let w = chain::keys::decrypt(&ks, p, 1).unwrap();
        secrets.push(hex::encode(w.signer().to_bytes()));
    }
    for s in &secrets {
        assert!(!all.contains(s.as_str()), "a secret appears in the output");
    }
    assert!(all.len() > 1000, "the outputs were captured");
}

#[test]
fn kill_9_between_signing_and_receipt_neither_reuses_nor_skips_a_nonce() {
    let tmp = tempfile::tempdir().unwrap();
    let net = Net::start(&tmp.path().join("devnet"), &["sender", "receiver"]);
    let s_cfg = cfg(&net, "sender");
    let (s, r) = (net.address("sender"), net.address("receiver"));
    let r_addr = format!("{r:?}");
    let balance = || {
        net.call(
            net.deployment.token,
            token::balance_of(r),
            token::decode_balance_of,
        )
    };
    let start = balance();

    // 1. crash after the record is journaled, before it is broadcast: the node never saw it
    let o = run(
        &["token", "transfer", &r_addr, "1", "-c", &s_cfg],
        &[("EDGE_AGENT_CRASH_AT", "after-journal")],
    );
    assert!(!o.status.success(), "the crash point aborts");
    assert_eq!(net.nonce(s), 0);
    // the next command broadcasts the journaled transaction first, then sends its own with the next nonce
    ok(&["token", "transfer", &r_addr, "2", "-c", &s_cfg]);
    assert_eq!(
        balance() - start,
        tokens(3),
        "the journaled transfer went out once, the new one after it"
    );
    assert_eq!(net.nonce(s), 2);

    // 2. kill -9 after the broadcast, while waiting for the receipt (nothing is mined meanwhile)
    net.set_automine(false);
    let mut child = std::process::Command::new(BIN)
        .args(["token", "transfer", &r_addr, "4", "-c", &s_cfg])
        .env("RUST_BACKTRACE", "0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(
        "the transfer in the node's pool",
        std::time::Duration::from_secs(60),
        || {
            let v = net
                .rpc
                .request("eth_getTransactionCount", serde_json::json!([s, "pending"]))
                .unwrap();
            v.as_str() == Some("0x3")
        },
    );
    child.kill().unwrap();
    child.wait().unwrap();
    net.set_automine(true);
    net.mine(1);
    // a restart finds the pending record, follows it to its receipt, and uses the next nonce
    ok(&["token", "transfer", &r_addr, "8", "-c", &s_cfg]);
    assert_eq!(balance() - start, tokens(15), "each transfer exactly once");
    let txs = net.transactions_from(s);
    assert_eq!(
        txs.iter().map(|t| t.0).collect::<Vec<_>>(),
        vec![0, 1, 2, 3],
        "{txs:?}"
    );
    assert!(txs.iter().all(|t| t.2));
    let st = ok(&["status", "-c", &s_cfg]);
    assert_eq!(
        st["pending_transactions"],
        serde_json::json!([]),
        "nothing left pending"
    );
}

#[test]
fn service_uri_published_read_by_others_and_refused_when_too_long() {
    const URI: &str = "http://203.0.113.7:8935";
    let tmp = tempfile::tempdir().unwrap();
    let net = Net::start(&tmp.path().join("devnet"), &["transcoder", "broadcaster"]);
    let (t_cfg, b_cfg) = (cfg(&net, "transcoder"), cfg(&net, "broadcaster"));
    let t = format!("{:?}", net.address("transcoder"));

    let own = ok(&["service-uri", "-c", &t_cfg]);
    assert_eq!(
        (own["address"].as_str(), own["service_uri"].as_str()),
        (Some(t.as_str()), Some(""))
    );
    let set = ok(&["service-uri", URI, "-c", &t_cfg]);
    assert_eq!(set["transactions"].as_array().unwrap().len(), 1, "{set}");
    let again = ok(&["service-uri", URI, "-c", &t_cfg]);
    assert_eq!(
        again["transactions"].as_array().unwrap().len(),
        0,
        "the same URI: nothing sent"
    );

    // a broadcaster finds the transcoder's box
    let other = ok(&["service-uri", "--address", &t, "-c", &b_cfg]);
    assert_eq!(other["service_uri"], URI);
    let o = run(&["service-uri", "--address", &t, "-c", &b_cfg], &[]);
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), format!("{URI} ({t})\n"));
    let o = run(&["service-uri", "-c", &b_cfg], &[]);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("none published"));

    let e = refused(&["service-uri", &"x".repeat(257), "-c", &t_cfg]);
    assert!(e.contains("at most 256"), "{e}");
    refused(&["service-uri", URI, "--address", &t, "-c", &t_cfg]);
    assert_eq!(ok(&["service-uri", "-c", &t_cfg])["service_uri"], URI);
}
