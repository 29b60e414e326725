//! Durations, rates, counts, sizes and duration ranges as a user writes them (`units`), on the
//! command line and in scenario files.
//!
//! The input is split at newlines and each line read as each kind. Whatever parses is written
//! back as volley writes it (run.json, the TOML of a plan's scenario, the flags of `--processes`
//! children) and parses to the same value.

use crate::units::{self, DurationRange};

pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for line in text.split('\n') {
        if let Ok(duration) = units::parse_duration(line) {
            let written = units::format_duration(duration);
            assert_eq!(
                units::parse_duration(&written),
                Ok(duration),
                "{line:?} parsed to {duration:?}, written as {written:?}"
            );
        }
        if let Ok(rate) = units::parse_rate(line) {
            assert!(rate.events > 0 && !rate.per.is_zero(), "{line:?}: {rate:?}");
            let written = rate.to_string();
            assert_eq!(
                units::parse_rate(&written),
                Ok(rate),
                "{line:?} parsed to {rate:?}, written as {written:?}"
            );
        }
        if let Ok(range) = units::parse_duration_range(line) {
            check_range(line, range);
        }
        if let Ok(count) = units::parse_count(line) {
            assert_eq!(
                units::parse_count(&count.to_string()),
                Ok(count),
                "{line:?}"
            );
        }
        if let Ok(size) = units::parse_size(line) {
            let written = format!("{size}B");
            assert_eq!(
                units::parse_size(&written),
                Ok(size),
                "{line:?} as {written:?}"
            );
        }
    }
}

fn check_range(line: &str, range: DurationRange) {
    assert!(range.low <= range.high, "{line:?}: {range:?}");
    let drawn = range.draw();
    assert!(
        (range.low..=range.high).contains(&drawn),
        "{line:?}: drew {drawn:?} from {range:?}"
    );
    let mean = range.mean();
    assert!(
        range.low <= mean && mean <= range.high,
        "{line:?}: mean {mean:?}"
    );
    let written = range.to_string();
    assert_eq!(
        units::parse_duration_range(&written),
        Ok(range),
        "{line:?} parsed to {range:?}, written as {written:?}"
    );
}
