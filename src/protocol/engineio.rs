//! Engine.IO, the transport layer under Socket.IO: packet types, the open packet, and the long-polling
//! payload formats of protocol v4 (packets joined by 0x1e, binary as `b` + base64) and v3
//! (`LENGTH:PACKET` records, binary as `b4` + base64, lengths counted in UTF-16 units as JavaScript
//! counts them).
//!
//! Over WebSocket every frame is one packet: a text frame starts with the packet type digit; a binary
//! frame is a binary message (v4) or a type byte followed by the data (v3).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;

/// Engine.IO protocol revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Socket.IO 2 servers: the client pings, the server pongs.
    V3,
    /// Socket.IO 3 and 4 servers: the server pings, the client pongs.
    V4,
}

impl Version {
    /// The `EIO=` query value.
    pub fn query_value(self) -> &'static str {
        match self {
            Version::V3 => "3",
            Version::V4 => "4",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    Open,
    Close,
    Ping,
    Pong,
    Message,
    Upgrade,
    Noop,
}

impl PacketType {
    pub fn from_byte(b: u8) -> Option<PacketType> {
        Some(match b {
            b'0' => PacketType::Open,
            b'1' => PacketType::Close,
            b'2' => PacketType::Ping,
            b'3' => PacketType::Pong,
            b'4' => PacketType::Message,
            b'5' => PacketType::Upgrade,
            b'6' => PacketType::Noop,
            _ => return None,
        })
    }
}

/// One decoded packet, borrowing its data from the frame or payload it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    /// A packet with text data (for `Message`, the Socket.IO packet).
    Text(PacketType, &'a str),
    /// A binary message (a Socket.IO attachment).
    Binary(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty Engine.IO packet")]
    Empty,
    #[error("unknown Engine.IO packet type {0:?}")]
    UnknownType(char),
    #[error("invalid base64 in a binary packet")]
    Base64,
    #[error("malformed v3 payload: {0}")]
    Payload(&'static str),
    #[error("invalid open packet: {0}")]
    Open(String),
}

/// Decodes the text of one packet (a WebSocket text frame, or one record of a polling payload).
pub fn decode_text(version: Version, text: &str) -> Result<Packet<'_>, DecodeError> {
    let first = *text.as_bytes().first().ok_or(DecodeError::Empty)?;
    if first == b'b' {
        return decode_binary(version, text.as_bytes()).map(Packet::Binary);
    }
    let kind = PacketType::from_byte(first).ok_or(DecodeError::UnknownType(first as char))?;
    Ok(Packet::Text(kind, &text[1..]))
}

/// Decodes a binary packet of a polling payload: `b` + base64 (v4), `b4` + base64 (v3).
pub fn decode_binary(version: Version, packet: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let skip = match version {
        Version::V3 => 2,
        Version::V4 => 1,
    };
    let data = packet.get(skip..).ok_or(DecodeError::Base64)?;
    BASE64.decode(data).map_err(|_| DecodeError::Base64)
}

/// Percent-encodes a query value (everything but RFC 3986's unreserved characters).
pub fn encode_query_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `0` packet that opens a session.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Open {
    pub sid: String,
    #[serde(default)]
    pub upgrades: Vec<String>,
    pub ping_interval: u64,
    pub ping_timeout: u64,
    /// v4 only: the largest payload the server accepts in one polling request.
    pub max_payload: Option<u64>,
}

impl Open {
    /// Parses the data of an open packet (the JSON after the `0`).
    pub fn parse(data: &str) -> Result<Open, DecodeError> {
        serde_json::from_str(data).map_err(|e| DecodeError::Open(e.to_string()))
    }
}

/// Splits a polling response body into packet texts (each still to be passed to [`decode_text`]).
pub fn split_payload(version: Version, body: &str) -> Result<Vec<&str>, DecodeError> {
    match version {
        Version::V4 => Ok(body.split('\x1e').filter(|p| !p.is_empty()).collect()),
        Version::V3 => split_payload_v3(body),
    }
}

fn split_payload_v3(mut body: &str) -> Result<Vec<&str>, DecodeError> {
    let mut packets = Vec::new();
    while !body.is_empty() {
        let colon = body
            .find(':')
            .ok_or(DecodeError::Payload("no `:` after a length"))?;
        let units: usize = body[..colon]
            .parse()
            .map_err(|_| DecodeError::Payload("length is not a number"))?;
        let rest = &body[colon + 1..];
        // The length counts UTF-16 code units: walk characters until that many are consumed.
        let mut counted = 0;
        let mut end = rest.len();
        for (at, c) in rest.char_indices() {
            if counted == units {
                end = at;
                break;
            }
            counted += c.len_utf16();
        }
        if counted < units {
            return Err(DecodeError::Payload("record shorter than its length"));
        }
        packets.push(&rest[..end]);
        body = &rest[end..];
    }
    Ok(packets)
}

/// Appends one text packet to a polling request body being built in `out`.
pub fn push_payload_text(version: Version, out: &mut String, packet: &str) {
    match version {
        Version::V4 => {
            if !out.is_empty() {
                out.push('\x1e');
            }
            out.push_str(packet);
        }
        Version::V3 => {
            let units: usize = packet.chars().map(char::len_utf16).sum();
            out.push_str(&units.to_string());
            out.push(':');
            out.push_str(packet);
        }
    }
}

/// Appends one binary message to a polling request body being built in `out`.
pub fn push_payload_binary(version: Version, out: &mut String, data: &[u8]) {
    push_payload_text(version, out, &binary_packet(version, data));
}

/// A binary message as the text packet long-polling carries: `b` (v3: `b4`) and base64.
pub fn binary_packet(version: Version, data: &[u8]) -> String {
    let mut packet = String::with_capacity(2 + data.len().div_ceil(3) * 4);
    packet.push('b');
    if version == Version::V3 {
        packet.push('4');
    }
    BASE64.encode_string(data, &mut packet);
    packet
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from the Engine.IO protocol document (v4) and engine.io-parser's v3 payload format.

    #[test]
    fn text_packets_decode_by_their_type_digit() {
        assert_eq!(
            decode_text(Version::V4, "2").unwrap(),
            Packet::Text(PacketType::Ping, "")
        );
        assert_eq!(
            decode_text(Version::V4, "2probe").unwrap(),
            Packet::Text(PacketType::Ping, "probe")
        );
        assert_eq!(
            decode_text(Version::V4, "4hello").unwrap(),
            Packet::Text(PacketType::Message, "hello")
        );
        assert_eq!(
            decode_text(Version::V4, "6").unwrap(),
            Packet::Text(PacketType::Noop, "")
        );
        assert_eq!(
            decode_text(Version::V4, "").unwrap_err(),
            DecodeError::Empty
        );
        assert_eq!(
            decode_text(Version::V4, "9").unwrap_err(),
            DecodeError::UnknownType('9')
        );
    }

    #[test]
    fn open_packet_fields() {
        let open = Open::parse(
            r#"{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000,"maxPayload":1000000}"#,
        )
        .unwrap();
        assert_eq!(open.sid, "lv_VI97HAXpY6yYWAAAC");
        assert_eq!(open.upgrades, ["websocket"]);
        assert_eq!((open.ping_interval, open.ping_timeout), (25000, 5000));
        assert_eq!(open.max_payload, Some(1_000_000));
        // v3 has no maxPayload.
        let v3 =
            Open::parse(r#"{"sid":"a","upgrades":[],"pingInterval":25000,"pingTimeout":60000}"#)
                .unwrap();
        assert_eq!(v3.max_payload, None);
        assert!(Open::parse("{}").is_err());
    }

    #[test]
    fn v4_payloads_use_the_record_separator_and_base64() {
        // "4hello\x1e4€\x1ebAQIDBA==" from the protocol document.
        let body = "4hello\x1e4€\x1ebAQIDBA==";
        let parts = split_payload(Version::V4, body).unwrap();
        assert_eq!(parts, ["4hello", "4€", "bAQIDBA=="]);
        assert_eq!(
            decode_text(Version::V4, parts[2]).unwrap(),
            Packet::Binary(vec![1, 2, 3, 4])
        );

        // v4 base64 may itself start with `4` (bytes 0xE0..0xE3).
        assert_eq!(
            decode_text(Version::V4, "b4AEC").unwrap(),
            Packet::Binary(vec![0xE0, 0x01, 0x02])
        );
        let mut out = String::new();
        push_payload_text(Version::V4, &mut out, "4hello");
        push_payload_text(Version::V4, &mut out, "4€");
        push_payload_binary(Version::V4, &mut out, &[1, 2, 3, 4]);
        assert_eq!(out, body);
    }

    #[test]
    fn v3_payloads_count_utf16_units() {
        // "6:4hello2:4€" — the euro sign is one UTF-16 unit but three UTF-8 bytes.
        let body = "6:4hello2:4€10:b4AQIDBA==";
        let parts = split_payload(Version::V3, body).unwrap();
        assert_eq!(parts, ["4hello", "4€", "b4AQIDBA=="]);
        assert_eq!(
            decode_text(Version::V3, parts[2]).unwrap(),
            Packet::Binary(vec![1, 2, 3, 4])
        );
        // An emoji is two UTF-16 units.
        assert_eq!(split_payload(Version::V3, "3:4😀").unwrap(), ["4😀"]);

        let mut out = String::new();
        push_payload_text(Version::V3, &mut out, "4hello");
        push_payload_text(Version::V3, &mut out, "4€");
        push_payload_binary(Version::V3, &mut out, &[1, 2, 3, 4]);
        assert_eq!(out, body);

        // A lone `b` is an error, not a panic.
        assert_eq!(
            decode_binary(Version::V3, b"b").unwrap_err(),
            DecodeError::Base64
        );
        assert!(split_payload(Version::V3, "9:4hi").is_err());
        assert!(split_payload(Version::V3, "x:4hi").is_err());
        assert!(split_payload(Version::V3, "4hi").is_err());
    }
}
