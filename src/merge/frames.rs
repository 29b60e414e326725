//! frames.jsonl: the shards' frame logs as one, interleaved by time.
//!
//! Each record's `t` (seconds since its shard's time zero) moves to the merged time zero. The
//! logs are merged as streams, a line at a time from each, so a long log is never held in memory:
//! each shard's own order is kept, and the next line written is the earliest of the shards' next
//! lines. A line that is not a JSON object with a numeric `t` (a record cut off when a shard was
//! killed) is copied as it is, in its shard's order, so that nothing is lost.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Lines, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::MergeError;
use crate::results::ExportError;
use crate::results::FileError;

/// One shard's log being read.
struct Source {
    path: PathBuf,
    lines: Lines<BufReader<File>>,
    /// Seconds from the merged time zero to the shard's.
    shift: f64,
    /// The time of the last record read, for lines without one.
    last_t: f64,
}

impl Source {
    /// The next line, its time on the merged clock and the line to write.
    fn next(&mut self) -> Result<Option<(f64, String)>, MergeError> {
        let Some(line) = self.lines.next() else {
            return Ok(None);
        };
        let line = line.map_err(|e| unreadable(&self.path, e))?;
        let shifted = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|mut record| {
                let t = record.get("t")?.as_f64()?;
                if self.shift == 0.0 {
                    return Some((t, line.clone()));
                }
                let t = t + self.shift;
                record["t"] = serde_json::json!((t * 1e9).round() / 1e9);
                Some((t, record.to_string()))
            });
        Ok(Some(match shifted {
            Some((t, text)) => {
                self.last_t = t;
                (t, text)
            }
            None => (self.last_t, line),
        }))
    }
}

fn unreadable(path: &Path, source: std::io::Error) -> MergeError {
    MergeError::File(FileError::Unreadable {
        path: path.to_path_buf(),
        source,
    })
}

/// Merges the `frames.jsonl` of each shard folder that has one (with its offset from the merged
/// time zero) into `out`; returns the number of lines written, or `None` when no shard has one.
pub fn merge(logs: &[(PathBuf, Duration)], out: &Path) -> Result<Option<u64>, MergeError> {
    let mut sources = Vec::new();
    for (path, shift) in logs {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(unreadable(path, e)),
        };
        sources.push(Source {
            path: path.clone(),
            lines: BufReader::new(file).lines(),
            shift: shift.as_secs_f64(),
            last_t: shift.as_secs_f64(),
        });
    }
    if sources.is_empty() {
        return Ok(None);
    }
    let cannot_write = |source| ExportError::Write {
        path: out.to_path_buf(),
        source,
    };
    let mut writer = BufWriter::new(File::create(out).map_err(cannot_write)?);
    // The next line of each source, earliest first; ties go to the lower shard.
    let mut heads = BinaryHeap::new();
    for (i, source) in sources.iter_mut().enumerate() {
        if let Some((t, line)) = source.next()? {
            heads.push(Reverse((Time(t), i, line)));
        }
    }
    let mut written = 0u64;
    while let Some(Reverse((_, i, line))) = heads.pop() {
        writer
            .write_all(line.as_bytes())
            .and_then(|()| writer.write_all(b"\n"))
            .map_err(cannot_write)?;
        written += 1;
        if let Some((t, line)) = sources[i].next()? {
            heads.push(Reverse((Time(t), i, line)));
        }
    }
    writer.flush().map_err(cannot_write)?;
    Ok(Some(written))
}

/// A record time, ordered totally.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Time(f64);

impl Eq for Time {}

impl PartialOrd for Time {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Time {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_interleave_by_time_on_the_merged_clock_and_nothing_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.jsonl");
        let b = dir.path().join("b.jsonl");
        // Shard a started at the merged time zero, shard b 1.5 s later; b was killed mid-record.
        std::fs::write(
            &a,
            concat!(
                "{\"time\":\"x\",\"t\":0.25,\"conn\":0,\"kind\":\"connect\"}\n",
                "{\"time\":\"x\",\"t\":1.9,\"conn\":0,\"kind\":\"frame\",\"text\":\"h\\u00e9\"}\n",
                "{\"time\":\"x\",\"t\":3.0,\"conn\":0,\"kind\":\"close\"}\n",
            ),
        )
        .unwrap();
        std::fs::write(
            &b,
            concat!(
                "{\"time\":\"y\",\"t\":0.1,\"conn\":1,\"kind\":\"connect\"}\n",
                "{\"time\":\"y\",\"t\":1.0,\"conn\":1,\"kind\":\"frame\"}\n",
                "{\"time\":\"y\",\"t\":1.2,\"conn\":1,\"ki",
            ),
        )
        .unwrap();
        let out = dir.path().join("frames.jsonl");
        let logs = [
            (a, Duration::ZERO),
            (b, Duration::from_millis(1500)),
            (dir.path().join("none.jsonl"), Duration::ZERO),
        ];
        assert_eq!(merge(&logs, &out).unwrap(), Some(6));
        let text = std::fs::read_to_string(&out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                // Shard a's lines are copied as they were (its shift is zero).
                "{\"time\":\"x\",\"t\":0.25,\"conn\":0,\"kind\":\"connect\"}",
                "{\"time\":\"y\",\"t\":1.6,\"conn\":1,\"kind\":\"connect\"}",
                "{\"time\":\"x\",\"t\":1.9,\"conn\":0,\"kind\":\"frame\",\"text\":\"h\\u00e9\"}",
                "{\"time\":\"y\",\"t\":2.5,\"conn\":1,\"kind\":\"frame\"}",
                // The cut-off record keeps its place after its shard's last record.
                "{\"time\":\"y\",\"t\":1.2,\"conn\":1,\"ki",
                "{\"time\":\"x\",\"t\":3.0,\"conn\":0,\"kind\":\"close\"}",
            ]
        );
    }

    #[test]
    fn without_frame_logs_there_is_nothing_to_write() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("frames.jsonl");
        let logs = [(dir.path().join("a.jsonl"), Duration::ZERO)];
        assert_eq!(merge(&logs, &out).unwrap(), None);
        assert!(!out.exists());
    }
}
