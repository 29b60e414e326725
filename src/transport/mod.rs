//! I/O: sockets, TLS and the WebSocket handshake. Transports move bytes and report failures as
//! kinds; they never decide what a scenario means.

pub mod tls;
pub mod ws;
