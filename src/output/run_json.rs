//! run.json: the whole run for machines — scenario as resolved, settings, host, times and summary.
//! Its shape is fixed by `schema/run.schema.json` (tested), and versioned by `schema_version`.

use serde_json::{Map, Value, json};

use super::{ExportError, Exporter, Report};
use crate::metrics::{ErrorKind, Interval};

pub const SCHEMA_VERSION: u64 = 1;

pub struct RunJson;

impl Exporter for RunJson {
    fn file_name(&self) -> String {
        "run.json".into()
    }

    fn serialize(&self, report: &Report) -> Result<Vec<u8>, ExportError> {
        let mut bytes = serde_json::to_vec_pretty(&document(report))?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}

fn document(r: &Report) -> Value {
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
