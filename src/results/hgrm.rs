//! `<metric>.hgrm` read back: the percentile distribution as written (values in ms), for folders
//! that have no interval log to take it from.

use std::path::Path;

use super::FileError;

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
    fn reads_what_the_hgrm_writer_writes() {
        let mut h = crate::metrics::new_histogram();
        for v in 1..=100u64 {
            h.record(v * 1000).unwrap();
        }
        let text = crate::output::hgrm::distribution(&h);
        let d = Distribution::parse(Path::new("echo.hgrm"), text.as_bytes()).unwrap();
        assert_eq!(d.count, 100);
        assert_eq!(d.points[0], (1.0, 0.0));
        // The highest value equivalent to 100 ms at 3 digits.
        assert_eq!(*d.points.last().unwrap(), (100.031, 1.0));
        let err = Distribution::parse(Path::new("echo.hgrm"), b"Value\n1.0 x\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
