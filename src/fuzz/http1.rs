//! HTTP/1.1 heads and chunked bodies (`protocol::http1`), as the inspector's relay meets them.
//!
//! Heads: a complete head parses the same from its own bytes and with anything after it, and
//! every prefix of it is "more bytes needed", never an error or another head; the body kind
//! follows from the fields. Chunked bodies: fed in any pieces the decoder says what it says fed
//! whole, and a body chunked by a reference encoder here decodes to itself and stops exactly
//! at its end.

use super::unstructured::{Unstructured, cuts, pieces};
use crate::protocol::http1::{
    self, BodyKind, ChunkedDecoder, Http1Error, MAX_HEAD_LEN, ResponseHead,
};

/// Prefixes of a complete head that are checked, at most (the cut points are spread evenly).
const MAX_PREFIXES: usize = 48;

pub fn check_head(data: &[u8]) {
    let request = http1::parse_request_head(data);
    check_parse(data, &request, http1::parse_request_head, |h| h.head_len);
    if let Ok(Some(head)) = &request {
        assert!(head.version <= 1, "HTTP/1.{}", head.version);
        let kind = http1::request_body(head);
        check_body_kind(kind, &head.headers);
        if kind == BodyKind::Chunked {
            check_chunked(&data[head.head_len..]);
        }
    }
    let response = http1::parse_response_head(data);
    check_parse(data, &response, http1::parse_response_head, |h| h.head_len);
    if let Ok(Some(head)) = &response {
        for method in ["GET", "POST", "HEAD", "CONNECT"] {
            let kind = http1::response_body(head, method);
            check_body_kind(kind, &head.headers);
            assert!(
                method != "HEAD" || kind == BodyKind::Empty,
                "a response to HEAD has no body"
            );
        }
        if http1::is_upgrade_to_websocket(head) {
            assert_eq!(head.status, 101, "an upgrade is a 101");
        }
        if http1::response_body(head, "GET") == BodyKind::Chunked {
            check_chunked(&data[head.head_len..]);
        }
        check_response_fields(head);
    }
}

type Parsed<H> = Result<Option<H>, Http1Error>;

