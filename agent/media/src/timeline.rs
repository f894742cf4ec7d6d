//! A segment's timeline, made decodable before the engine sees it: timestamps repaired where the input's are
//! broken, decoding started at a random access point (with the previous segment's last pictures as preroll
//! when the segment was cut mid-GOP), and the input frame rate measured. Pure functions over access units.

use serde::Serialize;

use crate::ts::{TS_MASK, VideoAu};

/// A forward jump of the decode clock longer than this inside one segment is a broken timeline, not a pause.
const MAX_FORWARD_STEP: i64 = 3 * 90_000;
/// A backward step of the decode clock longer than this is a timeline reset (shorter ones are reordering
/// noise, fixed by rebuilding DTS).
const MAX_BACKWARD_STEP: i64 = 90_000 / 2;
/// The preroll kept from a segment that has no random access point grows at most to this many pictures.
const MAX_TAIL: usize = 300;

/// What the engine pushes for one segment.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    /// Preroll (decoded, never output) first, then the segment's access units to transcode.
    pub aus: Vec<VideoAu>,
    /// How many leading access units are preroll.
    pub preroll: usize,
    /// The segment's access units that were not pushed: before its first random access point (with no
    /// earlier segment to decode them from), or leading pictures of that point that need the one before.
    pub dropped_before_keyframe: usize,
    /// Timestamp repairs, in words, for the log and the report.
    pub repairs: Vec<String>,
}

/// Why a segment has nothing to decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "no random access point (IDR, recovery point or I picture) in the segment's {0} access units and no earlier segment to decode them from"
)]
pub struct NoRandomAccess(pub usize);

/// Frames lost in one segment, by cause. Every count is of input frames that produced no output frame.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Dropped {
    /// Before the segment's first random access point, with no earlier segment to decode them from.
    pub before_keyframe: usize,
    /// Pushed to the decoder, no picture came out (corrupt or undecodable data).
    pub undecodable: usize,
    /// Decoded with the timestamp of an earlier picture (a broken timeline that could not be rebuilt).
    pub duplicate_timestamp: usize,
}

impl Dropped {
    pub fn total(&self) -> usize {
        self.before_keyframe + self.undecodable + self.duplicate_timestamp
    }
}

/// `t - base` in ticks across the 33-bit wrap, as a signed distance.
pub fn rel(t: u64, base: u64) -> i64 {
    let d = t.wrapping_sub(base) & TS_MASK;
    if d > TS_MASK / 2 {
        d as i64 - (TS_MASK as i64 + 1)
    } else {
        d as i64
    }
}

fn wrap(t: i64) -> u64 {
    t.rem_euclid(TS_MASK as i64 + 1) as u64
}

/// The median positive step of sorted values (a frame duration), or `fallback`.
fn median_step(sorted: &[i64], fallback: i64) -> i64 {
    let mut steps: Vec<i64> = sorted
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|&s| s > 0)
        .collect();
    steps.sort_unstable();
    steps.get(steps.len() / 2).copied().unwrap_or(fallback)
}

