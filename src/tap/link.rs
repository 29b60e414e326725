//! The connection `volley tap` drives: a raw WebSocket or a Socket.IO socket, with the frame log
//! that turns whatever either one sends or receives into records. The Socket.IO transport logs
//! its own frames (as a sampled client's do in a load run); the raw WebSocket is logged here.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{SinkExt, Stream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::line::Line;
use crate::metrics::{ConnectPhases, ErrorKind};
use crate::protocol::socketio::push_json_string;
use crate::transport::Fault;
use crate::transport::engine::Frame;
use crate::transport::socketio::SocketIoOptions;
use crate::transport::socketio::{Incoming, SioSocket};
use crate::transport::ws::{self, ClientSocket, ConnectError, Connector};
use crate::wire::frame_log::ConnFrameLog;
use crate::wire::record::Dir;

/// How long a close handshake, or the reply to the server's close, may take.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the tap connects to, after the URL was read.
#[derive(Debug, Clone)]
pub enum Protocol {
    /// Raw WebSocket on this path and query.
    Raw { path: String },
    /// Socket.IO on a namespace, with an optional CONNECT auth payload (JSON object text).
    SocketIo {
        plan: SocketIoOptions,
        namespace: String,
        auth: Option<String>,
    },
}

pub enum TapLink {
    Ws {
        socket: Box<ClientSocket>,
        log: Box<ConnFrameLog>,
    },
    Sio(Box<SioSocket>),
}

/// What one read of the link gave.
#[derive(Debug)]
pub enum Arrival {
    /// A frame or packet, already in the wire log.
    Frame,
    /// Socket.IO: the answer to the ack with this id (also in the wire log).
    Ack(u64),
    /// The server closed the WebSocket with this code and reason (none: no code).
    ServerClosed(Option<(u16, String)>),
    /// Socket.IO: the server disconnected the namespace or closed the Engine.IO session.
    ServerLeft(String),
    /// The connection failed or dropped.
    Failed(Fault),
}

impl TapLink {
    /// Connects, logging to `log` from the first frame.
    pub async fn open(
        protocol: &Protocol,
        connector: &Connector,
        mut log: Box<ConnFrameLog>,
    ) -> Result<TapLink, ConnectError> {
        match protocol {
            Protocol::Raw { path } => {
                let socket = Box::new(connector.connect(path).await?);
                log.opened(connector.addr(), path);
                Ok(TapLink::Ws { socket, log })
            }
            Protocol::SocketIo {
                plan,
                namespace,
                auth,
            } => {
                let (sio, _) = SioSocket::open(
                    connector,
                    plan,
                    namespace,
                    auth.as_deref(),
                    None,
                    Some(log),
                    &mut ConnectPhases::default(),
                )
                .await?;
                Ok(TapLink::Sio(Box::new(sio)))
            }
        }
    }

    /// Sends what a line asks for (not `/close`: see [`Self::close`]). `next_ack` numbers the
    /// Socket.IO events that ask for an ack.
    pub async fn send(&mut self, line: &Line, next_ack: &mut u64) -> Result<(), Fault> {
        match self {
            TapLink::Ws { socket, log } => {
                let message = match line {
                    Line::Text(text) => Message::text(text.as_str()),
                    Line::Ping(text) => Message::Ping(text.clone().into_bytes().into()),
                    // Emits are Socket.IO lines; /close is not sent here.
                    Line::Emit { .. } | Line::Close { .. } => return Ok(()),
                };
                log.ws_message(Dir::C2s, &message);
                socket.send(message).await.map_err(|e| Fault::from(&e))
            }
            TapLink::Sio(sio) => {
                let Line::Emit { event, args, ack } = line else {
                    return Ok(());
                };
                let id = ack.then(|| {
                    let id = *next_ack;
                    *next_ack += 1;
                    id
                });
                let mut packet = String::new();
                sio.begin_event(&mut packet, id, false);
                packet.push('[');
                push_json_string(&mut packet, event);
                for arg in args {
                    packet.push(',');
                    packet.push_str(&arg.to_string());
                }
                packet.push(']');
                poll_fn(|cx| sio.poll_ready(cx)).await?;
                sio.start_send(Frame::Text(&packet))?;
                poll_fn(|cx| sio.poll_flush(cx)).await
            }
        }
    }

