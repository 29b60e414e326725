//! From bytes seen on one connection to [`Record`]s: WebSocket frame fields, payload previews,
//! Engine.IO and Socket.IO packets, ack round trips, and redaction of secrets.
//!
//! A [`ConnDecoder`] keeps what decoding needs across frames: whether the connection carries
//! Engine.IO (and which version), binary attachments still due after a BINARY_EVENT, fragments of
//! a message in progress, and the events whose acks are awaited.

use std::time::Instant;

use crate::protocol::engineio::{self, PacketType, Version};
use crate::protocol::socketio::{self, Kind};

use super::acks::SharedAckBook;
use super::body::{CapturedBody, DEFAULT_MAX_BODY};
use super::record::{Dir, Record, RecordKind, SocketIoFields};
use super::redact::redact_record;
pub use crate::secrets::REDACTED;
use crate::secrets::{SecretRules, SecretValues};

mod connect;

/// How much to show and which secrets to hide.
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// Payload bytes shown as text (or as hex, for binary), at most.
    pub max_payload: usize,
    /// Text of an HTTP body shown, at most (`--max-body`; the inspector's): 0 for no body records.
    pub max_body: usize,
    /// What is hidden (`--show-secrets`, `--secret`).
    pub secrets: SecretRules,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            max_payload: 512,
            max_body: DEFAULT_MAX_BODY,
            secrets: SecretRules::default(),
        }
    }
}
/// JSON arguments longer than this are shown as text only, not parsed.
const MAX_PARSED_JSON: usize = 64 * 1024;
/// A fragmented message is reassembled for decoding up to this size.
const MAX_REASSEMBLED: usize = 1 << 20;

/// The header fields of one WebSocket frame, as far as a record shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameMeta {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub masked: bool,
    pub len: u64,
}

impl FrameMeta {
    /// The fields of a frame header read off the wire.
    pub fn of(header: &crate::protocol::wsframe::FrameHeader) -> FrameMeta {
        FrameMeta {
            fin: header.fin,
            rsv: header.rsv,
            opcode: header.opcode,
            masked: header.mask.is_some(),
            len: header.payload_len,
        }
    }

    /// A whole, unfragmented message (tap and run see messages, not frames).
    pub fn message(binary: bool, len: usize, masked: bool) -> FrameMeta {
        FrameMeta {
            fin: true,
            rsv: 0,
            opcode: if binary { 2 } else { 1 },
            masked,
            len: len as u64,
        }
    }
}

pub fn opcode_name(opcode: u8) -> &'static str {
    match opcode {
        0 => "continuation",
        1 => "text",
        2 => "binary",
        8 => "close",
        9 => "ping",
        10 => "pong",
        _ => "reserved",
    }
}

/// The Engine.IO version a request target asks for (`EIO=3` or `EIO=4` in its query), if any.
pub fn engineio_version(target: &str) -> Option<Version> {
    match query_param(target, "EIO")? {
        "3" => Some(Version::V3),
        "4" => Some(Version::V4),
        _ => None,
    }
}

/// The raw value of query parameter `name` in a request target.
pub fn query_param<'a>(target: &'a str, name: &str) -> Option<&'a str> {
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then_some(value)
    })
}

/// Decoding state for one connection.
pub struct ConnDecoder {
    opts: DecodeOptions,
    engine: Option<Version>,
    /// Binary frames still due as attachments of the last BINARY_EVENT/BINARY_ACK, per direction.
    attachments_due: [u32; 2],
    /// Opcode and payload of a fragmented message in progress, per direction.
    partial: [Option<(u8, Vec<u8>)>; 2],
    /// Whether the message in progress, per direction, is compressed (RSV1 on its first frame).
    compressed: [bool; 2],
    /// A fragmented client CONNECT is in progress: its later fragments are secret too.
    secret_fragments: bool,
    /// Values this connection knows to be secret: hidden by a rule once (a query token, a
    /// subprotocol token), or its user's (a run's frame log); scrubbed from every record.
    known: SecretValues,
    acks: SharedAckBook,
}

fn slot(dir: Dir) -> usize {
    match dir {
        Dir::C2s => 0,
        Dir::S2c => 1,
    }
}

impl ConnDecoder {
    /// `engine`: the Engine.IO version when the connection carries Socket.IO, None for raw
    /// WebSocket.
    pub fn new(opts: DecodeOptions, engine: Option<Version>) -> ConnDecoder {
        ConnDecoder {
            opts,
            engine,
            attachments_due: [0; 2],
            partial: [None, None],
            compressed: [false; 2],
            secret_fragments: false,
            known: SecretValues::default(),
            acks: SharedAckBook::default(),
        }
    }

