//! The live probe on the machine running the tests (CI and dev boxes here have no GPU).

use std::fs;
use std::os::unix::fs::symlink;

use hw::probe::{Roots, probe_element, probe_files};
use hw::{Boards, ElementStatus, EncoderKind};

#[test]
fn live_probe_on_this_machine_picks_software() {
    let boards = Boards::embedded().unwrap();
    let (inventory, selection) = hw::detect(&boards).expect("software encoding available");
    if std::path::Path::new("/dev/dri").exists()
        || std::path::Path::new("/proc/driver/nvidia/version").exists()
    {
        // A developer box with a GPU: whatever was chosen must be an element that reached READY.
        let chosen = inventory
            .encoders
            .iter()
            .find(|e| e.element == selection.encoder)
            .unwrap();
        assert!(chosen.usable, "{selection:?}");
        return;
    }
    assert_eq!(selection.kind, EncoderKind::Software);
    assert_eq!(selection.encoder, "x264enc");
    assert_eq!(selection.decoder, "avdec_h264");
    assert_eq!(selection.board, "generic-x86");
    assert!(
        selection.reason.contains("no accelerator found"),
        "{}",
        selection.reason
    );
    assert!(selection.session_limit.unwrap() >= 2);
    assert!(inventory.cpu_cores >= 1);
    let x264 = inventory
        .encoders
        .iter()
        .find(|e| e.element == "x264enc")
        .unwrap();
    assert!(x264.usable);
    assert!(
        inventory
            .encoders
            .iter()
            .filter(|e| e.kind != EncoderKind::Software)
            .all(|e| !e.usable)
    );
}

#[test]
fn element_probe_distinguishes_missing_ready_and_failed() {
    gstreamer::init().unwrap();
    assert_eq!(probe_element("x264enc"), ElementStatus::Ready);
    assert_eq!(probe_element("avdec_h264"), ElementStatus::Ready);
    assert_eq!(
        probe_element("no-such-element-h264enc"),
        ElementStatus::Missing
    );
    // v4l2src opens its device going to READY; pointed at a missing device it must fail with the
    // element's own error, which is what a broken VA/NVENC driver looks like too.
    let status = probe_v4l2_missing_device();
    match status {
        ElementStatus::Failed { error } => {
            assert!(error.contains("/dev/hw-test-no-such-video"), "{error}")
        }
        other => panic!("expected failure, got {other:?}"),
    }
}

fn probe_v4l2_missing_device() -> ElementStatus {
    // Same procedure as probe_element, with a property set first.
    let el = gstreamer::ElementFactory::make("v4l2src")
        .property("device", "/dev/hw-test-no-such-video")
        .build()
        .expect("v4l2src (gstreamer1.0-plugins-good) installed");
    hw::probe::ready_status(&el)
}

#[test]
fn file_probe_reads_sysfs_proc_and_etc_layouts() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    let mk = |p: &str, s: &[u8]| {
        let p = r.join(p);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, s).unwrap();
    };
    mk("dev/dri/renderD129", b"");
    mk("dev/dri/renderD128", b"");
    mk("dev/dri/card0", b"");
    mk("sys/bus/pci/drivers/i915/.keep", b"");
    mk("sys/bus/pci/drivers/nvidia/.keep", b"");
    mk("sys/devices/pci0000:00/0000:00:02.0/vendor", b"0x8086\n");
    mk("sys/devices/pci0000:00/0000:00:02.0/device", b"0x46a6\n");
    mk("sys/devices/pci0000:00/0000:01:00.0/vendor", b"0x10de\n");
    fs::create_dir_all(r.join("sys/class/drm/renderD128")).unwrap();
    fs::create_dir_all(r.join("sys/class/drm/renderD129")).unwrap();
    symlink(
        r.join("sys/devices/pci0000:00/0000:00:02.0"),
        r.join("sys/class/drm/renderD128/device"),
    )
    .unwrap();
    symlink(
        r.join("sys/devices/pci0000:00/0000:01:00.0"),
        r.join("sys/class/drm/renderD129/device"),
    )
    .unwrap();
    symlink(
        r.join("sys/bus/pci/drivers/i915"),
        r.join("sys/devices/pci0000:00/0000:00:02.0/driver"),
    )
    .unwrap();
    symlink(
        r.join("sys/bus/pci/drivers/nvidia"),
        r.join("sys/devices/pci0000:00/0000:01:00.0/driver"),
    )
    .unwrap();
    mk("proc/driver/nvidia/version", b"NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.183.01  Sun May 12 19:39:15 UTC 2024\n");
    mk(
        "proc/driver/nvidia/gpus/0000:01:00.0/information",
        b"Model: \t\t NVIDIA GeForce RTX 3060\nIRQ:   \t\t 150\n",
    );
    mk(
        "etc/nv_tegra_release",
        b"# R35 (release), REVISION: 4.1, GCID: 1, BOARD: t186ref, EABI: aarch64, DATE: x\n",
    );
    mk(
        "proc/device-tree/model",
        b"NVIDIA Jetson Orin NX Engineering Reference Developer Kit\0",
    );
    mk("sys/class/dmi/id/board_name", b"NUC12WSBi5\n");
    mk("sys/class/dmi/id/product_name", b"NUC12WSHi5\n");
    mk("proc/cpuinfo", b"processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: 12th Gen Intel(R) Core(TM) i5-1240P\n");

    let d = probe_files(&Roots { root: r.to_owned() });
    let nodes: Vec<_> = d
        .render_nodes
        .iter()
        .map(|n| (n.path.as_str(), n.driver.as_deref(), n.vendor.as_deref()))
        .collect();
    assert_eq!(
        nodes,
        vec![
            ("/dev/dri/renderD128", Some("i915"), Some("0x8086")),
            ("/dev/dri/renderD129", Some("nvidia"), Some("0x10de"))
        ]
    );
    assert_eq!(d.render_nodes[0].device.as_deref(), Some("0x46a6"));
    assert_eq!(d.nvidia_driver_number().as_deref(), Some("535.183.01"));
    assert_eq!(d.nvidia_gpus, vec!["NVIDIA GeForce RTX 3060"]);
    assert_eq!(d.tegra_l4t_release().as_deref(), Some("R35.4.1"));
    assert_eq!(
        d.device_tree_model.as_deref(),
        Some("NVIDIA Jetson Orin NX Engineering Reference Developer Kit")
    );
    assert_eq!(d.dmi.board_name.as_deref(), Some("NUC12WSBi5"));
    assert_eq!(d.dmi.sys_vendor, None);
    assert_eq!(
        d.cpu.model.as_deref(),
        Some("12th Gen Intel(R) Core(TM) i5-1240P")
    );

    // An empty tree: nothing found, nothing invented.
    let empty = tempfile::tempdir().unwrap();
    let d = probe_files(&Roots {
        root: empty.path().to_owned(),
    });
    assert!(
        d.render_nodes.is_empty() && d.nvidia_driver_version.is_none() && d.tegra_release.is_none()
    );
    assert_eq!(d.cpu.model, None);
}
