//! `volley inspect`: a transparent, frame-logging reverse proxy with fault injection. Records are
//! [`crate::wire`]'s: the proxy decodes what it relays and hands records to a sink.
//!
//! - [`proxy`]: the listener and each client's connection to the upstream, with the HTTP and
//!   WebSocket relays in [`relay`];
//! - [`faults`]: what to break (drop, duplicate, delay, close), decided per frame;
//! - [`command`]: `volley inspect` from typed settings.

pub mod command;
pub mod faults;
pub mod proxy;
pub mod relay;
