//! What a run measures. Each worker thread records into its own [`WorkerMetrics`] (no lock, no
//! atomic per event), hands the finished [`Interval`] to the coordinator once a second, and the
//! coordinator merges the intervals of all workers.

mod connect_phases;
mod errors;
pub mod gaps;

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

pub use connect_phases::{ConnectPhase, ConnectPhases};
pub use errors::ErrorKind;

/// Latencies are recorded in microseconds, from 1 µs to one hour, with 3 significant digits.
pub const HIGHEST_US: u64 = 3_600_000_000;
const SIGNIFICANT_DIGITS: u8 = 3;
/// Error rows kept per worker and interval; beyond it errors are still counted, not listed.
const ERROR_ROWS_PER_INTERVAL: usize = 1000;
/// Gap rows kept per worker and interval, likewise.
const GAP_ROWS_PER_INTERVAL: usize = 1000;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_US, SIGNIFICANT_DIGITS)
        .expect("static histogram bounds are valid")
}

/// Counters of one expect (one tracked event stream).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpectCounts {
    /// Tracked events sent (by the emitters; none for server streams).
    pub sent: u64,
    /// Deliveries: each event once per receiver that got it (duplicates not included).
    pub received: u64,
    /// Delivered later than the expect's `within`.
    pub late: u64,
    /// Never delivered by the end of the drain (per receiver).
    pub lost: u64,
    /// Delivered again.
    pub duplicate: u64,
    /// Delivered after a later event of the same stream.
    pub reorder: u64,
    /// Noticed missing when a later event arrived (they may still arrive: then reorders).
    pub gap: u64,
    /// Sent while the receiver was disconnected and delivered on a reconnect that the server
    /// recovered: replayed by Socket.IO connection state recovery.
    pub refilled: u64,
}

impl ExpectCounts {
    fn add(&mut self, other: &ExpectCounts) {
        self.sent += other.sent;
        self.received += other.received;
        self.late += other.late;
        self.lost += other.lost;
        self.duplicate += other.duplicate;
        self.reorder += other.reorder;
        self.gap += other.gap;
        self.refilled += other.refilled;
    }

    /// Deliveries that were due: delivered or lost.
    pub fn expected(&self) -> u64 {
        self.received + self.lost
    }
}

/// The names of an expect's counters, as run.json and threshold expressions spell them.
pub const EXPECT_COUNTERS: [&str; 9] = [
    "sent",
    "expected",
    "received",
    "lost",
    "late",
    "duplicate",
    "reorder",
    "gap",
    "refilled",
];

/// The run-wide counters, likewise.
pub const RUN_COUNTERS: [&str; 10] = [
    "sent",
    "received",
    "connects",
    "connect_failures",
    "errors",
    "reconnects",
    "reconnects_recovered",
    "acks_sent",
    "acks_lost",
    "ack_retries",
];

/// What a gaps.csv row reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapKind {
    Gap,
    Duplicate,
    Reorder,
    Late,
    Lost,
    Refilled,
}

impl GapKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GapKind::Gap => "gap",
            GapKind::Duplicate => "duplicate",
            GapKind::Reorder => "reorder",
            GapKind::Late => "late",
            GapKind::Lost => "lost",
            GapKind::Refilled => "refilled",
        }
    }
}

/// A stream's source in a gap row: an emitting client, or the server.
pub const SERVER_SOURCE: u32 = u32::MAX;
/// Keyed server streams (`stream = "/channel"`) take the sources just below [`SERVER_SOURCE`],
/// one per key a receiver has seen, at most this many (a stream is a few hundred bytes).
pub const SERVER_KEYS: u32 = 4096;

/// Whether a stream's source is the server (keyed or not) rather than a client.
pub fn is_server_source(source: u32) -> bool {
    source >= SERVER_SOURCE - SERVER_KEYS
}

/// One row of gaps.csv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GapRow {
    /// Since the run's start.
    pub at: Duration,
    pub receiver: u32,
    /// Index of the expect.
    pub expect: u32,
    /// The emitting client, or [`SERVER_SOURCE`].
    pub source: u32,
    /// A keyed server stream's key (the value at its `stream` pointer).
    pub key: Option<Box<str>>,
    /// The (first) sequence number that was due, when one can be named.
    pub expected: Option<u64>,
    /// The one that arrived (none for `lost`).
    pub got: Option<u64>,
    pub count: u64,
    pub kind: GapKind,
    /// The receiver lost its connection (and reconnected) since the stream's previous delivery.
    pub during_reconnect: bool,
    /// That reconnect was recovered by the server (Socket.IO connection state recovery).
    pub recovered: bool,
}

