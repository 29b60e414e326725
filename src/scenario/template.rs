//! Message templates: the text of an emit, an HTTP body, a header or an auth payload, compiled once
//! into literal pieces and placeholders, so that rendering is a single pass into one buffer.
//!
//! Placeholders: `{{client}}`, `{{seq}}`, `{{group}}`; a data column `{{users.password}}`; a
//! captured value `{{token}}`; generated values `{{uuid}}`, `{{now_ms}}`, `{{int(1, 100)}}`,
//! `{{one_of(red, green)}}`; and in replies, a value of the received event at a JSON pointer
//! `{{/id}}`. Every name is resolved when the template is compiled (a [`Scope`] says which exist),
//! so rendering looks nothing up by name.
//!
//! In JSON (a table, a Socket.IO argument) a placeholder always sits inside a string, and what it
//! renders is escaped for one. A string that is exactly one placeholder of a JSON value (a pointer,
//! `int`, `now_ms`) keeps that value's type: `id = "{{/id}}"` copies a number as a number.

use std::fmt::Write;
use std::sync::Arc;

use crate::protocol::pointer::JsonPointer;
use crate::protocol::stamp::Stamp;
use crate::scenario::data::DataSet;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Client,
    Seq,
    Group,
    /// A column of a data set: the user's row of it.
    Column {
        set: u16,
        column: u16,
    },
    /// A value the user captured earlier.
    Var(u16),
    /// A value of the received event; `raw`: the whole JSON value, type kept.
    Event {
        pointer: JsonPointer,
        raw: bool,
    },
    Uuid,
    NowMs {
        raw: bool,
    },
    Int {
        low: i64,
        high: i64,
        raw: bool,
    },
    OneOf(Vec<String>),
}

/// What kind of text a template renders, which decides where a stamp can go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Text as written (a raw WebSocket message).
    Text,
    /// A JSON object: the stamp can be its first field.
    Object,
    /// A JSON string literal (a Socket.IO argument): a prefix stamp goes inside the quotes.
    JsonString,
    /// Other JSON (numbers, arrays, booleans).
    Json,
}

/// A compiled template. A TOML table becomes a JSON object, a string stays as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// For JSON objects the text after the opening `{`, for JSON strings the text after the
    /// opening quote, so a stamp can be put first.
    segments: Vec<Segment>,
    shape: Shape,
    literal_len: usize,
    placeholders: usize,
    /// `size = "4KiB"`: the rendered text is padded to at least this many bytes.
    pad_to: Option<usize>,
}

/// Where the stamp goes when rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StampPlacement {
    Field,
    Prefix,
}

/// The names a template may use where it is written.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope<'a> {
    /// The scenario's data sets.
    pub data: &'a [Arc<DataSet>],
    /// The names of every captured value, in slot order.
    pub vars: &'a [String],
    /// A received event is at hand (a reply): `{{/pointer}}` reads it. For Socket.IO, pointers
    /// apply to the event's first argument.
    pub event: Option<EventShape>,
}

/// How a received event's text is laid out, for the pointers of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventShape {
    /// A raw WebSocket message: pointers apply to the message.
    Message,
    /// A Socket.IO event's JSON array `["name", arg0, ...]`: pointers apply to `arg0`.
    SocketIoArgs,
}

/// One user's own values: the row it took of each data set and what it captured.
#[derive(Debug, Clone, Default)]
pub struct UserValues {
    /// Row of each data set (in the scenario's order).
    pub rows: Vec<u32>,
    /// Captured values by slot; `None` until captured.
    pub vars: Vec<Option<Box<str>>>,
}

/// Everything a render may read.
#[derive(Clone, Copy)]
pub struct Fill<'a> {
    pub client: u32,
    pub seq: u64,
    pub group: &'a str,
    pub data: &'a [Arc<DataSet>],
    pub user: &'a UserValues,
    /// The received event a reply answers (its whole text: a message, or a Socket.IO event's
    /// argument array).
    pub event: Option<&'a [u8]>,
}

