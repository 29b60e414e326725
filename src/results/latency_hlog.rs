//! latency.hlog: an HdrHistogram interval log, the format of Java's `HistogramLogWriter` that
//! `HistogramLogProcessor` and the other HdrHistogram tools read. One interval per latency metric
//! per second, tagged with the metric's name (`Tag=connect,...`), written and flushed as the run
//! goes, so an interrupted run keeps every second it saw.
//!
//! Values are microseconds, as recorded. `StartTime` and `BaseTime` are both the run's time zero,
//! so an interval's timestamp is its start in seconds since then.
//!
//! Read back ([`IntervalLog`]): per metric (tag), the run's total histogram and the intervals with
//! their start times. An interval's histogram is decoded when asked for, not kept: decoded, each
//! one of volley's histograms (1 µs to 1 h at 3 digits) takes ~190 KB, and a 2-hour run has 7,200
//! per metric. Every interval is decoded once while loading, to add up the totals, so a bad one is
//! found then.

use std::fs::File;
use std::io::{BufWriter, Cursor, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};

use super::timeseries_csv::SecondRow;
use super::{ExportError, FileError};

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
        HlogWriter::new(super::export::create_file(path)?, metrics, t0)
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

/// The name given to intervals without a tag (logs from other tools).
pub const UNTAGGED: &str = "untagged";

#[derive(Debug)]
pub struct IntervalLog {
    /// The log's StartTime (volley: the run's time zero); interval starts count from it.
    pub start_time: Option<SystemTime>,
    /// In the order of their first interval.
    pub metrics: Vec<MetricLog>,
    /// The last line was cut off (the run died while writing it) and was left out.
    pub truncated: bool,
}

#[derive(Debug)]
pub struct MetricLog {
    pub name: String,
    /// All intervals added up.
    pub total: Histogram<u64>,
    /// In the log's order (by start time for volley's logs).
    pub intervals: Vec<LoggedInterval>,
}

#[derive(Debug, Clone)]
pub struct LoggedInterval {
    /// Since the log's StartTime.
    pub start: Duration,
    pub length: Duration,
    /// The recorded values in this interval.
    pub count: u64,
    encoded: String,
}

impl LoggedInterval {
    /// Decodes the interval's histogram.
    pub fn histogram(&self) -> Result<Histogram<u64>, String> {
        decode(&self.encoded)
    }

    pub fn end(&self) -> Duration {
        self.start + self.length
    }
}

impl IntervalLog {
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<IntervalLog, FileError> {
        let mut start_time: Option<f64> = None;
        let mut base_time: Option<f64> = None;
        let mut metrics: Vec<MetricLog> = Vec::new();
        let mut truncated = false;
        let line_of = |offset: usize| bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
        for entry in IntervalLogIterator::new(bytes) {
            let interval = match entry {
                Ok(LogEntry::StartTime(t)) => {
                    start_time.get_or_insert(t.as_secs_f64());
                    continue;
                }
                Ok(LogEntry::BaseTime(t)) => {
                    base_time.get_or_insert(t.as_secs_f64());
                    continue;
                }
                Ok(LogEntry::Interval(interval)) => interval,
                Err(hdrhistogram::serialization::interval_log::LogIteratorError::ParseError {
                    offset,
                }) => {
                    // A run killed mid-line leaves a last line without its newline.
                    if !bytes[offset..].contains(&b'\n') {
                        truncated = true;
                        break;
                    }
                    return Err(FileError::malformed(
                        path,
                        format!("line {}: not an interval log line", line_of(offset)),
                    ));
                }
            };
            let encoded = interval.encoded_histogram();
            let offset = encoded.as_ptr() as usize - bytes.as_ptr() as usize;
            let histogram = decode(encoded).map_err(|e| {
                FileError::malformed(path, format!("line {}: {e}", line_of(offset)))
            })?;
            let timestamp = interval.start_timestamp().as_secs_f64();
            // As Java's HistogramLogReader: without StartTime the first interval starts the log;
            // without BaseTime, timestamps more than a year before StartTime are offsets from it.
            let start = *start_time.get_or_insert(timestamp);
            let base = *base_time.get_or_insert(if timestamp < start - 365.0 * 86_400.0 {
                start
            } else {
                0.0
            });
            let name = interval.tag().map_or(UNTAGGED, |t| t.as_str());
            let index = match metrics.iter().position(|m| m.name == name) {
                Some(i) => i,
                None => {
                    let mut total = Histogram::new_from(&histogram);
                    total.auto(true);
                    metrics.push(MetricLog {
                        name: name.to_string(),
                        total,
                        intervals: Vec::new(),
                    });
                    metrics.len() - 1
                }
            };
            let metric = &mut metrics[index];
            metric.total.add(&histogram).map_err(|e| {
                FileError::malformed(path, format!("line {}: {e:?}", line_of(offset)))
            })?;
            metric.intervals.push(LoggedInterval {
                start: Duration::try_from_secs_f64(timestamp + base - start).unwrap_or_default(),
                length: interval.duration(),
                count: histogram.len(),
                encoded: encoded.to_string(),
            });
        }
        Ok(IntervalLog {
            start_time: start_time
                .and_then(|s| Duration::try_from_secs_f64(s).ok().map(|d| UNIX_EPOCH + d)),
            metrics,
            truncated,
        })
    }

