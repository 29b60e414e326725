//! `volley compare` as a user meets it: crafted result folders (run.json written by hand in the
//! shape `volley run` writes, checked against its schema) judged for noise, regressions and
//! improvements; allowances; the JUnit, Markdown and JSON summaries; and two real runs compared.

use crate::common;

use std::path::{Path, PathBuf};

use predicates::prelude::*;
use serde_json::{Value, json};

fn volley() -> assert_cmd::Command {
    let mut command = assert_cmd::Command::cargo_bin("volley").unwrap();
    command.env_remove("GITHUB_STEP_SUMMARY");
    command
}

/// A run.json of scenario "chat" whose `echo` latency scales with `p99` (µs): p50 is half of it,
/// p90 three quarters, p95 nine tenths, p99.9 and max more; `connect` is the same in every run.
fn run_json(p99: u64) -> Value {
    let errors: Map = volley::metrics::ErrorKind::ALL
        .iter()
        .map(|k| (k.as_str().to_string(), json!(0)))
        .collect();
    json!({
        "schema_version": 1,
        "tool": { "name": "volley", "version": "0.1.0" },
        "run_id": "0a1b2c3d",
        "status": "completed",
        "host": { "hostname": "ci", "os": "linux", "arch": "x86_64", "cpus": 2 },
        "started_at": "2026-12-01T10:00:00.000Z",
        "ended_at": "2026-12-01T10:00:12.000Z",
        "elapsed_s": 12.0,
        "scenario": {
            "file": "scenarios/chat.toml",
            "name": "chat",
            "resolved": { "name": "chat", "target": "builtin", "protocol": "ws", "duration": "10s",
                          "ramp": "1s", "drain": "1s", "group": [{ "name": "g", "clients": 10 }] }
        },
        "settings": { "target_url": "ws://127.0.0.1:4000/echo", "seed": 7, "workers": 2,
                      "clients_planned": 10, "clients_started": 10 },
        "summary": {
            "latency": {
                "connect": latency(10, 200),
                "echo": {
                    "count": 1000, "min_us": p99 / 10, "p50_us": p99 / 2, "p90_us": p99 * 3 / 4,
                    "p95_us": p99 * 9 / 10, "p99_us": p99, "p99_9_us": p99 * 11 / 10,
                    "max_us": p99 * 2, "mean_us": p99 as f64 / 2.0, "stdev_us": p99 as f64 / 5.0
                },
                "reconnect": { "count": 0 }
            },
            "counters": { "sent": 990, "received": 990, "connects": 10, "connect_failures": 0,
                          "errors": 0, "reconnects": 0, "reconnects_recovered": 0,
                          "acks_sent": 0, "acks_lost": 0, "ack_retries": 0 },
            "errors_by_kind": errors,
            "closes_by_code": { "1000": 10 },
            "expects": { "echo": expect(990, 0) },
            "client_cpu_s": 0.5,
            "client_cpu_us_per_echo": 25.0,
            "error_rows_dropped": 0,
            "gap_rows_dropped": 0,
            "frame_log": null
        },
        "thresholds": []
    })
}

type Map = serde_json::Map<String, Value>;

fn latency(count: u64, us: u64) -> Value {
    json!({ "count": count, "min_us": us, "p50_us": us, "p90_us": us, "p95_us": us,
            "p99_us": us, "p99_9_us": us, "max_us": us, "mean_us": us as f64, "stdev_us": 0.0 })
}

fn expect(expected: u64, lost: u64) -> Value {
    let rate = lost as f64 / expected as f64;
    json!({ "sent": expected, "expected": expected, "received": expected - lost, "lost": lost,
            "late": 0, "duplicate": 0, "reorder": 0, "gap": 0, "refilled": 0,
            "lost_rate": rate, "late_rate": 0.0, "duplicate_rate": 0.0, "reorder_rate": 0.0 })
}

/// Writes `doc` as `root/name/run.json`, after checking it against the committed schema.
fn folder(root: &Path, name: &str, doc: &Value) -> PathBuf {
    let schema: Value = serde_json::from_str(include_str!("../schema/run.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "crafted run.json off schema: {errors:?}");
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("run.json"),
        serde_json::to_vec_pretty(doc).unwrap(),
    )
    .unwrap();
    dir
}

/// One folder per p99, named `{side}{i}`.
fn folders(root: &Path, side: &str, p99s: &[u64]) -> Vec<PathBuf> {
    p99s.iter()
        .enumerate()
        .map(|(i, &p99)| folder(root, &format!("{side}{}", i + 1), &run_json(p99)))
        .collect()
}

fn compare(base: &[PathBuf], new: &[PathBuf]) -> assert_cmd::Command {
    let mut command = volley();
    command
        .arg("compare")
        .arg("--base")
        .args(base)
        .arg("--new")
        .args(new);
    command
}

/// The table line of one figure.
fn line<'a>(stdout: &'a str, figure: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(figure))
        .unwrap_or_else(|| panic!("no line for {figure} in\n{stdout}"))
}

