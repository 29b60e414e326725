//! The secrets of a Socket.IO CONNECT, which only decoding can recognise: a client's auth and
//! the recovery session id `pid` of a server's reply.
//!
//! A client's auth shows its shape when its packet is whole (one frame or one long-polling
//! packet, not cut at the payload limit) and it is a JSON object: its keys, every leaf value
//! `[redacted]`, so that a reader (`volley record`) knows which values the auth carries. Anything
//! else (a fragmented CONNECT, one cut short, an auth that is not an object or not JSON) shows
//! as `[redacted]` after the packet's head. The strings hidden are learned, so that the same
//! token is hidden wherever the connection shows it later.

use serde_json::Value;

use super::{ConnDecoder, MAX_PARSED_JSON, REDACTED};
use crate::protocol::pointer::JsonPointer;
use crate::secrets::fields::redact_leaves;
use crate::wire::record::{Dir, Record};

impl ConnDecoder {
    /// Whether a client's secrets are hidden on this connection (Engine.IO, secrets not shown).
    pub(super) fn hides_secrets(&self, dir: Dir) -> bool {
        dir == Dir::C2s && self.engine.is_some() && !self.opts.secrets.show()
    }

    /// The decoded auth (`data`) of a client's CONNECT as its record shows it: an object's shape,
    /// when the text shown of the packet was not `cut` at the payload limit; else `[redacted]`.
    pub(super) fn connect_auth(&mut self, data: &str, cut: bool) -> Value {
        if !cut && data.len() <= MAX_PARSED_JSON {
            if let Ok(mut auth @ Value::Object(_)) = serde_json::from_str(data) {
                redact_leaves(&mut auth, &mut self.known);
                return auth;
            }
        }
        REDACTED.into()
    }

    /// The auth of a CONNECT that came in fragments is hidden whole, its shape too: the
    /// fragments' records have shown it as `[redacted]` already.
    pub(super) fn keep_fragmented_auth_hidden(&self, record: &mut Record, dir: Dir) {
        if !self.hides_secrets(dir) {
            return;
        }
        if let Some(sio) = record.sio.as_mut().filter(|s| s.kind == "CONNECT") {
            if sio.args.is_some() {
                sio.args = Some(REDACTED.into());
            }
        }
    }

    /// Hides the auth payload of a client's Socket.IO CONNECT (`40`, or `40/nsp,`, then the auth)
    /// in what `record` shows of `payload`, whether or not the packet decoded: the head, then the
    /// auth's shape when decoding found one (see [`ConnDecoder::connect_auth`]), else the head
    /// cut at the payload limit and `[redacted]`; never hex. Decided on the payload's bytes, not
    /// on the text shown, which may be cut shorter than the head or be no text at all (a fragment
    /// that ends inside a character).
    pub(super) fn redact_connect(&self, record: &mut Record, dir: Dir, payload: &[u8]) {
        if !self.hides_secrets(dir) {
            return;
        }
        let Some(rest) = payload.strip_prefix(b"40") else {
            return;
        };
        let head = match rest.strip_prefix(b"/") {
            Some(nsp) => match nsp.iter().position(|&b| b == b',') {
                Some(comma) => 3 + comma + 1,
                // A namespace and nothing else: no auth.
                None => return,
            },
            None => 2,
        };
        if payload.len() <= head {
            return;
        }
        let shape = record
            .sio
            .as_ref()
            .filter(|sio| sio.kind == "CONNECT")
            .and_then(|sio| sio.args.as_ref())
            .filter(|args| args.is_object());
        record.text = Some(match shape {
            Some(shape) => format!("{}{shape}", String::from_utf8_lossy(&payload[..head])),
            None => format!(
                "{}{REDACTED}",
                String::from_utf8_lossy(&payload[..head.min(self.opts.max_payload)])
            ),
        });
        record.hex = None;
        record.truncated = false;
    }

    /// A server's CONNECT reply carries the recovery session id `pid`: whoever holds it can take
    /// the session over. Hidden in the decoded `reply` and in the text shown of its packet
    /// (`data`).
    pub(super) fn hide_pid(&self, record: &mut Record, data: &str, reply: &mut Value) {
        if self.opts.secrets.show() {
            return;
        }
        if let Some(pid) = reply.get_mut("pid") {
            if let (Some(text), Some(secret)) = (record.text.as_mut(), written_string(data, "/pid"))
            {
                hide_secret(text, secret, record.truncated);
            }
            *pid = REDACTED.into();
        }
    }
}

/// The string at `pointer` in `json` as it is written there, escapes included (what a shown text
/// holds), without its quotes; `None` when it is not a non-empty string.
fn written_string<'a>(json: &'a str, pointer: &str) -> Option<&'a str> {
    let raw = JsonPointer::parse(pointer)?.read_raw(json.as_bytes())?;
    raw.strip_prefix('"')?
        .strip_suffix('"')
        .filter(|s| !s.is_empty())
}

/// Replaces every whole `secret` in `text` by the redaction mark, and, when the text was cut
/// short at the payload limit, the start of one that the cut left at its very end.
fn hide_secret(text: &mut String, secret: &str, cut_short: bool) {
    *text = text.replace(secret, REDACTED);
    if !cut_short {
        return;
    }
    let partial = (1..secret.len())
        .rev()
        .filter(|&at| secret.is_char_boundary(at))
        .find(|&at| text.ends_with(&secret[..at]));
    if let Some(len) = partial {
        text.truncate(text.len() - len);
        text.push_str(REDACTED);
    }
}
