//! The fuzz targets on the stable toolchain: each target's body (`volley::fuzz`) run on its
//! committed seeds in `fuzz/corpus/TARGET/`, then on inputs the mutation engine in [`mutate`]
//! makes from them, for a bounded time. The cargo-fuzz crate in `fuzz/` runs the same bodies
//! under libFuzzer for long, coverage-guided runs; FUZZING.md has the commands and the figures.
//!
//! - `VOLLEY_FUZZ_SECONDS` (default 2): how long each target runs.
//! - `VOLLEY_FUZZ_SEED` (default: a fixed seed per target): the mutation engine's seed; the same
//!   seed makes the same inputs in the same order.
//! - `VOLLEY_FUZZ_REPRODUCE=FILE`: run the target whose name starts the file's name
//!   (`wsframe-...`) on that one input instead, as the path a failure prints is named.
//!
//! A failing input is written to `fuzz-failures/` under cargo's test temporary directory; its
//! path, the seed and the execution number are in the failure's message.

mod mutate;

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use std::{env, fs};

use mutate::{Mutator, parse_dictionary};
use volley::fuzz::{TARGETS, Target};

/// Inputs longer than this are cut: the parsers' interesting states are all reachable well
/// within it, and longer inputs only slow the run down.
const MAX_INPUT_LEN: usize = 4096;
/// Mutants kept to be mutated again, so mutations stack across generations.
const POOL: usize = 64;
/// One execution slower than this is a finding too (a debug build, on a loaded machine).
const SLOW: Duration = Duration::from_secs(2);

#[test]
fn wsframe_agrees_with_tungstenite_and_round_trips() {
    fuzz("wsframe");
}

#[test]
fn http1_heads_parse_the_same_whole_or_in_prefixes() {
    fuzz("http1_head");
}

#[test]
fn http1_chunked_bodies_decode_the_same_in_any_pieces() {
    fuzz("http1_chunked");
}

#[test]
fn engineio_packets_and_payloads_round_trip() {
    fuzz("engineio");
}

#[test]
fn socketio_packets_and_attachments_round_trip() {
    fuzz("socketio");
}

#[test]
fn pointer_reads_agree_with_serde_json() {
    fuzz("pointer");
}

#[test]
fn stamp_is_found_as_written() {
    fuzz("stamp");
}

#[test]
fn cookie_headers_and_dates_parse_consistently() {
    fuzz("cookie");
}

#[test]
fn wire_decode_records_stay_bounded_json_and_hide_secrets() {
    fuzz("wire_decode");
}

#[test]
fn templates_render_json_with_their_stamp() {
    fuzz("template");
}

#[test]
fn secrets_stay_hidden_in_every_form() {
    fuzz("secrets");
}

#[test]
fn units_are_written_back_as_they_parse() {
    fuzz("units");
}

#[test]
fn filter_expressions_are_their_terms_joined() {
    fuzz("filter");
}

#[test]
fn scenario_files_compile_or_point_at_their_error() {
    fuzz("scenario");
}

#[test]
fn record_har_gives_scenarios_that_compile_or_refusals_that_point_inside() {
    fuzz("record_har");
}

#[test]
fn record_jsonl_gives_scenarios_that_compile_or_refusals_that_point_inside() {
    fuzz("record_jsonl");
}

