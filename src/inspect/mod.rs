//! `volley inspect`: a transparent, frame-logging reverse proxy with fault injection. Records are
//! [`crate::wire`]'s: the proxy decodes what it relays and hands records to a sink.
//!
//! - [`proxy`]: the listener and each client's connection to the upstream, with the HTTP and
//!   WebSocket relays in [`relay`];
//! - [`faults`]: what to break (drop, duplicate, delay, close), decided per frame;
//! - here: [`run`], the inspector from typed [`InspectSettings`] until stopped.

pub mod faults;
pub mod proxy;
pub mod relay;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::transport::endpoint::ServerUrl;
use crate::transport::tls::{self, TlsError};
use crate::transport::ws::Connector;
use crate::wire::decode::DecodeOptions;
use crate::wire::sink::{self, RecordCounts, SinkConfig};
use faults::{FaultError, FaultPlan};
use proxy::InspectConfig;

/// What `volley inspect` does, typed.
#[derive(Debug, Clone)]
pub struct InspectSettings {
    /// Where clients connect instead of to the server.
    pub listen: SocketAddr,
    /// The server: ws://, wss://, http:// or https://host:port.
    pub upstream: String,
    /// Accept any TLS certificate from the upstream.
    pub insecure: bool,
    /// TLS on the listening side: the certificate chain and the key, PEM files.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub decode: DecodeOptions,
    /// Where records go: printed, filtered, written as JSON lines.
    pub sink: SinkConfig,
    pub faults: FaultPlan,
    /// Fault flags were given: the start line says so, with the seed.
    pub faults_given: bool,
    /// Stop after this long (default: when the shutdown future resolves).
    pub duration: Option<Duration>,
}

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

/// Runs the inspector until `shutdown` completes (or `duration` passes); what it saw, counted.
pub async fn run(
    settings: InspectSettings,
    shutdown: impl Future<Output = ()>,
) -> Result<RecordCounts, InspectError> {
    let tls = match &settings.tls {
        Some((cert, key)) => Some(tls::server_config(cert, key)?),
        None => None,
    };
    let connector = upstream(&settings.upstream, settings.insecure).await?;
    let config = InspectConfig {
        listen: settings.listen,
        upstream: connector,
        upstream_url: settings.upstream.clone(),
        tls,
        decode: settings.decode.clone(),
        faults: Arc::new(settings.faults.clone()),
    };
    let inspector = proxy::bind(config)
        .await
        .map_err(|source| InspectError::Listen {
            addr: settings.listen,
            source,
        })?;
    let secure = settings.tls.is_some();
    eprintln!(
        "volley inspect: listening on {}://{} (ws{}://), relaying to {}{}",
        if secure { "https" } else { "http" },
        inspector.local_addr(),
        if secure { "s" } else { "" },
        settings
            .decode
            .secrets
            .redact_query(&settings.upstream, None),
        if settings.faults_given {
            format!(", injecting faults (seed {})", settings.faults.seed)
        } else {
            String::new()
        }
    );
    let (sink, writer) = sink::spawn_writer(settings.sink).map_err(InspectError::Output)?;
    let duration = settings.duration;
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
