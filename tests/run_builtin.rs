//! Runs against the builtin server in-process: what is sent comes back, and every result file agrees
//! with the others.

use crate::common;

use common::*;
use volley::results::RunStatus;
use volley::scenario::Overrides;

#[tokio::test]
async fn echo_run_against_builtin_receives_everything_and_files_agree() {
    let dir = tempfile::tempdir().unwrap();
    let text = echo_scenario("builtin", 50, "20/s", "2s");
    let outcome = run_in_process(dir.path(), &text, Overrides::default()).await;
    let out = dir.path().join("out");
    let t = &outcome.run.totals;

    assert_eq!(outcome.run.status, RunStatus::Completed);
    assert_eq!(t.connects, 50);
    assert!(t.sent >= 50 * 20 * 2, "sent {}", t.sent);
    assert_eq!(t.sent, t.received, "every echo came back");
    assert_eq!(t.error_total(), 0);
    assert_eq!(t.expects[0].lost, 0);
    assert_eq!(t.closes.get(&1000), Some(&50));

    // summary.csv: documented columns, counts equal to the report's.
    let (header, _) = read_csv(&out.join("summary.csv"));
    assert_eq!(header, volley::results::summary_csv::HEADER);
    assert_eq!(summary_count(&out, "sent"), t.sent);
    assert_eq!(summary_count(&out, "received"), t.received);
    assert_eq!(summary_count(&out, "echo"), t.sent, "one latency per echo");
    assert_eq!(summary_count(&out, "echo.received"), t.sent);
    assert_eq!(summary_count(&out, "connect"), 50);
    assert_eq!(summary_count(&out, "errors"), 0);

    // timeseries.csv: one row per second whose columns add up to the totals.
    let (header, rows) = read_csv(&out.join("timeseries.csv"));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    for name in [
        "second",
        "epoch_ms",
        "connected",
        "connecting",
        "sent",
        "received",
        "errors",
        "closes",
        "connect_count",
        "connect_p50_us",
        "connect_p99_us",
        "echo_count",
        "echo_p50_us",
        "echo_p99_us",
    ] {
        col(name);
    }
    assert!(rows.len() >= 2, "a 2 s run has at least 2 rows");
    let sum = |name: &str| -> u64 {
        rows.iter()
            .map(|r| r[col(name)].parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(sum("sent"), t.sent);
    assert_eq!(sum("received"), t.received);
    assert_eq!(sum("echo_count"), t.sent);
    assert_eq!(sum("connect_count"), 50);
    assert_eq!(sum("closes"), 50);
    let seconds: Vec<u64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    assert!(
        seconds.windows(2).all(|w| w[1] == w[0] + 1),
        "consecutive seconds {seconds:?}"
    );

    // errors.csv: the header, and no rows.
    let (header, rows) = read_csv(&out.join("errors.csv"));
    assert_eq!(header, volley::results::errors_csv::HEADER);
    assert!(rows.is_empty());

    // .hgrm files with the total count in the footer.
    let hgrm = std::fs::read_to_string(out.join("echo.hgrm")).unwrap();
    assert!(
        hgrm.contains(&format!("Total count    = {:>12}", t.sent)),
        "{hgrm}"
    );
    assert!(out.join("connect.hgrm").exists());
}

#[tokio::test]
async fn run_json_matches_its_schema() {
    let dir = tempfile::tempdir().unwrap();
    let text = echo_scenario("builtin", 5, "10/s", "1s");
    let outcome = run_in_process(dir.path(), &text, Overrides::default()).await;
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(outcome.dir.join("run.json")).unwrap()).unwrap();
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../schema/run.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "run.json does not match the schema: {errors:?}"
    );
    assert_eq!(doc["status"], "completed");
    assert_eq!(doc["summary"]["counters"]["sent"], outcome.run.totals.sent);
    assert_eq!(
        doc["scenario"]["resolved"]["groups"],
        serde_json::Value::Null,
        "groups are under `group`"
    );
    assert_eq!(doc["scenario"]["resolved"]["group"][0]["clients"], 5);
}

#[tokio::test]
async fn command_line_overrides_replace_the_scenario_values() {
    let dir = tempfile::tempdir().unwrap();
    let text = echo_scenario("builtin", 50, "20/s", "5s");
    let overrides = Overrides {
        clients: Some(4),
        duration: Some(std::time::Duration::from_secs(1)),
        rate: Some(volley::units::parse_rate("10/s").unwrap()),
        seed: Some(7),
        ..Overrides::default()
    };
    let outcome = run_in_process(dir.path(), &text, overrides).await;
    let r = &outcome.run;
    assert_eq!(r.clients_planned, 4);
    assert_eq!(r.seed, 7);
    // 4 clients × 10/s for ~1 s (plus the 200 ms ramp): far fewer than the file's 50 × 20/s × 5 s.
    assert!(
        r.totals.sent >= 40 && r.totals.sent <= 60,
        "sent {}",
        r.totals.sent
    );
}

/// Idle clients of every transport: more than a worker's 256 closes in flight, so that some wait
/// their turn.
fn idle_scenario(protocol: &str, clients: u64, duration: &str) -> String {
    let keys = match protocol {
        "ws" => String::new(),
        transport => {
            format!("protocol = \"socketio\"\n\n[socketio]\ntransport = \"{transport}\"\n")
        }
    };
    format!(
        "name = \"idle\"\ntarget = \"builtin\"\nduration = \"{duration}\"\nramp = \"5000/s\"\n\
         drain = \"1s\"\n{keys}\n[[group]]\nname = \"idle\"\nclients = {clients}\n"
    )
}

/// At the end of a run every client closes at once: each close is answered with 1000, over every
/// transport, every connection is counted closed once, and the results have every second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_closes_with_1000_at_the_end_over_every_transport() {
    for protocol in ["ws", "websocket", "polling"] {
        let dir = tempfile::tempdir().unwrap();
        let text = idle_scenario(protocol, 700, "1s");
        let outcome = run_in_process(dir.path(), &text, Overrides::default()).await;
        let t = &outcome.run.totals;
        assert_eq!(outcome.run.status, RunStatus::Completed, "{protocol}");
        assert_eq!(t.connects, 700, "{protocol}");
        assert_eq!(t.error_total(), 0, "{protocol}");
        assert_eq!(
            t.closes.get(&1000),
            Some(&700),
            "{protocol}: {:?}",
            t.closes
        );
        let out = dir.path().join("out");
        assert_eq!(summary_count(&out, "closes.1000"), 700, "{protocol}");
        let (header, rows) = read_csv(&out.join("timeseries.csv"));
        let col = |name: &str| header.iter().position(|h| h == name).unwrap();
        let closes: u64 = rows
            .iter()
            .map(|r| r[col("closes")].parse::<u64>().unwrap())
            .sum();
        assert_eq!(closes, 700, "{protocol}: closes per second add up");
        assert_eq!(rows.last().unwrap()[col("connected")], "0", "{protocol}");
    }
}

/// A stop signal ends emitting at once; every client still closes with 1000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_run_closes_every_client_with_1000() {
    let dir = tempfile::tempdir().unwrap();
    let text = idle_scenario("ws", 700, "60s");
    let stop = tokio::time::sleep(std::time::Duration::from_millis(1500));
    let outcome = run_with_frame_log(dir.path(), &text, Overrides::default(), None, stop).await;
    let t = &outcome.run.totals;
    assert_eq!(outcome.run.status, RunStatus::Interrupted);
    assert_eq!(t.connects, 700);
    assert_eq!(t.closes.get(&1000), Some(&700), "{:?}", t.closes);
}
