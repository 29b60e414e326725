//! Seeing what crosses the wire: `volley inspect` (a transparent, frame-logging reverse proxy with
//! fault injection), `volley tap` (an interactive client) and the frame logs of `volley run
//! --log-frames` share one vocabulary:
//!
//! - [`record`]: the decoded event, one JSON line or one terminal line;
//! - [`decode`]: frames, long-polling bodies and HTTP heads of one connection into records,
//!   Engine.IO and Socket.IO included, secrets redacted;
//! - [`filter`]: `--filter` and `--fault-filter` expressions;
//! - [`print`]: the coloured one-line form;
//! - [`sink`]: the writer task behind a bounded channel, and the summary on exit;
//! - [`proxy`] and [`relay`]: the inspector's connections and their two byte pumps, with
//!   [`faults`] deciding what to break and [`command`] the `volley inspect` command;
//! - [`frame_log`] and [`sample`]: a load run's frame log and which clients it samples.

pub mod acks;
pub mod command;
pub mod decode;
pub mod faults;
pub mod filter;
pub mod frame_log;
pub mod print;
pub mod proxy;
pub mod record;
pub mod relay;
pub mod sample;
pub mod sink;
