//! The report's plotted sections: latency per metric (percentiles over time and the percentile
//! distribution), load over time (events per second, connections), and delivery problems and
//! errors over time by kind.

use hdrhistogram::Histogram;

use super::charts::{Axis, Bar, PALETTE, Plot, Rgb, Trace, percentile_label};
use super::connect_phases;
use super::page::{self, Page};
use super::timeline::{self, KindCounts, Timeline};
use crate::metrics::ConnectPhase;
use crate::results::{FileError, RunFolder};

const P50: Rgb = PALETTE[0];
const P90: Rgb = PALETTE[4];
const P99: Rgb = PALETTE[1];
const MAX: Rgb = PALETTE[2];
/// Ticks per half distance of the distribution, as in the .hgrm files.
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// A plot, or what went wrong drawing it.
fn figure(id: &str, title: &str, plot: &Plot, legend: &[(String, Rgb)], caption: &str) -> String {
    match plot.svg() {
        Ok(svg) => page::figure(id, title, &svg, legend, caption),
        Err(e) => format!(
            "<p class=\"problem\">{}</p>\n",
            page::escape(&format!("cannot draw {title}: {e}"))
        ),
    }
}

/// Says why a file's part of the report is not there.
fn file_problem(page: &mut Page, e: &FileError, what: &str) {
    if e.is_missing() {
        page.note(&format!("{e}: no {what}."));
    } else {
        page.problem(&format!("{e}"));
    }
}

fn time_axis(timeline: &Timeline) -> Axis {
    let t = *timeline;
    Axis {
        title: t.axis_name(),
        lo: 0.0,
        hi: t.end_s,
        ticks: t.ticks(),
        log: false,
        format: Box::new(move |s| t.label(s)),
    }
}

/// Points at the buckets' midpoints.
fn points(timeline: &Timeline, values: &[Option<f64>]) -> Vec<Option<(f64, f64)>> {
    values
        .iter()
        .enumerate()
        .map(|(b, v)| v.map(|v| (timeline.midpoint(b), v)))
        .collect()
}

/// Lines over time; `log` for latency (p50 to max on one plot).
fn time_plot(
    timeline: &Timeline,
    y_title: &str,
    log: bool,
    lines: &[(Rgb, &[Option<f64>])],
) -> Plot {
    let values = lines.iter().flat_map(|(_, v)| v.iter().flatten().copied());
    let (min, max) = values.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let y = if log {
        Axis::log(y_title, min, max)
    } else {
        Axis::linear(y_title, max)
    };
    let few = timeline.buckets() <= 120;
    Plot {
        x: time_axis(timeline),
        y,
        traces: lines
            .iter()
            .enumerate()
            .map(|(i, (color, values))| Trace {
                color: *color,
                points: points(timeline, values),
                markers: few,
                // The first line wider: `sent` still shows under an equal `received`.
                width: if i == 0 && !log { 4 } else { 2 },
            })
            .collect(),
        bars: Vec::new(),
    }
}

pub fn latency(page: &mut Page, folder: &RunFolder, timeline: &Timeline) {
    let names = folder.metric_names();
    if names.is_empty() {
        page.note("No latency metrics were found in run.json, latency.hlog or timeseries.csv.");
        return;
    }
    let log = match &folder.latency {
        Ok(log) => {
            if log.truncated {
                page.note("latency.hlog ends with a cut-off line (the run ended while writing it); it was left out.");
            }
            Some(log)
        }
        Err(e) => {
            if e.is_missing() {
                page.note(&format!(
                    "No interval log ({e}; runs before volley wrote latency.hlog have none): \
                     percentiles over time are the per-second p50 and p99 of timeseries.csv, \
                     the distribution is the .hgrm file's."
                ));
            } else {
                page.problem(&format!("{e}"));
            }
            None
        }
    };
    // The phases of connect are drawn together, stacked by their means, beside connect's plots;
    // their percentiles are in the summary's table and their .hgrm files.
    for name in names
        .iter()
        .filter(|n| ConnectPhase::of_metric(n).is_none())
    {
        page.push(&format!(
            "<h3>{}</h3>\n<div class=\"grid\">\n",
            page::escape(name)
        ));
        match log.map(|l| l.metric(name)) {
            Some(Some(metric)) if metric.total.is_empty() => {
                page.note("No values were recorded.");
            }
            Some(Some(metric)) => {
                match timeline::latency_percentiles(timeline, metric) {
                    Ok(s) => {
                        let plot = time_plot(
                            timeline,
                            "latency (ms, log scale)",
                            true,
                            &[(P50, &s.p50), (P90, &s.p90), (P99, &s.p99), (MAX, &s.max)],
                        );
                        let legend = [("p50", P50), ("p90", P90), ("p99", P99), ("max", MAX)]
                            .map(|(n, c)| (n.to_string(), c));
                        let caption = format!(
                            "Percentiles of the values recorded {}, from latency.hlog.",
                            timeline.bucket_words()
                        );
                        page.push(&figure(
                            &format!("latency-over-time-{name}"),
                            &format!("{name}: latency over time"),
                            &plot,
                            &legend,
                            &caption,
                        ));
                    }
                    Err(e) => page.problem(&format!("latency.hlog, {name}: {e}")),
                }
                let points = distribution_points(&metric.total);
                let caption = format!(
                    "{} values; max {}.",
                    page::thousands(metric.total.len()),
                    crate::units::format_us(metric.total.max() as f64)
                );
                page.push(&distribution_figure(name, &points, &caption));
            }
            _ => fallback_latency(page, folder, timeline, name),
        }
        if name == "connect" {
            match log.and_then(|l| connect_phases::over_time(l, timeline)) {
                Some(Ok(figure)) => page.push(&figure),
                Some(Err(e)) => page.problem(&format!("latency.hlog, the phases of connect: {e}")),
                None => {}
            }
        }
        page.push("</div>\n");
    }
}

