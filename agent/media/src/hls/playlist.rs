//! Playlist text (RFC 8216) rendered from the commit record: a media playlist per rendition and the master
//! playlist.  Pure functions, so the playlists of a record are the same whenever they are rendered.

use super::HlsMode;
use super::record::{Record, Rendition};

/// One rendition's media playlist.
pub(super) fn media(rec: &Record, r: &Rendition, mode: HlsMode) -> String {
    let mut m = String::from("#EXTM3U\n#EXT-X-VERSION:3\n");
    m.push_str(&format!("#EXT-X-TARGETDURATION:{}\n", rec.target));
    let media_seq = r.entries.front().map_or(rec.next_msn, |e| e.msn);
    m.push_str(&format!("#EXT-X-MEDIA-SEQUENCE:{media_seq}\n"));
    if r.disc_seq > 0 {
        m.push_str(&format!("#EXT-X-DISCONTINUITY-SEQUENCE:{}\n", r.disc_seq));
    }
    match mode {
        HlsMode::Live { .. } => {}
        HlsMode::Event => m.push_str("#EXT-X-PLAYLIST-TYPE:EVENT\n"),
        HlsMode::Vod => m.push_str(if rec.ended {
            "#EXT-X-PLAYLIST-TYPE:VOD\n"
        } else {
            "#EXT-X-PLAYLIST-TYPE:EVENT\n"
        }),
    }
    for e in &r.entries {
        if e.discontinuity {
            m.push_str("#EXT-X-DISCONTINUITY\n");
        }
        m.push_str(&format!("#EXTINF:{:.6},\n{}\n", e.duration, e.file()));
    }
    if rec.ended {
        m.push_str("#EXT-X-ENDLIST\n");
    }
    m
}

/// The master playlist: every rendition the stream carries now, in ladder order.
pub(super) fn master(rec: &Record) -> String {
    let mut master = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for r in &rec.renditions {
        let avg = if r.total_secs > 0.0 {
            r.total_bytes as f64 * 8.0 / r.total_secs
        } else {
            0.0
        };
        master.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},RESOLUTION={}x{},CODECS=\"{}\",FRAME-RATE={:.3}\n{}/index.m3u8\n",
            r.peak_bps.ceil() as u64,
            avg.ceil() as u64,
            r.width,
            r.height,
            r.codecs,
            f64::from(r.fps.0) / f64::from(r.fps.1.max(1)),
            r.name
        ));
    }
    master
}
