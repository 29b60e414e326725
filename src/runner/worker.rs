//! A worker thread: a single-threaded tokio runtime running its share of the clients, recording into
//! one `WorkerMetrics` without locks, and reporting an interval to the coordinator every second.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::{JoinSet, LocalSet};

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
    },
    /// The worker's last interval (`second` follows its last tick); all its clients have ended.
    Done {
        worker: usize,
        second: u64,
        interval: Interval,
        started: u64,
        cpu: Duration,
    },
}

/// One worker's share: clients in start order.
pub struct WorkerPlan {
    pub index: usize,
    pub clients: Vec<(Instant, ClientId)>,
}

pub fn spawn(
    plan: WorkerPlan,
    ctx: Arc<ClientContext>,
    report: mpsc::Sender<WorkerMessage>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("volley-worker-{}", plan.index))
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cannot build a worker runtime");
            LocalSet::new().block_on(&runtime, work(plan, ctx, report));
        })
}

async fn work(plan: WorkerPlan, ctx: Arc<ClientContext>, report: mpsc::Sender<WorkerMessage>) {
    let metrics = Rc::new(RefCell::new(WorkerMetrics::new(
        ctx.plan.metric_names().len(),
        ctx.plan.expects.len(),
    )));
    let ticking = Rc::new(Cell::new(true));
    let ticker = tokio::task::spawn_local(tick(
        plan.index,
        ctx.t0,
        metrics.clone(),
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
    let mut started = 0;
    for (at, who) in plan.clients {
        tokio::select! {
            _ = tokio::time::sleep_until(at.into()) => {}
            _ = ctx.stop.cancelled() => break,
        }
        let ctx = ctx.clone();
        let metrics = metrics.clone();
        let timers = timers.clone();
        clients.spawn_local(async move { client::run(ctx, who, &metrics, &timers).await });
        started += 1;
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
            started,
            cpu: thread_cpu_time(),
        })
        .await;
}

/// Sends an interval at every whole second after `t0` until `ticking` turns false; returns the last
/// second sent. It stops only between sends, so no interval is ever lost.
async fn tick(
    worker: usize,
    t0: Instant,
    metrics: Rc<RefCell<WorkerMetrics>>,
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
            let mut m = metrics.borrow_mut();
            WorkerMessage::Tick {
                worker,
                second,
                interval: m.take_interval(),
                connected: m.connected,
                connecting: m.connecting,
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
