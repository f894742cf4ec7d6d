//! The cargo-fuzz targets (fuzz/fuzz_targets), run in the ordinary test build on hand-made seeds and seeded
//! mutations of them (see the fuzz-smoke crate). The coverage-guided campaign is `./x fuzz`.
#[path = "../fuzz/fuzz_targets/device_core.rs"]
mod device_core;
#[path = "../fuzz/fuzz_targets/documents.rs"]
mod documents;

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
    // the first byte picks the document: 0 desired, 1 command, 2 status, 3 telemetry, 4 reported, 5 result,
    // 6 topic, 7 log level
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    let mut add = |kind: u8, doc: &str| seeds.push([&[kind][..], doc.as_bytes()].concat());
    DESIRED.iter().for_each(|d| add(0, d));
    COMMANDS.iter().for_each(|c| add(1, c));
    add(
        2,
        r#"{"state":"online","ts_ms":5,"agent_version":"0.1.0","since_ms":1}"#,
    );
    add(3, r#"{"ts_ms":5,"streams":1,"cpu_percent":12.5}"#);
    add(4, r#"{"applied_version":3,"applied":{"session_limit":4}}"#);
    add(5, r#"{"id":"a","ok":true,"result":{}}"#);
    add(6, "fleet/box-1/cmd/req");
    add(7, "info,fleet=debug");
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
