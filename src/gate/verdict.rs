//! Judging thresholds: each one against a run's [`Figures`], at the end of the run, and — for those
//! marked `abort` — once a second while it goes, to stop a run that can no longer pass.

use std::time::Duration;

use serde_json::Value;

use super::ci::{Check, CiChecks, Outcome};
use super::figures::{Figures, Missing};
use crate::results::ThresholdVerdict;
use crate::scenario::threshold::{GateThreshold, Limit, Op, Stat};
use crate::units::format_us;

/// Judges every threshold against the figures at the end of a run, into the verdicts run.json
/// records. A threshold whose figure is missing fails: a gate never passes on what it did not
/// measure. `aborted`: when each threshold stopped the run, if it did.
pub fn judge(
    gates: &[GateThreshold],
    figures: &Figures,
    aborted: &[Option<Duration>],
) -> Vec<ThresholdVerdict> {
    gates
        .iter()
        .enumerate()
        .map(|(i, gate)| {
            let t = &gate.threshold;
            let actual = figures.value(&t.metric, t.stat);
            let aborted_at = aborted.get(i).copied().flatten();
            let passed = aborted_at.is_none()
                && actual
                    .as_ref()
                    .is_ok_and(|&v| t.op.holds(v, limit_value(t.limit)));
            let actual_text = match &actual {
                Ok(value) => format_figure(*value, t.stat),
                Err(Missing::NoSamples(_)) => NO_SAMPLES.into(),
                Err(_) => NO_VALUE.into(),
            };
            ThresholdVerdict {
                expression: t.text.clone(),
                metric: Some(t.metric.clone()),
                stat: t.stat.map(Stat::name),
                op: Some(t.op.symbol().to_string()),
                limit: t.limit_text.clone(),
                actual: actual.as_ref().ok().copied(),
                actual_text: Some(actual_text),
                passed,
                abort: gate.abort,
                aborted_run_at_s: aborted_at.map(|d| d.as_secs_f64()),
                error: actual.err().map(|m| m.to_string()),
                source: Some(gate.origin.as_str().to_string()),
            }
        })
        .collect()
}

/// A verdict's actual text when the figure had no samples, and when it could not be had at all.
const NO_SAMPLES: &str = "no samples";
const NO_VALUE: &str = "n/a";

/// Whether a failing abort threshold can no longer pass, judged on the figures so far. Counters
/// and `max` only grow and `min` only falls, so a bound they have crossed stays crossed; a
/// percentile, a mean or a rate may still recover, but `abort` asks to stop on them as soon as they
/// fail (after `abort_after`). A lower bound on a count is never hopeless early; nor is a figure
/// with no samples yet.
pub fn hopeless(gate: &GateThreshold, figures: &Figures, elapsed: Duration) -> Option<f64> {
    if !gate.abort || elapsed < gate.abort_after {
        return None;
    }
    let t = &gate.threshold;
    let actual = figures.value(&t.metric, t.stat).ok()?;
    let limit = limit_value(t.limit);
    if t.op.holds(actual, limit) {
        return None;
    }
    let grows = matches!(t.stat, None | Some(Stat::Count | Stat::Max));
    let falls = matches!(t.stat, Some(Stat::Min));
    let can_recover = match t.op {
        Op::Lt | Op::Le => falls,
        Op::Gt | Op::Ge => grows,
        // Not yet equal: a count may still get there; past it, it cannot come back.
        Op::Eq => (grows && actual < limit) || (falls && actual > limit),
        Op::Ne => true,
    };
    (!can_recover).then_some(actual)
}

/// A limit in the unit figures use: µs for durations.
fn limit_value(limit: Limit) -> f64 {
    match limit {
        Limit::Duration(d) => d.as_secs_f64() * 1e6,
        Limit::Share(s) => s,
        Limit::Number(n) => n,
    }
}

