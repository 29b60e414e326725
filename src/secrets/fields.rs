//! Secrets in structured text: the value of every JSON member and every form field whose name is
//! secret (by [`super::names`], or named by the user), as HTTP bodies carry them, and every leaf
//! of a Socket.IO CONNECT's auth.
//!
//! JSON is hidden in its text, not in a parsed document: the text keeps its members' order, its
//! spacing, its numbers as written and its repeated keys, and a body cut at the size limit (which
//! no longer parses) still has its secret members hidden up to the cut. The walk knows strings
//! (with their escapes) and nesting, nothing else, so on text that is not JSON it hides only what
//! reads as `"name": value`; it never fails.
//!
//! The strings hidden are added to the connection's known values, so that the same token is
//! hidden wherever it shows up later. Numbers, booleans and null are hidden in place but not
//! looked for elsewhere: scrubbing digits out of later text would break the numbers of every
//! JSON document that happens to contain them.

use std::borrow::Cow;

use serde_json::Value;

use super::text::percent_decoded;
use super::{REDACTED, SecretRules, SecretValues};

/// The mark as a JSON string: what a hidden member's value becomes.
const QUOTED_MARK: &str = "\"[redacted]\"";

impl SecretRules {
    /// A JSON text with the value of every secret member hidden (see the module's doc).
    pub fn redact_json_members<'t>(
        &self,
        text: &'t str,
        learned: Option<&mut SecretValues>,
    ) -> Cow<'t, str> {
        if self.show() {
            return Cow::Borrowed(text);
        }
        redact_json_members(text, |name| self.is_secret_key(name), learned)
    }

    /// A form body (`user=u1&password=x`) with the value of every secret field hidden.
    pub fn redact_form<'t>(
        &self,
        text: &'t str,
        learned: Option<&mut SecretValues>,
    ) -> Cow<'t, str> {
        if self.show() {
            return Cow::Borrowed(text);
        }
        redact_form(text, |name| self.is_secret_key(name), learned)
    }
}

/// `text` with the whole value of every member whose name is secret replaced by
/// `"[redacted]"`, at any depth (an object or an array under a secret name goes whole); the
/// strings hidden are added to `learned`. Borrowed when nothing was hidden.
pub fn redact_json_members<'t>(
    text: &'t str,
    is_secret: impl Fn(&str) -> bool,
    mut learned: Option<&mut SecretValues>,
) -> Cow<'t, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    // Bytes of `text` before this were copied into `out` (or are unchanged).
    let mut copied = 0;
    let mut at = 0;
    while let Some(found) = memchr::memchr(b'"', &bytes[at..]) {
        let start = at + found;
        let end = string_end(bytes, start);
        at = end;
        let colon = skip_space(bytes, end);
        if bytes.get(colon) != Some(&b':') {
            continue;
        }
        // A string followed by a colon is a member's name, and it is whole.
        if !is_secret(&json_string(&text[start..end])) {
            continue;
        }
        let value_start = skip_space(bytes, colon + 1);
        let value_end = value_end(bytes, value_start);
        at = value_end;
        let value = &text[value_start..value_end];
        if value.is_empty() || value == QUOTED_MARK {
            continue;
        }
        if let Some(learned) = learned.as_deref_mut() {
            learn_json(value, learned);
        }
        let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
        out.push_str(&text[copied..value_start]);
        out.push_str(QUOTED_MARK);
        copied = value_end;
    }
    finish(text, out, copied)
}

/// `text`, a form body, with the value of every `NAME=VALUE` pair whose name (percent-decoded)
/// is secret replaced by `[redacted]`; the values hidden, as written and decoded, are added to
/// `learned`. Borrowed when nothing was hidden.
pub fn redact_form<'t>(
    text: &'t str,
    is_secret: impl Fn(&str) -> bool,
    mut learned: Option<&mut SecretValues>,
) -> Cow<'t, str> {
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut start = 0;
    for pair in text.split('&') {
        let pair_start = start;
        start += pair.len() + 1;
        let Some((name, value)) = pair.split_once('=') else {
            continue;
        };
        if value.is_empty() || value == REDACTED {
            continue;
        }
        let decoded = percent_decoded(name);
        if !is_secret(decoded.as_deref().unwrap_or(name)) {
            continue;
        }
        if let Some(learned) = learned.as_deref_mut() {
            learned.add(value);
            if let Some(decoded) = percent_decoded(value) {
                learned.add(&decoded);
            }
        }
        let value_start = pair_start + name.len() + 1;
        let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
        out.push_str(&text[copied..value_start]);
        out.push_str(REDACTED);
        copied = value_start + value.len();
    }
    finish(text, out, copied)
}

