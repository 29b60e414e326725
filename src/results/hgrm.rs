//! `<metric>.hgrm`: HdrHistogram's percentile distribution text, as Java's
//! `outputPercentileDistribution` writes it (5 ticks per half distance). Values are in
//! milliseconds, the unit HdrHistogram's plotter labels its axis with. Read back for folders that
//! have no interval log to take the distribution from.

use std::fmt::Write;
use std::path::Path;

use hdrhistogram::Histogram;

use super::{ExportError, Exporter, FileError, FinishedRun};

const TICKS_PER_HALF_DISTANCE: u32 = 5;
/// Recorded in µs, written in ms.
const SCALE: f64 = 1000.0;

pub struct Hgrm {
    pub metric: usize,
    pub name: String,
}

impl Exporter for Hgrm {
    fn file_name(&self) -> String {
        super::layout::hgrm(&self.name)
    }

    fn serialize(&self, report: &FinishedRun) -> Result<Vec<u8>, ExportError> {
        Ok(distribution(&report.totals.histograms[self.metric]).into_bytes())
    }
}

/// Renders a histogram (values in µs) as a percentile distribution in ms.
pub fn distribution(h: &Histogram<u64>) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
            total += v.count_since_last_iteration();
            let value = h.highest_equivalent(v.value_iterated_to()) as f64 / SCALE;
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                let _ = writeln!(
                    out,
                    "{value:>12.3} {q:>2.12} {total:>10} {:>14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(out, "{value:>12.3} {q:>2.12} {total:>10}");
            }
        }
    }
    let (mean, stdev, max) = if !h.is_empty() {
        (
            h.mean() / SCALE,
            h.stdev() / SCALE,
            h.highest_equivalent(h.max()) as f64 / SCALE,
        )
    } else {
        (0.0, 0.0, 0.0)
    };
    let _ = writeln!(
        out,
        "#[Mean    = {mean:>12.3}, StdDeviation   = {stdev:>12.3}]"
    );
    let _ = writeln!(
        out,
        "#[Max     = {max:>12.3}, Total count    = {:>12}]",
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        sub_bucket_count(h.sigfig())
    );
    out
}

/// HdrHistogram's sub-bucket count for a precision: the power of two at or above 2·10^digits.
fn sub_bucket_count(significant_digits: u8) -> u64 {
    (2 * 10u64.pow(significant_digits as u32)).next_power_of_two()
}

/// The points of a percentile distribution.
#[derive(Debug, Clone, PartialEq)]
pub struct Distribution {
    /// (value in ms, quantile from 0 to 1), in the file's order.
    pub points: Vec<(f64, f64)>,
    /// Values counted.
    pub count: u64,
}

impl Distribution {
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Distribution, FileError> {
        let text =
            std::str::from_utf8(bytes).map_err(|_| FileError::malformed(path, "not UTF-8 text"))?;
        let mut points = Vec::new();
        let mut count = 0;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with("Value") {
                continue;
            }
            let mut fields = line.split_whitespace();
            let mut number = || fields.next().and_then(|f| f.parse::<f64>().ok());
            match (number(), number(), number()) {
                (Some(value), Some(quantile), Some(total)) => {
                    points.push((value, quantile));
                    count = total as u64;
                }
                _ => {
                    return Err(FileError::malformed(
                        path,
                        format!("line {}: not `value percentile count`", n + 1),
                    ));
                }
            }
        }
        Ok(Distribution { points, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_has_java_layout() {
        let mut h = crate::metrics::new_histogram();
        for v in 1..=1000u64 {
            h.record(v * 10).unwrap();
        }
        let text = distribution(&h);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "       Value     Percentile TotalCount 1/(1-Percentile)"
        );
        assert_eq!(lines[1], "");
        assert!(
            lines[2].starts_with("       0.010 0.000000000000          1           1.00"),
            "{}",
            lines[2]
        );
        let last_data = lines[lines.len() - 4];
        assert!(
            last_data.contains(" 1.000000000000       1000"),
            "{last_data}"
        );
        assert!(
            lines[lines.len() - 2].starts_with("#[Max     =       10.007"),
            "{}",
            lines[lines.len() - 2]
        );
        assert!(text.ends_with("SubBuckets     =         2048]\n"));
    }

    #[test]
    fn empty_histogram_still_has_header_and_footer() {
        let text = distribution(&crate::metrics::new_histogram());
        assert!(text.starts_with("       Value"));
        assert!(text.contains("Total count    =            0"));
    }

    #[test]
    fn reads_what_the_hgrm_writer_writes() {
        let mut h = crate::metrics::new_histogram();
        for v in 1..=100u64 {
            h.record(v * 1000).unwrap();
        }
        let text = distribution(&h);
        let d = Distribution::parse(Path::new("echo.hgrm"), text.as_bytes()).unwrap();
        assert_eq!(d.count, 100);
        assert_eq!(d.points[0], (1.0, 0.0));
        // The highest value equivalent to 100 ms at 3 digits.
        assert_eq!(*d.points.last().unwrap(), (100.031, 1.0));
        let err = Distribution::parse(Path::new("echo.hgrm"), b"Value\n1.0 x\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
