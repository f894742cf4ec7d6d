//! Encoder/decoder backends: which GStreamer elements do the work, and how a profile's bitrate and GOP map
//! onto each element's properties. The `hw` crate detects what the box has; the binary maps its choice onto
//! [`Backend`] (this crate does not depend on `hw`).

use serde::{Deserialize, Serialize};

/// Options of the software encoder (x264enc). Defaults: x264 veryfast, CBR with a 600 ms VBV (x264enc's
/// default buffer), scene-cut off so keyframes come only at segment starts and every `gop` frames; this is
/// what `ffmpeg -preset veryfast -b:v K -maxrate K -bufsize 0.6K -sc_threshold 0` does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct X264Options {
    /// x264 preset (`speed-preset`): ultrafast .. placebo.
    pub speed_preset: String,
    /// x264 tune flags (`tune`), e.g. "zerolatency" or "fastdecode"; empty for none.
    pub tune: String,
    /// Encoder threads per rendition; 0 = x264's automatic choice.
    pub threads: u32,
    /// Rate control: `true` = ABR capped by a VBV of `vbv_ms` (x264enc pass=cbr), `false` = plain ABR
    /// (no VBV: like ffmpeg's `-b:v` without maxrate; bit-exact across runs even with threads).
    pub vbv: bool,
    /// VBV buffer in milliseconds when `vbv` is on.
    pub vbv_ms: u32,
    /// Extra x264 options (`option-string`, "key=value:key=value"), applied last.
    pub option_string: String,
}

impl Default for X264Options {
    fn default() -> Self {
        X264Options {
            speed_preset: "veryfast".into(),
            tune: String::new(),
            threads: 0,
            vbv: true,
            vbv_ms: 600,
            option_string: "scenecut=0".into(),
        }
    }
}

impl X264Options {
    /// The deterministic software mode that bit-exact verification relies on: one thread, no B-frames, no
    /// lookahead, plain ABR. A segment's output then depends only on that segment and the x264 build, so a
    /// verifier re-transcoding it with a fresh engine gets the same bytes.
    pub fn deterministic() -> Self {
        X264Options {
            threads: 1,
            vbv: false,
            option_string: "scenecut=0:bframes=0:rc-lookahead=0".into(),
            ..Default::default()
        }
    }
}

/// Which encoder/decoder family to use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case", tag = "kind")]
pub enum Backend {
    /// x264enc + avdec_h264 (always available; the fallback).
    Software(X264Options),
    /// VA-API through the new `va` plugin (plugins-bad): vah264enc + vah264dec.
    Va,
    /// VA-API through gstreamer-vaapi: vaapih264enc + vaapih264dec.
    Vaapi,
    /// NVIDIA NVENC/NVDEC: nvh264enc + nvh264dec.
    Nvenc,
    /// NVIDIA Jetson (V4L2 M2M): nvv4l2h264enc + nvv4l2decoder.
    Jetson,
}

impl Default for Backend {
    fn default() -> Self {
        Backend::Software(X264Options::default())
    }
}

/// One property assignment, as a string GStreamer can parse for the property's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropSet {
    pub name: &'static str,
    pub value: String,
}

fn p(name: &'static str, value: impl ToString) -> PropSet {
    PropSet {
        name,
        value: value.to_string(),
    }
}

/// What an encoder needs to know about one rendition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeParams {
    /// Target bitrate in kbit/s.
    pub bitrate_kbps: u32,
    /// Keyframe interval in frames (segment starts are keyframes regardless).
    pub gop: u32,
}

impl Backend {
    /// What makes this backend's encoder hold no frame back (no lookahead, no B-frames, no frame-threading
    /// delay), for the continuous mode. The engine sets only the properties the encoder has: the hardware
    /// encoders' defaults are without B-frames already.
    pub fn zero_delay_props(&self) -> Vec<PropSet> {
        match self {
            Backend::Software(o) => {
                let tune = if o.tune.is_empty() || o.tune.contains("zerolatency") {
                    "zerolatency".to_string()
                } else {
                    format!("{}+zerolatency", o.tune)
                };
                vec![p("tune", tune)]
            }
            Backend::Va => vec![p("b-frames", 0)],
            Backend::Vaapi => vec![p("max-bframes", 0)],
            Backend::Nvenc => vec![
                p("bframes", 0),
                p("zerolatency", true),
                p("rc-lookahead", 0),
            ],
            Backend::Jetson => vec![p("num-B-Frames", 0)],
        }
    }
}

