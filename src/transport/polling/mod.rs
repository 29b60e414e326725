//! Engine.IO HTTP long-polling: a GET that the server holds open until it has packets, and a POST
//! for what the client sends, each on its own keep-alive HTTP/1.1 connection ([`conn`]), so that
//! at most one of each is in flight, as the protocol requires.
//!
//! The transport is driven by polling it (no task of its own): [`Polling::poll_next`] keeps a GET
//! in flight and hands out the packets of each response; [`Polling::poll_flush`] sends what was
//! queued in one POST, at most `maxPayload` bytes at a time.

mod conn;

use std::collections::VecDeque;
use std::fmt::Write;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;

use super::Fault;
use super::ws::{ConnectError, Connector};
use crate::metrics::{ConnectPhase, ConnectPhases, ErrorKind};
use crate::protocol::engineio::{self, Version};
use conn::HttpConn;

/// One long-polling session after its handshake.
pub struct Polling {
    version: Version,
    /// Where requests go, with the headers they carry; it opens a new connection when the
    /// server closed one between requests.
    connector: Connector,
    /// Path and query of every request of the session, `sid` included.
    uri: String,
    /// The GET of every poll, written once.
    get_request: Bytes,
    get: HttpConn,
    post: HttpConn,
    /// Packets waiting for a POST, in payload format, and where each one ends.
    out: String,
    out_ends: VecDeque<usize>,
    max_payload: usize,
    /// Packet texts received and not handed out yet.
    incoming: VecDeque<Bytes>,
    /// While upgrading: no new GET is started.
    paused: bool,
}

/// Opens a keep-alive HTTP/1.1 connection. `phases`: where its TCP connect and TLS handshake end.
async fn open_conn(
    connector: &Connector,
    phases: &mut ConnectPhases,
) -> Result<HttpConn, ConnectError> {
    Ok(HttpConn::new(
        connector.connect_transport_timed(phases).await?,
    ))
}

