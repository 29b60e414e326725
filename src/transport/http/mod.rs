//! One virtual user's HTTP side: the requests of a conversation's HTTP steps (a login, a token
//! fetch) before and after its WebSocket. Each user has its own connection and its own jar, as a
//! browser would: one connection per user, so the server sees as many connections as users; kept
//! alive between steps, so a step costs a request and not a TCP and TLS handshake; and a cookie
//! jar, so the session cookie a login sets goes with the next steps (and, through
//! [`HttpSession::cookie_header`], with the WebSocket upgrade). hyper's client drives the
//! connection: a user's steps are few, and its connection is closed after `before_connect` unless
//! later steps need it (long-polling, which holds two connections per client for the whole run,
//! has a smaller one of its own in `polling::conn`). Any status comes back as a response; only
//! what prevents one (refused, timed out, reset, TLS, an oversized body) is an [`HttpFailure`].

use std::error::Error as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body as _, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use super::ws::{ConnectError, Connector};
use crate::metrics::ErrorKind;
use crate::protocol::cookie::{self, SetCookie};
use crate::units::format_duration;

/// The largest response body read; a bigger one is an [`HttpFailure::Io`].
pub const MAX_BODY: usize = 16 * 1024 * 1024;
/// Cookies kept per session; a server setting more has the extra ones ignored.
pub const MAX_COOKIES: usize = 64;

type Conn = SendRequest<Full<Bytes>>;

/// One request, borrowed from the caller's rendered buffers.
pub struct HttpRequest<'a> {
    pub method: Method,
    /// Origin form, starting with `/`: `/login?x=1`.
    pub path_and_query: &'a str,
    /// Sent as given, except: `Cookie` is merged with the jar's, `Host` replaces the target's,
    /// and `Content-Length` / `Transfer-Encoding` are dropped (the body decides them).
    pub headers: &'a [(HeaderName, HeaderValue)],
    pub body: Bytes,
    /// `Content-Type`, unless `headers` has one; `None` sends none.
    pub content_type: Option<&'static str>,
}

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Why a request got no response; the client layer maps these to counted error kinds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpFailure {
    #[error("connection refused: {0}")]
    Refused(String),
    #[error("no complete response within {}", format_duration(*.0))]
    Timeout(Duration),
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// Reset, closed mid-response, a response hyper cannot parse, an oversized body.
    #[error("{0}")]
    Io(String),
    /// The rendered request is not valid HTTP (a path or header value with forbidden bytes).
    #[error("cannot build the request: {0}")]
    InvalidRequest(String),
}

impl From<ConnectError> for HttpFailure {
    fn from(e: ConnectError) -> HttpFailure {
        match e.kind {
            ErrorKind::ConnectRefused => HttpFailure::Refused(e.detail),
            ErrorKind::Tls => HttpFailure::Tls(e.detail),
            _ => HttpFailure::Io(e.detail),
        }
    }
}

/// A user's keep-alive HTTP/1.1 connection to one server (opened on first use, reopened when
/// the server closed it) and its cookie jar. Small until used: no connection, no cookies.
#[derive(Default)]
pub struct HttpSession {
    /// `None` before the first request and after a failure, a timeout or [`close`](Self::close):
    /// a connection whose request was abandoned cannot carry another.
    conn: Option<Conn>,
    jar: CookieJar,
}

impl HttpSession {
    pub fn new() -> HttpSession {
        HttpSession::default()
    }

    /// Sends `request` and reads the whole response; connect, send and body read together are
    /// bounded by `timeout`. A kept-alive connection that turns out closed is replaced once,
    /// silently. Every `Set-Cookie` of the response goes into the jar.
    pub async fn send(
        &mut self,
        connector: &Connector,
        request: HttpRequest<'_>,
        timeout: Duration,
    ) -> Result<HttpResponse, HttpFailure> {
        let target = request.path_and_query;
        let invalid = |why: String| HttpFailure::InvalidRequest(format!("`{target}`: {why}"));
        if !target.starts_with('/') {
            return Err(invalid("the path must start with `/`".into()));
        }
        let uri = Uri::try_from(target).map_err(|e| invalid(e.to_string()))?;
        let headers = self
            .request_headers(connector, &request, uri.path())
            .map_err(|e| invalid(e.to_string()))?;
        let head = (request.method, uri, headers);
        match tokio::time::timeout(timeout, self.exchange(connector, &head, request.body)).await {
            Ok(result) => result,
            // The connection went down with the dropped future (`exchange` holds it).
            Err(_) => Err(HttpFailure::Timeout(timeout)),
        }
    }

