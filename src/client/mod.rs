//! One virtual client: connect, run the group's on_connect steps, emit on schedule while reading,
//! drain, close. Everything it observes goes into its worker's [`WorkerMetrics`].

pub mod close_window;
mod conversation;
mod leave;
mod ledger;
mod link;
mod replies;
pub mod schedule;
mod session;
mod steps;
pub mod timers;
pub mod tracking;

use std::borrow::Cow;
use std::cell::RefCell;
use std::future::poll_fn;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::metrics::{ConnectPhases, ErrorKind, ErrorRow, WorkerMetrics};
use crate::protocol::engineio::encode_query_value;
use crate::scenario::template::{Fill, UserValues};
use crate::scenario::{Action, Plan, Protocol, ReconnectPlan};
use crate::secrets::SecretRules;
use crate::transport::socketio::{Recovery, SioSocket, SocketIoOptions};
use crate::transport::ws::{ConnectError, Connector};
use crate::wire::frame_log::RunFrameLog;
use close_window::CloseWindow;
use conversation::User;
use leave::Left;
use link::Link;
use session::{End, Session};
use timers::Timers;

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
    /// Where HTTP steps go (`None` when the plan has none).
    pub http: Option<Connector>,
    /// The run's seed: `pick = "random"` rows follow it.
    pub seed: u64,
    /// What error rows and frame logs hide (`--show-secrets`, `--secret`).
    pub secrets: SecretRules,
}

