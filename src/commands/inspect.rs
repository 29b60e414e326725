//! `volley inspect --upstream URL [--listen ADDR] [...]`: the proxy's flags into its settings.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use super::CommandError;
use super::signals::StopSignals;
use crate::cli::InspectArgs;
use crate::inspect::faults::{self, FaultError, FaultPlan};
use crate::inspect::{InspectError, InspectSettings};
use crate::secrets::SecretRules;
use crate::telemetry::listen::{MetricsListener, Source};
use crate::wire::decode::DecodeOptions;
use crate::wire::filter::Filter;
use crate::wire::print::use_color;
use crate::wire::sink::{RecordCounts, SinkConfig};

pub async fn inspect(args: InspectArgs) -> Result<ExitCode, CommandError> {
    let metrics = match &args.metrics_listen {
        Some(addr) => Some(MetricsListener::bind(addr).map_err(CommandError::Usage)?),
        None => None,
    };
    let mut settings = settings(args).map_err(InspectError::from)?;
    let _endpoint = match metrics {
        Some(listener) => {
            let live = Arc::new(Mutex::new(RecordCounts::default()));
            settings.sink.live = Some(live.clone());
            let source: Source =
                Arc::new(move || live.lock().expect("no panic holds the lock").snapshot());
            let endpoint = listener.serve(source).map_err(CommandError::Write)?;
            eprintln!(
                "volley inspect: metrics at http://{}/metrics",
                endpoint.addr
            );
            Some(endpoint)
        }
        None => None,
    };
    // Every relayed connection is two files: raise the soft limit to the hard one, as `run` does.
    let _ = crate::runner::fdlimit::raise();
    let signals = StopSignals::install().map_err(CommandError::Signals)?;
    let counts = crate::inspect::run(settings, signals.first_then_exit()).await?;
    eprint!("{}", counts.render());
    Ok(ExitCode::SUCCESS)
}

fn settings(args: InspectArgs) -> Result<InspectSettings, FaultError> {
    let seed = args.seed.unwrap_or_else(|| fastrand::u64(..));
    let faults_given = args.drop.is_some()
        || args.duplicate.is_some()
        || args.delay.is_some()
        || args.close_after.is_some();
    Ok(InspectSettings {
        faults: fault_plan(&args, seed)?,
        faults_given,
        listen: args.listen,
        upstream: args.upstream,
        insecure: args.insecure,
        tls: args.cert.zip(args.key),
        decode: DecodeOptions {
            max_payload: args.max_payload,
            max_body: usize::try_from(args.max_body.0).unwrap_or(usize::MAX),
            secrets: SecretRules::new(args.show_secrets, &args.secret_names),
        },
        sink: SinkConfig {
            print: !args.quiet,
            color: use_color(args.no_color, std::io::stdout().is_terminal()),
            filter: Filter::all(&args.filter),
            jsonl: args.jsonl,
            ..SinkConfig::default()
        },
        duration: args.duration.map(|d| d.0),
    })
}

/// The fault plan the flags ask for.
fn fault_plan(args: &InspectArgs, seed: u64) -> Result<FaultPlan, FaultError> {
    let percent = |flag, value: &Option<String>| {
        value
            .as_deref()
            .map(|p| faults::parse_percent(flag, p))
            .transpose()
            .map(Option::unwrap_or_default)
    };
    Ok(FaultPlan {
        drop: percent("--drop", &args.drop)?,
        duplicate: percent("--duplicate", &args.duplicate)?,
        delay: args.delay.as_deref().map(faults::parse_delay).transpose()?,
        close_after: args.close_after,
        filter: Filter::all(&args.fault_filter),
        seed,
    })
}
