//! A user's part beyond its emit streams: its own values (data rows and what it captured), its
//! HTTP side (a keep-alive connection and a cookie jar), and the HTTP steps. An HTTP step is cut in
//! three so that it can run while the session keeps reading its WebSocket: rendering the request
//! (reads the user's values), the exchange (owns the HTTP session, borrows nothing), and taking
//! in the answer (status check, captures, metric).

use std::cell::RefCell;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{ClientContext, ClientId, report};
use crate::metrics::{ErrorKind, WorkerMetrics};
use crate::scenario::template::{Fill, UserValues, push_escaped};
use crate::scenario::{Capture, HttpBody, HttpStep, Step, capture_all};
use crate::transport::http::{HttpFailure, HttpRequest, HttpResponse, HttpSession};
use crate::transport::ws::Connector;

/// One user's own state, kept across its connections.
pub struct User {
    pub values: UserValues,
    /// Opened by the first HTTP step; its cookies go on every later request and connection.
    pub http: Option<Box<HttpSession>>,
    /// When the user leaves: the end of emitting, or sooner for an arriving user.
    pub until: Instant,
}

impl User {
    /// A user with its rows of every data set, nothing captured yet.
    pub fn new(ctx: &ClientContext, who: ClientId, until: Instant) -> User {
        let plan = &ctx.plan;
        let group = &plan.groups[who.group as usize];
        let index = u64::from(who.id) - plan.client_ids(who.group).start;
        let rows = plan
            .data
            .iter()
            .zip(&plan.picks)
            .zip(&group.first_user)
            // A set the group does not use gets no row: none of its templates reads it.
            .map(|((data, pick), first)| match first {
                Some(first) => pick.row(first + index, data.rows(), ctx.seed) as u32,
                None => 0,
            })
            .collect();
        User {
            values: UserValues {
                rows,
                vars: vec![None; plan.vars.len()],
            },
            http: None,
            until,
        }
    }

    /// What a render of this user reads.
    pub fn fill<'a>(&'a self, ctx: &'a ClientContext, who: ClientId, seq: u64) -> Fill<'a> {
        Fill {
            client: who.id,
            seq,
            group: &ctx.plan.groups[who.group as usize].name,
            data: &ctx.plan.data,
            user: &self.values,
            event: None,
        }
    }

    /// Stores what `captures` find in `payload` (JSON) or `headers`; a capture that finds
    /// nothing makes the step fail (the caller reports it).
    pub fn capture(
        &mut self,
        names: &[String],
        captures: &[Capture],
        payload: &[u8],
        headers: Option<&http::HeaderMap>,
    ) -> Result<(), String> {
        capture_all(captures, names, &mut self.values, payload, headers)
    }
}

/// An HTTP request rendered with the user's values, owned so the exchange borrows nothing.
pub struct PreparedRequest {
    method: http::Method,
    path: String,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
    body: Bytes,
    content_type: Option<&'static str>,
    timeout: Duration,
}

/// Renders `step`'s request; a header value that is not valid once rendered is an error.
pub fn prepare(fill: &Fill, step: &HttpStep) -> Result<PreparedRequest, String> {
    let path = step.path.render(fill, None);
    if path.parse::<http::uri::PathAndQuery>().is_err() {
        return Err(format!(
            "the path `{path}` is not a valid URL path once rendered"
        ));
    }
    let mut headers = Vec::with_capacity(step.headers.len());
    for (name, template) in &step.headers {
        let value = template.render(fill, None);
        let value = http::HeaderValue::try_from(value)
            .map_err(|_| format!("header `{name}` is not a valid header value once rendered"))?;
        headers.push((name.clone(), value));
    }
    let (body, content_type) = match &step.body {
        HttpBody::None => (String::new(), None),
        HttpBody::Json(t) => (t.render(fill, None), Some("application/json")),
        HttpBody::Raw(t) => (t.render(fill, None), None),
        HttpBody::Form(fields) => {
            let mut body = String::new();
            for (i, (key, value)) in fields.iter().enumerate() {
                if i > 0 {
                    body.push('&');
                }
                body.push_str(key);
                body.push('=');
                let value = value.render(fill, None);
                body.push_str(&crate::protocol::engineio::encode_query_value(&value));
            }
            (body, Some("application/x-www-form-urlencoded"))
        }
    };
    Ok(PreparedRequest {
        method: step.method.clone(),
        path,
        headers,
        body: Bytes::from(body),
        content_type,
        timeout: step.timeout,
    })
}

