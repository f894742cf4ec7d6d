//! Frame accounting: what each branch and the decoder count, keep, drop and retime while a segment runs,
//! shared between the engine's thread and GStreamer's streaming threads (one lock, one condvar).
//!
//! * the decoder's output: preroll pictures (decoded for their references, never output) and pictures at
//!   or before the last one's PTS (duplicates) are dropped and counted ([`Shared::count_decoded`]);
//! * each branch, before its scaler: every frame, or one per slot of the profile's rate, retimed onto an
//!   even grid ([`pace_frame`], from [`paces`]); the caps state the branch's frame rate;
//! * each branch's appsink: the encoded frames in running time, and its EOS ([`collect_encoded`]).

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::segment::ticks_to_ns;
use crate::profiles::Profile;

#[derive(Debug, Clone)]
pub(super) struct OutFrame {
    pub(super) pts: u64,
    pub(super) dts: u64,
    pub(super) key: bool,
    pub(super) data: Vec<u8>,
}

/// How a branch paces its frames in the current segment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pace {
    /// Every frame, on its own timestamp (the input is not faster than the profile).
    #[default]
    Keep,
    /// At most `fps` frames a second, on an even grid from `origin` (pipeline ns): the frame that reaches a
    /// slot first (within `tolerance` ns, half an input frame) takes it and is retimed to the slot's time.
    Cap {
        origin: u64,
        fps: u32,
        tolerance: u64,
    },
}

#[derive(Debug, Default)]
pub(super) struct BranchState {
    /// Output size (pinned for the stream at the first decoded caps).
    pub(super) width: u32,
    pub(super) height: u32,
    /// Frame rate this branch outputs for the current segment.
    pub(super) fps: (u32, u32),
    pub(super) pace: Pace,
    /// The next free slot of [`Pace::Cap`].
    pub(super) next_slot: u64,
    /// Frames fed to the encoder.
    pub(super) kept: usize,
    pub(super) frames: Vec<OutFrame>,
    pub(super) eos: bool,
    /// Continuous mode: the segment's end reached the encoder (its EOS, held there), so `kept` is final.
    pub(super) input_done: bool,
}

#[derive(Debug, Default)]
pub(super) struct Shared {
    pub(super) branches: Vec<BranchState>,
    /// Every rendition's size, decided at the stream's first decoded caps and kept for the stream, so a
    /// source that changes resolution is scaled into the same box (letterboxed where its shape differs).
    pub(super) pinned: Vec<Option<(u32, u32)>>,
    /// Pipeline PTS of the preroll pictures (decoded for their references, never output).
    pub(super) preroll: HashSet<u64>,
    pub(super) preroll_decoded: usize,
    /// The last decoded picture's PTS in this segment (a picture at or before it is a duplicate).
    pub(super) last_pts: Option<u64>,
    pub(super) duplicates: usize,
    pub(super) decoded: usize,
    pub(super) error: Option<(String, String, String)>,
    /// Continuous mode: let the next EOS and flush through to the encoders (they are drained and restart).
    pub(super) drain_encoders: bool,
}

pub(super) type SharedRef = Arc<(Mutex<Shared>, Condvar)>;

/// Locks the state shared with the streaming threads. A lock poisoned by a panic is taken over rather than
/// unwrapped: the streaming threads run this from GStreamer callbacks, where a panic would abort the process.
pub(super) fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Counts one decoded picture at pipeline time `pts`: false when it is to be dropped (a preroll picture
    /// or a duplicate timestamp).
    pub(super) fn count_decoded(&mut self, pts: Option<u64>) -> bool {
        if let Some(pts) = pts {
            if self.preroll.contains(&pts) {
                self.preroll_decoded += 1;
                return false;
            }
            if self.last_pts.is_some_and(|last| pts <= last) {
                self.duplicates += 1;
                return false;
            }
            self.last_pts = Some(pts);
        }
        self.decoded += 1;
        true
    }
}

