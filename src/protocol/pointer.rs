//! Numbers at JSON pointers (RFC 6901), read straight from a payload's bytes.
//!
//! A server stream's sequence number and send time sit at pointers the scenario names (`/seq`,
//! `/ts`). Every event of such a stream is read at those pointers, so the read must not build the
//! document: [`JsonPointer::read_u64`] walks the JSON once with serde_json's streaming
//! deserializer, descends only into the keys and indexes on the pointer's path, skips everything
//! else, and builds nothing (it allocates only to unescape a string that has escapes). The answer
//! is the one `serde_json::Value::pointer` followed by `as_u64` gives for the same text: the last
//! of duplicate keys wins, numbers that are not non-negative integers are `None`, and invalid JSON
//! is `None`. What is skipped is checked as strictly as the document model checks it (UTF-8,
//! escapes, number range, nesting depth): serde's `IgnoredAny` would accept what `Value` refuses.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

/// A parsed JSON pointer: its reference tokens, unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPointer {
    tokens: Vec<String>,
}

impl JsonPointer {
    /// `""` (the whole document) or `/token/token...` with `~1` for `/` and `~0` for `~`; `None`
    /// for anything else.
    pub fn parse(text: &str) -> Option<JsonPointer> {
        if text.is_empty() {
            return Some(JsonPointer { tokens: Vec::new() });
        }
        let rest = text.strip_prefix('/')?;
        let tokens = rest
            .split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect();
        Some(JsonPointer { tokens })
    }

    /// The same pointer applied to element `index` of an array document (a Socket.IO event's
    /// arguments: the first is element 1, after the event name).
    pub fn under_index(&self, index: usize) -> JsonPointer {
        let mut tokens = Vec::with_capacity(self.tokens.len() + 1);
        tokens.push(index.to_string());
        tokens.extend(self.tokens.iter().cloned());
        JsonPointer { tokens }
    }

    /// The non-negative integer at this pointer in `json`, if `json` is one valid JSON document
    /// and such a number is there.
    pub fn read_u64(&self, json: &[u8]) -> Option<u64> {
        self.read(json, Leaf)
    }

    /// The JSON text of the value at this pointer in `json` (a string with its quotes and
    /// escapes, an object with its braces), if `json` is one valid JSON document and the pointer
    /// leads somewhere: what a reply copies from a received event.
    pub fn read_raw<'a>(&self, json: &'a [u8]) -> Option<&'a str> {
        self.read(json, RawLeaf)
    }

    fn read<'a, L>(&self, json: &'a [u8], leaf: L) -> Option<L::Found>
    where
        L: LeafSeed<'a>,
    {
        let mut de = serde_json::Deserializer::from_slice(json);
        let found = At(&self.tokens, leaf).deserialize(&mut de).ok()?;
        de.end().ok()?;
        found
    }
}

/// What is read at the end of the path: the answer is `None` when the value is not of its kind.
trait LeafSeed<'de>: DeserializeSeed<'de, Value = Option<Self::Found>> + Copy {
    type Found;
}

impl<'de> LeafSeed<'de> for Leaf {
    type Found = u64;
}

impl<'de> DeserializeSeed<'de> for Leaf {
    type Value = Option<u64>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<u64>, D::Error> {
        d.deserialize_any(Leaf)
    }
}

/// The leaf as its JSON text, whatever it is.
#[derive(Clone, Copy)]
struct RawLeaf;

impl<'de> LeafSeed<'de> for RawLeaf {
    type Found = &'de str;
}

impl<'de> DeserializeSeed<'de> for RawLeaf {
    type Value = Option<&'de str>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<&'de str>, D::Error> {
        let raw = <&serde_json::value::RawValue>::deserialize(d)?;
        // A raw value is skipped, not parsed: its strings' `\u` escapes are not checked to pair
        // up as UTF-16. Parsed as the document model parses it, or it is no answer.
        Skip.deserialize(&mut serde_json::Deserializer::from_str(raw.get()))
            .map_err(de::Error::custom)?;
        Ok(Some(raw.get()))
    }
}

/// The rest of a pointer's path, applied to the value being deserialized.
struct At<'p, L>(&'p [String], L);

impl<'de, L: LeafSeed<'de>> DeserializeSeed<'de> for At<'_, L> {
    type Value = Option<L::Found>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        match self.0.split_first() {
            None => self.1.deserialize(d),
            Some((token, rest)) => d.deserialize_any(Node {
                token,
                rest,
                leaf: self.1,
            }),
        }
    }
}

