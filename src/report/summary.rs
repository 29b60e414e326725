//! The report's sections from run.json: the run's facts, the summary figures, the threshold
//! verdicts and the scenario.

use serde_json::Value;

use super::page::{self, Page, escape};
use crate::results::{RunJson, layout};
use crate::units::format_us;

/// The title line and the facts under it.
pub fn header(page: &mut Page, run: &RunJson) {
    let name = run.text("/scenario/name").unwrap_or("unnamed run");
    let status = run.text("/status").unwrap_or("unknown");
    let status_class = match status {
        "completed" => "pass",
        "aborted" => "fail",
        _ => "status-interrupted",
    };
    // The gate's outcome beside the run's, when it was gated.
    let gate = match run.thresholds() {
        Ok(v) if v.is_empty() => String::new(),
        Ok(v) => match v.iter().filter(|v| !v.passed).count() {
            0 => " <span class=\"verdict pass\">thresholds passed</span>".to_string(),
            failed => format!(
                " <span class=\"verdict fail\">{failed} of {} thresholds failed</span>",
                v.len()
            ),
        },
        Err(_) => String::new(),
    };
    page.push(&format!(
        "<header>\n<h1>{} <span class=\"verdict {status_class}\">{}</span>{gate}</h1>\n\
         <p class=\"subtitle\">volley run report · started {} · {} · {}</p>\n</header>\n",
        escape(name),
        escape(status),
        escape(run.text("/started_at").unwrap_or("?")),
        escape(
            &run.at("/elapsed_s")
                .and_then(Value::as_f64)
                .map(|s| format!("{s:.1} s"))
                .unwrap_or_else(|| "length unknown".into())
        ),
        escape(run.text("/settings/target_url").unwrap_or("target unknown")),
    ));
}

