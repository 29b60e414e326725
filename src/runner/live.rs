//! A run watched live (`--metrics-listen`, `--prometheus-write`). Once a second, after the
//! coordinator has added the second to its totals, the totals become a [`Snapshot`]: the run's
//! counters, errors by kind, delivery problems per expect, the connected clients and the schedule
//! lag, and every latency metric as a histogram, all labelled with the run id, the scenario and
//! the shard. The endpoint serves the latest snapshot on each scrape; the pusher sends it every
//! few seconds and once more at the end. Both live on the coordinator's runtime, away from the
//! clients; with neither option nothing here runs.
//!
//! A remote-write server that is down, slow or refusing never holds the run up: a push has until
//! the next one is due, and one that fails is dropped and counted (the first failure is printed).

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};
use tokio::task::JoinHandle;

use super::{RunError, target};
use crate::metrics::{ErrorKind, GroupCounts, Interval};
use crate::results::PushTotals;
use crate::scenario::{Plan, Target};
use crate::telemetry::listen::{Endpoint, MetricsListener, Source};
use crate::telemetry::remote_write::{self, WriteUrl};
use crate::telemetry::{Buckets, Snapshot};
use crate::transport::http::{HttpRequest, HttpSession};
use crate::transport::ws::Connector;

/// How often the pusher sends; each push may take until the next is due.
pub const PUSH_EVERY: Duration = Duration::from_secs(5);

/// What the command line asked for.
#[derive(Debug, Clone, Default)]
pub struct LiveOptions {
    /// Bound before the run (a busy address is a usage error).
    pub listen: Option<MetricsListener>,
    pub write: Option<WriteUrl>,
    /// How long the endpoint waits after the run for a scrape of the final figures.
    pub linger: Duration,
}

impl LiveOptions {
    pub fn wanted(&self) -> bool {
        self.listen.is_some() || self.write.is_some()
    }
}

/// The gauges of one second, besides the totals.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    pub connected: u64,
    pub connecting: u64,
    pub schedule_lag_us: u64,
    pub elapsed: Duration,
}

/// The series of a run: its labels and names, and the latest snapshot.
struct Series {
    common: Vec<(&'static str, String)>,
    metric_names: Vec<String>,
    expect_names: Vec<String>,
    group_names: Vec<String>,
    latest: Mutex<Snapshot>,
}

pub struct Live {
    series: Arc<Series>,
    endpoint: Option<Endpoint>,
    pusher: Option<Pusher>,
    linger: Duration,
}

impl Live {
    /// Starts the endpoint and the pusher; `None` when neither was asked for.
    pub async fn start(
        options: &LiveOptions,
        plan: &Plan,
        run_id: &str,
        shard: Option<(u32, u32)>,
        insecure: bool,
    ) -> Result<Option<Live>, RunError> {
        if !options.wanted() {
            return Ok(None);
        }
        let (index, count) = shard.unwrap_or((0, 1));
        let common = vec![
            ("run_id", run_id.to_owned()),
            ("scenario", plan.name.clone()),
            ("shard", format!("{index}/{count}")),
        ];
        let series = Arc::new(Series {
            latest: Mutex::new(Snapshot::new(common.clone())),
            common,
            metric_names: plan.metric_names(),
            expect_names: plan.expects.iter().map(|e| e.name.clone()).collect(),
            group_names: plan.groups.iter().map(|g| g.name.clone()).collect(),
        });
        series.publish(
            &Interval::new(series.metric_names.len(), series.expect_names.len()),
            Gauges::default(),
        );
        let endpoint = match &options.listen {
            Some(listener) => {
                let series = series.clone();
                let source: Source = Arc::new(move || series.latest());
                Some(listener.serve(source).map_err(|e| {
                    RunError::Metrics(format!("cannot serve --metrics-listen: {e}"))
                })?)
            }
            None => None,
        };
        let pusher = match &options.write {
            Some(url) => Some(Pusher::start(url.clone(), series.clone(), insecure).await),
            None => None,
        };
        Ok(Some(Live {
            series,
            endpoint,
            pusher,
            linger: options.linger,
        }))
    }

