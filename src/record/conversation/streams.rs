//! Streams: an event the client sent again and again at a steady pace becomes an emit stream at
//! that pace (and an echo expect when it came back as sent); pushes the server numbered one
//! after another become server-stream expects.

use std::collections::HashMap;

use serde_json::Value;

use super::items::Item;
use super::{ANSWER_WITHIN, Conversation, Expectation, Stream, metric_name, payload_of};
use crate::record::values::{generated_number, is_uuid, last_key, leaves_of};
use crate::secrets::names::is_secret_name;
use crate::wire::record::Dir;

/// An event sent at least this many times in a row at a steady pace is a stream; pushes of a
/// kind numbered one after another this many times are a server stream.
const MIN_STREAM: usize = 3;
/// A run is steady when no gap is over this many times the median gap (plus a little slack for
/// a timer's jitter, in seconds).
const STEADY_GAP: f64 = 2.0;
const STEADY_SLACK: f64 = 0.02;
/// A field whose values differ this many ways at most becomes `{{one_of(...)}}`.
const MAX_ONE_OF: usize = 20;

/// Finds the client's streams among `sent` (and their echo expects) into `c`; which items are in
/// one.
pub fn find(items: &[Item], sent: &[usize], is_sio: bool, c: &mut Conversation) -> Vec<bool> {
    let mut in_stream = vec![false; items.len()];
    for run in runs(items, sent) {
        let first = &items[run[0]];
        let kind = first.kind.clone().unwrap_or_default();
        let last = &items[run[run.len() - 1]];
        let every = (last.at - first.at) / (run.len() - 1) as f64;
        c.values.sent_at(first.at);
        let (payload, varying) = payload(items, &run, is_sio, c);
        let back = run.iter().filter(|&&i| echoed(items, i)).count();
        if back > 0 && back * 2 >= run.len() {
            c.expects.push(Expectation {
                event: kind.clone(),
                name: metric_name(&kind),
                seq: None,
                stream: None,
                timestamp: None,
                count: back,
                why: format!(
                    "{back} of the {} `{kind}` events sent came back as sent",
                    run.len()
                ),
            });
        }
        for &i in &run {
            in_stream[i] = true;
        }
        c.streams.push(Stream {
            event: kind,
            payload,
            every,
            ack: run.iter().all(|&i| items[i].ack),
            count: run.len(),
            varying,
        });
    }
    in_stream
}

/// Whether the client message at `i` came back exactly as sent.
fn echoed(items: &[Item], i: usize) -> bool {
    let item = &items[i];
    items[i + 1..]
        .iter()
        .take_while(|r| r.at - item.at <= ANSWER_WITHIN)
        .any(|r| r.dir == Dir::S2c && !r.is_ack() && r.kind == item.kind && r.args == item.args)
}

/// Runs of at least [`MIN_STREAM`] messages of one named kind in a row among the client's, at
/// a steady pace.
fn runs(items: &[Item], sent: &[usize]) -> Vec<Vec<usize>> {
    let mut runs: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let close = |current: &mut Vec<usize>, runs: &mut Vec<Vec<usize>>| {
        if current.len() >= MIN_STREAM && steady(items, current) {
            runs.push(std::mem::take(current));
        }
        current.clear();
    };
    for &i in sent {
        let same = current
            .last()
            .is_some_and(|&j| items[j].kind.is_some() && items[j].kind == items[i].kind);
        if !same {
            close(&mut current, &mut runs);
        }
        current.push(i);
    }
    close(&mut current, &mut runs);
    runs
}

fn steady(items: &[Item], run: &[usize]) -> bool {
    let mut gaps: Vec<f64> = run
        .windows(2)
        .map(|w| items[w[1]].at - items[w[0]].at)
        .collect();
    gaps.sort_by(f64::total_cmp);
    let median = gaps[gaps.len() / 2];
    median > 0.0
        && gaps
            .last()
            .is_some_and(|&g| g <= median * STEADY_GAP + STEADY_SLACK)
}

/// A stream's payload: the first event's, with the fields that changed from event to event made
/// placeholders: a counter `{{seq}}`, a time `{{now_ms}}`, UUIDs `{{uuid}}`, other numbers
/// `{{int(a, b)}}`, a few strings `{{one_of(...)}}`. Secret-named fields are left to the
/// values' rules (a capture or a column), never listed.
fn payload(
    items: &[Item],
    run: &[usize],
    is_sio: bool,
    c: &mut Conversation,
) -> (super::Payload, Vec<String>) {
    let mut varying = Vec::new();
    let recorded = Value::Array(items[run[0]].args.clone());
    let mut placeholders: Vec<(String, String)> = Vec::new();
    let mut leaves = Vec::new();
    leaves_of(&recorded, String::new(), &mut leaves);
    for (pointer, first) in &leaves {
        let key = last_key(pointer);
        let seen: Vec<Value> = run
            .iter()
            .filter_map(|&i| {
                Value::Array(items[i].args.clone())
                    .pointer(pointer)
                    .cloned()
            })
            .collect();
        if seen.iter().all(|v| v == first) {
            continue;
        }
        if is_secret_name(&key) {
            // A secret: no list of its values; it is what the first event sent (a column).
            varying.push(format!(
                "`{key}` changes, a secret sent as the first event had it"
            ));
            continue;
        }
        let Some(placeholder) = placeholder_for(&seen) else {
            continue;
        };
        let note = if placeholder == "{{seq}}" {
            " (counting from 0, sent as text)"
        } else {
            ""
        };
        varying.push(format!("`{key}` as {placeholder}{note}"));
        placeholders.push((pointer.clone(), placeholder));
    }
    // The rest by the values' rules; the placeholders go in after, as they are.
    let mut whole = c.values.json(&recorded);
    for (pointer, placeholder) in placeholders {
        if let Some(slot) = whole.pointer_mut(&pointer) {
            *slot = Value::String(placeholder);
        }
    }
    let Value::Array(args) = whole else {
        unreachable!("the arguments stay an array")
    };
    (payload_of(args, is_sio), varying)
}

