//! A comparison in words and tables: each figure's verdict as a sentence with its figures, the
//! [`CiChecks`] (one check per compared figure, suite `volley.compare`) that becomes JUnit,
//! Markdown and JSON, and the aligned table printed on a terminal. Durations read as `850µs`,
//! `12.35ms`; shares as `0.02%`, their changes in percentage points (`+0.1pp`).

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{Comparison, FigureVerdict, Side, Unit, Verdict};
use crate::compare::allowance::{Allowance, AllowanceSource};
use crate::gate::ci::{Check, CiChecks};
use crate::units::{format_us, us_scale};

/// What came of one figure, with its figures: the JUnit failure message.
pub fn message(figure: &FigureVerdict, noise_aware: bool) -> String {
    let name = &figure.name;
    let (Some(base), Some(new)) = (&figure.base, &figure.new) else {
        return format!(
            "{name}: skipped, {}",
            figure.skipped.as_deref().unwrap_or("some runs lack it")
        );
    };
    let unit = figure.unit;
    let moved = format!(
        "{} → {}, {}",
        value_text(unit, base.median),
        value_text(unit, new.median),
        change_text(unit, base.median, new.median)
    );
    let allowed = format!(
        "{} ({})",
        amount_text(unit, figure.allowed),
        allowance_text(unit, figure.allowance)
    );
    let spreads = format!(
        "the spread of the runs (base {}, new {})",
        spread_text(unit, base),
        spread_text(unit, new)
    );
    match figure.verdict {
        Verdict::Regressed if noise_aware => format!(
            "{name} regressed: {moved}, worse by more than the allowed {allowed} and {spreads}"
        ),
        Verdict::Regressed => {
            format!("{name} regressed: {moved}, worse by more than the allowed {allowed}")
        }
        Verdict::Improved if noise_aware => format!(
            "{name} improved: {moved}, better by more than the allowed {allowed} and {spreads}"
        ),
        Verdict::Improved => {
            format!("{name} improved: {moved}, better by more than the allowed {allowed}")
        }
        Verdict::Noise => {
            format!("{name} noise: {moved}, past the allowed {allowed} but within {spreads}")
        }
        Verdict::Unchanged | Verdict::Skipped => {
            format!("{name} ok: {moved}, within the allowed {allowed}")
        }
    }
}

/// `850µs`, `12.35ms`, `1.25s`; shares as `0.02%`.
pub fn value_text(unit: Unit, value: f64) -> String {
    match unit {
        Unit::Micros => format_us(value),
        Unit::Share => format!("{}%", percent(value * 100.0)),
    }
}

/// The spread in the unit of the median's text: `±0.80ms` beside `12.10ms`; a spread below a
/// tenth of that unit gets a third decimal (`±0.015ms`) rather than rounding to nothing.
fn spread_text(unit: Unit, side: &Side) -> String {
    match unit {
        Unit::Micros => {
            let (per, suffix, decimals) = us_scale(side.median);
            let spread = side.spread / per;
            let decimals = if decimals > 0 && spread > 0.0 && spread < 0.1 {
                3
            } else {
                decimals
            };
            format!("±{spread:.decimals$}{suffix}")
        }
        Unit::Share => format!("±{}%", percent(side.spread * 100.0)),
    }
}

/// A side's cell: the median, and the spread when the side has several runs.
fn side_cell(unit: Unit, side: Option<&Side>) -> String {
    match side {
        None => "—".into(),
        Some(side) if side.runs.len() < 2 => value_text(unit, side.median),
        Some(side) => {
            let spread = spread_text(unit, side);
            let bare = spread.trim_end_matches(|c: char| c.is_alphabetic() || c == '%');
            format!("{} {bare}", value_text(unit, side.median))
        }
    }
}

/// An absolute amount of change, unsigned: `120µs`, `0.1pp`.
fn amount_text(unit: Unit, amount: f64) -> String {
    match unit {
        Unit::Micros => value_text(unit, amount),
        Unit::Share => format!("{}pp", percent(amount * 100.0)),
    }
}

