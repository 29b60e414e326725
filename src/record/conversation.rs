//! The user's part of a capture: the HTTP calls before (and during) the connection, the
//! connection itself, and what the client said and heard, sorted into what a scenario says:
//! steps (emits, think times, waits for an answer), emit streams (an event repeated at a steady
//! pace), replies (messages that answered a push), and what must come back (echoes,
//! acknowledgements, numbered server streams).

use std::collections::HashMap;

use serde_json::Value;

use super::capture::{Capture, Exchange, Socket, Url, header, parse_query};
use super::filter::CaptureFilter;
use super::literal::{Literal, literal};
use super::values::{Source, Values, leaves_of};
use super::{engine_version, is_text_media};
use crate::protocol::socketio;
use crate::secrets::is_secret_name;
use crate::wire::record::Dir;

/// A reply comes this soon after the push it answers.
const REPLY_WITHIN: f64 = 0.25;
/// A pause shorter than this is not a think time.
const MIN_WAIT: f64 = 0.1;
/// An event sent this many times in a row at a steady pace is a stream.
const MIN_STREAM: usize = 3;
/// An answer the client waited for comes this soon after what it sent.
const ANSWER_WITHIN: f64 = 2.0;

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
    /// Seconds from the connection to its last message.
    pub length: f64,
    pub counts: Counts,
    /// Which connection, and which others the capture held.
    pub connection: String,
}

#[derive(Debug, Default)]
pub struct Counts {
    pub exchanges: usize,
    pub skipped_exchanges: usize,
    pub sent: usize,
    pub received: usize,
}

#[derive(Debug, Default)]
pub struct SocketIoConnection {
    pub namespace: String,
    /// `websocket`, `polling` or `polling-upgrade`.
    pub transport: &'static str,
    pub eio: u8,
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
        /// Index into the values' steps, for its captures.
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
        /// The metric's name (raw WebSocket: the answer's kind).
        name: Option<String>,
        matches: Option<String>,
        place: String,
    },
}

#[derive(Debug)]
pub enum HttpBody {
    None,
    Json(Value),
    Form(Vec<(String, String)>),
    Text(String),
}

#[derive(Debug)]
pub struct Stream {
    pub event: String,
    pub payload: Payload,
    /// The recorded gap between two events, in seconds.
    pub every: f64,
    pub ack: bool,
    pub count: usize,
    pub varying: Vec<String>,
}

