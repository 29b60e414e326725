//! What a capture holds, whatever file it came from: the ordinary HTTP exchanges and the
//! real-time connections (a raw WebSocket, or an Engine.IO session over polling, WebSocket or
//! both), each message with its time and direction. `har` and `jsonl` read files into it;
//! `conversation` reads the conversation out of it.

use crate::protocol::engineio;
use crate::wire::record::Dir;

/// A recorded session, from a HAR file or a `volley inspect --jsonl` file.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    /// `"a HAR file"` or `"a volley inspect capture"`, and what recorded it.
    pub source: String,
    /// Wall-clock time of `t = 0`, RFC 3339, when the capture says.
    pub started: Option<String>,
    /// Ordinary HTTP requests and their responses, in the order they were sent.
    pub exchanges: Vec<Exchange>,
    /// WebSocket connections and Engine.IO sessions, in the order they opened.
    pub sockets: Vec<Socket>,
}

/// One HTTP request and its response.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    /// Seconds from the capture's start to the request.
    pub at: f64,
    /// The connection it travelled on (inspect), or its entry number (HAR, from 1).
    pub conn: u64,
    /// Where in the file it is, for messages: `entry 3`, `line 12`.
    pub place: String,
    pub method: String,
    /// The URL as requested: absolute (HAR) or a path with the `Host` header's origin (inspect).
    pub url: Url,
    pub request_headers: Vec<(String, String)>,
    pub request_body: Option<Body>,
    /// None when the capture has no answer.
    pub status: Option<u16>,
    pub response_headers: Vec<(String, String)>,
    pub response_body: Option<Body>,
    /// What the browser says the request was for (`xhr`, `fetch`, `document`, `script`): HAR only.
    pub resource_type: Option<String>,
}

/// A body as text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Body {
    pub text: String,
    /// Its media type, from Content-Type or the HAR's mimeType, lower-case, without parameters.
    pub mime: String,
    /// The capture cut it short.
    pub truncated: bool,
}

/// An absolute URL cut into the parts a scenario needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Url {
    /// `http`, `https`, `ws` or `wss`.
    pub scheme: String,
    /// `host:port`, the port always written.
    pub authority: String,
    /// The path, from `/`.
    pub path: String,
    /// The query's pairs, percent-decoded, in order.
    pub query: Vec<(String, String)>,
}

/// A real-time connection: a raw WebSocket or one Engine.IO session.
#[derive(Debug, Clone, Default)]
pub struct Socket {
    /// Seconds from the capture's start to its first request.
    pub at: f64,
    /// Seconds from the capture's start to its last message or its close.
    pub until: f64,
    /// The connection number (inspect) or the entry number (HAR) of its first request.
    pub conn: u64,
    pub place: String,
    /// The first request's URL (the upgrade, or Engine.IO's first polling request).
    pub url: Url,
    /// The headers of that request, as the client sent them.
    pub request_headers: Vec<(String, String)>,
    /// Engine.IO's session, when it is one.
    pub engine: Option<Engine>,
    /// Every message, both ways, in time order: WebSocket messages, or Engine.IO packets.
    pub messages: Vec<Message>,
    /// A WebSocket entry of a HAR that has no `_webSocketMessages` (Firefox writes none): its
    /// place. Its messages are not in the file.
    pub messages_missing: Option<String>,
}

/// How an Engine.IO session travelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engine {
    pub version: engineio::Version,
    pub sid: String,
    /// It began with long-polling (else straight over WebSocket).
    pub polling: bool,
    /// It moved to (or began over) WebSocket.
    pub websocket: bool,
}

/// One message: a WebSocket message, or one Engine.IO packet (its text, `42[...]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub at: f64,
    pub dir: Dir,
    pub text: String,
    /// A binary message (its text is then a hex or base64 rendering, not replayed).
    pub binary: bool,
    pub place: String,
}

impl Url {
    /// Parses `scheme://authority/path?query`; the port is filled in from the scheme.
    pub fn parse(text: &str) -> Option<Url> {
        let (scheme, rest) = text.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" | "ws" => 80,
            "https" | "wss" => 443,
            _ => return None,
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let (authority, path_query) = match rest.find(['/', '?']) {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        let authority = authority.rsplit('@').next().unwrap_or_default();
        if authority.is_empty() {
            return None;
        }
        let has_port = match authority.rfind(':') {
            Some(colon) => !authority[colon..].contains(']'),
            None => false,
        };
        let authority = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:{default_port}")
        };
        // A host and a port a client can connect to, as a scenario's target must have.
        let valid = authority
            .parse::<http::uri::Authority>()
            .is_ok_and(|a| a.port_u16().is_some() && !a.host().is_empty());
        if !valid {
            return None;
        }
        let mut url = Url::relative(path_query)?;
        url.scheme = scheme;
        url.authority = authority;
        Some(url)
    }

    /// A path and query with no origin yet; None when the path is not one a request can have.
    pub fn relative(path_query: &str) -> Option<Url> {
        let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        path.parse::<http::uri::PathAndQuery>().ok()?;
        Some(Url {
            scheme: String::new(),
            authority: String::new(),
            path,
            query: parse_query(query),
        })
    }

    /// The value of query parameter `key`.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `http://host:port` for an HTTP or WebSocket URL (`ws` as `http`).
    pub fn http_origin(&self) -> String {
        let scheme = match self.scheme.as_str() {
            "wss" | "https" => "https",
            _ => "http",
        };
        format!("{scheme}://{}", self.authority)
    }

    /// `ws://host:port` for an HTTP or WebSocket URL.
    pub fn ws_origin(&self) -> String {
        let scheme = match self.scheme.as_str() {
            "wss" | "https" => "wss",
            _ => "ws",
        };
        format!("{scheme}://{}", self.authority)
    }
}

/// `a=1&b=x%20y` as decoded pairs (`+` is a space, as forms write it).
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Percent-decoding, `+` as a space; invalid escapes are kept as written.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        out.push((hi * 16 + lo) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of header `name` (any case), the first of its name.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The media type of a Content-Type value: lower-case, without parameters.
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_cut_into_their_parts() {
        let url =
            Url::parse("http://127.0.0.1:3000/socket.io/?EIO=4&transport=polling&t=P1").unwrap();
        assert_eq!(url.authority, "127.0.0.1:3000");
        assert_eq!(url.path, "/socket.io/");
        assert_eq!(url.param("EIO"), Some("4"));
        assert_eq!(url.param("t"), Some("P1"));
        let url = Url::parse("wss://example.com/feed?token=a%2Bb+c#x").unwrap();
        assert_eq!(url.authority, "example.com:443");
        assert_eq!(url.param("token"), Some("a+b c"));
        assert_eq!(url.http_origin(), "https://example.com:443");
        assert_eq!(Url::parse("http://h").unwrap().path, "/");
        assert_eq!(Url::parse("http://[::1]/x").unwrap().authority, "[::1]:80");
        assert!(Url::parse("ftp://h/").is_none());
        // Hosts and ports a client cannot connect to are no URL.
        for bad in [
            "http://12\u{fffd}.0.0.1/",
            "ws://h:99999/",
            "ws://h:x/",
            "ws://:80/",
            "ws://a b/",
            "ws://h/a b",
            "ws://h/a\u{1}b",
        ] {
            assert!(Url::parse(bad).is_none(), "{bad}");
        }
        assert!(Url::parse("/relative").is_none());
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }
}
