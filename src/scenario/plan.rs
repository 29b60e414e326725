//! Compiling a parsed scenario into a [`Plan`]: every check that needs more than one value, with the
//! position of the value at fault, and every template compiled once.

use std::time::Duration;

use serde::Serialize;
use toml::Spanned;

use super::model::{Scenario, StampMode, Transport};
use super::template::{Shape, StampPlacement, Template};
use super::threshold::{GateThreshold, Origin as WrittenIn, Threshold, ThresholdError, check_name};
use super::{ScenarioError, Source};
use crate::protocol::engineio::{Version, encode_query_value};
use crate::protocol::pointer::JsonPointer;
use crate::protocol::socketio::{self, check_namespace};
use crate::transport::endpoint::{ServerUrl, parse_header};
use crate::transport::engine::EngineOptions;
use crate::transport::socketio::SocketIoOptions;
use crate::units::{Ramp, Rate, parse_duration};

/// Where the clients connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// The embedded server, started in-process on a free port.
    Builtin,
    /// A server at `host:port`; `tls` for `wss://`.
    Remote { tls: bool, host: String, port: u16 },
}

/// A scenario ready to run: overrides applied, values checked, templates compiled.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The scenario as resolved (after overrides), kept for run.json.
    pub scenario: Scenario,
    pub name: String,
    pub target: Target,
    pub duration: Duration,
    pub ramp: Ramp,
    pub drain: Duration,
    pub connect_timeout: Duration,
    pub seed: Option<u64>,
    pub protocol: Protocol,
    /// Extra headers on every connection request.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub reconnect: Option<ReconnectPlan>,
    pub groups: Vec<GroupPlan>,
    pub expects: Vec<ExpectPlan>,
    /// Index of the `ack` metric, when some emit asks for acks.
    pub ack_metric: Option<usize>,
    /// Index of the `reconnect` metric (time from losing a connection to having it back).
    pub reconnect_metric: Option<usize>,
    /// The CI gate, from `[thresholds]` (and `--threshold`, added by the command).
    pub thresholds: Vec<GateThreshold>,
}

#[derive(Debug, Clone)]
pub enum Protocol {
    Ws,
    SocketIo(SocketIoOptions),
}

#[derive(Debug, Clone)]
pub struct ReconnectPlan {
    pub initial: Duration,
    pub max: Duration,
    pub factor: f64,
    pub jitter: f64,
    pub max_attempts: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct GroupPlan {
    pub name: String,
    pub clients: u64,
    /// Raw WebSocket: request path and query, e.g. `/broadcast?room=a`.
    pub path: String,
    /// Socket.IO namespace, e.g. `/` or `/admin`.
    pub namespace: String,
    /// Socket.IO CONNECT auth payload (a JSON object).
    pub auth: Option<Template>,
    /// Drop the connection this long after each connect.
    pub disconnect_every: Option<Duration>,
    pub on_connect: Vec<StepPlan>,
    pub emits: Vec<EmitPlan>,
}

/// One message to send: a raw WebSocket payload, or a Socket.IO event with its arguments.
#[derive(Debug, Clone)]
pub struct Message {
    /// The event name as a JSON string (Socket.IO only).
    pub event_json: String,
    /// Raw WebSocket: exactly one, the payload. Socket.IO: the arguments; with `binary` the first
    /// is sent as a binary attachment.
    pub args: Vec<Template>,
    pub binary: bool,
}

#[derive(Debug, Clone)]
pub enum StepPlan {
    Emit(Message),
    Wait(Duration),
}

#[derive(Debug, Clone)]
pub struct EmitPlan {
    pub event: String,
    pub message: Message,
    pub rate: Rate,
    /// Index of the expect that tracks this event, if any; that index is the stamp's stream.
    pub stream: Option<u32>,
    pub placement: Placement,
    /// Socket.IO: ask for an acknowledgement.
    pub ack: bool,
}

/// Where an emit's stamp goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Into the payload (raw WebSocket) or the first argument (Socket.IO).
    In(StampPlacement),
    /// Socket.IO: as an extra string argument after the others.
    Arg,
}

