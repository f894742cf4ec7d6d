use super::*;

fn spec() -> RolloutSpec {
    RolloutSpec {
        selector: "label.site=ams".into(),
        config: Some(RuntimeConfig {
            session_limit: Some(4),
            ..Default::default()
        }),
        image: None,
        rollback_image: None,
        canary: 2,
        waves: vec![50],
        soak_s: 10,
        report_timeout_s: 30,
        max_failure_ratio: 0.25,
        auto_rollback: false,
    }
}

fn init(n: usize) -> Vec<TargetInit> {
    (0..n)
        .map(|i| TargetInit {
            device: format!("box-{i:02}"),
            previous: Some(DesiredDoc {
                version: 1,
                config: RuntimeConfig {
                    session_limit: Some(2),
                    ..Default::default()
                },
            }),
            next_version: 2,
            reported_version: 1,
            online: true,
            image_version: None,
            update_ts_ms: 0,
        })
        .collect()
}

fn devices(a: &[Action]) -> Vec<String> {
    a.iter().map(|a| a.device().to_string()).collect()
}

fn docs(a: &[Action]) -> Vec<&DesiredDoc> {
    a.iter()
        .map(|a| match a {
            Action::Publish { doc, .. } => doc,
            other => panic!("not a publication: {other:?}"),
        })
        .collect()
}

fn applied(r: &mut Rollout, d: &str, v: u64, now: u64) {
    r.on_event(
        &Event::Reported {
            device: d.into(),
            applied_version: v,
            refused: None,
        },
        now,
    );
}

#[test]
fn wave_sizes_cover_every_target_once() {
    assert_eq!(wave_sizes(20, 5, &[25, 50]), vec![5, 5, 10]);
    assert_eq!(wave_sizes(20, 5, &[10]), vec![5, 15]);
    assert_eq!(wave_sizes(3, 5, &[50]), vec![3]);
    assert_eq!(wave_sizes(1, 0, &[]), vec![1]);
    assert_eq!(wave_sizes(0, 1, &[50]), Vec::<usize>::new());
    for n in 0..50 {
        assert_eq!(wave_sizes(n, 3, &[10, 30, 90]).iter().sum::<usize>(), n);
    }
}

#[test]
fn waves_advance_after_report_and_soak() {
    let mut r = Rollout::new("r".into(), spec(), init(8), 0);
    assert_eq!(r.waves, 3); // 2, then up to 4 (50%), then the rest
    let a = r.poll(0);
    assert_eq!(devices(&a), ["box-00", "box-01"]);
    assert!(matches!(&a[0], Action::Publish { doc, .. } if doc.version == 2));
    assert!(r.poll(1000).is_empty(), "nothing sent twice");
    applied(&mut r, "box-00", 2, 1000);
    assert!(r.poll(2000).is_empty());
    applied(&mut r, "box-01", 2, 3000);
    assert!(r.poll(3000).is_empty(), "soak starts");
    assert!(r.poll(12_999).is_empty(), "still soaking");
    assert_eq!(devices(&r.poll(13_000)), ["box-02", "box-03"]);
    assert_eq!(r.wave, 1);
    for d in ["box-02", "box-03"] {
        applied(&mut r, d, 2, 14_000);
    }
    r.poll(14_000);
    assert_eq!(devices(&r.poll(24_000)).len(), 4);
    for d in ["box-04", "box-05", "box-06", "box-07"] {
        applied(&mut r, d, 2, 25_000);
    }
    r.poll(25_000);
    r.poll(35_000);
    assert_eq!(r.phase, Phase::Completed);
    assert_eq!(r.failed().count(), 0);
}

