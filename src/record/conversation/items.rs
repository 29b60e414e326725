//! A socket's messages as items of the conversation: Engine.IO's own packets left out,
//! Socket.IO packets decoded into events and acknowledgements of one namespace, raw WebSocket
//! messages read as JSON and named by their kind field.

use serde_json::Value;

use super::{Conversation, SocketIoConnection};
use crate::protocol::{engineio, socketio};
use crate::record::capture::Socket;
use crate::transport::engine::Transport;
use crate::wire::record::Dir;

/// Keys whose string value names a raw message's kind, in the order they are looked for.
pub const TYPE_KEYS: &[&str] = &[
    "type", "event", "action", "op", "kind", "cmd", "method", "topic",
];

/// One message of the conversation, decoded.
#[derive(Debug, Clone)]
pub struct Item {
    pub at: f64,
    pub dir: Dir,
    /// Socket.IO: the event name (None for an ACK); raw: the value of its kind field, if any.
    pub kind: Option<String>,
    /// Socket.IO: the arguments; raw: the message as JSON (a string when it is not JSON).
    pub args: Vec<Value>,
    /// Socket.IO: the ack id of an EVENT or an ACK.
    pub id: Option<u64>,
    /// An EVENT the other side acknowledged, or an ACK itself (`kind` None).
    pub ack: bool,
    pub place: String,
}

impl Item {
    /// A Socket.IO ACK packet.
    pub fn is_ack(&self) -> bool {
        self.ack && self.kind.is_none() && self.id.is_some()
    }
}

/// The items of `socket`; the Socket.IO connection's namespace and auth go into `c`.
pub fn decode(socket: &Socket, c: &mut Conversation) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    let mut binary = 0;
    let mut namespace: Option<String> = None;
    // Engine.IO v3 (Socket.IO 2): the client is in `/` without a CONNECT of its own; it sends
    // one only for another namespace.
    let v3 = socket
        .engine
        .as_ref()
        .is_some_and(|e| e.version == engineio::Version::V3);
    let asks = socket
        .messages
        .iter()
        .any(|m| m.dir == Dir::C2s && m.text.starts_with("40"));
    if v3 && !asks {
        namespace = Some("/".into());
        c.socketio = Some(connection(socket, "/", None));
    }
    for m in &socket.messages {
        if m.binary {
            binary += 1;
            continue;
        }
        let Some(engine) = &socket.engine else {
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
        };
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
        let data = (!p.data.is_empty())
            .then(|| serde_json::from_str::<Value>(p.data).ok())
            .flatten();
        match p.kind {
            socketio::Kind::Connect if namespace.is_none() => {
                // A Socket.IO 2 client (Engine.IO 3) never asks for `/`: the server's CONNECT
                // says it is connected.
                let asked = m.dir == Dir::C2s;
                let given = engine.version == engineio::Version::V3 && p.namespace == "/";
                if !(asked || given) {
                    continue;
                }
                socketio::check_namespace(p.namespace).map_err(|why| {
                    format!(
                        "{}: the client connected to a namespace volley cannot: {why}",
                        m.place
                    )
                })?;
                namespace = Some(p.namespace.to_string());
                let auth = match data {
                    // Socket.IO 2 servers read no CONNECT payload.
                    Some(Value::Object(map)) if asked && !map.is_empty() && v3 => {
                        c.values.notes.push(format!(
                            "{}: the CONNECT carried a payload, which Socket.IO 2 (eio = 3) servers do not read: the scenario sends none",
                            m.place
                        ));
                        None
                    }
                    // Part of connecting: it can use what the before_connect steps captured.
                    Some(Value::Object(map)) if asked && !map.is_empty() => {
                        c.values.sent_at(socket.at);
                        Some(c.values.json(&Value::Object(map)))
                    }
                    _ => None,
                };
                if asked && p.data.contains(crate::secrets::REDACTED) && auth.is_none() {
                    c.values.notes.push(
                        "The capture hid the whole CONNECT auth payload: the scenario sends none; \
                         capture again with --show-secrets, or add [socketio] auth"
                            .into(),
                    );
                }
                c.socketio = Some(connection(socket, p.namespace, auth));
            }
            socketio::Kind::Connect
                if m.dir == Dir::C2s && namespace.as_deref() != Some(p.namespace) =>
            {
                c.values.notes.push(format!(
                    "The client also connected to namespace `{}`; only `{}` is recorded",
                    p.namespace,
                    namespace.as_deref().unwrap_or("/")
                ));
            }
            socketio::Kind::Event | socketio::Kind::Ack
                if namespace.as_deref() == Some(p.namespace) =>
            {
                let Some(Value::Array(mut args)) = data else {
                    continue;
                };
                let (kind, ack) = if p.kind == socketio::Kind::Event {
                    if args.is_empty() {
                        continue;
                    }
                    (args.remove(0).as_str().map(str::to_string), false)
                } else {
                    (None, true)
                };
                if kind.is_none() && !ack {
                    continue; // An event whose name is not a string.
                }
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
    // An EVENT the other side acknowledged asked for it.
    let acked: Vec<(Dir, u64)> = items
        .iter()
        .filter(|i| i.is_ack())
        .filter_map(|i| Some((i.dir, i.id?)))
        .collect();
    for item in items.iter_mut().filter(|i| !i.is_ack()) {
        if let Some(id) = item.id {
            item.ack = acked.contains(&(item.dir.other(), id));
        }
    }
    if binary > 0 {
        c.values.notes.push(format!(
            "{binary} binary message(s) were left out: a recorded scenario sends text"
        ));
    }
    if socket.engine.is_some() && namespace.is_none() {
        return Err(
            "the Socket.IO session never connected to a namespace (no CONNECT packet from the \
             client in what is recorded)"
                .into(),
        );
    }
    Ok(items)
}

/// The Socket.IO connection to `namespace` with `auth`; `http::connection` fills in the rest.
fn connection(socket: &Socket, namespace: &str, auth: Option<Value>) -> SocketIoConnection {
    SocketIoConnection {
        namespace: namespace.to_string(),
        transport: Transport::Websocket,
        version: socket
            .engine
            .as_ref()
            .map_or(engineio::Version::V4, |e| e.version),
        path: socket.url.path.clone(),
        auth,
        query: Vec::new(),
    }
}

/// The field that names a raw message's kind.
pub fn type_key(json: &Value) -> Option<&'static str> {
    let map = json.as_object()?;
    TYPE_KEYS
        .iter()
        .copied()
        .find(|k| map.get(*k).is_some_and(Value::is_string))
}

/// The ACK item that answers the EVENT at `i`.
pub fn acked_by(items: &[Item], i: usize) -> Option<usize> {
    let id = items[i].id?;
    (i + 1..items.len())
        .find(|&j| items[j].dir != items[i].dir && items[j].id == Some(id) && items[j].is_ack())
}

/// Kinds of server message seen exactly once.
pub fn kinds_seen_once(items: &[Item]) -> Vec<String> {
    let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for item in items.iter().filter(|i| i.dir == Dir::S2c && !i.is_ack()) {
        if let Some(k) = &item.kind {
            *counts.entry(k).or_default() += 1;
        }
    }
    let mut once: Vec<String> = counts
        .into_iter()
        .filter(|(_, n)| *n == 1)
        .map(|(k, _)| k.to_string())
        .collect();
    once.sort();
    once
}
