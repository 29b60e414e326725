//! The scenario as text: commented (what was recorded, from where, what was generalised and
//! why), written beside its data file, then checked as `volley validate` checks it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::conversation::{Conversation, HttpBody, Payload, Step, captures};
use super::values::Source;
use super::{RecordError, RecordSettings, Recorded, Recording, ScenarioNames};
use crate::scenario::{self, Overrides};

/// Writes the recording's scenario (and its data file) where `settings` says, and checks it.
pub fn write(r: &Recording, settings: &RecordSettings) -> Result<Recorded, RecordError> {
    let c = &r.conversation;
    let scenario_path = &settings.output;
    let data_path = r
        .data
        .as_ref()
        .map(|d| scenario_path.with_file_name(&d.name));
    for path in std::iter::once(scenario_path).chain(data_path.as_ref()) {
        if path.exists() && !settings.force {
            return Err(RecordError::Exists { path: path.clone() });
        }
    }
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RecordError::Write { path, source }
    };
    if let Some(parent) = scenario_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(write_err(parent))?;
    }
    if let (Some(path), Some(data)) = (&data_path, &r.data) {
        std::fs::write(path, &data.text).map_err(write_err(path))?;
    }
    std::fs::write(scenario_path, &r.scenario).map_err(write_err(scenario_path))?;
    let plan = scenario::load(scenario_path, &Overrides::default()).map_err(|error| {
        RecordError::Invalid {
            path: scenario_path.clone(),
            error,
        }
    })?;
    let steps: usize = plan
        .groups
        .iter()
        .map(|g| g.before_connect.len() + g.on_connect.len())
        .sum();
    let mut summary = vec![
        format!("recorded {}", c.connection),
        format!(
            "{} HTTP call(s), {} message(s) sent and {} received",
            c.counts.exchanges, c.counts.sent, c.counts.received
        ),
        format!(
            "{steps} step(s), {} emit stream(s), {} repl(ies), {} expect(s)",
            c.streams.len(),
            c.handlers.len(),
            c.expects.len()
        ),
    ];
    summary.extend(c.values.notes.iter().map(|n| format!("note: {n}")));
    Ok(Recorded {
        scenario: scenario_path.clone(),
        data: data_path,
        summary,
    })
}

