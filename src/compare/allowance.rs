//! How much worse a figure may get before `volley compare` calls it a regression:
//! `--max-regression p99=10%,fanout.p99=5ms,errors.rate=0.01`.
//!
//! A key is a statistic alone (`p99`: every latency metric's p99; `rate`: every compared share) or
//! one figure by its full name (`fanout.p99`, `fanout.lost.rate`). A value is `N%`, a change
//! relative to the base value; a duration (`5ms`), an absolute change of a latency; or a bare
//! number, an absolute change in the figure's own unit, which for shares is a share (`0.01` is one
//! percentage point). A bare number for a latency is refused (µs or ms? volley does not guess),
//! except `0`.
//!
//! Without a key, latency statistics may get 10% worse and shares 0.001 (0.1 percentage point)
//! worse: see [`Allowances::DEFAULT_LATENCY`] and [`Allowances::DEFAULT_SHARE`].

use std::fmt;
use std::str::FromStr;

use crate::scenario::threshold::Stat;

/// A bad `--max-regression` item; the message names it and shows the format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--max-regression `{item}`: {message}")]
pub struct AllowanceError {
    pub item: String,
    pub message: String,
}

/// How much worse a figure may get.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Allowance {
    /// A fraction of the base value: 10% is 0.1.
    Relative(f64),
    /// In the figure's own unit: µs for latency, a share for rates (0.01 is one percentage point).
    Absolute(f64),
}

impl Allowance {
    /// The allowed change in the figure's unit, against a base value.
    pub fn of(self, base: f64) -> f64 {
        match self {
            Allowance::Relative(fraction) => fraction * base.abs(),
            Allowance::Absolute(amount) => amount,
        }
    }
}

/// What a key covers.
#[derive(Debug, Clone, PartialEq)]
pub enum AllowanceKey {
    /// A latency statistic of every latency metric (`p99`).
    EveryLatency(Stat),
    /// Every compared share (`rate`).
    EveryShare,
    /// One figure: a latency metric's statistic (`fanout.p99`) or a counter's share
    /// (`fanout.lost.rate`, stat [`Stat::Rate`]).
    Figure { metric: String, stat: Stat },
}

/// One `KEY=VALUE` of `--max-regression`.
#[derive(Debug, Clone, PartialEq)]
pub struct AllowanceItem {
    pub key: AllowanceKey,
    pub allowance: Allowance,
    /// As written, for messages.
    pub text: String,
}

impl FromStr for AllowanceItem {
    type Err = AllowanceError;

    fn from_str(text: &str) -> Result<AllowanceItem, AllowanceError> {
        let text = text.trim();
        let err = |message: String| AllowanceError {
            item: text.to_string(),
            message,
        };
        let (key_text, value) = text.split_once('=').ok_or_else(|| {
            err("expected KEY=VALUE, e.g. p99=10%, fanout.p99=5ms or errors.rate=0.01".into())
        })?;
        let (key_text, value) = (key_text.trim(), value.trim());
        let key = parse_key(key_text).map_err(err)?;
        let is_share = matches!(
            key,
            AllowanceKey::EveryShare
                | AllowanceKey::Figure {
                    stat: Stat::Rate,
                    ..
                }
        );
        let allowance = parse_value(value, is_share).map_err(err)?;
        Ok(AllowanceItem {
            key,
            allowance,
            text: text.to_string(),
        })
    }
}

/// A latency statistic as a key names it: any percentile (the full histograms come from
/// latency.hlog), mean, max or min.
fn latency_stat(text: &str) -> Option<Stat> {
    Stat::parse(text).filter(|stat| !matches!(stat, Stat::Count | Stat::Rate))
}