/// Without an interval log: the per-second p50/p99 columns and the .hgrm distribution.
fn fallback_latency(page: &mut Page, folder: &RunFolder, timeline: &Timeline, name: &str) {
    match &folder.timeseries {
        Ok(ts) => {
            let p50 = timeline::highest_ms(timeline, ts, &format!("{name}_p50_us"));
            let p99 = timeline::highest_ms(timeline, ts, &format!("{name}_p99_us"));
            match (p50, p99) {
                (Some(p50), Some(p99)) if p99.iter().any(Option::is_some) => {
                    let plot = time_plot(
                        timeline,
                        "latency (ms, log scale)",
                        true,
                        &[(P50, &p50), (P99, &p99)],
                    );
                    let legend = [("p50", P50), ("p99", P99)].map(|(n, c)| (n.to_string(), c));
                    let caption = if timeline.bucket_s == 1 {
                        "Each second's p50 and p99, from timeseries.csv.".to_string()
                    } else {
                        format!(
                            "The highest per-second p50 and p99 {}, from timeseries.csv (percentiles cannot be merged without the interval log).",
                            timeline.bucket_words()
                        )
                    };
                    page.push(&figure(
                        &format!("latency-over-time-{name}"),
                        &format!("{name}: latency over time"),
                        &plot,
                        &legend,
                        &caption,
                    ));
                }
                _ => page.note(&format!("timeseries.csv has no p50/p99 values for {name}.")),
            }
        }
        Err(e) => file_problem(page, e, "latency over time"),
    }
    match folder.hgrm(name) {
        Ok(d) => {
            let points: Vec<(f64, f64)> = d
                .points
                .iter()
                .filter(|(_, q)| *q < 1.0)
                .map(|&(v, q)| (1.0 / (1.0 - q), v))
                .collect();
            let max = d.points.last().map_or(0.0, |p| p.0);
            let caption = format!(
                "{} values; max {max:.3} ms; from {name}.hgrm.",
                page::thousands(d.count)
            );
            page.push(&distribution_figure(name, &points, &caption));
        }
        Err(e) => file_problem(page, &e, "percentile distribution"),
    }
}

/// (1/(1-q), value in ms) for each step of the distribution below the maximum.
fn distribution_points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    h.iter_quantiles(TICKS_PER_HALF_DISTANCE)
        .map(|v| {
            (
                v.quantile_iterated_to(),
                h.highest_equivalent(v.value_iterated_to()) as f64 / 1000.0,
            )
        })
        .filter(|(q, _)| *q < 1.0)
        .map(|(q, ms)| (1.0 / (1.0 - q), ms))
        .collect()
}

/// The percentile distribution as HdrHistogram's plotter draws it: x = 1/(1-q) on a log scale,
/// labelled as percentiles.
fn distribution_figure(name: &str, points: &[(f64, f64)], caption: &str) -> String {
    let top_x = points.iter().map(|p| p.0).fold(1.0, f64::max);
    let decades = (top_x.log10().ceil() as i32).clamp(2, 9);
    let max_ms = points.iter().map(|p| p.1).fold(0.0, f64::max);
    let plot = Plot {
        x: Axis {
            title: "percentile".into(),
            lo: 1.0,
            hi: 10f64.powi(decades),
            ticks: (0..=decades).map(|e| 10f64.powi(e)).collect(),
            log: true,
            format: Box::new(percentile_label),
        },
        y: Axis::linear("latency (ms)", max_ms),
        traces: vec![Trace {
            color: P50,
            points: points.iter().map(|&p| Some(p)).collect(),
            markers: false,
            width: 2,
        }],
        bars: Vec::new(),
    };
    figure(
        &format!("distribution-{name}"),
        &format!("{name}: percentile distribution"),
        &plot,
        &[],
        caption,
    )
}