#[derive(Debug)]
pub struct Handler {
    /// The kind of push it answers.
    pub push: Option<String>,
    /// Socket.IO event name.
    pub event: Option<String>,
    /// Raw WebSocket: `'/type == "ping"'`.
    pub matches: Option<String>,
    pub emit: String,
    pub payload: Payload,
    pub count: usize,
    pub copied: Vec<String>,
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

/// One message of the conversation, decoded.
#[derive(Debug, Clone)]
struct Item {
    at: f64,
    dir: Dir,
    /// Socket.IO: the event name; raw: the value of the message's type field, if any.
    kind: Option<String>,
    /// Socket.IO: the arguments; raw: the message as JSON (a string when it is not JSON).
    args: Vec<Value>,
    /// Socket.IO: the ack id of an EVENT or an ACK.
    id: Option<u64>,
    ack: bool,
    place: String,
}

/// Keys whose string value names a raw message's kind.
const TYPE_KEYS: &[&str] = &[
    "type", "event", "action", "op", "kind", "cmd", "method", "topic",
];

/// Reads the conversation of the capture's one connection.
pub fn read(capture: &Capture, filter: &CaptureFilter) -> Result<Conversation, String> {
    let socket = pick_socket(capture, filter)?;
    let mut c = Conversation {
        source: capture.source.clone(),
        started: capture.started.clone(),
        length: socket.until - socket.at,
        ..Conversation::default()
    };
    let (what, origin) = match socket.engine {
        Some(_) => ("Socket.IO session", socket.url.http_origin()),
        None => ("WebSocket", socket.url.ws_origin()),
    };
    c.connection = format!("{what} {origin}{} ({})", socket.url.path, socket.place);
    let is_sio = socket.engine.is_some();
    let mut next_id = 0;
    let mut id = || {
        next_id += 1;
        next_id - 1
    };

    // HTTP calls: those before the connection are before_connect steps; later ones, on_connect.
    let origin = socket.url.http_origin();
    let mut http_origins: Vec<String> = Vec::new();
    let mut during: Vec<(f64, Step)> = Vec::new();
    for exchange in &capture.exchanges {
        if !is_call(exchange) {
            c.counts.skipped_exchanges += 1;
            continue;
        }
        if exchange.at > socket.until {
            continue; // After the conversation: no step of the scenario.
        }
        if !is_sendable_method(&exchange.method) {
            c.values.notes.push(format!(
                "{}: the call's method {:?} is not one volley sends (upper-case letters): it is left out",
                exchange.place, exchange.method
            ));
            continue;
        }
        c.counts.exchanges += 1;
        c.values.sent_at(exchange.at);
        let step = http_step(exchange, id(), &mut c.values);
        let o = exchange.url.http_origin();
        if !http_origins.contains(&o) {
            http_origins.push(o);
        }
        if exchange.at < socket.at {
            c.before_connect.push(step);
        } else {
            during.push((exchange.at, step));
        }
    }
    if let Some(other) = http_origins.iter().find(|o| **o != origin) {
        c.http_base = Some(other.clone());
        if http_origins.len() > 1 {
            c.values.notes.push(format!(
                "The HTTP calls went to {}; [http] base takes the first other than the connection's.",
                http_origins.join(", ")
            ));
        }
    }

    // The connection: it can use what the before_connect steps captured.
    c.values.sent_at(socket.at);
    let items = decode(socket, &mut c)?;
    c.counts.sent = items.iter().filter(|i| i.dir == Dir::C2s).count();
    c.counts.received = items.len() - c.counts.sent;
    connection(socket, &mut c);

    // Replies and streams run all along: they can use what any step captures.
    c.values.sent_at(f64::INFINITY);
    // Replies: what the client sent right after a push of some kind, copying from it.
    let (handlers, replies) = find_replies(&items, is_sio, &mut c.values);
    c.handlers = handlers;
    // Echoes: what came back exactly as sent.
    let echoed: Vec<bool> = echoes(&items);
    // Streams: an event the client sent again and again at a steady pace.
    let sent: Vec<usize> = (0..items.len())
        .filter(|&i| items[i].dir == Dir::C2s && !replies[i])
        .collect();
    let mut in_stream = vec![false; items.len()];
    let runs = runs_of(&items, &sent);
    for run in runs {
        let first = &items[run[0]];
        let kind = first.kind.clone().unwrap_or_else(|| "message".into());
        let every = (items[*run.last().unwrap()].at - first.at) / (run.len() - 1) as f64;
        let (payload, varying) = stream_payload(&items, &run, is_sio, &mut c.values);
        let ack = run.iter().all(|&i| items[i].ack);
        let back = run.iter().filter(|&&i| echoed[i]).count();
        if back * 2 >= run.len() && back > 0 {
            c.expects.push(Expectation {
                event: kind.clone(),
                name: metric_name(&kind),
                seq: None,
                stream: None,
                timestamp: None,
                count: back,
                why: format!(
                    "{back} of the {} `{kind}` events sent came back as sent",
                    run.len()
                ),
            });
        }
        for &i in &run {
            in_stream[i] = true;
        }
        c.streams.push(Stream {
            event: kind,
            payload,
            every,
            ack,
            count: run.len(),
            varying,
        });
    }
    // Server streams: pushes numbered one after another.
    let taken_kinds: Vec<String> = c.expects.iter().map(|e| e.event.clone()).collect();
    server_streams(&items, is_sio, &taken_kinds, &mut c.expects);

    // Steps: the rest of what the client sent, in order, with the pauses between, and the
    // answers it waited for.
    let handled: Vec<String> = c.handlers.iter().filter_map(|h| h.push.clone()).collect();
    let once: Vec<String> = kinds_seen_once(&items)
        .into_iter()
        .filter(|k| !handled.contains(k))
        .collect();
    let mut last = socket.at;
    let mut steps: Vec<(f64, Step)> = Vec::new();
    for (n, &i) in sent.iter().enumerate() {
        if in_stream[i] {
            continue;
        }
        let item = &items[i];
        let step_id = id();
        c.values.sent_at(item.at);
        let (event, payload) = step_payload(item, is_sio, &mut c.values);
        steps.push((
            item.at,
            Step::Emit {
                id: step_id,
                event,
                payload,
                ack: item.ack,
                place: item.place.clone(),
            },
        ));
        if let Some(answer) = acked_by(&items, i) {
            let from = format!("the acknowledgement at {}", items[answer].place);
            offer_args(&mut c.values, step_id, item.at, &from, &items[answer].args);
        }
        // The first of a kind seen once, before the client's next message: awaited.
        let next = sent.get(n + 1).map_or(f64::INFINITY, |&j| items[j].at);
        let awaited = items.iter().find(|r| {
            r.dir == Dir::S2c
                && r.at >= item.at
                && r.at < next
                && r.at - item.at <= ANSWER_WITHIN
                && !r.ack
                && r.kind.as_ref().is_some_and(|k| once.contains(k))
        });
        if let Some(answer) = awaited {
            let wait_id = id();
            let kind = answer.kind.clone().unwrap_or_default();
            let (event, matches, name) = if is_sio {
                (kind, None, None)
            } else {
                let key = type_key(&answer.args[0]).unwrap_or("type");
                let name = Some(metric_name(&kind));
                let matches = Some(format!("/{key} == {}", Value::String(kind)));
                ("*".to_string(), matches, name)
            };
            let from = format!("the answer at {}", answer.place);
            offer_args(&mut c.values, wait_id, answer.at, &from, &answer.args);
            steps.push((
                answer.at,
                Step::WaitFor {
                    id: wait_id,
                    event,
                    matches,
                    name,
                    place: answer.place.clone(),
                },
            ));
        }
    }
    steps.extend(during);
    steps.sort_by(|a, b| a.0.total_cmp(&b.0));
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

/// The one connection to record, or why there is none or more than one.
fn pick_socket<'a>(capture: &'a Capture, filter: &CaptureFilter) -> Result<&'a Socket, String> {
    let talking: Vec<&Socket> = capture
        .sockets
        .iter()
        .filter(|s| !s.messages.is_empty())
        .collect();
    match talking.as_slice() {
        [one] => Ok(one),
        [] => {
            let what = if filter.is_empty() {
                "The capture"
            } else {
                "The part of the capture --filter keeps"
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
                    format!(
                        "  conn={}: {} {}{}, {:.1}s..{:.1}s, {} message(s)",
                        s.conn,
                        if s.engine.is_some() {
                            "Socket.IO"
                        } else {
                            "WebSocket"
                        },
                        s.url.ws_origin(),
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

/// Whether an exchange is a call the user's code made (not the page, its scripts and images).
fn is_call(e: &Exchange) -> bool {
    if let Some(kind) = &e.resource_type {
        return matches!(kind.as_str(), "xhr" | "fetch") || (kind == "other" && e.method != "GET");
    }
    if e.method == "OPTIONS" || e.url.path == "/favicon.ico" || engine_version(&e.url).is_some() {
        return false;
    }
    if e.method != "GET" {
        return true;
    }
    let mime =
        super::capture::media_type(header(&e.response_headers, "content-type").unwrap_or(""));
    let page = mime.starts_with("text/html")
        || mime.starts_with("text/css")
        || mime.contains("javascript")
        || mime.starts_with("image/")
        || mime.starts_with("font/");
    let asset = [
        ".js", ".css", ".png", ".jpg", ".svg", ".ico", ".woff", ".woff2", ".map", ".html",
    ]
    .iter()
    .any(|ext| e.url.path.ends_with(ext));
    !page && !asset
}

/// Whether an HTTP step can send `method`: a method as volley writes them, in upper case.
fn is_sendable_method(method: &str) -> bool {
    !method.is_empty()
        && method.bytes().all(|b| b.is_ascii_uppercase())
        && http::Method::from_bytes(method.as_bytes()).is_ok()
}

/// The request headers a replay sends as recorded, templated: not those it sends itself or the
/// browser adds, each name once (the first), and only what HTTP allows (the others noted).
fn replayed_headers(
    headers: &[(String, String)],
    place: &str,
    values: &mut Values,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, value) in headers {
        if is_own_header(name) || out.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            continue;
        }
        let valid = http::HeaderName::from_bytes(name.as_bytes()).is_ok()
            && http::HeaderValue::from_str(value).is_ok();
        if !valid {
            values.notes.push(format!(
                "{place}: header {name:?} has characters HTTP does not allow: it is left out"
            ));
            continue;
        }
        let value = values.string(name, value);
        out.push((name.clone(), value));
    }
    out
}

/// Request headers a replay sends itself, or the browser adds on its own.
fn is_own_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    const OWN: &[&str] = &[
        "host",
        "connection",
        "content-length",
        "content-type",
        "accept",
        "accept-encoding",
        "accept-language",
        "user-agent",
        "origin",
        "referer",
        "cookie",
        "cache-control",
        "pragma",
        "upgrade",
        "dnt",
        "priority",
        "te",
        "keep-alive",
        "transfer-encoding",
        "if-none-match",
        "if-modified-since",
        "upgrade-insecure-requests",
    ];
    OWN.contains(&lower.as_str()) || lower.starts_with("sec-")
}

fn http_step(e: &Exchange, id: usize, values: &mut Values) -> Step {
    let path = path_template(&e.url, values, true);
    let headers = replayed_headers(&e.request_headers, &e.place, values);
    let body = match &e.request_body {
        None => HttpBody::None,
        Some(b) if b.text.is_empty() => HttpBody::None,
        Some(b) if b.mime.contains("json") => match serde_json::from_str::<Value>(&b.text) {
            Ok(json @ (Value::Object(_) | Value::Array(_))) => HttpBody::Json(values.json(&json)),
            _ => HttpBody::Text(values.string("", &b.text)),
        },
        Some(b) if b.mime == "application/x-www-form-urlencoded" => {
            let pairs = parse_query(&b.text);
            let as_json = Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            );
            match values.json(&as_json) {
                Value::Object(map) => HttpBody::Form(
                    map.into_iter()
                        .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
                        .collect(),
                ),
                _ => HttpBody::None,
            }
        }
        // JSON sent as text (`fetch` with a body and no Content-Type): its fields templated.
        Some(b) if is_text_media(&b.mime) || b.mime.is_empty() => {
            match serde_json::from_str::<Value>(&b.text) {
                Ok(json @ (Value::Object(_) | Value::Array(_))) => {
                    HttpBody::Text(values.json(&json).to_string())
                }
                _ => HttpBody::Text(values.string("", &b.text)),
            }
        }
        Some(_) => HttpBody::None,
    };
    // What the answer carried, for later requests.
    if let Some(body) = &e.response_body {
        if let Ok(json) = serde_json::from_str::<Value>(&body.text) {
            values.offer_json(id, e.at, &format!("the answer to {}", e.place), &json);
        }
    }
    for (k, v) in &e.response_headers {
        values.offer_header(id, e.at, &format!("the answer to {}", e.place), k, v);
    }
    Step::Http {
        id,
        method: e.method.clone(),
        path,
        headers,
        body,
        status: e.status,
        place: e.place.clone(),
    }
}

/// A URL's path and query as a template: the query's values templated (and percent-encoded
/// again: the capture decoded them), and with `segment` the first path segment that an answer
/// or the user's row holds.
fn path_template(url: &Url, values: &mut Values, segment: bool) -> String {
    let mut templated = !segment;
    let mut path: Vec<String> = Vec::new();
    for (n, part) in url.path.split('/').enumerate() {
        let plain = literal(part, Literal::Text);
        if n == 0 || templated {
            path.push(plain);
            continue;
        }
        let template = values.string("", part);
        templated = template != plain;
        path.push(template);
    }
    let mut path = path.join("/");
    let query: Vec<String> = url
        .query
        .iter()
        .map(|(k, v)| {
            let value = values.string_as(k, v, Literal::Query);
            format!("{}={value}", literal(k, Literal::Query))
        })
        .collect();
    if !query.is_empty() {
        path = format!("{path}?{}", query.join("&"));
    }
    path
}

/// The connection's settings: target, path or Socket.IO's, headers.
fn connection(socket: &Socket, c: &mut Conversation) {
    let url = &socket.url;
    c.headers = replayed_headers(&socket.request_headers, &socket.place, &mut c.values);
    match &socket.engine {
        None => {
            c.target = url.ws_origin();
            c.path = Some(path_template(url, &mut c.values, false));
        }
        Some(engine) => {
            c.target = url.http_origin();
            let transport = match (engine.polling, engine.websocket) {
                (true, true) => "polling-upgrade",
                (true, false) => "polling",
                _ => "websocket",
            };
            let sio = c.socketio.get_or_insert_with(SocketIoConnection::default);
            sio.transport = transport;
            sio.eio = engine.version;
            sio.path = url.path.clone();
            const ENGINE_KEYS: &[&str] = &["EIO", "transport", "sid", "t", "b64", "j"];
            let extra: Vec<(String, String)> = url
                .query
                .iter()
                .filter(|(k, _)| !ENGINE_KEYS.contains(&k.as_str()))
                .cloned()
                .collect();
            let mut query: Vec<(String, String)> = Vec::new();
            for (k, v) in extra {
                // A table has each key once: the first value of a repeated one.
                if !query.iter().any(|(q, _)| *q == k) {
                    let v = c.values.string(&k, &v);
                    query.push((k, v));
                }
            }
            if let Some(sio) = &mut c.socketio {
                sio.query = query;
            }
        }
    }
}

/// The messages of the socket as items; Engine.IO's own packets left out, Socket.IO decoded.
fn decode(socket: &Socket, c: &mut Conversation) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    let mut binary = 0;
    let mut namespace: Option<String> = None;
    // Engine.IO v3 (Socket.IO 2): the client is in `/` without a CONNECT of its own; it sends
    // one only for another namespace.
    let v3 = socket.engine.as_ref().is_some_and(|e| e.version == 3);
    if v3
        && !socket
            .messages
            .iter()
            .any(|m| m.dir == Dir::C2s && m.text.starts_with("40"))
    {
        namespace = Some("/".into());
        c.socketio
            .get_or_insert_with(SocketIoConnection::default)
            .namespace = "/".into();
    }
    for m in &socket.messages {
        if m.binary {
            binary += 1;
            continue;
        }
        if socket.engine.is_none() {
            let json = serde_json::from_str::<Value>(&m.text)
                .unwrap_or_else(|_| Value::String(m.text.clone()));
            items.push(Item {
                at: m.at,
                dir: m.dir,
                kind: type_key(&json).and_then(|k| json.get(k)?.as_str().map(str::to_string)),
                args: vec![json],
                id: None,
                ack: false,
                place: m.place.clone(),
            });
            continue;
        }
        // Engine.IO: only message packets carry the conversation.
        let Some(packet) = m.text.strip_prefix('4') else {
            continue;
        };
        let Ok(p) = socketio::decode(packet) else {
            c.values.notes.push(format!(
                "{}: a Socket.IO packet that does not decode was left out",
                m.place
            ));
            continue;
        };
        if p.attachments > 0 {
            binary += 1;
            continue;
        }
        let data = if p.data.is_empty() {
            None
        } else {
            serde_json::from_str::<Value>(p.data).ok()
        };
        match p.kind {
            socketio::Kind::Connect if m.dir == Dir::C2s => {
                let sio = c.socketio.get_or_insert_with(SocketIoConnection::default);
                if namespace.is_none() {
                    socketio::check_namespace(p.namespace).map_err(|why| {
                        format!(
                            "{}: the client connected to a namespace volley cannot: {why}",
                            m.place
                        )
                    })?;
                    namespace = Some(p.namespace.to_string());
                    sio.namespace = p.namespace.to_string();
                    sio.auth = match data {
                        // Socket.IO 2 servers take no CONNECT auth.
                        Some(Value::Object(map)) if !map.is_empty() && v3 => {
                            c.values.notes.push(format!(
                                "{}: the CONNECT carried a payload, which Socket.IO 2 (eio = 3) servers do not read: the scenario sends none",
                                m.place
                            ));
                            None
                        }
                        Some(Value::Object(map)) if !map.is_empty() => {
                            Some(c.values.json(&Value::Object(map)))
                        }
                        _ => None,
                    };
                    if p.data.contains(crate::secrets::REDACTED) && sio.auth.is_none() {
                        c.values.notes.push(
                            "The capture hid the whole CONNECT auth payload: the scenario sends none; capture again with --show-secrets, or add [socketio] auth".into(),
                        );
                    }
                } else if namespace.as_deref() != Some(p.namespace) {
                    c.values.notes.push(format!(
                        "The client also connected to namespace `{}`; only `{}` is recorded",
                        p.namespace,
                        namespace.as_deref().unwrap_or("/")
                    ));
                }
            }
            socketio::Kind::Event | socketio::Kind::Ack
                if Some(p.namespace) == namespace.as_deref() || namespace.is_none() =>
            {
                let mut args = match data {
                    Some(Value::Array(args)) => args,
                    _ => continue,
                };
                let (kind, ack) = if p.kind == socketio::Kind::Event {
                    if args.is_empty() {
                        continue;
                    }
                    (args.remove(0).as_str().map(str::to_string), false)
                } else {
                    (None, true)
                };
                items.push(Item {
                    at: m.at,
                    dir: m.dir,
                    kind,
                    args,
                    id: p.id,
                    ack,
                    place: m.place.clone(),
                });
            }
            _ => {}
        }
    }
    // An EVENT the server acknowledged asked for it.
    let acked: Vec<(Dir, u64)> = items
        .iter()
        .filter(|i| i.ack)
        .filter_map(|i| Some((i.dir, i.id?)))
        .collect();
    for item in items.iter_mut().filter(|i| !i.ack) {
        if let Some(id) = item.id {
            if acked.contains(&(item.dir.other(), id)) {
                item.ack = true;
            }
        }
    }
    // `ack` on an ACK item means "is an ACK"; on an EVENT it now means "was acknowledged".
    if binary > 0 {
        c.values.notes.push(format!(
            "{binary} binary message(s) were left out: a recorded scenario sends text"
        ));
    }
    if socket.engine.is_some() && namespace.is_none() {
        return Err("the Socket.IO session never connected to a namespace (no CONNECT packet from the client)".into());
    }
    Ok(items)
}

