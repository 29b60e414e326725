//! WebSocket frames (`protocol::wsframe`), the inspector's parser, against tungstenite's.
//!
//! The input is a stream of frames as one side sends them. At each frame boundary both parsers
//! read the header; wherever either accepts one they must agree on every field, and where the
//! stream is too short for a header both must ask for more. tungstenite refuses reserved opcodes,
//! which the inspector reports: there its header must be the same, opcode included. Then the
//! encoder: `parse(encode(frame)) == frame`, byte for byte what tungstenite writes.

use std::io::Cursor;

use tokio_tungstenite::tungstenite;
use tungstenite::error::{Error as WsError, ProtocolError};
use tungstenite::protocol::frame::{Frame, FrameHeader as WsHeader};

use super::unstructured::{Unstructured, cuts, pieces};
use crate::protocol::wsframe::{self, FrameHeader};

/// Frames walked per input; the rest of a longer stream adds nothing new.
const MAX_FRAMES: usize = 64;

pub fn check(data: &[u8]) {
    let mut at = 0;
    for _ in 0..MAX_FRAMES {
        let rest = &data[at..];
        let Some(ours) = agreed_header(rest) else {
            break;
        };
        check_prefixes(rest, &ours);
        let Ok(len) = usize::try_from(ours.frame_len()) else {
            break;
        };
        if len > rest.len() {
            break;
        }
        check_payload(&ours, &rest[ours.header_len..len]);
        at += len;
    }
    check_round_trip(data);
}

/// The header at the start of `bytes`, after checking that tungstenite reads the same one.
fn agreed_header(bytes: &[u8]) -> Option<FrameHeader> {
    let ours = wsframe::parse_header(bytes);
    let mut cursor = Cursor::new(bytes);
    match (WsHeader::parse(&mut cursor), ours) {
        (Ok(Some((theirs, len))), Some(ours)) => {
            assert_eq!(
                same_fields(&theirs, len, cursor.position()),
                same_fields_of(&ours),
                "wsframe and tungstenite read different headers from {:02x?}",
                &bytes[..bytes.len().min(14)]
            );
        }
        (Ok(None), None) => {}
        (Err(WsError::Protocol(ProtocolError::InvalidOpcode(op))), Some(ours)) => {
            assert_eq!(ours.opcode, op, "the reserved opcode tungstenite refused");
            assert_eq!(ours.opcode_name(), "reserved", "opcode {op} is reserved");
        }
        (theirs, ours) => panic!(
            "wsframe and tungstenite disagree on {:02x?}: wsframe {ours:?}, tungstenite {theirs:?}",
            &bytes[..bytes.len().min(14)]
        ),
    }
    ours
}

/// (fin, rsv, opcode, mask, payload length, header length) as tungstenite reports them.
fn same_fields(
    h: &WsHeader,
    len: u64,
    header_len: u64,
) -> (bool, u8, u8, Option<[u8; 4]>, u64, u64) {
    let rsv = u8::from(h.rsv1) << 2 | u8::from(h.rsv2) << 1 | u8::from(h.rsv3);
    (h.is_final, rsv, h.opcode.into(), h.mask, len, header_len)
}

fn same_fields_of(h: &FrameHeader) -> (bool, u8, u8, Option<[u8; 4]>, u64, u64) {
    (
        h.fin,
        h.rsv,
        h.opcode,
        h.mask,
        h.payload_len,
        h.header_len as u64,
    )
}

/// A header needs all of its bytes, and needs no more.
fn check_prefixes(bytes: &[u8], header: &FrameHeader) {
    assert!(
        [2, 4, 6, 8, 10, 14].contains(&header.header_len) && header.header_len <= bytes.len(),
        "header length {} of {:02x?}",
        header.header_len,
        &bytes[..bytes.len().min(14)]
    );
    for cut in 0..header.header_len {
        assert_eq!(
            wsframe::parse_header(&bytes[..cut]),
            None,
            "a {cut}-byte prefix parsed"
        );
    }
    assert_eq!(
        wsframe::parse_header(&bytes[..header.header_len]).as_ref(),
        Some(header),
        "the header alone parses as the header"
    );
}

/// Unmasking in pieces is unmasking whole, and masking again gives the wire bytes back.
fn check_payload(header: &FrameHeader, wire: &[u8]) {
    let Some(mask) = header.mask else {
        return;
    };
    let mut whole = wire.to_vec();
    wsframe::unmask(mask, 0, &mut whole);
    let mut u = Unstructured::new(wire);
    let cuts = cuts(&mut u, wire.len());
    let mut pieced = Vec::with_capacity(wire.len());
    for piece in pieces(wire, &cuts) {
        let mut piece = piece.to_vec();
        wsframe::unmask(mask, pieced.len() as u64, &mut piece);
        pieced.extend_from_slice(&piece);
    }
    assert_eq!(
        pieced, whole,
        "unmasking at cuts {cuts:?} differs from unmasking whole"
    );
    let mut again = whole;
    wsframe::unmask(mask, 0, &mut again);
    assert_eq!(again, wire, "masking twice is not the identity");
}

/// A frame drawn from the input, encoded by wsframe and by tungstenite, parsed back.
fn check_round_trip(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let head = u.byte();
    let (fin, rsv, opcode) = (head & 0x80 != 0, head >> 4 & 0b111, head & 0x0f);
    let mask = u.bool().then(|| u.array4());
    let boundary = u.byte();
    let mut payload = u.rest().to_vec();
    // Now and then a payload at a length-encoding boundary, which short inputs never reach.
    if let Some(&len) = [125, 126, 127, 65535, 65536].get(usize::from(boundary % 32)) {
        let pattern = if payload.is_empty() {
            vec![0x5a]
        } else {
            payload
        };
        payload = pattern.iter().copied().cycle().take(len).collect();
    }
    let frame = wsframe::encode_frame(fin, rsv, opcode, mask, &payload);
    let header = wsframe::parse_header(&frame).expect("an encoded frame has a whole header");
    let expected_len =
        2 + match payload.len() {
            0..=125 => 0,
            126..=65535 => 2,
            _ => 8,
        } + if mask.is_some() { 4 } else { 0 };
    assert_eq!(
        same_fields_of(&header),
        (
            fin,
            rsv,
            opcode,
            mask,
            payload.len() as u64,
            expected_len as u64
        ),
        "encode then parse"
    );
    assert_eq!(header.frame_len(), frame.len() as u64, "frame length");
    let mut decoded = frame[header.header_len..].to_vec();
    if let Some(mask) = mask {
        wsframe::unmask(mask, 0, &mut decoded);
    }
    assert!(decoded == payload, "encode then unmask changed the payload");

    let theirs_header = WsHeader {
        is_final: fin,
        rsv1: rsv & 0b100 != 0,
        rsv2: rsv & 0b010 != 0,
        rsv3: rsv & 0b001 != 0,
        opcode: opcode.into(),
        mask,
    };
    let mut theirs = Vec::with_capacity(frame.len());
    Frame::from_payload(theirs_header, payload.into())
        .format(&mut theirs)
        .expect("writing into a Vec cannot fail");
    assert!(
        theirs == frame,
        "wsframe encodes {:02x?}..., tungstenite {:02x?}...",
        &frame[..frame.len().min(20)],
        &theirs[..theirs.len().min(20)]
    );
}
