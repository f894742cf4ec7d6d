//! The device's protocol rules (`fleet::core::Core`, sans-IO) fed a sequence of inbound publishes: desired
//! documents and commands with any payload and response topic, apply results and command completions in
//! any order. Nothing may panic; what the device publishes must parse; the applied version never goes back.
//!
//! Input: messages separated by 0xFF (never in UTF-8 text). A message's first byte says what it is:
//! bit 0: a command (else a desired document); bit 1: the command's response topic is the payload's first
//! line (else the requester's usual one); bit 2: finish the oldest running command first; bit 3: the next
//! config apply fails.
#![cfg_attr(fuzzing, no_main)]
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fleet::core::{Action, Core, Inbound, Limits, Persisted};
use fleet::proto::{CommandResult, ReportedDoc};
use fleet::topics;

const ID: &str = "box-1";

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

/// The target's body; also run by the crate's tests (tests/fuzz_targets.rs).
pub fn run(data: &[u8]) {
    let mut core = Core::new(
        ID.into(),
        "0.0.0".into(),
        BTreeMap::new(),
        Limits {
            max_payload_bytes: 2048,
            result_cache: 4,
            telemetry_buffer: 2,
            heartbeat: Duration::from_secs(10),
            telemetry_interval: Duration::from_secs(30),
        },
        Persisted::default(),
    );
    let now = Instant::now();
    let mut actions: VecDeque<Action> = core.connected_event(now, 1).into();
    let mut running: VecDeque<(String, &'static str)> = VecDeque::new();
    let mut applied = 0;
    for (i, msg) in data.split(|b| *b == 0xFF).enumerate() {
        let now_ms = 2 + i as u64;
        let Some((&what, payload)) = msg.split_first() else {
            continue;
        };
        let fail_apply = what & 8 != 0;
        if what & 4 != 0
            && let Some((id, name)) = running.pop_front()
        {
            actions.extend(core.command_done(now_ms, &id, name, Ok(serde_json::json!({}))));
        }
        let m = if what & 1 != 0 {
            let (response_topic, payload) = if what & 2 != 0 {
                let mut parts = payload.splitn(2, |b| *b == b'\n');
                let t = parts.next().unwrap_or_default();
                (
                    Some(String::from_utf8_lossy(t).into_owned()),
                    parts.next().unwrap_or_default(),
                )
            } else {
                (Some(topics::cmd_response(ID, "op")), payload)
            };
            Inbound {
                topic: topics::cmd_request(ID),
                payload: Bytes::copy_from_slice(payload),
                response_topic,
                correlation: Some(Bytes::from_static(b"c")),
            }
        } else {
            Inbound {
                topic: topics::desired(ID),
                payload: Bytes::copy_from_slice(payload),
                ..Default::default()
            }
        };
        actions.extend(core.message(now_ms, m));
        while let Some(a) = actions.pop_front() {
            match a {
                Action::Publish(o) => {
                    if o.topic == topics::reported(ID) {
                        let r: ReportedDoc =
                            serde_json::from_slice(&o.payload).expect("reported parses");
                        assert!(r.applied_version >= applied);
                        applied = r.applied_version;
                    } else if o.topic.starts_with(&topics::cmd_response_prefix(ID))
                        || o.topic == topics::cmd_response_default(ID)
                    {
                        let _: CommandResult =
                            serde_json::from_slice(&o.payload).expect("result parses");
                    }
                }
                Action::ApplyConfig { version, config } => {
                    fleet::validate::runtime_config(&config).expect("only valid configs apply");
                    let r = if fail_apply {
                        Err("refused".to_string())
                    } else {
                        Ok(())
                    };
                    actions.extend(core.config_applied(now_ms, version, config, r));
                }
                Action::RunCommand { id, command } => {
                    let name = match command {
                        fleet::proto::Command::Ping => "ping",
                        _ => "other",
                    };
                    running.push_back((id, name));
                }
                Action::Subscribe(_) | Action::Persist => {}
            }
        }
        assert!(running.len() <= fleet::core::MAX_IN_FLIGHT);
        let _ = core.persisted();
    }
}