fn stdout_of(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(assert.get_output().stdout.clone()).unwrap()
}

#[test]
fn repeated_runs_whose_spread_covers_the_change_are_noise_and_pass() {
    let dir = tempfile::tempdir().unwrap();
    // Medians 1,200 → 1,400 µs (+16.7%, past 10%) within the base runs' spread of 600 µs.
    let base = folders(dir.path(), "base", &[1000, 1200, 1600]);
    let new = folders(dir.path(), "new", &[1350, 1400, 1500]);
    let assert = compare(&base, &new).assert().code(0);
    let out = stdout_of(&assert);
    let p99 = line(&out, "echo.p99");
    assert!(p99.ends_with("noise"), "{p99}");
    assert!(p99.contains("1.20ms ±0.60"), "{p99}");
    assert!(p99.contains("1.40ms ±0.15"), "{p99}");
    assert!(p99.contains("+200µs (+16.7%)"), "{p99}");
    assert!(line(&out, "connect.p99").ends_with("ok"));
    assert!(out.contains("PASSED: 18 checks (6 noise)"), "{out}");
    assert!(
        out.contains("± is a side's spread (max − min of its runs)"),
        "{out}"
    );
    assert!(!out.contains("cannot tell noise"), "{out}");
}

#[test]
fn a_change_beyond_the_allowance_and_both_spreads_regresses_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let base = folders(dir.path(), "base", &[1000, 1010, 1020]);
    let new = folders(dir.path(), "new", &[1490, 1500, 1510]);
    let assert = compare(&base, &new).assert().code(3);
    let out = stdout_of(&assert);
    let p99 = line(&out, "echo.p99");
    assert!(p99.ends_with("REGRESSED"), "{p99}");
    assert!(p99.contains("1.01ms ±0.020"), "{p99}");
    assert!(p99.contains("+490µs (+48.5%)"), "{p99}");
    assert!(line(&out, "connect.p99").ends_with("ok"));
    assert!(line(&out, "echo.lost.rate").ends_with("ok"));
    assert!(out.contains("FAILED: 6 of 18 checks"), "{out}");
}

#[test]
fn single_runs_are_judged_by_the_allowance_alone_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let base = folder(dir.path(), "base", &run_json(1000));
    let close = folder(dir.path(), "close", &run_json(1080));
    let far = folder(dir.path(), "far", &run_json(1200));
    let assert = volley()
        .arg("compare")
        .args([&base, &close])
        .assert()
        .code(0);
    let out = stdout_of(&assert);
    assert!(
        out.contains("Single runs: volley cannot tell noise from a regression, so each figure is judged by its allowance alone"),
        "{out}"
    );
    assert!(line(&out, "echo.p99").ends_with("ok"));
    let assert = volley().arg("compare").args([&base, &far]).assert().code(3);
    assert!(line(&stdout_of(&assert), "echo.p99").ends_with("REGRESSED"));
    // Two base runs and one new: still no spread to judge the new side by.
    let base2 = folder(dir.path(), "base2", &run_json(1000));
    let assert = compare(&[base, base2], &[far]).assert().code(3);
    assert!(stdout_of(&assert).contains("A single run on one side: volley cannot tell noise"));
}

#[test]
fn an_improvement_beyond_the_allowance_and_spreads_is_said_and_passes() {
    let dir = tempfile::tempdir().unwrap();
    let base = folders(dir.path(), "base", &[2000, 2100]);
    let new = folders(dir.path(), "new", &[1000, 1040]);
    let assert = compare(&base, &new).assert().code(0);
    let out = stdout_of(&assert);
    let p99 = line(&out, "echo.p99");
    assert!(p99.ends_with("improved"), "{p99}");
    assert!(p99.contains("−1.03ms (−50.2%)"), "{p99}");
    assert!(out.contains("PASSED: 18 checks (6 improved)"), "{out}");
}

