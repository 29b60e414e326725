//! The connection parts of a plan: the target and its URL, the protocol with its Socket.IO
//! options, the extra headers and the reconnect policy.

use super::{Errors, Protocol, ReconnectPlan, Target};
use crate::metrics::ConnectPhase;
use crate::protocol::engineio::{Version, encode_query_value};
use crate::protocol::socketio::check_namespace;
use crate::scenario::model::{Scenario, Transport};
use crate::scenario::{ScenarioError, Source};
use crate::transport::endpoint::{ServerUrl, parse_header};
use crate::transport::engine::EngineOptions;
use crate::transport::socketio::SocketIoOptions;
use crate::units::parse_duration;

/// How every client of the plan connects.
pub(super) struct Connection {
    pub target: Target,
    pub protocol: Protocol,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub reconnect: Option<ReconnectPlan>,
    /// The target URL's path and query: raw WebSocket groups connect there unless they say
    /// otherwise. (For Socket.IO the query went into the Engine.IO options.)
    pub url_path: Option<String>,
    /// Socket.IO: the namespace of groups that name none.
    pub default_namespace: String,
}

impl Connection {
    pub fn is_socketio(&self) -> bool {
        matches!(self.protocol, Protocol::SocketIo(_))
    }
}

/// The phases of connect that connections to this target with this protocol go through.
pub(super) fn phases(conn: &Connection) -> Vec<ConnectPhase> {
    let tls = matches!(conn.target, Target::Remote { tls: true, .. });
    let transport = match &conn.protocol {
        Protocol::Ws => None,
        Protocol::SocketIo(sio) => Some(sio.engine.transport),
    };
    ConnectPhase::ALL
        .into_iter()
        .filter(|&phase| match phase {
            ConnectPhase::Tcp => true,
            ConnectPhase::Tls => tls,
            // A polling session starts with plain HTTP requests; its upgrade is in EioUpgrade.
            ConnectPhase::Upgrade => matches!(transport, None | Some(Transport::Websocket)),
            ConnectPhase::EioOpen | ConnectPhase::SioConnect => transport.is_some(),
            ConnectPhase::EioUpgrade => transport == Some(Transport::PollingUpgrade),
        })
        .collect()
}

/// When a phase of connect is measured, for a threshold that names one the plan does not have.
pub(super) fn phase_condition(phase: ConnectPhase) -> &'static str {
    match phase {
        ConnectPhase::Tcp => "every connection has it",
        ConnectPhase::Tls => "the TLS handshake is measured for wss:// targets",
        ConnectPhase::Upgrade => {
            "the HTTP upgrade is measured for raw WebSocket and for Socket.IO over transport = \"websocket\""
        }
        ConnectPhase::EioOpen | ConnectPhase::SioConnect => {
            "it is a phase of Socket.IO connections"
        }
        ConnectPhase::EioUpgrade => {
            "the upgrade from polling is measured for Socket.IO with transport = \"polling-upgrade\""
        }
    }
}

pub(super) fn compile(
    scenario: &Scenario,
    source: &Source,
    err: Errors,
) -> Result<Connection, ScenarioError> {
    let is_sio = match scenario.protocol.get_ref().as_str() {
        "ws" => false,
        "socketio" => true,
        other => {
            return Err(err.of(
                &scenario.protocol,
                format!("unknown protocol `{other}`: use \"ws\" or \"socketio\""),
            ));
        }
    };
    let (target, mut url_path) =
        parse_target(scenario.target.get_ref(), is_sio).map_err(|m| err.of(&scenario.target, m))?;
    // Socket.IO reads a target URL as the official client does: its path is the namespace,
    // its query goes on every Engine.IO request.
    let mut url_query = String::new();
    if is_sio {
        if let Some(text) = url_path.take() {
            let (path, query) = text.split_once('?').unwrap_or((&text, ""));
            if !query.is_empty() {
                url_query = format!("&{query}");
            }
            if path != "/" && !path.is_empty() {
                check_namespace(path).map_err(|m| err.of(&scenario.target, m))?;
                url_path = Some(path.to_string());
            }
        }
    }
    let protocol = if is_sio {
        let mut plan = socketio_plan(scenario, source)?;
        plan.engine.query.insert_str(0, &url_query);
        Protocol::SocketIo(plan)
    } else {
        if let Some(sio) = &scenario.socketio {
            return Err(err.at(sio.span(), "[socketio] needs protocol = \"socketio\""));
        }
        Protocol::Ws
    };
    let headers = headers_plan(scenario, source)?;
    let reconnect = reconnect_plan(scenario, source)?;
    // A namespace written in [socketio], else the target URL's path (as the official client
    // reads it), else "/".
    let written_namespace = scenario
        .socketio
        .as_ref()
        .map(|sio| &sio.get_ref().namespace)
        .filter(|ns| !ns.span().is_empty());
    let default_namespace = match written_namespace {
        Some(ns) => ns.get_ref().clone(),
        None => url_path
            .clone()
            .filter(|_| is_sio)
            .unwrap_or_else(|| "/".into()),
    };
    Ok(Connection {
        target,
        protocol,
        headers,
        reconnect,
        url_path,
        default_namespace,
    })
}

