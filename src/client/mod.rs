//! One virtual client: connect, run the group's on_connect steps, emit on schedule while reading,
//! drain, close. Everything it observes goes into its worker's [`WorkerMetrics`].

mod ledger;
mod link;
pub mod schedule;
mod session;
pub mod tracking;

use std::cell::RefCell;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::metrics::{ErrorKind, ErrorRow, WorkerMetrics};
use crate::scenario::{Plan, Protocol, ReconnectPlan, StepPlan};
use crate::transport::Fault;
use crate::transport::socketio::{Incoming, Recovery, SioSocket};
use crate::transport::ws::{ConnectError, Connector};
use crate::wire::frame_log::RunFrameLog;
use link::{Link, Scratch, describe_close};
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
    /// `--log-frames`: the sampled clients' connections log their frames here.
    pub frame_log: Option<RunFrameLog>,
}

/// A client about to start: its global id and group.
#[derive(Debug, Clone, Copy)]
pub struct ClientId {
    pub id: u32,
    pub group: u16,
}

/// Runs one client from connect to close, reconnecting when the plan says so.
///
/// A task's future is allocated at the size of its largest state and keeps that size for the whole
/// run, so every phase but the session is boxed and freed when it ends: what an idle client holds
/// is this small future plus the boxed [`Session`]. (That includes what follows a session: a local
/// moved away before an await still takes room in the future, and a [`Link`] is 328 bytes.)
pub async fn run(ctx: Arc<ClientContext>, who: ClientId, metrics: &RefCell<WorkerMetrics>) {
    let Some(link) = Box::pin(open(&ctx, who, metrics)).await else {
        return;
    };
    let mut session = Box::new(Session::new(&ctx, who, link, metrics));
    let connected_at_end = loop {
        let end = poll_fn(|cx| session.poll_session(cx)).await;
        if let Some(connected_at_end) =
            Box::pin(after_session(&ctx, who, metrics, &mut session, end)).await
        {
            break connected_at_end;
        }
    };
    session.finish(connected_at_end);
}

/// Closes the link of a session that ended, then reconnects when the plan says so. `None`: the
/// session goes on over a new link; otherwise the client ends, and whether it was connected
/// when emitting ended.
async fn after_session(
    ctx: &ClientContext,
    who: ClientId,
    metrics: &RefCell<WorkerMetrics>,
    session: &mut Session<'_>,
    end: End,
) -> Option<bool> {
    let lost_at = Instant::now();
    let connected_at_end = matches!(end, End::Drained) || lost_at >= ctx.emit_end;
    let link = session.take_link();
    let recovery = match &link {
        Link::Sio(sio) => Some(sio.recovery().clone()),
        Link::Ws(..) => None,
    };
    let again = reconnects_after(ctx, &end);
    finish(ctx, who, metrics, end, link).await;
    let Some(backoff) = again else {
        return Some(connected_at_end);
    };
    match reconnect(ctx, who, metrics, backoff, recovery, lost_at).await {
        Some((link, recovered)) => {
            session.resume(link, recovered);
            None
        }
        None => Some(false),
    }
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

/// Opens the connection of the plan's protocol: a WebSocket on the group's path, or a Socket.IO
/// session on the group's namespace (recovering `previous` when given). The flag: recovered.
async fn connect(
    ctx: &ClientContext,
    who: ClientId,
    previous: Option<&Recovery>,
) -> Result<(Link, bool), ConnectError> {
    let group = &ctx.plan.groups[who.group as usize];
    let engine = ctx.plan.socketio().map(|sio| sio.engine.version);
    let log = ctx
        .frame_log
        .as_ref()
        .and_then(|log| log.connection(who.id, engine));
    match &ctx.plan.protocol {
        Protocol::Ws => {
            let ws = ctx.connector.connect(&group.path).await?;
            let log = log.map(|mut log| {
                log.opened(ctx.connector.addr(), &group.path);
                log
            });
            Ok((Link::Ws(ws, log), false))
        }
        Protocol::SocketIo(sio) => {
            let auth = group
                .auth
                .as_ref()
                .map(|t| t.render(who.id, 0, &group.name, None));
            let (socket, recovered) = SioSocket::open(
                &ctx.connector,
                sio,
                &group.namespace,
                auth.as_deref(),
                previous,
                log,
            )
            .await?;
            Ok((Link::Sio(Box::new(socket)), recovered))
        }
    }
}

/// One connection attempt, accounted for: `connecting` while it runs, then a connect or a failure.
async fn attempt(
    ctx: &ClientContext,
    who: ClientId,
    metrics: &RefCell<WorkerMetrics>,
    previous: Option<&Recovery>,
) -> Option<Result<(Link, bool), ()>> {
    metrics.borrow_mut().connecting += 1;
    let started = Instant::now();
    let result = tokio::select! {
        _ = ctx.stop.cancelled() => None,
        result = tokio::time::timeout(ctx.plan.connect_timeout, connect(ctx, who, previous)) => Some(result),
    };
    let failure = {
        let mut m = metrics.borrow_mut();
        m.connecting -= 1;
        match result {
            None => return None,
            Some(Ok(Ok(connected))) => {
                m.record(0, started.elapsed());
                m.interval.connects += 1;
                m.connected += 1;
                return Some(Ok(connected));
            }
            Some(Err(_elapsed)) => (
                ErrorKind::ConnectTimeout,
                format!("not connected after {:?}", ctx.plan.connect_timeout),
            ),
            Some(Ok(Err(e))) => (e.kind, e.detail),
        }
    };
    metrics.borrow_mut().interval.connect_failures += 1;
    report(ctx, who, metrics, failure.0, failure.1);
    Some(Err(()))
}

/// Connects and runs the on_connect steps, returning the link ready for the session. `None`:
/// stopped, or the connection failed or ended during on_connect (reported and accounted for).
async fn open(
    ctx: &ClientContext,
    who: ClientId,
    metrics: &RefCell<WorkerMetrics>,
) -> Option<Link> {
    let Ok((link, _)) = attempt(ctx, who, metrics, None).await? else {
        return None;
    };
    setup(ctx, who, metrics, link).await
}

/// Runs the group's on_connect steps on a new connection; on failure closes it (accounted for).
async fn setup(
    ctx: &ClientContext,
    who: ClientId,
    metrics: &RefCell<WorkerMetrics>,
    mut link: Link,
) -> Option<Link> {
    match on_connect(ctx, who, metrics, &mut link).await {
        Ok(()) => Some(link),
        Err(fault) => {
            finish(
                ctx,
                who,
                metrics,
                End::Failed(fault.kind, fault.detail),
                link,
            )
            .await;
            None
        }
    }
}

/// Whether a session that ended this way is followed by a reconnect: only a lost connection
/// (not a normal end, not a server that disconnected the client on purpose, not after a stop),
/// and only while emitting goes on.
fn reconnects_after<'p>(ctx: &'p ClientContext, end: &End) -> Option<&'p ReconnectPlan> {
    let plan = ctx.plan.reconnect.as_ref()?;
    let lost = match end {
        End::Drained => false,
        End::ServerClosed(_) | End::Dropped => true,
        End::Failed(kind, _) => {
            !matches!(kind, ErrorKind::ServerDisconnect | ErrorKind::ConnectError)
        }
    };
    (lost && !ctx.stop.is_cancelled() && Instant::now() < ctx.emit_end).then_some(plan)
}