/// Repairs a segment's timestamps in place: closes jumps of the decode clock (shifting everything after a
/// jump so it follows on by one frame), rebuilds DTS where they are missing or out of order (from the
/// sorted PTS, delayed by the stream's reordering depth), and spaces PTS evenly where pictures without
/// reordering share one. Returns what it did, in words.
pub fn repair_timestamps(aus: &mut [VideoAu]) -> Vec<String> {
    let mut repairs = Vec::new();
    let Some(first) = aus.first() else {
        return repairs;
    };
    let base = first.dts;
    let mut pts: Vec<i64> = aus.iter().map(|a| rel(a.pts, base)).collect();
    let mut dts: Vec<i64> = aus.iter().map(|a| rel(a.dts, base)).collect();
    let mut sorted = pts.clone();
    sorted.sort_unstable();
    // the frame duration, from the steps that are not jumps
    let steps: Vec<i64> = sorted
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|&d| d > 0 && d <= MAX_FORWARD_STEP)
        .collect();
    let dur = if steps.is_empty() {
        3000
    } else {
        let mut st = steps;
        st.sort_unstable();
        st[st.len() / 2]
    };

    // 1. jumps of the decode clock (a stream whose DTS are missing, i.e. equal to PTS with reordering,
    //    steps back by a few frames only: well under MAX_BACKWARD_STEP)
    for i in 1..aus.len() {
        let step = dts[i] - dts[i - 1];
        if !(-MAX_BACKWARD_STEP..=MAX_FORWARD_STEP).contains(&step) {
            let shift = dts[i - 1] + dur - dts[i];
            for k in i..aus.len() {
                dts[k] += shift;
                pts[k] += shift;
            }
            repairs.push(format!(
                "access unit {i}: decode clock jumped {:+.3} s; closed",
                step as f64 / 90_000.0
            ));
        }
    }

    // 2. DTS missing (equal to PTS with reordering) or out of order: rebuild from the sorted PTS
    if let Some(delay) = rebuild_dts(&pts, &mut dts) {
        repairs.push(format!(
            "DTS missing or out of order: rebuilt from PTS with a reordering delay of {delay} ticks"
        ));
    }
    sorted = pts.clone();
    sorted.sort_unstable();
    let unique = sorted.windows(2).all(|w| w[1] > w[0]);

    // 3. pictures sharing a PTS in a stream without reordering: space them evenly
    let reordered = pts.windows(2).any(|w| w[1] < w[0]);
    if !unique && !reordered {
        let span = pts.last().copied().unwrap_or(0) - pts[0];
        let step = if aus.len() > 1 && span > 0 {
            (span / (aus.len() as i64 - 1)).max(1)
        } else {
            dur
        };
        let p0 = pts[0];
        for (k, (p, d)) in pts.iter_mut().zip(dts.iter_mut()).enumerate() {
            *p = p0 + k as i64 * step;
            *d = *p;
        }
        repairs.push(format!(
            "pictures share presentation times: spaced evenly, {step} ticks apart"
        ));
    }

    for (a, (p, d)) in aus.iter_mut().zip(pts.iter().zip(&dts)) {
        a.pts = wrap(base as i64 + p);
        a.dts = wrap(base as i64 + d);
    }
    repairs
}

/// Where DTS are not strictly increasing, or lie after their PTS, and the PTS are distinct: DTS rebuilt as
/// the sorted PTS delayed by the stream's reordering depth. Returns that delay when it rebuilt them.
fn rebuild_dts(pts: &[i64], dts: &mut [i64]) -> Option<i64> {
    let increasing = dts.windows(2).all(|w| w[1] > w[0]);
    let after_pts = dts.iter().zip(pts).any(|(d, p)| d > p);
    let mut sorted = pts.to_vec();
    sorted.sort_unstable();
    let unique = sorted.windows(2).all(|w| w[1] > w[0]);
    if (increasing && !after_pts) || !unique {
        return None;
    }
    let delay = sorted
        .iter()
        .zip(pts)
        .map(|(s, p)| s - p)
        .max()
        .unwrap_or(0)
        .max(0);
    for (d, s) in dts.iter_mut().zip(&sorted) {
        *d = s - delay;
    }
    Some(delay)
}

