//! `volley run --log-frames`: the frames of the sampled clients, decoded as `volley inspect --jsonl`
//! writes them, against the builtin server in-process (raw WebSocket and Socket.IO over each
//! transport); records dropped when the writer falls behind, counted to the last one; an
//! interrupted run's log; and the flags as a user meets them.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::*;
use predicates::prelude::*;
use serde_json::Value;
use volley::results::RunStatus;
use volley::scenario::Overrides;
use volley::wire::frame_log::FrameLogOptions;

fn sample(clients: &str) -> Option<FrameLogOptions> {
    Some(FrameLogOptions {
        file: None,
        clients: clients.parse().unwrap(),
        bound: None,
    })
}

/// Every line of a frame log, parsed.
fn read_log(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

fn records<'a>(log: &'a [Value], conn: u64, kind: &str) -> Vec<&'a Value> {
    log.iter()
        .filter(|r| r["conn"] == conn && r["kind"] == kind)
        .collect()
}

fn conns(log: &[Value]) -> BTreeSet<u64> {
    log.iter().map(|r| r["conn"].as_u64().unwrap()).collect()
}

/// The fields every record has, as inspect writes them.
fn assert_record_shape(r: &Value) {
    assert!(r["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{r}");
    assert!(r["t"].as_f64().is_some_and(|t| t >= 0.0), "{r}");
    assert!(r["conn"].is_u64(), "{r}");
    let kind = r["kind"].as_str().unwrap();
    assert!(
        ["connect", "frame", "packet", "close"].contains(&kind),
        "{r}"
    );
    if kind == "frame" || kind == "packet" {
        assert!(matches!(r["dir"].as_str(), Some("c2s" | "s2c")), "{r}");
        assert!(r["len"].is_u64(), "{r}");
    }
    if kind == "frame" {
        assert!(r["opcode"].is_string(), "{r}");
        assert_eq!(r["fin"], true, "{r}");
        assert_eq!(r["masked"], r["dir"] == "c2s", "{r}");
    }
}

/// The last record of a connection is its close record, with the code it closed with.
fn assert_closed_with(log: &[Value], conn: u64, code: u64) {
    let last = log.iter().rfind(|r| r["conn"] == conn).unwrap();
    assert_eq!(last["kind"], "close", "{last}");
    assert_eq!(last["close_code"], code, "{last}");
}

#[tokio::test]
async fn raw_websocket_run_logs_only_the_sampled_clients_each_event_beside_its_echo() {
    let dir = tempfile::tempdir().unwrap();
    let text = echo_scenario("builtin", 5, "10/s", "1s");
    let outcome = run_with_frame_log(
        dir.path(),
        &text,
        Overrides::default(),
        sample("0..1"),
        std::future::pending(),
    )
    .await;
    let t = &outcome.run.totals;
    assert_eq!(t.sent, t.received);
    assert_eq!(t.closes.get(&1000), Some(&5));
    let log = read_log(&outcome.dir.join("frames.jsonl"));
    assert_eq!(conns(&log), BTreeSet::from([0, 1]));

    for conn in [0, 1] {
        for r in log.iter().filter(|r| r["conn"] == conn) {
            assert_record_shape(r);
        }
        let connect = records(&log, conn, "connect");
        assert_eq!(connect.len(), 1, "one connection, no reconnect");
        assert!(connect[0]["target"].as_str().unwrap().starts_with('/'));
        assert!(
            connect[0]["peer"]
                .as_str()
                .unwrap()
                .starts_with("127.0.0.1:")
        );

        let frames = records(&log, conn, "frame");
        let texts = |dir: &str| -> Vec<String> {
            let mut texts: Vec<String> = frames
                .iter()
                .filter(|r| r["dir"] == dir && r["opcode"] == "text")
                .map(|r| {
                    let text = r["text"].as_str().unwrap();
                    assert_eq!(r["len"], text.len() as u64, "{r}");
                    text.to_string()
                })
                .collect();
            texts.sort();
            texts
        };
        let sent = texts("c2s");
        assert!(sent.len() >= 5, "{conn} sent {}", sent.len());
        assert!(
            sent.iter().all(|s| s.contains(&format!("hi {conn}"))),
            "{sent:?}"
        );
        assert_eq!(
            sent,
            texts("s2c"),
            "every event came back with the same text"
        );

        // The close handshake: volley's close frame and the server's answer.
        let closes: Vec<(&str, u64)> = frames
            .iter()
            .filter(|r| r["opcode"] == "close")
            .map(|r| {
                (
                    r["dir"].as_str().unwrap(),
                    r["close_code"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(closes, [("c2s", 1000), ("s2c", 1000)]);
        assert_closed_with(&log, conn, 1000);
        let close = records(&log, conn, "close")[0];
        assert_eq!(close["frames_c2s"], sent.len() as u64 + 1);
        assert_eq!(close["frames_s2c"], sent.len() as u64 + 1);
    }

    let frame_log = outcome.run.frame_log.as_ref().unwrap();
    assert_eq!(frame_log.logged, log.len() as u64);
    assert_eq!(frame_log.dropped, 0);
    assert_eq!(frame_log.clients, "0..1");

    // run.json carries the counts and still matches its schema.
    let doc: Value =
        serde_json::from_slice(&std::fs::read(outcome.dir.join("run.json")).unwrap()).unwrap();
    let schema: Value = serde_json::from_str(include_str!("../schema/run.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(doc["summary"]["frame_log"]["logged"], log.len() as u64);
    assert_eq!(doc["summary"]["frame_log"]["dropped"], 0);
}

fn socketio_scenario(transport: &str) -> String {
    format!(
        r#"
name = "sio frames"
target = "builtin"
protocol = "socketio"
duration = "1s"
ramp = "100ms"
drain = "2s"
connect_timeout = "3s"

[socketio]
transport = "{transport}"

[[group]]
name = "g"
clients = 3
emit = [
  {{ event = "echo", data = {{ text = "hi {{{{client}}}}" }}, rate = "10/s" }},
  {{ event = "ack", args = ["a", 2], rate = "5/s", ack = true }},
]

[[expect]]
event = "echo"
"#
    )
}

/// Runs the Socket.IO scenario logging client 1, checks what every transport logs the same way,
/// and returns the log.
async fn socketio_log(transport: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let outcome = run_with_frame_log(
        dir.path(),
        &socketio_scenario(transport),
        Overrides::default(),
        sample("1"),
        std::future::pending(),
    )
    .await;
    let t = &outcome.run.totals;
    assert_eq!(t.error_total(), 0, "{transport}");
    assert_eq!(t.expects[0].lost, 0, "{transport}");
    let log = read_log(&outcome.dir.join("frames.jsonl"));
    assert_eq!(conns(&log), BTreeSet::from([1]), "{transport}");
    log.iter().for_each(assert_record_shape);
    assert_eq!(log[0]["kind"], "connect", "{transport}");
    assert_closed_with(&log, 1, 1000);

    let sio = |dir: &str, kind: &str, event: Option<&str>| -> Vec<&Value> {
        log.iter()
            .filter(|r| r["dir"] == dir && r["sio"]["type"] == kind)
            .filter(|r| event.is_none_or(|e| r["sio"]["event"] == e))
            .collect()
    };
    let opened: Vec<&Value> = log.iter().filter(|r| r["eio"] == "open").collect();
    assert_eq!(opened.len(), 1, "{transport}: the open packet");
    assert_eq!(opened[0]["dir"], "s2c");
    let connects = (sio("c2s", "CONNECT", None), sio("s2c", "CONNECT", None));
    assert_eq!((connects.0.len(), connects.1.len()), (1, 1), "{transport}");
    assert_eq!(connects.1[0]["sio"]["nsp"], "/");

    let echoes = (
        sio("c2s", "EVENT", Some("echo")),
        sio("s2c", "EVENT", Some("echo")),
    );
    assert!(
        echoes.0.len() >= 5,
        "{transport}: {} echoes",
        echoes.0.len()
    );
    assert_eq!(
        echoes.0.len(),
        echoes.1.len(),
        "{transport}: each echo back"
    );
    assert!(
        echoes.0[0]["sio"]["args"][0]["text"] == "hi 1",
        "{transport}: {}",
        echoes.0[0]
    );
    let asked = sio("c2s", "EVENT", Some("ack"));
    let acks = sio("s2c", "ACK", None);
    assert!(!asked.is_empty(), "{transport}");
    assert_eq!(asked.len(), acks.len(), "{transport}: each ack answered");
    assert!(asked.iter().all(|r| r["sio"]["id"].is_u64()));
    assert!(acks.iter().all(|r| r["ack_rtt_ms"].as_f64().is_some()));
    assert_eq!(
        sio("c2s", "DISCONNECT", None).len(),
        1,
        "{transport}: goodbye"
    );
    log
}

#[tokio::test]
async fn socketio_over_websocket_logs_engineio_and_socketio_packets_as_frames_both_ways() {
    let log = socketio_log("websocket").await;
    let packets: Vec<&Value> = log.iter().filter(|r| r["kind"] == "packet").collect();
    assert!(packets.is_empty(), "{packets:?}");
    let first_frame = log.iter().find(|r| r["kind"] == "frame").unwrap();
    assert_eq!(first_frame["eio"], "open");
}

#[tokio::test]
async fn socketio_over_polling_logs_one_packet_record_per_engineio_packet() {
    let log = socketio_log("polling").await;
    let frames: Vec<&Value> = log.iter().filter(|r| r["kind"] == "frame").collect();
    assert!(frames.is_empty(), "{frames:?}");
    // Polling ends with the Engine.IO close packet.
    let close = log.iter().rfind(|r| r["kind"] == "packet").unwrap();
    assert_eq!(
        (&close["dir"], &close["eio"]),
        (&"c2s".into(), &"close".into())
    );
}

#[tokio::test]
async fn socketio_polling_upgrade_logs_the_probe_and_goes_on_in_frames() {
    let log = socketio_log("polling-upgrade").await;
    let texts: Vec<(&str, &str)> = log
        .iter()
        .filter(|r| r["kind"] == "frame" && r["opcode"] == "text")
        .map(|r| (r["dir"].as_str().unwrap(), r["text"].as_str().unwrap()))
        .collect();
    assert_eq!(
        texts[..3],
        [("c2s", "2probe"), ("s2c", "3probe"), ("c2s", "5")],
        "{texts:?}"
    );
    let first_frame = log.iter().position(|r| r["kind"] == "frame").unwrap();
    assert!(log[..first_frame].iter().any(|r| r["kind"] == "packet"));
}

#[tokio::test]
async fn a_full_channel_drops_records_and_counts_every_one_it_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let text = echo_scenario("builtin", 10, "500/s", "1s");
    let tiny = FrameLogOptions {
        file: Some(dir.path().join("tiny.jsonl")),
        clients: "0..9".parse().unwrap(),
        // One record in flight: whatever is offered while the writer works is dropped.
        bound: Some(1),
    };
    let outcome = run_with_frame_log(
        dir.path(),
        &text,
        Overrides::default(),
        Some(tiny),
        std::future::pending(),
    )
    .await;
    let t = &outcome.run.totals;
    assert_eq!(t.error_total(), 0);
    assert_eq!(t.expects[0].lost, 0);
    assert_eq!(t.closes.get(&1000), Some(&10));
    let frame_log = outcome.run.frame_log.as_ref().unwrap();
    let lines = read_log(&dir.path().join("tiny.jsonl")).len() as u64;
    assert_eq!(frame_log.logged, lines);
    assert!(frame_log.dropped > 0, "{frame_log:?}");
    // Offered per client: its connect record, both close frames and its close record; and
    // every message each way.
    let offered = 10 * 4 + t.sent + t.received;
    assert_eq!(
        frame_log.logged + frame_log.dropped,
        offered,
        "{frame_log:?}"
    );
    let summary = volley::results::printout::render(&outcome.run, "out");
    assert!(
        summary.contains(&format!("{} dropped", frame_log.dropped)),
        "{summary}"
    );
}

#[tokio::test]
async fn each_reconnect_is_a_new_connect_record_under_the_same_client() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
name = "drops"
target = "builtin"
duration = "1500ms"
ramp = "100ms"
drain = "1s"

[reconnect]
backoff = "20ms..50ms"

[[group]]
name = "g"
clients = 2
disconnect_every = "400ms"
emit = [{ event = "echo", data = "x", rate = "20/s" }]
"#;
    let outcome = run_with_frame_log(
        dir.path(),
        text,
        Overrides::default(),
        sample("1"),
        std::future::pending(),
    )
    .await;
    assert!(outcome.run.totals.reconnects >= 4);
    let log = read_log(&outcome.dir.join("frames.jsonl"));
    let lifecycle: Vec<(&str, Option<u64>, &str)> = log
        .iter()
        .filter(|r| r["kind"] == "connect" || r["kind"] == "close")
        .map(|r| {
            let kind = r["kind"].as_str().unwrap();
            (
                kind,
                r["close_code"].as_u64(),
                r["detail"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let connects = lifecycle.iter().filter(|l| l.0 == "connect").count();
    assert!(connects >= 3, "{lifecycle:?}");
    // connect, close, connect, close, ...: the dropped ones say so, the last one is clean.
    for (i, pair) in lifecycle.chunks(2).enumerate() {
        assert_eq!(pair[0].0, "connect", "{lifecycle:?}");
        assert_eq!(pair[1].0, "close", "{lifecycle:?}");
        if i + 1 < connects {
            assert_eq!(pair[1].1, Some(1006), "{lifecycle:?}");
            assert!(pair[1].2.contains("disconnect_every"), "{lifecycle:?}");
        } else {
            assert_eq!(pair[1].1, Some(1000), "{lifecycle:?}");
        }
    }
}

#[tokio::test]
async fn an_interrupted_run_still_writes_the_frame_log_to_every_close() {
    let dir = tempfile::tempdir().unwrap();
    let text = echo_scenario("builtin", 3, "20/s", "30s");
    let outcome = run_with_frame_log(
        dir.path(),
        &text,
        Overrides::default(),
        sample("0..2"),
        tokio::time::sleep(Duration::from_millis(800)),
    )
    .await;
    assert_eq!(outcome.run.status, RunStatus::Interrupted);
    let log = read_log(&outcome.dir.join("frames.jsonl"));
    for conn in 0..3 {
        assert_closed_with(&log, conn, 1000);
    }
    assert_eq!(
        outcome.run.frame_log.as_ref().unwrap().logged,
        log.len() as u64
    );
}

#[test]
fn the_flags_log_to_the_results_folder_or_the_given_file_and_refuse_a_bad_spec() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), &echo_scenario("builtin", 3, "10/s", "1s"));
    let run = |out: &str, extra: &[&str]| {
        let mut cmd = assert_cmd::Command::cargo_bin("volley").unwrap();
        cmd.arg("run")
            .args(extra)
            .arg(&scenario)
            .arg("--out")
            .arg(dir.path().join(out))
            .arg("--quiet");
        cmd.assert()
    };

    // `--log-frames` before the scenario does not take it for its file.
    run("a", &["--log-frames", "--log-clients", "2"])
        .success()
        .stdout(predicate::str::contains("logged (clients 2) to"));
    let log = read_log(&dir.path().join("a/frames.jsonl"));
    assert_eq!(conns(&log), BTreeSet::from([2]));

    // --log-clients alone logs too; --log-frames=FILE puts the log there.
    let file = dir.path().join("mine.jsonl");
    run("b", &[&format!("--log-frames={}", file.display())]).success();
    assert_eq!(conns(&read_log(&file)), BTreeSet::from([0, 1, 2]));
    assert!(!dir.path().join("b/frames.jsonl").exists());
    run("c", &["--log-clients", "0"]).success();
    assert_eq!(
        conns(&read_log(&dir.path().join("c/frames.jsonl"))),
        BTreeSet::from([0])
    );

    run("d", &["--log-clients", "9..1"]).code(2).stderr(
        predicate::str::contains("--log-clients")
            .and(predicate::str::contains("ends before it starts")),
    );
}
