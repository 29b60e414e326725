//! `volley serve [--listen ADDR] [...]`: the builtin server in this process until stopped, or
//! `--processes N` of them sharing one port.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use super::CommandError;
use super::signals::StopSignals;
use crate::cli::ServeArgs;
use crate::runner::host::cores;
use crate::serve::processes::{self, default_threads};
use crate::serve::{self, Faults, ServeConfig};
use crate::telemetry::listen::{self, MetricsListener, Source};
use crate::transport::tls;
use crate::units::format_duration;

pub async fn serve(args: ServeArgs) -> Result<ExitCode, CommandError> {
    if args.processes > 1 {
        return serve_processes(args).await;
    }
    let config = ServeConfig {
        listen: args.listen,
        delay: args.delay.map(|d| d.0),
        threads: args.threads.unwrap_or_else(cores),
        tls: match (&args.cert, &args.key) {
            (Some(cert), Some(key)) => Some(tls::server_config(cert, key)?),
            _ => None,
        },
        tick_every: args.tick_every.0,
        faults: Faults {
            drop_every: args.drop_every,
            dup_every: args.dup_every,
            reorder_every: args.reorder_every,
        },
        reuse_port: args.reuse_port,
    };
    let metrics = match &args.metrics_listen {
        Some(addr) => Some(MetricsListener::bind(addr).map_err(CommandError::Usage)?),
        None => None,
    };
    // Every connection is a file: raise the soft limit to the hard one, as `run` does.
    let _ = crate::runner::fdlimit::raise();
    let server = serve::spawn(config).map_err(|source| CommandError::Listen {
        addr: args.listen,
        source,
    })?;
    let _endpoint = match metrics {
        Some(listener) => {
            let counters = server.counters();
            let source: Source = Arc::new(move || counters.snapshot());
            let endpoint = listener.serve(source).map_err(CommandError::Write)?;
            eprintln!("metrics at http://{}/metrics", endpoint.addr);
            Some(endpoint)
        }
        None => None,
    };
    let mut signals = StopSignals::install().map_err(CommandError::Signals)?;
    println!("listening on {}", server.url(""));
    let _ = std::io::stdout().flush();
    signals.next().await;
    server.stop();
    Ok(ExitCode::SUCCESS)
}

/// `volley serve --processes N`: N children on one port, one `listening on` line, stops forwarded.
async fn serve_processes(args: ServeArgs) -> Result<ExitCode, CommandError> {
    let count = usize::from(args.processes);
    let mut signals = StopSignals::install().map_err(CommandError::Signals)?;
    if let Some(base) = &args.metrics_listen {
        listen::check_ports(base, count as u32, &format!("--processes {count}"))
            .map_err(CommandError::Usage)?;
    }
    let reserved = processes::reserve_port(args.listen)?;
    let metrics = args.metrics_listen.as_ref().map(|a| a.0);
    let servers = processes::start(count, reserved, &child_args(&args), metrics).await?;
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

/// The options every child gets beside `--reuse-port --listen ADDR`: the parent's own, with
/// `--threads` made explicit (the cores shared out unless given). Every field is named, so a new
/// option of `volley serve` does not compile until it is forwarded or left to the parent here.
fn child_args(args: &ServeArgs) -> Vec<OsString> {
    let ServeArgs {
        delay,
        tick_every,
        drop_every,
        dup_every,
        reorder_every,
        threads,
        cert,
        key,
        // The parent's alone: it reserves the address and starts the processes (each process
        // gets its own metrics port).
        listen: _,
        metrics_listen: _,
        processes,
        reuse_port: _,
    } = args;
    let threads = threads.unwrap_or_else(|| default_threads(cores(), usize::from(*processes)));
    let mut out: Vec<OsString> = Vec::new();
    let mut push = |flag: &str, value: OsString| {
        out.push(flag.into());
        out.push(value);
    };
    push("--threads", threads.to_string().into());
    if let Some(delay) = delay {
        push("--delay", format_duration(delay.0).into());
    }
    push("--tick-every", format_duration(tick_every.0).into());
    for (flag, every) in [
        ("--drop-every", drop_every),
        ("--dup-every", dup_every),
        ("--reorder-every", reorder_every),
    ] {
        if let Some(every) = every {
            push(flag, every.to_string().into());
        }
    }
    if let (Some(cert), Some(key)) = (cert, key) {
        push("--cert", cert.clone().into_os_string());
        push("--key", key.clone().into_os_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn serve_args(extra: &[&str]) -> ServeArgs {
        let args = [&["volley", "serve"], extra].concat();
        match Cli::try_parse_from(args).unwrap().command {
            Command::Serve(args) => args,
            _ => panic!("expected serve"),
        }
    }

    #[test]
    fn children_get_the_parents_options_and_the_cores_shared_out() {
        let parent = serve_args(&[
            "--processes",
            "2",
            "--listen",
            "127.0.0.1:9000",
            "--delay",
            "20ms",
            "--drop-every",
            "3",
            "--cert",
            "c.pem",
            "--key",
            "k.pem",
        ]);
        let child_line: Vec<String> = child_args(&parent)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let mut line = vec!["--reuse-port", "--listen", "127.0.0.1:9000"];
        line.extend(child_line.iter().map(String::as_str));
        let child = serve_args(&line);
        assert_eq!(child.delay, parent.delay);
        assert_eq!(child.tick_every, parent.tick_every);
        assert_eq!(child.drop_every, Some(3));
        assert_eq!((child.cert, child.key), (parent.cert, parent.key));
        assert_eq!(child.processes, 1);
        assert_eq!(child.threads, Some(default_threads(cores(), 2)));
    }
}
