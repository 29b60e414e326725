//! Running a scenario: check the target, start the workers, pace the clients, stop on a signal,
//! collect the metrics once a second and write every result file.
//!
//! Phases: preflight (file limit, target reachable) -> ramp (clients start on a seeded schedule)
//! -> emitting (until `t0 + ramp + duration`) -> drain -> close -> results. A stop signal ends the
//! emitting phase at once and goes on with drain, close and results, so nothing seen is lost.

mod collect;
mod fanout;
pub mod fdlimit;
pub mod host;
pub mod processes;
pub mod progress;
pub mod shard;
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
use crate::results::errors_csv::ErrorsWriter;
use crate::results::gaps_csv::GapsWriter;
use crate::results::latency_hlog::HlogWriter;
use crate::results::timeseries_csv::TimeseriesWriter;
use crate::results::{self, ExportError, FinishedRun, FrameLogTotals, RunStatus, layout};
use crate::scenario::{Plan, Target};
use crate::serve::{self, ServeConfig, ServerHandle};
use crate::transport::tls::{self, TlsError};
use crate::transport::ws::Connector;
use crate::units::Ramp;
use crate::wire::frame_log::{FrameLogOptions, RunFrameLog};
use crate::wire::record::Clock;
use collect::Collector;
use shard::Shard;
use worker::{WorkerMessage, WorkerPlan};

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
    let all_clients = plan.total_clients();
    let clients = options
        .shard
        .map_or(all_clients, |shard| shard.clients_of(&plan));
    let builtin = plan.target == Target::Builtin;
    let limit = fdlimit::raise().unwrap_or(1024);
    let per_client = plan.connections_per_client();
    // Against the builtin server, the message suggests the same endpoints on a `volley serve`.
    let served_apart = builtin.then(|| match plan.socketio() {
        Some(_) => "http://127.0.0.1:9000".to_string(),
        None => format!("ws://127.0.0.1:9000{}", plan.groups[0].path),
    });
    fdlimit::Shortage::check(clients, per_client, served_apart, limit)
        .map_err(RunError::TooManyFiles)?;

    // The target: the builtin server in-process, or a remote one resolved once.
    let (server, connector) = connect_target(&plan, options.insecure).await?;
    let sources = crate::transport::source::choose(
        connector.addr(),
        clients * per_client,
        options.source_ips.as_deref(),
        crate::transport::source::ports_per_source(),
    )?;
    if let Some(note) = &sources.note {
        eprintln!("{note}");
    }
    let connector = connector.with_sources(sources.sources);
    let target_url = match plan.socketio() {
        None => connector.url(&plan.groups[0].path),
        Some(sio) => {
            let scheme = if connector.is_tls() { "https" } else { "http" };
            format!(
                "{scheme}://{}{} (Socket.IO over {})",
                connector.authority(),
                sio.engine.path,
                sio.engine.transport.as_str()
            )
        }
    };
    match tokio::time::timeout(plan.connect_timeout, connector.connect_transport()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            return Err(RunError::Unreachable {
                url: target_url,
                detail: e.to_string(),
            });
        }
        Err(_) => {
            return Err(RunError::Unreachable {
                url: target_url,
                detail: format!("no answer within {:?}", plan.connect_timeout),
            });
        }
    }

    // A shared time zero: wait for it (a stop signal ends the wait), refuse one long past.
    let mut shutdown = std::pin::pin!(shutdown);
    let mut interrupted_early = false;
    let start_at = match options.start_at {
        Some(at) => {
            let zero = shard::time_zero(at, SystemTime::now(), Instant::now()).map_err(|late| {
                RunError::StartInPast {
                    at: humantime::format_rfc3339_millis(at).to_string(),
                    late,
                }
            })?;
            let wake = zero.checked_sub(START_DELAY).unwrap_or(zero);
            tokio::select! {
                _ = tokio::time::sleep_until(wake.into()) => {}
                _ = &mut shutdown => interrupted_early = true,
            }
            Some((zero, at))
        }
        None => None,
    };

    let started_at = SystemTime::now();
    let dir = options.out.clone().unwrap_or_else(|| {
        results::layout::default_dir(Path::new("results"), &plan.name, started_at)
    });
    std::fs::create_dir_all(&dir).map_err(|source| RunError::ResultsDir {
        path: dir.clone(),
        source,
    })?;
    let metric_names = plan.metric_names();
    let mut timeseries =
        TimeseriesWriter::create(&dir.join(layout::TIMESERIES_CSV), &metric_names)?;
    let mut errors = ErrorsWriter::create(
        &dir.join(layout::ERRORS_CSV),
        plan.groups.iter().map(|g| g.name.clone()).collect(),
    )?;
    let mut gaps = GapsWriter::create(
        &dir.join(layout::GAPS_CSV),
        plan.expects.iter().map(|e| e.name.clone()).collect(),
    )?;

    // Time zero, the schedule of client starts and the end of emitting.
    let seed = plan.seed.unwrap_or_else(|| fastrand::u64(..));
    let run_tag = options.run_id.unwrap_or_else(|| fastrand::u32(..));
    let (t0, t0_wall) = start_at.unwrap_or_else(|| {
        (
            Instant::now() + START_DELAY,
            SystemTime::now() + START_DELAY,
        )
    });
    let mut hlog = HlogWriter::create(
        &dir.join(results::layout::LATENCY_HLOG),
        &metric_names,
        t0_wall,
    )?;
    let ramp_length = plan.ramp.length(all_clients);
    // A shard spreads its share over the whole run's ramp, so that together they follow it.
    let starts = match (plan.ramp, options.shard) {
        (Ramp::Over(over), _) => Schedule::spread(t0, over, clients),
        (Ramp::At(rate), None) => Schedule::at_rate(t0, rate),
        (Ramp::At(_), Some(_)) => Schedule::spread(t0, ramp_length, clients),
    };
    let workers = options
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, clients.max(1) as usize);
    let plans = assign(&plan, options.shard, seed, &starts, workers);
    let (frame_log, frame_log_writer) = match &options.frame_log {
        Some(frames) => {
            let file = frames
                .file
                .clone()
                .unwrap_or_else(|| dir.join(layout::FRAMES_JSONL));
            let clock = Clock::starting_at(t0, t0_wall);
            let (log, writer) =
                RunFrameLog::start(frames, file.clone(), clock).map_err(RunError::FrameLog)?;
            (Some(log), Some((writer, file, frames.clients.to_string())))
        }
        None => (None, None),
    };
    let stop = CancellationToken::new();
    let ctx = Arc::new(ClientContext {
        emit_end: t0 + ramp_length + plan.duration,
        plan: plan.clone(),
        connector,
        t0,
        run_tag,
        stop: stop.clone(),
        close_timeout: CLOSE_TIMEOUT,
        stall_timeout: plan.connect_timeout,
        frame_log,
    });

    let (report_tx, mut report_rx) = mpsc::channel::<WorkerMessage>(REPORT_CHANNEL);
    let mut threads = Vec::new();
    for worker_plan in plans {
        let thread = worker::spawn(worker_plan, ctx.clone(), report_tx.clone());
        match thread {
            Ok(t) => threads.push(t),
            Err(e) => {
                stop.cancel();
                return Err(RunError::Thread(e));
            }
        }
    }
    drop(report_tx);

    let mut progress = progress::Progress::new(options.quiet, clients, &metric_names);
    let shape = (metric_names.len(), plan.expects.len());
    let mut collector = Collector::new(workers, shape, t0_wall);
    let mut totals = Interval::new(shape.0, shape.1);
    let mut status = RunStatus::Completed;
    if interrupted_early {
        status = RunStatus::Interrupted;
        stop.cancel();
    }
    let mut write_error: Option<ExportError> = None;
    let mut take_rows = |rows: Vec<results::timeseries_csv::SecondRow>,
                         progress: &mut progress::Progress,
                         totals: &mut Interval| {
        for mut row in rows {
            progress.update(&row);
            let result = errors
                .write(&row.interval.error_rows)
                .and_then(|_| gaps.write(&row.interval.gap_rows))
                .and_then(|_| timeseries.write(&row))
                .and_then(|_| hlog.write(&row));
            if let Err(e) = result {
                write_error.get_or_insert(e);
            }
            row.interval.error_rows.clear();
            row.interval.gap_rows.clear();
            totals.merge(&mut row.interval);
        }
    };
    // Thresholds marked `abort`, checked once a second on the totals so far.
    let mut aborted_at: Vec<Option<Duration>> = vec![None; plan.thresholds.len()];
    let watch_aborts = plan.thresholds.iter().any(|g| g.abort);
    let (mut released, mut last_check) = (0, 0);
    loop {
        if watch_aborts && status == RunStatus::Completed && released > last_check {
            last_check = released;
            let elapsed = Duration::from_secs(last_check);
            let figures = Figures::from_totals(&metric_names, &totals, elapsed);
            for (i, gate) in plan.thresholds.iter().enumerate() {
                if let Some(actual) = verdict::hopeless(gate, &figures, elapsed) {
                    aborted_at[i] = Some(elapsed);
                    status = RunStatus::Aborted;
                    progress.note(&format!(
                        "aborting at {last_check}s: threshold `{}` cannot pass any more ({} is {}); \
                         draining and closing",
                        gate.threshold,
                        gate.threshold.metric_label(),
                        verdict::format_figure(actual, gate.threshold.stat),
                    ));
                    stop.cancel();
                    break;
                }
            }
        }
        tokio::select! {
            _ = &mut shutdown, if status == RunStatus::Completed => {
                status = RunStatus::Interrupted;
                stop.cancel();
                progress.note("stopping: no new events; draining in-flight ones and closing (press Ctrl-C again to quit at once)");
            }
            message = report_rx.recv() => match message {
                Some(message) => {
                    let rows = collector.accept(message);
                    released = rows.last().map_or(released, |r| r.second);
                    take_rows(rows, &mut progress, &mut totals);
                }
                None => break,
            },
        }
    }
    let rest = collector.finish();
    take_rows(rest, &mut progress, &mut totals);
    for thread in threads {
        let _ = thread.join();
    }
    if let Some(server) = server {
        server.stop();
    }
    // The clients are gone; with the context goes the last sender, and the writer finishes.
    drop(ctx);
    let frame_log = match frame_log_writer {
        Some((writer, file, clients)) => match writer.finish().await {
            Ok(summary) => Some(FrameLogTotals {
                file: file.display().to_string(),
                clients,
                logged: summary.written,
                dropped: summary.dropped,
            }),
            Err(source) => {
                write_error.get_or_insert(ExportError::Write { path: file, source });
                None
            }
        },
        None => None,
    };
    drop(progress);
    // What the receivers of group-to-group expects never got: only the whole run can tell.
    let settle: Vec<Duration> = plan
        .expects
        .iter()
        .map(|e| e.within.unwrap_or(Duration::from_secs(1)))
        .collect();
    let (tail_lost, tail_rows) = fanout::tails(&totals.fanout, &settle, t0.elapsed());
    for (counts, lost) in totals.expects.iter_mut().zip(tail_lost) {
        counts.lost += lost;
    }
    if let Err(e) = gaps.write(&tail_rows) {
        write_error.get_or_insert(e);
    }
    totals.fanout = Default::default();
    let ended_at = SystemTime::now();
    let elapsed = t0.elapsed();
    let thresholds = verdict::judge(
        &plan.thresholds,
        &Figures::from_totals(&metric_names, &totals, elapsed),
        &aborted_at,
    );

    let report = FinishedRun {
        run_id: format!("{run_tag:08x}"),
        status,
        host: host::this_machine(),
        scenario_name: plan.name.clone(),
        scenario_file: options.scenario_file.display().to_string(),
        scenario: serde_json::to_value(&plan.scenario).unwrap_or_default(),
        target_url,
        started_at,
        ended_at,
        elapsed,
        seed,
        workers,
        clients_planned: clients,
        clients_started: collector.started,
        metric_names,
        error_rows_dropped: totals.error_rows_dropped + errors.dropped,
        gap_rows_dropped: totals.gap_rows_dropped + gaps.dropped,
        totals,
        client_cpu: collector.cpu,
        frame_log,
        thresholds,
        shard: options.shard.map(|s| (s.index, s.count)),
        merged_from: Vec::new(),
    };
    results::write_final(&dir, &report)?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    Ok(RunOutcome { run: report, dir })
}

