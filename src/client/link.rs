//! A client's connection, whatever the protocol: a raw WebSocket or a Socket.IO socket. The session
//! drives both the same way; only rendering and reading differ.

use std::fmt::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{Sink, Stream};
use tokio_tungstenite::tungstenite::{Message as WsMessage, Utf8Bytes};

use crate::metrics::ErrorKind;
use crate::protocol::socketio::push_placeholder;
use crate::protocol::stamp::Stamp;
use crate::scenario::Message;
use crate::scenario::Placement;
use crate::scenario::template::{Fill, Template};
use crate::transport::engine::Frame;
use crate::transport::socketio::{Incoming, SioSocket};
use crate::transport::ws::ClientSocket;
use crate::transport::{Closing, Fault};
use crate::wire::frame_log::ConnFrameLog;
use crate::wire::record::Dir;

// The WebSocket stays inline: the link lives in the already boxed session, and raw WebSocket is the
// path where one indirection less per event counts.
#[allow(clippy::large_enum_variant)]
pub enum Link {
    /// A raw WebSocket, and the frame log of a sampled client (checked once per message).
    Ws(ClientSocket, Option<Box<ConnFrameLog>>),
    /// Socket.IO: a sampled client's frame log is in the Engine.IO session.
    Sio(Box<SioSocket>),
}

/// A message rendered into the client's buffers, ready to send.
#[derive(Debug, Clone, Copy)]
pub struct Rendered {
    /// Sent as a binary frame (raw WebSocket with `binary = true`).
    pub binary: bool,
    /// Socket.IO: a binary attachment follows the packet.
    pub attachment: bool,
}

/// The two buffers a client renders into, reused for every message.
#[derive(Default)]
pub struct Scratch {
    pub text: String,
    pub attachment: String,
}

impl Link {
    /// Renders `message` into `scratch`: the payload for raw WebSocket; for Socket.IO the whole
    /// packet (`42["event",args...]`, with the ack id when asked) and the binary attachment.
    pub fn render(
        &self,
        scratch: &mut Scratch,
        message: &Message,
        fill: &Fill,
        stamp: Option<(Stamp, Placement)>,
        ack: Option<u64>,
    ) -> Rendered {
        let out = &mut scratch.text;
        out.clear();
        let sio = match self {
            Link::Ws(..) => {
                let inner = stamp.map(|(s, p)| match p {
                    Placement::In(placement) => (s, placement),
                    // The plan only allows Arg for Socket.IO.
                    Placement::Arg => (s, crate::scenario::template::StampPlacement::Prefix),
                });
                message.args[0].render_append(out, fill, inner);
                return Rendered {
                    binary: message.binary,
                    attachment: false,
                };
            }
            Link::Sio(sio) => sio,
        };
        sio.begin_event(out, ack, message.binary);
        out.push('[');
        out.push_str(&message.event_json);
        for (i, arg) in message.args.iter().enumerate() {
            let inner = match stamp {
                Some((s, Placement::In(placement))) if i == 0 => Some((s, placement)),
                _ => None,
            };
            out.push(',');
            if i == 0 && message.binary {
                push_placeholder(out, 0);
                scratch.attachment.clear();
                arg.render_append(&mut scratch.attachment, fill, inner);
            } else {
                arg.render_append(out, fill, inner);
            }
        }
        if let Some((s, Placement::Arg)) = stamp {
            out.push_str(",\"");
            s.write_token(out);
            out.push('"');
        }
        out.push(']');
        Rendered {
            binary: false,
            attachment: message.binary,
        }
    }