/// How a worker thread paces its clients' sessions: one timer for all of them, and turns for their
/// closes.
#[derive(Clone, Default)]
pub struct Pacing {
    pub timers: Timers,
    pub closes: CloseWindow,
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
/// is this small future plus the boxed [`Session`]. (That includes a reconnect: a local moved away
/// before an await still takes room in the future, and a [`Link`] is 328 bytes.) Leaving a
/// connection builds no future at all: the session closes it in place ([`Session::poll_leave`]),
/// because at the end of a run every client closes at once.
pub async fn run(
    ctx: Arc<ClientContext>,
    who: ClientId,
    metrics: &RefCell<WorkerMetrics>,
    pacing: &Pacing,
) {
    let mut user = Box::new(User::new(&ctx, who, leaving_time(&ctx, who)));
    let group = &ctx.plan.groups[who.group as usize];
    if !group.before_connect.is_empty()
        && !Box::pin(conversation::before_connect(&ctx, who, metrics, &mut user)).await
    {
        return;
    }
    // An idle keep-alive connection per user costs a socket and hyper's buffers: keep it only
    // for later HTTP steps (the cookies stay).
    let later_http = group
        .on_connect
        .iter()
        .any(|s| matches!(s.action, Action::Http(_)));
    if let (false, Some(http)) = (later_http, user.http.as_mut()) {
        http.close();
    }
    let Some(Ok((link, _))) = Box::pin(attempt(&ctx, who, metrics, None, &user)).await else {
        return;
    };
    let mut session = Box::new(Session::new(&ctx, who, link, metrics, pacing, *user));
    // An end the setup came to, boxed: the future keeps room for every local across awaits.
    let mut pending = Box::pin(session.setup()).await.err().map(Box::new);
    if pending.is_none() {
        session.after_setup();
    }
    let connected_at_end = loop {
        let end = match pending.take() {
            Some(end) => *end,
            None => poll_fn(|cx| session.poll_session(cx)).await,
        };
        // Left in place, without a future: at the end of a run every client does this at once.
        session.leave(end);
        match poll_fn(|cx| session.poll_leave(cx)).await {
            Left::Done(connected_at_end) => break connected_at_end,
            Left::Reconnect => {}
        }
        match Box::pin(come_back(&ctx, who, metrics, &mut session)).await {
            Next::Done => break false,
            Next::Resumed => {}
            Next::Ended(end) => pending = Some(Box::new(end)),
        }
    };
    session.finish(connected_at_end);
}

/// When a user stops emitting: at the end of the run, or after its lifetime for an arriving one.
fn leaving_time(ctx: &ClientContext, who: ClientId) -> Instant {
    let group = &ctx.plan.groups[who.group as usize];
    match &group.arrivals {
        Some(arrivals) => (Instant::now() + arrivals.lifetime.draw()).min(ctx.emit_end),
        None => ctx.emit_end,
    }
}

/// What follows a reconnect.
enum Next {
    /// Not reconnected: the client ends.
    Done,
    /// Reconnected (and set up): the session goes on.
    Resumed,
    /// Reconnected, but the setup on the new connection ended it.
    Ended(End),
}

/// After a lost connection was left: connects again as the plan says, running the on_connect
/// steps again unless the server recovered the session.
async fn come_back(
    ctx: &ClientContext,
    who: ClientId,
    metrics: &RefCell<WorkerMetrics>,
    session: &mut Session<'_>,
) -> Next {
    let lost_at = session.left_at();
    let recovery = match session.take_link() {
        Link::Sio(sio) => Some(sio.recovery().clone()),
        Link::Ws(..) => None,
    };
    let Some(backoff) = ctx.plan.reconnect.as_ref() else {
        return Next::Done;
    };
    let reconnected = reconnect(ctx, who, metrics, backoff, recovery, lost_at, &session.user).await;
    let Some((link, recovered)) = reconnected else {
        return Next::Done;
    };
    session.resume(link, recovered);
    // A recovered session keeps its rooms on the server: the setup steps are not repeated.
    if !recovered {
        if let Err(end) = session.setup().await {
            return Next::Ended(end);
        }
    }
    session.after_setup();
    Next::Resumed
}

/// Counts an error and keeps its row for errors.csv, with the secrets hidden that the detail may
/// quote: query values of a URL, and the values `user` holds secret (a server that answers
/// `invalid token eyJ...`).
fn report(
    ctx: &ClientContext,
    who: ClientId,
    user: &UserValues,
    metrics: &RefCell<WorkerMetrics>,
    kind: ErrorKind,
    detail: String,
) {
    let detail = ctx
        .secrets
        .redact_message(detail, ctx.plan.user_secrets(user));
    metrics.borrow_mut().error(ErrorRow {
        at: ctx.t0.elapsed(),
        client: who.id,
        group: who.group,
        kind,
        detail,
    });
}

/// Gives a sampled client's frame log the secret values its user holds now, to hide wherever
/// they appear (a token captured from the login, a password column).
fn learn_secrets(ctx: &ClientContext, link: &mut Link, user: &UserValues) {
    if let Some(log) = link.frame_log() {
        for value in ctx.plan.user_secrets(user) {
            log.learn_secret(value);
        }
    }
}

/// Opens the connection of the plan's protocol: a WebSocket on the group's path, or a Socket.IO
/// session on the group's namespace (recovering `previous` when given), with the user's own
/// values (auth, headers, cookies, path, query). The flag: recovered. `phases`: where each phase
/// of connect ended.
async fn connect(
    ctx: &ClientContext,
    who: ClientId,
    previous: Option<&Recovery>,
    user: &User,
    phases: &mut ConnectPhases,
) -> Result<(Link, bool), ConnectError> {
    let group = &ctx.plan.groups[who.group as usize];
    let engine = ctx.plan.socketio().map(|sio| sio.engine.version);
    let log = ctx
        .frame_log
        .as_ref()
        .and_then(|log| log.connection(who.id, engine))
        .map(|mut log| {
            for value in ctx.plan.user_secrets(&user.values) {
                log.learn_secret(value);
            }
            log
        });
    let fill = user.fill(ctx, who, 0);
    match &ctx.plan.protocol {
        Protocol::Ws => {
            let path = match &group.user_path {
                Some(template) => template.render(&fill, None),
                None => group.path.clone(),
            };
            let connector = user_connector(ctx, user, &fill, &path)?;
            let ws = connector.connect_timed(&path, phases).await?;
            let log = log.map(|mut log| {
                log.opened(connector.addr(), &path);
                log
            });
            Ok((Link::Ws(ws, log), false))
        }
        Protocol::SocketIo(sio) => {
            let auth = group.auth.as_ref().map(|t| t.render(&fill, None));
            let connector = user_connector(ctx, user, &fill, &sio.engine.path)?;
            let options = user_engine_options(ctx, sio, &fill);
            let (socket, recovered) = SioSocket::open(
                &connector,
                options.as_ref(),
                &group.namespace,
                auth.as_deref(),
                previous,
                log,
                phases,
            )
            .await?;
            Ok((Link::Sio(Box::new(socket)), recovered))
        }
    }
}

/// The run's connector, or a copy with this user's headers and cookies when it has any.
fn user_connector<'c>(
    ctx: &'c ClientContext,
    user: &User,
    fill: &Fill,
    path: &str,
) -> Result<Cow<'c, Connector>, ConnectError> {
    // Cookies match on the path alone, without the query.
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    let cookie = user.http.as_ref().and_then(|h| h.cookie_header(path));
    if ctx.plan.user_headers.is_empty() && cookie.is_none() {
        return Ok(Cow::Borrowed(&ctx.connector));
    }
    let mut headers = ctx.connector.headers().to_vec();
    for (name, template) in &ctx.plan.user_headers {
        let value = http::HeaderValue::try_from(template.render(fill, None)).map_err(|_| {
            ConnectError::new(
                ErrorKind::Handshake,
                format!("header `{name}` is not a valid header value once rendered"),
            )
        })?;
        headers.push((name.clone(), value));
    }
    if let Some(cookie) = cookie {
        // One Cookie header: the scenario's own cookies first, then the jar's.
        match headers
            .iter_mut()
            .find(|(name, _)| name == http::header::COOKIE)
        {
            Some((_, written)) => {
                let mut merged = written.as_bytes().to_vec();
                merged.extend_from_slice(b"; ");
                merged.extend_from_slice(cookie.as_bytes());
                if let Ok(value) = http::HeaderValue::from_bytes(&merged) {
                    *written = value;
                }
            }
            None => headers.push((http::header::COOKIE, cookie)),
        }
    }
    Ok(Cow::Owned(ctx.connector.clone().with_headers(headers)))
}

