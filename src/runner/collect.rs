//! The coordinator's side of the metrics: merges the workers' intervals into one row per second,
//! releasing a second only when every worker still running has reported it.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::worker::WorkerMessage;
use crate::metrics::Interval;
use crate::results::timeseries_csv::SecondRow;

pub struct Collector {
    /// Latency metrics and expects of every interval.
    metrics: (usize, usize),
    epoch_ms_at_t0: u128,
    /// Last second each worker reported; `None` before its first.
    last: Vec<u64>,
    done: Vec<bool>,
    pending: BTreeMap<u64, SecondRow>,
    /// Each worker's clients started and CPU time, as it last reported them.
    by_worker: Vec<(u64, Duration)>,
    /// Summed over the workers: clients started and their CPU time, so far.
    pub started: u64,
    pub cpu: Duration,
}

impl Collector {
    pub fn new(workers: usize, metrics: (usize, usize), t0_wall: SystemTime) -> Collector {
        Collector {
            metrics,
            epoch_ms_at_t0: t0_wall
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
            last: vec![0; workers],
            done: vec![false; workers],
            pending: BTreeMap::new(),
            by_worker: vec![(0, Duration::ZERO); workers],
            started: 0,
            cpu: Duration::ZERO,
        }
    }

    /// A worker's running totals: clients started and CPU time.
    fn so_far(&mut self, worker: usize, started: u64, cpu: Duration) {
        self.by_worker[worker] = (started, cpu);
        self.started = self.by_worker.iter().map(|(s, _)| s).sum();
        self.cpu = self.by_worker.iter().map(|(_, c)| *c).sum();
    }

    fn row(&mut self, second: u64) -> &mut SecondRow {
        let (metrics, expects) = self.metrics;
        let epoch_ms = self.epoch_ms_at_t0 + second as u128 * 1000;
        self.pending.entry(second).or_insert_with(|| SecondRow {
            second,
            epoch_ms,
            connected: 0,
            connecting: 0,
            interval: Interval::new(metrics, expects),
        })
    }

    /// Takes one worker message; returns the rows that are now complete, in order.
    pub fn accept(&mut self, message: WorkerMessage) -> Vec<SecondRow> {
        match message {
            WorkerMessage::Tick {
                worker,
                second,
                mut interval,
                connected,
                connecting,
                started,
                cpu,
            } => {
                let row = self.row(second);
                row.interval.merge(&mut interval);
                row.connected += connected;
                row.connecting += connecting;
                self.last[worker] = second;
                self.so_far(worker, started, cpu);
            }
            WorkerMessage::Done {
                worker,
                second,
                mut interval,
                started,
                cpu,
            } => {
                self.row(second).interval.merge(&mut interval);
                self.last[worker] = second;
                self.done[worker] = true;
                self.so_far(worker, started, cpu);
            }
        }
        let mut ready = Vec::new();
        while let Some((&second, _)) = self.pending.first_key_value() {
            let complete = self
                .last
                .iter()
                .zip(&self.done)
                .all(|(&last, &done)| done || last >= second);
            if !complete {
                break;
            }
            ready.push(self.pending.remove(&second).expect("key just seen"));
        }
        ready
    }

    /// Rows still pending when the workers are gone (a worker thread died): released as they are.
    pub fn finish(&mut self) -> Vec<SecondRow> {
        std::mem::take(&mut self.pending).into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(worker: usize, second: u64, sent: u64) -> WorkerMessage {
        let mut interval = Interval::new(1, 0);
        interval.sent = sent;
        WorkerMessage::Tick {
            worker,
            second,
            interval,
            connected: 1,
            connecting: 0,
            started: second,
            cpu: Duration::from_millis(second),
        }
    }

    #[test]
    fn a_second_is_released_when_every_running_worker_reported_it() {
        let mut c = Collector::new(2, (1, 0), UNIX_EPOCH);
        assert!(c.accept(tick(0, 1, 5)).is_empty());
        assert!(c.accept(tick(0, 2, 5)).is_empty());
        let rows = c.accept(tick(1, 1, 7));
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].second, rows[0].interval.sent, rows[0].connected),
            (1, 12, 2)
        );
        assert_eq!(rows[0].epoch_ms, 1000);
        // Worker 1 finishes: second 2 no longer waits for it.
        let rows = c.accept(WorkerMessage::Done {
            worker: 1,
            second: 2,
            interval: Interval::new(1, 0),
            started: 3,
            cpu: Duration::from_millis(5),
        });
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].interval.sent, 5);
        // Started and CPU so far: each worker's latest report, summed.
        assert_eq!(c.started, 2 + 3);
        assert_eq!(c.cpu, Duration::from_millis(2 + 5));
    }
}
