//! The wire decoder (`wire::decode`): frames and long-polling bodies of one connection, as the
//! inspector, `tap` and a run's frame log see them, into records.
//!
//! The first byte chooses the connection (bits 0-1: raw WebSocket, Engine.IO v3, v4), how much
//! payload a record shows (bits 2-4), whether secrets are shown (bit 5), and whether the rest is
//! WebSocket frames (masked ones from the client, as on the wire) or one long-polling body
//! (bit 6). Every record must stay
//! within its payload limit and be one line of JSON. With secrets hidden, no record may show a
//! value of a client's Socket.IO CONNECT auth: not whole, not in pieces (fragments), not as hex;
//! a whole CONNECT within the limit whose auth is an object may show exactly its shape (its keys,
//! every leaf `[redacted]`).

use std::time::Instant;

use super::unstructured::Unstructured;
use crate::protocol::engineio::{self, Packet as EioPacket, PacketType, Version};
use crate::protocol::pointer::JsonPointer;
use crate::protocol::{socketio, wsframe};
use crate::secrets::fields::redact_leaves;
use crate::secrets::{SecretRules, SecretValues};
use crate::wire::decode::{ConnDecoder, DecodeOptions, FrameMeta, REDACTED, query_param};
use crate::wire::record::{Dir, Record};

/// Frames decoded per input at most.
const MAX_FRAMES: usize = 64;

pub fn check(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mode = u.byte();
    let polling = mode & 0x40 != 0;
    // Long-polling is Engine.IO's: a polling body always comes with a version.
    let engine = match (mode & 0b11, polling) {
        (1, _) => Some(Version::V3),
        (2 | 3, _) | (0, true) => Some(Version::V4),
        _ => None,
    };
    let opts = DecodeOptions {
        max_payload: [512, 0, 1, 3, 7, 16, 64, 4096][usize::from(mode >> 2 & 0b111)],
        secrets: SecretRules::new(mode & 0x20 != 0, &[]),
        ..DecodeOptions::default()
    };
    let mut decoder = ConnDecoder::new(opts.clone(), engine);
    let rest = u.rest();
    if polling {
        check_polling(&mut decoder, &opts, rest);
    } else {
        check_frames(&mut decoder, &opts, rest);
    }
}

/// One client message in progress: its bytes so far and the records of its frames.
#[derive(Default)]
struct Message {
    bytes: Vec<u8>,
    /// Each frame's offset in the message, and its record.
    frames: Vec<(usize, Record)>,
}

fn check_frames(decoder: &mut ConnDecoder, opts: &DecodeOptions, stream: &[u8]) {
    let now = Instant::now();
    let mut at = 0;
    let mut message = Message::default();
    for _ in 0..MAX_FRAMES {
        let Some(header) = wsframe::parse_header(&stream[at..]) else {
            return;
        };
        let start = at + header.header_len;
        // A frame cut short decodes as far as it goes, as a frame too large to hold does.
        let end = usize::try_from(header.frame_len())
            .map_or(stream.len(), |len| stream.len().min(at.saturating_add(len)));
        let mut payload = stream[start..end].to_vec();
        if let Some(mask) = header.mask {
            wsframe::unmask(mask, 0, &mut payload);
        }
        let dir = if header.mask.is_some() {
            Dir::C2s
        } else {
            Dir::S2c
        };
        let mut record = Record::default();
        decoder.frame(&mut record, dir, FrameMeta::of(&header), &payload, now);
        // The last pass every record takes before it leaves (inspector, tap, frame logs).
        decoder.redact(&mut record);
        check_record(&record, opts);
        let single = header.fin && header.opcode == 1 && header.rsv & 0b100 == 0;
        if dir == Dir::S2c && single && payload.len() as u64 == header.payload_len {
            if let Ok(text) = std::str::from_utf8(&payload) {
                check_pid_hidden(text, &record, decoder.engine().is_some(), opts);
            }
        }
        // Only Engine.IO connections carry Socket.IO CONNECTs to hide.
        if dir == Dir::C2s && decoder.engine().is_some() {
            follow_client_message(&mut message, &header, &payload, record, opts);
        }
        at = end;
    }
}

/// Keeps a client's text message frame by frame and, when it ends, checks that its records
/// hide the auth of a CONNECT.
fn follow_client_message(
    message: &mut Message,
    header: &wsframe::FrameHeader,
    payload: &[u8],
    record: Record,
    opts: &DecodeOptions,
) {
    let whole = payload.len() as u64 == header.payload_len;
    match header.opcode {
        1 if header.rsv & 0b100 == 0 && whole => *message = Message::default(),
        0 if !message.frames.is_empty() && whole => {}
        // Control frames come between fragments; anything else ends what is followed.
        8..=15 => return,
        _ => {
            *message = Message::default();
            return;
        }
    }
    message.frames.push((message.bytes.len(), record));
    message.bytes.extend_from_slice(payload);
    if header.fin {
        let message = std::mem::take(message);
        if let Ok(text) = std::str::from_utf8(&message.bytes) {
            if let Some(head_len) = connect_auth_at(text) {
                check_hidden(text, head_len, &message.frames, opts);
            }
        }
    }
}

/// Where the auth starts in a client's Engine.IO message that is a Socket.IO CONNECT with one.
fn connect_auth_at(text: &str) -> Option<usize> {
    let Ok(EioPacket::Text(PacketType::Message, data)) = engineio::decode_text(Version::V4, text)
    else {
        return None;
    };
    let packet = socketio::decode(data).ok()?;
    let auth = packet.kind == socketio::Kind::Connect && !packet.data.is_empty();
    auth.then(|| text.len() - packet.data.len())
}

