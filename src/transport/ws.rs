//! Opening a client WebSocket: TCP (no Nagle), optional TLS, the HTTP upgrade, with small buffers
//! so that thousands of idle connections cost little memory.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::ServerName;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Error as WsError, Message};

use crate::metrics::{ConnectPhase, ConnectPhases, ErrorKind};
use crate::transport::Closing;
use crate::transport::source::SourceAddrs;
use crate::wire::frame_log::ConnFrameLog;
use crate::wire::record::Dir;

/// A client socket: plain TCP or TLS over TCP.
pub enum MaybeTls {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// The client WebSocket type used everywhere in volley.
pub type ClientSocket = WebSocketStream<MaybeTls>;

/// Per-connection buffer sizes. tungstenite allocates its read buffer eagerly (128 KiB by
/// default) and keeps it for the connection's life; 1 KiB keeps idle connections small (see
/// BENCHMARKS.md) and still reads typical small events in one call. The write buffer is only
/// allocated once the client sends.
pub fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(4 * 1024)
        // Writes above write_buffer_size are flushed first; the cap only refuses absurd backlogs.
        .max_write_buffer_size(16 * 1024 * 1024)
        .max_message_size(Some(16 * 1024 * 1024))
        .max_frame_size(Some(16 * 1024 * 1024))
}

/// Why a connection could not be opened, already classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectError {
    pub kind: ErrorKind,
    pub detail: String,
}

impl ConnectError {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> ConnectError {
        ConnectError {
            kind,
            detail: detail.into(),
        }
    }

