//! `volley run --processes N`: the run as N child processes (`volley run --shard K/N`) sharing one
//! run id, seed and time zero, with one builtin server in this process for all of them when the
//! target is builtin; merged into the results folder at the end.
//!
//! Every flag of `volley run` is placed once, in [`child_args`]: forwarded as given, decided by the
//! parent for the whole run, or the parent's alone. The destructuring there names every field, so
//! a new flag does not compile until it is placed; a test checks the placing against the parser.

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use super::CommandError;
use super::signals::StopSignals;
use crate::cli::RunArgs;
use crate::merge::MergeOptions;
use crate::results::layout;
use crate::runner::RunError;
use crate::runner::builtin::{self, Ends};
use crate::runner::host;
use crate::runner::processes::{self, LocalShards};
use crate::runner::shard::{RunId, StartAt};
use crate::scenario::{Plan, Target};
use crate::serve::ServerHandle;
use crate::telemetry::listen;
use crate::transport::source;
use crate::units::format_duration;

/// What the parent decides for every child, beside what it forwards.
struct Decided {
    run_id: u32,
    seed: u64,
    start_at: SystemTime,
    /// The builtin server of the parent, or the target given.
    target: Option<String>,
    /// Source addresses for the whole run's connections, when one address has too few ports.
    source_ips: Option<String>,
}

