//! What the client answered at once: a message right after a push that copies the push's
//! changing fields (an id), or `pong` after `ping`, becomes a `[[group.on]]` reply; an
//! acknowledgement the client gave a server event becomes its `answer`.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::items::{Item, TYPE_KEYS, type_key};
use super::{Handler, Reply, payload_of};
use crate::record::values::{Values, last_key, leaves_of};
use crate::wire::record::Dir;

/// A reply comes this soon after the push it answers.
const REPLY_WITHIN: f64 = 0.25;

/// Kind pairs that answer each other whatever their fields.
const PAIRS: &[(&str, &str)] = &[("ping", "pong"), ("heartbeat", "heartbeat")];

/// The client's replies of one kind to the server's pushes of one kind.
struct Replies {
    /// The push's kind and the reply's.
    kinds: (String, String),
    /// The items: (push, reply).
    pairs: Vec<(usize, usize)>,
}

/// The handlers, and for each item whether it is the client's answer to a push.
pub fn find(items: &[Item], is_sio: bool, values: &mut Values) -> (Vec<Handler>, Vec<bool>) {
    let changing = changing_fields(items);
    let mut answered = vec![false; items.len()];
    let mut handlers = answers(items, &mut answered);
    let mut pairs: Vec<Replies> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if item.dir != Dir::C2s || item.is_ack() {
            continue;
        }
        let Some(reply_kind) = &item.kind else {
            continue;
        };
        let push = (0..i)
            .rev()
            .take_while(|&j| item.at - items[j].at <= REPLY_WITHIN)
            .find(|&j| {
                let p = &items[j];
                p.dir == Dir::S2c && !p.is_ack() && p.kind.is_some() && copies(&changing, p, item)
            });
        if let Some(j) = push {
            let key = (
                items[j].kind.clone().unwrap_or_default(),
                reply_kind.clone(),
            );
            match pairs.iter_mut().find(|r| r.kinds == key) {
                Some(r) => r.pairs.push((j, i)),
                None => pairs.push(Replies {
                    kinds: key,
                    pairs: vec![(j, i)],
                }),
            }
        }
    }
    for Replies {
        kinds: (push_kind, reply_kind),
        pairs: list,
    } in pairs
    {
        let pushes = items
            .iter()
            .filter(|it| it.dir == Dir::S2c && it.kind.as_deref() == Some(&push_kind))
            .count();
        // A reply to most pushes of the kind (the last may come as the capture ends).
        if list.len() * 2 < pushes {
            continue;
        }
        let (push, reply) = list[0];
        let (payload, copied) =
            reply_payload(&changing, &items[push], &items[reply], is_sio, values);
        for &(_, r) in &list {
            answered[r] = true;
        }
        let (event, matches) = selector(&items[push], &push_kind, is_sio);
        handlers.push(Handler {
            push: push_kind,
            event,
            matches,
            reply: Reply::Emit {
                event: reply_kind,
                payload,
                copied,
            },
            count: list.len(),
        });
    }
    (handlers, answered)
}

/// Socket.IO: the acknowledgements the client gave the server's events, one handler per event.
fn answers(items: &[Item], answered: &mut [bool]) -> Vec<Handler> {
    let mut handlers: Vec<Handler> = Vec::new();
    for (i, ack) in items.iter().enumerate() {
        if ack.dir != Dir::C2s || !ack.is_ack() {
            continue;
        }
        let asked = items[..i]
            .iter()
            .rev()
            .find(|e| e.dir == Dir::S2c && !e.is_ack() && e.id == ack.id && e.kind.is_some());
        let Some(event) = asked.and_then(|e| e.kind.clone()) else {
            continue;
        };
        answered[i] = true;
        match handlers.iter_mut().find(|h| h.push == event) {
            Some(h) => h.count += 1,
            None => handlers.push(Handler {
                push: event.clone(),
                event: Some(event),
                matches: None,
                reply: Reply::Answer(ack.args.clone()),
                count: 1,
            }),
        }
    }
    handlers
}

/// For each kind of push, the fields (pointers into the first argument) whose value changes
/// from push to push: found in one pass over the pushes.
type Changing = HashMap<String, HashSet<String>>;

