//! A scenario compiled into a [`Plan`]: overrides applied, values checked, templates compiled.
//! The compiler is cut by part of the file: [`connection`] (target, protocol, headers,
//! reconnect), [`users`] (data files and captured values), [`expects`], [`groups`], [`steps`]
//! (a user's conversation: steps and replies) and [`thresholds`].

mod connection;
#[cfg(test)]
mod conversation_tests;
mod expects;
mod groups;
mod handlers;
mod steps;
#[cfg(test)]
mod tests;
mod thresholds;
mod users;

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use crate::scenario::spanned::Spanned;
use serde::Serialize;

use super::data::{DataFiles, DataSet, Pick};
use super::model::Scenario;
use super::template::{StampPlacement, Template};
use super::threshold::{GateThreshold, Threshold, check_name};
use super::{ScenarioError, Source};
use crate::metrics::ConnectPhase;
use crate::protocol::pointer::JsonPointer;
use crate::transport::socketio::SocketIoOptions;
use crate::units::{DurationRange, Ramp, Rate};

pub use connection::parse_target;
pub use handlers::{Capture, CaptureSource, Matcher, OnPlan, capture_all};
pub use steps::{AckWait, Action, HttpBody, HttpStep, StatusCheck, Step};
pub use users::SecretSlots;

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
    /// Headers whose values differ per user (a captured token), rendered at each connect.
    pub user_headers: Vec<(http::HeaderName, Template)>,
    /// Socket.IO: `[socketio] query` values that differ per user: `&key=` and the value, which
    /// is percent-encoded when rendered.
    pub user_query: Vec<(String, Template)>,
    /// Data sets, loaded once and shared by every client, and how users take their rows.
    pub data: Vec<Arc<DataSet>>,
    pub picks: Vec<Pick>,
    /// Names of the values users capture, in slot order.
    pub vars: Vec<String>,
    /// Which of a user's values are secret: hidden in its frame log and its error rows.
    pub secrets: SecretSlots,
    /// Where HTTP steps go.
    pub http: HttpPlan,
    /// Latency metrics of named HTTP steps and `wait_for` steps, after `ack` and `reconnect`.
    pub step_metrics: Vec<String>,
    pub reconnect: Option<ReconnectPlan>,
    pub groups: Vec<GroupPlan>,
    pub expects: Vec<ExpectPlan>,
    /// Index of the `ack` metric, when some emit asks for acks.
    pub ack_metric: Option<usize>,
    /// Index of the `reconnect` metric (time from losing a connection to having it back).
    pub reconnect_metric: Option<usize>,
    /// The phases of connect this plan's connections go through, in order, each with the index
    /// of its metric (after the steps').
    pub connect_phases: Vec<(ConnectPhase, usize)>,
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

/// Where HTTP steps go and how long they may take.
#[derive(Debug, Clone)]
pub struct HttpPlan {
    /// `None`: the target's host and port (ws -> http, wss -> https).
    pub base: Option<Target>,
    pub timeout: Duration,
}

/// Users that keep arriving and leaving instead of a fixed number of clients.
#[derive(Debug, Clone, Copy)]
pub struct Arrivals {
    pub rate: Rate,
    pub lifetime: DurationRange,
}

#[derive(Debug, Clone)]
pub struct GroupPlan {
    pub name: String,
    /// Clients of the group; with `arrivals`, the users that arrive over the whole run.
    pub clients: u64,
    pub arrivals: Option<Arrivals>,
    /// Raw WebSocket: request path and query, e.g. `/broadcast?room=a`.
    pub path: String,
    /// The path, when it has per-user values.
    pub user_path: Option<Template>,
    /// Socket.IO namespace, e.g. `/` or `/admin`.
    pub namespace: String,
    /// Socket.IO CONNECT auth payload (a JSON object).
    pub auth: Option<Template>,
    /// Drop the connection this long after each connect.
    pub disconnect_every: Option<Duration>,
    /// HTTP steps before the first connect.
    pub before_connect: Vec<Step>,
    /// Steps after each connect the server did not recover.
    pub on_connect: Vec<Step>,
    pub emits: Vec<EmitPlan>,
    /// Handlers of received events.
    pub on: Vec<OnPlan>,
    /// For each data set: the user index of this group's first client (users of a data set are
    /// numbered across the groups that use it), or `None` when the group does not use it.
    pub first_user: Vec<Option<u64>>,
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
pub struct EmitPlan {
    pub event: String,
    pub message: Message,
    pub rate: Rate,
    /// Index of the expect that tracks this event, if any; that index is the stamp's stream.
    pub stream: Option<u32>,
    pub placement: Placement,
    /// Socket.IO: ask for an acknowledgement.
    pub ack: bool,
    /// Socket.IO, with `ack`: send again this many times when no acknowledgement came within
    /// `ack_timeout`.
    pub retries: u32,
    pub ack_timeout: Duration,
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
        /// `stream = "/channel"`: the field whose value keys the stream; each value is numbered
        /// on its own.
        key: Option<JsonPointer>,
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

impl GroupPlan {
    /// Every template of the group: what it sends, requests, replies and connects with.
    pub fn templates(&self) -> impl Iterator<Item = &Template> {
        let steps = self.before_connect.iter().chain(&self.on_connect);
        let step_templates = steps.flat_map(|s| s.templates());
        let emits = self.emits.iter().flat_map(|e| &e.message.args);
        let handlers = self.on.iter().flat_map(|h| {
            let replies = h.reply.iter().flat_map(|m| &m.args);
            replies.chain(h.answer.iter().flatten())
        });
        step_templates
            .chain(emits)
            .chain(handlers)
            .chain(&self.auth)
            .chain(&self.user_path)
    }