/// The value the pointer ends at: a number or nothing.
#[derive(Clone, Copy)]
struct Leaf;

/// A value on the pointer's path: descends into `token`, skips the rest.
struct Node<'p, L> {
    token: &'p str,
    rest: &'p [String],
    leaf: L,
}

/// Scalars and containers that answer `None`: a leaf that is no integer, or a path that runs
/// into a scalar. Containers are skipped to their end.
macro_rules! answer_none_to_the_rest {
    ($found:ty) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Option<$found>, E> {
            Ok(None)
        }

        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Option<$found>, E> {
            Ok(None)
        }

        fn visit_str<E: de::Error>(self, _: &str) -> Result<Option<$found>, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Option<$found>, E> {
            Ok(None)
        }
    };
}

impl<'de> Visitor<'de> for Leaf {
    type Value = Option<u64>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Option<u64>, E> {
        Ok(Some(n))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Option<u64>, E> {
        Ok(u64::try_from(n).ok())
    }

    answer_none_to_the_rest!(u64);

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<u64>, A::Error> {
        Skip.visit_seq(seq).map(|()| None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<u64>, A::Error> {
        Skip.visit_map(map).map(|()| None)
    }
}

impl<'de, L: LeafSeed<'de>> Visitor<'de> for Node<'_, L> {
    type Value = Option<L::Found>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    answer_none_to_the_rest!(L::Found);

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let wanted = array_index(self.token);
        let mut found = None;
        for index in 0.. {
            if Some(index) == wanted {
                match seq.next_element_seed(At(self.rest, self.leaf))? {
                    Some(value) => found = value,
                    None => break,
                }
            } else if seq.next_element_seed(Skip)?.is_none() {
                break;
            }
        }
        Ok(found)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(hit) = map.next_key_seed(KeyIs(self.token))? {
            if hit {
                // The last of duplicate keys wins, as in a parsed document.
                found = map.next_value_seed(At(self.rest, self.leaf))?;
            } else {
                map.next_value_seed(Skip)?;
            }
        }
        Ok(found)
    }
}

/// A value off the pointer's path: read to its end and checked as the document model would check
/// it (serde_json validates strings and numbers, and limits the depth, for `deserialize_any`),
/// but kept nowhere.
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(Skip)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Skip)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }
}

/// An array index token as RFC 6901 writes it: digits, no leading zero (but "0" itself).
fn array_index(token: &str) -> Option<usize> {
    let digits = token.bytes().all(|b| b.is_ascii_digit());
    if !digits || token.is_empty() || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok()
}

