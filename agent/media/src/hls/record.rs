//! The commit record: everything the playlists are made from, in one file written last for each segment.
//!
//! A segment is added in this order: its rendition files (each written to a temporary name, fsynced, renamed;
//! then their directories fsynced), then this record (same way), then the playlists rendered from it.  The
//! record's rename is the commit point: a crash before it leaves rendition files no record lists (deleted
//! when the stream resumes, and the segment was not acknowledged); a crash after it leaves playlists that
//! lag the record (rendered again when the stream resumes).  So every rendition always agrees on the last
//! segment, and an acknowledged segment is never lost.

use std::collections::VecDeque;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::HlsError;

/// File name of the record in a stream's output directory.  It starts with a dot, so the daemon never serves
/// it (only playlists and segments are public).
pub(super) const RECORD_FILE: &str = ".commit.json";
const FORMAT: u32 = 1;

/// One segment listed in a rendition's playlist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Entry {
    /// Media sequence number (RFC 8216 §6.2.1: one more for each segment of the stream, in every rendition).
    pub msn: u64,
    /// The segment's file is `<number>.ts`: the broadcaster's sequence number in the stream's first session,
    /// moved past every earlier file in later sessions.
    pub number: u64,
    pub duration: f64,
    /// `#EXT-X-DISCONTINUITY` before this segment (a gap in the broadcaster's numbering, or a new session).
    pub discontinuity: bool,
}

impl Entry {
    pub fn file(&self) -> String {
        format!("{}.ts", self.number)
    }
}

/// One rendition (one profile's playlist).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Rendition {
    /// Profile name, also its directory.
    pub name: String,
    pub entries: VecDeque<Entry>,
    /// Discontinuities that slid out of the window (`#EXT-X-DISCONTINUITY-SEQUENCE`).
    pub disc_seq: u64,
    /// Segments that left the playlist and whose files are kept a while longer: (media sequence number of
    /// the segment whose playlist dropped them, file number).  See [`super::HlsWriter`] on the grace period.
    pub retired: VecDeque<(u64, u64)>,
    /// Media sequence number at which the profile left the ladder: its playlist has ended and its directory
    /// goes after the grace period.
    pub dropped_at: Option<u64>,
    pub width: u32,
    pub height: u32,
    pub fps: (u32, u32),
    pub codecs: String,
    pub peak_bps: f64,
    pub total_bytes: u64,
    pub total_secs: f64,
}

/// The writer's whole state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Record {
    pub format: u32,
    /// Sessions started in this directory (a broadcaster that ends a stream and starts it again at 0 starts
    /// a new one); the first is 0.
    pub session: u64,
    /// File number of sequence number 0 in the current session.
    pub base: u64,
    /// The broadcaster's last sequence number written in the current session.
    pub last_seq: Option<u64>,
    /// Where the current session's segments come from, when that is known (a broadcaster's swarm id).
    pub source: Option<String>,
    /// Media sequence number of the next segment.
    pub next_msn: u64,
    /// File number after the highest one written.
    pub next_number: u64,
    /// `#EXT-X-TARGETDURATION`.
    pub target: u64,
    /// The session was ended (DELETE, idle timeout, shutdown): the playlists carry `#EXT-X-ENDLIST`.
    pub ended: bool,
    pub renditions: Vec<Rendition>,
}

impl Record {
    pub fn new(target: u64) -> Self {
        Record {
            format: FORMAT,
            target,
            ..Default::default()
        }
    }

    /// Reads the record of `dir`; `None` when there is none (a new stream).
    pub fn load(dir: &Path) -> Result<Option<Self>, HlsError> {
        let path = dir.join(RECORD_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        let rec: Record = serde_json::from_slice(&bytes).map_err(|e| HlsError::Record {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if rec.format != FORMAT {
            return Err(HlsError::Record {
                path,
                reason: format!("format {} (this build reads {FORMAT})", rec.format),
            });
        }
        Ok(Some(rec))
    }

    /// Writes the record durably: after this returns, a crash cannot lose it.
    pub fn store(&self, dir: &Path) -> Result<(), HlsError> {
        let bytes = serde_json::to_vec(self).expect("the record serializes");
        write_atomic(&dir.join(RECORD_FILE), &bytes)?;
        sync_dir(dir)
    }
}

pub(super) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HlsError + '_ {
    move |source| HlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Write `data` to `path` atomically (temporary file in the same directory, fsync, rename).  The rename is
/// durable once the directory is synced ([`sync_dir`]).
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), HlsError> {
    let tmp = temp_name(path);
    let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(data).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(io(path))
}

fn temp_name(path: &Path) -> PathBuf {
    path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ))
}

/// fsync a directory, so the renames and removals in it survive a power cut.
pub fn sync_dir(dir: &Path) -> Result<(), HlsError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}
