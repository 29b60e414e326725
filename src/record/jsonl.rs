//! A `volley inspect --jsonl` capture read into a [`Capture`]. The records of each connection are
//! followed in order: HTTP heads and their `http_body` records make exchanges (a response pairs
//! with the oldest request of its connection still unanswered), a `101` answer turns the
//! connection into a WebSocket whose frames are joined into messages, and Engine.IO's polling
//! requests and WebSocket are joined into one session by their `sid`.

use std::collections::{HashMap, VecDeque};

use serde_json::Value;

use super::capture::{Body, Capture, Engine, Exchange, Message, Socket, Url, header, media_type};
use super::{BadInput, engine_version};
use crate::protocol::engineio;
use crate::wire::record::Dir;

/// What one connection is doing now.
#[derive(Default)]
struct Conn {
    /// `http://host:port` of the server the inspector relayed to.
    upstream: Option<Url>,
    /// Requests sent and not answered yet, oldest first: indices into `exchanges`, or the
    /// Engine.IO session key a polling request belongs to.
    waiting: VecDeque<Pending>,
    /// The last head seen each way, for the body and packet records that follow it.
    last: [Option<Pending>; 2],
    /// After a 101: the socket's index, and the message being put together from fragments,
    /// each way.
    socket: Option<usize>,
    fragments: [Option<Fragment>; 2],
    /// An upgrade request waiting for its answer.
    upgrade: Option<Opening>,
}

/// A WebSocket message whose first frames have come and its last not yet.
#[derive(Debug)]
struct Fragment {
    text: String,
    binary: bool,
    /// When and where its first frame was.
    at: f64,
    place: String,
}

/// The first request of a socket: its URL, headers, time and place in the file.
#[derive(Clone, Debug)]
struct Opening {
    url: Url,
    headers: Vec<(String, String)>,
    at: f64,
    place: String,
}

#[derive(Clone, Debug)]
enum Pending {
    Exchange(usize),
    /// A polling request of the session with this sid (None: the first request, before the
    /// server has named it), and the request.
    Polling(Option<String>, Opening),
}