    /// Shares the ack book of an Engine.IO session (see [`super::acks`]).
    pub fn set_ack_book(&mut self, book: SharedAckBook) {
        self.acks = book;
    }

    pub fn set_engine(&mut self, engine: Option<Version>) {
        self.engine = engine;
    }

    pub fn engine(&self) -> Option<Version> {
        self.engine
    }

    /// A value to hide wherever it appears in this connection's records (a user's token).
    pub fn learn_secret(&mut self, value: &str) {
        if !self.opts.secrets.show() {
            self.known.add(value);
        }
    }

    /// Text of an HTTP body kept for its record, at most.
    pub fn max_body(&self) -> usize {
        self.opts.max_body
    }

    /// Fills `record` as the `http_body` record of `body`, with the secrets of its format hidden
    /// and learned (see [`CapturedBody::fill`]).
    pub fn http_body(&mut self, record: &mut Record, body: CapturedBody) {
        body.fill(record, &self.opts.secrets, &mut self.known);
    }

    /// The last pass before a record leaves: secret query values and known secret values hidden
    /// in every text it carries (see [`super::redact`]).
    pub fn redact(&mut self, record: &mut Record) {
        redact_record(&self.opts.secrets, &mut self.known, record);
    }

    /// Fills `record` with a frame's fields and its decoded (unmasked) `payload`. `payload` may
    /// be cut short of `meta.len` (a frame too large to hold): only what is there is decoded.
    pub fn frame(
        &mut self,
        record: &mut Record,
        dir: Dir,
        meta: FrameMeta,
        payload: &[u8],
        at: Instant,
    ) {
        record.kind = RecordKind::Frame;
        record.dir = Some(dir);
        record.opcode = Some(opcode_name(meta.opcode));
        if opcode_name(meta.opcode) == "reserved" {
            record.opcode_value = Some(meta.opcode);
        }
        record.fin = Some(meta.fin);
        if meta.rsv != 0 {
            record.rsv = Some(meta.rsv);
        }
        record.masked = Some(meta.masked);
        record.len = Some(meta.len);
        let whole = payload.len() as u64 == meta.len;
        let starts_message = matches!(meta.opcode, 1 | 2);
        if starts_message {
            self.compressed[slot(dir)] = meta.rsv & 0b100 != 0;
        }
        if self.compressed[slot(dir)] && (starts_message || meta.opcode == 0) {
            // permessage-deflate: the payload is compressed, so it is shown as bytes.
            self.show_payload(record, true, payload);
            record.detail = Some("compressed (permessage-deflate): not decoded".into());
            self.partial[slot(dir)] = None;
            if meta.fin {
                self.compressed[slot(dir)] = false;
            }
            return;
        }
        match meta.opcode {
            8 => {
                if payload.len() >= 2 {
                    record.close_code = Some(u16::from_be_bytes([payload[0], payload[1]]));
                    record.close_reason = Some(String::from_utf8_lossy(&payload[2..]).into());
                } else if payload.len() == 1 {
                    record.detail = Some("malformed close payload (1 byte)".into());
                }
            }
            1 | 2 if meta.fin => {
                self.partial[slot(dir)] = None;
                self.show_payload(record, meta.opcode == 2, payload);
                if whole {
                    self.decode_message(record, dir, meta.opcode == 2, payload, at);
                }
                if meta.opcode == 1 {
                    self.redact_connect(record, dir, payload);
                }
            }
            1 | 2 => {
                self.show_payload(record, meta.opcode == 2, payload);
                self.partial[slot(dir)] = whole.then(|| (meta.opcode, payload.to_vec()));
                if meta.opcode == 1 {
                    self.redact_connect(record, dir, payload);
                }
                if dir == Dir::C2s {
                    // The auth may come in any later fragment, even when this one holds no byte
                    // of it (`40`, or just `4`): the fragments of what may be a CONNECT are secret.
                    let may_be_connect = payload.starts_with(b"40") || b"40".starts_with(payload);
                    self.secret_fragments =
                        meta.opcode == 1 && self.hides_secrets(dir) && may_be_connect;
                }
            }
            0 => {
                let binary = match &self.partial[slot(dir)] {
                    Some((opcode, _)) => *opcode == 2,
                    None => std::str::from_utf8(payload).is_err(),
                };
                self.show_payload(record, binary, payload);
                if dir == Dir::C2s && self.secret_fragments {
                    record.text = Some(REDACTED.into());
                    record.hex = None;
                    record.truncated = false;
                    self.secret_fragments = !meta.fin;
                }
                let mut done = None;
                if let Some((opcode, buf)) = &mut self.partial[slot(dir)] {
                    if whole && buf.len() + payload.len() <= MAX_REASSEMBLED {
                        buf.extend_from_slice(payload);
                        if meta.fin {
                            done = Some((*opcode, std::mem::take(buf)));
                        }
                    } else {
                        self.partial[slot(dir)] = None;
                    }
                }
                if meta.fin {
                    self.partial[slot(dir)] = None;
                }
                if let Some((opcode, message)) = done {
                    self.decode_message(record, dir, opcode == 2, &message, at);
                    self.keep_fragmented_auth_hidden(record, dir);
                }
            }
            _ => self.show_payload(record, true, payload),
        }
    }

