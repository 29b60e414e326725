//! `volley run --processes N`: the shards of one run as child processes of one command. Each child
//! is `volley run --shard K/N` with the run's id, seed and time zero, writing into `DIR/shards/K`
//! (its stdout and stderr into `DIR/shards/K.log`). The parent shows one live view, summed from the
//! files the children write once a second (timeseries.csv for the counts, latency.hlog for the
//! percentiles, merged sample for sample); it forwards Ctrl-C and SIGTERM to every child, and stops
//! the others when one fails (they drain, close and write their results). The caller merges the
//! folders, a failed shard's with what it left.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::progress::{Progress, Tick};
use crate::metrics::new_histogram;
use crate::results::latency_hlog::{IntervalLog, LoggedInterval};
use crate::results::layout::{self, shard_dir};
use crate::results::timeseries_csv::Timeseries;
use crate::telemetry::listen::nth_port;

/// The children of one run.
pub struct LocalShards {
    pub count: u32,
    /// The merged results folder; the shards write into `dir/shards/K`.
    pub dir: PathBuf,
    /// The volley executable.
    pub program: PathBuf,
    /// Arguments of every child after `run`; `--shard K/N` and `--out` are added per child.
    pub args: Vec<OsString>,
    pub quiet: bool,
    /// All clients of the run, for the progress bar.
    pub clients: u64,
    pub metric_names: Vec<String>,
    /// The index of the latency the progress line shows.
    pub main_metric: usize,
    /// `--metrics-listen`: shard K listens on this address's port + K.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessesError {
    #[error("cannot create {}: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start shard {index} ({}): {source}", program.display())]
    Spawn {
        index: u32,
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("shard {index}/{count} failed ({status}); the others were stopped. Its output ({}):\n{output}", log.display())]
    ShardFailed {
        index: u32,
        count: u32,
        status: String,
        /// The child's exit code, passed on as the command's.
        code: Option<i32>,
        log: PathBuf,
        output: String,
    },
}

/// How the children ended.
pub struct ShardsOutcome {
    /// Each shard's results folder, by shard number.
    pub dirs: Vec<PathBuf>,
    /// A stop signal reached them.
    pub interrupted: bool,
    /// The first shard that failed (it stopped the others).
    pub failed: Option<ShardFailure>,
}

/// A child that ended badly, not stopped by the parent.
#[derive(Debug)]
pub struct ShardFailure {
    pub index: u32,
    pub count: u32,
    /// How it ended: `killed by signal 9 (SIGKILL)`, `exited with status 1`.
    pub ended: String,
    /// Its exit code, if it exited.
    pub code: Option<i32>,
    /// Where its output is, and the last lines of it.
    pub log: PathBuf,
    pub output: String,
}

impl ShardFailure {
    /// What run.json's `failed_shards` says of it: how it ended and, when it exited, the last line
    /// it printed (its error).
    pub fn why(&self) -> String {
        let said = self
            .output
            .lines()
            .rev()
            .map(|l| l.trim_start_matches("  | ").trim())
            .find(|l| !l.is_empty());
        match (self.code, said) {
            (Some(_), Some(said)) => format!("{}: {said}", self.ended),
            _ => self.ended.clone(),
        }
    }
}

impl From<ShardFailure> for ProcessesError {
    fn from(f: ShardFailure) -> ProcessesError {
        ProcessesError::ShardFailed {
            index: f.index,
            count: f.count,
            status: f.ended,
            code: f.code,
            log: f.log,
            output: f.output,
        }
    }
}

/// `exited with status 1`, `killed by signal 9 (SIGKILL)`.
fn how_it_ended(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        // Display says `signal: 9 (SIGKILL)`, with the signal's name.
        (None, Some(_)) => format!(
            "killed by {}",
            status.to_string().replacen("signal: ", "signal ", 1)
        ),
        _ => status.to_string(),
    }
}

