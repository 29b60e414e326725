//! The user's part of a capture: the HTTP calls before (and during) the connection, the
//! connection itself, and what the client said and heard, sorted into what a scenario says:
//! steps (emits, think times, waits for an answer), emit streams (an event repeated at a steady
//! pace), replies (messages that answered a push, acknowledgements the client gave), and what
//! must come back (echoes, acknowledgements, numbered server streams). `items` decodes the
//! messages, `http` reads the calls and the connection, `replies` and `streams` hold their rules.

mod http;
mod items;
mod replies;
mod streams;

use serde_json::Value;

use super::capture::{Capture, Socket};
use super::filter::CaptureFilter;
use super::values::Values;
use crate::protocol::engineio;
use crate::transport::engine::Transport;
use crate::wire::record::Dir;
use items::Item;

/// A pause shorter than this is not a think time.
pub const MIN_WAIT: f64 = 0.1;
/// An answer the client waited for comes this soon after what it sent.
const ANSWER_WITHIN: f64 = 2.0;
/// How long a `wait_for` step written for an awaited answer may wait.
pub const WAIT_FOR_TIMEOUT: &str = "5s";

/// What the scenario will say.
#[derive(Debug, Default)]
pub struct Conversation {
    pub source: String,
    pub started: Option<String>,
    /// `http://host:port` (Socket.IO) or `ws://host:port` (raw WebSocket).
    pub target: String,
    pub socketio: Option<SocketIoConnection>,
    /// Raw WebSocket: the path and query, templated.
    pub path: Option<String>,
    /// Headers of the connection request worth sending again (templated).
    pub headers: Vec<(String, String)>,
    /// `[http] base`, when the HTTP calls went to another origin than the connection.
    pub http_base: Option<String>,
    pub before_connect: Vec<Step>,
    pub on_connect: Vec<Step>,
    pub streams: Vec<Stream>,
    pub handlers: Vec<Handler>,
    pub expects: Vec<Expectation>,
    pub values: Values,
    /// Seconds from the connection (or the window's start) to its last message.
    pub length: f64,
    pub counts: Counts,
    /// Which connection: what, where, and its place in the file.
    pub connection: String,
}

#[derive(Debug, Default)]
pub struct Counts {
    pub exchanges: usize,
    pub skipped_exchanges: usize,
    pub sent: usize,
    pub received: usize,
}

#[derive(Debug)]
pub struct SocketIoConnection {
    pub namespace: String,
    pub transport: Transport,
    pub version: engineio::Version,
    pub path: String,
    pub auth: Option<Value>,
    pub query: Vec<(String, String)>,
}

/// A payload: none, one value (`data`), or several Socket.IO arguments (`args`).
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    None,
    Data(Value),
    Args(Vec<Value>),
}

#[derive(Debug)]
pub enum Step {
    Http {
        /// The step's number among those that can capture.
        id: usize,
        method: String,
        path: String,
        headers: Vec<(String, String)>,
        body: HttpBody,
        status: Option<u16>,
        /// Where it was in the capture.
        place: String,
    },
    Emit {
        id: usize,
        event: String,
        payload: Payload,
        ack: bool,
        place: String,
    },
    Wait(f64),
    WaitFor {
        id: usize,
        /// Socket.IO event name, or `*` with a match.
        event: String,
        matches: Option<String>,
        /// The metric's name (raw WebSocket: the answer's kind).
        name: Option<String>,
        place: String,
    },
}

#[derive(Debug)]
pub enum HttpBody {
    None,
    Json(Value),
    Form(Vec<(String, String)>),
    /// As written, with its Content-Type.
    Text(String, String),
}

#[derive(Debug)]
pub struct Stream {
    pub event: String,
    pub payload: Payload,
    /// The recorded gap between two events, in seconds.
    pub every: f64,
    pub ack: bool,
    pub count: usize,
    /// The fields that changed from event to event, and what they became.
    pub varying: Vec<String>,
}

#[derive(Debug)]
pub struct Handler {
    /// The kind of message it answers.
    pub push: String,
    /// Socket.IO event name.
    pub event: Option<String>,
    /// Raw WebSocket: `'/type == "ping"'`.
    pub matches: Option<String>,
    pub reply: Reply,
    pub count: usize,
}

#[derive(Debug)]
pub enum Reply {
    /// A message sent at once, its fields copied from the push where `copied` says.
    Emit {
        event: String,
        payload: Payload,
        copied: Vec<String>,
    },
    /// Socket.IO: the acknowledgement the server asked for, with these arguments.
    Answer(Vec<Value>),
}

