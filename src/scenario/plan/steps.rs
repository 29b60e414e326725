//! A user's conversation: the steps before and after connecting (`emit`, `wait`, `wait_for`,
//! `http`), the handlers of received events (`[[group.on]]`: replies, answers to the server's
//! acks, captures), and what each captures. Every value a template reads must have been captured
//! by an earlier step: checked here, with the position of the template.

use std::time::Duration;

use crate::scenario::spanned::Spanned;

use super::groups::message_plan;
use super::handlers::{Capture, Matcher};
use super::users::{Users, captured_by};
use super::{Errors, ExpectPlan, GroupPlan, Message, check_identifier};
use crate::metrics::ConnectPhase;
use crate::scenario::ScenarioError;
use crate::scenario::model::{Scenario, Step as StepModel};
use crate::scenario::template::Template;
use crate::units::DurationRange;

/// One step of a user's conversation.
#[derive(Debug, Clone)]
pub struct Step {
    /// For errors: the step's `name`, else its place and kind (`on_connect step 2 (http)`).
    pub name: String,
    pub action: Action,
    /// `on_failure = "continue"`: a failed step is counted and the next one runs.
    pub continue_on_failure: bool,
}

#[derive(Debug, Clone)]
pub enum Action {
    /// Send a message; with `ack`, wait for the acknowledgement.
    Emit {
        message: Message,
        ack: Option<AckWait>,
    },
    /// A think time.
    Wait(DurationRange),
    /// Wait for an event (reading and counting everything else meanwhile).
    WaitFor {
        matcher: Matcher,
        timeout: Duration,
        captures: Vec<Capture>,
        /// Latency metric of the wait.
        metric: usize,
    },
    Http(Box<HttpStep>),
}

/// Waiting for a Socket.IO acknowledgement in a step.
#[derive(Debug, Clone)]
pub struct AckWait {
    /// How long each attempt waits.
    pub timeout: Duration,
    /// Attempts after the first.
    pub retries: u32,
    /// From the acknowledgement's arguments (pointers apply to the first).
    pub captures: Vec<Capture>,
}

#[derive(Debug, Clone)]
pub struct HttpStep {
    pub method: http::Method,
    /// Path and query.
    pub path: Template,
    pub headers: Vec<(http::HeaderName, Template)>,
    pub body: HttpBody,
    pub status: StatusCheck,
    pub captures: Vec<Capture>,
    /// Latency metric of a named step.
    pub metric: Option<usize>,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub enum HttpBody {
    None,
    Json(Template),
    /// Keys as written (encoded at compile time), values percent-encoded at render.
    Form(Vec<(String, Template)>),
    Raw(Template),
}

/// Which statuses count as success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusCheck {
    /// Any 2xx.
    Success,
    OneOf(Vec<u16>),
}

impl StatusCheck {
    pub fn accepts(&self, status: u16) -> bool {
        match self {
            StatusCheck::Success => (200..300).contains(&status),
            StatusCheck::OneOf(list) => list.contains(&status),
        }
    }
}

impl Step {
    /// The templates the step renders.
    pub fn templates(&self) -> Vec<&Template> {
        let mut templates: Vec<&Template> = Vec::new();
        match &self.action {
            Action::Emit { message, .. } => templates.extend(&message.args),
            Action::Http(http) => {
                templates.push(&http.path);
                templates.extend(http.headers.iter().map(|(_, t)| t));
                match &http.body {
                    HttpBody::None => {}
                    HttpBody::Json(t) | HttpBody::Raw(t) => templates.push(t),
                    HttpBody::Form(fields) => templates.extend(fields.iter().map(|(_, t)| t)),
                }
            }
            Action::Wait(_) | Action::WaitFor { .. } => {}
        }
        templates
    }
}

/// The latency metrics steps add, by name (two steps of one name share one).
pub(super) struct StepMetrics {
    pub names: Vec<String>,
    /// Names taken by other metrics.
    taken: Vec<String>,
}

