//! The secrets of a JSON document written for people: the resolved scenario that run.json keeps
//! (and report.html shows). A file meant to be shared must not carry the credentials its run
//! used, so the rules of records apply to it too:
//!
//! - a value under a secret name (`auth`, `token`, `password`, a `[socketio] query` key such as
//!   `access_token`) reads `[redacted]`, whatever it is (a table of auth is hidden whole);
//! - under `headers`, each header as records show it (`Authorization`, `Cookie`, the tokens of
//!   `Sec-WebSocket-Protocol`);
//! - in every string, secret query values (`target = "ws://host/?token=..."`, an HTTP step's path);
//! - `capture` and `thresholds` tables are kept: their keys name values and metrics, not secrets.

use serde_json::Value;

use super::{REDACTED, SecretRules};

/// Tables whose keys are names, not places of secrets.
const NAME_TABLES: &[&str] = &["capture", "thresholds"];

impl SecretRules {
    /// Hides the secrets of `doc` (see the module's doc); nothing with `--show-secrets`.
    pub fn redact_document(&self, doc: &mut Value) {
        if self.show() {
            return;
        }
        match doc {
            Value::String(text) => {
                if let std::borrow::Cow::Owned(redacted) = self.redact_query(text, None) {
                    *text = redacted;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_document(v)),
            Value::Object(map) => {
                for (key, value) in map.iter_mut() {
                    if NAME_TABLES.contains(&key.as_str()) {
                        continue;
                    }
                    if self.is_secret_key(key) {
                        *value = REDACTED.into();
                    } else if key == "headers" {
                        self.redact_headers(value);
                    } else {
                        self.redact_document(value);
                    }
                }
            }
            _ => {}
        }
    }

    fn redact_headers(&self, headers: &mut Value) {
        let Value::Object(map) = headers else {
            return self.redact_document(headers);
        };
        for (name, value) in map.iter_mut() {
            match value {
                Value::String(text) => {
                    let shown = self.redact_header(name, text, None).into_owned();
                    *text = shown;
                }
                other => self.redact_document(other),
            }
        }
    }
}
