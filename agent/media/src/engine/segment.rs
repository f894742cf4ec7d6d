//! Segment cutting, in the three modes. A segment's access units are pushed, then EOS; the decoder drains.
//!
//! * **Restart**: every encoder drains too and its appsink collects the encoded frames up to its EOS; then
//!   one flush (flush-start and flush-stop from the appsrc) returns every element to a clean state without
//!   leaving PLAYING, and the encoders start afresh with the next segment. So every output segment starts
//!   with an IDR and holds exactly its input segment's frames.
//! * **Continuous**: before the first access unit, every encoder is told to make the next frame an IDR with
//!   its headers (a downstream force-key-unit event); the gate in front of each encoder
//!   ([`super::frames::add_encoder_gate`]) holds the EOS and the flush, so the encoders never drain or
//!   restart. A branch's segment is complete when the EOS reached its encoder and the encoder has returned
//!   as many frames as it was fed. An encoder that holds frames back for longer than [`STALL`] is drained
//!   (EOS and flush let through), which restarts it. The segments lie one after the other on the
//!   pipeline's timeline ([`Continuity`]), so an encoder sees one stream.
//! * **Lookahead**: as continuous, but the encoders keep their lookahead and B-frames, so each holds a
//!   segment's last frames until the next segment's come. A segment's call returns once its input reached
//!   every encoder; it stays [`Pending`] (its frames accumulate as the encoders return them) and is
//!   completed by the next segment's call, which splits the encoded frames at its own first frame's PTS:
//!   the pending segment is complete in a branch when all it fed came out, or the next segment's IDR did.
//!   [`Transcoder::drain_pending`] completes it without a next segment (the encoders drain and restart).
//!
//! A failed segment cycles the pipeline through NULL instead ([`Transcoder::reset`]).
//!
//! Timestamps: a segment's 90 kHz times are mapped into the pipeline relative to its first pushed DTS, plus
//! [`PIPE_OFFSET_NS`] (restart) or the place that follows the previous segment (continuous, lookahead), and
//! back.

use std::sync::PoisonError;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_video as gst_video;

use super::codecs::{avc1_codec, mp4a_codec};
use super::frames::{BranchState, OutFrame, Pace, Shared, lock, paces};
use super::{
    Rendition, SegmentError, SegmentMode, SegmentOutput, SegmentStats, Transcoder, scale_parents,
};
use crate::timeline::{self, Dropped, estimate_fps};
use crate::ts::{self, EncodedFrame, TsMuxer, VideoAu};

/// Offset added to every timestamp inside the pipeline, so DTS of reordered frames stay positive.
pub(super) const PIPE_OFFSET_NS: u64 = 10_000_000_000;

/// Continuous mode: how long an encoder may sit on frames it was fed, once its segment's input is complete,
/// before it is drained.
pub(super) const STALL: Duration = Duration::from_millis(1500);

/// Continuous mode: where the previous segment lay on the pipeline's timeline.
#[derive(Debug, Clone, Copy)]
pub(super) struct Continuity {
    /// Its first pushed DTS (90 kHz) and where that lies in the pipeline (ns).
    base: u64,
    zero_ns: u64,
    /// Its last frame's pipeline PTS, and one frame's duration.
    last_pts_ns: u64,
    frame_ns: u64,
}

impl Continuity {
    /// Where a segment whose first pushed DTS is `base` and whose earliest own PTS lies `first_rel` ticks
    /// after it goes: at its real distance from this segment when that keeps the timeline moving forward by
    /// less than a minute, else (a discontinuity, a clock going back) right after this segment's last frame.
    fn next_zero_ns(&self, base: u64, first_rel: i64) -> u64 {
        let at = |zero: u64| zero as i64 + rel_ns(first_rel);
        let d = timeline::rel(base, self.base);
        if (0..60 * 90_000).contains(&d) {
            let zero = self.zero_ns + ticks_to_ns(d as u64);
            if at(zero) > self.last_pts_ns as i64 {
                return zero;
            }
        }
        let zero = (self.last_pts_ns + self.frame_ns) as i64 - rel_ns(first_rel);
        zero.max(PIPE_OFFSET_NS as i64) as u64
    }
}

