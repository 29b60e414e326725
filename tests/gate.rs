//! The CI gate on `volley run`: thresholds from the scenario and the command line judged at the end
//! of real runs against the builtin server, exit code 3 on a failure, verdicts in run.json, JUnit,
//! Markdown, JSON and $GITHUB_STEP_SUMMARY; `abort = true` stopping a hopeless run; bad thresholds
//! as usage errors with their position.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

use common::*;

fn volley() -> Command {
    let mut cmd = Command::cargo_bin("volley").unwrap();
    cmd.env_remove("GITHUB_STEP_SUMMARY");
    cmd
}

fn scenario_with(dir: &Path, duration: &str, thresholds: &str) -> std::path::PathBuf {
    let text = format!(
        "{}\n[thresholds]\n{thresholds}\n",
        echo_scenario("builtin", 20, "20/s", duration)
    );
    write_scenario(dir, &text)
}

fn run_json(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap()
}

fn check_schema(doc: &Value) {
    let schema: Value = serde_json::from_str(include_str!("../schema/run.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let problems: Vec<String> = validator.iter_errors(doc).map(|e| e.to_string()).collect();
    assert!(
        problems.is_empty(),
        "run.json against its schema: {problems:?}"
    );
}

#[test]
fn thresholds_are_judged_with_exit_3_and_verdicts_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = scenario_with(
        dir.path(),
        "2s",
        "\"echo.p99\" = \"< 5s\"\n\"echo.lost\" = \"== 0\"\n\"errors.rate\" = \"< 1%\"",
    );
    let out = dir.path().join("out");
    let step_summary = dir.path().join("step-summary.md");
    std::fs::write(&step_summary, "earlier step\n").unwrap();
    let junit = dir.path().join("gate.xml");
    let json = dir.path().join("gate.json");
    let assert = volley()
        .args(["run", "-q", "--gate"])
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        // Passes: at least one echo came back. Fails: no echo takes under 1 µs.
        .args([
            "--threshold",
            "echo.count >= 1",
            "--threshold",
            "echo.p50 < 1us",
        ])
        .arg("--junit")
        .arg(&junit)
        .arg("--json")
        .arg(&json)
        .env("GITHUB_STEP_SUMMARY", &step_summary)
        .timeout(Duration::from_secs(60))
        .assert()
        .code(3);
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(stdout.contains("thresholds: 1 of 5 FAILED"), "{stdout}");
    assert!(stdout.contains("FAIL  echo.p50 < 1us"), "{stdout}");

    let doc = run_json(&out);
    check_schema(&doc);
    let verdicts = doc["thresholds"].as_array().unwrap();
    let expressions: Vec<&str> = verdicts
        .iter()
        .map(|v| v["expression"].as_str().unwrap())
        .collect();
    assert_eq!(
        expressions,
        [
            "echo.p99 < 5s",
            "echo.lost == 0",
            "errors.rate < 1%",
            "echo.count >= 1",
            "echo.p50 < 1us"
        ]
    );
    let passed: Vec<bool> = verdicts
        .iter()
        .map(|v| v["passed"].as_bool().unwrap())
        .collect();
    assert_eq!(passed, [true, true, true, true, false]);
    // The figures are the run's own: the verdict's actual is the summary's.
    let p50 = doc["summary"]["latency"]["echo"]["p50_us"]
        .as_f64()
        .unwrap();
    assert_eq!(verdicts[4]["actual"].as_f64(), Some(p50));
    let count = doc["summary"]["latency"]["echo"]["count"].as_f64().unwrap();
    assert_eq!(verdicts[3]["actual"].as_f64(), Some(count));
    assert_eq!(verdicts[3]["source"], "command line");
    assert_eq!(verdicts[0]["source"], "scenario");

    // --junit names the file; --gate puts summary.md in the results folder.
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("tests=\"5\" failures=\"1\""), "{xml}");
    assert_eq!(xml.matches("<failure ").count(), 1);
    assert!(!out.join("junit.xml").exists(), "--junit said where");
    let markdown = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(markdown.contains("FAILED: 1 of 5 checks"), "{markdown}");
    assert!(markdown.contains("| ❌ | `echo.p50 < 1us` |"), "{markdown}");
    let step = std::fs::read_to_string(&step_summary).unwrap();
    assert!(step.starts_with("earlier step\n"), "appended, not replaced");
    assert!(step.contains("volley thresholds: test echo"), "{step}");
    let gate: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(gate["passed"], false);
    assert_eq!(gate["failures"], 1);
    assert_eq!(gate["detail"].as_array().unwrap().len(), 5);
}

