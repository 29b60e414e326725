//! One virtual client: connect, run the group's on_connect steps, emit on schedule while reading,
//! drain, close. Everything it observes goes into its worker's [`WorkerMetrics`].

pub mod schedule;
mod session;

use std::cell::RefCell;
use std::future::poll_fn;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

use crate::metrics::{ErrorKind, ErrorRow, WorkerMetrics};
use crate::scenario::{Plan, StepPlan};
use crate::transport::ws::{ClientSocket, Connector, classify};
use session::{End, Session};

/// What every client of a run shares (read-only).
pub struct ClientContext {
    pub plan: Plan,
    pub connector: Connector,
    /// Time zero of the run; stamps carry nanoseconds since it.
    pub t0: Instant,
    /// When emitting ends for everybody.
    pub emit_end: Instant,
    /// Tags this run's stamps.
    pub run_tag: u32,
    /// Cancelled on Ctrl-C / SIGTERM: stop emitting, drain, close.
    pub stop: CancellationToken,
    /// How long the close handshake may take.
    pub close_timeout: Duration,
    /// How long writes may be blocked before the connection counts as stalled.
    pub stall_timeout: Duration,
}

/// A client about to start: its global id and group.
#[derive(Debug, Clone, Copy)]
pub struct ClientId {
    pub id: u32,
    pub group: u16,
}

/// Runs one client from connect to close.
///
/// A task's future is allocated at the size of its largest state and keeps that size for the whole
/// run, so every phase but the session is boxed and freed when it ends: what an idle client holds
/// is this small future plus the boxed [`Session`].
pub async fn run(ctx: Arc<ClientContext>, who: ClientId, metrics: &RefCell<WorkerMetrics>) {
    let Some(mut session) = Box::pin(open(&ctx, who, metrics)).await else {
        return;
    };
    let end = poll_fn(|cx| session.poll_session(cx)).await;
    let socket = session.finish();
    Box::pin(finish(&ctx, who, metrics, end, socket)).await;
}

fn report(
    ctx: &ClientContext,
    who: ClientId,
    metrics: &RefCell<WorkerMetrics>,
    kind: ErrorKind,
    detail: String,
) {
    metrics.borrow_mut().error(ErrorRow {
        at: ctx.t0.elapsed(),
        client: who.id,
        group: who.group,
        kind,
        detail,
    });
}

/// Connects and runs the on_connect steps, returning the session ready to start. `None`: stopped,
/// or the connection failed or ended during on_connect (reported and accounted for).
async fn open<'a>(
    ctx: &'a ClientContext,
    who: ClientId,
    metrics: &'a RefCell<WorkerMetrics>,
) -> Option<Box<Session<'a>>> {
    let group = &ctx.plan.groups[who.group as usize];
    metrics.borrow_mut().connecting += 1;
    let started = Instant::now();
    let attempt = tokio::select! {
        _ = ctx.stop.cancelled() => None,
        result = tokio::time::timeout(ctx.plan.connect_timeout, ctx.connector.connect(&group.path)) => Some(result),
    };
    let connected = {
        let mut m = metrics.borrow_mut();
        m.connecting -= 1;
        match attempt {
            None => return None,
            Some(Err(_elapsed)) => {
                m.interval.connect_failures += 1;
                Err((
                    ErrorKind::ConnectTimeout,
                    format!("no WebSocket after {:?}", ctx.plan.connect_timeout),
                ))
            }
            Some(Ok(Err(e))) => {
                m.interval.connect_failures += 1;
                Err((e.kind, e.detail))
            }
            Some(Ok(Ok(socket))) => {
                m.record(0, started.elapsed());
                m.interval.connects += 1;
                m.connected += 1;
                Ok(socket)
            }
        }
    };
    let mut socket = match connected {
        Ok(socket) => socket,
        Err((kind, detail)) => {
            report(ctx, who, metrics, kind, detail);
            return None;
        }
    };
    match on_connect(ctx, who, &mut socket).await {
        Ok(()) => Some(Box::new(Session::new(ctx, who, socket, metrics))),
        Err(OnConnectError::Socket(e)) => {
            let end = End::Failed(classify(&e), e.to_string());
            finish(ctx, who, metrics, end, socket).await;
            None
        }
        Err(OnConnectError::Stalled(after)) => {
            let end = End::Failed(
                ErrorKind::WriteStalled,
                format!(
                    "on_connect message not written after {after:?}: the server is not reading"
                ),
            );
            finish(ctx, who, metrics, end, socket).await;
            None
        }
    }
}

