//! The HTTP calls of a capture as steps, and the connection's settings: what the page's code
//! asked (not the page, its scripts and images), with the values it sent templated, and what
//! each answer carried offered to later requests.

use serde_json::Value;

use super::{Conversation, HttpBody, Step};
use crate::record::capture::{
    Body, Capture, Exchange, Socket, Url, header, media_type, parse_query,
};
use crate::record::literal::{Literal, literal};
use crate::record::values::Values;
use crate::record::{engine_version, is_text_media};
use crate::transport::engine::Transport;

/// Query keys of Engine.IO's own.
const ENGINE_KEYS: &[&str] = &["EIO", "transport", "sid", "t", "b64", "j"];

/// The calls as steps: those before the connection go into `c.before_connect`; those made while
/// it was open are returned with their times, to take their place among the `on_connect` steps.
/// Calls to an origin other than the connection's and `[http] base` are left out, with a note.
pub fn calls(
    capture: &Capture,
    socket: &Socket,
    c: &mut Conversation,
    ids: &mut std::ops::RangeFrom<usize>,
) -> Vec<(f64, Step)> {
    let origin = socket.url.http_origin();
    let calls: Vec<&Exchange> = capture
        .exchanges
        .iter()
        .filter(|e| e.at <= socket.until)
        .filter(|e| is_call(e))
        .collect();
    c.counts.skipped_exchanges = capture.exchanges.len() - calls.len();
    // Steps go to the connection's origin, or to one other, `[http] base`: the first call's,
    // when no call went to the connection's.
    let to_connection = calls.iter().any(|e| e.url.http_origin() == origin);
    c.http_base = calls
        .first()
        .map(|e| e.url.http_origin())
        .filter(|o| *o != origin && !to_connection);
    let base = c.http_base.clone().unwrap_or_else(|| origin.clone());
    let mut during = Vec::new();
    for exchange in calls {
        let o = exchange.url.http_origin();
        if o != base {
            c.counts.skipped_exchanges += 1;
            c.values.notes.push(format!(
                "{} {} {} went to {o}, which is neither the connection's origin nor [http] base ({base}): left out",
                exchange.place, exchange.method, exchange.url.path
            ));
            continue;
        }
        if !is_sendable_method(&exchange.method) {
            c.counts.skipped_exchanges += 1;
            c.values.notes.push(format!(
                "{}: the call's method {:?} is not one volley sends (upper-case letters): it is left out",
                exchange.place, exchange.method
            ));
            continue;
        }
        c.counts.exchanges += 1;
        c.values.sent_at(exchange.at);
        let step = match step(exchange, ids.next().unwrap_or_default(), &mut c.values) {
            Ok(step) => step,
            Err(why) => {
                c.values.notes.push(why);
                continue;
            }
        };
        if exchange.at < socket.at {
            c.before_connect.push(step);
        } else {
            during.push((exchange.at, step));
        }
    }
    during
}

/// Whether an exchange is a call the user's code made (not the page, its scripts and images).
/// Anything but a GET is (a form's POST is a `document` to the browser).
fn is_call(e: &Exchange) -> bool {
    if e.method == "OPTIONS" || engine_version(&e.url).is_some() {
        return false;
    }
    if e.method != "GET" {
        return true;
    }
    if let Some(kind) = &e.resource_type {
        return matches!(kind.as_str(), "xhr" | "fetch");
    }
    let mime = media_type(header(&e.response_headers, "content-type").unwrap_or(""));
    let page = mime.starts_with("text/html")
        || mime.starts_with("text/css")
        || mime.contains("javascript")
        || mime.starts_with("image/")
        || mime.starts_with("font/");
    const ASSETS: &[&str] = &[
        ".js", ".css", ".png", ".jpg", ".svg", ".ico", ".woff", ".woff2", ".map", ".html",
    ];
    !page && !ASSETS.iter().any(|ext| e.url.path.ends_with(ext))
}

/// Whether an HTTP step can send `method`: a method as volley writes them, in upper case.
fn is_sendable_method(method: &str) -> bool {
    !method.is_empty()
        && method.bytes().all(|b| b.is_ascii_uppercase())
        && http::Method::from_bytes(method.as_bytes()).is_ok()
}

/// The request headers a replay sends as recorded, templated: not those it sends itself or the
/// browser adds, each name once (the first; a table takes a key once), and only what HTTP
/// allows (the others noted).
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

/// Request headers a replay sends itself, or the browser adds on its own. Cookies are the
/// jar's.
fn is_own_header(name: &str) -> bool {
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
    let lower = name.to_ascii_lowercase();
    OWN.contains(&lower.as_str()) || lower.starts_with("sec-")
}

