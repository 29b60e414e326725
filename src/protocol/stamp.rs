//! The tracking stamp volley puts in every event it wants to follow.
//!
//! A stamp is a short ASCII token, `vly:RUN.STREAM.CLIENT.SEQ.ORIGIN;` with every field in lower-case
//! hex: the run id (so traffic from another run or another tool is never mistaken for ours), the
//! stream (which expect tracks the event), the emitting client, its sequence number in that stream and
//! the latency origin in nanoseconds since the run started. A server that forwards a payload unchanged
//! hands the token back untouched, wherever it sits:
//! - as the first field of a JSON object payload: `{"_vly":"vly:...;", ...the user's fields}`;
//! - as a prefix of any other text or binary payload: `vly:...;hello`.
//!
//! Decoding looks at the two places volley writes the token first (offset 0 and the field's offset)
//! and only then searches the payload, so the usual case costs a few comparisons.

use std::sync::LazyLock;

use memchr::memmem;

/// The JSON field that carries the stamp in object payloads.
pub const FIELD: &str = "_vly";
const MAGIC: &[u8] = b"vly:";
/// The searcher for [`MAGIC`], built once: `memmem::find` builds one per call, which costs more
/// than the search itself on a short payload.
static MAGIC_FINDER: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(MAGIC));
/// Where the token starts when written as a field: after `{"_vly":"`.
const FIELD_OFFSET: usize = 2 + FIELD.len() + 3;
/// The longest token: magic, five hex fields with separators.
pub const MAX_TOKEN_LEN: usize = 4 + 8 + 1 + 8 + 1 + 8 + 1 + 16 + 1 + 16 + 1;

/// Everything a stamp carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub run: u32,
    pub stream: u32,
    pub client: u32,
    pub seq: u64,
    /// Latency origin: nanoseconds since the run's clock started.
    pub origin_ns: u64,
}

impl Stamp {
    /// Appends the token to `out` without allocating beyond `out`'s capacity.
    pub fn write_token(&self, out: &mut String) {
        out.push_str("vly:");
        push_hex(out, self.run as u64);
        out.push('.');
        push_hex(out, self.stream as u64);
        out.push('.');
        push_hex(out, self.client as u64);
        out.push('.');
        push_hex(out, self.seq);
        out.push('.');
        push_hex(out, self.origin_ns);
        out.push(';');
    }

    /// Appends the opening of a JSON object that carries the stamp as its first field:
    /// `{"_vly":"vly:...;"` — the caller continues with `,` and the user's fields, or `}`.
    pub fn write_field_opening(&self, out: &mut String) {
        out.push_str("{\"");
        out.push_str(FIELD);
        out.push_str("\":\"");
        self.write_token(out);
        out.push('"');
    }

    /// Finds the stamp of run `run` in a payload, or `None` when it carries none.
    pub fn find(payload: &[u8], run: u32) -> Option<Stamp> {
        for offset in [0, FIELD_OFFSET] {
            if payload.get(offset..offset + MAGIC.len()) == Some(MAGIC) {
                if let Some(stamp) = parse_token(&payload[offset + MAGIC.len()..], run) {
                    return Some(stamp);
                }
            }
        }
        // Anywhere else: a server that wraps the payload, or a prefix behind the user's own text.
        let mut from = 0;
        while let Some(pos) = MAGIC_FINDER.find(&payload[from..]) {
            let start = from + pos + MAGIC.len();
            if let Some(stamp) = parse_token(&payload[start..], run) {
                return Some(stamp);
            }
            from = start;
        }
        None
    }
}

fn push_hex(out: &mut String, value: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    if value == 0 {
        out.push('0');
        return;
    }
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    let mut v = value;
    while v > 0 {
        i -= 1;
        buf[i] = DIGITS[(v & 0xf) as usize];
        v >>= 4;
    }
    for &b in &buf[i..] {
        out.push(b as char);
    }
}

/// Parses `RUN.STREAM.CLIENT.SEQ.ORIGIN;` (the part after the magic).
fn parse_token(bytes: &[u8], run: u32) -> Option<Stamp> {
    let mut fields = [0u64; 5];
    let mut pos = 0;
    for (index, field) in fields.iter_mut().enumerate() {
        let terminator = if index == 4 { b';' } else { b'.' };
        let mut value: u64 = 0;
        let mut digits = 0;
        loop {
            let &b = bytes.get(pos)?;
            pos += 1;
            if b == terminator {
                break;
            }
            let nibble = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                _ => return None,
            };
            digits += 1;
            if digits > 16 {
                return None;
            }
            value = (value << 4) | nibble as u64;
        }
        if digits == 0 {
            return None;
        }
        *field = value;
    }
    let [found_run, stream, client, seq, origin_ns] = fields;
    if found_run != run as u64 {
        return None;
    }
    Some(Stamp {
        run,
        stream: u32::try_from(stream).ok()?,
        client: u32::try_from(client).ok()?,
        seq,
        origin_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Stamp {
        Stamp {
            run: 0xdeadbeef,
            stream: 1,
            client: 4711,
            seq: 0,
            origin_ns: 12_345_678_901,
        }
    }

    #[test]
    fn token_round_trips_as_prefix() {
        let mut s = String::new();
        sample().write_token(&mut s);
        assert_eq!(s, "vly:deadbeef.1.1267.0.2dfdc1c35;");
        assert!(s.len() <= MAX_TOKEN_LEN);
        s.push_str("hello");
        assert_eq!(Stamp::find(s.as_bytes(), 0xdeadbeef), Some(sample()));
    }

    #[test]
    fn field_opening_is_valid_json_and_decodes_at_the_fast_offset() {
        let mut s = String::new();
        sample().write_field_opening(&mut s);
        assert_eq!(&s[FIELD_OFFSET..FIELD_OFFSET + 4], "vly:");
        s.push_str(",\"text\":\"hi\"}");
        let value: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(value["text"], "hi");
        assert_eq!(Stamp::find(s.as_bytes(), 0xdeadbeef), Some(sample()));
    }

    #[test]
    fn stamp_is_found_anywhere_in_a_wrapped_payload() {
        let mut s = String::from("{\"from\":\"server\",\"data\":\"vly:broken;vly:");
        let mut token = String::new();
        sample().write_token(&mut token);
        s.push_str(&token[4..]);
        s.push_str("\"}");
        assert_eq!(Stamp::find(s.as_bytes(), 0xdeadbeef), Some(sample()));
    }

    #[test]
    fn foreign_runs_and_garbage_are_ignored() {
        let mut s = String::new();
        sample().write_token(&mut s);
        assert_eq!(Stamp::find(s.as_bytes(), 0x1234), None);
        for garbage in [
            &b"vly:"[..],
            b"vly:1.2.3.4;",
            b"vly:deadbeef.1.2.3.4",
            b"vly:deadbeef.1.2.3.X;",
            b"vly:deadbeef..2.3.4;",
            b"vly:deadbeef.1.2.3.11111111111111111;",
            b"",
            b"plain text",
        ] {
            assert_eq!(Stamp::find(garbage, 0xdeadbeef), None);
        }
    }
}