    fn from_io(error: &io::Error) -> ConnectError {
        let kind = match error.kind() {
            io::ErrorKind::ConnectionRefused => ErrorKind::ConnectRefused,
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => ErrorKind::Reset,
            io::ErrorKind::UnexpectedEof => ErrorKind::ConnectionLost,
            _ => ErrorKind::Io,
        };
        ConnectError::new(kind, error.to_string())
    }
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

/// Everything needed to open connections to one target, resolved once per run.
#[derive(Clone)]
pub struct Connector {
    addr: SocketAddr,
    /// `host:port` as written in the target, for the Host header and the URL.
    authority: String,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// Extra headers on every request (cookies, tokens), already validated.
    headers: Arc<[(http::HeaderName, http::HeaderValue)]>,
    /// Source addresses to bind in turn before connecting (`--source-ips`); the OS's choice if none.
    sources: Option<SourceAddrs>,
}

impl Connector {
    pub fn new(
        addr: SocketAddr,
        host: &str,
        port: u16,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<Connector, ConnectError> {
        let tls = match tls {
            Some(config) => {
                let name = ServerName::try_from(host.to_string()).map_err(|e| {
                    ConnectError::new(
                        ErrorKind::Tls,
                        format!("`{host}` is not a TLS server name: {e}"),
                    )
                })?;
                Some((TlsConnector::from(config), name))
            }
            None => None,
        };
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Ok(Connector {
            addr,
            authority,
            tls,
            headers: Arc::from(Vec::new()),
            sources: None,
        })
    }

    /// Sends `headers` with every request.
    pub fn with_headers(
        mut self,
        headers: Vec<(http::HeaderName, http::HeaderValue)>,
    ) -> Connector {
        self.headers = Arc::from(headers);
        self
    }

    /// Binds each connection to the next of `sources` before connecting.
    pub fn with_sources(mut self, sources: Option<SourceAddrs>) -> Connector {
        self.sources = sources;
        self
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `host:port`, for the Host header.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    pub fn headers(&self) -> &[(http::HeaderName, http::HeaderValue)] {
        &self.headers
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The URL a path opens, e.g. `ws://127.0.0.1:9000/echo`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{}{path}", self.authority)
    }

    /// TCP connect and, for wss, the TLS handshake: the reachability check before a run.
    pub async fn connect_transport(&self) -> Result<MaybeTls, ConnectError> {
        self.connect_transport_timed(&mut ConnectPhases::default())
            .await
    }

    /// [`Self::connect_transport`], marking the end of the TCP connect and of the TLS handshake
    /// in `phases`.
    pub async fn connect_transport_timed(
        &self,
        phases: &mut ConnectPhases,
    ) -> Result<MaybeTls, ConnectError> {
        let start = Instant::now();
        let tcp = match &self.sources {
            None => TcpStream::connect(self.addr).await,
            Some(sources) => sources.connect(self.addr).await,
        }
        .map_err(|e| ConnectError::from_io(&e))?;
        let connected = phases.end(ConnectPhase::Tcp, start);
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => Ok(MaybeTls::Plain(tcp)),
            Some((connector, name)) => {
                let tls =
                    connector
                        .connect(name.clone(), tcp)
                        .await
                        .map_err(|e| match e.kind() {
                            io::ErrorKind::InvalidData => {
                                ConnectError::new(ErrorKind::Tls, e.to_string())
                            }
                            _ => ConnectError::from_io(&e),
                        })?;
                phases.end(ConnectPhase::Tls, connected);
                Ok(MaybeTls::Tls(Box::new(tls)))
            }
        }
    }

    /// Opens a WebSocket on `path` (path and query).
    ///
    /// The upgrade is done here rather than by tungstenite's client handshake: that one reads the
    /// response into a 4 KiB buffer which then becomes the connection's read buffer for its whole
    /// life, whatever `read_buffer_size` says. Here the response is read into a temporary buffer
    /// and the WebSocket starts with a `read_buffer_size` buffer holding only what followed it.
    pub async fn connect(&self, path: &str) -> Result<ClientSocket, ConnectError> {
        self.connect_timed(path, &mut ConnectPhases::default())
            .await
    }

    /// [`Self::connect`], marking the end of the TCP connect, the TLS handshake and the upgrade
    /// (from the request written to the 101 read and checked) in `phases`.
    pub async fn connect_timed(
        &self,
        path: &str,
        phases: &mut ConnectPhases,
    ) -> Result<ClientSocket, ConnectError> {
        let mut stream = self.connect_transport_timed(phases).await?;
        let key = tungstenite::handshake::client::generate_key();
        let mut head = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n",
            self.authority
        )
        .into_bytes();
        for (name, value) in self.headers.iter() {
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        let io = |e: io::Error| ConnectError::from_io(&e);
        let requested = Instant::now();
        stream.write_all(&head).await.map_err(io)?;
        stream.flush().await.map_err(io)?;
        drop(head);

        let mut buf = Vec::with_capacity(1024);
        let (status, header_len) = loop {
            if buf.len() == buf.capacity() {
                if buf.len() >= MAX_RESPONSE_HEAD {
                    return Err(ConnectError::new(
                        ErrorKind::Handshake,
                        "upgrade response headers too long",
                    ));
                }
                buf.reserve(buf.len());
            }
            if stream.read_buf(&mut buf).await.map_err(io)? == 0 {
                return Err(ConnectError::new(
                    ErrorKind::ConnectionLost,
                    "connection closed during the upgrade",
                ));
            }
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            let parsed = response
                .parse(&buf)
                .map_err(|e| ConnectError::new(ErrorKind::Handshake, e.to_string()))?;
            if let httparse::Status::Complete(len) = parsed {
                let status = response.code.unwrap_or(0);
                if status == 101 {
                    check_upgrade(response.headers, &key)
                        .map_err(|e| ConnectError::new(ErrorKind::Handshake, e.to_string()))?;
                }
                break (status, len);
            }
        };
        if status != 101 {
            let status = http::StatusCode::from_u16(status)
                .map(|s| s.to_string())
                .unwrap_or_else(|_| status.to_string());
            return Err(ConnectError::new(
                ErrorKind::UpgradeRejected,
                format!("HTTP {status}"),
            ));
        }
        phases.end(ConnectPhase::Upgrade, requested);
        // Whatever the server sent after its response (usually nothing) starts the WebSocket.
        let tail = buf[header_len..].to_vec();
        drop(buf);
        Ok(
            WebSocketStream::from_partially_read(stream, tail, Role::Client, Some(client_config()))
                .await,
        )
    }
}

/// The client's side of the close handshake; returns the code the server answered with, or 1006
/// when it did not answer within `timeout` (or the close could not be sent). A sampled client's
/// `log` sees the close frames and what arrived before the server's.
pub async fn close(socket: ClientSocket, timeout: Duration, log: Option<&mut ConnFrameLog>) -> u16 {
    close_with(socket, normal_close(), timeout, log).await
}

/// The close frame volley sends when it is done: 1000, no reason.
pub fn normal_close() -> CloseFrame {
    CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }
}

/// [`close`] with a code and reason of the caller's (`volley tap`'s `/close CODE REASON`).
pub async fn close_with(
    mut socket: ClientSocket,
    frame: CloseFrame,
    timeout: Duration,
    mut log: Option<&mut ConnFrameLog>,
) -> u16 {
    let mut closing = Closing::Start;
    let handshake = std::future::poll_fn(|cx| {
        poll_close(&mut socket, &mut closing, &frame, cx, log.as_deref_mut())
    });
    tokio::time::timeout(timeout, handshake)
        .await
        .unwrap_or(1006)
}

/// The client's side of the close handshake, driven by polling (`closing` keeps where it is;
/// the caller bounds it in time): queue `frame`, flush it, then read until the server's close
/// frame, ignoring what arrives before it. Ready with the code the server answered with (1005
/// for a close frame without one), or 1006 when the close could not be sent or the connection
/// ended without the server's close frame. A sampled client's `log` sees the close frames and
/// what arrived before the server's.
pub fn poll_close(
    socket: &mut ClientSocket,
    closing: &mut Closing,
    frame: &CloseFrame,
    cx: &mut Context<'_>,
    mut log: Option<&mut ConnFrameLog>,
) -> Poll<u16> {
    use futures_util::Sink;
    loop {
        match closing {
            Closing::Start | Closing::Send => {
                if std::task::ready!(Pin::new(&mut *socket).poll_ready(cx)).is_err() {
                    return Poll::Ready(1006);
                }
                let message = Message::Close(Some(frame.clone()));
                if let Some(log) = log.as_deref_mut() {
                    log.ws_message(Dir::C2s, &message);
                }
                if Pin::new(&mut *socket).start_send(message).is_err() {
                    return Poll::Ready(1006);
                }
                *closing = Closing::Flush;
            }
            Closing::Flush => {
                if std::task::ready!(Pin::new(&mut *socket).poll_flush(cx)).is_err() {
                    return Poll::Ready(1006);
                }
                *closing = Closing::Await;
            }
            Closing::Await => {
                let message = std::task::ready!(socket.poll_next_unpin(cx));
                if let (Some(log), Some(Ok(message))) = (log.as_deref_mut(), &message) {
                    log.ws_message(Dir::S2c, message);
                }
                match message {
                    Some(Ok(Message::Close(frame))) => {
                        return Poll::Ready(frame.map(|f| u16::from(f.code)).unwrap_or(1005));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return Poll::Ready(1006),
                }
            }
        }
    }
}

/// Drops a WebSocket without a close handshake, driven by polling (the caller bounds it in time):
/// what was queued goes out first (`flushed` keeps that it did), then the TCP write half is
/// closed (FIN). Failures only end it sooner: the connection is being dropped anyway.
pub fn poll_abort(socket: &mut ClientSocket, flushed: &mut bool, cx: &mut Context<'_>) -> Poll<()> {
    use futures_util::Sink;
    if !*flushed {
        let _ = std::task::ready!(Pin::new(&mut *socket).poll_flush(cx));
        *flushed = true;
    }
    Pin::new(socket.get_mut()).poll_shutdown(cx).map(drop)
}

/// Upgrade responses with longer headers are refused.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// The checks of RFC 6455 4.1 on a 101 response, as tungstenite makes them (no subprotocols or
/// extensions are requested, so none may be returned).
fn check_upgrade(headers: &[httparse::Header<'_>], key: &str) -> Result<(), WsError> {
    use tungstenite::error::{ProtocolError, SubProtocolError};
    let get = |name: &str| {
        headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    if !get("Upgrade").is_some_and(|v| v.eq_ignore_ascii_case(b"websocket")) {
        return Err(WsError::Protocol(
            ProtocolError::MissingUpgradeWebSocketHeader,
        ));
    }
    let has_upgrade_token = |v: &[u8]| {
        v.split(|&b| b == b',')
            .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"upgrade"))
    };
    if !get("Connection").is_some_and(has_upgrade_token) {
        return Err(WsError::Protocol(
            ProtocolError::MissingConnectionUpgradeHeader,
        ));
    }
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    if get("Sec-WebSocket-Accept") != Some(accept.as_bytes()) {
        return Err(WsError::Protocol(
            ProtocolError::SecWebSocketAcceptKeyMismatch,
        ));
    }
    if get("Sec-WebSocket-Protocol").is_some() {
        return Err(WsError::Protocol(
            ProtocolError::SecWebSocketSubProtocolError(
                SubProtocolError::ServerSentSubProtocolNoneRequested,
            ),
        ));
    }
    Ok(())
}

/// Classifies an error of an open WebSocket.
pub fn classify(error: &WsError) -> ErrorKind {
    match error {
        WsError::Io(e) => ConnectError::from_io(e).kind,
        WsError::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
            ErrorKind::ConnectionLost
        }
        WsError::ConnectionClosed | WsError::AlreadyClosed => ErrorKind::ConnectionLost,
        WsError::Tls(_) => ErrorKind::Tls,
        _ => ErrorKind::Protocol,
    }
}

impl AsyncRead for MaybeTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