#[test]
fn refusals_halt_the_wave_and_rollback_restores_the_old_config() {
    let mut s = spec();
    s.canary = 5;
    s.waves = vec![50];
    s.max_failure_ratio = 0.2;
    let mut r = Rollout::new("r".into(), s, init(20), 0);
    assert_eq!(devices(&r.poll(0)).len(), 5);
    for d in ["box-00", "box-02", "box-04"] {
        r.on_event(
            &Event::Reported {
                device: d.into(),
                applied_version: 1,
                refused: Some((Some(2), "session_limit 4 above 2".into())),
            },
            500,
        );
    }
    applied(&mut r, "box-01", 2, 600);
    assert!(r.poll(1000).is_empty());
    assert_eq!(r.phase, Phase::Halted);
    let failed: Vec<_> = r.failed().map(|(d, _)| d).collect();
    assert_eq!(failed, ["box-00", "box-02", "box-04"]);
    assert!(r.failed().all(|(_, why)| why.contains("session_limit 4")));
    assert!(r.note.as_deref().unwrap().contains("3 of 5"));
    // halted: time passes, nothing more goes out
    assert!(r.poll(1_000_000).is_empty());
    assert!(
        r.targets
            .iter()
            .filter(|t| t.wave > 0)
            .all(|t| t.state == TargetState::Waiting)
    );

    let a = r.request_rollback(2000).unwrap();
    assert_eq!(
        devices(&a),
        ["box-00", "box-01", "box-02", "box-03", "box-04"]
    );
    for doc in docs(&a) {
        assert_eq!(doc.version, 3, "above the refused/applied version 2");
        assert_eq!(doc.config.session_limit, Some(2), "the previous config");
    }
    assert_eq!(r.phase, Phase::RollingBack);
    for d in ["box-00", "box-01", "box-02", "box-03", "box-04"] {
        applied(&mut r, d, 3, 2500);
    }
    r.poll(3000);
    assert_eq!(r.phase, Phase::RolledBack);
    assert!(r.request_rollback(4000).is_err());
}

#[test]
fn offline_and_silent_boxes_fail_and_tolerated_failures_pass() {
    let mut s = spec();
    s.canary = 4;
    s.waves = vec![];
    s.max_failure_ratio = 0.5;
    let mut t = init(6);
    t[3].online = false;
    let mut r = Rollout::new("r".into(), s, t, 0);
    r.poll(0);
    applied(&mut r, "box-00", 2, 100);
    r.on_event(
        &Event::Presence {
            device: "box-01".into(),
            online: false,
        },
        200,
    );
    r.poll(300);
    let failed: Vec<_> = r.failed().collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed[1].1.contains("offline when its wave started"));
    assert_eq!(r.phase, Phase::Running, "2 of 4 is not more than 50%");
    // box-02 never answers
    r.poll(29_999);
    assert_eq!(r.phase, Phase::Running);
    r.poll(30_000);
    assert_eq!(r.phase, Phase::Halted);
    assert!(
        r.failed()
            .any(|(d, why)| d == "box-02" && why.contains("within 30 s"))
    );
    // the operator accepts the failures: the next wave goes out after the soak
    r.resume(31_000).unwrap();
    assert!(r.poll(31_000).is_empty());
    assert_eq!(devices(&r.poll(41_000)), ["box-04", "box-05"]);
}

#[test]
fn pause_holds_timeouts_and_abort_stops() {
    let mut r = Rollout::new("r".into(), spec(), init(4), 0);
    r.poll(0);
    r.pause().unwrap();
    assert!(r.poll(100_000).is_empty());
    assert_eq!(r.phase, Phase::Paused);
    r.resume(100_000).unwrap();
    r.poll(100_001);
    assert_eq!(r.phase, Phase::Running, "pause time did not count");
    assert!(r.pause().is_ok() && r.pause().is_err());
    r.abort().unwrap();
    assert!(r.poll(1_000_000).is_empty());
    assert!(r.resume(0).is_err());
}

#[test]
fn auto_rollback_and_state_round_trips() {
    let mut s = spec();
    s.auto_rollback = true;
    s.max_failure_ratio = 0.0;
    let mut r = Rollout::new("r".into(), s, init(3), 0);
    r.poll(0);
    r.on_event(
        &Event::Reported {
            device: "box-01".into(),
            applied_version: 1,
            refused: Some((Some(2), "no".into())),
        },
        10,
    );
    let a = r.poll(20);
    assert_eq!(r.phase, Phase::RollingBack);
    assert_eq!(devices(&a), ["box-00", "box-01"]);
    let json = serde_json::to_string(&r).unwrap();
    let back: Rollout = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
}

fn bundle(version: &str) -> UpdateRequest {
    UpdateRequest {
        url: Some(format!("https://updates.example/edge-{version}.raucb")),
        swarm: None,
        peers: None,
        sha256: "ab".repeat(32),
        version: version.into(),
    }
}

fn image_spec() -> RolloutSpec {
    RolloutSpec {
        config: None,
        image: Some(bundle("2.0")),
        rollback_image: Some(bundle("1.0")),
        canary: 1,
        waves: vec![50],
        report_timeout_s: 600,
        max_failure_ratio: 0.0,
        ..spec()
    }
}

