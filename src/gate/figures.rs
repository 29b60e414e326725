//! The figures a gate judges: every latency metric and counter of one run, looked up by the names
//! threshold expressions and comparisons use.
//!
//! Names:
//! - a latency metric (`connect`, each expect's name, `ack`, `reconnect`) with a statistic:
//!   `fanout.p99`, `connect.max`, `echo.count` (samples);
//! - counters: `sent`, `received`, `connects`, `connect_failures`, `errors`, `errors.<kind>`,
//!   `reconnects`, `reconnects_recovered`, `acks_sent`, `acks_lost`, and per expect
//!   `<expect>.sent|expected|received|lost|late|duplicate|reorder|gap|refilled`;
//! - shares, a counter with `.rate`: `errors.rate` and `errors.<kind>.rate` of the operations
//!   (connection attempts and events sent), `connect_failures.rate` of the connection attempts,
//!   `acks_lost.rate` of the acks asked for, `<expect>.<counter>.rate` of the expect's expected
//!   deliveries.
//!
//! Figures come from a run's `run.json` (which holds fixed percentiles) and, when they are at
//! hand, the full histograms (any percentile).

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::metrics::Interval;
use crate::results::run_json::{RunJson, Summary};
use crate::scenario::threshold::Stat;

/// Latency statistics of one metric, in µs.
#[derive(Debug, Clone, Default)]
struct Latency {
    count: u64,
    min: Option<f64>,
    max: Option<f64>,
    mean: Option<f64>,
    /// Fixed percentiles from run.json: (percent, µs).
    percentiles: Vec<(f64, f64)>,
    histogram: Option<Histogram<u64>>,
}

/// Why a figure has no value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Missing {
    #[error("no metric or counter named `{0}` in this run")]
    Unknown(String),
    #[error("`{0}` has no samples")]
    NoSamples(String),
    #[error("`{metric}` p{percent} needs the full histogram; run.json holds p50 p90 p95 p99 p99.9")]
    NoHistogram { metric: String, percent: f64 },
    #[error("`{0}.rate`: rate is a share of a counter, e.g. errors.rate or fanout.lost.rate")]
    NoRate(String),
    #[error("`{0}.count`: count is the number of samples of a latency metric")]
    NoCount(String),
}

/// The figures of one run.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    latency: BTreeMap<String, Latency>,
    counters: BTreeMap<String, u64>,
    /// Names of the expects.
    expects: Vec<String>,
    /// Elapsed seconds of the run.
    pub elapsed_s: f64,
}

impl Figures {
    /// The figures of a run.json.
    pub fn from_run(run: &RunJson) -> Figures {
        let mut figures = Figures::from_summary(&run.summary);
        figures.elapsed_s = run.elapsed_s.unwrap_or(0.0);
        figures
    }

    /// The figures of a run's summary (finished or still going), without full histograms.
    fn from_summary(summary: &Summary) -> Figures {
        let mut figures = Figures::default();
        for (name, stats) in &summary.latency {
            let number = |v: Option<u64>| v.map(|v| v as f64);
            figures.latency.insert(
                name.clone(),
                Latency {
                    count: stats.count,
                    min: number(stats.min_us),
                    max: number(stats.max_us),
                    mean: stats.mean_us,
                    percentiles: stats.percentiles(),
                    histogram: None,
                },
            );
        }
        for (name, n) in summary.counters.named() {
            figures.counters.insert(name.to_string(), n);
        }
        for (kind, n) in &summary.errors_by_kind {
            figures.counters.insert(format!("errors.{kind}"), *n);
        }
        for (name, counts) in &summary.expects {
            for (key, n) in counts.named() {
                figures.counters.insert(format!("{name}.{key}"), n);
            }
            figures.expects.push(name.clone());
        }
        figures
    }

    /// The figures of a run's totals (finished or still going), with the full histograms.
    pub fn from_totals(metric_names: &[String], totals: &Interval, elapsed: Duration) -> Figures {
        let mut figures = Figures::from_summary(&Summary::of(metric_names, totals));
        figures.elapsed_s = elapsed.as_secs_f64();
        for (name, h) in metric_names.iter().zip(&totals.histograms) {
            figures.set_histogram(name, h.clone());
        }
        figures
    }

    /// Gives a latency metric its full histogram (µs), so any percentile can be asked for.
    pub fn set_histogram(&mut self, metric: &str, histogram: Histogram<u64>) {
        let entry = self.latency.entry(metric.to_string()).or_default();
        entry.count = histogram.len();
        if !histogram.is_empty() {
            entry.min = Some(histogram.min() as f64);
            entry.max = Some(histogram.max() as f64);
            entry.mean = Some(histogram.mean());
        }
        entry.histogram = Some(histogram);
    }

    /// The latency metrics of the run.
    pub fn latency_metrics(&self) -> impl Iterator<Item = &str> {
        self.latency.keys().map(String::as_str)
    }

    /// The names of the run's expects.
    pub fn expects(&self) -> impl Iterator<Item = &str> {
        self.expects.iter().map(String::as_str)
    }

