//! Progress on stderr: an indicatif bar while clients connect, then a live line; on a stream that is
//! not a terminal (CI logs), a plain line every few seconds; nothing with `--quiet`. No colours are
//! used, so NO_COLOR holds trivially. Dropping it clears the bar whatever happened.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::results::timeseries_csv::SecondRow;
use crate::units::format_us;

const PLAIN_EVERY: Duration = Duration::from_secs(5);

enum Mode {
    Off,
    Bar { bar: ProgressBar, ramping: bool },
    Plain { last: Instant },
}

/// What the live line shows of one second: of one process, or summed over local shards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tick {
    pub second: u64,
    pub connected: u64,
    pub sent: u64,
    pub received: u64,
    pub errors: u64,
    /// Connection attempts finished in the second (connected or failed).
    pub attempted: u64,
    /// p50 and p99 (µs) of the metric shown, when it has samples in the second.
    pub latency: Option<(u64, u64)>,
}

pub struct Progress {
    mode: Mode,
    clients: u64,
    /// Connection attempts finished so far (connected or failed).
    attempted: u64,
    errors: u64,
    /// Index of the latency metric shown (the first expect, or `connect`).
    main_metric: usize,
    main_name: String,
}

impl Progress {
    /// `main_metric`: the index in `metric_names` of the latency the line shows.
    pub fn new(quiet: bool, clients: u64, metric_names: &[String], main_metric: usize) -> Progress {
        let mode = if quiet {
            Mode::Off
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(clients), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("connecting {bar:30} {pos}/{len} {msg}")
                    .expect("static template")
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            Mode::Bar { bar, ramping: true }
        } else {
            Mode::Plain {
                last: Instant::now(),
            }
        };
        Progress {
            mode,
            clients,
            attempted: 0,
            errors: 0,
            main_metric,
            main_name: metric_names[main_metric].clone(),
        }
    }

    /// The index of the latency metric the line shows.
    pub fn main_metric(&self) -> usize {
        self.main_metric
    }

    /// A line for people, also used by the plain mode.
    fn line(&self, tick: &Tick) -> String {
        let latency = match tick.latency {
            Some((p50, p99)) => format!(
                "{} p50 {} p99 {}",
                self.main_name,
                format_us(p50 as f64),
                format_us(p99 as f64)
            ),
            None => format!("{} -", self.main_name),
        };
        format!(
            "{:>4}s  connected {}  sent {}/s  received {}/s  {latency}  errors {}",
            tick.second, tick.connected, tick.sent, tick.received, self.errors
        )
    }

    pub fn update(&mut self, row: &SecondRow) {
        let h = &row.interval.histograms[self.main_metric];
        self.tick(&Tick {
            second: row.second,
            connected: row.connected,
            sent: row.interval.sent,
            received: row.interval.received,
            errors: row.interval.error_total(),
            attempted: row.interval.connects + row.interval.connect_failures,
            latency: (!h.is_empty()).then(|| (h.value_at_quantile(0.5), h.value_at_quantile(0.99))),
        });
    }

    pub fn tick(&mut self, tick: &Tick) {
        self.attempted += tick.attempted;
        self.errors += tick.errors;
        let line = self.line(tick);
        match &mut self.mode {
            Mode::Off => {}
            Mode::Bar { bar, ramping } => {
                if *ramping && self.attempted >= self.clients {
                    *ramping = false;
                    bar.set_style(ProgressStyle::with_template("{msg}").expect("static template"));
                }
                bar.set_position(self.attempted.min(self.clients));
                bar.set_message(line);
            }
            Mode::Plain { last } => {
                if last.elapsed() >= PLAIN_EVERY {
                    *last = Instant::now();
                    eprintln!("{line}");
                }
            }
        }
    }

    /// A one-off message (e.g. "stopping") that does not disturb the bar.
    pub fn note(&self, message: &str) {
        match &self.mode {
            Mode::Off => {}
            Mode::Bar { bar, .. } => bar.println(message),
            Mode::Plain { .. } => eprintln!("{message}"),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Mode::Bar { bar, .. } = &self.mode {
            bar.finish_and_clear();
        }
    }
}
