//! What counts as a secret, and how it is hidden wherever volley writes down what it saw: the
//! records of `volley inspect`, `volley tap` and `--log-frames`, errors.csv, run.json and the
//! messages that name a URL. Pure text rules, no I/O; docs/inspect-and-tap.md#secrets states them
//! for users.
//!
//! - [`names`]: when a name (a query key, a header, a captured value, a data column) is secret;
//! - [`text`]: query values in URLs and in free text, `Sec-WebSocket-Protocol` entries, headers;
//! - [`values`]: known secret values (a user's token, a query value seen) scrubbed from text;
//! - [`json`]: the secrets of a JSON document (the resolved scenario run.json keeps);
//! - [`fields`]: the values of secret members and fields in HTTP bodies (JSON, forms), and the
//!   leaves of a Socket.IO CONNECT's auth.

pub mod fields;
pub mod json;
pub mod names;
pub mod text;
pub mod values;

use std::borrow::Cow;
use std::sync::Arc;

pub use names::is_secret_name;
pub use values::SecretValues;

/// What replaces a secret in every output.
pub const REDACTED: &str = "[redacted]";

/// Whether secrets are hidden, and the names the user made secret besides the name rule
/// (`--secret NAME`). Cheap to clone: the names are shared.
#[derive(Debug, Clone, Default)]
pub struct SecretRules {
    show: bool,
    extra_names: Arc<[Box<str>]>,
}

impl SecretRules {
    /// Secrets hidden; `extra_names` are secret besides those of the name rule, wherever a name
    /// decides: query keys, header names, JSON members and form fields.
    pub fn hidden(extra_names: &[String]) -> SecretRules {
        SecretRules {
            show: false,
            extra_names: extra_names.iter().map(|k| k.as_str().into()).collect(),
        }
    }

    /// What `--show-secrets` and `--secret NAME...` ask for.
    pub fn new(show: bool, extra_names: &[String]) -> SecretRules {
        match show {
            true => SecretRules::shown(),
            false => SecretRules::hidden(extra_names),
        }
    }

    /// `--show-secrets`: nothing is hidden.
    pub fn shown() -> SecretRules {
        SecretRules {
            show: true,
            extra_names: Arc::from([]),
        }
    }

    /// True with `--show-secrets`: every rule here leaves text as it is.
    pub fn show(&self) -> bool {
        self.show
    }

    /// Whether the value under `key` (a query key, a JSON member, a form field, a key of a
    /// document) is secret: a secret name, or a name the user gave (compared without regard to
    /// case).
    pub fn is_secret_key(&self, key: &str) -> bool {
        is_secret_name(key) || self.is_user_named(key)
    }

    /// Whether the user named `name` secret (`--secret NAME`).
    fn is_user_named(&self, name: &str) -> bool {
        self.extra_names
            .iter()
            .any(|k| k.eq_ignore_ascii_case(name))
    }

    /// `text` (a URL, a request target, an error message) with the values of secret query
    /// parameters hidden; what was hidden is added to `learned` when given.
    pub fn redact_query<'t>(
        &self,
        text: &'t str,
        learned: Option<&mut SecretValues>,
    ) -> Cow<'t, str> {
        if self.show {
            return Cow::Borrowed(text);
        }
        text::redact_query(text, |key| self.is_secret_key(key), learned)
    }

    /// The value of header `name` as records show it (see [`text::redact_header`]); a header the
    /// user named is hidden whole.
    pub fn redact_header<'v>(
        &self,
        name: &str,
        value: &'v str,
        learned: Option<&mut SecretValues>,
    ) -> Cow<'v, str> {
        if self.show {
            return Cow::Borrowed(value);
        }
        if self.is_user_named(name) {
            return Cow::Borrowed(REDACTED);
        }
        text::redact_header(name, value, |key| self.is_secret_key(key), learned)
    }

    /// An error message or detail with secret query values and the given known values hidden.
    pub fn redact_message<'a>(
        &self,
        message: String,
        known: impl IntoIterator<Item = &'a str>,
    ) -> String {
        if self.show {
            return message;
        }
        let mut message = match self.redact_query(&message, None) {
            Cow::Borrowed(_) => message,
            Cow::Owned(redacted) => redacted,
        };
        values::scrub_each(&mut message, known);
        message
    }
}

#[cfg(test)]
mod tests;
