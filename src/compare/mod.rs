//! `volley compare`: the figures of base runs against those of new runs, one verdict per figure:
//! which figures are compared, each side's value (the median of its runs), and whether a change
//! past its [`allowance`] is a regression, an improvement or noise (within the spread of repeated
//! runs). The rules are docs/ci-gate.md's, and `volley compare --help` says them short.
//!
//! Pure: figures in, verdicts out; [`wording`] puts them in words and tables, and [`load`] reads
//! the runs from their results folders.

pub mod allowance;
pub mod load;
pub mod wording;

use std::collections::BTreeSet;

use crate::gate::ci::Outcome;
use crate::gate::figures::{Figures, Missing};
use crate::metrics::ConnectPhase;
use crate::scenario::threshold::Stat;
use allowance::{Allowance, AllowanceError, AllowanceSource, Allowances};

/// The latency statistics compared by default.
pub const DEFAULT_LATENCY_STATS: [Stat; 6] = [
    Stat::Percentile(50.0),
    Stat::Percentile(90.0),
    Stat::Percentile(95.0),
    Stat::Percentile(99.0),
    Stat::Percentile(99.9),
    Stat::Mean,
];

/// Run-wide counters whose share is compared by default.
pub const DEFAULT_RUN_SHARES: [&str; 2] = ["errors", "connect_failures"];

/// Each expect's counters whose share is compared by default.
pub const DEFAULT_EXPECT_SHARES: [&str; 4] = ["lost", "late", "duplicate", "reorder"];

/// One run's figures and how to call it (its folder).
#[derive(Debug, Clone)]
pub struct ComparedRun {
    pub label: String,
    pub figures: Figures,
}

/// What came of one figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the allowance either way.
    Unchanged,
    /// Better by more than the allowance (and the spreads, with repeated runs).
    Improved,
    /// Past the allowance, but within the run-to-run spread: not a failure.
    Noise,
    /// Worse by more than the allowance (and the spreads, with repeated runs): a failure.
    Regressed,
    /// Not judged: some runs lack the figure.
    Skipped,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Unchanged => "ok",
            Verdict::Improved => "improved",
            Verdict::Noise => "noise",
            Verdict::Regressed => "regressed",
            Verdict::Skipped => "skipped",
        }
    }

    pub fn outcome(self) -> Outcome {
        match self {
            Verdict::Regressed => Outcome::Failed,
            Verdict::Skipped => Outcome::Skipped,
            _ => Outcome::Passed,
        }
    }
}

/// The unit a figure is kept in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Micros,
    /// 0.01 is 1%.
    Share,
}

/// One side's runs of one figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Side {
    pub runs: Vec<f64>,
    pub median: f64,
    /// Max − min of the runs; 0 for one run.
    pub spread: f64,
}

impl Side {
    /// The median and spread of the runs.
    pub fn of(runs: Vec<f64>) -> Side {
        let mut sorted = runs.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = match n {
            0 => 0.0,
            _ if n % 2 == 1 => sorted[n / 2],
            _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        };
        let spread = match (sorted.first(), sorted.last()) {
            (Some(min), Some(max)) => max - min,
            _ => 0.0,
        };
        Side {
            runs,
            median,
            spread,
        }
    }
}

/// One compared figure.
#[derive(Debug, Clone, PartialEq)]
pub struct FigureVerdict {
    /// `fanout.p99`, `errors.rate`.
    pub name: String,
    pub unit: Unit,
    pub verdict: Verdict,
    /// Each side, when every run of that side has the figure.
    pub base: Option<Side>,
    pub new: Option<Side>,
    pub allowance: Allowance,
    pub source: AllowanceSource,
    /// The allowed change in the figure's unit.
    pub allowed: f64,
    /// Why a skipped figure was skipped: which runs lack it.
    pub skipped: Option<String>,
}

/// The verdicts of one comparison.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub figures: Vec<FigureVerdict>,
    pub base_runs: Vec<String>,
    pub new_runs: Vec<String>,
    /// At least two runs on each side: changes within the spread are noise.
    pub noise_aware: bool,
    /// Figures no run has, e.g. "`reconnect` (no samples in any run)".
    pub not_compared: Vec<String>,
    /// Seconds all the compared runs took.
    pub time_s: f64,
}

impl Comparison {
    pub fn count(&self, verdict: Verdict) -> usize {
        self.figures.iter().filter(|f| f.verdict == verdict).count()
    }

    pub fn regressed(&self) -> bool {
        self.count(Verdict::Regressed) > 0
    }
}

