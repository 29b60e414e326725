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

mod frames;
mod timeline;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::gate::figures::Figures;
use crate::gate::verdict;
use crate::metrics::{Interval, new_histogram};
use crate::results::layout::FRAMES_JSONL;
use crate::results::{
    self, ExportError, FileError, FinishedRun, FrameLogTotals, RunFolder, RunStatus, TimedRows,
};
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
    run: results::RunJson,
    latency: results::IntervalLog,
    timeseries: results::Timeseries,
    gaps: Option<TimedRows>,
    errors: Option<TimedRows>,
    /// The shard's time zero (latency.hlog's StartTime).
    t0: SystemTime,
}

fn required<T>(part: Result<T, FileError>) -> Result<T, MergeError> {
    part.map_err(MergeError::File)
}

/// gaps.csv or errors.csv: missing is empty (a run with none still writes the header, but an older
/// or cut-short folder may lack it), unreadable is an error.
fn timed_rows(dir: &Path, name: &str) -> Result<Option<TimedRows>, MergeError> {
    match results::read(dir, name) {
        Ok((path, bytes)) => {
            required(results::csv_table::parse_timed_rows(&path, &bytes)).map(Some)
        }
        Err(e) if e.is_missing() => Ok(None),
        Err(e) => Err(MergeError::File(e)),
    }
}

fn read_shard(dir: &Path) -> Result<ShardFolder, MergeError> {
    let RunFolder {
        dir,
        run,
        latency,
        timeseries,
        ..
    } = results::load(dir)?;
    let run = required(run)?;
    let latency = required(latency)?;
    let timeseries = required(timeseries)?;
    let t0 = latency
        .start_time
        .or_else(|| {
            let text = run.text("/started_at")?;
            humantime::parse_rfc3339_weak(text).ok()
        })
        .unwrap_or(UNIX_EPOCH);
    Ok(ShardFolder {
        gaps: timed_rows(&dir, results::layout::GAPS_CSV)?,
        errors: timed_rows(&dir, results::layout::ERRORS_CSV)?,
        dir,
        run,
        latency,
        timeseries,
        t0,
    })
}

/// What `volley merge` made.
pub struct MergeOutcome {
    pub report: FinishedRun,
    pub dir: PathBuf,
}