/// End-of-run facts for the fan-out tails: what each emitter sent and how far each receiver got.
#[derive(Debug, Clone, Default)]
pub struct FanoutEnds {
    pub emitters: Vec<EmitterEnd>,
    pub receivers: Vec<ReceiverEnd>,
    pub streams: Vec<StreamEnd>,
}

impl FanoutEnds {
    fn append(&mut self, other: &mut FanoutEnds) {
        self.emitters.append(&mut other.emitters);
        self.receivers.append(&mut other.receivers);
        self.streams.append(&mut other.streams);
    }
}

/// An emitter of a group-to-group expect, at its end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmitterEnd {
    pub expect: u32,
    pub emitter: u32,
    /// Events sent: sequence numbers 0..sent.
    pub sent: u64,
    /// Scheduled time of event 0, ns since the run's start, and the interval between events.
    pub first_ns: u64,
    pub interval_ns: f64,
}

/// A receiver of a group-to-group expect, at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverEnd {
    pub expect: u32,
    pub receiver: u32,
    /// When it was ready to receive (connected and set up), ns since the run's start.
    pub ready_ns: u64,
    /// Still connected when emitting ended: everything emitted until then was due to it.
    pub connected_at_end: bool,
}

/// How far one receiver got in one emitter's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamEnd {
    pub expect: u32,
    pub receiver: u32,
    pub emitter: u32,
    pub max_seen: u64,
}

/// One error as a row of errors.csv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRow {
    /// Since the run's start.
    pub at: Duration,
    pub client: u32,
    pub group: u16,
    pub kind: ErrorKind,
    pub detail: String,
}

/// What one group's clients did in an interval (the `group` label of the live metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupCounts {
    pub sent: u64,
    pub received: u64,
    pub errors: u64,
    /// Connections opened and ended: the difference is the group's clients connected.
    pub connects: u64,
    pub closes: u64,
}

impl GroupCounts {
    fn add(&mut self, other: &GroupCounts) {
        self.sent += other.sent;
        self.received += other.received;
        self.errors += other.errors;
        self.connects += other.connects;
        self.closes += other.closes;
    }
}

/// Everything counted during one interval; intervals merge by addition.
#[derive(Debug, Clone)]
pub struct Interval {
    /// Index 0 is `connect`, then one per expect in scenario order, then `ack` and `reconnect`
    /// when the plan uses them, the steps', and the phases of connect the plan's connections go
    /// through (the order of the plan's `metric_names`).
    pub histograms: Vec<Histogram<u64>>,
    pub sent: u64,
    pub received: u64,
    pub connects: u64,
    pub connect_failures: u64,
    /// Connections lost and opened again.
    pub reconnects: u64,
    /// Socket.IO reconnects the server recovered (same session id): missed packets were replayed.
    pub recovered: u64,
    /// Socket.IO emits that asked for an ack, and acks that never came.
    pub acks_sent: u64,
    pub acks_lost: u64,
    /// Emits sent again because their acknowledgement did not come in time (`retries`).
    pub ack_retries: u64,
    /// How late events of the interval went out against their schedule, at most (merged by
    /// maximum): the clients falling behind their open-model schedule.
    pub schedule_lag_max_us: u64,
    pub errors: [u64; ErrorKind::COUNT],
    /// Connection ends by close code (1006 when the connection ended without a close frame).
    pub closes: BTreeMap<u16, u64>,
    pub expects: Vec<ExpectCounts>,
    /// By group index; grown as groups are counted (an interval may hold fewer than the plan's).
    pub groups: Vec<GroupCounts>,
    pub error_rows: Vec<ErrorRow>,
    /// Errors counted but not listed because the row limit was reached.
    pub error_rows_dropped: u64,
    pub gap_rows: Vec<GapRow>,
    pub gap_rows_dropped: u64,
    pub fanout: FanoutEnds,
}

impl Interval {
    pub fn new(metrics: usize, expects: usize) -> Interval {
        Interval {
            histograms: (0..metrics).map(|_| new_histogram()).collect(),
            sent: 0,
            received: 0,
            connects: 0,
            connect_failures: 0,
            reconnects: 0,
            recovered: 0,
            acks_sent: 0,
            acks_lost: 0,
            ack_retries: 0,
            schedule_lag_max_us: 0,
            errors: [0; ErrorKind::COUNT],
            closes: BTreeMap::new(),
            expects: vec![ExpectCounts::default(); expects],
            groups: Vec::new(),
            error_rows: Vec::new(),
            error_rows_dropped: 0,
            gap_rows: Vec::new(),
            gap_rows_dropped: 0,
            fanout: FanoutEnds::default(),
        }
    }

    pub fn error_total(&self) -> u64 {
        self.errors.iter().sum()
    }

    pub fn close_total(&self) -> u64 {
        self.closes.values().sum()
    }

