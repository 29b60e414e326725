//! Secrets inside text: the values of secret query parameters (in a URL, a request target, or
//! any text that quotes one), the tokens of a `Sec-WebSocket-Protocol` list, and header values.

use std::borrow::Cow;

use super::names::{is_secret_header, is_secret_name};
use super::{REDACTED, SecretValues};

/// Where a query value ends, in a URL or in text that quotes one.
fn ends_value(b: u8) -> bool {
    matches!(
        b,
        b'&' | b'#' | b' ' | b'\t' | b'\r' | b'\n' | b'"' | b'\'' | b'`' | b'<' | b'>' | b'\\'
    )
}

/// Where a query key ends without a value.
fn ends_key(b: u8) -> bool {
    ends_value(b) || matches!(b, b'=' | b'?')
}

/// `text` with the value of every `?KEY=VALUE` or `&KEY=VALUE` whose key is secret replaced by
/// `[redacted]`; the values hidden are added to `learned`, when given, so that they can be
/// scrubbed wherever else they appear. Borrowed when nothing was hidden.
pub fn redact_query<'t>(
    text: &'t str,
    is_secret_key: impl Fn(&str) -> bool,
    mut learned: Option<&mut SecretValues>,
) -> Cow<'t, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    // Bytes of `text` before this were copied into `out` (or are unchanged).
    let mut copied = 0;
    let mut at = 0;
    while let Some(found) = memchr::memchr2(b'?', b'&', &bytes[at..]) {
        let key_start = at + found + 1;
        let key_len = bytes[key_start..]
            .iter()
            .position(|&b| ends_key(b))
            .unwrap_or(bytes.len() - key_start);
        let eq = key_start + key_len;
        at = eq;
        if key_len == 0 || bytes.get(eq) != Some(&b'=') {
            continue;
        }
        let value_start = eq + 1;
        let value_len = bytes[value_start..]
            .iter()
            .position(|&b| ends_value(b))
            .unwrap_or(bytes.len() - value_start);
        let value_end = value_start + value_len;
        let value = &text[value_start..value_end];
        if value.is_empty() || value == REDACTED || !is_secret_key(&text[key_start..eq]) {
            // A value shown may quote another URL (`?next=/ws?token=...`): its own query is
            // looked at too.
            at = value_start;
            continue;
        }
        at = value_end;
        if let Some(learned) = learned.as_deref_mut() {
            learned.add(value);
            if let Some(decoded) = percent_decoded(value) {
                learned.add(&decoded);
            }
        }
        let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
        out.push_str(&text[copied..value_start]);
        out.push_str(REDACTED);
        copied = value_end;
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut out) => {
            out.push_str(&text[copied..]);
            Cow::Owned(out)
        }
    }
}

/// A percent-encoded (`+` for space too) value decoded, when decoding changes it and gives text.
pub(crate) fn percent_decoded(value: &str) -> Option<String> {
    if !value.bytes().any(|b| b == b'%' || b == b'+') {
        return None;
    }
    let bytes = value.as_bytes();
    let hex = |i: usize| bytes.get(i).and_then(|&b| (b as char).to_digit(16));
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
            (b'+', _, _) => out.push(b' '),
            (b, _, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok().filter(|d| d != value)
}

/// Entries of a subprotocol list this long or longer are tokens (a JWT is longer; the longest
/// registered subprotocol name is 52 bytes).
const TOKEN_LEN: usize = 64;
/// An entry of only letters, digits, `-` and `_`, this long or longer, mixing letters and digits,
/// is an opaque key (a hex or base62 API key), not a name: names have dots or no digits
/// (`wamp.2.json`, `v12.stomp`, `ocpp2.0.1`, `graphql-transport-ws`).
const OPAQUE_LEN: usize = 16;

/// Whether an entry of a subprotocol list is a token rather than a protocol name.
fn looks_like_token(entry: &str) -> bool {
    if entry.len() >= TOKEN_LEN {
        return true;
    }
    let b = entry.as_bytes();
    b.len() >= OPAQUE_LEN
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        && b.iter().any(u8::is_ascii_digit)
        && b.iter().any(u8::is_ascii_alphabetic)
}

/// A `Sec-WebSocket-Protocol` value with its tokens hidden. Browsers cannot set headers on a
/// WebSocket, so a bearer token often travels as a subprotocol: `access_token, eyJ...`. An entry
/// is hidden when it follows a marker (an entry that is a secret name: `access_token`,
/// `Authorization`, `Bearer`, `token`), or when it looks like a token itself (see
/// [`looks_like_token`]); markers and protocol names stay. The entries hidden are added to
/// `learned`, so the server's echo of one is hidden too.
pub fn redact_subprotocols<'v>(
    value: &'v str,
    mut learned: Option<&mut SecretValues>,
) -> Cow<'v, str> {
    let mut after_marker = false;
    let mut changed = false;
    let entries: Vec<Cow<str>> = value
        .split(',')
        .map(|raw| {
            let entry = raw.trim();
            let secret =
                !entry.is_empty() && entry != REDACTED && (after_marker || looks_like_token(entry));
            after_marker = !secret && is_secret_name(entry);
            if !secret {
                return Cow::Borrowed(raw);
            }
            changed = true;
            if let Some(learned) = learned.as_deref_mut() {
                learned.add(entry);
            }
            let lead = &raw[..raw.len() - raw.trim_start().len()];
            let trail = &raw[raw.trim_end().len()..];
            Cow::Owned(format!("{lead}{REDACTED}{trail}"))
        })
        .collect();
    if !changed {
        return Cow::Borrowed(value);
    }
    Cow::Owned(entries.join(","))
}

/// The value of header `name` as records show it: whole when the name is secret
/// (`Authorization`, `Cookie`, `Set-Cookie`, `X-Api-Key`: see [`is_secret_header`]), the tokens of
/// a `Sec-WebSocket-Protocol` list, and secret query values in any other (`Referer`, `Location`).
pub fn redact_header<'v>(
    name: &str,
    value: &'v str,
    is_secret_key: impl Fn(&str) -> bool,
    learned: Option<&mut SecretValues>,
) -> Cow<'v, str> {
    if is_secret_header(name) {
        return Cow::Borrowed(REDACTED);
    }
    if name.eq_ignore_ascii_case("sec-websocket-protocol") {
        return redact_subprotocols(value, learned);
    }
    redact_query(value, is_secret_key, learned)
}