/// Waits with exponential backoff and jitter, then connects again, until connected, out of
/// attempts, stopped or past the emitting phase. Records the time from losing the connection to
/// having it back, and whether a Socket.IO server recovered the session.
async fn reconnect(
    ctx: &ClientContext,
    who: ClientId,
    metrics: &RefCell<WorkerMetrics>,
    backoff: &ReconnectPlan,
    recovery: Option<Recovery>,
    lost_at: Instant,
) -> Option<(Link, bool)> {
    let recover = ctx.plan.socketio().is_some_and(|s| s.recovery);
    let previous = recovery.filter(|r| recover && r.pid.is_some());
    let mut attempts = 0;
    loop {
        if backoff.max_attempts.is_some_and(|max| attempts >= max) {
            report(
                ctx,
                who,
                metrics,
                ErrorKind::ConnectionLost,
                format!("gave up reconnecting after {attempts} attempts"),
            );
            return None;
        }
        let wait = backoff_delay(backoff, attempts);
        tokio::select! {
            _ = ctx.stop.cancelled() => return None,
            _ = tokio::time::sleep(wait) => {}
        }
        if Instant::now() >= ctx.emit_end {
            return None;
        }
        attempts += 1;
        let Ok((link, recovered)) = attempt(ctx, who, metrics, previous.as_ref()).await? else {
            continue;
        };
        {
            let mut m = metrics.borrow_mut();
            m.interval.reconnects += 1;
            if recovered {
                m.interval.recovered += 1;
            }
            if let Some(metric) = ctx.plan.reconnect_metric {
                m.record(metric, lost_at.elapsed());
            }
        }
        // A recovered session keeps its rooms on the server: the setup steps are not repeated.
        if recovered {
            return Some((link, true));
        }
        match setup(ctx, who, metrics, link).await {
            Some(link) => return Some((link, false)),
            // Lost again during its setup (accounted for): try again.
            None => continue,
        }
    }
}

