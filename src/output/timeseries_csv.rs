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

/// The counter columns of a row, in file order after the gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecondCounts {
    pub sent: u64,
    pub received: u64,
    pub errors: u64,
    pub closes: u64,
    pub reconnects: u64,
    pub gap: u64,
    pub duplicate: u64,
}

/// The counter columns' names, in file order.
pub const COUNT_COLUMNS: [&str; 7] = [
    "sent",
    "received",
    "errors",
    "closes",
    "reconnects",
    "gap",
    "duplicate",
];

impl SecondCounts {
    pub fn of(i: &Interval) -> SecondCounts {
        SecondCounts {
            sent: i.sent,
            received: i.received,
            errors: i.error_total(),
            closes: i.close_total(),
            reconnects: i.reconnects,
            gap: i.expects.iter().map(|e| e.gap).sum(),
            duplicate: i.expects.iter().map(|e| e.duplicate).sum(),
        }
    }

    /// The counters in [`COUNT_COLUMNS`] order, to fill or add by column.
    pub fn fields_mut(&mut self) -> [&mut u64; 7] {
        [
            &mut self.sent,
            &mut self.received,
            &mut self.errors,
            &mut self.closes,
            &mut self.reconnects,
            &mut self.gap,
            &mut self.duplicate,
        ]
    }
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
        let counts = SecondCounts::of(&row.interval);
        self.write_counts(row, &counts)
    }

    /// Appends a row whose counters are given apart from its interval (merged shards know their
    /// counters from timeseries.csv, their latencies from latency.hlog); only the interval's
    /// histograms are read.
    pub fn write_counts(&mut self, row: &SecondRow, c: &SecondCounts) -> Result<(), ExportError> {
        let mut record = vec![
            row.second.to_string(),
            row.epoch_ms.to_string(),
            row.connected.to_string(),
            row.connecting.to_string(),
            c.sent.to_string(),
            c.received.to_string(),
            c.errors.to_string(),
            c.closes.to_string(),
            c.reconnects.to_string(),
            c.gap.to_string(),
            c.duplicate.to_string(),
        ];
        for h in &row.interval.histograms {
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
