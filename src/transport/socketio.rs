//! A Socket.IO client socket on one namespace: CONNECT (with auth, and on reconnect the session id
//! and offset for connection state recovery), then events, acks and binary attachments. Packets of
//! other namespaces are ignored.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::engine::{EngineEvent, EngineOptions, EngineSocket, Frame, Transport};
use super::ws::{ConnectError, Connector};
use super::{Closing, Fault};
use crate::metrics::{ConnectPhase, ConnectPhases, ErrorKind};
use crate::protocol::engineio::Version;
use crate::protocol::socketio::{self, Kind};
use crate::wire::frame_log::ConnFrameLog;

/// How to open a Socket.IO session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketIoOptions {
    pub engine: EngineOptions,
    /// Ask the server for the packets missed while away (connection state recovery).
    pub recovery: bool,
}

/// What a client keeps across reconnects to ask the server for its missed packets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The private session id the server gave in its CONNECT reply.
    pub pid: Option<String>,
    /// The offset of the last broadcast received (JSON string contents, as written).
    pub offset: Option<String>,
}

/// What arrived, for the client.
#[derive(Debug)]
pub enum Incoming {
    /// A message (raw WebSocket) or an event's array `["name", args...]` (JSON text): where
    /// stamps are looked for. Socket.IO: the id of the acknowledgement the server asks for.
    Payload(Bytes, Option<u64>),
    /// A binary attachment of the last event: stamps are looked for, but it is not a message.
    Attachment(Bytes),
    /// The answer to the ack with this id, and its arguments (a JSON array).
    Ack(u64, Bytes),
    /// The server closed the WebSocket.
    Closed(Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>),
    /// Nothing for the client (another namespace, a CONNECT).
    Nothing,
}

pub struct SioSocket {
    engine: EngineSocket,
    namespace: String,
    recovery: Recovery,
    track_offsets: bool,
    /// Attachments still to come for the last binary packet.
    attachments_left: u32,
    /// Events that came before the CONNECT reply: on a recovered reconnect the server replays
    /// the missed packets first.
    early: VecDeque<EngineEvent>,
}

impl SioSocket {
    /// Opens the Engine.IO session and connects the namespace. With `previous` (a reconnect and
    /// recovery enabled), asks the server to recover; the flag says whether it did. `log`: a
    /// sampled client's frame log, kept by the Engine.IO session. `phases`: where each phase of
    /// the connection ends, the namespace's CONNECT reply and the upgrade from polling included.
    pub async fn open(
        connector: &Connector,
        plan: &SocketIoOptions,
        namespace: &str,
        auth: Option<&str>,
        previous: Option<&Recovery>,
        log: Option<Box<ConnFrameLog>>,
        phases: &mut ConnectPhases,
    ) -> Result<(SioSocket, bool), ConnectError> {
        let mut engine = EngineSocket::open(connector, &plan.engine, log, phases).await?;
        let opened = Instant::now();
        let v3 = engine.version() == Version::V3;
        let fault = |f: Fault| ConnectError::new(f.kind, f.detail);

        // Socket.IO 2 servers connect "/" by themselves; every other case sends CONNECT.
        if !(v3 && namespace == "/") {
            let payload = match (v3, previous) {
                (true, _) => None,
                (false, Some(previous)) if previous.pid.is_some() => {
                    Some(recovery_auth(auth, previous))
                }
                (false, _) => auth.map(str::to_string),
            };
            let packet = format!("4{}", socketio::connect(namespace, payload.as_deref()));
            engine_send(&mut engine, Frame::Text(&packet))
                .await
                .map_err(fault)?;
        }

        let mut early = VecDeque::new();
        let reply = loop {
            let event = poll_fn(|cx| poll_event_flushing(&mut engine, cx))
                .await
                .map_err(fault)?;

            let data = match event {
                EngineEvent::Message(data) => data,
                binary @ EngineEvent::Binary(_) => {
                    early.push_back(binary);
                    continue;
                }
                EngineEvent::Closed(frame) => {
                    let code = frame.map(|f| u16::from(f.code)).unwrap_or(1005);
                    return Err(ConnectError::new(
                        ErrorKind::ClosedByServer,
                        format!("{code} before the namespace was connected"),
                    ));
                }
            };
            let text = std::str::from_utf8(&data).map_err(|_| {
                ConnectError::new(ErrorKind::Parse, "Socket.IO packet is not UTF-8")
            })?;
            let packet = socketio::decode(text)
                .map_err(|e| ConnectError::new(ErrorKind::Parse, e.to_string()))?;
            if packet.namespace != namespace {
                continue;
            }
            match packet.kind {
                Kind::Connect => {
                    break socketio::ConnectReply::parse(packet.data)
                        .map_err(|e| ConnectError::new(ErrorKind::Parse, e.to_string()))?;
                }
                Kind::ConnectError => {
                    return Err(ConnectError::new(
                        ErrorKind::ConnectError,
                        socketio::connect_error_message(packet.data),
                    ));
                }
                _ => early.push_back(EngineEvent::Message(data.clone())),
            }
        };
        phases.end(ConnectPhase::SioConnect, opened);
        let pid = reply.and_then(|r| r.pid);
        let recovered = match (previous.and_then(|p| p.pid.as_deref()), pid.as_deref()) {
            (Some(before), Some(now)) => before == now,
            _ => false,
        };
        let recovery = Recovery {
            offset: if recovered {
                previous.and_then(|p| p.offset.clone())
            } else {
                None
            },
            pid,
        };

        if plan.engine.transport == Transport::PollingUpgrade {
            let started = Instant::now();
            let upgraded = engine
                .upgrade(connector, &plan.engine)
                .await
                .map_err(fault)?;
            if upgraded {
                phases.end(ConnectPhase::EioUpgrade, started);
            }
        }
        Ok((
            SioSocket {
                engine,
                namespace: namespace.to_string(),
                track_offsets: plan.recovery && recovery.pid.is_some(),
                recovery,
                attachments_left: 0,
                early,
            },
            recovered,
        ))
    }

