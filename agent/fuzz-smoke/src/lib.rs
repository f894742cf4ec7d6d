//! The repository's fuzz targets (`agent/<crate>/fuzz/fuzz_targets/*.rs`, built by cargo-fuzz with coverage
//! instrumentation for `./x fuzz`) are also run by each crate's ordinary tests: a target file exposes its body
//! as `pub fn run(data: &[u8])`, and the crate's `tests/fuzz_targets.rs` includes that file as a module and
//! hands `run` to [`Smoke::check`].
//!
//! A smoke run is not a fuzzing campaign. It has no coverage feedback; it replays what a campaign left behind
//! (`fuzz/corpus/<target>/`, `fuzz/artifacts/<target>/`, both git-ignored, when present), runs the hand-made
//! seeds the test gives (valid inputs that reach deep into the parser), and then a fixed number of seeded
//! mutations of them, libFuzzer's kind (bit flips, interesting values, inserted, erased, copied and spliced
//! ranges, truncation). It is deterministic: the same seed runs the same inputs.
//!
//! A failing input is written to `<target dir>/fuzz-smoke/<target>-<hash>`, and the test fails with the command
//! that replays it under cargo-fuzz.
//!
//! Environment: `FUZZ_SMOKE_RUNS` (mutations per target, default per target), `FUZZ_SMOKE_SEED` (the RNG seed,
//! default 1), `FUZZ_SMOKE_EXPORT` (set: the seeds are also written into `fuzz/corpus/<target>/`, where a
//! coverage-guided campaign starts from them; `./x fuzz` does this first).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One target's smoke run.
pub struct Smoke<'a> {
    /// The fuzz crate's directory (`agent/<crate>/fuzz`).
    pub fuzz_dir: PathBuf,
    /// The target's name, as `cargo fuzz list` gives it.
    pub target: &'a str,
    /// Mutated inputs to run after the corpus and the seeds.
    pub runs: usize,
    /// No mutant grows beyond this (libFuzzer's `-max_len`).
    pub max_len: usize,
}

impl<'a> Smoke<'a> {
    /// `crate_dir` is the crate's `CARGO_MANIFEST_DIR`.
    pub fn new(crate_dir: &str, target: &'a str) -> Self {
        Smoke {
            fuzz_dir: Path::new(crate_dir).join("fuzz"),
            target,
            runs: 20_000,
            max_len: 4096,
        }
    }

    pub fn runs(mut self, runs: usize) -> Self {
        self.runs = runs;
        self
    }

    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// Runs the corpus, `seeds`, and the mutations through `run`; panics with the failing input's file when
    /// one panics. Returns how many inputs ran.
    pub fn check(&self, seeds: &[Vec<u8>], run: impl Fn(&[u8])) -> usize {
        let runs = std::env::var("FUZZ_SMOKE_RUNS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(self.runs);
        let rng_seed = std::env::var("FUZZ_SMOKE_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        if std::env::var_os("FUZZ_SMOKE_EXPORT").is_some() {
            self.export(seeds);
        }
        let mut pool: Vec<Vec<u8>> = seeds.to_vec();
        for dir in ["corpus", "artifacts"] {
            pool.extend(read_dir(&self.fuzz_dir.join(dir).join(self.target)));
        }
        let mut ran = 0;
        for input in &pool {
            self.one(input, &run);
            ran += 1;
        }
        if pool.is_empty() {
            pool.push(Vec::new());
        }
        let fixed = pool.len();
        let mut rng = StdRng::seed_from_u64(rng_seed);
        for _ in 0..runs {
            // half of the time a mutant of a mutant: stacked changes get further than one at a time
            let from = if pool.len() > fixed && rng.gen_bool(0.5) {
                rng.gen_range(fixed..pool.len())
            } else {
                rng.gen_range(0..fixed)
            };
            let mut input = pool[from].clone();
            for _ in 0..rng.gen_range(1..=4) {
                mutate(&mut rng, &mut input, &pool, self.max_len);
            }
            self.one(&input, &run);
            ran += 1;
            if pool.len() < fixed + 256 {
                pool.push(input);
            } else {
                let i = rng.gen_range(fixed..pool.len());
                pool[i] = input;
            }
        }
        ran
    }

    /// Writes `seeds` into the target's corpus directory, one file each, named by content.
    fn export(&self, seeds: &[Vec<u8>]) {
        let dir = self.fuzz_dir.join("corpus").join(self.target);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!("cannot create {}: {e}", dir.display());
        }
        for seed in seeds {
            let file = dir.join(format!("seed-{:016x}", hash(seed)));
            if let Err(e) = std::fs::write(&file, seed) {
                panic!("cannot write {}: {e}", file.display());
            }
        }
    }

    fn one(&self, input: &[u8], run: &impl Fn(&[u8])) {
        if panic::catch_unwind(AssertUnwindSafe(|| run(input))).is_ok() {
            return;
        }
        let dir = target_dir().join("fuzz-smoke");
        let file = dir.join(format!("{}-{:016x}", self.target, hash(input)));
        let saved = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&file, input));
        let shown: String = input.iter().take(64).map(|b| format!("{b:02x}")).collect();
        panic!(
            "fuzz target {} panicked on a {}-byte input ({shown}{}); {}; replay: cd {} && cargo fuzz run {} {}",
            self.target,
            input.len(),
            if input.len() > 64 { "..." } else { "" },
            match saved {
                Ok(()) => format!("saved to {}", file.display()),
                Err(e) => format!("not saved: {e}"),
            },
            self.fuzz_dir.display(),
            self.target,
            file.display(),
        );
    }
}

