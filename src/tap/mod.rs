//! `volley tap URL`: an interactive client for raw WebSocket and Socket.IO, in the spirit of
//! wscat and websocat. Lines from stdin (or `--send`) go out; every frame either way is one
//! record, decoded and printed exactly as `volley inspect` prints it, and written to `--jsonl`.
//!
//! - [`config`]: the URL and options, read once into a [`TapConfig`];
//! - [`line`]: what an input line asks for (`emit EVENT [JSON...] [--ack]`, `/close`, text);
//! - `link`: the raw WebSocket or Socket.IO connection, with its
//!   [frame log](crate::wire::frame_log::ConnFrameLog) (the one a load run's sampled clients
//!   keep), which decodes every frame into a record for the inspector's writer task;
//! - `session`: the loop, the wait after the last line, and the close.
//!
//! The session's end is the command's exit status: see [`Ending::exit_code`].

pub mod config;
pub mod line;
mod link;
mod session;

use std::future::Future;
use std::io::IsTerminal;
use std::time::Instant;

pub use config::{Input, SocketIoOptions, TapConfig};
pub use link::Protocol;

use crate::metrics::ErrorKind;
use crate::transport::Fault;
use crate::transport::tls::{self, TlsError};
use crate::transport::ws::Connector;
use crate::wire::frame_log::ConnFrameLog;
use crate::wire::record::{Clock, RecordKind};
use crate::wire::sink::{self, RecordCounts};
use line::Mode;
use link::TapLink;
use session::Lines;

/// The tap is one connection: its records all have connection number 1.
const CONN: u64 = 1;

/// Exit status of a session that ended abnormally.
pub const EXIT_ABNORMAL: u8 = 4;

/// Why a tap could not be done.
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    /// A bad URL, option or `--send` line.
    #[error("{0}")]
    Usage(String),
    #[error("cannot resolve {host}: {detail}")]
    Resolve { host: String, detail: String },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot connect to {url}: {detail}")]
    Connect { url: String, detail: String },
    #[error("output: {0}")]
    Output(std::io::Error),
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The tap closed with `code` (after the last line and the wait, on `/close` or Ctrl-C);
    /// the server answered with `answer`, 1006 when it did not answer in time.
    Closed { code: u16, answer: u16 },
    /// The server closed the WebSocket with this code (none: a close frame without one).
    ServerClosed { code: Option<u16>, reason: String },
    /// Socket.IO: the server disconnected the namespace or closed the Engine.IO session.
    ServerLeft(String),
    /// The connection failed or dropped without a close.
    Lost(Fault),
}

impl Ending {
    /// 0 when the session ended normally: the tap closed it and the server answered, the server
    /// closed with 1000 (normal) or 1001 (going away), or a Socket.IO server ended the session
    /// on purpose. [`EXIT_ABNORMAL`] otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Ending::Closed { answer, .. } if *answer != 1006 => 0,
            Ending::ServerClosed {
                code: Some(1000 | 1001),
                ..
            } => 0,
            Ending::ServerLeft(_) => 0,
            _ => EXIT_ABNORMAL,
        }
    }
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ending::Closed { code, answer: 1006 } => write!(
                f,
                "closed with {code}, but the server did not answer the close within {:?}",
                link::CLOSE_TIMEOUT
            ),
            Ending::Closed { code, answer } => {
                write!(f, "closed with {code}, the server answered {answer}")
            }
            Ending::ServerClosed { code: None, .. } => {
                write!(f, "the server closed without a close code")
            }
            Ending::ServerClosed {
                code: Some(code),
                reason,
            } if reason.is_empty() => {
                write!(f, "the server closed with {code}")
            }
            Ending::ServerClosed {
                code: Some(code),
                reason,
            } => write!(f, "the server closed with {code} {reason:?}"),
            Ending::ServerLeft(detail) => write!(f, "{detail}"),
            Ending::Lost(fault) => write!(f, "connection lost: {}: {}", fault.kind, fault.detail),
        }
    }
}

/// What a session did.
#[derive(Debug)]
pub struct TapOutcome {
    pub ending: Ending,
    /// Socket.IO acks asked for that never came back.
    pub acks_due: usize,
    /// Frames, bytes and close codes, as `volley inspect` counts them; `dropped` counts records
    /// lost because the output fell behind (the session waits for it, so at most a few).
    pub counts: RecordCounts,
}

impl TapOutcome {
    pub fn exit_code(&self) -> u8 {
        self.ending.exit_code()
    }
}