    /// Fills `record` with one whole message, as a client sees it (tap, frame logs of a run).
    pub fn message(
        &mut self,
        record: &mut Record,
        dir: Dir,
        binary: bool,
        payload: &[u8],
        at: Instant,
    ) {
        let meta = FrameMeta::message(binary, payload.len(), dir == Dir::C2s);
        self.frame(record, dir, meta, payload, at);
    }

    /// One record per Engine.IO packet of a long-polling body, each a copy of `base`.
    pub fn polling_body(
        &mut self,
        base: &Record,
        dir: Dir,
        body: &[u8],
        at: Instant,
    ) -> Vec<Record> {
        let version = self.engine.unwrap_or(Version::V4);
        let error = |detail: String| {
            let mut r = base.clone();
            r.kind = RecordKind::Error;
            r.dir = Some(dir);
            r.detail = Some(detail);
            vec![r]
        };
        let Ok(text) = std::str::from_utf8(body) else {
            return error("long-polling body is not UTF-8".into());
        };
        if text.is_empty() {
            return Vec::new();
        }
        let packets = match engineio::split_payload(version, text) {
            Ok(packets) => packets,
            Err(e) => return error(format!("long-polling body: {e}")),
        };
        packets
            .into_iter()
            .map(|packet| {
                let mut r = base.clone();
                self.packet(&mut r, dir, packet, at);
                r
            })
            .collect()
    }

    /// Fills `record` with one Engine.IO packet of a long-polling body, as its text (`b...` for
    /// binary), without the payload framing.
    pub fn packet(&mut self, record: &mut Record, dir: Dir, packet: &str, at: Instant) {
        let version = self.engine.unwrap_or(Version::V4);
        record.kind = RecordKind::Packet;
        record.dir = Some(dir);
        record.len = Some(packet.len() as u64);
        self.show_payload(record, false, packet.as_bytes());
        self.decode_engineio_text(record, dir, version, packet, at);
        self.redact_connect(record, dir, packet.as_bytes());
    }

    /// Header values as a JSON object, secrets redacted unless shown (see
    /// [`SecretRules::redact_header`]); tokens hidden in a `Sec-WebSocket-Protocol` list are
    /// remembered, so the response's echo of one is hidden too.
    pub fn headers(
        &mut self,
        headers: &[(String, Vec<u8>)],
    ) -> serde_json::Map<String, serde_json::Value> {
        let mut map = serde_json::Map::new();
        for (name, value) in headers {
            let value = String::from_utf8_lossy(value);
            let value = self
                .opts
                .secrets
                .redact_header(name, &value, Some(&mut self.known))
                .into_owned();
            // Repeated headers (Set-Cookie) are joined as HTTP allows for most.
            match map.get_mut(name.as_str()) {
                Some(serde_json::Value::String(s)) => {
                    s.push_str(", ");
                    s.push_str(&value);
                }
                _ => {
                    map.insert(name.clone(), value.into());
                }
            }
        }
        map
    }

    fn show_payload(&self, record: &mut Record, binary: bool, payload: &[u8]) {
        let max = self.opts.max_payload;
        let text = (!binary)
            .then(|| std::str::from_utf8(payload).ok())
            .flatten();
        match text {
            Some(text) => {
                let mut cut = text.len().min(max);
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                record.text = Some(text[..cut].to_string());
                record.truncated = cut < text.len();
            }
            None => {
                if !binary {
                    record.detail = Some("text payload is not valid UTF-8".into());
                }
                let shown = &payload[..payload.len().min(max)];
                let mut hex = String::with_capacity(shown.len() * 2);
                for b in shown {
                    use std::fmt::Write;
                    let _ = write!(hex, "{b:02x}");
                }
                record.hex = Some(hex);
                record.truncated = shown.len() < payload.len();
            }
        }
    }

    fn decode_message(
        &mut self,
        record: &mut Record,
        dir: Dir,
        binary: bool,
        payload: &[u8],
        at: Instant,
    ) {
        let Some(version) = self.engine else {
            return;
        };
        if binary {
            // v3 binary frames carry a packet type byte first; v4 ones are messages.
            if version == Version::V3 && payload.first() != Some(&4) {
                record.eio = payload
                    .first()
                    .and_then(|&b| b.checked_add(b'0'))
                    .and_then(PacketType::from_byte)
                    .map(eio_name);
                return;
            }
            self.binary_message(record, dir);
            return;
        }
        match std::str::from_utf8(payload) {
            Ok(text) => self.decode_engineio_text(record, dir, version, text, at),
            Err(_) => record.detail = Some("text payload is not valid UTF-8".into()),
        }
    }

