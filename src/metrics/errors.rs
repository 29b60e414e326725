//! The kinds of failure a run counts. A misbehaving server is data: each failure becomes one of these.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// Nothing listens on the port (TCP RST to SYN).
    ConnectRefused,
    /// TCP, TLS and upgrade did not complete within `connect_timeout`.
    ConnectTimeout,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// The server answered the upgrade request with an HTTP status other than 101.
    UpgradeRejected,
    /// The upgrade response was not a valid WebSocket handshake.
    Handshake,
    /// The connection was reset (TCP RST) mid-run.
    Reset,
    /// The server sent a close frame (or an Engine.IO close packet) before the client was done.
    ClosedByServer,
    /// The connection ended without a close frame (EOF).
    ConnectionLost,
    /// The server broke the WebSocket protocol (bad frame, invalid UTF-8, oversized message).
    Protocol,
    /// The server stopped reading: nothing could be written for the stall timeout.
    WriteStalled,
    /// Any other I/O error.
    Io,
    /// Socket.IO: the Engine.IO handshake request was answered with an HTTP error status.
    HandshakeStatus,
    /// Socket.IO: the server refused the namespace with CONNECT_ERROR (its message is the detail).
    ConnectError,
    /// Socket.IO: no ping from the server within pingInterval + pingTimeout (Engine.IO 4), or no
    /// pong to the client's ping (Engine.IO 3).
    PingTimeout,
    /// Socket.IO: a long-polling request failed, or the upgrade to WebSocket did.
    Transport,
    /// Socket.IO: a packet that is not valid Engine.IO or Socket.IO.
    Parse,
    /// Socket.IO: the server disconnected the client's namespace (DISCONNECT); not reconnected.
    ServerDisconnect,
    /// An HTTP step was answered with a status it does not accept (the status is the detail).
    HttpStatus,
    /// An HTTP step got no whole answer within its timeout.
    HttpTimeout,
    /// An HTTP step found nothing listening.
    HttpRefused,
    /// An HTTP step failed otherwise (reset, TLS, a response that is not HTTP).
    Http,
    /// A capture found nothing at its pointer or header.
    Capture,
    /// A `wait_for` step's event, or a step's acknowledgement, did not come in time.
    StepTimeout,
    /// An emit with `retries` was not acknowledged after every attempt.
    AckTimeout,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 24] = [
        ErrorKind::ConnectRefused,
        ErrorKind::ConnectTimeout,
        ErrorKind::Tls,
        ErrorKind::UpgradeRejected,
        ErrorKind::Handshake,
        ErrorKind::Reset,
        ErrorKind::ClosedByServer,
        ErrorKind::ConnectionLost,
        ErrorKind::Protocol,
        ErrorKind::WriteStalled,
        ErrorKind::Io,
        ErrorKind::HandshakeStatus,
        ErrorKind::ConnectError,
        ErrorKind::PingTimeout,
        ErrorKind::Transport,
        ErrorKind::Parse,
        ErrorKind::ServerDisconnect,
        ErrorKind::HttpStatus,
        ErrorKind::HttpTimeout,
        ErrorKind::HttpRefused,
        ErrorKind::Http,
        ErrorKind::Capture,
        ErrorKind::StepTimeout,
        ErrorKind::AckTimeout,
    ];
    pub const COUNT: usize = Self::ALL.len();

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::ConnectRefused => "connect_refused",
            ErrorKind::ConnectTimeout => "connect_timeout",
            ErrorKind::Tls => "tls",
            ErrorKind::UpgradeRejected => "upgrade_rejected",
            ErrorKind::Handshake => "handshake",
            ErrorKind::Reset => "reset",
            ErrorKind::ClosedByServer => "closed_by_server",
            ErrorKind::ConnectionLost => "connection_lost",
            ErrorKind::Protocol => "protocol",
            ErrorKind::WriteStalled => "write_stalled",
            ErrorKind::Io => "io",
            ErrorKind::HandshakeStatus => "handshake_status",
            ErrorKind::ConnectError => "connect_error",
            ErrorKind::PingTimeout => "ping_timeout",
            ErrorKind::Transport => "transport",
            ErrorKind::Parse => "parse",
            ErrorKind::ServerDisconnect => "server_disconnect",
            ErrorKind::HttpStatus => "http_status",
            ErrorKind::HttpTimeout => "http_timeout",
            ErrorKind::HttpRefused => "http_refused",
            ErrorKind::Http => "http",
            ErrorKind::Capture => "capture",
            ErrorKind::StepTimeout => "step_timeout",
            ErrorKind::AckTimeout => "ack_timeout",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_matches_position_in_all() {
        for (i, kind) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i);
        }
    }
}