/// The field that names a raw message's kind.
fn type_key(json: &Value) -> Option<&'static str> {
    let map = json.as_object()?;
    TYPE_KEYS
        .iter()
        .copied()
        .find(|k| map.get(*k).is_some_and(Value::is_string))
}

/// The ACK item that answers the EVENT at `i`.
fn acked_by(items: &[Item], i: usize) -> Option<usize> {
    let id = items[i].id?;
    (i + 1..items.len()).find(|&j| {
        items[j].dir != items[i].dir && items[j].id == Some(id) && items[j].kind.is_none()
    })
}

/// Offers the first argument's leaves of an answer to later steps.
fn offer_args(values: &mut Values, step: usize, at: f64, from: &str, args: &[Value]) {
    if let Some(first) = args.first() {
        values.offer_json(step, at, from, first);
    }
}

/// The kind of a push and the kind of the client's reply to it.
type ReplyKinds = (String, String);

/// Handlers for pushes the client answered at once, and which items were such answers.
fn find_replies(items: &[Item], is_sio: bool, values: &mut Values) -> (Vec<Handler>, Vec<bool>) {
    let mut replies = vec![false; items.len()];
    // (push kind, reply kind) -> the (push, reply) pairs.
    let mut pairs: Vec<(ReplyKinds, Vec<(usize, usize)>)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if item.dir != Dir::C2s || item.ack {
            continue;
        }
        let Some(reply_kind) = &item.kind else {
            continue;
        };
        // The push just before it.
        let push = (0..i)
            .rev()
            .take_while(|&j| item.at - items[j].at <= REPLY_WITHIN)
            .find(|&j| {
                items[j].dir == Dir::S2c
                    && !items[j].ack
                    && items[j].kind.is_some()
                    && copies(&items[j], item)
            });
        if let Some(j) = push {
            let key = (
                items[j].kind.clone().unwrap_or_default(),
                reply_kind.clone(),
            );
            match pairs.iter_mut().find(|(k, _)| *k == key) {
                Some((_, list)) => list.push((j, i)),
                None => pairs.push((key, vec![(j, i)])),
            }
        }
    }
    let mut handlers = Vec::new();
    for ((push_kind, reply_kind), list) in pairs {
        let pushes = items
            .iter()
            .filter(|it| it.dir == Dir::S2c && it.kind.as_deref() == Some(&push_kind))
            .count();
        // A reply to most pushes of the kind (the last may come as the capture ends).
        if list.len() * 2 < pushes {
            continue;
        }
        let (push, reply) = list[0];
        let (payload, copied) = reply_payload(&items[push], &items[reply], is_sio, values);
        for &(_, r) in &list {
            replies[r] = true;
        }
        let (event, matches) = if is_sio {
            (Some(push_kind.clone()), None)
        } else {
            let key = type_key(&items[push].args[0]).unwrap_or("type");
            (
                None,
                Some(format!("/{key} == {}", Value::String(push_kind.clone()))),
            )
        };
        handlers.push(Handler {
            push: Some(push_kind.clone()),
            event,
            matches,
            emit: reply_kind,
            payload,
            count: list.len(),
            copied,
        });
    }
    (handlers, replies)
}