pub fn load(page: &mut Page, folder: &RunFolder, timeline: &Timeline) {
    let ts = match &folder.timeseries {
        Ok(ts) if !ts.is_empty() => ts,
        Ok(_) => {
            page.note("timeseries.csv has no rows: the run ended within its first second.");
            return;
        }
        Err(e) => {
            file_problem(page, e, "events or connections over time");
            return;
        }
    };
    page.push("<div class=\"grid\">\n");
    let sent = timeline::rate(timeline, ts, "sent").unwrap_or_default();
    let received = timeline::rate(timeline, ts, "received").unwrap_or_default();
    let plot = time_plot(
        timeline,
        "events per second",
        false,
        &[(PALETTE[0], &sent), (PALETTE[1], &received)],
    );
    let legend = [("sent", PALETTE[0]), ("received", PALETTE[1])].map(|(n, c)| (n.to_string(), c));
    let caption = if timeline.bucket_s == 1 {
        "Messages each second (Socket.IO: events and acks), from timeseries.csv.".to_string()
    } else {
        format!(
            "Messages per second, averaged {}, from timeseries.csv.",
            timeline.bucket_words()
        )
    };
    page.push(&figure(
        "events",
        "Events per second",
        &plot,
        &legend,
        &caption,
    ));

    let connected = timeline::gauge(timeline, ts, "connected").unwrap_or_default();
    let connecting = timeline::gauge(timeline, ts, "connecting").unwrap_or_default();
    let plot = time_plot(
        timeline,
        "clients",
        false,
        &[(PALETTE[4], &connected), (PALETTE[9], &connecting)],
    );
    let legend =
        [("connected", PALETTE[4]), ("connecting", PALETTE[9])].map(|(n, c)| (n.to_string(), c));
    let caption = if timeline.bucket_s == 1 {
        "Clients connected and connecting at the end of each second.".to_string()
    } else {
        format!(
            "Clients connected and connecting, the mean {}.",
            timeline.bucket_words()
        )
    };
    page.push(&figure(
        "connections",
        "Connections",
        &plot,
        &legend,
        &caption,
    ));
    page.push("</div>\n");
}

pub fn problems(page: &mut Page, folder: &RunFolder, timeline: &Timeline) {
    page.push("<div class=\"grid\">\n<div>\n");
    match &folder.gaps {
        Ok(gaps) if gaps.is_empty() => page.note("gaps.csv: no delivery problems were recorded."),
        Ok(gaps) => {
            let kinds = KindCounts::gaps(timeline, gaps);
            page.push(&kinds_figure(
                "gaps",
                "Delivery problems over time (gaps.csv)",
                &format!("events {}", timeline.bucket_words()),
                timeline,
                &kinds,
            ));
            let rows: Vec<Vec<String>> = (0..kinds.kinds.len())
                .map(|k| vec![kinds.kinds[k].0.clone(), format!("{}", kinds.total(k))])
                .collect();
            page.push(&page::table("gap-kinds", &["kind", "events"], &rows));
        }
        Err(e) => file_problem(page, e, "delivery problems over time"),
    }
    page.push("</div>\n<div>\n");
    match &folder.errors {
        Ok(errors) if errors.is_empty() => page.note("errors.csv: no errors were recorded."),
        Ok(errors) => {
            let kinds = KindCounts::errors(timeline, errors);
            page.push(&kinds_figure(
                "errors",
                "Errors over time (errors.csv)",
                &format!("errors {}", timeline.bucket_words()),
                timeline,
                &kinds,
            ));
            let rows: Vec<Vec<String>> = kinds
                .kinds
                .iter()
                .enumerate()
                .map(|(k, (kind, _))| {
                    let first = errors.iter().find(|e| &e.kind == kind);
                    let example = first
                        .map(|e| {
                            let detail: String = e.detail.chars().take(120).collect();
                            format!("{:.3} s, client {}: {detail}", e.time_s, e.client)
                        })
                        .unwrap_or_default();
                    vec![kind.clone(), format!("{}", kinds.total(k)), example]
                })
                .collect();
            page.push(&page::table(
                "error-kinds",
                &["kind", "rows", "first"],
                &rows,
            ));
        }
        Err(e) => file_problem(page, e, "errors over time"),
    }
    page.push("</div>\n</div>\n");
}

/// Stacked bars of counts per bucket, one colour per kind.
fn kinds_figure(
    id: &str,
    title: &str,
    y_title: &str,
    timeline: &Timeline,
    kinds: &KindCounts,
) -> String {
    let color = |k: usize| PALETTE[k % PALETTE.len()];
    let mut bars = Vec::new();
    let mut top = 0.0f64;
    for bucket in 0..timeline.buckets() {
        let x = timeline.bar_range(bucket);
        let mut height = 0.0;
        for (k, (_, counts)) in kinds.kinds.iter().enumerate() {
            let n = counts[bucket];
            if n > 0.0 {
                bars.push(Bar {
                    color: color(k),
                    x,
                    y: (height, height + n),
                });
                height += n;
            }
        }
        top = top.max(height);
    }
    let plot = Plot {
        x: time_axis(timeline),
        y: Axis::linear(y_title, top),
        traces: Vec::new(),
        bars,
    };
    let legend: Vec<(String, Rgb)> = kinds
        .kinds
        .iter()
        .enumerate()
        .map(|(k, (name, _))| (name.clone(), color(k)))
        .collect();
    figure(id, title, &plot, &legend, "")
}