/// The Socket.IO options, or a copy with this user's query values when `[socketio] query` has any.
fn user_engine_options<'c>(
    ctx: &ClientContext,
    sio: &'c SocketIoOptions,
    fill: &Fill,
) -> Cow<'c, SocketIoOptions> {
    if ctx.plan.user_query.is_empty() {
        return Cow::Borrowed(sio);
    }
    let mut options = sio.clone();
    for (key, template) in &ctx.plan.user_query {
        options.engine.query.push_str(key);
        let value = template.render(fill, None);
        options.engine.query.push_str(&encode_query_value(&value));
    }
    Cow::Owned(options)
}

/// One connection attempt, accounted for: `connecting` while it runs, then a connect (its time
/// and its phases' times) or a failure.
async fn attempt(
    ctx: &ClientContext,
    who: ClientId,
    metrics: &RefCell<WorkerMetrics>,
    previous: Option<&Recovery>,
    user: &User,
) -> Option<Result<(Link, bool), ()>> {
    metrics.borrow_mut().connecting += 1;
    let started = Instant::now();
    let mut phases = ConnectPhases::default();
    let connecting = connect(ctx, who, previous, user, &mut phases);
    let result = tokio::select! {
        _ = ctx.stop.cancelled() => None,
        result = tokio::time::timeout(ctx.plan.connect_timeout, connecting) => Some(result),
    };
    let failure = {
        let mut m = metrics.borrow_mut();
        m.connecting -= 1;
        match result {
            None => return None,
            Some(Ok(Ok(connected))) => {
                m.record(0, started.elapsed());
                for &(phase, metric) in &ctx.plan.connect_phases {
                    if let Some(took) = phases.get(phase) {
                        m.record(metric, took);
                    }
                }
                m.interval.connects += 1;
                m.group(who.group).connects += 1;
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
    report(ctx, who, &user.values, metrics, failure.0, failure.1);
    Some(Err(()))
}

/// Whether a session that ended this way is followed by a reconnect: only a lost connection
/// (not a normal end, not a server that disconnected the client on purpose, not after a stop),
/// and only while the user emits (`until`).
pub(super) fn reconnects_after<'p>(
    ctx: &'p ClientContext,
    end: &End,
    until: Instant,
) -> Option<&'p ReconnectPlan> {
    let plan = ctx.plan.reconnect.as_ref()?;
    let lost = match end {
        End::Drained | End::Left => false,
        End::ServerClosed(_) | End::Dropped => true,
        End::Failed(kind, _) => {
            !matches!(kind, ErrorKind::ServerDisconnect | ErrorKind::ConnectError)
        }
    };
    (lost && !ctx.stop.is_cancelled() && Instant::now() < until).then_some(plan)
}

/// Waits with exponential backoff and jitter, then connects again, until connected, out of
/// attempts, stopped or past the user's emitting. Records the time from losing the connection
/// to having it back, and whether a Socket.IO server recovered the session.
async fn reconnect(
    ctx: &ClientContext,
    who: ClientId,
    metrics: &RefCell<WorkerMetrics>,
    backoff: &ReconnectPlan,
    recovery: Option<Recovery>,
    lost_at: Instant,
    user: &User,
) -> Option<(Link, bool)> {
    let recover = ctx.plan.socketio().is_some_and(|s| s.recovery);
    let previous = recovery.filter(|r| recover && r.pid.is_some());
    let mut attempts = 0;
    loop {
        if backoff.max_attempts.is_some_and(|max| attempts >= max) {
            report(
                ctx,
                who,
                &user.values,
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
        if Instant::now() >= user.until {
            return None;
        }
        attempts += 1;
        let Ok((link, recovered)) = attempt(ctx, who, metrics, previous.as_ref(), user).await?
        else {
            continue;
        };
        let mut m = metrics.borrow_mut();
        m.interval.reconnects += 1;
        if recovered {
            m.interval.recovered += 1;
        }
        if let Some(metric) = ctx.plan.reconnect_metric {
            m.record(metric, lost_at.elapsed());
        }
        return Some((link, recovered));
    }
}

/// The wait before reconnect attempt `attempt` (from 0): `initial × factor^attempt`, randomised by
/// ± `jitter`, at most `max`.
fn backoff_delay(plan: &ReconnectPlan, attempt: u32) -> Duration {
    let base = plan.initial.as_secs_f64() * plan.factor.powi(attempt.min(64) as i32);
    let spread = base * plan.jitter * (fastrand::f64() * 2.0 - 1.0);
    Duration::from_secs_f64((base + spread).clamp(0.0, plan.max.as_secs_f64()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn future_size<Fut: std::future::Future>(
        _f: fn(
            Arc<ClientContext>,
            ClientId,
            &'static RefCell<WorkerMetrics>,
            &'static Pacing,
        ) -> Fut,
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
