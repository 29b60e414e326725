//! The scenario and its data file as text: what was recorded and from where in comments, each
//! generalisation with its reason beside it. Pure: `write` puts the texts in files.

use std::fmt::Write as _;

use serde_json::Value;

use super::conversation::{
    Conversation, Expectation, Handler, HttpBody, Payload, Reply, Step, WAIT_FOR_TIMEOUT,
};
use super::values::Source;
use crate::protocol::engineio;
use crate::transport::engine::Transport;

/// Comments are wrapped at this many columns.
const WIDTH: usize = 100;

/// The longest duration volley reads (`u64::MAX` nanoseconds), in whole seconds and in whole
/// milliseconds: a capture's times can be anything, its scenario's durations cannot.
const MAX_SECONDS: f64 = (u64::MAX / 1_000_000_000) as f64;
const MAX_MILLIS: f64 = (u64::MAX / 1_000_000) as f64;

/// Seconds as a whole number of them, at least 1, that volley reads back as a duration.
fn seconds(secs: f64) -> u64 {
    if secs.is_nan() {
        return 1;
    }
    secs.ceil().clamp(1.0, MAX_SECONDS) as u64
}

/// Seconds in whole milliseconds that volley reads back as a duration.
fn millis(secs: f64) -> u64 {
    if secs.is_nan() {
        return 0;
    }
    (secs * 1000.0).round().clamp(0.0, MAX_MILLIS) as u64
}

