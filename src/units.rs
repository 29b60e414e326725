//! One parser for every number a user types: durations (`250ms`, `1m30s`), rates (`5/s`, `5/10s`,
//! `10k/s`) and counts (`200`, `10k`, `1.5M`). The scenario file and the command line both use it,
//! so a value means the same thing wherever it is written.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a duration, rate or count did not parse; the message shows the expected format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("`{0}` is not a duration: write a number and a unit, like 250ms, 30s, 1m30s or 2h")]
    Duration(String),
    #[error("`{0}` is not a rate: write events per time, like 5/s, 100/m, 5/10s or 10k/s")]
    Rate(String),
    #[error("`{0}` is not a count: write a whole number, like 200, 10k or 1.5M")]
    Count(String),
    #[error("`{0}` is not a duration or a range: write 2s, or 1s..3s for a random time between")]
    DurationRange(String),
    #[error("`{0}` is not a size: write bytes with a unit, like 512B, 4KiB or 1MiB")]
    Size(String),
}

/// Parses `250ms`, `30s`, `1m30s`, `1.5s`, `2h`, `500us`. A bare number has no unit and is refused:
/// `30` could mean seconds or milliseconds, and guessing wrong silently would waste a run.
pub fn parse_duration(input: &str) -> Result<Duration, UnitError> {
    let err = || UnitError::Duration(input.to_string());
    let s = input.trim();
    if s.is_empty() {
        return Err(err());
    }
    let mut total_ns: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        if num_len == 0 {
            return Err(err());
        }
        let number: f64 = rest[..num_len].parse().map_err(|_| err())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_ns = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" | "sec" => 1e9,
            "m" | "min" => 60e9,
            "h" => 3600e9,
            _ => return Err(err()),
        };
        rest = &rest[unit_len..];
        total_ns += number * unit_ns;
    }
    if !total_ns.is_finite() || total_ns > u64::MAX as f64 {
        return Err(err());
    }
    Ok(Duration::from_nanos(total_ns.round() as u64))
}

/// Parses `200`, `10k`, `1.5M`, `2G` into a whole number.
pub fn parse_count(input: &str) -> Result<u64, UnitError> {
    let err = || UnitError::Count(input.to_string());
    let s = input.trim().replace('_', "");
    let (digits, scale) = match s.chars().last() {
        Some('k' | 'K') => (&s[..s.len() - 1], 1e3),
        Some('m' | 'M') => (&s[..s.len() - 1], 1e6),
        Some('g' | 'G') => (&s[..s.len() - 1], 1e9),
        _ => (&s[..], 1.0),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(err());
    }
    let value: f64 = digits.parse().map_err(|_| err())?;
    let scaled = value * scale;
    if scaled.fract() != 0.0 || scaled > u64::MAX as f64 {
        return Err(err());
    }
    Ok(scaled as u64)
}

/// A rate: `events` every `per`. Kept as a ratio rather than a float so that schedules built on it
/// place the k-th event at exactly `k * per / events`, with no drift over long runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub events: u64,
    pub per: Duration,
}

impl Rate {
    pub fn per_second(&self) -> f64 {
        self.events as f64 / self.per.as_secs_f64()
    }
}

/// Parses `5/s`, `100/m`, `5/10s`, `10k/s`, `0.5/s`.
pub fn parse_rate(input: &str) -> Result<Rate, UnitError> {
    let err = || UnitError::Rate(input.to_string());
    let (count, per) = input.trim().split_once('/').ok_or_else(err)?;
    let per = per.trim();
    let per = match per {
        "ms" | "s" | "sec" | "m" | "min" | "h" => parse_duration(&format!("1{per}")),
        other => parse_duration(other),
    }
    .map_err(|_| err())?;
    let count = count.trim();
    // Fractional counts such as 0.5/s become 1 event per 2 s, keeping the ratio whole.
    let (events, per) = match parse_count(count) {
        Ok(n) => (n, per),
        Err(_) => {
            let value: f64 = count.parse().map_err(|_| err())?;
            if !(value > 0.0 && value.is_finite()) {
                return Err(err());
            }
            let scale = 1000.0;
            let per_ns = per.as_nanos() as f64 * scale;
            (
                (value * scale).round() as u64,
                Duration::from_nanos(per_ns as u64),
            )
        }
    };
    if events == 0 || per.is_zero() {
        return Err(err());
    }
    Ok(Rate { events, per })
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.per == Duration::from_secs(1) {
            write!(f, "{}/s", self.events)
        } else {
            write!(f, "{}/{}", self.events, format_duration(self.per))
        }
    }
}

