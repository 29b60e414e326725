//! The JSON pointer reader (`protocol::pointer`) against `serde_json::Value::pointer`.
//!
//! The input is a pointer, a newline, then a document. Whatever the document (invalid JSON,
//! duplicate keys, deep nesting, escapes, huge numbers), the reader must answer what the
//! document model answers: the same non-negative integer, and raw text that parses to the same
//! value, or nothing where it finds nothing.

use serde_json::Value;

use crate::protocol::pointer::JsonPointer;

pub fn check(data: &[u8]) {
    let (pointer_bytes, json) = match data.iter().position(|&b| b == b'\n') {
        Some(newline) => (&data[..newline], &data[newline + 1..]),
        None => (data, &b""[..]),
    };
    let text = String::from_utf8_lossy(pointer_bytes);
    let Some(pointer) = JsonPointer::parse(&text) else {
        assert!(
            !text.is_empty() && !text.starts_with('/'),
            "the pointer {text:?} was refused"
        );
        return;
    };
    let document: Option<Value> = serde_json::from_slice(json).ok();
    agree(&pointer, &text, json, document.as_ref());
    // The same pointer under an array index, as a Socket.IO event's arguments are read.
    let under = pointer.under_index(1);
    agree(&under, &format!("/1{text}"), json, document.as_ref());
}

fn agree(pointer: &JsonPointer, text: &str, json: &[u8], document: Option<&Value>) {
    let expected = document.and_then(|d| d.pointer(text));
    assert_eq!(
        pointer.read_u64(json),
        expected.and_then(Value::as_u64),
        "read_u64 at {text:?} in {}",
        String::from_utf8_lossy(json)
    );
    let raw = pointer.read_raw(json);
    let reread = raw.map(|raw| {
        serde_json::from_str::<Value>(raw)
            .unwrap_or_else(|e| panic!("read_raw at {text:?} gave {raw:?}, not JSON: {e}"))
    });
    assert_eq!(
        reread.as_ref(),
        expected,
        "read_raw at {text:?} in {}",
        String::from_utf8_lossy(json)
    );
}
