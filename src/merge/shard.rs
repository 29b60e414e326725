//! Reading the shards' folders, finished or not. A finished shard has run.json. One that died
//! (killed, out of memory) has none: its checkpoint.json (the figures of its last whole second) takes
//! its place, and without one its record is made from what its per-second files count, the rest of
//! its facts taken from a shard that has them. The files of a shard that did not finish are read up
//! to their last whole line: a write cut by the kill is not the shard's data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::{MergeError, ShardFolder};
use crate::metrics::ErrorKind;
use crate::results::run_json::{Counters, ExpectFigures, LatencyStats, Settings, Summary};
use crate::results::{
    self, FileError, IntervalLog, ResultsError, RunJson, RunStatus, TimedRows, Timeseries,
    csv_table, layout,
};

/// A shard's record as found: run.json or checkpoint.json, or neither.
enum Record {
    Finished(RunJson),
    Checkpoint(RunJson),
    Missing,
}

/// A shard's folder read, before a shard without a record gets one.
struct Read {
    dir: PathBuf,
    record: Record,
    latency: IntervalLog,
    timeseries: Timeseries,
    gaps: Option<TimedRows>,
    errors: Option<TimedRows>,
}

/// Reads every folder. `failures`: what the caller knows of shards that failed, by index.
pub(super) fn read_all(
    dirs: &[PathBuf],
    failures: &[(usize, String)],
) -> Result<Vec<ShardFolder>, MergeError> {
    let read = dirs
        .iter()
        .map(|d| read(d))
        .collect::<Result<Vec<_>, _>>()?;
    let template = read.iter().find_map(|r| match &r.record {
        Record::Finished(run) | Record::Checkpoint(run) => Some(run.clone()),
        Record::Missing => None,
    });
    read.into_iter()
        .enumerate()
        .map(|(index, r)| {
            let known = failures
                .iter()
                .find(|(i, _)| *i == index)
                .map(|(_, why)| why.as_str());
            shard(r, template.as_ref(), known)
        })
        .collect()
}

fn shard(
    r: Read,
    template: Option<&RunJson>,
    known: Option<&str>,
) -> Result<ShardFolder, MergeError> {
    let seconds = last_second(&r.timeseries);
    let (run, left) = match r.record {
        Record::Finished(run) => (run, None),
        Record::Checkpoint(run) => {
            let at = run.elapsed_s.unwrap_or(0.0);
            let left = format!(
                "it wrote no run.json: its counts are its checkpoint.json's at {at:.0} s, its \
                 per-second files go to {seconds} s"
            );
            (run, Some(left))
        }
        Record::Missing => {
            let Some(template) = template else {
                return Err(MergeError::File(FileError::Missing {
                    path: r.dir.join(layout::RUN_JSON),
                }));
            };
            let run = counted(template, &r, seconds);
            let left = format!(
                "it wrote neither run.json nor checkpoint.json: merged from its files up to \
                 {seconds} s (messages, reconnects and latencies from timeseries.csv and \
                 latency.hlog, errors by kind from errors.csv); its deliveries, closes and \
                 clients are not known"
            );
            (run, Some(left))
        }
    };
    let failure = match (known, left) {
        (Some(why), Some(left)) => Some(format!("{why}; {left}")),
        (Some(why), None) => Some(format!("{why}; its results are complete")),
        (None, left) => left,
    };
    let t0 = r
        .latency
        .start_time
        .or_else(|| ShardFolder::time(&run.started_at))
        .unwrap_or(UNIX_EPOCH);
    Ok(ShardFolder {
        dir: r.dir,
        run,
        latency: r.latency,
        timeseries: r.timeseries,
        gaps: r.gaps,
        errors: r.errors,
        t0,
        failure,
    })
}

fn read(dir: &Path) -> Result<Read, MergeError> {
    if !dir.is_dir() {
        return Err(ResultsError::NotAFolder(dir.to_path_buf()).into());
    }
    let record = match record(dir, layout::RUN_JSON)? {
        Some(run) if run.status != Some(RunStatus::Running) => Record::Finished(run),
        Some(run) => Record::Checkpoint(run),
        None => match record(dir, layout::CHECKPOINT_JSON)? {
            Some(run) => Record::Checkpoint(run),
            None => Record::Missing,
        },
    };
    let finished = matches!(record, Record::Finished(_));
    if !finished
        && ![layout::TIMESERIES_CSV, layout::LATENCY_HLOG]
            .iter()
            .any(|f| dir.join(f).exists())
    {
        return Err(ResultsError::NoResults(dir.to_path_buf()).into());
    }
    let file = |name: &str| -> Result<Option<(PathBuf, Vec<u8>)>, MergeError> {
        match results::read(dir, name) {
            Ok((path, bytes)) if finished => Ok(Some((path, bytes))),
            Ok((path, bytes)) => Ok(Some((path, whole_lines(bytes)))),
            Err(e) if e.is_missing() => Ok(None),
            Err(e) => Err(MergeError::File(e)),
        }
    };
    let needed = |name: &str| -> Result<(PathBuf, Vec<u8>), MergeError> {
        file(name)?.ok_or_else(|| {
            MergeError::File(FileError::Missing {
                path: dir.join(name),
            })
        })
    };
    let rows = |name: &str| -> Result<Option<TimedRows>, MergeError> {
        file(name)?
            .map(|(path, bytes)| csv_table::parse_timed_rows(&path, &bytes))
            .transpose()
            .map_err(MergeError::File)
    };
    let (path, bytes) = needed(layout::LATENCY_HLOG)?;
    let latency = IntervalLog::parse(&path, &bytes).map_err(MergeError::File)?;
    let (path, bytes) = needed(layout::TIMESERIES_CSV)?;
    let timeseries = Timeseries::parse(&path, &bytes).map_err(MergeError::File)?;
    Ok(Read {
        dir: dir.to_path_buf(),
        record,
        latency,
        timeseries,
        gaps: rows(layout::GAPS_CSV)?,
        errors: rows(layout::ERRORS_CSV)?,
    })
}

