//! One pacing model for everything that happens at a rate: client starts during the ramp, emits,
//! metric ticks. Event k is due at exactly `start + k * per / events`, computed from the start each
//! time, so long runs never drift and a late event does not push the later ones back (open model).

use std::time::{Duration, Instant};

use crate::units::Rate;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    start: Instant,
    per_ns: u128,
    events: u64,
}

impl Schedule {
    /// `rate.events` every `rate.per`, the first at `start`.
    pub fn at_rate(start: Instant, rate: Rate) -> Schedule {
        Schedule {
            start,
            per_ns: rate.per.as_nanos(),
            events: rate.events.max(1),
        }
    }

    /// `count` events spread evenly over `over`, the first at `start` (all at once for zero).
    pub fn spread(start: Instant, over: Duration, count: u64) -> Schedule {
        Schedule {
            start,
            per_ns: over.as_nanos(),
            events: count.max(1),
        }
    }

    /// When event `k` (from 0) is due.
    pub fn at(&self, k: u64) -> Instant {
        let offset = k as u128 * self.per_ns / self.events as u128;
        self.start + Duration::from_nanos(offset.min(u64::MAX as u128) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_fall_exactly_on_the_ratio_without_drift() {
        let t0 = Instant::now();
        let s = Schedule::at_rate(
            t0,
            Rate {
                events: 3,
                per: Duration::from_secs(1),
            },
        );
        assert_eq!(s.at(0), t0);
        assert_eq!(s.at(1), t0 + Duration::from_nanos(333_333_333));
        assert_eq!(s.at(3), t0 + Duration::from_secs(1));
        assert_eq!(s.at(3_000_000), t0 + Duration::from_secs(1_000_000));
    }

    #[test]
    fn spread_places_clients_evenly_and_zero_means_at_once() {
        let t0 = Instant::now();
        let s = Schedule::spread(t0, Duration::from_secs(2), 4);
        assert_eq!(s.at(2), t0 + Duration::from_secs(1));
        let now = Schedule::spread(t0, Duration::ZERO, 100);
        assert_eq!(now.at(99), t0);
    }
}
