//! `--filter` (what is printed and logged) and `--fault-filter` (which frames faults may hit):
//! `KEY=VALUE[|VALUE...]` terms joined by commas, all of which must hold, e.g.
//! `dir=s2c,event=chat|typing`. Keys: `dir` (c2s, s2c), `opcode` (text, binary, close, ping,
//! pong, continuation), `event` (Socket.IO event name), `type` (Socket.IO packet type, e.g. EVENT,
//! ACK), `eio` (Engine.IO packet type, e.g. ping) and `conn` (ids or ranges: `3`, `1..5`). A record
//! without the field a term names (an HTTP request has no opcode) does not match that term.

use std::ops::RangeInclusive;
use std::str::FromStr;

use super::record::{Dir, Record};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad filter {text:?} at column {column}: {message}")]
pub struct FilterError {
    pub text: String,
    /// 1-based position of the offending term in the text.
    pub column: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Dir(Dir),
    Opcode(Vec<String>),
    Event(Vec<String>),
    Type(Vec<String>),
    Eio(Vec<String>),
    Conn(Vec<RangeInclusive<u64>>),
}

/// A conjunction of terms; the empty filter matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    terms: Vec<Term>,
}

const OPCODES: [&str; 6] = ["text", "binary", "close", "ping", "pong", "continuation"];
const SIO_TYPES: [&str; 8] = [
    "CONNECT",
    "DISCONNECT",
    "EVENT",
    "ACK",
    "CONNECT_ERROR",
    "BINARY_EVENT",
    "BINARY_ACK",
    "ATTACHMENT",
];
const EIO_TYPES: [&str; 8] = [
    "open", "close", "ping", "pong", "message", "upgrade", "noop", "binary",
];

impl FromStr for Filter {
    type Err = FilterError;

    fn from_str(text: &str) -> Result<Filter, FilterError> {
        let mut terms = Vec::new();
        let mut column = 1;
        for part in text.split(',') {
            let err = |message: String| FilterError {
                text: text.to_string(),
                column,
                message,
            };
            let trimmed = part.trim();
            let (key, value) = trimmed.split_once('=').ok_or_else(|| {
                err("expected KEY=VALUE (keys: dir, opcode, event, type, eio, conn)".into())
            })?;
            let values: Vec<&str> = value.split('|').map(str::trim).collect();
            if values.iter().any(|v| v.is_empty()) {
                return Err(err(format!("`{key}` needs a value")));
            }
            let one_of = |allowed: &[&str], case_insensitive: bool| {
                values
                    .iter()
                    .map(|v| {
                        allowed
                            .iter()
                            .find(|a| {
                                if case_insensitive {
                                    a.eq_ignore_ascii_case(v)
                                } else {
                                    *a == v
                                }
                            })
                            .map(|a| a.to_string())
                            .ok_or_else(|| {
                                err(format!(
                                    "unknown {key} {v:?}: one of {}",
                                    allowed.join(", ")
                                ))
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()
            };
            let term = match key.trim() {
                "dir" => match value.trim() {
                    "c2s" | "up" => Term::Dir(Dir::C2s),
                    "s2c" | "down" => Term::Dir(Dir::S2c),
                    other => return Err(err(format!("unknown dir {other:?}: c2s or s2c"))),
                },
                "opcode" => Term::Opcode(one_of(&OPCODES, true)?),
                "type" => Term::Type(one_of(&SIO_TYPES, true)?),
                "eio" => Term::Eio(one_of(&EIO_TYPES, true)?),
                "event" => Term::Event(values.iter().map(|v| v.to_string()).collect()),
                "conn" => Term::Conn(
                    values
                        .iter()
                        .map(|v| {
                            parse_range(v)
                                .ok_or_else(|| err(format!("bad conn {v:?}: a number or FROM..TO")))
                        })
                        .collect::<Result<_, _>>()?,
                ),
                other => {
                    return Err(err(format!(
                        "unknown key {other:?} (keys: dir, opcode, event, type, eio, conn)"
                    )));
                }
            };
            terms.push(term);
            // Columns count characters, as the terminal shows them.
            column += part.chars().count() + 1;
        }
        Ok(Filter { terms })
    }
}

fn parse_range(text: &str) -> Option<RangeInclusive<u64>> {
    match text.split_once("..") {
        Some((from, to)) => {
            let from = from.parse().ok()?;
            let to = to.strip_prefix('=').unwrap_or(to).parse().ok()?;
            (from <= to).then_some(from..=to)
        }
        None => text.parse().ok().map(|n| n..=n),
    }
}

impl Filter {
    /// All the terms of several `--filter` options.
    pub fn all(filters: &[Filter]) -> Filter {
        Filter {
            terms: filters.iter().flat_map(|f| f.terms.clone()).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    pub fn matches(&self, record: &Record) -> bool {
        self.terms.iter().all(|term| match term {
            Term::Dir(dir) => record.dir == Some(*dir),
            Term::Opcode(names) => record.opcode.is_some_and(|o| names.iter().any(|n| n == o)),
            Term::Event(names) => record
                .sio
                .as_ref()
                .and_then(|s| s.event.as_deref())
                .is_some_and(|e| names.iter().any(|n| n == e)),
            Term::Type(names) => record
                .sio
                .as_ref()
                .is_some_and(|s| names.iter().any(|n| n == s.kind)),
            Term::Eio(names) => record.eio.is_some_and(|e| names.iter().any(|n| n == e)),
            Term::Conn(ranges) => ranges.iter().any(|r| r.contains(&record.conn)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::record::{RecordKind, SocketIoFields};

    fn chat(dir: Dir, conn: u64) -> Record {
        Record {
            conn,
            dir: Some(dir),
            kind: RecordKind::Frame,
            opcode: Some("text"),
            eio: Some("message"),
            sio: Some(SocketIoFields {
                kind: "EVENT",
                nsp: "/".into(),
                event: Some("chat".into()),
                id: None,
                args: None,
                attachments: None,
            }),
            ..Record::default()
        }
    }

    #[test]
    fn every_term_must_hold_and_alternatives_are_ored() {
        let f: Filter = "dir=s2c, event=chat|typing, conn=2..4".parse().unwrap();
        assert!(f.matches(&chat(Dir::S2c, 3)));
        assert!(!f.matches(&chat(Dir::C2s, 3)));
        assert!(!f.matches(&chat(Dir::S2c, 5)));
        let f: Filter = "type=event,eio=message,opcode=TEXT".parse().unwrap();
        assert!(f.matches(&chat(Dir::C2s, 1)));
        assert!(Filter::default().matches(&Record::default()));
    }

    #[test]
    fn a_record_without_the_field_does_not_match() {
        let f: Filter = "opcode=text".parse().unwrap();
        let http = Record {
            kind: RecordKind::HttpRequest,
            ..Record::default()
        };
        assert!(!f.matches(&http));
    }

    #[test]
    fn bad_filters_name_the_term_and_what_is_allowed() {
        let e = "dir=s2c,opcode=txt".parse::<Filter>().unwrap_err();
        assert_eq!(e.column, 9);
        assert!(e.message.contains("one of text, binary"), "{e}");
        let e = "colour=red".parse::<Filter>().unwrap_err();
        assert!(e.to_string().contains("unknown key \"colour\""), "{e}");
        assert!("conn=5..2".parse::<Filter>().is_err());
        // Columns count characters, not bytes (`é` is two bytes).
        let e = "event=é,opcode=txt".parse::<Filter>().unwrap_err();
        assert_eq!(e.column, 9);
        assert!("event=".parse::<Filter>().is_err());
    }
}
