//! Threshold expressions of the CI gate: `METRIC[.STAT] OP VALUE`, e.g. `fanout.p99 < 50ms`,
//! `errors.rate < 0.1%`, `fanout.lost == 0`, `echo.count >= 10k`.
//!
//! STAT is one of p50 p90 p95 p99 p99.9 max min mean (latency, compared with a duration), count (a
//! number) and rate (a share, compared with a percentage). Without a STAT the name is a counter
//! (`fanout.lost`, `errors`), compared with a number. A bad expression is an error that names the
//! column where it goes wrong.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::metrics::{EXPECT_COUNTERS, ErrorKind, RUN_COUNTERS};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad threshold {text:?} at column {column}: {message}")]
pub struct ThresholdError {
    pub text: String,
    /// 1-based column in `text`.
    pub column: usize,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    /// A percentile as written (p99.9 is 99.9).
    Percentile(f64),
    Max,
    Min,
    Mean,
    Count,
    Rate,
}

impl Stat {
    pub(crate) fn parse(text: &str) -> Option<Stat> {
        Some(match text {
            "max" => Stat::Max,
            "min" => Stat::Min,
            "mean" => Stat::Mean,
            "count" => Stat::Count,
            "rate" => Stat::Rate,
            _ => {
                let percent: f64 = text.strip_prefix('p')?.parse().ok()?;
                if !(0.0..=100.0).contains(&percent) {
                    return None;
                }
                Stat::Percentile(percent)
            }
        })
    }

    /// As written in expressions: `p99`, `p99.9`, `max`.
    pub fn name(self) -> String {
        match self {
            Stat::Percentile(p) => format!("p{p}"),
            Stat::Max => "max".into(),
            Stat::Min => "min".into(),
            Stat::Mean => "mean".into(),
            Stat::Count => "count".into(),
            Stat::Rate => "rate".into(),
        }
    }

