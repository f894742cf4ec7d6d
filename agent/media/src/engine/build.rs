//! Pipeline construction: the decode chain, one branch per rendition (scaler, size filter, encoder, appsink)
//! hanging off the decoded frames or off a larger rendition's scaled frames, and the probes that decide each
//! rendition's size from the decoded caps. The frame accounting the probes do is in [`super::frames`].

use std::str::FromStr;
use std::sync::{Arc, Condvar, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::frames::{self, BranchState, Shared, SharedRef, lock};
use super::{Branch, EngineConfig, SegmentMode, Transcoder, scale_parents};
use crate::backend::EncodeParams;
use crate::ts::TsMuxer;

/// Errors building the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("GStreamer init failed: {0}")]
    Init(String),
    #[error("no profiles configured")]
    NoProfiles,
    #[error("profile {0}")]
    Profile(#[from] crate::profiles::ProfileError),
    #[error("element {factory}: cannot create (plugin missing?): {why}")]
    Element { factory: String, why: String },
    #[error("element {element}: property {property}={value:?}: {why}")]
    Property {
        element: String,
        property: String,
        value: String,
        why: String,
    },
    #[error("cannot link {from} -> {to}: {why}")]
    Link {
        from: String,
        to: String,
        why: String,
    },
    #[error("segment mode: {0}")]
    Mode(&'static str),
    #[error("pipeline state change to {state:?} failed: {why}")]
    State { state: gst::State, why: String },
}

pub(super) fn make(factory: &str, name: &str) -> Result<gst::Element, BuildError> {
    gst::ElementFactory::make(factory)
        .name(name)
        .build()
        .map_err(|e| BuildError::Element {
            factory: factory.to_string(),
            why: e.to_string(),
        })
}

/// Set a property from its string form, with a typed error instead of a panic.
pub fn set_prop(el: &gst::Element, name: &str, value: &str) -> Result<(), BuildError> {
    let err = |why: String| BuildError::Property {
        element: el.name().to_string(),
        property: name.to_string(),
        value: value.to_string(),
        why,
    };
    let pspec = el
        .find_property(name)
        .ok_or_else(|| err("no such property".into()))?;
    let v =
        gst::glib::Value::deserialize_with_pspec(value, &pspec).map_err(|e| err(e.to_string()))?;
    el.set_property_from_value(name, &v);
    Ok(())
}

fn link(a: &gst::Element, b: &gst::Element) -> Result<(), BuildError> {
    a.link(b).map_err(|e| BuildError::Link {
        from: a.name().to_string(),
        to: b.name().to_string(),
        why: e.to_string(),
    })
}

/// Fit (w x h, pixel aspect par) into the box (bw x bh) keeping the display aspect, with square pixels and
/// even dimensions, never wider or taller than the coded picture (no upscaling, also of non-square pixels).
pub fn fit_box(w: u32, h: u32, par: (i32, i32), bw: u32, bh: u32) -> (u32, u32) {
    let dw = f64::from(w) * f64::from(par.0.max(1)) / f64::from(par.1.max(1));
    let dh = f64::from(h);
    let s = (f64::from(bw.min(w)) / dw)
        .min(f64::from(bh.min(h)) / dh)
        .min(1.0);
    let even = |x: f64| ((x / 2.0).round() as u32).max(1) * 2;
    (even(dw * s), even(dh * s))
}

impl Transcoder {
    /// Build the pipeline and bring it to PLAYING (it idles until the first segment).
    pub fn new(cfg: EngineConfig) -> Result<Self, BuildError> {
        gst::init().map_err(|e| BuildError::Init(e.to_string()))?;
        if cfg.profiles.is_empty() {
            return Err(BuildError::NoProfiles);
        }
        if cfg.mode.runs_on() && cfg.self_contained_segments {
            return Err(BuildError::Mode(
                "self-contained segments need the restart mode (the encoders restart at every segment)",
            ));
        }
        for p in &cfg.profiles {
            p.validate()?;
        }
        let pipeline = gst::Pipeline::with_name("media-engine");
        let (appsrc, dec, decoder_name) = decode_chain(&pipeline, &cfg)?;
        let dec_tee = to_420_progressive(&pipeline, &dec)?;

        let shared: SharedRef = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
        {
            let mut s = lock(&shared.0);
            s.branches = (0..cfg.profiles.len())
                .map(|_| BranchState::default())
                .collect();
            s.pinned = vec![None; cfg.profiles.len()];
        }

        // build parents before children: each branch ends its scaling in a tee its children hang off
        let parents = scale_parents(&cfg.profiles, cfg.layout.topology);
        let mut order: Vec<usize> = (0..cfg.profiles.len()).collect();
        order.sort_by_key(|&i| {
            let mut depth = 0;
            let mut p = parents[i];
            while let Some(q) = p {
                depth += 1;
                p = parents[q];
            }
            depth
        });
        let mut built: Vec<Option<BuiltBranch>> = (0..cfg.profiles.len()).map(|_| None).collect();
        for &i in &order {
            let tee = match parents[i] {
                None => dec_tee.clone(),
                Some(p) => built[p]
                    .as_ref()
                    .expect("parents are built first")
                    .scaled_tee
                    .clone(),
            };
            built[i] = Some(branch(&pipeline, &cfg, i, &tee, &shared)?);
        }
        let built: Vec<BuiltBranch> = built
            .into_iter()
            .map(|b| b.expect("every branch built"))
            .collect();
        // the scalers of the decoded frames (the others scale a pinned size into a pinned size)
        let root_scalers: Vec<Option<gst::Element>> = built
            .iter()
            .zip(&parents)
            .map(|(b, p)| p.is_none().then(|| b.scaler.clone()))
            .collect();
        let branches: Vec<Branch> = built.into_iter().map(|b| b.branch).collect();
        add_size_probe(&dec, &shared, &cfg, &branches, root_scalers);
        watch_bus(&pipeline, &shared);

        let t = Transcoder {
            cfg,
            pipeline,
            appsrc,
            branches,
            shared,
            decoder_name,
            last_caps: None,
            broken: None,
            tail: None,
            continuity: None,
            pending: None,
        };
        t.set_state(gst::State::Playing)?;
        Ok(t)
    }

    fn set_state(&self, state: gst::State) -> Result<(), BuildError> {
        self.pipeline
            .set_state(state)
            .map_err(|e| BuildError::State {
                state,
                why: e.to_string(),
            })?;
        Ok(())
    }
}

fn add(pipeline: &gst::Pipeline, e: &gst::Element) -> Result<(), BuildError> {
    pipeline.add(e).map_err(|err| BuildError::Link {
        from: "pipeline".into(),
        to: e.name().to_string(),
        why: err.to_string(),
    })
}

/// `appsrc ! h264parse ! decoder`: the appsrc, the decoder and its name.
fn decode_chain(
    pipeline: &gst::Pipeline,
    cfg: &EngineConfig,
) -> Result<(gst_app::AppSrc, gst::Element, String), BuildError> {
    let appsrc = gst_app::AppSrc::builder()
        .name("src")
        .caps(
            &gst::Caps::builder("video/x-h264")
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .build(),
        )
        .format(gst::Format::Time)
        .is_live(false)
        .max_bytes(0)
        .build();
    let parse = make("h264parse", "parse")?;
    let decoder_name = format!("decoder-{}", cfg.backend.decoder_factory());
    let dec = make(cfg.backend.decoder_factory(), &decoder_name)?;
    for ps in cfg.backend.decoder_props() {
        set_prop(&dec, ps.name, &ps.value)?;
    }
    if dec.find_property("max-threads").is_some() {
        set_prop(&dec, "max-threads", &cfg.layout.decoder_threads.to_string())?;
    }
    for e in [appsrc.upcast_ref(), &parse, &dec] {
        add(pipeline, e)?;
    }
    link(appsrc.upcast_ref(), &parse)?;
    link(&parse, &dec)?;
    Ok((appsrc, dec, decoder_name))
}

/// `decoder ! videoconvert ! 4:2:0 ! deinterlace ! tee`: every rendition is 8-bit 4:2:0, whatever the input's
/// chroma format or bit depth (4:4:4, 4:2:2 and 10-bit H.264 decode to formats that players and hardware
/// decoders do not take once re-encoded), and progressive. Returns the tee the branches hang off.
fn to_420_progressive(
    pipeline: &gst::Pipeline,
    dec: &gst::Element,
) -> Result<gst::Element, BuildError> {
    let convert = make("videoconvert", "convert")?;
    let planar = make("capsfilter", "format420")?;
    planar.set_property(
        "caps",
        gst::Caps::from_str("video/x-raw, format=(string){ I420, NV12 }").map_err(|e| {
            BuildError::Property {
                element: "format420".into(),
                property: "caps".into(),
                value: "I420/NV12".into(),
                why: e.to_string(),
            }
        })?,
    );
    // interlaced input (fields or MBAFF) becomes progressive frames, one per input frame: renditions for
    // screens, not for broadcast chains; progressive input passes through untouched
    let deinterlace = make("deinterlace", "deinterlace")?;
    set_prop(&deinterlace, "mode", "auto")?;
    set_prop(&deinterlace, "fields", "top")?;
    let dec_tee = make("tee", "tee-decoded")?;
    for e in [&convert, &planar, &deinterlace, &dec_tee] {
        add(pipeline, e)?;
    }
    link(dec, &convert)?;
    link(&convert, &planar)?;
    link(&planar, &deinterlace)?;
    link(&deinterlace, &dec_tee)?;
    Ok(dec_tee)
}

struct BuiltBranch {
    branch: Branch,
    scaler: gst::Element,
    /// Where the renditions that scale this one's frames hang off.
    scaled_tee: gst::Element,
}

/// Rendition `i`: `tee ! queue ! [pace probe] ! videoscale ! capsfilter ! tee ! queue ! encoder ! appsink`.
fn branch(
    pipeline: &gst::Pipeline,
    cfg: &EngineConfig,
    i: usize,
    tee: &gst::Element,
    shared: &SharedRef,
) -> Result<BuiltBranch, BuildError> {
    let prof = &cfg.profiles[i];
    let queue = |name: String| -> Result<gst::Element, BuildError> {
        let q = make("queue", &name)?;
        set_prop(
            &q,
            "max-size-buffers",
            &cfg.layout.queue_buffers.to_string(),
        )?;
        set_prop(&q, "max-size-bytes", "0")?;
        set_prop(&q, "max-size-time", "0")?;
        Ok(q)
    };
    let q = queue(format!("queue{i}"))?;
    let scale = make("videoscale", &format!("scale{i}"))?;
    set_prop(&scale, "method", &cfg.layout.scaler)?;
    set_prop(&scale, "chroma-resampler", &cfg.layout.chroma_resampler)?;
    set_prop(&scale, "envelope", &cfg.layout.envelope.to_string())?;
    set_prop(&scale, "add-borders", "false")?;
    set_prop(&scale, "n-threads", &cfg.layout.scaler_threads.to_string())?;
    let cf = make("capsfilter", &format!("size{i}"))?;
    let scaled_tee = make("tee", &format!("tee-scaled{i}"))?;
    let encq = queue(format!("queue-enc{i}"))?;
    let enc = make(
        cfg.backend.encoder_factory(),
        &format!("enc{i}-{}", prof.name),
    )?;
    let gop = prof.gop.unwrap_or(prof.fps.saturating_mul(10)).max(1);
    for ps in cfg.backend.encoder_props(EncodeParams {
        bitrate_kbps: prof.bitrate_kbps,
        gop,
    }) {
        set_prop(&enc, ps.name, &ps.value)?;
    }
    if cfg.mode == SegmentMode::Continuous {
        for ps in cfg.backend.zero_delay_props() {
            if enc.find_property(ps.name).is_some() {
                set_prop(&enc, ps.name, &ps.value)?;
            }
        }
    }
    if cfg.mode.runs_on() {
        frames::add_encoder_gate(&enc, shared, i);
    }
    let outcaps = make("capsfilter", &format!("h264caps{i}"))?;
    outcaps.set_property(
        "caps",
        gst::Caps::builder("video/x-h264")
            .field("stream-format", "byte-stream")
            .field("alignment", "au")
            .build(),
    );
    // async=false: the sinks must not wait for each other to preroll (a branch whose encoder holds
    // frames back would otherwise block the others through the tee)
    let sink = gst_app::AppSink::builder()
        .name(format!("sink{i}"))
        .sync(false)
        .async_(false)
        .build();
    for e in [
        &q,
        &scale,
        &cf,
        &scaled_tee,
        &encq,
        &enc,
        &outcaps,
        sink.upcast_ref(),
    ] {
        add(pipeline, e)?;
    }
    link(tee, &q)?;
    link(&q, &scale)?;
    link(&scale, &cf)?;
    link(&cf, &scaled_tee)?;
    link(&scaled_tee, &encq)?;
    link(&encq, &enc)?;
    link(&enc, &outcaps)?;
    link(&outcaps, sink.upcast_ref())?;
    frames::add_pace_probe(&q, shared, i);
    frames::collect_encoded(&sink, shared, i);
    Ok(BuiltBranch {
        branch: Branch {
            profile: prof.clone(),
            capsfilter: cf,
            muxer: TsMuxer::new(),
            encoder_sink: enc.static_pad("sink").expect("an encoder has a sink pad"),
        },
        scaler: scale,
        scaled_tee,
    })
}

/// The probe on the decoder's output: counts the decoded pictures ([`Shared::count_decoded`]), and at the
/// decoded caps decides every branch's output size (always from the decoder's size, whatever the topology)
/// and pins the colorimetry to the input's, so that videoscale never converts the colour matrix (untagged
/// input: GStreamer guesses by frame size, BT.601 for SD and BT.709 for HD).
fn add_size_probe(
    dec: &gst::Element,
    shared: &SharedRef,
    cfg: &EngineConfig,
    branches: &[Branch],
    root_scalers: Vec<Option<gst::Element>>,
) {
    let sh = shared.clone();
    let boxes: Vec<(u32, u32)> = cfg.profiles.iter().map(|p| (p.width, p.height)).collect();
    let filters: Vec<gst::Element> = branches.iter().map(|b| b.capsfilter.clone()).collect();
    dec.static_pad("src").unwrap().add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_pad, info| {
            match &info.data {
                Some(gst::PadProbeData::Buffer(buf)) => {
                    let keep = lock(&sh.0).count_decoded(buf.pts().map(|t| t.nseconds()));
                    if !keep {
                        return gst::PadProbeReturn::Drop;
                    }
                }
                Some(gst::PadProbeData::Event(ev)) => {
                    if let gst::EventView::Caps(c) = ev.view() {
                        let s = c.caps().structure(0);
                        let w = s.and_then(|s| s.get::<i32>("width").ok()).unwrap_or(0) as u32;
                        let h = s.and_then(|s| s.get::<i32>("height").ok()).unwrap_or(0) as u32;
                        let par = s
                            .and_then(|s| s.get::<gst::Fraction>("pixel-aspect-ratio").ok())
                            .map(|f| (f.numer(), f.denom()))
                            .unwrap_or((1, 1));
                        let colorimetry = s
                            .and_then(|s| s.get::<String>("colorimetry").ok())
                            .unwrap_or_else(|| {
                                if h >= 720 { "bt709" } else { "bt601" }.to_string()
                            });
                        let mut st = lock(&sh.0);
                        for (i, (bw, bh)) in boxes.iter().enumerate() {
                            let fit = fit_box(w, h, par, *bw, *bh);
                            let (ow, oh) = *st.pinned[i].get_or_insert(fit);
                            if let Some(scaler) = &root_scalers[i] {
                                // a source whose shape differs from the stream's first: letterbox
                                let shape = |(a, b): (u32, u32)| f64::from(a) / f64::from(b.max(1));
                                let differs = (shape(fit) / shape((ow, oh)) - 1.0).abs() > 0.01;
                                scaler.set_property("add-borders", differs);
                            }
                            st.branches[i].width = ow;
                            st.branches[i].height = oh;
                            filters[i].set_property(
                                "caps",
                                gst::Caps::builder("video/x-raw")
                                    .field("width", ow as i32)
                                    .field("height", oh as i32)
                                    .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
                                    .field("colorimetry", colorimetry.as_str())
                                    .build(),
                            );
                        }
                    }
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
}

/// Bus errors become the running segment's error (the first one wins) and wake the engine's thread;
/// warnings are logged.
fn watch_bus(pipeline: &gst::Pipeline, shared: &SharedRef) {
    let sh = shared.clone();
    pipeline.bus().unwrap().set_sync_handler(move |_bus, msg| {
        if let gst::MessageView::Error(e) = msg.view() {
            let (m, cv) = &*sh;
            let mut s = lock(m);
            if s.error.is_none() {
                let element = msg
                    .src()
                    .map(|s| s.name().to_string())
                    .unwrap_or_else(|| "pipeline".into());
                let debug = e.debug().map(|d| d.to_string()).unwrap_or_default();
                s.error = Some((element, e.error().to_string(), debug));
            }
            cv.notify_all();
        } else if let gst::MessageView::Warning(w) = msg.view() {
            tracing::warn!(element = ?msg.src().map(|s| s.name()), "{}", w.error());
        }
        gst::BusSyncReply::Drop
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_box_keeps_aspect_and_never_upscales() {
        assert_eq!(fit_box(1920, 1080, (1, 1), 1280, 720), (1280, 720));
        assert_eq!(fit_box(1920, 1080, (1, 1), 426, 240), (426, 240));
        // portrait phone video into a landscape box: height-limited
        assert_eq!(fit_box(1080, 1920, (1, 1), 1280, 720), (406, 720));
        // 4:3 into 16:9
        assert_eq!(fit_box(640, 480, (1, 1), 640, 360), (480, 360));
        // odd input, smaller than the box: kept, made even
        assert_eq!(fit_box(321, 241, (1, 1), 1280, 720), (322, 242));
        // anamorphic 720x576 with 16:15 pixels: 768x576 on screen, not wider than the 720 coded
        assert_eq!(fit_box(720, 576, (16, 15), 1280, 720), (720, 540));
        // 1024x432 with slightly wide pixels into a 1280x720 box: not wider than the source
        assert_eq!(fit_box(1024, 432, (129, 128), 1280, 720), (1024, 428));
        // narrow pixels (DV 4:3, 10:11): not taller than the source
        assert_eq!(fit_box(720, 480, (10, 11), 1280, 720), (654, 480));
    }
}