/// Paces one frame of a branch (the probe on its queue's source pad): keeps it, retimed onto the branch's
/// grid when it caps the rate, or drops it; a kept frame lasts one frame of the branch's rate.
pub(super) fn pace_frame(b: &mut BranchState, buf: &mut gst::Buffer) -> gst::PadProbeReturn {
    let Some(pts) = buf.pts().map(|t| t.nseconds()) else {
        return gst::PadProbeReturn::Drop;
    };
    let retimed = match b.pace {
        Pace::Keep => None,
        Pace::Cap {
            origin,
            fps,
            tolerance,
        } => {
            let since = pts.saturating_sub(origin) + tolerance;
            let slot = (u128::from(since) * u128::from(fps) / 1_000_000_000) as u64;
            if slot < b.next_slot {
                return gst::PadProbeReturn::Drop;
            }
            b.next_slot = slot + 1;
            Some(origin + ticks_to_ns(slot_ticks(slot, fps)))
        }
    };
    b.kept += 1;
    let dur = u64::from(b.fps.1) * 1_000_000_000 / u64::from(b.fps.0.max(1));
    let m = buf.make_mut();
    if let Some(t) = retimed {
        m.set_pts(gst::ClockTime::from_nseconds(t));
    }
    m.set_duration(gst::ClockTime::from_nseconds(dur));
    gst::PadProbeReturn::Ok
}

/// The probe before branch `i`'s scaler: paces its frames, and states its frame rate in its caps.
pub(super) fn add_pace_probe(queue: &gst::Element, shared: &SharedRef, i: usize) {
    let sh = shared.clone();
    queue.static_pad("src").unwrap().add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_pad, info| {
            let mut s = lock(&sh.0);
            let b = &mut s.branches[i];
            match &mut info.data {
                Some(gst::PadProbeData::Buffer(buf)) => return pace_frame(b, buf),
                Some(gst::PadProbeData::Event(ev)) => {
                    if let gst::EventView::Caps(c) = ev.view() {
                        let mut caps = c.caps().to_owned();
                        if b.fps.0 > 0 {
                            caps.make_mut().set(
                                "framerate",
                                gst::Fraction::new(b.fps.0 as i32, b.fps.1 as i32),
                            );
                        }
                        *ev = gst::event::Caps::new(&caps);
                    }
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
}

/// Continuous mode: the gate in front of branch `i`'s encoder holds a segment's EOS (recording that the
/// segment's frames are all in) and the flush after it, so the encoder runs on into the next segment; with
/// [`Shared::drain_encoders`] set, both go through and the encoder drains and restarts.
pub(super) fn add_encoder_gate(encoder: &gst::Element, shared: &SharedRef, i: usize) {
    let sh = shared.clone();
    encoder.static_pad("sink").unwrap().add_probe(
        gst::PadProbeType::EVENT_DOWNSTREAM | gst::PadProbeType::EVENT_FLUSH,
        move |_pad, info| {
            let Some(gst::PadProbeData::Event(ev)) = &info.data else {
                return gst::PadProbeReturn::Ok;
            };
            let (m, cv) = &*sh;
            let mut s = lock(m);
            if s.drain_encoders {
                return gst::PadProbeReturn::Ok;
            }
            match ev.type_() {
                gst::EventType::Eos => {
                    s.branches[i].input_done = true;
                    cv.notify_all();
                }
                gst::EventType::FlushStart | gst::EventType::FlushStop => {}
                _ => return gst::PadProbeReturn::Ok,
            }
            // held here: taken out of the probe (and released) rather than dropped, which GStreamer's
            // event path answers with a critical warning for these events
            info.data = None;
            gst::PadProbeReturn::Handled
        },
    );
}

/// Branch `i`'s appsink: every encoded frame into its state, in running time, and its EOS, with a wake-up
/// for the engine's thread.
pub(super) fn collect_encoded(sink: &gst_app::AppSink, shared: &SharedRef, i: usize) {
    let sh = shared.clone();
    let sh2 = shared.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buf = sample.buffer().ok_or(gst::FlowError::Error)?;
                let map = buf.map_readable().map_err(|_| gst::FlowError::Error)?;
                // encoders shift their output segment (GstVideoEncoder adds 1000 h so that DTS stay
                // positive): work in running time, which is the input's timeline
                let (pts, dts) = running_times(&sample, buf);
                let f = OutFrame {
                    pts,
                    dts,
                    key: !buf.flags().contains(gst::BufferFlags::DELTA_UNIT),
                    data: map.as_slice().to_vec(),
                };
                let (m, cv) = &*sh;
                lock(m).branches[i].frames.push(f);
                // the continuous mode counts a segment's frames as they come
                cv.notify_all();
                Ok(gst::FlowSuccess::Ok)
            })
            .eos(move |_| {
                let (m, cv) = &*sh2;
                lock(m).branches[i].eos = true;
                cv.notify_all();
            })
            .build(),
    );
}

