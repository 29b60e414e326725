//! `volley run --log-clients SPEC`: which clients of a run have their frames logged.
//!
//! A spec is a comma-separated list whose items add up, any mix of
//! - `N`: client N;
//! - `A..B` (or `A..=B`): clients A to B, **both included**, as in `volley inspect --filter conn=`;
//! - `P%`: P percent of the clients, spread evenly and the same in every run: client k is logged
//!   when `k × P mod 100 < P`. So `5%` logs clients 0, 20, 40, …; `30%` logs 0, 4, 7, 10, 14, …;
//!   P is more than 0 and at most 100, with at most two decimals (`0.5%`: 0, 200, 400, …).
//!
//! Client ids are the ones in errors.csv and gaps.csv: from 0, the scenario's groups in order.

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

/// The clients logged when `--log-frames` is given without `--log-clients`.
pub const DEFAULT_SPEC: &str = "0..9";

/// Which client ids are sampled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSample {
    ranges: Vec<RangeInclusive<u32>>,
    /// Shares in hundredths of a percent (1 to 10,000).
    shares: Vec<u64>,
    /// The spec as given, for run.json and the summary.
    spec: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad client list {spec:?}: {problem}; write ids (3), inclusive ranges (0..9) or shares (5%), joined by commas, like 0..9,20,5%"
)]
pub struct SampleError {
    pub spec: String,
    pub problem: String,
}

impl Default for ClientSample {
    fn default() -> Self {
        DEFAULT_SPEC.parse().expect("the default spec parses")
    }
}

impl ClientSample {
    /// Whether client `id` is logged.
    pub fn contains(&self, id: u32) -> bool {
        self.ranges.iter().any(|r| r.contains(&id))
            || self
                .shares
                .iter()
                .any(|&share| u64::from(id) * share % 10_000 < share)
    }
}

impl fmt::Display for ClientSample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec)
    }
}

impl FromStr for ClientSample {
    type Err = SampleError;

    fn from_str(spec: &str) -> Result<ClientSample, SampleError> {
        let err = |problem: String| SampleError {
            spec: spec.to_string(),
            problem,
        };
        let mut sample = ClientSample {
            ranges: Vec::new(),
            shares: Vec::new(),
            spec: spec.trim().to_string(),
        };
        for item in spec.split(',').map(str::trim) {
            if item.is_empty() {
                return Err(err("an empty item".into()));
            }
            if let Some(percent) = item.strip_suffix('%') {
                let share = parse_share(percent.trim()).ok_or_else(|| {
                    err(format!(
                        "`{item}` is not a share: more than 0% and at most 100%, two decimals at most"
                    ))
                })?;
                sample.shares.push(share);
                continue;
            }
            let id = |text: &str| {
                text.trim()
                    .parse::<u32>()
                    .map_err(|_| err(format!("`{}` is not a client id", text.trim())))
            };
            match item.split_once("..") {
                Some((from, to)) => {
                    let (from, to) = (id(from)?, id(to.strip_prefix('=').unwrap_or(to))?);
                    if from > to {
                        return Err(err(format!("`{item}` ends before it starts")));
                    }
                    sample.ranges.push(from..=to);
                }
                None => {
                    let n = id(item)?;
                    sample.ranges.push(n..=n);
                }
            }
        }
        Ok(sample)
    }
}

/// `5`, `2.5`, `0.01` (percent) as hundredths of a percent, 1 to 10,000.
fn parse_share(text: &str) -> Option<u64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > 2 {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let fraction: u64 = format!("{fraction:0<2}").parse().ok()?;
    let share = whole.checked_mul(100)?.checked_add(fraction)?;
    (1..=10_000).contains(&share).then_some(share)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(spec: &str, below: u32) -> Vec<u32> {
        let sample: ClientSample = spec.parse().unwrap();
        (0..below).filter(|&id| sample.contains(id)).collect()
    }

    #[test]
    fn ranges_include_both_ends_and_lists_add_up() {
        assert_eq!(ids("0..9", 100), (0..=9).collect::<Vec<_>>());
        assert_eq!(ids("0..=2", 100), [0, 1, 2]);
        assert_eq!(ids("7", 100), [7]);
        assert_eq!(ids("0, 5,9..12", 100), [0, 5, 9, 10, 11, 12]);
        assert_eq!(ids("3..3", 10), [3]);
    }

    #[test]
    fn a_share_picks_evenly_spread_clients_from_0() {
        assert_eq!(ids("5%", 100), [0, 20, 40, 60, 80]);
        assert_eq!(ids("30%", 21), [0, 4, 7, 10, 14, 17, 20]);
        assert_eq!(ids("30%", 1000).len(), 300);
        assert_eq!(ids("2.5%", 200), [0, 40, 80, 120, 160]);
        assert_eq!(ids("0.01%", 20_001), [0, 10_000, 20_000]);
        assert_eq!(ids("100%", 5), [0, 1, 2, 3, 4]);
        assert_eq!(ids("5%,1..2", 41), [0, 1, 2, 20, 40]);
    }

    #[test]
    fn the_default_is_the_first_ten_clients() {
        let sample = ClientSample::default();
        assert!((0..10).all(|id| sample.contains(id)));
        assert!(!sample.contains(10));
        assert_eq!(sample.to_string(), "0..9");
    }

    #[test]
    fn bad_specs_say_what_is_wrong_and_show_the_format() {
        for (spec, problem) in [
            ("", "an empty item"),
            ("1,,2", "an empty item"),
            ("9..3", "ends before it starts"),
            ("a", "`a` is not a client id"),
            ("1..x", "`x` is not a client id"),
            ("-1", "`-1` is not a client id"),
            ("0%", "not a share"),
            ("101%", "not a share"),
            ("1.234%", "not a share"),
            ("%", "not a share"),
            ("x%", "not a share"),
        ] {
            let err = spec.parse::<ClientSample>().unwrap_err().to_string();
            assert!(err.contains(problem), "{spec:?}: {err}");
            assert!(err.contains("like 0..9,20,5%"), "{spec:?}: {err}");
        }
    }
}
