//! The shape of a results folder, pinned: for a raw WebSocket run (scenarios/quickstart.toml) and a
//! Socket.IO run (scenarios/socketio-ack.toml), the files written, the columns of every CSV, the
//! metrics of summary.csv, the tags of latency.hlog, the keys of run.json and of frames.jsonl. The
//! values change from run to run; these must not change unless a change means them to (and then
//! the snapshot is updated with it, in the same commit).

use std::collections::BTreeSet;
use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

/// Runs `scenario` briefly with a frame log and a threshold, and describes its results folder.
fn shape_of(scenario: &str, threshold: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    Command::cargo_bin("volley")
        .unwrap()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", scenario, "--clients", "6", "--duration", "1s"])
        .args([
            "--ramp",
            "100ms",
            "--quiet",
            "--log-frames",
            "--log-clients",
            "0..1",
        ])
        .args(["--threshold", threshold, "--out"])
        .arg(&out)
        .assert()
        .success();
    describe(&out)
}

fn describe(dir: &Path) -> String {
    let mut lines = Vec::new();
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    lines.push(format!("files: {}", files.join(" ")));
    for csv in ["summary.csv", "timeseries.csv", "gaps.csv", "errors.csv"] {
        let mut reader = csv::Reader::from_path(dir.join(csv)).unwrap();
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        lines.push(format!("{csv} columns: {}", header.join(",")));
        if csv == "summary.csv" {
            // Closes are by the codes a run happened to see.
            let metrics: Vec<String> = reader
                .records()
                .map(|r| {
                    let r = r.unwrap();
                    format!("{}:{}", &r[0], &r[1])
                })
                .filter(|m| !m.starts_with("closes."))
                .collect();
            lines.push(format!("summary.csv rows: {}", metrics.join(" ")));
        }
    }
    let hlog = std::fs::read_to_string(dir.join("latency.hlog")).unwrap();
    let tags: BTreeSet<&str> = hlog
        .lines()
        .filter_map(|l| l.strip_prefix("Tag=")?.split(',').next())
        .collect();
    let headers: Vec<&str> = hlog
        .lines()
        .filter(|l| l.starts_with('#') || l.starts_with('"'))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    lines.push(format!("latency.hlog header: {}", headers.join(" | ")));
    lines.push(format!(
        "latency.hlog tags: {}",
        tags.into_iter().collect::<Vec<_>>().join(" ")
    ));
    let run: Value = serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
    let mut keys = Vec::new();
    key_paths(&run, String::new(), &mut keys);
    lines.push(format!("run.json keys:\n  {}", keys.join("\n  ")));
    let frames = std::fs::read_to_string(dir.join("frames.jsonl")).unwrap();
    let mut frame_keys = BTreeSet::new();
    for line in frames.lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        let mut keys = Vec::new();
        key_paths(&record, String::new(), &mut keys);
        let kind = record["kind"].as_str().unwrap_or("?").to_string();
        frame_keys.insert(format!("{kind}: {}", keys.join(" ")));
    }
    lines.push(format!(
        "frames.jsonl records:\n  {}",
        frame_keys.into_iter().collect::<Vec<_>>().join("\n  ")
    ));
    lines.join("\n")
}

/// Every key path of a JSON document, `/a/b`; arrays as `[]`, with the keys of their objects.
/// The keys of maps keyed by data (closes by code, the resolved scenario) are not listed.
fn key_paths(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let path = format!("{at}/{key}");
                if !out.contains(&path) {
                    out.push(path.clone());
                }
                if path.ends_with("/closes_by_code") || path == "/scenario/resolved" {
                    continue;
                }
                key_paths(child, path, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                key_paths(item, format!("{at}[]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn a_raw_websocket_run_writes_the_same_files_columns_and_keys() {
    insta::assert_snapshot!(shape_of("scenarios/quickstart.toml", "echo.p99 < 10s"));
}

#[test]
fn a_socketio_run_writes_the_same_files_columns_and_keys() {
    insta::assert_snapshot!(shape_of("scenarios/socketio-ack.toml", "ack.p99 < 10s"));
}
