//! Message templates: the `data` of an emit, compiled once into literal pieces and placeholders so
//! that rendering an event is a single pass into one pre-sized `String`.

use std::fmt::Write;

use crate::protocol::stamp::Stamp;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Client,
    Seq,
    Group,
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

/// A compiled payload template. A TOML table becomes a JSON object, a string stays as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// For JSON objects the text after the opening `{`, for JSON strings the text after the
    /// opening quote, so a stamp can be put first.
    segments: Vec<Segment>,
    shape: Shape,
    literal_len: usize,
    placeholders: usize,
}

/// Where the stamp goes when rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StampPlacement {
    Field,
    Prefix,
}

impl Template {
    /// Compiles a TOML value: a string is sent as written; a table or array is sent as JSON.
    pub fn compile(value: &toml::Value) -> Result<Template, String> {
        match value {
            toml::Value::String(s) => Template::parse(s, false),
            other => Template::with_shape(&to_json(other)?, json_shape(other)),
        }
    }

    /// Compiles a Socket.IO argument: every value is JSON, a string a JSON string literal.
    pub fn compile_arg(value: &toml::Value) -> Result<Template, String> {
        match value {
            toml::Value::String(_) => Template::with_shape(&to_json(value)?, Shape::JsonString),
            other => Template::with_shape(&to_json(other)?, json_shape(other)),
        }
    }

    /// Compiles template text. `is_object` marks JSON object text (starting with `{`).
    pub fn parse(text: &str, is_object: bool) -> Result<Template, String> {
        let shape = if is_object {
            Shape::Object
        } else {
            Shape::Text
        };
        Template::with_shape(text, shape)
    }

    fn with_shape(text: &str, shape: Shape) -> Result<Template, String> {
        let body = match shape {
            Shape::Object => text
                .strip_prefix('{')
                .ok_or_else(|| "a JSON object template must start with `{`".to_string())?,
            Shape::JsonString => text
                .strip_prefix('"')
                .ok_or_else(|| "a JSON string template must start with `\"`".to_string())?,
            Shape::Text | Shape::Json => text,
        };
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
            segments.push(match after[..close].trim() {
                "client" => Segment::Client,
                "seq" => Segment::Seq,
                "group" => Segment::Group,
                other => {
                    return Err(format!(
                        "unknown placeholder `{{{{{other}}}}}`: use {{{{client}}}}, {{{{seq}}}} or {{{{group}}}}"
                    ));
                }
            });
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Literal(rest.to_string()));
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
        })
    }

    /// Whether the payload is a JSON object, where `stamp = "auto"` puts a field.
    pub fn is_object(&self) -> bool {
        self.shape == Shape::Object
    }

    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// An upper bound of the rendered length, so one allocation holds the whole message.
    pub fn capacity(&self, group: &str, stamped: bool) -> usize {
        let stamp = if stamped {
            crate::protocol::stamp::MAX_TOKEN_LEN + 12
        } else {
            0
        };
        1 + self.literal_len + self.placeholders * (20 + group.len()) + stamp
    }

    /// Renders the payload into a new `String`, with the stamp placed where asked.
    pub fn render(
        &self,
        client: u32,
        seq: u64,
        group: &str,
        stamp: Option<(Stamp, StampPlacement)>,
    ) -> String {
        let mut out = String::with_capacity(self.capacity(group, stamp.is_some()));
        self.render_into(&mut out, client, seq, group, stamp);
        out
    }

    /// Renders the payload into `out` (cleared first), so a caller can reuse one buffer.
    pub fn render_into(
        &self,
        out: &mut String,
        client: u32,
        seq: u64,
        group: &str,
        stamp: Option<(Stamp, StampPlacement)>,
    ) {
        out.clear();
        self.render_append(out, client, seq, group, stamp);
    }

    /// Renders the payload at the end of `out`.
    pub fn render_append(
        &self,
        out: &mut String,
        client: u32,
        seq: u64,
        group: &str,
        stamp: Option<(Stamp, StampPlacement)>,
    ) {
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
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Client => {
                    let _ = write!(out, "{client}");
                }
                Segment::Seq => {
                    let _ = write!(out, "{seq}");
                }
                Segment::Group => out.push_str(group),
            }
        }
    }

    fn body_is_empty_object(&self) -> bool {
        matches!(self.segments.as_slice(), [Segment::Literal(l)] if l == "}")
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp() -> Stamp {
        Stamp {
            run: 1,
            stream: 0,
            client: 7,
            seq: 3,
            origin_ns: 255,
        }
    }

    #[test]
    fn text_placeholders_are_filled() {
        let t = Template::parse("hi {{client}} #{{ seq }} from {{group}}", false).unwrap();
        assert_eq!(t.render(7, 3, "talkers", None), "hi 7 #3 from talkers");
    }

    #[test]
    fn tables_become_json_with_the_stamp_first() {
        let value: toml::Value =
            toml::from_str::<toml::Table>("data = { text = \"hi {{client}}\", n = 1 }")
                .unwrap()
                .remove("data")
                .unwrap();
        let t = Template::compile(&value).unwrap();
        let out = t.render(7, 3, "g", Some((stamp(), StampPlacement::Field)));
        assert_eq!(out, r#"{"_vly":"vly:1.0.7.3.ff;","text":"hi 7","n":1}"#);
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed["n"], 1);
        assert!(out.len() <= t.capacity("g", true));
        assert_eq!(t.render(7, 3, "g", None), r#"{"text":"hi 7","n":1}"#);
    }

    #[test]
    fn empty_objects_and_prefixes_stay_well_formed() {
        let t = Template::parse("{}", true).unwrap();
        assert_eq!(
            t.render(7, 3, "g", Some((stamp(), StampPlacement::Field))),
            r#"{"_vly":"vly:1.0.7.3.ff;"}"#
        );
        let t = Template::parse("ping", false).unwrap();
        assert_eq!(
            t.render(7, 3, "g", Some((stamp(), StampPlacement::Prefix))),
            "vly:1.0.7.3.ff;ping"
        );
    }

    #[test]
    fn socketio_arguments_are_json_with_the_stamp_inside_strings() {
        let arg = Template::compile_arg(&toml::Value::String("hi \"{{client}}\"".into())).unwrap();
        assert_eq!(arg.shape(), Shape::JsonString);
        assert_eq!(arg.render(7, 3, "g", None), r#""hi \"7\"""#);
        let out = arg.render(7, 3, "g", Some((stamp(), StampPlacement::Prefix)));
        assert_eq!(out, r#""vly:1.0.7.3.ff;hi \"7\"""#);
        assert_eq!(
            serde_json::from_str::<String>(&out).unwrap(),
            "vly:1.0.7.3.ff;hi \"7\""
        );
        let number = Template::compile_arg(&toml::Value::Integer(5)).unwrap();
        assert_eq!(
            (number.shape(), number.render(0, 0, "g", None).as_str()),
            (Shape::Json, "5")
        );
    }

    #[test]
    fn unknown_or_unclosed_placeholders_are_errors() {
        let err = Template::parse("hi {{user}}", false).unwrap_err();
        assert!(err.contains("unknown placeholder `{{user}}`"), "{err}");
        assert!(Template::parse("hi {{client", false).is_err());
    }
}