    /// The frame log of a sampled client.
    pub fn frame_log(&mut self) -> Option<&mut ConnFrameLog> {
        self.engine.frame_log()
    }

    /// The session id and last offset, for the next connection.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Writes the start of an event packet (Engine.IO message type, Socket.IO head); the caller
    /// continues with the JSON array.
    pub fn begin_event(&self, out: &mut String, ack: Option<u64>, binary: bool) {
        out.push('4');
        let kind = if binary {
            Kind::BinaryEvent
        } else {
            Kind::Event
        };
        socketio::write_head(out, kind, u32::from(binary), &self.namespace, ack);
    }

    /// Writes the start of the answer to the server's ack `id`; the caller continues with the
    /// JSON array of its arguments.
    pub fn begin_ack(&self, out: &mut String, id: u64) {
        out.push('4');
        socketio::write_head(out, Kind::Ack, 0, &self.namespace, Some(id));
    }

    pub fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Fault>> {
        self.engine.poll_ready(cx)
    }

    pub fn start_send(&mut self, frame: Frame<'_>) -> Result<(), Fault> {
        self.engine.start_send(frame)
    }

    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Fault>> {
        self.engine.poll_flush(cx)
    }

    pub fn wants_flush(&self) -> bool {
        self.engine.wants_flush()
    }

    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<Incoming, Fault>> {
        let event = match self.early.pop_front() {
            Some(event) => event,
            None => std::task::ready!(self.engine.poll_next(cx))?,
        };
        let data = match event {
            EngineEvent::Closed(frame) => return Poll::Ready(Ok(Incoming::Closed(frame))),
            EngineEvent::Binary(data) if self.attachments_left > 0 => {
                self.attachments_left -= 1;
                return Poll::Ready(Ok(Incoming::Attachment(data)));
            }
            EngineEvent::Binary(_) => return Poll::Ready(Ok(Incoming::Nothing)),
            EngineEvent::Message(data) => data,
        };
        let text = std::str::from_utf8(&data)
            .map_err(|_| Fault::new(ErrorKind::Parse, "Socket.IO packet is not UTF-8"))?;
        let packet =
            socketio::decode(text).map_err(|e| Fault::new(ErrorKind::Parse, e.to_string()))?;
        if packet.namespace != self.namespace {
            return Poll::Ready(Ok(Incoming::Nothing));
        }
        let args = data.slice_ref(packet.data.as_bytes());
        Poll::Ready(Ok(match packet.kind {
            Kind::Event | Kind::BinaryEvent => {
                self.attachments_left = packet.attachments;
                if self.track_offsets && packet.id.is_none() {
                    if let Some(offset) = socketio::last_string_arg(packet.data) {
                        if self.recovery.offset.as_deref() != Some(offset) {
                            self.recovery.offset = Some(offset.to_string());
                        }
                    }
                }
                Incoming::Payload(args, packet.id)
            }
            Kind::Ack | Kind::BinaryAck => {
                self.attachments_left = packet.attachments;
                match packet.id {
                    Some(id) => Incoming::Ack(id, args),
                    None => Incoming::Nothing,
                }
            }
            Kind::Disconnect => {
                return Poll::Ready(Err(Fault::new(
                    ErrorKind::ServerDisconnect,
                    format!("the server disconnected namespace {}", self.namespace),
                )));
            }
            Kind::ConnectError => {
                return Poll::Ready(Err(Fault::new(
                    ErrorKind::ConnectError,
                    socketio::connect_error_message(packet.data),
                )));
            }
            Kind::Connect => Incoming::Nothing,
        }))
    }