impl StepMetrics {
    pub fn new(expects: &[ExpectPlan]) -> StepMetrics {
        let mut taken: Vec<String> = ["connect", "ack", "reconnect"]
            .into_iter()
            .chain(ConnectPhase::ALL.map(ConnectPhase::metric_name))
            .map(str::to_string)
            .collect();
        taken.extend(expects.iter().map(|e| e.name.clone()));
        StepMetrics {
            names: Vec::new(),
            taken,
        }
    }

    fn take(&mut self, name: &str) -> Result<usize, String> {
        check_identifier(name).map_err(|m| format!("step name: {m}"))?;
        if self.taken.iter().any(|t| t == name) {
            return Err(format!(
                "step name `{name}` is already the name of another metric; choose another"
            ));
        }
        if let Some(at) = self.names.iter().position(|n| n == name) {
            return Ok(at);
        }
        self.names.push(name.to_string());
        Ok(self.names.len() - 1)
    }

    /// Turns the steps' metric numbers into metric indexes, the first at `first`.
    pub fn place(&self, groups: &mut [GroupPlan], first: usize) {
        let steps = groups
            .iter_mut()
            .flat_map(|g| g.before_connect.iter_mut().chain(g.on_connect.iter_mut()));
        for step in steps {
            match &mut step.action {
                Action::WaitFor { metric, .. } => *metric += first,
                Action::Http(http) => {
                    if let Some(metric) = &mut http.metric {
                        *metric += first;
                    }
                }
                Action::Emit { .. } | Action::Wait(_) => {}
            }
        }
    }
}

/// Where the steps of a group are compiled: the names in scope and what has been captured.
pub(super) struct StepCompiler<'a> {
    pub scenario: &'a Scenario,
    pub users: &'a Users,
    pub is_sio: bool,
    pub err: Errors<'a>,
    pub default_timeout: Duration,
    pub http_timeout: Duration,
    /// Slots captured by the steps compiled so far.
    pub captured: Vec<bool>,
}

