//! Passive HTTP/1.1 message framing for a relay that sees a keep-alive connection's bytes in both
//! directions: where each request or response head ends, how its body is delimited (RFC 9112
//! section 6.3), and when a `101 Switching Protocols` hands the connection over to WebSocket.
//!
//! Heads are parsed with `httparse`; chunked bodies with [`ChunkedDecoder`], which stops exactly at
//! the end of the message so the next one on the connection starts at the returned offset.

mod chunked;

pub use chunked::ChunkedDecoder;

/// Heads longer than this are an error: a relay must not buffer without bound while waiting for a
/// head's end, and real Engine.IO and WebSocket handshakes are a few hundred bytes.
pub const MAX_HEAD_LEN: usize = 64 * 1024;

/// Header fields per head; `httparse` fills a fixed array, and more is an error rather than a panic.
pub const MAX_HEADERS: usize = 128;

/// Why a relay cannot follow the HTTP/1 messages on a connection any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Http1Error {
    #[error(
        "the client's bytes are not an HTTP/1.x request ({0}); is it TLS, HTTP/2 or another protocol?"
    )]
    NotRequest(httparse::Error),
    #[error(
        "the server's bytes are not an HTTP/1.x response ({0}); is it TLS, HTTP/2 or another protocol?"
    )]
    NotResponse(httparse::Error),
    #[error(
        "an HTTP head has more than {MAX_HEADERS} header fields, more than the inspector reads"
    )]
    TooManyHeaders,
    #[error("an HTTP head is longer than {MAX_HEAD_LEN} bytes, more than the inspector buffers")]
    HeadTooLarge,
    #[error("malformed chunked body: {0}")]
    Chunked(&'static str),
}

/// A request line and its header fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    /// The request target as sent, e.g. `/socket.io/?EIO=4&transport=polling&t=N8hyd6w`.
    pub target: String,
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// Field names as sent (case preserved) with their raw values, in order, repeats included.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Bytes from the start of the buffer to the start of the body, empty lines before the request
    /// line included.
    pub head_len: usize,
}

/// A status line and its header fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    /// The reason phrase; empty when absent or when it holds non-ASCII bytes (httparse drops those).
    pub reason: String,
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// Field names as sent (case preserved) with their raw values, in order, repeats included.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Bytes from the start of the buffer to the start of the body.
    pub head_len: usize,
}

impl RequestHead {
    /// The first value of the field `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        field_values(&self.headers, name).next()
    }
}

impl ResponseHead {
    /// The first value of the field `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        field_values(&self.headers, name).next()
    }
}

/// Parses a request head at the start of `buf`: `Ok(None)` when more bytes are needed.
pub fn parse_request_head(buf: &[u8]) -> Result<Option<RequestHead>, Http1Error> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut slots);
    let status = request
        .parse(buf)
        .map_err(|e| head_error(e, Http1Error::NotRequest))?;
    let Some(head_len) = complete_len(status, buf.len())? else {
        return Ok(None);
    };
    Ok(Some(RequestHead {
        method: request.method.unwrap_or_default().to_owned(),
        target: request.path.unwrap_or_default().to_owned(),
        version: request.version.unwrap_or_default(),
        headers: owned_headers(request.headers),
        head_len,
    }))
}

/// Parses a response head at the start of `buf`: `Ok(None)` when more bytes are needed.
pub fn parse_response_head(buf: &[u8]) -> Result<Option<ResponseHead>, Http1Error> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut slots);
    let status = response
        .parse(buf)
        .map_err(|e| head_error(e, Http1Error::NotResponse))?;
    let Some(head_len) = complete_len(status, buf.len())? else {
        return Ok(None);
    };
    Ok(Some(ResponseHead {
        status: response.code.unwrap_or_default(),
        reason: response.reason.unwrap_or_default().to_owned(),
        version: response.version.unwrap_or_default(),
        headers: owned_headers(response.headers),
        head_len,
    }))
}

