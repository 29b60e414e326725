//! The schema against the parser: what the compiler accepts, the schema accepts; what the schema
//! refuses, the compiler refuses too. (tests/examples/schema.rs checks scenarios/ and the docs'
//! blocks with Python's jsonschema, an independent validator.)

use std::path::Path;

use serde_json::Value;

use super::*;
use crate::scenario::plan::Plan;
use crate::scenario::{ScenarioError, Source};

/// Compiles `text` as a scenario file in `dir` (where its data files are).
fn compile(dir: &Path, text: &str) -> Result<Plan, ScenarioError> {
    let source = Source {
        path: dir.join("scenario.toml"),
        text: text.to_string(),
    };
    Plan::compile(source.parse()?, &source)
}

/// The schema's complaints about `text`, read as TOML and seen as JSON.
fn schema_errors(text: &str) -> Vec<String> {
    let schema = serde_json::to_value(scenario_schema()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let document: toml::Value = toml::from_str(text).unwrap();
    let document = serde_json::to_value(document).unwrap();
    validator
        .iter_errors(&document)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let rows: String = (0..50).map(|n| format!("user{n},pw{n}\n")).collect();
    std::fs::write(
        dir.path().join("users.csv"),
        format!("user,password\n{rows}"),
    )
    .unwrap();
    dir
}

/// Raw WebSocket, with every key of the connection, reconnect, steps, emits, expects and
/// thresholds in each of the shapes the parser takes.
const EVERY_WS_SHAPE: &str = r#"
name = "every ws shape"
target = "builtin"
protocol = "ws"
path = "/echo"
duration = "1m30s"
ramp = "500/s"
drain = "250ms"
connect_timeout = "5s"
seed = 7
headers = { Cookie = "a=b", "X-Client" = "{{client}}" }

[reconnect]
enabled = true
backoff = "100ms..5s"
factor = 2
jitter = 0.25
max_attempts = 3

[[group]]
name = "echoers"
clients = "10k"
disconnect_every = "2s"
on_connect = [
  { emit = "hello", data = "hello from {{client}}" },
  { wait = "1s..3s" },
  { wait = "500ms" },
  { wait_for = "*", name = "welcomed", match = '/type == "welcome"', timeout = "1s", on_failure = "continue" },
]
emit = [
  { event = "echo", data = { n = "{{seq}}" }, rate = "5/10s", size = "4KiB", stamp = "field" },
  { event = "plain", data = "text", rate = "0.5/s", stamp = "prefix", binary = true },
  { event = "raw", data = "as written", rate = "100/m", stamp = "none" },
]

[[group]]
name = "players"
clients = 3
emit = [{ event = "move", data = { x = 1 }, rate = "1/s", stamp = "auto" }]

[[group.on]]
match = '/type == "ping"'
emit = "pong"
data = { type = "pong", id = "{{/id}}" }

[[group]]
name = "visitors"
arrivals = "5/s"
lifetime = "10s"

[[expect]]
name = "echo"
event = "echo"
from = "self"
within = "100ms"

[[expect]]
event = "move"
from = "players"
to = ["players"]

[thresholds]
"echo.p99" = "< 50ms"
"echo.lost" = { limit = "== 0", abort = true, abort_after = "3s" }
"connect.p95" = ["< 100ms", { limit = "< 1s" }]
"#;

/// Socket.IO with users: data, HTTP steps with each kind of body, acks, replies, answers,
/// server streams.
const EVERY_SOCKETIO_SHAPE: &str = r#"
name = "every socketio shape"
target = "http://127.0.0.1:3000"
protocol = "socketio"
duration = "10s"

[socketio]
namespace = "/chat"
transport = "polling-upgrade"
auth = { token = "{{token}}", tries = 1 }
recovery = false
eio = 4
path = "/socket.io"
query = { room = "a", n = 1, debug = true }

[http]
base = "http://127.0.0.1:3000"
timeout = "5s"

[[data]]
name = "users"
file = "users.csv"
pick = "random"

[[group]]
name = "users"
clients = 10
before_connect = [
  { http = "POST /login", name = "login", json = { user = "{{users.user}}" }, status = [200, 201], capture = { token = "/token", sid = "header:x-session" }, headers = { "X-Trace" = "1" } },
  { http = "POST /prefs", form = { user = "{{users.user}}", remember = true, n = 2 }, status = 200 },
  { http = "PUT /note", body = "raw text", timeout = "2s", on_failure = "stop" },
  { http = "POST /list", json = [1, 2] },
]
on_connect = [
  { emit = "subscribe", args = [{ channel = "c0" }, 1], ack = true, retries = 2, ack_timeout = "1s", capture = { next = "/next" } },
  { wait_for = "welcome", name = "welcomed", timeout = "3s" },
]
emit = [{ event = "chat", data = "hi", rate = "1/s", ack = true, retries = 1, ack_timeout = "500ms", stamp = "arg" }]

[[group.on]]
event = "message"
from = "server"
emit = "received"
data = { id = "{{/id}}" }
capture = { last = "/id" }

[[group.on]]
event = "question"
from = "server"
answer = ["yes", 1]

[[group.on]]
event = "welcome"
from = "server"
capture = { greeting = "/text" }

[[expect]]
event = "message"
from = "server"
seq = "/seq"
timestamp = "/ts"
timestamp_unit = "us"
stream = "/channel"
"#;

/// Socket.IO's defaults, written out.
const SOCKETIO_DEFAULTS: &str = r#"
name = "socketio defaults"
protocol = "socketio"
duration = "10s"

[socketio]
namespace = "/"
transport = "websocket"
recovery = true
eio = 4
path = "/socket.io/"

[[group]]
name = "g"
clients = 1
emit = [{ event = "echo", data = "x", rate = "1/s" }]

[[expect]]
event = "echo"
"#;

/// The other values of the keys the schema lists values of.
const OTHER_ENUM_VALUES: &str = r#"
name = "other values"
target = "ws://127.0.0.1:3000"
protocol = "socketio"
duration = "10s"

[socketio]
transport = "polling"
eio = 3

[[data]]
name = "users"
file = "users.csv"
pick = "sequential"

[[group]]
name = "g"
clients = 1
emit = [{ event = "tick", rate = "1/s" }]

[[expect]]
event = "tick"
from = "server"
seq = "/seq"
timestamp = "/ts"
timestamp_unit = "ms"

[[data]]
name = "more"
file = "users.csv"
pick = "unique"
"#;

#[test]
fn scenarios_the_compiler_accepts_meet_the_schema() {
    let dir = data_dir();
    for (name, text) in [
        ("EVERY_WS_SHAPE", EVERY_WS_SHAPE),
        ("EVERY_SOCKETIO_SHAPE", EVERY_SOCKETIO_SHAPE),
        ("OTHER_ENUM_VALUES", OTHER_ENUM_VALUES),
        ("SOCKETIO_DEFAULTS", SOCKETIO_DEFAULTS),
    ] {
        if let Err(e) = compile(dir.path(), text) {
            panic!("{name} does not compile, so it proves nothing: {e}");
        }
        let errors = schema_errors(text);
        assert!(
            errors.is_empty(),
            "{name} is valid but the schema says: {errors:#?}"
        );
    }
}

/// A valid raw WebSocket scenario, with `from` replaced by `to`.
fn broken(from: &str, to: &str) -> String {
    const BASE: &str = r#"name = "base"
duration = "10s"
headers = { Cookie = "a=b" }

[reconnect]
backoff = "1s..5s"

[http]
base = "http://127.0.0.1:3000"

[[group]]
name = "g"
clients = 200
before_connect = [{ http = "POST /login", status = 200 }]
emit = [{ event = "echo", data = "x", rate = "5/s", stamp = "auto" }]

[[expect]]
event = "echo"

[thresholds]
"echo.p99" = "< 50ms"
"#;
    assert!(BASE.contains(from), "`{from}` is not in the base scenario");
    BASE.replacen(from, to, 1)
}

#[test]
fn what_the_schema_refuses_the_parser_refuses_too() {
    let dir = data_dir();
    let base = broken("", "");
    if let Err(e) = compile(dir.path(), &base) {
        panic!("the base scenario does not compile: {e}");
    }
    assert!(
        schema_errors(&base).is_empty(),
        "{:?}",
        schema_errors(&base)
    );
    let cases = [
        (
            "an unknown key",
            "duration = \"10s\"",
            "duration = \"10s\"\nrmap = \"2s\"",
        ),
        (
            "an unknown key in a group",
            "clients = 200",
            "clients = 200\nclient = 1",
        ),
        (
            "an unknown key in an emit",
            "stamp = \"auto\"",
            "sizes = \"1KiB\"",
        ),
        (
            "a count of the wrong type",
            "clients = 200",
            "clients = true",
        ),
        (
            "a bare number for a duration",
            "duration = \"10s\"",
            "duration = 10",
        ),
        (
            "a duration without a unit",
            "duration = \"10s\"",
            "duration = \"10\"",
        ),
        ("a rate without a time", "rate = \"5/s\"", "rate = \"5\""),
        ("an unknown stamp", "stamp = \"auto\"", "stamp = \"header\""),
        (
            "an unknown protocol",
            "duration = \"10s\"",
            "duration = \"10s\"\nprotocol = \"mqtt\"",
        ),
        (
            "a header that is not text",
            "Cookie = \"a=b\"",
            "Cookie = 1",
        ),
        ("a status as text", "status = 200", "status = \"200\""),
        (
            "a status out of range",
            "status = 200",
            "status = [200, 99]",
        ),
        (
            "a backoff that is no range",
            "backoff = \"1s..5s\"",
            "backoff = \"fast\"",
        ),
        (
            "a threshold as a number",
            "\"echo.p99\" = \"< 50ms\"",
            "\"echo.p99\" = 50",
        ),
        (
            "a threshold table with an unknown key",
            "\"echo.p99\" = \"< 50ms\"",
            "\"echo.p99\" = { limit = \"< 50ms\", abort_on = true }",
        ),
        (
            "an empty list of thresholds",
            "\"echo.p99\" = \"< 50ms\"",
            "\"echo.p99\" = []",
        ),
    ];
    for (what, from, to) in cases {
        let text = broken(from, to);
        assert!(
            compile(dir.path(), &text).is_err(),
            "{what}: the parser accepts\n{text}"
        );
        assert!(
            !schema_errors(&text).is_empty(),
            "{what}: the schema accepts what the parser refuses:\n{text}"
        );
    }
}

#[test]
fn the_schema_lists_values_the_parser_takes() {
    // Every value of an `enum` in the schema appears in the accepted scenarios above, so none
    // was made up.
    let schema = serde_json::to_value(scenario_schema()).unwrap();
    let mut listed = Vec::new();
    collect_enums(&schema, &mut listed);
    assert!(listed.len() >= 10, "{listed:?}");
    let accepted = [
        EVERY_WS_SHAPE,
        EVERY_SOCKETIO_SHAPE,
        OTHER_ENUM_VALUES,
        SOCKETIO_DEFAULTS,
    ]
    .concat();
    for value in listed {
        let written = match &value {
            Value::String(s) => format!("= \"{s}\""),
            other => format!("= {other}"),
        };
        assert!(
            accepted.contains(&written),
            "the schema lists {value}, which no accepted scenario here uses"
        );
    }
}

fn collect_enums(schema: &Value, out: &mut Vec<Value>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Array(values)) = map.get("enum") {
                out.extend(values.iter().cloned());
            }
            if let Some(value) = map.get("const") {
                out.push(value.clone());
            }
            map.values().for_each(|v| collect_enums(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_enums(v, out)),
        _ => {}
    }
}

#[test]
fn every_table_refuses_keys_it_does_not_know() {
    let schema = serde_json::to_value(scenario_schema()).unwrap();
    let mut tables = 0;
    let mut open = Vec::new();
    walk_tables(&schema, "#", &mut tables, &mut open);
    assert!(open.is_empty(), "tables that take any key: {open:?}");
    assert!(tables >= 11, "tables seen: {tables}");
}

fn walk_tables(schema: &Value, at: &str, tables: &mut usize, open: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            if map.contains_key("properties") {
                *tables += 1;
                if map.get("additionalProperties") != Some(&Value::Bool(false)) {
                    open.push(at.to_string());
                }
            }
            for (key, value) in map {
                walk_tables(value, &format!("{at}/{key}"), tables, open);
            }
        }
        Value::Array(items) => {
            for (k, value) in items.iter().enumerate() {
                walk_tables(value, &format!("{at}/{k}"), tables, open);
            }
        }
        _ => {}
    }
}

#[test]
fn the_schema_has_no_null_which_toml_cannot_write() {
    assert!(!scenario_schema_text().contains("null"));
}
