//! Engine.IO HTTP long-polling: a GET that the server holds open until it has packets, and a POST
//! for what the client sends, each on its own keep-alive HTTP/1.1 connection (hyper's client), so
//! that at most one of each is in flight, as the protocol requires.
//!
//! The transport is driven by polling it (no task of its own beyond hyper's connection drivers):
//! [`Polling::poll_next`] keeps a GET in flight and hands out the packets of each response;
//! [`Polling::poll_flush`] sends what was queued in one POST, at most `maxPayload` bytes at a time.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use super::Fault;
use super::ws::{ConnectError, Connector};
use crate::metrics::{ConnectPhase, ConnectPhases, ErrorKind};
use crate::protocol::engineio::{self, Version};

type Conn = SendRequest<Full<Bytes>>;
type InFlight = Pin<Box<dyn Future<Output = (Conn, Result<Bytes, Fault>)> + Send>>;

/// One long-polling session after its handshake.
pub struct Polling {
    version: Version,
    /// Path and query of every request of the session, `sid` included.
    uri: String,
    authority: String,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
    get_conn: Option<Conn>,
    post_conn: Option<Conn>,
    get: Option<InFlight>,
    post: Option<InFlight>,
    /// Packets waiting for a POST, in payload format, and where each one ends.
    out: String,
    out_ends: VecDeque<usize>,
    max_payload: usize,
    /// Packet texts received and not handed out yet.
    incoming: VecDeque<Bytes>,
    /// While upgrading: no new GET is started.
    paused: bool,
}

/// Opens a keep-alive HTTP/1.1 connection; hyper's connection driver runs as its own task.
/// `phases`: where its TCP connect and TLS handshake end.
async fn open_conn(
    connector: &Connector,
    phases: &mut ConnectPhases,
) -> Result<Conn, ConnectError> {
    let stream = connector.connect_transport_timed(phases).await?;
    let (conn, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ConnectError::new(ErrorKind::Handshake, e.to_string()))?;
    tokio::spawn(async move {
        let _ = driver.await;
    });
    Ok(conn)
}

fn request(
    method: Method,
    uri: &str,
    authority: &str,
    headers: &[(http::HeaderName, http::HeaderValue)],
    body: Bytes,
) -> Result<Request<Full<Bytes>>, Fault> {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, authority)
        .header(header::ACCEPT, "*/*");
    if !body.is_empty() {
        builder = builder.header(header::CONTENT_TYPE, "text/plain;charset=UTF-8");
    }
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    // The path and headers were validated by the plan and the sid is percent-encoded, but the
    // request is checked anyway: nothing a server sends may panic the client.
    builder.body(Full::new(body)).map_err(|e| {
        Fault::new(
            ErrorKind::Transport,
            format!("cannot build the request: {e}"),
        )
    })
}