fn head_error(e: httparse::Error, not_http: fn(httparse::Error) -> Http1Error) -> Http1Error {
    match e {
        httparse::Error::TooManyHeaders => Http1Error::TooManyHeaders,
        e => not_http(e),
    }
}

/// The head's length if it is complete, and the size limit either way.
fn complete_len(
    status: httparse::Status<usize>,
    buffered: usize,
) -> Result<Option<usize>, Http1Error> {
    match status {
        httparse::Status::Complete(len) if len > MAX_HEAD_LEN => Err(Http1Error::HeadTooLarge),
        httparse::Status::Complete(len) => Ok(Some(len)),
        // A head still open after MAX_HEAD_LEN bytes will end beyond the limit.
        httparse::Status::Partial if buffered >= MAX_HEAD_LEN => Err(Http1Error::HeadTooLarge),
        httparse::Status::Partial => Ok(None),
    }
}

fn owned_headers(headers: &[httparse::Header<'_>]) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .map(|h| (h.name.to_owned(), h.value.to_vec()))
        .collect()
}

fn field_values<'h>(
    headers: &'h [(String, Vec<u8>)],
    name: &str,
) -> impl Iterator<Item = &'h [u8]> {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// The comma-separated elements of every `name` field, trimmed, empty ones skipped.
fn list_elements<'h>(
    headers: &'h [(String, Vec<u8>)],
    name: &str,
) -> impl Iterator<Item = &'h [u8]> {
    field_values(headers, name)
        .flat_map(|v| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|e| !e.is_empty())
}

/// How a message body is delimited, decided from the head alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body: the next message starts right after the head.
    Empty,
    /// Exactly this many bytes follow the head.
    Length(u64),
    /// Chunked coding: feed the bytes after the head to a [`ChunkedDecoder`].
    Chunked,
    /// The body runs until the sender closes the connection; nothing after it can be framed.
    UntilClose,
}

/// What the framing fields of a head say, before the request/response rules apply.
enum Framing {
    None,
    Chunked,
    /// Transfer-Encoding without `chunked` as the final coding.
    OtherCoding,
    Length(u64),
    /// Content-Length that is not a number, or several that disagree.
    BadLength,
}