    /// The counters of the run with their values.
    pub fn counters(&self) -> impl Iterator<Item = (&str, u64)> {
        self.counters.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// A figure in its own unit: µs for latency statistics, a share (0.001 is 0.1%) for `rate`,
    /// a number for counts and counters.
    pub fn value(&self, metric: &str, stat: Option<Stat>) -> Result<f64, Missing> {
        match stat {
            Some(Stat::Rate) => self.share(metric),
            Some(Stat::Count) => match (self.latency.get(metric), self.counters.get(metric)) {
                (Some(l), _) => Ok(l.count as f64),
                (None, Some(&n)) => Ok(n as f64),
                (None, None) => Err(self.unknown(metric)),
            },
            None => self
                .counters
                .get(metric)
                .map(|&n| n as f64)
                .ok_or_else(|| self.unknown(metric)),
            Some(latency_stat) => {
                let l = self
                    .latency
                    .get(metric)
                    .ok_or_else(|| self.unknown(metric))?;
                if l.count == 0 {
                    return Err(Missing::NoSamples(metric.to_string()));
                }
                let none = || Missing::NoSamples(metric.to_string());
                match latency_stat {
                    Stat::Max => l.max.ok_or_else(none),
                    Stat::Min => l.min.ok_or_else(none),
                    Stat::Mean => l.mean.ok_or_else(none),
                    Stat::Percentile(percent) => match &l.histogram {
                        Some(h) => Ok(h.value_at_percentile(percent) as f64),
                        None => l
                            .percentiles
                            .iter()
                            .find(|(p, _)| (p - percent).abs() < 1e-9)
                            .map(|&(_, v)| v)
                            .ok_or(Missing::NoHistogram {
                                metric: metric.to_string(),
                                percent,
                            }),
                    },
                    Stat::Count | Stat::Rate => unreachable!("matched above"),
                }
            }
        }
    }

    /// A counter as a share of what it counts out of.
    fn share(&self, counter: &str) -> Result<f64, Missing> {
        let count = |name: &str| self.counters.get(name).copied();
        let numerator = count(counter).ok_or_else(|| {
            if self.latency.contains_key(counter) {
                Missing::NoRate(counter.to_string())
            } else {
                self.unknown(counter)
            }
        })?;
        let denominator = share_of(counter, &self.expects)
            .iter()
            .map(|name| count(name).unwrap_or(0))
            .sum::<u64>();
        Ok(if denominator == 0 {
            0.0
        } else {
            numerator as f64 / denominator as f64
        })
    }

    fn unknown(&self, name: &str) -> Missing {
        Missing::Unknown(name.to_string())
    }
}

/// The counters whose sum a counter's `rate` divides by.
fn share_of(counter: &str, expects: &[String]) -> Vec<String> {
    let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
    if counter == "errors" || counter.starts_with("errors.") {
        return names(&["connects", "connect_failures", "sent"]);
    }
    match counter {
        "connect_failures" | "connects" => names(&["connects", "connect_failures"]),
        "acks_lost" | "ack_retries" => names(&["acks_sent"]),
        "reconnects_recovered" => names(&["reconnects"]),
        "received" => names(&["sent"]),
        _ => match expects.iter().find(|e| {
            counter
                .strip_prefix(e.as_str())
                .is_some_and(|r| r.starts_with('.'))
        }) {
            Some(expect) => vec![format!("{expect}.expected")],
            None => names(&["sent"]),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run() -> RunJson {
        serde_json::from_value(json!({
            "elapsed_s": 10.0,
            "summary": {
                "latency": {
                    "connect": { "count": 0 },
                    "fanout": { "count": 4, "min_us": 100, "p50_us": 200, "p90_us": 300,
                                "p95_us": 350, "p99_us": 400, "p99_9_us": 400, "max_us": 400,
                                "mean_us": 250.0 }
                },
                "counters": { "sent": 990, "received": 4, "connects": 10, "connect_failures": 0,
                              "errors": 2, "reconnects": 0, "reconnects_recovered": 0,
                              "acks_sent": 0, "acks_lost": 0 },
                "errors_by_kind": { "reset": 2, "tls": 0 },
                "expects": { "fanout": { "sent": 2, "expected": 8, "received": 4, "lost": 4,
                                         "late": 0, "duplicate": 1, "reorder": 0, "gap": 0,
                                         "refilled": 0 } }
            }
        }))
        .unwrap()
    }

    #[test]
    fn figures_from_run_json_by_name() {
        let f = Figures::from_run(&run());
        let v = |m: &str, s| f.value(m, s);
        assert_eq!(v("fanout", Some(Stat::Percentile(99.0))), Ok(400.0));
        assert_eq!(v("fanout", Some(Stat::Mean)), Ok(250.0));
        assert_eq!(v("fanout", Some(Stat::Count)), Ok(4.0));
        assert_eq!(v("fanout.lost", None), Ok(4.0));
        assert_eq!(v("fanout.lost", Some(Stat::Rate)), Ok(0.5));
        assert_eq!(v("errors", Some(Stat::Rate)), Ok(2.0 / 1000.0));
        assert_eq!(v("errors.reset", Some(Stat::Rate)), Ok(2.0 / 1000.0));
        assert_eq!(v("acks_lost", Some(Stat::Rate)), Ok(0.0));
        assert_eq!(
            v("connect", Some(Stat::Percentile(99.0))),
            Err(Missing::NoSamples("connect".into()))
        );
        assert!(matches!(
            v("fanout", Some(Stat::Percentile(75.0))),
            Err(Missing::NoHistogram { .. })
        ));
        assert!(matches!(
            v("fanout", Some(Stat::Rate)),
            Err(Missing::NoRate(_))
        ));
        assert!(matches!(v("nope", None), Err(Missing::Unknown(_))));
    }

    #[test]
    fn a_histogram_answers_any_percentile() {
        let mut f = Figures::from_run(&run());
        let mut h = crate::metrics::new_histogram();
        for us in 1..=1000 {
            h.record(us).unwrap();
        }
        f.set_histogram("fanout", h);
        let p75 = f.value("fanout", Some(Stat::Percentile(75.0))).unwrap();
        assert!((749.0..=751.0).contains(&p75), "{p75}");
        assert_eq!(f.value("fanout", Some(Stat::Count)), Ok(1000.0));
    }
}
