//! A run split into shards: shards of one run accept each other's events, `volley merge` makes one
//! folder of theirs that report, compare and the schema accept, and `--processes` does it all in
//! one command.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::write_scenario;
use serde_json::Value;
use volley::runner::shard::Shard;
use volley::runner::{self, RunOptions};
use volley::scenario::{self, Overrides};
use volley::serve::{self, ServeConfig};

/// Two talkers chat in a room of listeners over raw WebSocket: with two shards, each shard has one
/// talker, and every listener hears the other shard's talker too.
fn fanout_scenario(target: &str, listeners: u64) -> String {
    format!(
        r#"
name = "shards"
target = "{target}"
protocol = "ws"
path = "/broadcast?room=r"
duration = "1s"
ramp = "200ms"
drain = "1s"
connect_timeout = "5s"

[[group]]
name = "listeners"
clients = {listeners}

[[group]]
name = "talkers"
clients = 2
on_connect = [{{ wait = "300ms" }}]
emit = [{{ event = "chat", data = {{ n = "{{{{seq}}}}" }}, rate = "10/s" }}]

[[expect]]
name = "fanout"
event = "chat"
from = "talkers"
to = ["listeners", "talkers"]

[thresholds]
"fanout.lost" = "== 0"
"#
    )
}

fn run_json(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap()
}

fn assert_schema(doc: &Value) {
    let schema: Value = serde_json::from_str(include_str!("../schema/run.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(doc).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "run.json does not match the schema: {errors:?}"
    );
}

fn volley() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("volley").unwrap()
}

fn counter(doc: &Value, pointer: &str) -> u64 {
    doc.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no {pointer}"))
}

#[tokio::test]
async fn shards_of_one_run_hear_each_other_and_merge_into_one_folder() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = format!("ws://{}", server.addr());
    let path = write_scenario(dir.path(), &fanout_scenario(&target, 20));
    let start_at = SystemTime::now() + Duration::from_millis(500);
    let shard = |index: u32| {
        let plan = scenario::load(&path, &Overrides::default()).unwrap();
        let options = RunOptions {
            scenario_file: path.clone(),
            out: Some(dir.path().join(format!("shard{index}"))),
            quiet: true,
            threads: Some(1),
            shard: Some(Shard { index, count: 2 }),
            run_id: Some(0x5ead_0001),
            start_at: Some(start_at),
            ..Default::default()
        };
        runner::run(plan, options, std::future::pending())
    };
    let (a, b) = tokio::join!(shard(0), shard(1));
    let (a, b) = (a.unwrap(), b.unwrap());
    server.stop();
    let sent = a.run.totals.expects[0].sent + b.run.totals.expects[0].sent;
    assert!(sent > 0);
    for outcome in [&a, &b] {
        let t = &outcome.run.totals;
        assert_eq!(outcome.run.clients_planned, 11);
        assert_eq!(t.connects, 11);
        assert_eq!(t.error_total(), 0, "no stamp of the other shard is refused");
        // Each shard's 11 clients hear both talkers, the other shard's too (a listener that
        // connected late was not due the first events: not lost, not received).
        let own = t.expects[0].sent;
        let received = t.expects[0].received;
        assert!(
            received > 11 * own && received <= 11 * sent,
            "{:?}, {sent} sent by both",
            t.expects[0]
        );
        assert_eq!(t.expects[0].lost, 0);
    }

    let merged = dir.path().join("merged");
    let dirs: Vec<PathBuf> = vec![a.dir.clone(), b.dir.clone()];
    let outcome = volley::merge::merge(&dirs, &merged, &Default::default()).unwrap();
    let doc = run_json(&merged);
    assert_schema(&doc);
    assert_schema(&run_json(&a.dir));
    assert_eq!(doc["settings"]["shard"], Value::Null);
    assert_eq!(run_json(&a.dir)["settings"]["shard"]["count"], 2);
    assert_eq!(doc["run_id"], "5ead0001");
    for pointer in [
        "/summary/counters/sent",
        "/summary/counters/received",
        "/summary/counters/connects",
        "/summary/expects/fanout/received",
        "/summary/latency/fanout/count",
        "/summary/latency/connect/count",
        "/settings/clients_planned",
    ] {
        assert_eq!(
            counter(&doc, pointer),
            counter(&run_json(&a.dir), pointer) + counter(&run_json(&b.dir), pointer),
            "{pointer}"
        );
    }
    assert!(outcome.run.thresholds[0].passed);
    assert_eq!(doc["thresholds"][0]["expression"], "fanout.lost == 0");

    volley()
        .args(["report".as_ref(), merged.as_os_str()])
        .assert()
        .success();
    // A shard against the whole: read as any two runs (a difference may be a regression, 3).
    let code = volley()
        .args(["compare".as_ref(), a.dir.as_os_str(), merged.as_os_str()])
        .output()
        .unwrap()
        .status
        .code();
    assert!(matches!(code, Some(0 | 3)), "compare exited with {code:?}");
    volley()
        .args(["compare".as_ref(), merged.as_os_str(), merged.as_os_str()])
        .assert()
        .success();
}

