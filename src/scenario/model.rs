//! The scenario file as written: a serde model of the TOML. Unknown keys are errors, and every value
//! that parses text (durations, rates, counts) fails with the position of that value.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::scenario::data::Pick;
use crate::scenario::schema::{Captures, Headers, JsonBody, ScalarFields, StatusCodes, Thresholds};
use crate::scenario::spanned::Spanned;
use crate::units::{CountValue, DurationRangeText, DurationText, Ramp, RateText, SizeText};

pub use crate::transport::engine::Transport;

/// A scenario file. docs/scenarios.md describes every key.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The scenario's name, in the summary and the results folder's name.
    pub name: String,
    /// `"builtin"` (the embedded server, started in-process) or a `ws://` / `wss://` URL
    /// (Socket.IO: also `http://` / `https://`).
    #[serde(default = "default_target")]
    pub target: Spanned<String>,
    /// `"ws"` (raw WebSocket) or `"socketio"`.
    #[serde(default = "default_protocol")]
    #[schemars(extend("enum" = ["ws", "socketio"]))]
    pub protocol: Spanned<String>,
    /// Request path for every group that does not set its own; defaults to the URL's path.
    pub path: Option<Spanned<String>>,
    /// Extra HTTP headers on every connection request (cookies, tokens).
    #[schemars(with = "Option<Headers>")]
    pub headers: Option<Spanned<toml::Table>>,
    /// The emitting phase, after the ramp.
    pub duration: DurationText,
    /// Connect the clients over this time (`"5s"`) or at this rate (`"500/s"`).
    #[serde(default = "default_ramp")]
    pub ramp: Ramp,
    /// After the last emit, how long to wait for events still in flight.
    #[serde(default = "default_drain")]
    pub drain: DurationText,
    /// TCP, TLS and upgrade of one connection; also how long a write may stall.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: DurationText,
    /// Seeds the order in which clients connect; the run id is printed so a run can be repeated.
    pub seed: Option<u64>,
    /// Socket.IO settings, for `protocol = "socketio"`.
    pub socketio: Option<Spanned<SocketIo>>,
    /// Reconnecting after a lost connection.
    pub reconnect: Option<Spanned<Reconnect>>,
    /// HTTP steps: where they go and how long they may take.
    pub http: Option<Spanned<Http>>,
    /// Data files the users take their values from (`{{users.password}}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<Data>,
    /// Captured values and data columns (`"users.pin"`) to hide in frame logs and errors.csv,
    /// besides those whose names look secret (`token`, `users.password`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<Spanned<String>>,
    /// `[[group]]`: clients that behave alike.
    #[serde(rename = "group")]
    pub groups: Vec<Group>,
    /// `[[expect]]`: what must come back, and the latency metric it feeds.
    #[serde(rename = "expect", default)]
    pub expects: Vec<Expect>,
    /// The CI gate: `"fanout.p99" = "< 50ms"`, `"fanout.lost" = { limit = "== 0", abort = true }`,
    /// or a list of either for several bounds on one figure.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[schemars(with = "Thresholds")]
    pub thresholds: std::collections::BTreeMap<Spanned<String>, Spanned<toml::Value>>,
}

/// `[[group]]`: clients that behave alike: how many, where they connect, what they send and answer.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Names the group in metrics, `from` and `to`, and `{{group}}`.
    pub name: Spanned<String>,
    /// A fixed number of clients, connected over the ramp (or `arrivals` instead).
    pub clients: Option<Spanned<CountValue>>,
    /// Users keep arriving at this rate for the whole run, each staying `lifetime`.
    pub arrivals: Option<Spanned<RateText>>,
    /// How long an arriving user stays: a duration or a range (`"10s..30s"`).
    pub lifetime: Option<Spanned<DurationRangeText>>,
    /// Request path (and query) of this group's connections (default: the scenario's `path`).
    pub path: Option<Spanned<String>>,
    /// Socket.IO namespace of this group (default: `[socketio] namespace`).
    pub namespace: Option<Spanned<String>>,
    /// Socket.IO CONNECT auth payload of this group (default: `[socketio] auth`).
    #[schemars(with = "Option<serde_json::Map<String, serde_json::Value>>")]
    pub auth: Option<Spanned<toml::Table>>,
    /// Each client drops its connection (no close handshake) this long after every connect,
    /// while emitting: a reconnect storm, with `[reconnect]`.
    pub disconnect_every: Option<DurationText>,
    /// HTTP steps before connecting (a login), once per user.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub before_connect: Vec<Spanned<Step>>,
    /// Steps right after connecting, and again after every reconnect the server did not recover.
    #[serde(default)]
    pub on_connect: Vec<Spanned<Step>>,
    /// Streams of events each client sends on an open-model schedule.
    #[serde(default)]
    pub emit: Vec<Emit>,
    /// What a client does when an event arrives: reply, answer the server's ack, capture.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on: Vec<Spanned<On>>,
}

