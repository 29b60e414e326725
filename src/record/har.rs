//! A HAR file (HTTP Archive 1.2, as Chromium's and Firefox's network panels export it) read into
//! a [`Capture`]: ordinary requests become exchanges; an entry with `_webSocketMessages` is a
//! WebSocket; Engine.IO's polling requests and its WebSocket are joined into one session by their
//! `sid`, each polling body cut into its packets.

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::Value;

use super::capture::{Body, Capture, Engine, Exchange, Message, Socket, Url, media_type};
use super::{BadInput, engine_version, is_text_media};
use crate::protocol::engineio;
use crate::wire::record::Dir;

/// Reads the HAR document `text`.
pub fn read(text: &str) -> Result<Capture, BadInput> {
    let doc: Value = serde_json::from_str(text).map_err(|e| BadInput::json(text, e))?;
    let entries = doc
        .get("log")
        .and_then(|log| log.get("entries"))
        .and_then(Value::as_array)
        .ok_or_else(|| BadInput::file("not a HAR file: there is no `log.entries` array"))?;
    let creator = doc
        .pointer("/log/creator/name")
        .and_then(Value::as_str)
        .unwrap_or("an unknown program");
    let mut parsed = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        parsed.extend(Entry::read(entry, i + 1)?);
    }
    let zero = parsed.iter().map(|e| e.start).fold(f64::INFINITY, f64::min);
    let mut capture = Capture {
        source: format!("a HAR file written by {creator}"),
        started: parsed
            .iter()
            .min_by(|a, b| a.start.total_cmp(&b.start))
            .map(|e| e.started.clone()),
        ..Capture::default()
    };
    // Engine.IO sessions by sid, in the order they began.
    let mut sessions: Vec<Socket> = Vec::new();
    let mut by_sid: HashMap<String, usize> = HashMap::new();
    for entry in parsed {
        let at = entry.start - zero;
        let end = at + entry.duration;
        let place = format!("entry {}", entry.number);
        let version = engine_version(&entry.url);
        if let Some(version) = version {
            let websocket = entry.url.param("transport") == Some("websocket");
            // A failed poll (`Session ID unknown` after a restart) carries no packets.
            if !websocket && !entry.status.is_some_and(|s| (200..300).contains(&s)) {
                continue;
            }
            let mut packets = Vec::new();
            if websocket {
                for m in &entry.ws_messages {
                    packets.push(Message {
                        at: m.at - zero,
                        ..m.clone()
                    });
                }
            } else {
                let cut = |text: &str, at: f64, dir: Dir, packets: &mut Vec<Message>| {
                    let parts = engineio::split_payload(version, text).map_err(|e| {
                        BadInput::at(
                            &place,
                            format!("its Engine.IO payload does not decode: {e}"),
                        )
                    })?;
                    for p in parts {
                        packets.push(Message {
                            at,
                            dir,
                            text: p.to_string(),
                            binary: false,
                            place: place.clone(),
                        });
                    }
                    Ok::<(), BadInput>(())
                };
                if let Some(body) = &entry.request_body {
                    cut(&body.text, at, Dir::C2s, &mut packets)?;
                }
                // A POST's answer is the server's `ok`, not a payload (v3 could not cut it).
                if let Some(body) = entry
                    .response_body
                    .as_ref()
                    .filter(|_| entry.method != "POST")
                {
                    cut(&body.text, end, Dir::S2c, &mut packets)?;
                }
            }
            let sid = entry
                .url
                .param("sid")
                .map(str::to_string)
                .or_else(|| opened_sid(&packets));
            let Some(sid) = sid else {
                continue; // A request that never got its session: nothing to join it to.
            };
            let index = *by_sid.entry(sid.clone()).or_insert_with(|| {
                sessions.push(Socket {
                    at,
                    until: end,
                    conn: entry.number as u64,
                    place: place.clone(),
                    url: entry.url.clone(),
                    request_headers: entry.request_headers.clone(),
                    engine: Some(Engine {
                        version,
                        sid,
                        polling: false,
                        websocket: false,
                    }),
                    messages: Vec::new(),
                    messages_missing: None,
                });
                sessions.len() - 1
            });
            let session = &mut sessions[index];
            if websocket && !entry.has_messages {
                session.messages_missing = Some(place.clone());
            }
            if let Some(engine) = &mut session.engine {
                engine.polling |= !websocket;
                engine.websocket |= websocket;
            }
            let last = packets.iter().map(|m| m.at).fold(end, f64::max);
            session.until = session.until.max(last);
            session.messages.extend(packets);
        } else if entry.is_websocket {
            let messages: Vec<Message> = entry
                .ws_messages
                .iter()
                .map(|m| Message {
                    at: m.at - zero,
                    ..m.clone()
                })
                .collect();
            let until = messages.iter().map(|m| m.at).fold(end, f64::max);
            capture.sockets.push(Socket {
                at,
                until,
                conn: entry.number as u64,
                messages_missing: (!entry.has_messages).then(|| place.clone()),
                place,
                url: entry.url,
                request_headers: entry.request_headers,
                engine: None,
                messages,
            });
        } else {
            capture.exchanges.push(Exchange {
                at,
                conn: entry.number as u64,
                place,
                method: entry.method,
                url: entry.url,
                request_headers: entry.request_headers,
                request_body: entry.request_body,
                status: entry.status,
                response_headers: entry.response_headers,
                response_body: entry.response_body,
                resource_type: entry.resource_type,
            });
        }
    }
    for session in &mut sessions {
        session.messages.sort_by(|a, b| a.at.total_cmp(&b.at));
    }
    capture.sockets.extend(sessions);
    capture.sockets.sort_by(|a, b| a.at.total_cmp(&b.at));
    capture.exchanges.sort_by(|a, b| a.at.total_cmp(&b.at));
    Ok(capture)
}

