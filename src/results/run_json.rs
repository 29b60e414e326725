//! run.json, kept as JSON with typed views of the parts that are read by name.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::FileError;
use crate::metrics::{ErrorKind, ExpectCounts, Interval};

/// A run's run.json.
#[derive(Debug, Clone)]
pub struct RunJson {
    pub value: Value,
}

/// One threshold's verdict as run.json records it (`thresholds`, an array).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ThresholdVerdict {
    /// As written, e.g. `fanout.p99 < 50ms`.
    pub expression: String,
    #[serde(default)]
    pub metric: Option<String>,
    #[serde(default)]
    pub stat: Option<String>,
    #[serde(default)]
    pub op: Option<String>,
    /// The limit as written (`50ms`); a number in some writers.
    #[serde(default)]
    pub limit: Value,
    /// The measured value, when there was one.
    #[serde(default)]
    pub actual: Option<f64>,
    /// The measured value in the limit's unit, e.g. `12.4ms`.
    #[serde(default)]
    pub actual_text: Option<String>,
    pub passed: bool,
    /// Stops the run early when it fails.
    #[serde(default)]
    pub abort: bool,
    /// When this threshold stopped the run, seconds into it.
    #[serde(default)]
    pub aborted_run_at_s: Option<f64>,
    /// Why there is no actual value (no samples, ...).
    #[serde(default)]
    pub error: Option<String>,
    /// `scenario` or `command line`.
    #[serde(default)]
    pub source: Option<String>,
}

impl RunJson {
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<RunJson, FileError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| FileError::malformed(path, format!("not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(FileError::malformed(path, "not a JSON object"));
        }
        Ok(RunJson { value })
    }

    /// A value by JSON pointer (`/summary/counters/sent`).
    pub fn at(&self, pointer: &str) -> Option<&Value> {
        self.value.pointer(pointer).filter(|v| !v.is_null())
    }

    pub fn text(&self, pointer: &str) -> Option<&str> {
        self.at(pointer).and_then(Value::as_str)
    }

    /// The latency metrics in the run's order (the keys of `summary.latency`).
    pub fn metric_names(&self) -> Vec<String> {
        self.at("/summary/latency")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The run's counters as an [`Interval`] with empty histograms: counters, errors by kind,
    /// closes by code and each expect's counters (in `expects`' order), read back from `summary`.
    /// `metric_names`: the run's latency metrics, for the number of histograms.
    pub fn counters(&self, metric_names: &[String]) -> Interval {
        let summary = self.at("/summary").cloned().unwrap_or_default();
        let expects = summary["expects"].as_object().cloned().unwrap_or_default();
        let mut t = Interval::new(metric_names.len(), expects.len());
        let n = |v: &Value| v.as_u64().unwrap_or(0);
        let c = &summary["counters"];
        t.sent = n(&c["sent"]);
        t.received = n(&c["received"]);
        t.connects = n(&c["connects"]);
        t.connect_failures = n(&c["connect_failures"]);
        t.reconnects = n(&c["reconnects"]);
        t.recovered = n(&c["reconnects_recovered"]);
        t.acks_sent = n(&c["acks_sent"]);
        t.acks_lost = n(&c["acks_lost"]);
        for kind in ErrorKind::ALL {
            t.errors[kind.index()] = n(&summary["errors_by_kind"][kind.as_str()]);
        }
        if let Some(closes) = summary["closes_by_code"].as_object() {
            for (code, count) in closes {
                if let Ok(code) = code.parse::<u16>() {
                    t.closes.insert(code, n(count));
                }
            }
        }
        for (counts, e) in t.expects.iter_mut().zip(expects.values()) {
            *counts = ExpectCounts {
                sent: n(&e["sent"]),
                received: n(&e["received"]),
                late: n(&e["late"]),
                lost: n(&e["lost"]),
                duplicate: n(&e["duplicate"]),
                reorder: n(&e["reorder"]),
                gap: n(&e["gap"]),
                refilled: n(&e["refilled"]),
            };
        }
        t.error_rows_dropped = n(&summary["error_rows_dropped"]);
        t.gap_rows_dropped = n(&summary["gap_rows_dropped"]);
        t
    }

    /// The names of the expects, in the run's order (the keys of `summary.expects`).
    pub fn expect_names(&self) -> Vec<String> {
        self.at("/summary/expects")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The threshold verdicts; an absent key is no thresholds, a malformed entry an error.
    pub fn thresholds(&self) -> Result<Vec<ThresholdVerdict>, String> {
        match self.at("/thresholds") {
            None => Ok(Vec::new()),
            Some(v) => Vec::<ThresholdVerdict>::deserialize(v)
                .map_err(|e| format!("`thresholds` is not a list of verdicts: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_read_when_present_and_empty_when_absent() {
        let path = Path::new("run.json");
        let run = RunJson::parse(path, br#"{"summary":{}}"#).unwrap();
        assert_eq!(run.thresholds().unwrap(), []);
        let run = RunJson::parse(
            path,
            br#"{"thresholds":[{"expression":"fanout.p99 < 50ms","metric":"fanout","stat":"p99",
                "op":"<","limit":"50ms","actual":12400.0,"actual_text":"12.4ms","passed":true,
                "abort":false,"source":"scenario"}]}"#,
        )
        .unwrap();
        let verdicts = run.thresholds().unwrap();
        assert_eq!(verdicts[0].expression, "fanout.p99 < 50ms");
        assert_eq!(verdicts[0].actual_text.as_deref(), Some("12.4ms"));
        assert!(verdicts[0].passed);
        let run = RunJson::parse(path, br#"{"thresholds":[{"passed":"yes"}]}"#).unwrap();
        assert!(run.thresholds().is_err());
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
}