/// A figure in its unit for people: a latency, a percentage or a number.
pub fn format_figure(value: f64, stat: Option<Stat>) -> String {
    match stat {
        Some(s) if s.is_latency() => format_us(value.round()),
        Some(Stat::Rate) => format_share(value),
        _ if value.fract() == 0.0 => format!("{value:.0}"),
        _ => format!("{value:.3}"),
    }
}

/// A share as a percentage with the digits that matter: `0%`, `0.0123%`, `12.5%`.
pub fn format_share(share: f64) -> String {
    let percent = share * 100.0;
    if percent == 0.0 {
        "0%".into()
    } else if percent.abs() >= 1.0 {
        format!("{percent:.2}%")
    } else {
        format!("{}%", significant(percent, 3))
    }
}

fn significant(x: f64, digits: i32) -> String {
    let magnitude = x.abs().log10().floor() as i32;
    let decimals = (digits - 1 - magnitude).max(0) as usize;
    format!("{x:.decimals$}")
}

/// The figure as the verdict shows it: `12.40ms`, `0.12%`, `no samples`.
fn actual_text(v: &ThresholdVerdict) -> &str {
    v.actual_text.as_deref().unwrap_or(NO_VALUE)
}

/// The verdicts as the checks CI reads (JUnit, Markdown, JSON).
pub fn checks(verdicts: &[ThresholdVerdict], scenario: &str, elapsed_s: f64) -> CiChecks {
    CiChecks {
        title: format!("volley thresholds: {scenario}"),
        suite: "volley.thresholds".into(),
        columns: vec!["threshold".into(), "actual".into(), "verdict".into()],
        checks: verdicts
            .iter()
            .map(|v| {
                let verdict = match (v.passed, v.aborted_run_at_s) {
                    (true, _) => "pass".to_string(),
                    (false, Some(at)) => format!("FAIL (aborted the run at {at:.0}s)"),
                    (false, None) => "FAIL".to_string(),
                };
                let message = match (&v.actual, &v.error) {
                    (None, Some(error)) => error.clone(),
                    _ => format!(
                        "{} was {} (limit {} {})",
                        v.metric_label(),
                        actual_text(v),
                        v.op.as_deref().unwrap_or("?"),
                        v.limit
                    ),
                };
                Check {
                    name: v.expression.clone(),
                    cells: vec![actual_text(v).to_string(), verdict],
                    outcome: if v.passed {
                        Outcome::Passed
                    } else {
                        Outcome::Failed
                    },
                    message,
                }
            })
            .collect(),
        notes: Vec::new(),
        json: serde_json::to_value(verdicts).unwrap_or(Value::Null),
        time_s: elapsed_s,
    }
}

