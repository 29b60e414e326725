//! The report's sections from run.json: the run's facts, the summary figures, the threshold
//! verdicts and the scenario.

use indexmap::IndexMap;
use serde_json::Value;

use super::connect_phases;
use super::page::{self, Page, escape};
use crate::metrics::ConnectPhase;
use crate::results::{RunJson, RunStatus, layout};
use crate::units::format_us;

/// The title line and the facts under it.
pub fn header(page: &mut Page, run: &RunJson) {
    let name = run.scenario.name.as_deref().unwrap_or("unnamed run");
    let status = match run.status {
        None => "unknown",
        Some(RunStatus::Running) => "did not finish",
        Some(status) => status.as_str(),
    };
    let status_class = match run.status {
        Some(RunStatus::Completed) => "pass",
        Some(RunStatus::Aborted | RunStatus::Failed) => "fail",
        _ => "status-interrupted",
    };
    // The gate's outcome beside the run's, when it was gated.
    let verdicts = &run.thresholds;
    let gate = match verdicts.iter().filter(|v| !v.passed).count() {
        _ if verdicts.is_empty() => String::new(),
        0 => " <span class=\"verdict pass\">thresholds passed</span>".to_string(),
        failed => format!(
            " <span class=\"verdict fail\">{failed} of {} thresholds failed</span>",
            verdicts.len()
        ),
    };
    page.push(&format!(
        "<header>\n<h1>{} <span class=\"verdict {status_class}\">{}</span>{gate}</h1>\n\
         <p class=\"subtitle\">volley run report · started {} · {} · {}</p>\n</header>\n",
        escape(name),
        escape(status),
        escape(run.started_at.as_deref().unwrap_or("?")),
        escape(
            &run.elapsed_s
                .map(|s| format!("{s:.1} s"))
                .unwrap_or_else(|| "length unknown".into())
        ),
        escape(
            run.settings
                .target_url
                .as_deref()
                .unwrap_or("target unknown")
        ),
    ));
}

/// The run's facts, as far as run.json has them: a folder from another writer may lack any.
fn facts(run: &RunJson) -> Vec<(&'static str, String)> {
    let settings = &run.settings;
    let host = run
        .host
        .as_ref()
        .map(|h| format!("{} ({} {}, {} CPUs)", h.hostname, h.os, h.arch, h.cpus));
    let clients = settings.clients_planned.map(|planned| {
        let started = settings
            .clients_started
            .map_or_else(|| "?".into(), |n| n.to_string());
        format!("{planned} planned, {started} started")
    });
    let cpu = run.summary.client_cpu_s.map(|cpu| {
        let cpu = plain(cpu);
        match run.summary.client_cpu_us_per_echo {
            Some(per_echo) => format!("{cpu} s, {per_echo:.1} µs per echo"),
            None => format!("{cpu} s"),
        }
    });
    let number = |n: Option<u64>| n.map(|n| n.to_string());
    let failed = (!run.failed_shards.is_empty()).then(|| {
        run.failed_shards
            .iter()
            .map(|f| format!("{}: {}", f.shard.as_deref().unwrap_or(&f.folder), f.why))
            .collect::<Vec<_>>()
            .join(" · ")
    });
    [
        ("failed shards", failed),
        ("scenario file", run.scenario.file.clone()),
        ("target", settings.target_url.clone()),
        ("clients", clients),
        ("started", run.started_at.clone()),
        ("ended", run.ended_at.clone()),
        ("run id", run.run_id.clone()),
        ("seed", number(settings.seed)),
        ("workers", number(settings.workers)),
        ("client CPU", cpu),
        ("host", host),
        (
            "volley",
            Some(run.tool.version.clone()).filter(|v| !v.is_empty()),
        ),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.map(|v| (name, v)))
    .collect()
}

