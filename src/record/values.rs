//! What each recorded value becomes in the scenario. A value the server handed out earlier (a
//! token in a login's answer, an id in an acknowledgement) becomes a capture on the step that
//! got it and a `{{name}}` where it is used; a credential (a secret-named field that no answer
//! explains, and the user name beside it) becomes a column of the data file, with the recorded
//! value as its one row (empty where the capture hid it); a value that is new in every message
//! becomes a placeholder (`{{now_ms}}`, `{{uuid}}`); everything else stays as recorded.

use serde_json::Value;

use super::literal::{Literal, TemplateText, literal, with_placeholder};
use crate::secrets::REDACTED;
use crate::secrets::names::is_secret_name;

/// Field names that say who the user is: written to the data file beside a credential.
const IDENTITY: &[&str] = &[
    "user",
    "username",
    "user_name",
    "login",
    "email",
    "mail",
    "account",
    "name",
    "userid",
    "user_id",
    "phone",
];

/// An answer's string this long, or longer, may be a value the client sends back (shorter ones
/// are words: `ok`, `en`).
const MIN_OFFER: usize = 4;
/// An answer's value this long is looked for inside longer texts too (`Bearer <token>`).
const MIN_OFFER_INSIDE: usize = 8;
/// A response header's value this long may be a session id.
const MIN_HEADER_OFFER: usize = 8;
/// A column's value this long is looked for inside other texts (`room-user0`).
const MIN_COLUMN_INSIDE: usize = 3;

/// Where a step's captured value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A JSON pointer into an HTTP body, an acknowledgement's or an awaited event's argument.
    Pointer(String),
    /// A response header.
    Header(String),
}

/// A value an answer carried that a later request may use.
#[derive(Debug, Clone)]
struct Offer {
    /// The step that got it (an index the writer knows).
    step: usize,
    /// When the client had it: seconds from the capture's start.
    at: f64,
    /// The field's name (the last part of the pointer, or the header's name).
    key: String,
    /// What carried it, for the comments: `the answer to entry 3`.
    from: String,
    value: String,
    source: Source,
    /// Its capture name, once something used it.
    used: Option<String>,
}

/// A column of the data file.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    /// The recorded value; empty where the capture hid it.
    pub value: String,
}

/// The values of one conversation, collected while it is read in order.
#[derive(Debug, Default)]
pub struct Values {
    offers: Vec<Offer>,
    /// When what is templated now was sent: offers of steps at or after it are not used. None:
    /// every offer is.
    horizon: Option<f64>,
    pub columns: Vec<Column>,
    /// What was generalised and why, for the scenario's comments.
    pub notes: Vec<String>,
}

impl Values {
    /// Offers the string (and long number) leaves of `json`, an answer step `step` got, under
    /// JSON pointers from `base` (`""` for the whole body).
    pub fn offer_json(&mut self, step: usize, at: f64, from: &str, json: &Value) {
        let mut leaves = Vec::new();
        leaves_of(json, String::new(), &mut leaves);
        for (pointer, value) in leaves {
            let text = match &value {
                Value::String(s) => s.clone(),
                _ => continue,
            };
            if text.chars().count() < MIN_OFFER && text != REDACTED {
                continue;
            }
            let key = last_key(&pointer);
            self.offers.push(Offer {
                step,
                at,
                key,
                from: from.to_string(),
                value: text,
                source: Source::Pointer(pointer),
                used: None,
            });
        }
    }

    /// Offers the first argument of an answer (an acknowledgement, an awaited message).
    pub fn offer_args(&mut self, step: usize, at: f64, from: &str, args: &[Value]) {
        if let Some(first) = args.first() {
            self.offer_json(step, at, from, first);
        }
    }

