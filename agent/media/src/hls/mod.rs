//! HLS output: one media playlist per rendition plus a master playlist, crash-consistent.
//!
//! Layout: `<dir>/<profile>/<n>.ts`, `<dir>/<profile>/index.m3u8`, `<dir>/master.m3u8`, and the commit record
//! `<dir>/.commit.json` ([`record`] explains the write order that makes a kill -9 or a power cut at any point
//! lose no committed segment and leave no rendition ahead of another).
//!
//! - **Renditions are matched by profile name**, never by position: a ladder that changes mid-stream adds a
//!   playlist for a new profile (aligned on the stream's media sequence numbers) and ends the playlist of a
//!   profile that left (`#EXT-X-ENDLIST`; its directory is removed after the grace period below).
//! - **Sessions**: a broadcaster that ends a stream (the session is ended with [`HlsWriter::finish`]) or
//!   starts counting again at 0 starts a new session.  The same playlists go on, with a discontinuity, so a
//!   player keeps its URL and RFC 8216's rule that media sequence numbers only grow holds; segment files of
//!   the new session are numbered after every earlier one, so no URL ever names two different segments.
//! - **Live window**: a segment that slides out of the playlist keeps its file for `window + 1` more segments
//!   (about the playlist's duration plus one target duration, RFC 8216 §6.2.2), so a player that fetched the
//!   previous playlist can still load it; only then is it deleted.

mod playlist;
mod record;

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::SegmentOutput;
use record::{Entry, Record, Rendition, io};
pub use record::{sync_dir, write_atomic};

/// Playlist mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum HlsMode {
    /// Sliding window of `window` segments; older segment files are deleted after a grace period.
    Live { window: usize },
    /// Every segment stays; `EXT-X-PLAYLIST-TYPE:EVENT`, `EXT-X-ENDLIST` at finish.
    Event,
    /// Every segment stays; `EXT-X-PLAYLIST-TYPE:VOD` and `EXT-X-ENDLIST` written at finish
    /// (while running the playlist is an EVENT playlist).
    Vod,
}

/// Errors of the HLS writer.
#[derive(Debug, thiserror::Error)]
pub enum HlsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: unreadable commit record: {reason}")]
    Record { path: PathBuf, reason: String },
    #[error("segment {seq} has two renditions named {name}")]
    DuplicateRendition { seq: u64, name: String },
    #[error("segment {seq} has no rendition")]
    NoRendition { seq: u64 },
    #[error("segment {seq} is not after the last written segment {last}")]
    OutOfOrder { seq: u64, last: u64 },
    #[error("segment {seq}: sequence number out of range")]
    Numbering { seq: u64 },
}

/// Where a segment goes, given what the writer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// After the last segment of the current session.
    Next,
    /// First segment of a new session (the previous one was ended, or the broadcaster counts from 0 again).
    NewSession,
}

/// Writes segments and playlists under a directory (see the module documentation).
#[derive(Debug)]
pub struct HlsWriter {
    dir: PathBuf,
    mode: HlsMode,
    rec: Record,
    /// Where the next segments come from ([`HlsWriter::set_source`]).
    source: Option<String>,
}

