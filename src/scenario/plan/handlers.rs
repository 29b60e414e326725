//! What a user captures and what it answers: captures (JSON pointers into bodies, acks and
//! events; HTTP headers), the matchers that select received events for a `wait_for` or a
//! handler, and the `[[group.on]]` handlers with their replies and answers.

use crate::scenario::spanned::Spanned;

use super::Message;
use super::groups::message_plan;
use super::steps::StepCompiler;
use crate::protocol::pointer::JsonPointer;
use crate::scenario::ScenarioError;
use crate::scenario::model::On;
use crate::scenario::template::{EventShape, Scope, Template, UserValues};

/// One value to keep: where it is read, and the slot it goes to.
#[derive(Debug, Clone)]
pub struct Capture {
    pub slot: u16,
    pub source: CaptureSource,
    /// As written, for the error when nothing is found.
    pub written: String,
}

#[derive(Debug, Clone)]
pub enum CaptureSource {
    /// A JSON pointer into a body, an event's first argument or an ack's first argument.
    Pointer(JsonPointer),
    /// An HTTP response header.
    Header(http::HeaderName),
}

/// Stores what `captures` find in `payload` (JSON) or `headers` into `values`; `Err` names the
/// first capture that finds nothing (`names`: the captured values' names by slot).
pub fn capture_all(
    captures: &[Capture],
    names: &[String],
    values: &mut UserValues,
    payload: &[u8],
    headers: Option<&http::HeaderMap>,
) -> Result<(), String> {
    for capture in captures {
        let found = match &capture.source {
            CaptureSource::Pointer(pointer) => pointer.read_raw(payload).map(json_text),
            CaptureSource::Header(name) => headers
                .and_then(|h| h.get(name))
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        };
        let Some(value) = found else {
            return Err(format!(
                "capture `{}`: nothing at `{}`",
                names[usize::from(capture.slot)],
                capture.written
            ));
        };
        values.vars[usize::from(capture.slot)] = Some(value.into());
    }
    Ok(())
}

/// A JSON value as a captured text: a string's content, anything else as written.
fn json_text(raw: &str) -> String {
    if raw.starts_with('"') {
        serde_json::from_str::<String>(raw).unwrap_or_else(|_| raw.to_string())
    } else {
        raw.to_string()
    }
}

/// Which received events a handler or a `wait_for` takes.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// Socket.IO: how the event's array starts, `["NAME"`; raw WebSocket: `None`, any message.
    pub event_prefix: Option<Vec<u8>>,
    /// Only events whose field at the pointer equals the value.
    pub field: Option<(JsonPointer, serde_json::Value)>,
}

impl Matcher {
    /// Whether `payload` (a message, or a Socket.IO event's array) is one of these events.
    pub fn matches(&self, payload: &[u8]) -> bool {
        if let Some(prefix) = &self.event_prefix {
            let rest = payload.strip_prefix(prefix.as_slice());
            if !matches!(rest.and_then(|r| r.first()), Some(b',' | b']')) {
                return false;
            }
        }
        match &self.field {
            None => true,
            Some((pointer, wanted)) => pointer
                .read_raw(payload)
                .and_then(|raw| serde_json::from_str::<serde_json::Value>(raw).ok())
                .is_some_and(|found| &found == wanted),
        }
    }
}

/// `[[group.on]]`, compiled.
#[derive(Debug, Clone)]
pub struct OnPlan {
    pub matcher: Matcher,
    /// Sent at once, with values of the event.
    pub reply: Option<Message>,
    /// Socket.IO: the arguments of the answer when the server asks for an ack.
    pub answer: Option<Vec<Template>>,
    pub captures: Vec<Capture>,
}

