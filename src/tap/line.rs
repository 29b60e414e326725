//! What one input line of `volley tap` asks for, parsed without I/O.
//!
//! Raw WebSocket: a line is sent as one text message, as typed. Socket.IO: a line is
//! `emit EVENT [ARG...] [--ack]`, each ARG one JSON value (`emit chat "hi" {"n":1}`). In both
//! modes a line starting with `/` is a command: `/close [CODE [REASON]]`, and for raw WebSocket
//! `/ping [TEXT]`; `//TEXT` sends `/TEXT`. Empty lines are skipped.

use serde_json::Value;

/// What a line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// Raw WebSocket: one text message.
    Text(String),
    /// Socket.IO: an EVENT with these arguments, with an ack id when `ack`.
    Emit {
        event: String,
        args: Vec<Value>,
        ack: bool,
    },
    /// Raw WebSocket: a ping frame.
    Ping(String),
    /// Close the session (Socket.IO: DISCONNECT, then close) with this code and reason.
    Close { code: u16, reason: String },
}

/// How lines are read: as raw WebSocket text or as Socket.IO commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Raw,
    SocketIo,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error(
        "unknown command `{0}`: the commands are /close [CODE [REASON]] and /ping [TEXT]; start a line with // to send text that begins with /"
    )]
    UnknownRawCommand(String),
    #[error("unknown command `{0}`: the command is /close")]
    UnknownSioCommand(String),
    #[error("Socket.IO's /close takes no code: it sends DISCONNECT, then closes with 1000")]
    SioCloseTakesNoCode,
    #[error("expected `emit EVENT [JSON...] [--ack]` or `/close`, got `{0}`")]
    NotAnEmit(String),
    #[error("`emit` needs an event name: emit EVENT [JSON...] [--ack]")]
    NoEvent,
    #[error("the event name {0} is not a valid JSON string")]
    BadEventName(String),
    #[error(
        "argument {index} is not JSON: {detail} at column {column} (strings need double quotes: emit chat \"hi\")"
    )]
    BadJson {
        /// 1-based position among the arguments.
        index: usize,
        /// 1-based column in the whole line.
        column: usize,
        detail: String,
    },
    #[error("close code `{0}` cannot be sent: use 1000-1003, 1007-1014 or 3000-4999")]
    BadCloseCode(String),
    #[error("a close reason is at most 123 bytes")]
    LongCloseReason,
}

/// Parses one line (without its newline); `None` for a line with nothing to send.
pub fn parse(line: &str, mode: Mode) -> Result<Option<Line>, LineError> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.trim().is_empty() {
        return Ok(None);
    }
    if let Some(command) = line.strip_prefix('/') {
        if mode == Mode::Raw {
            if let Some(text) = command.strip_prefix('/') {
                return Ok(Some(Line::Text(format!("/{text}"))));
            }
        }
        return parse_command(command, mode).map(Some);
    }
    match mode {
        Mode::Raw => Ok(Some(Line::Text(line.to_string()))),
        Mode::SocketIo => parse_emit(line).map(Some),
    }
}

fn parse_command(command: &str, mode: Mode) -> Result<Line, LineError> {
    let (name, rest) = command
        .split_once(char::is_whitespace)
        .unwrap_or((command, ""));
    let rest = rest.trim();
    match (name, mode) {
        ("close", Mode::SocketIo) if !rest.is_empty() => Err(LineError::SioCloseTakesNoCode),
        ("close", _) => {
            let (code, reason) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let code = match code {
                "" => 1000,
                text => text
                    .parse::<u16>()
                    .ok()
                    .filter(|c| sendable_close_code(*c))
                    .ok_or_else(|| LineError::BadCloseCode(text.to_string()))?,
            };
            let reason = reason.trim().to_string();
            if reason.len() > 123 {
                return Err(LineError::LongCloseReason);
            }
            Ok(Line::Close { code, reason })
        }
        ("ping", Mode::Raw) => Ok(Line::Ping(rest.to_string())),
        (_, Mode::Raw) => Err(LineError::UnknownRawCommand(format!("/{name}"))),
        (_, Mode::SocketIo) => Err(LineError::UnknownSioCommand(format!("/{name}"))),
    }
}

/// Codes an endpoint may send in a close frame (RFC 6455 7.4).
fn sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

fn parse_emit(line: &str) -> Result<Line, LineError> {
    let trimmed = line.trim_start();
    let Some(after) = trimmed.strip_prefix("emit") else {
        return Err(LineError::NotAnEmit(line.to_string()));
    };
    if !after.is_empty() && !after.starts_with(char::is_whitespace) {
        return Err(LineError::NotAnEmit(line.to_string()));
    }
    let offset = line.len() - after.len();
    let body = after.trim_start();
    let offset = offset + (after.len() - body.len());
    if body.is_empty() {
        return Err(LineError::NoEvent);
    }

    // The event: a JSON string, or a word up to the next space.
    let (event, args_at) = if body.starts_with('"') {
        let mut values = serde_json::Deserializer::from_str(body).into_iter::<String>();
        match values.next() {
            Some(Ok(name)) => (name, values.byte_offset()),
            _ => {
                let end = body.find(char::is_whitespace).unwrap_or(body.len());
                return Err(LineError::BadEventName(body[..end].to_string()));
            }
        }
    } else {
        let end = body.find(char::is_whitespace).unwrap_or(body.len());
        (body[..end].to_string(), end)
    };
    if event == "--ack" {
        return Err(LineError::NoEvent);
    }

    let mut rest = &body[args_at..];
    let mut ack = false;
    let trimmed_end = rest.trim_end();
    if let Some(before) = trimmed_end.strip_suffix("--ack") {
        if before.is_empty() || before.ends_with(char::is_whitespace) {
            ack = true;
            rest = before;
        }
    }

    let rest_offset = offset + args_at;
    let mut args = Vec::new();
    let mut values = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
    loop {
        let start = values.byte_offset();
        match values.next() {
            None => break,
            Some(Ok(value)) => args.push(value),
            Some(Err(e)) => {
                // Where the bad value starts, or where the parser gave up inside it.
                let skipped = rest[start..].len() - rest[start..].trim_start().len();
                let column = if e.is_eof() {
                    rest_offset + start + skipped + 1
                } else {
                    rest_offset + e.column()
                };
                return Err(LineError::BadJson {
                    index: args.len() + 1,
                    column,
                    detail: json_problem(&e),
                });
            }
        }
    }
    Ok(Line::Emit { event, args, ack })
}