/// PTS and DTS of a sample's buffer as running time in ns (DTS falls back to PTS); a time before the
/// segment's start is 0.
fn running_times(sample: &gst::Sample, buf: &gst::BufferRef) -> (u64, u64) {
    let (pts, dts) = signed_running_times(sample, buf);
    (pts.max(0) as u64, dts.max(0) as u64)
}

/// PTS and DTS of a sample's buffer as signed running time in ns (DTS falls back to PTS): an encoder's first
/// DTS lie before the start when it reorders.
pub(crate) fn signed_running_times(sample: &gst::Sample, buf: &gst::BufferRef) -> (i64, i64) {
    let seg = sample
        .segment()
        .and_then(|s| s.downcast_ref::<gst::ClockTime>().cloned());
    let rt = |t: Option<gst::ClockTime>| -> Option<i64> {
        let t = t?;
        match &seg {
            Some(seg) => match seg.to_running_time_full(t)? {
                gst::Signed::Positive(v) => Some(v.nseconds() as i64),
                gst::Signed::Negative(v) => Some(-(v.nseconds() as i64)),
            },
            None => Some(t.nseconds() as i64),
        }
    };
    let pts = rt(buf.pts()).unwrap_or(0);
    let dts = rt(buf.dts()).unwrap_or(pts);
    (pts, dts)
}

/// The time of slot `slot` on a grid of `fps` slots a second, in 90 kHz ticks.
pub(super) fn slot_ticks(slot: u64, fps: u32) -> u64 {
    (slot * 90_000 + u64::from(fps) / 2) / u64::from(fps.max(1))
}

/// How each branch paces its frames, from the rate of the frames it scales: the input's, or its parent
/// branch's. A branch caps only when its input is more than 2 % faster than its profile.
pub(super) fn paces(
    profiles: &[Profile],
    parents: &[Option<usize>],
    in_fps: (u32, u32),
) -> Vec<((u32, u32), bool)> {
    let rate = |f: (u32, u32)| f64::from(f.0) / f64::from(f.1.max(1));
    let mut out: Vec<Option<((u32, u32), bool)>> = vec![None; profiles.len()];
    while out.iter().any(Option::is_none) {
        for i in 0..profiles.len() {
            if out[i].is_some() {
                continue;
            }
            let src = match parents[i] {
                None => in_fps,
                Some(p) => match out[p] {
                    Some((f, _)) => f,
                    None => continue,
                },
            };
            let cap = profiles[i].fps;
            out[i] = Some(if rate(src) > f64::from(cap) * 1.02 {
                ((cap, 1), true)
            } else {
                (src, false)
            });
        }
    }
    out.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Topology, scale_parents};

    #[test]
    fn branches_cap_only_what_is_faster_than_their_profile() {
        let p = |w, h, fps| Profile::new("x", w, h, fps, 1000).unwrap();
        let ladder = [p(1280, 720, 60), p(640, 360, 30), p(426, 240, 30)];
        let parents = scale_parents(&ladder, Topology::FanLargest);
        assert_eq!(
            paces(&ladder, &parents, (60, 1)),
            [((60, 1), false), ((30, 1), true), ((30, 1), true)]
        );
        // 33.3 fps into 30: capped; 30.3 (within 2 %) and 25: kept at the input's rate
        assert_eq!(paces(&ladder, &parents, (100, 3))[1], ((30, 1), true));
        assert_eq!(paces(&ladder, &parents, (1000, 33))[1], ((1000, 33), false));
        assert_eq!(paces(&ladder, &parents, (25, 1))[2], ((25, 1), false));
        assert_eq!(slot_ticks(3, 30), 9000);
        assert_eq!(slot_ticks(1, 24), 3750);
    }
}