#[derive(Debug, Clone)]
pub struct ExpectPlan {
    /// The latency metric's name.
    pub name: String,
    pub event: String,
    pub within: Option<Duration>,
    pub origin: Origin,
    /// Receiving groups (group indexes) of a group's or the server's events; for echoes, none.
    pub to: Vec<u16>,
}

/// Who emits the events an expect tracks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Each client's own events, echoed back to it.
    Own,
    /// The members of this group (index); every member of `to` must get every event.
    Group(u16),
    /// The server: its sequence numbers (and send times) are read from the payload.
    Server {
        /// Where the sequence number is in a payload: the scenario's JSON pointer, applied for
        /// Socket.IO to the event's first argument (element 1 of the event array).
        seq: JsonPointer,
        /// Where the send time is, in epoch milliseconds or microseconds (likewise).
        timestamp: Option<JsonPointer>,
        /// Microseconds per unit of `timestamp`.
        timestamp_us: u64,
        /// Socket.IO: how an event of this name starts, `["NAME"` with the name as JSON writes
        /// it; other events are passed over without a parse. `None` for raw WebSocket.
        event_prefix: Option<Vec<u8>>,
    },
}

impl ExpectPlan {
    /// Whether members of group `group` receive this expect's events from others or the server.
    pub fn received_by(&self, group: u16) -> bool {
        self.origin != Origin::Own && self.to.contains(&group)
    }
}

impl Plan {
    pub fn total_clients(&self) -> u64 {
        self.groups.iter().map(|g| g.clients).sum()
    }

    /// The client ids of group `group`: ids are given in group order, from 0.
    pub fn client_ids(&self, group: u16) -> std::ops::Range<u64> {
        let first: u64 = self.groups[..group as usize]
            .iter()
            .map(|g| g.clients)
            .sum();
        first..first + self.groups[group as usize].clients
    }

    /// The latency metrics in recording order: `connect`, one per expect, then `ack` and
    /// `reconnect` when used.
    pub fn metric_names(&self) -> Vec<String> {
        let mut names = vec!["connect".to_string()];
        names.extend(self.expects.iter().map(|e| e.name.clone()));
        if self.ack_metric.is_some() {
            names.push("ack".into());
        }
        if self.reconnect_metric.is_some() {
            names.push("reconnect".into());
        }
        names
    }

    /// Connections each client holds: two for long-polling (a GET and a POST), else one.
    pub fn connections_per_client(&self) -> u64 {
        self.socketio()
            .map_or(1, |sio| sio.engine.transport.connections())
    }

    pub fn socketio(&self) -> Option<&SocketIoOptions> {
        match &self.protocol {
            Protocol::SocketIo(sio) => Some(sio),
            Protocol::Ws => None,
        }
    }

