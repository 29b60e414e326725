//! The Prometheus text exposition format (version 0.0.4, which every Prometheus scrapes):
//! `# HELP` and `# TYPE` per family, then one line per sample, histograms as `_bucket` lines with
//! `le`, `_sum` and `_count`.

use std::fmt::Write;

use super::{Family, Kind, Snapshot, Value};

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn render(snapshot: &Snapshot) -> String {
    let mut out = String::new();
    for family in &snapshot.families {
        render_family(&mut out, &snapshot.common, family);
    }
    out
}

fn render_family(out: &mut String, common: &[(&'static str, String)], family: &Family) {
    let name = &family.name;
    let _ = writeln!(out, "# HELP {name} {}", escape_help(family.help));
    let _ = writeln!(out, "# TYPE {name} {}", family.kind.as_str());
    for sample in &family.samples {
        let labels = || {
            common
                .iter()
                .chain(&sample.labels)
                .map(|(k, v)| (*k, v.as_str()))
        };
        match (&sample.value, family.kind) {
            (Value::Number(v), _) => line(out, name, "", labels(), None, *v),
            (Value::Histogram(b), Kind::Histogram) => {
                for (le, n) in b.labelled() {
                    line(out, name, "_bucket", labels(), Some(&le), n as f64);
                }
                line(out, name, "_sum", labels(), None, b.sum);
                line(out, name, "_count", labels(), None, b.count as f64);
            }
            (Value::Histogram(_), _) => {}
        }
    }
}

fn line<'a>(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: impl Iterator<Item = (&'a str, &'a str)>,
    le: Option<&str>,
    value: f64,
) {
    let _ = write!(out, "{name}{suffix}{{");
    let mut first = true;
    let mut label = |k: &str, v: &str| {
        if !first {
            out.push(',');
        }
        first = false;
        let _ = write!(out, "{k}=\"{}\"", escape_label(v));
    };
    for (k, v) in labels {
        label(k, v);
    }
    if let Some(le) = le {
        label("le", le);
    }
    out.push('}');
    let _ = writeln!(out, " {}", format_value(value));
}

/// Label values escape `\`, `"` and line feeds.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Help texts escape `\` and line feeds.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::new_histogram;
    use crate::telemetry::Buckets;

    #[test]
    fn families_render_with_common_labels_escaped_values_and_histogram_lines() {
        let mut s = Snapshot::new(vec![
            ("run_id", "00c0ffee".into()),
            ("scenario", "a \"b\"\\c\nd".into()),
        ]);
        s.counter(
            "volley_errors_total",
            "Errors by kind.",
            &[("kind", "refused")],
            3,
        );
        s.counter(
            "volley_errors_total",
            "Errors by kind.",
            &[("kind", "reset")],
            0,
        );
        s.gauge("volley_clients_connected", "Open connections.", &[], 2.5);
        let mut h = new_histogram();
        h.record(300).unwrap();
        s.histogram(
            "volley_latency_seconds",
            "Latency.",
            &[("metric", "echo")],
            Buckets::from_us(&h),
        );
        let text = render(&s);
        let common = r#"run_id="00c0ffee",scenario="a \"b\"\\c\nd""#;
        assert!(
            text.starts_with(
                "# HELP volley_errors_total Errors by kind.\n# TYPE volley_errors_total counter\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "volley_errors_total{{{common},kind=\"refused\"}} 3\n"
            )),
            "{text}"
        );
        assert!(text.contains(&format!(
            "volley_errors_total{{{common},kind=\"reset\"}} 0\n"
        )));
        assert_eq!(text.matches("# TYPE volley_errors_total").count(), 1);
        assert!(text.contains(&format!("volley_clients_connected{{{common}}} 2.5\n")));
        assert!(text.contains("# TYPE volley_latency_seconds histogram\n"));
        assert!(text.contains(&format!(
            "volley_latency_seconds_bucket{{{common},metric=\"echo\",le=\"0.00025\"}} 0\n"
        )));
        assert!(text.contains(&format!(
            "volley_latency_seconds_bucket{{{common},metric=\"echo\",le=\"0.0005\"}} 1\n"
        )));
        assert!(text.contains(&format!(
            "volley_latency_seconds_bucket{{{common},metric=\"echo\",le=\"+Inf\"}} 1\n"
        )));
        assert!(text.contains(&format!(
            "volley_latency_seconds_count{{{common},metric=\"echo\"}} 1\n"
        )));
        assert!(text.contains(&format!(
            "volley_latency_seconds_sum{{{common},metric=\"echo\"}} 0.0003"
        )));
    }
}
