//! Engine.IO packets and long-polling payloads, v3 and v4 (`protocol::engineio`).
//!
//! The input is read as a polling body of either version: the packets it splits into, joined
//! again by the encoder, split into the same packets; each packet decodes to its own text; a
//! binary packet re-encoded decodes to the same bytes. Then the input as binary data goes
//! through a payload among text packets and comes back out unchanged, and as a query value is
//! percent-encoded into unreserved characters that decode back to it.

use super::unstructured::Unstructured;
use crate::protocol::engineio::{self, Open, Packet, PacketType, Version};

pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for version in [Version::V3, Version::V4] {
        check_payload(version, &text);
        check_binary_round_trip(version, data);
    }
    check_query_value(&text);
}

fn check_payload(version: Version, body: &str) {
    let Ok(packets) = engineio::split_payload(version, body) else {
        return;
    };
    let mut joined = String::new();
    for packet in &packets {
        assert!(
            is_within(packet, body),
            "{version:?}: packet {packet:?} is not part of the body"
        );
        if version == Version::V4 {
            assert!(
                !packet.is_empty() && !packet.contains('\x1e'),
                "v4 packet {packet:?}"
            );
        }
        check_packet(version, packet);
        engineio::push_payload_text(version, &mut joined, packet);
    }
    assert_eq!(
        engineio::split_payload(version, &joined).as_deref(),
        Ok(&packets[..]),
        "{version:?}: split, joined and split again"
    );
}

fn check_packet(version: Version, packet: &str) {
    match engineio::decode_text(version, packet) {
        Ok(Packet::Text(kind, data)) => {
            assert_eq!(
                Some(data),
                packet.get(1..),
                "{version:?}: the data of {packet:?}"
            );
            if kind == PacketType::Open {
                // Only that it answers; what the server sends is the server's business.
                let _ = Open::parse(data);
            }
        }
        Ok(Packet::Binary(bytes)) => {
            assert!(packet.starts_with('b'), "binary packet {packet:?}");
            let again = engineio::binary_packet(version, &bytes);
            assert_eq!(
                engineio::decode_text(version, &again),
                Ok(Packet::Binary(bytes)),
                "{version:?}: {packet:?} decoded, encoded as {again:?} and decoded again"
            );
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// Binary data between text packets in a polling body comes out as it went in.
fn check_binary_round_trip(version: Version, data: &[u8]) {
    let mut u = Unstructured::new(data);
    let text_before = u.bool();
    let binary = u.rest();
    let mut body = String::new();
    if text_before {
        engineio::push_payload_text(version, &mut body, "42[\"a\",\"€😀\"]");
    }
    engineio::push_payload_binary(version, &mut body, binary);
    engineio::push_payload_text(version, &mut body, "6");
    let packets = engineio::split_payload(version, &body)
        .unwrap_or_else(|e| panic!("{version:?}: the encoder's own body {body:?}: {e}"));
    let decoded: Vec<Packet> = packets
        .iter()
        .map(|p| engineio::decode_text(version, p).expect("an encoded packet decodes"))
        .collect();
    let mut expected = Vec::new();
    if text_before {
        expected.push(Packet::Text(PacketType::Message, "2[\"a\",\"€😀\"]"));
    }
    expected.push(Packet::Binary(binary.to_vec()));
    expected.push(Packet::Text(PacketType::Noop, ""));
    assert_eq!(decoded, expected, "{version:?}: body {body:?}");
}

/// Percent-encoding leaves only unreserved characters and `%XX`, and decodes back.
fn check_query_value(text: &str) {
    let encoded = engineio::encode_query_value(text);
    let mut decoded = Vec::new();
    let mut bytes = encoded.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next(), bytes.next()];
            let digits = hex.map(|d| d.and_then(|d| (d as char).to_digit(16)));
            let [Some(high), Some(low)] = digits else {
                panic!("a `%` without two hex digits in {encoded:?}");
            };
            decoded.push((high * 16 + low) as u8);
        } else {
            assert!(
                b.is_ascii_alphanumeric() || b"-._~".contains(&b),
                "{:?} left unencoded in {encoded:?}",
                b as char
            );
            decoded.push(b);
        }
    }
    assert!(
        decoded == text.as_bytes(),
        "{text:?} encoded as {encoded:?}"
    );
}

/// Whether `part` is a slice of `whole`'s memory (not just equal to some part of it).
pub(super) fn is_within(part: &str, whole: &str) -> bool {
    let (start, end) = (
        whole.as_ptr() as usize,
        whole.as_ptr() as usize + whole.len(),
    );
    let at = part.as_ptr() as usize;
    start <= at && at + part.len() <= end
}