/// Signed 90 kHz ticks as signed ns.
fn rel_ns(ticks: i64) -> i64 {
    ticks_to_ns(ticks.unsigned_abs()) as i64 * ticks.signum()
}

/// How far before the segment's first DTS a timestamp may lie (less than the pipeline offset, so that every
/// pipeline time stays positive).
const MAX_TICKS_BEFORE: i64 = 5 * 90_000;
/// How far after the segment's first DTS a timestamp may lie.
const MAX_TICKS_AFTER: i64 = 600 * 90_000;

/// A segment's timestamps, relative to its first DTS (across the 33-bit wrap), must lie within
/// [`MAX_TICKS_BEFORE`] before and [`MAX_TICKS_AFTER`] after it: a jump beyond that is a broken or
/// discontinuous timeline, and keeping every timestamp in that window keeps the engine's timestamp
/// arithmetic in range.
pub fn check_timestamps(video: &[VideoAu]) -> Result<(), String> {
    let Some(first) = video.first() else {
        return Ok(());
    };
    let base = first.dts;
    for (n, au) in video.iter().enumerate() {
        for (what, t) in [("PTS", au.pts), ("DTS", au.dts)] {
            let d = t.wrapping_sub(base) & ts::TS_MASK;
            let rel = if d > ts::TS_MASK / 2 {
                d as i64 - (ts::TS_MASK as i64 + 1)
            } else {
                d as i64
            };
            if !(-MAX_TICKS_BEFORE..=MAX_TICKS_AFTER).contains(&rel) {
                return Err(format!(
                    "video access unit {n}: {what} {t} is {:.3} s from the first DTS {base} (allowed: {} s before to {} s after)",
                    rel as f64 / 90_000.0,
                    MAX_TICKS_BEFORE / 90_000,
                    MAX_TICKS_AFTER / 90_000
                ));
            }
        }
    }
    Ok(())
}

/// Convert 90 kHz ticks to ns and back without drift.
pub(super) fn ticks_to_ns(t: u64) -> u64 {
    (t as u128 * 100_000 / 9) as u64
}
pub(super) fn ns_to_ticks(ns: u64) -> u64 {
    ((ns as u128 * 9 + 50_000) / 100_000) as u64
}

/// A segment in the pipeline: where it lies on the pipeline's timeline, and what its output is assembled
/// from once its frames are out.
pub(super) struct Placed {
    seq: u64,
    /// Its first pushed DTS (90 kHz) and where that lies in the pipeline (ns).
    base: u64,
    zero_ns: u64,
    /// The pipeline PTS of its earliest own frame: an encoded frame before it is an earlier segment's.
    origin: u64,
    in_fps: (u32, u32),
    input_duration: f64,
    own_frames: usize,
    input_frames: usize,
    dropped_before_keyframe: usize,
    repairs: Vec<String>,
    start: Instant,
    /// What the decoder returned (final once the segment's end reached every encoder).
    decoded: usize,
    preroll_decoded: usize,
    duplicates: usize,
    /// Per branch: the frames fed to its encoder, and its frame rate.
    fed: Vec<(usize, (u32, u32))>,
}

impl Placed {
    pub(super) fn seq(&self) -> u64 {
        self.seq
    }

    /// A pipeline time back on the segment's 90 kHz timeline.
    fn ticks_at(&self, ns: u64) -> u64 {
        let r = ns as i64 - self.zero_ns as i64;
        let ticks = ns_to_ticks(r.unsigned_abs()) as i64 * r.signum();
        (self.base as i64 + ticks).rem_euclid(ts::TS_MASK as i64 + 1) as u64
    }
}

/// Lookahead mode: the segment whose last frames are still in the encoders.
pub(super) struct Pending {
    pub(super) placed: Placed,
    /// Its audio (its video went into the pipeline).
    pub(super) dm: ts::Demuxed,
    /// Its bytes and the preroll it was decoded after, to transcode it again should the next segment take
    /// the pipeline down with it.
    pub(super) data: Vec<u8>,
    pub(super) previous_tail: Option<Vec<VideoAu>>,
}