static NO_VALUES: UserValues = UserValues {
    rows: Vec::new(),
    vars: Vec::new(),
};

impl<'a> Fill<'a> {
    /// A render with no user values (no data sets, nothing captured).
    pub fn basic(client: u32, seq: u64, group: &'a str) -> Fill<'a> {
        Fill {
            client,
            seq,
            group,
            data: &[],
            user: &NO_VALUES,
            event: None,
        }
    }
}

impl Template {
    /// Compiles a TOML value: a string is sent as written; a table or array is sent as JSON.
    pub fn compile(value: &toml::Value, scope: &Scope) -> Result<Template, String> {
        match value {
            toml::Value::String(s) => Template::with_shape(s, Shape::Text, scope),
            other => Template::with_shape(&to_json(other)?, json_shape(other), scope),
        }
    }

    /// Compiles a Socket.IO argument: every value is JSON, a string a JSON string literal.
    pub fn compile_arg(value: &toml::Value, scope: &Scope) -> Result<Template, String> {
        match value {
            toml::Value::String(_) => {
                Template::with_shape(&to_json(value)?, Shape::JsonString, scope)
            }
            other => Template::with_shape(&to_json(other)?, json_shape(other), scope),
        }
    }

    /// Compiles template text, rendered as written.
    pub fn text(text: &str, scope: &Scope) -> Result<Template, String> {
        Template::with_shape(text, Shape::Text, scope)
    }

