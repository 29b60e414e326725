//! The coordinator's loop while the workers run: their messages become complete seconds (by the
//! [`Collector`]), each second goes to the files, the live view and the totals; thresholds marked
//! `abort` are judged once a second on the totals so far; a stop signal stops the clients, which
//! then drain and close, so the loop ends when the last worker has reported.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::collect::Collector;
use super::live::{Gauges, Live};
use super::progress::Progress;
use super::streams::StreamedFiles;
use super::worker::WorkerMessage;
use crate::gate::figures::Figures;
use crate::gate::verdict;
use crate::metrics::Interval;
use crate::results::RunStatus;
use crate::results::timeseries_csv::SecondRow;
use crate::scenario::Plan;

pub struct Coordinator<'a> {
    plan: &'a Plan,
    metric_names: &'a [String],
    pub collector: Collector,
    /// Every released second, added up.
    pub totals: Interval,
    pub status: RunStatus,
    /// When each threshold stopped the run, if one did.
    pub aborted_at: Vec<Option<Duration>>,
    stop: CancellationToken,
    live: Option<&'a Live>,
}

impl<'a> Coordinator<'a> {
    pub fn new(
        plan: &'a Plan,
        metric_names: &'a [String],
        collector: Collector,
        stop: CancellationToken,
        live: Option<&'a Live>,
    ) -> Coordinator<'a> {
        Coordinator {
            plan,
            metric_names,
            collector,
            totals: Interval::new(metric_names.len(), plan.expects.len()),
            status: RunStatus::Completed,
            aborted_at: vec![None; plan.thresholds.len()],
            stop,
            live,
        }
    }

    /// Stopped before time zero: the clients start and stop at once.
    pub fn interrupted_early(&mut self) {
        self.status = RunStatus::Interrupted;
        self.stop.cancel();
    }

    /// Until every worker has ended: seconds to files, view and totals; `shutdown` stops it.
    pub async fn run(
        &mut self,
        mut messages: mpsc::Receiver<WorkerMessage>,
        mut shutdown: Pin<&mut impl Future<Output = ()>>,
        progress: &mut Progress,
        files: &mut StreamedFiles,
    ) {
        let watch_aborts = self.plan.thresholds.iter().any(|g| g.abort);
        let (mut released, mut last_check) = (0, 0);
        loop {
            if watch_aborts && self.status == RunStatus::Completed && released > last_check {
                last_check = released;
                self.check_aborts(Duration::from_secs(last_check), progress);
            }
            tokio::select! {
                _ = &mut shutdown, if self.status == RunStatus::Completed => {
                    self.status = RunStatus::Interrupted;
                    self.stop.cancel();
                    progress.note("stopping: no new events; draining in-flight ones and closing (press Ctrl-C again to quit at once)");
                }
                message = messages.recv() => match message {
                    Some(message) => {
                        let rows = self.collector.accept(message);
                        released = rows.last().map_or(released, |r| r.second);
                        self.take(rows, progress, files);
                    }
                    None => break,
                },
            }
        }
        let rest = self.collector.finish();
        self.take(rest, progress, files);
    }

    fn take(&mut self, rows: Vec<SecondRow>, progress: &mut Progress, files: &mut StreamedFiles) {
        let Some(last) = rows.last().map(|r| r.second) else {
            return;
        };
        for mut row in rows {
            progress.update(&row);
            files.write_second(&mut row);
            let lag = row.interval.schedule_lag_max_us;
            self.totals.merge(&mut row.interval);
            if let Some(live) = self.live {
                live.publish(
                    &self.totals,
                    Gauges {
                        connected: row.connected,
                        connecting: row.connecting,
                        schedule_lag_us: lag,
                        elapsed: Duration::from_secs(row.second),
                    },
                );
            }
        }
        files.checkpoint(
            &mut self.totals,
            self.collector.started,
            self.collector.cpu,
            Duration::from_secs(last),
        );
    }

    /// Stops the run at the first `abort` threshold that cannot pass any more, `elapsed` in.
    fn check_aborts(&mut self, elapsed: Duration, progress: &Progress) {
        let figures = Figures::from_totals(self.metric_names, &self.totals, elapsed);
        for (i, gate) in self.plan.thresholds.iter().enumerate() {
            let Some(actual) = verdict::hopeless(gate, &figures, elapsed) else {
                continue;
            };
            self.aborted_at[i] = Some(elapsed);
            self.status = RunStatus::Aborted;
            progress.note(&format!(
                "aborting at {}s: threshold `{}` cannot pass any more ({} is {}); \
                 draining and closing",
                elapsed.as_secs(),
                gate.threshold,
                gate.threshold.metric_label(),
                verdict::format_figure(actual, gate.threshold.stat),
            ));
            self.stop.cancel();
            return;
        }
    }
}