pub async fn run(args: &RunArgs, plan: Plan, count: u32) -> Result<ExitCode, CommandError> {
    let started = SystemTime::now();
    let dir = args.out.clone().unwrap_or_else(|| {
        layout::default_dir(std::path::Path::new("results"), &plan.name, started)
    });
    let signals = StopSignals::install().map_err(CommandError::Signals)?;
    let server = match plan.target {
        Target::Builtin => Some(shared_server(&plan)?),
        Target::Remote { .. } => None,
    };
    let decided = Decided {
        run_id: args.run_id.map_or_else(|| fastrand::u32(..), |id| id.0),
        seed: args.seed.or(plan.seed).unwrap_or_else(|| fastrand::u64(..)),
        // Time for the children to start and check the target before time zero.
        start_at: args.start_at.map_or_else(
            || started + Duration::from_millis(1000 + 100 * u64::from(count)),
            |at| at.0,
        ),
        target: match &server {
            Some(server) => Some(builtin_target(&plan, server)),
            None => args.target.clone(),
        },
        source_ips: shard_sources(args, &plan, server.as_ref()).await?,
    };
    let shards = LocalShards {
        count,
        dir: dir.clone(),
        program: std::env::current_exe().map_err(CommandError::Write)?,
        args: child_args(args, &decided),
        quiet: args.quiet,
        clients: plan.total_clients(),
        metric_names: plan.metric_names(),
        main_metric: plan.main_metric(),
        metrics_listen: shard_listen_addrs(args, count)?,
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
    let options = MergeOptions {
        force: false,
        failures: outcome
            .failed
            .iter()
            .map(|f| (f.index as usize, f.why()))
            .collect(),
    };
    match (
        crate::merge::merge(&outcome.dirs, &dir, &options),
        outcome.failed,
    ) {
        (Ok(merged), _) => super::run::finish(args, &merged.run, &merged.dir),
        (Err(e), None) => Err(e.into()),
        // Nothing to merge: the shard's failure is the error, and why the merge failed a note.
        (Err(e), Some(failed)) => {
            eprintln!("note: the shards' results could not be merged: {e}");
            Err(CommandError::Shards(failed.into()))
        }
    }
}

/// The arguments of every child after `run` (`--shard K/N` and `--out` are added per child).
fn child_args(args: &RunArgs, decided: &Decided) -> Vec<OsString> {
    let RunArgs {
        scenario,
        // Forwarded as given.
        clients,
        duration,
        rate,
        ramp,
        threads,
        log_clients,
        thresholds,
        insecure,
        metrics_linger,
        prometheus_write,
        show_secrets,
        secret_names,
        // Each shard listens on a port of its own (`LocalShards::metrics_listen`).
        metrics_listen: _,
        // Refused with --processes (`run::run`).
        dashboard: _,
        dashboard_linger: _,
        // Decided by the parent for the whole run.
        target: _,
        source_ips: _,
        seed: _,
        run_id: _,
        start_at: _,
        // Each shard logs into its own folder: one file cannot take several writers.
        log_frames,
        // The parent's alone: it shows the progress, merges, reports and gates.
        out: _,
        quiet: _,
        report: _,
        gate: _,
        junit: _,
        markdown: _,
        json: _,
        processes: _,
        shard: _,
    } = args;
    let mut child: Vec<OsString> = vec![scenario.clone().into()];
    let mut flag = |name: &str, value: String| {
        child.push(name.into());
        child.push(value.into());
    };
    flag("--run-id", RunId(decided.run_id).to_string());
    flag("--seed", decided.seed.to_string());
    flag("--start-at", StartAt(decided.start_at).to_string());
    if let Some(target) = &decided.target {
        flag("--target", target.clone());
    }
    if let Some(c) = clients {
        flag("--clients", c.0.to_string());
    }
    if let Some(d) = duration {
        flag("--duration", format_duration(d.0));
    }
    if let Some(r) = rate {
        flag("--rate", r.0.to_string());
    }
    if let Some(r) = ramp {
        flag("--ramp", r.to_string());
    }
    if let Some(t) = threads {
        flag("--threads", t.to_string());
    }
    if let Some(spec) = log_clients {
        flag("--log-clients", spec.to_string());
    }
    if let Some(sources) = &decided.source_ips {
        flag("--source-ips", sources.clone());
    }
    for t in thresholds {
        flag("--threshold", t.to_string());
    }
    flag("--metrics-linger", format_duration(metrics_linger.0));
    if let Some(url) = prometheus_write {
        flag("--prometheus-write", url.to_string());
    }
    child.push("--quiet".into());
    if *insecure {
        child.push("--insecure".into());
    }
    if log_frames.is_some() {
        child.push("--log-frames".into());
    }
    if *show_secrets {
        child.push("--show-secrets".into());
    }
    for name in secret_names {
        child.push("--secret".into());
        child.push(name.into());
    }
    child
}

/// `--metrics-listen` with N shards: shard K takes the port + K, each checked free here so that
/// a busy one is a usage error before any child starts.
fn shard_listen_addrs(
    args: &RunArgs,
    count: u32,
) -> Result<Option<std::net::SocketAddr>, CommandError> {
    let Some(base) = &args.metrics_listen else {
        return Ok(None);
    };
    listen::check_ports(base, count, &format!("--processes {count}"))
        .map_err(CommandError::Usage)?;
    Ok(Some(base.0))
}

/// With `target = "builtin"`: one builtin server in this process for every shard. It holds one
/// end of every shard's connections.
fn shared_server(plan: &Plan) -> Result<ServerHandle, CommandError> {
    builtin::check_files(plan, plan.total_clients(), Ends::ServerOnly)?;
    Ok(builtin::start(host::cores())?)
}

/// The --target the children get for the parent's builtin server: its default path for raw
/// WebSocket groups without their own; for Socket.IO a path would be the namespace.
fn builtin_target(plan: &Plan, server: &ServerHandle) -> String {
    let path = if plan.socketio().is_some() {
        ""
    } else {
        "/echo"
    };
    format!("ws://{}{path}", server.addr())
}

/// The source addresses of every shard, given or chosen for the connections of the whole run
/// (comma-separated for `--source-ips`); none when one address has ports enough.
async fn shard_sources(
    args: &RunArgs,
    plan: &Plan,
    server: Option<&ServerHandle>,
) -> Result<Option<String>, CommandError> {
    let target = match (server, &plan.target) {
        (Some(server), _) => server.addr(),
        (None, Target::Remote { host, port, .. }) => {
            match tokio::net::lookup_host((host.as_str(), *port)).await {
                Ok(mut addrs) => match addrs.next() {
                    Some(addr) => addr,
                    None => return Ok(None),
                },
                // Each shard reports an unresolvable target itself.
                Err(_) => return Ok(None),
            }
        }
        (None, Target::Builtin) => return Ok(None),
    };
    let given = args.source_ips.as_ref().map(|ips| ips.0.clone());
    let choice = source::choose(
        target,
        plan.total_clients() * plan.connections_per_client(),
        given.as_deref(),
        source::ports_per_source(),
    )
    .map_err(|e| CommandError::Run(RunError::Sources(e)))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::{CommandFactory, Parser};

    fn run_args(line: &[&str]) -> RunArgs {
        let args = [&["volley", "run"], line].concat();
        match Cli::try_parse_from(args).unwrap().command {
            Command::Run(args) => *args,
            _ => panic!("expected run"),
        }
    }

    /// Flags the children get as the parent was given them, with a value to try and how to see
    /// it in the parsed arguments.
    type Forwarded = (
        &'static str,
        &'static [&'static str],
        fn(&RunArgs) -> String,
    );
    const FORWARDED: &[Forwarded] = &[
        ("clients", &["--clients", "10k"], |a| {
            format!("{:?}", a.clients)
        }),
        ("duration", &["--duration", "1m30s"], |a| {
            format!("{:?}", a.duration)
        }),
        ("rate", &["--rate", "5/s"], |a| format!("{:?}", a.rate)),
        ("ramp", &["--ramp", "500/s"], |a| format!("{:?}", a.ramp)),
        ("threads", &["--threads", "3"], |a| {
            format!("{:?}", a.threads)
        }),
        ("log_clients", &["--log-clients", "0..2,5%"], |a| {
            format!("{:?}", a.log_clients)
        }),
        (
            "thresholds",
            &[
                "--threshold",
                "echo.p99 < 5ms",
                "--threshold",
                "errors == 0",
            ],
            |a| format!("{:?}", a.thresholds),
        ),
        ("metrics_linger", &["--metrics-linger", "3s"], |a| {
            format!("{:?}", a.metrics_linger)
        }),
        (
            "prometheus_write",
            &["--prometheus-write", "http://127.0.0.1:9/api/v1/write"],
            |a| format!("{:?}", a.prometheus_write),
        ),
        ("insecure", &["--insecure"], |a| format!("{:?}", a.insecure)),
        ("show_secrets", &["--show-secrets"], |a| {
            format!("{:?}", a.show_secrets)
        }),
        (
            "secret_names",
            &["--secret", "room", "--redact-query", "ticket"],
            |a| format!("{:?}", a.secret_names),
        ),
    ];

    /// Flags whose value the parent decides for the whole run.
    const DECIDED: &[&str] = &["target", "source_ips", "seed", "run_id", "start_at"];

    /// Flags of the parent alone (`log_frames`: each shard logs into its own folder).
    const PARENT_ONLY: &[&str] = &[
        "scenario",
        "metrics_listen",
        "dashboard",
        "dashboard_linger",
        "log_frames",
        "out",
        "quiet",
        "report",
        "gate",
        "junit",
        "markdown",
        "json",
        "processes",
        "shard",
    ];

    fn decided() -> Decided {
        Decided {
            run_id: 0xc0ffee,
            seed: 42,
            start_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            target: Some("ws://127.0.0.1:9/echo".into()),
            source_ips: Some("127.0.0.2,127.0.0.3".into()),
        }
    }

    fn child_of(parent: &RunArgs) -> RunArgs {
        let line: Vec<String> = child_args(parent, &decided())
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let line: Vec<&str> = line.iter().map(String::as_str).collect();
        run_args(&line)
    }

    #[test]
    fn every_run_flag_is_forwarded_decided_or_the_parents() {
        let command = Cli::command();
        let run = command.find_subcommand("run").unwrap();
        for arg in run.get_arguments() {
            let id = arg.get_id().as_str();
            let placed = FORWARDED.iter().any(|(f, _, _)| *f == id)
                || DECIDED.contains(&id)
                || PARENT_ONLY.contains(&id);
            assert!(
                placed,
                "`volley run --{id}` is not placed for --processes: forward it in child_args and \
                 add it to FORWARDED (with a value to try), or list it as DECIDED or PARENT_ONLY"
            );
        }
    }

    #[test]
    fn forwarded_flags_reach_the_children_as_given() {
        for (id, flags, seen) in FORWARDED {
            let mut line = vec!["s.toml", "--processes", "2"];
            line.extend(flags.iter());
            let parent = run_args(&line);
            let child = child_of(&parent);
            assert_eq!(seen(&child), seen(&parent), "--{id}");
            assert_ne!(
                seen(&child),
                seen(&run_args(&["s.toml"])),
                "--{id} had no effect"
            );
        }
    }

    #[test]
    fn children_get_the_parents_decisions_and_run_quietly() {
        let parent = run_args(&["s.toml", "--processes", "2", "--log-frames", "--report"]);
        let child = child_of(&parent);
        assert_eq!(child.run_id.unwrap().0, 0xc0ffee);
        assert_eq!(child.seed, Some(42));
        assert_eq!(child.target.as_deref(), Some("ws://127.0.0.1:9/echo"));
        assert!(child.source_ips.is_some() && child.start_at.is_some());
        assert!(child.quiet && !child.report && child.processes.is_none());
        assert_eq!(child.log_frames, Some(None));
    }
}