    pub fn compile(scenario: Scenario, source: &Source) -> Result<Plan, ScenarioError> {
        let at = |span: &std::ops::Range<usize>, message: String| -> ScenarioError {
            if span.is_empty() && span.start == 0 {
                ScenarioError::Override {
                    path: source.path.clone(),
                    message,
                }
            } else {
                source.error_at(span.clone(), message)
            }
        };
        let spanned_err = |s: &Spanned<String>, message: String| at(&s.span(), message);

        if scenario.name.trim().is_empty() {
            return Err(source.error_at(0..0, "`name` must not be empty"));
        }
        let is_sio = match scenario.protocol.get_ref().as_str() {
            "ws" => false,
            "socketio" => true,
            other => {
                return Err(spanned_err(
                    &scenario.protocol,
                    format!("unknown protocol `{other}`: use \"ws\" or \"socketio\""),
                ));
            }
        };
        let (target, mut url_path) = parse_target(scenario.target.get_ref(), is_sio)
            .map_err(|m| spanned_err(&scenario.target, m))?;
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
                    check_namespace(path).map_err(|m| spanned_err(&scenario.target, m))?;
                    url_path = Some(path.to_string());
                }
            }
        }
        let protocol = if is_sio {
            let mut plan = socketio_plan(&scenario, source)?;
            plan.engine.query.insert_str(0, &url_query);
            Protocol::SocketIo(plan)
        } else {
            if let Some(sio) = &scenario.socketio {
                return Err(at(
                    &sio.span(),
                    "[socketio] needs protocol = \"socketio\"".into(),
                ));
            }
            Protocol::Ws
        };
        let headers = headers_plan(&scenario, source)?;
        let reconnect = reconnect_plan(&scenario, source)?;
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
        if scenario.groups.is_empty() {
            return Err(source.error_at(
                0..0,
                "the scenario has no [[group]]: add one with a name and a number of clients",
            ));
        }

        let mut expects: Vec<ExpectPlan> = Vec::new();
        let group_index = |name: &Spanned<String>| -> Result<u16, ScenarioError> {
            scenario
                .groups
                .iter()
                .position(|g| g.name.get_ref() == name.get_ref())
                .map(|i| i as u16)
                .ok_or_else(|| {
                    let known: Vec<&str> = scenario
                        .groups
                        .iter()
                        .map(|g| g.name.get_ref().as_str())
                        .collect();
                    spanned_err(
                        name,
                        format!(
                            "no group `{}`: use \"self\", \"server\" or one of {}",
                            name.get_ref(),
                            known.join(", ")
                        ),
                    )
                })
        };
        for expect in &scenario.expects {
            let source = match expect.from.get_ref().as_str() {
                "self" => Origin::Own,
                "server" => {
                    let seq = expect.seq.as_ref().ok_or_else(|| {
                        spanned_err(
                            &expect.from,
                            "from = \"server\" needs `seq`, the JSON pointer to the server's sequence number (e.g. \"/seq\")".into(),
                        )
                    })?;
                    let pointer = |text: &Spanned<String>| match JsonPointer::parse(text.get_ref())
                    {
                        // Socket.IO: into the first argument, after the event name.
                        Some(p) if is_sio => Ok(p.under_index(1)),
                        Some(p) => Ok(p),
                        None => Err(spanned_err(
                            text,
                            format!(
                                "`{}` is not a JSON pointer: it starts with `/`, e.g. \"/seq\"",
                                text.get_ref()
                            ),
                        )),
                    };
                    let seq = pointer(seq)?;
                    let timestamp = expect.timestamp.as_ref().map(pointer).transpose()?;
                    let timestamp_us =
                        match expect.timestamp_unit.as_ref().map(|u| u.get_ref().as_str()) {
                            None | Some("ms") => 1000,
                            Some("us") => 1,
                            Some(other) => {
                                let unit = expect.timestamp_unit.as_ref().expect("matched Some");
                                return Err(spanned_err(
                                    unit,
                                    format!("timestamp_unit `{other}`: use \"ms\" or \"us\""),
                                ));
                            }
                        };
                    let event_prefix = is_sio.then(|| {
                        let name = serde_json::to_string(expect.event.get_ref())
                            .expect("a string serializes");
                        format!("[{name}").into_bytes()
                    });
                    Origin::Server {
                        seq,
                        timestamp,
                        timestamp_us,
                        event_prefix,
                    }
                }
                _ => Origin::Group(group_index(&expect.from)?),
            };
            let server_only = [&expect.seq, &expect.timestamp, &expect.timestamp_unit];
            let misplaced = server_only.into_iter().flatten().next();
            if let (false, Some(key)) = (matches!(source, Origin::Server { .. }), misplaced) {
                return Err(spanned_err(
                    key,
                    "`seq`, `timestamp` and `timestamp_unit` are for from = \"server\"".into(),
                ));
            }
            let to = match (&source, &expect.to) {
                (Origin::Own, Some(to)) => {
                    return Err(at(&to.span(), "`to` is for a group's or the server's events; an echo goes back to its sender".into()));
                }
                (Origin::Own, None) => Vec::new(),
                (_, Some(to)) => {
                    let mut groups = Vec::new();
                    for name in to.get_ref() {
                        groups.push(group_index(name)?);
                    }
                    if groups.is_empty() {
                        return Err(at(&to.span(), "`to` names no group".into()));
                    }
                    groups
                }
                (_, None) => (0..scenario.groups.len() as u16).collect(),
            };
            let (name, name_span) = match &expect.name {
                Some(n) => (n.get_ref().clone(), n.span()),
                None => (expect.event.get_ref().clone(), expect.event.span()),
            };
            check_identifier(&name).map_err(|m| at(&name_span, format!("metric name: {m}")))?;
            if name == "connect" || expects.iter().any(|e| e.name == name) {
                return Err(at(
                    &name_span,
                    format!(
                        "metric name `{name}` is already used; give this expect another `name`"
                    ),
                ));
            }
            if expects.iter().any(|e| &e.event == expect.event.get_ref()) {
                return Err(spanned_err(
                    &expect.event,
                    format!(
                        "event `{}` is already tracked by another expect",
                        expect.event.get_ref()
                    ),
                ));
            }
            let emitted = scenario
                .groups
                .iter()
                .enumerate()
                .filter(|(i, _)| match source {
                    Origin::Group(g) => *i as u16 == g,
                    _ => true,
                })
                .flat_map(|(_, g)| &g.emit)
                .any(|e| e.event.get_ref() == expect.event.get_ref());
            if !emitted && !matches!(source, Origin::Server { .. }) {
                return Err(spanned_err(
                    &expect.event,
                    format!(
                        "no group emits event `{}`, so nothing can be expected back",
                        expect.event.get_ref()
                    ),
                ));
            }
            expects.push(ExpectPlan {
                name,
                event: expect.event.get_ref().clone(),
                within: expect.within.map(|d| d.0),
                origin: source,
                to,
            });
        }

        let mut groups: Vec<GroupPlan> = Vec::new();
        for group in &scenario.groups {
            let name = group.name.get_ref().clone();
            check_identifier(&name)
                .map_err(|m| spanned_err(&group.name, format!("group name: {m}")))?;
            if groups.iter().any(|g| g.name == name) {
                return Err(spanned_err(
                    &group.name,
                    format!("group `{name}` is defined twice"),
                ));
            }
            let written = group.path.as_ref().or(scenario.path.as_ref());
            if let Some(path) = written {
                if is_sio {
                    return Err(spanned_err(
                        path,
                        "`path` is for raw WebSocket; Socket.IO uses [socketio] path and `namespace`"
                            .into(),
                    ));
                }
                let text = path.get_ref();
                let valid =
                    text.starts_with('/') && text.parse::<http::uri::PathAndQuery>().is_ok();
                if !valid {
                    return Err(spanned_err(
                        path,
                        format!(
                            "path `{text}` must start with `/` and be a valid URL path and query (no spaces)"
                        ),
                    ));
                }
            }
            let path = written
                .map(|p| p.get_ref().clone())
                .or_else(|| url_path.clone())
                .unwrap_or_else(|| match target {
                    Target::Builtin => "/echo".to_string(),
                    Target::Remote { .. } => "/".to_string(),
                });
            if !is_sio {
                if let Some(ns) = &group.namespace {
                    return Err(spanned_err(
                        ns,
                        "`namespace` needs protocol = \"socketio\"".into(),
                    ));
                }
                if let Some(auth) = &group.auth {
                    return Err(at(
                        &auth.span(),
                        "`auth` needs protocol = \"socketio\"".into(),
                    ));
                }
            }
            let namespace = match &group.namespace {
                Some(ns) => {
                    check_namespace(ns.get_ref()).map_err(|m| spanned_err(ns, m))?;
                    ns.get_ref().clone()
                }
                None => default_namespace.clone(),
            };
            let auth = group.auth.as_ref().or(scenario
                .socketio
                .as_ref()
                .and_then(|s| s.get_ref().auth.as_ref()));
            let auth = match auth {
                Some(table) => Some(
                    Template::compile(&toml::Value::Table(table.get_ref().clone()))
                        .map_err(|m| at(&table.span(), m))?,
                ),
                None => None,
            };
            let mut on_connect = Vec::new();
            for step in &group.on_connect {
                let span = step.span();
                let step = step.get_ref();
                match (&step.emit, step.wait) {
                    (Some(event), None) => {
                        let message = message_plan(
                            is_sio,
                            event,
                            step.data.as_ref(),
                            step.args.as_ref(),
                            step.binary,
                        )
                        .map_err(|(s, m)| at(&s.unwrap_or(span.clone()), m))?;
                        on_connect.push(StepPlan::Emit(message));
                    }
                    (None, Some(wait)) if step.data.is_none() && step.args.is_none() => {
                        on_connect.push(StepPlan::Wait(wait.0))
                    }
                    _ => {
                        return Err(at(
                            &span,
                            "each on_connect step is either { emit = \"...\", data = ... } or { wait = \"1s\" }".into(),
                        ));
                    }
                }
            }
            let mut emits = Vec::new();
            for emit in &group.emit {
                let event = emit.event.get_ref().clone();
                let message = message_plan(
                    is_sio,
                    &event,
                    emit.data.as_ref(),
                    emit.args.as_ref(),
                    emit.binary,
                )
                .map_err(|(s, m)| at(&s.unwrap_or(emit.event.span()), m))?;
                let group_index = groups.len() as u16;
                let stream = expects
                    .iter()
                    .position(|e| {
                        e.event == event
                            && match e.origin {
                                Origin::Own => true,
                                Origin::Group(g) => g == group_index,
                                Origin::Server { .. } => false,
                            }
                    })
                    .map(|i| i as u32);
                let ack = match &emit.ack {
                    Some(ack) if *ack.get_ref() && !is_sio => {
                        return Err(at(
                            &ack.span(),
                            "`ack` needs protocol = \"socketio\": raw WebSocket has no acknowledgements".into(),
                        ));
                    }
                    Some(ack) => *ack.get_ref(),
                    None => false,
                };
                let placement = placement(is_sio, emit.stamp, &message, stream.is_some())
                    .map_err(|m| spanned_err(&emit.event, format!("event `{event}`: {m}")))?;
                emits.push(EmitPlan {
                    event,
                    message,
                    rate: emit.rate.0,
                    stream,
                    placement,
                    ack,
                });
            }
            groups.push(GroupPlan {
                name,
                clients: group.clients.0,
                path,
                namespace,
                auth,
                disconnect_every: group.disconnect_every.map(|d| d.0).filter(|d| !d.is_zero()),
                on_connect,
                emits,
            });
        }

        let mut next_metric = 1 + expects.len();
        let mut take_metric = |used: bool| {
            used.then(|| {
                next_metric += 1;
                next_metric - 1
            })
        };
        let ack_metric = take_metric(groups.iter().flat_map(|g| &g.emits).any(|e| e.ack));
        let reconnect_metric = take_metric(reconnect.is_some());

        let mut plan = Plan {
            name: scenario.name.clone(),
            target,
            duration: scenario.duration.0,
            ramp: scenario.ramp,
            drain: scenario.drain.0,
            connect_timeout: scenario.connect_timeout.0,
            seed: scenario.seed,
            protocol,
            headers,
            reconnect,
            groups,
            expects,
            ack_metric,
            reconnect_metric,
            thresholds: Vec::new(),
            scenario,
        };
        plan.thresholds = thresholds_plan(&plan, source)?;
        Ok(plan)
    }

    /// Whether a threshold names a figure this run will have; what is wrong if not.
    pub fn check_threshold(&self, threshold: &Threshold) -> Result<(), String> {
        let expects: Vec<String> = self.expects.iter().map(|e| e.name.clone()).collect();
        check_name(
            &threshold.metric,
            threshold.stat,
            &self.metric_names(),
            &expects,
        )
    }
}

