//! Result files. Files written once at the end implement [`Exporter`]: they turn a [`Report`] into
//! bytes and do no I/O, so they are tested as plain functions and written by one place. The time
//! series, the latency interval log and the error and gap lists are streamed row by row while the
//! run goes, so an interrupted run keeps what it saw.

pub mod errors_csv;
pub mod gaps_csv;
pub mod hgrm;
pub mod hlog;
pub mod run_json;
pub mod summary_csv;
pub mod table;
pub mod timeseries_csv;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::metrics::Interval;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Ran its full schedule.
    Completed,
    /// Stopped early by Ctrl-C or SIGTERM; results cover what was seen.
    Interrupted,
    /// Stopped early by a threshold marked `abort` that could no longer pass.
    Aborted,
}

/// Everything known at the end of a run.
#[derive(Debug, Clone)]
pub struct Report {
    pub run_id: String,
    pub status: RunStatus,
    pub scenario_name: String,
    pub scenario_file: String,
    /// The scenario after command-line overrides, as JSON.
    pub scenario: serde_json::Value,
    /// The URL of the first group (each group may have its own path).
    pub target_url: String,
    pub started_at: SystemTime,
    pub ended_at: SystemTime,
    /// From the run's time zero to the end of the last close.
    pub elapsed: Duration,
    pub seed: u64,
    pub workers: usize,
    pub clients_planned: u64,
    pub clients_started: u64,
    /// `connect`, then one per expect.
    pub metric_names: Vec<String>,
    /// All intervals merged (the error rows have gone to errors.csv).
    pub totals: Interval,
    /// CPU time of the client worker threads (not the in-process builtin server's).
    pub client_cpu: Duration,
    /// Errors counted but not listed in errors.csv.
    pub error_rows_dropped: u64,
    /// Delivery problems counted but not listed in gaps.csv.
    pub gap_rows_dropped: u64,
    /// With `--log-frames`: what the frame log holds.
    pub frame_log: Option<FrameLogTotals>,
    /// The CI gate's verdicts, one per threshold, in the order written.
    pub thresholds: Vec<crate::gate::verdict::Verdict>,
    /// `--shard K/N`: (K, N) when this run was one shard of a larger one.
    pub shard: Option<(u32, u32)>,
    /// `volley merge`: the shard folders this folder was merged from (empty for a run).
    pub merged_from: Vec<String>,
}

/// The frame log of a run: where, whose, and how many records it holds and lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameLogTotals {
    pub file: String,
    /// The `--log-clients` spec.
    pub clients: String,
    /// Records written to the file.
    pub logged: u64,
    /// Records dropped because the writer was behind.
    pub dropped: u64,
}

impl Report {
    /// Per-second rate of a count over the run's elapsed time.
    pub fn per_second(&self, count: u64) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { count as f64 / secs } else { 0.0 }
    }

    /// The expect names with their counters.
    pub fn expects(&self) -> impl Iterator<Item = (&str, &crate::metrics::ExpectCounts)> {
        self.metric_names[1..]
            .iter()
            .map(String::as_str)
            .zip(&self.totals.expects)
    }

    /// Client CPU per tracked round trip (sent and received and recorded), when there were any.
    pub fn cpu_per_echo(&self) -> Option<Duration> {
        let echoes: u64 = self.totals.expects.iter().map(|e| e.received).sum();
        (echoes > 0).then(|| self.client_cpu / echoes.min(u32::MAX as u64) as u32)
    }
}

/// A result file produced from the report as a whole.
pub trait Exporter {
    fn file_name(&self) -> String;
    fn serialize(&self, report: &Report) -> Result<Vec<u8>, ExportError>;
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("latency.hlog (HdrHistogram interval log): {0}")]
    Hlog(String),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Writes summary.csv, one .hgrm per latency metric and run.json into `dir`.
pub fn write_final(dir: &Path, report: &Report) -> Result<Vec<PathBuf>, ExportError> {
    let mut exporters: Vec<Box<dyn Exporter>> = vec![Box::new(summary_csv::SummaryCsv)];
    for (metric, name) in report.metric_names.iter().enumerate() {
        exporters.push(Box::new(hgrm::Hgrm {
            metric,
            name: name.clone(),
        }));
    }
    exporters.push(Box::new(run_json::RunJson));
    let mut written = Vec::new();
    for exporter in exporters {
        let path = dir.join(exporter.file_name());
        let bytes = exporter.serialize(report)?;
        std::fs::write(&path, bytes).map_err(|source| ExportError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// `results/<name>-<UTC time>`, with the name made safe for a file system.
pub fn default_dir(base: &Path, name: &str, started: SystemTime) -> PathBuf {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let stamp = humantime::format_rfc3339_seconds(started)
        .to_string()
        .replace(['-', ':'], "");
    base.join(format!("{}-{stamp}", safe.trim_matches('-')))
}

/// Creates a result file for streaming writes.
pub(crate) fn create_file(path: &Path) -> Result<std::io::BufWriter<std::fs::File>, ExportError> {
    std::fs::File::create(path)
        .map(std::io::BufWriter::new)
        .map_err(|source| ExportError::Write {
            path: path.to_path_buf(),
            source,
        })
}