/// Every leaf of `value` (string, number, boolean, null) replaced by `"[redacted]"`; objects keep
/// their keys and arrays their length: the shape of a Socket.IO CONNECT's auth without its
/// values. The strings hidden are added to `learned`.
pub fn redact_leaves(value: &mut Value, learned: &mut SecretValues) {
    match value {
        Value::Object(members) => members.values_mut().for_each(|v| redact_leaves(v, learned)),
        Value::Array(items) => items.iter_mut().for_each(|v| redact_leaves(v, learned)),
        leaf => {
            if let Value::String(s) = leaf {
                learned.add(s);
            }
            *leaf = REDACTED.into();
        }
    }
}

fn finish(text: &str, out: Option<String>, copied: usize) -> Cow<'_, str> {
    match out {
        None => Cow::Borrowed(text),
        Some(mut out) => {
            out.push_str(&text[copied..]);
            Cow::Owned(out)
        }
    }
}

/// Where the JSON string opening at `start` (a `"`) ends: after its closing quote, or at the end
/// of the text when it is never closed.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while let Some(found) = memchr::memchr2(b'"', b'\\', &bytes[i..]) {
        i += found;
        if bytes[i] == b'"' {
            return i + 1;
        }
        // An escape: the next byte is never the string's end.
        i += 2;
        if i >= bytes.len() {
            break;
        }
    }
    bytes.len()
}

fn skip_space(bytes: &[u8], mut i: usize) -> usize {
    while bytes
        .get(i)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    {
        i += 1;
    }
    i
}