/// Formats a duration the way the parser reads it back (`1m30s`, `250ms`).
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_string();
    }
    let ns = d.as_nanos();
    if ns % 1_000_000_000 == 0 {
        let mut secs = d.as_secs();
        let mut out = String::new();
        for (unit, size) in [("h", 3600), ("m", 60), ("s", 1)] {
            if secs >= size {
                out.push_str(&format!("{}{unit}", secs / size));
                secs %= size;
            }
        }
        out
    } else if ns % 1_000_000 == 0 {
        format!("{}ms", ns / 1_000_000)
    } else if ns % 1_000 == 0 {
        format!("{}us", ns / 1_000)
    } else {
        format!("{ns}ns")
    }
}

/// The unit a latency in µs reads best in: (µs per unit, suffix, decimals).
pub fn us_scale(us: f64) -> (f64, &'static str, usize) {
    match us.abs() {
        v if v < 1_000.0 => (1.0, "µs", 0),
        v if v < 1_000_000.0 => (1e3, "ms", 2),
        _ => (1e6, "s", 2),
    }
}

/// A latency in µs for people: `850µs`, `12.35ms`, `1.25s`.
pub fn format_us(us: f64) -> String {
    let (per, suffix, decimals) = us_scale(us);
    format!("{:.decimals$}{suffix}", us / per)
}

macro_rules! text_unit {
    ($name:ident, $inner:ty, $parse:path, $show:expr) => {
        /// A value written as text in a scenario file or on the command line.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name(pub $inner);

        impl FromStr for $name {
            type Err = UnitError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $parse(s).map($name)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let show: fn(&$inner) -> String = $show;
                s.serialize_str(&show(&self.0))
            }
        }
    };
}

text_unit!(DurationText, Duration, parse_duration, |d| format_duration(
    *d
));
text_unit!(RateText, Rate, parse_rate, |r| r.to_string());
text_unit!(
    DurationRangeText,
    DurationRange,
    parse_duration_range,
    |r| r.to_string()
);
text_unit!(SizeText, u64, parse_size, |n| format!("{n}B"));

/// A duration or a range of them (`"2s"`, `"1s..3s"`): think times and lifetimes, drawn
/// uniformly from the range each time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationRange {
    pub low: Duration,
    pub high: Duration,
}

impl DurationRange {
    /// One draw from the range.
    pub fn draw(&self) -> Duration {
        if self.high <= self.low {
            return self.low;
        }
        let span = (self.high - self.low).as_nanos() as u64;
        self.low + Duration::from_nanos(fastrand::u64(..=span))
    }

    /// The middle of the range.
    pub fn mean(&self) -> Duration {
        (self.low + self.high) / 2
    }
}

impl fmt::Display for DurationRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.low == self.high {
            f.write_str(&format_duration(self.low))
        } else {
            write!(
                f,
                "{}..{}",
                format_duration(self.low),
                format_duration(self.high)
            )
        }
    }
}

/// Parses `2s` or `1s..3s` (LOW <= HIGH).
pub fn parse_duration_range(input: &str) -> Result<DurationRange, UnitError> {
    let err = || UnitError::DurationRange(input.to_string());
    let (low, high) = input.split_once("..").unwrap_or((input, input));
    let low = parse_duration(low).map_err(|_| err())?;
    let high = parse_duration(high).map_err(|_| err())?;
    if high < low {
        return Err(err());
    }
    Ok(DurationRange { low, high })
}

/// Parses a byte size: `512B`, `4KiB`, `4KB` (1000), `1MiB`, `1MB`, or a bare number of bytes.
pub fn parse_size(input: &str) -> Result<u64, UnitError> {
    let err = || UnitError::Size(input.to_string());
    let s = input.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let number: f64 = s[..split].parse().map_err(|_| err())?;
    let unit = match s[split..].trim() {
        "" | "B" => 1.0,
        "KB" | "kB" => 1e3,
        "KiB" => 1024.0,
        "MB" => 1e6,
        "MiB" => 1024.0 * 1024.0,
        _ => return Err(err()),
    };
    let bytes = number * unit;
    if !bytes.is_finite() || bytes > (1u64 << 32) as f64 {
        return Err(err());
    }
    Ok(bytes.round() as u64)
}

/// A count written either as a TOML integer (`200`) or as text (`"10k"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct CountValue(pub u64);

