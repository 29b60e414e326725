//! One server-side WebSocket connection: read what the client sends, hand it to the endpoint, write
//! what the endpoint produces, in batches (many messages, one flush).

use std::sync::atomic::Ordering;

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

use super::counters::EndpointCounts;

/// Messages read or produced in one batch before a flush.
const BATCH: usize = 256;

/// What an endpoint wants sent next.
pub enum Outgoing {
    Message(Message),
    /// Close the connection with this code and reason.
    Close(CloseCode, String),
}

/// The behaviour of one endpoint for one connection.
pub trait Endpoint {
    /// A text or binary message from the client; push replies to send now into `out`.
    fn on_message(&mut self, message: Message, out: &mut Vec<Message>);
    /// The next message from elsewhere (a room, a timer, the delay line). Must be cancel-safe.
    fn next_outgoing(&mut self) -> impl Future<Output = Outgoing>;
}

pub async fn run<S, E>(
    mut ws: WebSocketStream<S>,
    mut endpoint: E,
    stop: CancellationToken,
    counts: &EndpointCounts,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    E: Endpoint,
{
    let mut tally = Tally::open(counts);
    let mut out: Vec<Message> = Vec::with_capacity(16);
    loop {
        tally.add_up();
        let mut ended = false;
        tokio::select! {
            biased;
            _ = stop.cancelled() => {
                close(&mut ws, CloseCode::Away, "server shutting down").await;
                return;
            }
            incoming = ws.next() => match incoming {
                Some(Ok(message)) => {
                    tally.received += take(message, &mut endpoint, &mut out);
                    // Everything already buffered goes out with one flush. Each reply is queued
                    // before the next read: reading a close frame makes tungstenite queue its
                    // close reply, and it sends nothing after that.
                    let mut taken = 1;
                    while taken < BATCH && feed_all(&mut ws, &mut out, &mut tally.sent).await {
                        match ws.next().now_or_never() {
                            Some(Some(Ok(message))) => {
                                tally.received += take(message, &mut endpoint, &mut out);
                                taken += 1;
                            }
                            Some(_) => { ended = true; break; }
                            None => break,
                        }
                    }
                }
                _ => ended = true,
            },
            outgoing = endpoint.next_outgoing() => match outgoing {
                Outgoing::Message(message) => {
                    out.push(message);
                    while out.len() < BATCH {
                        match endpoint.next_outgoing().now_or_never() {
                            Some(Outgoing::Message(message)) => out.push(message),
                            Some(Outgoing::Close(code, reason)) => {
                                flush_all(&mut ws, &mut out, &mut tally.sent).await;
                                close(&mut ws, code, &reason).await;
                                return;
                            }
                            None => break,
                        }
                    }
                }
                Outgoing::Close(code, reason) => {
                    flush_all(&mut ws, &mut out, &mut tally.sent).await;
                    close(&mut ws, code, &reason).await;
                    return;
                }
            },
        }
        // Also flushes a queued pong or close reply that tungstenite prepared while reading.
        if !flush_all(&mut ws, &mut out, &mut tally.sent).await || ended {
            return;
        }
    }
}

/// A connection's counts since the last batch, added to the endpoint's once per batch and when
/// the connection ends (with its close).
struct Tally<'a> {
    counts: &'a EndpointCounts,
    received: u64,
    sent: u64,
}

impl<'a> Tally<'a> {
    fn open(counts: &'a EndpointCounts) -> Tally<'a> {
        counts.accepted.fetch_add(1, Ordering::Relaxed);
        Tally {
            counts,
            received: 0,
            sent: 0,
        }
    }

    fn add_up(&mut self) {
        EndpointCounts::add(&self.counts.received, std::mem::take(&mut self.received));
        EndpointCounts::add(&self.counts.sent, std::mem::take(&mut self.sent));
    }
}

impl Drop for Tally<'_> {
    fn drop(&mut self) {
        self.add_up();
        self.counts.closed.fetch_add(1, Ordering::Relaxed);
    }
}

/// Hands a data message to the endpoint; 1 when it was one.
fn take<E: Endpoint>(message: Message, endpoint: &mut E, out: &mut Vec<Message>) -> u64 {
    if message.is_text() || message.is_binary() {
        endpoint.on_message(message, out);
        return 1;
    }
    0
}

/// Queues `out` in the stream's write buffer without flushing, counting into `sent`; false when
/// the stream failed.
async fn feed_all<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    out: &mut Vec<Message>,
    sent: &mut u64,
) -> bool {
    for message in out.drain(..) {
        if ws.feed(message).await.is_err() {
            return false;
        }
        *sent += 1;
    }
    true
}

async fn flush_all<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    out: &mut Vec<Message>,
    sent: &mut u64,
) -> bool {
    feed_all(ws, out, sent).await && ws.flush().await.is_ok()
}

async fn close<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    code: CloseCode,
    reason: &str,
) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    if ws.close(Some(frame)).await.is_ok() {
        // Wait briefly for the client's close reply so the handshake completes cleanly.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
            while let Some(Ok(_)) = ws.next().await {}
        })
        .await;
    }
}