fn framing(headers: &[(String, Vec<u8>)]) -> Framing {
    // Transfer-Encoding wins over Content-Length (RFC 9112 section 6.3, rule 3).
    if field_values(headers, "transfer-encoding").next().is_some() {
        return match list_elements(headers, "transfer-encoding").last() {
            Some(coding) if coding.eq_ignore_ascii_case(b"chunked") => Framing::Chunked,
            _ => Framing::OtherCoding,
        };
    }
    // Repeated or comma-listed lengths are accepted when they agree (rule 5).
    let mut length = None;
    for element in field_values(headers, "content-length").flat_map(|v| v.split(|&b| b == b',')) {
        match (parse_decimal(element.trim_ascii()), length) {
            (None, _) => return Framing::BadLength,
            (Some(n), Some(seen)) if n != seen => return Framing::BadLength,
            (Some(n), _) => length = Some(n),
        }
    }
    length.map_or(Framing::None, Framing::Length)
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        let digit = (d as char).to_digit(10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// How the body of a request is delimited. Without Transfer-Encoding or Content-Length a request has
/// no body. Framing the server must reject (a final coding other than chunked, a bad Content-Length)
/// is `UntilClose`: the server answers 400 and closes, so nothing after it can be framed.
pub fn request_body(head: &RequestHead) -> BodyKind {
    match framing(&head.headers) {
        Framing::None => BodyKind::Empty,
        Framing::Chunked => BodyKind::Chunked,
        Framing::Length(n) => BodyKind::Length(n),
        Framing::OtherCoding | Framing::BadLength => BodyKind::UntilClose,
    }
}

/// How the body of a response to a `request_method` request is delimited (RFC 9112 section 6.3).
///
/// Responses to HEAD and 1xx, 204 and 304 responses have none; a 1xx other than 101 is interim and
/// the final response to the same request follows it. A 2xx to CONNECT turns the connection into a
/// tunnel, and a response without usable framing runs until the server closes.
pub fn response_body(head: &ResponseHead, request_method: &str) -> BodyKind {
    if request_method == "HEAD" || matches!(head.status, 100..=199 | 204 | 304) {
        return BodyKind::Empty;
    }
    if request_method == "CONNECT" && (200..300).contains(&head.status) {
        return BodyKind::UntilClose;
    }
    match framing(&head.headers) {
        Framing::Chunked => BodyKind::Chunked,
        Framing::Length(n) => BodyKind::Length(n),
        Framing::None | Framing::OtherCoding | Framing::BadLength => BodyKind::UntilClose,
    }
}

/// Whether the connection stays open after this response (RFC 9112 section 9.3): in HTTP/1.1
/// unless the server says `Connection: close`, in HTTP/1.0 only when it says `keep-alive`.
pub fn keeps_alive(resp: &ResponseHead) -> bool {
    let mut options = list_elements(&resp.headers, "connection");
    match resp.version {
        0 => options.any(|o| o.eq_ignore_ascii_case(b"keep-alive")),
        _ => !options.any(|o| o.eq_ignore_ascii_case(b"close")),
    }
}

/// A `101` whose Upgrade field names `websocket`: the connection carries WebSocket frames from the
/// end of this head on.
pub fn is_upgrade_to_websocket(resp: &ResponseHead) -> bool {
    resp.status == 101
        && list_elements(&resp.headers, "upgrade").any(|p| p.eq_ignore_ascii_case(b"websocket"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::engineio;

    const POLL_REQUEST: &[u8] = b"GET /socket.io/?EIO=4&transport=polling&t=N8hyd6w HTTP/1.1\r\n\
        Host: localhost:3000\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n";
    const OPEN_PACKET: &str = r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
    const UPGRADE_RESPONSE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

    fn response(head: &str) -> ResponseHead {
        parse_response_head(head.as_bytes())
            .unwrap()
            .expect("complete head")
    }

    #[test]
    fn keep_alive_is_http_1_1_s_default_and_http_1_0_s_exception() {
        let alive = |head: &str| keeps_alive(&response(head));
        assert!(alive("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"));
        assert!(alive("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n"));
        assert!(!alive("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"));
        assert!(!alive(
            "HTTP/1.1 200 OK\r\nConnection: upgrade, Close\r\n\r\n"
        ));
        assert!(!alive("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n"));
        assert!(alive("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n"));
    }

    fn request(head: &str) -> RequestHead {
        parse_request_head(head.as_bytes())
            .unwrap()
            .expect("complete head")
    }

    #[test]
    fn engineio_polling_get_parses_with_no_body() {
        let mut bytes = POLL_REQUEST.to_vec();
        bytes.extend_from_slice(b"GET /next HTTP/1.1\r\n");
        let head = parse_request_head(&bytes).unwrap().unwrap();
        assert_eq!(head.method, "GET");
        assert_eq!(head.target, "/socket.io/?EIO=4&transport=polling&t=N8hyd6w");
        assert_eq!(head.version, 1);
        assert_eq!(head.head_len, POLL_REQUEST.len());
        assert_eq!(head.headers.len(), 3);
        assert_eq!(head.header("HOST"), Some(&b"localhost:3000"[..]));
        assert_eq!(head.header("x-missing"), None);
        assert_eq!(request_body(&head), BodyKind::Empty);
    }

    #[test]
    fn engineio_polling_response_has_a_content_length_body() {
        let text = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\n\
             Content-Length: {}\r\nConnection: keep-alive\r\n\r\n{OPEN_PACKET}",
            OPEN_PACKET.len()
        );
        let head = parse_response_head(text.as_bytes()).unwrap().unwrap();
        assert_eq!(
            (head.status, head.reason.as_str(), head.version),
            (200, "OK", 1)
        );
        assert_eq!(
            head.header("content-type"),
            Some(&b"text/plain; charset=UTF-8"[..])
        );
        let BodyKind::Length(len) = response_body(&head, "GET") else {
            panic!("expected a length");
        };
        let body = &text[head.head_len..head.head_len + len as usize];
        assert_eq!(body, OPEN_PACKET);
        assert_eq!(
            engineio::decode_text(engineio::Version::V4, body),
            Ok(engineio::Packet::Text(
                engineio::PacketType::Open,
                &OPEN_PACKET[1..]
            ))
        );
    }

    #[test]
    fn engineio_polling_post_carries_its_packets_by_length() {
        let head = request(
            "POST /socket.io/?EIO=4&transport=polling&sid=lv_VI97HAXpY6yYWAAAC HTTP/1.1\r\n\
             Content-Type: text/plain;charset=UTF-8\r\nContent-Length: 2\r\n\r\n40",
        );
        assert_eq!(head.method, "POST");
        assert_eq!(request_body(&head), BodyKind::Length(2));
    }

    #[test]
    fn a_101_to_websocket_ends_at_its_head_and_has_no_body() {
        let mut bytes = UPGRADE_RESPONSE.to_vec();
        bytes.extend_from_slice(&[0x81, 0x01, b'2']);
        let head = parse_response_head(&bytes).unwrap().unwrap();
        assert_eq!(head.head_len, UPGRADE_RESPONSE.len());
        assert_eq!(
            (head.status, head.reason.as_str()),
            (101, "Switching Protocols")
        );
        assert!(is_upgrade_to_websocket(&head));
        assert_eq!(response_body(&head, "GET"), BodyKind::Empty);

        assert!(is_upgrade_to_websocket(&response(
            "HTTP/1.1 101 x\r\nupgrade: WebSocket\r\n\r\n"
        )));
        assert!(!is_upgrade_to_websocket(&response(
            "HTTP/1.1 101 x\r\nUpgrade: h2c\r\n\r\n"
        )));
        assert!(!is_upgrade_to_websocket(&response(
            "HTTP/1.1 200 OK\r\nUpgrade: websocket\r\n\r\n"
        )));
        assert!(!is_upgrade_to_websocket(&response(
            "HTTP/1.1 101 x\r\n\r\n"
        )));
    }

    #[test]
    fn every_strict_prefix_of_a_head_is_incomplete() {
        for cut in 0..POLL_REQUEST.len() {
            assert_eq!(
                parse_request_head(&POLL_REQUEST[..cut]),
                Ok(None),
                "cut {cut}"
            );
        }
        for cut in 0..UPGRADE_RESPONSE.len() {
            assert_eq!(
                parse_response_head(&UPGRADE_RESPONSE[..cut]),
                Ok(None),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn bytes_that_are_not_http1_are_errors() {
        let tls_hello = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc];
        assert!(matches!(
            parse_request_head(&tls_hello),
            Err(Http1Error::NotRequest(_))
        ));
        assert_eq!(
            parse_request_head(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            Err(Http1Error::NotRequest(httparse::Error::Version))
        );
        assert!(matches!(
            parse_response_head(b"SSH-2.0-OpenSSH_9.6\r\n"),
            Err(Http1Error::NotResponse(_))
        ));
        assert!(matches!(
            parse_response_head(b"HTTP/2 200\r\n\r\n"),
            Err(Http1Error::NotResponse(_))
        ));
    }

    #[test]
    fn heads_over_64_kib_are_errors_complete_or_not() {
        let mut open = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
        open.resize(MAX_HEAD_LEN, b'a');
        assert_eq!(parse_request_head(&open[..MAX_HEAD_LEN - 1]), Ok(None));
        assert_eq!(parse_request_head(&open), Err(Http1Error::HeadTooLarge));
        open.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_request_head(&open), Err(Http1Error::HeadTooLarge));
    }

    #[test]
    fn more_header_fields_than_the_limit_is_an_error_not_a_panic() {
        let fields = |n: usize| (0..n).map(|i| format!("X-{i}: v\r\n")).collect::<String>();
        let ok = format!("HTTP/1.1 200 OK\r\n{}\r\n", fields(MAX_HEADERS));
        assert_eq!(response(&ok).headers.len(), MAX_HEADERS);
        let over = format!("HTTP/1.1 200 OK\r\n{}\r\n", fields(MAX_HEADERS + 1));
        assert_eq!(
            parse_response_head(over.as_bytes()),
            Err(Http1Error::TooManyHeaders)
        );
    }

    #[test]
    fn response_body_kinds_follow_rfc_9112_section_6_3() {
        let cases: &[(&str, &str, BodyKind)] = &[
            ("HEAD", "200 OK\r\nContent-Length: 10", BodyKind::Empty),
            ("GET", "100 Continue", BodyKind::Empty),
            (
                "GET",
                "204 No Content\r\nContent-Length: 10",
                BodyKind::Empty,
            ),
            (
                "GET",
                "304 Not Modified\r\nContent-Length: 10",
                BodyKind::Empty,
            ),
            ("GET", "200 OK\r\nContent-Length: 10", BodyKind::Length(10)),
            ("GET", "200 OK\r\nContent-Length: 0", BodyKind::Length(0)),
            (
                "GET",
                "200 OK\r\nContent-Length: 5, 5\r\ncontent-length: 5",
                BodyKind::Length(5),
            ),
            (
                "GET",
                "200 OK\r\nContent-Length: 5\r\nContent-Length: 6",
                BodyKind::UntilClose,
            ),
            ("GET", "200 OK\r\nContent-Length: 5x", BodyKind::UntilClose),
            (
                "GET",
                "200 OK\r\nContent-Length: 99999999999999999999",
                BodyKind::UntilClose,
            ),
            (
                "GET",
                "200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3",
                BodyKind::Chunked,
            ),
            (
                "GET",
                "200 OK\r\nTransfer-Encoding: gzip, CHUNKED",
                BodyKind::Chunked,
            ),
            (
                "GET",
                "200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked",
                BodyKind::Chunked,
            ),
            (
                "GET",
                "200 OK\r\nTransfer-Encoding: chunked, gzip",
                BodyKind::UntilClose,
            ),
            ("GET", "200 OK", BodyKind::UntilClose),
            (
                "CONNECT",
                "200 Connection Established",
                BodyKind::UntilClose,
            ),
            (
                "CONNECT",
                "407 Auth\r\nContent-Length: 0",
                BodyKind::Length(0),
            ),
        ];
        for (method, head, expected) in cases {
            let head = response(&format!("HTTP/1.1 {head}\r\n\r\n"));
            assert_eq!(response_body(&head, method), *expected, "{method} {head:?}");
        }
    }

    #[test]
    fn request_body_kinds_default_to_empty() {
        let cases: &[(&str, BodyKind)] = &[
            ("", BodyKind::Empty),
            ("Content-Length: 7\r\n", BodyKind::Length(7)),
            (
                "Transfer-Encoding: chunked\r\nContent-Length: 7\r\n",
                BodyKind::Chunked,
            ),
            ("Transfer-Encoding: gzip\r\n", BodyKind::UntilClose),
            ("Content-Length: -1\r\n", BodyKind::UntilClose),
        ];
        for (fields, expected) in cases {
            let head = request(&format!("POST / HTTP/1.1\r\n{fields}\r\n"));
            assert_eq!(request_body(&head), *expected, "{fields:?}");
        }
    }

    #[test]
    fn a_chunked_response_then_the_next_response_on_a_keep_alive_connection() {
        let first = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut stream = first.to_vec();
        stream.extend_from_slice(b"4\r\nWiki\r\n0\r\n\r\n");
        stream.extend_from_slice(b"HTTP/1.1 204 No Content\r\n\r\n");
        let head = parse_response_head(&stream).unwrap().unwrap();
        assert_eq!(response_body(&head, "GET"), BodyKind::Chunked);
        let mut body = Vec::new();
        let (used, done) = ChunkedDecoder::new()
            .feed(&stream[head.head_len..], &mut body)
            .unwrap();
        assert!(done);
        assert_eq!(body, b"Wiki");
        let next = parse_response_head(&stream[head.head_len + used..])
            .unwrap()
            .unwrap();
        assert_eq!(next.status, 204);
    }
}
