//! The choosing logic on captured/representative system descriptions (no hardware needed).

use std::path::Path;

use hw::board::EncoderKind;
use hw::{Boards, ElementStatus, SelectError, SystemDescription, inventory, select};

fn load(name: &str) -> SystemDescription {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn boards() -> Boards {
    Boards::embedded().expect("embedded board profiles parse")
}

#[test]
fn intel_igpu_uses_va() {
    let d = load("intel-igpu-nuc12.json");
    let s = select(&d, &boards()).unwrap();
    assert_eq!(s.board, "intel-igpu");
    assert_eq!(s.kind, EncoderKind::Va);
    assert_eq!(
        (s.encoder.as_str(), s.decoder.as_str()),
        ("vah264enc", "vah264dec")
    );
    assert_eq!(s.scaler, "vapostproc");
    assert_eq!(s.render_node.as_deref(), Some("/dev/dri/renderD128"));
    assert_eq!(s.session_limit, None);
    assert!(!s.fallback);
    assert_eq!(s.encoder_properties["rate-control"], "cbr");
    assert!(
        s.reason
            .contains("vah264enc reached READY on /dev/dri/renderD128 (i915)"),
        "{}",
        s.reason
    );
}

#[test]
fn amd_without_va_encoder_uses_legacy_vaapi_and_says_why() {
    let d = load("amd-vcn-ryzen5700g.json");
    let s = select(&d, &boards()).unwrap();
    assert_eq!(s.board, "amd-vcn");
    assert_eq!(s.kind, EncoderKind::Vaapi);
    assert_eq!(s.encoder, "vaapih264enc");
    assert_eq!(s.decoder, "vaapih264dec");
    assert!(!s.fallback);
    assert!(
        s.reason
            .contains("skipped vah264enc: element not registered"),
        "{}",
        s.reason
    );
}

#[test]
fn geforce_next_to_intel_igpu_prefers_nvenc_with_driver_session_cap() {
    let d = load("nvidia-geforce-rtx3060.json");
    let s = select(&d, &boards()).unwrap();
    assert_eq!(s.board, "nvidia-geforce");
    assert_eq!(s.kind, EncoderKind::Nvenc);
    assert_eq!(
        (s.encoder.as_str(), s.decoder.as_str()),
        ("nvh264enc", "nvh264dec")
    );
    // 535.x: the R530 consumer cap of 5 sessions.
    assert_eq!(s.session_limit, Some(5));
    assert!(
        s.reason.contains("NVIDIA driver 535.183.01"),
        "{}",
        s.reason
    );
}

#[test]
fn geforce_session_cap_follows_driver_version() {
    let mut d = load("nvidia-geforce-rtx3060.json");
    let b = boards();
    let cap = |d: &SystemDescription| select(d, &b).unwrap().session_limit;
    d.nvidia_driver_version = Some("NVRM version: NVIDIA UNIX x86_64 Kernel Module  525.147.05  Wed Oct 25 20:27:35 UTC 2023\n".into());
    assert_eq!(cap(&d), Some(3));
    d.nvidia_driver_version = Some(
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.120  Fri Sep 13 10:10:01 UTC 2024\n"
            .into(),
    );
    assert_eq!(cap(&d), Some(8));
    // An unparseable version file still means "driver loaded": the conservative fixed cap applies.
    d.nvidia_driver_version = Some("something unexpected\n".into());
    assert_eq!(cap(&d), Some(3));
}

#[test]
fn datacenter_gpu_has_no_session_cap() {
    let d = load("nvidia-datacenter-l4.json");
    let s = select(&d, &boards()).unwrap();
    assert_eq!(s.board, "nvidia-datacenter");
    assert_eq!(s.kind, EncoderKind::Nvenc);
    assert_eq!(s.session_limit, None);
    assert!(s.reason.contains("550.54.14"), "{}", s.reason);
}

#[test]
fn jetson_orin_nx_uses_v4l2_nvenc() {
    let d = load("jetson-orin-nx.json");
    let s = select(&d, &boards()).unwrap();
    assert_eq!(s.board, "jetson-orin");
    assert_eq!(s.kind, EncoderKind::JetsonV4l2);
    assert_eq!(
        (s.encoder.as_str(), s.decoder.as_str(), s.scaler.as_str()),
        ("nvv4l2h264enc", "nvv4l2decoder", "nvvidconv")
    );
    assert!(s.reason.contains("L4T R35.4.1"), "{}", s.reason);
    assert_eq!(s.encoder_properties["insert-sps-pps"], "true");
}

#[test]
fn jetson_orin_nano_falls_back_to_software_because_no_nvenc() {
    let d = load("jetson-orin-nano.json");
    let s = select(&d, &boards()).unwrap();
    assert_eq!(s.board, "jetson-nano");
    assert_eq!(s.kind, EncoderKind::Software);
    assert_eq!(
        (s.encoder.as_str(), s.decoder.as_str()),
        ("x264enc", "avdec_h264")
    );
    assert!(s.fallback);
    assert!(s.reason.contains("no NVENC"), "{}", s.reason);
    assert_eq!(s.encoder_properties["speed-preset"], "superfast");
    assert_eq!(s.session_limit, Some(6)); // per_core = 1.0 on 6 cores
}

#[test]
fn render_node_with_broken_va_driver_falls_back_with_the_drivers_error() {
    let d = load("intel-broken-va-driver.json");
    let s = select(&d, &boards()).unwrap();
    assert_eq!(s.board, "intel-igpu");
    assert_eq!(s.kind, EncoderKind::Software);
    assert!(s.fallback);
    assert!(
        s.reason.starts_with(
            "board intel-igpu: software x264enc + avdec_h264: no usable hardware encoder:"
        ),
        "{}",
        s.reason
    );
    assert!(
        s.reason.contains("vah264enc: element not registered"),
        "{}",
        s.reason
    );
    assert!(
        s.reason.contains("vaapih264enc: failed to reach READY"),
        "{}",
        s.reason
    );
    assert!(s.reason.contains("vaInitialize() failed"), "{}", s.reason);
    assert!(
        !s.reason.contains('\n'),
        "reason must be one line: {}",
        s.reason
    );
}

#[test]
fn this_machine_capture_picks_software_without_calling_it_a_fallback() {
    let d = load("this-machine-debian12-vm.json");
    let s = select(&d, &boards()).unwrap();
    assert_eq!(s.board, "generic-x86");
    assert_eq!(s.kind, EncoderKind::Software);
    assert!(!s.fallback);
    assert!(s.reason.contains("no accelerator found"), "{}", s.reason);
    assert_eq!(s.session_limit, Some(d.cpu.cores * 2));
}

#[test]
fn va_element_ready_without_a_render_node_is_not_used() {
    let mut d = load("intel-igpu-nuc12.json");
    let b = boards();
    // A render node bound to a driver the Intel profile does not drive.
    d.render_nodes[0].driver = Some("nouveau".into());
    let s = select(&d, &b).unwrap();
    assert_eq!(s.kind, EncoderKind::Software);
    assert_eq!(s.board, "generic-x86");
    assert!(s.fallback);
    assert!(
        s.reason
            .contains("no board profile supports this hardware (/dev/dri/renderD128 (nouveau))"),
        "{}",
        s.reason
    );
}

#[test]
fn hardware_decoder_not_ready_keeps_hardware_encoder_and_says_so() {
    let mut d = load("intel-igpu-nuc12.json");
    d.elements
        .insert("vah264dec".into(), ElementStatus::Missing);
    let s = select(&d, &boards()).unwrap();
    assert_eq!(s.encoder, "vah264enc");
    assert_eq!(s.decoder, "avdec_h264");
    assert!(
        s.reason
            .contains("decoding with avdec_h264 because vah264dec is not ready"),
        "{}",
        s.reason
    );
}

#[test]
fn no_software_encoder_is_a_clear_error() {
    let mut d = load("intel-broken-va-driver.json");
    d.elements.remove("x264enc");
    let err = select(&d, &boards()).unwrap_err();
    let SelectError::NoEncoder { why } = &err;
    assert!(why.contains("x264enc is not installed"), "{why}");
    assert!(why.contains("vaapih264enc: failed to reach READY"), "{why}");
    assert!(
        err.to_string().contains("gstreamer1.0-plugins-ugly"),
        "{err}"
    );

    let mut d = load("this-machine-debian12-vm.json");
    d.elements.insert(
        "avdec_h264".into(),
        ElementStatus::Failed {
            error: "boom".into(),
        },
    );
    let err = select(&d, &boards()).unwrap_err();
    assert!(
        err.to_string()
            .contains("avdec_h264 failed to reach READY: boom"),
        "{err}"
    );
}

#[test]
fn inventory_lists_usable_and_unusable_codecs() {
    let b = boards();
    let inv = inventory(&load("nvidia-geforce-rtx3060.json"), &b);
    assert_eq!(inv.board.as_deref(), Some("nvidia-geforce"));
    let enc = |name: &str| inv.encoders.iter().find(|e| e.element == name).unwrap();
    assert!(enc("nvh264enc").usable);
    assert!(
        enc("vah264enc").usable,
        "the Intel iGPU next to the GeForce is usable too"
    );
    assert!(enc("x264enc").usable);
    assert!(!enc("nvv4l2h264enc").usable);
    assert!(!enc("nvv4l2h264enc").device_present);
    assert!(
        inv.decoders
            .iter()
            .any(|d| d.element == "nvh264dec" && d.usable)
    );
    assert_eq!(inv.drivers.nvidia.as_deref(), Some("535.183.01"));
    assert_eq!(
        inv.drivers.render_nodes,
        vec!["/dev/dri/renderD128 (i915)", "/dev/dri/renderD129 (nvidia)"]
    );
    let cap = |el: &str| inv.sessions.iter().find(|s| s.element == el).map(|s| s.max);
    assert_eq!(cap("nvh264enc"), Some(Some(5)));
    assert_eq!(cap("x264enc"), Some(Some(24)));

    let inv = inventory(&load("intel-broken-va-driver.json"), &b);
    let vaapi = inv
        .encoders
        .iter()
        .find(|e| e.element == "vaapih264enc")
        .unwrap();
    assert!(vaapi.device_present && !vaapi.usable);
    assert!(matches!(vaapi.status, ElementStatus::Failed { .. }));
}

#[test]
fn every_capture_round_trips_and_selection_serializes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        n += 1;
        let d: SystemDescription =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let again: SystemDescription =
            serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(d, again, "{}", path.display());
        let s = select(&d, &boards()).unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<hw::Selection>(&json).unwrap(), s);
        let inv = inventory(&d, &boards());
        let json = serde_json::to_string(&inv).unwrap();
        assert_eq!(serde_json::from_str::<hw::Inventory>(&json).unwrap(), inv);
    }
    assert!(n >= 8, "expected the 8 captures, found {n}");
}

#[test]
fn fallback_logs_exactly_one_line() {
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let s = select(&load("intel-broken-va-driver.json"), &boards()).unwrap();
    tracing::subscriber::with_default(subscriber, || s.log());
    let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("WARN"), "{out}");
    assert!(
        out.contains("falling back to software") && out.contains("vaInitialize() failed"),
        "{out}"
    );
}