fn image_init(n: usize) -> Vec<TargetInit> {
    init(n)
        .into_iter()
        .map(|t| TargetInit {
            image_version: Some("1.0".into()),
            ..t
        })
        .collect()
}

fn image(
    r: &mut Rollout,
    d: &str,
    running: &str,
    update: Option<(&str, UpdateState, u64)>,
    now: u64,
) {
    r.on_event(
        &Event::Image {
            device: d.into(),
            version: Some(running.into()),
            update: update.map(|(version, state, ts_ms)| UpdateStatus {
                version: version.into(),
                state,
                slot: Some("B".into()),
                progress: None,
                detail: Some("slot B failed its health gate".into()),
                ts_ms,
            }),
        },
        now,
    );
}

fn answer(r: &mut Rollout, d: &str, id: &str, error: Option<&str>, now: u64) {
    r.on_event(
        &Event::Answer {
            device: d.into(),
            result: CommandResult {
                id: Some(id.into()),
                name: Some("update".into()),
                ok: error.is_none(),
                result: error.is_none().then(|| serde_json::json!({"slot": "B"})),
                error: error.map(str::to_string),
                ts_ms: now,
                duplicate: false,
            },
        },
        now,
    );
}

fn commands(a: &[Action]) -> Vec<(&str, &CommandRequest)> {
    a.iter()
        .map(|a| match a {
            Action::Command {
                device, request, ..
            } => (device.as_str(), request),
            other => panic!("not a command: {other:?}"),
        })
        .collect()
}

#[test]
fn an_image_wave_passes_once_its_boxes_run_the_image_past_their_health_gate() {
    let mut init = image_init(4);
    init[1].image_version = Some("2.0".into()); // already there: nothing to send
    let mut r = Rollout::new("7".into(), image_spec(), init, 0);
    assert_eq!(r.waves, 3); // 1, then up to 2 (50%), then the rest
    let a = r.poll(0);
    let c = commands(&a);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].0, "box-00");
    assert_eq!(c[0].1.id, "rollout-7-update-box-00");
    assert_eq!(c[0].1.name, "update");
    let args: UpdateRequest = serde_json::from_value(c[0].1.args.clone()).unwrap();
    assert_eq!(args, bundle("2.0"));
    assert!(matches!(&a[0], Action::Command { expiry_s: 600, .. }));

    answer(&mut r, "box-00", "rollout-7-update-box-00", None, 10_000);
    assert_eq!(r.targets[0].answer, Some(serde_json::json!({"slot": "B"})));
    // it reboots: offline is no failure while the image is on its way
    r.on_event(
        &Event::Presence {
            device: "box-00".into(),
            online: false,
        },
        20_000,
    );
    image(
        &mut r,
        "box-00",
        "2.0",
        Some(("2.0", UpdateState::Booted, 30_000)),
        30_000,
    );
    assert!(
        matches!(r.targets[0].state, TargetState::Sent { .. }),
        "its gate has not decided"
    );
    image(
        &mut r,
        "box-00",
        "2.0",
        Some(("2.0", UpdateState::Succeeded, 40_000)),
        40_000,
    );
    assert!(matches!(r.targets[0].state, TargetState::Applied { .. }));
    assert!(r.poll(40_000).is_empty(), "soak starts");
    // wave 2: box-01 runs 2.0 already
    let a = r.poll(50_000);
    assert!(a.is_empty(), "{a:?}");
    assert!(matches!(r.targets[1].state, TargetState::Applied { .. }));
    assert_eq!(r.wave, 1);
    r.poll(50_000);
    let a = r.poll(60_000);
    assert_eq!(devices(&a), ["box-02", "box-03"]);
    // a config report says nothing of an image
    applied(&mut r, "box-02", 99, 61_000);
    assert!(matches!(r.targets[2].state, TargetState::Sent { .. }));
    assert_eq!(r.failed().count(), 0);
}

