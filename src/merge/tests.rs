//! Merging folders written by volley's own writers, with contents known sample for sample.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

use super::*;
use crate::metrics::{ErrorKind, ErrorRow, new_histogram};
use crate::results::errors_csv::ErrorsWriter;
use crate::results::gaps_csv::GapsWriter;
use crate::results::latency_hlog::HlogWriter;
use crate::results::timeseries_csv::{SecondRow, TimeseriesWriter};

const T0: u64 = 1_790_000_000;

fn names() -> Vec<String> {
    vec!["connect".into(), "echo".into()]
}

/// A shard folder: time zero `t0`, echo latencies per second (second 1, 2, ...), one error at
/// `error_at` seconds, `sent` events a second, the threshold `echo.count >= 5` judged on itself.
fn write_shard(dir: &Path, t0: SystemTime, run_id: &str, echo: &[&[u64]], error_at: f64) {
    std::fs::create_dir_all(dir).unwrap();
    let names = names();
    let mut ts = TimeseriesWriter::create(&dir.join("timeseries.csv"), &names).unwrap();
    let mut hlog = HlogWriter::create(&dir.join("latency.hlog"), &names, t0).unwrap();
    let mut totals = Interval::new(2, 1);
    let t0_ms = t0.duration_since(UNIX_EPOCH).unwrap().as_millis();
    for (i, values) in echo.iter().enumerate() {
        let second = i as u64 + 1;
        let mut interval = Interval::new(2, 1);
        interval.histograms[0].record(1000 * second).unwrap();
        for &us in *values {
            interval.histograms[1].record(us).unwrap();
        }
        interval.sent = 10;
        interval.received = values.len() as u64;
        interval.connects = 1;
        interval.expects[0].sent = 10;
        interval.expects[0].received = values.len() as u64;
        let row = SecondRow {
            second,
            epoch_ms: t0_ms + u128::from(second) * 1000,
            connected: 2,
            connecting: 0,
            interval,
        };
        ts.write(&row).unwrap();
        hlog.write(&row).unwrap();
        let mut interval = row.interval;
        totals.merge(&mut interval);
    }
    let mut errors = ErrorsWriter::create(&dir.join("errors.csv"), vec!["g".into()]).unwrap();
    errors
        .write(&[ErrorRow {
            at: Duration::from_secs_f64(error_at),
            client: 1,
            group: 0,
            kind: ErrorKind::Reset,
            detail: "reset".into(),
        }])
        .unwrap();
    totals.errors[ErrorKind::Reset.index()] += 1;
    drop(GapsWriter::create(&dir.join("gaps.csv"), vec!["echo".into()]).unwrap());
    let gate = GateThreshold {
        threshold: "echo.count >= 5".parse().unwrap(),
        origin: Origin::Scenario,
        abort: false,
        abort_after: Duration::ZERO,
    };
    let elapsed = Duration::from_secs(echo.len() as u64);
    let figures = Figures::from_totals(&names, &totals, elapsed);
    let report = FinishedRun {
        run_id: run_id.into(),
        status: RunStatus::Completed,
        host: Default::default(),
        scenario_name: "merge".into(),
        scenario_file: "merge.toml".into(),
        scenario: serde_json::json!({}),
        target_url: "ws://127.0.0.1:9/echo".into(),
        started_at: t0,
        ended_at: t0 + elapsed,
        elapsed,
        seed: 7,
        workers: 1,
        clients_planned: 2,
        clients_started: 2,
        metric_names: names,
        thresholds: verdict::judge(&[gate], &figures, &[None]),
        totals,
        client_cpu: Duration::from_millis(10),
        error_rows_dropped: 0,
        gap_rows_dropped: 0,
        frame_log: None,
        shard: Some((0, 2)),
        merged_from: Vec::new(),
        failed_shards: Vec::new(),
        prometheus: None,
    };
    results::write_final(dir, &report).unwrap();
}

fn histogram_of(values: &[u64]) -> Histogram<u64> {
    let mut h = new_histogram();
    for &v in values {
        h.record(v).unwrap();
    }
    h
}