async fn connect_target(
    plan: &Plan,
    insecure: bool,
) -> Result<(Option<ServerHandle>, Connector), RunError> {
    let tls_config = |tls: bool| -> Result<_, RunError> {
        Ok(if tls {
            Some(tls::client_config(insecure)?)
        } else {
            None
        })
    };
    match &plan.target {
        Target::Builtin => {
            let server = serve::spawn(ServeConfig::default()).map_err(RunError::Builtin)?;
            let addr = server.addr();
            let connector = Connector::new(addr, &addr.ip().to_string(), addr.port(), None)
                .expect("plain connector");
            Ok((Some(server), connector.with_headers(plan.headers.clone())))
        }
        Target::Remote { tls, host, port } => {
            let addr = tokio::net::lookup_host((host.as_str(), *port))
                .await
                .map_err(|e| RunError::Resolve {
                    host: host.clone(),
                    detail: e.to_string(),
                })?
                .next()
                .ok_or_else(|| RunError::Resolve {
                    host: host.clone(),
                    detail: "no address".into(),
                })?;
            let connector = Connector::new(addr, host, *port, tls_config(*tls)?).map_err(|e| {
                RunError::Unreachable {
                    url: format!("{host}:{port}"),
                    detail: e.to_string(),
                }
            })?;
            Ok((None, connector.with_headers(plan.headers.clone())))
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
    workers: usize,
) -> Vec<WorkerPlan> {
    let mut ids: Vec<ClientId> = Vec::new();
    for (group, g) in plan.groups.iter().enumerate() {
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
        })
        .collect();
    for (slot, who) in ids.into_iter().enumerate() {
        plans[slot % workers]
            .clients
            .push((starts.at(slot as u64), who));
    }
    plans
}