    /// Leaves politely: DISCONNECT for the namespace, then the transport's own close.
    pub async fn close(mut self, timeout: Duration) -> u16 {
        let mut closing = Closing::Start;
        let code = tokio::time::timeout(timeout, poll_fn(|cx| self.poll_close(&mut closing, cx)))
            .await
            .unwrap_or(1006);
        if let Some(log) = self.engine.frame_log() {
            log.closed(code);
        }
        code
    }

    /// [`Self::close`] driven by polling, without its time bound (the caller's): DISCONNECT for
    /// the namespace is queued first and goes out with the transport's own close (in one write,
    /// or one POST). A DISCONNECT that cannot be queued is skipped. Ready with the close code,
    /// as [`EngineSocket::poll_close`]; the frame log's `closed` line is the caller's.
    pub fn poll_close(&mut self, closing: &mut Closing, cx: &mut Context<'_>) -> Poll<u16> {
        if *closing == Closing::Start {
            match self.engine.poll_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) => {
                    let mut packet = String::from("4");
                    socketio::write_head(&mut packet, Kind::Disconnect, 0, &self.namespace, None);
                    let _ = self.engine.start_send(Frame::Text(&packet));
                }
                Poll::Ready(Err(_)) => {}
            }
            *closing = Closing::Send;
        }
        self.engine.poll_close(closing, cx)
    }

    /// Drops the connection without a goodbye, after what was queued went out; driven by
    /// polling, as [`EngineSocket::poll_abort`].
    pub fn poll_abort(&mut self, flushed: &mut bool, cx: &mut Context<'_>) -> Poll<()> {
        self.engine.poll_abort(flushed, cx)
    }

    /// After the server closed the WebSocket: send the close reply, briefly.
    pub async fn flush_close_reply(&mut self, timeout: Duration) {
        self.engine.flush_close_reply(timeout).await
    }
}

/// The CONNECT payload of a recovering reconnect: the auth fields plus `pid` and `offset`.
fn recovery_auth(auth: Option<&str>, previous: &Recovery) -> String {
    let mut out = String::from("{\"pid\":");
    socketio::push_json_string(&mut out, previous.pid.as_deref().unwrap_or_default());
    if let Some(offset) = &previous.offset {
        // Kept as written (already escaped), so it goes back exactly as it came.
        out.push_str(",\"offset\":\"");
        out.push_str(offset);
        out.push('"');
    }
    match auth.map(str::trim).and_then(|a| a.strip_prefix('{')) {
        Some(rest) if rest.trim_start().starts_with('}') => out.push('}'),
        Some(rest) => {
            out.push(',');
            out.push_str(rest);
        }
        None => out.push('}'),
    }
    out
}

async fn engine_send(engine: &mut EngineSocket, frame: Frame<'_>) -> Result<(), Fault> {
    poll_fn(|cx| engine.poll_ready(cx)).await?;
    engine.start_send(frame)?;
    poll_fn(|cx| engine.poll_flush(cx)).await
}

/// Receives the next event, flushing pongs meanwhile.
fn poll_event_flushing(
    engine: &mut EngineSocket,
    cx: &mut Context<'_>,
) -> Poll<Result<EngineEvent, Fault>> {
    if engine.wants_flush() {
        if let Poll::Ready(Err(e)) = engine.poll_flush(cx) {
            return Poll::Ready(Err(e));
        }
    }
    engine.poll_next(cx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_auth_merges_with_the_users_auth() {
        let previous = Recovery {
            pid: Some("p1".into()),
            offset: Some("0-3".into()),
        };
        assert_eq!(
            recovery_auth(Some("{\"token\":\"t\"}"), &previous),
            "{\"pid\":\"p1\",\"offset\":\"0-3\",\"token\":\"t\"}"
        );
        assert_eq!(
            recovery_auth(Some("{}"), &previous),
            "{\"pid\":\"p1\",\"offset\":\"0-3\"}"
        );
        let no_offset = Recovery {
            pid: Some("p1".into()),
            offset: None,
        };
        assert_eq!(recovery_auth(None, &no_offset), "{\"pid\":\"p1\"}");
        for text in [
            recovery_auth(Some("{\"token\":\"t\"}"), &previous),
            recovery_auth(None, &no_offset),
        ] {
            serde_json::from_str::<serde_json::Value>(&text).unwrap();
        }
    }
}
