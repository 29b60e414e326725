//! latency.hlog, read back with the hdrhistogram crate's own interval log reader: per tag, its
//! intervals add up to the run's totals (the .hgrm files and run.json), one per second.

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use common::*;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use volley::results::hgrm::distribution;
use volley::scenario::Overrides;

#[tokio::test]
async fn interval_log_adds_up_to_the_runs_totals() {
    let dir = tempfile::tempdir().unwrap();
    let text = echo_scenario("builtin", 20, "20/s", "2s");
    let outcome = run_in_process(dir.path(), &text, Overrides::default()).await;
    let out = dir.path().join("out");
    let bytes = std::fs::read(out.join("latency.hlog")).unwrap();

    let mut start_time = None;
    let mut base_time = None;
    // Per tag: the summed histogram and the interval start times in order.
    let mut tags: BTreeMap<String, (Histogram<u64>, Vec<Duration>)> = BTreeMap::new();
    for entry in IntervalLogIterator::new(&bytes) {
        match entry.expect("every line parses") {
            LogEntry::StartTime(t) => start_time = Some(t),
            LogEntry::BaseTime(t) => base_time = Some(t),
            LogEntry::Interval(interval) => {
                let raw = base64::Engine::decode(
                    &base64::engine::general_purpose::STANDARD,
                    interval.encoded_histogram(),
                )
                .unwrap();
                let h: Histogram<u64> = Deserializer::new()
                    .deserialize(&mut std::io::Cursor::new(raw))
                    .unwrap();
                assert_eq!(interval.duration(), Duration::from_secs(1));
                let tag = interval
                    .tag()
                    .expect("every interval is tagged")
                    .to_string();
                let (sum, starts) = tags
                    .entry(tag)
                    .or_insert_with(|| (volley::metrics::new_histogram(), Vec::new()));
                sum.add(&h).unwrap();
                starts.push(interval.start_timestamp());
            }
        }
    }

    // StartTime = BaseTime = the run's time zero, a moment after run.json's started_at.
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    let started_at: std::time::SystemTime =
        humantime::parse_rfc3339(run["started_at"].as_str().unwrap()).unwrap();
    let start_time = start_time.expect("a StartTime header");
    assert_eq!(Some(start_time), base_time);
    let since_start = (UNIX_EPOCH + start_time)
        .duration_since(started_at)
        .expect("time zero is not before the start");
    assert!(since_start < Duration::from_secs(1), "{since_start:?}");

    let names: Vec<&str> = tags.keys().map(String::as_str).collect();
    assert_eq!(names, ["connect", "connect_tcp", "connect_upgrade", "echo"]);
    let latency = &run["summary"]["latency"];
    for (name, (sum, starts)) in &tags {
        // One interval per second from 0, for every metric.
        let seconds: Vec<u64> = starts.iter().map(Duration::as_secs).collect();
        let expected: Vec<u64> = (0..seconds.len() as u64).collect();
        assert_eq!(seconds, expected, "{name}");
        assert!(seconds.len() >= 3, "a 2.2 s run: {seconds:?}");
        // The same histogram as the run's total: its .hgrm is the same text.
        let hgrm = std::fs::read_to_string(out.join(format!("{name}.hgrm"))).unwrap();
        assert_eq!(distribution(sum), hgrm, "{name}");
        assert_eq!(
            sum.len(),
            latency[name]["count"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            sum.max(),
            latency[name]["max_us"].as_u64().unwrap(),
            "{name}"
        );
    }
    assert_eq!(tags["connect"].0.len(), 20);
    assert_eq!(tags["connect_tcp"].0.len(), 20);
    assert_eq!(tags["echo"].0.len(), outcome.run.totals.received);
}
