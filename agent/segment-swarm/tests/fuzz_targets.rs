//! The cargo-fuzz targets (fuzz/fuzz_targets), run in the ordinary test build on hand-made seeds and seeded
//! mutations of them (see the fuzz-smoke crate). The coverage-guided campaign is `./x fuzz`.
#[path = "../fuzz/fuzz_targets/deframe.rs"]
mod deframe;
#[path = "../fuzz/fuzz_targets/manifest.rs"]
mod manifest;

use fuzz_smoke::Smoke;
use segment_swarm::frame::{Record, RenditionMeta, SegmentMeta};
use segment_swarm::manifest::{RenditionSwarm, SourceSwarm, SwarmManifest};

const SWARM_ID: &str = "0dabababababababababababababababababababababababababababababababababab";

fn records() -> Vec<Record> {
    let source = SegmentMeta {
        stream: "s1".into(),
        seq: 7,
        job_id: Some(3),
        signature: Some(format!("0x{}", "11".repeat(65))),
        duration: 2.0,
        rendition: None,
        cut_at_us: Some(1_700_000_000_000_000),
    };
    let rendition = SegmentMeta {
        rendition: Some(RenditionMeta {
            profile: "360p".into(),
            width: 640,
            height: 360,
            fps: (30, 1),
            frames: 60,
            codecs: "avc1.42c01e".into(),
            first_pts: 900_000,
            target_duration: 2.0,
        }),
        ..source.clone()
    };
    vec![
        Record::Segment {
            meta: source,
            data: (0..700u32).map(|i| (i * 7) as u8).collect(),
        },
        Record::Segment {
            meta: rendition,
            data: vec![0x47; 188],
        },
        Record::End {
            stream: "s1".into(),
            last_seq: Some(7),
        },
    ]
}

#[test]
fn deframe_on_encoded_records_cut_every_way_and_their_mutants() {
    // set-up bytes: chunks per munro - 1, chunk length - 1, flags (4: leave out a chunk, 8: report it), which
    let mut seeds = Vec::new();
    for r in records() {
        for (per, len, flags, drop) in [
            (0, 63, 0, 0),
            (3, 127, 0, 0),
            (1, 15, 4 | 8, 2),
            (7, 31, 2, 0),
            (0, 0, 1, 0),
        ] {
            let align = (usize::from(len) + 1) * (usize::from(per) + 1);
            let bytes = r.encode(align).expect("encodes");
            seeds.push([&[per, len, flags, drop][..], &bytes].concat());
        }
    }
    let all: Vec<u8> = records()
        .iter()
        .flat_map(|r| r.encode(64).expect("encodes"))
        .collect();
    seeds.push([&[0, 63, 0, 0][..], &all].concat());
    Smoke::new(env!("CARGO_MANIFEST_DIR"), "deframe")
        .runs(100_000)
        .check(&seeds, deframe::run);
}

#[test]
fn manifest_on_real_manifests_and_swarm_ids_and_their_mutants() {
    let peer = "127.0.0.1:7000".parse().unwrap();
    let m = SwarmManifest {
        stream: "s1".into(),
        job_id: Some(3),
        chunk_size: 1024,
        chunks_per_munro: 8,
        source: Some(SourceSwarm {
            swarm_id: SWARM_ID.into(),
            peers: vec![peer],
        }),
        renditions: ["360p", "720p"]
            .map(|p| RenditionSwarm {
                profile: p.into(),
                swarm_id: SWARM_ID.into(),
                peers: vec![peer],
            })
            .into(),
    };
    let seeds = vec![
        serde_json::to_vec(&m).unwrap(),
        serde_json::to_vec_pretty(&m).unwrap(),
        SWARM_ID.as_bytes().to_vec(),
    ];
    Smoke::new(env!("CARGO_MANIFEST_DIR"), "manifest")
        .runs(100_000)
        .check(&seeds, manifest::run);
}