/// `[[data]]`: a CSV (header row) or JSON-lines file; every user takes one row.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Data {
    /// Names the set in templates: `{{users.password}}` reads column `password` of set `users`.
    pub name: Spanned<String>,
    /// The CSV or JSON-lines file, relative to the scenario file.
    pub file: Spanned<String>,
    /// Which row each user takes.
    #[serde(default = "default_pick")]
    pub pick: Pick,
}

/// `[http]`: the server HTTP steps talk to (default: the target's, ws -> http, wss -> https).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Http {
    /// `http://` or `https://` URL that HTTP steps' paths are appended to.
    pub base: Option<Spanned<String>>,
    /// Default time limit of an HTTP step.
    pub timeout: Option<DurationText>,
}

/// `[[group.on]]`: a handler for received events.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct On {
    /// Socket.IO: the event name. Raw WebSocket: leave out (every message) and use `match`.
    pub event: Option<Spanned<String>>,
    /// Only events whose field matches: `'/type == "ping"'`.
    #[serde(rename = "match")]
    pub matches: Option<Spanned<String>>,
    /// `"server"`: the server sends this event (volley checks that somebody does).
    pub from: Option<Spanned<String>>,
    /// Reply at once with this event (Socket.IO) or message (raw WebSocket, `data` or this text).
    pub emit: Option<Spanned<String>>,
    /// The reply's payload: a string or a table; `{{/pointer}}` reads the received event.
    #[schemars(with = "Option<serde_json::Value>")]
    pub data: Option<Spanned<toml::Value>>,
    /// Socket.IO: the reply's arguments, instead of one `data`.
    #[schemars(with = "Option<Vec<serde_json::Value>>")]
    pub args: Option<Spanned<Vec<toml::Value>>>,
    /// Send the reply as a binary frame.
    #[serde(default)]
    pub binary: bool,
    /// Socket.IO: when the server asks for an acknowledgement, answer with these arguments.
    #[schemars(with = "Option<Vec<serde_json::Value>>")]
    pub answer: Option<Spanned<Vec<toml::Value>>>,
    /// Keep values of the event: `{ room = "/room" }`.
    #[schemars(with = "Option<Captures>")]
    pub capture: Option<Spanned<toml::Table>>,
}

