//! `volley record`: a capture's text (a HAR, or `volley inspect --jsonl` records) read and made
//! into a scenario by [`record::record_text`], the whole of `volley record` but the files.
//!
//! Whatever the bytes: no panic; a refusal names a place inside the input (`line L` within its
//! lines, `line L, column C` within that line, counted in characters, `entry N` within the HAR's
//! entries and `WebSocket message M` within that entry's), or the whole file; a conversation found
//! is written as a scenario that parses and compiles with its data file, as `volley validate`
//! checks the files `volley record` writes (a scenario that fails is `RecordError::Invalid`, a bug);
//! and no value the capture holds under a secret name is written in it as it was: no field of the
//! scenario with a secret name holds a literal, and a distinctive secret value (one found nowhere
//! else in the capture) appears nowhere in the scenario's text, comments included.

use std::path::Path;

use serde_json::Value;

use crate::protocol::socketio;
use crate::record::capture::Capture;
use crate::record::{
    self, BadInput, CaptureFilter, CaptureFormat, Recording, ScenarioNames, Unrecordable, har,
    jsonl,
};
use crate::scenario::data::DataFiles;
use crate::scenario::{Plan, Source};
use crate::secrets::{REDACTED, is_secret_name};

const NAMES: ScenarioNames<'static> = ScenarioNames {
    capture: "capture",
    scenario: "recorded",
};

pub fn check_har(data: &[u8]) {
    check(data, CaptureFormat::Har);
}

pub fn check_jsonl(data: &[u8]) {
    check(data, CaptureFormat::InspectJsonl);
}

fn check(data: &[u8], format: CaptureFormat) {
    // `volley record` refuses a file that is not UTF-8 before reading it: the readers see text.
    let text = String::from_utf8_lossy(data);
    match record::record_text(&text, format, &CaptureFilter::default(), NAMES) {
        Err(Unrecordable::Malformed(bad)) => check_place(&text, &bad),
        Err(Unrecordable::Nothing(why)) => assert!(!why.is_empty(), "no conversation, no reason"),
        Ok(recording) => {
            check_compiles(&recording);
            check_no_literal_secret_fields(&recording);
            let capture = match format {
                CaptureFormat::Har => har::read(&text),
                CaptureFormat::InspectJsonl => jsonl::read(&text),
            }
            .expect("read once already");
            check_secret_values_absent(&text, &capture, &recording);
        }
    }
}

/// A refusal points inside the input, or at the whole file.
fn check_place(text: &str, bad: &BadInput) {
    assert!(
        !bad.message.is_empty(),
        "a refusal without a reason at {:?}",
        bad.place
    );
    let place = bad.place.as_str();
    if place.is_empty() {
        return;
    }
    let number = |s: &str| -> usize {
        s.parse()
            .unwrap_or_else(|_| panic!("{place:?} is no place in the file: {}", bad.message))
    };
    if let Some(rest) = place.strip_prefix("line ") {
        let lines: Vec<&str> = text.split('\n').collect();
        let (line, column) = match rest.split_once(", column ") {
            Some((l, c)) => (number(l), Some(number(c))),
            None => (number(rest), None),
        };
        assert!(
            (1..=lines.len()).contains(&line),
            "{place} of a {}-line input: {}",
            lines.len(),
            bad.message
        );
        if let Some(column) = column {
            let chars = lines[line - 1].chars().count();
            assert!(
                (1..=chars + 1).contains(&column),
                "{place}, in a line of {chars} characters: {}",
                bad.message
            );
        }
    } else if let Some(rest) = place.strip_prefix("entry ") {
        let doc: Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("{place} of a HAR that is not JSON ({e}): {}", bad.message));
        let entries = doc
            .pointer("/log/entries")
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("{place} of a HAR without entries: {}", bad.message));
        let (entry, message) = match rest.split_once(", WebSocket message ") {
            Some((e, m)) => (number(e), Some(number(m))),
            None => (number(rest), None),
        };
        assert!(
            (1..=entries.len()).contains(&entry),
            "{place} of {} entries: {}",
            entries.len(),
            bad.message
        );
        if let Some(message) = message {
            let count = entries[entry - 1]
                .get("_webSocketMessages")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            assert!(
                (1..=count).contains(&message),
                "{place}, of an entry with {count} WebSocket messages: {}",
                bad.message
            );
        }
    } else {
        panic!("{place:?} is no place in the file: {}", bad.message);
    }
}