/// The verdict table printed after the run's summary.
pub fn render(verdicts: &[ThresholdVerdict]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if verdicts.is_empty() {
        return out;
    }
    let failed = verdicts.iter().filter(|v| !v.passed).count();
    let _ = writeln!(
        out,
        "\nthresholds: {}",
        if failed == 0 {
            format!("all {} passed", verdicts.len())
        } else {
            format!("{failed} of {} FAILED", verdicts.len())
        }
    );
    let width = verdicts
        .iter()
        .map(|v| v.expression.chars().count())
        .max()
        .unwrap_or(0);
    for v in verdicts {
        let mark = if v.passed { "pass" } else { "FAIL" };
        // A figure that could not be had at all says why; one without samples says so.
        let mut detail = match (&v.error, actual_text(v)) {
            (Some(error), NO_VALUE) => error.clone(),
            (_, actual) => format!("actual {actual}"),
        };
        if let Some(at) = v.aborted_run_at_s {
            let _ = write!(detail, "; aborted the run at {at:.1}s");
        }
        let _ = writeln!(out, "  {mark}  {:<width$}  {}", v.expression, detail);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::threshold::Origin;
    use serde_json::json;

    fn gate(text: &str, abort: bool) -> GateThreshold {
        GateThreshold {
            threshold: text.parse().unwrap(),
            origin: Origin::Scenario,
            abort,
            abort_after: Duration::ZERO,
        }
    }

    fn figures() -> Figures {
        Figures::from_run(&serde_json::from_value(json!({
            "elapsed_s": 10.0,
            "summary": {
                "latency": {
                    "echo": { "count": 100, "min_us": 300, "p50_us": 900, "p90_us": 2000,
                              "p95_us": 4000, "p99_us": 12_400, "p99_9_us": 30_000,
                              "max_us": 31_000, "mean_us": 1500.0 },
                    "connect": { "count": 0 }
                },
                "counters": { "sent": 100, "received": 100, "connects": 10,
                              "connect_failures": 0, "errors": 1 },
                "errors_by_kind": { "reset": 1 },
                "expects": { "echo": { "sent": 100, "expected": 100, "received": 99, "lost": 1 } }
            }
        }))
        .unwrap())
    }

    #[test]
    fn each_threshold_passes_or_fails_on_its_figure() {
        let gates: Vec<GateThreshold> = [
            "echo.p99 < 50ms",
            "echo.p99 < 10ms",
            "echo.count >= 100",
            "errors.rate < 0.1%",
            "errors.rate <= 1%",
            "echo.lost == 0",
            "connect.p95 < 100ms",
            "echo.lost.rate < 2%",
        ]
        .iter()
        .map(|t| gate(t, false))
        .collect();
        let verdicts = judge(&gates, &figures(), &[]);
        let passed: Vec<bool> = verdicts.iter().map(|v| v.passed).collect();
        assert_eq!(passed, [true, false, true, false, true, false, false, true]);
        assert_eq!(verdicts[1].actual_text.as_deref(), Some("12.40ms"));
        assert_eq!(verdicts[3].actual_text.as_deref(), Some("0.909%"));
        assert_eq!(verdicts[6].actual_text.as_deref(), Some("no samples"));
        let json = serde_json::to_value(&verdicts[1]).unwrap();
        assert_eq!(json["stat"], "p99");
        assert_eq!(json["limit"], "10ms");
        assert_eq!(json["actual"], 12_400.0);
        let table = render(&verdicts);
        assert!(table.contains("4 of 8 FAILED"), "{table}");
        let s = checks(&verdicts, "echo", 10.0);
        assert_eq!(s.failures(), 4);
        assert_eq!(s.checks[1].message, "echo.p99 was 12.40ms (limit < 10ms)");
    }

    #[test]
    fn an_aborted_threshold_fails_whatever_its_figure_at_the_end() {
        let gates = [gate("echo.p99 < 50ms", true)];
        let verdicts = judge(&gates, &figures(), &[Some(Duration::from_secs(3))]);
        assert!(!verdicts[0].passed);
        assert!(render(&verdicts).contains("aborted the run at 3.0s"));
    }

    #[test]
    fn hopeless_only_when_the_figure_cannot_come_back() {
        let f = figures();
        let at = Duration::from_secs(5);
        let h = |text: &str| hopeless(&gate(text, true), &f, at).is_some();
        assert!(h("echo.lost == 0"), "a counter past its bound");
        assert!(h("errors < 1"));
        assert!(h("echo.max < 20ms"), "max only grows");
        assert!(
            h("echo.p99 < 10ms"),
            "abort asks to stop on a failing percentile"
        );
        assert!(h("errors.rate < 0.1%"));
        assert!(!h("echo.count >= 1000"), "a count may still get there");
        assert!(!h("echo.lost == 5"), "not there yet");
        assert!(h("echo.min > 1ms"), "min only falls");
        assert!(!h("echo.p99 < 50ms"), "passing");
        assert!(!h("connect.p99 < 1ms"), "no samples yet");
        assert!(hopeless(&gate("echo.lost == 0", false), &f, at).is_none());
        let later = GateThreshold {
            abort_after: Duration::from_secs(10),
            ..gate("echo.lost == 0", true)
        };
        assert!(hopeless(&later, &f, at).is_none());
    }
}
