//! Files written once at the end implement [`Exporter`]: they turn a [`FinishedRun`] into bytes and
//! do no I/O, so they are tested as plain functions and written by one place, [`write_final`]. The
//! time series, the latency interval log and the error and gap lists are streamed row by row while
//! the run goes (their writers are in their own files), so an interrupted run keeps what it saw.

use std::path::{Path, PathBuf};

use super::FinishedRun;
use super::{hgrm, run_json, summary_csv};

/// A result file made from the finished run as a whole.
pub trait Exporter {
    fn file_name(&self) -> String;
    fn serialize(&self, run: &FinishedRun) -> Result<Vec<u8>, ExportError>;
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
pub fn write_final(dir: &Path, run: &FinishedRun) -> Result<Vec<PathBuf>, ExportError> {
    let mut exporters: Vec<Box<dyn Exporter>> = vec![Box::new(summary_csv::SummaryCsv)];
    for (metric, name) in run.metric_names.iter().enumerate() {
        exporters.push(Box::new(hgrm::Hgrm {
            metric,
            name: name.clone(),
        }));
    }
    // run.json last: its presence says the run's files are complete (the dashboard reads it so).
    exporters.push(Box::new(run_json::RunJsonExporter));
    let mut written = Vec::new();
    for exporter in exporters {
        let path = dir.join(exporter.file_name());
        write_whole(&path, &exporter.serialize(run)?)?;
        written.push(path);
    }
    // run.json holds all the checkpoint held, and more.
    match std::fs::remove_file(dir.join(super::layout::CHECKPOINT_JSON)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(ExportError::Write {
                path: dir.join(super::layout::CHECKPOINT_JSON),
                source: e,
            });
        }
        _ => {}
    }
    Ok(written)
}

/// Writes checkpoint.json into `dir`: run.json's shape for a run still going (its status
/// [`super::RunStatus::Running`]), so that a run that dies leaves its totals.
pub fn write_checkpoint(dir: &Path, run: &FinishedRun) -> Result<(), ExportError> {
    let bytes = run_json::RunJsonExporter.serialize(run)?;
    write_whole(&dir.join(super::layout::CHECKPOINT_JSON), &bytes)
}

/// Written aside and renamed into place: a reader sees the whole file or none.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let partial = path.with_file_name(format!(".{name}.partial"));
    std::fs::write(&partial, bytes)
        .and_then(|_| std::fs::rename(&partial, path))
        .map_err(|source| ExportError::Write {
            path: path.to_path_buf(),
            source,
        })
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
