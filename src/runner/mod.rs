//! Running a scenario: check the target, start the workers, pace the clients, stop on a signal,
//! collect the metrics once a second and write every result file.
//!
//! Phases: preflight (file limit, target reachable) -> ramp (clients start on a seeded schedule)
//! -> emitting (until `t0 + ramp + duration`) -> drain -> close -> results. A stop signal ends the
//! emitting phase at once and goes on with drain, close and results, so nothing seen is lost.

pub mod builtin;
mod collect;
mod coordinator;
mod fanout;
pub mod fdlimit;
pub mod host;
pub mod live;
pub mod processes;
pub mod progress;
pub mod shard;
mod streams;
pub(crate) mod target;
pub mod worker;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::client::schedule::Schedule;
use crate::client::{ClientContext, ClientId};
use crate::gate::figures::Figures;
use crate::gate::verdict;
use crate::metrics::Interval;
use crate::results::{self, ExportError, FinishedRun, FrameLogTotals, RunStatus};
use crate::scenario::Plan;
use crate::secrets::SecretRules;
use crate::transport::tls::TlsError;
use crate::units::Ramp;
use crate::wire::decode::DecodeOptions;
use crate::wire::frame_log::{FrameLogOptions, FrameLogWriter, RunFrameLog};
use crate::wire::record::Clock;
use builtin::Ends;
use collect::Collector;
use coordinator::Coordinator;
use live::Live;
use shard::Shard;
use streams::StreamedFiles;
use worker::{ArrivalFeed, WorkerMessage, WorkerPlan};

/// How to run, beside the scenario itself.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The scenario file, for run.json.
    pub scenario_file: PathBuf,
    /// Results folder; default `results/<name>-<UTC time>`.
    pub out: Option<PathBuf>,
    pub quiet: bool,
    /// Client worker threads; default one per core.
    pub threads: Option<usize>,
    /// Accept any TLS certificate.
    pub insecure: bool,
    /// `--log-frames`: log the frames of sampled clients.
    pub frame_log: Option<FrameLogOptions>,
    /// `--shard K/N`: run only this shard's clients.
    pub shard: Option<Shard>,
    /// `--run-id`: the run id the stamps carry (default: random).
    pub run_id: Option<u32>,
    /// `--start-at`: the wall-clock instant that is the run's time zero (default: now).
    pub start_at: Option<SystemTime>,
    /// `--source-ips`: bind each connection to these in turn; chosen for a loopback target when
    /// one address has too few ports.
    pub source_ips: Option<Vec<std::net::IpAddr>>,
    /// `--metrics-listen`, `--prometheus-write`: the run watched live.
    pub live: live::LiveOptions,
    /// `--show-secrets`, `--secret`: what the frame log, errors.csv, run.json and the
    /// messages that name the target hide.
    pub secrets: SecretRules,
}

/// Why a run could not be done (exit code 1).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "cannot reach {url}: {detail}\n  Is the server running and is the target right? Set it with `target` in the scenario or --target."
    )]
    Unreachable { url: String, detail: String },
    #[error("cannot resolve {host}: {detail}")]
    Resolve { host: String, detail: String },
    #[error("{0}")]
    TooManyFiles(fdlimit::Shortage),
    #[error(transparent)]
    Sources(#[from] crate::transport::source::SourceError),
    #[error("cannot start the builtin server: {0}")]
    Builtin(std::io::Error),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot create the results folder {}: {source}", path.display())]
    ResultsDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write results: {0}")]
    Output(#[from] ExportError),
    #[error("cannot start the frame log: {0}")]
    FrameLog(std::io::Error),
    #[error("{0}")]
    Metrics(String),
    #[error("cannot start a worker thread: {0}")]
    Thread(std::io::Error),
    #[error(
        "--start-at {at} is {late:.1?} in the past: give a time in the future (shards wait for it), e.g. a few seconds from now"
    )]
    StartInPast { at: String, late: Duration },
}

/// A finished (or interrupted) run.
pub struct RunOutcome {
    pub run: FinishedRun,
    pub dir: PathBuf,
}

/// How long the close handshake may take at the end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Workers start this long after the plan is made, so every thread is ready at time zero.
const START_DELAY: Duration = Duration::from_millis(50);
/// Worker messages in flight; a full channel makes a worker's tick wait (never its clients).
const REPORT_CHANNEL: usize = 256;