#[test]
fn a_passing_gate_exits_0_and_writes_its_summaries_into_the_results_folder() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = scenario_with(dir.path(), "1s", "\"echo.lost\" = \"== 0\"");
    let out = dir.path().join("out");
    volley()
        .args(["run", "-q", "--gate"])
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .timeout(Duration::from_secs(60))
        .assert()
        .success();
    let xml = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(xml.contains("tests=\"1\" failures=\"0\""), "{xml}");
    assert!(
        std::fs::read_to_string(out.join("summary.md"))
            .unwrap()
            .contains("PASSED: 1 check")
    );
}

#[test]
fn an_abort_threshold_stops_a_hopeless_run_early() {
    let dir = tempfile::tempdir().unwrap();
    // No echo takes under 1 µs, so `max` (which only grows) is past its bound at the first check
    // after abort_after; the run is planned for 30 s.
    let scenario = scenario_with(
        dir.path(),
        "30s",
        "\"echo.max\" = { limit = \"< 1us\", abort = true, abort_after = \"1s\" }\n\
         \"echo.p99\" = \"< 10s\"",
    );
    let out = dir.path().join("out");
    let started = Instant::now();
    let assert = volley()
        .args(["run", "-q"])
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .timeout(Duration::from_secs(60))
        .assert()
        .code(3);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(15),
        "aborted early: took {took:?}"
    );
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(stdout.contains("aborted by a threshold"), "{stdout}");
    let doc = run_json(&out);
    check_schema(&doc);
    assert_eq!(doc["status"], "aborted");
    let at = doc["thresholds"][0]["aborted_run_at_s"].as_f64().unwrap();
    assert!((1.0..5.0).contains(&at), "aborted at {at}");
    assert_eq!(doc["thresholds"][0]["passed"], false);
    // The other threshold is still judged on what the run saw.
    assert_eq!(doc["thresholds"][1]["passed"], true);
    assert!(doc["elapsed_s"].as_f64().unwrap() < 15.0);
}

#[test]
fn a_run_without_thresholds_is_not_judged() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), &echo_scenario("builtin", 5, "10/s", "1s"));
    let out = dir.path().join("out");
    let assert = volley()
        .args(["run", "-q"])
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .timeout(Duration::from_secs(60))
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(!stdout.contains("thresholds:"), "{stdout}");
    let doc = run_json(&out);
    check_schema(&doc);
    assert_eq!(doc["thresholds"], serde_json::json!([]));
}

#[test]
fn bad_thresholds_are_usage_errors_with_their_position() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = scenario_with(dir.path(), "1s", "\"echo.p99\" = \"< 5 parsecs\"");
    let line = std::fs::read_to_string(&scenario).unwrap().lines().count();
    let assert = volley().arg("validate").arg(&scenario).assert().code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(
        stderr.contains(&format!("scenario.toml:{line}:17:")),
        "names file, line and column: {stderr}"
    );

    let good = write_scenario(dir.path(), &echo_scenario("builtin", 1, "1/s", "1s"));
    let usage = |args: &[&str], expect: &str| {
        let assert = volley()
            .arg("run")
            .arg(&good)
            .args(args)
            .arg("--out")
            .arg(dir.path().join("never"))
            .assert()
            .code(2);
        let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    };
    usage(&["--threshold", "echo.p99 < 5 parsecs"], "at column 12");
    usage(&["--threshold", "echo.p99 50ms"], "OP VALUE");
    usage(
        &["--threshold", "fanout.p99 < 5ms"],
        "no metric or counter named `fanout`",
    );
    usage(&["--threshold", "errors.p99 < 5ms"], "is a counter");
    usage(&["--gate"], "--gate needs thresholds");
    assert!(!dir.path().join("never").exists(), "nothing ran");
}

#[test]
fn a_socketio_runs_verdicts_and_run_json_fit_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(
        dir.path(),
        r#"
name = "sio gate"
target = "builtin"
protocol = "socketio"
duration = "1s"
ramp = "200ms"
drain = "1s"

[[group]]
name = "g"
clients = 5
emit = [{ event = "echo", data = { n = "{{seq}}" }, rate = "10/s" }]

[[expect]]
event = "echo"

[thresholds]
"echo.lost" = "== 0"
"#,
    );
    let out = dir.path().join("out");
    volley()
        .args(["run", "-q"])
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .timeout(Duration::from_secs(60))
        .assert()
        .success();
    let doc = run_json(&out);
    assert!(
        doc["settings"]["target_url"]
            .as_str()
            .unwrap()
            .starts_with("http://"),
        "{}",
        doc["settings"]["target_url"]
    );
    check_schema(&doc);
    assert_eq!(doc["thresholds"][0]["passed"], true);
}
