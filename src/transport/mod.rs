//! I/O: sockets, TLS, the WebSocket handshake, and Engine.IO / Socket.IO sessions over WebSocket or
//! HTTP long-polling. Transports move bytes and report failures as kinds; they never decide what a
//! scenario means. A sampled client's frame log ([`crate::wire::frame_log`]) rides along: it sees
//! every message or packet where the transport writes and reads it.
//! `http` is the other side of a conversation: a user's plain HTTP requests (login, tokens) on
//! its own keep-alive connection, with its own cookie jar.

pub mod endpoint;
pub mod engine;
pub mod http;
pub mod polling;
pub mod socketio;
pub mod source;
#[cfg(test)]
mod test_server;
pub mod tls;
pub mod ws;

use crate::metrics::ErrorKind;

/// Where a polite close is. The closes are driven by polling (`ws::poll_close`,
/// `EngineSocket::poll_close`, `SioSocket::poll_close`) and the caller keeps this between polls
/// and bounds the whole in time: no future is built, so a thousand clients closing at once
/// allocate nothing beyond the close frames themselves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Closing {
    /// Nothing sent yet (Socket.IO: its DISCONNECT goes first).
    #[default]
    Start,
    /// The transport's own close is to be queued: the WebSocket close frame, the Engine.IO
    /// close packet.
    Send,
    /// Queued, being flushed.
    Flush,
    /// Sent: waiting for the server's close frame (or, over polling, the POST's answer).
    Await,
}

/// A failure of an open connection, already classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub kind: ErrorKind,
    pub detail: String,
}

impl Fault {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Fault {
        Fault {
            kind,
            detail: detail.into(),
        }
    }
}

impl From<ws::ConnectError> for Fault {
    fn from(e: ws::ConnectError) -> Fault {
        Fault::new(e.kind, e.detail)
    }
}

impl From<&tokio_tungstenite::tungstenite::Error> for Fault {
    fn from(e: &tokio_tungstenite::tungstenite::Error) -> Fault {
        Fault::new(ws::classify(e), e.to_string())
    }
}