/// Runs `plan`. `shutdown` resolving stops the run gracefully (drain, close, write results).
pub async fn run(
    plan: Plan,
    options: RunOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<RunOutcome, RunError> {
    // A shard runs its share of every group; the ramp and the end of emitting stay the whole run's.
    let clients = options
        .shard
        .map_or(plan.total_clients(), |shard| shard.clients_of(&plan));
    // Arriving users come and go: what is open at once is their peak, not their total.
    let peak = options
        .shard
        .map_or(plan.peak_clients(), |shard| shard.peak_of(&plan));
    builtin::check_files(&plan, peak, Ends::Clients)?;
    let target = target::reach(&plan, &options, peak * plan.connections_per_client()).await?;
    let mut shutdown = std::pin::pin!(shutdown);
    let start = wait_for_start(options.start_at, &mut shutdown).await?;
    let started_at = SystemTime::now();
    let dir = options.out.clone().unwrap_or_else(|| {
        results::layout::default_dir(Path::new("results"), &plan.name, started_at)
    });
    std::fs::create_dir_all(&dir).map_err(|source| RunError::ResultsDir {
        path: dir.clone(),
        source,
    })?;
    let (t0, t0_wall) = start.zero.unwrap_or_else(|| {
        (
            Instant::now() + START_DELAY,
            SystemTime::now() + START_DELAY,
        )
    });
    let mut files = StreamedFiles::create(&dir, &plan, t0_wall)?;
    let seed = plan.seed.unwrap_or_else(|| fastrand::u64(..));
    let run_tag = options.run_id.unwrap_or_else(|| fastrand::u32(..));
    let workers = options
        .threads
        .unwrap_or_else(host::cores)
        .clamp(1, clients.max(1) as usize);
    let (sampled, frame_log) = match &options.frame_log {
        Some(frames) => {
            let clock = Clock::starting_at(t0, t0_wall);
            let (log, writer) = FrameLog::start(frames, &dir, clock, &options.secrets)?;
            (Some(log), Some(writer))
        }
        None => (None, None),
    };
    let stop = CancellationToken::new();
    let ramp_length = plan.ramp.length(plan.fixed_clients());
    let ctx = Arc::new(ClientContext {
        emit_end: t0 + ramp_length + plan.duration,
        plan: plan.clone(),
        connector: target.connector,
        t0,
        run_tag,
        stop: stop.clone(),
        close_timeout: CLOSE_TIMEOUT,
        stall_timeout: plan.connect_timeout,
        frame_log: sampled,
        http: target.http,
        seed,
        secrets: options.secrets.clone(),
    });
    let fixed = options
        .shard
        .map_or(plan.fixed_clients(), |shard| shard.fixed_of(&plan));
    let starts = start_schedule(&plan, options.shard, t0, fixed);
    let plans = assign(&plan, options.shard, seed, &starts, t0, workers);
    let (threads, messages) = start_workers(plans, &ctx, &stop)?;
    let facts = RunFacts {
        run_tag,
        seed,
        workers,
        clients,
        started_at,
        target_url: target.url.clone(),
        t0,
    };
    files.checkpoint_from(run_record(&plan, &options, &facts));

    let metric_names = plan.metric_names();
    let mut progress =
        progress::Progress::new(options.quiet, clients, &metric_names, plan.main_metric());
    let collector = Collector::new(workers, (metric_names.len(), plan.expects.len()), t0_wall);
    let run_id = format!("{run_tag:08x}");
    let live = Live::start(
        &options.live,
        &plan,
        &run_id,
        options.shard.map(|s| (s.index, s.count)),
        options.insecure,
    )
    .await?;
    let mut coordinator = Coordinator::new(&plan, &metric_names, collector, stop, live.as_ref());
    if start.interrupted {
        coordinator.interrupted_early();
    }
    coordinator
        .run(messages, shutdown.as_mut(), &mut progress, &mut files)
        .await;
    for thread in threads {
        let _ = thread.join();
    }
    if let Some(server) = target.server {
        server.stop();
    }
    // The clients are gone; with the context goes the last sender, and the writer finishes.
    drop(ctx);
    let frame_log = match frame_log {
        Some(log) => log.finish(&mut files).await,
        None => None,
    };
    drop(progress);
    let interrupted = coordinator.status == RunStatus::Interrupted;
    let mut run = finished_run(&plan, &options, facts, coordinator, &mut files, frame_log);
    if let Some(live) = live {
        // After an interrupt the stop signal has fired: the wait for a scrape is not cut short.
        let stop = async {
            match interrupted {
                true => std::future::pending().await,
                false => shutdown.as_mut().await,
            }
        };
        run.prometheus = live.finish(&run.totals, run.elapsed, stop).await;
    }
    results::write_final(&dir, &run)?;
    if let Some(e) = files.failed {
        return Err(e.into());
    }
    Ok(RunOutcome { run, dir })
}

/// The scenario as the run used it, for run.json (and report.html), with its secrets hidden:
/// a results folder is made to be shared.
fn resolved_scenario(plan: &Plan, secrets: &SecretRules) -> serde_json::Value {
    let mut scenario = serde_json::to_value(&plan.scenario).unwrap_or_default();
    secrets.redact_document(&mut scenario);
    scenario
}

/// What a run decided before its clients started, for its record.
struct RunFacts {
    run_tag: u32,
    seed: u64,
    workers: usize,
    clients: u64,
    started_at: SystemTime,
    target_url: String,
    t0: Instant,
}

/// What a run's record says before its figures: the facts decided before the clients started,
/// with empty totals and the status of a run still going.
fn run_record(plan: &Plan, options: &RunOptions, facts: &RunFacts) -> FinishedRun {
    let metric_names = plan.metric_names();
    FinishedRun {
        run_id: format!("{:08x}", facts.run_tag),
        status: RunStatus::Running,
        host: host::this_machine(),
        scenario_name: plan.name.clone(),
        scenario_file: options.scenario_file.display().to_string(),
        scenario: resolved_scenario(plan, &options.secrets),
        target_url: facts.target_url.clone(),
        started_at: facts.started_at,
        ended_at: facts.started_at,
        elapsed: Duration::ZERO,
        seed: facts.seed,
        workers: facts.workers,
        clients_planned: facts.clients,
        clients_started: 0,
        totals: Interval::new(metric_names.len(), plan.expects.len()),
        metric_names,
        error_rows_dropped: 0,
        gap_rows_dropped: 0,
        client_cpu: Duration::ZERO,
        frame_log: None,
        thresholds: Vec::new(),
        shard: options.shard.map(|s| (s.index, s.count)),
        merged_from: Vec::new(),
        prometheus: None,
        failed_shards: Vec::new(),
    }
}

/// The end of a run: what the receivers of fan-out streams never got, the verdicts on the
/// totals, and everything run.json and the summary need.
fn finished_run(
    plan: &Plan,
    options: &RunOptions,
    facts: RunFacts,
    coordinator: Coordinator,
    files: &mut StreamedFiles,
    frame_log: Option<FrameLogTotals>,
) -> FinishedRun {
    let Coordinator {
        mut totals,
        status,
        aborted_at,
        collector,
        ..
    } = coordinator;
    settle_fanout(plan, &mut totals, files, facts.t0.elapsed());
    let elapsed = facts.t0.elapsed();
    let thresholds = verdict::judge(
        &plan.thresholds,
        &Figures::from_totals(&plan.metric_names(), &totals, elapsed),
        &aborted_at,
    );
    let (errors_dropped, gaps_dropped) = files.dropped();
    FinishedRun {
        status,
        ended_at: SystemTime::now(),
        elapsed,
        clients_started: collector.started,
        error_rows_dropped: totals.error_rows_dropped + errors_dropped,
        gap_rows_dropped: totals.gap_rows_dropped + gaps_dropped,
        totals,
        client_cpu: collector.cpu,
        frame_log,
        thresholds,
        ..run_record(plan, options, &facts)
    }
}

/// When the run starts: at `--start-at`, shared by the shards of a run (a stop signal ends the
/// wait; a time long past is refused), or at once.
struct Start {
    /// The shared time zero, on both clocks.
    zero: Option<(Instant, SystemTime)>,
    /// Stopped while waiting for it.
    interrupted: bool,
}

async fn wait_for_start(
    start_at: Option<SystemTime>,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Result<Start, RunError> {
    let Some(at) = start_at else {
        return Ok(Start {
            zero: None,
            interrupted: false,
        });
    };
    let zero = shard::time_zero(at, SystemTime::now(), Instant::now()).map_err(|late| {
        RunError::StartInPast {
            at: humantime::format_rfc3339_millis(at).to_string(),
            late,
        }
    })?;
    let wake = zero.checked_sub(START_DELAY).unwrap_or(zero);
    let mut interrupted = false;
    tokio::select! {
        _ = tokio::time::sleep_until(wake.into()) => {}
        _ = shutdown.as_mut() => interrupted = true,
    }
    Ok(Start {
        zero: Some((zero, at)),
        interrupted,
    })
}

/// When each client starts. A shard spreads its share over the whole run's ramp, so that together
/// the shards follow it.
fn start_schedule(plan: &Plan, shard: Option<Shard>, t0: Instant, clients: u64) -> Schedule {
    match (plan.ramp, shard) {
        (Ramp::Over(over), _) => Schedule::spread(t0, over, clients),
        (Ramp::At(rate), None) => Schedule::at_rate(t0, rate),
        (Ramp::At(_), Some(_)) => {
            Schedule::spread(t0, plan.ramp.length(plan.fixed_clients()), clients)
        }
    }
}

/// Starts one thread per worker plan; the receiver gets their messages until the last one ends.
fn start_workers(
    plans: Vec<WorkerPlan>,
    ctx: &Arc<ClientContext>,
    stop: &CancellationToken,
) -> Result<
    (
        Vec<std::thread::JoinHandle<()>>,
        mpsc::Receiver<WorkerMessage>,
    ),
    RunError,
> {
    let (report_tx, report_rx) = mpsc::channel::<WorkerMessage>(REPORT_CHANNEL);
    let mut threads = Vec::new();
    for worker_plan in plans {
        match worker::spawn(worker_plan, ctx.clone(), report_tx.clone()) {
            Ok(t) => threads.push(t),
            Err(e) => {
                stop.cancel();
                return Err(RunError::Thread(e));
            }
        }
    }
    Ok((threads, report_rx))
}

/// What the receivers of group-to-group expects never got: only the whole run can tell. Counted
/// as lost, listed in gaps.csv.
fn settle_fanout(plan: &Plan, totals: &mut Interval, files: &mut StreamedFiles, at: Duration) {
    let settle: Vec<Duration> = plan
        .expects
        .iter()
        .map(|e| e.within.unwrap_or(Duration::from_secs(1)))
        .collect();
    let (tail_lost, tail_rows) = fanout::tails(&totals.fanout, &settle, at);
    for (counts, lost) in totals.expects.iter_mut().zip(tail_lost) {
        counts.lost += lost;
    }
    files.write_gaps(&tail_rows);
    totals.fanout = Default::default();
}

/// `--log-frames`: the task writing the sampled clients' log.
struct FrameLog {
    writer: FrameLogWriter,
    file: PathBuf,
    /// The `--log-clients` spec.
    clients: String,
}

impl FrameLog {
    /// The log the sampled clients' transports offer records to, and its writer.
    fn start(
        options: &FrameLogOptions,
        dir: &Path,
        clock: Clock,
        secrets: &SecretRules,
    ) -> Result<(RunFrameLog, FrameLog), RunError> {
        let file = options
            .file
            .clone()
            .unwrap_or_else(|| dir.join(results::layout::FRAMES_JSONL));
        let decode = DecodeOptions {
            secrets: secrets.clone(),
            ..DecodeOptions::default()
        };
        let (log, writer) =
            RunFrameLog::start(options, file.clone(), clock, decode).map_err(RunError::FrameLog)?;
        let writer = FrameLog {
            writer,
            file,
            clients: options.clients.to_string(),
        };
        Ok((log, writer))
    }

    /// Waits for the writer to drain; what the log holds, or none (and the failure kept) when it
    /// could not be written.
    async fn finish(self, files: &mut StreamedFiles) -> Option<FrameLogTotals> {
        match self.writer.finish().await {
            Ok(counts) => Some(FrameLogTotals {
                file: self.file.display().to_string(),
                clients: self.clients,
                logged: counts.written,
                dropped: counts.dropped,
            }),
            Err(source) => {
                files.failed.get_or_insert(ExportError::Write {
                    path: self.file,
                    source,
                });
                None
            }
        }
    }
}

/// Gives every client of the run (or of its shard) its global id (groups in order), a start time
/// (a seeded shuffle, so groups mix during the ramp) and a worker (round robin over the start
/// order, so workers ramp evenly).
fn assign(
    plan: &Plan,
    shard: Option<Shard>,
    seed: u64,
    starts: &Schedule,
    t0: Instant,
    workers: usize,
) -> Vec<WorkerPlan> {
    let mut ids: Vec<ClientId> = Vec::new();
    for (group, g) in plan.groups.iter().enumerate() {
        if g.arrivals.is_some() {
            continue;
        }
        let first = plan.client_ids(group as u16).start;
        for index in 0..g.clients {
            if shard.is_none_or(|s| s.takes(index)) {
                ids.push(ClientId {
                    id: (first + index) as u32,
                    group: group as u16,
                });
            }
        }
    }
    fastrand::Rng::with_seed(seed).shuffle(&mut ids);
    let mut plans: Vec<WorkerPlan> = (0..workers)
        .map(|index| WorkerPlan {
            index,
            clients: Vec::new(),
            arrivals: Vec::new(),
        })
        .collect();
    for (slot, who) in ids.into_iter().enumerate() {
        plans[slot % workers]
            .clients
            .push((starts.at(slot as u64), who));
    }
    // Arriving users come at their group's rate from time zero, in the order of their ids: the
    // shard's share (every count-th from its index), dealt to the workers in turn.
    let (shards, shard_index) = shard.map_or((1, 0), |s| (u64::from(s.count), u64::from(s.index)));
    for (group, g) in plan.groups.iter().enumerate() {
        let Some(arriving) = &g.arrivals else {
            continue;
        };
        for (w, worker) in plans.iter_mut().enumerate() {
            worker.arrivals.push(ArrivalFeed {
                group: group as u16,
                first_id: plan.client_ids(group as u16).start,
                next: shard_index + shards * w as u64,
                stride: shards * workers as u64,
                end: g.clients,
                schedule: Schedule::at_rate(t0, arriving.rate),
            });
        }
    }
    plans
}
