//! What a user writes: message templates (`scenario::template`) and whole scenario files, TOML
//! to a compiled `Plan`.
//!
//! Templates: a template compiles or says why; a JSON one renders JSON whatever the values it
//! is filled with (quotes, backslashes, control characters, a received event's values), with
//! the stamp where the placement says and found again by the stamp decoder, padded to its size.
//! Scenario files: refused with a line and a column inside the file, or compiled into a plan
//! whose scenario, written out as TOML again (what run.json records of it), compiles to the
//! same scenario.

use std::path::Path;

use serde_json::Value;

use super::unstructured::Unstructured;
use crate::protocol::stamp::Stamp;
use crate::scenario::template::{
    EventShape, Fill, Scope, Shape, StampPlacement, Template, UserValues,
};
use crate::scenario::{Plan, ScenarioError, Source};

/// The received event a reply's placeholders read: every kind of JSON value, and strings that
/// need escaping.
const EVENT: &str = r#"{"id":17,"name":"a\"b\\c","nl":"x\ny\u0001","list":[1,{"k":null}],"f":2.5,"t":true,"o":{"a/b":{"m~n":"~"}}}"#;

pub fn check_template(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mode = u.byte();
    let event_shape = [
        None,
        Some(EventShape::Message),
        Some(EventShape::SocketIoArgs),
    ][usize::from(mode >> 2 & 0b11) % 3];
    let placement = [
        None,
        Some(StampPlacement::Field),
        Some(StampPlacement::Prefix),
    ][usize::from(mode >> 4 & 0b11) % 3];
    let pad = (mode & 0x40 != 0).then(|| usize::from(u.byte()) * 4);
    let text = String::from_utf8_lossy(u.rest()).into_owned();
    let vars = ["token".to_string(), "name".to_string()];
    let scope = Scope {
        data: &[],
        vars: &vars,
        event: event_shape,
    };
    let compiled = match mode & 0b11 {
        0 | 1 => {
            let Some(value) = toml_value(&text) else {
                return;
            };
            if mode & 1 == 0 {
                Template::compile(&value, &scope)
            } else {
                Template::compile_arg(&value, &scope)
            }
        }
        _ => Template::text(&text, &scope),
    };
    let mut template = match compiled {
        Ok(template) => template,
        Err(why) => {
            assert!(!why.is_empty(), "an empty reason for refusing {text:?}");
            return;
        }
    };
    if let Some(size) = pad {
        if template.pad_to(size).is_err() {
            assert_eq!(
                template.shape(),
                Shape::Json,
                "only other JSON cannot be padded"
            );
        }
    }
    let user = UserValues {
        rows: Vec::new(),
        vars: vec![Some("q\"uo\\te\n\u{1}é".into()), None],
    };
    let event = match event_shape {
        Some(EventShape::SocketIoArgs) => format!("[\"tick\",{EVENT}]"),
        _ => EVENT.to_string(),
    };
    let fill = Fill {
        client: 7,
        seq: 3,
        group: "ta\"lk\\ers",
        data: &[],
        user: &user,
        event: event_shape.map(|_| event.as_bytes()),
    };
    let stamp = Stamp {
        run: 0x5eed,
        stream: 1,
        client: 7,
        seq: 3,
        origin_ns: u64::MAX,
    };
    let stamp = placement.map(|p| (stamp, p));
    let out = template.render(&fill, stamp);
    check_rendered(&text, &template, stamp, pad, &out);
}

/// `data = VALUE` read as TOML, for the value; `None` when it is no TOML value.
fn toml_value(text: &str) -> Option<toml::Value> {
    toml::from_str::<toml::Table>(&format!("data = {text}"))
        .ok()?
        .remove("data")
}

fn check_rendered(
    text: &str,
    template: &Template,
    stamp: Option<(Stamp, StampPlacement)>,
    pad: Option<usize>,
    out: &str,
) {
    let shape = template.shape();
    let json_expected = match (shape, stamp) {
        (Shape::Text, _) => false,
        (_, None) | (Shape::JsonString, _) => true,
        (Shape::Object, Some((_, placement))) => placement == StampPlacement::Field,
        (Shape::Json, Some(_)) => false,
    };
    if json_expected {
        let parsed: Value = serde_json::from_str(out).unwrap_or_else(|e| {
            panic!("{shape:?} template {text:?} rendered {out:?}, which is not JSON: {e}")
        });
        match shape {
            Shape::Object => assert!(parsed.is_object(), "{text:?} rendered {out:?}"),
            Shape::JsonString => assert!(parsed.is_string(), "{text:?} rendered {out:?}"),
            _ => {}
        }
        if let (Some((stamp, StampPlacement::Field)), Shape::Object) = (stamp, shape) {
            let mut token = String::new();
            stamp.write_token(&mut token);
            assert_eq!(
                parsed["_vly"],
                Value::String(token),
                "the stamp field of {out:?}"
            );
        }
    }
    if let Some((stamp, _)) = stamp {
        assert_eq!(
            Stamp::find(out.as_bytes(), stamp.run),
            Some(stamp),
            "the stamp in {out:?}"
        );
    }
    if let Some(size) = pad.filter(|_| shape != Shape::Json) {
        assert!(out.len() >= size, "{out:?} is not padded to {size} bytes");
    }
}

pub fn check_scenario(data: &[u8]) {
    let path = Path::new("fuzz/scenario.toml");
    let source = match Source::from_bytes(path, data.to_vec()) {
        Ok(source) => source,
        Err(e) => return check_error_position(&String::from_utf8_lossy(data), &e),
    };
    let scenario = match source.parse() {
        Ok(scenario) => scenario,
        Err(e) => return check_error_position(&source.text, &e),
    };
    // Data files are read from disk, which a fuzz body does not do.
    if !scenario.data.is_empty() {
        return;
    }
    let plan = match Plan::compile(scenario, &source) {
        Ok(plan) => plan,
        Err(e) => return check_error_position(&source.text, &e),
    };
    check_recompiles(&source.text, &plan);
}

/// An error points into the file: a line it has, a column within that line or just after it.
fn check_error_position(text: &str, error: &ScenarioError) {
    let ScenarioError::Invalid { line, column, .. } = error else {
        panic!("a file's text refused without a position: {error}");
    };
    let lines: Vec<&str> = text.split('\n').collect();
    assert!(
        (1..=lines.len()).contains(line),
        "line {line} of a {}-line file: {error}",
        lines.len()
    );
    let chars = lines[line - 1].chars().count();
    assert!(
        (1..=chars + 1).contains(column),
        "column {column} of a {chars}-character line: {error}"
    );
}

/// The plan's scenario written as TOML compiles again, to the same scenario.
fn check_recompiles(text: &str, plan: &Plan) {
    let written = toml::to_string(&plan.scenario)
        .unwrap_or_else(|e| panic!("the scenario of {text:?} cannot be written as TOML: {e}"));
    let source = Source::from_bytes(Path::new("fuzz/again.toml"), written.clone().into_bytes())
        .expect("written as UTF-8");
    let again = source
        .parse()
        .and_then(|scenario| Plan::compile(scenario, &source))
        .unwrap_or_else(|e| panic!("{text:?} compiled; written as {written:?} it does not: {e}"));
    let json = |plan: &Plan| serde_json::to_value(&plan.scenario).expect("a scenario is JSON");
    assert_eq!(
        json(&again),
        json(plan),
        "{text:?} written as {written:?} compiles to another scenario"
    );
}