pub fn summary(page: &mut Page, run: &RunJson) {
    let facts = page::facts(&facts(run));
    let counters: Vec<(String, String)> = run
        .summary
        .counters
        .named()
        .iter()
        .map(|(name, n)| (name.replace('_', " "), page::thousands(*n)))
        .collect();
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
    latency(page, run);
    connect_phases::table(page, run);
    deliveries(page, run);

    page.push("<div class=\"columns\">\n<div>\n<h3>Errors by kind</h3>\n");
    let errors = nonzero(&run.summary.errors_by_kind);
    if errors.is_empty() {
        page.note("none");
    } else {
        page.push(&page::table("errors", &["kind", "count"], &errors));
    }
    page.push("</div>\n<div>\n<h3>Connections ended by close code</h3>\n");
    let closes = nonzero(&run.summary.closes_by_code);
    if closes.is_empty() {
        page.note("none");
    } else {
        page.push(&page::table("closes", &["code", "count"], &closes));
    }
    page.push("</div>\n</div>\n");
    for (n, file) in [
        (run.summary.error_rows_dropped, layout::ERRORS_CSV),
        (run.summary.gap_rows_dropped, layout::GAPS_CSV),
    ] {
        if n > 0 {
            page.note(&format!(
                "{n} rows were counted but not listed in {file} (it keeps at most 100,000): its plot below shows fewer than the counts above."
            ));
        }
    }
}

/// The latency table: one row per metric, the phases of connect right after it.
fn latency(page: &mut Page, run: &RunJson) {
    let latency = &run.summary.latency;
    if latency.is_empty() {
        page.note("run.json has no latency summary.");
        return;
    }
    let phases = connect_phases::phases_of(latency.keys());
    let mut order: Vec<&str> = Vec::new();
    for name in latency
        .keys()
        .filter(|n| ConnectPhase::of_metric(n).is_none())
    {
        order.push(name);
        if name == "connect" {
            order.extend(phases.iter().map(|(_, n)| *n));
        }
    }
    if !latency.contains_key("connect") {
        order.extend(phases.iter().map(|(_, n)| *n));
    }
    let rows: Vec<Vec<String>> = order
        .into_iter()
        .map(|name| (name, &latency[name]))
        .map(|(name, s)| {
            let mut row = vec![name.to_string(), page::thousands(s.count)];
            let whole = [s.min_us, s.p50_us, s.p90_us, s.p99_us, s.p99_9_us, s.max_us];
            let values = whole.iter().map(|v| v.map(|v| v as f64)).chain([s.mean_us]);
            row.extend(values.map(|v| v.map_or_else(|| "—".into(), |v| format_us(v.round()))));
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

/// The deliveries table: one row per expect, when the run had any.
fn deliveries(page: &mut Page, run: &RunJson) {
    let expects = &run.summary.expects;
    if expects.is_empty() {
        return;
    }
    page.push("<h3>Deliveries</h3>\n");
    let rows: Vec<Vec<String>> = expects
        .iter()
        .map(|(name, e)| {
            let mut row = vec![name.clone()];
            row.extend(e.named().iter().map(|(_, n)| page::thousands(*n)));
            row
        })
        .collect();
    let mut header = vec!["expect"];
    header.extend(crate::metrics::EXPECT_COUNTERS);
    page.push(&page::table("expects", &header, &rows));
}

/// The (name, count) pairs whose count is not zero.
fn nonzero(map: &IndexMap<String, u64>) -> Vec<Vec<String>> {
    map.iter()
        .filter(|(_, n)| **n != 0)
        .map(|(k, n)| vec![k.clone(), page::thousands(*n)])
        .collect()
}

/// A number with at most 3 decimals, without trailing zeros.
fn plain(f: f64) -> String {
    let s = format!("{f:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

pub fn thresholds(page: &mut Page, run: &RunJson) {
    let verdicts = &run.thresholds;
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
    for v in verdicts {
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
            escape(&v.limit),
            escape(&abort),
            escape(v.source.as_deref().unwrap_or("")),
        ));
    }
    html.push_str("</tbody>\n</table>\n");
    page.push(&html);
}

pub fn scenario(page: &mut Page, run: &RunJson) {
    let Some(resolved) = &run.scenario.resolved else {
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