    pub fn is_latency(self) -> bool {
        matches!(
            self,
            Stat::Percentile(_) | Stat::Max | Stat::Min | Stat::Mean
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    pub fn holds(self, actual: f64, limit: f64) -> bool {
        match self {
            Op::Lt => actual < limit,
            Op::Le => actual <= limit,
            Op::Gt => actual > limit,
            Op::Ge => actual >= limit,
            Op::Eq => actual == limit,
            Op::Ne => actual != limit,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }
}

/// The limit, in the unit its statistic is measured in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    Duration(Duration),
    /// A share: 0.1% is 0.001.
    Share(f64),
    Number(f64),
}

/// One parsed threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// As written, for verdicts.
    pub text: String,
    /// The metric or counter name (`fanout`, `errors`, `fanout.lost`).
    pub metric: String,
    pub stat: Option<Stat>,
    pub op: Op,
    pub limit: Limit,
    /// The limit as written (`50ms`).
    pub limit_text: String,
}

impl Threshold {
    /// The figure judged: `fanout.p99`, `fanout.lost`.
    pub fn metric_label(&self) -> String {
        match self.stat {
            Some(stat) => format!("{}.{}", self.metric, stat.name()),
            None => self.metric.clone(),
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

const OPS: [(&str, Op); 6] = [
    ("<=", Op::Le),
    (">=", Op::Ge),
    ("==", Op::Eq),
    ("!=", Op::Ne),
    ("<", Op::Lt),
    (">", Op::Gt),
];

impl FromStr for Threshold {
    type Err = ThresholdError;

    fn from_str(text: &str) -> Result<Threshold, ThresholdError> {
        let err = |at: usize, message: String| ThresholdError {
            text: text.to_string(),
            column: text[..at.min(text.len())].chars().count() + 1,
            message,
        };
        let (at, op_text, op) = OPS
            .iter()
            .filter_map(|(symbol, op)| text.find(symbol).map(|at| (at, *symbol, *op)))
            .min_by_key(|(at, symbol, _)| (*at, std::cmp::Reverse(symbol.len())))
            .ok_or_else(|| {
                err(
                    text.len(),
                    "expected METRIC.STAT OP VALUE, e.g. `fanout.p99 < 50ms` (OP: < <= > >= == !=)"
                        .into(),
                )
            })?;
        let name = text[..at].trim();
        if name.is_empty() {
            return Err(err(
                0,
                "a metric name comes first, e.g. `fanout.p99`".into(),
            ));
        }
        if let Some(bad) = name.find(|c: char| !(c.is_alphanumeric() || "._-".contains(c))) {
            let column = text.find(name).unwrap_or(0) + bad;
            return Err(err(
                column,
                format!(
                    "unexpected {:?} in the metric name",
                    &name[bad..bad + name[bad..].chars().next().map_or(1, char::len_utf8)]
                ),
            ));
        }
        // The statistic is the longest known suffix after a dot (`p99.9` holds a dot itself).
        let (metric, stat) = name
            .match_indices('.')
            .find_map(|(dot, _)| Stat::parse(&name[dot + 1..]).map(|s| (&name[..dot], Some(s))))
            .unwrap_or((name, None));
        let value_at = at + op_text.len();
        let value = text[value_at..].trim();
        let value_column =
            value_at + (text[value_at..].len() - text[value_at..].trim_start().len());
        if value.is_empty() {
            return Err(err(
                value_column,
                "a value follows the operator, e.g. `50ms`, `0.1%`, `0`".into(),
            ));
        }
        let limit = parse_limit(value).map_err(|m| err(value_column, m))?;
        let expected = match stat {
            Some(s) if s.is_latency() => "a duration, e.g. 50ms",
            Some(Stat::Rate) => "a percentage, e.g. 0.1%",
            _ => "a number, e.g. 0 or 10k",
        };
        let fits = matches!(
            (stat, limit),
            (Some(s), Limit::Duration(_)) if s.is_latency()
        ) || matches!((stat, limit), (Some(Stat::Rate), Limit::Share(_)))
            || matches!((stat, limit), (None | Some(Stat::Count), Limit::Number(_)));
        if !fits {
            let message = match (stat, limit) {
                (None, Limit::Duration(_)) => format!(
                    "a duration is compared with a latency statistic: `{name}.p99` (p50 p90 p95 \
                     p99 p99.9 max min mean)"
                ),
                (None, Limit::Share(_)) => {
                    format!("a percentage is compared with a share: `{name}.rate`")
                }
                _ => format!("`{name}` is compared with {expected}"),
            };
            return Err(err(value_column, message));
        }
        Ok(Threshold {
            text: text.trim().to_string(),
            metric: metric.to_string(),
            stat,
            op,
            limit,
            limit_text: value.to_string(),
        })
    }
}

fn parse_limit(value: &str) -> Result<Limit, String> {
    if let Some(percent) = value.strip_suffix('%') {
        let share: f64 = percent
            .trim()
            .parse()
            .map_err(|_| format!("{value:?} is not a percentage"))?;
        return Ok(Limit::Share(share / 100.0));
    }
    if value.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        if let Ok(number) = value.parse::<f64>() {
            return Ok(Limit::Number(number));
        }
        if let Ok(count) = crate::units::parse_count(value) {
            return Ok(Limit::Number(count as f64));
        }
        if let Ok(duration) = crate::units::parse_duration(value) {
            return Ok(Limit::Duration(duration));
        }
    }
    Err(format!(
        "{value:?} is not a duration (50ms), a percentage (0.1%) or a number (10k)"
    ))
}

/// Where a threshold was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Scenario,
    CommandLine,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Scenario => "scenario",
            Origin::CommandLine => "command line",
        }
    }
}

/// A threshold as a run uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct GateThreshold {
    pub threshold: Threshold,
    pub origin: Origin,
    /// Stop the run as soon as the threshold cannot pass any more.
    pub abort: bool,
    /// Not checked for aborting before this much of the run has gone.
    pub abort_after: Duration,
}

