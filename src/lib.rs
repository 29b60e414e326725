//! volley: a load tester and traffic inspector for real-time servers (raw WebSocket and
//! Socket.IO). The modules, bottom layer first; each imports only the layers below it
//! (ARCHITECTURE.md holds the table, and tests/architecture/ enforces it):
//!
//! - [`units`], [`protocol`], [`metrics`]: durations, rates and counts; pure codecs (WebSocket
//!   frames, HTTP/1.1, Engine.IO, Socket.IO, JSON pointers, the tracking stamp); per-worker
//!   histograms, counters and error kinds.
//! - [`secrets`]: what counts as a secret (query values, headers, subprotocol tokens, a user's
//!   captured values) and how every output hides it.
//! - [`wire`]: the one record shape of frames and packets, decoded, filtered, printed and logged,
//!   shared by `inspect`, `tap` and a run's `--log-frames`.
//! - [`transport`], [`serve`]: sockets, TLS, WebSocket and Engine.IO sessions, with their own
//!   connection options; the builtin server (`target = "builtin"`, `volley serve`).
//! - [`scenario`]: the TOML file, errors with file:line:column, overrides, threshold expressions,
//!   and the compiled [`scenario::Plan`].
//! - [`client`], [`results`]: one virtual client from connect to close; every result file, written
//!   and read back in one place each.
//! - [`gate`]: thresholds judged on a run's figures, and the checks written for CI.
//! - [`runner`]: workers, ramp, arrivals, shards, the once-a-second collection, shutdown.
//! - [`compare`], [`report`], [`merge`], [`inspect`], [`tap`]: runs compared, drawn, combined;
//!   the proxy and the interactive client.
//! - [`cli`], [`commands`]: the command line, turned into each module's settings.
//!
//! Beside the stack, `fuzz` (hidden from the docs) holds the bodies of the fuzz targets, one per
//! parser of a peer's or a user's bytes, which `tests/fuzz/` and the cargo-fuzz crate in `fuzz/`
//! both run (FUZZING.md).

pub mod cli;
pub mod client;
pub mod commands;
pub mod compare;
/// The fuzz targets' bodies, for `tests/fuzz/` and the cargo-fuzz crate in `fuzz/` (FUZZING.md).
#[doc(hidden)]
pub mod fuzz;
pub mod gate;
pub mod inspect;
pub mod merge;
pub mod metrics;
pub mod protocol;
pub mod record;
pub mod report;
pub mod results;
pub mod runner;
pub mod scenario;
pub mod secrets;
pub mod serve;
pub mod tap;
pub mod telemetry;
pub mod transport;
pub mod units;
pub mod wire;
