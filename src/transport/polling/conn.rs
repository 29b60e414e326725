//! One keep-alive HTTP/1.1 connection of a long-polling session, driven by polling: a request is
//! written whole, then its response is read until its body ends (a length, chunks, or the server
//! closing). Nothing is buffered between exchanges and reads go through a buffer on the stack, so
//! a GET that the server holds open costs the socket and a few words. (hyper's client connection
//! kept an 8 KiB read buffer, an 8 KiB write buffer, a request channel that allocates 32 slots at
//! once and a driver task: 40.6 KiB per idle polling client, which has two connections.)
//!
//! A server may close a keep-alive connection that sits idle (Node's http server does after 5 s,
//! and the POST connection idles between pongs for a whole ping interval): the next exchange
//! finds it closed before writing anything and opens another, as browsers do. A connection that
//! fails once its request is written is a fault: the server may have acted on the request.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::metrics::ErrorKind;
use crate::protocol::http1::{self, BodyKind, ChunkedDecoder};
use crate::transport::Fault;
use crate::transport::ws::{ConnectError, Connector, MaybeTls};

/// Bytes read in one call, through a buffer on the stack.
const READ_CHUNK: usize = 8 * 1024;
/// The largest response body read; a larger one is a fault. (Engine.IO's maxPayload, which
/// bounds what a server sends in one response, is 1 MB by default.)
pub const MAX_BODY: usize = 16 * 1024 * 1024;

type Opening = Pin<Box<dyn Future<Output = Result<MaybeTls, ConnectError>> + Send>>;

/// A keep-alive connection and the exchange under way on it, if any.
pub struct HttpConn {
    /// `None` once the server closed it or said it would: the next exchange opens another.
    stream: Option<MaybeTls>,
    state: State,
}

enum State {
    Idle,
    /// A request given, not yet begun: first, whether the connection is still open.
    Given(Bytes),
    /// A new connection for the request.
    Opening(Opening, Bytes),
    /// `request[written..]` is left to write.
    Writing {
        request: Bytes,
        written: usize,
    },
    Reading(Response),
}

/// A response being read.
#[derive(Default)]
struct Response {
    /// What arrived, from the start of the head.
    buf: Vec<u8>,
    head: Option<Head>,
    /// A chunked body: how far `buf` was fed to the decoder, and what it decoded.
    fed: usize,
    chunks: ChunkedDecoder,
    decoded: Vec<u8>,
}

/// What the response head says.
#[derive(Clone, Copy)]
struct Head {
    len: usize,
    status: u16,
    body: BodyKind,
    keep_alive: bool,
}

/// A whole response: its status and body.
struct Complete {
    status: u16,
    body: Bytes,
    keep_alive: bool,
}

impl HttpConn {
    pub fn new(stream: MaybeTls) -> HttpConn {
        HttpConn {
            stream: Some(stream),
            state: State::Idle,
        }
    }

    /// No exchange under way.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle)
    }

    /// Starts an exchange: `request` is a whole HTTP/1.1 request, head and body; its response
    /// comes from [`Self::poll_response`]. The connection must be idle.
    pub fn send(&mut self, request: Bytes) {
        debug_assert!(self.is_idle(), "one exchange at a time");
        self.state = State::Given(request);
    }

    /// Drives the exchange under way: Ready with the body of a 2xx response, or a fault of
    /// `kind` (the connection failed, the response is not HTTP/1.1, or its status is not 2xx,
    /// with the start of its body). `connector` opens a new connection when the server closed
    /// this one between exchanges.
    pub fn poll_response(
        &mut self,
        cx: &mut Context<'_>,
        connector: &Connector,
        kind: ErrorKind,
    ) -> Poll<Result<Bytes, Fault>> {
        let failed = |detail: String| Poll::Ready(Err(Fault::new(kind, detail)));
        loop {
            match &mut self.state {
                State::Idle => return failed("no request was sent".into()),
                State::Given(request) => {
                    let request = std::mem::take(request);
                    if self
                        .stream
                        .as_mut()
                        .is_some_and(|s| closed_while_idle(s, cx))
                    {
                        self.stream = None;
                    }
                    self.state = match self.stream {
                        Some(_) => State::Writing {
                            request,
                            written: 0,
                        },
                        None => {
                            let connector = connector.clone();
                            let opening = async move { connector.connect_transport().await };
                            State::Opening(Box::pin(opening), request)
                        }
                    };
                }
                State::Opening(opening, request) => {
                    let opened = std::task::ready!(opening.as_mut().poll(cx));
                    let request = std::mem::take(request);
                    match opened {
                        Ok(stream) => self.stream = Some(stream),
                        Err(e) => {
                            self.state = State::Idle;
                            return Poll::Ready(Err(Fault::new(e.kind, e.detail)));
                        }
                    }
                    self.state = State::Writing {
                        request,
                        written: 0,
                    };
                }
                State::Writing { request, written } => {
                    let stream = self.stream.as_mut().expect("a connection to write to");
                    match poll_write_all(stream, request, written, cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(())) => self.state = State::Reading(Response::default()),
                        Poll::Ready(Err(e)) => {
                            self.abandon();
                            return failed(e.to_string());
                        }
                    }
                }
                State::Reading(response) => {
                    let stream = self.stream.as_mut().expect("a connection to read from");
                    let complete = match response.poll_read(stream, cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(complete)) => complete,
                        Poll::Ready(Err(detail)) => {
                            self.abandon();
                            return failed(detail);
                        }
                    };
                    self.state = State::Idle;
                    if !complete.keep_alive {
                        self.stream = None;
                    }
                    if !(200..300).contains(&complete.status) {
                        let body = &complete.body[..complete.body.len().min(200)];
                        let text = String::from_utf8_lossy(body);
                        let detail = format!("HTTP {} {}", complete.status, text.trim());
                        return failed(detail.trim_end().to_string());
                    }
                    return Poll::Ready(Ok(complete.body));
                }
            }
        }
    }

    /// The exchange failed: the connection cannot carry another.
    fn abandon(&mut self) {
        self.state = State::Idle;
        self.stream = None;
    }
}

