//! `[thresholds]`: the CI gate as the scenario writes it, each checked against the figures the
//! run will have.

use std::time::Duration;

use super::Plan;
use crate::scenario::threshold::{GateThreshold, Origin as WrittenIn, Threshold, ThresholdError};
use crate::scenario::{ScenarioError, Source};
use crate::units::parse_duration;

/// `[thresholds]`: each key a figure (`fanout.p99`), each value `"OP VALUE"`, a table with `limit`,
/// `abort` and `abort_after`, or a list of those. Errors point into the key or the value.
pub(super) fn compile(plan: &Plan, source: &Source) -> Result<Vec<GateThreshold>, ScenarioError> {
    let mut entries: Vec<_> = plan.scenario.thresholds.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    let mut out = Vec::new();
    for (key, value) in entries {
        let items: Vec<&toml::Value> = match value.get_ref() {
            toml::Value::Array(items) => items.iter().collect(),
            one => vec![one],
        };
        if items.is_empty() {
            return Err(source.error_at(value.span(), "an empty list of thresholds"));
        }
        for item in items {
            let (limit, abort, abort_after) = match item {
                toml::Value::String(limit) => (limit.as_str(), false, Duration::ZERO),
                toml::Value::Table(table) => {
                    threshold_table(table).map_err(|m| source.error_at(value.span(), m))?
                }
                _ => {
                    return Err(source.error_at(
                        value.span(),
                        format!(
                            "a threshold is \"OP VALUE\" (e.g. \"< 50ms\") or a table \
                             {{ limit = \"< 50ms\", abort = true }}; `{}` has neither",
                            key.get_ref()
                        ),
                    ));
                }
            };
            let text = format!("{} {limit}", key.get_ref());
            let threshold: Threshold = text.parse().map_err(|e: ThresholdError| {
                // Into the key, or into the value when it is a plain string written as is.
                let key_chars = key.get_ref().chars().count();
                let quoted = source.text[key.span().start..].starts_with(['"', '\'']);
                let at = if e.column <= key_chars {
                    let key_text = &source.text[key.span().start + quoted as usize..];
                    key.span().start
                        + quoted as usize
                        + key_text
                            .char_indices()
                            .nth(e.column - 1)
                            .map_or(0, |(i, _)| i)
                } else if matches!(value.get_ref(), toml::Value::String(_)) {
                    value.span().start
                        + 1
                        + limit
                            .char_indices()
                            .nth(e.column.saturating_sub(key_chars + 2))
                            .map_or(limit.len(), |(i, _)| i)
                } else {
                    value.span().start
                };
                source.error_at(at..at, e.message)
            })?;
            plan.check_threshold(&threshold)
                .map_err(|m| source.error_at(key.span(), m))?;
            out.push(GateThreshold {
                threshold,
                origin: WrittenIn::Scenario,
                abort,
                abort_after,
            });
        }
    }
    Ok(out)
}

/// `{ limit = "< 50ms", abort = true, abort_after = "10s" }`.
fn threshold_table(table: &toml::Table) -> Result<(&str, bool, Duration), String> {
    let mut limit = None;
    let mut abort = false;
    let mut abort_after = Duration::ZERO;
    for (key, value) in table {
        match (key.as_str(), value) {
            ("limit", toml::Value::String(s)) => limit = Some(s.as_str()),
            ("abort", toml::Value::Boolean(b)) => abort = *b,
            ("abort_after", toml::Value::String(s)) => {
                abort_after = parse_duration(s).map_err(|e| e.to_string())?
            }
            ("limit" | "abort" | "abort_after", _) => {
                return Err(format!(
                    "`{key}` is {}",
                    match key.as_str() {
                        "limit" => "a string such as \"< 50ms\"",
                        "abort" => "true or false",
                        _ => "a duration such as \"10s\"",
                    }
                ));
            }
            (other, _) => {
                return Err(format!(
                    "unknown key `{other}` in a threshold: use limit, abort, abort_after"
                ));
            }
        }
    }
    let limit = limit.ok_or("a threshold table needs `limit`, e.g. limit = \"< 50ms\"")?;
    Ok((limit, abort, abort_after))
}