    /// Adds `other` into `self`; error rows are moved, not copied.
    pub fn merge(&mut self, other: &mut Interval) {
        for (mine, theirs) in self.histograms.iter_mut().zip(&other.histograms) {
            mine.add(theirs).expect("histograms share their bounds");
        }
        self.sent += other.sent;
        self.received += other.received;
        self.connects += other.connects;
        self.connect_failures += other.connect_failures;
        self.reconnects += other.reconnects;
        self.recovered += other.recovered;
        self.acks_sent += other.acks_sent;
        self.acks_lost += other.acks_lost;
        self.ack_retries += other.ack_retries;
        self.schedule_lag_max_us = self.schedule_lag_max_us.max(other.schedule_lag_max_us);
        for (mine, theirs) in self.errors.iter_mut().zip(other.errors) {
            *mine += theirs;
        }
        for (code, n) in &other.closes {
            *self.closes.entry(*code).or_default() += n;
        }
        for (mine, theirs) in self.expects.iter_mut().zip(&other.expects) {
            mine.add(theirs);
        }
        if self.groups.len() < other.groups.len() {
            self.groups
                .resize(other.groups.len(), GroupCounts::default());
        }
        for (mine, theirs) in self.groups.iter_mut().zip(&other.groups) {
            mine.add(theirs);
        }
        self.error_rows.append(&mut other.error_rows);
        self.error_rows_dropped += other.error_rows_dropped;
        self.gap_rows.append(&mut other.gap_rows);
        self.gap_rows_dropped += other.gap_rows_dropped;
        self.fanout.append(&mut other.fanout);
    }
}

/// The recorder of one worker thread, shared by its clients through `Rc<RefCell<_>>`.
#[derive(Debug)]
pub struct WorkerMetrics {
    pub interval: Interval,
    /// Clients with an open WebSocket now.
    pub connected: u64,
    /// Clients between TCP connect and upgrade now.
    pub connecting: u64,
}

impl WorkerMetrics {
    pub fn new(metrics: usize, expects: usize) -> WorkerMetrics {
        WorkerMetrics {
            interval: Interval::new(metrics, expects),
            connected: 0,
            connecting: 0,
        }
    }

    /// Hands over the finished interval and starts a fresh one.
    pub fn take_interval(&mut self) -> Interval {
        let fresh = Interval::new(self.interval.histograms.len(), self.interval.expects.len());
        std::mem::replace(&mut self.interval, fresh)
    }

    /// The counts of group `group` in this interval.
    pub fn group(&mut self, group: u16) -> &mut GroupCounts {
        let groups = &mut self.interval.groups;
        let index = usize::from(group);
        if groups.len() <= index {
            groups.resize(index + 1, GroupCounts::default());
        }
        &mut groups[index]
    }

    pub fn record(&mut self, metric: usize, latency: Duration) {
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.interval.histograms[metric].saturating_record(us);
    }

    pub fn close(&mut self, code: u16) {
        *self.interval.closes.entry(code).or_default() += 1;
    }

    pub fn gap(&mut self, row: GapRow) {
        if self.interval.gap_rows.len() < GAP_ROWS_PER_INTERVAL {
            self.interval.gap_rows.push(row);
        } else {
            self.interval.gap_rows_dropped += 1;
        }
    }

    pub fn error(&mut self, row: ErrorRow) {
        self.interval.errors[row.kind.index()] += 1;
        self.group(row.group).errors += 1;
        if self.interval.error_rows.len() < ERROR_ROWS_PER_INTERVAL {
            self.interval.error_rows.push(row);
        } else {
            self.interval.error_rows_dropped += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_merge_by_addition() {
        let mut a = WorkerMetrics::new(2, 1);
        a.record(1, Duration::from_millis(2));
        a.interval.sent = 3;
        a.close(1000);
        a.error(ErrorRow {
            at: Duration::ZERO,
            client: 1,
            group: 0,
            kind: ErrorKind::Reset,
            detail: String::new(),
        });
        let mut b = WorkerMetrics::new(2, 1);
        b.record(1, Duration::from_millis(4));
        b.interval.sent = 4;
        b.close(1000);
        let mut total = a.take_interval();
        total.merge(&mut b.take_interval());
        assert_eq!(total.sent, 7);
        assert_eq!(total.histograms[1].len(), 2);
        assert_eq!(total.closes[&1000], 2);
        assert_eq!(total.errors[ErrorKind::Reset.index()], 1);
        assert_eq!(total.error_rows.len(), 1);
        assert_eq!(a.interval.sent, 0, "taking an interval starts a fresh one");
    }

    #[test]
    fn sub_microsecond_and_huge_latencies_are_kept() {
        let mut m = WorkerMetrics::new(1, 0);
        m.record(0, Duration::from_nanos(10));
        m.record(0, Duration::from_secs(10_000));
        assert_eq!(m.interval.histograms[0].len(), 2);
    }
}
