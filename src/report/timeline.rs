//! The report's time axis: the run cut into at most [`MAX_BUCKETS`] buckets of a round number of
//! seconds, and the series of each plot computed per bucket. Latency percentiles of a bucket come
//! from the merged histograms of its intervals, never from averaged percentiles.

use hdrhistogram::Histogram;

use crate::results::{ErrorEvent, GapEvent, MetricLog, Timeseries};

/// Points per series at most, whatever the run's length.
pub const MAX_BUCKETS: usize = 600;
/// Bucket lengths in seconds, smallest first: the first that keeps the run within MAX_BUCKETS.
const BUCKET_SECONDS: [u64; 16] = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400,
];

/// How time is written on an axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    Seconds,
    Minutes,
    Hours,
}

impl TimeUnit {
    fn seconds(self) -> f64 {
        match self {
            TimeUnit::Seconds => 1.0,
            TimeUnit::Minutes => 60.0,
            TimeUnit::Hours => 3600.0,
        }
    }

    fn name(self) -> &'static str {
        match self {
            TimeUnit::Seconds => "s",
            TimeUnit::Minutes => "min",
            TimeUnit::Hours => "h",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeline {
    /// The run's length in seconds, the axis's end.
    pub end_s: f64,
    /// Seconds per bucket.
    pub bucket_s: u64,
    pub unit: TimeUnit,
}

impl Timeline {
    pub fn new(end_s: f64) -> Timeline {
        let end_s = if end_s.is_finite() && end_s >= 1.0 {
            end_s
        } else {
            1.0
        };
        let bucket_s = BUCKET_SECONDS
            .into_iter()
            .find(|&b| (end_s / b as f64).ceil() as usize <= MAX_BUCKETS)
            .unwrap_or(86400);
        let unit = if end_s <= 180.0 {
            TimeUnit::Seconds
        } else if end_s <= 3.0 * 3600.0 {
            TimeUnit::Minutes
        } else {
            TimeUnit::Hours
        };
        Timeline {
            end_s,
            bucket_s,
            unit,
        }
    }

    pub fn buckets(&self) -> usize {
        ((self.end_s / self.bucket_s as f64).ceil() as usize).max(1)
    }

    /// The bucket a moment (seconds since time zero) falls in; later moments go to the last one.
    pub fn index(&self, t: f64) -> usize {
        ((t.max(0.0) / self.bucket_s as f64) as usize).min(self.buckets() - 1)
    }

    /// Where a bucket's point goes: its middle (the end of the run for the last one at most).
    pub fn midpoint(&self, bucket: usize) -> f64 {
        ((bucket as f64 + 0.5) * self.bucket_s as f64).min(self.end_s)
    }

    pub fn bucket_range(&self, bucket: usize) -> (f64, f64) {
        let start = (bucket as f64 * self.bucket_s as f64).min(self.end_s);
        let end = (start + self.bucket_s as f64).min(self.end_s);
        (start, end)
    }

    /// Where a bucket's bar stands: its range with a thin gap on each side between wide bars, and
    /// none when they are a pixel or two wide.
    pub fn bar_range(&self, bucket: usize) -> (f64, f64) {
        let (start, end) = self.bucket_range(bucket);
        let inset = if self.buckets() <= 120 {
            (end - start) * 0.1
        } else {
            0.0
        };
        (start + inset, end - inset)
    }

    /// The axis title.
    pub fn axis_name(&self) -> String {
        format!("time since start ({})", self.unit.name())
    }

    /// A tick's label: the time in the axis's unit, without needless decimals.
    pub fn label(&self, seconds: f64) -> String {
        let v = seconds / self.unit.seconds();
        if (v - v.round()).abs() < 1e-9 {
            format!("{}", v.round() as i64)
        } else {
            format!("{v:.1}")
        }
    }

    /// Tick positions in seconds: a round step in the axis's unit, at most 9 ticks.
    pub fn ticks(&self) -> Vec<f64> {
        let unit = self.unit.seconds();
        let span = self.end_s / unit;
        let step = [0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0]
            .into_iter()
            .find(|s| span / s <= 8.0)
            .unwrap_or(span / 5.0);
        let mut ticks = Vec::new();
        let mut t = 0.0;
        while t <= span + 1e-9 {
            ticks.push(t * unit);
            t += step;
        }
        ticks
    }

    /// "per second", or "per 15 s bucket", "per 2 min bucket", for captions and axes.
    pub fn bucket_words(&self) -> String {
        match self.bucket_s {
            1 => "per second".into(),
            s if s < 60 => format!("per {s} s bucket"),
            s if s < 3600 => format!("per {} min bucket", s / 60),
            s => format!("per {} h bucket", s / 3600),
        }
    }
}

/// p50, p90, p99 and max per bucket, in ms, from the merged interval histograms of each bucket.
pub struct PercentileSeries {
    pub p50: Vec<Option<f64>>,
    pub p90: Vec<Option<f64>>,
    pub p99: Vec<Option<f64>>,
    pub max: Vec<Option<f64>>,
}

pub fn latency_percentiles(
    timeline: &Timeline,
    metric: &MetricLog,
) -> Result<PercentileSeries, String> {
    let n = timeline.buckets();
    let mut series = PercentileSeries {
        p50: vec![None; n],
        p90: vec![None; n],
        p99: vec![None; n],
        max: vec![None; n],
    };
    let mut order: Vec<usize> = (0..metric.intervals.len()).collect();
    order.sort_by_key(|&i| metric.intervals[i].start);
    let mut merged: Option<(usize, Histogram<u64>)> = None;
    let finish = |bucket: usize, h: &Histogram<u64>, s: &mut PercentileSeries| {
        if !h.is_empty() {
            let ms = |us: u64| Some(us as f64 / 1000.0);
            s.p50[bucket] = ms(h.value_at_quantile(0.5));
            s.p90[bucket] = ms(h.value_at_quantile(0.9));
            s.p99[bucket] = ms(h.value_at_quantile(0.99));
            s.max[bucket] = ms(h.max());
        }
    };
    for i in order {
        let interval = &metric.intervals[i];
        if interval.count == 0 {
            continue;
        }
        let bucket = timeline.index(interval.start.as_secs_f64());
        let h = interval.histogram()?;
        match &mut merged {
            Some((b, acc)) if *b == bucket => {
                acc.add(&h).map_err(|e| format!("{e:?}"))?;
            }
            _ => {
                if let Some((b, acc)) = &merged {
                    finish(*b, acc, &mut series);
                }
                let mut acc = h;
                acc.auto(true);
                merged = Some((bucket, acc));
            }
        }
    }
    if let Some((b, acc)) = &merged {
        finish(*b, acc, &mut series);
    }
    Ok(series)
}

/// The mean per bucket, in ms, of the values of the bucket's intervals (means add up, where
/// percentiles do not: the phases of connect are stacked by their means).
pub fn latency_means(timeline: &Timeline, metric: &MetricLog) -> Result<Vec<Option<f64>>, String> {
    let mut sums = vec![(0.0f64, 0u64); timeline.buckets()];
    for interval in metric.intervals.iter().filter(|i| i.count > 0) {
        let h = interval.histogram()?;
        let (sum, count) = &mut sums[timeline.index(interval.start.as_secs_f64())];
        *sum += h.mean() * h.len() as f64;
        *count += h.len();
    }
    Ok(sums
        .into_iter()
        .map(|(sum, count)| (count > 0).then(|| sum / count as f64 / 1000.0))
        .collect())
}

/// A timeseries.csv count column as a rate per second in each bucket (rows cover the second
/// before their `second`).
pub fn rate(timeline: &Timeline, ts: &Timeseries, column: &str) -> Option<Vec<Option<f64>>> {
    let values = ts.column(column)?;
    let mut sums = vec![None; timeline.buckets()];
    for (second, value) in ts.seconds().into_iter().zip(values) {
        let slot = &mut sums[timeline.index(second - 1.0)];
        *slot = Some(slot.unwrap_or(0.0) + value.unwrap_or(0.0));
    }
    let per_bucket = timeline.bucket_s as f64;
    Some(
        sums.into_iter()
            .enumerate()
            .map(|(b, s)| {
                let (start, end) = timeline.bucket_range(b);
                // The last bucket may be shorter than the others.
                s.map(|s| s / (end - start).clamp(1.0, per_bucket))
            })
            .collect(),
    )
}

/// A timeseries.csv gauge column averaged over each bucket.
pub fn gauge(timeline: &Timeline, ts: &Timeseries, column: &str) -> Option<Vec<Option<f64>>> {
    fold_column(timeline, ts, column, |values| {
        values.iter().sum::<f64>() / values.len() as f64
    })
}

/// A timeseries.csv latency column (µs) as ms, the highest per-second value of each bucket: for
/// folders without an interval log, whose percentiles cannot be merged.
pub fn highest_ms(timeline: &Timeline, ts: &Timeseries, column: &str) -> Option<Vec<Option<f64>>> {
    fold_column(timeline, ts, column, |values| {
        values.iter().copied().fold(0.0, f64::max) / 1000.0
    })
}

fn fold_column(
    timeline: &Timeline,
    ts: &Timeseries,
    column: &str,
    fold: impl Fn(&[f64]) -> f64,
) -> Option<Vec<Option<f64>>> {
    let values = ts.column(column)?;
    let mut buckets: Vec<Vec<f64>> = vec![Vec::new(); timeline.buckets()];
    for (second, value) in ts.seconds().into_iter().zip(values) {
        if let Some(v) = value {
            buckets[timeline.index(second - 1.0)].push(v);
        }
    }
    Some(
        buckets
            .iter()
            .map(|b| (!b.is_empty()).then(|| fold(b)))
            .collect(),
    )
}

/// Counts per kind and bucket, kinds by their total, largest first.
pub struct KindCounts {
    pub kinds: Vec<(String, Vec<f64>)>,
}

impl KindCounts {
    fn new<'a>(timeline: &Timeline, events: impl Iterator<Item = (f64, &'a str, f64)>) -> Self {
        let mut kinds: Vec<(String, Vec<f64>)> = Vec::new();
        for (t, kind, count) in events {
            let i = match kinds.iter().position(|(k, _)| k == kind) {
                Some(i) => i,
                None => {
                    kinds.push((kind.to_string(), vec![0.0; timeline.buckets()]));
                    kinds.len() - 1
                }
            };
            kinds[i].1[timeline.index(t)] += count;
        }
        kinds.sort_by(|a, b| {
            let total = |v: &[f64]| v.iter().sum::<f64>();
            total(&b.1).total_cmp(&total(&a.1)).then(a.0.cmp(&b.0))
        });
        KindCounts { kinds }
    }