    /// The totals so far, for the next scrape and push.
    pub fn publish(&self, totals: &Interval, gauges: Gauges) {
        self.series.publish(totals, gauges);
    }

    /// The final figures: published, pushed once more, and served until one scrape has read
    /// them (at most the linger, or until `stop`). What the pusher did, for the results.
    pub async fn finish(
        self,
        totals: &Interval,
        elapsed: Duration,
        stop: impl Future<Output = ()>,
    ) -> Option<PushTotals> {
        let final_gauges = Gauges {
            elapsed,
            ..Gauges::default()
        };
        self.series.publish(totals, final_gauges);
        // Scrapes from here on read the final figures.
        let seen = self.endpoint.as_ref().map(Endpoint::scrapes);
        let pushed = match self.pusher {
            Some(pusher) => Some(pusher.finish().await),
            None => None,
        };
        if let (Some(endpoint), Some(seen)) = (&self.endpoint, seen) {
            if !self.linger.is_zero() {
                eprintln!(
                    "waiting up to {} for a scrape of the final figures at http://{}/metrics \
                     (Ctrl-C to skip)",
                    crate::units::format_duration(self.linger),
                    endpoint.addr
                );
                tokio::select! {
                    scraped = endpoint.scraped_after(seen, self.linger) => if scraped {
                        // The answer is ready: a moment for it to go out before the process ends.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    },
                    _ = stop => {}
                }
            }
        }
        pushed
    }
}

impl Series {
    fn latest(&self) -> Snapshot {
        self.latest.lock().expect("no panic holds the lock").clone()
    }

