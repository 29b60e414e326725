//! Where connect time goes: the phases of connect (`connect_tcp`, `connect_tls` ...) as a table
//! from run.json (each phase's mean, its share of connect's mean, and the rest: what lies between
//! the phases), and as stacked bars over time from latency.hlog (each phase's mean per bucket,
//! under a line of connect's own mean). Means, because they add up where percentiles do not.

use std::fmt::Write;

use super::charts::{Axis, Bar, PALETTE, Plot, Rgb, Trace};
use super::page::{self, Page, escape};
use super::timeline::{self, Timeline};
use crate::metrics::ConnectPhase;
use crate::results::run_json::LatencyStats;
use crate::results::{IntervalLog, RunJson};
use crate::units::format_us;

/// The colour of a phase, the same in the table and the plot.
fn color(phase: ConnectPhase) -> Rgb {
    PALETTE[phase.position()]
}

/// What lies between the phases.
const REST: Rgb = PALETTE[9];
/// Connect's own mean, drawn over the bars.
const TOTAL: Rgb = Rgb(0x33, 0x33, 0x33);

/// The phases of connect among `names`, in their order.
pub fn phases_of<'a>(names: impl IntoIterator<Item = &'a String>) -> Vec<(ConnectPhase, &'a str)> {
    let mut phases: Vec<(ConnectPhase, &str)> = names
        .into_iter()
        .filter_map(|n| ConnectPhase::of_metric(n).map(|p| (p, n.as_str())))
        .collect();
    phases.sort_by_key(|(p, _)| *p);
    phases
}

/// The table of the phases' means and shares of connect, with a bar of the shares; nothing when
/// run.json has no phases (a run of a volley without them).
pub fn table(page: &mut Page, run: &RunJson) {
    let latency = &run.summary.latency;
    let phases = phases_of(latency.keys());
    let Some(connect) = latency.get("connect") else {
        return;
    };
    if phases.is_empty() {
        return;
    }
    page.push("<h3>Where connect time goes</h3>\n");
    let Some(total) = connect.mean_us.filter(|m| *m > 0.0) else {
        page.note("No connection was made: there is nothing to split.");
        return;
    };
    let share = |mean: f64| format!("{:.1}%", mean / total * 100.0);
    let us = |v: Option<u64>| v.map_or_else(|| "—".into(), |v| format_us(v as f64));
    let mut rows = String::new();
    let mut bar = String::new();
    let mut accounted = 0.0;
    let mut row = |color: Rgb, name: &str, what: &str, s: Option<&LatencyStats>, mean: f64| {
        let cells = match s {
            Some(s) => [
                page::thousands(s.count),
                us(s.p50_us),
                us(s.p99_us),
                us(s.max_us),
            ],
            None => ["", "", "", ""].map(String::from),
        };
        let _ = writeln!(
            rows,
            "<tr><td><i class=\"swatch\" style=\"background:{}\"></i>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            color.hex(),
            escape(name),
            escape(what),
            cells[0],
            format_us(mean.round()),
            share(mean),
            cells[1],
            cells[2],
            cells[3],
        );
        let width = (mean / total * 100.0).clamp(0.0, 100.0);
        let _ = write!(
            bar,
            "<span style=\"width:{width:.2}%;background:{}\" title=\"{}: {}\"></span>",
            color.hex(),
            escape(name),
            share(mean)
        );
    };
    for (phase, name) in &phases {
        let stats = &latency[*name];
        let mean = stats.mean_us.unwrap_or(0.0);
        accounted += mean;
        row(color(*phase), name, phase.what(), Some(stats), mean);
    }
    // Rounding leaves a rest of a few µs below zero at most: shown as none.
    let rest = (total - accounted).max(0.0);
    row(
        REST,
        "rest",
        "between the phases (the user's values rendered, a polling session's second connection)",
        None,
        rest,
    );
    page.push(&format!(
        "<div class=\"phase-bar\">{bar}</div>\n<table class=\"phases\">\n<thead><tr><th>phase</th>\
         <th>measures</th><th>count</th><th>mean</th><th>share of connect</th><th>p50</th>\
         <th>p99</th><th>max</th></tr></thead>\n<tbody>\n{rows}</tbody>\n</table>\n"
    ));
    page.note(&format!(
        "Shares are of connect's mean ({}), per connection made; each phase is also a latency \
         metric of its own (its row above, its .hgrm file, thresholds such as \"{}.p99 < 50ms\").",
        format_us(total.round()),
        phases[0].1
    ));
}

