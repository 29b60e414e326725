//! The result files' exact text for a crafted report, pinned by snapshots.

use std::time::{Duration, UNIX_EPOCH};

use volley::metrics::{ErrorKind, ExpectCounts, Interval};
use volley::output::hgrm::distribution;
use volley::output::summary_csv::SummaryCsv;
use volley::output::{Exporter, Report, RunStatus, table};

fn report() -> Report {
    let mut totals = Interval::new(2, 1);
    for us in [150u64, 180, 220, 260, 900] {
        totals.histograms[0].record(us).unwrap();
    }
    for i in 1..=1000u64 {
        totals.histograms[1].record(200 + i * 3).unwrap();
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
    Report {
        run_id: "0000abcd".into(),
        status: RunStatus::Completed,
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
        metric_names: vec!["connect".into(), "echo".into()],
        totals,
        client_cpu: Duration::from_millis(20),
        error_rows_dropped: 0,
        gap_rows_dropped: 0,
        frame_log: None,
        thresholds: Vec::new(),
        shard: None,
        merged_from: Vec::new(),
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
    insta::assert_snapshot!(table::render(&report(), "results/snapshot"));
}