    /// `a=1; b=2`: the jar's live cookies whose Path matches `path`, longest path first.
    pub fn cookie_header(&self, path: &str) -> Option<HeaderValue> {
        let cookies = self.jar.header(path, Instant::now())?;
        HeaderValue::from_maybe_shared(Bytes::from(cookies)).ok()
    }

    /// Drops the keep-alive connection (the jar stays).
    pub fn close(&mut self) {
        self.conn = None;
    }

    fn request_headers(
        &self,
        connector: &Connector,
        request: &HttpRequest<'_>,
        path: &str,
    ) -> Result<HeaderMap, http::Error> {
        let mut headers = HeaderMap::with_capacity(request.headers.len() + 3);
        headers.insert(header::HOST, HeaderValue::try_from(connector.authority())?);
        let mut cookies = Vec::new();
        for (name, value) in request.headers {
            if *name == header::COOKIE {
                join_cookies(&mut cookies, value.as_bytes());
            } else if *name == header::HOST || *name == header::CONTENT_TYPE {
                headers.insert(name, value.clone());
            } else if *name != header::CONTENT_LENGTH && *name != header::TRANSFER_ENCODING {
                headers.append(name, value.clone());
            }
        }
        if let Some(jar) = self.jar.header(path, Instant::now()) {
            join_cookies(&mut cookies, &jar);
        }
        if !cookies.is_empty() {
            headers.insert(
                header::COOKIE,
                HeaderValue::from_maybe_shared(Bytes::from(cookies))?,
            );
        }
        if let Some(content_type) = request.content_type {
            if !headers.contains_key(header::CONTENT_TYPE) {
                headers.insert(header::CONTENT_TYPE, HeaderValue::try_from(content_type)?);
            }
        }
        Ok(headers)
    }