impl HlsWriter {
    /// A new output in `dir`; `target_secs` is the nominal segment length (EXT-X-TARGETDURATION is at least
    /// its ceiling).  What an earlier run left in `dir` is replaced as segments come.
    pub fn new(dir: impl Into<PathBuf>, mode: HlsMode, target_secs: f64) -> Result<Self, HlsError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        Ok(HlsWriter {
            dir,
            mode,
            rec: Record::new(target_of(target_secs)),
            source: None,
        })
    }

    /// Re-opens an output directory written by an earlier run of the same stream (a restart, or a kill -9 at
    /// any point), so new segments extend its playlists.  The state comes from the commit record; playlists
    /// are rendered from it again (they may lag it after a crash) and segment files no committed segment
    /// lists (a crash before the commit) are deleted.  A directory without a record starts fresh, like
    /// [`HlsWriter::new`].
    pub fn resume(
        dir: impl Into<PathBuf>,
        mode: HlsMode,
        target_secs: f64,
    ) -> Result<Self, HlsError> {
        let mut w = Self::new(dir, mode, target_secs)?;
        let Some(mut rec) = Record::load(&w.dir)? else {
            return Ok(w);
        };
        rec.target = rec.target.max(w.rec.target);
        w.rec = rec;
        w.remove_uncommitted()?;
        w.write_playlists()?;
        Ok(w)
    }

    /// The broadcaster's sequence number of the last segment of the current session (after
    /// [`HlsWriter::resume`], the one written before the restart).
    pub fn last_seq(&self) -> Option<u64> {
        self.rec.last_seq
    }

    /// Whether the current session was ended ([`HlsWriter::finish`]).
    pub fn is_ended(&self) -> bool {
        self.rec.ended
    }

    /// Sessions started before the current one.
    pub fn session(&self) -> u64 {
        self.rec.session
    }

    /// File numbers (`<n>.ts`) of the segments the playlists list now (the live window, or all).
    pub fn listed(&self) -> Vec<u64> {
        self.active()
            .next()
            .map(|r| r.entries.iter().map(|e| e.number).collect())
            .unwrap_or_default()
    }

    /// Path of the master playlist.
    pub fn master_path(&self) -> PathBuf {
        self.dir.join("master.m3u8")
    }

    /// Where segment `seq` would go: after the last one, into a new session, or nowhere (a retry of a
    /// segment already written, or a late arrival: [`HlsError::OutOfOrder`]).
    pub fn place(&self, seq: u64) -> Result<Placement, HlsError> {
        place(
            self.rec.last_seq,
            self.rec.ended,
            seq,
            self.source.as_deref(),
            self.rec.source.as_deref(),
        )
    }

    /// Where the next segments come from, when that is known (a broadcaster's swarm id): see [`place`].
    pub fn set_source(&mut self, source: Option<String>) {
        self.source = source;
    }

    /// The file name segment `seq` gets in `profile`'s directory if it is written next.
    pub fn file_for(&self, seq: u64) -> Option<String> {
        let base = match self.place(seq).ok()? {
            Placement::Next => self.rec.base,
            Placement::NewSession => self.rec.next_number,
        };
        base.checked_add(seq)
            .filter(|n| *n < u64::MAX)
            .map(|n| format!("{n}.ts"))
    }

    /// Writes one transcoded segment (all its renditions) and commits it; returns the segment's file name in
    /// each rendition's directory.
    pub fn write_segment(&mut self, out: &SegmentOutput) -> Result<String, HlsError> {
        let seq = out.seq;
        if out.renditions.is_empty() {
            return Err(HlsError::NoRendition { seq });
        }
        let mut names = HashSet::new();
        if let Some(r) = out.renditions.iter().find(|r| !names.insert(&r.profile)) {
            return Err(HlsError::DuplicateRendition {
                seq,
                name: r.profile.clone(),
            });
        }
        let mut rec = self.rec.clone();
        if self.place(seq)? == Placement::NewSession {
            rec.session += 1;
            rec.base = rec.next_number;
            rec.last_seq = None;
            rec.source = None;
        }
        if self.source.is_some() {
            rec.source.clone_from(&self.source);
        }
        let number = rec
            .base
            .checked_add(seq)
            .filter(|n| *n < u64::MAX)
            .ok_or(HlsError::Numbering { seq })?;
        let discontinuity = match rec.last_seq {
            Some(last) => seq != last + 1,
            None => rec.next_msn > 0,
        };
        let msn = rec.next_msn;
        let file = format!("{number}.ts");

        // 1. the rendition files, durable before anything refers to them
        let mut created = false;
        for r in &out.renditions {
            let d = self.dir.join(&r.profile);
            if !d.is_dir() {
                fs::create_dir_all(&d).map_err(io(&d))?;
                created = true;
            }
            write_atomic(&d.join(&file), &r.data)?;
            sync_dir(&d)?;
        }
        if created {
            sync_dir(&self.dir)?;
        }

        // 2. the new state
        let mut ordered = Vec::with_capacity(out.renditions.len());
        for r in &out.renditions {
            let mut st = match rec.renditions.iter().position(|s| s.name == r.profile) {
                Some(i) => rec.renditions.remove(i),
                None => Rendition {
                    name: r.profile.clone(),
                    ..Default::default()
                },
            };
            // a profile that comes back after it left the ladder continues its playlist after a gap
            let came_back = st.dropped_at.take().is_some();
            st.width = r.width;
            st.height = r.height;
            st.fps = r.fps;
            st.codecs = r.codecs.clone();
            let bps = r.data.len() as f64 * 8.0 / r.duration.max(1e-3);
            st.peak_bps = st.peak_bps.max(bps);
            st.total_bytes += r.data.len() as u64;
            st.total_secs += r.duration;
            rec.target = rec.target.max(r.duration.round() as u64);
            st.entries.push_back(Entry {
                msn,
                number,
                duration: r.duration,
                discontinuity: (discontinuity || came_back) && !st.entries.is_empty(),
            });
            if let HlsMode::Live { window } = self.mode {
                while st.entries.len() > window.max(1) {
                    let old = st.entries.pop_front().expect("longer than the window");
                    if old.discontinuity {
                        st.disc_seq += 1;
                    }
                    st.retired.push_back((msn, old.number));
                }
            }
            ordered.push(st);
        }
        // profiles that left the ladder: their playlists end; their files go after the grace period
        for st in &mut rec.renditions {
            st.dropped_at.get_or_insert(msn);
        }
        ordered.append(&mut rec.renditions);
        rec.renditions = ordered;
        rec.ended = false;
        rec.last_seq = Some(seq);
        rec.next_msn = msn + 1;
        rec.next_number = rec.next_number.max(number + 1);

        // 3. the commit point
        rec.store(&self.dir)?;
        self.rec = rec;

        // 4. the playlists, then what no playlist has listed for long enough
        self.write_playlists()?;
        self.collect_garbage();
        Ok(file)
    }

    /// Ends the current session: the playlists get `#EXT-X-ENDLIST` (VOD playlists become
    /// `EXT-X-PLAYLIST-TYPE:VOD`).  A later segment starts a new session, or continues this one if it comes
    /// after its last segment.
    pub fn finish(&mut self) -> Result<(), HlsError> {
        let mut rec = self.rec.clone();
        rec.ended = true;
        rec.store(&self.dir)?;
        self.rec = rec;
        self.write_playlists()
    }

    fn active(&self) -> impl Iterator<Item = &Rendition> {
        self.rec
            .renditions
            .iter()
            .filter(|r| r.dropped_at.is_none())
    }

    fn write_playlists(&self) -> Result<(), HlsError> {
        for r in &self.rec.renditions {
            let mut rec_view = None;
            if r.dropped_at.is_some() && !self.rec.ended {
                // a rendition that left the ladder has ended, whatever the stream does
                let mut ended = self.rec.clone();
                ended.ended = true;
                rec_view = Some(ended);
            }
            let text = playlist::media(rec_view.as_ref().unwrap_or(&self.rec), r, self.mode);
            write_atomic(&self.dir.join(&r.name).join("index.m3u8"), text.as_bytes())?;
        }
        let mut master_rec = self.rec.clone();
        master_rec.renditions.retain(|r| r.dropped_at.is_none());
        write_atomic(
            &self.master_path(),
            playlist::master(&master_rec).as_bytes(),
        )
    }

    /// Deletes the files of segments that left the playlists `window + 1` segments ago or earlier, and the
    /// directories of profiles that left the ladder as long ago.  The record still listing a file deleted here
    /// is harmless: deleting it again finds nothing.
    fn collect_garbage(&mut self) {
        let HlsMode::Live { window } = self.mode else {
            return;
        };
        let grace = window.max(1) as u64 + 1;
        let next = self.rec.next_msn;
        let dir = self.dir.clone();
        let expired = |msn: u64| msn.saturating_add(grace) < next;
        for r in &mut self.rec.renditions {
            while let Some(&(msn, number)) = r.retired.front() {
                if !expired(msn) {
                    break;
                }
                remove_file(&dir.join(&r.name).join(format!("{number}.ts")));
                r.retired.pop_front();
            }
        }
        self.rec.renditions.retain(|r| match r.dropped_at {
            Some(at) if expired(at) => {
                let d = dir.join(&r.name);
                if let Err(e) = fs::remove_dir_all(&d)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::warn!(dir = %d.display(), "removing a dropped rendition: {e}");
                }
                false
            }
            _ => true,
        });
    }

    /// After a crash: deletes temporary files and segment files that no committed segment lists (written
    /// before a commit that never came), in every rendition directory.
    fn remove_uncommitted(&self) -> Result<(), HlsError> {
        let rd = fs::read_dir(&self.dir).map_err(io(&self.dir))?;
        for d in rd.flatten() {
            if !d.file_type().is_ok_and(|t| t.is_dir()) {
                if d.file_name().to_string_lossy().ends_with(".tmp") {
                    remove_file(&d.path());
                }
                continue;
            }
            let name = d.file_name().to_string_lossy().into_owned();
            let keep: HashSet<u64> = self
                .rec
                .renditions
                .iter()
                .find(|r| r.name == name)
                .map(|r| {
                    r.entries
                        .iter()
                        .map(|e| e.number)
                        .chain(r.retired.iter().map(|(_, n)| *n))
                        .collect()
                })
                .unwrap_or_default();
            let Ok(files) = fs::read_dir(d.path()) else {
                continue;
            };
            for f in files.flatten() {
                let fname = f.file_name().to_string_lossy().into_owned();
                let stale = fname.ends_with(".tmp")
                    || fname
                        .strip_suffix(".ts")
                        .and_then(|n| n.parse::<u64>().ok())
                        .is_some_and(|n| !keep.contains(&n));
                if stale {
                    tracing::info!(file = %f.path().display(), "removing a file no committed segment lists");
                    remove_file(&f.path());
                }
            }
        }
        Ok(())
    }
}