impl StepCompiler<'_> {
    /// Where pointers of an event's capture apply: the first argument of a Socket.IO event
    /// (element 1 of its array); the message itself for raw WebSocket (`None`).
    pub(super) fn event_pointer(&self, index: usize) -> Option<usize> {
        self.is_sio.then_some(index)
    }

    /// An ack's arguments are an array: pointers apply to its first element.
    pub(super) fn ack_pointer(&self) -> Option<usize> {
        Some(0)
    }

    /// `capture = { name = "/pointer" }`, or `"header:NAME"` for HTTP. `under`: the array index
    /// pointers are applied under (`Some(0)` for HTTP means "as written").
    pub fn captures(
        &self,
        table: Option<&Spanned<toml::Table>>,
        under: Option<usize>,
        http: bool,
    ) -> Result<Vec<Capture>, ScenarioError> {
        let Some(table) = table else {
            return Ok(Vec::new());
        };
        let err = self.err;
        let mut captures = Vec::new();
        for (name, value) in table.get_ref() {
            let slot = self
                .users
                .vars
                .iter()
                .position(|v| v == name)
                .expect("every capture name has a slot") as u16;
            let written = value
                .as_str()
                .ok_or_else(|| {
                    err.at(
                        table.span(),
                        format!("capture `{name}` is a string: a JSON pointer like \"/token\""),
                    )
                })?
                .to_string();
            let source = if let Some(header) = written.strip_prefix("header:") {
                if !http {
                    return Err(err.at(
                        table.span(),
                        format!("capture `{name}`: headers are captured from HTTP responses only"),
                    ));
                }
                CaptureSource::Header(http::HeaderName::try_from(header.trim()).map_err(|e| {
                    err.at(
                        table.span(),
                        format!("capture `{name}`: header `{header}`: {e}"),
                    )
                })?)
            } else {
                let pointer = JsonPointer::parse(&written).ok_or_else(|| {
                    err.at(
                        table.span(),
                        format!(
                            "capture `{name}`: `{written}` is not a JSON pointer: it starts with `/`, like \"/token\"{}",
                            if http { ", or is \"header:NAME\"" } else { "" }
                        ),
                    )
                })?;
                CaptureSource::Pointer(match (http, under) {
                    (false, Some(index)) => pointer.under_index(index),
                    _ => pointer,
                })
            };
            captures.push(Capture {
                slot,
                source,
                written,
            });
        }
        Ok(captures)
    }

    /// `wait_for = "EVENT"` (Socket.IO) or `"*"` (any), with an optional `match`.
    pub fn matcher(
        &self,
        event: Option<&Spanned<String>>,
        matches: Option<&Spanned<String>>,
    ) -> Result<Matcher, ScenarioError> {
        let err = self.err;
        let event_prefix = match event.map(|e| e.get_ref().as_str()) {
            None | Some("*") => None,
            Some(name) if self.is_sio => {
                let json = serde_json::to_string(name).expect("a string serializes");
                Some(format!("[{json}").into_bytes())
            }
            Some(_) => {
                return Err(err.of(
                    event.expect("matched Some"),
                    "raw WebSocket messages have no event names: use \"*\" with `match`, e.g. match = '/type == \"welcome\"'",
                ));
            }
        };
        let field = match matches {
            None => None,
            Some(text) => {
                let (pointer, value) = parse_match(text.get_ref()).map_err(|m| err.of(text, m))?;
                let pointer = if self.is_sio {
                    pointer.under_index(1)
                } else {
                    pointer
                };
                Some((pointer, value))
            }
        };
        Ok(Matcher {
            event_prefix,
            field,
        })
    }

    /// `[[group.on]]` handlers of one group.
    pub fn handlers(
        &mut self,
        group: usize,
        written: &[Spanned<On>],
    ) -> Result<Vec<OnPlan>, ScenarioError> {
        let err = self.err;
        let mut handlers = Vec::new();
        for spanned in written {
            let span = spanned.span();
            let on = spanned.get_ref();
            if let Some(event) = &on.event {
                self.check_sent(group, event)?;
            }
            let matcher = self.matcher(on.event.as_ref(), on.matches.as_ref())?;
            let shape = if self.is_sio {
                EventShape::SocketIoArgs
            } else {
                EventShape::Message
            };
            let scope = Scope {
                event: Some(shape),
                ..self.users.scope()
            };
            let reply = match &on.emit {
                Some(event) => Some(
                    message_plan(
                        self.is_sio,
                        event.get_ref(),
                        on.data.as_ref(),
                        on.args.as_ref(),
                        on.binary,
                        &scope,
                    )
                    .map_err(|(s, m)| err.at(s.unwrap_or(span.clone()), m))?,
                ),
                None if on.data.is_some() || on.args.is_some() => {
                    return Err(err.at(
                        span,
                        "`data` and `args` are what `emit` sends: add emit = \"EVENT\"",
                    ));
                }
                None => None,
            };
            let answer = match &on.answer {
                Some(_) if !self.is_sio => {
                    return Err(err.at(
                        span,
                        "`answer` answers Socket.IO acknowledgements: raw WebSocket has none",
                    ));
                }
                Some(args) => Some(
                    args.get_ref()
                        .iter()
                        .map(|v| Template::compile_arg(v, &scope))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|m| err.at(args.span(), m))?,
                ),
                None => None,
            };
            let captures = self.captures(on.capture.as_ref(), self.event_pointer(1), false)?;
            if reply.is_none() && answer.is_none() && captures.is_empty() {
                return Err(err.at(
                    span,
                    "this handler does nothing: give it `emit`, `answer` or `capture`",
                ));
            }
            handlers.push(OnPlan {
                matcher,
                reply,
                answer,
                captures,
            });
        }
        Ok(handlers)
    }

    /// A handler's event must be one somebody sends: a group, or the server as an `[[expect]]`
    /// or the handler itself (`from = "server"`) says.
    fn check_sent(&self, group: usize, event: &Spanned<String>) -> Result<(), ScenarioError> {
        let name = event.get_ref();
        if name == "*" {
            return Ok(());
        }
        let scenario = self.scenario;
        let emitted = scenario.groups.iter().any(|g| {
            g.emit.iter().any(|e| e.event.get_ref() == name)
                || g.on_connect.iter().any(|s| {
                    s.get_ref()
                        .emit
                        .as_ref()
                        .is_some_and(|e| e.get_ref() == name)
                })
                || g.on.iter().any(|o| {
                    o.get_ref()
                        .emit
                        .as_ref()
                        .is_some_and(|e| e.get_ref() == name)
                })
        });
        let expected = scenario.expects.iter().any(|e| e.event.get_ref() == name);
        let declared = scenario.groups[group].on.iter().any(|o| {
            o.get_ref()
                .event
                .as_ref()
                .is_some_and(|e| e.get_ref() == name)
                && o.get_ref()
                    .from
                    .as_ref()
                    .is_some_and(|f| f.get_ref() == "server")
        });
        if emitted || expected || declared {
            return Ok(());
        }
        Err(self.err.of(
            event,
            format!(
                "nobody sends `{name}`: no group emits it and no [[expect]] has it; if the server sends it, add from = \"server\" to this handler"
            ),
        ))
    }
}

/// `/type == "ping"`: a JSON pointer, `==`, and a JSON value (a bare word is a string).
fn parse_match(text: &str) -> Result<(JsonPointer, serde_json::Value), String> {
    let usage = || {
        format!("match `{text}`: write a JSON pointer, `==` and a value, like '/type == \"ping\"'")
    };
    let (pointer, value) = text.split_once("==").ok_or_else(usage)?;
    let pointer = JsonPointer::parse(pointer.trim()).ok_or_else(usage)?;
    let value = value.trim();
    if value.is_empty() {
        return Err(usage());
    }
    let value = serde_json::from_str(value)
        .unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
    Ok((pointer, value))
}
