//! A swarm manifest is fetched over HTTP from a transcoder (`GET /swarm/{stream}`, or a file): whatever it
//! holds, parsing must not panic, a swarm id in it must decode or be refused (never a huge allocation), and a
//! manifest that parses must serialize back to one that parses to the same value.
#![cfg_attr(fuzzing, no_main)]
use segment_swarm::manifest::{MAX_SWARM_ID, SwarmManifest, parse_swarm_id};

fn swarm_id(s: &str) {
    if let Ok(id) = parse_swarm_id(s) {
        assert!(id.len() <= MAX_SWARM_ID);
    }
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

/// The target's body; also run by the crate's tests (tests/fuzz_targets.rs).
pub fn run(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        swarm_id(s);
    }
    let Ok(m) = serde_json::from_slice::<SwarmManifest>(data) else {
        return;
    };
    for r in &m.renditions {
        swarm_id(&r.swarm_id);
    }
    if let Some(s) = &m.source {
        swarm_id(&s.swarm_id);
    }
    let again: SwarmManifest =
        serde_json::from_slice(&serde_json::to_vec(&m).expect("a manifest serializes"))
            .expect("a serialized manifest parses");
    assert_eq!(again, m);
}
