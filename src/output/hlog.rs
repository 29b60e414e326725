//! latency.hlog: an HdrHistogram interval log, the format of Java's `HistogramLogWriter` that
//! `HistogramLogProcessor` and the other HdrHistogram tools read. One interval per latency metric
//! per second, tagged with the metric's name (`Tag=connect,...`), written and flushed as the run
//! goes, so an interrupted run keeps every second it saw.
//!
//! Values are microseconds, as recorded. `StartTime` and `BaseTime` are both the run's time zero,
//! so an interval's timestamp is its start in seconds since then.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

use super::ExportError;
use super::timeseries_csv::SecondRow;

pub const FILE_NAME: &str = "latency.hlog";

/// Java's column legend line, which readers skip.
const LEGEND: &str =
    "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"";

pub struct HlogWriter<W: Write> {
    out: W,
    serializer: V2DeflateSerializer,
    /// The tag of each latency metric, in metric order.
    tags: Vec<String>,
}

impl HlogWriter<BufWriter<File>> {
    pub fn create(path: &Path, metrics: &[String], t0: SystemTime) -> Result<Self, ExportError> {
        HlogWriter::new(super::create_file(path)?, metrics, t0)
    }
}

impl<W: Write> HlogWriter<W> {
    /// Writes the header: comments, StartTime and BaseTime (both `t0`), and the legend.
    pub fn new(mut out: W, metrics: &[String], t0: SystemTime) -> Result<Self, ExportError> {
        let mut serializer = V2DeflateSerializer::new();
        IntervalLogWriterBuilder::new()
            .add_comment(&format!(
                "[Logged with volley {}]",
                env!("CARGO_PKG_VERSION")
            ))
            .add_comment("[Histogram log format version 1.3]")
            .add_comment(
                "[Values in microseconds; one interval per second per metric, tagged with its name]",
            )
            .with_start_time(t0)
            .with_base_time(t0)
            .begin_log_with(&mut out, &mut serializer)
            .map_err(io_error)?;
        writeln!(out, "{LEGEND}").map_err(io_error)?;
        out.flush().map_err(io_error)?;
        Ok(HlogWriter {
            out,
            serializer,
            tags: metrics.iter().map(|m| tag_for(m)).collect(),
        })
    }

    /// Appends the second's interval of every latency metric (empty ones too, so that every
    /// second is in the log) and flushes.
    pub fn write(&mut self, row: &SecondRow) -> Result<(), ExportError> {
        let start = Duration::from_secs(row.second.saturating_sub(1));
        for (tag, histogram) in self.tags.iter().zip(&row.interval.histograms) {
            let fitted = fitted(histogram)?;
            // A builder without headers writes nothing: it only lends a line writer.
            let mut log = IntervalLogWriterBuilder::new()
                .begin_log_with(&mut self.out, &mut self.serializer)
                .map_err(io_error)?;
            log.write_histogram(&fitted, start, Duration::from_secs(1), Tag::new(tag))
                .map_err(|e| ExportError::Hlog(e.to_string()))?;
        }
        self.out.flush().map_err(io_error)
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// The same counts in a histogram whose range ends at the interval's maximum. A reader sizes each
/// decoded histogram by the range written in it: up to an hour of µs, that is ~190 KB to allocate
/// and scan per interval; fitted, a few KB for millisecond latencies and less for empty intervals.
fn fitted(h: &Histogram<u64>) -> Result<Histogram<u64>, ExportError> {
    let mut fitted = Histogram::new_with_bounds(h.low(), h.max().max(2 * h.low()), h.sigfig())
        .map_err(|e| ExportError::Hlog(format!("{e:?}")))?;
    fitted
        .add(h)
        .map_err(|e| ExportError::Hlog(format!("{e:?}")))?;
    Ok(fitted)
}

fn io_error(e: std::io::Error) -> ExportError {
    ExportError::Hlog(e.to_string())
}

/// A tag may not hold `,`, space, CR or LF; metric names never do (they are identifiers), but a
/// name that did would still get a tag, with those characters as `_`.
pub fn tag_for(metric: &str) -> String {
    metric
        .chars()
        .map(|c| {
            if matches!(c, ',' | ' ' | '\r' | '\n') {
                '_'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Interval;
    use hdrhistogram::serialization::Deserializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

    fn row(second: u64, echo_us: &[u64]) -> SecondRow {
        let mut interval = Interval::new(2, 1);
        for &us in echo_us {
            interval.histograms[1].record(us).unwrap();
        }
        SecondRow {
            second,
            epoch_ms: 0,
            connected: 0,
            connecting: 0,
            interval,
        }
    }

    #[test]
    fn every_second_has_one_tagged_interval_per_metric_that_reads_back() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        let names = ["connect".to_string(), "echo".to_string()];
        let mut writer = HlogWriter::new(Vec::new(), &names, t0).unwrap();
        writer.write(&row(1, &[100, 200])).unwrap();
        writer.write(&row(2, &[300])).unwrap();
        let bytes = writer.into_inner();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.contains("#[StartTime: 1700000000.250 (seconds since epoch)]\n"),
            "{text}"
        );
        assert!(text.contains("#[BaseTime: 1700000000.250 (seconds since epoch)]\n"));
        assert!(text.contains(LEGEND));

        let mut seen = Vec::new();
        for entry in IntervalLogIterator::new(&bytes) {
            if let LogEntry::Interval(i) = entry.unwrap() {
                let raw = base64::Engine::decode(
                    &base64::engine::general_purpose::STANDARD,
                    i.encoded_histogram(),
                )
                .unwrap();
                let h: hdrhistogram::Histogram<u64> = Deserializer::new()
                    .deserialize(&mut std::io::Cursor::new(raw))
                    .unwrap();
                seen.push((
                    i.tag().unwrap().as_str().to_string(),
                    i.start_timestamp().as_secs(),
                    i.duration().as_secs(),
                    h.len(),
                    h.max(),
                ));
            }
        }
        assert_eq!(
            seen,
            [
                ("connect".to_string(), 0, 1, 0, 0),
                ("echo".to_string(), 0, 1, 2, 200),
                ("connect".to_string(), 1, 1, 0, 0),
                ("echo".to_string(), 1, 1, 1, 300),
            ]
        );
    }

    #[test]
    fn tags_never_hold_separators() {
        assert_eq!(tag_for("echo"), "echo");
        assert_eq!(tag_for("a b,c"), "a_b_c");
    }
}