/// Reads the records of `text`, one JSON object per line.
pub fn read(text: &str) -> Result<Capture, BadInput> {
    let mut capture = Capture {
        source: "a volley inspect capture".into(),
        ..Capture::default()
    };
    let mut conns: HashMap<u64, Conn> = HashMap::new();
    let mut exchanges: Vec<Exchange> = Vec::new();
    let mut sockets: Vec<Socket> = Vec::new();
    // Engine.IO sessions by sid: index into `sockets`.
    let mut sessions: HashMap<String, usize> = HashMap::new();
    let lines = text.split_inclusive('\n');
    let count = text.lines().count();
    for (i, line) in lines.enumerate() {
        let number = i + 1;
        let place = format!("line {number}");
        if line.trim().is_empty() {
            continue;
        }
        let record: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) if number == count && !line.ends_with('\n') && e.is_eof() => {
                return Err(BadInput::at(
                    &place,
                    "the record is cut short: the capture ends inside it (was volley inspect \
                     stopped while writing?); remove the line to record what came before"
                        .into(),
                ));
            }
            Err(e) => {
                return Err(BadInput::at(
                    &place,
                    format!("not a JSON record: {}", BadInput::json_message(&e)),
                ));
            }
        };
        let bad = |what: String| BadInput::at(&place, what);
        let Some(obj) = record.as_object() else {
            return Err(bad("not a record: a JSON object was expected".into()));
        };
        let str_field = |key: &str| obj.get(key).and_then(Value::as_str);
        let kind = str_field("kind").ok_or_else(|| {
            bad("not a volley inspect record: it has no `kind` (capture with `volley inspect --jsonl FILE`)".into())
        })?;
        let t = obj
            .get("t")
            .and_then(Value::as_f64)
            .ok_or_else(|| bad("the record has no time `t`".into()))?;
        let conn_id = obj
            .get("conn")
            .and_then(Value::as_u64)
            .ok_or_else(|| bad("the record has no connection number `conn`".into()))?;
        if capture.started.is_none() {
            capture.started = str_field("time").map(str::to_string);
        }
        let dir = match str_field("dir") {
            Some("c2s") => Some(Dir::C2s),
            Some("s2c") => Some(Dir::S2c),
            _ => None,
        };
        let conn = conns.entry(conn_id).or_default();
        match kind {
            "connect" => {
                conn.upstream = match str_field("upstream") {
                    Some(text) => Some(Url::parse(text).ok_or_else(|| {
                        bad(format!(
                            "the upstream {text:?} is not an http(s) URL with a host"
                        ))
                    })?),
                    None => None,
                };
            }
            "http_request" => {
                let method = str_field("method").unwrap_or("GET").to_string();
                let target = str_field("target")
                    .ok_or_else(|| bad("an http_request without its `target`".into()))?;
                let headers = header_list(obj.get("headers"));
                let url = absolute(target, conn.upstream.as_ref(), &headers).map_err(bad)?;
                let upgrade = header(&headers, "upgrade")
                    .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
                if upgrade {
                    conn.upgrade = Some(Opening {
                        url,
                        headers,
                        at: t,
                        place: place.clone(),
                    });
                    continue;
                }
                let pending = if engine_version(&url).is_some() {
                    let sid = url.param("sid").map(str::to_string);
                    Pending::Polling(
                        sid,
                        Opening {
                            url,
                            headers,
                            at: t,
                            place: place.clone(),
                        },
                    )
                } else {
                    exchanges.push(Exchange {
                        at: t,
                        conn: conn_id,
                        place: place.clone(),
                        method,
                        url,
                        request_headers: headers,
                        ..Exchange::default()
                    });
                    Pending::Exchange(exchanges.len() - 1)
                };
                conn.waiting.push_back(pending.clone());
                conn.last[0] = Some(pending);
            }
            "http_response" => {
                let status = obj
                    .get("status")
                    .ok_or_else(|| bad("an http_response without its `status`".into()))?;
                let status = status
                    .as_u64()
                    .and_then(|s| u16::try_from(s).ok())
                    .filter(|s| (100..1000).contains(s))
                    .ok_or_else(|| bad(format!("the status {status} is no HTTP status")))?;
                let headers = header_list(obj.get("headers"));
                if status == 101 {
                    if let Some(Opening {
                        url,
                        headers: request_headers,
                        at,
                        place: first,
                    }) = conn.upgrade.take()
                    {
                        let index = match engine_version(&url) {
                            Some(version) => {
                                let sid = url.param("sid").map(str::to_string);
                                session(
                                    &mut sockets,
                                    &mut sessions,
                                    sid,
                                    &url,
                                    &request_headers,
                                    at,
                                    conn_id,
                                    &first,
                                    version,
                                )
                            }
                            None => {
                                sockets.push(Socket {
                                    at,
                                    until: t,
                                    conn: conn_id,
                                    place: first,
                                    url,
                                    request_headers,
                                    ..Socket::default()
                                });
                                sockets.len() - 1
                            }
                        };
                        if let Some(engine) = &mut sockets[index].engine {
                            engine.websocket = true;
                        }
                        conn.socket = Some(index);
                    }
                    continue;
                }
                conn.upgrade = None;
                let Some(pending) = conn.waiting.pop_front() else {
                    continue; // An answer to nothing the capture saw.
                };
                if let Pending::Exchange(index) = pending {
                    let exchange = &mut exchanges[index];
                    exchange.status = Some(status);
                    exchange.response_headers = headers;
                }
                conn.last[1] = Some(pending);
            }
            "http_body" => {
                let Some(dir) = dir else { continue };
                let slot = if dir == Dir::C2s { 0 } else { 1 };
                let Some(Pending::Exchange(index)) = conn.last[slot] else {
                    continue;
                };
                let exchange = &mut exchanges[index];
                let headers = if dir == Dir::C2s {
                    &exchange.request_headers
                } else {
                    &exchange.response_headers
                };
                let body = Body {
                    text: str_field("text").unwrap_or("").to_string(),
                    mime: media_type(header(headers, "content-type").unwrap_or("")),
                    truncated: obj.get("truncated").and_then(Value::as_bool) == Some(true),
                };
                if dir == Dir::C2s {
                    exchange.request_body = Some(body);
                } else {
                    exchange.response_body = Some(body);
                }
            }
            "packet" => {
                let Some(dir) = dir else { continue };
                let slot = if dir == Dir::C2s { 0 } else { 1 };
                let Some(Pending::Polling(
                    sid,
                    Opening {
                        url,
                        headers,
                        at,
                        place: first,
                    },
                )) = &mut conn.last[slot]
                else {
                    continue;
                };
                let text = packet_text(obj, dir, &place)?;
                if sid.is_none() {
                    *sid = text
                        .strip_prefix('0')
                        .and_then(|open| engineio::Open::parse(open).ok())
                        .map(|open| open.sid);
                }
                let version = engine_version(url).unwrap_or(engineio::Version::V4);
                let index = session(
                    &mut sockets,
                    &mut sessions,
                    sid.clone(),
                    url,
                    headers,
                    *at,
                    conn_id,
                    first,
                    version,
                );
                let socket = &mut sockets[index];
                if let Some(engine) = &mut socket.engine {
                    engine.polling = true;
                }
                socket.until = socket.until.max(t);
                socket.messages.push(Message {
                    at: t,
                    dir,
                    text,
                    binary: false,
                    place: place.clone(),
                });
            }
            "frame" => {
                let (Some(dir), Some(index)) = (dir, conn.socket) else {
                    continue;
                };
                let opcode = str_field("opcode").unwrap_or("");
                let fin = obj.get("fin").and_then(Value::as_bool).unwrap_or(true);
                let slot = &mut conn.fragments[if dir == Dir::C2s { 0 } else { 1 }];
                let binary = match opcode {
                    "text" => false,
                    "binary" => true,
                    "continuation" => match slot {
                        Some(fragment) => fragment.binary,
                        None => continue,
                    },
                    _ => continue, // Control frames: nothing of the conversation.
                };
                let cut = obj.get("truncated").and_then(Value::as_bool) == Some(true);
                // A client's text is sent again: a cut one cannot be. Others are only read.
                if cut && dir == Dir::C2s && !binary {
                    return Err(bad(format!(
                        "the client's message was cut at volley inspect's --max-payload ({} of {} bytes shown), \
                         so it cannot be replayed: capture again with a larger --max-payload",
                        str_field("text").map_or(0, str::len),
                        obj.get("len").and_then(Value::as_u64).unwrap_or(0)
                    )));
                }
                let piece = str_field("text").or(str_field("hex")).unwrap_or("");
                let mut fragment = match slot.take() {
                    Some(fragment) if opcode == "continuation" => fragment,
                    _ => Fragment {
                        text: String::new(),
                        binary,
                        at: t,
                        place: place.clone(),
                    },
                };
                fragment.text.push_str(piece);
                if !fin {
                    *slot = Some(fragment);
                    continue;
                }
                let Fragment {
                    text,
                    at: start,
                    place: first,
                    ..
                } = fragment;
                let socket = &mut sockets[index];
                socket.until = socket.until.max(t);
                socket.messages.push(Message {
                    at: start,
                    dir,
                    text,
                    binary,
                    place: first,
                });
            }
            "close" => {
                if let Some(index) = conn.socket {
                    sockets[index].until = sockets[index].until.max(t);
                }
            }
            _ => {}
        }
    }
    if conns.is_empty() {
        return Err(BadInput::file("the capture holds no records"));
    }
    for socket in &mut sockets {
        socket.messages.sort_by(|a, b| a.at.total_cmp(&b.at));
    }
    capture.exchanges = exchanges;
    capture.sockets = sockets;
    capture.sockets.sort_by(|a, b| a.at.total_cmp(&b.at));
    Ok(capture)
}

