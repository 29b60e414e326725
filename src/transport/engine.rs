//! An Engine.IO session over WebSocket or long-polling: the handshake, the heartbeat (answering the
//! server's pings in v4, pinging in v3, and declaring the connection dead when the other side goes
//! quiet past pingInterval + pingTimeout, as the official client does), and the upgrade from
//! polling to WebSocket (`2probe` / `3probe`, polling paused and drained, then `5`), with every
//! packet received on either side kept in order.
//!
//! Like the WebSocket it wraps, the session is driven by polling: `poll_ready` / `start_send` /
//! `poll_flush` to send, `poll_next` to receive Socket.IO payloads.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream};
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::polling::Polling;
use super::ws::{ClientSocket, ConnectError, Connector};
use super::{Closing, Fault};
use crate::metrics::{ConnectPhase, ConnectPhases, ErrorKind};
use crate::protocol::engineio::{self, Open, Version};
use crate::wire::frame_log::ConnFrameLog;
use crate::wire::record::Dir;

/// The Engine.IO transport.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Deserialize,
    serde::Serialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// Straight to WebSocket.
    #[default]
    Websocket,
    /// HTTP long-polling only.
    Polling,
    /// Long-polling first, then upgraded to WebSocket: what browsers do.
    PollingUpgrade,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Websocket => "websocket",
            Transport::Polling => "polling",
            Transport::PollingUpgrade => "polling-upgrade",
        }
    }

    /// Connections a client holds: long-polling has a GET and a POST in flight.
    pub fn connections(self) -> u64 {
        match self {
            Transport::Websocket => 1,
            Transport::Polling | Transport::PollingUpgrade => 2,
        }
    }
}

/// How to open an Engine.IO session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineOptions {
    pub transport: Transport,
    pub version: Version,
    /// The Engine.IO path, e.g. `/socket.io/`.
    pub path: String,
    /// Extra query parameters, each as `&key=value`, percent-encoded.
    pub query: String,
}

/// What the session hands up.
#[derive(Debug)]
pub enum EngineEvent {
    /// The data of a message packet: a Socket.IO packet.
    Message(Bytes),
    /// A binary message: a Socket.IO attachment.
    Binary(Bytes),
    /// The WebSocket was closed by the server with this frame.
    Closed(Option<CloseFrame>),
}

/// What one read of the transport gave.
enum Incoming {
    /// A packet's text (to decode).
    Packet(Bytes),
    /// Something for the client as it is.
    Event(EngineEvent),
    /// A WebSocket ping or pong (tungstenite answers pings).
    Skip,
}

impl Incoming {
    fn from_ws(
        message: Result<Message, tokio_tungstenite::tungstenite::Error>,
    ) -> Result<Incoming, Fault> {
        Ok(match message.map_err(|e| Fault::from(&e))? {
            Message::Text(text) => Incoming::Packet(Bytes::from(text)),
            Message::Binary(data) => Incoming::Event(EngineEvent::Binary(data)),
            Message::Close(frame) => Incoming::Event(EngineEvent::Closed(frame)),
            _ => Incoming::Skip,
        })
    }
}

/// A frame to send: the text of a packet, or a binary message.
#[derive(Debug, Clone, Copy)]
pub enum Frame<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

// The WebSocket stays inline: the whole engine is boxed inside its client's socket already.
#[allow(clippy::large_enum_variant)]
enum Io {
    Ws(ClientSocket),
    Polling(Box<Polling>),
}

pub struct EngineSocket {
    io: Io,
    version: Version,
    sid: String,
    upgrades: Vec<String>,
    ping_interval: Duration,
    ping_timeout: Duration,
    /// v4: when the connection is dead without a ping. v3: when to ping next, or (awaiting a
    /// pong) when the connection is dead.
    heartbeat: Pin<Box<Sleep>>,
    awaiting_pong: bool,
    /// Events received before they could be handed up (during the upgrade).
    ready: VecDeque<EngineEvent>,
    /// A pong or ping was queued by the session itself.
    wants_flush: bool,
    /// A sampled client's frame log: every packet sent and received goes through it.
    log: Option<Box<ConnFrameLog>>,
}