/// Starts the children and waits for all of them. Every message on `signals` is a Ctrl-C or
/// SIGTERM: the first is forwarded to every child (they drain, close and write their results), the
/// second too (they exit at once), and then the parent exits with 130.
pub async fn run(
    shards: &LocalShards,
    mut signals: mpsc::Receiver<()>,
) -> Result<ShardsOutcome, ProcessesError> {
    let shards_dir = shards.dir.join(layout::SHARDS);
    std::fs::create_dir_all(&shards_dir).map_err(|source| ProcessesError::Create {
        path: shards_dir.clone(),
        source,
    })?;
    let mut pids = Vec::new();
    let mut waits = JoinSet::new();
    let mut tails = Vec::new();
    for index in 0..shards.count {
        let mut child = spawn(shards, index).inspect_err(|_| stop_all(&pids, libc::SIGTERM))?;
        if let Some(pid) = child.id() {
            pids.push((index, pid));
        }
        waits.spawn(async move { (index, child.wait().await) });
        tails.push(ShardTail::new(&shard_dir(&shards.dir, index)));
    }

    let mut progress = Progress::new(
        shards.quiet,
        shards.clients,
        &shards.metric_names,
        shards.main_metric,
    );
    let main_name = shards.metric_names[progress.main_metric()].clone();
    let mut seconds = Seconds::new(shards.count, main_name);
    let mut every_second = tokio::time::interval(Duration::from_secs(1));
    every_second.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut running: Vec<(u32, u32)> = pids.clone();
    let mut signals_seen = 0;
    let mut failed: Option<ShardFailure> = None;
    loop {
        tokio::select! {
            done = waits.join_next() => {
                let Some(done) = done else { break };
                let Ok((index, status)) = done else { continue };
                running.retain(|(i, _)| *i != index);
                let (ok, code, ended) = match &status {
                    // 3: the shard's thresholds failed; judged again on the merged figures.
                    Ok(s) => (matches!(s.code(), Some(0 | 3)), s.code(), how_it_ended(s)),
                    Err(e) => (false, None, format!("cannot be waited for: {e}")),
                };
                if !ok && failed.is_none() && signals_seen == 0 {
                    stop_all(&running, libc::SIGTERM);
                    let log = layout::shard_log(&shards.dir, index);
                    failed = Some(ShardFailure {
                        index,
                        count: shards.count,
                        ended,
                        code,
                        output: last_lines(&log, 20),
                        log,
                    });
                }
            }
            signal = signals.recv(), if signals_seen < 2 => {
                if signal.is_none() {
                    signals_seen = 2;
                    continue;
                }
                signals_seen += 1;
                stop_all(&running, libc::SIGTERM);
                if signals_seen == 1 {
                    progress.note("stopping every shard: no new events; draining in-flight ones and closing (press Ctrl-C again to quit at once)");
                } else {
                    eprintln!("interrupted again: exiting without waiting for the drain");
                    std::process::exit(130);
                }
            }
            _ = every_second.tick() => {
                for tail in tails.iter_mut() {
                    tail.read(&mut seconds);
                }
                for tick in seconds.complete() {
                    progress.tick(&tick);
                }
            }
        }
    }
    drop(progress);
    Ok(ShardsOutcome {
        dirs: (0..shards.count)
            .map(|i| shard_dir(&shards.dir, i))
            .collect(),
        interrupted: signals_seen > 0,
        failed,
    })
}

/// Starts shard `index`: `volley run` with the run's arguments, `--shard K/N` and its folder,
/// writing what it prints into `shards/K.log`.
fn spawn(shards: &LocalShards, index: u32) -> Result<tokio::process::Child, ProcessesError> {
    let out = shard_dir(&shards.dir, index);
    let log_path = layout::shard_log(&shards.dir, index);
    let create = |source| ProcessesError::Create {
        path: log_path.clone(),
        source,
    };
    let log = std::fs::File::create(&log_path).map_err(create)?;
    let log_err = log.try_clone().map_err(create)?;
    let mut command = tokio::process::Command::new(&shards.program);
    command
        .arg("run")
        .args(&shards.args)
        .arg("--shard")
        .arg(format!("{index}/{}", shards.count))
        .arg("--out")
        .arg(&out);
    if let Some(base) = shards.metrics_listen {
        command
            .arg("--metrics-listen")
            .arg(nth_port(base, index).to_string());
    }
    command
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        // Their own process group: a terminal's Ctrl-C reaches the parent only, which forwards
        // it once (twice would make a child quit without writing its results).
        .process_group(0)
        .spawn()
        .map_err(|source| ProcessesError::Spawn {
            index,
            program: shards.program.clone(),
            source,
        })
}