/// `[thresholds]`: each key a figure (`fanout.p99`), each value `"OP VALUE"`, a table with `limit`,
/// `abort` and `abort_after`, or a list of those. Errors point into the key or the value.
fn thresholds_plan(plan: &Plan, source: &Source) -> Result<Vec<GateThreshold>, ScenarioError> {
    let mut entries: Vec<_> = plan.scenario.thresholds.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    let mut out = Vec::new();
    for (key, value) in entries {
        let items: Vec<&toml::Value> = match value.get_ref() {
            toml::Value::Array(items) => items.iter().collect(),
            one => vec![one],
        };
        if items.is_empty() {
            return Err(source.error_at(value.span(), "an empty list of thresholds"));
        }
        for item in items {
            let (limit, abort, abort_after) = match item {
                toml::Value::String(limit) => (limit.as_str(), false, Duration::ZERO),
                toml::Value::Table(table) => {
                    threshold_table(table).map_err(|m| source.error_at(value.span(), m))?
                }
                _ => {
                    return Err(source.error_at(
                        value.span(),
                        format!(
                            "a threshold is \"OP VALUE\" (e.g. \"< 50ms\") or a table \
                             {{ limit = \"< 50ms\", abort = true }}; `{}` has neither",
                            key.get_ref()
                        ),
                    ));
                }
            };
            let text = format!("{} {limit}", key.get_ref());
            let threshold: Threshold = text.parse().map_err(|e: ThresholdError| {
                // Into the key, or into the value when it is a plain string written as is.
                let key_chars = key.get_ref().chars().count();
                let quoted = source.text[key.span().start..].starts_with(['"', '\'']);
                let at = if e.column <= key_chars {
                    let key_text = &source.text[key.span().start + quoted as usize..];
                    key.span().start
                        + quoted as usize
                        + key_text
                            .char_indices()
                            .nth(e.column - 1)
                            .map_or(0, |(i, _)| i)
                } else if matches!(value.get_ref(), toml::Value::String(_)) {
                    value.span().start
                        + 1
                        + limit
                            .char_indices()
                            .nth(e.column.saturating_sub(key_chars + 2))
                            .map_or(limit.len(), |(i, _)| i)
                } else {
                    value.span().start
                };
                source.error_at(at..at, e.message)
            })?;
            plan.check_threshold(&threshold)
                .map_err(|m| source.error_at(key.span(), m))?;
            out.push(GateThreshold {
                threshold,
                origin: WrittenIn::Scenario,
                abort,
                abort_after,
            });
        }
    }
    Ok(out)
}