/// Makes a segment decodable from its start. `tail` is the previous segment's access units from its last
/// random access point on, when the previous segment was the one just before this (same stream, in order).
pub fn prepare(
    mut aus: Vec<VideoAu>,
    tail: Option<&[VideoAu]>,
) -> Result<Prepared, NoRandomAccess> {
    let repairs = repair_timestamps(&mut aus);
    let n = aus.len();
    let Some(rap) = aus.iter().position(|a| a.key) else {
        return match tail {
            Some(t) if !t.is_empty() && follows(t, &aus) => Ok(with_preroll(t, aus, repairs)),
            _ => Err(NoRandomAccess(n)),
        };
    };
    // an open GOP: a recovery point that is not an IDR may be followed by leading pictures (shown before it)
    // that refer to the GOP before; those need the previous segment too
    let leading = !crate::ts::has_idr(&aus[rap].data)
        && aus[rap + 1..]
            .iter()
            .any(|a| rel(a.pts, aus[rap].dts) < rel(aus[rap].pts, aus[rap].dts));
    if rap == 0 && !leading {
        return Ok(Prepared {
            aus,
            repairs,
            ..Default::default()
        });
    }
    if let Some(t) = tail
        && !t.is_empty()
        && follows(t, &aus)
    {
        return Ok(with_preroll(t, aus, repairs));
    }
    // no way to decode what comes before the random access point, nor its leading pictures (those shown
    // before it, which may refer to pictures of the previous GOP)
    let rap_pts = aus[rap].pts;
    let base = aus[rap].dts;
    let kept: Vec<VideoAu> = aus
        .into_iter()
        .skip(rap)
        .enumerate()
        .filter(|(k, a)| *k == 0 || rel(a.pts, base) >= rel(rap_pts, base))
        .map(|(_, a)| a)
        .collect();
    Ok(Prepared {
        dropped_before_keyframe: n - kept.len(),
        aus: kept,
        preroll: 0,
        repairs,
    })
}

/// Whether `aus` continues `tail` on the same clock (its first DTS within 3 s of the tail's last: the two
/// may have had their DTS rebuilt apart, so a small step back is the same clock).
fn follows(tail: &[VideoAu], aus: &[VideoAu]) -> bool {
    match (tail.last(), aus.first()) {
        (Some(t), Some(a)) => rel(a.dts, t.dts).abs() <= MAX_FORWARD_STEP,
        _ => false,
    }
}

fn with_preroll(tail: &[VideoAu], aus: Vec<VideoAu>, repairs: Vec<String>) -> Prepared {
    let mut all = tail.to_vec();
    let preroll = all.len();
    all.extend(aus);
    // the two parts' DTS must run on across the join (each may have been rebuilt on its own)
    let base = all[0].dts;
    let pts: Vec<i64> = all.iter().map(|a| rel(a.pts, base)).collect();
    let mut dts: Vec<i64> = all.iter().map(|a| rel(a.dts, base)).collect();
    if rebuild_dts(&pts, &mut dts).is_some() {
        for (a, d) in all.iter_mut().zip(&dts) {
            a.dts = wrap(base as i64 + d);
        }
    }
    Prepared {
        aus: all,
        preroll,
        dropped_before_keyframe: 0,
        repairs,
    }
}

/// The preroll the next segment may need: this segment's pushed access units from its last random access
/// point on (or all of them, after the previous preroll, when it has none; bounded).
pub fn next_tail(prepared: &Prepared) -> Vec<VideoAu> {
    let aus = &prepared.aus;
    let from = aus.iter().rposition(|a| a.key).unwrap_or(0);
    if aus.len() - from > MAX_TAIL {
        return Vec::new();
    }
    aus[from..].to_vec()
}

/// The preroll a segment leaves for the next one ([`next_tail`]), from its bytes and the preroll the
/// segment before it left; `None` when it does not demux or has nothing decodable.
pub fn tail_after(data: &[u8], previous_tail: Option<&[VideoAu]>) -> Option<Vec<VideoAu>> {
    let dm = crate::ts::demux(data).ok()?;
    prepare(dm.video, previous_tail).ok().map(|p| next_tail(&p))
}

