//! run.json: the whole run for machines — the scenario as resolved, settings, the machine, times,
//! the summary figures and the threshold verdicts. One typed struct, [`RunJson`], is written from a
//! [`FinishedRun`] and read back by report, compare and merge. Its shape is fixed by
//! schema/run.schema.json (tested both ways) and versioned by `schema_version`.
//!
//! Reading is lenient about what is missing (every part has a default, so a file cut short or
//! written by hand still reads; the facts a reader shows as unknown are `Option`s) and strict
//! about what is there: a value of the wrong type is an error with its line and column.

use std::path::Path;

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::{
    ExportError, Exporter, FailedShard, FileError, FinishedRun, FrameLogTotals, PushTotals,
    RunStatus,
};
use crate::metrics::{EXPECT_COUNTERS, ErrorKind, ExpectCounts, Interval, RUN_COUNTERS};

pub const SCHEMA_VERSION: u64 = 1;

/// A run's run.json.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunJson {
    pub schema_version: Option<u64>,
    pub tool: Tool,
    pub run_id: Option<String>,
    pub status: Option<RunStatus>,
    /// A merged run's shards that failed (status `failed`): which, where, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_shards: Vec<FailedShard>,
    pub host: Option<Host>,
    /// RFC 3339, milliseconds.
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    /// From the run's time zero to the end of the last close.
    pub elapsed_s: Option<f64>,
    pub scenario: ScenarioFacts,
    pub settings: Settings,
    pub summary: Summary,
    pub thresholds: Vec<ThresholdVerdict>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

/// The machine a run ran on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Host {
    pub hostname: String,
    pub os: String,
    pub arch: String,
    pub cpus: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScenarioFacts {
    pub file: Option<String>,
    pub name: Option<String>,
    /// The scenario after command-line overrides.
    pub resolved: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The URL of the first group (each group may have its own path).
    pub target_url: Option<String>,
    pub seed: Option<u64>,
    /// Client worker threads (summed over merged shards).
    pub workers: Option<u64>,
    pub clients_planned: Option<u64>,
    pub clients_started: Option<u64>,
    /// `--shard K/N`, when the run was one shard of a larger one.
    pub shard: Option<ShardFacts>,
    /// `volley merge`: the shard folders this folder was merged from (empty for a run).
    pub merged_from: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardFacts {
    pub index: u32,
    pub count: u32,
}

/// The figures of a run (or of a run still going): latency statistics per metric, counters,
/// errors by kind, closes by code, each expect's counters; and what the run cost and dropped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Summary {
    /// By metric, in the run's order (`connect`, the expects, then `ack` and `reconnect`).
    pub latency: IndexMap<String, LatencyStats>,
    pub counters: Counters,
    /// By [`ErrorKind`] name, every kind listed.
    pub errors_by_kind: IndexMap<String, u64>,
    /// By WebSocket close code.
    pub closes_by_code: IndexMap<String, u64>,
    /// By expect name, in the run's order.
    pub expects: IndexMap<String, ExpectFigures>,
    /// CPU time of the client worker threads.
    pub client_cpu_s: Option<f64>,
    /// Client CPU per tracked round trip, when there were any.
    pub client_cpu_us_per_echo: Option<f64>,
    /// Errors counted but not listed in errors.csv.
    pub error_rows_dropped: u64,
    /// Delivery problems counted but not listed in gaps.csv.
    pub gap_rows_dropped: u64,
    /// With `--log-frames`: what the frame log holds.
    pub frame_log: Option<FrameLogTotals>,
    /// With `--prometheus-write`: the pushes made and dropped.
    pub prometheus: Option<PushTotals>,
}

/// One latency metric's statistics in µs; only `count` when it has no samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LatencyStats {
    pub count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p90_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p95_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_9_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdev_us: Option<f64>,
}

impl LatencyStats {
    /// The fixed percentiles run.json holds, as (percent, µs).
    pub fn percentiles(&self) -> Vec<(f64, f64)> {
        [
            (50.0, self.p50_us),
            (90.0, self.p90_us),
            (95.0, self.p95_us),
            (99.0, self.p99_us),
            (99.9, self.p99_9_us),
        ]
        .into_iter()
        .filter_map(|(p, v)| v.map(|v| (p, v as f64)))
        .collect()
    }
}