    /// How many of the group's users are there at once at most: all of a fixed group; for
    /// arrivals, those of one longest lifetime (and one more).
    pub fn peak_clients(&self) -> u64 {
        match &self.arrivals {
            None => self.clients,
            Some(a) => {
                let staying = a.rate.per_second() * a.lifetime.high.as_secs_f64();
                self.clients.min(staying.ceil() as u64 + 1)
            }
        }
    }

    /// Whether the group's users take rows of data set `set`.
    pub fn uses_data_set(&self, set: usize) -> bool {
        self.templates()
            .any(|t| t.data_sets().any(|s| usize::from(s) == set))
    }
}

impl Plan {
    /// The secret values `user` holds now: hidden in its frame log and its error rows.
    pub fn user_secrets<'a>(
        &'a self,
        user: &'a super::template::UserValues,
    ) -> impl Iterator<Item = &'a str> {
        self.secrets.values(&self.data, user)
    }
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
    /// `reconnect` when used, then the steps', then the phases of connect.
    pub fn metric_names(&self) -> Vec<String> {
        let mut names = vec!["connect".to_string()];
        names.extend(self.expects.iter().map(|e| e.name.clone()));
        if self.ack_metric.is_some() {
            names.push("ack".into());
        }
        if self.reconnect_metric.is_some() {
            names.push("reconnect".into());
        }
        names.extend(self.step_metrics.iter().cloned());
        names.extend(
            self.connect_phases
                .iter()
                .map(|(phase, _)| phase.metric_name().to_string()),
        );
        names
    }

    /// The latency metric the progress line shows: the first expect's, or `connect`.
    pub fn main_metric(&self) -> usize {
        if self.expects.is_empty() { 0 } else { 1 }
    }

    /// How many users are there at once at most.
    pub fn peak_clients(&self) -> u64 {
        self.groups.iter().map(GroupPlan::peak_clients).sum()
    }

    /// Whether some user makes HTTP requests.
    pub fn has_http_steps(&self) -> bool {
        self.groups
            .iter()
            .flat_map(|g| g.before_connect.iter().chain(&g.on_connect))
            .any(|s| matches!(s.action, Action::Http(_)))
    }