/// Whether `reply` copies a value of `push` (an id), or its kind answers the push's (ping, pong).
fn copies(push: &Item, reply: &Item) -> bool {
    let pair = |a: &str, b: &str| {
        push.kind
            .as_deref()
            .is_some_and(|k| k.eq_ignore_ascii_case(a))
            && reply
                .kind
                .as_deref()
                .is_some_and(|k| k.eq_ignore_ascii_case(b))
    };
    if pair("ping", "pong") || pair("heartbeat", "heartbeat") {
        return true;
    }
    let mut from = Vec::new();
    for a in &push.args {
        leaves_of(a, String::new(), &mut from);
    }
    let mut to = Vec::new();
    for a in &reply.args {
        leaves_of(a, String::new(), &mut to);
    }
    to.iter().any(|(p, v)| {
        !is_kind_pointer(p)
            && !v.is_boolean()
            && !v.is_null()
            && from.iter().any(|(q, w)| {
                w == v
                    && !is_kind_pointer(q)
                    && super::values::last_key(p) == super::values::last_key(q)
            })
    })
}

fn is_kind_pointer(pointer: &str) -> bool {
    TYPE_KEYS.iter().any(|k| pointer == format!("/{k}"))
}

/// A reply's payload: the fields it copied from the push read from the received event, the
/// others what the client sent (a credential a column, a value an answer carried a capture).
fn reply_payload(
    push: &Item,
    reply: &Item,
    is_sio: bool,
    values: &mut Values,
) -> (Payload, Vec<String>) {
    let mut copied = Vec::new();
    let mut from = Vec::new();
    if let Some(first) = push.args.first() {
        leaves_of(first, String::new(), &mut from);
    }
    // Templated before the copies are put in: `values` keeps the shape, so the pointers hold.
    let mut args: Vec<Value> = reply.args.iter().map(|a| values.json(a)).collect();
    if let (Some(first), Some(recorded)) = (args.first_mut(), reply.args.first()) {
        let mut to = Vec::new();
        leaves_of(recorded, String::new(), &mut to);
        for (p, v) in to {
            if is_kind_pointer(&p) {
                continue;
            }
            // `{{/pointer}}` ends at the first `}}`: a pointer with braces cannot be one.
            if let Some((q, _)) = from.iter().find(|(q, w)| {
                *w == v
                    && super::values::last_key(q) == super::values::last_key(&p)
                    && !q.contains(['{', '}'])
            }) {
                if let Some(slot) = first.pointer_mut(&p) {
                    *slot = Value::String(format!("{{{{{q}}}}}"));
                    copied.push(q.clone());
                }
            }
        }
    }
    (payload_of(args, is_sio), copied)
}