#[test]
fn a_metric_only_one_side_has_is_skipped_and_said_never_passed() {
    let dir = tempfile::tempdir().unwrap();
    let base = folder(dir.path(), "base", &run_json(1000));
    let mut doc = run_json(1000);
    doc["summary"]["latency"]["fanout"] = latency(500, 3000);
    doc["summary"]["expects"]["fanout"] = expect(500, 5);
    let new = folder(dir.path(), "new", &doc);
    let assert = volley().arg("compare").args([&base, &new]).assert().code(0);
    let out = stdout_of(&assert);
    let p99 = line(&out, "fanout.p99");
    assert!(p99.contains("—"), "{p99}");
    assert!(p99.ends_with("skipped: not in the base run"), "{p99}");
    assert!(line(&out, "fanout.lost.rate").ends_with("skipped: not in the base run"));
    assert!(out.contains("PASSED: 28 checks, 10 skipped"), "{out}");
    assert!(
        out.contains("Not compared: `reconnect` (no samples in any run)."),
        "{out}"
    );
}

#[test]
fn max_regression_sets_allowances_by_statistic_or_full_name_and_adds_figures() {
    let dir = tempfile::tempdir().unwrap();
    let base = folder(dir.path(), "base", &run_json(1000));
    let new = folder(dir.path(), "new", &run_json(1200));
    // Every latency statistic may get 25% worse: +20% passes; the flag may be repeated.
    let assert = volley()
        .arg("compare")
        .args([&base, &new])
        .args(["--max-regression", "p50=25%,p90=25%,p95=25%"])
        .args(["--max-regression", "p99=25%,p99.9=25%,mean=25%"])
        .assert()
        .code(0);
    assert!(line(&stdout_of(&assert), "echo.p99").contains("25%"));
    // A full name beats the statistic; a duration is an absolute change.
    let assert = volley()
        .arg("compare")
        .args([&base, &new])
        .args([
            "--max-regression",
            "p50=25%,p90=25%,p95=25%,p99=25%,p99.9=25%,mean=25%,echo.p99=100us",
        ])
        .assert()
        .code(3);
    let out = stdout_of(&assert);
    assert!(line(&out, "echo.p99").contains("100µs"), "{out}");
    assert!(line(&out, "echo.p99").ends_with("REGRESSED"), "{out}");
    assert!(out.contains("FAILED: 1 of 18 checks"), "{out}");
    // max is not compared by default; naming it compares it. A share's number is a share.
    let mut lossy = run_json(1000);
    lossy["summary"]["expects"]["echo"] = expect(990, 3);
    let lossy = folder(dir.path(), "lossy", &lossy);
    let assert = volley()
        .arg("compare")
        .args([&base, &lossy])
        .args(["--max-regression", "max=10%,echo.lost.rate=0.005"])
        .assert()
        .code(0);
    let out = stdout_of(&assert);
    assert!(line(&out, "echo.max").ends_with("ok"), "{out}");
    assert!(line(&out, "echo.lost.rate").contains("0.5pp"), "{out}");
    let assert = volley()
        .arg("compare")
        .args([&base, &lossy])
        .assert()
        .code(3);
    let out = stdout_of(&assert);
    assert!(!out.contains("echo.max"), "{out}");
    let lost = line(&out, "echo.lost.rate");
    assert!(lost.contains("0%") && lost.contains("0.303%") && lost.contains("+0.303pp"));
    assert!(lost.ends_with("REGRESSED"), "{lost}");
}

#[test]
fn bad_max_regression_items_exit_2_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let base = folder(dir.path(), "base", &run_json(1000));
    let new = folder(dir.path(), "new", &run_json(1000));
    for (spec, says) in [
        ("p99=10", "has no unit"),
        ("p101=10%", "a number from 0 to 100"),
        ("p99", "expected KEY=VALUE"),
        ("errors.rate=5ms", "is a duration"),
        ("p99=10%,p99=20%", "already given as `p99=10%`"),
        ("ehco.p99=5ms", "(they have: connect, echo, reconnect)"),
        (
            "echo.lots.rate=0",
            "no compared run has a counter named `echo.lots`",
        ),
    ] {
        let item = spec.rsplit(',').next().unwrap();
        volley()
            .arg("compare")
            .args([&base, &new])
            .args(["--max-regression", spec])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(item).and(predicate::str::contains(says)));
    }
}

