//! A worker thread: a single-threaded tokio runtime running its share of the clients, recording into
//! one `WorkerMetrics` without locks, and reporting an interval to the coordinator every second.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::client::schedule::Schedule;
use crate::client::timers::Timers;
use crate::client::{self, ClientContext, ClientId};
use crate::metrics::{Interval, WorkerMetrics};

/// What a worker tells the coordinator.
pub enum WorkerMessage {
    /// The interval that ended at `t0 + second` seconds.
    Tick {
        worker: usize,
        second: u64,
        interval: Interval,
        connected: u64,
        connecting: u64,
        /// Clients the worker has started so far, and its CPU time so far.
        started: u64,
        cpu: Duration,
    },
    /// The worker's last interval (`second` follows its last tick); all its clients have ended.
    Done {
        worker: usize,
        second: u64,
        interval: Interval,
        /// Clients the worker started, and its CPU time.
        started: u64,
        cpu: Duration,
    },
}

/// One worker's share: clients in start order, and its share of each group of arriving users,
/// generated as they come (a long run at a high rate has too many to list up front).
pub struct WorkerPlan {
    pub index: usize,
    pub clients: Vec<(Instant, ClientId)>,
    pub arrivals: Vec<ArrivalFeed>,
}

/// Every `stride`-th user of an arriving group from `next` on, at the group's rate.
pub struct ArrivalFeed {
    pub group: u16,
    /// The id of the group's first user.
    pub first_id: u64,
    /// Index in the group of the next user this worker starts.
    pub next: u64,
    pub stride: u64,
    /// Users in the group.
    pub end: u64,
    pub schedule: Schedule,
}

impl ArrivalFeed {
    fn peek(&self) -> Option<(Instant, ClientId)> {
        (self.next < self.end).then(|| {
            let who = ClientId {
                id: (self.first_id + self.next) as u32,
                group: self.group,
            };
            (self.schedule.at(self.next), who)
        })
    }
}

/// The clients of a worker plan in start order: the listed ones and the arrivals, merged.
struct Starts {
    clients: std::vec::IntoIter<(Instant, ClientId)>,
    listed: Option<(Instant, ClientId)>,
    arrivals: Vec<ArrivalFeed>,
}

impl Iterator for Starts {
    type Item = (Instant, ClientId);

    fn next(&mut self) -> Option<(Instant, ClientId)> {
        let arriving = self
            .arrivals
            .iter()
            .enumerate()
            .filter_map(|(i, feed)| feed.peek().map(|next| (i, next)))
            .min_by_key(|(_, (at, _))| *at);
        match (self.listed, arriving) {
            (Some(listed), Some((_, (at, _)))) if listed.0 <= at => {
                self.listed = self.clients.next();
                Some(listed)
            }
            (_, Some((i, next))) => {
                self.arrivals[i].next += self.arrivals[i].stride;
                Some(next)
            }
            (Some(listed), None) => {
                self.listed = self.clients.next();
                Some(listed)
            }
            (None, None) => None,
        }
    }
}

pub fn spawn(
    plan: WorkerPlan,
    ctx: Arc<ClientContext>,
    report: mpsc::Sender<WorkerMessage>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("volley-worker-{}", plan.index))
        .spawn(move || {
            // A local runtime, not a LocalSet on a current-thread one: a LocalSet's tasks are
            // woken through the set's own waker, which unparks the runtime with a write to its
            // eventfd on every wake-up from the I/O or timer driver, and the next epoll_wait
            // returns at once for it; a local runtime runs them as its own tasks.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build_local(tokio::runtime::LocalOptions::default())
                .expect("cannot build a worker runtime");
            runtime.block_on(work(plan, ctx, report));
        })
}

async fn work(plan: WorkerPlan, ctx: Arc<ClientContext>, report: mpsc::Sender<WorkerMessage>) {
    let metrics = Rc::new(RefCell::new(WorkerMetrics::new(
        ctx.plan.metric_names().len(),
        ctx.plan.expects.len(),
    )));
    let ticking = Rc::new(Cell::new(true));
    let started = Rc::new(Cell::new(0));
    let ticker = tokio::task::spawn_local(tick(
        plan.index,
        ctx.t0,
        Counted {
            metrics: metrics.clone(),
            started: started.clone(),
        },
        ticking.clone(),
        report.clone(),
    ));

    // The clients' one timer: every session wakes through it.
    let timers = Timers::new();
    let driver = tokio::task::spawn_local({
        let timers = timers.clone();
        async move { timers.drive().await }
    });
    let mut clients = JoinSet::new();
    let mut listed = plan.clients.into_iter();
    let starts = Starts {
        listed: listed.next(),
        clients: listed,
        arrivals: plan.arrivals,
    };
    for (at, who) in starts {
        tokio::select! {
            _ = tokio::time::sleep_until(at.into()) => {}
            _ = ctx.stop.cancelled() => break,
        }
        let ctx = ctx.clone();
        let metrics = metrics.clone();
        let timers = timers.clone();
        clients.spawn_local(async move { client::run(ctx, who, &metrics, &timers).await });
        started.set(started.get() + 1);
        while clients.try_join_next().is_some() {}
    }
    while clients.join_next().await.is_some() {}
    timers.close();
    let _ = driver.await;

    ticking.set(false);
    let last_second = ticker.await.unwrap_or(0);
    let interval = metrics.borrow_mut().take_interval();
    // The coordinator outlives the workers; if it is gone the run is over anyway.
    let _ = report
        .send(WorkerMessage::Done {
            worker: plan.index,
            second: last_second + 1,
            interval,
            started: started.get(),
            cpu: thread_cpu_time(),
        })
        .await;
}

/// What a worker's ticks report: its clients' metrics and how many clients it has started.
struct Counted {
    metrics: Rc<RefCell<WorkerMetrics>>,
    started: Rc<Cell<u64>>,
}

/// Sends an interval at every whole second after `t0` until `ticking` turns false; returns the last
/// second sent. It stops only between sends, so no interval is ever lost.
async fn tick(
    worker: usize,
    t0: Instant,
    counted: Counted,
    ticking: Rc<Cell<bool>>,
    report: mpsc::Sender<WorkerMessage>,
) -> u64 {
    let mut second = 0;
    loop {
        let next = t0 + Duration::from_secs(second + 1);
        // Checking the flag every 50 ms keeps the worker's exit prompt.
        while Instant::now() < next {
            if !ticking.get() {
                return second;
            }
            let nap = next.min(Instant::now() + Duration::from_millis(50));
            tokio::time::sleep_until(nap.into()).await;
        }
        second += 1;
        let message = {
            let mut m = counted.metrics.borrow_mut();
            WorkerMessage::Tick {
                worker,
                second,
                interval: m.take_interval(),
                connected: m.connected,
                connecting: m.connecting,
                started: counted.started.get(),
                // The ticker runs on the worker's thread.
                cpu: thread_cpu_time(),
            }
        };
        // Bounded channel: when the coordinator lags, this tick waits; clients keep recording
        // into the fresh interval meanwhile.
        if report.send(message).await.is_err() {
            return second;
        }
    }
}

/// CPU time used by the calling thread.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
