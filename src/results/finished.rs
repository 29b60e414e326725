//! The end-of-run data: everything known when a run (or a merge of shards) ends, from which the
//! files written once at the end are made.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::run_json::{Host, ThresholdVerdict};
use crate::metrics::Interval;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Ran its full schedule.
    Completed,
    /// Stopped early by Ctrl-C or SIGTERM; results cover what was seen.
    Interrupted,
    /// Stopped early by a threshold marked `abort` that could no longer pass.
    Aborted,
    /// Not ended: the checkpoint of a run still going, or of one that died (killed, out of
    /// memory) before it could write run.json.
    Running,
    /// Merged from shards of which at least one failed: the run's figures hold what each shard
    /// left, the failed ones' up to when they stopped.
    Failed,
}

impl RunStatus {
    /// As run.json writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Completed => "completed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Aborted => "aborted",
            RunStatus::Running => "running",
            RunStatus::Failed => "failed",
        }
    }

    /// Worse is higher: a run stopped by a threshold is worse than one interrupted, one that
    /// never ended worse still, and a merged run with a failed shard the worst.
    pub fn severity(self) -> u8 {
        match self {
            RunStatus::Completed => 0,
            RunStatus::Interrupted => 1,
            RunStatus::Aborted => 2,
            RunStatus::Running => 3,
            RunStatus::Failed => 4,
        }
    }

    /// The figures cover only part of the planned run.
    pub fn is_partial(self) -> bool {
        self != RunStatus::Completed
    }
}

/// Everything known at the end of a run.
#[derive(Debug, Clone)]
pub struct FinishedRun {
    pub run_id: String,
    pub status: RunStatus,
    /// The machine it ran on (for merged shards: the first shard's).
    pub host: Host,
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
    /// With `--prometheus-write`: the pushes made and dropped.
    pub prometheus: Option<PushTotals>,
    /// The CI gate's verdicts, one per threshold, in the order written.
    pub thresholds: Vec<ThresholdVerdict>,
    /// `--shard K/N`: (K, N) when this run was one shard of a larger one.
    pub shard: Option<(u32, u32)>,
    /// `volley merge`: the shard folders this folder was merged from (empty for a run).
    pub merged_from: Vec<String>,
    /// Shards that failed, of a merged run whose status is [`RunStatus::Failed`].
    pub failed_shards: Vec<FailedShard>,
}

/// A shard that did not finish: which, where its files are and why it failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FailedShard {
    /// `K/N`, when known.
    pub shard: Option<String>,
    /// Its results folder.
    pub folder: String,
    /// How it ended (`killed by signal 9 (SIGKILL)`, `exit status 1: …`) and what it left.
    pub why: String,
}

/// The frame log of a run: where, whose, and how many records it holds and lost.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FrameLogTotals {
    pub file: String,
    /// The `--log-clients` spec.
    pub clients: String,
    /// Records written to the file.
    pub logged: u64,
    /// Records dropped because the writer was behind.
    pub dropped: u64,
}

/// What `--prometheus-write` did: pushes that the server accepted, and pushes dropped (refused,
/// failed or too slow; the run went on).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PushTotals {
    pub pushed: u64,
    pub dropped: u64,
}

impl FinishedRun {
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
