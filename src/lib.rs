//! volley: a load tester and traffic inspector for real-time servers (raw WebSocket and
//! Socket.IO). A tour of the crate, in the order data flows:
//!
//! - [`units`]: the one parser for durations, rates and counts (`250ms`, `5/s`, `10k`).
//! - [`scenario`]: the TOML scenario file, errors with file:line:column, overrides, and the
//!   compiled [`scenario::Plan`] with its message templates.
//! - [`protocol`]: pure codecs with no I/O; [`protocol::stamp`] is the tracking stamp in every
//!   tracked event.
//! - [`transport`]: sockets, TLS and the WebSocket handshake, with small per-connection buffers.
//! - [`client`]: one virtual client, from connect to close, emitting on an open-model
//!   [`client::schedule::Schedule`] and measuring from scheduled send times.
//! - [`runner`]: preflight, worker threads (one single-threaded runtime each), ramp, stop signal,
//!   and the once-a-second merge of the workers' metrics; shards of a run (`--shard K/N`, a shared
//!   run id and time zero) and local shards as child processes (`--processes N`).
//! - [`metrics`]: per-worker HDR histograms and counters, merged per interval; error kinds.
//! - [`results`]: a results folder read back, file by file; [`report`] draws it as one HTML page,
//!   and [`merge`] makes one folder of many shards' (`volley merge`).
//! - [`gate`]: the CI gate: threshold expressions judged on a run's figures (at the end, and once a
//!   second for `abort`), `volley compare` of base and new runs (noise-aware with repeated runs),
//!   and verdicts as JUnit, Markdown and JSON.
//! - [`inspect`]: decoded wire records, shared by `volley inspect` (a byte-exact, frame-logging
//!   proxy with fault injection), tap and a run's `--log-frames` (sampled clients' transports
//!   offer records to one writer task; the others check an `Option`).
//! - [`serve`]: the embedded reference server, `target = "builtin"`.
//! - [`tap`]: `volley tap URL`, an interactive client that prints every frame both ways.
//! - [`cli`] and [`app`]: the command line and the commands behind it.

pub mod cli;
pub mod client;
pub mod commands;
pub mod compare;
pub mod gate;
pub mod inspect;
pub mod merge;
pub mod metrics;
pub mod protocol;
pub mod report;
pub mod results;
pub mod runner;
pub mod scenario;
pub mod serve;
pub mod tap;
pub mod transport;
pub mod units;
pub mod wire;