/// How a segment's run in the pipeline ended.
pub(super) enum Ran {
    /// Its output, and (lookahead mode) the previous segment's, which its first frames completed.
    Done {
        previous: Option<Result<SegmentOutput, SegmentError>>,
        output: Result<SegmentOutput, SegmentError>,
    },
    /// Lookahead mode: its input is all in the encoders, which still hold its last frames.
    Held {
        previous: Option<Result<SegmentOutput, SegmentError>>,
        placed: Placed,
    },
}

/// The failure a streaming thread recorded (a bus error), as the segment's error.
fn take_failure(s: &mut Shared, seq: u64) -> Result<(), SegmentError> {
    match s.error.take() {
        Some((element, message, debug)) => Err(SegmentError::Pipeline {
            seq,
            element,
            message,
            debug,
        }),
        None => Ok(()),
    }
}

impl Transcoder {
    /// Pushes one prepared segment and waits for what completes it: its encoded frames (restart,
    /// continuous), or its input's end at every encoder and the pending segment's last frames (lookahead).
    /// An error is a failure in the pipeline, which the caller recovers from by a reset.
    pub(super) fn run_segment(
        &mut self,
        seq: u64,
        dm: &ts::Demuxed,
        prep: &mut timeline::Prepared,
        input_frames: usize,
        start: Instant,
        pending: Option<&Pending>,
    ) -> Result<Ran, SegmentError> {
        let mode = self.cfg.mode;
        let runs_on = mode.runs_on();
        let aus = &prep.aus;
        let own = &aus[prep.preroll..];
        // the first pushed access unit (the preroll's, if any) anchors the pipeline clock, so that every
        // pushed timestamp stays within check_timestamps' window of it
        let base = aus[0].dts;
        // ticks relative to the first DTS, unwrapped across the 33-bit wrap
        let rel = |t: u64| timeline::rel(t, base);
        let first_rel = own.iter().map(|a| rel(a.pts)).min().unwrap_or(0);
        // where the first DTS lies in the pipeline
        let zero_ns = match (&self.continuity, runs_on) {
            (Some(c), true) => c.next_zero_ns(base, first_rel),
            _ => PIPE_OFFSET_NS,
        };
        let to_pipe = |t: u64| -> u64 { (zero_ns as i64 + rel_ns(rel(t))) as u64 };
        let mut pts_rel: Vec<u64> = own
            .iter()
            .map(|a| (rel(a.pts) + 90_000 * 1000) as u64)
            .collect();
        pts_rel.sort_unstable();
        let in_fps = estimate_fps(&pts_rel);
        let in_dur_ticks = 90_000 * u64::from(in_fps.1) / u64::from(in_fps.0.max(1));
        let input_duration =
            (pts_rel.last().unwrap() - pts_rel.first().unwrap() + in_dur_ticks) as f64 / 90_000.0;
        let origin = own.iter().map(|a| to_pipe(a.pts)).min().unwrap_or(zero_ns);

        // how each branch paces its frames (a branch scaling another's output paces that one's frames)
        let parents = scale_parents(&self.cfg.profiles, self.cfg.layout.topology);
        let paces = paces(&self.cfg.profiles, &parents, in_fps);
        {
            let mut s = lock(&self.shared.0);
            s.decoded = 0;
            s.error = None;
            s.preroll = aus[..prep.preroll].iter().map(|a| to_pipe(a.pts)).collect();
            s.preroll_decoded = 0;
            s.last_pts = None;
            s.duplicates = 0;
            for (i, b) in s.branches.iter_mut().enumerate() {
                let (fps, cap) = paces[i];
                // half a frame of what this branch scales, so jittery timestamps keep their slots
                let src = match parents[i] {
                    None => in_fps,
                    Some(p) => paces[p].0,
                };
                let tolerance = 500_000_000 * u64::from(src.1) / u64::from(src.0.max(1));
                b.pace = if cap {
                    Pace::Cap {
                        origin,
                        fps: fps.0,
                        tolerance,
                    }
                } else {
                    Pace::Keep
                };
                b.fps = fps;
                b.next_slot = 0;
                b.kept = 0;
                // the pending segment's frames still to come join those it has out already
                if pending.is_none() {
                    b.frames.clear();
                }
                b.eos = false;
                b.input_done = false;
            }
        }
        // the input caps carry the frame rate, so a rate change reaches every branch as a caps event
        let caps = gst::Caps::builder("video/x-h264")
            .field("stream-format", "byte-stream")
            .field("alignment", "au")
            .field(
                "framerate",
                gst::Fraction::new(in_fps.0 as i32, in_fps.1 as i32),
            )
            .build();
        if self.last_caps.as_ref() != Some(&caps) {
            self.appsrc.set_caps(Some(&caps));
            self.last_caps = Some(caps);
        }
        if runs_on {
            // the segment's first frame out of every encoder is an IDR with its SPS and PPS
            for br in &self.branches {
                let fku = gst_video::DownstreamForceKeyUnitEvent::builder()
                    .all_headers(true)
                    .count(seq.min(u64::from(u32::MAX)) as u32)
                    .build();
                if !br.encoder_sink.send_event(fku) {
                    tracing::warn!(seq, rendition = %br.profile.name, "the encoder refused the keyframe request");
                }
            }
        }
        let last_pts_ns = own.iter().map(|a| to_pipe(a.pts)).max().unwrap_or(zero_ns);
        for au in aus {
            let mut buf = gst::Buffer::from_slice(au.data.clone());
            {
                let b = buf.get_mut().unwrap();
                b.set_pts(gst::ClockTime::from_nseconds(to_pipe(au.pts)));
                b.set_dts(gst::ClockTime::from_nseconds(to_pipe(au.dts)));
                b.set_duration(gst::ClockTime::from_nseconds(ticks_to_ns(in_dur_ticks)));
                if !au.key {
                    b.set_flags(gst::BufferFlags::DELTA_UNIT);
                }
            }
            if let Err(e) = self.appsrc.push_buffer(buf) {
                return Err(self.pipeline_error(seq).unwrap_or(SegmentError::Pipeline {
                    seq,
                    element: "src".into(),
                    message: format!("push failed: {e:?}"),
                    debug: String::new(),
                }));
            }
        }
        let _ = self.appsrc.send_event(gst::event::Eos::new());
        if runs_on {
            self.continuity = Some(Continuity {
                base,
                zero_ns,
                last_pts_ns,
                frame_ns: ticks_to_ns(in_dur_ticks),
            });
        }

        // wait for every branch's segment, an error, or the watchdog
        let deadline = start + Duration::from_millis(self.cfg.watchdog_ms);
        let (m, cv) = &*self.shared;
        let mut s = lock(m);
        // lookahead mode: the pending segment is complete in a branch once its encoder returned every frame
        // it was fed, or a frame of this segment (whose forced IDR closes the pending one's last GOP)
        let pending_out = |s: &Shared| {
            pending.is_none_or(|p| {
                s.branches.iter().zip(&p.placed.fed).all(|(b, &(fed, _))| {
                    b.frames.iter().filter(|f| f.pts < origin).count() >= fed
                        || b.frames.iter().any(|f| f.pts >= origin)
                })
            })
        };
        // the encoders' output so far and since when, and whether the encoders are being drained
        let mut progress = (0usize, Instant::now());
        let mut draining = false;
        loop {
            if s.error.is_some() {
                break;
            }
            let held = runs_on && !draining;
            let done = |b: &BranchState| match (held, mode) {
                (false, _) => b.eos,
                (true, SegmentMode::Lookahead) => b.input_done,
                (true, _) => b.input_done && b.frames.len() >= b.kept,
            };
            if s.branches.iter().all(done) && (!held || pending_out(&s)) {
                break;
            }
            let stage = |s: &Shared| {
                let branches = s
                    .branches
                    .iter()
                    .zip(&self.branches)
                    .filter(|(b, _)| !done(b))
                    .map(|(b, br)| {
                        format!(
                            "{}: {} of {} frames",
                            br.profile.name,
                            b.frames.len(),
                            b.kept
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("decoder: {} of {} frames; {branches}", s.decoded, own.len())
            };
            let now = Instant::now();
            if held && s.branches.iter().all(|b| b.input_done) {
                let out: usize = s.branches.iter().map(|b| b.frames.len()).sum();
                if out != progress.0 {
                    progress = (out, now);
                } else if now.duration_since(progress.1) >= STALL {
                    tracing::warn!(
                        seq,
                        stage = %stage(&s),
                        "an encoder holds frames back beyond the segment that follows them: draining the encoders (they restart)"
                    );
                    drop(s);
                    self.drain_encoders();
                    draining = true;
                    s = lock(m);
                    continue;
                }
            }
            if now >= deadline {
                return Err(SegmentError::Timeout {
                    seq,
                    waited_ms: self.cfg.watchdog_ms,
                    stage: stage(&s),
                });
            }
            let wake = if held {
                deadline.min(now + STALL / 4)
            } else {
                deadline
            };
            s = cv
                .wait_timeout(s, wake - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        take_failure(&mut s, seq)?;
        if s.decoded == 0 {
            return Err(SegmentError::Incomplete {
                seq,
                element: self.decoder_name.clone(),
                got: 0,
                expected: own.len(),
                why: "nothing in the segment could be decoded",
            });
        }
        let placed = Placed {
            seq,
            base,
            zero_ns,
            origin,
            in_fps,
            input_duration,
            own_frames: own.len(),
            input_frames,
            dropped_before_keyframe: prep.dropped_before_keyframe,
            repairs: std::mem::take(&mut prep.repairs),
            start,
            decoded: s.decoded,
            preroll_decoded: s.preroll_decoded,
            duplicates: s.duplicates,
            fed: s.branches.iter().map(|b| (b.kept, b.fps)).collect(),
        };
        // this segment's frames, and the pending one's before them
        let mut earlier = Vec::new();
        let mut frames = Vec::new();
        for b in &mut s.branches {
            let all = std::mem::take(&mut b.frames);
            if pending.is_some() {
                let (p, c): (Vec<_>, Vec<_>) = all.into_iter().partition(|f| f.pts < origin);
                earlier.push(p);
                frames.push(c);
            } else {
                frames.push(all);
            }
        }
        let complete = mode != SegmentMode::Lookahead || draining;
        if !complete {
            // the rest of this segment's frames join these as the encoders return them
            for (b, f) in s.branches.iter_mut().zip(frames.drain(..)) {
                b.frames = f;
            }
        }
        let sizes: Vec<(u32, u32)> = s.branches.iter().map(|b| (b.width, b.height)).collect();
        drop(s);
        let previous = pending.map(|p| self.assemble(&p.placed, &p.dm, earlier, &sizes));
        Ok(if complete {
            Ran::Done {
                previous,
                output: self.assemble(&placed, dm, frames, &sizes),
            }
        } else {
            Ran::Held { previous, placed }
        })
    }

    /// Lets the next EOS and flush through to the encoders and sends them an EOS: they return every frame
    /// they hold, and restart at the flush.
    fn drain_encoders(&self) {
        lock(&self.shared.0).drain_encoders = true;
        for br in &self.branches {
            br.encoder_sink.send_event(gst::event::Eos::new());
        }
    }

    /// Lookahead mode: completes the pending segment by draining the encoders (its last frames come out;
    /// the encoders restart at the flush that follows).
    pub(super) fn drain_pending(&mut self, p: &Pending) -> Result<SegmentOutput, SegmentError> {
        let seq = p.placed.seq;
        let deadline = Instant::now() + Duration::from_millis(self.cfg.watchdog_ms);
        self.drain_encoders();
        let (m, cv) = &*self.shared;
        let mut s = lock(m);
        while s.error.is_none() && !s.branches.iter().all(|b| b.eos) {
            let now = Instant::now();
            if now >= deadline {
                return Err(SegmentError::Timeout {
                    seq,
                    waited_ms: self.cfg.watchdog_ms,
                    stage: "draining the encoders".into(),
                });
            }
            s = cv
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        take_failure(&mut s, seq)?;
        let frames: Vec<Vec<OutFrame>> = s
            .branches
            .iter_mut()
            .map(|b| std::mem::take(&mut b.frames))
            .collect();
        let sizes: Vec<(u32, u32)> = s.branches.iter().map(|b| (b.width, b.height)).collect();
        drop(s);
        self.assemble(&p.placed, &p.dm, frames, &sizes)
    }

    /// A segment's renditions from its encoded frames (per branch, in decode order), muxed with its audio.
    fn assemble(
        &mut self,
        p: &Placed,
        dm: &ts::Demuxed,
        frames: Vec<Vec<OutFrame>>,
        sizes: &[(u32, u32)],
    ) -> Result<SegmentOutput, SegmentError> {
        let seq = p.seq;
        let dropped = Dropped {
            before_keyframe: p.dropped_before_keyframe,
            undecodable: p.own_frames.saturating_sub(p.decoded + p.duplicates),
            duplicate_timestamp: p.duplicates,
        };
        // audio: AAC is carried as it came; other codecs are dropped (players of the renditions take AAC)
        let audio_codec = dm
            .audio
            .first()
            .filter(|_| dm.audio_stream_type == Some(ts::STREAM_TYPE_AAC_ADTS))
            .and_then(|a| mp4a_codec(&a.pes));
        let (audio, audio_type, audio_dropped): (&[ts::AudioPes], _, _) =
            match (dm.audio.is_empty(), &audio_codec) {
                (true, _) => (&[], None, None),
                (false, Some(_)) => (
                    &dm.audio,
                    dm.audio_stream_type
                        .map(|t| (t, dm.audio_descriptors.as_slice())),
                    None,
                ),
                (false, None) => (
                    &[],
                    None,
                    Some(format!(
                        "audio stream type {:#04x} is not AAC with ADTS framing: not carried",
                        dm.audio_stream_type.unwrap_or(0)
                    )),
                ),
            };
        let mut renditions = Vec::with_capacity(self.branches.len());
        let self_contained = self.cfg.self_contained_segments;
        for (i, (br, out)) in self.branches.iter_mut().zip(frames).enumerate() {
            let (fed, fps) = p.fed[i];
            let (width, height) = sizes[i];
            let enc_name = format!("enc-{}", br.profile.name);
            if out.is_empty() {
                return Err(SegmentError::Incomplete {
                    seq,
                    element: enc_name,
                    got: 0,
                    expected: fed,
                    why: "the encoder returned no frame",
                });
            }
            if out.len() != fed {
                tracing::warn!(
                    seq,
                    rendition = %br.profile.name,
                    fed,
                    out = out.len(),
                    "the encoder returned a different number of frames than it was fed"
                );
            }
            if !out[0].key {
                return Err(SegmentError::Incomplete {
                    seq,
                    element: enc_name,
                    got: 0,
                    expected: 1,
                    why: "first output frame is not a keyframe",
                });
            }
            let encoded: Vec<EncodedFrame> = out
                .iter()
                .map(|f| EncodedFrame {
                    pts: p.ticks_at(f.pts),
                    dts: p.ticks_at(f.dts),
                    key: f.key,
                    data: &f.data,
                })
                .collect();
            let video_bytes = out.iter().map(|f| f.data.len()).sum();
            if self_contained {
                br.muxer = TsMuxer::new();
            }
            let data = br.muxer.mux_segment(&encoded, audio, audio_type);
            let mut codecs = avc1_codec(&out[0].data).unwrap_or_else(|| "avc1.640028".into());
            if let Some(a) = audio_codec.as_ref().filter(|_| !audio.is_empty()) {
                codecs.push(',');
                codecs.push_str(a);
            }
            let first = out.iter().map(|f| f.pts).min().unwrap_or(p.origin);
            let last = out.iter().map(|f| f.pts).max().unwrap_or(p.origin);
            let frame_ns = 1_000_000_000 * u64::from(fps.1) / u64::from(fps.0.max(1));
            renditions.push(Rendition {
                profile: br.profile.name.clone(),
                data,
                width,
                height,
                fps,
                frames: out.len(),
                frames_fed: fed,
                duration: (last - first + frame_ns) as f64 / 1e9,
                first_pts: p.ticks_at(first),
                codecs,
                video_bytes,
            });
        }
        Ok(SegmentOutput {
            seq,
            renditions,
            stats: SegmentStats {
                wall: p.start.elapsed(),
                input_frames: p.input_frames,
                decoded_frames: p.decoded,
                preroll_frames: p.preroll_decoded,
                dropped,
                repairs: p.repairs.clone(),
                input_duration: p.input_duration,
                input_fps: p.in_fps,
                has_audio: !audio.is_empty(),
                audio_dropped,
                mode: self.cfg.mode,
            },
        })
    }

    pub(super) fn pipeline_error(&self, seq: u64) -> Option<SegmentError> {
        let s = lock(&self.shared.0);
        s.error
            .clone()
            .map(|(element, message, debug)| SegmentError::Pipeline {
                seq,
                element,
                message,
                debug,
            })
    }

    /// After a good segment: flush every element back to a clean state, staying in PLAYING.
    pub(super) fn flush(&mut self) -> Result<(), String> {
        if !self.appsrc.send_event(gst::event::FlushStart::new()) {
            return self.reset();
        }
        if !self.appsrc.send_event(gst::event::FlushStop::new(true)) {
            return self.reset();
        }
        // encoders drained at this segment's end have been flushed with it: hold the next segment's again
        lock(&self.shared.0).drain_encoders = false;
        Ok(())
    }

    /// After a failure: cycle the same pipeline through NULL (the elements are kept).
    pub(super) fn reset(&mut self) -> Result<(), String> {
        self.pipeline
            .set_state(gst::State::Null)
            .map_err(|e| format!("to NULL: {e}"))?;
        {
            let mut s = lock(&self.shared.0);
            s.error = None;
            s.drain_encoders = false;
            for b in &mut s.branches {
                *b = BranchState::default();
            }
        }
        self.last_caps = None;
        self.pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| format!("to PLAYING: {e}"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuous_segments_follow_each_other_on_the_timeline() {
        // the previous segment: first DTS at tick 900_000 (10 s) placed at the pipeline offset, its last frame
        // 1.9 s later, frames of 1/30 s
        let c = Continuity {
            base: 900_000,
            zero_ns: PIPE_OFFSET_NS,
            last_pts_ns: PIPE_OFFSET_NS + 1_900_000_000,
            frame_ns: 33_333_333,
        };
        // the next one 2 s later: at its real distance
        assert_eq!(
            c.next_zero_ns(900_000 + 180_000, 0),
            PIPE_OFFSET_NS + 2_000_000_000
        );
        // across the 33-bit wrap: still its real distance
        let w = Continuity {
            base: ts::TS_MASK + 1 - 90_000,
            ..c
        };
        assert_eq!(w.next_zero_ns(90_000, 0), PIPE_OFFSET_NS + 2_000_000_000);
        // a clock that went back, or jumped an hour: right after the previous segment's last frame
        let after = PIPE_OFFSET_NS + 1_900_000_000 + 33_333_333;
        assert_eq!(c.next_zero_ns(0, 0), after);
        assert_eq!(c.next_zero_ns(900_000 + 3600 * 90_000, 0), after);
        // a segment that overlaps the previous one's frames: after them, its earliest own frame first
        assert_eq!(c.next_zero_ns(900_000 + 90_000, 9_000), after - 100_000_000);
    }

    #[test]
    fn ns_ticks_roundtrip() {
        for t in [0u64, 1, 3003, 90_000, 8_589_934_591] {
            assert_eq!(ns_to_ticks(ticks_to_ns(t)), t);
        }
    }
}