/// `{ limit = "< 50ms", abort = true, abort_after = "10s" }`.
fn threshold_table(table: &toml::Table) -> Result<(&str, bool, Duration), String> {
    let mut limit = None;
    let mut abort = false;
    let mut abort_after = Duration::ZERO;
    for (key, value) in table {
        match (key.as_str(), value) {
            ("limit", toml::Value::String(s)) => limit = Some(s.as_str()),
            ("abort", toml::Value::Boolean(b)) => abort = *b,
            ("abort_after", toml::Value::String(s)) => {
                abort_after = parse_duration(s).map_err(|e| e.to_string())?
            }
            ("limit" | "abort" | "abort_after", _) => {
                return Err(format!(
                    "`{key}` is {}",
                    match key.as_str() {
                        "limit" => "a string such as \"< 50ms\"",
                        "abort" => "true or false",
                        _ => "a duration such as \"10s\"",
                    }
                ));
            }
            (other, _) => {
                return Err(format!(
                    "unknown key `{other}` in a threshold: use limit, abort, abort_after"
                ));
            }
        }
    }
    let limit = limit.ok_or("a threshold table needs `limit`, e.g. limit = \"< 50ms\"")?;
    Ok((limit, abort, abort_after))
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

/// Compiles what one emit or on_connect step sends. Errors carry the span at fault, when known.
fn message_plan(
    socketio: bool,
    event: &str,
    data: Option<&Spanned<toml::Value>>,
    args: Option<&Spanned<Vec<toml::Value>>>,
    binary: bool,
) -> Result<Message, (Option<std::ops::Range<usize>>, String)> {
    let mut event_json = String::new();
    socketio::push_json_string(&mut event_json, event);
    if !socketio {
        if let Some(args) = args {
            return Err((
                Some(args.span()),
                "`args` is for Socket.IO events; a raw WebSocket message has one `data`".into(),
            ));
        }
        let template = match data {
            Some(data) => Template::compile(data.get_ref()).map_err(|m| (Some(data.span()), m))?,
            None => Template::parse(event, false).map_err(|m| (None, m))?,
        };
        return Ok(Message {
            event_json,
            args: vec![template],
            binary,
        });
    }
    let values: Vec<(&toml::Value, std::ops::Range<usize>)> = match (data, args) {
        (Some(_), Some(args)) => {
            return Err((
                Some(args.span()),
                "give either `data` (one argument) or `args` (several), not both".into(),
            ));
        }
        (Some(data), None) => vec![(data.get_ref(), data.span())],
        (None, Some(args)) => args.get_ref().iter().map(|v| (v, args.span())).collect(),
        (None, None) => Vec::new(),
    };
    if binary && values.is_empty() {
        return Err((
            None,
            "`binary = true` needs `data` to send as the binary argument".into(),
        ));
    }
    let mut templates = Vec::new();
    for (i, (value, span)) in values.into_iter().enumerate() {
        // A binary argument is sent as bytes: its text as written, not as a JSON value.
        let template = if binary && i == 0 {
            Template::compile(value)
        } else {
            Template::compile_arg(value)
        };
        templates.push(template.map_err(|m| (Some(span), m))?);
    }
    Ok(Message {
        event_json,
        args: templates,
        binary,
    })
}

/// Where the stamp of a tracked emit goes, following `stamp = ...`.
fn placement(
    socketio: bool,
    mode: StampMode,
    message: &Message,
    tracked: bool,
) -> Result<Placement, String> {
    let first = message.args.first();
    let shape = first.map(Template::shape);
    let field_ok = shape == Some(Shape::Object) && !(socketio && message.binary);
    let prefix_ok = !socketio || message.binary || shape == Some(Shape::JsonString);
    Ok(match mode {
        StampMode::Auto if field_ok => Placement::In(StampPlacement::Field),
        StampMode::Auto if prefix_ok => Placement::In(StampPlacement::Prefix),
        StampMode::Auto => Placement::Arg,
        StampMode::Field if field_ok => Placement::In(StampPlacement::Field),
        StampMode::Field => {
            return Err("stamp = \"field\" needs the data (first argument) to be a table".into());
        }
        StampMode::Prefix if prefix_ok => Placement::In(StampPlacement::Prefix),
        StampMode::Prefix => {
            return Err("stamp = \"prefix\" needs a string or binary first argument".into());
        }
        StampMode::Arg if socketio => Placement::Arg,
        StampMode::Arg => return Err("stamp = \"arg\" is for Socket.IO events".into()),
        StampMode::None if tracked => {
            return Err(
                "it is expected back but has stamp = \"none\", so it cannot be tracked".into(),
            );
        }
        StampMode::None => Placement::In(StampPlacement::Prefix),
    })
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

/// Names end up in file names and CSV columns: keep them to letters, digits, `_`, `-` and `.`.
fn check_identifier(name: &str) -> Result<(), String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(format!(
            "`{name}` must be non-empty and use only letters, digits, `_`, `-` and `.`"
        ));
    }
    Ok(())
}