/// Common frame rates a measured rate snaps to (within 1.5 %).
const COMMON_RATES: [(u32, u32); 11] = [
    (24000, 1001),
    (24, 1),
    (25, 1),
    (30000, 1001),
    (30, 1),
    (48, 1),
    (50, 1),
    (60000, 1001),
    (60, 1),
    (15, 1),
    (12, 1),
];

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Estimates the frame rate from sorted PTS ticks. Where the pictures per second over the whole span differ
/// from the median step's rate by more than a quarter (pictures in pairs on a coarse clock), that average;
/// else the median step's rate snapped to a common rate within 1.5 %, else the average so snapped (a
/// jittery clock), else the median step's rate.
pub fn estimate_fps(sorted_pts: &[u64]) -> (u32, u32) {
    let v: Vec<i64> = sorted_pts.iter().map(|&t| t as i64).collect();
    let step = median_step(&v, 0);
    if step <= 0 {
        return (30, 1);
    }
    let median_rate = 90_000.0 / step as f64;
    let mut unique = v.clone();
    unique.dedup();
    // distinct times per second, times pictures per distinct time
    let avg_rate = (unique.len() > 2).then(|| {
        let span = (v[v.len() - 1] - v[0]) as f64;
        (unique.len() - 1) as f64 * 90_000.0 / span.max(1.0) * v.len() as f64 / unique.len() as f64
    });
    let snap = |rate: f64| {
        let off = |&(n, d): &(u32, u32)| (f64::from(n) / f64::from(d) / rate - 1.0).abs();
        COMMON_RATES
            .iter()
            .filter(|c| off(c) < 0.015)
            .min_by(|a, b| off(a).total_cmp(&off(b)))
            .copied()
    };
    let milli = |rate: f64| {
        let m = (rate * 1000.0).round().max(1.0) as u64;
        let g = gcd(m, 1000);
        ((m / g) as u32, (1000 / g) as u32)
    };
    if let Some(avg) = avg_rate
        && (avg / median_rate - 1.0).abs() > 0.25
    {
        return snap(avg).unwrap_or_else(|| milli(avg));
    }
    if let Some(c) = snap(median_rate).or_else(|| avg_rate.and_then(snap)) {
        return c;
    }
    let g = gcd(90_000, step as u64);
    ((90_000 / g) as u32, (step as u64 / g) as u32)
}

