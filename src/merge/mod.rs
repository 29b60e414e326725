//! `volley merge DIR... -o DIR`: one results folder from the folders of a run's shards, which
//! `volley report`, `volley compare` and the gate read like the folder of a single run.
//!
//! - latency.hlog: each shard's intervals are decoded and added per metric and per second of the
//!   merged run (seconds aligned by wall clock: each shard's StartTime is its time zero), so every
//!   merged histogram holds exactly the union of the shards' samples; the totals, the `.hgrm` files,
//!   summary.csv and the latency figures of run.json come from those merged histograms.
//! - timeseries.csv: rows aligned by `epoch_ms` (the wall-clock second), gauges and counters added.
//! - gaps.csv and errors.csv: every row of every shard, times moved to the merged time zero, in time
//!   order; frames.jsonl likewise, interleaved by time (frames.rs).
//! - run.json: counters summed, clients summed, status the worst, elapsed the span from the earliest
//!   time zero to the latest end, thresholds judged again on the merged figures.
//!
//! A shard that did not finish (killed, out of memory: no run.json) is merged from what it left
//! (shard.rs): its checkpoint.json's figures, or without one the counts its per-second files hold;
//! its files are read up to their last whole line. The merged run is then `failed`, and run.json's
//! `failed_shards` says which shard and why.

mod frames;
mod shard;
mod timeline;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::gate::figures::Figures;
use crate::gate::verdict;
use crate::metrics::{Interval, new_histogram};
use crate::results::run_json::Settings;
use crate::results::{
    self, ExportError, FailedShard, FileError, FinishedRun, FrameLogTotals, IntervalLog,
    PushTotals, RunJson, RunStatus, ThresholdVerdict, TimedRows, Timeseries, errors_csv, gaps_csv,
    layout,
};
use crate::runner::host;
use crate::scenario::threshold::{GateThreshold, Origin, Threshold, ThresholdError};
use timeline::Timeline;

/// Why shard folders could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{0}")]
    Results(#[from] results::ResultsError),
    #[error(
        "{0}\n  Every shard folder needs run.json, latency.hlog and timeseries.csv, as `volley run` writes them."
    )]
    File(FileError),
    #[error(
        "these folders are not shards of one run:\n  {}\n  Merge the folders of one run (shards started with the same --run-id), or pass --force to merge them anyway.",
        .0.join("\n  ")
    )]
    DifferentRuns(Vec<String>),
    #[error(
        "{} has the latency metrics [{}] but {} has [{}]: only shards of one scenario merge",
        first.display(), first_metrics.join(", "), other.display(), other_metrics.join(", ")
    )]
    DifferentMetrics {
        first: PathBuf,
        first_metrics: Vec<String>,
        other: PathBuf,
        other_metrics: Vec<String>,
    },
    #[error("{} is one of the folders to merge: write the merged folder elsewhere (-o)", .0.display())]
    OutputIsInput(PathBuf),
    #[error("{}: threshold `{expression}` does not parse: {detail}", path.display())]
    Threshold {
        path: PathBuf,
        expression: String,
        detail: String,
    },
    #[error("cannot create {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the merged results: {0}")]
    Output(#[from] ExportError),
}

impl MergeError {
    /// Errors of the folders given (bad usage, exit 2) rather than of writing (exit 1).
    pub fn is_usage(&self) -> bool {
        !matches!(self, MergeError::CreateDir { .. } | MergeError::Output(_))
    }
}

/// One shard's folder, read and checked.
struct ShardFolder {
    dir: PathBuf,
    run: RunJson,
    latency: IntervalLog,
    timeseries: Timeseries,
    gaps: Option<TimedRows>,
    errors: Option<TimedRows>,
    /// The shard's time zero (latency.hlog's StartTime).
    t0: SystemTime,
    /// Why the shard did not finish, and what of it is merged; `None` for a finished shard.
    failure: Option<String>,
}

impl ShardFolder {
    fn run_id(&self) -> &str {
        self.run.run_id.as_deref().unwrap_or("?")
    }

    /// A time run.json gives in RFC 3339.
    fn time(text: &Option<String>) -> Option<SystemTime> {
        humantime::parse_rfc3339_weak(text.as_deref()?).ok()
    }

    /// From its time zero to its end.
    fn elapsed(&self) -> Duration {
        Duration::try_from_secs_f64(self.run.elapsed_s.unwrap_or(0.0)).unwrap_or_default()
    }

