//! What the HTTP ingest reads from a request before anything else happens: path segments (stream id, segment
//! name, files below a directory), the `X-Job-Id` and `X-Broadcaster-Signature` headers, and the JSON body of
//! `POST /swarm/join`. Pure functions over bytes and strings: no I/O, no daemon state, so that they can be
//! fuzzed on their own.
//!
//! This module depends on std, serde and `segment_swarm::manifest` only: the fuzz crate (`../fuzz`) compiles
//! this very file as its own module (the binary crate is not reachable from it). Keep it that way.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Longest stream id.
pub const MAX_STREAM_ID: usize = 64;
/// Most peers a join request may name.
pub const MAX_JOIN_PEERS: usize = 16;

/// A stream id: 1 to [`MAX_STREAM_ID`] characters of `[A-Za-z0-9_-]` (it names directories and swarms).
pub fn valid_stream_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_STREAM_ID
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The sequence number of a segment named `{seq}.ts` (decimal digits only: no sign, no spaces).
pub fn segment_seq(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".ts")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The `X-Job-Id` header: absent (`Ok(None)`), a decimal job number (surrounding spaces allowed), or an
/// error for anything else.
pub fn job_id_header(value: Option<&[u8]>) -> Result<Option<u64>, ()> {
    let Some(v) = value else {
        return Ok(None);
    };
    let s = std::str::from_utf8(v).map_err(|_| ())?.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    s.parse().map(Some).map_err(|_| ())
}

/// The `X-Broadcaster-Signature` header as text (the job gate decodes and checks it); a value that is not
/// visible ASCII counts as absent.
pub fn signature_header(value: Option<&[u8]>) -> Option<&str> {
    let v = value?;
    if !v
        .iter()
        .all(|b| b.is_ascii_graphic() || *b == b' ' || *b == b'\t')
    {
        return None;
    }
    std::str::from_utf8(v).ok()
}

/// Joins a URL path below `base`, refusing anything that could leave it (or name a hidden file).
pub fn safe_join(base: &Path, rel: &str) -> Option<PathBuf> {
    let mut out = base.to_path_buf();
    for part in rel.split('/') {
        if part.is_empty()
            || part == "."
            || part == ".."
            || part.contains('\\')
            || part.contains('\0')
            || part.starts_with('.')
        {
            return None;
        }
        out.push(part);
    }
    Some(out)
}

/// What a broadcaster posts to `/swarm/join`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// Stream id: records for another stream are refused.
    pub stream: String,
    /// The on-chain job the segments belong to (each record may name it too).
    #[serde(default)]
    pub job_id: Option<u64>,
    /// The broadcaster's live swarm id, hex.
    pub swarm_id: String,
    /// Where to find it.
    pub peers: Vec<SocketAddr>,
}

impl JoinRequest {
    /// Checks what the request names (the stream id, the swarm id, 1 to [`MAX_JOIN_PEERS`] peers); answers
    /// the decoded swarm id, or why the request is refused.
    pub fn validate(&self) -> Result<Vec<u8>, String> {
        if !valid_stream_id(&self.stream) {
            return Err(format!(
                "stream id must be 1-{MAX_STREAM_ID} characters of [A-Za-z0-9_-]"
            ));
        }
        let id = segment_swarm::manifest::parse_swarm_id(&self.swarm_id)?;
        if self.peers.is_empty() || self.peers.len() > MAX_JOIN_PEERS {
            return Err(format!("give 1 to {MAX_JOIN_PEERS} peers"));
        }
        Ok(id)
    }
}

/// A join request's JSON body, checked ([`JoinRequest::validate`]): the request and its swarm id.
pub fn parse_join(body: &[u8]) -> Result<(JoinRequest, Vec<u8>), String> {
    let req: JoinRequest = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let id = req.validate()?;
    Ok((req, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_and_paths_are_confined() {
        assert!(valid_stream_id("cam-1_A"));
        assert!(!valid_stream_id(""));
        assert!(!valid_stream_id("../etc"));
        assert!(!valid_stream_id(&"a".repeat(65)));
        let base = Path::new("/data/hls/s");
        assert_eq!(
            safe_join(base, "P360p30fps16x9/3.ts"),
            Some(PathBuf::from("/data/hls/s/P360p30fps16x9/3.ts"))
        );
        for bad in ["../x", "a/../../b", "", "a//b", ".hidden", "a\\b", "a\0b"] {
            assert_eq!(safe_join(base, bad), None, "{bad}");
        }
    }

    #[test]
    fn segment_names_are_plain_decimal() {
        assert_eq!(segment_seq("0.ts"), Some(0));
        assert_eq!(segment_seq("0042.ts"), Some(42));
        assert_eq!(segment_seq("18446744073709551615.ts"), Some(u64::MAX));
        for bad in [
            ".ts",
            "+1.ts",
            "-1.ts",
            " 1.ts",
            "1.TS",
            "1",
            "18446744073709551616.ts",
        ] {
            assert_eq!(segment_seq(bad), None, "{bad}");
        }
    }

    #[test]
    fn job_id_and_signature_headers() {
        assert_eq!(job_id_header(None), Ok(None));
        assert_eq!(job_id_header(Some(b" 7 ")), Ok(Some(7)));
        for bad in [&b""[..], b"+7", b"x", b"\xff", b"99999999999999999999"] {
            assert_eq!(job_id_header(Some(bad)), Err(()), "{bad:?}");
        }
        assert_eq!(signature_header(Some(b" 0xab ")), Some(" 0xab "));
        assert_eq!(signature_header(Some(b"0x\xffab")), None);
        assert_eq!(signature_header(None), None);
    }

    #[test]
    fn join_requests() {
        let ok = br#"{"stream":"cam1","job_id":3,"swarm_id":"0xabcd","peers":["127.0.0.1:6778"]}"#;
        let (req, id) = parse_join(ok).unwrap();
        assert_eq!((req.stream.as_str(), id), ("cam1", vec![0xab, 0xcd]));
        for bad in [
            &br#"{"stream":"../x","swarm_id":"ab","peers":["127.0.0.1:1"]}"#[..],
            br#"{"stream":"a","swarm_id":"zz","peers":["127.0.0.1:1"]}"#,
            br#"{"stream":"a","swarm_id":"ab","peers":[]}"#,
            br#"{"stream":"a","swarm_id":"ab","peers":["127.0.0.1:1"],"extra":1}"#,
        ] {
            assert!(parse_join(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
