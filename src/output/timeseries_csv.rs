//! timeseries.csv, written one row per second while the run goes: gauges at the end of the second,
//! counts and latency percentiles (µs) of events within it.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use super::ExportError;
use crate::metrics::Interval;

/// One second of the run, all workers merged.
pub struct SecondRow {
    /// Seconds since the run's time zero, at the end of the interval.
    pub second: u64,
    pub epoch_ms: u128,
    pub connected: u64,
    pub connecting: u64,
    pub interval: Interval,
}

pub struct TimeseriesWriter<W: std::io::Write> {
    csv: csv::Writer<W>,
}

impl TimeseriesWriter<BufWriter<File>> {
    pub fn create(path: &Path, metrics: &[String]) -> Result<Self, ExportError> {
        TimeseriesWriter::new(super::create_file(path)?, metrics)
    }
}

impl<W: std::io::Write> TimeseriesWriter<W> {
    pub fn new(out: W, metrics: &[String]) -> Result<Self, ExportError> {
        let mut csv = csv::Writer::from_writer(out);
        let mut header: Vec<String> = [
            "second",
            "epoch_ms",
            "connected",
            "connecting",
            "sent",
            "received",
            "errors",
            "closes",
            "reconnects",
            "gap",
            "duplicate",
        ]
        .map(String::from)
        .to_vec();
        for m in metrics {
            header.push(format!("{m}_count"));
            header.push(format!("{m}_p50_us"));
            header.push(format!("{m}_p99_us"));
        }
        csv.write_record(&header)?;
        csv.flush().map_err(csv::Error::from)?;
        Ok(TimeseriesWriter { csv })
    }

    /// Appends one row and flushes, so the file is complete up to the last second seen.
    pub fn write(&mut self, row: &SecondRow) -> Result<(), ExportError> {
        let i = &row.interval;
        let mut record = vec![
            row.second.to_string(),
            row.epoch_ms.to_string(),
            row.connected.to_string(),
            row.connecting.to_string(),
            i.sent.to_string(),
            i.received.to_string(),
            i.error_total().to_string(),
            i.close_total().to_string(),
            i.reconnects.to_string(),
            i.expects.iter().map(|e| e.gap).sum::<u64>().to_string(),
            i.expects
                .iter()
                .map(|e| e.duplicate)
                .sum::<u64>()
                .to_string(),
        ];
        for h in &i.histograms {
            record.push(h.len().to_string());
            if !h.is_empty() {
                record.push(h.value_at_quantile(0.5).to_string());
                record.push(h.value_at_quantile(0.99).to_string());
            } else {
                record.push(String::new());
                record.push(String::new());
            }
        }
        self.csv.write_record(&record)?;
        self.csv.flush().map_err(csv::Error::from)?;
        Ok(())
    }

    pub fn into_inner(self) -> Option<W> {
        self.csv.into_inner().ok()
    }
}