    /// Where a file of this folder is, for messages.
    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Reads the folders and checks that they are shards of one run (unless `force`) of one scenario.
fn read_shards(
    dirs: &[PathBuf],
    out: &Path,
    options: &MergeOptions,
) -> Result<Vec<ShardFolder>, MergeError> {
    for dir in dirs {
        if same_path(dir, out) {
            return Err(MergeError::OutputIsInput(out.to_path_buf()));
        }
    }
    let shards = shard::read_all(dirs, &options.failures)?;
    let force = options.force;
    let first = &shards[0];
    if !force && shards.iter().any(|s| s.run_id() != first.run_id()) {
        return Err(MergeError::DifferentRuns(
            shards
                .iter()
                .map(|s| format!("{}: run {}", s.dir.display(), s.run_id()))
                .collect(),
        ));
    }
    let metric_names = first.run.metric_names();
    for s in &shards[1..] {
        if s.run.metric_names() != metric_names {
            return Err(MergeError::DifferentMetrics {
                first: first.dir.clone(),
                first_metrics: metric_names.clone(),
                other: s.dir.clone(),
                other_metrics: s.run.metric_names(),
            });
        }
    }
    Ok(shards)
}

/// The shards on the merged clock: time zero is the earliest shard's, and each shard's seconds
/// shift by its offset from it.
struct Clock {
    t0: SystemTime,
}

impl Clock {
    fn of(shards: &[ShardFolder]) -> Clock {
        Clock {
            t0: shards.iter().map(|s| s.t0).min().unwrap_or(UNIX_EPOCH),
        }
    }