#[test]
fn a_start_time_long_past_is_refused_with_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_scenario(
        dir.path(),
        &common::echo_scenario("builtin", 1, "1/s", "1s"),
    );
    volley()
        .args(["run".as_ref(), path.as_os_str()])
        .args(["--start-at", "1700000000", "--quiet", "--out"])
        .arg(dir.path().join("out"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("in the past"));
}

#[test]
fn processes_2_run_as_two_shards_merged_into_one_correct_folder() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_scenario(
        dir.path(),
        &common::echo_scenario("builtin", 2000, "1/s", "2s"),
    );
    let out = dir.path().join("out");
    volley()
        .args(["run".as_ref(), path.as_os_str()])
        .args([
            "--processes",
            "2",
            "--ramp",
            "1s",
            "--log-clients",
            "0..3,1000..1003",
        ])
        .arg("--out")
        .arg(&out)
        .timeout(Duration::from_secs(60))
        .assert()
        .success()
        .stdout(predicates::str::contains("2000 planned, 2000 started"));
    let doc = run_json(&out);
    assert_schema(&doc);
    let shards = [
        run_json(&out.join("shards/0")),
        run_json(&out.join("shards/1")),
    ];
    assert_eq!(shards[0]["run_id"], doc["run_id"]);
    assert_eq!(shards[1]["settings"]["shard"]["index"], 1);
    assert_eq!(counter(&doc, "/settings/clients_planned"), 2000);
    assert_eq!(counter(&doc, "/summary/counters/connects"), 2000);
    assert_eq!(counter(&doc, "/summary/counters/errors"), 0);
    for pointer in [
        "/summary/counters/sent",
        "/summary/counters/received",
        "/summary/counters/connects",
        "/summary/expects/echo/received",
        "/summary/latency/echo/count",
        "/summary/latency/connect/count",
    ] {
        assert_eq!(
            counter(&doc, pointer),
            counter(&shards[0], pointer) + counter(&shards[1], pointer),
            "{pointer}"
        );
    }
    // latency.hlog: the merged totals are the shards' totals added, sample for sample.
    let log = |dir: &Path| volley::results::load(dir).unwrap().latency.unwrap();
    let merged = log(&out);
    for metric in ["connect", "echo"] {
        let mut sum = volley::metrics::new_histogram();
        for k in ["0", "1"] {
            sum.add(
                &log(&out.join("shards").join(k))
                    .metric(metric)
                    .unwrap()
                    .total,
            )
            .unwrap();
        }
        assert_eq!(merged.metric(metric).unwrap().total, sum, "{metric}");
    }
    // frames.jsonl: every shard's records, each shard's in its own order, in one log.
    let records = |dir: &Path| -> Vec<Value> {
        std::fs::read_to_string(dir.join("frames.jsonl"))
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    };
    let (all, parts) = (
        records(&out),
        [
            records(&out.join("shards/0")),
            records(&out.join("shards/1")),
        ],
    );
    let conns = |records: &[Value]| -> std::collections::BTreeSet<u64> {
        records
            .iter()
            .map(|r| r["conn"].as_u64().unwrap())
            .collect()
    };
    assert!(
        !parts[0].is_empty() && !parts[1].is_empty(),
        "both shards log frames"
    );
    assert_eq!(all.len(), parts[0].len() + parts[1].len());
    let mut both = conns(&parts[0]);
    both.extend(conns(&parts[1]));
    assert_eq!(conns(&all), both);
    assert_eq!(both.len(), 8, "clients 0-3 and 1000-1003: {both:?}");
    for part in &parts {
        let shard_conns = conns(part);
        let kept: Vec<&Value> = all
            .iter()
            .filter(|r| shard_conns.contains(&r["conn"].as_u64().unwrap()))
            .collect();
        assert!(
            kept.iter().copied().eq(part.iter()),
            "a shard's order is kept"
        );
    }
    assert_eq!(
        doc["summary"]["frame_log"]["logged"].as_u64().unwrap(),
        all.len() as u64
    );
}