/// Sends one request and reads the whole response body; a status other than 2xx is a fault.
async fn exchange(
    mut conn: Conn,
    req: Request<Full<Bytes>>,
    kind: ErrorKind,
) -> (Conn, Result<Bytes, Fault>) {
    let result = async {
        let transport = |e: hyper::Error| Fault::new(kind, e.to_string());
        conn.ready().await.map_err(transport)?;
        let response = conn.send_request(req).await.map_err(transport)?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(transport)?
            .to_bytes();
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)])
                .trim()
                .to_string();
            return Err(Fault::new(
                kind,
                format!("HTTP {status} {text}").trim_end().to_string(),
            ));
        }

        Ok(body)
    }
    .await;
    (conn, result)
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
        let conn = open_conn(connector, phases).await?;
        let asked = Instant::now();
        let headers = connector.headers().to_vec();
        let req = request(
            Method::GET,
            &handshake,
            connector.authority(),
            &headers,
            Bytes::new(),
        )
        .map_err(|f| ConnectError::new(f.kind, f.detail))?;
        let (conn, body) = exchange(conn, req, ErrorKind::HandshakeStatus).await;
        let body = body.map_err(|f| ConnectError::new(f.kind, f.detail))?;
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
        let post_conn = open_conn(connector, &mut ConnectPhases::default()).await?;
        let polling = Polling {
            version,
            uri: format!(
                "{handshake}&sid={}",
                engineio::encode_query_value(&open.sid)
            ),
            authority: connector.authority().to_string(),
            headers,
            get_conn: Some(conn),
            post_conn: Some(post_conn),
            get: None,
            post: None,
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
            if let Some(post) = self.post.as_mut() {
                let Poll::Ready((conn, result)) = post.as_mut().poll(cx) else {
                    return if self.out.len() < self.max_payload {
                        Poll::Ready(Ok(()))
                    } else {
                        Poll::Pending
                    };
                };
                self.post = None;
                self.post_conn = Some(conn);
                if let Err(fault) = result {
                    return Poll::Ready(Err(fault));
                }
            }
            if self.out.is_empty() {
                return Poll::Ready(Ok(()));
            }
            if let Err(fault) = self.start_post() {
                return Poll::Ready(Err(fault));
            }
        }
    }

    /// Ready once everything queued has been posted and answered (for a close).
    pub fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Fault>> {
        loop {
            std::task::ready!(self.poll_flush(cx))?;
            match &mut self.post {
                Some(post) => {
                    let (conn, result) = std::task::ready!(post.as_mut().poll(cx));
                    self.post = None;
                    self.post_conn = Some(conn);
                    result?;
                }
                None if self.out.is_empty() => return Poll::Ready(Ok(())),
                None => {}
            }
        }
    }

    fn start_post(&mut self) -> Result<(), Fault> {
        let Some(conn) = self.post_conn.take() else {
            return Ok(());
        };
        // The longest run of whole packets within maxPayload (at least one packet).
        let mut end = self.out_ends.pop_front().unwrap_or(self.out.len());
        while let Some(&next) = self.out_ends.front() {
            if next > self.max_payload {
                break;
            }
            end = next;
            self.out_ends.pop_front();
        }
        let body = Bytes::copy_from_slice(&self.out.as_bytes()[..end]);
        self.out.drain(..end);
        if self.out.starts_with('\x1e') {
            self.out.remove(0);
            end += 1;
        }
        for e in self.out_ends.iter_mut() {
            *e -= end;
        }
        let req = request(
            Method::POST,
            &self.uri,
            &self.authority,
            &self.headers,
            body,
        )?;
        self.post = Some(Box::pin(exchange(conn, req, ErrorKind::Transport)));
        Ok(())
    }

    /// The next packet text the server sent; keeps a GET in flight unless paused.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<Bytes, Fault>> {
        // A finished POST frees its connection (and reports its failure) even when nobody flushes.
        if self.post.is_some() || !self.out.is_empty() {
            if let Poll::Ready(Err(fault)) = self.poll_flush(cx) {
                return Poll::Ready(Err(fault));
            }
        }
        loop {
            if let Some(packet) = self.incoming.pop_front() {
                return Poll::Ready(Ok(packet));
            }
            if self.get.is_none() {
                if self.paused {
                    return Poll::Pending;
                }
                let Some(conn) = self.get_conn.take() else {
                    return Poll::Pending;
                };
                let req = request(
                    Method::GET,
                    &self.uri,
                    &self.authority,
                    &self.headers,
                    Bytes::new(),
                )?;
                self.get = Some(Box::pin(exchange(conn, req, ErrorKind::Transport)));
            }
            let get = self.get.as_mut().expect("a GET is in flight");
            let (conn, result) = std::task::ready!(get.as_mut().poll(cx));
            self.get = None;
            self.get_conn = Some(conn);

            self.incoming.extend(split_body(self.version, result?)?);
        }
    }

    /// Stops starting GETs, for the upgrade; true once nothing is in flight or queued.
    pub fn pause(&mut self) -> bool {
        self.paused = true;
        self.get.is_none() && self.post.is_none() && self.out.is_empty()
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
