//! `[[group]]`: who the clients are, where they connect, what they send on connecting and what
//! they emit on schedule; each message's templates compiled once.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::scenario::spanned::Spanned;

use super::connection::Connection;
use super::steps::{StepCompiler, StepMetrics};
use super::users::{Users, has_placeholder};
use super::{
    Arrivals, EmitPlan, Errors, ExpectPlan, GroupPlan, Message, Origin, Placement, Target,
    check_identifier,
};
use crate::protocol::socketio::{self, check_namespace};
use crate::scenario::ScenarioError;
use crate::scenario::data::Pick;
use crate::scenario::model::{Group, Scenario, StampMode};
use crate::scenario::template::{Scope, Shape, StampPlacement, Template};

pub(super) fn compile(
    scenario: &Scenario,
    conn: &Connection,
    expects: &[ExpectPlan],
    users: &Users,
    shared: &[(&Template, std::ops::Range<usize>)],
    metrics: &mut StepMetrics,
    err: Errors,
) -> Result<Vec<GroupPlan>, ScenarioError> {
    let mut groups: Vec<GroupPlan> = Vec::new();
    // Looked up by hash: a scenario may have 100,000 groups, or thousands of emits and expects.
    let mut names: HashSet<&str> = HashSet::with_capacity(scenario.groups.len());
    let tracking: HashMap<&str, usize> = expects
        .iter()
        .enumerate()
        .map(|(i, e)| (e.event.as_str(), i))
        .collect();
    let is_sio = conn.is_socketio();
    let scope = users.scope();
    let http_timeout = scenario
        .http
        .as_ref()
        .and_then(|h| h.get_ref().timeout)
        .map_or(Duration::from_secs(10), |d| d.0);
    for group in &scenario.groups {
        let name = group.name.get_ref().clone();
        check_identifier(&name).map_err(|m| err.of(&group.name, format!("group name: {m}")))?;
        if !names.insert(group.name.get_ref().as_str()) {
            return Err(err.of(&group.name, format!("group `{name}` is defined twice")));
        }
        let (clients, arrivals) = size(scenario, group, err)?;
        let path = path(scenario, group, conn, err)?;
        let user_path = if has_placeholder(&path) {
            Some(Template::text(&path, &scope).map_err(|m| {
                err.at(
                    group
                        .path
                        .as_ref()
                        .or(scenario.path.as_ref())
                        .map_or(0..0, Spanned::span),
                    m,
                )
            })?)
        } else {
            None
        };
        let (namespace, auth) = socketio_parts(scenario, group, conn, &scope, err)?;
        let mut steps = StepCompiler {
            scenario,
            users,
            is_sio,
            err,
            default_timeout: scenario.connect_timeout.0,
            http_timeout,
            captured: vec![false; users.vars.len()],
        };
        let before_connect = steps.steps(&group.before_connect, "before_connect", metrics)?;
        // What connecting sends (auth, headers, path) is rendered after before_connect.
        let connection_templates = auth.iter().chain(&user_path);
        steps.check_vars(
            connection_templates,
            group.name.span(),
            "a before_connect step",
        )?;
        let on_connect = steps.steps(&group.on_connect, "on_connect", metrics)?;
        let index = groups.len() as u16;
        let on = steps.handlers(index as usize, &group.on)?;
        // Emits and replies run after the steps; values captured by handlers count too.
        for handler in &on {
            for capture in &handler.captures {
                steps.captured[usize::from(capture.slot)] = true;
            }
        }
        let emits = group
            .emit
            .iter()
            .map(|emit| emit_plan(emit, index, expects, &tracking, is_sio, &scope, err))
            .collect::<Result<Vec<_>, _>>()?;
        for (emit, written) in emits.iter().zip(&group.emit) {
            steps.check_vars(
                &emit.message.args,
                written.event.span(),
                "a step or a handler",
            )?;
        }
        for (handler, written) in on.iter().zip(&group.on) {
            let replies = handler.reply.iter().flat_map(|m| &m.args);
            let answers = handler.answer.iter().flatten();
            steps.check_vars(
                replies.chain(answers),
                written.span(),
                "a step or a handler",
            )?;
        }
        groups.push(GroupPlan {
            name,
            clients,
            arrivals,
            path,
            user_path,
            namespace,
            auth,
            disconnect_every: group.disconnect_every.map(|d| d.0).filter(|d| !d.is_zero()),
            before_connect,
            on_connect,
            emits,
            on,
            first_user: Vec::new(),
        });
    }
    number_users(scenario, users, shared, &mut groups, err)?;
    Ok(groups)
}