/// A whole request: `target` (path and query), the Host and Accept fields, a body's type and
/// length when there is one, then the connector's extra headers. The target was checked when the
/// session opened ([`check_target`]); header names and values are valid by their types.
fn request(method: &str, target: &str, connector: &Connector, body: &[u8]) -> Bytes {
    let mut head = String::with_capacity(target.len() + connector.authority().len() + 128);
    let _ = write!(
        head,
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nAccept: */*\r\n",
        connector.authority()
    );
    if !body.is_empty() {
        let _ = write!(
            head,
            "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n",
            body.len()
        );
    }
    let mut out = head.into_bytes();
    for (name, value) in connector.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Bytes::from(out)
}

/// A request target goes into the request line as it is: visible ASCII only. (The path and query
/// were validated by the plan and the sid is percent-encoded, but the target is checked anyway:
/// nothing a server sends may break the client's requests.)
fn check_target(target: &str) -> Result<(), ConnectError> {
    if target.starts_with('/') && target.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(());
    }
    Err(ConnectError::new(
        ErrorKind::Handshake,
        format!("cannot build a polling request for {target:?}: not a path and query"),
    ))
}

/// Splits a response body into packet texts without copying them.
fn split_body(version: Version, body: Bytes) -> Result<Vec<Bytes>, Fault> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| Fault::new(ErrorKind::Parse, "polling response is not UTF-8"))?;
    let parts = engineio::split_payload(version, text)
        .map_err(|e| Fault::new(ErrorKind::Parse, e.to_string()))?;
    Ok(parts
        .into_iter()
        .map(|part| body.slice_ref(part.as_bytes()))
        .collect())
}

impl Polling {
    /// The handshake: a GET without `sid` answered by the open packet (and, from Socket.IO 2
    /// servers, sometimes more packets, which are kept). Returns the open packet parsed and as
    /// it came (for a frame log). `phases`: where the first connection's TCP connect and TLS
    /// handshake end, and the open packet (from the handshake request); the second connection,
    /// for POSTs, is opened after it, in no phase.
    pub async fn open(
        connector: &Connector,
        version: Version,
        path: &str,
        query: &str,
        phases: &mut ConnectPhases,
    ) -> Result<(Polling, engineio::Open, String), ConnectError> {
        let b64 = if version == Version::V3 { "&b64=1" } else { "" };
        let handshake = format!(
            "{path}?EIO={}&transport=polling{b64}{query}",
            version.query_value()
        );
        check_target(&handshake)?;
        let mut conn = open_conn(connector, phases).await?;
        let asked = Instant::now();
        conn.send(request("GET", &handshake, connector, b""));
        let body = std::future::poll_fn(|cx| {
            conn.poll_response(cx, connector, ErrorKind::HandshakeStatus)
        })
        .await
        .map_err(|f| ConnectError::new(f.kind, f.detail))?;
        let mut packets = split_body(version, body)
            .map_err(|f| ConnectError::new(f.kind, f.detail))?
            .into_iter();
        let first = packets.next().unwrap_or_default();
        let first = String::from_utf8_lossy(&first).into_owned();
        let open = first
            .strip_prefix('0')
            .map(engineio::Open::parse)
            .ok_or_else(|| {
                ConnectError::new(
                    ErrorKind::Handshake,
                    "the polling handshake did not start with an open packet",
                )
            })?
            .map_err(|e| ConnectError::new(ErrorKind::Handshake, e.to_string()))?;
        phases.end(ConnectPhase::EioOpen, asked);
        let post = open_conn(connector, &mut ConnectPhases::default()).await?;
        let uri = format!(
            "{handshake}&sid={}",
            engineio::encode_query_value(&open.sid)
        );
        check_target(&uri)?;
        let polling = Polling {
            version,
            connector: connector.clone(),
            get_request: request("GET", &uri, connector, b""),
            uri,
            get: conn,
            post,
            out: String::new(),
            out_ends: VecDeque::new(),
            max_payload: open.max_payload.unwrap_or(1_000_000).max(64) as usize,
            // Not `packets.collect()`: a VecDeque collected in place from a partly consumed
            // vec::IntoIter reads out of bounds on this toolchain (found with valgrind).
            incoming: VecDeque::from_iter(packets.as_slice().iter().cloned()),
            paused: false,
        };
        Ok((polling, open, first))
    }

    /// Path and query of the session's requests (`sid` included).
    pub fn uri(&self) -> &str {
        &self.uri
    }

    pub fn queue_text(&mut self, packet: &str) {
        engineio::push_payload_text(self.version, &mut self.out, packet);
        self.out_ends.push_back(self.out.len());
    }

    pub fn queue_binary(&mut self, data: &[u8]) {
        engineio::push_payload_binary(self.version, &mut self.out, data);
        self.out_ends.push_back(self.out.len());
    }

    /// Backpressure: more than one full POST waiting means the server is not keeping up.
    pub fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Fault>> {
        if self.out.len() < self.max_payload {
            return Poll::Ready(Ok(()));
        }
        match self.poll_flush(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            _ if self.out.len() < self.max_payload => Poll::Ready(Ok(())),
            _ => Poll::Pending,
        }
    }

    /// Sends what is queued: starts a POST when none is in flight. Ready unless a full payload is
    /// waiting behind a POST in flight (backpressure): what is queued goes with the next POST, and
    /// a slow POST is not a stalled writer as long as the queue has room.
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Fault>> {
        loop {
            if !self.post.is_idle() {
                let Poll::Ready(result) = self.poll_post(cx) else {
                    return if self.out.len() < self.max_payload {
                        Poll::Ready(Ok(()))
                    } else {
                        Poll::Pending
                    };
                };
                if let Err(fault) = result {
                    return Poll::Ready(Err(fault));
                }
            }
            if self.out.is_empty() {
                return Poll::Ready(Ok(()));
            }
            self.start_post();
        }
    }

    /// Ready once everything queued has been posted and answered (for a close).
    pub fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Fault>> {
        loop {
            std::task::ready!(self.poll_flush(cx))?;
            if !self.post.is_idle() {
                std::task::ready!(self.poll_post(cx))?;
            } else if self.out.is_empty() {
                return Poll::Ready(Ok(()));
            }
        }
    }

    /// The POST in flight; its answer's body is not read for anything.
    fn poll_post(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Fault>> {
        self.post
            .poll_response(cx, &self.connector, ErrorKind::Transport)
            .map_ok(drop)
    }

    fn start_post(&mut self) {
        // The longest run of whole packets within maxPayload (at least one packet).
        let mut end = self.out_ends.pop_front().unwrap_or(self.out.len());
        while let Some(&next) = self.out_ends.front() {
            if next > self.max_payload {
                break;
            }
            end = next;
            self.out_ends.pop_front();
        }
        let req = request(
            "POST",
            &self.uri,
            &self.connector,
            &self.out.as_bytes()[..end],
        );
        self.out.drain(..end);
        if self.out.starts_with('\x1e') {
            self.out.remove(0);
            end += 1;
        }
        for e in self.out_ends.iter_mut() {
            *e -= end;
        }
        self.post.send(req);
    }

    /// The next packet text the server sent; keeps a GET in flight unless paused.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<Bytes, Fault>> {
        // A finished POST frees its connection (and reports its failure) even when nobody flushes.
        if !self.post.is_idle() || !self.out.is_empty() {
            if let Poll::Ready(Err(fault)) = self.poll_flush(cx) {
                return Poll::Ready(Err(fault));
            }
        }
        loop {
            if let Some(packet) = self.incoming.pop_front() {
                return Poll::Ready(Ok(packet));
            }
            if self.get.is_idle() {
                if self.paused {
                    return Poll::Pending;
                }
                self.get.send(self.get_request.clone());
            }
            let body = std::task::ready!(self.get.poll_response(
                cx,
                &self.connector,
                ErrorKind::Transport
            ))?;
            self.incoming.extend(split_body(self.version, body)?);
        }
    }

    /// Stops starting GETs, for the upgrade; true once nothing is in flight or queued.
    pub fn pause(&mut self) -> bool {
        self.paused = true;
        self.get.is_idle() && self.post.is_idle() && self.out.is_empty()
    }

    /// What was queued and not yet posted (handed over to the WebSocket after an upgrade), and
    /// what was received and not handed out.
    pub fn into_leftovers(self) -> (Vec<String>, VecDeque<Bytes>) {
        let mut packets = Vec::new();
        if !self.out.is_empty() {
            if let Ok(parts) = engineio::split_payload(self.version, &self.out) {
                packets = parts.into_iter().map(str::to_string).collect();
            }
        }
        (packets, self.incoming)
    }
}