/// Compares the new runs with the base runs. Errs when `--max-regression` names a figure of a
/// metric or counter no run has.
pub fn compare(
    base: &[ComparedRun],
    new: &[ComparedRun],
    allowances: &Allowances,
) -> Result<Comparison, AllowanceError> {
    let wanted = wanted_figures(base, new, allowances)?;
    let noise_aware = base.len() >= 2 && new.len() >= 2;
    let mut figures = Vec::new();
    let mut not_compared = BTreeSet::new();
    for (metric, stat) in wanted {
        let name = figure_name(&metric, stat);
        let unit = if stat == Stat::Rate {
            Unit::Share
        } else {
            Unit::Micros
        };
        let (allowance, source) = allowances.get(&metric, stat);
        let values = |runs: &[ComparedRun]| -> Vec<Result<f64, Missing>> {
            runs.iter()
                .map(|r| r.figures.value(&metric, Some(stat)))
                .collect()
        };
        let (base_values, new_values) = (values(base), values(new));
        let complete = |values: &[Result<f64, Missing>]| -> Option<Side> {
            values
                .iter()
                .map(|v| v.as_ref().ok().copied())
                .collect::<Option<Vec<f64>>>()
                .map(Side::of)
        };
        let (base_side, new_side) = (complete(&base_values), complete(&new_values));
        let mut verdict = FigureVerdict {
            name,
            unit,
            verdict: Verdict::Skipped,
            base: base_side.clone(),
            new: new_side.clone(),
            allowance,
            source,
            allowed: 0.0,
            skipped: None,
        };
        match (base_side, new_side) {
            (Some(b), Some(n)) => judge(&mut verdict, &b, &n, noise_aware),
            _ if base_values.iter().chain(&new_values).all(Result::is_err) => {
                let missing = base_values
                    .iter()
                    .chain(&new_values)
                    .find_map(|v| v.as_ref().err());
                if let Some(missing) = missing {
                    not_compared.insert(format!("`{metric}` ({} any run)", lack(missing)));
                }
                continue;
            }
            _ => {
                let why = [("base", base, &base_values), ("new", new, &new_values)]
                    .into_iter()
                    .filter_map(|(side, runs, values)| lacking(side, runs, values))
                    .collect::<Vec<_>>()
                    .join("; ");
                verdict.skipped = Some(why);
            }
        }
        figures.push(verdict);
    }
    let label = |runs: &[ComparedRun]| runs.iter().map(|r| r.label.clone()).collect();
    Ok(Comparison {
        figures,
        base_runs: label(base),
        new_runs: label(new),
        noise_aware,
        not_compared: not_compared.into_iter().collect(),
        time_s: base.iter().chain(new).map(|r| r.figures.elapsed_s).sum(),
    })
}

/// The figures to compare, in table order: each latency metric's statistics, then the shares.
fn wanted_figures(
    base: &[ComparedRun],
    new: &[ComparedRun],
    allowances: &Allowances,
) -> Result<Vec<(String, Stat)>, AllowanceError> {
    let runs = || base.iter().chain(new).map(|r| &r.figures);
    let latency: BTreeSet<&str> = runs().flat_map(Figures::latency_metrics).collect();
    let expects: BTreeSet<&str> = runs().flat_map(Figures::expects).collect();
    let counters: BTreeSet<&str> = runs()
        .flat_map(|f| f.counters().map(|(name, _)| name))
        .collect();
    for (metric, stat, item) in allowances.figures() {
        let (known, what, names) = match stat {
            Stat::Rate => (counters.contains(metric), "counter", &counters),
            _ => (latency.contains(metric), "latency metric", &latency),
        };
        if !known {
            let names: Vec<&str> = names.iter().copied().collect();
            return Err(AllowanceError {
                item: item.text.clone(),
                message: format!(
                    "no compared run has a {what} named `{metric}` (they have: {})",
                    names.join(", ")
                ),
            });
        }
    }
    let mut wanted: Vec<(String, Stat)> = Vec::new();
    let mut want = |metric: &str, stat: Stat| {
        if !wanted.iter().any(|(m, s)| m == metric && *s == stat) {
            wanted.push((metric.to_string(), stat));
        }
    };
    let every_metric_stats: Vec<Stat> = DEFAULT_LATENCY_STATS
        .into_iter()
        .chain(allowances.every_latency_stats())
        .collect();
    for metric in &latency {
        // The phases of connect explain `connect`, which is compared; a phase is compared when
        // its own figure is named: a fast one (TCP on a LAN) moves by more than 10% between runs
        // of one build.
        if ConnectPhase::of_metric(metric).is_none() {
            for &stat in &every_metric_stats {
                want(metric, stat);
            }
        }
        for (named, stat, _) in allowances.figures() {
            if named == *metric && stat != Stat::Rate {
                want(metric, stat);
            }
        }
    }
    for counter in DEFAULT_RUN_SHARES {
        want(counter, Stat::Rate);
    }
    for expect in &expects {
        for counter in DEFAULT_EXPECT_SHARES {
            want(&format!("{expect}.{counter}"), Stat::Rate);
        }
    }
    for (named, stat, _) in allowances.figures() {
        if stat == Stat::Rate {
            want(named, stat);
        }
    }
    Ok(wanted)
}