/// serde_json's message without its " at line L column C" tail (the column is given separately).
fn json_problem(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sio(line: &str) -> Result<Option<Line>, LineError> {
        parse(line, Mode::SocketIo)
    }

    fn emit(event: &str, args: Vec<Value>, ack: bool) -> Option<Line> {
        Some(Line::Emit {
            event: event.into(),
            args,
            ack,
        })
    }

    #[test]
    fn raw_lines_are_sent_as_typed_and_slash_lines_are_commands() {
        let raw = |line| parse(line, Mode::Raw);
        assert_eq!(raw("hello").unwrap(), Some(Line::Text("hello".into())));
        assert_eq!(
            raw(" emit x 1 ").unwrap(),
            Some(Line::Text(" emit x 1 ".into()))
        );
        assert_eq!(raw("hi\r").unwrap(), Some(Line::Text("hi".into())));
        assert_eq!(raw("   ").unwrap(), None);
        assert_eq!(raw("//path").unwrap(), Some(Line::Text("/path".into())));
        assert_eq!(raw("/ping").unwrap(), Some(Line::Ping(String::new())));
        assert_eq!(raw("/ping abc").unwrap(), Some(Line::Ping("abc".into())));
        assert_eq!(
            raw("/close").unwrap(),
            Some(Line::Close {
                code: 1000,
                reason: String::new()
            })
        );
        assert_eq!(
            raw("/close 4001 going home").unwrap(),
            Some(Line::Close {
                code: 4001,
                reason: "going home".into()
            })
        );
        assert!(matches!(
            raw("/usr/bin"),
            Err(LineError::UnknownRawCommand(c)) if c == "/usr/bin"
        ));
    }

    #[test]
    fn close_codes_that_must_not_be_sent_are_refused() {
        for bad in ["1005", "1006", "1015", "999", "5000", "x"] {
            assert_eq!(
                parse(&format!("/close {bad}"), Mode::Raw),
                Err(LineError::BadCloseCode(bad.into()))
            );
        }
        let long = format!("/close 1000 {}", "x".repeat(124));
        assert_eq!(parse(&long, Mode::Raw), Err(LineError::LongCloseReason));
    }

    #[test]
    fn emit_takes_whitespace_separated_json_arguments() {
        assert_eq!(sio("emit ping").unwrap(), emit("ping", vec![], false));
        assert_eq!(
            sio(r#"emit chat "hi" {"a":1}"#).unwrap(),
            emit("chat", vec![json!("hi"), json!({"a": 1})], false)
        );
        assert_eq!(
            sio(r#"  emit chat 1 2.5 true null [1,"x"]{"b":[]}"#).unwrap(),
            emit(
                "chat",
                vec![
                    json!(1),
                    json!(2.5),
                    json!(true),
                    json!(null),
                    json!([1, "x"]),
                    json!({"b": []})
                ],
                false
            )
        );
        assert_eq!(
            sio(r#"emit "my event" "x""#).unwrap(),
            emit("my event", vec![json!("x")], false)
        );
    }

    #[test]
    fn a_trailing_ack_flag_asks_for_an_ack() {
        assert_eq!(
            sio(r#"emit ack "a" 2 --ack"#).unwrap(),
            emit("ack", vec![json!("a"), json!(2)], true)
        );
        assert_eq!(sio("emit ack --ack  ").unwrap(), emit("ack", vec![], true));
        // Inside a string it is an argument.
        assert_eq!(
            sio(r#"emit ack "--ack""#).unwrap(),
            emit("ack", vec![json!("--ack")], false)
        );
    }

    #[test]
    fn bad_json_names_the_argument_and_its_column() {
        let err = sio(r#"emit chat "ok" hi"#).unwrap_err();
        assert!(
            matches!(
                err,
                LineError::BadJson {
                    index: 2,
                    column: 16,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("double quotes"), "{err}");
        let err = sio(r#"emit chat {"a":1"#).unwrap_err();
        assert!(
            matches!(
                err,
                LineError::BadJson {
                    index: 1,
                    column: 11,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn socketio_lines_must_be_emits_or_close() {
        assert!(matches!(sio("hello"), Err(LineError::NotAnEmit(_))));
        assert!(matches!(sio("emitter 1"), Err(LineError::NotAnEmit(_))));
        assert_eq!(sio("emit"), Err(LineError::NoEvent));
        assert_eq!(sio("emit --ack"), Err(LineError::NoEvent));
        assert!(matches!(
            sio(r#"emit "x 1"#),
            Err(LineError::BadEventName(_))
        ));
        assert!(matches!(sio("/ping"), Err(LineError::UnknownSioCommand(_))));
        assert_eq!(sio("/close 4000"), Err(LineError::SioCloseTakesNoCode));
        assert_eq!(
            sio("/close").unwrap(),
            Some(Line::Close {
                code: 1000,
                reason: String::new()
            })
        );
    }
}
