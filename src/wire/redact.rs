//! The last pass over a record before it leaves for the writer: secrets hidden in every text it
//! carries, by the rules of [`crate::secrets`]. Decoding has already hidden what only it can
//! recognise (Socket.IO CONNECT auth, the recovery `pid`, secret headers); this pass hides secret
//! query values (in the request target, in payloads and details that quote a URL) and every value
//! the connection knows to be secret: one hidden earlier (a query token, a subprotocol token),
//! or one its user holds (a captured token, a password column, for a run's frame log).

use super::record::Record;
use crate::secrets::{SecretRules, SecretValues};

/// Hides the secrets of `record`; values hidden by a rule are added to `known`.
pub fn redact_record(rules: &SecretRules, known: &mut SecretValues, record: &mut Record) {
    if rules.show() {
        return;
    }
    // The target first: a query value hidden there is then hidden everywhere else too.
    for field in [
        &mut record.target,
        &mut record.upstream,
        &mut record.text,
        &mut record.close_reason,
        &mut record.detail,
    ]
    .into_iter()
    .flatten()
    {
        if let std::borrow::Cow::Owned(shown) = rules.redact_query(field, Some(known)) {
            *field = shown;
        }
    }
    if known.is_empty() {
        return;
    }
    for field in [
        &mut record.target,
        &mut record.text,
        &mut record.close_reason,
        &mut record.detail,
    ]
    .into_iter()
    .flatten()
    {
        known.scrub(field);
    }
    if let Some(hex) = &mut record.hex {
        known.scrub_hex(hex);
    }
    if let Some(sio) = &mut record.sio {
        if let Some(event) = &mut sio.event {
            known.scrub(event);
        }
        if let Some(args) = &mut sio.args {
            known.scrub_json(args);
        }
    }
    if let Some(headers) = &mut record.headers {
        for value in headers.values_mut() {
            known.scrub_json(value);
        }
    }
}
