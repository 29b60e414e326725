//! Placeholders resolved by name when a template is compiled: the builtin ones, generated
//! values (`int(..)`, `one_of(..)`), data columns, captured values and pointers into a received
//! event; an unknown name is an error that lists what exists.

use super::{EventShape, Scope, Segment};
use crate::protocol::pointer::JsonPointer;

/// Resolves the text between `{{` and `}}`.
pub(super) fn resolve(name: &str, scope: &Scope, json: bool) -> Result<Segment, String> {
    match name {
        "client" => return Ok(Segment::Client),
        "seq" => return Ok(Segment::Seq),
        "group" => return Ok(Segment::Group),
        "uuid" => return Ok(Segment::Uuid),
        "now_ms" => return Ok(Segment::NowMs { raw: false }),
        _ => {}
    }
    if name.starts_with('/') {
        // In JSON text the pointer was escaped with the string it sits in.
        let unescaped;
        let text = if json {
            unescaped = serde_json::from_str::<String>(&format!("\"{name}\""))
                .map_err(|_| format!("`{{{{{name}}}}}` is not a valid JSON pointer"))?;
            unescaped.as_str()
        } else {
            name
        };
        let pointer = JsonPointer::parse(text)
            .ok_or_else(|| format!("`{{{{{name}}}}}` is not a valid JSON pointer"))?;
        let pointer = match scope.event {
            None => {
                return Err(format!(
                    "`{{{{{name}}}}}` reads a received event: only replies in [[group.on]] have one"
                ));
            }
            Some(EventShape::Message) => pointer,
            Some(EventShape::SocketIoArgs) => pointer.under_index(1),
        };
        return Ok(Segment::Event {
            pointer,
            raw: false,
        });
    }
    if let Some(args) = call(name, "int") {
        let bounds: Vec<&str> = args.split(',').map(str::trim).collect();
        let parsed: Vec<Option<i64>> = bounds.iter().map(|b| b.parse().ok()).collect();
        return match parsed.as_slice() {
            [Some(low), Some(high)] if low <= high => Ok(Segment::Int {
                low: *low,
                high: *high,
                raw: false,
            }),
            _ => Err(format!(
                "`{{{{{name}}}}}`: write int(LOW, HIGH) with whole numbers, LOW <= HIGH"
            )),
        };
    }
    if let Some(args) = call(name, "one_of") {
        let choices: Vec<String> = args.split(',').map(|c| c.trim().to_string()).collect();
        if choices.iter().any(String::is_empty) {
            return Err(format!(
                "`{{{{{name}}}}}`: write one_of(a, b, c) with non-empty choices"
            ));
        }
        return Ok(Segment::OneOf(choices));
    }
    if let Some((set_name, column_name)) = name.split_once('.') {
        let Some(set) = scope.data.iter().position(|d| d.name() == set_name) else {
            let known: Vec<&str> = scope.data.iter().map(|d| d.name()).collect();
            return Err(format!(
                "`{{{{{name}}}}}`: no data set `{set_name}` ({})",
                known_list("data sets", &known)
            ));
        };
        let data = &scope.data[set];
        let Some(column) = data.column(column_name) else {
            let known: Vec<&str> = data.columns().iter().map(String::as_str).collect();
            return Err(format!(
                "`{{{{{name}}}}}`: data set `{set_name}` has no column `{column_name}` ({})",
                known_list("columns", &known)
            ));
        };
        return Ok(Segment::Column {
            set: set as u16,
            column: column as u16,
        });
    }
    if let Some(slot) = scope.vars.iter().position(|v| v == name) {
        return Ok(Segment::Var(slot as u16));
    }
    Err(format!(
        "unknown placeholder `{{{{{name}}}}}`: use {{{{client}}}}, {{{{seq}}}}, {{{{group}}}}, \
         {{{{uuid}}}}, {{{{now_ms}}}}, {{{{int(1, 10)}}}}, {{{{one_of(a, b)}}}}, a data column \
         {{{{SET.COLUMN}}}}, a captured value{}",
        if scope.vars.is_empty() {
            " (none is captured in this scenario)".to_string()
        } else {
            format!(" ({})", scope.vars.join(", "))
        }
    ))
}

/// `int(1, 2)` -> `1, 2` for function `int`.
fn call<'n>(name: &'n str, function: &str) -> Option<&'n str> {
    name.strip_prefix(function)?
        .trim_start()
        .strip_prefix('(')?
        .strip_suffix(')')
}

fn known_list(what: &str, names: &[&str]) -> String {
    if names.is_empty() {
        format!("there are no {what}")
    } else {
        format!("{what}: {}", names.join(", "))
    }
}
