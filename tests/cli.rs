//! The binary as a user meets it: exit codes, messages, and a graceful stop on SIGINT.

use crate::common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin;
use common::*;
use predicates::prelude::*;

fn volley() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("volley").unwrap()
}

#[test]
fn help_lists_the_exit_codes() {
    volley().arg("--help").assert().success().stdout(
        predicate::str::contains("Exit codes:").and(predicate::str::contains("2  bad usage")),
    );
}

#[test]
fn validate_accepts_the_shipped_scenarios() {
    for file in [
        "scenarios/quickstart.toml",
        "scenarios/ws-echo.toml",
        "scenarios/socketio-echo.toml",
        "scenarios/socketio-ack.toml",
        "scenarios/chat-fanout.toml",
        "scenarios/ticker-gaps.toml",
        "scenarios/reconnect-storm.toml",
        "scenarios/ci-gate.toml",
    ] {
        volley()
            .args(["validate", file])
            .assert()
            .success()
            .stdout(predicate::str::contains("ok"));
    }
}

#[test]
fn a_bad_scenario_exits_2_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let text = echo_scenario("builtin", 1, "1/s", "1s").replace("ramp = ", "rmap = ");
    let path = write_scenario(dir.path(), &text);
    for command in ["validate", "run"] {
        volley()
            .args([command, path.to_str().unwrap()])
            .assert()
            .code(2)
            .stderr(
                predicate::str::contains("scenario.toml:5:1").and(predicate::str::contains("rmap")),
            );
    }
}

#[test]
fn a_bad_override_exits_2_and_shows_the_format() {
    volley()
        .args(["run", "scenarios/quickstart.toml", "--duration", "ten"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("like 250ms"));
}

#[test]
fn an_unreachable_target_exits_1_with_a_clear_message() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    volley()
        .args(["run", "scenarios/quickstart.toml", "--quiet", "--target"])
        .arg(format!("ws://127.0.0.1:{port}/echo"))
        .arg("--out")
        .arg(dir.path().join("out"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "cannot reach ws://127.0.0.1:{port}/echo"
        )));
}

#[test]
fn sigint_stops_the_run_gracefully_and_every_file_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut child = Command::new(cargo_bin("volley"))
        .args([
            "run",
            "scenarios/quickstart.toml",
            "--duration",
            "60s",
            "--clients",
            "20",
            // An interrupted run is judged on what it saw.
            "--threshold",
            "echo.lost == 0",
        ])
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let timeseries = out.join("timeseries.csv");
    wait_for(
        "two seconds of time series",
        Duration::from_secs(30),
        || std::fs::read_to_string(&timeseries).is_ok_and(|t| t.lines().count() >= 3),
    );
    // SAFETY: sending a signal to the child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let started = Instant::now();
    wait_for("the child to exit", Duration::from_secs(20), || {
        child.try_wait().unwrap().is_some()
    });
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the stop drains within seconds"
    );

    for file in [
        "summary.csv",
        "timeseries.csv",
        "errors.csv",
        "connect.hgrm",
        "echo.hgrm",
        "run.json",
    ] {
        assert!(out.join(file).exists(), "{file} missing");
    }
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["status"], "interrupted");
    assert!(run["elapsed_s"].as_f64().unwrap() < 30.0);
    assert_eq!(run["thresholds"][0]["expression"], "echo.lost == 0");
    assert_eq!(run["thresholds"][0]["passed"], true);
    // Echoes in flight at the stop were drained, not lost.
    assert_eq!(summary_count(&out, "sent"), summary_count(&out, "received"));
    assert_eq!(summary_count(&out, "echo.lost"), 0);
    assert_eq!(summary_count(&out, "closes.1000"), 20);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("interrupted"), "{stdout}");
}

/// A scenario of `groups` groups of one client, the first emitting `events` events, each expected
/// back: what a generated scenario of a big fleet may look like.
fn many(groups: usize, events: usize) -> String {
    let mut text = String::from("name = \"many\"\ntarget = \"builtin\"\nduration = \"1s\"\n\n");
    for i in 0..groups {
        text.push_str(&format!("[[group]]\nname = \"g{i}\"\nclients = 1\n"));
        if i == 0 && events > 0 {
            let emits: Vec<String> = (0..events)
                .map(|e| format!("{{ event = \"e{e}\", rate = \"1/s\" }}"))
                .collect();
            text.push_str(&format!("emit = [{}]\n", emits.join(", ")));
        }
        text.push('\n');
    }
    for e in 0..events {
        text.push_str(&format!("[[expect]]\nevent = \"e{e}\"\n\n"));
    }
    text
}

#[test]
fn validation_stays_linear_in_groups_emits_and_expects() {
    // Linear, these take about a second each in a debug build (the real figures, in release,
    // are in BENCHMARKS.md); quadratic, 100,000 groups took 13 s in release.
    let dir = tempfile::tempdir().unwrap();
    for (groups, events, what) in [
        (100_000, 0, "100,000 groups"),
        (1, 20_000, "20,000 emits and expects"),
    ] {
        let file = write_scenario(dir.path(), &many(groups, events));
        let started = Instant::now();
        volley()
            .arg("validate")
            .arg(&file)
            .assert()
            .success()
            .stdout(predicate::str::contains(format!("{groups} group(s)")));
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(30),
            "{what}: validate took {took:?}"
        );
    }
}

#[test]
fn a_scenario_that_is_not_utf8_is_refused_at_its_first_bad_byte_and_reasons_are_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("latin1.toml");
    std::fs::write(
        &file,
        b"name = \"x\"\ntarget = \"builtin\"\n# caf\xe9 au lait\n",
    )
    .unwrap();
    let out = volley().arg("validate").arg(&file).assert().code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains(&format!("{}:3:6: not UTF-8: byte 0xe9", file.display())),
        "{stderr}"
    );
    let missing = dir.path().join("missing.toml");
    let out = volley().arg("validate").arg(&missing).assert().code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn a_servers_text_that_a_spreadsheet_would_run_is_neutralised_in_errors_csv() {
    // The builtin server refuses the namespace with the message the client's auth asks for: a
    // formula, as a hostile server could send in a CONNECT_ERROR.
    let dir = tempfile::tempdir().unwrap();
    let file = write_scenario(
        dir.path(),
        r#"
name = "formula"
target = "builtin"
protocol = "socketio"
duration = "1s"
ramp = "0s"
drain = "0s"

[socketio]
auth = { reject = "=HYPERLINK(\"http://127.0.0.1/x\",\"click\")" }

[[group]]
name = "g"
clients = 2
"#,
    );
    let out = dir.path().join("out");
    volley()
        .arg("run")
        .arg(&file)
        .arg("--quiet")
        .arg("--out")
        .arg(&out)
        .assert()
        .code(1);
    let (header, rows) = read_csv(&out.join("errors.csv"));
    let detail = header.iter().position(|h| h == "detail").unwrap();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!(row[detail], r#"'=HYPERLINK("http://127.0.0.1/x","click")"#);
    }
    // Read back, the cell is the server's text again.
    let events = volley::results::errors_csv::parse_errors(
        &out.join("errors.csv"),
        &std::fs::read(out.join("errors.csv")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        events[0].detail,
        r#"=HYPERLINK("http://127.0.0.1/x","click")"#
    );
}