/// The sid of an Engine.IO open packet among `packets`.
fn opened_sid(packets: &[Message]) -> Option<String> {
    packets.iter().find_map(|m| {
        let open = m.text.strip_prefix('0')?;
        Some(engineio::Open::parse(open).ok()?.sid)
    })
}

/// One HAR entry, read.
struct Entry {
    number: usize,
    started: String,
    /// Epoch seconds.
    start: f64,
    /// Seconds the request took, to the end of its response.
    duration: f64,
    method: String,
    url: Url,
    request_headers: Vec<(String, String)>,
    request_body: Option<Body>,
    status: Option<u16>,
    response_headers: Vec<(String, String)>,
    response_body: Option<Body>,
    resource_type: Option<String>,
    is_websocket: bool,
    /// It has `_webSocketMessages` (Chromium writes them; Firefox does not).
    has_messages: bool,
    /// `_webSocketMessages`, times in epoch seconds.
    ws_messages: Vec<Message>,
}

impl Entry {
    /// The entry, or None for a URL that is not the network's (`data:`, `blob:`, an extension's).
    fn read(entry: &Value, number: usize) -> Result<Option<Entry>, BadInput> {
        let place = format!("entry {number}");
        let bad = |what: &str| BadInput::at(&place, what.to_string());
        let started = entry
            .get("startedDateTime")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("it has no `startedDateTime`"))?;
        let start = epoch_seconds(started).ok_or_else(|| {
            bad(&format!(
                "`startedDateTime` {started:?} is not an RFC 3339 time"
            ))
        })?;
        let duration = entry
            .get("time")
            .and_then(Value::as_f64)
            .unwrap_or(0.0)
            .max(0.0)
            / 1000.0;
        let request = entry
            .get("request")
            .ok_or_else(|| bad("it has no `request`"))?;
        let url_text = request
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("its request has no `url`"))?;
        let scheme = url_text
            .split(':')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        const LOCAL: &[&str] = &[
            "data",
            "blob",
            "about",
            "chrome",
            "chrome-extension",
            "moz-extension",
            "file",
            "javascript",
        ];
        if LOCAL.contains(&scheme.as_str()) {
            return Ok(None);
        }
        let url = Url::parse(url_text).ok_or_else(|| {
            bad(&format!(
                "its request's url {url_text:?} is not an absolute http(s) or ws(s) URL"
            ))
        })?;
        let method = request
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("GET")
            .to_string();
        let request_headers = headers(request);
        let request_body = request.get("postData").and_then(|post| {
            let text = post.get("text").and_then(Value::as_str)?;
            let mime = post.get("mimeType").and_then(Value::as_str).unwrap_or("");
            Some(Body {
                text: text.to_string(),
                mime: media_type(mime),
                truncated: false,
            })
        });
        let response = entry.get("response");
        let status = response
            .and_then(|r| r.get("status"))
            .and_then(Value::as_u64)
            .filter(|&s| (100..1000).contains(&s))
            .map(|s| s as u16);
        let response_headers = response.map(headers).unwrap_or_default();
        let response_body = match response.and_then(|r| r.get("content")) {
            Some(content) => body(content).map_err(|why| bad(&why))?,
            None => None,
        };
        let resource_type = entry
            .get("_resourceType")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase);
        let mut ws_messages = Vec::new();
        if let Some(list) = entry.get("_webSocketMessages") {
            let list = list
                .as_array()
                .ok_or_else(|| bad("`_webSocketMessages` is not an array"))?;
            for (i, m) in list.iter().enumerate() {
                let here = format!("{place}, WebSocket message {}", i + 1);
                let dir = match m.get("type").and_then(Value::as_str) {
                    Some("send") => Dir::C2s,
                    Some("receive") => Dir::S2c,
                    other => {
                        return Err(BadInput::at(
                            &here,
                            format!("`type` is {other:?}, not \"send\" or \"receive\""),
                        ));
                    }
                };
                let at = m
                    .get("time")
                    .and_then(Value::as_f64)
                    .ok_or_else(|| BadInput::at(&here, "it has no numeric `time`".into()))?;
                let data = m.get("data").and_then(Value::as_str).unwrap_or("");
                let opcode = m.get("opcode").and_then(Value::as_u64).unwrap_or(1);
                if opcode > 2 {
                    continue; // Control frames: nothing of the conversation.
                }
                ws_messages.push(Message {
                    at,
                    dir,
                    text: data.to_string(),
                    binary: opcode == 2,
                    place: here,
                });
            }
        }
        let is_websocket = entry.get("_webSocketMessages").is_some()
            || resource_type.as_deref() == Some("websocket")
            || (status == Some(101) && matches!(url.scheme.as_str(), "ws" | "wss"));
        Ok(Some(Entry {
            number,
            started: started.to_string(),
            start,
            duration,
            method,
            url,
            request_headers,
            request_body,
            status,
            response_headers,
            response_body,
            resource_type,
            is_websocket,
            has_messages: entry.get("_webSocketMessages").is_some(),
            ws_messages,
        }))
    }
}