#[test]
fn a_box_whose_health_gate_rolled_the_image_back_halts_the_rollout_and_rollback_counts_it_home() {
    let mut init = image_init(3);
    // an earlier attempt at 2.0 on box-01 failed: that old status must not fail this rollout's try
    init[1].update_ts_ms = 500;
    let mut s = image_spec();
    s.canary = 2;
    let mut r = Rollout::new("8".into(), s, init, 1000);
    assert_eq!(devices(&r.poll(1000)), ["box-00", "box-01"]);
    image(
        &mut r,
        "box-01",
        "1.0",
        Some(("2.0", UpdateState::RolledBack, 500)),
        2000,
    );
    assert!(
        matches!(r.targets[1].state, TargetState::Sent { .. }),
        "stale status"
    );
    image(
        &mut r,
        "box-01",
        "2.0",
        Some(("2.0", UpdateState::Succeeded, 3000)),
        3000,
    );
    assert!(matches!(r.targets[1].state, TargetState::Applied { .. }));
    image(
        &mut r,
        "box-00",
        "1.0",
        Some(("2.0", UpdateState::RolledBack, 4000)),
        4000,
    );
    let reason = match &r.targets[0].state {
        TargetState::Failed { reason, .. } => reason.clone(),
        s => panic!("box-00: {s:?}"),
    };
    assert!(reason.contains("update to 2.0 rolled back"), "{reason}");
    assert!(reason.contains("health gate"), "{reason}");
    r.poll(4000);
    assert_eq!(r.phase, Phase::Halted);
    assert!(
        r.targets[2].state == TargetState::Waiting,
        "the next wave never started"
    );

    let a = r.request_rollback(5000).unwrap();
    // box-00 is back on 1.0 by itself; box-01 gets the rollback bundle
    assert!(matches!(r.targets[0].state, TargetState::RolledBack { .. }));
    let c = commands(&a);
    assert_eq!(c.len(), 1);
    assert_eq!(
        (c[0].0, c[0].1.id.as_str()),
        ("box-01", "rollout-8-rollback-box-01")
    );
    let args: UpdateRequest = serde_json::from_value(c[0].1.args.clone()).unwrap();
    assert_eq!(args, bundle("1.0"));
    r.poll(5000);
    assert_eq!(r.phase, Phase::RollingBack);
    image(
        &mut r,
        "box-01",
        "1.0",
        Some(("1.0", UpdateState::Succeeded, 6000)),
        6000,
    );
    r.poll(6000);
    assert_eq!(r.phase, Phase::RolledBack);
}

#[test]
fn a_refused_update_fails_its_box_and_a_silent_one_times_out() {
    let mut s = image_spec();
    s.canary = 2;
    s.max_failure_ratio = 1.0;
    s.report_timeout_s = 300;
    let mut r = Rollout::new("9".into(), s, image_init(2), 0);
    r.poll(0);
    answer(&mut r, "box-00", "another-command", Some("busy"), 100);
    assert!(
        matches!(r.targets[0].state, TargetState::Sent { .. }),
        "not ours"
    );
    answer(
        &mut r,
        "box-00",
        "rollout-9-update-box-00",
        Some("SHA-256 mismatch"),
        200,
    );
    match &r.targets[0].state {
        TargetState::Failed { reason, .. } => {
            assert_eq!(reason, "refused the update: SHA-256 mismatch")
        }
        s => panic!("box-00: {s:?}"),
    }
    assert_eq!(
        r.targets[0].answer,
        Some(serde_json::json!({"error": "SHA-256 mismatch"}))
    );
    r.poll(299_999);
    assert!(matches!(r.targets[1].state, TargetState::Sent { .. }));
    r.poll(300_000);
    match &r.targets[1].state {
        TargetState::Failed { reason, .. } => {
            assert_eq!(reason, "did not report image 2.0 within 300 s")
        }
        s => panic!("box-01: {s:?}"),
    }
}

#[test]
fn an_image_spec_is_checked() {
    assert!(image_spec().check().is_ok());
    let both = RolloutSpec {
        config: spec().config,
        ..image_spec()
    };
    assert!(both.check().unwrap_err().contains("not both"));
    let neither = RolloutSpec {
        image: None,
        rollback_image: None,
        ..image_spec()
    };
    assert!(neither.check().is_err());
    let auto = RolloutSpec {
        rollback_image: None,
        auto_rollback: true,
        ..image_spec()
    };
    assert!(auto.check().unwrap_err().contains("rollback_image"));
    let same = RolloutSpec {
        rollback_image: Some(bundle("2.0")),
        ..image_spec()
    };
    assert!(same.check().is_err());
    let mut bad = image_spec();
    bad.image.as_mut().unwrap().sha256 = "xyz".into();
    assert!(bad.check().is_err());
    // without a rollback image, rollback is refused with a reason
    let mut r = Rollout::new(
        "10".into(),
        RolloutSpec {
            rollback_image: None,
            ..image_spec()
        },
        image_init(1),
        0,
    );
    r.poll(0);
    assert!(
        r.request_rollback(1)
            .unwrap_err()
            .contains("rollback_image")
    );
}