impl FromStr for CountValue {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_count(s).map(CountValue)
    }
}

impl<'de> Deserialize<'de> for CountValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = CountValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number like 200 or a string like \"10k\"")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<CountValue, E> {
                u64::try_from(v)
                    .map(CountValue)
                    .map_err(|_| E::custom(UnitError::Count(v.to_string())))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<CountValue, E> {
                Ok(CountValue(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CountValue, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A ramp: connect every client over a duration (`"5s"`) or at a rate (`"500/s"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ramp {
    Over(Duration),
    At(Rate),
}

impl Ramp {
    /// How long connecting `clients` takes.
    pub fn length(&self, clients: u64) -> Duration {
        match *self {
            Ramp::Over(d) => d,
            Ramp::At(rate) => {
                let ns = rate.per.as_nanos() * clients as u128 / rate.events as u128;
                Duration::from_nanos(ns.min(u64::MAX as u128) as u64)
            }
        }
    }
}

impl FromStr for Ramp {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains('/') {
            parse_rate(s).map(Ramp::At)
        } else {
            parse_duration(s).map(Ramp::Over)
        }
    }
}

impl fmt::Display for Ramp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ramp::Over(d) => f.write_str(&format_duration(*d)),
            Ramp::At(r) => write!(f, "{r}"),
        }
    }
}

impl<'de> Deserialize<'de> for Ramp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Ramp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_read_naturally() {
        assert_eq!(format_us(850.0), "850µs");
        assert_eq!(format_us(12_345.0), "12.35ms");
        assert_eq!(format_us(1_250_000.0), "1.25s");
        assert_eq!(format_us(-2_500.0), "-2.50ms");
    }

    #[test]
    fn durations_accept_units_and_compounds() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("500us").unwrap(), Duration::from_micros(500));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn durations_without_unit_or_with_unknown_unit_are_refused() {
        for bad in ["30", "", "s", "5 parsecs", "1x", "-1s", "1..2s"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn ranges_and_sizes_read_naturally() {
        let r = parse_duration_range("1s..3s").unwrap();
        assert_eq!(
            (r.low, r.high),
            (Duration::from_secs(1), Duration::from_secs(3))
        );
        assert_eq!(r.to_string(), "1s..3s");
        for _ in 0..100 {
            let d = r.draw();
            assert!(d >= r.low && d <= r.high);
        }
        let fixed = parse_duration_range("250ms").unwrap();
        assert_eq!(
            (fixed.draw(), fixed.to_string().as_str()),
            (Duration::from_millis(250), "250ms")
        );
        assert!(parse_duration_range("3s..1s").is_err());
        assert!(parse_duration_range("1s..").is_err());
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("4KB"), Ok(4000));
        assert_eq!(parse_size("1.5MiB"), Ok(1_572_864));
        assert_eq!(parse_size("300"), Ok(300));
        assert!(parse_size("4 apples").is_err());
        assert!(parse_size("99999MiB").is_err());
    }

    #[test]
    fn counts_accept_suffixes() {
        assert_eq!(parse_count("200").unwrap(), 200);
        assert_eq!(parse_count("10k").unwrap(), 10_000);
        assert_eq!(parse_count("1.5M").unwrap(), 1_500_000);
        assert_eq!(parse_count("1_000").unwrap(), 1000);
        assert!(parse_count("1.5").is_err());
        assert!(parse_count("ten").is_err());
    }

    #[test]
    fn rates_keep_an_exact_ratio() {
        let r = parse_rate("5/s").unwrap();
        assert_eq!((r.events, r.per), (5, Duration::from_secs(1)));
        let r = parse_rate("5/10s").unwrap();
        assert_eq!((r.events, r.per), (5, Duration::from_secs(10)));
        assert_eq!(parse_rate("10k/s").unwrap().events, 10_000);
        assert_eq!(parse_rate("100/m").unwrap().per, Duration::from_secs(60));
        assert!((parse_rate("0.5/s").unwrap().per_second() - 0.5).abs() < 1e-9);
        for bad in ["5", "0/s", "5/x", "/s", "-1/s"] {
            assert!(parse_rate(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn ramp_is_a_duration_or_a_rate() {
        assert_eq!(
            "5s".parse::<Ramp>().unwrap().length(100),
            Duration::from_secs(5)
        );
        assert_eq!(
            "500/s".parse::<Ramp>().unwrap().length(1000),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn formatting_round_trips() {
        for text in ["1m30s", "250ms", "2h", "500us", "0s"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
