//! The JSON Schema of scenario files, derived from the types of [`model`](super::model) that the
//! parser reads (`volley schema` prints it; schema/scenario.schema.json is it, committed for
//! editors). Doc comments become descriptions, `deny_unknown_fields` becomes
//! `additionalProperties: false`. Values the model keeps loose for the plan to check (headers,
//! captures, HTTP statuses, thresholds) get their shapes here, as the plan accepts them; values
//! written as text (durations, rates) get theirs in `units`.

use std::borrow::Cow;

use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::Value;

use super::model::Scenario;
use crate::units::DurationText;

mod units;

/// The schema as `volley schema` prints it: pretty JSON and a final newline.
pub fn scenario_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&scenario_schema()).expect("a schema is JSON");
    text.push('\n');
    text
}

/// The schema of a scenario file. Draft 7, the newest that taplo (Even Better TOML) reads; in it
/// a `$ref` ignores its siblings, so a described reference is written `allOf: [{ $ref }]`.
pub fn scenario_schema() -> Schema {
    let mut settings = SchemaSettings::draft07();
    // Before draft 7's own transforms, which move the siblings of a `$ref` this may leave.
    settings
        .transforms
        .insert(0, Box::new(RecursiveTransform(without_null)));
    let generator = settings.into_generator();
    let mut schema = generator.into_root_schema_for::<Scenario>();
    schema.insert("title".into(), "volley scenario".into());
    schema
}

/// TOML has no null, so an optional key is one that may be left out, not one that may be null:
/// drops the `null` that schemars adds to `Option`s.
fn without_null(schema: &mut Schema) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(types)) = object.get_mut("type") {
        types.retain(|t| t != "null");
        if let [single] = types.as_slice() {
            let single = single.clone();
            object.insert("type".into(), single);
        }
    }
    if let Some(Value::Array(values)) = object.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
    for key in ["anyOf", "oneOf"] {
        let Some(Value::Array(branches)) = object.get_mut(key) else {
            continue;
        };
        branches.retain(|b| b.get("type").is_none_or(|t| t != "null"));
        if let [single] = branches.as_slice() {
            let Value::Object(single) = single.clone() else {
                continue;
            };
            object.remove(key);
            for (k, v) in single {
                object.entry(k).or_insert(v);
            }
        }
    }
}

/// The `JsonSchema` of a type below: its name in `definitions` and its schema, written as JSON.
macro_rules! shape {
    ($name:ident, $title:literal, |$generator:ident| $schema:expr) => {
        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                $title.into()
            }

            fn json_schema($generator: &mut SchemaGenerator) -> Schema {
                $schema
            }
        }
    };
}

/// `headers = { Authorization = "Bearer {{token}}" }`: extra HTTP headers.
pub(super) struct Headers;
shape!(Headers, "Headers", |_generator| json_schema!({
    "description": "HTTP headers: NAME = \"value\"; values may hold placeholders (\"Bearer {{token}}\").",
    "type": "object",
    "additionalProperties": { "type": "string" },
}));

/// `capture = { token = "/token" }`: values kept for later templates.
pub(super) struct Captures;
shape!(Captures, "Captures", |_generator| json_schema!({
    "description": "Values to keep for later templates: NAME = \"/json/pointer\", or \"header:NAME\" for a header of an HTTP response.",
    "type": "object",
    "additionalProperties": { "type": "string" },
}));

/// `form = { user = "u1", remember = true }` and `[socketio] query`: text, numbers, booleans.
pub(super) struct ScalarFields;
shape!(ScalarFields, "ScalarFields", |_generator| json_schema!({
    "description": "NAME = a string (placeholders allowed), a number or a boolean.",
    "type": "object",
    "additionalProperties": { "type": ["string", "number", "boolean"] },
}));

/// `json = { user = "{{users.user}}" }`: a JSON body.
pub(super) struct JsonBody;
shape!(JsonBody, "JsonBody", |_generator| json_schema!({
    "description": "The body as JSON: a table or an array; strings may hold placeholders.",
    "type": ["object", "array"],
}));

/// `status = 200` or `status = [200, 201]`.
pub(super) struct StatusCodes;
shape!(StatusCodes, "StatusCodes", |_generator| {
    let code = json_schema!({ "type": "integer", "minimum": 100, "maximum": 599 });
    json_schema!({
        "description": "The status that counts as success (200), or a list of them ([200, 201]); default any 2xx.",
        "anyOf": [code, { "type": "array", "items": code, "minItems": 1 }],
    })
});

/// `[thresholds]`: figure names and their bounds.
pub(super) struct Thresholds;
shape!(Thresholds, "Thresholds", |generator| {
    let bound = generator.subschema_for::<ThresholdBound>();
    json_schema!({
        "description": "The CI gate: FIGURE = \"OP VALUE\" (\"fanout.p99\" = \"< 50ms\"), a table { limit = \"< 50ms\", abort = true }, or a list of either for several bounds on one figure.",
        "type": "object",
        "additionalProperties": {
            "anyOf": [bound, { "type": "array", "items": bound, "minItems": 1 }],
        },
    })
});

/// One bound of `[thresholds]`.
struct ThresholdBound;
shape!(ThresholdBound, "ThresholdBound", |generator| {
    let duration = generator.subschema_for::<DurationText>();
    json_schema!({
        "description": "\"OP VALUE\" (\"< 50ms\", \"== 0\", \"< 0.1%\", \">= 10k\"), or a table with `limit`, `abort` and `abort_after`.",
        "anyOf": [
            { "type": "string" },
            {
                "type": "object",
                "properties": {
                    "limit": { "type": "string", "description": "\"OP VALUE\", like \"< 50ms\"." },
                    "abort": { "type": "boolean", "description": "Stop the run once this bound fails (judged every second)." },
                    "abort_after": {
                        "allOf": [duration],
                        "description": "Judge `abort` only after this much of the run (default 0s).",
                    },
                },
                "required": ["limit"],
                "additionalProperties": false,
            },
        ],
    })
});

#[cfg(test)]
mod tests;