/// A request's or response's `headers`, HTTP/2 pseudo-headers left out.
fn headers(message: &Value) -> Vec<(String, String)> {
    message
        .get("headers")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|h| {
                    let name = h.get("name")?.as_str()?;
                    let value = h.get("value")?.as_str()?;
                    (!name.starts_with(':')).then(|| (name.to_string(), value.to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A response's `content` as text, base64 undone; None for no text or a binary type.
fn body(content: &Value) -> Result<Option<Body>, String> {
    let Some(text) = content.get("text").and_then(Value::as_str) else {
        return Ok(None);
    };
    let mime = media_type(
        content
            .get("mimeType")
            .and_then(Value::as_str)
            .unwrap_or(""),
    );
    let text = if content.get("encoding").and_then(Value::as_str) == Some("base64") {
        if !is_text_media(&mime) {
            return Ok(None);
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| format!("its response body is not valid base64: {e}"))?;
        match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(_) => return Ok(None),
        }
    } else {
        text.to_string()
    };
    Ok(Some(Body {
        text,
        mime,
        truncated: false,
    }))
}

/// Seconds since the epoch of an RFC 3339 time (`2026-12-07T12:00:00.123Z`, or with an offset).
pub fn epoch_seconds(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(range)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut fraction = 0.0;
    if let Some(after) = rest.strip_prefix('.') {
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        fraction = format!("0.{}", &after[..digits]).parse().ok()?;
        rest = &after[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let h: i64 = rest[1..3].parse().ok()?;
            let m: i64 = rest[4..6].parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    // Days from the civil date (proleptic Gregorian), as in Howard Hinnant's algorithm.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(seconds as f64 + fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn har_times_read_with_fractions_and_offsets() {
        assert_eq!(epoch_seconds("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(epoch_seconds("2000-03-01T00:00:00Z"), Some(951_868_800.0));
        assert_eq!(
            epoch_seconds("2026-12-07T13:00:00.250+01:00"),
            Some(1_796_644_800.25)
        );
        assert_eq!(
            epoch_seconds("2026-12-07T12:00:00.250Z"),
            Some(1_796_644_800.25)
        );
        for bad in [
            "",
            "2026-12-07",
            "2026-13-07T00:00:00Z",
            "2026-12-07T00:00:00",
            "2026-12-07T00:00:00.Z",
        ] {
            assert_eq!(epoch_seconds(bad), None, "{bad}");
        }
    }
}
