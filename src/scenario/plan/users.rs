//! What makes each user its own: the `[[data]]` files they take rows from, the values they capture
//! along the way, which of those are secret, and the connection parts that carry them (headers,
//! Socket.IO query). Also where HTTP steps go (`[http]`).

use std::sync::Arc;
use std::time::Duration;

use crate::scenario::spanned::Spanned;

use super::connection::Connection;
use super::{Errors, HttpPlan, Target, parse_target};
use crate::protocol::engineio::encode_query_value;
use crate::scenario::data::{DataFiles, DataSet, Pick, is_template_name};
use crate::scenario::model::{Scenario, Step};
use crate::scenario::template::{Scope, Template, UserValues};
use crate::scenario::{ScenarioError, Source};
use crate::secrets::is_secret_name;

/// The data sets and the names of captured values.
pub(super) struct Users {
    pub data: Vec<Arc<DataSet>>,
    pub picks: Vec<Pick>,
    /// Captured value names in slot order: every capture key of the scenario, first use first.
    pub vars: Vec<String>,
    pub secrets: SecretSlots,
}

/// Which of a user's values are secret, hidden wherever they reach its frame log or its error
/// rows: captured values and data columns whose names are secret (`token`, `users.password`:
/// [`is_secret_name`]), and those the scenario's `secrets` names.
#[derive(Debug, Clone, Default)]
pub struct SecretSlots {
    /// Slots of captured values.
    pub vars: Vec<u16>,
    /// Data columns: the set and the column.
    pub columns: Vec<(u16, u16)>,
}

impl SecretSlots {
    /// The secret values `user` holds now (a value not captured yet is not there).
    pub fn values<'a>(
        &'a self,
        data: &'a [Arc<DataSet>],
        user: &'a UserValues,
    ) -> impl Iterator<Item = &'a str> {
        let vars = self
            .vars
            .iter()
            .filter_map(|&slot| user.vars.get(usize::from(slot))?.as_deref());
        let columns = self.columns.iter().filter_map(|&(set, column)| {
            let set = usize::from(set);
            let row = *user.rows.get(set)?;
            Some(data.get(set)?.field(row as usize, usize::from(column)))
        });
        vars.chain(columns).filter(|v| !v.is_empty())
    }

    pub fn is_empty(&self) -> bool {
        self.vars.is_empty() && self.columns.is_empty()
    }
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
    files: DataFiles<'_>,
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
        let set = DataSet::open(name, decl.file.get_ref(), &path, files)
            .map_err(|e| err.of(&decl.file, e.to_string()))?;
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
    let secrets = secret_slots(scenario, &data, &vars, err)?;
    Ok(Users {
        data,
        picks,
        vars,
        secrets,
    })
}

/// The secret captured values and columns: by their names, and as `secrets` lists them (each
/// entry must name one).
fn secret_slots(
    scenario: &Scenario,
    data: &[Arc<DataSet>],
    vars: &[String],
    err: Errors,
) -> Result<SecretSlots, ScenarioError> {
    let listed = |name: &str| scenario.secrets.iter().any(|s| s.get_ref() == name);
    let mut slots = SecretSlots::default();
    for (slot, name) in vars.iter().enumerate() {
        if is_secret_name(name) || listed(name) {
            slots.vars.push(slot as u16);
        }
    }
    for (set, d) in data.iter().enumerate() {
        for (column, name) in d.columns().iter().enumerate() {
            if is_secret_name(name) || listed(&format!("{}.{name}", d.name())) {
                slots.columns.push((set as u16, column as u16));
            }
        }
    }
    for entry in &scenario.secrets {
        let name = entry.get_ref();
        let known = vars.contains(name)
            || name.split_once('.').is_some_and(|(set, column)| {
                data.iter()
                    .any(|d| d.name() == set && d.column(column).is_some())
            });
        if !known {
            let mut names: Vec<String> = vars.to_vec();
            for d in data {
                names.extend(d.columns().iter().map(|c| format!("{}.{c}", d.name())));
            }
            let names = match names.is_empty() {
                true => "none".to_string(),
                false => names.join(", "),
            };
            return Err(err.of(
                entry,
                format!(
                    "secrets: `{name}` is neither a captured value nor a data column (SET.COLUMN); the scenario has: {names}"
                ),
            ));
        }
    }
    Ok(slots)
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
