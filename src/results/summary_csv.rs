//! summary.csv: one row per metric. Latency rows carry the distribution in microseconds; counter
//! rows carry a count and its rate, with the latency cells empty.

use super::{ExportError, Exporter, FinishedRun};
use crate::metrics::ErrorKind;

pub const HEADER: [&str; 13] = [
    "metric",
    "kind",
    "count",
    "per_second",
    "min_us",
    "p50_us",
    "p90_us",
    "p95_us",
    "p99_us",
    "p99_9_us",
    "max_us",
    "mean_us",
    "stdev_us",
];

pub struct SummaryCsv;

impl Exporter for SummaryCsv {
    fn file_name(&self) -> String {
        super::layout::SUMMARY_CSV.into()
    }

    fn serialize(&self, report: &FinishedRun) -> Result<Vec<u8>, ExportError> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(HEADER)?;
        for (name, h) in report.metric_names.iter().zip(&report.totals.histograms) {
            let count = h.len();
            let mut row = vec![
                name.clone(),
                "latency".into(),
                count.to_string(),
                format!("{:.3}", report.per_second(count)),
            ];
            if count > 0 {
                row.push(h.min().to_string());
                for q in [0.5, 0.9, 0.95, 0.99, 0.999] {
                    row.push(h.value_at_quantile(q).to_string());
                }
                row.push(h.max().to_string());
                row.push(format!("{:.1}", h.mean()));
                row.push(format!("{:.1}", h.stdev()));
            } else {
                row.extend(std::iter::repeat_n(String::new(), 9));
            }
            w.write_record(&row)?;
        }
        let t = &report.totals;
        let mut counters: Vec<(String, u64)> = vec![
            ("sent".into(), t.sent),
            ("received".into(), t.received),
            ("connects".into(), t.connects),
            ("connect_failures".into(), t.connect_failures),
            ("errors".into(), t.error_total()),
        ];
        if report.metric_names.iter().any(|m| m == "ack") {
            counters.push(("ack.sent".into(), t.acks_sent));
            counters.push(("ack.lost".into(), t.acks_lost));
            counters.push(("ack.retries".into(), t.ack_retries));
        }
        if report.metric_names.iter().any(|m| m == "reconnect") {
            counters.push(("reconnects".into(), t.reconnects));
            counters.push(("reconnects.recovered".into(), t.recovered));
        }
        if !report.failed_shards.is_empty() {
            counters.push(("shards.failed".into(), report.failed_shards.len() as u64));
        }
        for kind in ErrorKind::ALL {
            counters.push((format!("errors.{kind}"), t.errors[kind.index()]));
        }
        for (code, n) in &t.closes {
            counters.push((format!("closes.{code}"), *n));
        }
        for (name, e) in report.expects() {
            counters.push((format!("{name}.sent"), e.sent));
            counters.push((format!("{name}.received"), e.received));
            counters.push((format!("{name}.lost"), e.lost));
            counters.push((format!("{name}.late"), e.late));
            counters.push((format!("{name}.expected"), e.expected()));
            counters.push((format!("{name}.duplicate"), e.duplicate));
            counters.push((format!("{name}.reorder"), e.reorder));
            counters.push((format!("{name}.gap"), e.gap));
            counters.push((format!("{name}.refilled"), e.refilled));
        }
        if let Some(pushes) = report.prometheus {
            counters.push(("prometheus.pushed".into(), pushes.pushed));
            counters.push(("prometheus.dropped".into(), pushes.dropped));
        }
        for (name, count) in counters {
            let mut row = vec![
                name,
                "counter".into(),
                count.to_string(),
                format!("{:.3}", report.per_second(count)),
            ];
            row.extend(std::iter::repeat_n(String::new(), 9));
            w.write_record(&row)?;
        }
        Ok(w.into_inner()
            .map_err(|e| csv::Error::from(e.into_error()))?)
    }
}
