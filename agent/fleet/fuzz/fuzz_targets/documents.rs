//! The fleet's MQTT documents come from the broker: the device reads desired configs and commands that an
//! operator (or anyone holding the operator's certificate) wrote, the operator reads what devices publish.
//! None of them may make the reader panic. The first byte picks the document; the rest is the payload.
//! Documents without floating-point fields must survive serialization unchanged.
#![cfg_attr(fuzzing, no_main)]
use fleet::proto::{
    Command, CommandRequest, CommandResult, DesiredDoc, ReportedDoc, Status, Telemetry,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(doc: &T) {
    let again: T = serde_json::from_slice(&serde_json::to_vec(doc).expect("serializes"))
        .expect("what serializes parses");
    assert_eq!(&again, doc);
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

/// The target's body; also run by the crate's tests (tests/fuzz_targets.rs).
pub fn run(data: &[u8]) {
    let Some((&kind, payload)) = data.split_first() else {
        return;
    };
    match kind % 8 {
        // device side: fleet/{id}/config/desired
        0 => {
            if let Ok(d) = serde_json::from_slice::<DesiredDoc>(payload) {
                let _ = fleet::validate::runtime_config(&d.config);
                round_trip(&d);
            }
        }
        // device side: fleet/{id}/cmd/req
        1 => {
            if let Ok(r) = serde_json::from_slice::<CommandRequest>(payload) {
                if let Ok(Command::SetLogLevel { level }) = Command::parse(&r.name, &r.args) {
                    assert!(fleet::validate::log_level(&level).is_ok());
                }
                let _ = serde_json::to_vec(&r).expect("serializes");
            }
        }
        // operator side: fleet/{id}/status, telemetry, config/reported, cmd/resp
        2 => {
            if let Ok(s) = serde_json::from_slice::<Status>(payload) {
                round_trip(&s);
            }
        }
        3 => {
            if let Ok(t) = serde_json::from_slice::<Telemetry>(payload) {
                let _ = serde_json::to_vec(&t).expect("serializes");
            }
        }
        4 => {
            if let Ok(r) = serde_json::from_slice::<ReportedDoc>(payload) {
                round_trip(&r);
            }
        }
        5 => {
            if let Ok(r) = serde_json::from_slice::<CommandResult>(payload) {
                let _ = serde_json::to_vec(&r).expect("serializes");
            }
        }
        // topic names as the broker delivers them
        6 => {
            let t = String::from_utf8_lossy(payload);
            if let Some((id, _)) = fleet::topics::parse(&t) {
                assert!(t.contains(id));
            }
            let _ = fleet::topics::valid_device_id(&t);
        }
        // a log level directive (set_log_level, desired log_level)
        _ => {
            let _ = fleet::validate::log_level(&String::from_utf8_lossy(payload));
        }
    }
}