    /// Offers a response header's value (not cookies: the jar has them).
    pub fn offer_header(&mut self, step: usize, at: f64, from: &str, name: &str, value: &str) {
        let lower = name.to_ascii_lowercase();
        if value.len() < MIN_HEADER_OFFER
            || lower == "set-cookie"
            || !(lower.starts_with("x-") || is_secret_name(&lower))
            || http::HeaderName::from_bytes(lower.as_bytes()).is_err()
        {
            return;
        }
        self.offers.push(Offer {
            step,
            at,
            key: lower.clone(),
            from: from.to_string(),
            value: value.to_string(),
            source: Source::Header(lower),
            used: None,
        });
    }

    /// What is templated next was sent at `at` (seconds from the capture's start): it uses
    /// only the values answers carried to steps before it, which a replay has captured by
    /// then. `f64::INFINITY` for what runs all along (replies).
    pub fn sent_at(&mut self, at: f64) {
        self.horizon = Some(at);
    }

    fn visible(&self, offer: &Offer) -> bool {
        self.horizon.is_none_or(|horizon| offer.at < horizon)
    }

    /// The captures step `step` must make: name and source, in the order they were used.
    pub fn captures_of(&self, step: usize) -> Vec<(String, Source)> {
        self.offers
            .iter()
            .filter(|o| o.step == step)
            .filter_map(|o| Some((o.used.clone()?, o.source.clone())))
            .collect()
    }

    /// The template for string `value` of field `key` (empty: none) in something the client sent.
    /// In this order: a value the capture hid; a value an answer carried (a capture); a
    /// secret-named value (a column of the data file); a value that holds a column's (the user
    /// name inside a room's name); a value new in every message (a placeholder); else itself,
    /// written so that the template renders it as recorded.
    pub fn string(&mut self, key: &str, value: &str) -> String {
        self.string_as(key, value, Literal::Text)
    }

    /// [`Values::string`], its literal text written `how` (percent-encoded in a query).
    pub fn string_as(&mut self, key: &str, value: &str, how: Literal) -> String {
        if value == REDACTED {
            return self.hidden(key);
        }
        if let Some(i) = self.offer_in(value) {
            let name = self.use_offer(i);
            let offered = self.offers[i].value.clone();
            return with_placeholder(value, &offered, &format!("{{{{{name}}}}}"), how);
        }
        if is_secret_name(key) && !value.is_empty() {
            return self.column(key, value);
        }
        for column in &self.columns {
            if column.value.chars().count() >= MIN_COLUMN_INSIDE && value.contains(&column.value) {
                let placeholder = format!("{{{{users.{}}}}}", column.name);
                return with_placeholder(value, &column.value, &placeholder, how);
            }
        }
        if let Some(placeholder) = generated(value) {
            return placeholder.to_string();
        }
        self.secrets_in_text(value, how)
    }

    /// A text message that is not JSON (`PASS x`, `passcode:x`, `token=x`): the values after
    /// secret names become columns.
    fn secrets_in_text(&mut self, text: &str, how: Literal) -> String {
        let mut template = TemplateText::default();
        // `PASS secret` (FTP, IRC, POP3): the word after a secret command word.
        if let Some((command, word)) = text.trim_end().split_once(' ') {
            if is_secret_name(command) && !word.is_empty() && !word.contains(' ') {
                let placeholder = self.column(command, word);
                template.literal(&format!("{command} "), how);
                template.placeholder(&placeholder);
                return template.finish();
            }
        }
        let mut rest = text;
        while let Some(at) = rest.find([':', '=']) {
            let before = &rest[..at];
            let name_start = before
                .char_indices()
                .rev()
                .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
                .map_or(0, |(i, c)| i + c.len_utf8());
            let name = &before[name_start..];
            let after = &rest[at + 1..];
            let value_len = after
                .find(|c: char| c.is_whitespace() || matches!(c, '&' | ';' | ',' | '"' | '\''))
                .unwrap_or(after.len());
            template.literal(&rest[..=at], how);
            if !name.is_empty() && value_len > 0 && is_secret_name(name) {
                let placeholder = self.column(name, &after[..value_len]);
                template.placeholder(&placeholder);
                rest = &after[value_len..];
            } else {
                rest = after;
            }
        }
        template.literal(rest, how);
        template.finish()
    }