    /// The next thing the server sent (Socket.IO: pongs are flushed meanwhile). Cancel-safe.
    pub fn poll_arrival(&mut self, cx: &mut Context<'_>) -> Poll<Arrival> {
        match self {
            TapLink::Ws { socket, log } => {
                let arrival = match std::task::ready!(Pin::new(socket.as_mut()).poll_next(cx)) {
                    Some(Ok(message)) => {
                        log.ws_message(Dir::S2c, &message);
                        match message {
                            // tungstenite queues the pong and sends it with the next write.
                            Message::Ping(data) => {
                                log.ws_message(Dir::C2s, &Message::Pong(data));
                                Arrival::Frame
                            }
                            Message::Close(frame) => Arrival::ServerClosed(
                                frame.map(|f| (u16::from(f.code), f.reason.to_string())),
                            ),
                            _ => Arrival::Frame,
                        }
                    }
                    Some(Err(e)) => Arrival::Failed(Fault::from(&e)),
                    None => Arrival::Failed(Fault::new(
                        ErrorKind::ConnectionLost,
                        "connection ended without a close frame",
                    )),
                };
                Poll::Ready(arrival)
            }
            TapLink::Sio(sio) => {
                if sio.wants_flush() {
                    if let Poll::Ready(Err(fault)) = sio.poll_flush(cx) {
                        return Poll::Ready(Arrival::Failed(fault));
                    }
                }
                Poll::Ready(match std::task::ready!(sio.poll_next(cx)) {
                    Ok(Incoming::Closed(frame)) => Arrival::ServerClosed(
                        frame.map(|f| (u16::from(f.code), f.reason.to_string())),
                    ),
                    Ok(Incoming::Ack(id, _)) => Arrival::Ack(id),
                    Ok(_) => Arrival::Frame,
                    Err(fault)
                        if matches!(
                            fault.kind,
                            ErrorKind::ServerDisconnect | ErrorKind::ClosedByServer
                        ) =>
                    {
                        Arrival::ServerLeft(fault.detail)
                    }
                    Err(fault) => Arrival::Failed(fault),
                })
            }
        }
    }

    /// Closes with `code` and `reason` (Socket.IO: DISCONNECT, then a normal close); returns the
    /// code the server answered with, 1006 when it did not answer within [`CLOSE_TIMEOUT`].
    pub async fn close(self, code: u16, reason: &str) -> u16 {
        match self {
            TapLink::Ws { socket, mut log } => {
                let frame = CloseFrame {
                    code: CloseCode::from(code),
                    reason: reason.into(),
                };
                let answer = ws::close_with(*socket, frame, CLOSE_TIMEOUT, Some(&mut log)).await;
                log.closed(answer);
                answer
            }
            TapLink::Sio(sio) => sio.close(CLOSE_TIMEOUT).await,
        }
    }

    /// After the server's close frame: sends the reply tungstenite queued (the same code).
    pub async fn answer_close(&mut self, frame: Option<(u16, String)>) {
        match self {
            TapLink::Ws { socket, log } => {
                let frame = frame.map(|(code, reason)| CloseFrame {
                    code: CloseCode::from(code),
                    reason: reason.into(),
                });
                log.ws_message(Dir::C2s, &Message::Close(frame));
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.flush()).await;
            }
            TapLink::Sio(sio) => sio.flush_close_reply(CLOSE_TIMEOUT).await,
        }
    }

    /// Why the session ended, for the close record of the frame log.
    pub fn ended(&mut self, why: String) {
        let log = match self {
            TapLink::Ws { log, .. } => Some(log.as_mut()),
            TapLink::Sio(sio) => sio.frame_log(),
        };
        if let Some(log) = log {
            log.ended(why);
        }
    }
}
