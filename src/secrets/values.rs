//! Known secret values, scrubbed from text wherever they appear: a user's captured token or
//! password column in its frame log and its error rows, a query value or subprotocol token the
//! inspector hid once, in every later record of that connection.
//!
//! A value is looked for as written, escaped for a JSON string (how a payload carries it),
//! percent-encoded (how a query carries it) and, in hex previews of binary payloads, as hex.
//! Values shorter than [`MIN_LEN`] bytes are not scrubbed: hiding every `42` in a log would hide
//! everything else, and a secret that short is no secret. At most [`MAX_VALUES`] values are kept;
//! later ones are still hidden where a rule finds them (a query, a header), not elsewhere.

use std::fmt::Write;

use super::REDACTED;
use crate::protocol::engineio::encode_query_value;

/// Values shorter than this are not scrubbed.
pub const MIN_LEN: usize = 4;
/// Values kept at most (a peer sending ever new tokens cannot make scrubbing slow).
pub const MAX_VALUES: usize = 64;

/// A set of secret values and the forms they are looked for in.
#[derive(Debug, Clone, Default)]
pub struct SecretValues {
    values: usize,
    /// Text forms, longest first (so a longer form is replaced before a value inside it).
    forms: Vec<Box<str>>,
    /// Lower-case hex of each value's bytes.
    hex: Vec<Box<str>>,
}

impl SecretValues {
    /// Adds a value (ignored when too short, already known, or when the set is full).
    pub fn add(&mut self, value: &str) {
        if value.len() < MIN_LEN
            || value == REDACTED
            || self.values >= MAX_VALUES
            || self.forms.iter().any(|f| &**f == value)
        {
            return;
        }
        self.values += 1;
        for form in forms(value) {
            if !self.forms.contains(&form) {
                self.forms.push(form);
            }
        }
        self.forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        self.hex.push(hex(value.as_bytes()).into());
    }

    pub fn is_empty(&self) -> bool {
        self.values == 0
    }

    /// Replaces every known value in `text` by `[redacted]`; true when one was found.
    pub fn scrub(&self, text: &mut String) -> bool {
        let mut found = false;
        for form in &self.forms {
            found |= replace(text, form);
        }
        found
    }

    /// Replaces every known value in a hex preview (at byte boundaries) by `[redacted]`.
    pub fn scrub_hex(&self, hex: &mut String) {
        for needle in &self.hex {
            let aligned = hex.match_indices(&**needle).any(|(at, _)| at % 2 == 0);
            if !aligned {
                continue;
            }
            let mut out = String::with_capacity(hex.len());
            let mut copied = 0;
            let mut at = 0;
            while let Some(found) = hex[at..].find(&**needle) {
                let start = at + found;
                if start % 2 == 1 {
                    at = start + 1;
                    continue;
                }
                out.push_str(&hex[copied..start]);
                out.push_str(REDACTED);
                copied = start + needle.len();
                at = copied;
            }
            out.push_str(&hex[copied..]);
            *hex = out;
        }
    }

    /// Scrubs every string of a JSON value (not the keys of objects).
    pub fn scrub_json(&self, value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(s) => {
                self.scrub(s);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| self.scrub_json(v)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|v| self.scrub_json(v)),
            _ => {}
        }
    }
}

/// Replaces each of `values` (those long enough) in `text`, in every form, without keeping them:
/// for an error message, which is written once.
pub fn scrub_each<'a>(text: &mut String, values: impl IntoIterator<Item = &'a str>) {
    for value in values {
        if value.len() < MIN_LEN {
            continue;
        }
        for form in forms(value) {
            replace(text, &form);
        }
    }
}

/// The forms a value is written in: as it is, escaped inside a JSON string, percent-encoded.
fn forms(value: &str) -> impl Iterator<Item = Box<str>> {
    let mut escaped = String::with_capacity(value.len());
    crate::protocol::socketio::push_json_string(&mut escaped, value);
    let escaped = escaped[1..escaped.len() - 1].to_string();
    let encoded = encode_query_value(value);
    let mut forms: Vec<Box<str>> = vec![value.into()];
    for form in [escaped, encoded] {
        if form != value {
            forms.push(form.into());
        }
    }
    forms.into_iter()
}

fn replace(text: &mut String, needle: &str) -> bool {
    if !text.contains(needle) {
        return false;
    }
    *text = text.replace(needle, REDACTED);
    true
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}