#[derive(Debug)]
pub struct Expectation {
    pub event: String,
    pub name: String,
    /// `None`: the echo of the client's own; `Some`: a server stream with this `seq`.
    pub seq: Option<String>,
    pub stream: Option<String>,
    pub timestamp: Option<String>,
    pub count: usize,
    pub why: String,
}

/// Reads the conversation of the capture's one connection.
pub fn read(capture: &Capture, filter: &CaptureFilter) -> Result<Conversation, String> {
    let socket = pick_socket(capture, filter)?;
    if let Some(place) = &socket.messages_missing {
        return Err(format!(
            "{place} is a WebSocket without its messages (`_webSocketMessages`): the program that \
             wrote the HAR ({}) keeps none. Export the HAR from Chromium, or capture the session \
             with `volley inspect --jsonl`",
            capture.source
        ));
    }
    let mut c = Conversation {
        source: capture.source.clone(),
        started: capture.started.clone(),
        ..Conversation::default()
    };
    let start = filter.from.map_or(socket.at, |from| from.max(socket.at));
    let mut ids = 0..;
    let mut during = http::calls(capture, socket, &mut c, &mut ids);
    let items = items::decode(socket, &mut c)?;
    c.counts.sent = items.iter().filter(|i| i.dir == Dir::C2s).count();
    c.counts.received = items.len() - c.counts.sent;
    c.length = items.iter().map(|i| i.at).fold(start, f64::max) - start;
    c.values.sent_at(socket.at);
    http::connection(socket, &mut c);
    // Named by its path as the scenario writes it: a token in it is a placeholder by now.
    c.connection = match &c.path {
        Some(path) => format!(
            "WebSocket {}{path} ({})",
            socket.url.ws_origin(),
            socket.place
        ),
        None => format!(
            "Socket.IO session {}{} ({})",
            socket.url.http_origin(),
            socket.url.path,
            socket.place
        ),
    };

    let is_sio = socket.engine.is_some();
    // Replies run all along: they can use what any step captures.
    c.values.sent_at(f64::INFINITY);
    let (handlers, answered) = replies::find(&items, is_sio, &mut c.values);
    c.handlers = handlers;
    // What the client sent of its own accord: not replies, not acknowledgements it gave.
    let sent: Vec<usize> = (0..items.len())
        .filter(|&i| items[i].dir == Dir::C2s && !answered[i] && !items[i].is_ack())
        .collect();
    let in_stream = streams::find(&items, &sent, is_sio, &mut c);
    streams::server(&items, is_sio, &mut c.expects);

    let mut steps = steps(
        &items,
        &sent,
        &in_stream,
        is_sio,
        &c.handlers,
        &mut c.values,
        &mut ids,
    );
    steps.append(&mut during);
    steps.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut last = start;
    for (at, step) in steps {
        if at - last >= MIN_WAIT && !matches!(step, Step::WaitFor { .. }) {
            c.on_connect.push(Step::Wait(at - last));
        }
        last = at;
        c.on_connect.push(step);
    }
    unique_metric_names(&mut c);
    Ok(c)
}

/// The client's messages that are steps, in order, each with the answer it waited for.
fn steps(
    items: &[Item],
    sent: &[usize],
    in_stream: &[bool],
    is_sio: bool,
    handlers: &[Handler],
    values: &mut Values,
    ids: &mut std::ops::RangeFrom<usize>,
) -> Vec<(f64, Step)> {
    let handled: Vec<&str> = handlers.iter().map(|h| h.push.as_str()).collect();
    let once: Vec<String> = items::kinds_seen_once(items)
        .into_iter()
        .filter(|k| !handled.contains(&k.as_str()))
        .collect();
    let mut steps = Vec::new();
    for (n, &i) in sent.iter().enumerate() {
        if in_stream[i] {
            continue;
        }
        let item = &items[i];
        let id = ids.next().unwrap_or_default();
        values.sent_at(item.at);
        let args: Vec<Value> = item.args.iter().map(|a| values.json(a)).collect();
        let event = item.kind.clone().unwrap_or_else(|| "message".into());
        steps.push((
            item.at,
            Step::Emit {
                id,
                event,
                payload: payload_of(args, is_sio),
                ack: item.ack,
                place: item.place.clone(),
            },
        ));
        if let Some(answer) = items::acked_by(items, i) {
            let from = format!("the acknowledgement at {}", items[answer].place);
            values.offer_args(id, items[answer].at, &from, &items[answer].args);
        }
        // The first of a kind seen once, before the client's next message: awaited.
        let next = sent.get(n + 1).map_or(f64::INFINITY, |&j| items[j].at);
        let awaited = items[i..]
            .iter()
            .take_while(|r| r.at < next && r.at - item.at <= ANSWER_WITHIN)
            .find(|r| {
                r.dir == Dir::S2c
                    && !r.is_ack()
                    && r.kind.as_ref().is_some_and(|k| once.contains(k))
            });
        if let Some(answer) = awaited {
            let id = ids.next().unwrap_or_default();
            let kind = answer.kind.clone().unwrap_or_default();
            let (event, matches, name) = if is_sio {
                (kind, None, None)
            } else {
                let key = items::type_key(&answer.args[0]).unwrap_or("type");
                let matches = format!("/{key} == {}", Value::String(kind.clone()));
                ("*".to_string(), Some(matches), Some(metric_name(&kind)))
            };
            let from = format!("the answer at {}", answer.place);
            values.offer_args(id, answer.at, &from, &answer.args);
            steps.push((
                answer.at,
                Step::WaitFor {
                    id,
                    event,
                    matches,
                    name,
                    place: answer.place.clone(),
                },
            ));
        }
    }
    steps
}