    fn offset(&self, shard: &ShardFolder) -> Duration {
        shard.t0.duration_since(self.t0).unwrap_or_default()
    }
}

/// What `volley merge` made.
pub struct MergeOutcome {
    pub run: FinishedRun,
    pub dir: PathBuf,
}

/// How to merge.
#[derive(Debug, Default)]
pub struct MergeOptions {
    /// Merge folders of different runs.
    pub force: bool,
    /// What the caller knows of shards that failed, by their place in the folders given: how the
    /// process ended (`--processes` knows; `volley merge` sees only the files).
    pub failures: Vec<(usize, String)>,
}

/// Merges the shard folders `dirs` into `out`.
pub fn merge(
    dirs: &[PathBuf],
    out: &Path,
    options: &MergeOptions,
) -> Result<MergeOutcome, MergeError> {
    let shards = read_shards(dirs, out, options)?;
    let clock = Clock::of(&shards);
    let metric_names = shards[0].run.metric_names();
    let expects = shards[0].run.expect_names().len();
    let mut timeline = Timeline::new(clock.t0, metric_names.len(), expects);
    for s in &shards {
        add_to_timeline(&mut timeline, s, clock.offset(s), &metric_names)?;
    }
    let totals = merged_totals(&shards, &metric_names, expects)?;

    std::fs::create_dir_all(out).map_err(|source| MergeError::CreateDir {
        path: out.to_path_buf(),
        source,
    })?;
    timeline.write(out, &metric_names)?;
    let offset = |s: &ShardFolder| clock.offset(s);
    write_rows(
        out,
        layout::GAPS_CSV,
        &gaps_csv::HEADER,
        &shards,
        |s| s.gaps.as_ref(),
        offset,
    )?;
    write_rows(
        out,
        layout::ERRORS_CSV,
        &errors_csv::HEADER,
        &shards,
        |s| s.errors.as_ref(),
        offset,
    )?;
    let frame_logs: Vec<(PathBuf, Duration)> = shards
        .iter()
        .map(|s| (s.file(layout::FRAMES_JSONL), clock.offset(s)))
        .collect();
    let merged_frames = out.join(layout::FRAMES_JSONL);
    let frames_merged = frames::merge(&frame_logs, &merged_frames)?.is_some();

    let elapsed = shards
        .iter()
        .map(|s| clock.offset(s) + s.elapsed())
        .max()
        .unwrap_or_default();
    let thresholds = judge(&shards, &metric_names, &totals, elapsed)?;
    let frame_log = frame_log(&shards, frames_merged.then_some(&merged_frames));
    let run = FinishedRun {
        thresholds,
        frame_log,
        merged_from: shards.iter().map(|s| s.dir.display().to_string()).collect(),
        prometheus: pushes(&shards),
        failed_shards: failed_shards(&shards),
        ..finished_run(&shards, &clock, metric_names, totals, elapsed)
    };
    results::write_final(out, &run)?;
    Ok(MergeOutcome {
        run,
        dir: out.to_path_buf(),
    })
}

/// Adds a shard's timeseries.csv rows and latency.hlog intervals to the merged seconds.
fn add_to_timeline(
    timeline: &mut Timeline,
    s: &ShardFolder,
    offset: Duration,
    metric_names: &[String],
) -> Result<(), MergeError> {
    let malformed =
        |name: &str, detail: String| MergeError::File(FileError::malformed(&s.file(name), detail));
    timeline
        .add_timeseries(&s.timeseries)
        .map_err(|detail| malformed(layout::TIMESERIES_CSV, detail))?;
    for metric in &s.latency.metrics {
        let Some(index) = metric_names.iter().position(|m| *m == metric.name) else {
            continue;
        };
        for interval in &metric.intervals {
            let bad = |detail: String| malformed(layout::LATENCY_HLOG, detail);
            let histogram = interval.histogram().map_err(bad)?;
            timeline
                .add_interval(index, offset + interval.start, &histogram)
                .map_err(bad)?;
        }
    }
    Ok(())
}

/// The shards' counters summed, and each metric's histogram the sum of the shards' interval
/// histograms: lossless, sample for sample.
fn merged_totals(
    shards: &[ShardFolder],
    metric_names: &[String],
    expects: usize,
) -> Result<Interval, MergeError> {
    let mut totals = Interval::new(metric_names.len(), expects);
    for s in shards {
        totals.merge(&mut s.run.summary.counters(metric_names));
    }
    totals.histograms = (0..metric_names.len()).map(|_| new_histogram()).collect();
    for s in shards {
        for metric in &s.latency.metrics {
            if let Some(index) = metric_names.iter().position(|m| *m == metric.name) {
                totals.histograms[index].add(&metric.total).map_err(|e| {
                    MergeError::File(FileError::malformed(
                        &s.file(layout::LATENCY_HLOG),
                        format!("`{}` does not fit volley's histograms: {e:?}", metric.name),
                    ))
                })?;
            }
        }
    }
    Ok(totals)
}

/// The shards' frame logs as one: the merged file when there is one, else where each shard's
/// log is (`--log-frames=FILE` writes elsewhere), with the records summed.
/// The shards' pushes added up, when any shard pushed.
fn pushes(shards: &[ShardFolder]) -> Option<PushTotals> {
    shards
        .iter()
        .filter_map(|s| s.run.summary.prometheus)
        .reduce(|a, b| PushTotals {
            pushed: a.pushed + b.pushed,
            dropped: a.dropped + b.dropped,
        })
}

fn frame_log(shards: &[ShardFolder], merged: Option<&PathBuf>) -> Option<FrameLogTotals> {
    let logs: Vec<&FrameLogTotals> = shards
        .iter()
        .filter_map(|s| s.run.summary.frame_log.as_ref())
        .collect();
    let first = logs.first()?;
    Some(FrameLogTotals {
        file: match merged {
            Some(file) => file.display().to_string(),
            None => logs
                .iter()
                .map(|f| f.file.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        },
        clients: first.clients.clone(),
        logged: logs.iter().map(|f| f.logged).sum(),
        dropped: logs.iter().map(|f| f.dropped).sum(),
    })
}

/// The merged run's facts: the first shard's scenario, seed and machine; clients and workers
/// summed; status the worst; times from the earliest start to the latest end.
fn finished_run(
    shards: &[ShardFolder],
    clock: &Clock,
    metric_names: Vec<String>,
    totals: Interval,
    elapsed: Duration,
) -> FinishedRun {
    let first = &shards[0].run;
    let sum = |field: fn(&Settings) -> Option<u64>| -> u64 {
        shards
            .iter()
            .map(|s| field(&s.run.settings).unwrap_or(0))
            .sum()
    };
    let client_cpu_s: f64 = shards
        .iter()
        .filter_map(|s| s.run.summary.client_cpu_s)
        .sum();
    FinishedRun {
        run_id: shards[0].run_id().to_string(),
        status: match shards.iter().any(|s| s.failure.is_some()) {
            true => RunStatus::Failed,
            false => shards
                .iter()
                .map(|s| s.run.status.unwrap_or(RunStatus::Completed))
                .max_by_key(|s| s.severity())
                .unwrap_or(RunStatus::Completed),
        },
        // Shards written without the machine's facts (by hand, or cut short) take this one's.
        host: shards
            .iter()
            .find_map(|s| s.run.host.clone())
            .unwrap_or_else(host::this_machine),
        scenario_name: first.scenario.name.clone().unwrap_or_default(),
        scenario_file: first.scenario.file.clone().unwrap_or_default(),
        scenario: first.scenario.resolved.clone().unwrap_or_default(),
        target_url: first.settings.target_url.clone().unwrap_or_default(),
        started_at: shards
            .iter()
            .filter_map(|s| ShardFolder::time(&s.run.started_at))
            .min()
            .unwrap_or(clock.t0),
        ended_at: shards
            .iter()
            .filter_map(|s| ShardFolder::time(&s.run.ended_at))
            .max()
            .unwrap_or(clock.t0 + elapsed),
        elapsed,
        seed: first.settings.seed.unwrap_or(0),
        workers: (sum(|s| s.workers) as usize).max(1),
        clients_planned: sum(|s| s.clients_planned),
        clients_started: sum(|s| s.clients_started),
        metric_names,
        error_rows_dropped: totals.error_rows_dropped,
        gap_rows_dropped: totals.gap_rows_dropped,
        client_cpu: Duration::try_from_secs_f64(client_cpu_s).unwrap_or_default(),
        totals,
        frame_log: None,
        thresholds: Vec::new(),
        shard: None,
        merged_from: Vec::new(),
        prometheus: None,
        failed_shards: Vec::new(),
    }
}

/// The shards that did not finish, as run.json lists them.
fn failed_shards(shards: &[ShardFolder]) -> Vec<FailedShard> {
    shards
        .iter()
        .filter_map(|s| {
            Some(FailedShard {
                shard: s
                    .run
                    .settings
                    .shard
                    .map(|k| format!("{}/{}", k.index, k.count)),
                folder: s.dir.display().to_string(),
                why: s.failure.clone()?,
            })
        })
        .collect()
}

/// The thresholds the shards were judged on (the first shard's list: scenario and command line),
/// judged again on the merged figures. A threshold that aborted any shard stays failed, at the
/// earliest abort.
fn judge(
    shards: &[ShardFolder],
    metric_names: &[String],
    totals: &Interval,
    elapsed: Duration,
) -> Result<Vec<ThresholdVerdict>, MergeError> {
    let first = &shards[0];
    let mut gates = Vec::new();
    let mut aborted = Vec::new();
    for v in &first.run.thresholds {
        let threshold: Threshold =
            v.expression
                .parse()
                .map_err(|e: ThresholdError| MergeError::Threshold {
                    path: first.file(layout::RUN_JSON),
                    expression: v.expression.clone(),
                    detail: e.to_string(),
                })?;
        gates.push(GateThreshold {
            threshold,
            origin: match v.source.as_deref() {
                Some("command line") => Origin::CommandLine,
                _ => Origin::Scenario,
            },
            abort: v.abort,
            abort_after: Duration::ZERO,
        });
        let earliest = shards
            .iter()
            .flat_map(|s| &s.run.thresholds)
            .filter(|o| o.expression == v.expression)
            .filter_map(|o| o.aborted_run_at_s)
            .fold(None, |min: Option<f64>, at| {
                Some(min.map_or(at, |m| m.min(at)))
            });
        aborted.push(earliest.and_then(|s| Duration::try_from_secs_f64(s).ok()));
    }
    let figures = Figures::from_totals(metric_names, totals, elapsed);
    Ok(verdict::judge(&gates, &figures, &aborted))
}

/// Writes every shard's rows of gaps.csv or errors.csv, times moved to the merged time zero, in
/// time order (a stable sort keeps each shard's order within a moment).
fn write_rows(
    out: &Path,
    name: &str,
    header: &[&str],
    shards: &[ShardFolder],
    rows_of: impl Fn(&ShardFolder) -> Option<&TimedRows>,
    offset: impl Fn(&ShardFolder) -> Duration,
) -> Result<(), MergeError> {
    let header: Vec<String> = shards
        .iter()
        .find_map(|s| rows_of(s).map(|r| r.header.clone()))
        .unwrap_or_else(|| header.iter().map(|h| h.to_string()).collect());
    let time_column = header.iter().position(|h| h == "time_s").unwrap_or(0);
    let mut rows: Vec<(f64, Vec<String>)> = Vec::new();
    for s in shards {
        let Some(table) = rows_of(s) else { continue };
        let shift = offset(s).as_secs_f64();
        for (at, row) in &table.rows {
            // Columns by name, so a shard written with another column order still lines up.
            let mut cells = vec![String::new(); header.len()];
            for (column, value) in table.header.iter().zip(row) {
                if let Some(i) = header.iter().position(|h| h == column) {
                    cells[i] = value.clone();
                }
            }
            cells[time_column] = format!("{:.3}", at + shift);
            rows.push((at + shift, cells));
        }
    }
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let path = out.join(name);
    let write = || -> Result<(), csv::Error> {
        let mut csv = csv::Writer::from_path(&path)?;
        csv.write_record(&header)?;
        for (_, row) in &rows {
            csv.write_record(row)?;
        }
        csv.flush()?;
        Ok(())
    };
    write().map_err(|e| ExportError::Csv(e).into())
}

fn same_path(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests;
