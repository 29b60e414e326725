//! A latency histogram as Prometheus buckets: fixed upper bounds in seconds, from 100 µs to a
//! minute, counted from the HDR histogram volley records in microseconds. Fixed bounds keep the
//! series the same from one second and one run to the next, so rates and `histogram_quantile`
//! work across them; the exact percentiles stay in the result files.

use hdrhistogram::Histogram;

/// Upper bounds, in seconds; `+Inf` follows.
pub const BOUNDS: [f64; 20] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0, 300.0, 3600.0,
];

/// Cumulative counts per bound of [`BOUNDS`], the count (the `+Inf` bucket) and the sum.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    pub cumulative: [u64; BOUNDS.len()],
    pub count: u64,
    /// In seconds: the histogram's mean times its count (HDR keeps values to 3 digits).
    pub sum: f64,
}

impl Buckets {
    /// From a histogram of microseconds. A value counts under a bound when every value HDR may
    /// have recorded in its slot is at most the bound.
    pub fn from_us(h: &Histogram<u64>) -> Buckets {
        let mut per_bound = [0u64; BOUNDS.len()];
        for slot in h.iter_recorded() {
            let highest_s = slot.value_iterated_to() as f64 / 1e6;
            if let Some(i) = BOUNDS.iter().position(|&b| highest_s <= b) {
                per_bound[i] += slot.count_at_value();
            }
        }
        let mut cumulative = [0u64; BOUNDS.len()];
        let mut running = 0;
        for (out, n) in cumulative.iter_mut().zip(per_bound) {
            running += n;
            *out = running;
        }
        Buckets {
            cumulative,
            count: h.len(),
            sum: if h.is_empty() {
                0.0
            } else {
                h.mean() * h.len() as f64 / 1e6
            },
        }
    }

    /// `(le, cumulative count)`, `+Inf` last, as text and remote write spell the bounds.
    pub fn labelled(&self) -> impl Iterator<Item = (String, u64)> + '_ {
        BOUNDS
            .iter()
            .zip(self.cumulative)
            .map(|(b, n)| (format_bound(*b), n))
            .chain(std::iter::once(("+Inf".to_owned(), self.count)))
    }
}

fn format_bound(b: f64) -> String {
    // Shortest decimal that reads back as the same f64: 0.00025, 1, 3600.
    let text = format!("{b}");
    text.strip_suffix(".0").map(str::to_owned).unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::new_histogram;

    #[test]
    fn counts_are_cumulative_and_the_last_bucket_is_the_count() {
        let mut h = new_histogram();
        for us in [50, 90, 400, 2_000, 2_000, 70_000_000] {
            h.record(us).unwrap();
        }
        let b = Buckets::from_us(&h);
        let labelled: Vec<_> = b.labelled().collect();
        assert_eq!(labelled[0], ("0.0001".into(), 2));
        assert_eq!(labelled[2], ("0.0005".into(), 3));
        assert_eq!(labelled[4], ("0.0025".into(), 5));
        assert_eq!(labelled[12], ("1".into(), 5));
        assert_eq!(labelled[17], ("60".into(), 5), "70 s is above a minute");
        assert_eq!(labelled[18], ("300".into(), 6));
        assert_eq!(labelled.last().unwrap(), &("+Inf".into(), 6));
        assert!((b.sum - 70.004_54).abs() < 0.1, "{}", b.sum);
        assert_eq!(Buckets::from_us(&new_histogram()).sum, 0.0);
    }
}