/// The one connection to record, or why there is none or more than one.
fn pick_socket<'a>(capture: &'a Capture, filter: &CaptureFilter) -> Result<&'a Socket, String> {
    let talking: Vec<&Socket> = capture
        .sockets
        .iter()
        .filter(|s| !s.messages.is_empty() || s.messages_missing.is_some())
        .collect();
    match talking.as_slice() {
        [one] => Ok(one),
        [] => {
            let what = if filter.is_empty() {
                "the capture"
            } else {
                "the part of the capture --filter keeps"
            };
            Err(format!(
                "{what} holds no WebSocket or Socket.IO connection that sent or received a message \
                 ({} HTTP exchange(s), {} connection(s)): volley record replays a real-time conversation",
                capture.exchanges.len(),
                capture.sockets.len()
            ))
        }
        many => {
            let list: Vec<String> = many
                .iter()
                .map(|s| {
                    let (what, origin) = match s.engine {
                        Some(_) => ("Socket.IO", s.url.http_origin()),
                        None => ("WebSocket", s.url.ws_origin()),
                    };
                    format!(
                        "  conn={}: {what} {origin}{}, {:.1}s..{:.1}s, {} message(s)",
                        s.conn,
                        s.url.path,
                        s.at,
                        s.until,
                        s.messages.len()
                    )
                })
                .collect();
            Err(format!(
                "the capture holds {} connections; pick one with --filter conn=N (or a time window, \
                 --filter from=10s,to=40s):\n{}",
                many.len(),
                list.join("\n")
            ))
        }
    }
}

/// Arguments as a payload: none, one (`data`; Socket.IO: an object), or several (`args`).
fn payload_of(mut args: Vec<Value>, is_sio: bool) -> Payload {
    match args.len() {
        0 => Payload::None,
        1 if !is_sio || args[0].is_object() => Payload::Data(args.remove(0)),
        _ => Payload::Args(args),
    }
}

/// A metric name for an event: letters, digits, `_`, `-` and `.`.
fn metric_name(event: &str) -> String {
    let name: String = event
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "event".into()
    } else {
        name
    }
}

/// Gives every expect and awaited answer a metric name of its own, none of volley's (`connect`
/// and its phases, `ack`, `reconnect`). An awaited Socket.IO event is its own metric's name
/// unless that name is not one, or is taken.
fn unique_metric_names(c: &mut Conversation) {
    let mut taken: Vec<String> = Vec::new();
    let mut unique = |name: &str| {
        let name = metric_name(name);
        let base = if ["connect", "ack", "reconnect"].contains(&name.as_str())
            || name.starts_with("connect_")
        {
            format!("{name}_event")
        } else {
            name
        };
        let mut candidate = base.clone();
        let mut k = 2;
        while taken.contains(&candidate) {
            candidate = format!("{base}_{k}");
            k += 1;
        }
        taken.push(candidate.clone());
        candidate
    };
    for e in &mut c.expects {
        e.name = unique(&e.name);
    }
    for step in &mut c.on_connect {
        if let Step::WaitFor { event, name, .. } = step {
            let metric = unique(name.as_deref().unwrap_or(event));
            if name.is_some() || metric != *event {
                *name = Some(metric);
            }
        }
    }
}
