//! `volley inspect` from typed settings: resolve the upstream, start the writer, relay until
//! stopped, and return the summary.

use std::future::Future;
use std::io::IsTerminal;
use std::sync::Arc;

use super::faults::{self, FaultError, FaultPlan};
use super::proxy::{self, InspectConfig};
use crate::cli::InspectArgs;
use crate::transport::endpoint::ServerUrl;
use crate::transport::tls::{self, TlsError};
use crate::transport::ws::Connector;
use crate::wire::decode::DecodeOptions;
use crate::wire::filter::Filter;
use crate::wire::sink::{self, RecordCounts, SinkConfig};

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("--upstream: {0}")]
    UpstreamUrl(String),
    #[error("--upstream: {0}")]
    Upstream(String),
    #[error(transparent)]
    Fault(#[from] FaultError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot write the records: {0}")]
    Output(std::io::Error),
}

impl InspectError {
    /// Usage mistakes are exit code 2, the rest 1.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            InspectError::Fault(_) | InspectError::Tls(_) | InspectError::UpstreamUrl(_)
        )
    }
}

/// The fault plan the flags ask for.
pub fn fault_plan(args: &InspectArgs, seed: u64) -> Result<FaultPlan, FaultError> {
    Ok(FaultPlan {
        drop: args
            .drop
            .as_deref()
            .map(|p| faults::parse_percent("--drop", p))
            .transpose()?
            .unwrap_or(0.0),
        duplicate: args
            .duplicate
            .as_deref()
            .map(|p| faults::parse_percent("--duplicate", p))
            .transpose()?
            .unwrap_or(0.0),
        delay: args.delay.as_deref().map(faults::parse_delay).transpose()?,
        close_after: args.close_after,
        filter: Filter::all(&args.fault_filter),
        seed,
    })
}

/// Resolves `--upstream` into a connector.
pub async fn upstream(url: &str, insecure: bool) -> Result<Connector, InspectError> {
    if url == "builtin" {
        return Err(InspectError::UpstreamUrl(
            "\"builtin\" is not an address: start `volley serve` and give its URL".into(),
        ));
    }
    let ServerUrl {
        tls, host, port, ..
    } = ServerUrl::parse(url, true).map_err(InspectError::UpstreamUrl)?;
    let addr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| InspectError::Upstream(format!("cannot resolve {host}: {e}")))?
        .next()
        .ok_or_else(|| InspectError::Upstream(format!("{host} has no address")))?;
    let tls = if tls {
        Some(tls::client_config(insecure)?)
    } else {
        None
    };
    Connector::new(addr, &host, port, tls).map_err(|e| InspectError::Upstream(e.to_string()))
}

/// Runs `volley inspect` until `shutdown` completes (or `--duration` passes).
pub async fn run(
    args: InspectArgs,
    shutdown: impl Future<Output = ()>,
) -> Result<RecordCounts, InspectError> {
    let seed = args.seed.unwrap_or_else(|| fastrand::u64(..));
    let faults = fault_plan(&args, seed)?;
    let tls = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => Some(tls::server_config(cert, key)?),
        _ => None,
    };
    let connector = upstream(&args.upstream, args.insecure).await?;
    let config = InspectConfig {
        listen: args.listen,
        upstream: connector,
        upstream_url: args.upstream.clone(),
        tls,
        decode: DecodeOptions {
            max_payload: args.max_payload,
            show_secrets: args.show_secrets,
        },
        faults: Arc::new(faults),
    };
    let inspector = proxy::bind(config)
        .await
        .map_err(|source| InspectError::Listen {
            addr: args.listen,
            source,
        })?;
    let scheme = if args.cert.is_some() { "https" } else { "http" };
    eprintln!(
        "volley inspect: listening on {scheme}://{} (ws{}://), relaying to {}{}",
        inspector.local_addr(),
        if args.cert.is_some() { "s" } else { "" },
        args.upstream,
        if inspector_faults(&args) {
            format!(", injecting faults (seed {seed})")
        } else {
            String::new()
        }
    );
    let (sink, writer) = sink::spawn_writer(SinkConfig {
        print: !args.quiet,
        color: crate::wire::print::use_color(args.no_color, std::io::stdout().is_terminal()),
        filter: Filter::all(&args.filter),
        jsonl: args.jsonl.clone(),
        ..SinkConfig::default()
    })
    .map_err(InspectError::Output)?;
    let duration = args.duration.map(|d| d.0);
    let stop = async move {
        match duration {
            Some(d) => {
                tokio::select! {
                    _ = shutdown => {}
                    _ = tokio::time::sleep(d) => {}
                }
            }
            None => shutdown.await,
        }
    };
    inspector.run(sink, stop).await;
    match writer.await {
        Ok(result) => result.map_err(InspectError::Output),
        Err(e) => Err(InspectError::Output(std::io::Error::other(e.to_string()))),
    }
}

fn inspector_faults(args: &InspectArgs) -> bool {
    args.drop.is_some()
        || args.duplicate.is_some()
        || args.delay.is_some()
        || args.close_after.is_some()
}