fn parse_key(key: &str) -> Result<AllowanceKey, String> {
    const KNOWN: &str = "a statistic (p50 p90 p95 p99 p99.9 or any pNN, mean max min, or rate \
                         for every share) or a full name (fanout.p99, errors.rate, \
                         fanout.lost.rate)";
    if key.is_empty() {
        return Err(format!("the key is empty: write {KNOWN}"));
    }
    if key == "rate" {
        return Ok(AllowanceKey::EveryShare);
    }
    if let Some(stat) = latency_stat(key) {
        return Ok(AllowanceKey::EveryLatency(stat));
    }
    if let Some(metric) = key.strip_suffix(".rate") {
        return match metric {
            "" => Err(format!("`{key}` names no counter: write {KNOWN}")),
            _ => Ok(AllowanceKey::Figure {
                metric: metric.to_string(),
                stat: Stat::Rate,
            }),
        };
    }
    // The statistic is the longest known suffix after a dot (`p99.9` holds a dot itself).
    let figure = key
        .match_indices('.')
        .find_map(|(dot, _)| latency_stat(&key[dot + 1..]).map(|stat| (&key[..dot], stat)));
    match figure {
        Some((metric, stat)) if !metric.is_empty() => Ok(AllowanceKey::Figure {
            metric: metric.to_string(),
            stat,
        }),
        _ if key == "count" || key.ends_with(".count") => Err(
            "counts grow with a run's length and are not compared: compare a share instead, \
             e.g. fanout.lost.rate"
                .into(),
        ),
        _ if key.split('.').any(names_a_percentile) => Err(format!(
            "`{key}`: a percentile is p and a number from 0 to 100 (p75, p99.99); write {KNOWN}"
        )),
        _ => Err(format!("`{key}` is not {KNOWN}")),
    }
}

/// `p75`, `p99`: a percentile, known or not.
fn names_a_percentile(part: &str) -> bool {
    part.strip_prefix('p')
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
}

fn parse_value(value: &str, is_share: bool) -> Result<Allowance, String> {
    const FORMAT: &str = "a relative change (10%), a duration for latency (5ms) or a number in \
                          the figure's unit for shares (0.01 is one percentage point)";
    let non_negative = |n: f64| n.is_finite() && n >= 0.0;
    if value.is_empty() {
        return Err(format!("the value is empty: write {FORMAT}"));
    }
    if let Some(percent) = value.strip_suffix('%') {
        return match percent.trim().parse::<f64>() {
            Ok(p) if non_negative(p) => Ok(Allowance::Relative(p / 100.0)),
            _ => Err(format!("`{value}` is not a percentage, e.g. 10%")),
        };
    }
    if let Ok(number) = value.parse::<f64>() {
        return match (non_negative(number), is_share) {
            (false, _) => Err(format!("`{value}`: an allowance cannot be negative")),
            (true, true) if number > 1.0 => Err(format!(
                "`{value}` is more than a whole share: a share's allowance is a number from 0 to \
                 1 (0.01 is one percentage point), or a relative change like 10%"
            )),
            (true, true) => Ok(Allowance::Absolute(number)),
            (true, false) if number == 0.0 => Ok(Allowance::Absolute(0.0)),
            (true, false) => Err(format!(
                "`{value}` has no unit: a latency takes a duration (5ms, 500us) or a relative \
                 change (10%)"
            )),
        };
    }
    match crate::units::parse_duration(value) {
        Ok(_) if is_share => Err(format!(
            "`{value}` is a duration, but a share takes a number (0.01 is one percentage point) \
             or a relative change (10%)"
        )),
        Ok(duration) => Ok(Allowance::Absolute(duration.as_nanos() as f64 / 1e3)),
        Err(_) => Err(format!("`{value}` is not {FORMAT}")),
    }
}

/// The allowances of one comparison: defaults, overridden by the keys given.
#[derive(Debug, Clone, Default)]
pub struct Allowances {
    items: Vec<AllowanceItem>,
}

/// Which rule set a figure's allowance.
#[derive(Debug, Clone, PartialEq)]
pub enum AllowanceSource {
    Default,
    /// The `--max-regression` item, as written.
    Given(String),
}

