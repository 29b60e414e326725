//! One line per record for a terminal: time, connection, direction, what it is, and the decoded
//! payload, coloured by direction unless colour is off (`--no-color`, `NO_COLOR`, not a terminal).

use std::fmt::Write;

use super::record::{Dir, Record, RecordKind};

/// Whether to colour: off for `--no-color`, when `NO_COLOR` is set (to anything non-empty), and
/// when the output is not a terminal.
pub fn use_color(no_color_flag: bool, is_terminal: bool) -> bool {
    let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color_flag && !no_color_env && is_terminal
}

/// Peer-controlled text with control characters escaped, so that no peer can move the cursor,
/// recolour, retitle or forge lines on the user's terminal.
fn safe(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// Bytes of an HTTP body's text a terminal line shows (the JSONL record has up to `--max-body`).
const PRINTED_BODY: usize = 256;

struct Paint(bool);

impl Paint {
    fn wrap(&self, out: &mut String, code: &str, text: &str) {
        if self.0 {
            let _ = write!(out, "\x1b[{code}m{text}\x1b[0m");
        } else {
            out.push_str(text);
        }
    }
}

const DIM: &str = "2";
const C2S: &str = "36"; // cyan
const S2C: &str = "32"; // green
const WARN: &str = "1;33"; // bold yellow
const ERROR: &str = "1;31"; // bold red
const BOLD: &str = "1";

/// Formats `record` as one line (without the newline).
pub fn line(record: &Record, color: bool) -> String {
    let p = Paint(color);
    let mut out = String::with_capacity(160);
    p.wrap(&mut out, DIM, &format!("{:>9.3}", record.t));
    let _ = write!(out, " #{:<3} ", record.conn);
    let (arrow, dir_color) = match record.dir {
        Some(Dir::C2s) => ("→", C2S),
        Some(Dir::S2c) => ("←", S2C),
        None => ("·", DIM),
    };
    p.wrap(&mut out, dir_color, arrow);
    out.push(' ');
    match record.kind {
        RecordKind::Connect => {
            p.wrap(&mut out, BOLD, "connect");
            match (&record.peer, &record.target) {
                // A client's own connection (tap, a run's frame log): the server and the path.
                (Some(server), Some(target)) => {
                    let _ = write!(out, " to {server}{target}");
                }
                // The inspector: which client, to which upstream.
                (peer, _) => {
                    if let Some(peer) = peer {
                        let _ = write!(out, " from {peer}");
                    }
                    if let Some(up) = &record.upstream {
                        let _ = write!(out, " to {up}");
                    }
                }
            }
        }
        RecordKind::HttpRequest => {
            let method = record.method.as_deref().unwrap_or("?");
            p.wrap(&mut out, dir_color, method);
            let _ = write!(out, " {}", safe(record.target.as_deref().unwrap_or("")));
            if let Some(len) = record.len.filter(|&l| l > 0) {
                let _ = write!(out, "  ({len} B body)");
            }
        }
        RecordKind::HttpResponse => {
            let status = record.status.unwrap_or(0);
            let code = if status >= 400 { ERROR } else { dir_color };
            p.wrap(&mut out, code, &status.to_string());
            let _ = write!(out, " {}", safe(record.reason.as_deref().unwrap_or("")));
            if let Some(len) = record.len.filter(|&l| l > 0) {
                let _ = write!(out, "  ({len} B body)");
            }
        }
        RecordKind::HttpBody => {
            p.wrap(&mut out, dir_color, "body");
            let _ = write!(out, " {}B", record.len.unwrap_or(0));
            let text = record.text.as_deref().unwrap_or("");
            let mut cut = text.len().min(PRINTED_BODY);
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            let _ = write!(out, "  {}", safe(&text[..cut]));
            if cut < text.len() || record.truncated {
                out.push_str(" …");
            }
        }
        RecordKind::Frame | RecordKind::Packet => frame(&mut out, &p, record, dir_color),
        RecordKind::Fault => {
            p.wrap(&mut out, WARN, "FAULT");
            let _ = write!(out, " {}", record.fault.unwrap_or("?"));
            if let Some(ms) = record.delay_ms {
                let _ = write!(out, " {ms:.1}ms");
            }
            if record.opcode.is_some() {
                out.push_str("  ");
                frame(&mut out, &p, record, dir_color);
            }
        }
        RecordKind::Close => {
            p.wrap(&mut out, BOLD, "closed");
            let _ = write!(
                out,
                "  c2s {} frames {} B, s2c {} frames {} B",
                record.frames_c2s.unwrap_or(0),
                record.bytes_c2s.unwrap_or(0),
                record.frames_s2c.unwrap_or(0),
                record.bytes_s2c.unwrap_or(0)
            );
        }
        RecordKind::Error => p.wrap(&mut out, ERROR, "error"),
    }
    if let Some(detail) = &record.detail {
        out.push_str("  ");
        let code = if record.kind == RecordKind::Error {
            ERROR
        } else {
            WARN
        };
        p.wrap(&mut out, code, &safe(detail));
    }
    out
}

fn frame(out: &mut String, p: &Paint, r: &Record, dir_color: &str) {
    if let Some(opcode) = r.opcode {
        let control = matches!(opcode, "close" | "ping" | "pong");
        p.wrap(out, if control { DIM } else { dir_color }, opcode);
        if let Some(v) = r.opcode_value {
            let _ = write!(out, "({v})");
        }
        if r.fin == Some(false) {
            out.push_str(" FIN=0");
        }
        if let Some(rsv) = r.rsv {
            let _ = write!(out, " RSV={rsv:03b}");
        }
        if r.masked == Some(true) {
            out.push_str(" masked");
        }
    } else {
        p.wrap(out, dir_color, "packet");
    }
    let _ = write!(out, " {}B", r.len.unwrap_or(0));
    if let Some(code) = r.close_code {
        let _ = write!(
            out,
            "  {code} {:?}",
            r.close_reason.as_deref().unwrap_or("")
        );
    }
    if let Some(sio) = &r.sio {
        out.push_str("  ");
        p.wrap(out, BOLD, sio.kind);
        if sio.kind != "ATTACHMENT" {
            let _ = write!(out, " {}", safe(&sio.nsp));
        }
        if let Some(event) = &sio.event {
            out.push(' ');
            p.wrap(out, BOLD, &format!("{event:?}"));
        }
        if let Some(id) = sio.id {
            let _ = write!(out, " id={id}");
        }
        if let Some(n) = sio.attachments {
            let _ = write!(out, " +{n} attachments");
        }
        if let Some(args) = &sio.args {
            let _ = write!(out, " {}", safe(&args.to_string()));
        }
    } else if let Some(eio) = r.eio {
        let _ = write!(out, "  eio {eio}");
        if let Some(text) = r
            .text
            .as_deref()
            .and_then(|t| t.get(1..))
            .filter(|t| !t.is_empty())
        {
            let _ = write!(out, " {}", safe(text));
        }
    } else if let Some(text) = &r.text {
        let _ = write!(out, "  {}", safe(text));
    } else if let Some(hex) = &r.hex {
        out.push_str("  ");
        p.wrap(out, DIM, &format!("0x{hex}"));
    }
    if r.truncated {
        out.push_str(" …");
    }
    if let Some(ms) = r.ack_rtt_ms {
        out.push_str("  ");
        p.wrap(out, WARN, &format!("(ack after {ms:.2}ms)"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::record::SocketIoFields;

    #[test]
    fn a_socketio_event_reads_as_one_line_without_escapes_when_colour_is_off() {
        let r = Record {
            t: 1.5,
            conn: 2,
            dir: Some(Dir::C2s),
            kind: RecordKind::Frame,
            opcode: Some("text"),
            fin: Some(true),
            masked: Some(true),
            len: Some(24),
            eio: Some("message"),
            sio: Some(SocketIoFields {
                kind: "EVENT",
                nsp: "/".into(),
                event: Some("chat".into()),
                id: Some(5),
                args: Some(serde_json::json!(["hi"])),
                attachments: None,
            }),
            ..Record::default()
        };
        let plain = line(&r, false);
        assert_eq!(
            plain,
            "    1.500 #2   → text masked 24B  EVENT / \"chat\" id=5 [\"hi\"]"
        );
        let coloured = line(&r, true);
        assert!(coloured.contains("\x1b[36m→\x1b[0m"));
    }

    #[test]
    fn control_characters_from_peers_are_escaped() {
        let r = Record {
            kind: RecordKind::Frame,
            dir: Some(Dir::S2c),
            opcode: Some("text"),
            text: Some("hi\x1b]52;c;ZXZpbA==\x07\r\nfake line\u{9b}".into()),
            ..Record::default()
        };
        let printed = line(&r, false);
        assert!(!printed.chars().any(char::is_control), "{printed:?}");
        assert!(
            printed.contains("hi\\u{1b}]52;c;ZXZpbA==\\u{7}\\r\\nfake line\\u{9b}"),
            "{printed}"
        );
    }

    #[test]
    fn a_clients_own_connection_reads_as_connect_to_the_server_and_path() {
        let mut r = Record {
            conn: 1,
            kind: RecordKind::Connect,
            peer: Some("127.0.0.1:9000".into()),
            target: Some("/echo".into()),
            ..Record::default()
        };
        assert_eq!(
            line(&r, false),
            "    0.000 #1   · connect to 127.0.0.1:9000/echo"
        );
        // The inspector's: a client, and the upstream it is relayed to.
        r.target = None;
        r.upstream = Some("ws://up:1".into());
        assert_eq!(
            line(&r, false),
            "    0.000 #1   · connect from 127.0.0.1:9000 to ws://up:1"
        );
    }

    #[test]
    fn an_http_body_reads_as_its_length_and_the_start_of_its_text() {
        let mut r = Record {
            t: 0.25,
            conn: 3,
            dir: Some(Dir::S2c),
            kind: RecordKind::HttpBody,
            len: Some(40),
            text: Some(r#"{"token":"[redacted]","user":"user1"}"#.into()),
            ..Record::default()
        };
        assert_eq!(
            line(&r, false),
            r#"    0.250 #3   ← body 40B  {"token":"[redacted]","user":"user1"}"#
        );
        r.text = Some("é".repeat(200));
        let printed = line(&r, false);
        assert!(
            printed.ends_with(&format!("{} …", "é".repeat(128))),
            "{printed}"
        );
    }

    #[test]
    fn colour_is_off_without_a_terminal_or_with_the_flag() {
        assert!(!use_color(true, true));
        assert!(!use_color(false, false));
    }
}
