//! Every file of a results folder, written and read back in one place each: the name in
//! [`layout`], the format in its own file (a writer and, where volley reads it again, a reader).
//!
//! - [`finished`]: the end-of-run data, [`FinishedRun`], that the files written at the end come
//!   from; [`export`]: the [`Exporter`]s that turn it into bytes, and [`write_final`];
//! - streamed while the run goes, row by row, so an interrupted run keeps what it saw:
//!   [`timeseries_csv`], [`gaps_csv`], [`errors_csv`], [`latency_hlog`];
//! - written at the end: [`summary_csv`], [`hgrm`], [`run_json`]; and [`printout`], the summary
//!   printed on stdout;
//! - read back: [`folder`] loads a whole folder, file by file, for report, compare and merge;
//!   [`csv_table`] is the CSV reading they share;
//! - [`markup`]: the one escaper of report.html and junit.xml.
//!
//! frames.jsonl is the record shape of [`crate::wire::record`]: written by the frame log's sink,
//! read back as lines by merge.

pub mod csv_table;
pub mod errors_csv;
pub mod export;
pub mod finished;
pub mod folder;
pub mod gaps_csv;
pub mod hgrm;
pub mod latency_hlog;
pub mod layout;
pub mod markup;
pub mod printout;
pub mod run_json;
pub mod summary_csv;
pub mod timeseries_csv;

pub use csv_table::TimedRows;
pub use errors_csv::ErrorEvent;
pub use export::{ExportError, Exporter, write_checkpoint, write_final};
pub use finished::{FailedShard, FinishedRun, FrameLogTotals, PushTotals, RunStatus};
pub use folder::{FileError, ResultsError, RunFolder, load, read};
pub use gaps_csv::GapEvent;
pub use latency_hlog::{IntervalLog, LoggedInterval, MetricLog};
pub use run_json::{RunJson, ThresholdVerdict};
pub use timeseries_csv::Timeseries;