/// A `--processes 2` run of 60 s in the background, its output piped: the folder it writes and
/// the parent process.
fn long_processes_run(dir: &Path) -> (PathBuf, std::process::Child) {
    let path = write_scenario(dir, &common::echo_scenario("builtin", 20, "5/s", "60s"));
    let out = dir.join("out");
    let parent = std::process::Command::new(assert_cmd::cargo::cargo_bin("volley"))
        .args(["run".as_ref(), path.as_os_str()])
        .args(["--processes", "2", "--quiet", "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    (out, parent)
}

/// Waits until `done`, failing with `what` after `limit`.
fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Lines of shard `k`'s timeseries.csv so far.
fn shard_lines(out: &Path, k: &str) -> usize {
    std::fs::read_to_string(out.join("shards").join(k).join("timeseries.csv"))
        .map_or(0, |t| t.lines().count())
}

#[test]
fn ctrl_c_reaches_every_shard_of_processes_and_the_merged_folder_is_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let (out, mut parent) = long_processes_run(dir.path());
    wait_until("no time series", Duration::from_secs(30), || {
        shard_lines(&out, "0") >= 3 && shard_lines(&out, "1") >= 3
    });
    // SAFETY: sending a signal to the child we started.
    unsafe { libc::kill(parent.id() as i32, libc::SIGINT) };
    wait_until("still running", Duration::from_secs(20), || {
        parent.try_wait().unwrap().is_some()
    });
    let status = parent.wait().unwrap();
    assert!(status.success(), "{status}");
    for folder in [out.clone(), out.join("shards/0"), out.join("shards/1")] {
        assert_eq!(
            run_json(&folder)["status"],
            "interrupted",
            "{}",
            folder.display()
        );
    }
}

/// The processes of `parent`'s children.
fn children(parent: u32) -> Vec<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{parent}/task")).unwrap();
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .map(|p| p.parse().unwrap())
                .collect::<Vec<u32>>()
        })
        .collect()
}

fn summary_count(dir: &Path, metric: &str) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    text.lines()
        .find(|l| l.starts_with(&format!("{metric},")))
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
}

fn sum_column(dir: &Path, column: &str) -> u64 {
    let table = std::fs::read_to_string(dir.join("timeseries.csv")).unwrap();
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = header.iter().position(|h| *h == column).unwrap();
    lines
        .filter_map(|l| l.split(',').nth(at)?.parse::<u64>().ok())
        .sum()
}

