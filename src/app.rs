//! The commands, from typed CLI settings to results and an exit status.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::cli::{Cli, Command, MergeArgs, ReportArgs, RunArgs, ServeArgs, TapArgs, ValidateArgs};
use crate::gate::ci::CiFiles;
use crate::gate::verdict;
use crate::report::{self, ReportError};
use crate::results::layout;
use crate::runner::{self, RunError, RunOptions};
use crate::scenario::threshold::{GateThreshold, Origin};
use crate::scenario::{self, Overrides, ScenarioError};
use crate::serve::{self, ServeConfig};
use crate::tap::{self, TapConfig, TapError};
use crate::transport::engine::Transport;
use crate::transport::tls::{self, TlsError};
use crate::wire::frame_log::FrameLogOptions;

/// Anything that ends a command, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("no client could connect to {url}; see {dir}/errors.csv ({detail})")]
    NobodyConnected {
        url: String,
        dir: String,
        detail: String,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Tap(#[from] TapError),
    #[error("cannot install the Ctrl-C / SIGTERM handlers: {0}")]
    Signals(std::io::Error),
    #[error(transparent)]
    Inspect(#[from] crate::inspect::command::InspectError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Write(std::io::Error),
    #[error(transparent)]
    Compare(#[from] crate::compare::load::CompareError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("the report {} was written, but some files could not be read:\n  {}", path.display(), problems.join("\n  "))]
    ReportProblems {
        path: std::path::PathBuf,
        problems: Vec<String>,
    },
    #[error(transparent)]
    Merge(#[from] crate::merge::MergeError),
    #[error(transparent)]
    Shards(#[from] crate::runner::processes::ProcessesError),
    #[error(transparent)]
    Serve(#[from] crate::serve::processes::ProcessesError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

impl AppError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            AppError::Scenario(_) | AppError::Tls(_) | AppError::Usage(_) => ExitCode::from(2),
            AppError::Inspect(e) if e.is_usage() => ExitCode::from(2),
            AppError::Tap(TapError::Usage(_)) => ExitCode::from(2),
            AppError::Compare(e) if e.is_usage() => ExitCode::from(2),
            AppError::Report(e) if e.is_usage() => ExitCode::from(2),
            AppError::Merge(e) if e.is_usage() => ExitCode::from(2),
            AppError::Run(RunError::StartInPast { .. }) => ExitCode::from(2),
            AppError::Shards(crate::runner::processes::ProcessesError::ShardFailed {
                code: Some(code @ 1..=2),
                ..
            }) => ExitCode::from(*code as u8),
            _ => ExitCode::from(1),
        }
    }
}

pub async fn execute(cli: Cli) -> Result<ExitCode, AppError> {
    match cli.command {
        Command::Run(args) => run(args).await,
        Command::Serve(args) => serve_command(args).await,
        Command::Validate(args) => validate(args),
        Command::Inspect(args) => inspect_command(args).await,
        Command::Tap(args) => tap_command(args).await,
        Command::Compare(args) => Ok(crate::compare::load::run(args)?),
        Command::Report(args) => report_command(args),
        Command::Merge(args) => merge_command(args),
    }
}

fn merge_command(args: MergeArgs) -> Result<ExitCode, AppError> {
    let outcome = crate::merge::merge(&args.dirs, &args.out, args.force)?;
    let report = &outcome.run;
    print!(
        "{}",
        crate::results::printout::render(report, &outcome.dir.display().to_string())
    );
    print!("{}", verdict::render(&report.thresholds));
    println!(
        "  merged    {} folders: {}",
        report.merged_from.len(),
        report.merged_from.join(", ")
    );
    let _ = std::io::stdout().flush();
    let failed = report.thresholds.iter().any(|v| !v.passed);
    Ok(if failed {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

fn overrides(args: &RunArgs) -> Overrides {
    Overrides {
        target: args.target.clone(),
        clients: args.clients.map(|c| c.0),
        duration: args.duration.map(|d| d.0),
        rate: args.rate.map(|r| r.0),
        ramp: args.ramp,
        seed: args.seed,
    }
}

/// `--log-frames` and `--log-clients`: either turns the frame log on.
fn frame_log_options(args: &RunArgs) -> Option<FrameLogOptions> {
    if args.log_frames.is_none() && args.log_clients.is_none() {
        return None;
    }
    Some(FrameLogOptions {
        file: args.log_frames.clone().flatten(),
        clients: args.log_clients.clone().unwrap_or_default(),
        bound: None,
    })
}

async fn run(args: RunArgs) -> Result<ExitCode, AppError> {
    let mut plan = scenario::load(&args.scenario, &overrides(&args))?;
    for threshold in &args.thresholds {
        plan.check_threshold(threshold)
            .map_err(|m| AppError::Usage(format!("--threshold '{threshold}': {m}")))?;
        plan.thresholds.push(GateThreshold {
            threshold: threshold.clone(),
            origin: Origin::CommandLine,
            abort: false,
            abort_after: Duration::ZERO,
        });
    }
    if args.gate && plan.thresholds.is_empty() {
        return Err(AppError::Usage(format!(
            "--gate needs thresholds, and {} has no [thresholds]: add some there or with \
             --threshold 'METRIC.STAT OP VALUE' (e.g. 'echo.p99 < 50ms')",
            args.scenario.display()
        )));
    }
    let options = RunOptions {
        scenario_file: args.scenario.clone(),
        out: args.out.clone(),
        quiet: args.quiet,
        threads: args.threads,
        insecure: args.insecure,
        frame_log: frame_log_options(&args),
        shard: args.shard,
        run_id: args.run_id.map(|id| id.0),
        start_at: args.start_at.map(|at| at.0),
        source_ips: args.source_ips.clone().map(|ips| ips.0),
    };
    if let Some(count) = args.processes {
        return run_processes(&args, plan, count).await;
    }
    if let Some(shard) = args.shard.filter(|s| s.count > 1) {
        let missing: Vec<&str> = [
            ("--run-id", args.run_id.is_none()),
            ("--start-at", args.start_at.is_none()),
        ]
        .into_iter()
        .filter_map(|(flag, missing)| missing.then_some(flag))
        .collect();
        if !missing.is_empty() {
            eprintln!(
                "note: shard {shard} without {}: give every shard the same --run-id (or they ignore \
                 each other's events) and --start-at (or fan-out latency between shards counts \
                 from different time zeros)",
                missing.join(" and ")
            );
        }
    }
    let signals = StopSignals::install().map_err(AppError::Signals)?;
    let outcome = runner::run(plan, options, signals.first_then_exit()).await?;
    finish_run(&args, &outcome.run, &outcome.dir)
}

/// `--processes N`: the shards as child processes, merged into the results folder.
async fn run_processes(
    args: &RunArgs,
    plan: scenario::Plan,
    count: u32,
) -> Result<ExitCode, AppError> {
    use crate::runner::processes::{self, LocalShards};
    use crate::runner::shard::{RunId, StartAt};
    let started = std::time::SystemTime::now();
    let dir = args.out.clone().unwrap_or_else(|| {
        crate::results::layout::default_dir(std::path::Path::new("results"), &plan.name, started)
    });
    let run_id = args.run_id.map_or_else(|| fastrand::u32(..), |id| id.0);
    let seed = args.seed.or(plan.seed).unwrap_or_else(|| fastrand::u64(..));
    // Time for the children to start and check the target before time zero.
    let start_at = args.start_at.map_or_else(
        || started + Duration::from_millis(1000 + 100 * u64::from(count)),
        |at| at.0,
    );
    let signals = StopSignals::install().map_err(AppError::Signals)?;
    let (server, target) = shared_server(args, &plan)?;
    let mut child: Vec<std::ffi::OsString> = vec![args.scenario.clone().into()];
    let mut flag = |name: &str, value: String| {
        child.push(name.into());
        child.push(value.into());
    };
    flag("--run-id", RunId(run_id).to_string());
    flag("--seed", seed.to_string());
    flag("--start-at", StartAt(start_at).to_string());
    if let Some(target) = target {
        flag("--target", target);
    }
    if let Some(c) = args.clients {
        flag("--clients", c.0.to_string());
    }
    if let Some(d) = args.duration {
        flag("--duration", crate::units::format_duration(d.0));
    }
    if let Some(r) = args.rate {
        flag("--rate", r.0.to_string());
    }
    if let Some(r) = args.ramp {
        flag("--ramp", r.to_string());
    }
    if let Some(t) = args.threads {
        flag("--threads", t.to_string());
    }
    if let Some(spec) = &args.log_clients {
        flag("--log-clients", spec.to_string());
    }
    // The shards share the ports of each (source, destination) pair: source addresses are chosen
    // for the whole run's connections, not for each shard's share.
    if let Some(sources) = shard_sources(args, &plan, server.as_ref()).await? {
        flag("--source-ips", sources);
    }
    for t in &args.thresholds {
        flag("--threshold", t.to_string());
    }
    child.push("--quiet".into());
    if args.insecure {
        child.push("--insecure".into());
    }
    if args.log_frames.is_some() {
        // Each shard logs into its own folder: one file cannot take several writers.
        child.push("--log-frames".into());
    }
    let shards = LocalShards {
        count,
        dir: dir.clone(),
        program: std::env::current_exe().map_err(AppError::Write)?,
        args: child,
        quiet: args.quiet,
        clients: plan.total_clients(),
        metric_names: plan.metric_names(),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let forward = tokio::spawn(async move {
        let mut signals = signals;
        loop {
            signals.next().await;
            // Full: two signals already wait, which is all the parent acts on.
            let _ = tx.try_send(());
        }
    });
    let outcome = processes::run(&shards, rx).await;
    forward.abort();
    if let Some(server) = server {
        server.stop();
    }
    let outcome = outcome?;
    let merged = crate::merge::merge(&outcome.dirs, &dir, false)?;
    finish_run(args, &merged.run, &merged.dir)
}

/// The source addresses of every shard, given or chosen for the connections of the whole run
/// (comma-separated for `--source-ips`); none when one address has ports enough.
async fn shard_sources(
    args: &RunArgs,
    plan: &scenario::Plan,
    server: Option<&serve::ServerHandle>,
) -> Result<Option<String>, AppError> {
    use crate::transport::source;
    let target = match (server, &plan.target) {
        (Some(server), _) => server.addr(),
        (None, scenario::Target::Remote { host, port, .. }) => {
            match tokio::net::lookup_host((host.as_str(), *port)).await {
                Ok(mut addrs) => match addrs.next() {
                    Some(addr) => addr,
                    None => return Ok(None),
                },
                // Each shard reports an unresolvable target itself.
                Err(_) => return Ok(None),
            }
        }
        (None, scenario::Target::Builtin) => return Ok(None),
    };
    let per_client = plan.connections_per_client();
    let given = args.source_ips.as_ref().map(|ips| ips.0.clone());
    let choice = source::choose(
        target,
        plan.total_clients() * per_client,
        given.as_deref(),
        source::ports_per_source(),
    )
    .map_err(|e| AppError::Run(RunError::Sources(e)))?;
    if let Some(note) = &choice.note {
        eprintln!("{note}");
    }
    Ok(choice.sources.map(|s| {
        s.addrs()
            .iter()
            .map(|ip| ip.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }))
}

/// With `target = "builtin"` and --processes: one builtin server in this process for every shard,
/// and the --target the children get.
fn shared_server(
    args: &RunArgs,
    plan: &scenario::Plan,
) -> Result<(Option<serve::ServerHandle>, Option<String>), AppError> {
    if plan.target != scenario::Target::Builtin {
        return Ok((None, args.target.clone()));
    }
    let limit = crate::runner::fdlimit::raise().unwrap_or(1024);
    let per_client = plan.connections_per_client();
    let clients = plan.total_clients();
    // The parent's server holds one end of every shard's connections.
    if crate::runner::fdlimit::needed(clients * per_client, false) > limit {
        let served_apart = match plan.socketio() {
            Some(_) => "http://127.0.0.1:9000".to_string(),
            None => format!("ws://127.0.0.1:9000{}", plan.groups[0].path),
        };
        return Err(RunError::TooManyFiles(crate::runner::fdlimit::Shortage {
            connections: clients * per_client,
            per_client,
            builtin: Some(served_apart),
            limit,
        })
        .into());
    }
    let config = ServeConfig {
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        ..ServeConfig::default()
    };
    let server = serve::spawn(config).map_err(|e| AppError::Run(RunError::Builtin(e)))?;
    // The builtin server's default path for raw WebSocket groups without their own; for
    // Socket.IO a path would be the namespace.
    let path = if plan.socketio().is_some() {
        ""
    } else {
        "/echo"
    };
    let target = format!("ws://{}{path}", server.addr());
    Ok((Some(server), Some(target)))
}

/// The end of a run (or of merged local shards): the summary, the verdicts, the report and the
/// gate's files, and the exit code.
fn finish_run(
    args: &RunArgs,
    report: &crate::results::FinishedRun,
    out_dir: &std::path::Path,
) -> Result<ExitCode, AppError> {
    let dir = out_dir.display().to_string();
    print!("{}", crate::results::printout::render(report, &dir));
    print!("{}", verdict::render(&report.thresholds));
    // A report that cannot be written is an error, but not one that hides a failed gate.
    let report_error = match args.report.then(|| write_report(out_dir, None)) {
        Some(Ok(written)) => {
            println!("  report    {}", written.display());
            None
        }
        Some(Err(e)) => Some(e),
        None => None,
    };
    let _ = std::io::stdout().flush();
    let gate = (!report.thresholds.is_empty()).then(|| {
        verdict::summary(
            &report.thresholds,
            &report.scenario_name,
            report.elapsed.as_secs_f64(),
        )
    });
    if let Some(gate) = &gate {
        let in_dir = |name: &str| args.gate.then(|| out_dir.join(name));
        let files = CiFiles {
            junit: args.junit.clone().or_else(|| in_dir(layout::JUNIT_XML)),
            markdown: args.markdown.clone().or_else(|| in_dir(layout::SUMMARY_MD)),
            json: args.json.clone(),
            step_summary: None,
        }
        .with_step_summary();
        files.write(gate).map_err(AppError::Write)?;
    } else if args.junit.is_some() || args.markdown.is_some() || args.json.is_some() {
        eprintln!("note: no thresholds, so no --junit/--markdown/--json verdict was written");
    }
    if report.totals.connects == 0 && report.clients_started > 0 {
        let t = &report.totals;
        let worst = crate::metrics::ErrorKind::ALL
            .iter()
            .max_by_key(|k| t.errors[k.index()])
            .map(|k| format!("{} × {k}", t.errors[k.index()]))
            .unwrap_or_default();
        return Err(AppError::NobodyConnected {
            url: report.target_url.clone(),
            dir,
            detail: worst,
        });
    }
    if gate.is_some_and(|g| !g.passed()) {
        if let Some(e) = report_error {
            eprintln!("Error: {e}");
        }
        return Ok(ExitCode::from(3));
    }
    match report_error {
        Some(e) => Err(e),
        None => Ok(ExitCode::SUCCESS),
    }
}

fn report_command(args: ReportArgs) -> Result<ExitCode, AppError> {
    let written = write_report(&args.run_dir, args.output.as_deref())?;
    println!("{}", written.display());
    Ok(ExitCode::SUCCESS)
}

/// Writes a results folder's report; files it could not read make it an error after writing.
fn write_report(
    dir: &std::path::Path,
    out: Option<&std::path::Path>,
) -> Result<std::path::PathBuf, AppError> {
    let written = report::write(dir, out)?;
    if !written.problems.is_empty() {
        return Err(AppError::ReportProblems {
            path: written.path,
            problems: written.problems,
        });
    }
    Ok(written.path)
}

async fn serve_command(args: ServeArgs) -> Result<ExitCode, AppError> {
    if args.processes > 1 {
        return serve_processes(args).await;
    }
    let tls = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => Some(tls::server_config(cert, key)?),
        _ => None,
    };
    let config = ServeConfig {
        listen: args.listen,
        delay: args.delay.map(|d| d.0),
        threads: args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        tls,
        tick_every: args.tick_every.0,
        faults: serve::Faults {
            drop_every: args.drop_every,
            dup_every: args.dup_every,
            reorder_every: args.reorder_every,
        },
        reuse_port: args.reuse_port,
    };
    // Every connection is a file: raise the soft limit to the hard one, as `run` does.
    let _ = crate::runner::fdlimit::raise();
    let server = serve::spawn(config).map_err(|source| AppError::Listen {
        addr: args.listen,
        source,
    })?;
    let mut signals = StopSignals::install().map_err(AppError::Signals)?;
    println!("listening on {}", server.url(""));
    let _ = std::io::stdout().flush();
    signals.next().await;
    server.stop();
    Ok(ExitCode::SUCCESS)
}

/// `volley serve --processes N`: N children on one port, one `listening on` line, stops forwarded.
async fn serve_processes(args: ServeArgs) -> Result<ExitCode, AppError> {
    use crate::serve::processes;
    let count = usize::from(args.processes);
    let mut signals = StopSignals::install().map_err(AppError::Signals)?;
    let reserved = processes::reserve_port(args.listen)?;
    let servers = processes::start(count, reserved, &processes::child_args(&args)).await?;
    let scheme = if args.cert.is_some() { "wss" } else { "ws" };
    println!("listening on {scheme}://{}", servers.addr());
    let _ = std::io::stdout().flush();
    let pids: Vec<String> = servers.pids().iter().map(u32::to_string).collect();
    eprintln!(
        "{count} server processes (pids {}); rooms do not span processes",
        pids.join(", ")
    );
    servers.run_until(signals.next()).await?;
    Ok(ExitCode::SUCCESS)
}

async fn inspect_command(args: crate::cli::InspectArgs) -> Result<ExitCode, AppError> {
    let _ = crate::runner::fdlimit::raise();
    let signals = StopSignals::install().map_err(AppError::Signals)?;
    let summary = crate::inspect::command::run(args, signals.first_then_exit()).await?;
    eprint!("{}", summary.render());
    Ok(ExitCode::SUCCESS)
}

fn validate(args: ValidateArgs) -> Result<ExitCode, AppError> {
    let plan = scenario::load(&args.scenario, &Overrides::default())?;
    let emits: usize = plan.groups.iter().map(|g| g.emits.len()).sum();
    println!(
        "{}: ok — \"{}\", {} clients in {} group(s), {} emit stream(s), {} expect(s), {} threshold(s), duration {}, ramp {}",
        args.scenario.display(),
        plan.name,
        plan.total_clients(),
        plan.groups.len(),
        emits,
        plan.expects.len(),
        plan.thresholds.len(),
        crate::units::format_duration(plan.duration),
        plan.ramp,
    );
    Ok(ExitCode::SUCCESS)
}

fn tap_config(args: TapArgs) -> Result<TapConfig, TapError> {
    let socketio =
        args.socketio || args.url.starts_with("http://") || args.url.starts_with("https://");
    let sio_flag = [
        ("--auth", args.auth.is_some()),
        ("--transport", args.transport.is_some()),
        ("--eio", args.eio.is_some()),
        ("--path", args.path.is_some()),
    ]
    .into_iter()
    .find_map(|(flag, given)| given.then_some(flag));
    let options = match (socketio, sio_flag) {
        (false, Some(flag)) => {
            return Err(TapError::Usage(format!(
                "{flag} is for Socket.IO: add --socketio or use an http:// URL"
            )));
        }
        (false, None) => None,
        (true, _) => Some(tap::SocketIoOptions {
            transport: args.transport.map(Transport::from).unwrap_or_default(),
            version: args.eio.map(|v| match v {
                3 => crate::protocol::engineio::Version::V3,
                _ => crate::protocol::engineio::Version::V4,
            }),
            path: args.path,
            auth: args.auth,
        }),
    };
    let mut config = TapConfig::new(&args.url, options)?;
    for header in &args.headers {
        config.add_header(header)?;
    }
    config.insecure = args.insecure;
    config.input = if args.send.is_empty() {
        tap::Input::Stdin
    } else {
        tap::Input::Lines(args.send)
    };
    config.wait = args.wait.0;
    config.connect_timeout = args.connect_timeout.0;
    config.sink.color = crate::wire::print::use_color(
        args.no_color,
        std::io::IsTerminal::is_terminal(&std::io::stdout()),
    );
    config.sink.filter = crate::wire::filter::Filter::all(&args.filter);
    config.sink.jsonl = args.jsonl;
    config.decode.max_payload = args.max_payload;
    config.decode.show_secrets = args.show_secrets;
    Ok(config)
}

async fn tap_command(args: TapArgs) -> Result<ExitCode, AppError> {
    let config = tap_config(args)?;
    let signals = StopSignals::install().map_err(AppError::Signals)?;
    let outcome = tap::run(config, signals.first_then_exit()).await?;
    if outcome.acks_due > 0 {
        eprintln!(
            "volley tap: {} ack(s) asked for never came back",
            outcome.acks_due
        );
    }
    if outcome.summary.dropped > 0 {
        eprintln!(
            "volley tap: {} record(s) not shown: the output fell behind",
            outcome.summary.dropped
        );
    }
    let code = outcome.exit_code();
    if code != 0 {
        eprintln!("volley tap: {}", outcome.ending);
    }
    Ok(ExitCode::from(code))
}

/// Ctrl-C (SIGINT) and SIGTERM, registered before anything starts so that no early signal is
/// missed (a signal arriving before registration would kill the process with its default action).
struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    fn install() -> std::io::Result<StopSignals> {
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }

    /// Resolves on the first signal; a second one exits the process at once (130).
    async fn first_then_exit(mut self) {
        self.next().await;
        tokio::spawn(async move {
            self.next().await;
            eprintln!("interrupted again: exiting without waiting for the drain");
            std::process::exit(130);
        });
    }
}