/// The run-wide counters, named as [`crate::metrics::RUN_COUNTERS`] names them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    pub sent: u64,
    pub received: u64,
    pub connects: u64,
    pub connect_failures: u64,
    pub errors: u64,
    pub reconnects: u64,
    pub reconnects_recovered: u64,
    pub acks_sent: u64,
    pub acks_lost: u64,
    pub ack_retries: u64,
}

impl Counters {
    /// (name, value) in file order.
    pub fn named(&self) -> [(&'static str, u64); 10] {
        let values = [
            self.sent,
            self.received,
            self.connects,
            self.connect_failures,
            self.errors,
            self.reconnects,
            self.reconnects_recovered,
            self.acks_sent,
            self.acks_lost,
            self.ack_retries,
        ];
        std::array::from_fn(|i| (RUN_COUNTERS[i], values[i]))
    }
}

/// One expect's counters, and its problems as shares of the expected deliveries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExpectFigures {
    pub sent: u64,
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    pub late: u64,
    pub duplicate: u64,
    pub reorder: u64,
    pub gap: u64,
    pub refilled: u64,
    pub lost_rate: f64,
    pub late_rate: f64,
    pub duplicate_rate: f64,
    pub reorder_rate: f64,
}

impl ExpectFigures {
    fn of(e: &ExpectCounts) -> ExpectFigures {
        let expected = e.expected();
        ExpectFigures {
            sent: e.sent,
            expected,
            received: e.received,
            lost: e.lost,
            late: e.late,
            duplicate: e.duplicate,
            reorder: e.reorder,
            gap: e.gap,
            refilled: e.refilled,
            lost_rate: rate(e.lost, expected),
            late_rate: rate(e.late, expected),
            duplicate_rate: rate(e.duplicate, expected),
            reorder_rate: rate(e.reorder, expected),
        }
    }

    /// (name, value) of the counters, named as [`crate::metrics::EXPECT_COUNTERS`] names them.
    pub fn named(&self) -> [(&'static str, u64); 9] {
        let values = [
            self.sent,
            self.expected,
            self.received,
            self.lost,
            self.late,
            self.duplicate,
            self.reorder,
            self.gap,
            self.refilled,
        ];
        std::array::from_fn(|i| (EXPECT_COUNTERS[i], values[i]))
    }

    fn counts(&self) -> ExpectCounts {
        ExpectCounts {
            sent: self.sent,
            received: self.received,
            late: self.late,
            lost: self.lost,
            duplicate: self.duplicate,
            reorder: self.reorder,
            gap: self.gap,
            refilled: self.refilled,
        }
    }
}

/// One threshold's verdict (`thresholds`, an array, in the order the thresholds were written).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ThresholdVerdict {
    /// As written, e.g. `fanout.p99 < 50ms`.
    pub expression: String,
    pub metric: Option<String>,
    /// `p99`, `rate`, ...; none for a counter.
    pub stat: Option<String>,
    pub op: Option<String>,
    /// The limit as written (`50ms`); a number in some hand-written files.
    #[serde(deserialize_with = "text_or_number")]
    pub limit: String,
    /// The measured value in its own unit (µs, a share, a number), when there was one.
    pub actual: Option<f64>,
    /// The measured value for people, e.g. `12.40ms`; `no samples` or `n/a` without one.
    pub actual_text: Option<String>,
    pub passed: bool,
    /// Stops the run early when it fails.
    pub abort: bool,
    /// When this threshold stopped the run, seconds into it.
    pub aborted_run_at_s: Option<f64>,
    /// Why there is no actual value (no samples, ...).
    pub error: Option<String>,
    /// `scenario` or `command line`.
    pub source: Option<String>,
}

impl ThresholdVerdict {
    /// The figure it judged: `fanout.p99`, `errors.rate`, `fanout.lost`.
    pub fn metric_label(&self) -> String {
        let metric = self.metric.as_deref().unwrap_or("?");
        match &self.stat {
            Some(stat) => format!("{metric}.{stat}"),
            None => metric.to_string(),
        }
    }
}

fn text_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(text) => text,
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