fn target_of(secs: f64) -> u64 {
    secs.ceil().max(1.0) as u64
}

fn remove_file(p: &Path) {
    if let Err(e) = fs::remove_file(p)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(file = %p.display(), "removing: {e}");
    }
}

/// The session rule (see the module documentation).  `source` names where the segment comes from when that is
/// known (a broadcaster's swarm id), `recorded` where the current session's segments came from: segments of
/// the same source are never a new session (a source replayed after a restart sends its first segments
/// again), a different source always starts one; without a source, a session ends with
/// [`HlsWriter::finish`] or when the broadcaster counts from 0 again.
pub fn place(
    last: Option<u64>,
    ended: bool,
    seq: u64,
    source: Option<&str>,
    recorded: Option<&str>,
) -> Result<Placement, HlsError> {
    let Some(last) = last else {
        return Ok(Placement::Next);
    };
    match (source, recorded) {
        (Some(a), Some(b)) if a != b => Ok(Placement::NewSession),
        (Some(_), Some(_)) if seq > last => Ok(Placement::Next),
        (Some(_), Some(_)) => Err(HlsError::OutOfOrder { seq, last }),
        _ if seq > last => Ok(Placement::Next),
        // a broadcaster counting from 0 again; 0 again right after 0 is a retry of the same segment
        _ if ended || (seq == 0 && last > 0) => Ok(Placement::NewSession),
        _ => Err(HlsError::OutOfOrder { seq, last }),
    }
}

#[cfg(test)]
mod tests;