/// A shard killed with SIGKILL leaves its per-second files and its checkpoint: the command still
/// merges them with the other shard's results, marks the run failed, names the shard and why, and
/// exits 1. `volley merge` does the same with the killed shard's folder, also when it lacks the
/// checkpoint and its last line was cut.
#[test]
fn a_killed_shard_leaves_results_and_the_run_is_failed_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (out, mut parent) = long_processes_run(dir.path());
    wait_until("no time series", Duration::from_secs(30), || {
        shard_lines(&out, "0") >= 4 && out.join("shards/0/checkpoint.json").exists()
    });
    let shard0 = children(parent.id())
        .into_iter()
        .find(|pid| {
            let line = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            line.split(|b| *b == 0).any(|arg| arg == b"0/2")
        })
        .expect("shard 0's process");
    // SAFETY: a signal to a process of this test's child.
    unsafe { libc::kill(shard0 as i32, libc::SIGKILL) };
    wait_until("still running", Duration::from_secs(30), || {
        parent.try_wait().unwrap().is_some()
    });
    let output = parent.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("shard 0/2 failed: killed by signal 9 (SIGKILL)"),
        "{stderr}"
    );
    assert!(
        stdout.contains("failed    shard 0/2: killed by signal 9"),
        "{stdout}"
    );

    let doc = run_json(&out);
    assert_schema(&doc);
    assert_eq!(doc["status"], "failed");
    let failed = &doc["failed_shards"];
    assert_eq!(failed.as_array().unwrap().len(), 1, "{failed}");
    assert_eq!(failed[0]["shard"], "0/2");
    let why = failed[0]["why"].as_str().unwrap();
    assert!(why.starts_with("killed by signal 9 (SIGKILL)"), "{why}");
    assert!(why.contains("checkpoint.json"), "{why}");
    assert!(!out.join("shards/0/run.json").exists());
    let checkpoint: Value =
        serde_json::from_slice(&std::fs::read(out.join("shards/0/checkpoint.json")).unwrap())
            .unwrap();
    assert_schema(&checkpoint);
    assert_eq!(checkpoint["status"], "running");
    let other = run_json(&out.join("shards/1"));
    assert_eq!(other["status"], "interrupted");
    assert!(
        !out.join("shards/1/checkpoint.json").exists(),
        "removed by run.json"
    );
    assert_eq!(counter(&checkpoint, "/settings/clients_started"), 10);
    assert_eq!(counter(&doc, "/settings/clients_started"), 20);
    for pointer in ["/summary/counters/sent", "/summary/expects/echo/received"] {
        assert!(counter(&checkpoint, pointer) > 0, "{pointer}");
        assert_eq!(
            counter(&doc, pointer),
            counter(&checkpoint, pointer) + counter(&other, pointer),
            "{pointer}"
        );
    }
    assert_eq!(summary_count(&out, "shards.failed"), Some(1));
    // The killed shard's own folder reads as a run that did not finish.
    volley()
        .arg("report")
        .arg(out.join("shards/0"))
        .timeout(Duration::from_secs(30))
        .assert()
        .success();
    let page = std::fs::read_to_string(out.join("shards/0/report.html")).unwrap();
    assert!(page.contains("did not finish"), "the report's title");
    assert_eq!(
        summary_count(&out, "sent"),
        Some(counter(&doc, "/summary/counters/sent"))
    );

    // `volley merge` of the killed shard's folder without its checkpoint, its last line cut.
    let bare = dir.path().join("bare");
    std::fs::create_dir(&bare).unwrap();
    for file in ["timeseries.csv", "latency.hlog", "errors.csv", "gaps.csv"] {
        std::fs::copy(out.join("shards/0").join(file), bare.join(file)).unwrap();
    }
    let sent0 = sum_column(&bare, "sent");
    let mut timeseries = std::fs::OpenOptions::new()
        .append(true)
        .open(bare.join("timeseries.csv"))
        .unwrap();
    std::io::Write::write_all(&mut timeseries, b"99,17000").unwrap();
    let merged = dir.path().join("merged");
    let assert = volley()
        .arg("merge")
        .arg(&bare)
        .arg(out.join("shards/1"))
        .arg("-o")
        .arg(&merged)
        .timeout(Duration::from_secs(30))
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(
        stderr.contains("neither run.json nor checkpoint.json"),
        "{stderr}"
    );
    let doc = run_json(&merged);
    assert_schema(&doc);
    assert_eq!(doc["status"], "failed");
    assert_eq!(
        doc["failed_shards"][0]["folder"],
        bare.display().to_string()
    );
    assert!(sent0 > 0);
    assert_eq!(
        counter(&doc, "/summary/counters/sent"),
        sent0 + counter(&other, "/summary/counters/sent")
    );
    assert_eq!(
        counter(&doc, "/summary/latency/echo/count"),
        volley::results::load(&bare)
            .unwrap()
            .latency
            .unwrap()
            .metric("echo")
            .unwrap()
            .total
            .len()
            + counter(&other, "/summary/latency/echo/count")
    );
}