/// Each phase's mean per bucket, stacked, under connect's mean: when the time went where. `None`
/// when the log has no phases.
pub fn over_time(log: &IntervalLog, timeline: &Timeline) -> Option<Result<String, String>> {
    let names: Vec<String> = log.metrics.iter().map(|m| m.name.clone()).collect();
    let phases = phases_of(&names);
    if phases.is_empty() {
        return None;
    }
    Some(draw(log, timeline, &phases))
}

fn draw(
    log: &IntervalLog,
    timeline: &Timeline,
    phases: &[(ConnectPhase, &str)],
) -> Result<String, String> {
    let mut means = Vec::new();
    for (phase, name) in phases {
        let metric = log
            .metric(name)
            .ok_or_else(|| format!("no {name} in the log"))?;
        means.push((*phase, timeline::latency_means(timeline, metric)?));
    }
    let connect = match log.metric("connect") {
        Some(metric) => timeline::latency_means(timeline, metric)?,
        None => vec![None; timeline.buckets()],
    };
    let mut bars = Vec::new();
    let mut top = 0.0f64;
    for bucket in 0..timeline.buckets() {
        let x = timeline.bar_range(bucket);
        let mut height = 0.0;
        for (phase, values) in &means {
            if let Some(ms) = values[bucket] {
                bars.push(Bar {
                    color: color(*phase),
                    x,
                    y: (height, height + ms),
                });
                height += ms;
            }
        }
        top = top.max(height).max(connect[bucket].unwrap_or(0.0));
    }
    let few = timeline.buckets() <= 120;
    let plot = Plot {
        x: Axis {
            title: timeline.axis_name(),
            lo: 0.0,
            hi: timeline.end_s,
            ticks: timeline.ticks(),
            log: false,
            format: {
                let t = *timeline;
                Box::new(move |s| t.label(s))
            },
        },
        y: Axis::linear("mean (ms)", top),
        traces: vec![Trace {
            color: TOTAL,
            points: connect
                .iter()
                .enumerate()
                .map(|(b, v)| v.map(|v| (timeline.midpoint(b), v)))
                .collect(),
            markers: few,
            width: 2,
        }],
        bars,
    };
    let svg = plot.svg()?;
    let mut legend: Vec<(String, Rgb)> = phases
        .iter()
        .map(|(phase, name)| (name.to_string(), color(*phase)))
        .collect();
    legend.push(("connect (its mean)".into(), TOTAL));
    let caption = format!(
        "The mean of each phase of connect {}, stacked, from latency.hlog; the line is connect's \
         own mean, and the gap between them the time between the phases.",
        timeline.bucket_words()
    );
    Ok(page::figure(
        "connect-phases",
        "connect: where the time goes",
        &svg,
        &legend,
        &caption,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(latency: &str) -> RunJson {
        let text = format!("{{\"summary\":{{\"latency\":{latency}}}}}");
        RunJson::parse(std::path::Path::new("run.json"), text.as_bytes()).unwrap()
    }

    #[test]
    fn the_table_gives_each_phase_its_share_of_connect_and_the_rest() {
        let run = run(r#"{
            "connect": {"count": 4, "p50_us": 900, "p99_us": 2000, "max_us": 2000, "mean_us": 1000.0},
            "echo": {"count": 9, "mean_us": 5.0},
            "connect_upgrade": {"count": 4, "p50_us": 500, "p99_us": 900, "max_us": 900, "mean_us": 600.0},
            "connect_tcp": {"count": 4, "p50_us": 200, "p99_us": 300, "max_us": 300, "mean_us": 250.0}
        }"#);
        let mut page = Page::new("t");
        table(&mut page, &run);
        let html = page.finish("");
        let tcp = html.find(">connect_tcp<").unwrap();
        let upgrade = html.find(">connect_upgrade<").unwrap();
        assert!(tcp < upgrade, "in the order a connection goes through them");
        assert!(html.contains("<td>TCP connect</td><td>4</td><td>250µs</td><td>25.0%</td><td>200µs</td><td>300µs</td><td>300µs</td>"), "{html}");
        assert!(html.contains("<td>600µs</td><td>60.0%</td>"), "{html}");
        assert!(html.contains(">rest</td>"), "{html}");
        assert!(html.contains("<td>150µs</td><td>15.0%</td>"), "{html}");
        assert!(html.contains("width:25.00%"), "{html}");
        assert!(!html.contains(">echo<"));
    }

    #[test]
    fn no_phases_no_table() {
        let mut page = Page::new("t");
        table(
            &mut page,
            &run(r#"{"connect": {"count": 4, "mean_us": 1000.0}}"#),
        );
        assert!(!page.finish("").contains("Where connect time goes"));
    }
}