fn payload_of(mut args: Vec<Value>, is_sio: bool) -> Payload {
    match args.len() {
        0 => Payload::None,
        1 if !is_sio || args[0].is_object() => Payload::Data(args.remove(0)),
        _ => Payload::Args(args),
    }
}

/// For each item, whether it is a client message that came back exactly as sent.
fn echoes(items: &[Item]) -> Vec<bool> {
    let mut out = vec![false; items.len()];
    for (i, item) in items.iter().enumerate() {
        if item.dir != Dir::C2s || item.ack {
            continue;
        }
        out[i] = items[i + 1..]
            .iter()
            .take_while(|r| r.at - item.at <= ANSWER_WITHIN)
            .any(|r| r.dir == Dir::S2c && !r.ack && r.kind == item.kind && r.args == item.args);
    }
    out
}

/// Runs of at least [`MIN_STREAM`] messages of one kind in a row among the client's, at a
/// steady pace (no gap over twice the median).
fn runs_of(items: &[Item], sent: &[usize]) -> Vec<Vec<usize>> {
    let mut runs: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let close = |current: &mut Vec<usize>, runs: &mut Vec<Vec<usize>>| {
        if current.len() >= MIN_STREAM && steady(items, current) {
            runs.push(std::mem::take(current));
        }
        current.clear();
    };
    for &i in sent {
        let same = current
            .last()
            .is_some_and(|&j| items[j].kind == items[i].kind && items[j].kind.is_some());
        if !same {
            close(&mut current, &mut runs);
        }
        current.push(i);
    }
    close(&mut current, &mut runs);
    runs
}