#[test]
fn junit_is_well_formed_with_one_case_per_figure_and_failures_with_figures() {
    let dir = tempfile::tempdir().unwrap();
    let base = folders(dir.path(), "base", &[1000, 1010, 1020]);
    let new = folders(dir.path(), "new", &[1490, 1500, 1510]);
    let junit = dir.path().join("compare.xml");
    compare(&base, &new)
        .arg("--junit")
        .arg(&junit)
        .assert()
        .code(3);
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(suite.attribute("name"), Some("volley.compare"));
    assert_eq!(suite.attribute("tests"), Some("18"));
    assert_eq!(suite.attribute("failures"), Some("6"));
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 18);
    let failed: Vec<(&str, &str)> = cases
        .iter()
        .filter_map(|case| {
            let failure = case.children().find(|n| n.has_tag_name("failure"))?;
            Some((case.attribute("name")?, failure.attribute("message")?))
        })
        .collect();
    let names: Vec<&str> = failed.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        [
            "echo.p50",
            "echo.p90",
            "echo.p95",
            "echo.p99",
            "echo.p99.9",
            "echo.mean"
        ]
    );
    let (_, p99) = failed.iter().find(|(name, _)| *name == "echo.p99").unwrap();
    assert_eq!(
        *p99,
        "echo.p99 regressed: 1.01ms → 1.50ms, +490µs (+48.5%), worse by more than the allowed \
         101µs (10%) and the spread of the runs (base ±0.020ms, new ±0.020ms)"
    );
    let errors = cases
        .iter()
        .find(|c| c.attribute("name") == Some("errors.rate"))
        .unwrap();
    assert!(errors.children().all(|n| !n.has_tag_name("failure")));
}

#[test]
fn markdown_and_json_are_written_and_the_step_summary_appended() {
    let dir = tempfile::tempdir().unwrap();
    let base = folders(dir.path(), "base", &[1000, 1020]);
    let new = folders(dir.path(), "new", &[1490, 1510]);
    let (markdown, json_file) = (dir.path().join("c.md"), dir.path().join("c.json"));
    let step_summary = dir.path().join("step-summary.md");
    std::fs::write(&step_summary, "earlier step\n").unwrap();
    let assert = compare(&base, &new)
        .arg("--markdown")
        .arg(&markdown)
        .arg("--json")
        .arg(&json_file)
        .env("GITHUB_STEP_SUMMARY", &step_summary)
        .assert()
        .code(3);
    assert!(stdout_of(&assert).contains("written: "));

    let md = std::fs::read_to_string(&markdown).unwrap();
    assert!(md.starts_with("### volley compare: \"chat\"\n"), "{md}");
    assert!(md.contains("❌ **FAILED: 6 of 18 checks**"), "{md}");
    assert!(
        md.contains("| | metric | base | new | change | allowed | verdict |"),
        "{md}"
    );
    assert!(
        md.contains(
            "| ❌ | `echo.p99` | 1.01ms ±0.020 | 1.50ms ±0.020 | +490µs (+48.5%) | 10% | REGRESSED |"
        ),
        "{md}"
    );
    assert!(
        md.contains("| ✅ | `errors.rate` | 0% ±0 | 0% ±0 | 0 | 0.1pp | ok |"),
        "{md}"
    );

    let summary = std::fs::read_to_string(&step_summary).unwrap();
    assert!(
        summary.starts_with("earlier step\n### volley compare"),
        "{summary}"
    );
    assert!(summary.contains(&md));

    let doc: Value = serde_json::from_slice(&std::fs::read(&json_file).unwrap()).unwrap();
    assert_eq!(doc["passed"], false);
    assert_eq!(doc["failures"], 6);
    assert_eq!(doc["detail"]["noise_aware"], true);
    let p99 = doc["detail"]["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "echo.p99")
        .unwrap();
    assert_eq!(p99["verdict"], "regressed");
    assert_eq!(p99["unit"], "us");
    assert_eq!(p99["base"]["runs"], json!([1000.0, 1020.0]));
    assert_eq!(p99["base"]["median"], 1010.0);
    assert_eq!(p99["new"]["spread"], 20.0);
    assert_eq!(p99["allowance"], json!({ "relative": 0.1 }));
    assert_eq!(p99["allowance_from"], "default");
}

#[test]
fn folders_without_a_good_run_json_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = folder(dir.path(), "good", &run_json(1000));
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let broken = dir.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(broken.join("run.json"), "{ \"schema_version\": 1, ").unwrap();
    let future = folder(dir.path(), "future", &run_json(1000));
    let mut doc = run_json(1000);
    doc["schema_version"] = json!(9);
    std::fs::write(future.join("run.json"), doc.to_string()).unwrap();
    let cases = [
        (
            empty.clone(),
            format!("{}: not found", empty.join("run.json").display()),
        ),
        (
            broken.clone(),
            format!(
                "{}: not a volley run.json",
                broken.join("run.json").display()
            ),
        ),
        (future.clone(), "schema_version 9".to_string()),
        (
            dir.path().join("nowhere"),
            "no such file or folder".to_string(),
        ),
    ];
    for (folder, says) in cases {
        volley()
            .arg("compare")
            .arg(&good)
            .arg(&folder)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(says));
    }
}

