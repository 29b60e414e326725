//! Socket.IO packets (protocol v5, and v4 as spoken by Socket.IO 2 servers), carried in Engine.IO
//! message packets: `TYPE[ATTACHMENTS-][/NAMESPACE,][ACK_ID][JSON]`, e.g. `2["chat","hi"]`,
//! `2/admin,17["echo",1]`, `3/admin,17[1]`, `51-["up",{"_placeholder":true,"num":0}]`.
//!
//! Decoding reads only the head and leaves the JSON as text: a load generator looks at every packet
//! but needs to parse few of them (the CONNECT reply, CONNECT_ERROR), and finds its stamps by a
//! byte search, not a JSON parse.

use std::fmt::Write;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Connect,
    Disconnect,
    Event,
    Ack,
    ConnectError,
    BinaryEvent,
    BinaryAck,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            b'0' => Kind::Connect,
            b'1' => Kind::Disconnect,
            b'2' => Kind::Event,
            b'3' => Kind::Ack,
            b'4' => Kind::ConnectError,
            b'5' => Kind::BinaryEvent,
            b'6' => Kind::BinaryAck,
            _ => return None,
        })
    }

    fn digit(self) -> char {
        match self {
            Kind::Connect => '0',
            Kind::Disconnect => '1',
            Kind::Event => '2',
            Kind::Ack => '3',
            Kind::ConnectError => '4',
            Kind::BinaryEvent => '5',
            Kind::BinaryAck => '6',
        }
    }
}

/// A decoded packet head; `data` is the JSON that follows, unparsed (possibly empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    pub kind: Kind,
    /// Binary attachments that follow as separate Engine.IO binary messages.
    pub attachments: u32,
    /// `"/"` when the packet names none.
    pub namespace: &'a str,
    pub id: Option<u64>,
    pub data: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty Socket.IO packet")]
    Empty,
    #[error("unknown Socket.IO packet type {0:?}")]
    UnknownType(char),
    #[error("malformed attachment count")]
    Attachments,
    #[error("ack id out of range")]
    Id,
    #[error("invalid {what}: {detail}")]
    Json { what: &'static str, detail: String },
}

/// Decodes the head of a packet (the data of an Engine.IO message).
pub fn decode(text: &str) -> Result<Packet<'_>, DecodeError> {
    let bytes = text.as_bytes();
    let first = *bytes.first().ok_or(DecodeError::Empty)?;
    let kind = Kind::from_byte(first).ok_or(DecodeError::UnknownType(first as char))?;
    let mut at = 1;
    let mut attachments = 0;
    if matches!(kind, Kind::BinaryEvent | Kind::BinaryAck) {
        let dash = text[at..].find('-').ok_or(DecodeError::Attachments)?;
        attachments = text[at..at + dash]
            .parse()
            .map_err(|_| DecodeError::Attachments)?;
        at += dash + 1;
    }
    let mut namespace = "/";
    if bytes.get(at) == Some(&b'/') {
        let end = text[at..].find(',').map_or(text.len(), |i| at + i);
        namespace = &text[at..end];
        at = (end + 1).min(text.len());
    }
    let digits = bytes[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let id = if digits > 0 {
        let id = text[at..at + digits].parse().map_err(|_| DecodeError::Id)?;
        at += digits;
        Some(id)
    } else {
        None
    };
    Ok(Packet {
        kind,
        attachments,
        namespace,
        id,
        data: &text[at..],
    })
}

/// Appends a packet head: type, attachment count, namespace (unless `/`) and ack id.
pub fn write_head(
    out: &mut String,
    kind: Kind,
    attachments: u32,
    namespace: &str,
    id: Option<u64>,
) {
    // Writing into a String cannot fail; this runs once per event, so no temporary strings.
    out.push(kind.digit());
    if matches!(kind, Kind::BinaryEvent | Kind::BinaryAck) {
        let _ = write!(out, "{attachments}-");
    }
    if namespace != "/" {
        out.push_str(namespace);
        out.push(',');
    }
    if let Some(id) = id {
        let _ = write!(out, "{id}");
    }
}

/// Appends the JSON placeholder that stands for binary attachment `num` in the arguments.
pub fn push_placeholder(out: &mut String, num: u32) {
    let _ = write!(out, "{{\"_placeholder\":true,\"num\":{num}}}");
}