fn steady(items: &[Item], run: &[usize]) -> bool {
    let mut gaps: Vec<f64> = run
        .windows(2)
        .map(|w| items[w[1]].at - items[w[0]].at)
        .collect();
    gaps.sort_by(f64::total_cmp);
    let median = gaps[gaps.len() / 2];
    median > 0.0 && gaps.last().is_some_and(|&g| g <= median * 2.0 + 0.02)
}

/// A stream's payload: the first event's, with values that changed from event to event made
/// placeholders: a counter `{{seq}}`, a time `{{now_ms}}`, other values `{{one_of(...)}}`.
fn stream_payload(
    items: &[Item],
    run: &[usize],
    is_sio: bool,
    values: &mut Values,
) -> (Payload, Vec<String>) {
    let mut varying = Vec::new();
    let mut first_leaves = Vec::new();
    for (n, a) in items[run[0]].args.iter().enumerate() {
        leaves_of(a, format!("/{n}"), &mut first_leaves);
    }
    // The first event as the client sent it, templated before the placeholders are put in:
    // `values` keeps the shape, so the pointers hold, and never reads a placeholder as a value.
    let mut whole = Value::Array(items[run[0]].args.iter().map(|a| values.json(a)).collect());
    for (pointer, first) in &first_leaves {
        let seen: Vec<Value> = run
            .iter()
            .filter_map(|&i| {
                Value::Array(items[i].args.clone())
                    .pointer(pointer)
                    .cloned()
            })
            .collect();
        if seen.iter().all(|v| v == first) {
            continue;
        }
        let key = super::values::last_key(pointer);
        if is_secret_name(&key) {
            // A secret: no list of its values; it is what the first event sent (a column).
            varying.push(format!(
                "`{key}` changes, a secret sent as the first event had it"
            ));
            continue;
        }
        let numbers: Vec<i64> = seen.iter().filter_map(Value::as_i64).collect();
        let counter = numbers.len() == seen.len()
            && numbers
                .windows(2)
                .all(|w| w[0].checked_add(1) == Some(w[1]));
        let placeholder = if counter {
            "{{seq}}".to_string()
        } else if numbers.len() == seen.len()
            && numbers
                .iter()
                .all(|&n| super::values::generated_number(n as u64).is_some())
        {
            "{{now_ms}}".to_string()
        } else if numbers.len() == seen.len() {
            format!(
                "{{{{int({}, {})}}}}",
                numbers.iter().min().unwrap(),
                numbers.iter().max().unwrap()
            )
        } else {
            let mut texts: Vec<String> = seen
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            texts.dedup();
            if texts.len() == seen.len()
                && texts.iter().all(|t| !t.contains([',', '(', ')', '{', '}']))
                && texts.len() <= 20
            {
                format!("{{{{one_of({})}}}}", texts.join(", "))
            } else {
                continue;
            }
        };
        if let Some(slot) = whole.pointer_mut(pointer) {
            *slot = Value::String(placeholder.clone());
        }
        varying.push(format!("`{key}` as {placeholder}"));
    }
    let args = match whole {
        Value::Array(args) => args,
        _ => Vec::new(),
    };
    (payload_of(args, is_sio), varying)
}