impl Summary {
    /// The figures of `totals`, whose histograms and expects are those of `metric_names`. The
    /// gate reads the same shape, from a finished run.json or from the totals of a run going on.
    pub fn of(metric_names: &[String], t: &Interval) -> Summary {
        let latency = metric_names
            .iter()
            .zip(&t.histograms)
            .map(|(name, h)| {
                let stats = if h.is_empty() {
                    LatencyStats::default()
                } else {
                    LatencyStats {
                        count: h.len(),
                        min_us: Some(h.min()),
                        p50_us: Some(h.value_at_quantile(0.5)),
                        p90_us: Some(h.value_at_quantile(0.9)),
                        p95_us: Some(h.value_at_quantile(0.95)),
                        p99_us: Some(h.value_at_quantile(0.99)),
                        p99_9_us: Some(h.value_at_quantile(0.999)),
                        max_us: Some(h.max()),
                        mean_us: Some(h.mean()),
                        stdev_us: Some(h.stdev()),
                    }
                };
                (name.clone(), stats)
            })
            .collect();
        Summary {
            latency,
            counters: Counters {
                sent: t.sent,
                received: t.received,
                connects: t.connects,
                connect_failures: t.connect_failures,
                errors: t.error_total(),
                reconnects: t.reconnects,
                reconnects_recovered: t.recovered,
                acks_sent: t.acks_sent,
                acks_lost: t.acks_lost,
                ack_retries: t.ack_retries,
            },
            errors_by_kind: ErrorKind::ALL
                .iter()
                .map(|k| (k.as_str().to_string(), t.errors[k.index()]))
                .collect(),
            closes_by_code: t
                .closes
                .iter()
                .map(|(code, n)| (code.to_string(), *n))
                .collect(),
            expects: metric_names
                .iter()
                .skip(1)
                .zip(&t.expects)
                .map(|(name, e)| (name.clone(), ExpectFigures::of(e)))
                .collect(),
            ..Summary::default()
        }
    }

    /// The counters as an [`Interval`] with empty histograms, one per name of `metric_names`:
    /// counters, errors by kind, closes by code and each expect's counters (in `expects`' order).
    pub fn counters(&self, metric_names: &[String]) -> Interval {
        let mut t = Interval::new(metric_names.len(), self.expects.len());
        let c = &self.counters;
        t.sent = c.sent;
        t.received = c.received;
        t.connects = c.connects;
        t.connect_failures = c.connect_failures;
        t.reconnects = c.reconnects;
        t.recovered = c.reconnects_recovered;
        t.acks_sent = c.acks_sent;
        t.acks_lost = c.acks_lost;
        t.ack_retries = c.ack_retries;
        for kind in ErrorKind::ALL {
            t.errors[kind.index()] = self.errors_by_kind.get(kind.as_str()).copied().unwrap_or(0);
        }
        for (code, count) in &self.closes_by_code {
            if let Ok(code) = code.parse::<u16>() {
                t.closes.insert(code, *count);
            }
        }
        for (counts, e) in t.expects.iter_mut().zip(self.expects.values()) {
            *counts = e.counts();
        }
        t.error_rows_dropped = self.error_rows_dropped;
        t.gap_rows_dropped = self.gap_rows_dropped;
        t
    }
}

/// A share of the expected deliveries (0 when none were expected).
fn rate(count: u64, expected: u64) -> f64 {
    if expected == 0 {
        0.0
    } else {
        count as f64 / expected as f64
    }
}

