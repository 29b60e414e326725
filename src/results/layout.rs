//! The names of a results folder's files, in one place: every module that writes or reads one
//! takes its name from here.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The machine-readable record of the run: scenario, settings, host, summary, threshold verdicts.
pub const RUN_JSON: &str = "run.json";
/// run.json's shape with the figures so far, rewritten once a second while the run goes and removed
/// when run.json is written: what a run that dies (killed, out of memory) leaves of its totals.
pub const CHECKPOINT_JSON: &str = "checkpoint.json";
/// One row per metric: latency distributions and counters.
pub const SUMMARY_CSV: &str = "summary.csv";
/// One row per second.
pub const TIMESERIES_CSV: &str = "timeseries.csv";
/// One row per delivery problem.
pub const GAPS_CSV: &str = "gaps.csv";
/// One row per error.
pub const ERRORS_CSV: &str = "errors.csv";
/// The HdrHistogram interval log of every latency metric.
pub const LATENCY_HLOG: &str = "latency.hlog";
/// The frame log of `--log-frames`, unless `--log-frames=FILE` says where.
pub const FRAMES_JSONL: &str = "frames.jsonl";
/// `volley report`'s page.
pub const REPORT_HTML: &str = "report.html";
/// `--gate`'s verdicts as JUnit XML, unless `--junit` says where.
pub const JUNIT_XML: &str = "junit.xml";
/// `--gate`'s verdicts as a Markdown table, unless `--markdown` says where.
pub const SUMMARY_MD: &str = "summary.md";
/// `--processes N`: the shards' folders are `shards/K`, their output `shards/K.log`.
pub const SHARDS: &str = "shards";

/// `<metric>.hgrm`: one latency metric's percentile distribution.
pub fn hgrm(metric: &str) -> String {
    format!("{metric}.hgrm")
}

/// The folder of shard `index` in the results folder `dir` of a `--processes` run.
pub fn shard_dir(dir: &Path, index: u32) -> PathBuf {
    dir.join(SHARDS).join(index.to_string())
}

/// What shard `index` printed, beside its folder.
pub fn shard_log(dir: &Path, index: u32) -> PathBuf {
    dir.join(SHARDS).join(format!("{index}.log"))
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