/// A step's event name and payload.
fn step_payload(item: &Item, is_sio: bool, values: &mut Values) -> (String, Payload) {
    let args: Vec<Value> = item.args.iter().map(|a| values.json(a)).collect();
    let event = item.kind.clone().unwrap_or_else(|| "message".into());
    (event, payload_of(args, is_sio))
}

/// Kinds of server message seen exactly once.
fn kinds_seen_once(items: &[Item]) -> Vec<String> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for item in items.iter().filter(|i| i.dir == Dir::S2c && !i.ack) {
        if let Some(k) = &item.kind {
            *counts.entry(k).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .filter(|(_, n)| *n == 1)
        .map(|(k, _)| k.to_string())
        .collect()
}

/// Pushes of a kind whose number field goes up by one each time (per key field, when one
/// splits them into streams): server-stream expects.
fn server_streams(items: &[Item], is_sio: bool, taken: &[String], expects: &mut Vec<Expectation>) {
    let mut by_kind: Vec<(String, Vec<&Item>)> = Vec::new();
    for item in items.iter().filter(|i| i.dir == Dir::S2c && !i.ack) {
        let Some(kind) = &item.kind else { continue };
        match by_kind.iter_mut().find(|(k, _)| k == kind) {
            Some((_, list)) => list.push(item),
            None => by_kind.push((kind.clone(), vec![item])),
        }
    }
    let mut found: Vec<Expectation> = Vec::new();
    for (kind, list) in by_kind {
        if list.len() < MIN_STREAM || taken.contains(&kind) {
            continue;
        }
        let first: Vec<(String, Value)> = {
            let mut leaves = Vec::new();
            if let Some(a) = list[0].args.first() {
                leaves_of(a, String::new(), &mut leaves);
            }
            leaves
        };
        let numbers: Vec<&String> = first
            .iter()
            .filter(|(_, v)| v.is_u64())
            .map(|(p, _)| p)
            .collect();
        let keys: Vec<Option<&String>> = std::iter::once(None)
            .chain(
                first
                    .iter()
                    .filter(|(p, v)| v.is_string() && !is_kind_pointer(p))
                    .map(|(p, _)| Some(p)),
            )
            .collect();
        'search: for seq in &numbers {
            for key in &keys {
                let mut last: HashMap<String, u64> = HashMap::new();
                let mut ok = true;
                for item in &list {
                    let arg = item.args.first();
                    let n = arg.and_then(|a| a.pointer(seq)).and_then(Value::as_u64);
                    let k = key.map_or(Some(String::new()), |k| {
                        arg.and_then(|a| a.pointer(k)).map(|v| v.to_string())
                    });
                    let (Some(n), Some(k)) = (n, k) else {
                        ok = false;
                        break;
                    };
                    if let Some(prev) = last.insert(k, n) {
                        if prev.checked_add(1) != Some(n) {
                            ok = false;
                            break;
                        }
                    }
                }
                let streams = last.len();
                // A key splits the pushes into streams of several each, not one per push.
                if ok && (key.is_none() || (streams > 1 && streams * 2 <= list.len())) {
                    let timestamp = first
                        .iter()
                        .find(|(p, v)| {
                            v.as_u64()
                                .and_then(super::values::generated_number)
                                .is_some()
                                && p != *seq
                        })
                        .map(|(p, _)| p.clone());
                    found.push(Expectation {
                        name: metric_name(&kind),
                        event: kind.clone(),
                        seq: Some((*seq).clone()),
                        stream: key.cloned(),
                        timestamp,
                        count: list.len(),
                        why: format!(
                            "the server pushed {} `{kind}` messages numbered one after another by `{seq}`{}",
                            list.len(),
                            key.map_or(String::new(), |k| format!(" within each `{k}`"))
                        ),
                    });
                    break 'search;
                }
            }
        }
    }
    if !is_sio && found.len() > 1 {
        // Raw WebSocket: one server stream (the messages are told apart by their seq field only).
        found.sort_by_key(|e| std::cmp::Reverse(e.count));
        found.truncate(1);
    }
    expects.extend(found);
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

/// What step a value came from, for its capture: re-exported for the writer.
pub fn captures(values: &Values, id: usize) -> Vec<(String, Source)> {
    values.captures_of(id)
}
