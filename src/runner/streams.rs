//! The result files written while the run goes, a second at a time as the collector releases it:
//! timeseries.csv, latency.hlog, errors.csv and gaps.csv. A write that fails does not stop the run;
//! the first failure is kept and reported when the run ends.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::time::SystemTime;

use crate::metrics::GapRow;
use crate::results::ExportError;
use crate::results::errors_csv::ErrorsWriter;
use crate::results::gaps_csv::GapsWriter;
use crate::results::latency_hlog::HlogWriter;
use crate::results::layout;
use crate::results::timeseries_csv::{SecondRow, TimeseriesWriter};
use crate::scenario::Plan;

type Out = BufWriter<File>;

pub struct StreamedFiles {
    timeseries: TimeseriesWriter<Out>,
    errors: ErrorsWriter<Out>,
    gaps: GapsWriter<Out>,
    hlog: HlogWriter<Out>,
    /// The first write that failed.
    pub failed: Option<ExportError>,
}

impl StreamedFiles {
    /// Creates the files in `dir`, with their headers; `t0_wall` is the run's time zero.
    pub fn create(dir: &Path, plan: &Plan, t0_wall: SystemTime) -> Result<Self, ExportError> {
        let metric_names = plan.metric_names();
        Ok(StreamedFiles {
            timeseries: TimeseriesWriter::create(&dir.join(layout::TIMESERIES_CSV), &metric_names)?,
            errors: ErrorsWriter::create(
                &dir.join(layout::ERRORS_CSV),
                plan.groups.iter().map(|g| g.name.clone()).collect(),
            )?,
            gaps: GapsWriter::create(
                &dir.join(layout::GAPS_CSV),
                plan.expects.iter().map(|e| e.name.clone()).collect(),
            )?,
            hlog: HlogWriter::create(&dir.join(layout::LATENCY_HLOG), &metric_names, t0_wall)?,
            failed: None,
        })
    }

    /// Writes one second: its error and gap rows, its timeseries row and its latency intervals.
    /// The rows are taken out of the interval, which is left to be added to the totals.
    pub fn write_second(&mut self, row: &mut SecondRow) {
        let result = self
            .errors
            .write(&row.interval.error_rows)
            .and_then(|_| self.gaps.write(&row.interval.gap_rows))
            .and_then(|_| self.timeseries.write(row))
            .and_then(|_| self.hlog.write(row));
        self.keep(result);
        row.interval.error_rows.clear();
        row.interval.gap_rows.clear();
    }

    /// Writes gap rows found at the end (what receivers never got).
    pub fn write_gaps(&mut self, rows: &[GapRow]) {
        let result = self.gaps.write(rows);
        self.keep(result);
    }

    /// Error rows and gap rows not written because their file is full.
    pub fn dropped(&self) -> (u64, u64) {
        (self.errors.dropped, self.gaps.dropped)
    }

    fn keep(&mut self, result: Result<(), ExportError>) {
        if let Err(e) = result {
            self.failed.get_or_insert(e);
        }
    }
}