    /// A credential: a column of the data file, with the recorded value.
    /// Two different values of one name (a `Basic` and a `Bearer` authorization) get columns of
    /// their own.
    pub fn column(&mut self, key: &str, value: &str) -> String {
        let value = if value == REDACTED { "" } else { value };
        let base = identifier(key);
        let mut name = base.clone();
        let mut k = 2;
        loop {
            match self.columns.iter().find(|c| c.name == name) {
                Some(c) if c.value == value => break,
                Some(_) => {
                    name = format!("{base}{k}");
                    k += 1;
                }
                None => {
                    self.columns.push(Column {
                        name: name.clone(),
                        value: value.to_string(),
                    });
                    break;
                }
            }
        }
        format!("{{{{users.{name}}}}}")
    }

    /// A value the capture hid: the answer's hidden value of the same name, else a column left
    /// empty for the user to fill in.
    fn hidden(&mut self, key: &str) -> String {
        let wanted = identifier(key);
        let found = self
            .offers
            .iter()
            .rposition(|o| identifier(&o.key) == wanted && o.value == REDACTED && self.visible(o))
            .or_else(|| {
                // `Authorization: [redacted]` and one hidden token: the token, as a bearer.
                let hidden: Vec<usize> = (0..self.offers.len())
                    .filter(|&i| self.offers[i].value == REDACTED && self.visible(&self.offers[i]))
                    .collect();
                (wanted == "authorization" && hidden.len() == 1).then(|| hidden[0])
            });
        match found {
            Some(i) => {
                let name = self.use_offer(i);
                if wanted == "authorization" {
                    self.notes.push(format!(
                        "The capture hid the Authorization header; it is written as `Bearer {{{{{name}}}}}`, \
                         the one hidden value an answer carried: check the scheme."
                    ));
                    format!("Bearer {{{{{name}}}}}")
                } else {
                    format!("{{{{{name}}}}}")
                }
            }
            None => {
                let column = self.column(key, REDACTED);
                self.notes.push(format!(
                    "The capture hid `{key}` and no answer carried it: it is column `{}` of the data \
                     file, left empty; fill it in (or capture again with --show-secrets).",
                    identifier(key)
                ));
                column
            }
        }
    }

