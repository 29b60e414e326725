//! Reading a results folder back: what `volley report` draws, and what commands that compare or
//! merge runs start from. Each file loads on its own: a missing or bad file is that part's
//! [`FileError`], never a panic, and the other parts still load, so a folder written by an older
//! volley (no latency.hlog) or cut short still reads.

use std::path::{Path, PathBuf};

use super::errors_csv::{self, ErrorEvent};
use super::gaps_csv::{self, GapEvent};
use super::layout::{
    CHECKPOINT_JSON, ERRORS_CSV, GAPS_CSV, LATENCY_HLOG, RUN_JSON, TIMESERIES_CSV,
};
use super::{IntervalLog, RunJson, Timeseries, hgrm, layout};

/// The files of a results folder, each loaded or with the reason it could not be.
#[derive(Debug)]
pub struct RunFolder {
    pub dir: PathBuf,
    /// run.json; for a run that never wrote it (killed, or still going), its checkpoint.json,
    /// whose status is `running`.
    pub run: Result<RunJson, FileError>,
    pub latency: Result<IntervalLog, FileError>,
    pub timeseries: Result<Timeseries, FileError>,
    pub gaps: Result<Vec<GapEvent>, FileError>,
    pub errors: Result<Vec<ErrorEvent>, FileError>,
}

/// Why one file of a results folder could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{} is missing", path.display())]
    Missing { path: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {detail}", path.display())]
    Malformed { path: PathBuf, detail: String },
}

impl FileError {
    pub fn is_missing(&self) -> bool {
        matches!(self, FileError::Missing { .. })
    }

    pub(crate) fn malformed(path: &Path, detail: impl Into<String>) -> FileError {
        FileError::Malformed {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }
}

/// Why a folder cannot be read as results at all.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("{} is not a folder: give the results folder of a run (results/<name>-<time>)", .0.display())]
    NotAFolder(PathBuf),
    #[error(
        "{} holds no run results (no run.json, timeseries.csv or latency.hlog): give the results folder of a run (results/<name>-<time>)",
        .0.display()
    )]
    NoResults(PathBuf),
}

/// Loads every file of the results folder `dir`.
pub fn load(dir: &Path) -> Result<RunFolder, ResultsError> {
    if !dir.is_dir() {
        return Err(ResultsError::NotAFolder(dir.to_path_buf()));
    }
    if ![RUN_JSON, CHECKPOINT_JSON, TIMESERIES_CSV, LATENCY_HLOG]
        .iter()
        .any(|f| dir.join(f).exists())
    {
        return Err(ResultsError::NoResults(dir.to_path_buf()));
    }
    Ok(RunFolder {
        dir: dir.to_path_buf(),
        run: read_run(dir),
        latency: read(dir, LATENCY_HLOG).and_then(|(p, b)| IntervalLog::parse(&p, &b)),
        timeseries: read(dir, TIMESERIES_CSV).and_then(|(p, b)| Timeseries::parse(&p, &b)),
        gaps: read(dir, GAPS_CSV).and_then(|(p, b)| gaps_csv::parse_gaps(&p, &b)),
        errors: read(dir, ERRORS_CSV).and_then(|(p, b)| errors_csv::parse_errors(&p, &b)),
    })
}

/// run.json, else checkpoint.json; missing is run.json's absence.
fn read_run(dir: &Path) -> Result<RunJson, FileError> {
    let parse = |(p, b): (PathBuf, Vec<u8>)| RunJson::parse(&p, &b);
    match read(dir, RUN_JSON) {
        Err(missing) if missing.is_missing() => match read(dir, CHECKPOINT_JSON) {
            Err(e) if e.is_missing() => Err(missing),
            checkpoint => checkpoint.and_then(parse),
        },
        run => run.and_then(parse),
    }
}

impl RunFolder {
    /// Files that exist but could not be read or parsed (missing ones are not problems).
    pub fn problems(&self) -> Vec<&FileError> {
        [
            self.run.as_ref().err(),
            self.latency.as_ref().err(),
            self.timeseries.as_ref().err(),
            self.gaps.as_ref().err(),
            self.errors.as_ref().err(),
        ]
        .into_iter()
        .flatten()
        .filter(|e| !e.is_missing())
        .collect()
    }

    /// The latency metrics, in the run's order: from run.json, else the interval log, else the
    /// timeseries columns (`<metric>_count`).
    pub fn metric_names(&self) -> Vec<String> {
        if let Ok(run) = &self.run {
            let names = run.metric_names();
            if !names.is_empty() {
                return names;
            }
        }
        if let Ok(log) = &self.latency {
            return log.metrics.iter().map(|m| m.name.clone()).collect();
        }
        if let Ok(ts) = &self.timeseries {
            return ts
                .columns
                .iter()
                .filter_map(|c| c.strip_suffix("_count"))
                .map(String::from)
                .collect();
        }
        Vec::new()
    }

    /// `<metric>.hgrm`, the run's total percentile distribution of one metric.
    pub fn hgrm(&self, metric: &str) -> Result<hgrm::Distribution, FileError> {
        let (path, bytes) = read(&self.dir, &layout::hgrm(metric))?;
        hgrm::Distribution::parse(&path, &bytes)
    }
}

/// A file's bytes, or why not.
pub fn read(dir: &Path, name: &str) -> Result<(PathBuf, Vec<u8>), FileError> {
    let path = dir.join(name);
    match std::fs::read(&path) {
        Ok(bytes) => Ok((path, bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(FileError::Missing { path }),
        Err(source) => Err(FileError::Unreadable { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_without_results_is_refused_and_says_what_to_give() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("no run.json"), "{err}");
        let err = load(&dir.path().join("nope")).unwrap_err();
        assert!(err.to_string().contains("is not a folder"), "{err}");
    }

    #[test]
    fn missing_files_are_missing_and_bad_ones_are_problems_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("run.json"), "{ not json").unwrap();
        std::fs::write(
            dir.path().join("errors.csv"),
            "time_s,client,group,kind,detail\n",
        )
        .unwrap();
        let folder = load(dir.path()).unwrap();
        assert!(folder.latency.as_ref().unwrap_err().is_missing());
        assert!(folder.timeseries.as_ref().unwrap_err().is_missing());
        assert!(folder.errors.as_ref().unwrap().is_empty());
        let problems = folder.problems();
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].to_string().contains("run.json"),
            "{}",
            problems[0]
        );
    }
}