    /// Clients of the groups with a fixed number, the ones the ramp connects.
    pub fn fixed_clients(&self) -> u64 {
        self.groups
            .iter()
            .filter(|g| g.arrivals.is_none())
            .map(|g| g.clients)
            .sum()
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

    /// Compiles a parsed scenario: every check that needs more than one value, with the position
    /// of the value at fault (the first one found, in the file's order of sections), and every
    /// template compiled once. Data files are read from disk, beside the scenario.
    pub fn compile(scenario: Scenario, source: &Source) -> Result<Plan, ScenarioError> {
        Plan::compile_with(scenario, source, DataFiles::Disk)
    }

    /// [`Plan::compile`], with the data files found where `files` says: a scenario and its data
    /// files checked as text, before (or without) being written.
    pub fn compile_with(
        scenario: Scenario,
        source: &Source,
        files: DataFiles<'_>,
    ) -> Result<Plan, ScenarioError> {
        let err = Errors { source };
        if scenario.name.trim().is_empty() {
            return Err(source.error_at(0..0, "`name` must not be empty"));
        }
        let conn = connection::compile(&scenario, source, err)?;
        if scenario.groups.is_empty() {
            return Err(source.error_at(
                0..0,
                "the scenario has no [[group]]: add one with a name and a number of clients",
            ));
        }
        let expects = expects::compile(&scenario, conn.is_socketio(), err)?;
        let users = users::compile(&scenario, source, files, err)?;
        let mut metrics = steps::StepMetrics::new(&expects);
        let users::ConnectionTemplates {
            headers: user_headers,
            query: user_query,
        } = users::connection_templates(&scenario, &users, err)?;
        // What every connection sends, with where it is written (for the checks of each group).
        let headers_span = scenario.headers.as_ref().map_or(0..0, Spanned::span);
        let query_span = scenario.socketio.as_ref().map_or(0..0, Spanned::span);
        let shared: Vec<(&Template, Range<usize>)> = user_headers
            .iter()
            .map(|(_, t)| (t, headers_span.clone()))
            .chain(user_query.iter().map(|(_, t)| (t, query_span.clone())))
            .collect();
        let groups = groups::compile(
            &scenario,
            &conn,
            &expects,
            &users,
            &shared,
            &mut metrics,
            err,
        )?;
        // Latency metrics: `connect`, one per expect, then `ack` and `reconnect` when used, then
        // the steps'.
        let mut next_metric = 1 + expects.len();
        let mut take_metric = |used: bool| {
            used.then(|| {
                next_metric += 1;
                next_metric - 1
            })
        };
        let step_acks = groups
            .iter()
            .flat_map(|g| g.on_connect.iter())
            .any(|s| matches!(&s.action, Action::Emit { ack: Some(_), .. }));
        let ack_metric =
            take_metric(step_acks || groups.iter().flat_map(|g| &g.emits).any(|e| e.ack));
        let reconnect_metric = take_metric(conn.reconnect.is_some());
        let mut groups = groups;
        metrics.place(&mut groups, next_metric);
        let first_phase = next_metric + metrics.names.len();
        let connect_phases = connection::phases(&conn)
            .into_iter()
            .enumerate()
            .map(|(i, phase)| (phase, first_phase + i))
            .collect();
        // Client ids are 32-bit, and the top of the range names the server's streams.
        let most = u64::from(u32::MAX - crate::metrics::SERVER_KEYS - 1);
        // Summed wide: groups of up to u64::MAX clients each must not wrap around to a small total.
        let user_count: u128 = groups.iter().map(|g| u128::from(g.clients)).sum();
        if user_count > u128::from(most) {
            return Err(source.error_at(
                0..0,
                format!("the scenario has {user_count} users (arrivals included): a run has at most {most}; split it into shards"),
            ));
        }
        let http = users::http_plan(&scenario, &conn, err)?;
        let mut plan = Plan {
            name: scenario.name.clone(),
            target: conn.target,
            duration: scenario.duration.0,
            ramp: scenario.ramp,
            drain: scenario.drain.0,
            connect_timeout: scenario.connect_timeout.0,
            seed: scenario.seed,
            protocol: conn.protocol,
            headers: conn.headers,
            user_headers,
            user_query,
            data: users.data,
            picks: users.picks,
            vars: users.vars,
            secrets: users.secrets,
            http,
            step_metrics: metrics.names,
            reconnect: conn.reconnect,
            groups,
            expects,
            ack_metric,
            reconnect_metric,
            connect_phases,
            thresholds: Vec::new(),
            scenario,
        };
        plan.thresholds = thresholds::compile(&plan, source)?;
        Ok(plan)
    }

    /// Whether a threshold names a figure this run will have; what is wrong if not.
    pub fn check_threshold(&self, threshold: &Threshold) -> Result<(), String> {
        let expects: Vec<String> = self.expects.iter().map(|e| e.name.clone()).collect();
        if let Some(phase) = ConnectPhase::of_metric(&threshold.metric) {
            if !self.connect_phases.iter().any(|(p, _)| *p == phase) {
                return Err(format!(
                    "`{}` is not measured in this scenario: {}",
                    threshold.metric,
                    connection::phase_condition(phase)
                ));
            }
        }
        check_name(
            &threshold.metric,
            threshold.stat,
            &self.metric_names(),
            &expects,
        )
    }
}

/// Errors at the value at fault: its position in the file, or the command line for a value an
/// override replaced (overridden values carry an empty span at 0).
#[derive(Clone, Copy)]
struct Errors<'a> {
    source: &'a Source,
}

impl Errors<'_> {
    fn at(&self, span: Range<usize>, message: impl Into<String>) -> ScenarioError {
        if span.is_empty() && span.start == 0 {
            ScenarioError::Override {
                path: self.source.path.clone(),
                message: message.into(),
            }
        } else {
            self.source.error_at(span, message)
        }
    }

    fn of<T>(&self, value: &Spanned<T>, message: impl Into<String>) -> ScenarioError {
        self.at(value.span(), message)
    }
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