impl StepCompiler<'_> {
    /// `before_connect` (HTTP only) or `on_connect` steps.
    pub fn steps(
        &mut self,
        written: &[Spanned<StepModel>],
        part: &str,
        metrics: &mut StepMetrics,
    ) -> Result<Vec<Step>, ScenarioError> {
        let mut steps = Vec::new();
        for (i, spanned) in written.iter().enumerate() {
            let step = self.step(spanned, &format!("{part} step {}", i + 1), part, metrics)?;
            for name in captured_by(spanned.get_ref()) {
                if let Some(slot) = self.users.vars.iter().position(|v| v == name) {
                    self.captured[slot] = true;
                }
            }
            steps.push(step);
        }
        Ok(steps)
    }

    fn step(
        &self,
        spanned: &Spanned<StepModel>,
        place: &str,
        part: &str,
        metrics: &mut StepMetrics,
    ) -> Result<Step, ScenarioError> {
        let span = spanned.span();
        let step = spanned.get_ref();
        let err = self.err;
        let kinds = [
            step.emit.is_some(),
            step.wait.is_some(),
            step.wait_for.is_some(),
            step.http.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err(err.at(
                span,
                "each step is one of { emit = \"EVENT\", ... }, { wait = \"1s\" }, \
                 { wait_for = \"EVENT\", ... } or { http = \"POST /path\", ... }",
            ));
        }
        let continue_on_failure = match &step.on_failure {
            None => false,
            Some(v) if v.get_ref() == "stop" => false,
            Some(v) if v.get_ref() == "continue" => true,
            Some(v) => return Err(err.of(v, "on_failure is \"stop\" or \"continue\"")),
        };
        let name = step
            .name
            .as_ref()
            .map_or_else(|| place.to_string(), |n| n.get_ref().clone());
        if part == "before_connect" && step.http.is_none() {
            return Err(err.at(
                span,
                "before connecting there is no connection: before_connect steps are HTTP steps",
            ));
        }
        let only = |present: bool, key: &str, kind: &str| {
            if present {
                Err(err.at(span.clone(), format!("`{key}` is for {kind} steps")))
            } else {
                Ok(())
            }
        };
        let is_http = step.http.is_some();
        only(!is_http && step.headers.is_some(), "headers", "http")?;
        only(!is_http && step.json.is_some(), "json", "http")?;
        only(!is_http && step.form.is_some(), "form", "http")?;
        only(!is_http && step.body.is_some(), "body", "http")?;
        only(!is_http && step.status.is_some(), "status", "http")?;
        let is_emit = step.emit.is_some();
        only(!is_emit && step.data.is_some(), "data", "emit")?;
        only(!is_emit && step.args.is_some(), "args", "emit")?;
        only(!is_emit && step.ack.is_some(), "ack", "emit")?;
        only(!is_emit && step.retries.is_some(), "retries", "emit")?;
        only(
            step.wait_for.is_none() && step.matches.is_some(),
            "match",
            "wait_for",
        )?;
        let action = if let Some(event) = &step.emit {
            self.emit_step(step, event, span.clone())?
        } else if let Some(wait) = &step.wait {
            only(
                step.capture.is_some(),
                "capture",
                "http, wait_for and emit-with-ack",
            )?;
            Action::Wait(wait.get_ref().0)
        } else if let Some(event) = &step.wait_for {
            let metric_name = step.name.as_ref().unwrap_or(event);
            let metric = metrics
                .take(metric_name.get_ref())
                .map_err(|m| err.of(metric_name, m))?;
            let matcher = self.matcher(Some(event), step.matches.as_ref())?;
            Action::WaitFor {
                captures: self.captures(step.capture.as_ref(), self.event_pointer(1), false)?,
                matcher,
                timeout: step.timeout.map_or(self.default_timeout, |t| t.0),
                metric,
            }
        } else if let Some(request) = &step.http {
            let metric = match &step.name {
                Some(n) => Some(metrics.take(n.get_ref()).map_err(|m| err.of(n, m))?),
                None => None,
            };
            Action::Http(Box::new(self.http_step(step, request, metric)?))
        } else {
            unreachable!("one kind is set: checked above")
        };
        let step = Step {
            name,
            action,
            continue_on_failure,
        };
        self.check_captured(&step, span)?;
        Ok(step)
    }

    fn emit_step(
        &self,
        step: &StepModel,
        event: &Spanned<String>,
        span: std::ops::Range<usize>,
    ) -> Result<Action, ScenarioError> {
        let err = self.err;
        let message = message_plan(
            self.is_sio,
            event.get_ref(),
            step.data.as_ref(),
            step.args.as_ref(),
            step.binary,
            &self.users.scope(),
        )
        .map_err(|(s, m)| err.at(s.unwrap_or(span.clone()), m))?;
        let wants_ack = step.ack.as_ref().is_some_and(|a| *a.get_ref());
        if let (Some(ack), false) = (&step.ack, self.is_sio) {
            return Err(err.of(
                ack,
                "`ack` needs protocol = \"socketio\": raw WebSocket has no acknowledgements",
            ));
        }
        if !wants_ack {
            if let Some(capture) = &step.capture {
                return Err(err.at(
                    capture.span(),
                    "an emit step captures from its acknowledgement: add ack = true",
                ));
            }
            if let Some(retries) = &step.retries {
                return Err(err.of(
                    retries,
                    "`retries` resends until acknowledged: add ack = true",
                ));
            }
        }
        let ack = wants_ack
            .then(|| -> Result<AckWait, ScenarioError> {
                Ok(AckWait {
                    timeout: step
                        .ack_timeout
                        .or(step.timeout)
                        .map_or(self.default_timeout, |t| t.0),
                    retries: step.retries.as_ref().map_or(0, |r| *r.get_ref()),
                    captures: self.captures(step.capture.as_ref(), self.ack_pointer(), false)?,
                })
            })
            .transpose()?;
        Ok(Action::Emit { message, ack })
    }

    fn http_step(
        &self,
        step: &StepModel,
        request: &Spanned<String>,
        metric: Option<usize>,
    ) -> Result<HttpStep, ScenarioError> {
        let err = self.err;
        let scope = self.users.scope();
        let text = request.get_ref().trim();
        let (method, path) = text.split_once(' ').unwrap_or(("", text));
        let method = http::Method::from_bytes(method.as_bytes())
            .ok()
            .filter(|m| !method.is_empty() && m.as_str().chars().all(|c| c.is_ascii_uppercase()))
            .ok_or_else(|| {
                err.of(
                    request,
                    format!("`{text}`: write the method and the path, like \"POST /login\""),
                )
            })?;
        let path = path.trim();
        if !path.starts_with('/') {
            return Err(err.of(
                request,
                format!(
                    "`{text}`: the path starts with `/` (the host is [http] base or the target's)"
                ),
            ));
        }
        let path = Template::text(path, &scope).map_err(|m| err.of(request, m))?;
        let mut headers = Vec::new();
        if let Some(table) = &step.headers {
            for (name, value) in table.get_ref() {
                let name = http::HeaderName::try_from(name.as_str())
                    .map_err(|e| err.at(table.span(), format!("header `{name}`: {e}")))?;
                let text = value.as_str().ok_or_else(|| {
                    err.at(table.span(), format!("header `{name}` must be a string"))
                })?;
                let template = Template::text(text, &scope).map_err(|m| err.at(table.span(), m))?;
                headers.push((name, template));
            }
        }
        let bodies = [
            step.json.is_some(),
            step.form.is_some(),
            step.body.is_some(),
        ];
        if bodies.iter().filter(|b| **b).count() > 1 {
            return Err(err.of(request, "give one body: `json`, `form` or `body`"));
        }
        let body = if let Some(json) = &step.json {
            if !(json.get_ref().is_table() || json.get_ref().is_array()) {
                return Err(err.of(json, "`json` is a table or an array"));
            }
            HttpBody::Json(Template::compile(json.get_ref(), &scope).map_err(|m| err.of(json, m))?)
        } else if let Some(form) = &step.form {
            let mut fields = Vec::new();
            for (key, value) in form.get_ref() {
                let text = match value {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => {
                        value.to_string()
                    }
                    _ => {
                        return Err(err.of(
                            form,
                            format!("form field `{key}` must be a string, number or boolean"),
                        ));
                    }
                };
                let template = Template::text(&text, &scope).map_err(|m| err.of(form, m))?;
                fields.push((crate::protocol::engineio::encode_query_value(key), template));
            }
            HttpBody::Form(fields)
        } else if let Some(body) = &step.body {
            HttpBody::Raw(Template::text(body.get_ref(), &scope).map_err(|m| err.of(body, m))?)
        } else {
            HttpBody::None
        };
        let status = match &step.status {
            None => StatusCheck::Success,
            Some(value) => status_check(value.get_ref()).ok_or_else(|| {
                err.of(
                    value,
                    "`status` is a status code (200) or a list of them ([200, 201])",
                )
            })?,
        };
        Ok(HttpStep {
            method,
            path,
            headers,
            body,
            status,
            captures: self.captures(step.capture.as_ref(), Some(0), true)?,
            metric,
            timeout: step.timeout.map_or(self.http_timeout, |t| t.0),
        })
    }

    /// Every value a step's templates read must have been captured by an earlier step.
    fn check_captured(
        &self,
        step: &Step,
        span: std::ops::Range<usize>,
    ) -> Result<(), ScenarioError> {
        self.check_vars(step.templates(), span, "an earlier step")
    }

    /// The values `templates` read are captured already; else an error at `span`.
    pub fn check_vars<'t>(
        &self,
        templates: impl IntoIterator<Item = &'t Template>,
        span: std::ops::Range<usize>,
        by: &str,
    ) -> Result<(), ScenarioError> {
        for template in templates {
            if let Some(slot) = template.vars().find(|s| !self.captured[usize::from(*s)]) {
                let name = &self.users.vars[usize::from(slot)];
                return Err(self.err.at(
                    span,
                    format!("`{{{{{name}}}}}` is used before {by} captures it"),
                ));
            }
        }
        Ok(())
    }
}

fn status_check(value: &toml::Value) -> Option<StatusCheck> {
    let code = |v: &toml::Value| {
        v.as_integer()
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| (100..600).contains(n))
    };
    match value {
        toml::Value::Array(list) if !list.is_empty() => list
            .iter()
            .map(code)
            .collect::<Option<Vec<_>>>()
            .map(StatusCheck::OneOf),
        other => code(other).map(|c| StatusCheck::OneOf(vec![c])),
    }
}
