//! Board profiles: the embedded set, the directory override, and bad files.

use std::fs;

use hw::{BoardError, Boards, SystemDescription, select};

fn this_machine() -> SystemDescription {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/this-machine-debian12-vm.json"
    );
    serde_json::from_str(&fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn embedded_profiles_all_parse_and_have_the_named_boards() {
    let b = Boards::embedded().unwrap();
    for name in [
        "intel-igpu",
        "amd-vcn",
        "nvidia-geforce",
        "nvidia-datacenter",
        "jetson-orin",
        "jetson-nano",
        "generic-x86",
    ] {
        assert!(b.get(name).is_some(), "missing board {name}");
    }
    // Every profile ends in a software entry so any board can fall back with its own tuning.
    for p in b.profiles() {
        assert_eq!(
            p.encoders.last().unwrap().kind,
            hw::EncoderKind::Software,
            "{}",
            p.name
        );
    }
    let names = b.element_names();
    for el in [
        "vah264enc",
        "vaapih264enc",
        "nvh264enc",
        "nvh264dec",
        "nvv4l2h264enc",
        "nvv4l2decoder",
        "x264enc",
        "avdec_h264",
    ] {
        assert!(names.iter().any(|n| n == el), "{el} not probed");
    }
}

#[test]
fn directory_override_replaces_by_name_and_adds_new_profiles() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("generic-x86.toml"),
        r#"
name = "generic-x86"
description = "slower box"
priority = 0
[[encoders]]
kind = "software"
element = "x264enc"
decoder = "avdec_h264"
requires = "none"
sessions = { per_core = 0.5 }
[encoders.properties]
speed-preset = "superfast"
"#,
    )
    .unwrap();
    fs::write(
        dir.path().join("lab.toml"),
        r#"
name = "lab-box"
description = "test rig"
priority = 5
[match]
arch = ["x86_64"]
[[encoders]]
kind = "software"
element = "x264enc"
decoder = "avdec_h264"
requires = "none"
sessions = { max = 7 }
"#,
    )
    .unwrap();
    fs::write(dir.path().join("README.txt"), "not a profile").unwrap();
    let b = Boards::load(Some(dir.path())).unwrap();
    assert_eq!(b.get("generic-x86").unwrap().description, "slower box");
    assert_eq!(b.profiles().len(), hw::board::EMBEDDED.len() + 1);
    let d = this_machine();
    let s = select(&d, &b).unwrap();
    assert_eq!(s.board, "lab-box");
    assert_eq!(s.session_limit, Some(7));
    fs::remove_file(dir.path().join("lab.toml")).unwrap();
    let s = select(&d, &Boards::load(Some(dir.path())).unwrap()).unwrap();
    assert_eq!(s.board, "generic-x86");
    assert_eq!(s.encoder_properties["speed-preset"], "superfast");
    assert_eq!(
        s.session_limit,
        Some(((d.cpu.cores as f64) * 0.5).floor().max(1.0) as u32)
    );
}

#[test]
fn bad_profiles_are_clear_errors_naming_the_file() {
    let cases = [
        ("syntax.toml", "name = \"x\"\npriority = [", "syntax.toml"),
        (
            "unknown.toml",
            "name = \"x\"\ndescription = \"d\"\npriority = 1\nturbo = true\n[[encoders]]\nkind = \"software\"\nelement = \"x264enc\"\ndecoder = \"avdec_h264\"\nrequires = \"none\"\n",
            "unknown field `turbo`",
        ),
        (
            "kind.toml",
            "name = \"x\"\ndescription = \"d\"\npriority = 1\n[[encoders]]\nkind = \"quicksync\"\nelement = \"qsvh264enc\"\ndecoder = \"avdec_h264\"\nrequires = \"none\"\n",
            "unknown variant `quicksync`",
        ),
        (
            "empty.toml",
            "name = \"x\"\ndescription = \"d\"\npriority = 1\nencoders = []\n",
            "no [[encoders]] entry",
        ),
        (
            "driver.toml",
            "name = \"x\"\ndescription = \"d\"\npriority = 1\n[[encoders]]\nkind = \"nvenc\"\nelement = \"nvh264enc\"\ndecoder = \"nvh264dec\"\nrequires = \"nvidia_driver\"\nsessions = { by_driver = [ { min_driver = \"R530\", max = 5 } ] }\n",
            "not a dotted number",
        ),
        (
            "name.toml",
            "name = \"a b\"\ndescription = \"d\"\npriority = 1\n[[encoders]]\nkind = \"software\"\nelement = \"x264enc\"\ndecoder = \"avdec_h264\"\nrequires = \"none\"\n",
            "must be non-empty",
        ),
    ];
    for (file, text, expect) in cases {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(file), text).unwrap();
        let err = Boards::load(Some(dir.path())).unwrap_err();
        let msg = format!(
            "{err}: {}",
            std::error::Error::source(&err)
                .map(|s| s.to_string())
                .unwrap_or_default()
        );
        assert!(msg.contains(file), "{file}: {msg}");
        assert!(msg.contains(expect), "{file}: expected {expect:?} in {msg}");
        assert!(
            matches!(err, BoardError::Parse { .. } | BoardError::Invalid { .. }),
            "{err:?}"
        );
    }
    let err = Boards::load(Some(std::path::Path::new("/nonexistent/boards"))).unwrap_err();
    assert!(matches!(err, BoardError::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/boards"), "{err}");
}