fn handshake_error(detail: impl Into<String>) -> ConnectError {
    ConnectError::new(ErrorKind::Handshake, detail)
}

impl EngineSocket {
    /// Opens a session with the handshake of the plan's transport (polling-upgrade starts on
    /// polling; call [`Self::upgrade`] when ready to switch). `log`: a sampled client's frame log.
    /// `phases`: where the TCP connect, TLS handshake, WebSocket upgrade and open packet end.
    pub async fn open(
        connector: &Connector,
        plan: &EngineOptions,
        mut log: Option<Box<ConnFrameLog>>,
        phases: &mut ConnectPhases,
    ) -> Result<EngineSocket, ConnectError> {
        let version = plan.version;
        let (io, open) = match plan.transport {
            Transport::Websocket => {
                let path = format!(
                    "{}?EIO={}&transport=websocket{}",
                    plan.path,
                    version.query_value(),
                    plan.query
                );
                let mut ws = connector.connect_timed(&path, phases).await?;
                let upgraded = Instant::now();
                if let Some(log) = log.as_deref_mut() {
                    log.opened(connector.addr(), &path);
                }
                let open = read_open(&mut ws, log.as_deref_mut()).await?;
                phases.end(ConnectPhase::EioOpen, upgraded);
                (Io::Ws(ws), open)
            }
            Transport::Polling | Transport::PollingUpgrade => {
                let (polling, open, packet) =
                    Polling::open(connector, version, &plan.path, &plan.query, phases).await?;
                if let Some(log) = log.as_deref_mut() {
                    log.opened(connector.addr(), polling.uri());
                    log.polling_packet(Dir::S2c, &packet);
                }
                (Io::Polling(Box::new(polling)), open)
            }
        };
        let ping_interval = Duration::from_millis(open.ping_interval);
        let ping_timeout = Duration::from_millis(open.ping_timeout);
        let first = match version {
            Version::V4 => ping_interval + ping_timeout,
            Version::V3 => ping_interval,
        };
        Ok(EngineSocket {
            io,
            version,
            sid: open.sid,
            upgrades: open.upgrades,
            ping_interval,
            ping_timeout,
            heartbeat: Box::pin(tokio::time::sleep(first)),
            awaiting_pong: false,
            ready: VecDeque::new(),
            wants_flush: false,
            log,
        })
    }

    /// The frame log of a sampled client.
    pub fn frame_log(&mut self) -> Option<&mut ConnFrameLog> {
        self.log.as_deref_mut()
    }

    pub fn version(&self) -> Version {
        self.version
    }

    pub fn is_websocket(&self) -> bool {
        matches!(self.io, Io::Ws(_))
    }

    pub fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Fault>> {
        match &mut self.io {
            Io::Ws(ws) => Pin::new(ws).poll_ready(cx).map_err(|e| Fault::from(&e)),
            Io::Polling(p) => p.poll_ready(cx),
        }
    }

    pub fn start_send(&mut self, frame: Frame<'_>) -> Result<(), Fault> {
        match &mut self.io {
            Io::Ws(ws) => {
                let message = match frame {
                    Frame::Text(text) => Message::Text(Utf8Bytes::from(text)),
                    Frame::Binary(data) if self.version == Version::V3 => {
                        // v3 binary frames start with the packet type.
                        let mut framed = Vec::with_capacity(data.len() + 1);
                        framed.push(4);
                        framed.extend_from_slice(data);
                        Message::Binary(framed.into())
                    }
                    Frame::Binary(data) => Message::Binary(Bytes::copy_from_slice(data)),
                };
                if let Some(log) = self.log.as_deref_mut() {
                    log.ws_message(Dir::C2s, &message);
                }
                Pin::new(ws)
                    .start_send(message)
                    .map_err(|e| Fault::from(&e))
            }
            Io::Polling(p) => {
                match frame {
                    Frame::Text(text) => p.queue_text(text),
                    Frame::Binary(data) => p.queue_binary(data),
                }
                if let Some(log) = self.log.as_deref_mut() {
                    match frame {
                        Frame::Text(text) => log.polling_packet(Dir::C2s, text),
                        Frame::Binary(data) => log.polling_binary(Dir::C2s, data),
                    }
                }
                Ok(())
            }
        }
    }

    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Fault>> {
        let flushed = match &mut self.io {
            Io::Ws(ws) => Pin::new(ws).poll_flush(cx).map_err(|e| Fault::from(&e)),
            Io::Polling(p) => p.poll_flush(cx),
        };
        if let Poll::Ready(Ok(())) = flushed {
            self.wants_flush = false;
        }
        flushed
    }

