//! Before time zero: the target resolved (or the builtin server started) once, source addresses
//! chosen for the run's connections, and one connection tried, so that a wrong target fails the
//! run at once rather than every client.

use super::{RunError, RunOptions, builtin};
use crate::scenario::{Plan, Target};
use crate::serve::ServerHandle;
use crate::transport::source;
use crate::transport::tls;
use crate::transport::ws::Connector;

/// Where the clients connect, checked.
pub struct ReachedTarget {
    /// The in-process builtin server, stopped when the run ends.
    pub server: Option<ServerHandle>,
    pub connector: Connector,
    /// Where HTTP steps go, when the plan has any: `[http] base`, else the target.
    pub http: Option<Connector>,
    /// The URL of the first group, for the summary and run.json, secret query values hidden.
    pub url: String,
}

/// Resolves the target, chooses source addresses for `connections` and tries one connection.
pub async fn reach(
    plan: &Plan,
    options: &RunOptions,
    connections: u64,
) -> Result<ReachedTarget, RunError> {
    let (server, connector) = connector(plan, options.insecure).await?;
    let sources = source::choose(
        connector.addr(),
        connections,
        options.source_ips.as_deref(),
        source::ports_per_source(),
    )?;
    if let Some(note) = &sources.note {
        eprintln!("{note}");
    }
    let connector = connector.with_sources(sources.sources);
    let url = match plan.socketio() {
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
    let url = options.secrets.redact_query(&url, None).into_owned();
    let unreachable = |detail: String| RunError::Unreachable {
        url: url.clone(),
        detail,
    };
    match tokio::time::timeout(plan.connect_timeout, connector.connect_transport()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(unreachable(e.to_string())),
        Err(_) => {
            return Err(unreachable(format!(
                "no answer within {:?}",
                plan.connect_timeout
            )));
        }
    }
    let http = match (&plan.http.base, plan.has_http_steps()) {
        (_, false) => None,
        (None, true) => Some(connector.clone()),
        (Some(base), true) => Some(remote(base, options.insecure).await?),
    };
    Ok(ReachedTarget {
        server,
        connector,
        http,
        url,
    })
}

/// The builtin server in-process, or a remote one resolved once.
async fn connector(
    plan: &Plan,
    insecure: bool,
) -> Result<(Option<ServerHandle>, Connector), RunError> {
    match &plan.target {
        Target::Builtin => {
            let server = builtin::start(1)?;
            let addr = server.addr();
            let connector = Connector::new(addr, &addr.ip().to_string(), addr.port(), None)
                .expect("plain connector");
            Ok((Some(server), connector.with_headers(plan.headers.clone())))
        }
        remote @ Target::Remote { .. } => Ok((
            None,
            self::remote(remote, insecure)
                .await?
                .with_headers(plan.headers.clone()),
        )),
    }
}

/// A remote server resolved once, with TLS for `wss://` (or `https://`).
pub(super) async fn remote(target: &Target, insecure: bool) -> Result<Connector, RunError> {
    match target {
        Target::Builtin => unreachable!("the builtin server is started, not resolved"),
        Target::Remote {
            tls: secure,
            host,
            port,
        } => {
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
            let tls = match secure {
                true => Some(tls::client_config(insecure)?),
                false => None,
            };
            Connector::new(addr, host, *port, tls).map_err(|e| RunError::Unreachable {
                url: format!("{host}:{port}"),
                detail: e.to_string(),
            })
        }
    }
}
