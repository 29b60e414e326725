//! `volley run FILE [options]`: the scenario with the command line's overrides, run in this
//! process (or as `--processes N` shards), then the summary, the verdicts, the report and the CI
//! files, and the exit code.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use super::signals::StopSignals;
use super::{CommandError, dashboard, processes};
use crate::cli::RunArgs;
use crate::gate::ci::CiFiles;
use crate::gate::verdict;
use crate::metrics::ErrorKind;
use crate::results::{FinishedRun, layout, printout};
use crate::runner::live::LiveOptions;
use crate::runner::{self, RunOptions};
use crate::scenario::threshold::{GateThreshold, Origin};
use crate::scenario::{self, Overrides, Plan};
use crate::secrets::SecretRules;
use crate::telemetry::listen::MetricsListener;
use crate::wire::frame_log::FrameLogOptions;

pub async fn run(args: RunArgs) -> Result<ExitCode, CommandError> {
    let plan = plan(&args)?;
    if args.processes.is_some() && args.dashboard.is_some() {
        return Err(CommandError::Usage(
            "--dashboard follows one process's results folder: it is not available with \
             --processes (watch the shards with --metrics-listen, or open `volley report` of the \
             merged folder)"
                .into(),
        ));
    }
    if let Some(count) = args.processes {
        return processes::run(&args, plan, count).await;
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
    let mut options = options(&args)?;
    let board = match &args.dashboard {
        Some(addr) => {
            let listener =
                MetricsListener::bind_for(addr, "--dashboard").map_err(CommandError::Usage)?;
            // The folder is decided here, so that the dashboard knows where the run writes.
            let dir = options.out.get_or_insert_with(|| {
                layout::default_dir(Path::new("results"), &plan.name, SystemTime::now())
            });
            let endpoint = dashboard::start(&listener, dir.clone()).map_err(CommandError::Write)?;
            eprintln!("dashboard at http://{}/", endpoint.addr);
            Some(endpoint)
        }
        None => None,
    };
    let signals = StopSignals::install().map_err(CommandError::Signals)?;
    let outcome = runner::run(plan, options, signals.first_then_exit()).await?;
    let code = finish(&args, &outcome.run, &outcome.dir);
    if let Some(board) = board {
        linger(&board, args.dashboard_linger.0).await;
    }
    code
}

/// Keeps the dashboard's final page up for `linger`, or until Ctrl-C.
async fn linger(board: &crate::telemetry::listen::Endpoint, linger: Duration) {
    if linger.is_zero() {
        return;
    }
    eprintln!(
        "dashboard: the final report is at http://{}/ for {} (Ctrl-C to stop)",
        board.addr,
        crate::units::format_duration(linger)
    );
    let _ = std::io::stderr().flush();
    match StopSignals::install() {
        Ok(mut signals) => {
            tokio::select! {
                _ = tokio::time::sleep(linger) => {}
                _ = signals.next() => {}
            }
        }
        Err(_) => tokio::time::sleep(linger).await,
    }
}

/// The scenario with the command line's overrides and thresholds, checked.
fn plan(args: &RunArgs) -> Result<Plan, CommandError> {
    let overrides = Overrides {
        target: args.target.clone(),
        clients: args.clients.map(|c| c.0),
        duration: args.duration.map(|d| d.0),
        rate: args.rate.map(|r| r.0),
        ramp: args.ramp,
        seed: args.seed,
    };
    let mut plan = scenario::load(&args.scenario, &overrides)?;
    for threshold in &args.thresholds {
        plan.check_threshold(threshold)
            .map_err(|m| CommandError::Usage(format!("--threshold '{threshold}': {m}")))?;
        plan.thresholds.push(GateThreshold {
            threshold: threshold.clone(),
            origin: Origin::CommandLine,
            abort: false,
            abort_after: Duration::ZERO,
        });
    }
    if args.gate && plan.thresholds.is_empty() {
        return Err(CommandError::Usage(format!(
            "--gate needs thresholds, and {} has no [thresholds]: add some there or with \
             --threshold 'METRIC.STAT OP VALUE' (e.g. 'echo.p99 < 50ms')",
            args.scenario.display()
        )));
    }
    Ok(plan)
}

/// The run's options; `--metrics-listen` is bound here, so that a busy address is a usage error
/// before anything starts.
fn options(args: &RunArgs) -> Result<RunOptions, CommandError> {
    // `--log-frames` and `--log-clients`: either turns the frame log on.
    let frame_log =
        (args.log_frames.is_some() || args.log_clients.is_some()).then(|| FrameLogOptions {
            file: args.log_frames.clone().flatten(),
            clients: args.log_clients.clone().unwrap_or_default(),
            bound: None,
        });
    let listen = match &args.metrics_listen {
        Some(addr) => Some(MetricsListener::bind(addr).map_err(CommandError::Usage)?),
        None => None,
    };
    Ok(RunOptions {
        scenario_file: args.scenario.clone(),
        out: args.out.clone(),
        quiet: args.quiet,
        threads: args.threads,
        insecure: args.insecure,
        frame_log,
        shard: args.shard,
        run_id: args.run_id.map(|id| id.0),
        start_at: args.start_at.map(|at| at.0),
        source_ips: args.source_ips.clone().map(|ips| ips.0),
        live: LiveOptions {
            listen,
            write: args.prometheus_write.clone(),
            linger: args.metrics_linger.0,
        },
        secrets: SecretRules::new(args.show_secrets, &args.secret_names),
    })
}

/// The end of a run (or of merged local shards): the summary, the verdicts, the report and the
/// gate's files, and the exit code.
/// A merged run with failed shards is a failed command (exit 1), though its results are written.
pub fn failed_shards(run: &FinishedRun, dir: &str) -> Option<CommandError> {
    let first = run.failed_shards.first()?;
    Some(CommandError::ShardsFailed {
        shard: first.shard.clone().unwrap_or_else(|| first.folder.clone()),
        why: first.why.clone(),
        more: run.failed_shards.len() - 1,
        dir: dir.to_string(),
    })
}

pub fn finish(args: &RunArgs, run: &FinishedRun, out_dir: &Path) -> Result<ExitCode, CommandError> {
    let dir = out_dir.display().to_string();
    print!("{}", printout::render(run, &dir));
    print!("{}", verdict::render(&run.thresholds));
    // A report that cannot be written is an error, but not one that hides a failed gate.
    let report_error = match args
        .report
        .then(|| super::report::write_report(out_dir, None))
    {
        Some(Ok(written)) => {
            println!("  report    {}", written.display());
            None
        }
        Some(Err(e)) => Some(e),
        None => None,
    };
    let _ = std::io::stdout().flush();
    let gate = (!run.thresholds.is_empty()).then(|| {
        verdict::checks(
            &run.thresholds,
            &run.scenario_name,
            run.elapsed.as_secs_f64(),
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
        files.write(gate).map_err(CommandError::Write)?;
    } else if args.junit.is_some() || args.markdown.is_some() || args.json.is_some() {
        eprintln!("note: no thresholds, so no --junit/--markdown/--json verdict was written");
    }
    if let Some(e) = failed_shards(run, &dir) {
        return Err(e);
    }
    if run.totals.connects == 0 && run.clients_started > 0 {
        let t = &run.totals;
        let worst = ErrorKind::ALL
            .iter()
            .max_by_key(|k| t.errors[k.index()])
            .map(|k| format!("{} × {k}", t.errors[k.index()]))
            .unwrap_or_default();
        return Err(CommandError::NobodyConnected {
            url: run.target_url.clone(),
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