impl RunJson {
    /// The run.json of a finished run.
    pub fn of(r: &FinishedRun) -> RunJson {
        RunJson {
            schema_version: Some(SCHEMA_VERSION),
            tool: Tool {
                name: "volley".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            run_id: Some(r.run_id.clone()),
            status: Some(r.status),
            failed_shards: r.failed_shards.clone(),
            host: Some(r.host.clone()),
            started_at: Some(humantime::format_rfc3339_millis(r.started_at).to_string()),
            ended_at: Some(humantime::format_rfc3339_millis(r.ended_at).to_string()),
            elapsed_s: Some(r.elapsed.as_secs_f64()),
            scenario: ScenarioFacts {
                file: Some(r.scenario_file.clone()),
                name: Some(r.scenario_name.clone()),
                resolved: Some(r.scenario.clone()),
            },
            settings: Settings {
                target_url: Some(r.target_url.clone()),
                seed: Some(r.seed),
                workers: Some(r.workers as u64),
                clients_planned: Some(r.clients_planned),
                clients_started: Some(r.clients_started),
                shard: r.shard.map(|(index, count)| ShardFacts { index, count }),
                merged_from: r.merged_from.clone(),
            },
            summary: Summary {
                client_cpu_s: Some(r.client_cpu.as_secs_f64()),
                client_cpu_us_per_echo: r.cpu_per_echo().map(|d| d.as_secs_f64() * 1e6),
                error_rows_dropped: r.error_rows_dropped,
                gap_rows_dropped: r.gap_rows_dropped,
                frame_log: r.frame_log.clone(),
                prometheus: r.prometheus,
                ..Summary::of(&r.metric_names, &r.totals)
            },
            thresholds: r.thresholds.clone(),
        }
    }

    /// Reads run.json. A file that is not JSON, not an object or has a value of the wrong type is
    /// malformed, with the reason.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<RunJson, FileError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| FileError::malformed(path, format!("not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(FileError::malformed(path, "not a JSON object"));
        }
        serde_json::from_slice(bytes).map_err(|e| FileError::malformed(path, e.to_string()))
    }

    /// The latency metrics in the run's order (the keys of `summary.latency`).
    pub fn metric_names(&self) -> Vec<String> {
        self.summary.latency.keys().cloned().collect()
    }

    /// The names of the expects, in the run's order (the keys of `summary.expects`).
    pub fn expect_names(&self) -> Vec<String> {
        self.summary.expects.keys().cloned().collect()
    }
}

/// What must hold before a file is compared as a run's figures: its schema version is this
/// volley's, and it has latency and counters. Checked before the rest of its shape is read, so a
/// file of a later version is refused for its version, not for a field that changed.
pub fn check_comparable(bytes: &[u8]) -> Result<(), String> {
    #[derive(Deserialize)]
    struct Head {
        schema_version: Option<u64>,
        summary: Option<HeadSummary>,
    }
    #[derive(Deserialize)]
    struct HeadSummary {
        latency: Option<serde::de::IgnoredAny>,
        counters: Option<serde::de::IgnoredAny>,
    }
    let head: Head = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    match head.schema_version {
        Some(SCHEMA_VERSION) => {}
        Some(other) => {
            return Err(format!(
                "schema_version {other}, this volley reads version {SCHEMA_VERSION}"
            ));
        }
        None => return Err("no schema_version".into()),
    }
    match head.summary {
        Some(HeadSummary {
            latency: Some(_),
            counters: Some(_),
        }) => Ok(()),
        _ => Err("no summary.latency and summary.counters".into()),
    }
}

/// run.json as a result file.
pub struct RunJsonExporter;

impl Exporter for RunJsonExporter {
    fn file_name(&self) -> String {
        super::layout::RUN_JSON.into()
    }

    fn serialize(&self, run: &FinishedRun) -> Result<Vec<u8>, ExportError> {
        let mut bytes = serde_json::to_vec_pretty(&RunJson::of(run))?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_read_when_present_and_empty_when_absent() {
        let path = Path::new("run.json");
        let run = RunJson::parse(path, br#"{"summary":{}}"#).unwrap();
        assert_eq!(run.thresholds, []);
        let run = RunJson::parse(
            path,
            br#"{"thresholds":[{"expression":"fanout.p99 < 50ms","metric":"fanout","stat":"p99",
                "op":"<","limit":"50ms","actual":12400.0,"actual_text":"12.4ms","passed":true,
                "abort":false,"source":"scenario"}]}"#,
        )
        .unwrap();
        let verdicts = &run.thresholds;
        assert_eq!(verdicts[0].expression, "fanout.p99 < 50ms");
        assert_eq!(verdicts[0].actual_text.as_deref(), Some("12.4ms"));
        assert_eq!(verdicts[0].metric_label(), "fanout.p99");
        assert!(verdicts[0].passed);
        let err = RunJson::parse(path, br#"{"thresholds":[{"passed":"yes"}]}"#).unwrap_err();
        assert!(err.to_string().contains("line 1 column"), "{err}");
    }

