//! What crosses the wire, as records: `volley inspect` (the proxy), `volley tap` (the interactive
//! client) and a run's `--log-frames` all describe frames and packets in one vocabulary, below the
//! transports that produce them.
//!
//! - [`record`]: the decoded event, one JSON line or one terminal line;
//! - [`decode`]: frames, long-polling bodies and HTTP heads of one connection into records,
//!   Engine.IO and Socket.IO included, secrets redacted; [`acks`] pairs acks with their events;
//! - [`body`]: other HTTP bodies that are text, kept up to a limit while relayed, as records;
//! - [`redact`]: the last pass of every record, secrets hidden by [`crate::secrets`]' rules;
//! - [`filter`]: `--filter` and `--fault-filter` expressions;
//! - [`print`]: the coloured one-line form;
//! - [`sink`]: the writer task behind a bounded channel, and the summary on exit;
//! - [`frame_log`] and [`sample`]: a load run's frame log and which clients it samples.

pub mod acks;
pub mod body;
pub mod decode;
pub mod filter;
pub mod frame_log;
pub mod print;
pub mod record;
pub mod redact;
pub mod sample;
pub mod sink;
