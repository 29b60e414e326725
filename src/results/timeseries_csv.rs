//! timeseries.csv, written one row per second while the run goes: gauges at the end of the second,
//! counts and latency percentiles (µs) of events within it; and read back by column name.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use super::csv_table::Table;
use super::{ExportError, FileError};
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
        TimeseriesWriter::new(super::export::create_file(path)?, metrics)
    }
}

impl<W: std::io::Write> TimeseriesWriter<W> {
    pub fn new(out: W, metrics: &[String]) -> Result<Self, ExportError> {
        let mut csv = csv::Writer::from_writer(out);
        let mut header: Vec<String> = ["second", "epoch_ms", "connected", "connecting"]
            .into_iter()
            .chain(COUNT_COLUMNS)
            .map(String::from)
            .collect();
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

/// timeseries.csv: a number (or nothing) per column and row.
#[derive(Debug, Clone)]
pub struct Timeseries {
    pub columns: Vec<String>,
    rows: Vec<Vec<Option<f64>>>,
}

impl Timeseries {
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Timeseries, FileError> {
        let mut table = Table::new(path, bytes)?;
        table.require(&["second"])?;
        let columns = table.header.clone();
        let mut rows = Vec::new();
        while let Some(record) = table.next_record()? {
            let row = (0..columns.len())
                .map(|i| table.number(&record, i))
                .collect::<Result<Vec<_>, _>>()?;
            rows.push(row);
        }
        Ok(Timeseries { columns, rows })
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// A column's values by row, when the file has it.
    pub fn column(&self, name: &str) -> Option<Vec<Option<f64>>> {
        let i = self.columns.iter().position(|c| c == name)?;
        Some(self.rows.iter().map(|r| r[i]).collect())
    }

    /// `second`: the end of each row's second since the run's time zero.
    pub fn seconds(&self) -> Vec<f64> {
        self.column("second")
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.unwrap_or(0.0))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeseries_columns_by_name_with_empty_cells_as_none() {
        let csv = "second,epoch_ms,sent,echo_p50_us\n1,1000,5,120\n2,2000,7,\n";
        let ts = Timeseries::parse(Path::new("timeseries.csv"), csv.as_bytes()).unwrap();
        assert_eq!(ts.len(), 2);
        assert_eq!(ts.seconds(), [1.0, 2.0]);
        assert_eq!(ts.column("echo_p50_us").unwrap(), [Some(120.0), None]);
        assert!(ts.column("nope").is_none());
    }

    #[test]
    fn a_bad_cell_names_the_file_line_and_column() {
        let csv = "second,sent\n1,5\n2,lots\n";
        let err = Timeseries::parse(Path::new("r/timeseries.csv"), csv.as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "r/timeseries.csv: line 3: `sent` is `lots`, not a number"
        );
    }
}