/// `text` with its control characters written as escapes (`\u0001`): TOML refuses them in a
/// comment, and a capture's names and times can hold any.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            let _ = write!(out, "\\u{:04X}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// The data file: a header of the columns and the recorded row; None without columns.
pub fn data(c: &Conversation) -> Option<String> {
    if c.values.columns.is_empty() {
        return None;
    }
    let mut out = csv::Writer::from_writer(Vec::new());
    let names = c.values.columns.iter().map(|col| col.name.as_str());
    let row = c.values.columns.iter().map(|col| col.value.as_str());
    // Writing to a Vec cannot fail.
    let _ = out.write_record(names);
    let _ = out.write_record(row);
    let bytes = out.into_inner().unwrap_or_default();
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The scenario `name`, recorded from the file `input` (its name), with its data file
/// `data_file` (a name beside the scenario) when it has one.
pub fn scenario(c: &Conversation, name: &str, input: &str, data_file: Option<&str>) -> String {
    let mut t = String::new();
    header(&mut t, c, name, input, data_file);
    let _ = writeln!(t, "name = {}", quote(name));
    let _ = writeln!(t, "target = {}", quote(&c.target));
    let protocol = if c.socketio.is_some() {
        "socketio"
    } else {
        "ws"
    };
    let _ = writeln!(t, "protocol = {}", quote(protocol));
    if let Some(path) = &c.path {
        let _ = writeln!(t, "path = {}", quote(path));
    }
    let duration = seconds(c.length);
    let _ = writeln!(
        t,
        "duration = \"{duration}s\"                 # the recording's length"
    );
    if !c.headers.is_empty() {
        let _ = writeln!(t, "headers = {}", table(&c.headers));
    }
    if let Some(base) = &c.http_base {
        let _ = writeln!(t, "\n[http]\nbase = {}", quote(base));
    }
    if let Some(data) = data_file {
        let _ = writeln!(
            t,
            "\n[[data]]                         # the recorded user's credentials, one row per user"
        );
        let _ = writeln!(t, "name = \"users\"\nfile = {}", quote(data));
        let _ = writeln!(
            t,
            "pick = \"sequential\"             # wraps around: every client can take the one recorded row"
        );
    }
    socketio(&mut t, c);
    let _ = writeln!(
        t,
        "\n[[group]]\nname = \"users\"\nclients = 1                      # --clients N on the command line"
    );
    steps(&mut t, c);
    streams(&mut t, c);
    for h in &c.handlers {
        handler(&mut t, h);
    }
    for e in &c.expects {
        expect(&mut t, e);
    }
    t
}

/// What was recorded, from where, how to run it, and the notes.
fn header(t: &mut String, c: &Conversation, name: &str, input: &str, data_file: Option<&str>) {
    let started = c
        .started
        .as_ref()
        .map_or(String::new(), |s| format!(", starting {s}"));
    comment(
        t,
        &format!(
            "Recorded by `volley record` from {input} ({}{started}).",
            c.source
        ),
    );
    let skipped = match c.counts.skipped_exchanges {
        0 => String::new(),
        n => format!(" ({n} other request(s) left out: the page, its assets, other origins)"),
    };
    comment(
        t,
        &format!(
            "The {}: {} HTTP call(s) before and during it{skipped}, {} message(s) sent, {} received.",
            c.connection, c.counts.exchanges, c.counts.sent, c.counts.received
        ),
    );
    comment(
        t,
        "One client replays the recorded user for as long as the recording lasted; for a load test:",
    );
    let _ = writeln!(
        t,
        "#   volley run {}.toml --clients 200 --duration 1m",
        printable(name)
    );
    if let Some(data) = data_file {
        comment(
            t,
            &format!(
                "Each user takes a row of {data}: add a row per account (it has the recorded one)."
            ),
        );
    }
    for note in &c.values.notes {
        comment(t, note);
    }
}

fn socketio(t: &mut String, c: &Conversation) {
    let Some(sio) = &c.socketio else { return };
    let _ = writeln!(t, "\n[socketio]");
    if sio.namespace != "/" && !sio.namespace.is_empty() {
        let _ = writeln!(t, "namespace = {}", quote(&sio.namespace));
    }
    let how = match sio.transport {
        Transport::PollingUpgrade => {
            "long-polling first, then the upgrade to WebSocket, as recorded"
        }
        Transport::Polling => "long-polling only, as recorded",
        Transport::Websocket => "straight over WebSocket, as recorded",
    };
    let _ = writeln!(t, "transport = {}   # {how}", quote(sio.transport.as_str()));
    if sio.version == engineio::Version::V3 {
        let _ = writeln!(t, "eio = 3                          # Socket.IO 2");
    }
    if sio.path != "/socket.io/" {
        let _ = writeln!(t, "path = {}", quote(&sio.path));
    }
    if let Some(auth) = &sio.auth {
        let _ = writeln!(t, "auth = {}", toml_value(auth));
    }
    if !sio.query.is_empty() {
        let _ = writeln!(t, "query = {}", table(&sio.query));
    }
    let _ = writeln!(t, "recovery = false");
}

fn steps(t: &mut String, c: &Conversation) {
    if !c.before_connect.is_empty() {
        let _ = writeln!(
            t,
            "before_connect = [               # the HTTP calls made before connecting"
        );
        for step in &c.before_connect {
            let _ = writeln!(t, "  {}", step_text(step, c));
        }
        let _ = writeln!(t, "]");
    }
    if !c.on_connect.is_empty() {
        let _ = writeln!(
            t,
            "on_connect = [                   # after connecting: what the user did, with its pauses"
        );
        for step in &c.on_connect {
            let _ = writeln!(t, "  {}", step_text(step, c));
        }
        let _ = writeln!(t, "]");
    }
}

fn streams(t: &mut String, c: &Conversation) {
    if c.streams.is_empty() {
        return;
    }
    let _ = writeln!(
        t,
        "emit = [                         # after the steps, at the recorded pace, for the whole run"
    );
    for s in &c.streams {
        let mut parts = vec![format!("event = {}", quote(&s.event))];
        parts.extend(payload_parts(&s.payload));
        let every_ms = millis(s.every).max(1);
        parts.push(format!("rate = \"1/{every_ms}ms\""));
        if s.ack {
            parts.push("ack = true".into());
        }
        let mut why = format!("Sent {} times, every {every_ms} ms", s.count);
        if !s.varying.is_empty() {
            let _ = write!(why, "; {}", s.varying.join(", "));
        }
        comment_indented(t, "  ", &why);
        let _ = writeln!(t, "  {{ {} }},", parts.join(", "));
    }
    let _ = writeln!(t, "]");
}

fn handler(t: &mut String, h: &Handler) {
    let _ = writeln!(t);
    let what = &h.push;
    match &h.reply {
        Reply::Emit { event, copied, .. } => {
            let copied = if copied.is_empty() {
                String::new()
            } else {
                let fields: Vec<String> = copied.iter().map(|p| format!("`{p}`")).collect();
                format!(", copying {}", fields.join(", "))
            };
            comment(
                t,
                &format!(
                    "The user answered the server's `{what}` pushes ({} of them), each at once, with `{event}`{copied}.",
                    h.count
                ),
            );
        }
        Reply::Answer(_) => comment(
            t,
            &format!(
                "The server asked for an acknowledgement of `{what}` ({} time(s)); the user gave this one.",
                h.count
            ),
        ),
    }
    let _ = writeln!(t, "[[group.on]]");
    match (&h.event, &h.matches) {
        (Some(event), _) => {
            let _ = writeln!(t, "event = {}", quote(event));
        }
        (None, Some(m)) => {
            let _ = writeln!(t, "match = {}", literal(m));
        }
        _ => {}
    }
    let _ = writeln!(t, "from = \"server\"");
    match &h.reply {
        Reply::Emit { event, payload, .. } => {
            let _ = writeln!(t, "emit = {}", quote(event));
            for part in payload_parts(payload) {
                let _ = writeln!(t, "{part}");
            }
        }
        Reply::Answer(args) => {
            let args: Vec<String> = args.iter().map(toml_value).collect();
            let _ = writeln!(t, "answer = [{}]", args.join(", "));
        }
    }
}

fn expect(t: &mut String, e: &Expectation) {
    let _ = writeln!(t);
    comment(t, &format!("{}.", capitalise(&e.why)));
    let _ = writeln!(t, "[[expect]]\nevent = {}", quote(&e.event));
    if e.name != e.event {
        let _ = writeln!(t, "name = {}", quote(&e.name));
    }
    let Some(seq) = &e.seq else {
        let _ = writeln!(t, "from = \"self\"");
        return;
    };
    let _ = writeln!(t, "from = \"server\"\nseq = {}", quote(seq));
    if let Some(stream) = &e.stream {
        let _ = writeln!(t, "stream = {}", quote(stream));
    }
    if let Some(ts) = &e.timestamp {
        let _ = writeln!(t, "timestamp = {}\ntimestamp_unit = \"ms\"", quote(ts));
    }
}

fn step_text(step: &Step, c: &Conversation) -> String {
    match step {
        Step::Wait(secs) => format!("{{ wait = \"{}ms\" }},", millis(*secs)),
        Step::Http {
            id,
            method,
            path,
            headers,
            body,
            status,
            place,
        } => {
            let mut parts = vec![format!("http = {}", quote(&format!("{method} {path}")))];
            let mut headers = headers.clone();
            match body {
                HttpBody::None => {}
                HttpBody::Json(v) => parts.push(format!("json = {}", toml_value(v))),
                HttpBody::Form(pairs) => parts.push(format!("form = {}", table(pairs))),
                HttpBody::Text(text, content_type) => {
                    if !content_type.is_empty() {
                        headers.push(("Content-Type".into(), content_type.clone()));
                    }
                    parts.push(format!("body = {}", quote(text)));
                }
            }
            if !headers.is_empty() {
                parts.insert(1, format!("headers = {}", table(&headers)));
            }
            // The statuses a step can check; another is not checked.
            if let Some(status) = status.filter(|s| (100..600).contains(s)) {
                parts.push(format!("status = {status}"));
            }
            push_captures(&mut parts, c.values.captures_of(*id));
            format!("{{ {} }},  # {place}", parts.join(", "))
        }
        Step::Emit {
            id,
            event,
            payload,
            ack,
            place,
        } => {
            let mut parts = vec![format!("emit = {}", quote(event))];
            parts.extend(payload_parts(payload));
            if *ack {
                parts.push("ack = true".into());
            }
            push_captures(&mut parts, c.values.captures_of(*id));
            format!("{{ {} }},  # {place}", parts.join(", "))
        }
        Step::WaitFor {
            id,
            event,
            matches,
            name,
            place,
        } => {
            let mut parts = Vec::new();
            if let Some(name) = name {
                parts.push(format!("name = {}", quote(name)));
            }
            parts.push(format!("wait_for = {}", quote(event)));
            if let Some(m) = matches {
                parts.push(format!("match = {}", literal(m)));
            }
            parts.push(format!("timeout = \"{WAIT_FOR_TIMEOUT}\""));
            push_captures(&mut parts, c.values.captures_of(*id));
            format!("{{ {} }},  # the answer came at {place}", parts.join(", "))
        }
    }
}

fn push_captures(parts: &mut Vec<String>, list: Vec<(String, Source)>) {
    if list.is_empty() {
        return;
    }
    let items: Vec<String> = list
        .into_iter()
        .map(|(name, source)| {
            let from = match source {
                Source::Pointer(p) => p,
                Source::Header(h) => format!("header:{h}"),
            };
            format!("{} = {}", key(&name), quote(&from))
        })
        .collect();
    parts.push(format!("capture = {{ {} }}", items.join(", ")));
}

fn payload_parts(payload: &Payload) -> Vec<String> {
    match payload {
        Payload::None => Vec::new(),
        Payload::Data(v) => vec![format!("data = {}", toml_value(v))],
        Payload::Args(args) => vec![format!(
            "args = [{}]",
            args.iter().map(toml_value).collect::<Vec<_>>().join(", ")
        )],
    }
}

/// A comment of one or more lines, wrapped at [`WIDTH`].
fn comment(t: &mut String, text: &str) {
    comment_indented(t, "", text);
}

fn comment_indented(t: &mut String, indent: &str, text: &str) {
    let mut line = format!("{indent}#");
    for word in text.split_whitespace().map(printable) {
        if line.len() + word.len() + 1 > WIDTH && line.len() > indent.len() + 1 {
            let _ = writeln!(t, "{line}");
            line = format!("{indent}#");
        }
        line.push(' ');
        line.push_str(&word);
    }
    let _ = writeln!(t, "{line}");
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A TOML basic string.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML literal string when the text allows one (a match expression reads better so).
fn literal(text: &str) -> String {
    // A literal string has no escapes: no `'`, and no control character but a tab.
    if text
        .chars()
        .any(|c| c == '\'' || (c.is_control() && c != '\t'))
    {
        quote(text)
    } else {
        format!("'{text}'")
    }
}

/// A TOML key: bare when it can be.
fn key(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        text.to_string()
    } else {
        quote(text)
    }
}

fn table(pairs: &[(String, String)]) -> String {
    let items: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{} = {}", key(k), quote(v)))
        .collect();
    format!("{{ {} }}", items.join(", "))
}

/// A JSON value as TOML: objects as inline tables. TOML has no null and no integer above
/// i64's: a null is written as `""`, such a number as its digits in a string (the values' notes
/// say where).
pub fn toml_value(v: &Value) -> String {
    match v {
        Value::Null => "\"\"".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) if n.is_u64() && n.as_i64().is_none() => quote(&n.to_string()),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(toml_value).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) if map.is_empty() => "{}".into(),
        Value::Object(map) => format!(
            "{{ {} }}",
            map.iter()
                .map(|(k, v)| format!("{} = {}", key(k), toml_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