/// Where the JSON value starting at `start` ends: a string, an object or array with everything
/// nested in it, or a literal up to the next delimiter; the end of the text when it is cut short.
fn value_end(bytes: &[u8], start: usize) -> usize {
    match bytes.get(start) {
        None => start,
        Some(b'"') => string_end(bytes, start),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut i = start;
            while i < bytes.len() {
                match bytes[i] {
                    b'"' => {
                        i = string_end(bytes, i);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            bytes.len()
        }
        Some(_) => bytes[start..]
            .iter()
            .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n'))
            .map_or(bytes.len(), |n| start + n),
    }
}

/// A whole JSON string literal (quotes included) as the text it stands for; as written, without
/// its quotes, when its escapes are not valid.
fn json_string(literal: &str) -> Cow<'_, str> {
    let inner = &literal[1..literal.len() - 1];
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    serde_json::from_str::<String>(literal).map_or(Cow::Borrowed(inner), Cow::Owned)
}

/// Adds the strings of a hidden JSON value to `learned`, when it is whole.
fn learn_json(value: &str, learned: &mut SecretValues) {
    fn strings(value: &Value, learned: &mut SecretValues) {
        match value {
            Value::String(s) => learned.add(s),
            Value::Array(items) => items.iter().for_each(|v| strings(v, learned)),
            Value::Object(members) => members.values().for_each(|v| strings(v, learned)),
            _ => {}
        }
    }
    if let Ok(parsed) = serde_json::from_str::<Value>(value) {
        strings(&parsed, learned);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn hide_json(text: &str) -> (String, SecretValues) {
        let mut learned = SecretValues::default();
        let rules = SecretRules::hidden(&["pin".to_string()]);
        let hidden = rules.redact_json_members(text, Some(&mut learned));
        (hidden.into_owned(), learned)
    }

    #[test]
    fn a_login_body_loses_its_password_and_keeps_its_user() {
        let (hidden, learned) = hide_json(r#"{"user":"user17","password":"pw17-long"}"#);
        assert_eq!(hidden, r#"{"user":"user17","password":"[redacted]"}"#);
        let mut later = r#"echo "pw17-long""#.to_string();
        assert!(learned.scrub(&mut later), "the password is learned");
        assert!(!learned.scrub(&mut "user17".to_string()), "the user is not");
    }

    #[test]
    fn secret_members_are_hidden_whole_at_any_depth_with_order_and_spacing_kept() {
        let text = r#"{ "z": 1, "data": {"access_token" : "t0k3n-abcd", "expires": 3600,
  "refresh": {"token": {"value": "r-1234", "n": [1, 2]}}},
  "apiKey": ["k-1", "k-2"], "pin": 4821, "list": ["password", "x"], "ok": true }"#;
        let (hidden, learned) = hide_json(text);
        assert_eq!(
            hidden,
            r#"{ "z": 1, "data": {"access_token" : "[redacted]", "expires": 3600,
  "refresh": {"token": "[redacted]"}},
  "apiKey": "[redacted]", "pin": "[redacted]", "list": ["password", "x"], "ok": true }"#
        );
        let parsed: Value = serde_json::from_str(&hidden).unwrap();
        let keys: Vec<&String> = parsed.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["z", "data", "apiKey", "pin", "list", "ok"]);
        for (value, found) in [("t0k3n-abcd", true), ("r-1234", true), ("4821", false)] {
            let mut text = format!("saw {value}");
            assert_eq!(learned.scrub(&mut text), found, "{value}");
        }
    }

    #[test]
    fn escaped_names_and_values_are_read_as_json_reads_them() {
        let (hidden, learned) =
            hide_json(r#"{"pass\u0077ord":"a\"b\\c-d","n\"ame":"x","t":"\"token\": 1"}"#);
        assert_eq!(
            hidden,
            r#"{"pass\u0077ord":"[redacted]","n\"ame":"x","t":"\"token\": 1"}"#
        );
        let mut echo = json!(["a\"b\\c-d"]);
        learned.scrub_json(&mut echo);
        assert_eq!(echo, json!(["[redacted]"]));
    }

    #[test]
    fn a_body_cut_short_or_not_json_is_hidden_as_far_as_it_goes_and_never_fails() {
        let cases = [
            (
                r#"{"user":"u","password":"hunter2-and-more"#,
                r#"{"user":"u","password":"[redacted]""#,
            ),
            (
                r#"{"session":{"id":"s-1","token":"abc"#,
                r#"{"session":"[redacted]""#,
            ),
            (r#"{"token":"#, r#"{"token":"#),
            (r#"{"tok"#, r#"{"tok"#),
            (r#"{"token" "x"}"#, r#"{"token" "x"}"#),
            ("not json: token=1", "not json: token=1"),
            (r#"["token", "secret"]"#, r#"["token", "secret"]"#),
            (r#"{"token":}"#, r#"{"token":}"#),
            (r#"{"a":"\"#, r#"{"a":"\"#),
            (r#"}}]]"token":1"#, r#"}}]]"token":"[redacted]""#),
            ("\"é\":\"token\":\"ü\"", "\"é\":\"token\":\"[redacted]\""),
        ];
        for (text, hidden) in cases {
            assert_eq!(hide_json(text).0, hidden, "{text}");
        }
    }

    #[test]
    fn hiding_twice_changes_nothing_and_show_secrets_nothing_at_all() {
        let (hidden, _) = hide_json(r#"{"token":{"a":1},"password":"p"}"#);
        assert!(matches!(
            SecretRules::hidden(&[]).redact_json_members(&hidden, None),
            Cow::Borrowed(_)
        ));
        let text = r#"{"password":"p"}"#;
        assert_eq!(SecretRules::shown().redact_json_members(text, None), text);
    }

    #[test]
    fn form_fields_with_secret_names_are_hidden_and_learned_decoded() {
        let rules = SecretRules::hidden(&["PIN".to_string()]);
        let mut learned = SecretValues::default();
        let form = "user=u1&password=p%40ss+word&user%5Btoken%5D=t-77&pin=4821&next=%2Fhome&token=";
        assert_eq!(
            rules.redact_form(form, Some(&mut learned)),
            "user=u1&password=[redacted]&user%5Btoken%5D=[redacted]&pin=[redacted]&next=%2Fhome&token="
        );
        let mut echo = r#"{"said":"p@ss word"}"#.to_string();
        assert!(learned.scrub(&mut echo));
        assert_eq!(echo, r#"{"said":"[redacted]"}"#);
        assert!(matches!(
            rules.redact_form("password=[redacted]&a=b", None),
            Cow::Borrowed(_)
        ));
        assert_eq!(SecretRules::shown().redact_form(form, None), form);
    }

    #[test]
    fn the_leaves_of_an_auth_are_hidden_and_its_keys_kept() {
        let mut auth = json!({"token": "tok-5e1f", "user": {"id": 7, "name": "ann-b"}, "roles": ["a", {"r": null}], "b": true});
        let mut learned = SecretValues::default();
        redact_leaves(&mut auth, &mut learned);
        assert_eq!(
            auth.to_string(),
            r#"{"token":"[redacted]","user":{"id":"[redacted]","name":"[redacted]"},"roles":["[redacted]",{"r":"[redacted]"}],"b":"[redacted]"}"#
        );
        let mut later = "tok-5e1f and ann-b".to_string();
        learned.scrub(&mut later);
        assert_eq!(later, "[redacted] and [redacted]");
    }
}