/// Parses `builtin` or a `ws://` / `wss://` URL (also `http://` / `https://` for Socket.IO) into a
/// target and the URL's path, if it has one. For Socket.IO that path is the namespace, as the
/// official client reads it.
pub fn parse_target(text: &str, socketio: bool) -> Result<(Target, Option<String>), String> {
    if text == "builtin" {
        return Ok((Target::Builtin, None));
    }
    let ServerUrl {
        tls,
        host,
        port,
        path,
    } = ServerUrl::parse(text, socketio)?;
    Ok((Target::Remote { tls, host, port }, path))
}

fn socketio_plan(scenario: &Scenario, source: &Source) -> Result<SocketIoOptions, ScenarioError> {
    let Some(section) = &scenario.socketio else {
        return Ok(SocketIoOptions {
            engine: EngineOptions {
                transport: Transport::Websocket,
                version: Version::V4,
                path: "/socket.io/".into(),
                query: String::new(),
            },
            recovery: true,
        });
    };
    let sio = section.get_ref();
    check_namespace(sio.namespace.get_ref())
        .map_err(|m| source.error_at(sio.namespace.span(), m))?;
    let version = match sio.eio.get_ref() {
        4 => Version::V4,
        3 => Version::V3,
        other => {
            return Err(source.error_at(
                sio.eio.span(),
                format!("eio = {other}: volley speaks Engine.IO 4 (Socket.IO 3 and 4) and 3 (Socket.IO 2)"),
            ));
        }
    };
    if version == Version::V3 {
        let auth = sio.auth.as_ref().map(|a| a.span()).or_else(|| {
            scenario
                .groups
                .iter()
                .find_map(|g| g.auth.as_ref().map(|a| a.span()))
        });
        if let Some(span) = auth {
            return Err(source.error_at(
                span,
                "Socket.IO 2 servers (eio = 3) take no CONNECT auth: pass credentials in [socketio] query or headers",
            ));
        }
    }
    let mut path = sio.path.get_ref().clone();
    if !path.ends_with('/') {
        // As the official client does: engine.io servers match the path with its slash.
        path.push('/');
    }
    if !path.starts_with('/')
        || path.contains('?')
        || path.parse::<http::uri::PathAndQuery>().is_err()
    {
        return Err(source.error_at(
            sio.path.span(),
            format!("path `{path}` must start with `/` and be a URL path without a query"),
        ));
    }
    let mut query = String::new();
    if let Some(table) = &sio.query {
        for (key, value) in table.get_ref() {
            let value = match value {
                // Values with placeholders differ per user: compiled with the users' parts.
                toml::Value::String(s) if super::users::has_placeholder(s) => continue,
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => {
                    value.to_string()
                }
                _ => {
                    return Err(source.error_at(
                        table.span(),
                        format!("query `{key}` must be a string, number or boolean"),
                    ));
                }
            };
            query.push('&');
            query.push_str(&encode_query_value(key));
            query.push('=');
            query.push_str(&encode_query_value(&value));
        }
    }
    Ok(SocketIoOptions {
        engine: EngineOptions {
            transport: sio.transport,
            version,
            path,
            query,
        },
        recovery: sio.recovery,
    })
}

fn headers_plan(
    scenario: &Scenario,
    source: &Source,
) -> Result<Vec<(http::HeaderName, http::HeaderValue)>, ScenarioError> {
    let Some(table) = &scenario.headers else {
        return Ok(Vec::new());
    };
    let mut headers = Vec::new();
    for (name, value) in table.get_ref() {
        let err = |m: String| source.error_at(table.span(), m);
        let text = value
            .as_str()
            .ok_or_else(|| err(format!("header `{name}` must be a string")))?;
        // Values with placeholders differ per user: compiled with the users' parts.
        if super::users::has_placeholder(text) {
            continue;
        }
        headers.push(parse_header(name, text).map_err(err)?);
    }
    Ok(headers)
}

fn reconnect_plan(
    scenario: &Scenario,
    source: &Source,
) -> Result<Option<ReconnectPlan>, ScenarioError> {
    let Some(section) = &scenario.reconnect else {
        return Ok(None);
    };
    let r = section.get_ref();
    if !r.enabled {
        return Ok(None);
    }
    let backoff = r.backoff.get_ref();
    let bad = |m: String| source.error_at(r.backoff.span(), m);
    let (first, last) = backoff.split_once("..").unwrap_or((backoff, backoff));
    let initial = parse_duration(first.trim()).map_err(|e| bad(format!("backoff: {e}")))?;
    let max = parse_duration(last.trim()).map_err(|e| bad(format!("backoff: {e}")))?;
    if initial.is_zero() || max < initial {
        return Err(bad(format!(
            "backoff `{backoff}` must be FIRST..LONGEST with 0 < FIRST <= LONGEST, e.g. \"100ms..5s\""
        )));
    }
    let factor = *r.factor.get_ref();
    if !(1.0..=100.0).contains(&factor) {
        return Err(source.error_at(r.factor.span(), "factor must be between 1 and 100"));
    }
    let jitter = *r.jitter.get_ref();
    if !(0.0..=1.0).contains(&jitter) {
        return Err(source.error_at(r.jitter.span(), "jitter must be between 0 and 1"));
    }
    Ok(Some(ReconnectPlan {
        initial,
        max,
        factor,
        jitter,
        max_attempts: r.max_attempts,
    }))
}