/// A kept-alive connection that the server closed while it sat idle: the read side has ended,
/// or has something although nothing was asked (at most a `408` a server sends before closing).
fn closed_while_idle(stream: &mut MaybeTls, cx: &mut Context<'_>) -> bool {
    let mut probe = [0u8; 64];
    let mut buf = ReadBuf::new(&mut probe);
    Pin::new(stream).poll_read(cx, &mut buf).is_ready()
}

fn poll_write_all(
    stream: &mut MaybeTls,
    request: &[u8],
    written: &mut usize,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<()>> {
    while *written < request.len() {
        let n = std::task::ready!(Pin::new(&mut *stream).poll_write(cx, &request[*written..]))?;
        if n == 0 {
            return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
        }
        *written += n;
    }
    Pin::new(stream).poll_flush(cx)
}

impl Response {
    /// Reads until the response is complete.
    fn poll_read(
        &mut self,
        stream: &mut MaybeTls,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Complete, String>> {
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            let mut buf = ReadBuf::new(&mut chunk);
            if let Err(e) = std::task::ready!(Pin::new(&mut *stream).poll_read(cx, &mut buf)) {
                return Poll::Ready(Err(e.to_string()));
            }
            let read = buf.filled();
            if read.is_empty() {
                return Poll::Ready(self.ended());
            }
            if self.buf.len() + read.len() > http1::MAX_HEAD_LEN + MAX_BODY {
                return Poll::Ready(Err(format!("a response longer than {MAX_BODY} bytes")));
            }
            self.buf.extend_from_slice(read);
            if let Some(complete) = self.complete()? {
                return Poll::Ready(Ok(complete));
            }
        }
    }

    /// The response so far, once it is whole.
    fn complete(&mut self) -> Result<Option<Complete>, String> {
        let head = match self.head {
            Some(head) => head,
            None => match self.read_head()? {
                Some(head) => head,
                None => return Ok(None),
            },
        };
        let body_start = head.len;
        // Where the response ends in `buf`, once it is whole.
        let (end, body) = match head.body {
            BodyKind::Empty => (body_start, Bytes::new()),
            BodyKind::Length(n) => {
                let end = usize::try_from(n)
                    .ok()
                    .filter(|&n| n <= MAX_BODY)
                    .map(|n| body_start + n)
                    .ok_or_else(|| format!("a response body of {n} bytes, more than is read"))?;
                if self.buf.len() < end {
                    return Ok(None);
                }
                (end, Bytes::new())
            }
            BodyKind::Chunked => {
                let from = self.fed.max(body_start);
                let (used, done) = self
                    .chunks
                    .feed(&self.buf[from..], &mut self.decoded)
                    .map_err(|e| e.to_string())?;
                self.fed = from + used;
                if !done {
                    return Ok(None);
                }
                (self.fed, Bytes::from(std::mem::take(&mut self.decoded)))
            }
            // Complete only when the server closes.
            BodyKind::UntilClose => return Ok(None),
        };
        if self.buf.len() > end {
            return Err("the server sent more than its response".into());
        }
        let body = match head.body {
            BodyKind::Length(_) => {
                Bytes::from(std::mem::take(&mut self.buf)).slice(body_start..end)
            }
            _ => body,
        };
        Ok(Some(Complete {
            status: head.status,
            body,
            keep_alive: head.keep_alive,
        }))
    }

    /// Parses the head once it is all there; interim (1xx) responses are skipped.
    fn read_head(&mut self) -> Result<Option<Head>, String> {
        loop {
            let Some(head) = http1::parse_response_head(&self.buf).map_err(|e| e.to_string())?
            else {
                return Ok(None);
            };
            if (100..200).contains(&head.status) && head.status != 101 {
                self.buf.drain(..head.head_len);
                continue;
            }
            let parsed = Head {
                len: head.head_len,
                status: head.status,
                // Neither HEAD nor CONNECT is sent: the method makes no difference.
                body: http1::response_body(&head, "GET"),
                keep_alive: http1::keeps_alive(&head),
            };
            self.head = Some(parsed);
            return Ok(Some(parsed));
        }
    }

    /// The server closed the connection: the end of a body that runs until then, else too soon.
    fn ended(&mut self) -> Result<Complete, String> {
        match self.head {
            Some(head) if head.body == BodyKind::UntilClose => Ok(Complete {
                status: head.status,
                body: Bytes::from(std::mem::take(&mut self.buf)).slice(head.len..),
                keep_alive: false,
            }),
            _ => Err("the server closed the connection before its response was complete".into()),
        }
    }
}

#[cfg(test)]
mod tests;