#[test]
fn runs_of_different_scenarios_or_stopped_early_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let base = folder(dir.path(), "base", &run_json(1000));
    let mut doc = run_json(1000);
    doc["status"] = json!("interrupted");
    let interrupted = folder(dir.path(), "interrupted", &doc);
    let mut doc = run_json(1000);
    doc["scenario"]["name"] = json!("chat v2");
    doc["status"] = json!("aborted");
    let new = folder(dir.path(), "new", &doc);
    let assert = compare(&[base, interrupted.clone()], std::slice::from_ref(&new))
        .assert()
        .code(0);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains(
            "warning: the runs are of different scenarios: base \"chat\", new \"chat v2\""
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "warning: {} is of an interrupted run: its figures cover only the part that ran",
            interrupted.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("warning: {} is of an aborted run", new.display())),
        "{stderr}"
    );
    assert!(stdout_of(&assert).starts_with("volley compare: \"chat\" vs \"chat v2\""));
}

#[test]
fn base_and_new_are_two_folders_or_both_flags() {
    let dir = tempfile::tempdir().unwrap();
    let a = folder(dir.path(), "a", &run_json(1000));
    for args in [
        vec!["compare"],
        vec!["compare", "a"],
        vec!["compare", "a", "b", "c"],
        vec!["compare", "--base", "a"],
        vec!["compare", "a", "b", "--new", "c"],
    ] {
        volley().current_dir(dir.path()).args(args).assert().code(2);
    }
    volley()
        .arg("compare")
        .arg("--new")
        .arg(&a)
        .arg("--base")
        .arg(&a)
        .assert()
        .code(0);
}

#[test]
fn two_real_runs_of_the_builtin_server_compare_clean_with_generous_allowances() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = common::write_scenario(
        dir.path(),
        &common::echo_scenario("builtin", 5, "20/s", "1s")
            .replace("drain = \"2s\"", "drain = \"500ms\""),
    );
    let runs: Vec<PathBuf> = ["first", "second"]
        .iter()
        .map(|name| {
            let out = dir.path().join(name);
            volley()
                .arg("run")
                .arg(&scenario)
                .arg("--quiet")
                .arg("--out")
                .arg(&out)
                .assert()
                .success();
            out
        })
        .collect();
    let generous = "p50=1s,p90=1s,p95=1s,p99=1s,p99.9=1s,mean=1s,rate=0.5,echo.p99.99=1s";
    let assert = volley()
        .arg("compare")
        .args(&runs)
        .args(["--max-regression", generous])
        .assert()
        .code(0);
    let out = stdout_of(&assert);
    assert!(out.starts_with("volley compare: \"test echo\""), "{out}");
    // p99.99 is in no run.json: it comes from the folders' latency.hlog.
    for figure in [
        "connect.p50",
        "echo.p99",
        "errors.rate",
        "echo.lost.rate",
        "echo.p99.99",
    ] {
        assert!(line(&out, figure).ends_with("ok"), "{out}");
    }
    assert!(out.contains("PASSED: "), "{out}");
    assert!(
        out.contains("Single runs: volley cannot tell noise"),
        "{out}"
    );

    // Without the log (a run.json alone) that percentile is skipped; a log that does not parse
    // is said too.
    let bare = dir.path().join("bare");
    std::fs::create_dir(&bare).unwrap();
    std::fs::copy(runs[1].join("run.json"), bare.join("run.json")).unwrap();
    let broken = dir.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::copy(runs[1].join("run.json"), broken.join("run.json")).unwrap();
    std::fs::write(
        broken.join("latency.hlog"),
        "#[StartTime: soon]\nnot,an,interval\n",
    )
    .unwrap();
    for folder in [&bare, &broken] {
        let assert = volley()
            .arg("compare")
            .arg(&runs[0])
            .arg(folder)
            .args(["--max-regression", generous])
            .assert()
            .code(0);
        let out = stdout_of(&assert);
        assert!(line(&out, "echo.p99").ends_with("ok"), "{out}");
        assert!(line(&out, "echo.p99.99").contains("skipped"), "{out}");
        let err = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
        assert_eq!(
            err.contains("latency.hlog"),
            folder == &broken,
            "a warning only for the broken log: {err}"
        );
    }
}