    /// Socket.IO: renders the answer to the server's ack `id` (`43[args...]`) into `scratch`.
    /// `None` for raw WebSocket, which has no acks.
    pub fn render_answer(
        &self,
        scratch: &mut Scratch,
        id: u64,
        args: &[Template],
        fill: &Fill,
    ) -> Option<Rendered> {
        let Link::Sio(sio) = self else {
            return None;
        };
        let out = &mut scratch.text;
        out.clear();
        sio.begin_ack(out, id);
        out.push('[');
        for (i, arg) in args.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            arg.render_append(out, fill, None);
        }
        out.push(']');
        Some(Rendered {
            binary: false,
            attachment: false,
        })
    }

    pub fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Fault>> {
        match self {
            Link::Ws(ws, _) => Pin::new(ws).poll_ready(cx).map_err(|e| Fault::from(&e)),
            Link::Sio(sio) => sio.poll_ready(cx),
        }
    }

    /// Queues what [`Self::render`] produced (after a Ready `poll_ready`).
    pub fn send_rendered(&mut self, scratch: &Scratch, rendered: &Rendered) -> Result<(), Fault> {
        match self {
            Link::Ws(ws, log) => {
                let message = if rendered.binary {
                    WsMessage::Binary(Bytes::copy_from_slice(scratch.text.as_bytes()))
                } else {
                    WsMessage::Text(Utf8Bytes::from(scratch.text.as_str()))
                };
                if let Some(log) = log {
                    log.ws_message(Dir::C2s, &message);
                }
                Pin::new(ws)
                    .start_send(message)
                    .map_err(|e| Fault::from(&e))
            }
            Link::Sio(sio) => {
                sio.start_send(Frame::Text(&scratch.text))?;
                if rendered.attachment {
                    sio.start_send(Frame::Binary(scratch.attachment.as_bytes()))?;
                }
                Ok(())
            }
        }
    }

    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Fault>> {
        match self {
            Link::Ws(ws, _) => Pin::new(ws).poll_flush(cx).map_err(|e| Fault::from(&e)),
            Link::Sio(sio) => sio.poll_flush(cx),
        }
    }

    /// The link queued something of its own (a pong) that needs a flush.
    pub fn wants_flush(&self) -> bool {
        match self {
            Link::Ws(..) => false,
            Link::Sio(sio) => sio.wants_flush(),
        }
    }

    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<Incoming, Fault>> {
        match self {
            // tungstenite answers pings by itself.
            Link::Ws(ws, log) => {
                let message = std::task::ready!(Pin::new(ws).poll_next(cx));
                if let (Some(log), Some(Ok(message))) = (log, &message) {
                    log.ws_message(Dir::S2c, message);
                }
                Poll::Ready(ws_incoming(message))
            }
            Link::Sio(sio) => sio.poll_next(cx),
        }
    }

    /// The frame log of a sampled client.
    pub fn frame_log(&mut self) -> Option<&mut ConnFrameLog> {
        match self {
            Link::Ws(_, log) => log.as_deref_mut(),
            Link::Sio(sio) => sio.frame_log(),
        }
    }

    /// The close handshake, driven by polling (`closing` keeps where it is; the caller bounds it
    /// in time): Ready with the code the server answered with, 1006 when the close could not be
    /// sent. The frame log's `closed` line is the caller's.
    pub fn poll_close(&mut self, closing: &mut Closing, cx: &mut Context<'_>) -> Poll<u16> {
        match self {
            Link::Ws(ws, log) => {
                let frame = crate::transport::ws::normal_close();
                crate::transport::ws::poll_close(ws, closing, &frame, cx, log.as_deref_mut())
            }
            Link::Sio(sio) => sio.poll_close(closing, cx),
        }
    }

    /// Drops the connection without a goodbye, but only after what was queued went out (events
    /// counted as sent must not be lost on the client's side): flush, then close the write half.
    /// Driven by polling; the caller bounds it in time.
    pub fn poll_abort(&mut self, flushed: &mut bool, cx: &mut Context<'_>) -> Poll<()> {
        match self {
            Link::Ws(ws, _) => crate::transport::ws::poll_abort(ws, flushed, cx),
            Link::Sio(sio) => sio.poll_abort(flushed, cx),
        }
    }
}

/// What a raw WebSocket read means for the client.
fn ws_incoming(
    message: Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>,
) -> Result<Incoming, Fault> {
    match message {
        Some(Ok(WsMessage::Text(text))) => Ok(Incoming::Payload(Bytes::from(text), None)),
        Some(Ok(WsMessage::Binary(data))) => Ok(Incoming::Payload(data, None)),
        Some(Ok(WsMessage::Close(frame))) => Ok(Incoming::Closed(frame)),
        Some(Ok(_)) => Ok(Incoming::Nothing),
        Some(Err(e)) => Err(Fault::from(&e)),
        None => Err(Fault::new(
            ErrorKind::ConnectionLost,
            "connection ended without a close frame",
        )),
    }
}

/// `code reason` of a close frame, for errors.csv.
pub fn describe_close(
    frame: Option<&tokio_tungstenite::tungstenite::protocol::CloseFrame>,
) -> (u16, String) {
    match frame {
        Some(f) => {
            let code = u16::from(f.code);
            let mut text = code.to_string();
            if !f.reason.is_empty() {
                let _ = write!(text, " {}", f.reason);
            }
            (code, text)
        }
        None => (1005, "1005".to_string()),
    }
}
