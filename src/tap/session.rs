//! One tap session from the open connection to its end: lines out, frames in, and the close.
//!
//! After the last line (the last `--send`, or the end of stdin) the session keeps receiving for
//! `--wait`; with Socket.IO it also waits for the acks it asked for, up to [`ACK_PATIENCE`] after
//! the last line. Then it closes normally. A `/close` line, Ctrl-C (the `shutdown` future) or the
//! server's close end it sooner.

use std::collections::HashSet;
use std::future::{Future, poll_fn};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::Ending;
use super::line::{self, Line, Mode};
use super::link::{Arrival, TapLink};
use crate::wire::sink::RecordSink;

/// How long after the last line the session waits for acks still due.
pub const ACK_PATIENCE: Duration = Duration::from_secs(5);
/// Lines read from stdin ahead of the network.
const STDIN_BOUND: usize = 64;

/// The lines to send, parsed.
pub enum Lines {
    Given(std::vec::IntoIter<Line>),
    /// Lines from the stdin thread; a bad one is reported on stderr and skipped.
    Stdin {
        rx: mpsc::Receiver<String>,
        mode: Mode,
        number: usize,
    },
}

impl Lines {
    /// Reads stdin on a thread of its own, line by line: tokio's stdin would keep the runtime
    /// from shutting down while a read is pending, and a plain thread does not hold the process.
    pub fn stdin(mode: Mode) -> Lines {
        let (tx, rx) = mpsc::channel(STDIN_BOUND);
        let reader = move || {
            use std::io::BufRead;
            for line in std::io::stdin().lock().lines() {
                match line {
                    Ok(line) => {
                        if tx.blocking_send(line).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        eprintln!("volley tap: cannot read stdin: {e}");
                        return;
                    }
                }
            }
        };
        if let Err(e) = std::thread::Builder::new()
            .name("tap-stdin".into())
            .spawn(reader)
        {
            eprintln!("volley tap: cannot read stdin: {e}");
        }
        Lines::Stdin {
            rx,
            mode,
            number: 0,
        }
    }

    /// The next line to send; `None` after the last. Cancel-safe.
    async fn next(&mut self) -> Option<Line> {
        match self {
            Lines::Given(lines) => lines.next(),
            Lines::Stdin { rx, mode, number } => loop {
                let text = rx.recv().await?;
                *number += 1;
                match line::parse(&text, *mode) {
                    Ok(Some(line)) => return Some(line),
                    Ok(None) => {}
                    Err(e) => eprintln!("volley tap: line {number}: {e}; nothing was sent"),
                }
            },
        }
    }
}

/// When to close once the lines are done.
struct Pace {
    wait: Duration,
    /// When the last line went out.
    lines_done: Option<Instant>,
    /// Ack ids asked for and not answered yet.
    acks_due: HashSet<u64>,
}

impl Pace {
    fn close_at(&self) -> Option<Instant> {
        let done = self.lines_done?;
        let after_wait = done + self.wait;
        Some(if self.acks_due.is_empty() {
            after_wait
        } else {
            after_wait.max(done + ACK_PATIENCE)
        })
    }
}

/// How the session went, for the outcome.
pub struct Finish {
    pub ending: Ending,
    pub acks_due: usize,
}

/// Runs the session until it ends; the link's frame log records every frame on the way. Before
/// each read or line, the session waits for room in the writer's channel: the frame log offers its
/// records, and this keeps them from being dropped when the output is slow.
pub async fn drive(
    mut link: TapLink,
    sink: &RecordSink,
    lines: &mut Lines,
    wait: Duration,
    shutdown: impl Future<Output = ()>,
) -> Finish {
    tokio::pin!(shutdown);
    let mut pace = Pace {
        wait,
        lines_done: None,
        acks_due: HashSet::new(),
    };
    let mut next_ack = 0;
    let ending = loop {
        sink.room().await;
        let close_at = pace.close_at();
        let timer = async move {
            match close_at {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        // Biased: Ctrl-C and the deadline first, so that a server that never stops sending cannot
        // hold the session open; then what arrived, before the next line goes out.
        tokio::select! {
            biased;
            () = &mut shutdown => break close(link, 1000, "").await,
            () = timer => break close(link, 1000, "").await,
            arrival = poll_fn(|cx| link.poll_arrival(cx)) => {
                match arrival {
                    Arrival::Frame => {}
                    Arrival::Ack(id) => {
                        pace.acks_due.remove(&id);
                    }
                    Arrival::ServerClosed(frame) => {
                        link.answer_close(frame.clone()).await;
                        let (code, reason) = frame.unzip();
                        break Ending::ServerClosed {
                            code,
                            reason: reason.unwrap_or_default(),
                        };
                    }
                    Arrival::ServerLeft(detail) => {
                        // The namespace is gone: leave the Engine.IO session too.
                        link.ended(detail.clone());
                        link.close(1000, "").await;
                        break Ending::ServerLeft(detail);
                    }
                    Arrival::Failed(fault) => {
                        link.ended(format!("{}: {}", fault.kind, fault.detail));
                        break Ending::Lost(fault);
                    }
                }
            }
            line = lines.next(), if pace.lines_done.is_none() => match line {
                None => pace.lines_done = Some(Instant::now()),
                Some(Line::Close { code, reason }) => {
                    break close(link, code, &reason).await;
                }
                Some(line) => {
                    let asks_ack = matches!(line, Line::Emit { ack: true, .. });
                    if let Err(fault) = link.send(&line, &mut next_ack).await {
                        link.ended(format!("{}: {}", fault.kind, fault.detail));
                        break Ending::Lost(fault);
                    }
                    if asks_ack {
                        pace.acks_due.insert(next_ack - 1);
                    }
                }
            },
        }
    };
    Finish {
        ending,
        acks_due: pace.acks_due.len(),
    }
}

async fn close(link: TapLink, code: u16, reason: &str) -> Ending {
    let answer = link.close(code, reason).await;
    Ending::Closed { code, answer }
}