    fn with_shape(text: &str, shape: Shape, scope: &Scope) -> Result<Template, String> {
        let body = match shape {
            Shape::Object => text
                .strip_prefix('{')
                .ok_or_else(|| "a JSON object template must start with `{`".to_string())?,
            Shape::JsonString => text
                .strip_prefix('"')
                .ok_or_else(|| "a JSON string template must start with `\"`".to_string())?,
            Shape::Text | Shape::Json => text,
        };
        let json = shape != Shape::Text;
        let mut segments = Vec::new();
        let mut rest = body;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                segments.push(Segment::Literal(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("`{{{{` without a closing `}}}}` in template `{text}`"))?;
            let mut segment = placeholder::resolve(after[..close].trim(), scope, json)?;
            rest = &after[close + 2..];
            // A JSON string that is exactly this placeholder: a typed value loses its quotes.
            if json && segment.can_be_raw() {
                let opened = matches!(segments.last(), Some(Segment::Literal(l)) if opens_string(l))
                    || (segments.is_empty() && shape == Shape::JsonString);
                // Object keys stay strings: a key's closing quote is followed by `:`.
                let value = rest.starts_with('"') && !rest[1..].starts_with(':');
                if opened && value {
                    if let Some(Segment::Literal(l)) = segments.last_mut() {
                        l.pop();
                        if l.is_empty() {
                            segments.pop();
                        }
                    }
                    // A whole Socket.IO string argument: its opening quote is written by render.
                    segment.make_raw();
                    rest = &rest[1..];
                }
            }
            segments.push(segment);
        }
        if !rest.is_empty() {
            segments.push(Segment::Literal(rest.to_string()));
        }
        let mut shape = shape;
        if shape == Shape::JsonString
            && segments.len() == 1
            && matches!(
                segments[0],
                Segment::Event { raw: true, .. }
                    | Segment::Int { raw: true, .. }
                    | Segment::NowMs { raw: true }
            )
        {
            shape = Shape::Json;
        }
        let literal_len = segments
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => l.len(),
                _ => 0,
            })
            .sum();
        let placeholders = segments.len()
            - segments
                .iter()
                .filter(|s| matches!(s, Segment::Literal(_)))
                .count();
        Ok(Template {
            segments,
            shape,
            literal_len,
            placeholders,
            pad_to: None,
        })
    }

    /// Pads every render to at least `size` bytes: objects with a `"_pad"` field, strings and
    /// text with `x`s. Other JSON (numbers, arrays) cannot be padded.
    pub fn pad_to(&mut self, size: usize) -> Result<(), String> {
        if self.shape == Shape::Json {
            return Err("`size` pads a table or a string; this data is other JSON".into());
        }
        self.pad_to = Some(size);
        Ok(())
    }

    /// Whether the payload is a JSON object, where `stamp = "auto"` puts a field.
    pub fn is_object(&self) -> bool {
        self.shape == Shape::Object
    }

    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// The captured values the template reads (slots).
    pub fn vars(&self) -> impl Iterator<Item = u16> + '_ {
        self.segments.iter().filter_map(|s| match s {
            Segment::Var(slot) => Some(*slot),
            _ => None,
        })
    }

    /// The data sets the template reads columns of.
    pub fn data_sets(&self) -> impl Iterator<Item = u16> + '_ {
        self.segments.iter().filter_map(|s| match s {
            Segment::Column { set, .. } => Some(*set),
            _ => None,
        })
    }

    /// Whether it reads the received event.
    pub fn reads_event(&self) -> bool {
        self.segments
            .iter()
            .any(|s| matches!(s, Segment::Event { .. }))
    }

    /// An upper bound of the rendered length when every value is short, so one allocation
    /// usually holds the whole message.
    pub fn capacity(&self, group: &str, stamped: bool) -> usize {
        let stamp = if stamped {
            crate::protocol::stamp::MAX_TOKEN_LEN + 12
        } else {
            0
        };
        let base = 1 + self.literal_len + self.placeholders * (36 + group.len()) + stamp;
        base.max(self.pad_to.unwrap_or(0) + 16)
    }

    /// Renders into a new `String`, with the stamp placed where asked.
    pub fn render(&self, fill: &Fill, stamp: Option<(Stamp, StampPlacement)>) -> String {
        let mut out = String::with_capacity(self.capacity(fill.group, stamp.is_some()));
        self.render_append(&mut out, fill, stamp);
        out
    }

    /// Renders at the end of `out`.
    pub fn render_append(
        &self,
        out: &mut String,
        fill: &Fill,
        stamp: Option<(Stamp, StampPlacement)>,
    ) {
        let start = out.len();
        match (stamp, self.shape) {
            (Some((stamp, StampPlacement::Field)), Shape::Object) => {
                stamp.write_field_opening(out);
                if !self.body_is_empty_object() {
                    out.push(',');
                }
            }
            (Some((stamp, _)), Shape::JsonString) => {
                out.push('"');
                stamp.write_token(out);
            }
            (Some((stamp, _)), shape) => {
                stamp.write_token(out);
                if shape == Shape::Object {
                    out.push('{');
                }
            }
            (None, Shape::Object) => out.push('{'),
            (None, Shape::JsonString) => out.push('"'),
            (None, _) => {}
        }
        let json = self.shape != Shape::Text;
        for segment in &self.segments {
            segment.render(out, fill, json);
        }
        if let Some(size) = self.pad_to {
            self.pad(out, start, size);
        }
    }

    fn pad(&self, out: &mut String, start: usize, size: usize) {
        let have = out.len() - start;
        if have >= size {
            return;
        }
        match self.shape {
            Shape::Object => {
                // `{...}` becomes `{...,"_pad":"xxx"}`.
                out.pop();
                let empty = out.ends_with('{');
                let overhead = if empty { 10 } else { 11 };
                out.push_str(if empty { "\"_pad\":\"" } else { ",\"_pad\":\"" });
                let fill = size.saturating_sub(have + overhead - 1);
                out.extend(std::iter::repeat_n('x', fill));
                out.push_str("\"}");
            }
            Shape::JsonString => {
                out.pop();
                out.extend(std::iter::repeat_n('x', size - have));
                out.push('"');
            }
            Shape::Text => out.extend(std::iter::repeat_n('x', size - have)),
            Shape::Json => {}
        }
    }

    fn body_is_empty_object(&self) -> bool {
        matches!(self.segments.as_slice(), [Segment::Literal(l)] if l == "}")
    }
}