pub fn summary(page: &mut Page, run: &RunJson) {
    let text = |p: &str| run.text(p).map(String::from);
    let number = |p: &str| run.at(p).map(plain);
    let host = text("/host/hostname").map(|name| {
        format!(
            "{name} ({} {}, {} CPUs)",
            text("/host/os").unwrap_or_default(),
            text("/host/arch").unwrap_or_default(),
            number("/host/cpus").unwrap_or_else(|| "?".into())
        )
    });
    let clients = number("/settings/clients_planned").map(|planned| {
        format!(
            "{planned} planned, {} started",
            number("/settings/clients_started").unwrap_or_else(|| "?".into())
        )
    });
    let cpu = number("/summary/client_cpu_s").map(|cpu| {
        match run
            .at("/summary/client_cpu_us_per_echo")
            .and_then(Value::as_f64)
        {
            Some(per_echo) => format!("{cpu} s, {per_echo:.1} µs per echo"),
            None => format!("{cpu} s"),
        }
    });
    // Only what run.json has: a folder from another writer may lack any of it.
    let facts: Vec<(&str, String)> = [
        ("scenario file", text("/scenario/file")),
        ("target", text("/settings/target_url")),
        ("clients", clients),
        ("started", text("/started_at")),
        ("ended", text("/ended_at")),
        ("run id", text("/run_id")),
        ("seed", number("/settings/seed")),
        ("workers", number("/settings/workers")),
        ("client CPU", cpu),
        ("host", host),
        ("volley", text("/tool/version")),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.map(|v| (name, v)))
    .collect();
    let facts = page::facts(&facts);

    let mut counters = Vec::new();
    if let Some(map) = run.at("/summary/counters").and_then(Value::as_object) {
        for (name, v) in map {
            counters.push((name.replace('_', " "), count(v)));
        }
    }
    let counter_rows: Vec<(&str, String)> = counters
        .iter()
        .map(|(n, v)| (n.as_str(), v.clone()))
        .collect();

    page.push("<div class=\"columns\">\n<div>\n");
    page.push(&facts);
    page.push("</div>\n<div>\n");
    page.push(&page::facts(&counter_rows));
    page.push("</div>\n</div>\n");

    page.push("<h3>Latency</h3>\n");
    match run.at("/summary/latency").and_then(Value::as_object) {
        Some(latency) if !latency.is_empty() => {
            let rows: Vec<Vec<String>> = latency
                .iter()
                .map(|(name, s)| {
                    let us = |key: &str| {
                        s.get(key)
                            .and_then(Value::as_f64)
                            .map(|v| format_us(v.round()))
                    };
                    let mut row = vec![name.clone(), s.get("count").map(count).unwrap_or_default()];
                    for key in [
                        "min_us", "p50_us", "p90_us", "p99_us", "p99_9_us", "max_us", "mean_us",
                    ] {
                        row.push(us(key).unwrap_or_else(|| "—".into()));
                    }
                    row
                })
                .collect();
            page.push(&page::table(
                "latency",
                &[
                    "metric", "count", "min", "p50", "p90", "p99", "p99.9", "max", "mean",
                ],
                &rows,
            ));
        }
        _ => page.note("run.json has no latency summary."),
    }

    let expects = run.at("/summary/expects").and_then(Value::as_object);
    if let Some(expects) = expects.filter(|e| !e.is_empty()) {
        page.push("<h3>Deliveries</h3>\n");
        let keys = crate::metrics::EXPECT_COUNTERS;
        let rows: Vec<Vec<String>> = expects
            .iter()
            .map(|(name, e)| {
                let mut row = vec![name.clone()];
                row.extend(
                    keys.iter()
                        .map(|k| e.get(*k).map(count).unwrap_or_default()),
                );
                row
            })
            .collect();
        let mut header = vec!["expect"];
        header.extend(keys);
        page.push(&page::table("expects", &header, &rows));
    }

    page.push("<div class=\"columns\">\n<div>\n<h3>Errors by kind</h3>\n");
    let errors = nonzero(run.at("/summary/errors_by_kind"));
    if errors.is_empty() {
        page.note("none");
    } else {
        page.push(&page::table("errors", &["kind", "count"], &errors));
    }
    page.push("</div>\n<div>\n<h3>Connections ended by close code</h3>\n");
    let closes = nonzero(run.at("/summary/closes_by_code"));
    if closes.is_empty() {
        page.note("none");
    } else {
        page.push(&page::table("closes", &["code", "count"], &closes));
    }
    page.push("</div>\n</div>\n");
    for (pointer, file) in [
        ("/summary/error_rows_dropped", layout::ERRORS_CSV),
        ("/summary/gap_rows_dropped", layout::GAPS_CSV),
    ] {
        if let Some(n) = run.at(pointer).and_then(Value::as_u64).filter(|n| *n > 0) {
            page.note(&format!(
                "{n} rows were counted but not listed in {file} (it keeps at most 100,000): its plot below shows fewer than the counts above."
            ));
        }
    }
}

/// The (name, count) pairs of a JSON object whose count is not zero.
fn nonzero(map: Option<&Value>) -> Vec<Vec<String>> {
    map.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(_, v)| v.as_f64().is_some_and(|n| n != 0.0))
                .map(|(k, v)| vec![k.clone(), count(v)])
                .collect()
        })
        .unwrap_or_default()
}

/// A whole number with thousands separated; anything else as plain text.
fn count(v: &Value) -> String {
    v.as_u64().map_or_else(|| plain(v), page::thousands)
}

/// A JSON value as plain text: strings without quotes, numbers with at most 3 decimals.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".into(),
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or_default();
            let s = format!("{f:.3}");
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
        other => other.to_string(),
    }
}

pub fn thresholds(page: &mut Page, run: &RunJson) {
    let verdicts = match run.thresholds() {
        Ok(v) => v,
        Err(e) => {
            page.problem(&format!("run.json: {e}"));
            return;
        }
    };
    if verdicts.is_empty() {
        page.note("No thresholds: the run was not gated.");
        return;
    }
    let failed = verdicts.iter().filter(|v| !v.passed).count();
    let banner = if failed == 0 {
        format!(
            "<p><span class=\"verdict pass\">all {} passed</span></p>\n",
            verdicts.len()
        )
    } else {
        format!(
            "<p><span class=\"verdict fail\">{failed} of {} failed</span></p>\n",
            verdicts.len()
        )
    };
    page.push(&banner);
    let mut html = String::from(
        "<table class=\"thresholds\">\n<thead><tr><th>verdict</th><th>threshold</th><th>actual</th>\
         <th>limit</th><th>abort</th><th>from</th></tr></thead>\n<tbody>\n",
    );
    for v in &verdicts {
        let (class, word) = if v.passed {
            ("pass", "pass")
        } else {
            ("fail", "FAIL")
        };
        let actual = match (&v.actual_text, v.actual, &v.error) {
            (_, None, Some(why)) => format!("no value: {why}"),
            (Some(text), _, _) => text.clone(),
            (None, Some(a), _) => a.to_string(),
            (None, None, None) => "no value".into(),
        };
        let abort = match (v.abort, v.aborted_run_at_s) {
            (_, Some(at)) => format!("stopped the run at {at:.1} s"),
            (true, None) => "yes".into(),
            (false, None) => String::new(),
        };
        html.push_str(&format!(
            "<tr><td><span class=\"verdict {class}\">{word}</span></td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&v.expression),
            escape(&actual),
            escape(&plain(&v.limit)),
            escape(&abort),
            escape(v.source.as_deref().unwrap_or("")),
        ));
    }
    html.push_str("</tbody>\n</table>\n");
    page.push(&html);
}