/// `fanout.p99`, `errors.rate`.
pub fn figure_name(metric: &str, stat: Stat) -> String {
    format!("{metric}.{}", stat.name())
}

fn lack(missing: &Missing) -> &'static str {
    match missing {
        Missing::NoSamples(_) => "no samples in",
        _ => "not in",
    }
}

/// Which runs of one side lack a figure, or None when all have it.
fn lacking(side: &str, runs: &[ComparedRun], values: &[Result<f64, Missing>]) -> Option<String> {
    let missing: Vec<(&str, &Missing)> = runs
        .iter()
        .zip(values)
        .filter_map(|(run, v)| v.as_ref().err().map(|m| (run.label.as_str(), m)))
        .collect();
    let (_, first) = missing.first()?;
    let what = lack(first);
    Some(if missing.len() == runs.len() {
        match runs.len() {
            1 => format!("{what} the {side} run"),
            _ => format!("{what} any {side} run"),
        }
    } else {
        let labels: Vec<&str> = missing.iter().map(|(label, _)| *label).collect();
        format!("{what} {side} run(s) {}", labels.join(", "))
    })
}

/// Judges one figure both sides have; higher is worse for every compared figure.
fn judge(figure: &mut FigureVerdict, base: &Side, new: &Side, noise_aware: bool) {
    let allowed = figure.allowance.of(base.median);
    let change = new.median - base.median;
    let spread = base.spread.max(new.spread);
    let within_noise = |amount: f64| noise_aware && amount <= spread;
    figure.allowed = allowed;
    figure.verdict = if change > allowed {
        if within_noise(change) {
            Verdict::Noise
        } else {
            Verdict::Regressed
        }
    } else if -change > allowed {
        if within_noise(-change) {
            Verdict::Noise
        } else {
            Verdict::Improved
        }
    } else {
        Verdict::Unchanged
    };
}

