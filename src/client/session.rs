//! The emitting phase of one client as a hand-written poll loop over a single socket: send what is
//! due, flush once per batch, read everything that arrived, sleep until the next deadline. Reading
//! and writing progress together, so a server that pushes back never deadlocks the client, and the
//! loop needs no task, channel or lock of its own.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::conversation::User;
use super::ledger::{Ledger, PendingAck, Resend};
use super::link::{Link, Rendered, Scratch};
use super::report;
use super::schedule::Schedule;
use super::timers::{TimerKey, Timers};
use super::{ClientContext, ClientId};
use crate::metrics::{EmitterEnd, ErrorKind, WorkerMetrics};
use crate::protocol::stamp::Stamp;
use crate::scenario::{GroupPlan, Origin};
use crate::transport::Fault;
use crate::transport::socketio::Incoming;

/// tokio's timers fire on whole milliseconds, up to 1 ms late. Waking 1 ms early and sending what is
/// due within that millisecond keeps the timer's lateness out of the measurements; an event sent
/// early is measured from its actual send time, one sent late from its scheduled time.
const EARLY: Duration = Duration::from_millis(1);
/// Messages read in one go before yielding to the other clients of the thread.
const READ_BUDGET: usize = 128;

/// How the emitting phase ended.
pub enum End {
    /// Emitting and draining finished; the client closes the connection.
    Drained,
    /// The server sent a close frame.
    ServerClosed(Option<CloseFrame>),
    Failed(ErrorKind, String),
    /// The group's `disconnect_every` came: the client drops its connection, without goodbye.
    Dropped,
    /// A step failed (counted already) and the user's conversation ends there: it says goodbye
    /// and leaves.
    Left,
}

struct EmitState {
    schedule: Schedule,
    /// Index of the next event of this emit.
    next: u64,
    /// When it is due: `schedule.at(next)`, kept because every wake-up asks (a u128 division).
    due: Instant,
}

impl EmitState {
    fn advance(&mut self) {
        self.next += 1;
        self.due = self.schedule.at(self.next);
    }
}

pub(super) enum Phase {
    /// The on_connect steps run; nothing is emitted on schedule.
    Setup,
    Emitting,
    Draining {
        until: Instant,
    },
}

/// What a step waits for while the session reads.
pub(super) enum Waiting {
    Nothing,
    /// An event matching on_connect step `step`'s matcher.
    Event {
        step: usize,
    },
    /// The acknowledgement of any of these ids (the attempts of one emit).
    Ack(Vec<u64>),
}

pub struct Session<'a> {
    pub(super) ctx: &'a ClientContext,
    pub(super) who: ClientId,
    pub(super) group: &'a GroupPlan,
    /// Taken out between a lost connection and its replacement.
    pub(super) link: Option<Link>,
    pub(super) metrics: &'a RefCell<WorkerMetrics>,
    emits: Vec<EmitState>,
    /// What was sent that must come back, and what arrived.
    pub(super) ledger: Ledger<'a>,
    /// The user's values and HTTP side.
    pub user: User,
    /// What a running step waits for, and what came.
    pub(super) waiting: Waiting,
    pub(super) arrived: Option<bytes::Bytes>,
    /// Replies that could not be written at once (the socket was full), sent before anything
    /// else.
    pub(super) backlog: VecDeque<(Scratch, Rendered)>,
    /// Emitting has started (after the first setup).
    started: bool,
    /// When the session started: the client was connected and set up.
    ready: Instant,
    /// When this connection is to be dropped (the group's `disconnect_every`).
    drop_at: Option<Instant>,
    pub(super) phase: Phase,
    /// When to wake next, on the worker's one timer.
    timer: TimerKey,
    stop: Pin<Box<WaitForCancellationFutureOwned>>,
    pub(super) need_flush: bool,
    /// Since when writes have made no progress; past the stall timeout the connection fails.
    pub(super) blocked_since: Option<Instant>,
    /// The last `poll_ready` was Pending: its next Ready means bytes moved.
    ready_was_pending: bool,
    /// Events are rendered here and copied into an exactly sized message: one allocation per
    /// event, and none for the buffer after the first.
    pub(super) scratch: Scratch,
}