/// A packet record's text; a client's cut one cannot be replayed.
fn packet_text(
    obj: &serde_json::Map<String, Value>,
    dir: Dir,
    place: &str,
) -> Result<String, BadInput> {
    if dir == Dir::C2s && obj.get("truncated").and_then(Value::as_bool) == Some(true) {
        return Err(BadInput::at(
            place,
            "this packet was cut at volley inspect's --max-payload, so it cannot be replayed: \
             capture again with a larger --max-payload"
                .into(),
        ));
    }
    Ok(obj
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string())
}

/// The Engine.IO session of `sid` (a new one when it is new or not known yet).
#[allow(clippy::too_many_arguments)]
fn session(
    sockets: &mut Vec<Socket>,
    sessions: &mut HashMap<String, usize>,
    sid: Option<String>,
    url: &Url,
    headers: &[(String, String)],
    at: f64,
    conn: u64,
    place: &str,
    version: engineio::Version,
) -> usize {
    if let Some(&index) = sid.as_ref().and_then(|sid| sessions.get(sid)) {
        return index;
    }
    sockets.push(Socket {
        at,
        until: at,
        conn,
        place: place.to_string(),
        url: url.clone(),
        request_headers: headers.to_vec(),
        engine: Some(Engine {
            version,
            sid: sid.clone().unwrap_or_default(),
            polling: false,
            websocket: false,
        }),
        messages: Vec::new(),
        messages_missing: None,
    });
    let index = sockets.len() - 1;
    if let Some(sid) = sid {
        sessions.insert(sid, index);
    }
    index
}

/// The `headers` object of a record as a list.
fn header_list(headers: Option<&Value>) -> Vec<(String, String)> {
    headers
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// A request target made absolute: on the upstream's origin, else the Host header's; or why
/// it cannot be.
fn absolute(
    target: &str,
    upstream: Option<&Url>,
    headers: &[(String, String)],
) -> Result<Url, String> {
    if let Some(url) = Url::parse(target) {
        return Ok(url);
    }
    let mut url = Url::relative(target)
        .ok_or_else(|| format!("the request's target {target:?} is not a URL path"))?;
    match upstream {
        Some(up) => {
            url.scheme = up.scheme.clone();
            url.authority = up.authority.clone();
        }
        None => {
            url.scheme = "http".into();
            let host = header(headers, "host").unwrap_or("localhost");
            url.authority = Url::parse(&format!("http://{host}"))
                .ok_or_else(|| {
                    format!(
                        "the request's Host {host:?} is no host and port, and the connection has no upstream"
                    )
                })?
                .authority;
        }
    }
    Ok(url)
}
