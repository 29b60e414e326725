//! The result files' exact text for a crafted report, pinned by snapshots.

use std::time::{Duration, UNIX_EPOCH};

use volley::metrics::{ErrorKind, ExpectCounts, Interval};
use volley::results::hgrm::distribution;
use volley::results::summary_csv::SummaryCsv;
use volley::results::{Exporter, FinishedRun, FrameLogTotals, RunStatus, printout};

fn report() -> FinishedRun {
    let mut totals = Interval::new(4, 1);
    for us in [150u64, 180, 220, 260, 900] {
        totals.histograms[0].record(us).unwrap();
    }
    for i in 1..=1000u64 {
        totals.histograms[1].record(200 + i * 3).unwrap();
    }
    // The phases of connect of a plain WebSocket: TCP connect and the upgrade.
    for (tcp, upgrade) in [(40u64, 100), (50, 120), (60, 150), (70, 180), (300, 550)] {
        totals.histograms[2].record(tcp).unwrap();
        totals.histograms[3].record(upgrade).unwrap();
    }
    totals.sent = 1002;
    totals.received = 1000;
    totals.connects = 5;
    totals.errors[ErrorKind::Reset.index()] = 1;
    totals.closes.insert(1000, 4);
    totals.closes.insert(1006, 1);
    totals.expects[0] = ExpectCounts {
        sent: 1002,
        received: 1000,
        late: 3,
        lost: 2,
        duplicate: 1,
        reorder: 0,
        gap: 2,
        refilled: 0,
    };
    FinishedRun {
        run_id: "0000abcd".into(),
        status: RunStatus::Completed,
        host: volley::results::run_json::Host {
            hostname: "snapshot".into(),
            os: "linux".into(),
            arch: "x86_64".into(),
            cpus: 2,
        },
        scenario_name: "snapshot".into(),
        scenario_file: "snapshot.toml".into(),
        scenario: serde_json::json!({}),
        target_url: "ws://127.0.0.1:9000/echo".into(),
        started_at: UNIX_EPOCH,
        ended_at: UNIX_EPOCH + Duration::from_secs(10),
        elapsed: Duration::from_secs(10),
        seed: 42,
        workers: 2,
        clients_planned: 5,
        clients_started: 5,
        metric_names: vec![
            "connect".into(),
            "echo".into(),
            "connect_tcp".into(),
            "connect_upgrade".into(),
        ],
        totals,
        client_cpu: Duration::from_millis(20),
        error_rows_dropped: 0,
        gap_rows_dropped: 0,
        frame_log: None,
        thresholds: Vec::new(),
        shard: None,
        merged_from: Vec::new(),
        failed_shards: Vec::new(),
        prometheus: None,
    }
}

#[test]
fn summary_csv_snapshot() {
    let bytes = SummaryCsv.serialize(&report()).unwrap();
    insta::assert_snapshot!(String::from_utf8(bytes).unwrap());
}

#[test]
fn hgrm_snapshot() {
    insta::assert_snapshot!(distribution(&report().totals.histograms[0]));
}

#[test]
fn human_summary_snapshot() {
    insta::assert_snapshot!(printout::render(&report(), "results/snapshot"));
}

/// The crafted report with every optional part of run.json filled: a frame log, a passed and a
/// failed threshold (one aborted the run, one has no samples), a shard and merged folders.
fn full_report() -> FinishedRun {
    use volley::scenario::threshold::{GateThreshold, Origin};
    let mut report = report();
    report.frame_log = Some(FrameLogTotals {
        file: "results/snapshot/frames.jsonl".into(),
        clients: "0..9".into(),
        logged: 120,
        dropped: 3,
    });
    let gates: Vec<GateThreshold> = [
        ("echo.p99 < 50ms", Origin::Scenario, false),
        ("connect.p99.9 < 1ms", Origin::CommandLine, true),
        ("errors.rate < 0.1%", Origin::Scenario, false),
    ]
    .into_iter()
    .map(|(text, origin, abort)| GateThreshold {
        threshold: text.parse().unwrap(),
        origin,
        abort,
        abort_after: Duration::ZERO,
    })
    .collect();
    let mut totals = report.totals.clone();
    totals.histograms[0].reset();
    let figures =
        volley::gate::figures::Figures::from_totals(&report.metric_names, &totals, report.elapsed);
    report.thresholds = volley::gate::verdict::judge(
        &gates,
        &figures,
        &[None, Some(Duration::from_millis(3250)), None],
    );
    report.shard = Some((1, 4));
    report.merged_from = vec!["results/a".into(), "results/b".into()];
    report
}

/// run.json's text with the machine's facts (`host`) replaced, which differ from machine to machine.
fn without_host(text: &str) -> String {
    let start = text.find("\"host\": {").expect("a host object");
    let end = start + text[start..].find('}').expect("the host object's end") + 1;
    format!(
        "{}\"host\": \"[this machine]\"{}",
        &text[..start],
        &text[end..]
    )
}

#[test]
fn run_json_snapshot() {
    let bytes = volley::results::run_json::RunJsonExporter
        .serialize(&report())
        .unwrap();
    insta::assert_snapshot!(without_host(&String::from_utf8(bytes).unwrap()));
}

#[test]
fn run_json_with_every_part_snapshot() {
    let bytes = volley::results::run_json::RunJsonExporter
        .serialize(&full_report())
        .unwrap();
    insta::assert_snapshot!(without_host(&String::from_utf8(bytes).unwrap()));
}

/// run.json is one typed struct both ways: what volley writes meets the committed schema, and
/// reads back into the same struct, which writes the same bytes again.
#[test]
fn run_json_meets_its_schema_and_reads_back_as_written() {
    use volley::results::RunJson;
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../schema/run.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for run in [report(), full_report()] {
        let written = volley::results::run_json::RunJsonExporter
            .serialize(&run)
            .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&written).unwrap();
        // The crafted run has no scenario of its own; the schema asks for a resolved one.
        let mut checked = value.clone();
        checked["scenario"]["resolved"] = serde_json::json!({ "name": "s", "target": "builtin",
            "protocol": "ws", "duration": "1s", "ramp": "1s", "drain": "1s",
            "group": [{ "name": "g", "clients": 5 }] });
        let errors: Vec<String> = validator
            .iter_errors(&checked)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "run.json off its schema: {errors:?}");
        let read = RunJson::parse(std::path::Path::new("run.json"), &written).unwrap();
        assert_eq!(read, RunJson::of(&run));
        let mut again = serde_json::to_vec_pretty(&read).unwrap();
        again.push(b'\n');
        assert_eq!(
            String::from_utf8(again).unwrap(),
            String::from_utf8(written).unwrap()
        );
    }
}