/// run.json or checkpoint.json, if there.
fn record(dir: &Path, name: &str) -> Result<Option<RunJson>, MergeError> {
    match results::read(dir, name) {
        Ok((path, bytes)) => RunJson::parse(&path, &bytes)
            .map(Some)
            .map_err(MergeError::File),
        Err(e) if e.is_missing() => Ok(None),
        Err(e) => Err(MergeError::File(e)),
    }
}

/// The bytes up to the end of their last whole line.
fn whole_lines(mut bytes: Vec<u8>) -> Vec<u8> {
    let end = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    bytes.truncate(end);
    bytes
}

/// The last second of a time series.
fn last_second(ts: &Timeseries) -> u64 {
    ts.column("second")
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .fold(0.0, f64::max) as u64
}

/// The record of a shard that left none, from its files: `template` (another shard's) gives the
/// run's facts and names; the counts are what the files hold.
fn counted(template: &RunJson, r: &Read, seconds: u64) -> RunJson {
    let sum = |column: &str| -> u64 {
        r.timeseries
            .column(column)
            .unwrap_or_default()
            .into_iter()
            .flatten()
            .map(|v| v as u64)
            .sum()
    };
    let mut errors_by_kind: BTreeMap<&str, u64> = BTreeMap::new();
    if let Some(errors) = &r.errors
        && let Some(kind) = errors.header.iter().position(|h| h == "kind")
    {
        for (_, row) in &errors.rows {
            if let Some(k) = row.get(kind) {
                *errors_by_kind.entry(k.as_str()).or_default() += 1;
            }
        }
    }
    let total = |name: &str| {
        r.latency
            .metrics
            .iter()
            .find(|m| m.name == name)
            .map_or(0, |m| m.total.len())
    };
    let latency = template
        .summary
        .latency
        .keys()
        .map(|name| {
            let count = total(name);
            let stats = LatencyStats {
                count,
                ..LatencyStats::default()
            };
            (name.clone(), stats)
        })
        .collect();
    let errors_by_kind = ErrorKind::ALL
        .iter()
        .map(|k| {
            let n = errors_by_kind.get(k.as_str()).copied().unwrap_or(0);
            (k.as_str().to_string(), n)
        })
        .collect::<indexmap::IndexMap<_, _>>();
    RunJson {
        status: Some(RunStatus::Running),
        host: None,
        started_at: r
            .latency
            .start_time
            .map(|t| humantime::format_rfc3339_millis(t).to_string()),
        ended_at: None,
        elapsed_s: Some(seconds as f64),
        settings: Settings {
            target_url: template.settings.target_url.clone(),
            seed: template.settings.seed,
            ..Settings::default()
        },
        summary: Summary {
            latency,
            counters: Counters {
                sent: sum("sent"),
                received: sum("received"),
                connects: total("connect"),
                errors: errors_by_kind.values().sum(),
                reconnects: sum("reconnects"),
                ..Counters::default()
            },
            errors_by_kind,
            expects: template
                .summary
                .expects
                .keys()
                .map(|name| (name.clone(), ExpectFigures::default()))
                .collect(),
            ..Summary::default()
        },
        ..template.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_cut_by_the_kill_is_left_out() {
        assert_eq!(whole_lines(b"a,b\n1,2\n3,".to_vec()), b"a,b\n1,2\n");
        assert_eq!(whole_lines(b"a,b\n1,2\n".to_vec()), b"a,b\n1,2\n");
        assert_eq!(whole_lines(b"a,b".to_vec()), b"");
    }

    #[test]
    fn the_last_second_is_the_largest() {
        let ts = Timeseries::parse(Path::new("t.csv"), b"second,sent\n1,5\n2,7\n").unwrap();
        assert_eq!(last_second(&ts), 2);
    }
}