/// A CONNECT packet for `namespace` with an optional auth payload (JSON object text).
pub fn connect(namespace: &str, auth: Option<&str>) -> String {
    let mut out = String::new();
    write_head(&mut out, Kind::Connect, 0, namespace, None);
    if let Some(auth) = auth {
        out.push_str(auth);
    }
    out
}

/// The data of the server's CONNECT reply (v5). `pid` is present when the server keeps connection
/// state for recovery.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ConnectReply {
    pub sid: String,
    pub pid: Option<String>,
}

impl ConnectReply {
    /// Parses the reply's data; Socket.IO 2 servers send none.
    pub fn parse(data: &str) -> Result<Option<ConnectReply>, DecodeError> {
        if data.is_empty() {
            return Ok(None);
        }
        serde_json::from_str(data)
            .map(Some)
            .map_err(|e| DecodeError::Json {
                what: "CONNECT reply",
                detail: e.to_string(),
            })
    }
}

/// The message of a CONNECT_ERROR: `{"message":...}` (v5) or a bare string (v4).
pub fn connect_error_message(data: &str) -> String {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Reason {
        Object { message: String },
        Text(String),
    }
    match serde_json::from_str::<Reason>(data) {
        Ok(Reason::Object { message }) | Ok(Reason::Text(message)) => message,
        Err(_) => data.to_string(),
    }
}

/// The last argument of an event when it is a JSON string, as written (still escaped). With
/// connection state recovery, servers append the packet's offset there.
pub fn last_string_arg(data: &str) -> Option<&str> {
    let body = data.trim_end().strip_suffix(']')?.trim_end();
    let inner = body.strip_suffix('"')?;
    let bytes = inner.as_bytes();
    // The opening quote is the last `"` not escaped by an odd run of backslashes.
    let mut at = bytes.len();
    while let Some(quote) = bytes[..at].iter().rposition(|&b| b == b'"') {
        let backslashes = bytes[..quote]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        if backslashes % 2 == 0 {
            let before = inner[..quote].trim_end();
            return (before.ends_with(',') || before.ends_with('[')).then_some(&inner[quote + 1..]);
        }
        at = quote;
    }
    None
}

/// Appends `text` as a JSON string literal.
pub fn push_json_string(out: &mut String, text: &str) {
    // serde_json writes valid escapes for every character; a `String` cannot fail to serialize.
    out.push_str(&serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into()));
}

