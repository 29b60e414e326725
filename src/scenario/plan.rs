//! Compiling a parsed scenario into a [`Plan`]: every check that needs more than one value, with the
//! position of the value at fault, and every template compiled once.

use std::time::Duration;

use http::Uri;
use serde::Serialize;
use toml::Spanned;

use super::model::{Scenario, StampMode};
use super::template::{StampPlacement, Template};
use super::{ScenarioError, Source};
use crate::units::{Ramp, Rate};

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
    pub groups: Vec<GroupPlan>,
    pub expects: Vec<ExpectPlan>,
}

#[derive(Debug, Clone)]
pub struct GroupPlan {
    pub name: String,
    pub clients: u64,
    /// Request path and query, e.g. `/broadcast?room=a`.
    pub path: String,
    pub on_connect: Vec<StepPlan>,
    pub emits: Vec<EmitPlan>,
}

#[derive(Debug, Clone)]
pub enum StepPlan {
    Emit { template: Template, binary: bool },
    Wait(Duration),
}

#[derive(Debug, Clone)]
pub struct EmitPlan {
    pub event: String,
    pub template: Template,
    pub rate: Rate,
    pub binary: bool,
    /// Index of the expect that tracks this event, if any; that index is the stamp's stream.
    pub stream: Option<u32>,
    pub placement: StampPlacement,
}

#[derive(Debug, Clone)]
pub struct ExpectPlan {
    /// The latency metric's name.
    pub name: String,
    pub event: String,
    pub within: Option<Duration>,
}

impl Plan {
    pub fn total_clients(&self) -> u64 {
        self.groups.iter().map(|g| g.clients).sum()
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
        if scenario.protocol.get_ref() != "ws" {
            let message = match scenario.protocol.get_ref().as_str() {
                "socketio" => "protocol = \"socketio\" is not available in this version of volley yet; use protocol = \"ws\"".to_string(),
                other => format!("unknown protocol `{other}`: use \"ws\""),
            };
            return Err(spanned_err(&scenario.protocol, message));
        }
        let (target, url_path) = parse_target(scenario.target.get_ref())
            .map_err(|m| spanned_err(&scenario.target, m))?;
        if scenario.groups.is_empty() {
            return Err(source.error_at(
                0..0,
                "the scenario has no [[group]]: add one with a name and a number of clients",
            ));
        }

        let mut expects: Vec<ExpectPlan> = Vec::new();
        for expect in &scenario.expects {
            if expect.from.get_ref() != "self" {
                return Err(spanned_err(
                    &expect.from,
                    format!(
                        "from = \"{}\": this version of volley tracks echoes only; use from = \"self\"",
                        expect.from.get_ref()
                    ),
                ));
            }
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
                .flat_map(|g| &g.emit)
                .any(|e| e.event.get_ref() == expect.event.get_ref());
            if !emitted {
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
            let mut on_connect = Vec::new();
            for step in &group.on_connect {
                let span = step.span();
                let step = step.get_ref();
                match (&step.emit, step.wait) {
                    (Some(_), None) => {
                        let template = match &step.data {
                            Some(data) => Template::compile(data.get_ref())
                                .map_err(|m| at(&data.span(), m))?,
                            None => {
                                Template::parse(step.emit.as_deref().unwrap_or_default(), false)
                                    .map_err(|m| at(&span, m))?
                            }
                        };
                        on_connect.push(StepPlan::Emit {
                            template,
                            binary: step.binary,
                        });
                    }
                    (None, Some(wait)) if step.data.is_none() => {
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
                let template = match &emit.data {
                    Some(data) => {
                        Template::compile(data.get_ref()).map_err(|m| at(&data.span(), m))?
                    }
                    None => {
                        Template::parse(&event, false).map_err(|m| spanned_err(&emit.event, m))?
                    }
                };
                let stream = expects
                    .iter()
                    .position(|e| e.event == event)
                    .map(|i| i as u32);
                let placement = match emit.stamp {
                    StampMode::Auto if template.is_object() => StampPlacement::Field,
                    StampMode::Field if !template.is_object() => {
                        return Err(spanned_err(
                            &emit.event,
                            "stamp = \"field\" needs `data` to be a table (a JSON object)".into(),
                        ));
                    }
                    StampMode::Field => StampPlacement::Field,
                    StampMode::None if stream.is_some() => {
                        return Err(spanned_err(
                            &emit.event,
                            format!(
                                "event `{event}` is expected back but has stamp = \"none\", so it cannot be tracked"
                            ),
                        ));
                    }
                    _ => StampPlacement::Prefix,
                };
                emits.push(EmitPlan {
                    event,
                    template,
                    rate: emit.rate.0,
                    binary: emit.binary,
                    stream,
                    placement,
                });
            }
            groups.push(GroupPlan {
                name,
                clients: group.clients.0,
                path,
                on_connect,
                emits,
            });
        }

        Ok(Plan {
            name: scenario.name.clone(),
            target,
            duration: scenario.duration.0,
            ramp: scenario.ramp,
            drain: scenario.drain.0,
            connect_timeout: scenario.connect_timeout.0,
            seed: scenario.seed,
            groups,
            expects,
            scenario,
        })
    }
}

/// Parses `builtin` or a `ws://` / `wss://` URL into a target and the URL's path, if it has one.
pub fn parse_target(text: &str) -> Result<(Target, Option<String>), String> {
    if text == "builtin" {
        return Ok((Target::Builtin, None));
    }
    let uri: Uri = text.parse().map_err(|e| {
        format!("target `{text}` is not a URL ({e}): use \"builtin\" or ws://host:port/path")
    })?;
    let tls = match uri.scheme_str() {
        Some("ws") => false,
        Some("wss") => true,
        Some(other) => {
            return Err(format!(
                "target `{text}` has scheme `{other}`: volley speaks ws:// and wss://"
            ));
        }
        None => {
            return Err(format!(
                "target `{text}` needs a scheme: ws://host:port/path"
            ));
        }
    };
    let host = uri
        .host()
        .ok_or_else(|| format!("target `{text}` has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .filter(|p| p != "/" && !p.is_empty());
    Ok((Target::Remote { tls, host, port }, path))
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
