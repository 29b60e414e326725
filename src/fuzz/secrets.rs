//! How outputs hide secrets (`secrets`): query values in URLs and text, `Sec-WebSocket-Protocol`
//! tokens, and known values scrubbed wherever they appear. The text comes from peers (request
//! targets, headers, payloads) and users (URLs).
//!
//! The input's first line is a value to learn as secret, the rest a text. Hiding twice changes
//! nothing; after hiding, no `?KEY=VALUE` or `&KEY=VALUE` with a secret key shows a value, no
//! subprotocol entry after a marker or as long as a token shows, and a learned value is found in
//! no form it was written in. The text is also read as an HTTP body: as JSON, when it parses,
//! its secret members hidden in the text must be what hiding them in the parsed document gives
//! (serde_json, an independent reader); as a form, no field with a secret name shows a value.

use std::borrow::Cow;

use crate::protocol::socketio::push_json_string;
use serde_json::Value;

use crate::secrets::fields::{redact_form, redact_json_members};
use crate::secrets::text::{redact_query, redact_subprotocols};
use crate::secrets::{REDACTED, SecretValues, is_secret_name};

pub fn check(data: &[u8]) {
    let input = String::from_utf8_lossy(data);
    let (value, text) = input.split_once('\n').unwrap_or(("", &input));
    let mut learned = SecretValues::default();
    let hidden = redact_query(text, is_secret_name, Some(&mut learned));
    check_query_hidden(text, &hidden);
    assert!(
        matches!(
            redact_query(&hidden, is_secret_name, None),
            Cow::Borrowed(_)
        ),
        "hiding {hidden:?} again changed it"
    );
    let entries = redact_subprotocols(text, Some(&mut learned));
    check_subprotocols_hidden(text, &entries);
    assert!(
        matches!(redact_subprotocols(&entries, None), Cow::Borrowed(_)),
        "hiding {entries:?} again changed it"
    );
    check_scrubbed(value, text);
    check_json_members(text);
    check_form(text);
}

/// Secret members hidden in the text are those hidden in the parsed document, and hiding twice
/// changes nothing; text that is not JSON is only required not to break the walk.
fn check_json_members(text: &str) {
    let hidden = redact_json_members(text, is_secret_name, Some(&mut SecretValues::default()));
    assert!(
        matches!(
            redact_json_members(&hidden, is_secret_name, None),
            Cow::Borrowed(_)
        ),
        "hiding the members of {hidden:?} again changed it"
    );
    let Ok(mut expected) = serde_json::from_str::<Value>(text) else {
        return;
    };
    hide_members(&mut expected);
    let got: Value = serde_json::from_str(&hidden)
        .unwrap_or_else(|e| panic!("{text:?} hidden as {hidden:?} is no longer JSON: {e}"));
    assert_eq!(got, expected, "{text:?} hidden as {hidden:?}");
}

/// The reference: every member with a secret name replaced by the mark, in a parsed document.
fn hide_members(value: &mut Value) {
    match value {
        Value::Object(members) => {
            for (name, value) in members.iter_mut() {
                if is_secret_name(name) {
                    *value = REDACTED.into();
                } else {
                    hide_members(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(hide_members),
        _ => {}
    }
}

/// No `NAME=VALUE` field of a form with a secret name (percent-decoded) shows its value.
fn check_form(text: &str) {
    let hidden = redact_form(text, is_secret_name, Some(&mut SecretValues::default()));
    assert!(
        matches!(redact_form(&hidden, is_secret_name, None), Cow::Borrowed(_)),
        "hiding the fields of {hidden:?} again changed it"
    );
    for pair in hidden.split('&') {
        let Some((name, value)) = pair.split_once('=') else {
            continue;
        };
        let decoded = crate::secrets::text::percent_decoded(name);
        assert!(
            value.is_empty()
                || value == REDACTED
                || !is_secret_name(decoded.as_deref().unwrap_or(name)),
            "{text:?} hidden as {hidden:?} still shows {name}={value}"
        );
    }
}

/// Where a query value ends, and where a key without a value ends: the rule's own delimiters.
fn ends_value(b: u8) -> bool {
    b"&# \t\r\n\"'`<>\\".contains(&b)
}

/// Every `?KEY=VALUE` and `&KEY=VALUE` of `hidden`, wherever it starts, even inside another
/// value: none with a secret key may show its value.
fn check_query_hidden(text: &str, hidden: &str) {
    let bytes = hidden.as_bytes();
    for (at, _) in hidden.match_indices(['?', '&']) {
        let key_start = at + 1;
        let key_len = bytes[key_start..]
            .iter()
            .position(|&b| ends_value(b) || b == b'=' || b == b'?')
            .unwrap_or(bytes.len() - key_start);
        let eq = key_start + key_len;
        if key_len == 0 || bytes.get(eq) != Some(&b'=') {
            continue;
        }
        let value_len = bytes[eq + 1..]
            .iter()
            .position(|&b| ends_value(b))
            .unwrap_or(bytes.len() - eq - 1);
        let value = &hidden[eq + 1..eq + 1 + value_len];
        let key = &hidden[key_start..eq];
        assert!(
            value.is_empty() || value == REDACTED || !is_secret_name(key),
            "{text:?} hidden as {hidden:?} still shows {key}={value}"
        );
    }
}

/// Entries after a marker, and entries as long as a token, are hidden.
fn check_subprotocols_hidden(text: &str, hidden: &str) {
    let entries: Vec<&str> = hidden.split(',').map(str::trim).collect();
    for (i, entry) in entries.iter().enumerate() {
        let after_marker = i > 0 && is_secret_name(entries[i - 1]) && entries[i - 1] != REDACTED;
        if entry.is_empty() || *entry == REDACTED {
            continue;
        }
        assert!(
            !after_marker && entry.len() < 64,
            "{text:?} hidden as {hidden:?} still shows {entry:?}"
        );
    }
}

/// A learned value is scrubbed as written and as a JSON string carries it.
fn check_scrubbed(value: &str, text: &str) {
    // The mark itself holds brackets: a value made of them would be found in the mark.
    if value.len() < 4 || value.contains(['[', ']']) {
        return;
    }
    let mut values = SecretValues::default();
    values.add(value);
    let mut escaped = String::new();
    push_json_string(&mut escaped, value);
    let mut scrubbed = format!("{text}{value}{text}{escaped}");
    values.scrub(&mut scrubbed);
    assert!(
        !scrubbed.contains(value) && !scrubbed.contains(&escaped[1..escaped.len() - 1]),
        "{value:?} is still in {scrubbed:?}"
    );
}