pub fn scenario(page: &mut Page, run: &RunJson) {
    let Some(resolved) = run.at("/scenario/resolved") else {
        page.note("run.json has no resolved scenario.");
        return;
    };
    page.note("After command-line overrides, as the run used it:");
    page.push(&format!(
        "<pre>{}</pre>\n",
        escape(&scenario_text(resolved))
    ));
}

/// The scenario as TOML, the format it was written in; as JSON when TOML cannot hold it.
fn scenario_text(resolved: &Value) -> String {
    let cleaned = without_nulls(resolved);
    toml::to_string_pretty(&cleaned)
        .unwrap_or_else(|_| serde_json::to_string_pretty(resolved).unwrap_or_default())
}

/// TOML has no null: unset options are left out, as in the file.
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_show_pass_and_fail_with_their_expressions_escaped() {
        let run = RunJson::parse(
            std::path::Path::new("run.json"),
            br#"{"thresholds":[
                {"expression":"fanout.p99 < 50ms","metric":"fanout","stat":"p99","op":"<",
                 "limit":"50ms","actual":12400.0,"actual_text":"12.4ms","passed":true,
                 "abort":false,"source":"scenario"},
                {"expression":"errors.rate < 0.1%","metric":"errors","stat":"rate","op":"<",
                 "limit":"0.1%","actual":null,"actual_text":null,"passed":false,
                 "abort":true,"source":"command line"},
                {"expression":"echo.p99 < 1ms","metric":"echo","stat":"p99","op":"<",
                 "limit":"1ms","actual":null,"actual_text":"-","passed":false,"abort":true,
                 "aborted_run_at_s":3.25,"error":"no samples","source":"scenario"}]}"#,
        )
        .unwrap();
        let mut page = Page::new("t");
        thresholds(&mut page, &run);
        let html = page.finish("");
        assert!(html.contains("2 of 3 failed"), "{html}");
        assert!(
            html.contains(
                "<td>no value: no samples</td><td>1ms</td><td>stopped the run at 3.2 s</td>"
            ),
            "{html}"
        );
        assert!(html.contains("<td>fanout.p99 &lt; 50ms</td><td>12.4ms</td><td>50ms</td>"));
        assert!(html.contains("<span class=\"verdict fail\">FAIL</span></td><td>errors.rate &lt; 0.1%</td><td>no value</td>"));
        assert!(html.contains("command line"));

        let mut page = Page::new("t");
        thresholds(
            &mut page,
            &RunJson::parse(std::path::Path::new("r"), b"{}").unwrap(),
        );
        assert!(page.finish("").contains("No thresholds"));
    }

    #[test]
    fn the_scenario_reads_as_toml_without_its_unset_options() {
        let resolved = serde_json::json!({
            "name": "chat", "target": "builtin", "seed": null,
            "group": [{ "name": "g", "clients": 2, "path": null,
                        "emit": [{ "event": "echo", "data": { "text": "hi" } }] }],
            "expect": [{ "name": "echo", "to": null, "within": "100ms" }]
        });
        let text = scenario_text(&resolved);
        assert!(text.contains("name = \"chat\""), "{text}");
        assert!(text.contains("[[group]]"), "{text}");
        assert!(!text.contains("seed") && !text.contains("null"), "{text}");
    }
}