fn check_parse<H: PartialEq + std::fmt::Debug>(
    data: &[u8],
    parsed: &Parsed<H>,
    parse: fn(&[u8]) -> Parsed<H>,
    head_len: fn(&H) -> usize,
) {
    match parsed {
        Ok(Some(head)) => {
            let len = head_len(head);
            assert!(
                len <= data.len() && len <= MAX_HEAD_LEN,
                "head length {len} of {} bytes",
                data.len()
            );
            assert_eq!(
                &parse(&data[..len]),
                parsed,
                "the head alone parses differently"
            );
            let mut longer = data[..len].to_vec();
            longer.extend_from_slice(b"\r\n\r\nGET / HTTP/1.1\r\n\r\n\xff");
            assert_eq!(&parse(&longer), parsed, "bytes after the head changed it");
            let step = len.div_ceil(MAX_PREFIXES).max(1);
            for cut in (0..len).step_by(step) {
                assert_eq!(
                    parse(&data[..cut]),
                    Ok(None),
                    "a {cut}-byte prefix of a {len}-byte head is not incomplete"
                );
            }
        }
        Ok(None) => assert!(data.len() < MAX_HEAD_LEN, "an open head past the limit"),
        Err(Http1Error::HeadTooLarge) => {
            assert!(
                data.len() >= MAX_HEAD_LEN,
                "too large at {} bytes",
                data.len()
            )
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// A body kind needs the field that says it.
fn check_body_kind(kind: BodyKind, headers: &[(String, Vec<u8>)]) {
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    match kind {
        BodyKind::Chunked => assert!(has("transfer-encoding"), "chunked without the field"),
        BodyKind::Length(_) => assert!(
            has("content-length") && !has("transfer-encoding"),
            "a length without Content-Length, or despite Transfer-Encoding"
        ),
        BodyKind::Empty | BodyKind::UntilClose => {}
    }
}

fn check_response_fields(head: &ResponseHead) {
    assert!(head.version <= 1, "HTTP/1.{}", head.version);
    assert!(head.status <= 999, "status {}", head.status);
}

pub fn check_chunked(data: &[u8]) {
    check_decoder_splits(data);
    check_encoded(data);
}

/// What the decoder says of the whole input, it says of the input in pieces.
fn check_decoder_splits(data: &[u8]) {
    let mut body = Vec::new();
    let whole = ChunkedDecoder::new().feed(data, &mut body);
    if let Ok((used, done)) = whole {
        assert!(
            used <= data.len(),
            "consumed {used} of {} bytes",
            data.len()
        );
        assert!(done || used == data.len(), "an open body left bytes unread");
        assert!(body.len() <= used, "more body than input");
    }
    let mut u = Unstructured::new(data);
    let cuts = cuts(&mut u, data.len());
    let mut decoder = ChunkedDecoder::new();
    let mut pieced_body = Vec::new();
    let (mut used, mut done) = (0, false);
    let mut error = None;
    for piece in pieces(data, &cuts) {
        match decoder.feed(piece, &mut pieced_body) {
            Ok((n, d)) => {
                assert!(!done || n == 0, "a finished body consumed more");
                assert!(d || n == piece.len(), "an open body left bytes of a piece");
                used += n;
                done = d;
            }
            Err(e) => {
                error.get_or_insert(e);
                assert_eq!(Some(&e), error.as_ref(), "an error did not stick");
            }
        }
    }
    match (whole, error) {
        (Ok(whole), None) => {
            assert_eq!((used, done), whole, "pieces at {cuts:?} end elsewhere");
            assert!(
                pieced_body == body,
                "pieces at {cuts:?} decode another body"
            );
        }
        (Err(e), Some(pieced)) => assert_eq!(e, pieced, "pieces at {cuts:?} fail otherwise"),
        (whole, pieced) => panic!("whole: {whole:?}, in pieces at {cuts:?}: {pieced:?}"),
    }
}

/// The input chunked by a reference encoder (sizes, extensions and trailers drawn from it)
/// decodes back to itself and ends where the encoding ends.
fn check_encoded(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let sizes: Vec<usize> = (0..1 + u.below(4)).map(|_| 1 + u.below(40)).collect();
    let extensions = u.bool();
    let trailers = u.bool();
    let upper = u.bool();
    let body = u.rest();
    let mut encoded = Vec::new();
    let mut rest = body;
    let mut i = 0;
    while !rest.is_empty() {
        let (chunk, after) = rest.split_at(sizes[i % sizes.len()].min(rest.len()));
        let size = if upper {
            format!("{:X}", chunk.len())
        } else {
            format!("{:x}", chunk.len())
        };
        encoded.extend_from_slice(size.as_bytes());
        if extensions {
            encoded.extend_from_slice(b" ;name=\"a;b\\\"c\"; flag");
        }
        encoded.extend_from_slice(b"\r\n");
        encoded.extend_from_slice(chunk);
        encoded.extend_from_slice(b"\r\n");
        rest = after;
        i += 1;
    }
    encoded.extend_from_slice(b"0\r\n");
    if trailers {
        encoded.extend_from_slice(b"Expires: Wed, 21 Oct 2015 07:28:00 GMT\r\nX-A: 1\r\n");
    }
    encoded.extend_from_slice(b"\r\n");
    let end = encoded.len();
    encoded.extend_from_slice(b"HTTP/1.1 200 OK\r\n\r\n");
    let mut decoded = Vec::new();
    let result = ChunkedDecoder::new().feed(&encoded, &mut decoded);
    assert_eq!(
        result,
        Ok((end, true)),
        "a well-chunked body of {} bytes",
        body.len()
    );
    assert!(decoded == body, "chunked then decoded is another body");
}
