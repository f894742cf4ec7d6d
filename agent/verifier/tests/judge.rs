//! Verdicts on real segments (real GStreamer pipelines, no chain): bit-exact against a deterministic
//! re-transcode, fidelity against the input, and the checks both modes share (profiles, billed pixels, a
//! bundle that could not be fetched).

use chain::hashes;
use media::profiles::ProfileSet;
use proof::EncodeMode;
use proof::bundle::Manifest;
use verifier::fetch::{Bundle, Challenge, FetchError};

const PROFILES: [&str; 2] = ["P360p30fps16x9", "P240p30fps16x9"];

/// One 2 s 640x360 segment of the test source, and its renditions from the engine in `mode`.
fn segment(mode: EncodeMode) -> (Vec<u8>, Vec<Vec<u8>>, u64) {
    let input = media::sources::TestSource {
        width: 640,
        height: 360,
        duration: 2.0,
        bitrate_kbps: 2000,
        ..Default::default()
    }
    .segments()
    .unwrap()
    .remove(0);
    let set = ProfileSet::default();
    let profiles = PROFILES
        .iter()
        .map(|p| set.by_name(p).unwrap().clone())
        .collect();
    let cfg = match mode {
        EncodeMode::BitExact => media::EngineConfig::bit_exact(profiles),
        EncodeMode::Fidelity => media::EngineConfig::new(profiles),
    };
    let mut engine = media::Transcoder::new(cfg).unwrap();
    // an engine with history, as a daemon's: its segment 5 must still match a fresh engine's
    engine.push_segment(4, &input).unwrap();
    let out = engine.push_segment(5, &input).unwrap();
    let pixels = out
        .renditions
        .iter()
        .map(|r| u64::from(r.width) * u64::from(r.height) * r.frames as u64)
        .sum();
    (
        input,
        out.renditions.into_iter().map(|r| r.data).collect(),
        pixels,
    )
}

fn bundle(
    input: &[u8],
    renditions: Vec<Vec<u8>>,
    mode: EncodeMode,
    pixels: u64,
) -> (Bundle, Challenge) {
    let manifest = Manifest {
        job_id: 1,
        stream_id: "cam".into(),
        seg_no: 5,
        data_hash: hashes::data_hash(input),
        profiles: PROFILES.iter().map(|p| p.to_string()).collect(),
        rendition_hashes: renditions.iter().map(|r| hashes::data_hash(r)).collect(),
        mode,
        pixels,
    };
    let c = Challenge {
        job_id: 1,
        seg_no: 5,
        data_hash: manifest.data_hash,
        transcoded_data_hash: hashes::transcoded_data_hash(&renditions),
    };
    (
        Bundle {
            manifest,
            input: input.to_vec(),
            renditions,
        },
        c,
    )
}

fn options() -> String {
    hashes::transcoding_options(&PROFILES)
}

#[test]
fn bit_exact_passes_a_deterministic_encode_and_fails_one_changed_byte() {
    let (input, renditions, pixels) = segment(EncodeMode::BitExact);
    let set = ProfileSet::default();
    let (b, c) = bundle(&input, renditions.clone(), EncodeMode::BitExact, pixels);
    let j = verifier::judge(&c, &set, &options(), Ok(b));
    assert!(j.verdict.passed, "{:?}", j.report.reason);
    assert_eq!(j.verdict.mode, verifier::judge::MODE_BIT_EXACT);
    assert_eq!(j.verdict.computed_hash, c.transcoded_data_hash);
    assert_eq!(j.verdict.report_hash, hashes::data_hash(&j.report_json));

    // one byte of the second rendition changed (the claim is over the changed bytes)
    let mut bad = renditions;
    let n = bad[1].len() / 2;
    bad[1][n] ^= 0x40;
    let (b, c) = bundle(&input, bad, EncodeMode::BitExact, pixels);
    let j = verifier::judge(&c, &set, &options(), Ok(b));
    assert!(!j.verdict.passed);
    assert_ne!(
        j.verdict.computed_hash, c.transcoded_data_hash,
        "the contract requires passed == (computed == claimed)"
    );
}

#[test]
fn fidelity_passes_honest_output_and_checks_profiles_and_billed_pixels() {
    let (input, renditions, pixels) = segment(EncodeMode::Fidelity);
    let set = ProfileSet::default();
    let (b, c) = bundle(&input, renditions.clone(), EncodeMode::Fidelity, pixels);
    let j = verifier::judge(&c, &set, &options(), Ok(b));
    assert!(j.verdict.passed, "{:?}", j.report.reason);
    assert_eq!(j.verdict.mode, verifier::judge::MODE_FIDELITY);
    assert!(j.verdict.score >= 0, "{}", j.verdict.score);
    assert_eq!(j.verdict.computed_hash, c.transcoded_data_hash);
    assert_eq!(j.report.pixels_measured, Some(pixels));

    // a transcoder that bills more pixels than its renditions hold
    let (b, c) = bundle(&input, renditions.clone(), EncodeMode::Fidelity, pixels * 2);
    let j = verifier::judge(&c, &set, &options(), Ok(b));
    assert!(!j.verdict.passed && j.verdict.score < 0);
    assert!(
        j.report.reason.as_deref().unwrap().contains("bills"),
        "{:?}",
        j.report.reason
    );

    // renditions in another order than the job's profiles
    let swapped: Vec<Vec<u8>> = renditions.iter().rev().cloned().collect();
    let (b, c) = bundle(&input, swapped, EncodeMode::Fidelity, pixels);
    let j = verifier::judge(&c, &set, &options(), Ok(b));
    assert!(
        !j.verdict.passed,
        "the 240p picture is not a 360p rendition"
    );

    // a job for other profiles than the bundle's
    let (b, c) = bundle(&input, renditions, EncodeMode::Fidelity, pixels);
    let other = hashes::transcoding_options(&["P720p30fps16x9"]);
    let j = verifier::judge(&c, &set, &other, Ok(b));
    assert!(!j.verdict.passed);
    assert!(j.report.reason.as_deref().unwrap().contains("job asks for"));
}

#[test]
fn a_bundle_that_contradicts_the_claim_fails() {
    let c = Challenge {
        job_id: 1,
        seg_no: 5,
        data_hash: chain::H256::repeat_byte(1),
        transcoded_data_hash: chain::H256::repeat_byte(2),
    };
    let err = FetchError::NotAUrl("ipfs://x".into());
    assert!(err.is_final());
    let j = verifier::judge(&c, &ProfileSet::default(), &options(), Err(err));
    assert!(!j.verdict.passed && j.verdict.score < 0);
    assert!(j.report.reason.unwrap().contains("proof bundle"));
}