    /// An Engine.IO binary message: an attachment when a binary event or ack still awaits one.
    fn binary_message(&mut self, record: &mut Record, dir: Dir) {
        record.eio = Some("binary");
        let due = &mut self.attachments_due[slot(dir)];
        if *due > 0 {
            *due -= 1;
            record.sio = Some(SocketIoFields {
                kind: "ATTACHMENT",
                nsp: String::new(),
                event: None,
                id: None,
                args: None,
                attachments: None,
            });
        }
    }

    fn decode_engineio_text(
        &mut self,
        record: &mut Record,
        dir: Dir,
        version: Version,
        text: &str,
        at: Instant,
    ) {
        match engineio::decode_text(version, text) {
            Ok(engineio::Packet::Binary(data)) => {
                self.binary_message(record, dir);
                record.len = Some(data.len() as u64);
            }
            Ok(engineio::Packet::Text(kind, data)) => {
                record.eio = Some(eio_name(kind));
                if kind == PacketType::Message {
                    self.decode_socketio(record, dir, data, at);
                }
            }
            Err(e) => record.detail = Some(e.to_string()),
        }
    }

    fn decode_socketio(&mut self, record: &mut Record, dir: Dir, data: &str, at: Instant) {
        let packet = match socketio::decode(data) {
            Ok(packet) => packet,
            Err(e) => {
                record.detail = Some(e.to_string());
                return;
            }
        };
        let mut fields = SocketIoFields {
            kind: sio_name(packet.kind),
            nsp: packet.namespace.to_string(),
            event: None,
            id: packet.id,
            args: None,
            attachments: (packet.attachments > 0).then_some(packet.attachments),
        };
        if packet.attachments > 0 {
            self.attachments_due[slot(dir)] = packet.attachments;
        }
        let secret = packet.kind == Kind::Connect
            && dir == Dir::C2s
            && !packet.data.is_empty()
            && !self.opts.secrets.show();
        if secret {
            // What the text shows of it is decided by `redact_connect`.
            fields.args = Some(self.connect_auth(packet.data, record.truncated));
        } else if !packet.data.is_empty() && packet.data.len() <= MAX_PARSED_JSON {
            match serde_json::from_str::<serde_json::Value>(packet.data) {
                Ok(serde_json::Value::Array(mut items))
                    if matches!(packet.kind, Kind::Event | Kind::BinaryEvent) =>
                {
                    if let Some(serde_json::Value::String(_)) = items.first() {
                        if let serde_json::Value::String(name) = items.remove(0) {
                            fields.event = Some(name);
                        }
                    }
                    fields.args = Some(serde_json::Value::Array(items));
                }
                Ok(mut value) => {
                    if packet.kind == Kind::Connect {
                        self.hide_pid(record, packet.data, &mut value);
                    }
                    fields.args = Some(value);
                }
                Err(e) => record.detail = Some(format!("invalid JSON in the packet: {e}")),
            }
        }
        self.match_ack(record, dir, &fields, at);
        record.sio = Some(fields);
    }

    /// Remembers an event that asks for an ack, and times an ack against its event.
    fn match_ack(&mut self, record: &mut Record, dir: Dir, fields: &SocketIoFields, at: Instant) {
        let Some(id) = fields.id else {
            return;
        };
        let mut book = self.acks.lock().unwrap_or_else(|e| e.into_inner());
        match fields.kind {
            "EVENT" | "BINARY_EVENT" => book.asked(dir, &fields.nsp, id, at),
            "ACK" | "BINARY_ACK" => {
                if let Some(sent) = book.answered(dir, &fields.nsp, id) {
                    record.ack_rtt_ms =
                        Some(at.saturating_duration_since(sent).as_secs_f64() * 1e3);
                }
            }
            _ => {}
        }
    }
}

fn eio_name(kind: PacketType) -> &'static str {
    match kind {
        PacketType::Open => "open",
        PacketType::Close => "close",
        PacketType::Ping => "ping",
        PacketType::Pong => "pong",
        PacketType::Message => "message",
        PacketType::Upgrade => "upgrade",
        PacketType::Noop => "noop",
    }
}

fn sio_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Connect => "CONNECT",
        Kind::Disconnect => "DISCONNECT",
        Kind::Event => "EVENT",
        Kind::Ack => "ACK",
        Kind::ConnectError => "CONNECT_ERROR",
        Kind::BinaryEvent => "BINARY_EVENT",
        Kind::BinaryAck => "BINARY_ACK",
    }
}