/// Connects, sends the lines, records every frame, and closes. Resolves when the session ended;
/// `shutdown` (Ctrl-C) closes it normally at once.
pub async fn run(
    config: TapConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<TapOutcome, TapError> {
    let mode = match config.protocol {
        Protocol::Raw { .. } => Mode::Raw,
        Protocol::SocketIo { .. } => Mode::SocketIo,
    };
    // Every --send line is checked before anything connects.
    let given = match &config.input {
        Input::Lines(given) => {
            let mut parsed = Vec::with_capacity(given.len());
            for text in given {
                match line::parse(text, mode) {
                    Ok(Some(line)) => parsed.push(line),
                    Ok(None) => {}
                    Err(e) => return Err(TapError::Usage(format!("--send {text:?}: {e}"))),
                }
            }
            Some(parsed)
        }
        Input::Stdin => None,
    };

    let connector = connector(&config).await?;
    let (sink, writer) = sink::spawn_writer(config.sink.clone()).map_err(TapError::Output)?;
    let engine = match &config.protocol {
        Protocol::Raw { path } => crate::wire::decode::engineio_version(path),
        Protocol::SocketIo { plan, .. } => Some(plan.engine.version),
    };
    let clock = Clock::new();
    let log = ConnFrameLog::new(sink.clone(), clock, CONN, config.decode.clone(), engine);
    let opened = tokio::time::timeout(
        config.connect_timeout,
        TapLink::open(&config.protocol, &connector, Box::new(log)),
    )
    .await;
    let link = match opened {
        Ok(Ok(link)) => link,
        failed => {
            let detail = match failed {
                Ok(Err(e)) => e.to_string(),
                _ => format!(
                    "{}: no connection within {:?}",
                    ErrorKind::ConnectTimeout,
                    config.connect_timeout
                ),
            };
            let detail = config.decode.secrets.redact_message(detail, []);
            // What did cross the wire (a CONNECT_ERROR, say) was logged; then the error.
            let mut error = clock.record(Instant::now(), CONN, RecordKind::Error);
            error.detail = Some(detail.clone());
            sink.send(error).await;
            drop(sink);
            finish_writer(writer).await?;
            return Err(TapError::Connect {
                url: shown_url(&config),
                detail,
            });
        }
    };
    let mut lines = match given {
        Some(given) => Lines::Given(given.into_iter()),
        None => {
            if std::io::stdin().is_terminal() {
                let hint = match mode {
                    Mode::Raw => "type a line to send it; /close [CODE [REASON]], /ping",
                    Mode::SocketIo => "type `emit EVENT [JSON...] [--ack]` or /close",
                };
                eprintln!("volley tap: connected; {hint}; Ctrl-D closes");
            }
            Lines::stdin(mode)
        }
    };

    // The link, and with it the frame log's close record, is gone when the session ends.
    let finish = session::drive(link, &sink, &mut lines, config.wait, shutdown).await;
    drop(sink);
    let counts = finish_writer(writer).await?;
    Ok(TapOutcome {
        ending: finish.ending,
        acks_due: finish.acks_due,
        counts,
    })
}

/// The URL for messages, secret query values hidden.
fn shown_url(config: &TapConfig) -> String {
    config
        .decode
        .secrets
        .redact_query(&config.url, None)
        .into_owned()
}

/// Waits for the writer to write everything, once the last sink is gone.
async fn finish_writer(
    writer: tokio::task::JoinHandle<std::io::Result<RecordCounts>>,
) -> Result<RecordCounts, TapError> {
    match writer.await {
        Ok(result) => result.map_err(TapError::Output),
        Err(e) => Err(TapError::Output(std::io::Error::other(e))),
    }
}

async fn connector(config: &TapConfig) -> Result<Connector, TapError> {
    let resolve_error = |detail: String| TapError::Resolve {
        host: config.host.clone(),
        detail,
    };
    let addr = tokio::net::lookup_host((config.host.as_str(), config.port))
        .await
        .map_err(|e| resolve_error(e.to_string()))?
        .next()
        .ok_or_else(|| resolve_error("no address".into()))?;
    let tls = match config.tls {
        true => Some(tls::client_config(config.insecure)?),
        false => None,
    };
    let connector =
        Connector::new(addr, &config.host, config.port, tls).map_err(|e| TapError::Connect {
            url: shown_url(config),
            detail: e.to_string(),
        })?;
    Ok(connector.with_headers(config.headers.clone()))
}