/// The scenario parses and compiles with its data file, as `volley validate` checks them.
fn check_compiles(r: &Recording) {
    let source = Source::from_bytes(Path::new("recorded.toml"), r.scenario.clone().into_bytes())
        .expect("a String is UTF-8");
    let files: Vec<(&str, &str)> = r
        .data
        .iter()
        .map(|d| (d.name.as_str(), d.text.as_str()))
        .collect();
    let compiled = source
        .parse()
        .and_then(|scenario| Plan::compile_with(scenario, &source, DataFiles::Memory(&files)));
    if let Err(e) = compiled {
        panic!(
            "volley record wrote a scenario its own check refuses: {e}\n--- scenario\n{}--- data\n{:?}",
            r.scenario, r.data
        );
    }
}

/// No field of the scenario with a secret name holds a literal text: a credential is a column
/// of the data file, a value an answer carried a capture (`capture` tables hold pointers).
fn check_no_literal_secret_fields(r: &Recording) {
    let table: toml::Table = toml::from_str(&r.scenario).expect("it compiled");
    fn walk(key: &str, value: &toml::Value, scenario: &str) {
        match value {
            toml::Value::String(s) => assert!(
                !is_secret_name(key) || s.is_empty() || s.contains("{{"),
                "`{key}` is written as the literal {s:?}\n--- scenario\n{scenario}"
            ),
            toml::Value::Array(items) => {
                for item in items {
                    walk(key, item, scenario);
                }
            }
            toml::Value::Table(table) => {
                for (k, v) in table.iter().filter(|(k, _)| *k != "capture") {
                    walk(k, v, scenario);
                }
            }
            _ => {}
        }
    }
    for (k, v) in &table {
        walk(k, v, &r.scenario);
    }
}

/// A distinctive value the capture holds under a secret name (and nowhere else) is not in the
/// scenario's text: neither as a field's value nor in a comment.
fn check_secret_values_absent(text: &str, capture: &Capture, r: &Recording) {
    let mut secrets: Vec<String> = Vec::new();
    collect_secrets(capture, &mut secrets);
    for value in &secrets {
        let distinctive = value.len() >= 8
            && value.bytes().any(|b| b.is_ascii_alphabetic())
            && value.bytes().any(|b| b.is_ascii_digit())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'));
        // Found as often in the input's text as under secret names: nowhere else, so the
        // scenario has no other reason to hold it.
        let only_secret =
            text.matches(value.as_str()).count() == secrets.iter().filter(|s| *s == value).count();
        if distinctive && only_secret {
            assert!(
                !r.scenario.contains(value.as_str()),
                "the secret value {value:?} is written in the scenario\n--- scenario\n{}",
                r.scenario
            );
        }
    }
}

/// Every value under a secret name in what the capture holds: query parameters, headers and
/// JSON or form bodies of requests and answers, and the JSON of every message.
fn collect_secrets(capture: &Capture, out: &mut Vec<String>) {
    let pairs = |list: &[(String, String)], out: &mut Vec<String>| {
        out.extend(
            list.iter()
                .filter(|(k, v)| is_secret_name(k) && v != REDACTED)
                .map(|(_, v)| v.clone()),
        );
    };
    for e in &capture.exchanges {
        pairs(&e.url.query, out);
        pairs(&e.request_headers, out);
        pairs(&e.response_headers, out);
        for body in [&e.request_body, &e.response_body].into_iter().flatten() {
            json_secrets(&body.text, out);
            if body.mime == "application/x-www-form-urlencoded" {
                pairs(&record::capture::parse_query(&body.text), out);
            }
        }
    }
    for s in &capture.sockets {
        pairs(&s.url.query, out);
        pairs(&s.request_headers, out);
        for m in &s.messages {
            // A raw message is JSON or opaque text; an Engine.IO message's data a Socket.IO
            // packet's.
            match &s.engine {
                None => json_secrets(&m.text, out),
                Some(_) => {
                    let packet = m.text.strip_prefix('4').map(socketio::decode);
                    if let Some(Ok(packet)) = packet {
                        json_secrets(packet.data, out);
                    }
                }
            }
        }
    }
}

/// The secret-named string leaves of `text` if it is JSON, each under its nearest key.
fn json_secrets(text: &str, out: &mut Vec<String>) {
    fn walk(key: &str, value: &Value, out: &mut Vec<String>) {
        match value {
            Value::String(s) if is_secret_name(key) && s != REDACTED => out.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|v| walk(key, v, out)),
            Value::Object(map) => map.iter().for_each(|(k, v)| walk(k, v, out)),
            _ => {}
        }
    }
    if let Ok(json) = serde_json::from_str::<Value>(text) {
        walk("", &json, out);
    }
}