fn stop_all(running: &[(u32, u32)], signal: i32) {
    for &(_, pid) in running {
        // SAFETY: kill only sends a signal to a process this command started and still waits for.
        unsafe {
            libc::kill(pid as i32, signal);
        }
    }
}

/// The last `n` lines of a child's output, for its error message.
fn last_lines(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(n);
    lines[from..]
        .iter()
        .map(|l| format!("  | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The seconds seen so far, summed over the shards, released when every shard wrote both its
/// timeseries row and its latency intervals for it.
struct Seconds {
    shards: u32,
    main_metric: String,
    pending: BTreeMap<u64, PendingSecond>,
}

struct PendingSecond {
    tick: Tick,
    histogram: Histogram<u64>,
    rows: u32,
    intervals: u32,
}

impl Seconds {
    fn new(shards: u32, main_metric: String) -> Seconds {
        Seconds {
            shards,
            main_metric,
            pending: BTreeMap::new(),
        }
    }

    fn at(&mut self, second: u64) -> &mut PendingSecond {
        self.pending.entry(second).or_insert_with(|| PendingSecond {
            tick: Tick {
                second,
                ..Tick::default()
            },
            histogram: new_histogram(),
            rows: 0,
            intervals: 0,
        })
    }

    fn complete(&mut self) -> Vec<Tick> {
        let mut ready = Vec::new();
        while let Some(entry) = self.pending.first_entry() {
            let p = entry.get();
            if p.rows < self.shards || p.intervals < self.shards {
                break;
            }
            let p = entry.remove();
            let h = &p.histogram;
            ready.push(Tick {
                latency: (!h.is_empty())
                    .then(|| (h.value_at_quantile(0.5), h.value_at_quantile(0.99))),
                ..p.tick
            });
        }
        ready
    }
}

/// What the parent has read of one child's files: the complete lines up to an offset. New lines
/// are read by the files' own readers, after the header lines kept from the first read.
struct ShardTail {
    timeseries: PathBuf,
    hlog: PathBuf,
    timeseries_at: u64,
    hlog_at: u64,
    /// timeseries.csv's header line.
    timeseries_header: Option<String>,
    /// latency.hlog's comments (StartTime, BaseTime) and legend.
    hlog_header: String,
}

impl ShardTail {
    fn new(dir: &Path) -> ShardTail {
        ShardTail {
            timeseries: dir.join(layout::TIMESERIES_CSV),
            hlog: dir.join(layout::LATENCY_HLOG),
            timeseries_at: 0,
            hlog_at: 0,
            timeseries_header: None,
            hlog_header: String::new(),
        }
    }

    /// Reads what the child appended since the last call into `seconds`. A file not there yet, or
    /// a line not finished, is read next time; what does not parse is skipped (the merge reads
    /// the files properly at the end).
    fn read(&mut self, seconds: &mut Seconds) {
        let columns = self.read_timeseries(seconds);
        // The first latency metric (`connect`) has an interval every second, as every metric:
        // the second is counted once, by it.
        let Some(first) = columns.iter().find_map(|c| c.strip_suffix("_count")) else {
            return;
        };
        let mut intervals = String::new();
        for line in new_lines(&self.hlog, &mut self.hlog_at) {
            let target = match line.starts_with(['#', '"']) {
                true => &mut self.hlog_header,
                false => &mut intervals,
            };
            target.push_str(&line);
            target.push('\n');
        }
        let text = format!("{}{intervals}", self.hlog_header);
        let Ok(log) = IntervalLog::parse(&self.hlog, text.as_bytes()) else {
            return;
        };
        let second = |i: &LoggedInterval| i.start.as_secs_f64().round() as u64 + 1;
        for interval in log.metric(first).map_or(&[][..], |m| &m.intervals) {
            seconds.at(second(interval)).intervals += 1;
        }
        let main = seconds.main_metric.clone();
        for interval in log.metric(&main).map_or(&[][..], |m| &m.intervals) {
            if let Ok(h) = interval.histogram() {
                let _ = seconds.at(second(interval)).histogram.add(&h);
            }
        }
    }

    /// Adds the new rows of timeseries.csv to `seconds`; returns its columns.
    fn read_timeseries(&mut self, seconds: &mut Seconds) -> Vec<String> {
        let mut lines = new_lines(&self.timeseries, &mut self.timeseries_at).into_iter();
        let Some(header) = self.timeseries_header.clone().or_else(|| lines.next()) else {
            return Vec::new();
        };
        self.timeseries_header = Some(header.clone());
        let text: String = std::iter::once(header)
            .chain(lines)
            .map(|l| l + "\n")
            .collect();
        let Ok(ts) = Timeseries::parse(&self.timeseries, text.as_bytes()) else {
            return Vec::new();
        };
        let column = |name: &str| -> Vec<u64> {
            ts.column(name).map_or_else(
                || vec![0; ts.len()],
                |c| c.into_iter().map(|v| v.unwrap_or(0.0) as u64).collect(),
            )
        };
        let (connected, sent, received) = (column("connected"), column("sent"), column("received"));
        let (errors, connects) = (column("errors"), column("connect_count"));
        for (row, second) in ts.seconds().into_iter().enumerate() {
            let p = seconds.at(second as u64);
            p.rows += 1;
            p.tick.connected += connected[row];
            p.tick.sent += sent[row];
            p.tick.received += received[row];
            p.tick.errors += errors[row];
            p.tick.attempted += connects[row];
        }
        ts.columns
    }
}

/// The complete lines appended to `path` since `offset`, which moves past them.
fn new_lines(path: &Path, offset: &mut u64) -> Vec<String> {
    let Ok(mut file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(*offset)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    let Some(end) = bytes.iter().rposition(|&b| b == b'\n') else {
        return Vec::new();
    };
    *offset += end as u64 + 1;
    String::from_utf8_lossy(&bytes[..end])
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Interval;
    use crate::results::latency_hlog::HlogWriter;
    use crate::results::timeseries_csv::{SecondRow, TimeseriesWriter};
    use std::time::UNIX_EPOCH;

    fn write_second(dir: &Path, seconds: &[(u64, u64, &[u64])]) {
        let names = ["connect".to_string(), "echo".to_string()];
        let mut ts = TimeseriesWriter::create(&dir.join("timeseries.csv"), &names).unwrap();
        let mut hlog = HlogWriter::create(&dir.join("latency.hlog"), &names, UNIX_EPOCH).unwrap();
        for &(second, sent, echo) in seconds {
            let mut interval = Interval::new(2, 1);
            interval.sent = sent;
            for &us in echo {
                interval.histograms[1].record(us).unwrap();
            }
            let row = SecondRow {
                second,
                epoch_ms: 0,
                connected: 3,
                connecting: 0,
                interval,
            };
            ts.write(&row).unwrap();
            hlog.write(&row).unwrap();
        }
    }

    #[test]
    fn a_second_is_shown_summed_once_every_shard_wrote_it() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write_second(a.path(), &[(1, 5, &[100, 200]), (2, 5, &[300])]);
        write_second(b.path(), &[(1, 7, &[400])]);
        let mut seconds = Seconds::new(2, "echo".into());
        let mut tails = [ShardTail::new(a.path()), ShardTail::new(b.path())];
        for tail in &mut tails {
            tail.read(&mut seconds);
        }
        let ticks = seconds.complete();
        assert_eq!(ticks.len(), 1, "second 2 waits for the second shard");
        assert_eq!(
            (ticks[0].second, ticks[0].sent, ticks[0].connected),
            (1, 12, 6)
        );
        let mut union = new_histogram();
        for v in [100, 200, 400] {
            union.record(v).unwrap();
        }
        let expected = (union.value_at_quantile(0.5), union.value_at_quantile(0.99));
        assert_eq!(ticks[0].latency, Some(expected));
        // Read again: nothing new, nothing counted twice.
        for tail in &mut tails {
            tail.read(&mut seconds);
        }
        assert!(seconds.complete().is_empty());
        assert_eq!(seconds.pending[&2].rows, 1);
    }
}
