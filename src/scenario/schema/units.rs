//! The schemas of the values written as text (durations, rates, counts, sizes): a string with a
//! pattern and a description that gives the format. Each pattern accepts at least what the parser
//! in `units` accepts (a test feeds both the same strings), so an editor never marks a valid value.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use crate::units::{CountValue, DurationRangeText, DurationText, Ramp, RateText, SizeText};

/// One or more `NUMBER UNIT` pairs: `250ms`, `1m30s`, `1.5s`.
const DURATION: &str = r"(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|sec|m|min|h))+";
/// A whole count with an optional suffix, `_` anywhere (`10k`, `1_000`), or a decimal number
/// (`0.5`, `1e3`), which a rate accepts.
const COUNT: &str = "[+]?[0-9_.]*[0-9][0-9_.]*([eE][+-]?[0-9]+)?([kKmMgG]_*)?";

pub(super) fn duration_pattern() -> String {
    format!(r"^\s*{DURATION}\s*$")
}

pub(super) fn duration_range_pattern() -> String {
    format!(r"^\s*{DURATION}\s*(\.\.\s*{DURATION}\s*)?$")
}

pub(super) fn rate_pattern() -> String {
    format!(r"^\s*{COUNT}\s*/\s*(ms|s|sec|m|min|h|{DURATION})\s*$")
}

pub(super) fn count_pattern() -> &'static str {
    r"^\s*[0-9_.]*[0-9][0-9_.]*([kKmMgG]_*)?\s*$"
}

pub(super) fn size_pattern() -> &'static str {
    r"^\s*([0-9]+(\.[0-9]*)?|\.[0-9]+)\s*(B|KB|kB|KiB|MB|MiB)?\s*$"
}

impl JsonSchema for DurationText {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": duration_pattern(),
            "description": "A duration: a number and a unit (ns, us, ms, s, m, h), like \"250ms\", \"30s\" or \"1m30s\". A bare number is refused: seconds or milliseconds?",
            "examples": ["250ms", "30s", "1m30s"],
        })
    }
}

impl JsonSchema for DurationRangeText {
    fn schema_name() -> Cow<'static, str> {
        "DurationRange".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": duration_range_pattern(),
            "description": "A duration (\"2s\") or a range LOW..HIGH (\"1s..3s\"), with LOW <= HIGH.",
            "examples": ["2s", "1s..3s"],
        })
    }
}

impl JsonSchema for RateText {
    fn schema_name() -> Cow<'static, str> {
        "Rate".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": rate_pattern(),
            "description": "A rate: events per time, like \"5/s\", \"100/m\", \"5/10s\", \"10k/s\" or \"0.5/s\".",
            "examples": ["5/s", "100/m", "5/10s"],
        })
    }
}

impl JsonSchema for SizeText {
    fn schema_name() -> Cow<'static, str> {
        "Size".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": size_pattern(),
            "description": "A size in bytes: \"512B\", \"4KiB\", \"4KB\" (1000), \"1MiB\", or a number of bytes as a string.",
            "examples": ["512B", "4KiB", "1MiB"],
        })
    }
}

impl JsonSchema for CountValue {
    fn schema_name() -> Cow<'static, str> {
        "Count".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A whole number: an integer (200) or a string with a suffix (\"10k\", \"1.5M\").",
            "anyOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "pattern": count_pattern() },
            ],
            "examples": [200, "10k"],
        })
    }
}

impl JsonSchema for Ramp {
    fn schema_name() -> Cow<'static, str> {
        "Ramp".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Connect the clients evenly over a duration (\"5s\") or at a rate (\"500/s\").",
            "anyOf": [
                generator.subschema_for::<DurationText>(),
                generator.subschema_for::<RateText>(),
            ],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::{parse_count, parse_duration, parse_duration_range, parse_rate, parse_size};

    type Parser = fn(&str) -> bool;

    /// Each pattern with its parser, and texts the parser refuses that the pattern refuses too.
    fn cases() -> Vec<(&'static str, String, Parser, &'static [&'static str])> {
        vec![
            (
                "duration",
                duration_pattern(),
                |s| parse_duration(s).is_ok(),
                &["30", "", "s", "5 parsecs", "1x", "-1s", "1s 2s"],
            ),
            (
                "duration range",
                duration_range_pattern(),
                |s| parse_duration_range(s).is_ok(),
                &["1s..", "..1s", "1s..2s..3s", "2", "1s-3s"],
            ),
            (
                "rate",
                rate_pattern(),
                |s| parse_rate(s).is_ok(),
                &["5", "5/x", "/s", "-1/s", "5 per s", "5/us"],
            ),
            (
                "count",
                count_pattern().to_string(),
                |s| parse_count(s).is_ok(),
                &["ten", "-1", "10x", "", "1e3"],
            ),
            (
                "size",
                size_pattern().to_string(),
                |s| parse_size(s).is_ok(),
                &["4 apples", "KiB", "4GiB", "-1B"],
            ),
        ]
    }

    fn matcher(pattern: &str) -> jsonschema::Validator {
        jsonschema::validator_for(&serde_json::json!({ "type": "string", "pattern": pattern }))
            .unwrap()
    }

    #[test]
    fn every_pattern_accepts_what_its_parser_accepts() {
        // Random texts over the characters the formats use: every one the parser takes must
        // match the pattern (else an editor would mark a valid scenario); the documented
        // examples are among them.
        let alphabet: Vec<char> = "0123456789._/ +-eEkKmMgGsnuµhicBK.".chars().collect();
        let mut rng = fastrand::Rng::with_seed(16);
        let examples = [
            "250ms",
            "30s",
            "1m30s",
            "1.5s",
            "2h",
            "500us",
            "500µs",
            "1s..3s",
            "100ms..5s",
            "5/s",
            "100/m",
            "5/10s",
            "10k/s",
            "0.5/s",
            "1e3/s",
            "5/1m30s",
            "5/min",
            "200",
            "10k",
            "1.5M",
            "1_000",
            " 7 ",
            "512B",
            "4KiB",
            "4KB",
            "1MiB",
            "300",
            "1.5 MiB",
        ];
        for (name, pattern, parses, refused) in cases() {
            let pattern_matches = matcher(&pattern);
            let mut accepted = 0;
            let texts = examples
                .iter()
                .map(|s| s.to_string())
                .chain((0..200_000).map(|_| {
                    let len = rng.usize(1..9);
                    (0..len)
                        .map(|_| alphabet[rng.usize(..alphabet.len())])
                        .collect()
                }));
            for text in texts {
                if parses(&text) {
                    accepted += 1;
                    assert!(
                        pattern_matches.is_valid(&serde_json::json!(text)),
                        "the {name} parser accepts {text:?} but the pattern {pattern} does not"
                    );
                }
            }
            assert!(accepted > 20, "{name}: only {accepted} texts parsed");
            for text in refused {
                assert!(!parses(text), "{name}: the parser accepts {text:?}");
                assert!(
                    !pattern_matches.is_valid(&serde_json::json!(text)),
                    "{name}: the pattern {pattern} accepts {text:?}, which the parser refuses"
                );
            }
        }
    }
}
