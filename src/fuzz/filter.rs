//! `--filter` and `--fault-filter` expressions (`wire::filter`), as a user types them.
//!
//! A filter is its terms joined: one that parses matches a record exactly when the filters of
//! its comma-separated parts, parsed one by one, all match it. One that is refused points at the
//! start of the part at fault, and that part alone is refused with the same message.

use crate::wire::filter::Filter;
use crate::wire::record::{Dir, Record, RecordKind, SocketIoFields};

pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match text.parse::<Filter>() {
        Ok(filter) => {
            let parts: Vec<Filter> = text
                .split(',')
                .map(|part| {
                    part.parse()
                        .unwrap_or_else(|e| panic!("{text:?} parsed, its part {part:?} not: {e}"))
                })
                .collect();
            let joined = Filter::all(&parts);
            for record in records() {
                assert_eq!(
                    filter.matches(&record),
                    joined.matches(&record),
                    "{text:?} and its parts one by one on {record:?}"
                );
            }
        }
        Err(e) => {
            // Columns count characters, as everywhere else volley points into a text.
            let at = text
                .char_indices()
                .nth(e.column - 1)
                .map_or(text.len(), |(i, _)| i);
            let starts_a_part = at == 0 || text[..at].ends_with(',');
            assert!(
                starts_a_part && e.column <= text.chars().count() + 1,
                "{text:?} refused at column {}",
                e.column
            );
            let part = text[at..].split(',').next().unwrap_or("");
            let alone = part.parse::<Filter>().map(|_| ()).map_err(|e| e.message);
            assert_eq!(alone, Err(e.message), "the part {part:?} of {text:?} alone");
        }
    }
}

/// Records of every kind a filter reads: directions, opcodes, packet types, events, connections.
fn records() -> Vec<Record> {
    let sio = |kind, event: Option<&str>| SocketIoFields {
        kind,
        nsp: "/".into(),
        event: event.map(String::from),
        id: None,
        args: None,
        attachments: None,
    };
    vec![
        Record::default(),
        Record {
            conn: 3,
            dir: Some(Dir::S2c),
            kind: RecordKind::Frame,
            opcode: Some("text"),
            eio: Some("message"),
            sio: Some(sio("EVENT", Some("chat"))),
            ..Record::default()
        },
        Record {
            conn: 18_446_744_073_709_551_615,
            dir: Some(Dir::C2s),
            kind: RecordKind::Packet,
            eio: Some("binary"),
            sio: Some(sio("ATTACHMENT", None)),
            ..Record::default()
        },
        Record {
            conn: 1,
            dir: Some(Dir::C2s),
            kind: RecordKind::Frame,
            opcode: Some("ping"),
            ..Record::default()
        },
    ]
}
