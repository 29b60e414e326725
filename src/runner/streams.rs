//! The result files written while the run goes, a second at a time as the collector releases it:
//! timeseries.csv, latency.hlog, errors.csv and gaps.csv; and at most once a second checkpoint.json,
//! the totals so far in run.json's shape, so that a run that dies leaves them. A write that fails
//! does not stop the run; the first failure is kept and reported when the run ends.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::metrics::{GapRow, Interval};
use crate::results::errors_csv::ErrorsWriter;
use crate::results::gaps_csv::GapsWriter;
use crate::results::latency_hlog::HlogWriter;
use crate::results::layout;
use crate::results::timeseries_csv::{SecondRow, TimeseriesWriter};
use crate::results::{ExportError, FinishedRun, write_checkpoint};
use crate::scenario::Plan;

type Out = BufWriter<File>;

pub struct StreamedFiles {
    dir: PathBuf,
    timeseries: TimeseriesWriter<Out>,
    errors: ErrorsWriter<Out>,
    gaps: GapsWriter<Out>,
    hlog: HlogWriter<Out>,
    checkpoint: Option<Checkpoint>,
    /// The first write that failed.
    pub failed: Option<ExportError>,
}

/// checkpoint.json: the run's record, whose totals are lent the coordinator's for each write.
struct Checkpoint {
    dir: PathBuf,
    record: FinishedRun,
    written: Option<Instant>,
}

/// Checkpoints are written at most this often.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

impl StreamedFiles {
    /// Creates the files in `dir`, with their headers; `t0_wall` is the run's time zero.
    pub fn create(dir: &Path, plan: &Plan, t0_wall: SystemTime) -> Result<Self, ExportError> {
        let metric_names = plan.metric_names();
        Ok(StreamedFiles {
            dir: dir.to_path_buf(),
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
            checkpoint: None,
            failed: None,
        })
    }

    /// Writes checkpoints from now on, of `record` (the run's facts, status `running`).
    pub fn checkpoint_from(&mut self, record: FinishedRun) {
        self.checkpoint = Some(Checkpoint {
            dir: self.dir.clone(),
            record,
            written: None,
        });
    }

    /// Writes checkpoint.json with `totals` (lent, and given back as they were), unless one was
    /// written less than a second ago. `started` clients, `cpu` spent, `elapsed` since time zero.
    pub fn checkpoint(
        &mut self,
        totals: &mut Interval,
        started: u64,
        cpu: Duration,
        elapsed: Duration,
    ) {
        let Some(c) = &mut self.checkpoint else {
            return;
        };
        if c.written.is_some_and(|at| at.elapsed() < CHECKPOINT_EVERY) {
            return;
        }
        c.written = Some(Instant::now());
        let (errors_dropped, gaps_dropped) = (self.errors.dropped, self.gaps.dropped);
        let record = &mut c.record;
        std::mem::swap(&mut record.totals, totals);
        record.clients_started = started;
        record.client_cpu = cpu;
        record.elapsed = elapsed;
        record.ended_at = SystemTime::now();
        record.error_rows_dropped = record.totals.error_rows_dropped + errors_dropped;
        record.gap_rows_dropped = record.totals.gap_rows_dropped + gaps_dropped;
        let result = write_checkpoint(&c.dir, record);
        std::mem::swap(&mut record.totals, totals);
        self.keep(result);
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