/// A group's size: `clients`, or `arrivals` with a `lifetime` (the users that arrive over the
/// run: its ramp plus its duration, at the rate).
fn size(
    scenario: &Scenario,
    group: &Group,
    err: Errors,
) -> Result<(u64, Option<Arrivals>), ScenarioError> {
    match (&group.clients, &group.arrivals, &group.lifetime) {
        (Some(clients), None, None) => Ok((clients.get_ref().0, None)),
        (Some(_), Some(arrivals), _) => Err(err.of(
            arrivals,
            "give a group either `clients` (a fixed number) or `arrivals` with a `lifetime`, not both",
        )),
        (Some(_), None, Some(lifetime)) => Err(err.of(
            lifetime,
            "`lifetime` is for arriving users: use it with `arrivals` instead of `clients`",
        )),
        (None, Some(arrivals), Some(lifetime)) => {
            let rate = arrivals.get_ref().0;
            let lifetime = lifetime.get_ref().0;
            if lifetime.low.is_zero() {
                return Err(err.of(arrivals, "`lifetime` must be longer than 0s"));
            }
            // Arrivals go on over the fixed groups' ramp and the duration.
            let fixed: u64 = scenario
                .groups
                .iter()
                .filter_map(|g| g.clients.as_ref().map(|c| c.get_ref().0))
                .sum();
            let length = scenario.ramp.length(fixed) + scenario.duration.0;
            let users = (length.as_secs_f64() * rate.per_second()).floor() as u64;
            Ok((users, Some(Arrivals { rate, lifetime })))
        }
        (None, Some(arrivals), None) => Err(err.of(
            arrivals,
            "arriving users need a `lifetime`: how long each stays, e.g. \"30s\" or \"10s..60s\"",
        )),
        (None, None, _) => Err(err.of(
            &group.name,
            "a group needs `clients` (a fixed number) or `arrivals` with a `lifetime`",
        )),
    }
}

/// Numbers the users of each data set across the groups that use it, and checks that a
/// `pick = "unique"` set has a row for every one of them.
fn number_users(
    scenario: &Scenario,
    users: &Users,
    shared: &[(&Template, std::ops::Range<usize>)],
    groups: &mut [GroupPlan],
    err: Errors,
) -> Result<(), ScenarioError> {
    for (set, data) in users.data.iter().enumerate() {
        // Headers and query values every connection sends: every group uses their sets.
        let everyone = shared
            .iter()
            .any(|(t, _)| t.data_sets().any(|s| usize::from(s) == set));
        let mut next = 0u64;
        for group in groups.iter_mut() {
            if everyone || group.uses_data_set(set) {
                group.first_user.push(Some(next));
                next += group.clients;
            } else {
                group.first_user.push(None);
            }
        }
        if users.picks[set] == Pick::Unique && next > data.rows() as u64 {
            let decl = &scenario.data[set];
            return Err(err.of(
                &decl.name,
                format!(
                    "data set `{}` has {} rows but {next} users take one each (pick = \"unique\"): add rows, use fewer users, or pick = \"sequential\"",
                    data.name(),
                    data.rows()
                ),
            ));
        }
    }
    Ok(())
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
    scope: &Scope,
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
            Template::compile(&toml::Value::Table(table.get_ref().clone()), scope)
                .map_err(|m| err.at(table.span(), m))?,
        ),
        None => None,
    };
    Ok((namespace, auth))
}

/// One emit stream of group `group`: its message, the expect that tracks it (its stamp's stream),
/// where the stamp goes, and whether it asks for acks.
fn emit_plan(
    emit: &crate::scenario::model::Emit,
    group: u16,
    expects: &[ExpectPlan],
    tracking: &HashMap<&str, usize>,
    is_sio: bool,
    scope: &Scope,
    err: Errors,
) -> Result<EmitPlan, ScenarioError> {
    let event = emit.event.get_ref().clone();
    let mut message = message_plan(
        is_sio,
        &event,
        emit.data.as_ref(),
        emit.args.as_ref(),
        emit.binary,
        scope,
    )
    .map_err(|(s, m)| err.at(s.unwrap_or(emit.event.span()), m))?;
    if let Some(size) = &emit.size {
        let first = message
            .args
            .first_mut()
            .ok_or_else(|| err.of(size, "`size` pads the data: give the event `data` to pad"))?;
        first
            .pad_to(size.get_ref().0 as usize)
            .map_err(|m| err.of(size, m))?;
    }
    // One expect per event at most (expects::compile refuses a second).
    let stream = tracking
        .get(event.as_str())
        .filter(|&&i| match expects[i].origin {
            Origin::Own => true,
            Origin::Group(g) => g == group,
            Origin::Server { .. } => false,
        })
        .map(|&i| i as u32);
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
    if let (Some(retries), false) = (&emit.retries, ack) {
        return Err(err.of(
            retries,
            "`retries` resends until acknowledged: add ack = true",
        ));
    }
    let placement = placement(is_sio, emit.stamp, &message, stream.is_some())
        .map_err(|m| err.of(&emit.event, format!("event `{event}`: {m}")))?;
    Ok(EmitPlan {
        event,
        message,
        rate: emit.rate.0,
        stream,
        placement,
        ack,
        retries: emit.retries.as_ref().map_or(0, |r| *r.get_ref()),
        ack_timeout: emit.ack_timeout.map_or(Duration::from_secs(5), |t| t.0),
    })
}

/// Compiles what one emit, step or reply sends. Errors carry the span at fault, when known.
pub(super) fn message_plan(
    socketio: bool,
    event: &str,
    data: Option<&Spanned<toml::Value>>,
    args: Option<&Spanned<Vec<toml::Value>>>,
    binary: bool,
    scope: &Scope,
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
            Some(data) => {
                Template::compile(data.get_ref(), scope).map_err(|m| (Some(data.span()), m))?
            }
            None => Template::text(event, scope).map_err(|m| (None, m))?,
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
            Template::compile(value, scope)
        } else {
            Template::compile_arg(value, scope)
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
