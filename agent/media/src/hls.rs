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
    /// Sequence number of the segment (its file is `<seq>.ts`).
    seq: u64,
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

    /// Re-opens an output directory written by an earlier run of the same stream (for instance one killed
    /// mid-segment), so new segments extend its playlists instead of replacing them.  The renditions and their
    /// entries are read back from `master.m3u8` and each `index.m3u8`; a segment file written after the last
    /// playlist update (the crash window) has no entry and is simply overwritten when it is sent again.  A
    /// directory without a master playlist starts fresh, like [`HlsWriter::new`].
    pub fn resume(
        dir: impl Into<PathBuf>,
        mode: HlsMode,
        target_secs: f64,
    ) -> Result<Self, HlsError> {
        let mut w = Self::new(dir, mode, target_secs)?;
        let master_path = w.master_path();
        let master = match fs::read_to_string(&master_path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(w),
            Err(e) => {
                return Err(HlsError::Io {
                    path: master_path,
                    source: e,
                });
            }
        };
        let mut inf: Option<&str> = None;
        for line in master.lines() {
            if let Some(attrs) = line.strip_prefix("#EXT-X-STREAM-INF:") {
                inf = Some(attrs);
                continue;
            }
            let (Some(attrs), Some(name)) = (inf.take(), line.strip_suffix("/index.m3u8")) else {
                continue;
            };
            let mut st = RenditionState {
                name: name.to_string(),
                ..Default::default()
            };
            let mut avg_bps = 0.0;
            for (k, v) in split_attrs(attrs) {
                match k {
                    "BANDWIDTH" => st.peak_bps = v.parse().unwrap_or(0.0),
                    "AVERAGE-BANDWIDTH" => avg_bps = v.parse().unwrap_or(0.0),
                    "RESOLUTION" => {
                        if let Some((a, b)) = v.split_once('x') {
                            st.width = a.parse().unwrap_or(0);
                            st.height = b.parse().unwrap_or(0);
                        }
                    }
                    "CODECS" => st.codecs = v.trim_matches('"').to_string(),
                    "FRAME-RATE" => {
                        st.fps = (
                            (v.parse::<f64>().unwrap_or(0.0) * 1000.0).round() as u32,
                            1000,
                        )
                    }
                    _ => {}
                }
            }
            let pl_path = w.dir.join(name).join("index.m3u8");
            let pl = fs::read_to_string(&pl_path).map_err(io(&pl_path))?;
            let mut disc = false;
            let mut duration = None;
            for l in pl.lines() {
                if let Some(v) = l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
                    st.media_seq = v.trim().parse().unwrap_or(0);
                } else if let Some(v) = l.strip_prefix("#EXT-X-DISCONTINUITY-SEQUENCE:") {
                    st.disc_seq = v.trim().parse().unwrap_or(0);
                } else if let Some(v) = l.strip_prefix("#EXT-X-TARGETDURATION:") {
                    w.target = w.target.max(v.trim().parse().unwrap_or(0));
                } else if l == "#EXT-X-DISCONTINUITY" {
                    disc = true;
                } else if let Some(v) = l.strip_prefix("#EXTINF:") {
                    duration = v.split(',').next().and_then(|d| d.parse::<f64>().ok());
                } else if !l.starts_with('#') && !l.is_empty() {
                    let (Some(d), Some(seq)) = (
                        duration.take(),
                        l.strip_suffix(".ts").and_then(|s| s.parse::<u64>().ok()),
                    ) else {
                        continue;
                    };
                    st.total_secs += d;
                    w.last_seq = Some(w.last_seq.map_or(seq, |s| s.max(seq)));
                    st.entries.push_back(Entry {
                        seq,
                        file: l.to_string(),
                        duration: d,
                        discontinuity: disc,
                    });
                    disc = false;
                }
            }
            // The average covered segments that may have slid out of the window: keep it, as bytes over the
            // entries still listed.
            st.total_bytes = (avg_bps * st.total_secs / 8.0).round() as u64;
            w.renditions.push(st);
        }
        Ok(w)
    }

    /// Sequence number of the last segment in the playlists (after [`HlsWriter::resume`], the one written
    /// before the restart).
    pub fn last_seq(&self) -> Option<u64> {
        self.last_seq
    }

    /// Sequence numbers of the segments currently listed in the playlists (the live window, or all).
    pub fn listed(&self) -> Vec<u64> {
        self.renditions
            .first()
            .map(|r| r.entries.iter().map(|e| e.seq).collect())
            .unwrap_or_default()
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
                seq: out.seq,
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

/// Splits an attribute list (`A=1,B="x,y",C=2`) into pairs, honouring quoted commas.
fn split_attrs(s: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in s.char_indices().chain(std::iter::once((s.len(), ','))) {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                if let Some((k, v)) = s[start..i].split_once('=') {
                    out.push((k.trim(), v.trim()));
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Rendition, SegmentStats};

    fn seg(seq: u64) -> SegmentOutput {
        let r = |name: &str, w, h| Rendition {
            profile: name.into(),
            data: vec![0x47; 188 * (10 + seq as usize)],
            width: w,
            height: h,
            fps: (30, 1),
            frames: 60,
            duration: 2.0,
            first_pts: seq * 180_000,
            codecs: "avc1.64001f,mp4a.40.2".into(),
            video_bytes: 1000,
        };
        SegmentOutput {
            seq,
            renditions: vec![
                r("P720p30fps16x9", 1280, 720),
                r("P360p30fps16x9", 640, 360),
            ],
            stats: SegmentStats::default(),
        }
    }

    fn read(p: &Path) -> String {
        fs::read_to_string(p).unwrap()
    }

    #[test]
    fn resume_extends_the_playlists_of_an_earlier_run() {
        let dir = tempfile::tempdir().unwrap();
        let mode = HlsMode::Live { window: 3 };
        let mut w = HlsWriter::new(dir.path(), mode, 2.0).unwrap();
        for seq in [0, 1, 2, 4] {
            w.write_segment(&seg(seq)).unwrap();
        }
        let master_before = read(&w.master_path());
        let pl_before = read(&dir.path().join("P360p30fps16x9/index.m3u8"));
        drop(w); // as if killed: nothing is finished or flushed beyond what write_segment did

        let mut w = HlsWriter::resume(dir.path(), mode, 2.0).unwrap();
        assert_eq!(w.last_seq(), Some(4));
        // Rewriting the state read back reproduces the files byte for byte.
        w.write_playlists(false).unwrap();
        assert_eq!(read(&w.master_path()), master_before);
        assert_eq!(
            read(&dir.path().join("P360p30fps16x9/index.m3u8")),
            pl_before
        );
        // A replayed old segment is refused; the next one extends the window.
        assert!(matches!(
            w.write_segment(&seg(4)),
            Err(HlsError::OutOfOrder { .. })
        ));
        w.write_segment(&seg(5)).unwrap();
        let pl = read(&dir.path().join("P720p30fps16x9/index.m3u8"));
        assert!(pl.contains("#EXT-X-MEDIA-SEQUENCE:2\n"), "{pl}");
        assert!(
            pl.contains("#EXT-X-DISCONTINUITY\n#EXTINF:2.000000,\n4.ts\n5.ts")
                || pl.contains("4.ts\n#EXTINF:2.000000,\n5.ts"),
            "{pl}"
        );
        assert!(!pl.contains("\n1.ts"), "slid out of the window: {pl}");
        assert!(!dir.path().join("P720p30fps16x9/1.ts").exists());
    }

    #[test]
    fn resume_of_an_empty_directory_starts_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let w = HlsWriter::resume(dir.path().join("new"), HlsMode::Vod, 2.0).unwrap();
        assert_eq!(w.last_seq(), None);
    }

    #[test]
    fn attribute_lists_honour_quotes() {
        assert_eq!(
            split_attrs("BANDWIDTH=5,CODECS=\"avc1.64001f,mp4a.40.2\",FRAME-RATE=30.000"),
            vec![
                ("BANDWIDTH", "5"),
                ("CODECS", "\"avc1.64001f,mp4a.40.2\""),
                ("FRAME-RATE", "30.000")
            ]
        );
    }
}