/// What an HTTP exchange came to, and how long it took.
pub struct Answer {
    result: Result<HttpResponse, HttpFailure>,
    took: Duration,
}

/// The exchange, on the user's HTTP session (taken out of the user while the session reads).
pub async fn exchange(
    session: &mut HttpSession,
    connector: &Connector,
    request: PreparedRequest,
) -> Answer {
    let started = Instant::now();
    let result = session
        .send(
            connector,
            HttpRequest {
                method: request.method,
                path_and_query: &request.path,
                headers: &request.headers,
                body: request.body,
                content_type: request.content_type,
            },
            request.timeout,
        )
        .await;
    let took = started.elapsed();
    Answer { result, took }
}

/// Takes in an HTTP step's answer: its latency, its status, its captures. `Err` when the step
/// failed (reported).
pub fn settle(
    ctx: &ClientContext,
    who: ClientId,
    metrics: &RefCell<WorkerMetrics>,
    user: &mut User,
    step: &Step,
    http: &HttpStep,
    answer: Answer,
) -> Result<(), ()> {
    let Answer { result, took } = answer;
    let fail = |user: &User, kind: ErrorKind, detail: String| {
        report(
            ctx,
            who,
            &user.values,
            metrics,
            kind,
            format!("step `{}`: {detail}", step.name),
        );
        Err(())
    };
    let response = match result {
        Ok(response) => response,
        Err(HttpFailure::Refused(detail)) => return fail(user, ErrorKind::HttpRefused, detail),
        Err(HttpFailure::Timeout(after)) => {
            return fail(
                user,
                ErrorKind::HttpTimeout,
                format!("no whole answer within {after:?}"),
            );
        }
        Err(
            HttpFailure::Tls(detail)
            | HttpFailure::Io(detail)
            | HttpFailure::InvalidRequest(detail),
        ) => {
            return fail(user, ErrorKind::Http, detail);
        }
    };
    if let Some(metric) = http.metric {
        metrics.borrow_mut().record(metric, took);
    }
    let status = response.status.as_u16();
    if !http.status.accepts(status) {
        let mut detail = format!("HTTP {status}");
        let body = String::from_utf8_lossy(&response.body[..response.body.len().min(120)]);
        let body = body.trim();
        if !body.is_empty() {
            detail.push(' ');
            push_escaped(&mut detail, body);
        }
        return fail(user, ErrorKind::HttpStatus, detail);
    }
    let names = &ctx.plan.vars;
    let headers = Some(&response.headers);
    if let Err(detail) = user.capture(names, &http.captures, &response.body, headers) {
        return fail(user, ErrorKind::Capture, detail);
    }
    Ok(())
}

/// The `before_connect` steps: HTTP only, with no connection to keep. `false`: a step failed
/// (reported) and its `on_failure` stops the user, or the run was stopped.
pub async fn before_connect(
    ctx: &ClientContext,
    who: ClientId,
    metrics: &RefCell<WorkerMetrics>,
    user: &mut User,
) -> bool {
    let group = &ctx.plan.groups[who.group as usize];
    for step in &group.before_connect {
        let crate::scenario::Action::Http(http) = &step.action else {
            continue;
        };
        let Some(connector) = ctx.http.as_ref() else {
            return false;
        };
        let request = match prepare(&user.fill(ctx, who, 0), http) {
            Ok(request) => request,
            Err(detail) => {
                report(
                    ctx,
                    who,
                    &user.values,
                    metrics,
                    ErrorKind::Http,
                    format!("step `{}`: {detail}", step.name),
                );
                if step.continue_on_failure {
                    continue;
                }
                return false;
            }
        };
        let until = user.until;
        if Instant::now() >= until {
            return false;
        }
        let http_session = user.http.get_or_insert_default();
        let answer = tokio::select! {
            _ = ctx.stop.cancelled() => return false,
            _ = tokio::time::sleep_until(until.into()) => return false,
            done = exchange(http_session, connector, request) => done,
        };
        let settled = settle(ctx, who, metrics, user, step, http, answer);
        if settled.is_err() && !step.continue_on_failure {
            return false;
        }
    }
    true
}