/// One step of a user's conversation: send a message (`emit`), pause (`wait`), wait for an event
/// (`wait_for`) or make an HTTP request (`http`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Names the step in errors, and its latency metric (HTTP and `wait_for` steps).
    pub name: Option<Spanned<String>>,
    /// Send this event (Socket.IO) or message (raw WebSocket).
    pub emit: Option<Spanned<String>>,
    /// The payload: a string (sent as written) or a table (sent as a JSON object).
    #[schemars(with = "Option<serde_json::Value>")]
    pub data: Option<Spanned<toml::Value>>,
    /// Socket.IO: several arguments instead of one `data`.
    #[schemars(with = "Option<Vec<serde_json::Value>>")]
    pub args: Option<Spanned<Vec<toml::Value>>>,
    /// Send a binary frame instead of a text one.
    #[serde(default)]
    pub binary: bool,
    /// Socket.IO: wait for the acknowledgement (and `capture` from its arguments).
    pub ack: Option<Spanned<bool>>,
    /// Socket.IO: send again when no acknowledgement came within `ack_timeout`, this many times.
    pub retries: Option<Spanned<u32>>,
    /// How long to wait for an acknowledgement before sending again (with `retries`).
    pub ack_timeout: Option<DurationText>,
    /// A think time: a duration or a range (`"1s..3s"`).
    pub wait: Option<Spanned<DurationRangeText>>,
    /// Wait for this event (Socket.IO; raw WebSocket: `"*"` and `match`).
    pub wait_for: Option<Spanned<String>>,
    /// With `wait_for`: only events whose field matches, `'/type == "welcome"'`.
    #[serde(rename = "match")]
    pub matches: Option<Spanned<String>>,
    /// `"POST /login"`: a method and a path (and query).
    pub http: Option<Spanned<String>>,
    /// Extra headers of the HTTP request.
    #[schemars(with = "Option<Headers>")]
    pub headers: Option<Spanned<toml::Table>>,
    /// The body as JSON (a table or an array).
    #[schemars(with = "Option<JsonBody>")]
    pub json: Option<Spanned<toml::Value>>,
    /// The body as an HTML form.
    #[schemars(with = "Option<ScalarFields>")]
    pub form: Option<Spanned<toml::Table>>,
    /// The body as written.
    pub body: Option<Spanned<String>>,
    /// The status (or statuses) that count as success; default any 2xx.
    #[schemars(with = "Option<StatusCodes>")]
    pub status: Option<Spanned<toml::Value>>,
    /// Keep values: `{ token = "/token" }` (a JSON pointer) or `{ sid = "header:x-session" }`.
    #[schemars(with = "Option<Captures>")]
    pub capture: Option<Spanned<toml::Table>>,
    /// How long the step may take (HTTP, ack, wait_for).
    pub timeout: Option<DurationText>,
    /// `"stop"` (default: the user's steps end there) or `"continue"`.
    #[schemars(extend("enum" = ["stop", "continue"]))]
    pub on_failure: Option<Spanned<String>>,
}

/// A stream of events a client sends on an open-model schedule.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Emit {
    /// The event's name (Socket.IO); for raw WebSocket, the name `[[expect]]` tracks it by.
    pub event: Spanned<String>,
    /// The payload: a string (sent as written) or a table (sent as a JSON object).
    #[schemars(with = "Option<serde_json::Value>")]
    pub data: Option<Spanned<toml::Value>>,
    /// Socket.IO: several arguments instead of one `data`.
    #[schemars(with = "Option<Vec<serde_json::Value>>")]
    pub args: Option<Spanned<Vec<toml::Value>>>,
    /// Events per client, e.g. `"5/s"`.
    pub rate: RateText,
    /// Send binary frames instead of text ones.
    #[serde(default)]
    pub binary: bool,
    /// Socket.IO: ask for an acknowledgement and record its round trip as metric `ack`.
    pub ack: Option<Spanned<bool>>,
    /// Where the tracking stamp goes in each event.
    #[serde(default)]
    pub stamp: StampMode,
    /// Pad the data (first argument) to this size, e.g. `"4KiB"`.
    pub size: Option<Spanned<SizeText>>,
    /// Socket.IO, with `ack`: send again when no acknowledgement came within `ack_timeout`.
    pub retries: Option<Spanned<u32>>,
    /// How long to wait for an acknowledgement before sending again (with `retries`).
    pub ack_timeout: Option<DurationText>,
}

/// Where the tracking stamp goes in a tracked event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StampMode {
    /// A field in JSON object payloads, a prefix in anything else.
    #[default]
    Auto,
    /// A field of the JSON object payload.
    Field,
    /// A prefix of the payload's text.
    Prefix,
    /// Socket.IO: an extra string argument after the event's own.
    Arg,
    /// Send the payload exactly as written; the event cannot be tracked.
    None,
}

