//! run.json: the whole run for machines — scenario as resolved, settings, host, times and summary.
//! Its shape is fixed by `schema/run.schema.json` (tested), and versioned by `schema_version`.

use serde_json::{Map, Value, json};

use std::path::Path;

use serde::Deserialize;

use super::{ExportError, Exporter, FileError, FinishedRun};
use crate::metrics::{ErrorKind, ExpectCounts, Interval};

pub const SCHEMA_VERSION: u64 = 1;

pub struct RunJsonExporter;

impl Exporter for RunJsonExporter {
    fn file_name(&self) -> String {
        super::layout::RUN_JSON.into()
    }

    fn serialize(&self, report: &FinishedRun) -> Result<Vec<u8>, ExportError> {
        let mut bytes = serde_json::to_vec_pretty(&document(report))?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}

fn document(r: &FinishedRun) -> Value {
    let mut summary = figures(&r.metric_names, &r.totals);
    let extra = json!({
        "client_cpu_s": r.client_cpu.as_secs_f64(),
        "client_cpu_us_per_echo": r.cpu_per_echo().map(|d| d.as_secs_f64() * 1e6),
        "error_rows_dropped": r.error_rows_dropped,
        "gap_rows_dropped": r.gap_rows_dropped,
        "frame_log": r.frame_log.as_ref().map(|f| json!({
            "file": f.file,
            "clients": f.clients,
            "logged": f.logged,
            "dropped": f.dropped,
        })),
    });
    if let Value::Object(extra) = extra {
        summary.extend(extra);
    }
    json!({
        "schema_version": SCHEMA_VERSION,
        "tool": { "name": "volley", "version": env!("CARGO_PKG_VERSION") },
        "run_id": r.run_id,
        "status": r.status,
        "host": host(),
        "started_at": humantime::format_rfc3339_millis(r.started_at).to_string(),
        "ended_at": humantime::format_rfc3339_millis(r.ended_at).to_string(),
        "elapsed_s": r.elapsed.as_secs_f64(),
        "scenario": {
            "file": r.scenario_file,
            "name": r.scenario_name,
            "resolved": r.scenario,
        },
        "settings": {
            "target_url": r.target_url,
            "seed": r.seed,
            "workers": r.workers,
            "clients_planned": r.clients_planned,
            "clients_started": r.clients_started,
            "shard": r.shard.map(|(index, count)| json!({ "index": index, "count": count })),
            "merged_from": r.merged_from,
        },
        "summary": summary,
        "thresholds": r.thresholds.iter().map(|v| v.to_json()).collect::<Vec<_>>(),
    })
}

/// The figures of `totals` as run.json's summary holds them: latency statistics per metric,
/// counters, errors by kind, closes by code and each expect's counters. The gate reads the same
/// shape, from a finished run.json or from the totals of a run still going.
pub fn figures(metric_names: &[String], t: &Interval) -> Map<String, Value> {
    let mut latency = Map::new();
    for (name, h) in metric_names.iter().zip(&t.histograms) {
        let stats = if !h.is_empty() {
            json!({
                "count": h.len(),
                "min_us": h.min(),
                "p50_us": h.value_at_quantile(0.5),
                "p90_us": h.value_at_quantile(0.9),
                "p95_us": h.value_at_quantile(0.95),
                "p99_us": h.value_at_quantile(0.99),
                "p99_9_us": h.value_at_quantile(0.999),
                "max_us": h.max(),
                "mean_us": h.mean(),
                "stdev_us": h.stdev(),
            })
        } else {
            json!({ "count": 0 })
        };
        latency.insert(name.clone(), stats);
    }
    let errors: Map<String, Value> = ErrorKind::ALL
        .iter()
        .map(|k| (k.as_str().to_string(), json!(t.errors[k.index()])))
        .collect();
    let closes: Map<String, Value> = t
        .closes
        .iter()
        .map(|(code, n)| (code.to_string(), json!(n)))
        .collect();
    let expects: Map<String, Value> = metric_names
        .iter()
        .skip(1)
        .zip(&t.expects)
        .map(|(name, e)| {
            (
                name.to_string(),
                json!({
                    "sent": e.sent,
                    "expected": e.expected(),
                    "received": e.received,
                    "lost": e.lost,
                    "late": e.late,
                    "duplicate": e.duplicate,
                    "reorder": e.reorder,
                    "gap": e.gap,
                    "refilled": e.refilled,
                    "lost_rate": rate(e.lost, e.expected()),
                    "late_rate": rate(e.late, e.expected()),
                    "duplicate_rate": rate(e.duplicate, e.expected()),
                    "reorder_rate": rate(e.reorder, e.expected()),
                }),
            )
        })
        .collect();
    let summary = json!({
        "latency": latency,
        "counters": {
            "sent": t.sent,
            "received": t.received,
            "connects": t.connects,
            "connect_failures": t.connect_failures,
            "errors": t.error_total(),
            "reconnects": t.reconnects,
            "reconnects_recovered": t.recovered,
            "acks_sent": t.acks_sent,
            "acks_lost": t.acks_lost,
        },
        "errors_by_kind": errors,
        "closes_by_code": closes,
        "expects": expects,
    });
    match summary {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
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

fn host() -> Value {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into our buffer.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let hostname = if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    json!({
        "hostname": hostname,
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    })
}

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