#[test]
fn merged_histograms_are_the_histograms_of_the_union_per_second_and_in_total() {
    let tmp = tempfile::tempdir().unwrap();
    let t0 = UNIX_EPOCH + Duration::from_secs(T0);
    let (a, b, m) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("m"),
    );
    write_shard(&a, t0, "0000abcd", &[&[100, 200], &[300]], 1.5);
    // Shard b started one second later: its second 1 is the merged run's second 2.
    write_shard(
        &b,
        t0 + Duration::from_secs(1),
        "0000abcd",
        &[&[110, 5000], &[70]],
        0.25,
    );
    let outcome = merge(&[a.clone(), b.clone()], &m, &MergeOptions::default()).unwrap();

    let folder = results::load(&m).unwrap();
    assert_eq!(folder.hgrm("echo").unwrap().count, 6);
    let log = folder.latency.unwrap();
    let echo = log.metric("echo").unwrap();
    assert_eq!(echo.total, histogram_of(&[100, 200, 300, 110, 5000, 70]));
    let per_second: Vec<(u64, Histogram<u64>)> = echo
        .intervals
        .iter()
        .map(|i| (i.start.as_secs(), i.histogram().unwrap()))
        .collect();
    assert_eq!(per_second.len(), 3);
    assert_eq!(per_second[0], (0, histogram_of(&[100, 200])));
    assert_eq!(per_second[1], (1, histogram_of(&[300, 110, 5000])));
    assert_eq!(per_second[2], (2, histogram_of(&[70])));
    assert_eq!(log.start_time, Some(t0));

    // Counters add up, in run.json and second by second.
    let run = folder.run.unwrap();
    assert_eq!(run.summary.counters.sent, 40);
    assert_eq!(run.summary.expects["echo"].received, 6);
    assert_eq!(run.summary.errors_by_kind["reset"], 2);
    assert_eq!(run.settings.clients_planned, Some(4));
    assert_eq!(
        run.summary.latency["echo"].max_us,
        Some(histogram_of(&[5000]).max())
    );
    assert_eq!(run.elapsed_s, Some(3.0));
    let ts = folder.timeseries.unwrap();
    let sent: Vec<Option<f64>> = ts.column("sent").unwrap();
    assert_eq!(sent, [Some(10.0), Some(20.0), Some(10.0)]);
    assert_eq!(
        ts.column("connected").unwrap(),
        [Some(2.0), Some(4.0), Some(2.0)]
    );

    // Errors of both shards in the merged run's time: b's 0.25 s is 1.25 s.
    let errors = folder.errors.unwrap();
    let times: Vec<f64> = errors.iter().map(|e| e.time_s).collect();
    assert_eq!(times, [1.25, 1.5]);

    // Each shard had 3 echoes and failed `echo.count >= 5`; together they pass.
    assert!(!results::load(&a).unwrap().run.unwrap().thresholds[0].passed);
    assert!(outcome.run.thresholds[0].passed);
    assert!(run.thresholds[0].passed);
    assert_eq!(run.settings.merged_from.len(), 2);
}

#[test]
fn folders_of_different_runs_are_refused_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let t0 = UNIX_EPOCH + Duration::from_secs(T0);
    let (a, b, m) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("m"),
    );
    write_shard(&a, t0, "0000abcd", &[&[100]], 0.5);
    write_shard(&b, t0, "12345678", &[&[100]], 0.5);
    let err = merge(&[a.clone(), b.clone()], &m, &MergeOptions::default())
        .err()
        .unwrap();
    assert!(err.is_usage());
    let text = err.to_string();
    assert!(
        text.contains("run 12345678") && text.contains("--force"),
        "{text}"
    );
    assert!(
        merge(
            &[a.clone(), b],
            &m,
            &MergeOptions {
                force: true,
                ..MergeOptions::default()
            }
        )
        .is_ok()
    );
    let err = merge(std::slice::from_ref(&a), &a, &MergeOptions::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("elsewhere"), "{err}");
}
