//! `[[group]]`: who the clients are, where they connect, what they send on connecting and what
//! they emit on schedule; each message's templates compiled once.

use toml::Spanned;

use super::connection::Connection;
use super::{
    EmitPlan, Errors, ExpectPlan, GroupPlan, Message, Origin, Placement, StepPlan, Target,
    check_identifier,
};
use crate::protocol::socketio::{self, check_namespace};
use crate::scenario::ScenarioError;
use crate::scenario::model::{Group, Scenario, StampMode};
use crate::scenario::template::{Shape, StampPlacement, Template};

pub(super) fn compile(
    scenario: &Scenario,
    conn: &Connection,
    expects: &[ExpectPlan],
    err: Errors,
) -> Result<Vec<GroupPlan>, ScenarioError> {
    let mut groups: Vec<GroupPlan> = Vec::new();
    for group in &scenario.groups {
        let name = group.name.get_ref().clone();
        check_identifier(&name).map_err(|m| err.of(&group.name, format!("group name: {m}")))?;
        if groups.iter().any(|g| g.name == name) {
            return Err(err.of(&group.name, format!("group `{name}` is defined twice")));
        }
        let path = path(scenario, group, conn, err)?;
        let (namespace, auth) = socketio_parts(scenario, group, conn, err)?;
        let on_connect = on_connect(group, conn.is_socketio(), err)?;
        let index = groups.len() as u16;
        let emits = group
            .emit
            .iter()
            .map(|emit| emit_plan(emit, index, expects, conn.is_socketio(), err))
            .collect::<Result<Vec<_>, _>>()?;
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
    Ok(groups)
}

/// Raw WebSocket: the group's request path, else the scenario's, else the target URL's, else the
/// builtin server's echo.
fn path(
    scenario: &Scenario,
    group: &Group,
    conn: &Connection,
    err: Errors,
) -> Result<String, ScenarioError> {
    let written = group.path.as_ref().or(scenario.path.as_ref());
    if let Some(path) = written {
        if conn.is_socketio() {
            return Err(err.of(
                path,
                "`path` is for raw WebSocket; Socket.IO uses [socketio] path and `namespace`",
            ));
        }
        let text = path.get_ref();
        let valid = text.starts_with('/') && text.parse::<http::uri::PathAndQuery>().is_ok();
        if !valid {
            return Err(err.of(
                path,
                format!(
                    "path `{text}` must start with `/` and be a valid URL path and query (no spaces)"
                ),
            ));
        }
    }
    Ok(written
        .map(|p| p.get_ref().clone())
        .or_else(|| conn.url_path.clone())
        .unwrap_or_else(|| match conn.target {
            Target::Builtin => "/echo".to_string(),
            Target::Remote { .. } => "/".to_string(),
        }))
}

/// Socket.IO: the group's namespace and CONNECT auth payload (the group's, else [socketio]'s).
fn socketio_parts(
    scenario: &Scenario,
    group: &Group,
    conn: &Connection,
    err: Errors,
) -> Result<(String, Option<Template>), ScenarioError> {
    if !conn.is_socketio() {
        if let Some(ns) = &group.namespace {
            return Err(err.of(ns, "`namespace` needs protocol = \"socketio\""));
        }
        if let Some(auth) = &group.auth {
            return Err(err.at(auth.span(), "`auth` needs protocol = \"socketio\""));
        }
    }
    let namespace = match &group.namespace {
        Some(ns) => {
            check_namespace(ns.get_ref()).map_err(|m| err.of(ns, m))?;
            ns.get_ref().clone()
        }
        None => conn.default_namespace.clone(),
    };
    let auth = group.auth.as_ref().or(scenario
        .socketio
        .as_ref()
        .and_then(|s| s.get_ref().auth.as_ref()));
    let auth = match auth {
        Some(table) => Some(
            Template::compile(&toml::Value::Table(table.get_ref().clone()))
                .map_err(|m| err.at(table.span(), m))?,
        ),
        None => None,
    };
    Ok((namespace, auth))
}

/// `on_connect`: each step an emit or a wait.
fn on_connect(group: &Group, is_sio: bool, err: Errors) -> Result<Vec<StepPlan>, ScenarioError> {
    let mut steps = Vec::new();
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
                .map_err(|(s, m)| err.at(s.unwrap_or(span.clone()), m))?;
                steps.push(StepPlan::Emit(message));
            }
            (None, Some(wait)) if step.data.is_none() && step.args.is_none() => {
                steps.push(StepPlan::Wait(wait.0))
            }
            _ => {
                return Err(err.at(
                    span,
                    "each on_connect step is either { emit = \"...\", data = ... } or { wait = \"1s\" }",
                ));
            }
        }
    }
    Ok(steps)
}

/// One emit stream of group `group`: its message, the expect that tracks it (its stamp's stream),
/// where the stamp goes, and whether it asks for acks.
fn emit_plan(
    emit: &crate::scenario::model::Emit,
    group: u16,
    expects: &[ExpectPlan],
    is_sio: bool,
    err: Errors,
) -> Result<EmitPlan, ScenarioError> {
    let event = emit.event.get_ref().clone();
    let message = message_plan(
        is_sio,
        &event,
        emit.data.as_ref(),
        emit.args.as_ref(),
        emit.binary,
    )
    .map_err(|(s, m)| err.at(s.unwrap_or(emit.event.span()), m))?;
    let stream = expects
        .iter()
        .position(|e| {
            e.event == event
                && match e.origin {
                    Origin::Own => true,
                    Origin::Group(g) => g == group,
                    Origin::Server { .. } => false,
                }
        })
        .map(|i| i as u32);
    let ack = match &emit.ack {
        Some(ack) if *ack.get_ref() && !is_sio => {
            return Err(err.at(
                ack.span(),
                "`ack` needs protocol = \"socketio\": raw WebSocket has no acknowledgements",
            ));
        }
        Some(ack) => *ack.get_ref(),
        None => false,
    };
    let placement = placement(is_sio, emit.stamp, &message, stream.is_some())
        .map_err(|m| err.of(&emit.event, format!("event `{event}`: {m}")))?;
    Ok(EmitPlan {
        event,
        message,
        rate: emit.rate.0,
        stream,
        placement,
        ack,
    })
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