/// A Socket.IO namespace starts with `/` and has no `,`, `?` or spaces.
pub fn check_namespace(ns: &str) -> Result<(), String> {
    if !ns.starts_with('/') || ns.contains([',', '?', ' ']) {
        return Err(format!(
            "namespace `{ns}` must start with `/` and contain no `,`, `?` or spaces"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from the Socket.IO protocol document (v5).

    fn packet(
        kind: Kind,
        attachments: u32,
        namespace: &str,
        id: Option<u64>,
        data: &str,
    ) -> Packet<'static> {
        Packet {
            kind,
            attachments,
            namespace: Box::leak(namespace.to_string().into_boxed_str()),
            id,
            data: Box::leak(data.to_string().into_boxed_str()),
        }
    }

    #[test]
    fn decodes_the_documented_examples() {
        assert_eq!(
            decode("0").unwrap(),
            packet(Kind::Connect, 0, "/", None, "")
        );
        assert_eq!(
            decode("0/admin,{\"token\":\"123\"}").unwrap(),
            packet(Kind::Connect, 0, "/admin", None, "{\"token\":\"123\"}")
        );
        assert_eq!(
            decode("0{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}").unwrap(),
            packet(
                Kind::Connect,
                0,
                "/",
                None,
                "{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}"
            )
        );
        assert_eq!(
            decode("4{\"message\":\"Not authorized\"}").unwrap().kind,
            Kind::ConnectError
        );
        assert_eq!(
            decode("1/admin,").unwrap(),
            packet(Kind::Disconnect, 0, "/admin", None, "")
        );
        assert_eq!(
            decode("2[\"foo\"]").unwrap(),
            packet(Kind::Event, 0, "/", None, "[\"foo\"]")
        );
        assert_eq!(
            decode("2/admin,456[\"project:delete\",123]").unwrap(),
            packet(
                Kind::Event,
                0,
                "/admin",
                Some(456),
                "[\"project:delete\",123]"
            )
        );
        assert_eq!(
            decode("3/admin,456[]").unwrap(),
            packet(Kind::Ack, 0, "/admin", Some(456), "[]")
        );
        assert_eq!(
            decode("51-[\"baz\",{\"_placeholder\":true,\"num\":0}]").unwrap(),
            packet(
                Kind::BinaryEvent,
                1,
                "/",
                None,
                "[\"baz\",{\"_placeholder\":true,\"num\":0}]"
            )
        );
        assert_eq!(
            decode("61-/admin,456[{\"_placeholder\":true,\"num\":0}]").unwrap(),
            packet(
                Kind::BinaryAck,
                1,
                "/admin",
                Some(456),
                "[{\"_placeholder\":true,\"num\":0}]"
            )
        );
        // A Socket.IO 2 namespace CONNECT reply carries no comma.
        assert_eq!(
            decode("0/admin").unwrap(),
            packet(Kind::Connect, 0, "/admin", None, "")
        );
    }

    #[test]
    fn bad_packets_are_errors() {
        assert_eq!(decode("").unwrap_err(), DecodeError::Empty);
        assert_eq!(decode("9[]").unwrap_err(), DecodeError::UnknownType('9'));
        assert_eq!(decode("5[]").unwrap_err(), DecodeError::Attachments);
        assert_eq!(decode("5x-[]").unwrap_err(), DecodeError::Attachments);
        assert_eq!(
            decode("299999999999999999999999[]").unwrap_err(),
            DecodeError::Id
        );
    }

    #[test]
    fn heads_encode_as_they_decode() {
        let mut out = String::new();
        write_head(&mut out, Kind::Event, 0, "/", None);
        assert_eq!(out, "2");
        out.clear();
        write_head(&mut out, Kind::Event, 0, "/admin", Some(12));
        assert_eq!(out, "2/admin,12");
        out.clear();
        write_head(&mut out, Kind::BinaryEvent, 1, "/", Some(3));
        out.push_str("[\"up\",");
        push_placeholder(&mut out, 0);
        out.push(']');
        let decoded = decode(&out).unwrap();
        assert_eq!(
            (decoded.kind, decoded.attachments, decoded.id),
            (Kind::BinaryEvent, 1, Some(3))
        );
        assert_eq!(decoded.data, "[\"up\",{\"_placeholder\":true,\"num\":0}]");
        assert_eq!(connect("/", None), "0");
        assert_eq!(
            connect("/admin", Some("{\"token\":\"x\"}")),
            "0/admin,{\"token\":\"x\"}"
        );
    }

    #[test]
    fn connect_replies_and_errors() {
        let reply = ConnectReply::parse("{\"sid\":\"a\",\"pid\":\"b\"}")
            .unwrap()
            .unwrap();
        assert_eq!((reply.sid.as_str(), reply.pid.as_deref()), ("a", Some("b")));
        assert_eq!(ConnectReply::parse("").unwrap(), None);
        assert!(ConnectReply::parse("[").is_err());
        assert_eq!(
            connect_error_message("{\"message\":\"Not authorized\"}"),
            "Not authorized"
        );
        assert_eq!(
            connect_error_message("\"Invalid namespace\""),
            "Invalid namespace"
        );
        assert_eq!(connect_error_message("oops"), "oops");
    }

    #[test]
    fn the_recovery_offset_is_the_last_string_argument() {
        assert_eq!(
            last_string_arg("[\"tick\",{\"seq\":1},\"AAB-1\"]"),
            Some("AAB-1")
        );
        assert_eq!(last_string_arg("[\"tick\", \"x\" ]"), Some("x"));
        assert_eq!(last_string_arg("[\"tick\",{\"s\":\"a\"}]"), None);
        assert_eq!(last_string_arg("[\"tick\",1]"), None);
        assert_eq!(last_string_arg("[\"a\",\"q\\\"uote\"]"), Some("q\\\"uote"));
        assert_eq!(last_string_arg("[\"a\",\"back\\\\\"]"), Some("back\\\\"));
        // As the official client does, a lone event name counts too.
        assert_eq!(last_string_arg("[\"tick\"]"), Some("tick"));
        assert_eq!(last_string_arg(""), None);
    }
}