    /// The offer whose value `value` holds (the longest, the latest).
    fn offer_in(&self, value: &str) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, offer) in self.offers.iter().enumerate() {
            let o = &offer.value;
            if o == REDACTED || o.chars().count() < MIN_OFFER || !self.visible(offer) {
                continue;
            }
            let whole = value == o;
            let inside = o.chars().count() >= MIN_OFFER_INSIDE && value.contains(o.as_str());
            if (whole || inside) && best.is_none_or(|b| self.offers[b].value.len() <= o.len()) {
                best = Some(i);
            }
        }
        best
    }

    /// Marks an offer used; its capture name, unique among the captures.
    fn use_offer(&mut self, i: usize) -> String {
        if let Some(name) = &self.offers[i].used {
            return name.clone();
        }
        let base = identifier(&self.offers[i].key);
        let taken = |n: &str| self.offers.iter().any(|o| o.used.as_deref() == Some(n));
        let mut name = base.clone();
        let mut k = 2;
        // Builtin placeholders and the data set are not capture names.
        const RESERVED: &[&str] = &["client", "seq", "group", "uuid", "now_ms", "users"];
        while taken(&name) || RESERVED.contains(&name.as_str()) {
            name = format!("{base}{k}");
            k += 1;
        }
        self.offers[i].used = Some(name.clone());
        let offer = &self.offers[i];
        let source = match &offer.source {
            Source::Pointer(p) => format!("at `{p}`"),
            Source::Header(h) => format!("in header `{h}`"),
        };
        let hidden = if offer.value == REDACTED {
            " (hidden in the capture; matched by its name)"
        } else {
            ""
        };
        self.notes.push(format!(
            "`{{{{{name}}}}}` is captured from {} {source}{hidden}: the client later sent the value it carried.",
            offer.from
        ));
        name
    }

    /// `json` with every string leaf templated: what a client sent. The siblings of a
    /// credential that name the user become columns too.
    pub fn json(&mut self, json: &Value) -> Value {
        self.json_under(json, "")
    }

    fn json_under(&mut self, json: &Value, key: &str) -> Value {
        match json {
            Value::Object(map) => {
                let credential = map.iter().any(|(k, v)| {
                    is_secret_name(k)
                        && match v {
                            Value::String(s) => self.explains(s).is_none(),
                            Value::Number(_) => true,
                            _ => false,
                        }
                });
                let mut out = serde_json::Map::new();
                for (k, v) in map {
                    let identity = IDENTITY.contains(&k.to_ascii_lowercase().as_str());
                    let value = match v {
                        Value::String(s) if credential && identity => {
                            Value::String(self.column(k, s))
                        }
                        // A secret number (a PIN) is a column too, sent as text.
                        Value::Number(n) if is_secret_name(k) || (credential && identity) => {
                            self.notes.push(format!(
                                "`{k}` is a number the user sent beside its credentials: it is a column of the data file, and a column is sent as a string."
                            ));
                            Value::String(self.column(k, &n.to_string()))
                        }
                        _ => self.json_under(v, k),
                    };
                    // A key is template text too.
                    out.insert(literal(k, Literal::Text), value);
                }
                Value::Object(out)
            }
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.json_under(v, key)).collect())
            }
            Value::String(s) => Value::String(self.string(key, s)),
            Value::Number(n) => match n.as_u64().and_then(generated_number) {
                Some(placeholder) => Value::String(placeholder.to_string()),
                None if n.is_u64() && n.as_i64().is_none() => {
                    self.notes.push(format!(
                        "{} is {n}, larger than a TOML integer can be: it is sent as a string.",
                        field(key)
                    ));
                    json.clone()
                }
                None => json.clone(),
            },
            Value::Null => {
                self.notes.push(format!(
                    "{} is null in the recording; TOML has no null, so it is sent as an empty string.",
                    field(key)
                ));
                json.clone()
            }
            other => other.clone(),
        }
    }

    /// Whether an answer carried `value` (so it is not a credential).
    fn explains(&self, value: &str) -> Option<usize> {
        if value == REDACTED {
            return None;
        }
        self.offer_in(value)
    }
}

/// A field for a note: `` `name` ``, or "a value" when it has no name (an array's item).
fn field(key: &str) -> String {
    if key.is_empty() {
        "A value".into()
    } else {
        format!("`{key}`")
    }
}

/// A placeholder for a value that is new in every message, by its look.
pub fn generated(value: &str) -> Option<&'static str> {
    if is_uuid(value) {
        return Some("{{uuid}}");
    }
    None
}

/// A placeholder for a number that is new in every message: a time in epoch milliseconds.
pub fn generated_number(n: u64) -> Option<&'static str> {
    // 2017-07 .. 2065: a time in milliseconds, as `Date.now()` gives.
    (1_500_000_000_000..3_000_000_000_000)
        .contains(&n)
        .then_some("{{now_ms}}")
}