impl Allowances {
    /// A latency statistic may get 10% worse: tighter flags run-to-run jitter on a quiet machine,
    /// looser lets a real slowdown of a tenth through.
    pub const DEFAULT_LATENCY: Allowance = Allowance::Relative(0.10);
    /// A share may grow by 0.1 percentage point (one in a thousand). Absolute, because a healthy
    /// run's loss and error shares are 0, and any percentage of 0 is 0.
    pub const DEFAULT_SHARE: Allowance = Allowance::Absolute(0.001);

    /// The items given, checked for keys given twice.
    pub fn new(items: Vec<AllowanceItem>) -> Result<Allowances, AllowanceError> {
        for (i, item) in items.iter().enumerate() {
            if let Some(earlier) = items[..i].iter().find(|other| other.key == item.key) {
                return Err(AllowanceError {
                    item: item.text.clone(),
                    message: format!("the same key was already given as `{}`", earlier.text),
                });
            }
        }
        Ok(Allowances { items })
    }

    pub fn items(&self) -> &[AllowanceItem] {
        &self.items
    }

    /// The latency statistics named for every latency metric (`max=20%`).
    pub fn every_latency_stats(&self) -> impl Iterator<Item = Stat> + '_ {
        self.items.iter().filter_map(|item| match item.key {
            AllowanceKey::EveryLatency(stat) => Some(stat),
            _ => None,
        })
    }

    /// The figures named one by one, as (metric, stat).
    pub fn figures(&self) -> impl Iterator<Item = (&str, Stat, &AllowanceItem)> + '_ {
        self.items.iter().filter_map(|item| match &item.key {
            AllowanceKey::Figure { metric, stat } => Some((metric.as_str(), *stat, item)),
            _ => None,
        })
    }

    /// The allowance of one figure: its own key, else its statistic's key, else the default.
    pub fn get(&self, metric: &str, stat: Stat) -> (Allowance, AllowanceSource) {
        let own = |item: &&AllowanceItem| matches!(&item.key, AllowanceKey::Figure { metric: m, stat: s } if m == metric && *s == stat);
        let family = |item: &&AllowanceItem| match item.key {
            AllowanceKey::EveryLatency(s) => s == stat,
            AllowanceKey::EveryShare => stat == Stat::Rate,
            AllowanceKey::Figure { .. } => false,
        };
        match self
            .items
            .iter()
            .find(own)
            .or_else(|| self.items.iter().find(family))
        {
            Some(item) => (item.allowance, AllowanceSource::Given(item.text.clone())),
            None if stat == Stat::Rate => (Self::DEFAULT_SHARE, AllowanceSource::Default),
            None => (Self::DEFAULT_LATENCY, AllowanceSource::Default),
        }
    }
}

impl fmt::Display for AllowanceItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(text: &str) -> AllowanceItem {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn error(text: &str) -> String {
        text.parse::<AllowanceItem>().unwrap_err().to_string()
    }

    #[test]
    fn keys_are_a_statistic_alone_or_a_full_name() {
        assert_eq!(
            item("p99=10%").key,
            AllowanceKey::EveryLatency(Stat::Percentile(99.0))
        );
        assert_eq!(
            item("p99.9=10%").key,
            AllowanceKey::EveryLatency(Stat::Percentile(99.9))
        );
        assert_eq!(item("rate=0.01").key, AllowanceKey::EveryShare);
        assert_eq!(
            item("fanout.p99.9=5ms").key,
            AllowanceKey::Figure {
                metric: "fanout".into(),
                stat: Stat::Percentile(99.9)
            }
        );
        assert_eq!(
            item("fanout.lost.rate=0.001").key,
            AllowanceKey::Figure {
                metric: "fanout.lost".into(),
                stat: Stat::Rate
            }
        );
        assert_eq!(
            item("errors.rate=1%").key,
            AllowanceKey::Figure {
                metric: "errors".into(),
                stat: Stat::Rate
            }
        );
        assert_eq!(
            item("chat.v2.max=1s").key,
            AllowanceKey::Figure {
                metric: "chat.v2".into(),
                stat: Stat::Max
            }
        );
    }