/// The wait before reconnect attempt `attempt` (from 0): `initial × factor^attempt`, randomised by
/// ± `jitter`, at most `max`.
fn backoff_delay(plan: &ReconnectPlan, attempt: u32) -> Duration {
    let base = plan.initial.as_secs_f64() * plan.factor.powi(attempt.min(64) as i32);
    let spread = base * plan.jitter * (fastrand::f64() * 2.0 - 1.0);
    Duration::from_secs_f64((base + spread).clamp(0.0, plan.max.as_secs_f64()))
}

/// Closes (or reports why not) and accounts for the end of a connected client.
async fn finish(
    ctx: &ClientContext,
    who: ClientId,
    metrics: &RefCell<WorkerMetrics>,
    end: End,
    mut link: Link,
) {
    if let Some(log) = link.frame_log() {
        match &end {
            End::Drained => {}
            End::ServerClosed(_) => log.ended("closed by the server".into()),
            End::Dropped => log.ended("dropped by the scenario (disconnect_every)".into()),
            End::Failed(kind, detail) => log.ended(format!("{kind}: {detail}")),
        }
    }
    let code = match end {
        End::Drained => link.close(ctx.close_timeout).await,
        End::ServerClosed(frame) => {
            link.flush_close_reply(ctx.close_timeout).await;
            let (code, text) = describe_close(frame.as_ref());
            report(ctx, who, metrics, ErrorKind::ClosedByServer, text);
            code
        }
        // Dropped on purpose: no goodbye, and no error.
        End::Dropped => {
            link.abort(ctx.close_timeout).await;
            1006
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

/// Sends the group's on_connect messages in order; `wait` steps pause (ending early on stop).
async fn on_connect(
    ctx: &ClientContext,
    who: ClientId,
    metrics: &RefCell<WorkerMetrics>,
    link: &mut Link,
) -> Result<(), Fault> {
    let group = &ctx.plan.groups[who.group as usize];
    let mut scratch = Scratch::default();
    for (seq, step) in group.on_connect.iter().enumerate() {
        match step {
            StepPlan::Emit(message) => {
                let rendered = link.render(
                    &mut scratch,
                    message,
                    who.id,
                    seq as u64,
                    &group.name,
                    None,
                    None,
                );
                let send = async {
                    poll_fn(|cx| link.poll_ready(cx)).await?;
                    link.send_rendered(&scratch, &rendered)?;
                    poll_fn(|cx| link.poll_flush(cx)).await
                };
                match tokio::time::timeout(ctx.stall_timeout, send).await {
                    Ok(sent) => sent?,
                    Err(_) => {
                        return Err(Fault::new(
                            ErrorKind::WriteStalled,
                            format!(
                                "on_connect message not written after {:?}: the server is not reading",
                                ctx.stall_timeout
                            ),
                        ));
                    }
                }
            }
            StepPlan::Wait(pause) => {
                tokio::select! {
                    _ = tokio::time::sleep(*pause) => {}
                    _ = ctx.stop.cancelled() => return Ok(()),
                    lost = poll_fn(|cx| service(link, metrics, cx)) => return Err(lost),
                }
            }
        }
    }
    Ok(())
}

/// Keeps a connection alive while the client waits: reads (and counts) what arrives, answers
/// heartbeats. Ready only when the connection fails.
fn service(link: &mut Link, metrics: &RefCell<WorkerMetrics>, cx: &mut Context<'_>) -> Poll<Fault> {
    loop {
        match link.poll_next(cx) {
            Poll::Ready(Ok(Incoming::Payload(_) | Incoming::Ack(_))) => {
                metrics.borrow_mut().interval.received += 1;
            }
            Poll::Ready(Ok(Incoming::Closed(frame))) => {
                let (_, text) = describe_close(frame.as_ref());
                return Poll::Ready(Fault::new(ErrorKind::ClosedByServer, text));
            }
            Poll::Ready(Ok(_)) => {}
            Poll::Ready(Err(fault)) => return Poll::Ready(fault),
            Poll::Pending => break,
        }
    }
    if link.wants_flush() {
        if let Poll::Ready(Err(fault)) = link.poll_flush(cx) {
            return Poll::Ready(fault);
        }
    }
    Poll::Pending
}

#[cfg(test)]
mod tests {
    use super::*;

    fn future_size<Fut: std::future::Future>(
        _f: fn(Arc<ClientContext>, ClientId, &'static RefCell<WorkerMetrics>) -> Fut,
    ) -> usize {
        std::mem::size_of::<Fut>()
    }

    /// Every idle client holds its task's future: what is not needed while the session runs must
    /// be boxed (it was 496 bytes when the link of an ended session stayed in it).
    #[test]
    fn the_client_task_stays_small() {
        let size = future_size(run);
        assert!(size <= 128, "client::run's future is {size} bytes");
    }
}