pub fn is_uuid(value: &str) -> bool {
    let b = value.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Every leaf of `json` with its JSON pointer.
pub fn leaves_of(json: &Value, pointer: String, out: &mut Vec<(String, Value)>) {
    match json {
        Value::Object(map) => {
            for (k, v) in map {
                let escaped = k.replace('~', "~0").replace('/', "~1");
                leaves_of(v, format!("{pointer}/{escaped}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                leaves_of(v, format!("{pointer}/{i}"), out);
            }
        }
        leaf => out.push((pointer, leaf.clone())),
    }
}

/// The last part of a JSON pointer, unescaped (`/user/token` is `token`).
pub fn last_key(pointer: &str) -> String {
    pointer
        .rsplit('/')
        .next()
        .unwrap_or("")
        .replace("~1", "/")
        .replace("~0", "~")
}

/// A name usable as a capture or a column: letters, digits and `_`, lower-case, not empty.
pub fn identifier(key: &str) -> String {
    let mut out = String::new();
    let mut last_lower = false;
    for c in key.chars() {
        if c.is_ascii_uppercase() && last_lower {
            out.push('_');
        }
        last_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    let out = out.trim_end_matches('_').to_string();
    match out.chars().next() {
        None => "value".into(),
        Some(c) if c.is_ascii_digit() => format!("v{out}"),
        Some(_) => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_token_from_an_answer_is_captured_and_credentials_become_columns() {
        let mut values = Values::default();
        let login = values.json(&json!({"user": "user0", "password": "pw0"}));
        assert_eq!(
            login,
            json!({"user": "{{users.user}}", "password": "{{users.password}}"})
        );
        values.offer_json(
            0,
            0.0,
            "the login",
            &json!({"token": "abcdef0123456789", "user": "user0"}),
        );
        let auth = values.json(&json!({"token": "abcdef0123456789"}));
        assert_eq!(auth, json!({"token": "{{token}}"}));
        assert_eq!(
            values.string("authorization", "Bearer abcdef0123456789"),
            "Bearer {{token}}"
        );
        assert_eq!(values.string("room", "room-user0"), "room-{{users.user}}");
        assert_eq!(values.string("text", "hello"), "hello");
        assert_eq!(
            values.captures_of(0),
            vec![("token".to_string(), Source::Pointer("/token".into()))]
        );
        assert_eq!(
            values.columns,
            vec![
                Column {
                    name: "user".into(),
                    value: "user0".into()
                },
                Column {
                    name: "password".into(),
                    value: "pw0".into()
                }
            ]
        );
    }

    #[test]
    fn hidden_values_are_matched_by_name_or_left_as_empty_columns() {
        let mut values = Values::default();
        let login = values.json(&json!({"user": "user0", "password": REDACTED}));
        assert_eq!(
            login,
            json!({"user": "{{users.user}}", "password": "{{users.password}}"})
        );
        assert_eq!(values.columns[1].value, "");
        values.offer_json(0, 0.0, "the login", &json!({"token": REDACTED}));
        assert_eq!(
            values.json(&json!({"token": REDACTED})),
            json!({"token": "{{token}}"})
        );
        assert_eq!(values.string("Authorization", REDACTED), "Bearer {{token}}");
        assert_eq!(values.string("apiKey", REDACTED), "{{users.api_key}}");
    }

    #[test]
    fn a_response_header_whose_name_http_does_not_allow_is_not_captured() {
        let mut values = Values::default();
        values.offer_header(0, 0.0, "the login", "X-Ti\u{fffd}cket", "tkt-aa11bb22cc33");
        values.offer_header(0, 0.0, "the login", "X-Ticket", "tkt-99887766");
        assert_eq!(values.string("t", "tkt-aa11bb22cc33"), "tkt-aa11bb22cc33");
        assert_eq!(values.string("t", "tkt-99887766"), "{{x_ticket}}");
    }

    #[test]
    fn values_new_in_every_message_become_placeholders() {
        let mut values = Values::default();
        let sent = values.json(&json!({"at": 1_796_644_800_250u64, "id": "123e4567-e89b-12d3-a456-426614174000", "n": 3}));
        assert_eq!(sent, json!({"at": "{{now_ms}}", "id": "{{uuid}}", "n": 3}));
        assert_eq!(identifier("X-Session-Id"), "x_session_id");
        assert_eq!(identifier("accessToken"), "access_token");
        assert_eq!(identifier("9lives"), "v9lives");
    }
}