    pub fn gaps(timeline: &Timeline, gaps: &[GapEvent]) -> Self {
        KindCounts::new(
            timeline,
            gaps.iter()
                .map(|g| (g.time_s, g.kind.as_str(), g.count as f64)),
        )
    }

    pub fn errors(timeline: &Timeline, errors: &[ErrorEvent]) -> Self {
        KindCounts::new(
            timeline,
            errors.iter().map(|e| (e.time_s, e.kind.as_str(), 1.0)),
        )
    }

    pub fn total(&self, kind: usize) -> f64 {
        self.kinds[kind].1.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_stay_within_600_at_round_lengths_and_the_unit_fits_the_run() {
        let short = Timeline::new(12.3);
        assert_eq!((short.bucket_s, short.buckets()), (1, 13));
        assert_eq!(short.unit, TimeUnit::Seconds);
        assert_eq!(short.axis_name(), "time since start (s)");
        let long = Timeline::new(2.0 * 3600.0 + 5.0);
        assert_eq!(long.bucket_s, 15);
        assert!(long.buckets() <= MAX_BUCKETS);
        assert_eq!(long.unit, TimeUnit::Minutes);
        assert_eq!(long.label(1800.0), "30");
        assert_eq!(long.bucket_words(), "per 15 s bucket");
        assert_eq!(Timeline::new(36_000.0).bucket_words(), "per 1 min bucket");
        let day = Timeline::new(30.0 * 3600.0);
        assert_eq!(day.unit, TimeUnit::Hours);
        assert!(day.buckets() <= MAX_BUCKETS);
        assert_eq!(Timeline::new(0.0).buckets(), 1);
        assert_eq!(Timeline::new(f64::NAN).end_s, 1.0);
    }

    #[test]
    fn ticks_are_round_in_the_axis_unit() {
        let labels =
            |t: Timeline| -> Vec<String> { t.ticks().iter().map(|&s| t.label(s)).collect() };
        assert_eq!(labels(Timeline::new(10.0)), ["0", "2", "4", "6", "8", "10"]);
        assert_eq!(
            labels(Timeline::new(7200.0)),
            ["0", "15", "30", "45", "60", "75", "90", "105", "120"]
        );
        assert_eq!(
            labels(Timeline::new(3.0)),
            ["0", "0.5", "1", "1.5", "2", "2.5", "3"]
        );
    }

    #[test]
    fn a_buckets_percentiles_come_from_its_merged_histograms() {
        use crate::results::latency_hlog::HlogWriter;
        use crate::results::timeseries_csv::SecondRow;
        // 1,200 seconds: 2 s buckets. Second 1 has 99 values of 1 ms, second 2 one of 100 ms.
        let names = ["echo".to_string()];
        let t0 = std::time::UNIX_EPOCH;
        let mut writer = HlogWriter::new(Vec::new(), &names, t0).unwrap();
        for second in 1..=1200u64 {
            let mut interval = crate::metrics::Interval::new(1, 0);
            match second {
                1 => interval.histograms[0].record_n(1000, 99).unwrap(),
                2 => interval.histograms[0].record(100_000).unwrap(),
                _ => {}
            }
            let row = SecondRow {
                second,
                epoch_ms: 0,
                connected: 0,
                connecting: 0,
                interval,
            };
            writer.write(&row).unwrap();
        }
        let bytes = writer.into_inner();
        let log =
            crate::results::IntervalLog::parse(std::path::Path::new("l.hlog"), &bytes).unwrap();
        let timeline = Timeline::new(1200.0);
        assert_eq!(timeline.bucket_s, 2);
        let s = latency_percentiles(&timeline, &log.metrics[0]).unwrap();
        assert_eq!(s.p50.len(), 600);
        // Merged: p50 and p90 are 1 ms, p99 is 1 ms (99 of 100), max 100 ms.
        assert_eq!(s.p50[0], Some(1.0));
        assert_eq!(s.p99[0], Some(1.0));
        assert!((s.max[0].unwrap() - 100.0).abs() < 0.1);
        assert_eq!(s.p50[1], None, "empty buckets have no point");
    }

    #[test]
    fn rates_gauges_and_kinds_per_bucket() {
        let csv = "second,sent,connected\n1,10,2\n2,20,4\n3,30,6\n";
        let ts = Timeseries::parse(std::path::Path::new("t.csv"), csv.as_bytes()).unwrap();
        let timeline = Timeline::new(3.0);
        assert_eq!(
            rate(&timeline, &ts, "sent").unwrap(),
            [Some(10.0), Some(20.0), Some(30.0)]
        );
        assert_eq!(gauge(&timeline, &ts, "connected").unwrap()[2], Some(6.0));
        assert!(rate(&timeline, &ts, "received").is_none());
        let gaps = [
            GapEvent {
                time_s: 0.5,
                expect: "e".into(),
                kind: "gap".into(),
                count: 3,
                during_reconnect: false,
            },
            GapEvent {
                time_s: 2.5,
                expect: "e".into(),
                kind: "lost".into(),
                count: 5,
                during_reconnect: false,
            },
        ];
        let kinds = KindCounts::gaps(&timeline, &gaps);
        assert_eq!(kinds.kinds[0], ("lost".to_string(), vec![0.0, 0.0, 5.0]));
        assert_eq!(kinds.kinds[1], ("gap".to_string(), vec![3.0, 0.0, 0.0]));
    }
}