    /// A pong (or v3 ping) is waiting to be flushed.
    pub fn wants_flush(&self) -> bool {
        self.wants_flush
    }

    /// The next Socket.IO payload, attachment or close.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<EngineEvent, Fault>> {
        if let Some(event) = self.ready.pop_front() {
            return Poll::Ready(Ok(event));
        }
        self.poll_event(cx)
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Result<EngineEvent, Fault>> {
        loop {
            // v3: time to ping (or the pong is overdue). v4: the deadline passed, but a ping may
            // be waiting unread: the connection is dead only when nothing is left to read.
            let beat = self.heartbeat.as_mut().poll(cx).is_ready();
            if beat && self.version == Version::V3 {
                self.on_heartbeat()?;
                continue;
            }
            let log = self.log.as_deref_mut();
            let read = match &mut self.io {
                Io::Ws(ws) => Pin::new(ws).poll_next(cx).map(|m| {
                    m.map(|m| {
                        if let (Some(log), Ok(message)) = (log, &m) {
                            log.ws_message(Dir::S2c, message);
                        }
                        Incoming::from_ws(m)
                    })
                }),
                Io::Polling(p) => p.poll_next(cx).map(|p| {
                    if let (Some(log), Ok(packet)) = (log, &p) {
                        log.polling_packet(Dir::S2c, &String::from_utf8_lossy(packet));
                    }
                    Some(p.map(Incoming::Packet))
                }),
            };
            let incoming = match read {
                Poll::Pending if beat => return Poll::Ready(Err(self.silent_server())),
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    return Poll::Ready(Err(Fault::new(
                        ErrorKind::ConnectionLost,
                        "connection ended without a close frame",
                    )));
                }
                Poll::Ready(Some(Err(fault))) => return Poll::Ready(Err(fault)),
                Poll::Ready(Some(Ok(incoming))) => incoming,
            };
            let text = match incoming {
                Incoming::Skip => continue,
                Incoming::Event(EngineEvent::Binary(data)) if self.version == Version::V3 => {
                    // v3 binary frames start with the packet type.
                    let data = data.slice(1.min(data.len())..);
                    return Poll::Ready(Ok(EngineEvent::Binary(data)));
                }
                Incoming::Event(event) => return Poll::Ready(Ok(event)),
                Incoming::Packet(packet) if packet.first() == Some(&b'b') => {
                    let data = self.decode_binary(&packet)?;
                    return Poll::Ready(Ok(EngineEvent::Binary(data)));
                }
                Incoming::Packet(text) => text,
            };
            if let Some(event) = self.on_text(text)? {
                return Poll::Ready(Ok(event));
            }
        }
    }

    fn decode_binary(&self, packet: &[u8]) -> Result<Bytes, Fault> {
        engineio::decode_binary(self.version, packet)
            .map(Bytes::from)
            .map_err(|e| Fault::new(ErrorKind::Parse, e.to_string()))
    }

    /// v4: no ping within pingInterval + pingTimeout.
    fn silent_server(&self) -> Fault {
        let silent = self.ping_interval + self.ping_timeout;
        Fault::new(
            ErrorKind::PingTimeout,
            format!("no ping from the server for {silent:?} (pingInterval + pingTimeout)"),
        )
    }

    fn on_heartbeat(&mut self) -> Result<(), Fault> {
        match self.version {
            Version::V4 => Err(self.silent_server()),
            Version::V3 if self.awaiting_pong => Err(Fault::new(
                ErrorKind::PingTimeout,
                format!("no pong within pingTimeout ({:?})", self.ping_timeout),
            )),
            Version::V3 => {
                self.send_control("2")?;
                self.awaiting_pong = true;
                let deadline = Instant::now() + self.ping_timeout;
                self.heartbeat.as_mut().reset(deadline.into());
                Ok(())
            }
        }
    }

    fn send_control(&mut self, packet: &str) -> Result<(), Fault> {
        self.start_send(Frame::Text(packet))?;
        self.wants_flush = true;
        Ok(())
    }

    /// Handles a text packet: Engine.IO control packets here, messages up.
    fn on_text(&mut self, text: Bytes) -> Result<Option<EngineEvent>, Fault> {
        let kind = text
            .first()
            .and_then(|&b| engineio::PacketType::from_byte(b))
            .ok_or_else(|| {
                let shown = String::from_utf8_lossy(&text[..text.len().min(40)]).into_owned();
                Fault::new(
                    ErrorKind::Parse,
                    format!("not an Engine.IO packet: {shown:?}"),
                )
            })?;
        match kind {
            engineio::PacketType::Message => {
                return Ok(Some(EngineEvent::Message(text.slice(1..))));
            }
            engineio::PacketType::Ping if self.version == Version::V4 => {
                let deadline = Instant::now() + self.ping_interval + self.ping_timeout;
                self.heartbeat.as_mut().reset(deadline.into());
                let mut pong = String::with_capacity(text.len());
                pong.push('3');
                pong.push_str(std::str::from_utf8(&text[1..]).unwrap_or(""));
                self.send_control(&pong)?;
            }
            engineio::PacketType::Pong if self.version == Version::V3 => {
                self.awaiting_pong = false;
                let next = Instant::now() + self.ping_interval;
                self.heartbeat.as_mut().reset(next.into());
            }
            // Like a WebSocket close frame: the official client reconnects after it.
            engineio::PacketType::Close => {
                return Err(Fault::new(
                    ErrorKind::ClosedByServer,
                    "Engine.IO close packet: the server closed the session",
                ));
            }
            _ => {}
        }
        Ok(None)
    }

    /// Polling to WebSocket, as the official client does: probe a WebSocket on the same session,
    /// then pause polling until its requests are done, then `5` on the WebSocket. Packets that
    /// arrive on polling meanwhile are kept, in order, before the WebSocket's. Stays on polling when
    /// the server offers no WebSocket upgrade. True when it upgraded.
    pub async fn upgrade(
        &mut self,
        connector: &Connector,
        plan: &EngineOptions,
    ) -> Result<bool, Fault> {
        if !matches!(self.io, Io::Polling(_)) || !self.upgrades.iter().any(|u| u == "websocket") {
            return Ok(false);
        }
        let path = format!(
            "{}?EIO={}&transport=websocket&sid={}{}",
            plan.path,
            self.version.query_value(),
            engineio::encode_query_value(&self.sid),
            plan.query
        );
        let mut ws = connector
            .connect(&path)
            .await
            .map_err(|e| upgrade_failed("WebSocket", e.to_string()))?;
        self.probe(&mut ws).await?;
        self.pause_polling().await?;
        let upgrade = Message::text("5");
        if let Some(log) = self.log.as_deref_mut() {
            log.ws_message(Dir::C2s, &upgrade);
        }
        ws.send(upgrade)
            .await
            .map_err(|e| upgrade_failed("upgrade packet", e.to_string()))?;
        self.switch_to(ws)?;
        poll_fn(|cx| self.poll_flush(cx)).await?;
        Ok(true)
    }

    /// Sends `2probe` on the new WebSocket and waits for `3probe` while polling goes on.
    async fn probe(&mut self, ws: &mut ClientSocket) -> Result<(), Fault> {
        let probe = Message::text("2probe");
        if let Some(log) = self.log.as_deref_mut() {
            log.ws_message(Dir::C2s, &probe);
        }
        let failed = |detail: String| upgrade_failed("probe", detail);
        ws.send(probe).await.map_err(|e| failed(e.to_string()))?;
        loop {
            let answer = poll_fn(|cx| {
                if let Poll::Ready(message) = Pin::new(&mut *ws).poll_next(cx) {
                    return Poll::Ready(Ok(message));
                }
                self.poll_aside(cx).map(|r| r.map(|()| None))
            })
            .await?;
            if let (Some(log), Some(Ok(message))) = (self.log.as_deref_mut(), &answer) {
                log.ws_message(Dir::S2c, message);
            }
            match answer {
                None => continue,
                Some(Ok(Message::Text(text))) if text.as_str() == "3probe" => return Ok(()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(other)) => return Err(failed(format!("unexpected answer {other:?}"))),
                Some(Err(e)) => return Err(failed(e.to_string())),
            }
        }
    }

    /// Pauses polling: lets the pending GET come back (the server answers it with a noop) and the
    /// pending POST finish.
    async fn pause_polling(&mut self) -> Result<(), Fault> {
        poll_fn(|cx| {
            loop {
                let Io::Polling(p) = &mut self.io else {
                    return Poll::Ready(Ok(()));
                };
                if p.pause() {
                    return Poll::Ready(Ok(()));
                }
                match self.poll_aside(cx) {
                    Poll::Ready(Ok(())) => continue,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    // The GET may have ended with a noop, which hands nothing up: look again.
                    Poll::Pending => {
                        let idle = match &mut self.io {
                            Io::Polling(p) => p.pause(),
                            Io::Ws(_) => true,
                        };
                        return if idle {
                            Poll::Ready(Ok(()))
                        } else {
                            Poll::Pending
                        };
                    }
                }
            }
        })
        .await
    }

    /// Goes on over `ws`: packets read on polling and not yet handed up come first, packets
    /// queued on polling and not yet sent go out on the WebSocket.
    fn switch_to(&mut self, ws: ClientSocket) -> Result<(), Fault> {
        let old = std::mem::replace(&mut self.io, Io::Ws(ws));
        let Io::Polling(p) = old else {
            return Ok(());
        };
        let (unsent, unread) = p.into_leftovers();
        for packet in unread {
            if let Some(log) = self.log.as_deref_mut() {
                log.polling_packet(Dir::S2c, &String::from_utf8_lossy(&packet));
            }
            if packet.first() == Some(&b'b') {
                let data = self.decode_binary(&packet)?;
                self.ready.push_back(EngineEvent::Binary(data));
            } else if let Some(event) = self.on_text(packet)? {
                self.ready.push_back(event);
            }
        }
        // Logged when they were queued on polling: not again.
        let log = self.log.take();
        for packet in unsent {
            let sent = match engineio::decode_text(self.version, &packet) {
                Ok(engineio::Packet::Binary(data)) => self.start_send(Frame::Binary(&data)),
                _ => self.start_send(Frame::Text(&packet)),
            };
            if let Err(fault) = sent {
                self.log = log;
                return Err(fault);
            }
        }
        self.log = log;
        self.wants_flush = true;
        Ok(())
    }

    /// During the upgrade: receive on polling into `ready`, and flush pongs. Ready(Ok) when
    /// something happened.
    fn poll_aside(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Fault>> {
        let received = match self.poll_event(cx) {
            Poll::Ready(Ok(event)) => {
                self.ready.push_back(event);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        };
        // After reading: a pong queued for the last response goes out now.
        if self.wants_flush {
            if let Poll::Ready(Err(e)) = self.poll_flush(cx) {
                return Poll::Ready(Err(e));
            }
        }
        received
    }

    /// Ends the session politely: a WebSocket close handshake, or a close packet over polling.
    /// Returns the close code the server answered with (1000 for a polling close that was
    /// accepted), 1006 when it did not answer within `timeout`.
    pub async fn close(mut self, timeout: Duration) -> u16 {
        let mut closing = Closing::Send;
        let code = tokio::time::timeout(timeout, poll_fn(|cx| self.poll_close(&mut closing, cx)))
            .await
            .unwrap_or(1006);
        if let Some(log) = self.log.as_deref_mut() {
            log.closed(code);
        }
        code
    }

    /// [`Self::close`] driven by polling, without its time bound (the caller's): Ready with the
    /// code the server answered with (1000 for a polling close packet that was posted and
    /// accepted), 1006 when the close could not be sent or was refused. The frame log sees what
    /// goes out and comes in; its `closed` line is the caller's, who knows whether time ran out.
    pub fn poll_close(&mut self, closing: &mut Closing, cx: &mut Context<'_>) -> Poll<u16> {
        match &mut self.io {
            Io::Ws(ws) => {
                let frame = super::ws::normal_close();
                super::ws::poll_close(ws, closing, &frame, cx, self.log.as_deref_mut())
            }
            Io::Polling(p) => {
                if let Closing::Start | Closing::Send = closing {
                    p.queue_text("1");
                    if let Some(log) = self.log.as_deref_mut() {
                        log.polling_packet(Dir::C2s, "1");
                    }
                    *closing = Closing::Await;
                }
                p.poll_drain(cx).map(|drained| match drained {
                    Ok(()) => 1000,
                    Err(_) => 1006,
                })
            }
        }
    }

    /// Drops the session without a goodbye, driven by polling (the caller bounds it in time):
    /// what was queued goes out first (a WebSocket is then half-closed; over polling the last
    /// POST is answered). The frame log's `closed` line is the caller's.
    pub fn poll_abort(&mut self, flushed: &mut bool, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.io {
            Io::Ws(ws) => super::ws::poll_abort(ws, flushed, cx),
            Io::Polling(p) => p.poll_drain(cx).map(drop),
        }
    }

    /// After the server closed the WebSocket: send the close reply tungstenite queued, briefly.
    pub async fn flush_close_reply(&mut self, timeout: Duration) {
        if let Io::Ws(ws) = &mut self.io {
            let _ = tokio::time::timeout(timeout, ws.flush()).await;
        }
    }
}

/// A step of the upgrade to WebSocket that failed, and why.
fn upgrade_failed(what: &str, detail: String) -> Fault {
    Fault::new(ErrorKind::Transport, format!("upgrade: {what}: {detail}"))
}

/// Reads the open packet that starts a WebSocket-only session.
async fn read_open(
    ws: &mut ClientSocket,
    mut log: Option<&mut ConnFrameLog>,
) -> Result<Open, ConnectError> {
    use futures_util::StreamExt;
    loop {
        let message = ws.next().await;
        if let (Some(log), Some(Ok(message))) = (log.as_deref_mut(), &message) {
            log.ws_message(Dir::S2c, message);
        }
        match message {
            Some(Ok(Message::Text(text))) => {
                let data = text.as_str().strip_prefix('0').ok_or_else(|| {
                    handshake_error(format!("expected the open packet, got {:?}", text.as_str()))
                })?;
                return Open::parse(data).map_err(|e| handshake_error(e.to_string()));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(frame))) => {
                let code = frame.map(|f| u16::from(f.code)).unwrap_or(1005);
                return Err(ConnectError::new(
                    ErrorKind::ClosedByServer,
                    format!("{code} before the open packet"),
                ));
            }
            Some(Ok(other)) => {
                return Err(handshake_error(format!(
                    "expected the open packet, got {other:?}"
                )));
            }
            Some(Err(e)) => return Err(ConnectError::new(super::ws::classify(&e), e.to_string())),
            None => {
                return Err(ConnectError::new(
                    ErrorKind::ConnectionLost,
                    "connection closed before the open packet",
                ));
            }
        }
    }
}