    #[test]
    fn metric_names_keep_the_runs_order() {
        let run = RunJson::parse(
            Path::new("run.json"),
            br#"{"summary":{"latency":{"connect":{},"fanout":{},"ack":{}}}}"#,
        )
        .unwrap();
        assert_eq!(run.metric_names(), ["connect", "fanout", "ack"]);
    }

    #[test]
    fn not_json_or_not_an_object_is_malformed_naming_the_file() {
        let path = Path::new("dir/run.json");
        let err = RunJson::parse(path, b"{ not json").unwrap_err();
        assert!(
            err.to_string().starts_with("dir/run.json: not valid JSON"),
            "{err}"
        );
        let err = RunJson::parse(path, b"[1]").unwrap_err();
        assert_eq!(err.to_string(), "dir/run.json: not a JSON object");
    }

    #[test]
    fn only_this_versions_files_with_figures_are_comparable() {
        let ok = br#"{"schema_version":1,"summary":{"latency":{},"counters":{}}}"#;
        assert_eq!(check_comparable(ok), Ok(()));
        let later = br#"{"schema_version":9,"summary":{"latency":7}}"#;
        assert_eq!(
            check_comparable(later).unwrap_err(),
            "schema_version 9, this volley reads version 1"
        );
        assert_eq!(
            check_comparable(br#"{"summary":{}}"#).unwrap_err(),
            "no schema_version"
        );
        let bare = br#"{"schema_version":1,"summary":{"latency":{}}}"#;
        assert!(
            check_comparable(bare)
                .unwrap_err()
                .contains("summary.counters")
        );
    }

    /// The counters' names, their values and run.json's keys are the same list.
    #[test]
    fn counters_are_named_as_run_json_writes_them() {
        let counters = Counters {
            sent: 1,
            received: 2,
            connects: 3,
            connect_failures: 4,
            errors: 5,
            reconnects: 6,
            reconnects_recovered: 7,
            acks_sent: 8,
            acks_lost: 9,
            ack_retries: 10,
        };
        let written = serde_json::to_value(&counters).unwrap();
        let named: Vec<(String, Value)> = counters
            .named()
            .iter()
            .map(|(n, v)| (n.to_string(), Value::from(*v)))
            .collect();
        let keys: Vec<(String, Value)> = written.as_object().unwrap().clone().into_iter().collect();
        assert_eq!(named, keys);
        let expect = ExpectFigures::of(&ExpectCounts {
            sent: 1,
            received: 2,
            late: 3,
            lost: 4,
            duplicate: 5,
            reorder: 6,
            gap: 7,
            refilled: 8,
        });
        let written = serde_json::to_value(&expect).unwrap();
        for (name, value) in expect.named() {
            assert_eq!(written[name], Value::from(value), "{name}");
        }
        let keys: Vec<&String> = written.as_object().unwrap().keys().take(9).collect();
        assert_eq!(keys, EXPECT_COUNTERS);
    }

    #[test]
    fn the_counters_read_back_are_the_counters_written() {
        let names = ["connect".to_string(), "echo".to_string()];
        let mut t = Interval::new(2, 1);
        t.sent = 10;
        t.received = 9;
        t.connects = 2;
        t.reconnects = 1;
        t.recovered = 1;
        t.acks_sent = 4;
        t.acks_lost = 1;
        t.errors[ErrorKind::Reset.index()] = 3;
        t.closes.insert(1006, 2);
        t.expects[0] = ExpectCounts {
            sent: 10,
            received: 9,
            lost: 1,
            ..ExpectCounts::default()
        };
        t.error_rows_dropped = 5;
        let summary = Summary {
            error_rows_dropped: t.error_rows_dropped,
            ..Summary::of(&names, &t)
        };
        let back = summary.counters(&names);
        assert_eq!(Summary::of(&names, &back).counters, summary.counters);
        assert_eq!(back.errors, t.errors);
        assert_eq!(back.closes, t.closes);
        assert_eq!(back.expects[0], t.expects[0]);
        assert_eq!(back.error_rows_dropped, 5);
    }
}