/// Closes (or reports why not) and accounts for the end of a connected client.
async fn finish(
    ctx: &ClientContext,
    who: ClientId,
    metrics: &RefCell<WorkerMetrics>,
    end: End,
    socket: ClientSocket,
) {
    let code = match end {
        End::Drained => close(socket, ctx.close_timeout).await,
        End::ServerClosed(frame) => {
            // Send tungstenite's queued close reply, briefly: the server is waiting for it.
            let mut socket = socket;
            let _ = tokio::time::timeout(ctx.close_timeout, socket.flush()).await;
            let (code, reason) = frame
                .map(|f| (u16::from(f.code), f.reason.to_string()))
                .unwrap_or((1005, String::new()));
            report(
                ctx,
                who,
                metrics,
                ErrorKind::ClosedByServer,
                format!("{code} {reason}").trim_end().to_string(),
            );
            code
        }
        End::Failed(kind, detail) => {
            report(ctx, who, metrics, kind, detail);
            1006
        }
    };
    let mut m = metrics.borrow_mut();
    m.connected -= 1;
    m.close(code);
}

enum OnConnectError {
    Socket(tokio_tungstenite::tungstenite::Error),
    Stalled(Duration),
}

impl From<tokio_tungstenite::tungstenite::Error> for OnConnectError {
    fn from(e: tokio_tungstenite::tungstenite::Error) -> Self {
        OnConnectError::Socket(e)
    }
}

/// Sends the group's on_connect messages in order; `wait` steps pause (ending early on stop).
async fn on_connect(
    ctx: &ClientContext,
    who: ClientId,
    socket: &mut ClientSocket,
) -> Result<(), OnConnectError> {
    let group = &ctx.plan.groups[who.group as usize];
    for (seq, step) in group.on_connect.iter().enumerate() {
        match step {
            StepPlan::Emit { template, binary } => {
                let text = template.render(who.id, seq as u64, &group.name, None);
                let message = if *binary {
                    Message::Binary(text.into_bytes().into())
                } else {
                    Message::text(text)
                };
                match tokio::time::timeout(ctx.stall_timeout, socket.send(message)).await {
                    Ok(sent) => sent?,
                    Err(_) => {
                        return Err(OnConnectError::Stalled(ctx.stall_timeout));
                    }
                }
            }
            StepPlan::Wait(pause) => {
                tokio::select! {
                    _ = tokio::time::sleep(*pause) => {}
                    _ = ctx.stop.cancelled() => return Ok(()),
                }
            }
        }
    }
    Ok(())
}

/// The client's side of the close handshake; returns the code the server answered with, or 1006
/// when it did not answer within `timeout` (or the close could not be sent).
async fn close(mut socket: ClientSocket, timeout: Duration) -> u16 {
    let handshake = async {
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        if socket.close(Some(frame)).await.is_err() {
            return 1006;
        }
        // The server's close frame completes the handshake; late messages before it are ignored.
        while let Some(message) = socket.next().await {
            match message {
                Ok(Message::Close(frame)) => {
                    return frame.map(|f| u16::from(f.code)).unwrap_or(1005);
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        1006
    };
    tokio::time::timeout(timeout, handshake)
        .await
        .unwrap_or(1006)
}
