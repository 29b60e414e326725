//! The tracking stamp decoder (`protocol::stamp`): any payload may come back from a server.
//!
//! Whatever stamp the decoder finds belongs to the run it was asked about and survives being
//! written and found again. A stamp drawn from the input, written as a prefix, as the first
//! field of a JSON object or behind text that holds no stamp, is found as written.

use memchr::memmem;

use super::unstructured::Unstructured;
use crate::protocol::stamp::{MAX_TOKEN_LEN, Stamp};

pub fn check(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let stamp = Stamp {
        run: u32_of(&mut u),
        stream: u32_of(&mut u),
        client: u32_of(&mut u),
        seq: u64_of(&mut u),
        origin_ns: u64_of(&mut u),
    };
    for run in [stamp.run, 0xdead_beef, 0] {
        if let Some(found) = Stamp::find(data, run) {
            assert_eq!(found.run, run, "a stamp of another run");
            assert_eq!(Stamp::find(&token(&found).into_bytes(), run), Some(found));
        }
    }

    let rest = u.rest();
    let token = token(&stamp);
    assert!(
        token.len() <= MAX_TOKEN_LEN,
        "{token:?} is longer than the limit"
    );
    let mut prefixed = token.clone().into_bytes();
    prefixed.extend_from_slice(rest);
    assert_eq!(
        Stamp::find(&prefixed, stamp.run),
        Some(stamp),
        "as a prefix of {rest:02x?}"
    );

    let mut object = String::new();
    stamp.write_field_opening(&mut object);
    object.push_str(",\"text\":");
    object.push_str(&serde_json::to_string(&String::from_utf8_lossy(rest)).expect("a string"));
    object.push('}');
    assert!(
        serde_json::from_str::<serde_json::Value>(&object).is_ok(),
        "{object:?}"
    );
    assert_eq!(
        Stamp::find(object.as_bytes(), stamp.run),
        Some(stamp),
        "in {object:?}"
    );

    if memmem::find(rest, b"vly:").is_none() {
        let mut behind = rest.to_vec();
        behind.extend_from_slice(token.as_bytes());
        assert_eq!(
            Stamp::find(&behind, stamp.run),
            Some(stamp),
            "behind {rest:02x?}"
        );
    }
}

fn token(stamp: &Stamp) -> String {
    let mut token = String::new();
    stamp.write_token(&mut token);
    token
}

fn u32_of(u: &mut Unstructured) -> u32 {
    u32::from_be_bytes(u.array4())
}

fn u64_of(u: &mut Unstructured) -> u64 {
    u64::from(u32_of(u)) << 32 | u64::from(u32_of(u))
}