fn hash(input: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    input.hash(&mut h);
    h.finish()
}

fn read_dir(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// Where cargo builds (the test binary lives in `<target>/debug/deps/`).
fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return d.into();
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .unwrap_or_else(std::env::temp_dir)
}

/// Values that sit on the edges of lengths, counts and signed ranges.
const INTERESTING: [u8; 9] = [0, 1, 0x7f, 0x80, 0xff, 0xfe, 16, 32, 64];

/// One libFuzzer-style change to `input`, which stays within `max_len`.
fn mutate(rng: &mut StdRng, input: &mut Vec<u8>, pool: &[Vec<u8>], max_len: usize) {
    let len = input.len();
    match rng.gen_range(0..10) {
        0 if len > 0 => {
            let i = rng.gen_range(0..len);
            input[i] ^= 1 << rng.gen_range(0..8);
        }
        1 if len > 0 => {
            let i = rng.gen_range(0..len);
            input[i] = rng.r#gen();
        }
        2 if len > 0 => {
            let i = rng.gen_range(0..len);
            input[i] = INTERESTING[rng.gen_range(0..INTERESTING.len())];
        }
        // a big-endian u16 or u32 a little off, or at its edge: lengths and counts in headers
        3 if len >= 4 => {
            let i = rng.gen_range(0..=len - 4);
            let w = rng.gen_range(2..=4usize) & !1;
            let mut v = input[i..i + w]
                .iter()
                .fold(0u64, |v, b| v << 8 | u64::from(*b));
            v = match rng.gen_range(0..3) {
                0 => v.wrapping_add(rng.gen_range(1..=16)),
                1 => v.wrapping_sub(rng.gen_range(1..=16)),
                _ => (1u64 << (8 * w)) - 1,
            };
            for k in 0..w {
                input[i + k] = (v >> (8 * (w - 1 - k))) as u8;
            }
        }
        4 if len < max_len => {
            let i = rng.gen_range(0..=len);
            let n = rng.gen_range(1..=16).min(max_len - len);
            let bytes: Vec<u8> = (0..n).map(|_| rng.r#gen()).collect();
            input.splice(i..i, bytes);
        }
        5 if len > 0 => {
            let i = rng.gen_range(0..len);
            let n = rng.gen_range(1..=(len - i).min(64));
            input.drain(i..i + n);
        }
        // a range of the input again, elsewhere in it
        6 if len > 0 && len < max_len => {
            let i = rng.gen_range(0..len);
            let n = rng.gen_range(1..=(len - i).min(64)).min(max_len - len);
            let at = rng.gen_range(0..=len);
            let part = input[i..i + n].to_vec();
            input.splice(at..at, part);
        }
        // spliced with another input of the pool
        7 => {
            let other = &pool[rng.gen_range(0..pool.len())];
            if !other.is_empty() {
                let cut = rng.gen_range(0..=len);
                let from = rng.gen_range(0..other.len());
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
                input.truncate(max_len);
            }
        }
        8 if len > 0 => input.truncate(rng.gen_range(0..len)),
        _ => {
            let n = rng.gen_range(1..=8).min(max_len.saturating_sub(len));
            input.extend((0..n).map(|_| rng.r#gen::<u8>()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_runs_the_same_inputs_and_mutants_stay_within_max_len() {
        let seen = |seed: u64| {
            let mut rng = StdRng::seed_from_u64(seed);
            let pool = vec![b"hello, world".to_vec(), vec![0; 40]];
            let mut input = pool[0].clone();
            let mut all = Vec::new();
            for _ in 0..2000 {
                mutate(&mut rng, &mut input, &pool, 48);
                assert!(input.len() <= 48);
                all.push(input.clone());
            }
            all
        };
        assert_eq!(seen(7), seen(7));
        assert_ne!(seen(7), seen(8));
    }

    #[test]
    fn a_panicking_input_fails_the_run_and_is_saved_for_replay() {
        let smoke = Smoke::new(env!("CARGO_MANIFEST_DIR"), "finds_a_byte")
            .runs(50_000)
            .max_len(64);
        let err = panic::catch_unwind(|| {
            smoke.check(&[b"abc".to_vec()], |d| {
                assert!(!d.windows(2).any(|w| w == [0xde, 0xad]))
            })
        })
        .expect_err("a two-byte pattern is found");
        let msg = err.downcast_ref::<String>().expect("a message");
        assert!(msg.contains("saved to"), "{msg}");
        let file = msg
            .split("saved to ")
            .nth(1)
            .and_then(|s| s.split(';').next())
            .expect("a path");
        let input = std::fs::read(file).expect("the input was saved");
        assert!(input.windows(2).any(|w| w == [0xde, 0xad]));
        std::fs::remove_file(file).ok();
    }

    #[test]
    fn inputs_that_pass_are_counted() {
        let n = Smoke::new(env!("CARGO_MANIFEST_DIR"), "none")
            .runs(100)
            .check(&[vec![1, 2, 3]], |_| {});
        assert_eq!(n, 101);
    }
}