impl Segment {
    fn can_be_raw(&self) -> bool {
        matches!(
            self,
            Segment::Event { .. } | Segment::Int { .. } | Segment::NowMs { .. }
        )
    }

    fn make_raw(&mut self) {
        match self {
            Segment::Event { raw, .. } | Segment::Int { raw, .. } | Segment::NowMs { raw } => {
                *raw = true
            }
            _ => {}
        }
    }

    /// Renders one piece; `json`: inside a JSON string, so text is escaped for one.
    fn render(&self, out: &mut String, fill: &Fill, json: bool) {
        let text = |out: &mut String, value: &str| {
            if json {
                push_escaped(out, value);
            } else {
                out.push_str(value);
            }
        };
        match self {
            Segment::Literal(l) => out.push_str(l),
            Segment::Client => {
                let _ = write!(out, "{}", fill.client);
            }
            Segment::Seq => {
                let _ = write!(out, "{}", fill.seq);
            }
            Segment::Group => text(out, fill.group),
            Segment::Column { set, column } => {
                let set = usize::from(*set);
                if let (Some(data), Some(&row)) = (fill.data.get(set), fill.user.rows.get(set)) {
                    text(out, data.field(row as usize, usize::from(*column)));
                }
            }
            Segment::Var(slot) => {
                if let Some(Some(value)) = fill.user.vars.get(usize::from(*slot)) {
                    text(out, value);
                }
            }
            Segment::Event { pointer, raw } => {
                let found = fill.event.and_then(|event| pointer.read_raw(event));
                match (found, raw) {
                    (Some(value), true) => out.push_str(value),
                    (None, true) => out.push_str("null"),
                    (Some(value), false) => push_value_as_text(out, value, json),
                    (None, false) => {}
                }
            }
            Segment::Uuid => push_uuid(out),
            Segment::NowMs { .. } => {
                let ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis());
                let _ = write!(out, "{ms}");
            }
            Segment::Int { low, high, .. } => {
                let _ = write!(out, "{}", fastrand::i64(*low..=*high));
            }
            Segment::OneOf(choices) => text(out, &choices[fastrand::usize(..choices.len())]),
        }
    }
}

/// Appends `text` escaped for the inside of a JSON string.
pub fn push_escaped(out: &mut String, text: &str) {
    if !text.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// A JSON value's text where text is wanted: a string's content (still escaped inside JSON,
/// unescaped in plain text), anything else as written (escaped inside JSON).
fn push_value_as_text(out: &mut String, value: &str, json: bool) {
    match (
        value.strip_prefix('"').and_then(|v| v.strip_suffix('"')),
        json,
    ) {
        (Some(inner), true) => out.push_str(inner),
        (Some(_), false) => match serde_json::from_str::<String>(value) {
            Ok(text) => out.push_str(&text),
            Err(_) => out.push_str(value),
        },
        (None, true) => push_escaped(out, value),
        (None, false) => out.push_str(value),
    }
}

/// A random (version 4) UUID.
fn push_uuid(out: &mut String) {
    let mut bytes = fastrand::u128(..).to_be_bytes();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        let _ = write!(out, "{b:02x}");
    }
}

/// Whether JSON text ends with the quote that opens a string (not an escaped `\"` inside one).
fn opens_string(text: &str) -> bool {
    let Some(before) = text.strip_suffix('"') else {
        return false;
    };
    let backslashes = before.bytes().rev().take_while(|&b| b == b'\\').count();
    backslashes % 2 == 0
}

fn to_json(value: &toml::Value) -> Result<String, String> {
    serde_json::to_string(value).map_err(|e| format!("data cannot be written as JSON: {e}"))
}

fn json_shape(value: &toml::Value) -> Shape {
    if value.is_table() {
        Shape::Object
    } else {
        Shape::Json
    }
}

mod placeholder;
#[cfg(test)]
mod tests;
