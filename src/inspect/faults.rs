//! Fault injection in `volley inspect`: `--drop P%`, `--duplicate P%`, `--delay D[~J]` and
//! `--close-after N`, restricted to the frames `--fault-filter` matches and drawn from a random
//! stream seeded by `--seed` and the connection number, so a run with the same traffic injects the
//! same faults.
//!
//! Faults keep the stream valid WebSocket: only whole messages (FIN set, text or binary) and pings
//! and pongs are dropped or duplicated, never close frames or fragments of a message. A Socket.IO
//! BINARY_EVENT or BINARY_ACK that is dropped takes its attachment frames with it, and is never
//! duplicated (its attachments would have to be repeated after it). A delay holds the frame and
//! everything behind it in that direction, so order is kept.

use std::time::Duration;

use crate::wire::filter::Filter;
use crate::wire::record::Record;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    #[error("{flag} {text:?}: write a percentage from 0% to 100%, e.g. 5% or 0.5%")]
    Percent { flag: &'static str, text: String },
    #[error(
        "--delay {text:?}: write a duration with an optional jitter, e.g. 50ms or 50ms~10ms ({detail})"
    )]
    Delay { text: String, detail: String },
}

/// Parses `5%` into 0.05.
pub fn parse_percent(flag: &'static str, text: &str) -> Result<f64, FaultError> {
    let err = || FaultError::Percent {
        flag,
        text: text.to_string(),
    };
    let number: f64 = text
        .trim()
        .strip_suffix('%')
        .ok_or_else(err)?
        .trim()
        .parse()
        .map_err(|_| err())?;
    if !(0.0..=100.0).contains(&number) {
        return Err(err());
    }
    Ok(number / 100.0)
}

/// Parses `50ms` or `50ms~10ms` (a delay drawn uniformly from 40 to 60 ms).
pub fn parse_delay(text: &str) -> Result<(Duration, Duration), FaultError> {
    let err = |detail: String| FaultError::Delay {
        text: text.to_string(),
        detail,
    };
    let (base, jitter) = text.split_once('~').unwrap_or((text, "0s"));
    let base = crate::units::parse_duration(base.trim()).map_err(|e| err(e.to_string()))?;
    let jitter = crate::units::parse_duration(jitter.trim()).map_err(|e| err(e.to_string()))?;
    Ok((base, jitter))
}

/// The faults to inject, shared by every connection.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    /// Probability of dropping a matching frame.
    pub drop: f64,
    /// Probability of sending a matching frame twice.
    pub duplicate: f64,
    /// Delay and jitter for every matching frame.
    pub delay: Option<(Duration, Duration)>,
    /// Close the connection after forwarding this many matching frames.
    pub close_after: Option<u64>,
    /// Which frames faults may hit (all, when empty).
    pub filter: Filter,
    pub seed: u64,
}

impl FaultPlan {
    pub fn is_active(&self) -> bool {
        self.drop > 0.0
            || self.duplicate > 0.0
            || self.delay.is_some()
            || self.close_after.is_some()
    }
}

/// What to do with one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub drop: bool,
    pub duplicate: bool,
    pub delay: Option<Duration>,
    /// Close the connection once this frame is forwarded (or dropped). `--close-after` counts the
    /// matching frames of both directions of a connection, so the relay decides this one.
    pub close_after: bool,
}

impl Decision {
    pub const FORWARD: Decision = Decision {
        drop: false,
        duplicate: false,
        delay: None,
        close_after: false,
    };
}

/// The fault draws of one direction of one connection.
pub struct ConnFaults {
    rng: fastrand::Rng,
}

impl ConnFaults {
    pub fn new(plan: &FaultPlan, conn: u64) -> ConnFaults {
        // Mix the connection number in, so connections draw different but repeatable faults.
        let seed = plan.seed ^ conn.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        ConnFaults {
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// Decides the fate of a decoded frame; None when the frame does not match the fault filter.
    /// `droppable`: whether dropping keeps the stream valid; `duplicable` likewise for sending it
    /// twice.
    pub fn decide(
        &mut self,
        plan: &FaultPlan,
        record: &Record,
        droppable: bool,
        duplicable: bool,
    ) -> Option<Decision> {
        if !plan.is_active() || !plan.filter.matches(record) {
            return None;
        }
        // Draw every number whatever the outcome, so one fault's setting does not shift another's.
        let drop_draw = self.rng.f64();
        let dup_draw = self.rng.f64();
        let jitter_draw = self.rng.f64();
        if droppable && drop_draw < plan.drop {
            return Some(Decision {
                drop: true,
                ..Decision::FORWARD
            });
        }
        let delay = plan.delay.map(|(base, jitter)| {
            let offset = jitter.as_secs_f64() * (2.0 * jitter_draw - 1.0);
            Duration::from_secs_f64((base.as_secs_f64() + offset).max(0.0))
        });
        Some(Decision {
            drop: false,
            duplicate: duplicable && dup_draw < plan.duplicate,
            delay,
            close_after: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_and_delays_parse_with_clear_errors() {
        assert_eq!(parse_percent("--drop", "5%").unwrap(), 0.05);
        assert_eq!(parse_percent("--drop", "0.5 %").unwrap(), 0.005);
        assert!(
            parse_percent("--drop", "5")
                .unwrap_err()
                .to_string()
                .contains("e.g. 5%")
        );
        assert!(parse_percent("--drop", "150%").is_err());
        assert_eq!(
            parse_delay("50ms~10ms").unwrap(),
            (Duration::from_millis(50), Duration::from_millis(10))
        );
        assert_eq!(
            parse_delay("1s").unwrap(),
            (Duration::from_secs(1), Duration::ZERO)
        );
        assert!(parse_delay("fast").is_err());
    }

    #[test]
    fn the_same_seed_and_connection_draw_the_same_faults() {
        let plan = FaultPlan {
            drop: 0.3,
            duplicate: 0.3,
            seed: 7,
            ..FaultPlan::default()
        };
        let draw = |conn| {
            let mut f = ConnFaults::new(&plan, conn);
            (0..200)
                .map(|_| {
                    let d = f.decide(&plan, &Record::default(), true, true).unwrap();
                    (d.drop, d.duplicate)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
        let drops = draw(1).iter().filter(|d| d.0).count();
        assert!((30..90).contains(&drops), "{drops} of 200 at 30%");
    }

    #[test]
    fn frames_outside_the_fault_filter_are_not_matched() {
        let plan = FaultPlan {
            close_after: Some(3),
            filter: "dir=s2c".parse().unwrap(),
            ..FaultPlan::default()
        };
        let mut f = ConnFaults::new(&plan, 1);
        let up = Record {
            dir: Some(crate::wire::record::Dir::C2s),
            ..Record::default()
        };
        let down = Record {
            dir: Some(crate::wire::record::Dir::S2c),
            ..Record::default()
        };
        assert_eq!(f.decide(&plan, &up, true, true), None);
        assert_eq!(f.decide(&plan, &down, true, true), Some(Decision::FORWARD));
    }
}