impl Backend {
    /// Short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Software(_) => "software",
            Backend::Va => "va",
            Backend::Vaapi => "vaapi",
            Backend::Nvenc => "nvenc",
            Backend::Jetson => "jetson",
        }
    }

    /// The H.264 encoder element factory.
    pub fn encoder_factory(&self) -> &'static str {
        match self {
            Backend::Software(_) => "x264enc",
            Backend::Va => "vah264enc",
            Backend::Vaapi => "vaapih264enc",
            Backend::Nvenc => "nvh264enc",
            Backend::Jetson => "nvv4l2h264enc",
        }
    }

    /// The H.264 decoder element factory.
    pub fn decoder_factory(&self) -> &'static str {
        match self {
            Backend::Software(_) => "avdec_h264",
            Backend::Va => "vah264dec",
            Backend::Vaapi => "vaapih264dec",
            Backend::Nvenc => "nvh264dec",
            Backend::Jetson => "nvv4l2decoder",
        }
    }

    /// Decoder properties (strict: corrupt frames are dropped so the engine can count and report them).
    pub fn decoder_props(&self) -> Vec<PropSet> {
        match self {
            Backend::Software(_) => vec![p("output-corrupt", false)],
            _ => vec![],
        }
    }

    /// Encoder properties for one rendition.
    pub fn encoder_props(&self, e: EncodeParams) -> Vec<PropSet> {
        match self {
            Backend::Software(o) => {
                let mut v = vec![
                    p("bitrate", e.bitrate_kbps),
                    p("key-int-max", e.gop),
                    p("speed-preset", &o.speed_preset),
                    p("threads", o.threads),
                ];
                if !o.tune.is_empty() {
                    v.push(p("tune", &o.tune));
                }
                let mut opts = Vec::new();
                if o.vbv {
                    v.push(p("pass", "cbr"));
                    v.push(p("vbv-buf-capacity", o.vbv_ms));
                } else {
                    // x264enc's pass=cbr always sets a VBV; plain ABR needs it switched off explicitly
                    v.push(p("pass", "cbr"));
                    opts.push("vbv-maxrate=0:vbv-bufsize=0".to_string());
                }
                if !o.option_string.is_empty() {
                    opts.push(o.option_string.clone());
                }
                if !opts.is_empty() {
                    v.push(p("option-string", opts.join(":")));
                }
                v
            }
            Backend::Va => vec![
                p("bitrate", e.bitrate_kbps),
                p("key-int-max", e.gop),
                p("rate-control", "cbr"),
            ],
            Backend::Vaapi => {
                vec![
                    p("bitrate", e.bitrate_kbps),
                    p("keyframe-period", e.gop),
                    p("rate-control", "cbr"),
                ]
            }
            Backend::Nvenc => vec![
                p("bitrate", e.bitrate_kbps),
                p("gop-size", e.gop),
                p("rc-mode", "cbr"),
            ],
            // nvv4l2h264enc takes bits per second
            Backend::Jetson => vec![
                p("bitrate", u64::from(e.bitrate_kbps) * 1000),
                p("iframeinterval", e.gop),
                p("control-rate", 1),
                p("insert-sps-pps", true),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gstreamer as gst;
    use gstreamer::prelude::*;

    #[test]
    fn mapping_per_backend() {
        let e = EncodeParams {
            bitrate_kbps: 3000,
            gop: 60,
        };
        let find = |b: &Backend, n: &str| {
            b.encoder_props(e)
                .into_iter()
                .find(|x| x.name == n)
                .map(|x| x.value)
        };
        assert_eq!(
            find(&Backend::Jetson, "bitrate").as_deref(),
            Some("3000000")
        );
        assert_eq!(find(&Backend::Nvenc, "gop-size").as_deref(), Some("60"));
        assert_eq!(
            find(&Backend::Vaapi, "keyframe-period").as_deref(),
            Some("60")
        );
        assert_eq!(find(&Backend::Va, "key-int-max").as_deref(), Some("60"));
        let sw = Backend::default();
        assert_eq!(find(&sw, "bitrate").as_deref(), Some("3000"));
        assert_eq!(find(&sw, "option-string").as_deref(), Some("scenecut=0"));
        assert_eq!(find(&sw, "vbv-buf-capacity").as_deref(), Some("600"));
        let abr = Backend::Software(X264Options {
            vbv: false,
            option_string: "me=dia".into(),
            ..Default::default()
        });
        assert_eq!(
            find(&abr, "option-string").as_deref(),
            Some("vbv-maxrate=0:vbv-bufsize=0:me=dia")
        );
        for b in [
            sw,
            Backend::Va,
            Backend::Vaapi,
            Backend::Nvenc,
            Backend::Jetson,
        ] {
            assert!(b.encoder_factory().contains("264enc"));
            assert!(b.decoder_factory().contains("dec"));
        }
    }

    /// Every property the mapping sets exists on the real element and accepts the value, for every
    /// backend whose plugin is present on this machine (here: software; hardware plugins load without
    /// elements when no device exists).
    #[test]
    fn mapping_applies_to_real_elements() {
        gst::init().unwrap();
        let e = EncodeParams {
            bitrate_kbps: 800,
            gop: 60,
        };
        let mut checked = 0;
        for b in [
            Backend::default(),
            Backend::Va,
            Backend::Vaapi,
            Backend::Nvenc,
            Backend::Jetson,
        ] {
            let Ok(enc) = gst::ElementFactory::make(b.encoder_factory()).build() else {
                continue;
            };
            for ps in b.encoder_props(e) {
                assert!(
                    enc.find_property(ps.name).is_some(),
                    "{} has no {}",
                    b.encoder_factory(),
                    ps.name
                );
                enc.set_property_from_str(ps.name, &ps.value);
            }
            let dec = gst::ElementFactory::make(b.decoder_factory())
                .build()
                .unwrap();
            for ps in b.decoder_props() {
                dec.set_property_from_str(ps.name, &ps.value);
            }
            checked += 1;
        }
        assert!(checked >= 1, "x264enc must exist");
        let x = gst::ElementFactory::make("x264enc").build().unwrap();
        for ps in Backend::default().encoder_props(e) {
            x.set_property_from_str(ps.name, &ps.value);
        }
        assert_eq!(x.property::<u32>("bitrate"), 800);
        assert_eq!(x.property::<u32>("key-int-max"), 60);
    }
}
