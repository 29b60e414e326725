//! The bodies of volley's fuzz targets: bytes in, a parser run, its properties checked. Every
//! parser that reads bytes from a peer or from a user has one.
//!
//! Two runners call these same functions, so there is one harness: the stable runner in
//! `tests/fuzz/` (a seeded mutation engine over the committed seeds in `fuzz/corpus/TARGET/`,
//! run for a few seconds per target by the test command), and the cargo-fuzz crate in `fuzz/`
//! (libFuzzer, coverage-guided, for long runs). FUZZING.md says how to run both and what they
//! found.
//!
//! A body returns normally when the input is uninteresting or every property holds, and panics
//! with a message naming the property when one breaks; the runners treat any panic as a
//! finding. Where a parser has an encoder, the property is `decode(encode(x)) == x`; where an
//! independent implementation exists, it is agreement with it (tungstenite for WebSocket frame
//! headers, `serde_json::Value::pointer` for JSON pointers). Bodies do no I/O and keep no state
//! between calls.

mod cookie;
mod engineio;
mod filter;
mod http1;
mod pointer;
mod record;
mod scenario;
mod secrets;
mod socketio;
mod stamp;
mod units;
mod unstructured;
mod wire;
mod wsframe;

pub use unstructured::Unstructured;

/// One fuzz target: its name (also its corpus folder and its cargo-fuzz binary) and its body.
#[derive(Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    /// What the input bytes are, for someone adding seeds.
    pub input: &'static str,
    pub check: fn(&[u8]),
}

/// Every target, in the order FUZZING.md lists them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "wsframe",
        input: "a stream of WebSocket frames as one side sends them",
        check: wsframe::check,
    },
    Target {
        name: "http1_head",
        input: "an HTTP/1.1 request or response head, maybe followed by its body",
        check: http1::check_head,
    },
    Target {
        name: "http1_chunked",
        input: "a chunked message body, maybe followed by the next message",
        check: http1::check_chunked,
    },
    Target {
        name: "engineio",
        input: "an Engine.IO packet or long-polling payload (v3 or v4)",
        check: engineio::check,
    },
    Target {
        name: "socketio",
        input: "a Socket.IO packet (the data of an Engine.IO message), attachments included",
        check: socketio::check,
    },
    Target {
        name: "pointer",
        input: "a JSON pointer, a newline, then a JSON document",
        check: pointer::check,
    },
    Target {
        name: "stamp",
        input: "an event payload that may carry a tracking stamp",
        check: stamp::check,
    },
    Target {
        name: "cookie",
        input: "the value of a Set-Cookie header",
        check: cookie::check,
    },
    Target {
        name: "wire_decode",
        input: "a mode byte, then WebSocket frames or a long-polling body as the inspector sees them",
        check: wire::check,
    },
    Target {
        name: "template",
        input: "a mode byte, then a TOML value (or template text) with placeholders",
        check: scenario::check_template,
    },
    Target {
        name: "secrets",
        input: "a value to learn as secret, a newline, then a text (URL, header, payload)",
        check: secrets::check,
    },
    Target {
        name: "units",
        input: "lines of durations, rates, counts, sizes or duration ranges",
        check: units::check,
    },
    Target {
        name: "filter",
        input: "a --filter expression",
        check: filter::check,
    },
    Target {
        name: "scenario",
        input: "a scenario file (TOML)",
        check: scenario::check_scenario,
    },
    Target {
        name: "record_har",
        input: "a HAR file (a browser's export) for volley record",
        check: record::check_har,
    },
    Target {
        name: "record_jsonl",
        input: "a volley inspect --jsonl capture for volley record",
        check: record::check_jsonl,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// Runs the target called `name` on `data`; for the cargo-fuzz binaries, one line each.
///
/// # Panics
/// When `name` is no target, or when the input breaks one of the target's properties.
pub fn run(name: &str, data: &[u8]) {
    let target = target(name).unwrap_or_else(|| panic!("no fuzz target called {name:?}"));
    (target.check)(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names_are_unique_and_usable_as_file_names() {
        for (i, t) in TARGETS.iter().enumerate() {
            assert!(
                t.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                t.name
            );
            assert!(TARGETS[..i].iter().all(|o| o.name != t.name), "{}", t.name);
            assert_eq!(target(t.name).map(|found| found.input), Some(t.input));
        }
        assert!(target("nothing").is_none());
    }

    #[test]
    fn every_target_takes_empty_and_odd_inputs() {
        for t in TARGETS {
            for input in [&b""[..], b"\0", b"\xff\xfe", b"{{", &[0x81; 40]] {
                (t.check)(input);
            }
        }
    }
}