/// The frames a rendition keeps, as the engine paces them: from sorted input PTS ticks at `in_fps`, every
/// frame where the input is at most 2 % faster than `max_fps`; else at most `max_fps` a second, the first
/// frame reaching each slot of an even grid from the first PTS (half an input frame of tolerance), retimed
/// to its slot. Returns (output PTS, output rate, output frame duration in ticks).
pub fn pace_frames(input: &[u64], in_fps: (u32, u32), max_fps: u32) -> (Vec<u64>, (u32, u32), u64) {
    let (n, d) = (u64::from(in_fps.0.max(1)), u64::from(in_fps.1.max(1)));
    if n as f64 / d as f64 <= f64::from(max_fps) * 1.02 {
        return (input.to_vec(), in_fps, 90_000 * d / n);
    }
    let fps = u64::from(max_fps.max(1));
    let first = input.first().copied().unwrap_or(0);
    let tolerance = 45_000 * d / n;
    let mut out = Vec::new();
    let mut next_slot = 0;
    for &t in input {
        let slot = (t.saturating_sub(first) + tolerance) * fps / 90_000;
        if slot >= next_slot {
            out.push(first + (slot * 90_000 + fps / 2) / fps);
            next_slot = slot + 1;
        }
    }
    (out, (max_fps, 1), 90_000 / fps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn au(pts: u64, dts: u64, key: bool) -> VideoAu {
        VideoAu {
            pts: pts & TS_MASK,
            dts: dts & TS_MASK,
            key,
            data: vec![],
        }
    }

    /// I P B B P B B ... in decode order, 3000 ticks per frame, DTS one frame behind the first PTS.
    fn gop(start: u64, n: usize, key_first: bool) -> Vec<VideoAu> {
        let mut out = vec![au(start + 3000, start, key_first)];
        let mut k = 1;
        while out.len() < n {
            let p = start + 3000 * (k as u64 + 3);
            out.push(au(p, start + 3000 * out.len() as u64, false));
            for b in 1..=2 {
                if out.len() < n {
                    out.push(au(
                        start + 3000 * (k as u64 + b),
                        start + 3000 * out.len() as u64,
                        false,
                    ));
                }
            }
            k += 3;
        }
        out
    }

    #[test]
    fn good_timestamps_are_left_alone() {
        let mut g = gop(90_000, 10, true);
        let before = g.clone();
        assert!(repair_timestamps(&mut g).is_empty());
        assert_eq!(g, before);
    }

    #[test]
    fn missing_dts_are_rebuilt_behind_the_pts() {
        let mut g = gop(90_000, 10, true);
        let pts: Vec<u64> = g.iter().map(|a| a.pts).collect();
        for a in &mut g {
            a.dts = a.pts;
        }
        let r = repair_timestamps(&mut g);
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(g.windows(2).all(|w| w[1].dts > w[0].dts));
        assert!(g.iter().all(|a| a.dts <= a.pts));
        assert_eq!(g.iter().map(|a| a.pts).collect::<Vec<_>>(), pts);
    }

    #[test]
    fn a_jump_inside_a_segment_is_closed() {
        let mut g = gop(90_000, 12, true);
        for a in &mut g[6..] {
            a.pts += 40 * 90_000;
            a.dts += 40 * 90_000;
        }
        let r = repair_timestamps(&mut g);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(g, gop(90_000, 12, true));
        // backwards, across the 33-bit wrap
        let mut g = gop(TS_MASK - 9000, 12, true);
        for a in &mut g[4..] {
            a.pts = (a.pts + (1 << 32)) & TS_MASK;
            a.dts = (a.dts + (1 << 32)) & TS_MASK;
        }
        repair_timestamps(&mut g);
        assert_eq!(g, gop(TS_MASK - 9000, 12, true));
    }

    #[test]
    fn shared_presentation_times_are_spaced() {
        let mut v: Vec<VideoAu> = (0..6u64)
            .map(|i| au(1000 + (i / 2) * 6000, 0, i == 0))
            .collect();
        for a in &mut v {
            a.dts = a.pts;
        }
        repair_timestamps(&mut v);
        let pts: Vec<u64> = v.iter().map(|a| a.pts).collect();
        assert_eq!(pts, [1000, 3400, 5800, 8200, 10600, 13000]);
    }

    #[test]
    fn a_segment_cut_mid_gop_decodes_from_the_previous_segments_tail() {
        let all = gop(0, 24, true);
        let (first, second) = all.split_at(8);
        let p1 = prepare(first.to_vec(), None).unwrap();
        assert_eq!((p1.preroll, p1.dropped_before_keyframe), (0, 0));
        let tail = next_tail(&p1);
        assert_eq!(tail.len(), 8);
        let p2 = prepare(second.to_vec(), Some(&tail)).unwrap();
        assert_eq!(p2.preroll, 8);
        assert_eq!(p2.aus.len(), 24);
        assert_eq!(p2.dropped_before_keyframe, 0);
        // without the previous segment: nothing to start from
        assert_eq!(
            prepare(second.to_vec(), None).unwrap_err(),
            NoRandomAccess(16)
        );
        // a tail from another clock is not used
        let far = gop(900_000, 8, true);
        assert!(prepare(second.to_vec(), Some(&far)).is_err());
    }

    #[test]
    fn leading_pictures_of_an_open_gop_decode_from_the_previous_segment_or_are_dropped() {
        // a recovery-point I picture (not an IDR: its data has no type-5 NAL), then two B pictures shown
        // before it, then a P
        let mut v = vec![
            au(9000, 3000, true),
            au(3000, 6000, false),
            au(6000, 9000, false),
            au(12000, 12000, false),
        ];
        v[0].data = vec![0, 0, 1, 0x01, 0x88];
        let tail = gop(-12_000i64 as u64 & TS_MASK, 4, true);
        let tail: Vec<VideoAu> = tail
            .into_iter()
            .map(|mut a| {
                a.data = vec![0, 0, 1, 0x65];
                a
            })
            .collect();
        let p = prepare(v.clone(), Some(&tail)).unwrap();
        assert_eq!((p.preroll, p.dropped_before_keyframe), (4, 0));
        let p = prepare(v.clone(), None).unwrap();
        assert_eq!(
            (p.preroll, p.dropped_before_keyframe, p.aus.len()),
            (0, 2, 2)
        );
        // the same with an IDR: nothing is dropped
        v[0].data = vec![0, 0, 1, 0x65, 0x88];
        assert_eq!(prepare(v, None).unwrap().aus.len(), 4);
    }

    #[test]
    fn frames_before_the_first_keyframe_are_dropped_and_counted() {
        let mut v = gop(0, 4, false);
        v.extend(gop(12_000, 7, true));
        let p = prepare(v, None).unwrap();
        assert!(p.aus[0].key);
        assert_eq!(p.preroll, 0);
        assert_eq!(p.dropped_before_keyframe, 4);
        assert_eq!(p.aus.len(), 7);
    }

    #[test]
    fn pacing_is_even() {
        let sixty: Vec<u64> = (0..120).map(|i| 1000 + i * 1500).collect();
        let (kept, fps, dur) = pace_frames(&sixty, (60, 1), 30);
        assert_eq!((kept.len(), fps, dur), (60, (30, 1), 3000));
        assert!(kept.windows(2).all(|w| w[1] - w[0] == 3000));
        // 33.3 fps into 30: 60 frames in 2 s, on an even grid (the input's spacing is not kept)
        let fast: Vec<u64> = (0..67).map(|i| 1000 + i * 2700).collect();
        let (kept, _, _) = pace_frames(&fast, (100, 3), 30);
        assert_eq!(kept.len(), 60);
        assert!(kept.windows(2).all(|w| w[1] - w[0] == 3000));
        // 30 into 30 and 25 into 30: unchanged
        let thirty: Vec<u64> = (0..60).map(|i| i * 3000).collect();
        assert_eq!(pace_frames(&thirty, (30, 1), 30).0, thirty);
        assert_eq!(pace_frames(&thirty, (25, 1), 30).1, (25, 1));
        // 50 into 30 keeps 30 per second
        let fifty: Vec<u64> = (0..100).map(|i| i * 1800).collect();
        assert_eq!(pace_frames(&fifty, (50, 1), 30).0.len(), 60);
    }

    #[test]
    fn frame_rates() {
        let at = |step: f64, n: usize| -> Vec<u64> {
            (0..n)
                .map(|i| (1000.0 + i as f64 * step).round() as u64)
                .collect()
        };
        assert_eq!(estimate_fps(&at(3003.0, 10)), (30000, 1001));
        assert_eq!(estimate_fps(&at(1500.0, 10)), (60, 1));
        assert_eq!(estimate_fps(&at(3754.0, 10)), (24000, 1001));
        assert_eq!(estimate_fps(&at(2700.0, 67)), (100, 3));
        // millisecond clock (FLV): 33/34/33 ms steps
        let ms: Vec<u64> = (0..60).map(|i| (i * 1000 / 30) * 90).collect();
        assert_eq!(estimate_fps(&ms), (30, 1));
        // pictures in pairs on a 15 Hz clock: 30 pictures a second
        let pairs: Vec<u64> = (0..60).map(|i| (i / 2) * 6000).collect();
        assert_eq!(estimate_fps(&pairs), (30, 1));
        assert_eq!(estimate_fps(&[5]), (30, 1));
    }
}