/// The placeholder for the values a field took from event to event, if one says it.
fn placeholder_for(seen: &[Value]) -> Option<String> {
    let numbers: Vec<i64> = seen.iter().filter_map(Value::as_i64).collect();
    if numbers.len() == seen.len() {
        if numbers
            .windows(2)
            .all(|w| w[0].checked_add(1) == Some(w[1]))
        {
            return Some("{{seq}}".into());
        }
        if numbers
            .iter()
            .all(|&n| u64::try_from(n).ok().and_then(generated_number).is_some())
        {
            return Some("{{now_ms}}".into());
        }
        let (low, high) = (numbers.iter().min()?, numbers.iter().max()?);
        return Some(format!("{{{{int({low}, {high})}}}}"));
    }
    let texts: Vec<&str> = seen.iter().filter_map(Value::as_str).collect();
    if texts.len() != seen.len() {
        return None;
    }
    if texts.iter().all(|t| is_uuid(t)) {
        return Some("{{uuid}}".into());
    }
    let mut choices = texts.clone();
    choices.sort_unstable();
    choices.dedup();
    let plain = choices
        .iter()
        .all(|t| !t.is_empty() && !t.contains([',', '(', ')', '{', '}']) && t.trim() == *t);
    (plain && choices.len() <= MAX_ONE_OF)
        .then(|| format!("{{{{one_of({})}}}}", choices.join(", ")))
}

/// Pushes of a kind whose number field goes up by one each time (per key field, when one
/// splits them into streams): server-stream expects. Raw WebSocket has one at most: its
/// messages are told apart by the `seq` field alone.
pub fn server(items: &[Item], is_sio: bool, expects: &mut Vec<Expectation>) {
    let taken: Vec<String> = expects.iter().map(|e| e.event.clone()).collect();
    let mut by_kind: Vec<(String, Vec<&Item>)> = Vec::new();
    for item in items.iter().filter(|i| i.dir == Dir::S2c && !i.is_ack()) {
        let Some(kind) = &item.kind else { continue };
        match by_kind.iter_mut().find(|(k, _)| k == kind) {
            Some((_, list)) => list.push(item),
            None => by_kind.push((kind.clone(), vec![item])),
        }
    }
    let mut found: Vec<Expectation> = Vec::new();
    for (kind, list) in by_kind {
        if list.len() < MIN_STREAM || taken.contains(&kind) {
            continue;
        }
        if let Some(expect) = numbered(&kind, &list) {
            found.push(expect);
        }
    }
    if !is_sio && found.len() > 1 {
        found.sort_by_key(|e| std::cmp::Reverse(e.count));
        found.truncate(1);
    }
    expects.extend(found);
}

/// The server stream of pushes of one kind: a number field that goes up by one from push to
/// push, in all of them or within each value of a key field.
fn numbered(kind: &str, list: &[&Item]) -> Option<Expectation> {
    let mut first = Vec::new();
    leaves_of(list[0].args.first()?, String::new(), &mut first);
    let numbers: Vec<&String> = first
        .iter()
        .filter(|(_, v)| v.is_u64())
        .map(|(p, _)| p)
        .collect();
    let keys: Vec<Option<&String>> = std::iter::once(None)
        .chain(
            first
                .iter()
                .filter(|(_, v)| v.is_string())
                .map(|(p, _)| Some(p)),
        )
        .collect();
    for seq in numbers {
        for key in &keys {
            let mut last: HashMap<String, u64> = HashMap::new();
            let mut ok = true;
            for item in list {
                let arg = item.args.first();
                let n = arg.and_then(|a| a.pointer(seq)).and_then(Value::as_u64);
                let k = match key {
                    None => Some(String::new()),
                    Some(k) => arg.and_then(|a| a.pointer(k)).map(|v| v.to_string()),
                };
                let (Some(n), Some(k)) = (n, k) else {
                    ok = false;
                    break;
                };
                if last
                    .insert(k, n)
                    .is_some_and(|prev| prev.checked_add(1) != Some(n))
                {
                    ok = false;
                    break;
                }
            }
            // A key splits the pushes into streams of several each, not one per push.
            let streams = last.len();
            if !ok || (key.is_some() && (streams < 2 || streams * 2 > list.len())) {
                continue;
            }
            let timestamp = first
                .iter()
                .find(|(p, v)| p != seq && v.as_u64().and_then(generated_number).is_some())
                .map(|(p, _)| p.clone());
            return Some(Expectation {
                name: metric_name(kind),
                event: kind.to_string(),
                seq: Some(seq.clone()),
                stream: key.cloned(),
                timestamp,
                count: list.len(),
                why: format!(
                    "the server pushed {} `{kind}` messages numbered one after another by `{seq}`{}",
                    list.len(),
                    key.map_or(String::new(), |k| format!(" within each `{k}`"))
                ),
            });
        }
    }
    None
}
