//! The human summary printed on stdout at the end of a run.

use std::fmt::Write;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::{FinishedRun, RunStatus};
use crate::metrics::{ConnectPhase, ErrorKind};
use crate::units::format_us;

/// A latency in µs, recorded as a whole number, for people.
fn human_us(us: u64) -> String {
    format_us(us as f64)
}

fn human_duration(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// The summary of a finished run whose results are in `dir`.
pub fn render(report: &FinishedRun, dir: &str) -> String {
    let mut out = String::new();
    facts(&mut out, report);
    deliveries(&mut out, report);
    problems(&mut out, report);
    costs(&mut out, report);
    latency(&mut out, report);
    let _ = writeln!(out, "\n  results   {dir}");
    out
}

/// The title line, the target, the clients and the messages.
fn facts(out: &mut String, report: &FinishedRun) {
    let t = &report.totals;
    let status = match report.status {
        RunStatus::Completed => "completed",
        RunStatus::Interrupted => "interrupted",
        RunStatus::Aborted => "aborted by a threshold",
        RunStatus::Running => "did not finish",
        RunStatus::Failed => "failed",
    };
    let _ = writeln!(
        out,
        "\nvolley run \"{}\" {status} in {} (run {}, seed {})",
        report.scenario_name,
        human_duration(report.elapsed),
        report.run_id,
        report.seed
    );
    for failed in &report.failed_shards {
        let shard = failed.shard.as_deref().unwrap_or(&failed.folder);
        let _ = writeln!(out, "  failed    shard {shard}: {}", failed.why);
    }
    let _ = writeln!(out, "  target    {}", report.target_url);
    let _ = writeln!(
        out,
        "  clients   {} planned, {} started, {} connected, {} failed to connect",
        report.clients_planned, report.clients_started, t.connects, t.connect_failures
    );
    let _ = writeln!(
        out,
        "  messages  {} sent, {} received ({:.0}/s out, {:.0}/s in)",
        t.sent,
        t.received,
        report.per_second(t.sent),
        report.per_second(t.received)
    );
}

/// Each expect's deliveries, the acks and the reconnects.
fn deliveries(out: &mut String, report: &FinishedRun) {
    let t = &report.totals;
    for (name, e) in report.expects() {
        let _ = write!(
            out,
            "  {name:<9} {} expected, {} received, {} lost, {} late",
            e.expected(),
            e.received,
            e.lost,
            e.late
        );
        if e.duplicate + e.reorder + e.gap + e.refilled > 0 {
            let _ = write!(
                out,
                ", {} duplicate, {} reordered, {} noticed missing, {} refilled by recovery",
                e.duplicate, e.reorder, e.gap, e.refilled
            );
        }
        let _ = writeln!(out);
    }
    if report.metric_names.iter().any(|m| m == "ack") {
        let answered = t.acks_sent.saturating_sub(t.acks_lost);
        let _ = writeln!(
            out,
            "  acks      {} asked, {answered} answered, {} lost",
            t.acks_sent, t.acks_lost
        );
    }
    if report.metric_names.iter().any(|m| m == "reconnect") {
        let _ = writeln!(
            out,
            "  reconnect {} reconnects, {} recovered by the server",
            t.reconnects, t.recovered
        );
    }
}

/// Errors by kind, with a word on ping timeouts, and closes by code.
fn problems(out: &mut String, report: &FinishedRun) {
    let t = &report.totals;
    let errors: Vec<String> = ErrorKind::ALL
        .iter()
        .filter(|k| t.errors[k.index()] > 0)
        .map(|k| format!("{k} {}", t.errors[k.index()]))
        .collect();
    let _ = writeln!(
        out,
        "  errors    {}",
        if errors.is_empty() {
            "none".to_string()
        } else {
            errors.join(", ")
        }
    );
    if t.errors[ErrorKind::PingTimeout.index()] > 0 {
        let _ = writeln!(
            out,
            "  note      ping timeouts: a client short of CPU answers heartbeats late; if the client CPU below is near a full core per worker, volley may be the bottleneck, not the server"
        );
    }
    if !t.closes.is_empty() {
        let closes: Vec<String> = t.closes.iter().map(|(c, n)| format!("{c}×{n}")).collect();
        let _ = writeln!(out, "  closes    {}", closes.join(", "));
    }
}

/// The frame log and the client's CPU.
fn costs(out: &mut String, report: &FinishedRun) {
    if let Some(frames) = &report.frame_log {
        let _ = write!(
            out,
            "  frames    {} logged (clients {}) to {}",
            frames.logged, frames.clients, frames.file
        );
        if frames.dropped > 0 {
            let _ = write!(out, ", {} dropped: the writer fell behind", frames.dropped);
        }
        let _ = writeln!(out);
    }
    if let Some(pushes) = report.prometheus {
        let _ = write!(out, "  prometheus {} pushed", pushes.pushed);
        if pushes.dropped > 0 {
            let _ = write!(out, ", {} dropped", pushes.dropped);
        }
        let _ = writeln!(out);
    }
    if let Some(cpu) = report.cpu_per_echo() {
        let _ = writeln!(
            out,
            "  client    {:.2}s CPU, {:.1}µs per echo",
            report.client_cpu.as_secs_f64(),
            cpu.as_secs_f64() * 1e6
        );
    }
}

/// The latency table: one row per metric, the phases of connect indented under it by their short
/// names (`  tcp` is `connect_tcp`).
fn latency(out: &mut String, report: &FinishedRun) {
    let metrics: Vec<(&str, &Histogram<u64>)> = report
        .metric_names
        .iter()
        .map(String::as_str)
        .zip(&report.totals.histograms)
        .collect();
    let mut rows: Vec<(String, &Histogram<u64>)> = Vec::new();
    for &(name, h) in &metrics {
        if ConnectPhase::of_metric(name).is_some() {
            continue;
        }
        rows.push((name.to_string(), h));
        if name == "connect" {
            let phases = metrics
                .iter()
                .filter_map(|&(n, h)| ConnectPhase::of_metric(n).map(|p| (p, h)));
            rows.extend(phases.map(|(p, h)| (format!("  {}", p.short_name()), h)));
        }
    }
    let width = rows
        .iter()
        .map(|(n, _)| n.chars().count())
        .fold(12, usize::max);
    let _ = writeln!(
        out,
        "\n  {:<width$} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "latency", "count", "min", "p50", "p90", "p99", "p99.9", "max"
    );
    for (name, h) in rows {
        if h.is_empty() {
            let _ = writeln!(out, "  {name:<width$} {:>9}", 0);
            continue;
        }
        let _ = writeln!(
            out,
            "  {name:<width$} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            h.len(),
            human_us(h.min()),
            human_us(h.value_at_quantile(0.5)),
            human_us(h.value_at_quantile(0.9)),
            human_us(h.value_at_quantile(0.99)),
            human_us(h.value_at_quantile(0.999)),
            human_us(h.max()),
        );
    }
}