    async fn exchange(
        &mut self,
        connector: &Connector,
        (method, uri, headers): &(Method, Uri, HeaderMap),
        body: Bytes,
    ) -> Result<HttpResponse, HttpFailure> {
        // The connection is taken out for the exchange and put back only after a whole
        // response, so that a failure or a timeout leaves none behind.
        let mut reused = true;
        let (conn, response) = loop {
            let mut conn = match self.conn.take() {
                Some(conn) if !conn.is_closed() => conn,
                _ => {
                    reused = false;
                    open_conn(connector).await?
                }
            };
            let mut request = Request::new(Full::new(body.clone()));
            *request.method_mut() = method.clone();
            *request.uri_mut() = uri.clone();
            *request.headers_mut() = headers.clone();
            let sent = match conn.ready().await {
                Ok(()) => conn.send_request(request).await,
                Err(e) => Err(e),
            };
            match sent {
                Ok(response) => break (conn, response),
                // The server closed the idle connection before or while it got the request
                // (curl and browsers resend then too). Once: a fresh connection is not retried.
                Err(e) if reused && went_stale(&e) => reused = false,
                Err(e) => return Err(HttpFailure::Io(describe(&e))),
            }
        };
        let (parts, incoming) = response.into_parts();
        let (now, unix_now) = (Instant::now(), unix_now());
        for value in parts.headers.get_all(header::SET_COOKIE) {
            if let Some(set) = cookie::parse_set_cookie(value.as_bytes()) {
                self.jar.store(&set, uri.path(), now, unix_now);
            }
        }
        let body = read_body(incoming).await?;
        // Kept even after `Connection: close`: `is_closed` or `ready` tells on the next request.
        self.conn = Some(conn);
        Ok(HttpResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// TCP (and TLS) and the HTTP/1.1 handshake; hyper's connection driver runs as its own task.
async fn open_conn(connector: &Connector) -> Result<Conn, HttpFailure> {
    let stream = connector.connect_transport().await?;
    let (conn, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| HttpFailure::Io(describe(&e)))?;
    tokio::spawn(async move {
        let _ = driver.await;
    });
    Ok(conn)
}

/// The whole body, at most [`MAX_BODY`] bytes (a larger `Content-Length` fails before reading).
async fn read_body(incoming: Incoming) -> Result<Bytes, HttpFailure> {
    let too_large = || {
        HttpFailure::Io(format!(
            "the response body is larger than the {} MiB limit",
            MAX_BODY >> 20
        ))
    };
    if incoming.size_hint().lower() > MAX_BODY as u64 {
        return Err(too_large());
    }
    match Limited::new(incoming, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(too_large()),
        Err(e) => Err(HttpFailure::Io(describe(&*e))),
    }
}

/// Whether a failure before any response means only that the idle connection had been closed.
fn went_stale(e: &hyper::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    let io_kind = e
        .source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind);
    e.is_canceled()
        || e.is_closed()
        || e.is_incomplete_message()
        || matches!(
            io_kind,
            Some(ConnectionReset | BrokenPipe | ConnectionAborted)
        )
}

/// An error and its causes, `: `-separated (hyper's own message rarely says enough).
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn join_cookies(header: &mut Vec<u8>, cookies: &[u8]) {
    if !header.is_empty() {
        header.extend_from_slice(b"; ");
    }
    header.extend_from_slice(cookies);
}

fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// A session's cookies, in the order they were first set. Domain is not kept: the session
/// talks to one host.
#[derive(Default)]
struct CookieJar {
    cookies: Vec<StoredCookie>,
}

struct StoredCookie {
    name: Box<[u8]>,
    value: Box<[u8]>,
    path: Box<[u8]>,
    /// `None`: kept until the session ends.
    expires: Option<Instant>,
}

impl CookieJar {
    /// Stores, replaces or (Max-Age <= 0, Expires in the past) deletes the cookie `set`, which
    /// came in the response to a request for `request_path`.
    fn store(&mut self, set: &SetCookie<'_>, request_path: &str, now: Instant, unix_now: i64) {
        self.cookies.retain(|c| c.expires.is_none_or(|t| t > now));
        let path = set
            .path
            .unwrap_or(cookie::default_path(request_path).as_bytes());
        let existing = self
            .cookies
            .iter()
            .position(|c| *c.name == *set.name && *c.path == *path);
        let lifetime = set
            .max_age
            .or(set.expires.map(|t| t.saturating_sub(unix_now)));
        if lifetime.is_some_and(|secs| secs <= 0) {
            if let Some(i) = existing {
                self.cookies.remove(i);
            }
            return;
        }
        let cookie = StoredCookie {
            name: set.name.into(),
            value: set.value.into(),
            path: path.into(),
            expires: lifetime.and_then(|secs| now.checked_add(Duration::from_secs(secs as u64))),
        };
        match existing {
            Some(i) => self.cookies[i] = cookie,
            None if self.cookies.len() < MAX_COOKIES => {
                // Sessions hold few cookies: exact capacity rather than room to grow.
                self.cookies.reserve_exact(1);
                self.cookies.push(cookie);
            }
            None => {}
        }
    }

    /// `a=1; b=2` for a request to `path`: live cookies whose path matches, longest path first,
    /// then in the order they were set.
    fn header(&self, path: &str, now: Instant) -> Option<Vec<u8>> {
        let mut matching: Vec<&StoredCookie> = self
            .cookies
            .iter()
            .filter(|c| c.expires.is_none_or(|t| t > now))
            .filter(|c| cookie::path_matches(path.as_bytes(), &c.path))
            .collect();
        if matching.is_empty() {
            return None;
        }
        matching.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        let mut header = Vec::new();
        for c in matching {
            let pair = [&c.name[..], b"=", &c.value[..]].concat();
            join_cookies(&mut header, &pair);
        }
        Some(header)
    }
}

#[cfg(test)]
mod tests;