/// Crafted runs for the tests of the comparison and its summary.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use serde_json::json;

    /// A run whose `echo` p99 is `p99` µs (other statistics below it) with `errors` errors of
    /// 1,000 operations, and an expect `echo` that lost `lost` of 1,000.
    pub fn run(label: &str, p99: u64, errors: u64, lost: u64) -> ComparedRun {
        let doc = json!({
            "elapsed_s": 2.0,
            "summary": {
                "latency": {
                    "echo": { "count": 1000, "min_us": 10, "p50_us": p99 / 2, "p90_us": p99 / 2,
                              "p95_us": p99 / 2, "p99_us": p99, "p99_9_us": p99, "max_us": p99 * 3,
                              "mean_us": (p99 / 2) as f64 },
                    "reconnect": { "count": 0 }
                },
                "counters": { "sent": 990, "received": 990, "connects": 10,
                              "connect_failures": 0, "errors": errors, "reconnects": 0,
                              "reconnects_recovered": 0, "acks_sent": 0, "acks_lost": 0 },
                "errors_by_kind": { "reset": errors },
                "expects": { "echo": { "sent": 1000, "expected": 1000, "received": 1000 - lost,
                                       "lost": lost, "late": 0, "duplicate": 0, "reorder": 0,
                                       "gap": 0, "refilled": 0 } }
            }
        });
        ComparedRun {
            label: label.into(),
            figures: Figures::from_run(&serde_json::from_value(doc).unwrap()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::run;
    use super::*;
    use serde_json::json;

    fn verdict<'a>(c: &'a Comparison, name: &str) -> &'a FigureVerdict {
        c.figures
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no figure {name}"))
    }

    fn allowances(items: &[&str]) -> Allowances {
        Allowances::new(items.iter().map(|i| i.parse().unwrap()).collect()).unwrap()
    }

    #[test]
    fn medians_and_spreads_of_a_side() {
        let side = Side::of(vec![3.0, 1.0, 2.0]);
        assert_eq!((side.median, side.spread), (2.0, 2.0));
        let side = Side::of(vec![4.0, 1.0, 2.0, 3.0]);
        assert_eq!((side.median, side.spread), (2.5, 3.0));
        assert_eq!(Side::of(vec![7.0]).spread, 0.0);
    }

    #[test]
    fn the_default_figures_are_latency_statistics_and_shares() {
        let c = compare(
            &[run("a", 1000, 0, 0)],
            &[run("b", 1000, 0, 0)],
            &Allowances::default(),
        )
        .unwrap();
        let names: Vec<&str> = c.figures.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "echo.p50",
                "echo.p90",
                "echo.p95",
                "echo.p99",
                "echo.p99.9",
                "echo.mean",
                "errors.rate",
                "connect_failures.rate",
                "echo.lost.rate",
                "echo.late.rate",
                "echo.duplicate.rate",
                "echo.reorder.rate",
            ]
        );
        assert!(c.figures.iter().all(|f| f.verdict == Verdict::Unchanged));
        assert_eq!(c.not_compared, ["`reconnect` (no samples in any run)"]);
        assert!(!c.noise_aware);
        assert_eq!(c.time_s, 4.0);
    }

    #[test]
    fn a_phase_of_connect_is_compared_only_when_its_figure_is_named() {
        let with_phase = |label: &str, tls_us: u64| {
            let mut doc = json!({ "elapsed_s": 2.0, "summary": { "latency": {
                "connect": { "count": 10, "p50_us": 900, "p90_us": 900, "p95_us": 900,
                             "p99_us": 900, "p99_9_us": 900, "max_us": 900, "mean_us": 900.0 },
                "connect_tls": { "count": 10, "p50_us": tls_us, "p90_us": tls_us,
                                 "p95_us": tls_us, "p99_us": tls_us, "p99_9_us": tls_us,
                                 "max_us": tls_us, "mean_us": tls_us as f64 } } } });
            doc["summary"]["counters"] = json!({ "connects": 10 });
            ComparedRun {
                label: label.into(),
                figures: Figures::from_run(&serde_json::from_value(doc).unwrap()),
            }
        };
        // TLS got twice as slow while connect stayed: not judged unless asked for.
        let (base, new) = ([with_phase("a", 100)], [with_phase("b", 200)]);
        let c = compare(&base, &new, &Allowances::default()).unwrap();
        assert!(c.figures.iter().all(|f| !f.name.starts_with("connect_tls")));
        assert!(!c.regressed());
        assert_eq!(verdict(&c, "connect.p99").verdict, Verdict::Unchanged);
        let c = compare(&base, &new, &allowances(&["connect_tls.p99=10%"])).unwrap();
        assert_eq!(verdict(&c, "connect_tls.p99").verdict, Verdict::Regressed);
        assert!(c.figures.iter().all(|f| f.name != "connect_tls.p50"));
        // A statistic's key for every metric does not bring the phases in.
        let c = compare(&base, &new, &allowances(&["p99=10%"])).unwrap();
        assert!(!c.regressed());
    }

    #[test]
    fn a_change_within_the_spreads_is_noise_and_beyond_them_a_regression() {
        let base = [
            run("a1", 1000, 0, 0),
            run("a2", 1200, 0, 0),
            run("a3", 1600, 0, 0),
        ];
        let noisy = [
            run("b1", 1350, 0, 0),
            run("b2", 1400, 0, 0),
            run("b3", 1500, 0, 0),
        ];
        let c = compare(&base, &noisy, &Allowances::default()).unwrap();
        assert!(c.noise_aware);
        let p99 = verdict(&c, "echo.p99");
        assert_eq!(p99.verdict, Verdict::Noise, "{p99:?}");
        assert_eq!(p99.base.as_ref().unwrap().median, 1200.0);
        assert_eq!(p99.base.as_ref().unwrap().spread, 600.0);
        assert!(!c.regressed());

        let slow = [
            run("b1", 1900, 0, 0),
            run("b2", 2000, 0, 0),
            run("b3", 2100, 0, 0),
        ];
        let c = compare(&base, &slow, &Allowances::default()).unwrap();
        let p99 = verdict(&c, "echo.p99");
        assert_eq!(p99.verdict, Verdict::Regressed);
        assert_eq!(p99.new.as_ref().unwrap().spread, 200.0);
        assert!(c.regressed());
    }

    #[test]
    fn single_runs_are_judged_by_the_allowance_alone() {
        let c = compare(
            &[run("a", 1000, 0, 0)],
            &[run("b", 1101, 0, 0)],
            &Allowances::default(),
        )
        .unwrap();
        assert_eq!(verdict(&c, "echo.p99").verdict, Verdict::Regressed);
        assert_eq!(verdict(&c, "echo.p50").verdict, Verdict::Unchanged);
        assert!(!c.noise_aware);
        // Exactly the allowance is not more than the allowance.
        let c = compare(
            &[run("a", 1000, 0, 0)],
            &[run("b", 1100, 0, 0)],
            &Allowances::default(),
        )
        .unwrap();
        assert_eq!(verdict(&c, "echo.p99").verdict, Verdict::Unchanged);
    }

    #[test]
    fn improvements_beyond_the_allowance_and_spreads() {
        let base = [run("a1", 2000, 0, 0), run("a2", 2100, 0, 0)];
        let new = [run("b1", 1000, 0, 0), run("b2", 1050, 0, 0)];
        let c = compare(&base, &new, &Allowances::default()).unwrap();
        assert_eq!(verdict(&c, "echo.p99").verdict, Verdict::Improved);
        let wide = [run("b1", 1000, 0, 0), run("b2", 3000, 0, 0)];
        let c = compare(&base, &wide, &Allowances::default()).unwrap();
        // Medians 2050 → 2000: within 10%.
        assert_eq!(verdict(&c, "echo.p99").verdict, Verdict::Unchanged);
    }

    #[test]
    fn shares_default_to_an_absolute_allowance_of_a_tenth_of_a_point() {
        // 0 → 1 error in 1,000 operations is exactly 0.1 pp: allowed; 2 are not.
        let c = compare(
            &[run("a", 1000, 0, 0)],
            &[run("b", 1000, 1, 0)],
            &Allowances::default(),
        )
        .unwrap();
        assert_eq!(verdict(&c, "errors.rate").verdict, Verdict::Unchanged);
        let c = compare(
            &[run("a", 1000, 0, 0)],
            &[run("b", 1000, 2, 5)],
            &Allowances::default(),
        )
        .unwrap();
        let errors = verdict(&c, "errors.rate");
        assert_eq!(errors.verdict, Verdict::Regressed);
        assert_eq!(errors.allowed, 0.001);
        assert_eq!(verdict(&c, "echo.lost.rate").verdict, Verdict::Regressed);
    }

    #[test]
    fn given_allowances_apply_and_name_extra_figures() {
        let items = [
            "p99=100%",
            "echo.p50=1ms",
            "max=10%",
            "errors.reset.rate=0.5",
            "rate=0.01",
        ];
        let c = compare(
            &[run("a", 1000, 0, 0)],
            &[run("b", 1900, 2, 0)],
            &allowances(&items),
        )
        .unwrap();
        assert_eq!(verdict(&c, "echo.p99").verdict, Verdict::Unchanged);
        assert_eq!(verdict(&c, "echo.p50").allowed, 1000.0);
        assert_eq!(verdict(&c, "echo.max").verdict, Verdict::Regressed);
        assert_eq!(verdict(&c, "errors.reset.rate").verdict, Verdict::Unchanged);
        assert_eq!(verdict(&c, "errors.rate").verdict, Verdict::Unchanged);
        assert_eq!(verdict(&c, "echo.p90").source, AllowanceSource::Default);
    }

    #[test]
    fn a_named_figure_no_run_has_is_an_error() {
        let e = compare(
            &[run("a", 1000, 0, 0)],
            &[run("b", 1000, 0, 0)],
            &allowances(&["ehco.p99=5ms"]),
        )
        .unwrap_err();
        assert_eq!(e.item, "ehco.p99=5ms");
        assert!(e.message.contains("(they have: echo, reconnect)"), "{e}");
        let e = compare(
            &[run("a", 1000, 0, 0)],
            &[run("b", 1000, 0, 0)],
            &allowances(&["echo.lots.rate=0"]),
        )
        .unwrap_err();
        assert!(e.message.contains("counter named `echo.lots`"), "{e}");
    }

    #[test]
    fn a_figure_only_one_side_has_is_skipped_with_why() {
        let mut new = run("b", 1000, 0, 0);
        let doc = json!({ "summary": { "latency": {
            "fanout": { "count": 5, "min_us": 1, "p50_us": 1, "p90_us": 1, "p95_us": 1,
                        "p99_us": 1, "p99_9_us": 1, "max_us": 1, "mean_us": 1.0 } } } });
        new.figures = Figures::from_run(&serde_json::from_value(doc).unwrap());
        let c = compare(&[run("a", 1000, 0, 0)], &[new], &Allowances::default()).unwrap();
        let fanout = verdict(&c, "fanout.p99");
        assert_eq!(fanout.verdict, Verdict::Skipped);
        assert_eq!(fanout.skipped.as_deref(), Some("not in the base run"));
        let echo = verdict(&c, "echo.p99");
        assert_eq!(echo.skipped.as_deref(), Some("not in the new run"));
        assert!(!c.regressed());
    }
}
