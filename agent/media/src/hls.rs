//! HLS output: one media playlist per rendition plus a master playlist. Every file is written to a
//! temporary name and renamed into place, so a reader never sees a partial segment or playlist.

use std::collections::VecDeque;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::SegmentOutput;

/// Playlist mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum HlsMode {
    /// Sliding window of `window` segments; older segment files are deleted.
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
    #[error("segment {seq} has {got} renditions, the writer was set up for {want}")]
    RenditionCount { seq: u64, got: usize, want: usize },
    #[error("segment {seq} is not after the last written segment {last}")]
    OutOfOrder { seq: u64, last: u64 },
}

#[derive(Debug, Clone)]
struct Entry {
    file: String,
    duration: f64,
    discontinuity: bool,
}

#[derive(Debug, Clone, Default)]
struct RenditionState {
    name: String,
    entries: VecDeque<Entry>,
    /// Media sequence number of the first entry.
    media_seq: u64,
    /// Discontinuities that slid out of the window.
    disc_seq: u64,
    width: u32,
    height: u32,
    fps: (u32, u32),
    codecs: String,
    peak_bps: f64,
    total_bytes: u64,
    total_secs: f64,
}

/// Writes segments and playlists under a directory: `<dir>/<profile>/<seq>.ts`, `<dir>/<profile>/index.m3u8`,
/// `<dir>/master.m3u8`.
#[derive(Debug)]
pub struct HlsWriter {
    dir: PathBuf,
    mode: HlsMode,
    target: u64,
    last_seq: Option<u64>,
    renditions: Vec<RenditionState>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> HlsError + '_ {
    move |source| HlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Write `data` to `path` atomically (temporary file in the same directory, fsync, rename).
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), HlsError> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(data).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(io(path))
}

impl HlsWriter {
    /// `target_secs` is the nominal segment length (EXT-X-TARGETDURATION is at least its ceiling).
    pub fn new(dir: impl Into<PathBuf>, mode: HlsMode, target_secs: f64) -> Result<Self, HlsError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        Ok(HlsWriter {
            dir,
            mode,
            target: target_secs.ceil().max(1.0) as u64,
            last_seq: None,
            renditions: Vec::new(),
        })
    }

    /// Path of the master playlist.
    pub fn master_path(&self) -> PathBuf {
        self.dir.join("master.m3u8")
    }

    /// Write one transcoded segment (all renditions) and update every playlist.
    pub fn write_segment(&mut self, out: &SegmentOutput) -> Result<(), HlsError> {
        if self.renditions.is_empty() {
            for r in &out.renditions {
                let d = self.dir.join(&r.profile);
                fs::create_dir_all(&d).map_err(io(&d))?;
                self.renditions.push(RenditionState {
                    name: r.profile.clone(),
                    ..Default::default()
                });
            }
        }
        if out.renditions.len() != self.renditions.len() {
            return Err(HlsError::RenditionCount {
                seq: out.seq,
                got: out.renditions.len(),
                want: self.renditions.len(),
            });
        }
        if let Some(last) = self.last_seq
            && out.seq <= last
        {
            return Err(HlsError::OutOfOrder { seq: out.seq, last });
        }
        // a gap in sequence numbers (a failed segment) is a timeline discontinuity
        let discontinuity = self.last_seq.is_some_and(|l| out.seq != l + 1);
        self.last_seq = Some(out.seq);
        for (st, r) in self.renditions.iter_mut().zip(&out.renditions) {
            let file = format!("{}.ts", out.seq);
            write_atomic(&self.dir.join(&st.name).join(&file), &r.data)?;
            st.width = r.width;
            st.height = r.height;
            st.fps = r.fps;
            st.codecs = r.codecs.clone();
            let bps = r.data.len() as f64 * 8.0 / r.duration.max(1e-3);
            st.peak_bps = st.peak_bps.max(bps);
            st.total_bytes += r.data.len() as u64;
            st.total_secs += r.duration;
            self.target = self.target.max(r.duration.round() as u64);
            st.entries.push_back(Entry {
                file,
                duration: r.duration,
                discontinuity,
            });
            if let HlsMode::Live { window } = self.mode {
                while st.entries.len() > window.max(1) {
                    let old = st.entries.pop_front().unwrap();
                    st.media_seq += 1;
                    if old.discontinuity {
                        st.disc_seq += 1;
                    }
                    let _ = fs::remove_file(self.dir.join(&st.name).join(&old.file));
                }
            }
        }
        self.write_playlists(false)
    }

    /// Close the playlists (EXT-X-ENDLIST for EVENT/VOD; a live playlist is left open).
    pub fn finish(&mut self) -> Result<(), HlsError> {
        self.write_playlists(true)
    }

    fn write_playlists(&self, finished: bool) -> Result<(), HlsError> {
        for st in &self.renditions {
            let mut m = String::from("#EXTM3U\n#EXT-X-VERSION:3\n");
            m.push_str(&format!("#EXT-X-TARGETDURATION:{}\n", self.target));
            m.push_str(&format!("#EXT-X-MEDIA-SEQUENCE:{}\n", st.media_seq));
            if st.disc_seq > 0 {
                m.push_str(&format!("#EXT-X-DISCONTINUITY-SEQUENCE:{}\n", st.disc_seq));
            }
            match self.mode {
                HlsMode::Live { .. } => {}
                HlsMode::Event => m.push_str("#EXT-X-PLAYLIST-TYPE:EVENT\n"),
                HlsMode::Vod => m.push_str(if finished {
                    "#EXT-X-PLAYLIST-TYPE:VOD\n"
                } else {
                    "#EXT-X-PLAYLIST-TYPE:EVENT\n"
                }),
            }
            for e in &st.entries {
                if e.discontinuity {
                    m.push_str("#EXT-X-DISCONTINUITY\n");
                }
                m.push_str(&format!("#EXTINF:{:.6},\n{}\n", e.duration, e.file));
            }
            if finished && !matches!(self.mode, HlsMode::Live { .. }) {
                m.push_str("#EXT-X-ENDLIST\n");
            }
            write_atomic(&self.dir.join(&st.name).join("index.m3u8"), m.as_bytes())?;
        }
        let mut master = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n");
        for st in &self.renditions {
            let avg = if st.total_secs > 0.0 {
                st.total_bytes as f64 * 8.0 / st.total_secs
            } else {
                0.0
            };
            master.push_str(&format!(
                "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},RESOLUTION={}x{},CODECS=\"{}\",FRAME-RATE={:.3}\n{}/index.m3u8\n",
                st.peak_bps.ceil() as u64,
                avg.ceil() as u64,
                st.width,
                st.height,
                st.codecs,
                f64::from(st.fps.0) / f64::from(st.fps.1.max(1)),
                st.name
            ));
        }
        write_atomic(&self.master_path(), master.as_bytes())
    }
}