    pub fn metric(&self, name: &str) -> Option<&MetricLog> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// The end of the last interval of any metric.
    pub fn end(&self) -> Duration {
        self.metrics
            .iter()
            .flat_map(|m| m.intervals.iter().map(LoggedInterval::end))
            .max()
            .unwrap_or_default()
    }
}

pub fn decode(encoded: &str) -> Result<Histogram<u64>, String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| format!("the histogram is not base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut Cursor::new(raw))
        .map_err(|e| format!("the histogram does not decode: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Interval;

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

    fn log_bytes(seconds: u64) -> Vec<u8> {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let names = ["connect".to_string(), "echo".to_string()];
        let mut writer = HlogWriter::new(Vec::new(), &names, t0).unwrap();
        for second in 1..=seconds {
            let mut interval = Interval::new(2, 1);
            interval.histograms[1].record(second * 100).unwrap();
            writer
                .write(&SecondRow {
                    second,
                    epoch_ms: 0,
                    connected: 0,
                    connecting: 0,
                    interval,
                })
                .unwrap();
        }
        writer.into_inner()
    }

    #[test]
    fn reads_what_the_writer_wrote_per_metric_with_offsets_from_start_time() {
        let log = IntervalLog::parse(Path::new("latency.hlog"), &log_bytes(3)).unwrap();
        assert_eq!(
            log.start_time,
            Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        let names: Vec<&str> = log.metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["connect", "echo"]);
        let echo = log.metric("echo").unwrap();
        assert_eq!(echo.total.len(), 3);
        assert_eq!(echo.total.max(), 300);
        let starts: Vec<u64> = echo.intervals.iter().map(|i| i.start.as_secs()).collect();
        assert_eq!(starts, [0, 1, 2]);
        assert_eq!(echo.intervals[1].histogram().unwrap().max(), 200);
        assert_eq!(log.end(), Duration::from_secs(3));
        assert!(!log.truncated);
    }

    #[test]
    fn a_cut_off_last_line_is_left_out_and_a_bad_line_is_named() {
        let mut bytes = log_bytes(2);
        bytes.truncate(bytes.len() - 10);
        let log = IntervalLog::parse(Path::new("latency.hlog"), &bytes).unwrap();
        assert!(log.truncated);
        assert_eq!(log.metric("echo").unwrap().intervals.len(), 1);

        let mut bytes = log_bytes(2);
        bytes.extend_from_slice(b"Tag=echo,3.000,1.000,5.0,bm90IGEgaGlzdG9ncmFt\n");
        let err = IntervalLog::parse(Path::new("dir/latency.hlog"), &bytes).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("dir/latency.hlog: line 11:"), "{text}");

        let err = IntervalLog::parse(Path::new("latency.hlog"), b"garbage\nmore\n").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn logs_without_start_time_start_at_their_first_interval() {
        let bytes = log_bytes(2);
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("Tag="))
            .map(|l| {
                l.trim_start_matches("Tag=echo,")
                    .trim_start_matches("Tag=connect,")
            })
            .collect();
        // Absolute timestamps, no headers, no tags.
        let absolute: String = lines
            .iter()
            .map(|l| format!("1700000010.5{}\n", &l[5..]))
            .collect();
        let log = IntervalLog::parse(Path::new("x.hlog"), absolute.as_bytes()).unwrap();
        assert_eq!(log.metrics[0].name, UNTAGGED);
        assert_eq!(log.metrics[0].intervals[0].start, Duration::ZERO);
        assert_eq!(log.metrics[0].total.len(), 2);
    }
}