/// Merges the shard folders `dirs` into `out`. `force`: merge folders of different runs.
pub fn merge(dirs: &[PathBuf], out: &Path, force: bool) -> Result<MergeOutcome, MergeError> {
    for dir in dirs {
        if same_path(dir, out) {
            return Err(MergeError::OutputIsInput(out.to_path_buf()));
        }
    }
    let shards = dirs
        .iter()
        .map(|d| read_shard(d))
        .collect::<Result<Vec<_>, _>>()?;
    let first = &shards[0];
    let run_id = |s: &ShardFolder| s.run.text("/run_id").unwrap_or("?").to_string();
    if !force && shards.iter().any(|s| run_id(s) != run_id(first)) {
        return Err(MergeError::DifferentRuns(
            shards
                .iter()
                .map(|s| format!("{}: run {}", s.dir.display(), run_id(s)))
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
    let expect_names = first.run.expect_names();

    // The merged time zero is the earliest shard's; each shard's seconds shift by its offset.
    let t0 = shards.iter().map(|s| s.t0).min().unwrap_or(UNIX_EPOCH);
    let offset = |s: &ShardFolder| s.t0.duration_since(t0).unwrap_or_default();
    let mut timeline = Timeline::new(t0, metric_names.len(), expect_names.len());
    for s in &shards {
        timeline.add_timeseries(&s.timeseries).map_err(|detail| {
            MergeError::File(FileError::malformed(
                &s.dir.join(results::layout::TIMESERIES_CSV),
                detail,
            ))
        })?;
        for metric in &s.latency.metrics {
            let Some(index) = metric_names.iter().position(|m| *m == metric.name) else {
                continue;
            };
            for interval in &metric.intervals {
                let bad = |detail: String| {
                    MergeError::File(FileError::malformed(
                        &s.dir.join(results::layout::LATENCY_HLOG),
                        detail,
                    ))
                };
                let histogram = interval.histogram().map_err(bad)?;
                timeline
                    .add_interval(index, offset(s) + interval.start, &histogram)
                    .map_err(bad)?;
            }
        }
    }

    let mut totals = Interval::new(metric_names.len(), expect_names.len());
    for s in &shards {
        totals.merge(&mut s.run.counters(&metric_names));
    }
    // Lossless: each metric's total is the sum of the shards' interval histograms.
    totals.histograms = (0..metric_names.len()).map(|_| new_histogram()).collect();
    for s in &shards {
        for metric in &s.latency.metrics {
            if let Some(index) = metric_names.iter().position(|m| *m == metric.name) {
                totals.histograms[index].add(&metric.total).map_err(|e| {
                    MergeError::File(FileError::malformed(
                        &s.dir.join(results::layout::LATENCY_HLOG),
                        format!("`{}` does not fit volley's histograms: {e:?}", metric.name),
                    ))
                })?;
            }
        }
    }

    std::fs::create_dir_all(out).map_err(|source| MergeError::CreateDir {
        path: out.to_path_buf(),
        source,
    })?;
    timeline.write(out, &metric_names)?;
    write_rows(
        out,
        results::layout::GAPS_CSV,
        &crate::results::gaps_csv::HEADER,
        &shards,
        |s| s.gaps.as_ref(),
        offset,
    )?;
    write_rows(
        out,
        results::layout::ERRORS_CSV,
        &crate::results::errors_csv::HEADER,
        &shards,
        |s| s.errors.as_ref(),
        offset,
    )?;

    let frame_log_files: Vec<(PathBuf, Duration)> = shards
        .iter()
        .map(|s| (s.dir.join(FRAMES_JSONL), offset(s)))
        .collect();
    let merged_frames = out.join(FRAMES_JSONL);
    let frames_merged = frames::merge(&frame_log_files, &merged_frames)?.is_some();

    let number = |s: &ShardFolder, p: &str| s.run.at(p).and_then(|v| v.as_u64()).unwrap_or(0);
    let time = |s: &ShardFolder, p: &str| {
        s.run
            .text(p)
            .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
    };
    let elapsed = shards
        .iter()
        .map(|s| {
            let e = s
                .run
                .at("/elapsed_s")
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0);
            offset(s) + Duration::try_from_secs_f64(e).unwrap_or_default()
        })
        .max()
        .unwrap_or_default();
    let thresholds = judge(&shards, &metric_names, &totals, elapsed)?;
    let frame_logs: Vec<FrameLogTotals> = shards
        .iter()
        .filter_map(|s| {
            let f = s.run.at("/summary/frame_log")?;
            Some(FrameLogTotals {
                file: f["file"].as_str().unwrap_or("").to_string(),
                clients: f["clients"].as_str().unwrap_or("").to_string(),
                logged: f["logged"].as_u64().unwrap_or(0),
                dropped: f["dropped"].as_u64().unwrap_or(0),
            })
        })
        .collect();
    let frame_log = (!frame_logs.is_empty()).then(|| FrameLogTotals {
        // Logs written elsewhere (`--log-frames=FILE`) stay where they are.
        file: match frames_merged {
            true => merged_frames.display().to_string(),
            false => frame_logs
                .iter()
                .map(|f| f.file.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        },
        clients: frame_logs[0].clients.clone(),
        logged: frame_logs.iter().map(|f| f.logged).sum(),
        dropped: frame_logs.iter().map(|f| f.dropped).sum(),
    });
    let report = FinishedRun {
        run_id: run_id(first),
        status: shards
            .iter()
            .map(|s| status(s.run.text("/status")))
            .max_by_key(|s| severity(*s))
            .unwrap_or(RunStatus::Completed),
        scenario_name: first.run.text("/scenario/name").unwrap_or("").to_string(),
        scenario_file: first.run.text("/scenario/file").unwrap_or("").to_string(),
        scenario: first
            .run
            .at("/scenario/resolved")
            .cloned()
            .unwrap_or_default(),
        target_url: first
            .run
            .text("/settings/target_url")
            .unwrap_or("")
            .to_string(),
        started_at: shards
            .iter()
            .filter_map(|s| time(s, "/started_at"))
            .min()
            .unwrap_or(t0),
        ended_at: shards
            .iter()
            .filter_map(|s| time(s, "/ended_at"))
            .max()
            .unwrap_or(t0 + elapsed),
        elapsed,
        seed: number(first, "/settings/seed"),
        workers: shards
            .iter()
            .map(|s| number(s, "/settings/workers") as usize)
            .sum::<usize>()
            .max(1),
        clients_planned: shards
            .iter()
            .map(|s| number(s, "/settings/clients_planned"))
            .sum(),
        clients_started: shards
            .iter()
            .map(|s| number(s, "/settings/clients_started"))
            .sum(),
        metric_names,
        error_rows_dropped: totals.error_rows_dropped,
        gap_rows_dropped: totals.gap_rows_dropped,
        client_cpu: Duration::try_from_secs_f64(
            shards
                .iter()
                .filter_map(|s| s.run.at("/summary/client_cpu_s")?.as_f64())
                .sum(),
        )
        .unwrap_or_default(),
        totals,
        frame_log,
        thresholds,
        shard: None,
        merged_from: shards.iter().map(|s| s.dir.display().to_string()).collect(),
    };
    results::write_final(out, &report)?;
    Ok(MergeOutcome {
        report,
        dir: out.to_path_buf(),
    })
}

/// The thresholds the shards were judged on (the first shard's list: scenario and command line),
/// judged again on the merged figures. A threshold that aborted any shard stays failed, at the
/// earliest abort.
fn judge(
    shards: &[ShardFolder],
    metric_names: &[String],
    totals: &Interval,
    elapsed: Duration,
) -> Result<Vec<verdict::Verdict>, MergeError> {
    let first = &shards[0];
    let listed = first.run.thresholds().map_err(|detail| {
        MergeError::File(FileError::malformed(
            &first.dir.join(results::layout::RUN_JSON),
            detail,
        ))
    })?;
    let mut gates = Vec::new();
    let mut aborted = Vec::new();
    for v in &listed {
        let threshold: Threshold =
            v.expression
                .parse()
                .map_err(|e: ThresholdError| MergeError::Threshold {
                    path: first.dir.join(results::layout::RUN_JSON),
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
            .filter_map(|s| s.run.thresholds().ok())
            .flat_map(|list| {
                list.into_iter()
                    .filter(|o| o.expression == v.expression)
                    .filter_map(|o| o.aborted_run_at_s)
            })
            .fold(None, |min: Option<f64>, at| {
                Some(min.map_or(at, |m| m.min(at)))
            });
        aborted.push(earliest.and_then(|s| Duration::try_from_secs_f64(s).ok()));
    }
    let figures = Figures::from_totals(metric_names, totals, elapsed);
    Ok(verdict::judge(&gates, &figures, &aborted))
}

fn status(text: Option<&str>) -> RunStatus {
    match text {
        Some("aborted") => RunStatus::Aborted,
        Some("interrupted") => RunStatus::Interrupted,
        _ => RunStatus::Completed,
    }
}

/// Worse is higher: a run stopped by a threshold, then one interrupted, then a full one.
fn severity(status: RunStatus) -> u8 {
    match status {
        RunStatus::Completed => 0,
        RunStatus::Interrupted => 1,
        RunStatus::Aborted => 2,
    }
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