/// Every target has a test here, seeds, a dictionary, a cargo-fuzz binary and a line in
/// FUZZING.md; nothing in `fuzz/` names a target that does not exist.
#[test]
fn every_target_has_seeds_a_dictionary_a_libfuzzer_binary_and_a_report_line() {
    let root = root();
    let this = fs::read_to_string(root.join("tests/fuzz/mod.rs")).unwrap();
    let manifest = fs::read_to_string(root.join("fuzz/Cargo.toml")).unwrap();
    let report = fs::read_to_string(root.join("FUZZING.md")).unwrap();
    for target in TARGETS {
        let name = target.name;
        assert!(
            this.contains(&format!("fuzz(\"{name}\")")),
            "no test runs {name}"
        );
        assert!(!seeds(target).is_empty(), "no seeds in fuzz/corpus/{name}/");
        dictionary(target);
        let binary = fs::read_to_string(root.join(format!("fuzz/fuzz_targets/{name}.rs")))
            .unwrap_or_else(|e| panic!("fuzz/fuzz_targets/{name}.rs: {e}"));
        assert!(
            binary.contains(&format!("volley::fuzz::run(\"{name}\", data)")),
            "fuzz/fuzz_targets/{name}.rs does not run {name}"
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] {name}"
        );
        assert!(
            report.contains(&format!("| `{name}` |")),
            "FUZZING.md has no row for {name}"
        );
    }
    for folder in ["fuzz/corpus", "fuzz/dict", "fuzz/fuzz_targets"] {
        for entry in fs::read_dir(root.join(folder)).unwrap() {
            let path = entry.unwrap().path();
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            assert!(
                volley::fuzz::target(&stem).is_some(),
                "{} names no target",
                path.display()
            );
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The target's seed files, sorted by name.
fn seeds(target: &Target) -> Vec<Vec<u8>> {
    let dir = root().join("fuzz/corpus").join(target.name);
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    paths.sort();
    paths.iter().map(|p| fs::read(p).unwrap()).collect()
}

fn dictionary(target: &Target) -> Vec<Vec<u8>> {
    let path = root()
        .join("fuzz/dict")
        .join(format!("{}.dict", target.name));
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_dictionary(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// How long each target runs.
fn duration() -> Duration {
    let seconds = env::var("VOLLEY_FUZZ_SECONDS").map_or(2.0, |s| {
        s.parse::<f64>()
            .unwrap_or_else(|_| panic!("VOLLEY_FUZZ_SECONDS={s:?} is no number of seconds"))
    });
    Duration::from_secs_f64(seconds)
}

/// The mutation engine's seed: `VOLLEY_FUZZ_SEED`, or one fixed per target.
fn seed(name: &str) -> u64 {
    match env::var("VOLLEY_FUZZ_SEED") {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("VOLLEY_FUZZ_SEED={s:?} is no unsigned integer")),
        // FNV-1a of the name: fixed, and different for each target.
        Err(_) => name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        }),
    }
}

/// Runs one target: its seeds, then mutants until the time is up (or one given input).
fn fuzz(name: &str) {
    let target = volley::fuzz::target(name).expect("a target");
    if let Ok(path) = env::var("VOLLEY_FUZZ_REPRODUCE") {
        // The file is the named target's input; the other targets' tests leave it alone.
        let file = Path::new(&path)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned());
        if file.is_some_and(|f| f.starts_with(&format!("{name}-"))) {
            let input = fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            (target.check)(&input);
        }
        return;
    }
    let seeds = seeds(target);
    let seed = seed(name);
    let mut mutator = Mutator::new(seed, MAX_INPUT_LEN, dictionary(target));
    let started = Instant::now();
    let deadline = started + duration();
    let mut pool: Vec<Vec<u8>> = Vec::with_capacity(POOL);
    let mut executions: u64 = 0;
    for input in &seeds {
        execute(target, input, seed, executions);
        executions += 1;
    }
    while Instant::now() < deadline {
        let from_pool = !pool.is_empty() && mutator.index(3) == 0;
        let base = if from_pool {
            &pool[mutator.index(pool.len())]
        } else {
            &seeds[mutator.index(seeds.len())]
        };
        let input = mutator.mutate(base, &seeds);
        execute(target, &input, seed, executions);
        executions += 1;
        if pool.len() < POOL {
            pool.push(input);
        } else {
            let slot = mutator.index(POOL);
            pool[slot] = input;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "fuzz {name}: {executions} executions in {seconds:.1} s ({:.0}/s) from {} seeds, seed {seed}",
        executions as f64 / seconds,
        seeds.len()
    );
}

/// Runs the target on one input; on a panic or a slow run, writes the input out and fails with
/// everything needed to reproduce it.
fn execute(target: &Target, input: &[u8], seed: u64, execution: u64) {
    let started = Instant::now();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| (target.check)(input)));
    let problem = match outcome {
        Err(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic without a message".into()),
        Ok(()) if started.elapsed() > SLOW => {
            format!(
                "one execution took {:.1} s",
                started.elapsed().as_secs_f64()
            )
        }
        Ok(()) => return,
    };
    let path = save_failure(target.name, input);
    panic!(
        "fuzz target {} failed at execution {execution} (seed {seed}): {problem}\n\
         the input is in {}; reproduce with\n  \
         VOLLEY_FUZZ_REPRODUCE={} cargo test --test integration fuzz::{}\n\
         or, in fuzz/, cargo fuzz run {} {}",
        target.name,
        path.display(),
        path.display(),
        target.name,
        target.name,
        path.display(),
    );
}

fn save_failure(name: &str, input: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let hash = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let path = dir.join(format!("{name}-{hash:016x}"));
    fs::write(&path, input).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}