/// The exchange as an HTTP step, or why it cannot be replayed.
fn step(e: &Exchange, id: usize, values: &mut Values) -> Result<Step, String> {
    if e.request_body.as_ref().is_some_and(|b| b.truncated) {
        return Err(format!(
            "{}: the body of {} {} was cut at volley inspect's --max-body, so the call is left out: \
             capture again with a larger --max-body",
            e.place, e.method, e.url.path
        ));
    }
    let path = path_template(&e.url, values);
    let headers = replayed_headers(&e.request_headers, &e.place, values);
    let content_type = header(&e.request_headers, "content-type").unwrap_or("");
    let body = match &e.request_body {
        Some(b) if !b.text.is_empty() => http_body(b, content_type, values),
        _ => HttpBody::None,
    };
    // What the answer carried, for later requests.
    let from = format!("the answer to {}", e.place);
    if let Some(body) = &e.response_body {
        if let Ok(json) = serde_json::from_str::<Value>(&body.text) {
            values.offer_json(id, e.at, &from, &json);
        }
    }
    for (k, v) in &e.response_headers {
        values.offer_header(id, e.at, &from, k, v);
    }
    Ok(Step::Http {
        id,
        method: e.method.clone(),
        path,
        headers,
        body,
        status: e.status,
        place: e.place.clone(),
    })
}

/// A request's body as a step sends it, templated. JSON is read as JSON whatever its
/// Content-Type says (`fetch` sends a string body as text/plain, jQuery's `$.post` as a form):
/// its credentials go to the data file however it was labelled.
fn http_body(b: &Body, content_type: &str, values: &mut Values) -> HttpBody {
    let json = serde_json::from_str::<Value>(&b.text)
        .ok()
        .filter(|v| v.is_object() || v.is_array());
    let text = |text: String| HttpBody::Text(text, content_type.to_string());
    match json {
        Some(json) if b.mime.contains("json") => HttpBody::Json(values.json(&json)),
        Some(json) if is_text_media(&b.mime) || b.mime.is_empty() => {
            text(values.json(&json).to_string())
        }
        None if b.mime == "application/x-www-form-urlencoded" => {
            form(&b.text, content_type, values)
        }
        None if is_text_media(&b.mime) || b.mime.is_empty() => text(values.string("", &b.text)),
        _ => HttpBody::None,
    }
}

/// A form's fields, templated as one object (a user name beside a password is a column too);
/// the names stay as recorded: a form's names are no templates. A name given twice, which a
/// table cannot say, keeps the body as text.
fn form(body: &str, content_type: &str, values: &mut Values) -> HttpBody {
    let pairs = parse_query(body);
    let mut names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    if names.len() < pairs.len() {
        let fields: Vec<String> = pairs
            .iter()
            .map(|(k, v)| {
                let value = values.string_as(k, v, Literal::Query);
                format!("{}={value}", literal(k, Literal::Query))
            })
            .collect();
        return HttpBody::Text(fields.join("&"), content_type.to_string());
    }
    let fields: serde_json::Map<String, Value> = pairs
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let Value::Object(templated) = values.json(&Value::Object(fields.clone())) else {
        return HttpBody::None;
    };
    HttpBody::Form(
        fields
            .keys()
            .zip(templated.values())
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
    )
}

/// A URL's path and query as a template: every segment an answer or the user's row holds
/// templated (a made-up id would name nothing, so no generated placeholder), the query's keys
/// and values templated and percent-encoded again (the capture decoded them).
fn path_template(url: &Url, values: &mut Values) -> String {
    let segments: Vec<String> = url
        .path
        .split('/')
        .map(|segment| {
            let template = values.string("", segment);
            if matches!(template.as_str(), "{{uuid}}" | "{{now_ms}}") {
                literal(segment, Literal::Text)
            } else {
                template
            }
        })
        .collect();
    let mut out = segments.join("/");
    let pairs: Vec<String> = url
        .query
        .iter()
        .map(|(k, v)| {
            let value = values.string_as(k, v, Literal::Query);
            format!("{}={value}", literal(k, Literal::Query))
        })
        .collect();
    if !pairs.is_empty() {
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

/// The connection's settings: target, path (raw WebSocket) or `[socketio]`, headers.
pub fn connection(socket: &Socket, c: &mut Conversation) {
    let url = &socket.url;
    c.headers = replayed_headers(&socket.request_headers, &socket.place, &mut c.values);
    if let Some(protocols) = header(&socket.request_headers, "sec-websocket-protocol") {
        c.values.notes.push(format!(
            "The client asked for the WebSocket subprotocol(s) `{}`, which a scenario cannot ask \
             for: a server that requires one refuses the replay.",
            protocols.split(',').next().unwrap_or("").trim()
        ));
    }
    let Some(engine) = &socket.engine else {
        c.target = url.ws_origin();
        c.path = Some(path_template(url, &mut c.values));
        return;
    };
    c.target = url.http_origin();
    let mut query: Vec<(String, String)> = Vec::new();
    for (k, v) in url
        .query
        .iter()
        .filter(|(k, _)| !ENGINE_KEYS.contains(&k.as_str()))
    {
        if query.iter().any(|(seen, _)| seen == k) {
            c.values.notes.push(format!(
                "The Engine.IO query gives `{k}` twice; [socketio] query keeps the first."
            ));
            continue;
        }
        let v = c.values.string(k, v);
        query.push((k.clone(), v));
    }
    if let Some(sio) = &mut c.socketio {
        sio.transport = match (engine.polling, engine.websocket) {
            (true, true) => Transport::PollingUpgrade,
            (true, false) => Transport::Polling,
            _ => Transport::Websocket,
        };
        sio.path = url.path.clone();
        sio.query = query;
    }
}
