//! The capacity calibration on real pipelines: k engines at once on the same test segments.

use media::capacity::{CalibrationInput, calibrate};
use media::{EngineConfig, Profile};

#[test]
fn a_small_ladder_is_calibrated_with_trials_of_more_and_more_streams() {
    let cfg = EngineConfig::continuous(vec![Profile::new("tiny", 160, 90, 30, 150).unwrap()]);
    let input = CalibrationInput {
        width: 320,
        height: 180,
        fps: 30,
        seconds: 2.0,
        segment_secs: 1.0,
        headroom: 1.2,
        max_streams: 2,
    };
    let c = calibrate(&cfg, &input).unwrap();
    eprintln!("{c:#?}");
    assert!(!c.trials.is_empty());
    for (i, t) in c.trials.iter().enumerate() {
        assert_eq!(t.streams as usize, i + 1, "trials count up");
        assert!(t.slowest_realtime > 0.0 && t.slowest_realtime <= t.mean_realtime + 1e-9);
    }
    // the verdict is the rule over the trials
    assert_eq!(
        (c.streams, c.below_realtime),
        media::capacity::decide(&c.trials, input.headroom)
    );
    // a tiny ladder runs far faster than real time here: at least one stream with the headroom
    assert!(!c.below_realtime, "{c:?}");
}
