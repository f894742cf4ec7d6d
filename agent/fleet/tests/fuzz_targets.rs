//! The cargo-fuzz targets (fuzz/fuzz_targets), run in the ordinary test build on hand-made seeds and seeded
//! mutations of them (see the fuzz-smoke crate). The coverage-guided campaign is `./x fuzz`.
#[path = "../fuzz/fuzz_targets/device_core.rs"]
mod device_core;
#[path = "../fuzz/fuzz_targets/documents.rs"]
mod documents;

use fleet::proto::{
    CommandRequest, CommandResult, DaemonSnapshot, DesiredDoc, ReportedDoc, Status, SystemStats,
    Telemetry,
};
use fuzz_smoke::Smoke;

const DESIRED: &[&str] = &[
    r#"{"version":3,"config":{"session_limit":4}}"#,
    r#"{"version":9,"config":{"log_level":"info,fleet=debug","encoder":"nvenc","maintenance_window":"23:30-01:00"}}"#,
    r#"{"version":2,"config":{}}"#,
];
const COMMANDS: &[&str] = &[
    r#"{"id":"a","name":"ping"}"#,
    r#"{"id":"c","name":"set_log_level","args":{"level":"debug"}}"#,
    r#"{"id":"u","name":"update","args":{"url":"https://example.invalid/b.raucb","sha256":"00","version":"1.2.0"}}"#,
];

#[test]
fn documents_on_every_kind_of_fleet_document_and_their_mutants() {
    let telemetry = Telemetry {
        device: "box-1".into(),
        seq: 7,
        ts_ms: 5,
        agent_version: "0.1.0".into(),
        agent_uptime_s: 60,
        config_version: Some(3),
        labels: [("site".to_string(), "lab".to_string())].into(),
        daemon: DaemonSnapshot::default(),
        system: SystemStats::default(),
    };
    let result = CommandResult {
        id: Some("a".into()),
        name: Some("ping".into()),
        ok: true,
        result: Some(serde_json::json!({ "pong": true })),
        error: None,
        ts_ms: 5,
        duplicate: false,
    };
    // the first byte picks the document: 0 desired, 1 command, 2 status, 3 telemetry, 4 reported, 5 result,
    // 6 topic, 7 log level
    let mut seeds: Vec<(u8, String)> = Vec::new();
    seeds.extend(DESIRED.iter().map(|d| (0, d.to_string())));
    seeds.extend(COMMANDS.iter().map(|c| (1, c.to_string())));
    seeds.push((
        2,
        r#"{"state":"online","ts_ms":5,"agent_version":"0.1.0","since_ms":1}"#.into(),
    ));
    seeds.push((3, serde_json::to_string(&telemetry).unwrap()));
    seeds.push((
        4,
        r#"{"applied_version":3,"applied":{"session_limit":4},"ts_ms":5}"#.into(),
    ));
    seeds.push((5, serde_json::to_string(&result).unwrap()));
    seeds.push((6, "fleet/box-1/cmd/req".into()));
    seeds.push((7, "info,fleet=debug".into()));
    // each document seed is one its reader takes, so that the mutants start deep inside it
    for (kind, doc) in &seeds {
        let ok = match kind {
            0 => serde_json::from_str::<DesiredDoc>(doc).is_ok(),
            1 => serde_json::from_str::<CommandRequest>(doc).is_ok(),
            2 => serde_json::from_str::<Status>(doc).is_ok(),
            3 => serde_json::from_str::<Telemetry>(doc).is_ok(),
            4 => serde_json::from_str::<ReportedDoc>(doc).is_ok(),
            5 => serde_json::from_str::<CommandResult>(doc).is_ok(),
            _ => true,
        };
        assert!(ok, "seed {kind} does not parse: {doc}");
    }
    let seeds: Vec<Vec<u8>> = seeds
        .iter()
        .map(|(k, d)| [&[*k][..], d.as_bytes()].concat())
        .collect();
    Smoke::new(env!("CARGO_MANIFEST_DIR"), "documents")
        .runs(50_000)
        .check(&seeds, documents::run);
}

#[test]
fn device_core_on_sequences_of_desired_documents_and_commands_and_their_mutants() {
    // messages separated by 0xff; first byte: 1 command, 2 its response topic on the first line, 4 finish the
    // oldest running command first, 8 the next apply fails
    let seq = |msgs: &[(u8, &str)]| -> Vec<u8> {
        let parts: Vec<Vec<u8>> = msgs
            .iter()
            .map(|(w, m)| [&[*w][..], m.as_bytes()].concat())
            .collect();
        parts.join(&0xff)
    };
    let seeds = vec![
        seq(&[
            (0, DESIRED[0]),
            (1, COMMANDS[0]),
            (5, COMMANDS[1]),
            (8, DESIRED[1]),
            (0, DESIRED[2]),
        ]),
        seq(&[
            (3, &format!("fleet/box-1/cmd/resp/x\n{}", COMMANDS[2])),
            (1, COMMANDS[0]),
            (1, COMMANDS[0]),
            (4, DESIRED[1]),
        ]),
    ];
    Smoke::new(env!("CARGO_MANIFEST_DIR"), "device_core")
        .runs(20_000)
        .check(&seeds, device_core::run);
}
