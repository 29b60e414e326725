//! The merged run second by second: the shards' timeseries.csv rows and latency.hlog intervals
//! added into one row per wall-clock second of the merged run.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

use crate::metrics::Interval;
use crate::results::ExportError;
use crate::results::latency_hlog::HlogWriter;
use crate::results::timeseries_csv::{COUNT_COLUMNS, SecondCounts, SecondRow, TimeseriesWriter};
use crate::results::{Timeseries, layout};

pub struct Timeline {
    t0_ms: u128,
    t0: SystemTime,
    shape: (usize, usize),
    /// By second of the merged run (the end of the second, as timeseries.csv counts).
    seconds: BTreeMap<u64, (SecondRow, SecondCounts)>,
}

impl Timeline {
    pub fn new(t0: SystemTime, metrics: usize, expects: usize) -> Timeline {
        Timeline {
            t0_ms: t0
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
            t0,
            shape: (metrics, expects),
            seconds: BTreeMap::new(),
        }
    }

    fn at(&mut self, second: u64) -> &mut (SecondRow, SecondCounts) {
        let (metrics, expects) = self.shape;
        let epoch_ms = self.t0_ms + u128::from(second) * 1000;
        self.seconds.entry(second).or_insert_with(|| {
            (
                SecondRow {
                    second,
                    epoch_ms,
                    connected: 0,
                    connecting: 0,
                    interval: Interval::new(metrics, expects),
                },
                SecondCounts::default(),
            )
        })
    }

    /// Adds a shard's timeseries.csv: each row to the merged second of its `epoch_ms`.
    pub fn add_timeseries(&mut self, ts: &Timeseries) -> Result<(), String> {
        let epoch = ts
            .column("epoch_ms")
            .ok_or("no `epoch_ms` column: rows cannot be aligned by wall-clock second")?;
        let column = |name: &str| ts.column(name).unwrap_or_else(|| vec![None; ts.len()]);
        let connected = column("connected");
        let connecting = column("connecting");
        let counts: Vec<Vec<Option<f64>>> = COUNT_COLUMNS.iter().map(|c| column(c)).collect();
        for (row, epoch_ms) in epoch.iter().enumerate() {
            let Some(epoch_ms) = epoch_ms else { continue };
            let since = (*epoch_ms - self.t0_ms as f64) / 1000.0;
            let second = since.round().max(0.0) as u64;
            let value = |v: &Option<f64>| v.map_or(0, |v| v as u64);
            let (merged, totals) = self.at(second);
            merged.connected += value(&connected[row]);
            merged.connecting += value(&connecting[row]);
            for (field, column) in totals.fields_mut().into_iter().zip(&counts) {
                *field += value(&column[row]);
            }
        }
        Ok(())
    }

    /// Adds one interval of latency metric `metric` that started `start` after the merged time
    /// zero.
    pub fn add_interval(
        &mut self,
        metric: usize,
        start: Duration,
        histogram: &Histogram<u64>,
    ) -> Result<(), String> {
        let second = start.as_secs_f64().round() as u64 + 1;
        let (row, _) = self.at(second);
        row.interval.histograms[metric]
            .add(histogram)
            .map_err(|e| format!("an interval does not fit volley's histograms: {e:?}"))
    }

    /// Writes timeseries.csv and latency.hlog of the merged run into `out`.
    pub fn write(&self, out: &Path, metric_names: &[String]) -> Result<(), ExportError> {
        let mut timeseries =
            TimeseriesWriter::create(&out.join(layout::TIMESERIES_CSV), metric_names)?;
        let mut hlog = HlogWriter::create(
            &out.join(crate::results::layout::LATENCY_HLOG),
            metric_names,
            self.t0,
        )?;
        for (row, counts) in self.seconds.values() {
            timeseries.write_counts(row, counts)?;
            hlog.write(row)?;
        }
        Ok(())
    }
}
