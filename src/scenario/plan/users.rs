//! What makes each user its own: the `[[data]]` files they take rows from, the values they capture
//! along the way, and the connection parts that carry them (headers, Socket.IO query). Also where
//! HTTP steps go (`[http]`).

use std::sync::Arc;
use std::time::Duration;

use crate::scenario::spanned::Spanned;

use super::connection::Connection;
use super::{Errors, HttpPlan, Target, parse_target};
use crate::protocol::engineio::encode_query_value;
use crate::scenario::data::{DataSet, Pick, is_template_name};
use crate::scenario::model::{Scenario, Step};
use crate::scenario::template::{Scope, Template};
use crate::scenario::{ScenarioError, Source};

/// The data sets and the names of captured values.
pub(super) struct Users {
    pub data: Vec<Arc<DataSet>>,
    pub picks: Vec<Pick>,
    /// Captured value names in slot order: every capture key of the scenario, first use first.
    pub vars: Vec<String>,
}

impl Users {
    /// The names a template may use (no received event).
    pub fn scope(&self) -> Scope<'_> {
        Scope {
            data: &self.data,
            vars: &self.vars,
            event: None,
        }
    }
}

pub(super) fn compile(
    scenario: &Scenario,
    source: &Source,
    err: Errors,
) -> Result<Users, ScenarioError> {
    let dir = source
        .path
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let mut data: Vec<Arc<DataSet>> = Vec::new();
    let mut picks = Vec::new();
    for decl in &scenario.data {
        let name = decl.name.get_ref();
        if !is_template_name(name) {
            return Err(err.of(
                &decl.name,
                format!(
                    "data name `{name}`: use only letters, digits, `_` and `-` (templates write {{{{NAME.COLUMN}}}})"
                ),
            ));
        }
        if data.iter().any(|d| d.name() == name) {
            return Err(err.of(&decl.name, format!("data set `{name}` is defined twice")));
        }
        let path = dir.join(decl.file.get_ref());
        let set = DataSet::load(name, &path).map_err(|e| err.of(&decl.file, e.to_string()))?;
        data.push(Arc::new(set));
        picks.push(decl.pick);
    }
    let mut vars: Vec<String> = Vec::new();
    for group in &scenario.groups {
        let steps = group.before_connect.iter().chain(&group.on_connect);
        let captures = steps
            .filter_map(|s| s.get_ref().capture.as_ref())
            .chain(group.on.iter().filter_map(|o| o.get_ref().capture.as_ref()));
        for table in captures {
            for name in table.get_ref().keys() {
                check_var_name(name, &data).map_err(|m| err.at(table.span(), m))?;
                if !vars.contains(name) {
                    vars.push(name.clone());
                }
            }
        }
    }
    Ok(Users { data, picks, vars })
}

/// A captured value's name: an identifier that is neither a builtin placeholder nor a data set.
fn check_var_name(name: &str, data: &[Arc<DataSet>]) -> Result<(), String> {
    if !is_template_name(name) {
        return Err(format!(
            "capture `{name}`: a captured value's name uses only letters, digits, `_` and `-`"
        ));
    }
    let reserved = ["client", "seq", "group", "uuid", "now_ms"];
    if reserved.contains(&name) || data.iter().any(|d| d.name() == name) {
        return Err(format!(
            "capture `{name}`: that name is taken by a builtin placeholder or a data set"
        ));
    }
    Ok(())
}

/// The variables a step captures, for the checks of later steps.
pub(super) fn captured_by(step: &Step) -> impl Iterator<Item = &String> {
    step.capture.iter().flat_map(|t| t.get_ref().keys())
}

/// Per-user connection parts: header values, and Socket.IO query values after their `&key=`.
pub(super) struct ConnectionTemplates {
    pub headers: Vec<(http::HeaderName, Template)>,
    pub query: Vec<(String, Template)>,
}

/// The connection parts with per-user values: `[headers]` and `[socketio] query` values that
/// have placeholders (the others were compiled once with the connection).
pub(super) fn connection_templates(
    scenario: &Scenario,
    users: &Users,
    err: Errors,
) -> Result<ConnectionTemplates, ScenarioError> {
    let scope = users.scope();
    let mut headers = Vec::new();
    if let Some(table) = &scenario.headers {
        for (name, value) in table.get_ref() {
            let Some(text) = value.as_str().filter(|t| has_placeholder(t)) else {
                continue;
            };
            let name = http::HeaderName::try_from(name.as_str())
                .map_err(|e| err.at(table.span(), format!("header `{name}`: {e}")))?;
            let template = Template::text(text, &scope).map_err(|m| err.at(table.span(), m))?;
            headers.push((name, template));
        }
    }
    let mut query = Vec::new();
    if let Some(table) = scenario
        .socketio
        .as_ref()
        .and_then(|s| s.get_ref().query.as_ref())
    {
        for (key, value) in table.get_ref() {
            let Some(text) = value.as_str().filter(|t| has_placeholder(t)) else {
                continue;
            };
            let template = Template::text(text, &scope).map_err(|m| err.at(table.span(), m))?;
            query.push((format!("&{}=", encode_query_value(key)), template));
        }
    }
    Ok(ConnectionTemplates { headers, query })
}

/// Whether a value has per-user parts (compiled per user rather than once).
pub(super) fn has_placeholder(text: &str) -> bool {
    text.contains("{{")
}

/// `[http]`: the base URL of HTTP steps (default: the target's) and their default time limit.
pub(super) fn http_plan(
    scenario: &Scenario,
    conn: &Connection,
    err: Errors,
) -> Result<HttpPlan, ScenarioError> {
    let section = scenario.http.as_ref().map(Spanned::get_ref);
    let timeout = section
        .and_then(|h| h.timeout)
        .map_or(Duration::from_secs(10), |d| d.0);
    let base = match section.and_then(|h| h.base.as_ref()) {
        None => None,
        Some(base) => {
            let text = base.get_ref();
            let (tls, rest) = if let Some(rest) = text.strip_prefix("https://") {
                (true, rest)
            } else if let Some(rest) = text.strip_prefix("http://") {
                (false, rest)
            } else {
                return Err(err.of(
                    base,
                    format!("base `{text}` must be an http:// or https:// URL"),
                ));
            };
            let scheme = if tls { "wss" } else { "ws" };
            let (target, path) =
                parse_target(&format!("{scheme}://{rest}"), false).map_err(|m| err.of(base, m))?;
            if path.as_deref().is_some_and(|p| p != "/") {
                return Err(err.of(
                    base,
                    "base is a scheme, host and port only: put the path in each step's `http`",
                ));
            }
            Some(target)
        }
    };
    if base.is_none() && conn.target == Target::Builtin {
        let uses_http = scenario
            .groups
            .iter()
            .flat_map(|g| g.before_connect.iter().chain(&g.on_connect))
            .find(|s| s.get_ref().http.is_some());
        if let Some(step) = uses_http {
            return Err(err.at(
                step.span(),
                "HTTP steps need a server that answers HTTP: the builtin server does not; set [http] base or a target",
            ));
        }
    }
    Ok(HttpPlan { base, timeout })
}