    fn publish(&self, totals: &Interval, gauges: Gauges) {
        let names = Names {
            metrics: &self.metric_names,
            expects: &self.expect_names,
            groups: &self.group_names,
        };
        let snapshot = snapshot(self.common.clone(), names, totals, gauges);
        *self.latest.lock().expect("no panic holds the lock") = snapshot;
    }
}

/// The names a run's series are labelled with, in the plan's order.
#[derive(Debug, Clone, Copy)]
pub struct Names<'a> {
    pub metrics: &'a [String],
    pub expects: &'a [String],
    pub groups: &'a [String],
}

/// A run's series from its totals and gauges.
pub fn snapshot(
    common: Vec<(&'static str, String)>,
    names: Names<'_>,
    t: &Interval,
    gauges: Gauges,
) -> Snapshot {
    let Names {
        metrics: metric_names,
        expects: expect_names,
        groups: group_names,
    } = names;
    let mut s = Snapshot::new(common);
    let run_counters: [(&str, &'static str, u64); 9] = [
        ("volley_sent_total", "Messages sent by the clients.", t.sent),
        (
            "volley_received_total",
            "Messages received by the clients.",
            t.received,
        ),
        (
            "volley_connects_total",
            "Connections opened (first ones and reconnects).",
            t.connects,
        ),
        (
            "volley_connect_failures_total",
            "Connection attempts that failed.",
            t.connect_failures,
        ),
        (
            "volley_reconnects_total",
            "Connections lost and opened again.",
            t.reconnects,
        ),
        (
            "volley_reconnects_recovered_total",
            "Socket.IO reconnects whose session the server recovered.",
            t.recovered,
        ),
        (
            "volley_acks_sent_total",
            "Emits that asked for an acknowledgement.",
            t.acks_sent,
        ),
        (
            "volley_acks_lost_total",
            "Acknowledgements that never came.",
            t.acks_lost,
        ),
        (
            "volley_ack_retries_total",
            "Emits sent again for want of an acknowledgement.",
            t.ack_retries,
        ),
    ];
    for (name, help, n) in run_counters {
        s.counter(name, help, &[], n);
    }
    for kind in ErrorKind::ALL {
        s.counter(
            "volley_errors_total",
            "Errors by kind (errors.csv lists them).",
            &[("kind", kind.as_str())],
            t.errors[kind.index()],
        );
    }
    for (code, n) in &t.closes {
        s.counter(
            "volley_closes_total",
            "Connection ends by close code (1006: no close frame).",
            &[("code", &code.to_string())],
            *n,
        );
    }
    type Count = fn(&crate::metrics::ExpectCounts) -> u64;
    let per_expect: [(&str, &'static str, Count); 8] = [
        (
            "volley_expect_sent_total",
            "Tracked events sent, per expect.",
            |e| e.sent,
        ),
        (
            "volley_expect_received_total",
            "Tracked deliveries, per expect.",
            |e| e.received,
        ),
        (
            "volley_expect_lost_total",
            "Deliveries that never came, per expect.",
            |e| e.lost,
        ),
        (
            "volley_expect_late_total",
            "Deliveries later than the expect's `within`.",
            |e| e.late,
        ),
        (
            "volley_expect_duplicate_total",
            "Events delivered again, per expect.",
            |e| e.duplicate,
        ),
        (
            "volley_expect_reorder_total",
            "Events delivered after a later one, per expect.",
            |e| e.reorder,
        ),
        (
            "volley_expect_gap_total",
            "Events noticed missing when a later one came.",
            |e| e.gap,
        ),
        (
            "volley_expect_refilled_total",
            "Missed events replayed after a reconnect.",
            |e| e.refilled,
        ),
    ];
    for (name, help, count) in per_expect {
        for (expect, counts) in expect_names.iter().zip(&t.expects) {
            s.counter(name, help, &[("expect", expect)], count(counts));
        }
    }
    type GroupCount = fn(&GroupCounts) -> u64;
    let per_group: [(&str, &'static str, GroupCount); 4] = [
        (
            "volley_group_sent_total",
            "Messages sent, per group.",
            |g| g.sent,
        ),
        (
            "volley_group_received_total",
            "Messages received, per group.",
            |g| g.received,
        ),
        ("volley_group_errors_total", "Errors, per group.", |g| {
            g.errors
        }),
        (
            "volley_group_connects_total",
            "Connections opened, per group.",
            |g| g.connects,
        ),
    ];
    let group = |i: usize| t.groups.get(i).copied().unwrap_or_default();
    for (name, help, count) in per_group {
        for (i, g) in group_names.iter().enumerate() {
            s.counter(name, help, &[("group", g)], count(&group(i)));
        }
    }
    for (i, g) in group_names.iter().enumerate() {
        let counts = group(i);
        s.gauge(
            "volley_group_clients_connected",
            "Clients with an open connection, per group.",
            &[("group", g)],
            counts.connects.saturating_sub(counts.closes) as f64,
        );
    }
    s.gauge(
        "volley_clients_connected",
        "Clients with an open connection.",
        &[],
        gauges.connected as f64,
    );
    s.gauge(
        "volley_clients_connecting",
        "Clients between connecting and connected.",
        &[],
        gauges.connecting as f64,
    );
    s.gauge(
        "volley_schedule_lag_seconds",
        "How late the latest second's events went out against their schedule, at most.",
        &[],
        gauges.schedule_lag_us as f64 / 1e6,
    );
    s.gauge(
        "volley_elapsed_seconds",
        "Time since the run's time zero.",
        &[],
        gauges.elapsed.as_secs_f64(),
    );
    for (metric, h) in metric_names.iter().zip(&t.histograms) {
        s.histogram(
            "volley_latency_seconds",
            "Latency per metric (connect and its phases, each expect, acks, steps).",
            &[("metric", metric)],
            Buckets::from_us(h),
        );
    }
    s
}

/// The remote-write side: a task that pushes the latest snapshot every [`PUSH_EVERY`].
struct Pusher {
    target: Arc<PushTarget>,
    series: Arc<Series>,
    counts: Arc<PushCounts>,
    task: JoinHandle<HttpSession>,
    stop: Arc<tokio::sync::Notify>,
}

struct PushTarget {
    url: WriteUrl,
    /// `None` when the host did not resolve: every push is dropped.
    connector: Result<Connector, String>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

#[derive(Default)]
struct PushCounts {
    pushed: AtomicU64,
    dropped: AtomicU64,
    warned: AtomicBool,
}

impl Pusher {
    async fn start(url: WriteUrl, series: Arc<Series>, insecure: bool) -> Pusher {
        let remote = Target::Remote {
            tls: url.tls,
            host: url.host.clone(),
            port: url.port,
        };
        let connector = target::remote(&remote, insecure)
            .await
            .map_err(|e| e.to_string());
        let headers = remote_write::HEADERS
            .iter()
            .filter(|(name, _)| *name != "content-type")
            .map(|(name, value)| {
                (
                    HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                )
            })
            .collect();
        let target = Arc::new(PushTarget {
            url,
            connector,
            headers,
        });
        let counts = Arc::new(PushCounts::default());
        let stop = Arc::new(tokio::sync::Notify::new());
        let task = tokio::spawn(push_every(
            target.clone(),
            series.clone(),
            counts.clone(),
            stop.clone(),
        ));
        Pusher {
            target,
            series,
            counts,
            task,
            stop,
        }
    }

    /// Stops the periodic pushes and sends the final figures.
    async fn finish(self) -> PushTotals {
        self.stop.notify_one();
        let mut session = self.task.await.unwrap_or_default();
        push(&self.target, &self.series, &self.counts, &mut session).await;
        PushTotals {
            pushed: self.counts.pushed.load(Ordering::SeqCst),
            dropped: self.counts.dropped.load(Ordering::SeqCst),
        }
    }
}

async fn push_every(
    target: Arc<PushTarget>,
    series: Arc<Series>,
    counts: Arc<PushCounts>,
    stop: Arc<tokio::sync::Notify>,
) -> HttpSession {
    let mut session = HttpSession::new();
    let mut ticks = tokio::time::interval(PUSH_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => push(&target, &series, &counts, &mut session).await,
            _ = stop.notified() => return session,
        }
    }
}

/// One push of the latest snapshot, bounded by [`PUSH_EVERY`]; a failure is counted, and the
/// first one printed.
async fn push(
    target: &PushTarget,
    series: &Series,
    counts: &PushCounts,
    session: &mut HttpSession,
) {
    let outcome = match &target.connector {
        Ok(connector) => {
            let body = remote_write::encode(&series.latest(), now_ms());
            let request = HttpRequest {
                method: Method::POST,
                path_and_query: &target.url.path_and_query,
                headers: &target.headers,
                body: Bytes::from(body),
                content_type: Some("application/x-protobuf"),
            };
            match session.send(connector, request, PUSH_EVERY).await {
                Ok(r) if r.status.is_success() => Ok(()),
                Ok(r) => Err(format!(
                    "status {}: {}",
                    r.status.as_u16(),
                    String::from_utf8_lossy(&r.body[..r.body.len().min(200)]).trim()
                )),
                Err(e) => Err(e.to_string()),
            }
        }
        Err(e) => Err(e.clone()),
    };
    match outcome {
        Ok(()) => {
            counts.pushed.fetch_add(1, Ordering::SeqCst);
        }
        Err(why) => {
            counts.dropped.fetch_add(1, Ordering::SeqCst);
            if !counts.warned.swap(true, Ordering::SeqCst) {
                eprintln!(
                    "warning: --prometheus-write {}: push dropped ({why}); the run goes on, \
                     dropped pushes are counted in the summary",
                    target.url
                );
            }
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