/// The data file: a header of the columns and the recorded row.
pub fn data_text(c: &Conversation) -> String {
    let mut out = csv::Writer::from_writer(Vec::new());
    let names: Vec<&str> = c
        .values
        .columns
        .iter()
        .map(|col| col.name.as_str())
        .collect();
    let row: Vec<&str> = c
        .values
        .columns
        .iter()
        .map(|col| col.value.as_str())
        .collect();
    // Writing to a Vec cannot fail, and CSV of text is text.
    let _ = out.write_record(&names);
    let _ = out.write_record(&row);
    String::from_utf8(out.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// The scenario's text, named as `names` says, with `data_file` its `[[data]]` when it has one.
pub fn scenario_text(
    c: &Conversation,
    names: ScenarioNames<'_>,
    data_file: Option<&str>,
) -> String {
    let mut t = String::new();
    let (file, name) = (names.capture, names.scenario);
    let duration = seconds(c.length);
    let started = c
        .started
        .as_ref()
        .map_or(String::new(), |s| format!(", starting {s}"));
    let recorded = format!(
        "Recorded by `volley record` from {file} ({}{started}).",
        c.source
    );
    comment(&mut t, "", &recorded);
    let skipped = match c.counts.skipped_exchanges {
        0 => String::new(),
        n => format!(" ({n} page and asset request(s) left out)"),
    };
    let what = format!(
        "The {}: {} HTTP call(s) before and during it{skipped}, {} message(s) sent, {} received.",
        c.connection, c.counts.exchanges, c.counts.sent, c.counts.received
    );
    comment(&mut t, "", &what);
    let _ = writeln!(
        t,
        "# One client replays the recorded user for as long as the recording lasted; for a load test:"
    );
    let _ = writeln!(
        t,
        "#   volley run {}.toml --clients 200 --duration 1m",
        printable(name)
    );
    if let Some(data) = data_file {
        let rows = format!(
            "Each user takes a row of {data}: add a row per account (it has the recorded one)."
        );
        comment(&mut t, "", &rows);
    }
    for note in &c.values.notes {
        comment(&mut t, "", note);
    }
    let _ = writeln!(t, "name = {}", quote(name));
    let _ = writeln!(t, "target = {}", quote(&c.target));
    let _ = writeln!(
        t,
        "protocol = {}",
        quote(if c.socketio.is_some() {
            "socketio"
        } else {
            "ws"
        })
    );
    if let Some(path) = &c.path {
        let _ = writeln!(t, "path = {}", quote(path));
    }
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
        let _ = writeln!(
            t,
            "name = \"users\"\nfile = {}\npick = \"sequential\"             # wraps around: every client can take the one recorded row",
            quote(data)
        );
    }
    if let Some(sio) = &c.socketio {
        let _ = writeln!(t, "\n[socketio]");
        if sio.namespace != "/" && !sio.namespace.is_empty() {
            let _ = writeln!(t, "namespace = {}", quote(&sio.namespace));
        }
        let how = match sio.transport {
            "polling-upgrade" => "long-polling first, then the upgrade to WebSocket, as recorded",
            "polling" => "long-polling only, as recorded",
            _ => "straight over WebSocket, as recorded",
        };
        let _ = writeln!(t, "transport = {}   # {how}", quote(sio.transport));
        if sio.eio != 4 {
            let _ = writeln!(t, "eio = {}", sio.eio);
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
    let _ = writeln!(
        t,
        "\n[[group]]\nname = \"users\"\nclients = 1                      # --clients N on the command line"
    );
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
    if !c.streams.is_empty() {
        let _ = writeln!(
            t,
            "emit = [                         # repeated at the recorded pace, for the whole run"
        );
        for s in &c.streams {
            let mut parts = vec![format!("event = {}", quote(&s.event))];
            parts.extend(payload_parts(&s.payload));
            parts.push(format!("rate = \"1/{}ms\"", millis(s.every).max(1)));
            if s.ack {
                parts.push("ack = true".into());
            }
            let mut why = format!("sent {} times, every {:.0} ms", s.count, s.every * 1000.0);
            if !s.varying.is_empty() {
                let _ = write!(why, "; {}", s.varying.join(", "));
            }
            // One line, however long: what varies reads whole.
            let _ = writeln!(t, "  # {}", one_line(&why));
            let _ = writeln!(t, "  {{ {} }},", parts.join(", "));
        }
        let _ = writeln!(t, "]");
    }
    for h in &c.handlers {
        let _ = writeln!(t);
        let copied = if h.copied.is_empty() {
            String::new()
        } else {
            let fields: Vec<String> = h.copied.iter().map(|p| format!("`{p}`")).collect();
            format!(", copying {}", fields.join(", "))
        };
        let what = h.push.clone().unwrap_or_default();
        comment(
            &mut t,
            "",
            &format!(
                "The user answered the server's `{what}` pushes ({} of them), each at once, with `{}`{copied}.",
                h.count, h.emit
            ),
        );
        let _ = writeln!(t, "[[group.on]]");
        match (&h.event, &h.matches) {
            (Some(event), _) => {
                let _ = writeln!(t, "event = {}\nfrom = \"server\"", quote(event));
            }
            (None, Some(m)) => {
                let _ = writeln!(t, "match = {}\nfrom = \"server\"", literal(m));
            }
            _ => {}
        }
        let _ = writeln!(t, "emit = {}", quote(&h.emit));
        for part in payload_parts(&h.payload) {
            let _ = writeln!(t, "{part}");
        }
    }
    for e in &c.expects {
        let _ = writeln!(t);
        comment(&mut t, "", &format!("{}.", capitalise(&e.why)));
        let _ = writeln!(t, "[[expect]]\nevent = {}", quote(&e.event));
        if e.name != e.event {
            let _ = writeln!(t, "name = {}", quote(&e.name));
        }
        match &e.seq {
            None => {
                let _ = writeln!(t, "from = \"self\"");
            }
            Some(seq) => {
                let _ = writeln!(t, "from = \"server\"\nseq = {}", quote(seq));
                if let Some(stream) = &e.stream {
                    let _ = writeln!(t, "stream = {}", quote(stream));
                }
                if let Some(ts) = &e.timestamp {
                    let _ = writeln!(t, "timestamp = {}\ntimestamp_unit = \"ms\"", quote(ts));
                }
            }
        }
    }
    t
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
            if !headers.is_empty() {
                parts.push(format!("headers = {}", table(headers)));
            }
            match body {
                HttpBody::None => {}
                HttpBody::Json(v) => parts.push(format!("json = {}", toml_value(v))),
                HttpBody::Form(pairs) => parts.push(format!("form = {}", table(pairs))),
                HttpBody::Text(text) => parts.push(format!("body = {}", quote(text))),
            }
            // The statuses a step can check; another is not checked.
            if let Some(status) = status.filter(|s| (100..600).contains(s)) {
                parts.push(format!("status = {status}"));
            }
            push_captures(&mut parts, captures(&c.values, *id));
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
            push_captures(&mut parts, captures(&c.values, *id));
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
            parts.push("timeout = \"5s\"".into());
            push_captures(&mut parts, captures(&c.values, *id));
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

/// The longest duration volley reads (`u64::MAX` nanoseconds), in whole seconds and in whole
/// milliseconds: a capture's times can be anything, its scenario's durations cannot.
const MAX_SECONDS: f64 = (u64::MAX / 1_000_000_000) as f64;
const MAX_MILLIS: f64 = (u64::MAX / 1_000_000) as f64;

/// Seconds as a whole number of them, at least 1, that volley reads back as a duration.
fn seconds(secs: f64) -> u64 {
    secs.ceil().clamp(1.0, MAX_SECONDS) as u64
}

/// Seconds in whole milliseconds that volley reads back as a duration.
fn millis(secs: f64) -> u64 {
    (secs * 1000.0).round().clamp(0.0, MAX_MILLIS) as u64
}

/// A comment of one or more lines, wrapped at 100 columns.
fn comment(t: &mut String, indent: &str, text: &str) {
    let mut line = format!("{indent}#");
    for word in text.split_whitespace().map(printable) {
        if line.len() + word.len() + 1 > 100 && line.len() > indent.len() + 1 {
            let _ = writeln!(t, "{line}");
            line = format!("{indent}#");
        }
        line.push(' ');
        line.push_str(&word);
    }
    let _ = writeln!(t, "{line}");
}

/// `text` for a comment of one line: its words, control characters escaped.
fn one_line(text: &str) -> String {
    text.split_whitespace()
        .map(printable)
        .collect::<Vec<_>>()
        .join(" ")
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

/// A JSON value as TOML: objects as inline tables. TOML has no null: it is written as an empty
/// string (a note says so).
pub fn toml_value(v: &Value) -> String {
    match v {
        Value::Null => "\"\"".into(),
        Value::Bool(b) => b.to_string(),
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

/// Where a scenario for `input` goes by default: beside it, `NAME.toml`.
pub fn default_output(input: &Path) -> PathBuf {
    input.with_extension("toml")
}