    #[test]
    fn values_are_relative_durations_or_numbers_in_the_figures_unit() {
        assert_eq!(item("p99=10%").allowance, Allowance::Relative(0.1));
        assert_eq!(item("p99=5ms").allowance, Allowance::Absolute(5000.0));
        assert_eq!(item("p99=250us").allowance, Allowance::Absolute(250.0));
        assert_eq!(item("p99=0").allowance, Allowance::Absolute(0.0));
        assert_eq!(
            item("errors.rate=0.01").allowance,
            Allowance::Absolute(0.01)
        );
        assert_eq!(item("errors.rate=50%").allowance, Allowance::Relative(0.5));
        assert_eq!(Allowance::Relative(0.1).of(2000.0), 200.0);
        assert_eq!(Allowance::Absolute(0.01).of(0.5), 0.01);
    }

    #[test]
    fn any_percentile_is_a_statistic() {
        let key = |text: &str| text.parse::<AllowanceItem>().unwrap().key;
        assert_eq!(
            key("fanout.p75=10%"),
            AllowanceKey::Figure {
                metric: "fanout".into(),
                stat: Stat::Percentile(75.0)
            }
        );
        assert_eq!(
            key("p99.99=5ms"),
            AllowanceKey::EveryLatency(Stat::Percentile(99.99))
        );
        assert_eq!(
            key("chat.v2.p99.9=1ms"),
            AllowanceKey::Figure {
                metric: "chat.v2".into(),
                stat: Stat::Percentile(99.9)
            }
        );
    }

    #[test]
    fn bad_items_name_themselves_and_say_what_fits() {
        assert!(
            error("p99").contains("`p99`: expected KEY=VALUE"),
            "{}",
            error("p99")
        );
        assert!(error("p101=10%").contains("from 0 to 100"));
        assert!(error("fanout.p7x=10%").contains("from 0 to 100"));
        assert!(error("echo.count=10%").contains("counts grow"));
        assert!(error("latency=10%").contains("is not a statistic"));
        assert!(error("=10%").contains("key is empty"));
        assert!(error("p99=").contains("value is empty"));
        assert!(error("p99=10").contains("has no unit"));
        assert!(error("p99=-1ms").contains("not a relative change"));
        assert!(error("p99=-5%").contains("not a percentage"));
        assert!(error("p99=ten%").contains("not a percentage"));
        assert!(error("errors.rate=5ms").contains("is a duration"));
        assert!(error("errors.rate=2").contains("more than a whole share"));
        assert!(error("rate=-0.1").contains("cannot be negative"));
        assert!(error(".rate=0.1").contains("names no counter"));
    }

    #[test]
    fn a_figures_own_key_beats_its_statistics_key_which_beats_the_default() {
        let a = Allowances::new(vec![
            item("p99=20%"),
            item("fanout.p99=5ms"),
            item("rate=0.01"),
            item("fanout.lost.rate=0"),
        ])
        .unwrap();
        let p99 = Stat::Percentile(99.0);
        assert_eq!(a.get("fanout", p99).0, Allowance::Absolute(5000.0));
        assert_eq!(
            a.get("echo", p99),
            (
                Allowance::Relative(0.2),
                AllowanceSource::Given("p99=20%".into())
            )
        );
        assert_eq!(
            a.get("echo", Stat::Percentile(50.0)),
            (Allowances::DEFAULT_LATENCY, AllowanceSource::Default)
        );
        assert_eq!(a.get("fanout.lost", Stat::Rate).0, Allowance::Absolute(0.0));
        assert_eq!(a.get("errors", Stat::Rate).0, Allowance::Absolute(0.01));
        let defaults = Allowances::default();
        assert_eq!(
            defaults.get("errors", Stat::Rate).0,
            Allowances::DEFAULT_SHARE
        );
    }

    #[test]
    fn a_key_given_twice_is_refused() {
        let e = Allowances::new(vec![item("p99=10%"), item("p99 = 20%")]).unwrap_err();
        assert_eq!(e.item, "p99 = 20%");
        assert!(e.message.contains("`p99=10%`"), "{e}");
    }
}