/// `[socketio]`: how clients speak Socket.IO.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SocketIo {
    /// The namespace groups connect to unless they name their own (default `/`).
    #[serde(default = "default_namespace")]
    pub namespace: Spanned<String>,
    /// How the Engine.IO session travels.
    #[serde(default)]
    pub transport: Transport,
    /// CONNECT auth payload; `{{client}}` and `{{group}}` are filled in per client.
    #[schemars(with = "Option<serde_json::Map<String, serde_json::Value>>")]
    pub auth: Option<Spanned<toml::Table>>,
    /// On reconnect, ask the server to recover the session (Socket.IO 4.6+).
    #[serde(default = "default_true")]
    pub recovery: bool,
    /// Engine.IO protocol revision: 4 (Socket.IO 3 and 4 servers) or 3 (Socket.IO 2).
    #[serde(default = "default_eio")]
    #[schemars(extend("enum" = [3, 4]))]
    pub eio: Spanned<u8>,
    /// The server's Socket.IO path.
    #[serde(default = "default_sio_path")]
    pub path: Spanned<String>,
    /// Extra query parameters on every Engine.IO request.
    #[schemars(with = "Option<ScalarFields>")]
    pub query: Option<Spanned<toml::Table>>,
}

/// `[reconnect]`: what a client does when its connection is lost.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reconnect {
    /// `false` turns reconnecting off, as leaving out the table does.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// First and longest wait, e.g. `"100ms..5s"`.
    #[serde(default = "default_backoff")]
    #[schemars(with = "DurationRangeText")]
    pub backoff: Spanned<String>,
    /// Each wait is this many times the previous one.
    #[serde(default = "default_factor")]
    pub factor: Spanned<f64>,
    /// Each wait is randomised by up to this fraction either way.
    #[serde(default = "default_jitter")]
    pub jitter: Spanned<f64>,
    /// Attempts after one lost connection before the client gives up (default: no limit).
    pub max_attempts: Option<u32>,
}

/// What must come back, and the latency metric it feeds.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Metric name; defaults to the event name.
    pub name: Option<Spanned<String>>,
    /// The event tracked: an emit stream's event, or one the server sends.
    pub event: Spanned<String>,
    /// `"self"` (the echo of a client's own events), a group name (its members' events must
    /// reach every member of `to`), or `"server"` (events the server originates).
    #[serde(default = "default_from")]
    pub from: Spanned<String>,
    /// The receiving groups of a group's or the server's events (default: every group).
    pub to: Option<Spanned<Vec<Spanned<String>>>>,
    /// `from = "server"`: JSON pointer to the server's sequence number in the payload.
    pub seq: Option<Spanned<String>>,
    /// `from = "server"`: JSON pointer to the server's send time (epoch), for one-way latency.
    pub timestamp: Option<Spanned<String>>,
    /// Unit of `timestamp`: `"ms"` (default) or `"us"`.
    #[schemars(extend("enum" = ["ms", "us"]))]
    pub timestamp_unit: Option<Spanned<String>>,
    /// An arrival later than this after its scheduled send counts as late.
    pub within: Option<DurationText>,
    /// `from = "server"`: JSON pointer to a field that keys the stream (`"/channel"`): each value
    /// is its own numbered stream.
    pub stream: Option<Spanned<String>>,
}

fn spanned<T>(value: T) -> Spanned<T> {
    Spanned::new(0..0, value)
}
fn default_target() -> Spanned<String> {
    spanned("builtin".into())
}
fn default_protocol() -> Spanned<String> {
    spanned("ws".into())
}
fn default_from() -> Spanned<String> {
    spanned("self".into())
}
fn default_pick() -> Pick {
    Pick::Sequential
}
fn default_true() -> bool {
    true
}
fn default_namespace() -> Spanned<String> {
    spanned("/".into())
}
fn default_eio() -> Spanned<u8> {
    spanned(4)
}
fn default_sio_path() -> Spanned<String> {
    spanned("/socket.io/".into())
}
fn default_backoff() -> Spanned<String> {
    spanned("1s..5s".into())
}
fn default_factor() -> Spanned<f64> {
    spanned(2.0)
}
fn default_jitter() -> Spanned<f64> {
    spanned(0.5)
}
fn default_ramp() -> Ramp {
    Ramp::Over(std::time::Duration::ZERO)
}
fn default_drain() -> DurationText {
    DurationText(std::time::Duration::from_secs(2))
}
fn default_connect_timeout() -> DurationText {
    DurationText(std::time::Duration::from_secs(10))
}
