//! The swarm manifest: the JSON document a transcoder serves (`GET /swarm/{stream}`) that tells a viewer
//! which live swarms carry a stream's renditions and where to start looking for peers. Peers beyond these
//! come from PEX.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// One stream's swarms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwarmManifest {
    pub stream: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<u64>,
    /// Bytes per chunk and chunks per signed munro: every peer of these swarms uses them.
    pub chunk_size: u32,
    pub chunks_per_munro: u64,
    /// The broadcaster's swarm the transcoder reads the stream from, when it came over a swarm: a viewer
    /// spot-checks renditions against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceSwarm>,
    /// One live swarm per rendition, in the ladder's order.
    pub renditions: Vec<RenditionSwarm>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceSwarm {
    /// Live swarm id, hex (the broadcaster's Ed25519 public key behind the algorithm byte).
    pub swarm_id: String,
    pub peers: Vec<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenditionSwarm {
    /// Profile name (the HLS directory name).
    pub profile: String,
    /// Live swarm id, hex (the transcoder's key for this rendition).
    pub swarm_id: String,
    /// Where the transcoder serves it.
    pub peers: Vec<SocketAddr>,
}

/// Longest swarm id taken, in bytes (a live swarm's is 33: the algorithm byte and an Ed25519 key).
pub const MAX_SWARM_ID: usize = 64;

/// A hex swarm id (`0x` prefix optional) as bytes; at most [`MAX_SWARM_ID`] bytes.
pub fn parse_swarm_id(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    let hex = s.strip_prefix("0x").unwrap_or(s);
    if hex.len() > 2 * MAX_SWARM_ID {
        return Err(format!(
            "swarm id of {} characters: at most {MAX_SWARM_ID} bytes",
            hex.len()
        ));
    }
    hex::decode(hex).map_err(|e| format!("swarm id {s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swarm_ids_are_short_hex() {
        assert_eq!(parse_swarm_id(" 0x0fab "), Ok(vec![0x0f, 0xab]));
        assert!(parse_swarm_id("0xzz").is_err());
        // a peer's manifest (or a join request) cannot make us decode, nor echo back, a huge id
        let long = "ab".repeat(MAX_SWARM_ID + 1);
        let e = parse_swarm_id(&long).unwrap_err();
        assert!(e.len() < 100, "{e}");
        assert_eq!(
            parse_swarm_id(&"ab".repeat(MAX_SWARM_ID)).map(|v| v.len()),
            Ok(MAX_SWARM_ID)
        );
    }

    #[test]
    fn json_round_trip() {
        let m = SwarmManifest {
            stream: "cam1".into(),
            job_id: Some(3),
            chunk_size: 1024,
            chunks_per_munro: 16,
            source: None,
            renditions: vec![RenditionSwarm {
                profile: "P360p30fps16x9".into(),
                swarm_id: "0f01".into(),
                peers: vec!["127.0.0.1:4000".parse().unwrap()],
            }],
        };
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(
            text,
            r#"{"stream":"cam1","job_id":3,"chunk_size":1024,"chunks_per_munro":16,"renditions":[{"profile":"P360p30fps16x9","swarm_id":"0f01","peers":["127.0.0.1:4000"]}]}"#
        );
        assert_eq!(serde_json::from_str::<SwarmManifest>(&text).unwrap(), m);
        assert_eq!(parse_swarm_id("0x0f01").unwrap(), vec![15, 1]);
        assert!(parse_swarm_id("0xzz").is_err());
    }
}