/// A map key, compared with a token without being kept.
struct KeyIs<'p>(&'p str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the document model answers: the reference this reader must agree with.
    fn by_value(pointer: &str, json: &str) -> Option<u64> {
        let value: serde_json::Value = serde_json::from_str(json).ok()?;
        value.pointer(pointer)?.as_u64()
    }

    fn read(pointer: &str, json: &str) -> Option<u64> {
        JsonPointer::parse(pointer)
            .unwrap()
            .read_u64(json.as_bytes())
    }

    #[test]
    fn raw_values_are_the_text_the_document_model_reads() {
        let json = r#"{"id":"a\"b","n":17,"o":{ "k" : [1, 2] },"t":true,"z":null}"#;
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        for pointer in ["/id", "/n", "/o", "/o/k/1", "/t", "/z", ""] {
            let raw = JsonPointer::parse(pointer)
                .unwrap()
                .read_raw(json.as_bytes())
                .unwrap_or_else(|| panic!("{pointer}"));
            let reread: serde_json::Value = serde_json::from_str(raw).unwrap();
            assert_eq!(Some(&reread), value.pointer(pointer), "{pointer}");
        }
        let missing = JsonPointer::parse("/missing").unwrap();
        assert_eq!(missing.read_raw(json.as_bytes()), None);
        let through_scalar = JsonPointer::parse("/n/x").unwrap();
        assert_eq!(through_scalar.read_raw(json.as_bytes()), None);
        assert_eq!(missing.read_raw(b"{\"id\":"), None, "invalid JSON");
    }

    #[test]
    fn a_raw_string_with_unpaired_surrogates_is_refused_as_the_document_model_refuses_it() {
        // Found by the fuzz target `pointer`: the raw text was handed back, and a reply copying
        // it would have sent JSON that no parser takes.
        for json in [
            r#"{"s":"\ud655\ud800"}"#,
            r#"{"s":"\ud800"}"#,
            r#"{"s":"\udc00x"}"#,
            r#"{"s":["\ud83d"]}"#,
        ] {
            assert!(
                serde_json::from_str::<serde_json::Value>(json).is_err(),
                "{json}"
            );
            let pointer = JsonPointer::parse("/s").unwrap();
            assert_eq!(pointer.read_raw(json.as_bytes()), None, "{json}");
        }
        let paired = JsonPointer::parse("/s").unwrap();
        assert_eq!(
            paired.read_raw(br#"{"s":"\ud83d\ude00"}"#),
            Some(r#""\ud83d\ude00""#)
        );
    }

    #[test]
    fn agrees_with_the_document_model() {
        let documents = [
            r#"{"seq":41,"ts":1700000000000}"#,
            r#"{"a":{"b":[10,{"c":7},-3,2.5,"9"]},"seq":1,"seq":2}"#,
            r#"{"x/y":{"m~n":5},"":6,"nested":{"seq":{"deeper":[[1,2],[3,[4]]]}}}"#,
            r#"[0,{"seq":12},"tick",null,true,18446744073709551615]"#,
            r#"{"seq":-1,"f":1e3,"big":18446744073709551616,"esc\"aped":3,"\u0073eq2":4}"#,
            r#"{"seq": 1 } trailing"#,
            r#"{"seq":1"#,
            r#"not json"#,
            r#"7"#,
            r#""#,
        ];
        let pointers = [
            "",
            "/seq",
            "/ts",
            "/a/b/0",
            "/a/b/1/c",
            "/a/b/2",
            "/a/b/3",
            "/a/b/4",
            "/a/b/5",
            "/a/b/01",
            "/a/b/-",
            "/x~1y/m~0n",
            "/",
            "/nested/seq/deeper/1/1/0",
            "/1/seq",
            "/5",
            "/0",
            "/00",
            "/big",
            "/f",
            "/esc\"aped",
            "/seq2",
            "/seq/x",
            "/missing",
        ];
        for json in documents {
            for pointer in pointers {
                assert_eq!(
                    read(pointer, json),
                    by_value(pointer, json),
                    "pointer {pointer:?} in {json:?}"
                );
            }
        }
    }

    #[test]
    fn what_is_skipped_is_checked_as_the_document_model_checks_it() {
        let deep = format!(r#"{{"seq":1,"x":{}{}}}"#, "[".repeat(200), "]".repeat(200));
        let shallow = format!(r#"{{"seq":1,"x":{}{}}}"#, "[".repeat(100), "]".repeat(100));
        let documents: [&[u8]; 10] = [
            b"{\"seq\":1,\"x\":\"\xFF\"}",
            b"{\"seq\":1,\"x\":{\"\xFF\":0}}",
            br#"{"seq":1,"x":"\ud800"}"#,
            br#"{"seq":1,"x":"\udc00"}"#,
            br#"{"seq":1,"x":1e400}"#,
            br#"{"seq":1,"x":-1e400}"#,
            br#"["tick",{"seq":1},"\ud800"]"#,
            deep.as_bytes(),
            shallow.as_bytes(),
            br#"{"seq":1,"x":[[0,{"a":"\u00e9\n"}]],"y":"\ud83d\ude00"}"#,
        ];
        for json in documents {
            for pointer in ["/seq", "/1/seq"] {
                let by_value = serde_json::from_slice::<serde_json::Value>(json)
                    .ok()
                    .and_then(|v| v.pointer(pointer)?.as_u64());
                let read = JsonPointer::parse(pointer).unwrap().read_u64(json);
                assert_eq!(
                    read,
                    by_value,
                    "{pointer} in {}",
                    String::from_utf8_lossy(json)
                );
            }
        }
    }

    #[test]
    fn a_socketio_argument_is_read_under_index_one() {
        let seq = JsonPointer::parse("/seq").unwrap().under_index(1);
        assert_eq!(seq.read_u64(br#"["tick",{"seq":8,"ts":1}]"#), Some(8));
        assert_eq!(seq.read_u64(br#"["tick",8]"#), None);
    }

    #[test]
    fn only_pointers_parse() {
        assert_eq!(JsonPointer::parse("seq"), None);
        let tokens = |text: &str| JsonPointer::parse(text).unwrap().tokens;
        assert_eq!(tokens(""), Vec::<String>::new());
        assert_eq!(tokens("/"), [""]);
        assert_eq!(tokens("/a~1b/c~0d/~01"), ["a/b", "c~d", "~1"]);
    }
}
