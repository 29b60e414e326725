//! Passive RFC 6455 frame parsing, for bytes seen on the wire from either side of a connection.
//!
//! `volley inspect` relays bytes unchanged and decodes a copy, so this module describes what it sees
//! and never rejects anything: reserved opcodes, RSV bits, oversized or fragmented control frames,
//! unmasked client frames, masked server frames, non-minimal length encodings and 64-bit lengths with
//! the top bit set all parse. Whether a frame is valid is the reader's business; the fields carry
//! every bit needed to decide.

/// Opcodes defined by RFC 6455 section 5.2, for readers and for crafting frames with [`encode_frame`].
pub mod opcode {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}

/// The fixed part of one frame: everything before the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Last fragment of a message.
    pub fin: bool,
    /// The three RSV bits as sent, RSV1 = `0b100` (permessage-deflate sets it on compressed messages).
    pub rsv: u8,
    /// The 4-bit opcode as sent, reserved values included.
    pub opcode: u8,
    /// The masking key, present when the MASK bit is set (whichever side sent the frame).
    pub mask: Option<[u8; 4]>,
    /// Payload length as encoded; may be absurd (up to `u64::MAX`) since nothing is rejected.
    pub payload_len: u64,
    /// Bytes before the payload: 2, plus 2 or 8 for an extended length, plus 4 for a mask.
    pub header_len: usize,
}

impl FrameHeader {
    /// Header plus payload: how far the next frame starts from this one. Saturates rather than
    /// overflowing on a 64-bit length near `u64::MAX`, which no connection will ever deliver anyway.
    pub fn frame_len(&self) -> u64 {
        (self.header_len as u64).saturating_add(self.payload_len)
    }

    /// Opcodes with the high bit set (0x8 to 0xF, reserved ones included) are control frames.
    pub fn is_control(&self) -> bool {
        self.opcode & 0x8 != 0
    }

    /// A name for logs; every reserved opcode is `"reserved"` (the number stays in [`Self::opcode`]).
    pub fn opcode_name(&self) -> &'static str {
        match self.opcode {
            opcode::CONTINUATION => "continuation",
            opcode::TEXT => "text",
            opcode::BINARY => "binary",
            opcode::CLOSE => "close",
            opcode::PING => "ping",
            opcode::PONG => "pong",
            _ => "reserved",
        }
    }
}

/// Parses the header at the start of `buf`, or returns `None` when more bytes are needed.
///
/// Any complete header parses, whatever its bits say; the payload need not be in `buf` yet.
pub fn parse_header(buf: &[u8]) -> Option<FrameHeader> {
    let (&b0, rest) = buf.split_first()?;
    let (&b1, rest) = rest.split_first()?;
    let (payload_len, rest) = match b1 & 0x7f {
        126 => {
            let (len, rest) = rest.split_first_chunk::<2>()?;
            (u64::from(u16::from_be_bytes(*len)), rest)
        }
        127 => {
            let (len, rest) = rest.split_first_chunk::<8>()?;
            (u64::from_be_bytes(*len), rest)
        }
        short => (u64::from(short), rest),
    };
    let (mask, rest) = if b1 & 0x80 != 0 {
        let (key, rest) = rest.split_first_chunk::<4>()?;
        (Some(*key), rest)
    } else {
        (None, rest)
    };
    let header_len = buf.len() - rest.len();
    Some(FrameHeader {
        fin: b0 & 0x80 != 0,
        rsv: (b0 >> 4) & 0b111,
        opcode: b0 & 0x0f,
        mask,
        payload_len,
        header_len,
    })
}

/// XORs `data` with the masking key in place (masking and unmasking are the same operation).
///
/// `offset` is the position of `data[0]` within the frame's payload, so a payload that arrives in
/// pieces can be unmasked piece by piece as it is read.
pub fn unmask(mask: [u8; 4], offset: u64, data: &mut [u8]) {
    // Rotate the key so that `key[0]` applies to `data[0]`; every 8-byte word then starts at a
    // multiple of 4 from `data[0]` and sees the same repeated key.
    let mut key = mask;
    key.rotate_left((offset % 4) as usize);
    let word_key = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut words = data.chunks_exact_mut(8);
    for word in &mut words {
        // Always `Some`: `chunks_exact_mut(8)` yields 8-byte slices.
        if let Some(word) = word.first_chunk_mut::<8>() {
            *word = (u64::from_ne_bytes(*word) ^ word_key).to_ne_bytes();
        }
    }
    for (i, byte) in words.into_remainder().iter_mut().enumerate() {
        *byte ^= key[i % 4];
    }
}