impl<'a> Session<'a> {
    /// A session on a new connection, in its setup phase until [`Self::start_emitting`].
    pub fn new(
        ctx: &'a ClientContext,
        who: ClientId,
        link: Link,
        metrics: &'a RefCell<WorkerMetrics>,
        timers: &Timers,
        user: User,
    ) -> Session<'a> {
        let group = &ctx.plan.groups[who.group as usize];
        let start = Instant::now();
        Session {
            ctx,
            who,
            group,
            link: Some(link),
            metrics,
            emits: group
                .emits
                .iter()
                .map(|e| {
                    let schedule = Schedule::at_rate(start, e.rate);
                    EmitState {
                        due: schedule.at(0),
                        schedule,
                        next: 0,
                    }
                })
                .collect(),
            ledger: Ledger::new(ctx, who),
            user,
            waiting: Waiting::Nothing,
            arrived: None,
            backlog: VecDeque::new(),
            started: false,
            ready: start,
            drop_at: group.disconnect_every.map(|every| start + every),
            phase: Phase::Setup,
            timer: timers.key(),
            stop: Box::pin(ctx.stop.clone().cancelled_owned()),
            need_flush: false,
            blocked_since: None,
            ready_was_pending: false,
            scratch: Scratch::default(),
        }
    }

    /// The setup is done: emitting starts now, on every emit's schedule.
    fn start_emitting(&mut self) {
        let start = Instant::now();
        for (state, plan) in self.emits.iter_mut().zip(&self.group.emits) {
            state.schedule = Schedule::at_rate(start, plan.rate);
            state.due = state.schedule.at(0);
        }
        self.ready = start;
        self.phase = Phase::Emitting;
    }

    /// After the on_connect steps: the first time, emitting starts; after a reconnect it goes
    /// on where it was (events that fell due meanwhile go out at once).
    pub fn after_setup(&mut self) {
        if self.started {
            self.phase = Phase::Emitting;
        } else {
            self.started = true;
            self.start_emitting();
        }
    }

    /// When emitting ends for this user: the run's end, or its leaving time.
    pub fn emit_end(&self) -> Instant {
        self.user.until
    }

    /// After [`Self::poll_session`] returned: the connection, to close. Acks still awaited are
    /// lost with it.
    pub fn take_link(&mut self) -> Link {
        self.ledger.connection_lost(&mut self.metrics.borrow_mut());
        self.link
            .take()
            .expect("the session has its link until it ends")
    }

    /// Goes on over a new connection after a reconnect: events that fell due meanwhile go out
    /// at once, measured from their scheduled times.
    pub fn resume(&mut self, link: Link, recovered: bool) {
        self.ledger.reconnected(recovered);
        self.backlog.clear();
        self.drop_at = self
            .group
            .disconnect_every
            .map(|every| Instant::now() + every);
        self.link = Some(link);
        self.need_flush = false;
        self.blocked_since = None;
        self.ready_was_pending = false;
    }

    /// At the end of the client: own events still outstanding, and what is missing of other
    /// streams, count as lost; the facts for the fan-out tails go to the coordinator.
    /// `connected_at_end`: the client was connected when emitting ended.
    pub fn finish(self: Box<Self>, connected_at_end: bool) {
        let mut m = self.metrics.borrow_mut();
        self.ledger
            .close_books(self.ready, connected_at_end, &mut m);
        let ns = |t: Instant| t.saturating_duration_since(self.ctx.t0).as_nanos() as u64;
        for (expect, plan) in self.ctx.plan.expects.iter().enumerate() {
            let expect = expect as u32;
            if plan.origin != Origin::Group(self.who.group) {
                continue;
            }
            let mine = self.group.emits.iter().zip(&self.emits);
            let mine: Vec<_> = mine.filter(|(e, _)| e.stream == Some(expect)).collect();
            if mine.is_empty() {
                continue;
            }
            let per_second: f64 = mine.iter().map(|(e, _)| e.rate.per_second()).sum();
            let first = mine.iter().map(|(_, s)| s.schedule.at(0)).min();
            m.interval.fanout.emitters.push(EmitterEnd {
                expect,
                emitter: self.who.id,
                sent: self.ledger.next_seq(expect),
                first_ns: first.map(ns).unwrap_or(0),
                interval_ns: 1e9 / per_second.max(1e-9),
            });
        }
    }

    /// The earliest pending emit and its due time, if it falls before the end of emitting.
    fn next_due(&self) -> Option<(usize, Instant)> {
        self.emits
            .iter()
            .enumerate()
            .map(|(i, e)| (i, e.due))
            .filter(|(_, at)| *at < self.user.until)
            .min_by_key(|(_, at)| *at)
    }

    /// Renders event `seq` of emit `emit`; its stamp (when tracked) carries `stamp_seq`, or the
    /// stream's next number.
    fn render(
        &mut self,
        emit: usize,
        seq: u64,
        origin: Instant,
        ack: Option<u64>,
        stamp_seq: Option<u64>,
    ) -> Rendered {
        let plan = &self.group.emits[emit];
        let fill = self.user.fill(self.ctx, self.who, seq);
        let stamp = plan.stream.map(|stream| {
            let stamp = Stamp {
                run: self.ctx.run_tag,
                stream,
                client: self.who.id,
                seq: stamp_seq.unwrap_or_else(|| self.ledger.next_seq(stream)),
                origin_ns: origin.saturating_duration_since(self.ctx.t0).as_nanos() as u64,
            };
            (stamp, plan.placement)
        });
        let link = self.link.as_ref().expect("emitting needs a link");
        link.render(&mut self.scratch, &plan.message, &fill, stamp, ack)
    }

    /// Draining ends when every tracked event is back, or at its deadline.
    fn drain_finished(&self, now: Instant) -> bool {
        match self.phase {
            Phase::Draining { until } => now >= until || self.ledger.settled(self.leaving_early()),
            Phase::Setup | Phase::Emitting => false,
        }
    }

    /// An arriving user that leaves before the run's end waits only for what it sent.
    fn leaving_early(&self) -> bool {
        self.user.until < self.ctx.emit_end
    }

    pub(super) fn link(&mut self) -> &mut Link {
        self.link
            .as_mut()
            .expect("the session has its link until it ends")
    }

    /// Flushes what was queued; a flush that cannot finish starts (or continues) a stall.
    pub(super) fn flush(&mut self, cx: &mut Context<'_>, now: Instant) -> Result<(), Fault> {
        if !self.need_flush {
            return Ok(());
        }
        match self.link().poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                self.need_flush = false;
                self.blocked_since = None;
            }
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => {
                self.blocked_since.get_or_insert(now);
            }
        }
        Ok(())
    }

    /// Runs until drained, closed or failed: send what is due, read what arrived, sleep until
    /// the next deadline; a few rounds at most before letting the thread's other clients run.
    pub fn poll_session(&mut self, cx: &mut Context<'_>) -> Poll<End> {
        for _ in 0..8 {
            let now = Instant::now();
            if let Some(end) = self.enter_phase(now) {
                return Poll::Ready(end);
            }
            // 1. Send everything due, then flush once.
            if let Err(end) = self.send_due(cx, now) {
                return Poll::Ready(end);
            }
            if let Err(end) = self.flush(cx, now).map_err(failed) {
                return Poll::Ready(end);
            }
            if let Some(end) = self.stalled(now) {
                return Poll::Ready(end);
            }
            // 2. Read everything that arrived, then flush what reading queued (pongs).
            match self.read_arrived(cx, now) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(end)) => return Poll::Ready(end),
                Poll::Pending => return Poll::Pending,
            }
            // 3. Done draining? Else sleep until the next deadline, or until stopped.
            if let Phase::Draining { .. } = self.phase {
                if self.drain_finished(now) {
                    return Poll::Ready(End::Drained);
                }
            }
            let wake = self.next_wake(now);
            if !self.sleep_until(cx, wake) {
                return Poll::Pending;
            }
        }
        // Deadlines keep expiring (a stalled thread catching up): let other clients run first.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Emitting ends when every event scheduled before the end has been sent (a backlog still
    /// goes out, measured from its scheduled times), or at once on a stop signal. The group's
    /// `disconnect_every` drops the connection while emitting.
    fn enter_phase(&mut self, now: Instant) -> Option<End> {
        if let Phase::Emitting = self.phase {
            let schedule_done = now >= self.user.until && self.next_due().is_none();
            if schedule_done || self.ctx.stop.is_cancelled() {
                self.phase = Phase::Draining {
                    until: now + self.ctx.plan.drain,
                };
            }
        }
        let dropping = self.drop_at.is_some_and(|at| now >= at) && now < self.user.until;
        (matches!(self.phase, Phase::Emitting) && dropping).then_some(End::Dropped)
    }

    /// Sends every event due by `now` (and within [`EARLY`] of it) while the socket takes them.
    fn send_due(&mut self, cx: &mut Context<'_>, now: Instant) -> Result<(), End> {
        self.send_backlog(cx, now)?;
        if !matches!(self.phase, Phase::Emitting) || !self.backlog.is_empty() {
            return Ok(());
        }
        self.resend_late(cx, now)?;
        while let Some((emit, at)) = self.next_due() {
            if at > now + EARLY {
                break;
            }
            match self.link().poll_ready(cx) {
                Poll::Ready(Ok(())) => {
                    if self.ready_was_pending {
                        // The backlog moved: a slow reader is not a stalled one.
                        self.ready_was_pending = false;
                        self.blocked_since = None;
                    }
                }
                Poll::Ready(Err(e)) => return Err(failed(e)),
                Poll::Pending => {
                    self.ready_was_pending = true;
                    self.blocked_since.get_or_insert(now);
                    break;
                }
            }
            let seq = self.emits[emit].next;
            let origin = at.min(now);
            let plan = &self.group.emits[emit];
            let ack = plan.ack.then(|| self.ledger.take_ack_id());
            let stream = plan.stream;
            let resend = (plan.retries > 0).then(|| Resend {
                deadline: now + plan.ack_timeout,
                emit,
                seq,
                stamp_seq: stream.map(|s| self.ledger.next_seq(s)),
                left: plan.retries,
            });
            let rendered = self.render(emit, seq, origin, ack, None);
            let link = self.link.as_mut().expect("emitting needs a link");
            link.send_rendered(&self.scratch, &rendered)
                .map_err(failed)?;
            self.emits[emit].advance();
            self.need_flush = true;
            let mut m = self.metrics.borrow_mut();
            self.ledger.sent(stream, ack, origin, resend, &mut m);
            if at < now {
                let lag = u64::try_from((now - at).as_micros()).unwrap_or(u64::MAX);
                m.interval.schedule_lag_max_us = m.interval.schedule_lag_max_us.max(lag);
            }
        }
        Ok(())
    }

    /// Emits with `retries` whose acknowledgement is late go out again under a new ack id, as
    /// socket.io-client does; after the last attempt the ack counts as lost.
    fn resend_late(&mut self, cx: &mut Context<'_>, now: Instant) -> Result<(), End> {
        while let Some(late) = self.ledger.take_late(now) {
            let resend = late.resend.expect("late acks have a resend");
            if resend.left == 0 {
                let plan = &self.group.emits[resend.emit];
                let mut m = self.metrics.borrow_mut();
                m.interval.acks_lost += 1;
                drop(m);
                report(
                    self.ctx,
                    self.who,
                    &self.user.values,
                    self.metrics,
                    ErrorKind::AckTimeout,
                    format!(
                        "event `{}` not acknowledged after {} attempts of {:?}",
                        plan.event,
                        plan.retries + 1,
                        plan.ack_timeout
                    ),
                );
                continue;
            }
            match self.link().poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(failed(e)),
                Poll::Pending => {
                    // Not now: it stays due and goes first when the socket takes more.
                    self.ledger.requeue(late);
                    self.blocked_since.get_or_insert(now);
                    return Ok(());
                }
            }
            let id = self.ledger.take_ack_id();
            let rendered = self.render(
                resend.emit,
                resend.seq,
                late.origin,
                Some(id),
                resend.stamp_seq,
            );
            let link = self.link.as_mut().expect("emitting needs a link");
            link.send_rendered(&self.scratch, &rendered)
                .map_err(failed)?;
            self.need_flush = true;
            let timeout = self.group.emits[resend.emit].ack_timeout;
            let again = PendingAck {
                id,
                origin: late.origin,
                resend: Some(Resend {
                    deadline: now + timeout,
                    left: resend.left - 1,
                    ..resend
                }),
            };
            self.ledger.resent(again, &mut self.metrics.borrow_mut());
        }
        Ok(())
    }

    /// Writes that made no progress for the stall timeout fail the connection.
    fn stalled(&self, now: Instant) -> Option<End> {
        let since = self.blocked_since?;
        (now.saturating_duration_since(since) >= self.ctx.stall_timeout).then(|| {
            End::Failed(
                ErrorKind::WriteStalled,
                format!(
                    "nothing could be written for {:?}: the server stopped reading",
                    self.ctx.stall_timeout
                ),
            )
        })
    }

    /// Reads what arrived, up to [`READ_BUDGET`] messages (tungstenite answers WebSocket pings by
    /// itself, the Socket.IO link Engine.IO pings), and flushes what reading queued. Pending when
    /// the budget ran out: the task is woken again at once, after the thread's other clients.
    pub(super) fn read_arrived(
        &mut self,
        cx: &mut Context<'_>,
        now: Instant,
    ) -> Poll<Result<(), End>> {
        for _ in 0..READ_BUDGET {
            let incoming = match self.link().poll_next(cx) {
                Poll::Ready(Ok(incoming)) => incoming,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(failed(e))),
                Poll::Pending => return Poll::Ready(self.flush_replies(cx, now)),
            };
            let now = Instant::now();
            let mut m = self.metrics.borrow_mut();
            match incoming {
                Incoming::Payload(bytes, ack) => {
                    m.interval.received += 1;
                    m.group(self.who.group).received += 1;
                    self.ledger.payload(&bytes, now, &mut m);
                    drop(m);
                    if let Waiting::Event { step } = self.waiting {
                        if self.waits_for(step, &bytes) {
                            self.waiting = Waiting::Nothing;
                            self.arrived = Some(bytes.clone());
                        }
                    }
                    if !self.group.on.is_empty() {
                        if let Err(end) = self.handle(cx, &bytes, ack, now) {
                            return Poll::Ready(Err(end));
                        }
                    }
                }
                Incoming::Attachment(bytes) => self.ledger.payload(&bytes, now, &mut m),
                Incoming::Ack(id, args) => {
                    m.interval.received += 1;
                    m.group(self.who.group).received += 1;
                    if matches!(&self.waiting, Waiting::Ack(awaited) if awaited.contains(&id)) {
                        self.waiting = Waiting::Nothing;
                        self.arrived = Some(args);
                    } else {
                        self.ledger.ack(id, now, &mut m);
                    }
                }
                Incoming::Closed(frame) => {
                    drop(m);
                    // Let tungstenite send its close reply; errors no longer matter.
                    let _ = self.link().poll_flush(cx);
                    return Poll::Ready(Err(End::ServerClosed(frame)));
                }
                Incoming::Nothing => {}
            }
        }
        if self.drain_finished(Instant::now()) {
            return Poll::Ready(Err(End::Drained));
        }
        // A reader that is always behind still answers its pings.
        if let Err(end) = self.flush_replies(cx, now) {
            return Poll::Ready(Err(end));
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Flushes what reading queued: replies to what arrived, pongs (or v3 pings). Replies go
    /// out at once, in one write for everything read in one go.
    fn flush_replies(&mut self, cx: &mut Context<'_>, now: Instant) -> Result<(), End> {
        if self.need_flush || self.link().wants_flush() {
            self.need_flush = true;
            self.flush(cx, now).map_err(failed)?;
        }
        Ok(())
    }

    /// When to wake next: the drain's end, the next event due, the stall deadline or the
    /// connection's drop, whichever comes first.
    fn next_wake(&self, now: Instant) -> Instant {
        let wake = match self.phase {
            Phase::Draining { until } => until,
            Phase::Setup => now + self.ctx.stall_timeout,
            // While writes are blocked, the socket wakes us when it drains; due events wait.
            // (The stall deadline below bounds the wait.)
            Phase::Emitting if self.blocked_since.is_some() => now + self.ctx.stall_timeout,
            Phase::Emitting => self
                .next_due()
                .map(|(_, at)| at.checked_sub(EARLY).unwrap_or(at))
                .unwrap_or(self.user.until)
                .min(self.user.until),
        };
        let wake = match self.blocked_since {
            Some(since) => wake.min(since + self.ctx.stall_timeout),
            None => wake,
        };
        // Resends wait, like due events, while writes are blocked or replies wait to go out.
        // (Acks are looked through only when some emit of the group has retries.)
        let can_send = self.blocked_since.is_none() && self.backlog.is_empty();
        let resends = can_send
            && matches!(self.phase, Phase::Emitting)
            && self.group.emits.iter().any(|e| e.retries > 0);
        let next_resend = if resends {
            self.ledger.next_resend()
        } else {
            None
        };
        let wake = next_resend.map_or(wake, |at| wake.min(at));
        match (&self.phase, self.drop_at) {
            (Phase::Emitting, Some(drop_at)) => wake.min(drop_at),
            _ => wake,
        }
    }

    /// Sets the timer to `wake`; true when it has fired already or a stop signal came while
    /// emitting: then the loop goes round again.
    fn sleep_until(&mut self, cx: &mut Context<'_>, wake: Instant) -> bool {
        let timer_fired = self.timer.wake_at(wake, cx);
        let stopped =
            matches!(self.phase, Phase::Emitting) && self.stop.as_mut().poll(cx).is_ready();
        timer_fired || stopped
    }
}

pub(super) fn failed(fault: Fault) -> End {
    End::Failed(fault.kind, fault.detail)
}
