//! The one shape of a decoded wire event, shared by `volley inspect`, `volley tap` and the frame
//! logs of `volley run --log-frames`: one JSON object per line in `--jsonl` files, one coloured
//! line on a terminal. Fields that do not apply to a record are left out of its JSON.

use std::time::SystemTime;

use serde::Serialize;

/// Which way a record's bytes went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    /// Client to server.
    C2s,
    /// Server to client.
    S2c,
}

impl Dir {
    pub fn other(self) -> Dir {
        match self {
            Dir::C2s => Dir::S2c,
            Dir::S2c => Dir::C2s,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dir::C2s => "c2s",
            Dir::S2c => "s2c",
        }
    }
}

/// What a record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// A connection was accepted (inspect) or opened (tap, run).
    Connect,
    /// An HTTP request head (the WebSocket upgrade, a long-polling GET or POST).
    HttpRequest,
    /// An HTTP response head.
    HttpResponse,
    /// The body of an ordinary HTTP request or response (not long-polling, which is packets), when
    /// it is text: its length, and its text up to `--max-body`, secrets hidden.
    HttpBody,
    /// One WebSocket frame (inspect: exactly as on the wire) or message (tap, run).
    #[default]
    Frame,
    /// One Engine.IO packet of a long-polling body.
    Packet,
    /// A fault the inspector injected.
    Fault,
    /// A connection ended.
    Close,
    /// Something that could not be parsed or relayed; the detail says what.
    Error,
}

/// The Socket.IO fields of a frame or packet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SocketIoFields {
    /// CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK, or ATTACHMENT
    /// (a binary frame that belongs to the previous BINARY_EVENT or BINARY_ACK).
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub nsp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// Event arguments after the name, ACK arguments, or the data of CONNECT, CONNECT_ERROR.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachments: Option<u32>,
}

/// One decoded event on the wire.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Record {
    /// Wall-clock time, RFC 3339 with microseconds.
    pub time: String,
    /// Seconds since the inspector, tap or run started.
    pub t: f64,
    /// Connection number, from 1 in order of arrival (inspect), the client id (run), 1 (tap).
    pub conn: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<Dir>,
    pub kind: RecordKind,

    // WebSocket frame fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opcode: Option<&'static str>,
    /// The numeric opcode when it is a reserved one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opcode_value: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fin: Option<bool>,
    /// RSV1..3 as a 3-bit number (RSV1 = 4): non-zero only with extensions (permessage-deflate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rsv: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masked: Option<bool>,
    /// Payload length in bytes (frames, packets, HTTP bodies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub len: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close_reason: Option<String>,

    // Payload.
    /// Text payload, cut at `--max-payload` bytes (an HTTP body's at `--max-body`), at a
    /// character boundary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Hex preview of a binary payload, cut at `--max-payload` bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hex: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,

    // Engine.IO and Socket.IO.
    /// Engine.IO packet type: open, close, ping, pong, message, upgrade, noop, binary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eio: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sio: Option<SocketIoFields>,
    /// On an ACK: the time since the event it answers, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack_rtt_ms: Option<f64>,

    // HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<serde_json::Map<String, serde_json::Value>>,
    /// The Engine.IO session id, from the query of a Socket.IO request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,

    // Connections, faults, errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// drop, duplicate, delay or close.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// On a close record: frames and bytes each way over the connection's life.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames_c2s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames_s2c: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_c2s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_s2c: Option<u64>,
}

/// The clock of a record stream: wall-clock times and seconds since the start.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: std::time::Instant,
    wall_start: SystemTime,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            start: std::time::Instant::now(),
            wall_start: SystemTime::now(),
        }
    }

    /// A clock whose zero is `start` (`wall_start` on the wall clock): a run's time zero, so that
    /// records and the run's other files count seconds from the same instant.
    pub fn starting_at(start: std::time::Instant, wall_start: SystemTime) -> Clock {
        Clock { start, wall_start }
    }

    /// A record of `kind` on connection `conn`, stamped with the time `at`.
    pub fn record(&self, at: std::time::Instant, conn: u64, kind: RecordKind) -> Record {
        let since = at.saturating_duration_since(self.start);
        Record {
            time: humantime::format_rfc3339_micros(self.wall_start + since).to_string(),
            t: since.as_secs_f64(),
            conn,
            kind,
            ..Record::default()
        }
    }
}

impl Record {
    /// The record as one line of JSON, with its newline.
    pub fn to_json_line(&self) -> String {
        // A struct of strings, numbers and JSON values always serializes.
        let mut line = serde_json::to_string(self).unwrap_or_default();
        line.push('\n');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_that_do_not_apply_are_left_out_of_the_json() {
        let clock = Clock::new();
        let mut r = clock.record(std::time::Instant::now(), 7, RecordKind::Frame);
        r.dir = Some(Dir::C2s);
        r.opcode = Some("text");
        r.fin = Some(true);
        r.len = Some(2);
        r.text = Some("hi".into());
        let v: serde_json::Value = serde_json::from_str(&r.to_json_line()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "time", "t", "conn", "dir", "kind", "opcode", "fin", "len", "text"
            ]
        );
        assert_eq!(v["dir"], "c2s");
        assert_eq!(v["kind"], "frame");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
    }
}
