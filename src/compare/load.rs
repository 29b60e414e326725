//! The runs to compare, read from their results folders: each folder's run.json (checked to be a
//! run's figures of this schema version) and, when there is one, its latency.hlog for the full
//! histograms; and the warnings about runs that should not be compared.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::ComparedRun;
use super::allowance::AllowanceError;
use crate::gate::figures::Figures;
use crate::results::RunStatus;
use crate::results::run_json::{self, RunJson};

/// Why a comparison could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("{0}: no such file or folder")]
    NotFound(PathBuf),
    #[error("{path}: not found: is {dir} a results folder written by `volley run`?")]
    NoRunJson { path: PathBuf, dir: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a volley run.json: {why}")]
    BadRunJson { path: PathBuf, why: String },
    #[error(transparent)]
    Allowance(#[from] AllowanceError),
    #[error(transparent)]
    Write(std::io::Error),
}

impl CompareError {
    /// Bad arguments (exit 2) rather than an I/O failure (exit 1).
    pub fn is_usage(&self) -> bool {
        !matches!(self, CompareError::Read { .. } | CompareError::Write(_))
    }
}

/// One result folder, read.
struct LoadedRun {
    run: ComparedRun,
    scenario: String,
    /// `completed`, `interrupted` (Ctrl-C) or `aborted` (by a threshold).
    status: Option<RunStatus>,
    /// Why the folder's latency.hlog could not give the full histograms, when it could not.
    hlog_problem: Option<String>,
}

/// The base and new runs, read, and the warnings about comparing them.
pub struct LoadedRuns {
    pub base: Vec<ComparedRun>,
    pub new: Vec<ComparedRun>,
    /// `volley compare: "chat"`, or `"a" vs "b"` when the scenarios differ.
    pub title: String,
    /// Runs of different scenarios, runs that stopped early, logs that could not be read.
    pub warnings: Vec<String>,
}

/// Reads the run.json (and latency.hlog, when there is one) of every folder.
pub fn load_runs(base: &[PathBuf], new: &[PathBuf]) -> Result<LoadedRuns, CompareError> {
    let base = load_all(base)?;
    let new = load_all(new)?;
    let runs = |loaded: &[LoadedRun]| -> Vec<ComparedRun> {
        loaded.iter().map(|l| l.run.clone()).collect()
    };
    Ok(LoadedRuns {
        warnings: warnings(&base, &new),
        title: title(&base, &new),
        base: runs(&base),
        new: runs(&new),
    })
}

fn load_all(dirs: &[PathBuf]) -> Result<Vec<LoadedRun>, CompareError> {
    dirs.iter().map(|dir| load(dir)).collect()
}

/// Reads `DIR/run.json` (or a run.json given as such); of a run that died before writing it, its
/// checkpoint.json.
fn load(dir: &Path) -> Result<LoadedRun, CompareError> {
    use crate::results::layout::{CHECKPOINT_JSON, RUN_JSON};
    let path = if dir.is_file() {
        dir.to_path_buf()
    } else if dir.is_dir() {
        match (dir.join(RUN_JSON), dir.join(CHECKPOINT_JSON)) {
            (run, checkpoint) if !run.exists() && checkpoint.exists() => checkpoint,
            (run, _) => run,
        }
    } else {
        return Err(CompareError::NotFound(dir.to_path_buf()));
    };
    let bytes = std::fs::read(&path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => CompareError::NoRunJson {
            path: path.clone(),
            dir: dir.to_path_buf(),
        },
        _ => CompareError::Read {
            path: path.clone(),
            source,
        },
    })?;
    let bad = |why: String| CompareError::BadRunJson {
        path: path.clone(),
        why,
    };
    run_json::check_comparable(&bytes).map_err(bad)?;
    let run: RunJson = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    let mut figures = Figures::from_run(&run);
    let hlog_problem = path.parent().and_then(|folder| {
        full_histograms(
            &folder.join(crate::results::layout::LATENCY_HLOG),
            &mut figures,
        )
    });
    Ok(LoadedRun {
        run: ComparedRun {
            label: dir.display().to_string(),
            figures,
        },
        scenario: run.scenario.name.unwrap_or_default(),
        status: run.status,
        hlog_problem,
    })
}

/// Gives the run's latency metrics their full histograms from the folder's latency.hlog, so that
/// any percentile compares, not only the ones run.json holds. No log (a run.json alone, or an
/// older folder) is no problem; a log that cannot be read is, said as a warning.
fn full_histograms(hlog: &Path, figures: &mut Figures) -> Option<String> {
    let bytes = match std::fs::read(hlog) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(format!("cannot read {}: {e}", hlog.display())),
    };
    let log = match crate::results::IntervalLog::parse(hlog, &bytes) {
        Ok(log) => log,
        Err(e) => return Some(e.to_string()),
    };
    let known: Vec<String> = figures.latency_metrics().map(str::to_string).collect();
    for metric in log.metrics {
        if known.contains(&metric.name) {
            figures.set_histogram(&metric.name, metric.total);
        }
    }
    None
}

/// The scenario names of one side, each once, in order.
fn scenarios(runs: &[LoadedRun]) -> Vec<&str> {
    let mut seen = BTreeSet::new();
    runs.iter()
        .map(|r| r.scenario.as_str())
        .filter(|name| seen.insert(*name))
        .collect()
}

fn quoted(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    quoted.join(", ")
}

/// Runs of different scenarios, and runs that stopped early, make a comparison doubtful.
fn warnings(base: &[LoadedRun], new: &[LoadedRun]) -> Vec<String> {
    let mut warnings = Vec::new();
    let (b, n) = (scenarios(base), scenarios(new));
    let all: BTreeSet<&str> = b.iter().chain(&n).copied().collect();
    if all.len() > 1 {
        warnings.push(format!(
            "warning: the runs are of different scenarios: base {}, new {}",
            quoted(&b),
            quoted(&n)
        ));
    }
    for run in base.iter().chain(new) {
        if let Some(problem) = &run.hlog_problem {
            warnings.push(format!(
                "warning: {problem}: only the percentiles in {}'s run.json compare",
                run.run.label
            ));
        }
        if let Some(status) = run.status.filter(|s| s.is_partial()) {
            let what = match status {
                RunStatus::Running => "a run that did not finish (its checkpoint)",
                RunStatus::Failed => "a run with failed shards",
                RunStatus::Aborted => "an aborted run",
                _ => "an interrupted run",
            };
            warnings.push(format!(
                "warning: {} is of {what}: its figures cover only the part that ran",
                run.run.label,
            ));
        }
    }
    warnings
}

/// `volley compare: "chat"`, or `volley compare: "a" vs "b"` when the scenarios differ.
fn title(base: &[LoadedRun], new: &[LoadedRun]) -> String {
    let (b, n) = (scenarios(base), scenarios(new));
    if b == n {
        format!("volley compare: {}", quoted(&b))
    } else {
        format!("volley compare: {} vs {}", quoted(&b), quoted(&n))
    }
}