/// Each record of a CONNECT (`message`, its auth from `head_len` on) shows at most the part of
/// the head its frame holds and then `[redacted]`, no byte of the auth and no hex; or, when the
/// CONNECT is one frame within the payload limit and its auth an object, the head and exactly
/// the auth's shape, in the text and in the decoded arguments.
fn check_hidden(message: &str, head_len: usize, frames: &[(usize, Record)], opts: &DecodeOptions) {
    if opts.secrets.show() {
        return;
    }
    let (head, auth) = message.split_at(head_len);
    let shape = serde_json::from_str::<serde_json::Value>(auth)
        .ok()
        .filter(|a| a.is_object())
        .map(|mut auth| {
            redact_leaves(&mut auth, &mut SecretValues::default());
            auth
        });
    for (offset, record) in frames {
        assert_eq!(
            record.hex, None,
            "a CONNECT's frame at {offset} shown as hex: {record:?}"
        );
        let Some(text) = &record.text else {
            continue;
        };
        if let Some(shape) = shape.as_ref().filter(|s| *text == format!("{head}{s}")) {
            assert!(
                frames.len() == 1 && message.len() <= opts.max_payload,
                "the shape of a CONNECT's auth shown although cut or fragmented: {text:?}"
            );
            let args = record.sio.as_ref().and_then(|s| s.args.as_ref());
            assert_eq!(args, Some(shape), "the decoded shape of {message:?}");
            continue;
        }
        let visible = text.strip_suffix(REDACTED).unwrap_or(text);
        let head_part = head.get(*offset..).unwrap_or("");
        assert!(
            head_part.starts_with(visible),
            "the frame at {offset} of a CONNECT whose head is {head:?} shows {text:?}"
        );
        if let Some(sio) = &record.sio {
            assert_eq!(
                sio.args.as_ref().and_then(|a| a.as_str()),
                Some(REDACTED),
                "the decoded auth of a CONNECT"
            );
        }
    }
}

/// A server's CONNECT reply carries the recovery session id `pid`, which takes the session over:
/// no record shows it, not whole and not cut short at the payload limit.
fn check_pid_hidden(message: &str, record: &Record, engine: bool, opts: &DecodeOptions) {
    if opts.secrets.show() || !engine {
        return;
    }
    let Ok(EioPacket::Text(PacketType::Message, data)) =
        engineio::decode_text(Version::V4, message)
    else {
        return;
    };
    let Ok(packet) = socketio::decode(data) else {
        return;
    };
    let reply: Option<serde_json::Value> = serde_json::from_str(packet.data).ok();
    let is_string = reply
        .as_ref()
        .and_then(|r| r.get("pid"))
        .is_some_and(|p| p.is_string());
    // The pid as the text shows it: as written, escapes included.
    let written = JsonPointer::parse("/pid")
        .and_then(|p| p.read_raw(packet.data.as_bytes()))
        .and_then(|raw| raw.strip_prefix('"')?.strip_suffix('"'));
    let (Some(pid), Some(shown)) = (written.filter(|p| is_string && !p.is_empty()), &record.text)
    else {
        return;
    };
    if packet.kind != socketio::Kind::Connect {
        return;
    }
    assert!(!shown.contains(pid), "the pid {pid:?} shown in {shown:?}");
    for (cut, _) in pid.char_indices().skip(1) {
        assert!(
            !shown.ends_with(&format!("\"pid\":\"{}", &pid[..cut])),
            "the start of the pid {pid:?} shown in {shown:?}"
        );
    }
}

fn check_polling(decoder: &mut ConnDecoder, opts: &DecodeOptions, body: &[u8]) {
    let now = Instant::now();
    let text = String::from_utf8_lossy(body);
    for (name, value) in [
        ("EIO", query_param(&text, "EIO")),
        ("sid", query_param(&text, "sid")),
    ] {
        if let Some(value) = value {
            assert!(text.contains(value), "{name}={value:?} is not in {text:?}");
        }
    }
    for dir in [Dir::C2s, Dir::S2c] {
        let mut records = decoder.polling_body(&Record::default(), dir, body, now);
        for record in &mut records {
            decoder.redact(record);
            check_record(record, opts);
        }
        let version = decoder.engine().unwrap_or(Version::V4);
        let Ok(packets) = engineio::split_payload(version, &text) else {
            continue;
        };
        if std::str::from_utf8(body).is_err() {
            continue;
        }
        assert_eq!(records.len(), packets.len(), "one record per packet");
        for (packet, record) in packets.iter().zip(&records) {
            if dir == Dir::S2c {
                check_pid_hidden(packet, record, true, opts);
            } else if let Some(head_len) = connect_auth_at(packet) {
                check_hidden(packet, head_len, &[(0, record.clone())], opts);
            }
        }
    }
}

/// A record shows at most `max_payload` bytes of payload and is one line of JSON.
fn check_record(record: &Record, opts: &DecodeOptions) {
    // Redaction may lengthen what is shown; everything else stays within the limit.
    if let Some(text) = record.text.as_ref().filter(|t| !t.contains(REDACTED)) {
        assert!(
            text.len() <= opts.max_payload,
            "{} bytes of text shown with a limit of {}",
            text.len(),
            opts.max_payload
        );
    }
    if let Some(hex) = &record.hex {
        assert!(
            hex.len() <= 2 * opts.max_payload,
            "{} hex digits shown with a limit of {} bytes",
            hex.len(),
            opts.max_payload
        );
    }
    let line = record.to_json_line();
    assert!(
        line.ends_with('\n') && !line[..line.len() - 1].contains('\n'),
        "not one line: {line:?}"
    );
    let value: serde_json::Value = serde_json::from_str(&line).expect("a record is JSON");
    assert!(value.is_object(), "a record is a JSON object");
}