/// `+490µs (+48.5%)`, `+0.02pp`, `0`.
fn change_text(unit: Unit, base: f64, new: f64) -> String {
    let change = new - base;
    if change == 0.0 {
        return "0".into();
    }
    let sign = if change > 0.0 { "+" } else { "−" };
    let absolute = format!("{sign}{}", amount_text(unit, change.abs()));
    if base == 0.0 {
        absolute
    } else {
        format!("{absolute} ({sign}{:.1}%)", (change / base * 100.0).abs())
    }
}

/// The allowance as a user writes it: `10%`, `5.00ms`, `0.1pp`.
fn allowance_text(unit: Unit, allowance: Allowance) -> String {
    match allowance {
        Allowance::Relative(fraction) => format!("{}%", percent(fraction * 100.0)),
        Allowance::Absolute(amount) => amount_text(unit, amount),
    }
}

/// A percentage with about three significant digits, trailing zeros dropped: `48.5`, `0.02`.
fn percent(p: f64) -> String {
    let decimals = match p.abs() {
        v if v == 0.0 || v >= 100.0 => 0,
        v if v >= 10.0 => 1,
        v if v >= 1.0 => 2,
        v if v >= 0.1 => 3,
        _ => 4,
    };
    let text = format!("{p:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// The notes said under the table: how the figures were judged, and what was not compared.
fn notes(comparison: &Comparison) -> Vec<String> {
    let (b, n) = (comparison.base_runs.len(), comparison.new_runs.len());
    let runs = |count: usize| if count == 1 { "run" } else { "runs" };
    let mut notes = vec![format!(
        "base: {} {}: {}",
        b,
        runs(b),
        comparison.base_runs.join(", ")
    )];
    notes.push(format!(
        "new: {} {}: {}",
        n,
        runs(n),
        comparison.new_runs.join(", ")
    ));
    if comparison.noise_aware {
        notes.push(
            "Values are the medians of each side's runs; ± is a side's spread (max − min of its \
             runs). A figure regresses only when its median got worse by more than its allowance \
             and by more than each side's spread; past the allowance but within a spread is \
             noise."
                .into(),
        );
    } else {
        notes.push(format!(
            "{}: volley cannot tell noise from a regression, so each figure is judged by its \
             allowance alone. Repeat the runs (--base DIR... --new DIR..., at least 2 on each \
             side) to judge changes against the run-to-run spread.",
            if b == 1 && n == 1 {
                "Single runs"
            } else {
                "A single run on one side"
            }
        ));
        if b > 1 || n > 1 {
            notes.push(
                "Values of the side with several runs are their medians; ± is their spread \
                 (max − min)."
                    .into(),
            );
        }
    }
    if !comparison.not_compared.is_empty() {
        notes.push(format!(
            "Not compared: {}.",
            comparison.not_compared.join(", ")
        ));
    }
    notes
}

/// The comparison as a gate summary: one check per compared figure.
pub fn checks(comparison: &Comparison, title: String, mut extra_notes: Vec<String>) -> CiChecks {
    let checks = comparison
        .figures
        .iter()
        .map(|f| {
            let (change, allowed) = match (&f.base, &f.new, f.verdict) {
                (Some(b), Some(n), v) if v != Verdict::Skipped => (
                    change_text(f.unit, b.median, n.median),
                    allowance_text(f.unit, f.allowance),
                ),
                _ => (String::new(), String::new()),
            };
            let verdict = match f.verdict {
                Verdict::Regressed => "REGRESSED".to_string(),
                Verdict::Skipped => format!(
                    "skipped: {}",
                    f.skipped.as_deref().unwrap_or("some runs lack it")
                ),
                v => v.as_str().to_string(),
            };
            Check {
                name: f.name.clone(),
                cells: vec![
                    side_cell(f.unit, f.base.as_ref()),
                    side_cell(f.unit, f.new.as_ref()),
                    change,
                    allowed,
                    verdict,
                ],
                outcome: f.verdict.outcome(),
                message: message(f, comparison.noise_aware),
            }
        })
        .collect();
    extra_notes.extend(notes(comparison));
    CiChecks {
        title,
        suite: "volley.compare".into(),
        columns: ["metric", "base", "new", "change", "allowed", "verdict"]
            .map(String::from)
            .to_vec(),
        checks,
        notes: extra_notes,
        json: detail(comparison),
        time_s: comparison.time_s,
    }
}

/// The comparison for machines: every figure with its runs, medians, spreads and verdict.
fn detail(comparison: &Comparison) -> Value {
    let side = |s: &Option<Side>| {
        s.as_ref()
            .map(|s| json!({ "median": s.median, "spread": s.spread, "runs": s.runs }))
    };
    let figures: Vec<Value> = comparison
        .figures
        .iter()
        .map(|f| {
            let change = match (&f.base, &f.new) {
                (Some(b), Some(n)) => Some(n.median - b.median),
                _ => None,
            };
            let change_pct = match (&f.base, change) {
                (Some(b), Some(c)) if b.median != 0.0 => Some(c / b.median * 100.0),
                _ => None,
            };
            let (kind, amount) = match f.allowance {
                Allowance::Relative(fraction) => ("relative", fraction),
                Allowance::Absolute(amount) => ("absolute", amount),
            };
            json!({
                "name": f.name,
                "unit": match f.unit { Unit::Micros => "us", Unit::Share => "share" },
                "verdict": f.verdict.as_str(),
                "base": side(&f.base),
                "new": side(&f.new),
                "change": change,
                "change_pct": change_pct,
                "allowance": { kind: amount },
                "allowance_from": match &f.source {
                    AllowanceSource::Default => "default".to_string(),
                    AllowanceSource::Given(text) => text.clone(),
                },
                "allowed": (f.verdict != Verdict::Skipped).then_some(f.allowed),
                "message": message(f, comparison.noise_aware),
            })
        })
        .collect();
    json!({
        "base_runs": comparison.base_runs,
        "new_runs": comparison.new_runs,
        "noise_aware": comparison.noise_aware,
        "regressed": comparison.count(Verdict::Regressed),
        "noise": comparison.count(Verdict::Noise),
        "improved": comparison.count(Verdict::Improved),
        "skipped": comparison.count(Verdict::Skipped),
        "figures": figures,
        "not_compared": comparison.not_compared,
    })
}

/// The summary for a terminal: title, an aligned table, the headline with the verdicts counted,
/// and the notes.
pub fn text(checks: &CiChecks, comparison: &Comparison) -> String {
    let mut out = format!("{}\n\n", checks.title);
    let rows: Vec<Vec<&str>> = std::iter::once(checks.columns.iter().map(String::as_str).collect())
        .chain(checks.checks.iter().map(|c| {
            std::iter::once(c.name.as_str())
                .chain(c.cells.iter().map(String::as_str))
                .collect()
        }))
        .collect();
    let columns = checks.columns.len();
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in &rows {
        let mut line = String::from(" ");
        for (i, cell) in row.iter().enumerate() {
            let pad = if i + 1 == row.len() {
                0
            } else {
                widths[i] - cell.chars().count()
            };
            let _ = write!(line, " {cell}{}", " ".repeat(pad + 1));
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let counted: Vec<String> = [(Verdict::Noise, "noise"), (Verdict::Improved, "improved")]
        .into_iter()
        .filter_map(|(verdict, word)| match comparison.count(verdict) {
            0 => None,
            n => Some(format!("{n} {word}")),
        })
        .collect();
    let _ = write!(out, "\n{}", checks.headline());
    if !counted.is_empty() {
        let _ = write!(out, " ({})", counted.join(", "));
    }
    out.push('\n');
    for note in &checks.notes {
        let _ = writeln!(out, "  {note}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::allowance::Allowances;
    use crate::compare::compare;
    use crate::compare::fixtures::run;
    use crate::gate::ci::Outcome;

    fn figure<'a>(c: &'a Comparison, name: &str) -> &'a FigureVerdict {
        c.figures.iter().find(|f| f.name == name).unwrap()
    }

    #[test]
    fn messages_carry_the_figures_the_allowance_and_the_spreads() {
        let base = [
            run("a1", 1000, 0, 0),
            run("a2", 1200, 0, 0),
            run("a3", 1600, 0, 0),
        ];
        let slow = [
            run("b1", 1900, 0, 0),
            run("b2", 2000, 0, 0),
            run("b3", 2100, 0, 0),
        ];
        let c = compare(&base, &slow, &Allowances::default()).unwrap();
        assert_eq!(
            message(figure(&c, "echo.p99"), c.noise_aware),
            "echo.p99 regressed: 1.20ms → 2.00ms, +800µs (+66.7%), worse by more than the \
             allowed 120µs (10%) and the spread of the runs (base ±0.60ms, new ±0.20ms)"
        );
        let c = compare(
            &[run("a", 1000, 0, 0)],
            &[run("b", 1000, 2, 0)],
            &Allowances::default(),
        )
        .unwrap();
        assert_eq!(
            message(figure(&c, "errors.rate"), c.noise_aware),
            "errors.rate regressed: 0% → 0.2%, +0.2pp, worse by more than the allowed 0.1pp \
             (0.1pp)"
        );
    }

    #[test]
    fn single_runs_say_that_noise_cannot_be_told() {
        let c = compare(
            &[run("a", 1000, 0, 0)],
            &[run("b", 1000, 0, 0)],
            &Allowances::default(),
        )
        .unwrap();
        let s = checks(&c, "t".into(), vec![]);
        assert!(
            s.notes
                .iter()
                .any(|n| n.starts_with("Single runs: volley cannot tell noise"))
        );
        let c = compare(
            &[run("a", 1000, 0, 0)],
            &[run("b1", 1000, 0, 0), run("b2", 1000, 0, 0)],
            &Allowances::default(),
        )
        .unwrap();
        let s = checks(&c, "t".into(), vec![]);
        assert!(
            s.notes
                .iter()
                .any(|n| n.starts_with("A single run on one side"))
        );
    }

    #[test]
    fn skipped_figures_are_skipped_checks_with_why() {
        let mut new = run("b", 1000, 0, 0);
        new.figures = crate::gate::figures::Figures::default();
        let c = compare(&[run("a", 1000, 0, 0)], &[new], &Allowances::default()).unwrap();
        let s = checks(&c, "t".into(), vec![]);
        assert!(s.passed());
        assert!(s.checks.iter().all(|c| c.outcome == Outcome::Skipped));
        assert_eq!(s.checks[0].cells[4], "skipped: not in the new run");
        assert_eq!(s.checks[0].message, "echo.p50: skipped, not in the new run");
        assert_eq!(s.checks[0].cells[0], "500µs");
        assert_eq!(s.checks[0].cells[1], "—");
    }

    #[test]
    fn figures_read_naturally() {
        assert_eq!(value_text(Unit::Micros, 850.0), "850µs");
        assert_eq!(value_text(Unit::Micros, 12_345.0), "12.35ms");
        assert_eq!(value_text(Unit::Micros, 1_250_000.0), "1.25s");
        assert_eq!(value_text(Unit::Share, 0.0002), "0.02%");
        assert_eq!(value_text(Unit::Share, 0.0), "0%");
        assert_eq!(value_text(Unit::Share, 0.5), "50%");
        let side = Side::of(vec![11_600.0, 12_100.0, 12_400.0]);
        assert_eq!(side_cell(Unit::Micros, Some(&side)), "12.10ms ±0.80");
        let side = Side::of(vec![1_117.0, 1_132.0]);
        assert_eq!(side_cell(Unit::Micros, Some(&side)), "1.12ms ±0.015");
        assert_eq!(change_text(Unit::Micros, 1000.0, 900.0), "−100µs (−10.0%)");
        assert_eq!(change_text(Unit::Share, 0.0, 0.0002), "+0.02pp");
        assert_eq!(
            allowance_text(Unit::Share, Allowance::Absolute(0.001)),
            "0.1pp"
        );
        assert_eq!(
            allowance_text(Unit::Micros, Allowance::Absolute(5000.0)),
            "5.00ms"
        );
    }

    #[test]
    fn the_summary_has_one_check_per_figure_and_a_text_table() {
        let c = compare(
            &[run("a", 1000, 0, 0)],
            &[run("b", 2000, 0, 0)],
            &Allowances::default(),
        )
        .unwrap();
        let s = checks(&c, "volley compare: echo".into(), vec!["warning: x".into()]);
        assert_eq!(s.suite, "volley.compare");
        assert_eq!(s.checks.len(), c.figures.len());
        assert_eq!(s.notes[0], "warning: x");
        assert_eq!(s.json["regressed"], 6);
        let t = text(&s, &c);
        assert!(
            t.contains(
                "  echo.p99               1.00ms  2.00ms  +1.00ms (+100.0%)  10%      REGRESSED"
            ),
            "{t}"
        );
        assert!(t.contains("FAILED: 6 of 12 checks"), "{t}");
    }
}