/// Checks, before a run, that a name can exist in it: `latency` are the run's latency metrics,
/// `expects` its expects' names. Returns what is wrong.
pub fn check_name(
    metric: &str,
    stat: Option<Stat>,
    latency: &[String],
    expects: &[String],
) -> Result<(), String> {
    let is_latency = latency.iter().any(|m| m == metric);
    let is_counter = RUN_COUNTERS.contains(&metric)
        || metric
            .strip_prefix("errors.")
            .is_some_and(|kind| ErrorKind::ALL.iter().any(|k| k.as_str() == kind))
        || expects.iter().any(|e| {
            metric
                .strip_prefix(e.as_str())
                .and_then(|r| r.strip_prefix('.'))
                .is_some_and(|c| EXPECT_COUNTERS.contains(&c))
        });
    let known = || {
        let mut names: Vec<String> = latency.iter().map(|m| format!("{m}.p99")).collect();
        names.extend(["errors.rate".to_string(), "errors".to_string()]);
        names.extend(expects.iter().map(|e| format!("{e}.lost")));
        names.join(", ")
    };
    match stat {
        None | Some(Stat::Count) if is_counter => Ok(()),
        Some(Stat::Rate) if is_counter => Ok(()),
        Some(Stat::Count) if is_latency => Ok(()),
        Some(Stat::Rate) if is_latency => Err(format!(
            "`{metric}.rate`: rate is a share of a counter, e.g. errors.rate or {metric}.lost.rate"
        )),
        None if is_latency => Err(format!(
            "`{metric}` is a latency metric: name a statistic, e.g. {metric}.p99 (p50 p90 p95 p99 \
             p99.9 max min mean count)"
        )),
        Some(_) if is_latency => Ok(()),
        Some(_) if is_counter => Err(format!(
            "`{metric}` is a counter: compare it as it is or as a share, e.g. `{metric} == 0` or \
             `{metric}.rate < 1%`"
        )),
        _ => Err(format!(
            "no metric or counter named `{metric}` in this scenario (for example: {})",
            known()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Threshold {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_issues_examples_parse_into_metric_stat_op_and_limit() {
        let t = parse("fanout.p99 < 50ms");
        assert_eq!(
            (t.metric.as_str(), t.stat, t.op, t.limit),
            (
                "fanout",
                Some(Stat::Percentile(99.0)),
                Op::Lt,
                Limit::Duration(Duration::from_millis(50))
            )
        );
        let t = parse("connect.p99.9<=1s");
        assert_eq!(t.stat, Some(Stat::Percentile(99.9)));
        assert_eq!(t.op, Op::Le);
        let t = parse("errors.rate < 0.1%");
        assert_eq!(
            (t.metric.as_str(), t.limit),
            ("errors", Limit::Share(0.001))
        );
        let t = parse("fanout.lost == 0");
        assert_eq!(
            (t.metric.as_str(), t.stat, t.limit),
            ("fanout.lost", None, Limit::Number(0.0))
        );
        let t = parse("echo.count >= 10k");
        assert_eq!(
            (t.stat, t.limit),
            (Some(Stat::Count), Limit::Number(10_000.0))
        );
        assert!(t.op.holds(10_000.0, 10_000.0));
        assert_eq!(parse("a.max != 2ms").op, Op::Ne);
    }

    #[test]
    fn bad_expressions_name_the_column_and_what_was_expected() {
        let e = "fanout.p99 50ms".parse::<Threshold>().unwrap_err();
        assert!(e.message.contains("OP VALUE"), "{e}");
        let e = "fanout.p99 < 5 parsecs".parse::<Threshold>().unwrap_err();
        assert_eq!(e.column, 14);
        let e = "fanout.p99 < 0.1%".parse::<Threshold>().unwrap_err();
        assert!(e.message.contains("a duration"), "{e}");
        let e = "errors.rate < 5".parse::<Threshold>().unwrap_err();
        assert!(e.message.contains("a percentage"), "{e}");
        let e = "fan out.p99 < 5ms".parse::<Threshold>().unwrap_err();
        assert_eq!(e.column, 4);
        let e = " < 5ms".parse::<Threshold>().unwrap_err();
        assert!(e.message.contains("metric name"), "{e}");
        let e = "x.p99 <".parse::<Threshold>().unwrap_err();
        assert_eq!(e.column, 8);
    }

    #[test]
    fn names_are_checked_before_a_run() {
        let latency = ["connect".to_string(), "fanout".to_string()];
        let expects = ["fanout".to_string()];
        let check = |m: &str, s| check_name(m, s, &latency, &expects);
        assert_eq!(check("fanout", Some(Stat::Percentile(99.0))), Ok(()));
        assert_eq!(check("fanout.lost", None), Ok(()));
        assert_eq!(check("fanout.lost", Some(Stat::Rate)), Ok(()));
        assert_eq!(check("errors.reset", Some(Stat::Rate)), Ok(()));
        assert_eq!(check("errors", None), Ok(()));
        assert_eq!(check("connect", Some(Stat::Count)), Ok(()));
        assert!(
            check("fanout", Some(Stat::Rate))
                .unwrap_err()
                .contains("share")
        );
        assert!(check("fanout", None).unwrap_err().contains("statistic"));
        assert!(
            check("errors", Some(Stat::Max))
                .unwrap_err()
                .contains("counter")
        );
        assert!(
            check("echo", Some(Stat::Max))
                .unwrap_err()
                .contains("fanout.p99")
        );
        assert!(check("errors.nope", None).is_err());
    }
}