fn changing_fields(items: &[Item]) -> Changing {
    // Per kind: the first push's leaves, and which of them changed since.
    let mut firsts: HashMap<&str, Vec<(String, Value)>> = HashMap::new();
    let mut changing: Changing = HashMap::new();
    for push in items.iter().filter(|i| i.dir == Dir::S2c && !i.is_ack()) {
        let (Some(kind), Some(arg)) = (push.kind.as_deref(), push.args.first()) else {
            continue;
        };
        let Some(first) = firsts.get(kind) else {
            let mut leaves = Vec::new();
            leaves_of(arg, String::new(), &mut leaves);
            firsts.insert(kind, leaves);
            continue;
        };
        let changed = changing.entry(kind.to_string()).or_default();
        for (pointer, value) in first {
            if !changed.contains(pointer) && arg.pointer(pointer) != Some(value) {
                changed.insert(pointer.clone());
            }
        }
    }
    changing
}

/// How a handler picks its pushes: the Socket.IO event, or a raw message's kind field.
fn selector(push: &Item, kind: &str, is_sio: bool) -> (Option<String>, Option<String>) {
    if is_sio {
        return (Some(kind.to_string()), None);
    }
    let key = type_key(&push.args[0]).unwrap_or("type");
    (
        None,
        Some(format!("/{key} == {}", Value::String(kind.to_string()))),
    )
}

/// Whether `reply` answers `push`: their kinds pair (`ping`, `pong`), or the reply copies a
/// field of the push whose value changes from push to push (an id; not a room both always
/// name, which would make every chatty user a reply storm).
fn copies(changing: &Changing, push: &Item, reply: &Item) -> bool {
    let pair = PAIRS.iter().any(|(a, b)| {
        push.kind
            .as_deref()
            .is_some_and(|k| k.eq_ignore_ascii_case(a))
            && reply
                .kind
                .as_deref()
                .is_some_and(|k| k.eq_ignore_ascii_case(b))
    });
    pair || !copied_fields(changing, push, reply).is_empty()
}

/// The fields (pointers into the first argument) the reply copies from the push, each one that
/// changes from push to push of that kind.
fn copied_fields(changing: &Changing, push: &Item, reply: &Item) -> Vec<(String, String)> {
    let (Some(from), Some(to)) = (push.args.first(), reply.args.first()) else {
        return Vec::new();
    };
    let mut from_leaves = Vec::new();
    leaves_of(from, String::new(), &mut from_leaves);
    let mut to_leaves = Vec::new();
    leaves_of(to, String::new(), &mut to_leaves);
    let kind = push.kind.as_deref().unwrap_or_default();
    let mut copied = Vec::new();
    for (p, v) in &to_leaves {
        if is_kind_pointer(p) || v.is_boolean() || v.is_null() {
            continue;
        }
        // `{{/pointer}}` ends at the first `}}`: a pointer with braces cannot be one.
        let source = from_leaves.iter().find(|(q, w)| {
            w == v && !is_kind_pointer(q) && last_key(p) == last_key(q) && !q.contains(['{', '}'])
        });
        if let Some((q, _)) = source {
            if changing.get(kind).is_some_and(|fields| fields.contains(q)) {
                copied.push((p.clone(), q.clone()));
            }
        }
    }
    copied
}

fn is_kind_pointer(pointer: &str) -> bool {
    TYPE_KEYS
        .iter()
        .any(|k| pointer.strip_prefix('/') == Some(*k))
}

/// A reply's payload: the fields it copied from the push read from the received event, the
/// others what the client sent (a credential a column, a value an answer carried a capture).
/// Templated before the copies go in: `values` keeps the shape, so the pointers hold.
fn reply_payload(
    changing: &Changing,
    push: &Item,
    reply: &Item,
    is_sio: bool,
    values: &mut Values,
) -> (super::Payload, Vec<String>) {
    let mut args: Vec<Value> = reply.args.iter().map(|a| values.json(a)).collect();
    let mut copied = Vec::new();
    if let Some(first) = args.first_mut() {
        for (p, q) in copied_fields(changing, push, reply) {
            if let Some(slot) = first.pointer_mut(&p) {
                *slot = Value::String(format!("{{{{{q}}}}}"));
                copied.push(q);
            }
        }
    }
    (payload_of(args, is_sio), copied)
}
