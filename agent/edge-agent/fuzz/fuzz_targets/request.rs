//! What the HTTP ingest reads from a request (`src/request.rs`: path segments, the `X-Job-Id` and
//! `X-Broadcaster-Signature` headers, the `POST /swarm/join` body) comes from anyone who reaches the port.
//! Nothing may panic; a path that is accepted stays below its base; what is accepted is what it says.
//! The first byte picks the part; the rest is the input.
#![cfg_attr(fuzzing, no_main)]
use std::path::{Component, Path};

#[allow(dead_code)]
#[path = "../../src/request.rs"]
mod request;

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

/// The target's body; also run by the crate's tests (tests/fuzz_targets.rs).
pub fn run(data: &[u8]) {
    let Some((&what, input)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(input);
    match what % 5 {
        0 => {
            if request::valid_stream_id(&text) {
                assert!(!text.is_empty() && text.len() <= request::MAX_STREAM_ID);
                assert!(!text.contains(['/', '.', '\\']));
            }
        }
        1 => {
            if let Some(seq) = request::segment_seq(&text) {
                assert_eq!(
                    text.trim_end_matches(".ts").trim_start_matches('0'),
                    if seq == 0 {
                        String::new()
                    } else {
                        seq.to_string()
                    }
                );
            }
        }
        2 => {
            if let Ok(Some(id)) = request::job_id_header(Some(input)) {
                let s = std::str::from_utf8(input).expect("a job id is text");
                assert_eq!(s.trim().parse::<u64>(), Ok(id));
            }
            if let Some(s) = request::signature_header(Some(input)) {
                assert_eq!(s.as_bytes(), input);
            }
        }
        3 => {
            let base = Path::new("/data/hls/s");
            if let Some(p) = request::safe_join(base, &text) {
                let rest = p.strip_prefix(base).expect("stays below its base");
                assert!(rest.components().all(
                    |c| matches!(c, Component::Normal(n) if !n.to_string_lossy().starts_with('.'))
                ));
            }
        }
        _ => {
            if let Ok((req, id)) = request::parse_join(input) {
                assert!(request::valid_stream_id(&req.stream));
                assert!((1..=request::MAX_JOIN_PEERS).contains(&req.peers.len()));
                assert!(id.len() <= segment_swarm::manifest::MAX_SWARM_ID);
                // what the daemon accepts, the broadcaster's side writes the same way
                let again = serde_json::to_vec(&req).expect("serializes");
                assert_eq!(request::parse_join(&again).map(|(r, _)| r), Ok(req));
            }
        }
    }
}