/// Reads a close frame's (unmasked) payload as its status code and reason bytes.
///
/// Returns `None` when the payload carries no code: an empty payload (legal, RFC 6455 section 5.5.1)
/// or a single byte, which is malformed since a code takes two. The caller holds the payload and can
/// tell the two apart by its length. The reason is returned as bytes because it may not be UTF-8.
pub fn close_body(payload: &[u8]) -> Option<(u16, &[u8])> {
    let (code, reason) = payload.split_first_chunk::<2>()?;
    Some((u16::from_be_bytes(*code), reason))
}

/// Builds one frame with the shortest length encoding, masking the payload when a key is given.
///
/// Only the low 3 bits of `rsv` and the low 4 bits of `opcode` are used. Nothing is checked, so tests
/// can craft fragmented, reserved or oversized control frames on purpose.
pub fn encode_frame(
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) -> Vec<u8> {
    let mut frame = Vec::with_capacity(14 + payload.len());
    frame.push(u8::from(fin) << 7 | (rsv & 0b111) << 4 | (opcode & 0x0f));
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        len @ 0..=125 => frame.push(mask_bit | len as u8),
        len @ 126..=0xffff => {
            frame.push(mask_bit | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(mask_bit | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    if let Some(key) = mask {
        frame.extend_from_slice(&key);
    }
    let payload_start = frame.len();
    frame.extend_from_slice(payload);
    if let Some(key) = mask {
        unmask(key, 0, &mut frame[payload_start..]);
    }
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn header(fin: bool, opcode: u8, mask: Option<[u8; 4]>, len: u64, hlen: usize) -> FrameHeader {
        FrameHeader {
            fin,
            rsv: 0,
            opcode,
            mask,
            payload_len: len,
            header_len: hlen,
        }
    }

    /// Parses a whole frame and returns its header and unmasked payload.
    fn parse_frame(frame: &[u8]) -> (FrameHeader, Vec<u8>) {
        let h = parse_header(frame).expect("complete header");
        assert_eq!(h.frame_len(), frame.len() as u64, "frame length");
        let mut payload = frame[h.header_len..].to_vec();
        if let Some(key) = h.mask {
            unmask(key, 0, &mut payload);
        }
        (h, payload)
    }

    // RFC 6455 section 5.7 examples.

    #[test]
    fn rfc_unmasked_text_hello_parses() {
        let frame = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let (h, payload) = parse_frame(&frame);
        assert_eq!(h, header(true, opcode::TEXT, None, 5, 2));
        assert_eq!(h.opcode_name(), "text");
        assert_eq!(payload, b"Hello");
        assert_eq!(encode_frame(true, 0, opcode::TEXT, None, b"Hello"), frame);
    }

    #[test]
    fn rfc_masked_text_hello_parses_and_unmasks() {
        let frame = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (h, payload) = parse_frame(&frame);
        assert_eq!(h, header(true, opcode::TEXT, Some(RFC_KEY), 5, 6));
        assert_eq!(payload, b"Hello");
        assert_eq!(
            encode_frame(true, 0, opcode::TEXT, Some(RFC_KEY), b"Hello"),
            frame
        );
    }

    #[test]
    fn rfc_fragmented_hello_is_a_text_start_and_a_final_continuation() {
        let first = [0x01, 0x03, 0x48, 0x65, 0x6c];
        let second = [0x80, 0x02, 0x6c, 0x6f];
        let (h1, p1) = parse_frame(&first);
        let (h2, p2) = parse_frame(&second);
        assert_eq!(h1, header(false, opcode::TEXT, None, 3, 2));
        assert_eq!(h2, header(true, opcode::CONTINUATION, None, 2, 2));
        assert_eq!(h2.opcode_name(), "continuation");
        assert_eq!([p1, p2].concat(), b"Hello");
        assert_eq!(encode_frame(false, 0, opcode::TEXT, None, b"Hel"), first);
        assert_eq!(encode_frame(true, 0, 0, None, b"lo"), second);
    }

    #[test]
    fn rfc_ping_and_masked_pong_are_control_frames() {
        let ping = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let (h, payload) = parse_frame(&ping);
        assert_eq!(h, header(true, opcode::PING, None, 5, 2));
        assert!(h.is_control());
        assert_eq!(h.opcode_name(), "ping");
        assert_eq!(payload, b"Hello");

        let pong = [
            0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (h, payload) = parse_frame(&pong);
        assert_eq!(h, header(true, opcode::PONG, Some(RFC_KEY), 5, 6));
        assert_eq!(h.opcode_name(), "pong");
        assert_eq!(payload, b"Hello");
    }

    #[test]
    fn rfc_256_byte_binary_uses_a_16_bit_length() {
        let h = parse_header(&[0x82, 0x7e, 0x01, 0x00]).unwrap();
        assert_eq!(h, header(true, opcode::BINARY, None, 256, 4));
        assert_eq!(h.frame_len(), 260);
        assert_eq!(
            &encode_frame(true, 0, opcode::BINARY, None, &[0; 256])[..4],
            [0x82, 0x7e, 0x01, 0x00]
        );
    }

    #[test]
    fn rfc_64_kib_binary_uses_a_64_bit_length() {
        let bytes = [0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00];
        let h = parse_header(&bytes).unwrap();
        assert_eq!(h, header(true, opcode::BINARY, None, 65536, 10));
        assert_eq!(
            &encode_frame(true, 0, opcode::BINARY, None, &[0; 65536])[..10],
            bytes
        );
    }

    #[test]
    fn every_strict_prefix_of_a_header_is_incomplete() {
        let frames = [
            encode_frame(true, 0, opcode::TEXT, None, b"hi"),
            encode_frame(true, 0, opcode::TEXT, Some(RFC_KEY), b"hi"),
            encode_frame(true, 0, opcode::BINARY, None, &[7; 300]),
            encode_frame(true, 0, opcode::BINARY, Some(RFC_KEY), &[7; 300]),
            encode_frame(true, 0, opcode::BINARY, None, &[7; 70_000]),
            encode_frame(true, 0, opcode::BINARY, Some(RFC_KEY), &[7; 70_000]),
        ];
        for frame in &frames {
            let h = parse_header(frame).unwrap();
            for cut in 0..h.header_len {
                assert_eq!(parse_header(&frame[..cut]), None, "prefix of {cut} bytes");
            }
            // The header alone is enough: the payload need not have arrived.
            assert_eq!(parse_header(&frame[..h.header_len]), Some(h));
        }
    }

    #[test]
    fn encode_then_parse_round_trips_at_length_boundaries() {
        for len in [0usize, 1, 125, 126, 127, 65535, 65536] {
            for mask in [None, Some(RFC_KEY), Some([0xff, 0, 0x80, 1])] {
                let payload: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
                let frame = encode_frame(true, 0, opcode::BINARY, mask, &payload);
                let (h, decoded) = parse_frame(&frame);
                let len_bytes = match len {
                    0..=125 => 0,
                    126..=65535 => 2,
                    _ => 8,
                };
                let mask_bytes = if mask.is_some() { 4 } else { 0 };
                assert_eq!(
                    h,
                    header(true, 2, mask, len as u64, 2 + len_bytes + mask_bytes)
                );
                assert_eq!(decoded, payload, "len {len} mask {mask:?}");
            }
        }
    }

    #[test]
    fn reserved_bits_opcodes_and_oversized_control_frames_are_reported_not_rejected() {
        let frame = encode_frame(false, 0b101, 0xB, None, &[0; 200]);
        let h = parse_header(&frame).unwrap();
        assert!(!h.fin);
        assert_eq!(h.rsv, 0b101);
        assert_eq!(h.opcode, 0xB);
        assert_eq!(h.opcode_name(), "reserved");
        assert!(h.is_control());
        assert_eq!(h.payload_len, 200);

        let h = parse_header(&encode_frame(true, 0b100, 0x3, None, b"")).unwrap();
        assert_eq!((h.rsv, h.opcode, h.opcode_name()), (0b100, 3, "reserved"));
        assert!(!h.is_control());
    }

    #[test]
    fn opcode_names_cover_all_sixteen_values() {
        let names: Vec<&str> = (0..16u8)
            .map(|op| header(true, op, None, 0, 2).opcode_name())
            .collect();
        assert_eq!(&names[..3], ["continuation", "text", "binary"]);
        assert!(names[3..8].iter().all(|n| *n == "reserved"));
        assert_eq!(&names[8..11], ["close", "ping", "pong"]);
        assert!(names[11..].iter().all(|n| *n == "reserved"));
    }

    #[test]
    fn a_64_bit_length_with_the_top_bit_set_parses_and_frame_len_saturates() {
        let mut bytes = vec![0x82, 0xff];
        bytes.extend_from_slice(&u64::MAX.to_be_bytes());
        bytes.extend_from_slice(&RFC_KEY);
        let h = parse_header(&bytes).unwrap();
        assert_eq!(h.payload_len, u64::MAX);
        assert_eq!(h.header_len, 14);
        assert_eq!(h.frame_len(), u64::MAX);
    }

    #[test]
    fn non_minimal_length_encodings_are_taken_at_face_value() {
        // 5 bytes announced through the 16-bit and 64-bit forms.
        let h = parse_header(&[0x81, 0x7e, 0x00, 0x05]).unwrap();
        assert_eq!((h.payload_len, h.header_len), (5, 4));
        let h = parse_header(&[0x81, 0x7f, 0, 0, 0, 0, 0, 0, 0, 5]).unwrap();
        assert_eq!((h.payload_len, h.header_len), (5, 10));
    }

    #[test]
    fn random_bytes_never_panic_and_headers_stay_within_the_input() {
        let mut rng = fastrand::Rng::with_seed(6455);
        for _ in 0..20_000 {
            let len = rng.usize(0..20);
            let bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            if let Some(h) = parse_header(&bytes) {
                assert!(h.header_len <= bytes.len());
                assert!([2, 4, 6, 8, 10, 14].contains(&h.header_len));
                assert!(h.rsv <= 0b111 && h.opcode <= 0xf);
                let _ = (h.frame_len(), h.opcode_name(), h.is_control());
            }
            let _ = close_body(&bytes);
            let mut data = bytes.clone();
            unmask([rng.u8(..), 1, 2, 3], rng.u64(..), &mut data);
        }
    }

    fn unmask_bytewise(mask: [u8; 4], offset: u64, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            // 2^64 is a multiple of 4, so wrapping keeps the key position right.
            *b ^= mask[(offset.wrapping_add(i as u64) % 4) as usize];
        }
    }

    #[test]
    fn unmask_matches_the_bytewise_definition_at_any_offset() {
        for len in 0..40 {
            for offset in [0u64, 1, 2, 3, 4, 5, 7, u64::MAX - 3, u64::MAX] {
                let data: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5a).collect();
                let (mut fast, mut slow) = (data.clone(), data);
                unmask(RFC_KEY, offset, &mut fast);
                unmask_bytewise(RFC_KEY, offset, &mut slow);
                assert_eq!(fast, slow, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn piecewise_unmasking_equals_whole_unmasking_at_every_split() {
        let masked: Vec<u8> = (0..37u8).map(|i| i.wrapping_mul(73)).collect();
        let mut whole = masked.clone();
        unmask(RFC_KEY, 0, &mut whole);
        for split in 0..=masked.len() {
            let mut pieces = masked.clone();
            let (head, tail) = pieces.split_at_mut(split);
            unmask(RFC_KEY, 0, head);
            unmask(RFC_KEY, split as u64, tail);
            assert_eq!(pieces, whole, "split at {split}");
        }
        // Three pieces, the middle one starting off a 4-byte boundary.
        let mut pieces = masked.clone();
        unmask(RFC_KEY, 0, &mut pieces[..3]);
        unmask(RFC_KEY, 3, &mut pieces[3..22]);
        unmask(RFC_KEY, 22, &mut pieces[22..]);
        assert_eq!(pieces, whole);
    }

    #[test]
    fn close_body_reads_code_and_reason_and_none_without_a_code() {
        assert_eq!(
            close_body(&[0x03, 0xe8, b'b', b'y', b'e']),
            Some((1000, &b"bye"[..]))
        );
        assert_eq!(close_body(&[0x03, 0xe9]), Some((1001, &b""[..])));
        // Reasons are bytes: invalid UTF-8 is handed back as is.
        assert_eq!(close_body(&[0x0f, 0xa0, 0xff]), Some((4000, &[0xff][..])));
        assert_eq!(close_body(&[]), None);
        // A single byte cannot hold a code: malformed, reported as no code.
        assert_eq!(close_body(&[0x03]), None);
    }

    #[test]
    fn encode_keeps_only_the_bits_the_header_has_room_for() {
        let frame = encode_frame(true, 0xff, 0xf1, None, b"");
        let h = parse_header(&frame).unwrap();
        assert_eq!((h.rsv, h.opcode), (0b111, 0x1));
    }
}
