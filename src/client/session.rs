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

use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::link::{Link, Rendered, Scratch};
use super::schedule::Schedule;
use super::tracking::{Delivery, SentAt, Tracker};
use super::{ClientContext, ClientId};
use crate::metrics::gaps::Arrival;
use crate::metrics::{
    EmitterEnd, ErrorKind, GapKind, GapRow, ReceiverEnd, SERVER_SOURCE, StreamEnd, WorkerMetrics,
};
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

enum Phase {
    Emitting,
    Draining { until: Instant },
}

pub struct Session<'a> {
    ctx: &'a ClientContext,
    who: ClientId,
    group: &'a GroupPlan,
    /// Taken out between a lost connection and its replacement.
    link: Option<Link>,
    metrics: &'a RefCell<WorkerMetrics>,
    emits: Vec<EmitState>,
    /// Own tracked events sent and not yet back, per expect.
    outstanding: Vec<u64>,
    /// The next stamp sequence number of each expect's stream from this client.
    stream_next: Vec<u64>,
    /// What arrived of every tracked stream.
    tracker: Tracker,
    /// Expects whose events this client receives from other clients or the server: draining
    /// then lasts its full time, as nobody can tell what is still in flight.
    receives: bool,
    /// Expects with server streams this client receives.
    server_expects: Vec<u32>,
    /// When the session started: the client was connected and set up.
    ready: Instant,
    /// When this connection is to be dropped (the group's `disconnect_every`).
    drop_at: Option<Instant>,
    /// Socket.IO acks asked for and not answered yet: id and latency origin, in sending order.
    acks: VecDeque<(u64, Instant)>,
    next_ack: u64,
    phase: Phase,
    sleep: Pin<Box<Sleep>>,
    sleep_at: Instant,
    stop: Pin<Box<WaitForCancellationFutureOwned>>,
    need_flush: bool,
    /// Since when writes have made no progress; past the stall timeout the connection fails.
    blocked_since: Option<Instant>,
    /// The last `poll_ready` was Pending: its next Ready means bytes moved.
    ready_was_pending: bool,
    /// Events are rendered here and copied into an exactly sized message: one allocation per
    /// event, and none for the buffer after the first.
    scratch: Scratch,
}

impl<'a> Session<'a> {
    pub fn new(
        ctx: &'a ClientContext,
        who: ClientId,
        link: Link,
        metrics: &'a RefCell<WorkerMetrics>,
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
            outstanding: vec![0; ctx.plan.expects.len()],
            stream_next: vec![0; ctx.plan.expects.len()],
            tracker: Tracker::default(),
            receives: ctx.plan.expects.iter().any(|e| e.received_by(who.group)),
            server_expects: ctx
                .plan
                .expects
                .iter()
                .enumerate()
                .filter(|(_, e)| {
                    matches!(e.origin, Origin::Server { .. }) && e.received_by(who.group)
                })
                .map(|(i, _)| i as u32)
                .collect(),
            ready: start,
            drop_at: group.disconnect_every.map(|every| start + every),
            acks: VecDeque::new(),
            next_ack: 0,
            phase: Phase::Emitting,
            sleep: Box::pin(tokio::time::sleep_until(start.into())),
            sleep_at: start,
            stop: Box::pin(ctx.stop.clone().cancelled_owned()),
            need_flush: false,
            blocked_since: None,
            ready_was_pending: false,
            scratch: Scratch::default(),
        }
    }

    /// After [`Self::poll_session`] returned: the connection, to close. Acks still awaited are
    /// lost with it.
    pub fn take_link(&mut self) -> Link {
        self.metrics.borrow_mut().interval.acks_lost += self.acks.len() as u64;
        self.acks.clear();
        self.link
            .take()
            .expect("the session has its link until it ends")
    }

    /// Goes on over a new connection after a reconnect: events that fell due meanwhile go out
    /// at once, measured from their scheduled times.
    pub fn resume(&mut self, link: Link, recovered: bool) {
        self.tracker.reconnected(recovered);
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
        let expects = &self.ctx.plan.expects;
        let at = self.ctx.t0.elapsed();
        let ns = |t: Instant| t.saturating_duration_since(self.ctx.t0).as_nanos() as u64;
        let mut m = self.metrics.borrow_mut();
        for (counts, lost) in m.interval.expects.iter_mut().zip(&self.outstanding) {
            counts.lost += lost;
        }
        for ((source, expect), max_seen, missing) in self.tracker.streams() {
            let plan = &expects[expect as usize];
            if plan.origin == Origin::Own {
                continue;
            }
            m.interval.expects[expect as usize].lost += missing;
            if missing > 0 {
                m.gap(GapRow {
                    at,
                    receiver: self.who.id,
                    expect,
                    source,
                    expected: None,
                    got: None,
                    count: missing,
                    kind: GapKind::Lost,
                    during_reconnect: false,
                    recovered: false,
                });
            }
            if let (Origin::Group(_), Some(max_seen)) = (&plan.origin, max_seen) {
                m.interval.fanout.streams.push(StreamEnd {
                    expect,
                    receiver: self.who.id,
                    emitter: source,
                    max_seen,
                });
            }
        }
        for (expect, plan) in expects.iter().enumerate() {
            let expect = expect as u32;
            if matches!(plan.origin, Origin::Group(_)) && plan.received_by(self.who.group) {
                m.interval.fanout.receivers.push(ReceiverEnd {
                    expect,
                    receiver: self.who.id,
                    ready_ns: ns(self.ready),
                    connected_at_end,
                });
            }
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
                sent: self.stream_next[expect as usize],
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
            .filter(|(_, at)| *at < self.ctx.emit_end)
            .min_by_key(|(_, at)| *at)
    }

    fn render(&mut self, emit: usize, seq: u64, origin: Instant, ack: Option<u64>) -> Rendered {
        let plan = &self.group.emits[emit];
        let stamp = plan.stream.map(|stream| {
            let stamp = Stamp {
                run: self.ctx.run_tag,
                stream,
                client: self.who.id,
                seq: self.stream_next[stream as usize],
                origin_ns: origin.saturating_duration_since(self.ctx.t0).as_nanos() as u64,
            };
            (stamp, plan.placement)
        });
        let link = self.link.as_ref().expect("emitting needs a link");
        link.render(
            &mut self.scratch,
            &plan.message,
            self.who.id,
            seq,
            &self.group.name,
            stamp,
            ack,
        )
    }

    fn on_ack(&mut self, id: u64, now: Instant) {
        // Acks come back in order almost always: look from the front.
        let Some(at) = self.acks.iter().position(|(a, _)| *a == id) else {
            return;
        };
        let (_, origin) = self.acks.remove(at).expect("position is in range");
        if let Some(metric) = self.ctx.plan.ack_metric {
            self.metrics
                .borrow_mut()
                .record(metric, now.saturating_duration_since(origin));
        }
    }

    fn on_payload(&mut self, payload: &[u8], now: Instant) {
        match Stamp::find(payload, self.ctx.run_tag) {
            Some(stamp) => self.on_stamp(stamp, now),
            None if !self.server_expects.is_empty() => self.on_server_payload(payload),
            None => {}
        }
    }

    /// An event volley stamped: an echo of this client's own, or another client's.
    fn on_stamp(&mut self, stamp: Stamp, now: Instant) {
        let Some(plan) = self.ctx.plan.expects.get(stamp.stream as usize) else {
            return;
        };
        let own = match plan.origin {
            Origin::Own if stamp.client == self.who.id => true,
            Origin::Group(_) if plan.to.contains(&self.who.group) => false,
            _ => return,
        };
        // A server may corrupt or forge what it relays: a number this client never sent, or a
        // sender outside the emitting group, is an error, not a delivery.
        let forged = match plan.origin {
            Origin::Own => stamp.seq >= self.stream_next[stamp.stream as usize],
            Origin::Group(g) => !self
                .ctx
                .plan
                .client_ids(g)
                .contains(&u64::from(stamp.client)),
            Origin::Server { .. } => false,
        };
        if forged {
            let mut m = self.metrics.borrow_mut();
            m.error(crate::metrics::ErrorRow {
                at: self.ctx.t0.elapsed(),
                client: self.who.id,
                group: self.who.group,
                kind: ErrorKind::Protocol,
                detail: format!(
                    "a stamp volley never sent: client {} seq {} of `{}`",
                    stamp.client, stamp.seq, plan.name
                ),
            });
            return;
        }
        let delivery = self
            .tracker
            .deliver(stamp.client, stamp.stream, stamp.seq, own);
        let origin = self.ctx.t0 + Duration::from_nanos(stamp.origin_ns);
        let latency = now.saturating_duration_since(origin);
        let sent = SentAt::Instant(origin);
        let new = self.count(
            stamp.stream,
            stamp.client,
            stamp.seq,
            delivery,
            Some(latency),
            sent,
        );
        if new && own {
            let outstanding = &mut self.outstanding[stamp.stream as usize];
            *outstanding = outstanding.saturating_sub(1);
        }
    }

    /// A message that may carry server events: their sequence numbers (and send times) are read
    /// at the expects' JSON pointers. For Socket.IO, the pointers apply to the event's first
    /// argument, and only to events of the expect's name.
    fn on_server_payload(&mut self, payload: &[u8]) {
        for i in 0..self.server_expects.len() {
            let expect = self.server_expects[i];
            let plan = &self.ctx.plan.expects[expect as usize];
            let Origin::Server {
                seq,
                timestamp,
                timestamp_us,
                event_prefix,
            } = &plan.origin
            else {
                continue;
            };
            if event_prefix
                .as_ref()
                .is_some_and(|prefix| !payload.starts_with(prefix))
            {
                continue;
            }
            let Some(number) = seq.read_u64(payload) else {
                continue;
            };
            // One-way latency from the server's clock: only meaningful on one machine or with
            // synchronised clocks.
            let sent_us = timestamp
                .as_ref()
                .and_then(|pointer| pointer.read_u64(payload))
                .map(|sent| sent.saturating_mul(*timestamp_us));
            let latency = sent_us.map(|sent_us| {
                let now_us = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_micros() as u64)
                    .unwrap_or(0);
                Duration::from_micros(now_us.saturating_sub(sent_us))
            });
            let sent = sent_us.map_or(SentAt::Unknown, SentAt::EpochUs);
            let delivery = self.tracker.deliver(SERVER_SOURCE, expect, number, false);
            self.count(expect, SERVER_SOURCE, number, delivery, latency, sent);
        }
    }

    /// Counts a delivery and writes its gaps.csv row; true when it was new (not a duplicate).
    fn count(
        &mut self,
        expect: u32,
        source: u32,
        seq: u64,
        delivery: Delivery,
        latency: Option<Duration>,
        sent: SentAt,
    ) -> bool {
        let refilled = self.tracker.refilled(sent);
        let mut m = self.metrics.borrow_mut();
        let row = |kind, expected, count| GapRow {
            at: self.ctx.t0.elapsed(),
            receiver: self.who.id,
            expect,
            source,
            expected: Some(expected),
            got: Some(seq),
            count,
            kind,
            during_reconnect: delivery.during_reconnect,
            recovered: delivery.recovered,
        };
        let counts = &mut m.interval.expects[expect as usize];
        counts.lost += delivery.lost_on_restart;
        let row = match delivery.arrival {
            Arrival::Stale => return false,
            Arrival::Duplicate => {
                counts.duplicate += 1;
                let row = row(GapKind::Duplicate, seq, 1);
                m.gap(row);
                return false;
            }
            Arrival::Reorder => {
                counts.reorder += 1;
                Some(row(GapKind::Reorder, seq, 1))
            }
            Arrival::Gap { expected, count } => {
                counts.gap += count;
                Some(row(GapKind::Gap, expected, count))
            }
            Arrival::InOrder => None,
        };
        if refilled {
            counts.refilled += 1;
        }
        counts.received += 1;
        let within = self.ctx.plan.expects[expect as usize].within;
        if let Some(latency) = latency {
            if within.is_some_and(|within| latency > within) {
                counts.late += 1;
            }
            m.record(1 + expect as usize, latency);
        }
        if let Some(row) = row {
            m.gap(row);
        }
        if refilled {
            let row = GapRow {
                at: self.ctx.t0.elapsed(),
                receiver: self.who.id,
                expect,
                source,
                expected: Some(seq),
                got: Some(seq),
                count: 1,
                kind: GapKind::Refilled,
                during_reconnect: true,
                recovered: true,
            };
            m.gap(row);
        }
        true
    }

    /// Draining ends when every tracked event is back, or at its deadline.
    fn drain_finished(&self, now: Instant) -> bool {
        match self.phase {
            Phase::Draining { until } => {
                now >= until
                    || (!self.receives
                        && self.outstanding.iter().all(|&n| n == 0)
                        && self.acks.is_empty())
            }
            Phase::Emitting => false,
        }
    }

    fn link(&mut self) -> &mut Link {
        self.link
            .as_mut()
            .expect("the session has its link until it ends")
    }

    /// Flushes what was queued; a flush that cannot finish starts (or continues) a stall.
    fn flush(&mut self, cx: &mut Context<'_>, now: Instant) -> Result<(), Fault> {
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

    /// Runs until drained, closed or failed.
    pub fn poll_session(&mut self, cx: &mut Context<'_>) -> Poll<End> {
        for _ in 0..8 {
            let now = Instant::now();
            // Emitting ends when every event scheduled before the end has been sent (a backlog
            // still goes out, measured from its scheduled times), or at once on a stop signal.
            if let Phase::Emitting = self.phase {
                let schedule_done = now >= self.ctx.emit_end && self.next_due().is_none();
                if schedule_done || self.ctx.stop.is_cancelled() {
                    self.phase = Phase::Draining {
                        until: now + self.ctx.plan.drain,
                    };
                }
            }

            let dropping = self.drop_at.is_some_and(|at| now >= at) && now < self.ctx.emit_end;
            if matches!(self.phase, Phase::Emitting) && dropping {
                return Poll::Ready(End::Dropped);
            }

            // 1. Send everything due, then flush once.
            if let Phase::Emitting = self.phase {
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
                        Poll::Ready(Err(e)) => return Poll::Ready(failed(e)),
                        Poll::Pending => {
                            self.ready_was_pending = true;
                            self.blocked_since.get_or_insert(now);
                            break;
                        }
                    }
                    let seq = self.emits[emit].next;
                    let origin = at.min(now);
                    let ack = self.group.emits[emit].ack.then(|| {
                        self.next_ack += 1;
                        self.next_ack - 1
                    });
                    let rendered = self.render(emit, seq, origin, ack);
                    let link = self.link.as_mut().expect("emitting needs a link");
                    if let Err(e) = link.send_rendered(&self.scratch, &rendered) {
                        return Poll::Ready(failed(e));
                    }
                    self.emits[emit].advance();
                    self.need_flush = true;
                    let mut m = self.metrics.borrow_mut();
                    m.interval.sent += 1;
                    if let Some(id) = ack {
                        self.acks.push_back((id, origin));
                        m.interval.acks_sent += 1;
                    }
                    if let Some(stream) = self.group.emits[emit].stream {
                        m.interval.expects[stream as usize].sent += 1;
                        self.stream_next[stream as usize] += 1;
                        if self.ctx.plan.expects[stream as usize].origin == Origin::Own {
                            self.outstanding[stream as usize] += 1;
                        }
                    }
                }
            }
            if let Err(e) = self.flush(cx, now) {
                return Poll::Ready(failed(e));
            }
            if let Some(since) = self.blocked_since {
                if now.saturating_duration_since(since) >= self.ctx.stall_timeout {
                    return Poll::Ready(End::Failed(
                        ErrorKind::WriteStalled,
                        format!(
                            "nothing could be written for {:?}: the server stopped reading",
                            self.ctx.stall_timeout
                        ),
                    ));
                }
            }

            // 2. Read everything that arrived (tungstenite answers WebSocket pings by itself, the
            //    Socket.IO link Engine.IO pings), then flush what reading queued (pongs).
            for read in 0.. {
                if read == READ_BUDGET {
                    if self.drain_finished(Instant::now()) {
                        return Poll::Ready(End::Drained);
                    }
                    // A reader that is always behind still answers its pings.
                    if self.link().wants_flush() {
                        self.need_flush = true;
                        if let Err(e) = self.flush(cx, now) {
                            return Poll::Ready(failed(e));
                        }
                    }
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                match self.link().poll_next(cx) {
                    Poll::Ready(Ok(incoming)) => {
                        let now = Instant::now();
                        match incoming {
                            Incoming::Payload(bytes) => {
                                self.metrics.borrow_mut().interval.received += 1;
                                self.on_payload(&bytes, now);
                            }
                            Incoming::Attachment(bytes) => self.on_payload(&bytes, now),
                            Incoming::Ack(id) => {
                                self.metrics.borrow_mut().interval.received += 1;
                                self.on_ack(id, now);
                            }
                            Incoming::Closed(frame) => {
                                // Let tungstenite send its close reply; errors no longer matter.
                                let _ = self.link().poll_flush(cx);
                                return Poll::Ready(End::ServerClosed(frame));
                            }
                            Incoming::Nothing => {}
                        }
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(failed(e)),
                    Poll::Pending => break,
                }
            }
            if self.link().wants_flush() {
                self.need_flush = true;
                if let Err(e) = self.flush(cx, now) {
                    return Poll::Ready(failed(e));
                }
            }

            // 3. Done draining?
            let wake = match self.phase {
                Phase::Draining { until } => {
                    if self.drain_finished(now) {
                        return Poll::Ready(End::Drained);
                    }
                    until
                }
                // While writes are blocked, the socket wakes us when it drains; due events wait.
                // (The stall deadline below bounds the wait.)
                Phase::Emitting if self.blocked_since.is_some() => now + self.ctx.stall_timeout,
                Phase::Emitting => self
                    .next_due()
                    .map(|(_, at)| at.checked_sub(EARLY).unwrap_or(at))
                    .unwrap_or(self.ctx.emit_end)
                    .min(self.ctx.emit_end),
            };
            let wake = match self.blocked_since {
                Some(since) => wake.min(since + self.ctx.stall_timeout),
                None => wake,
            };
            let wake = match (&self.phase, self.drop_at) {
                (Phase::Emitting, Some(drop_at)) => wake.min(drop_at),
                _ => wake,
            };

            // 4. Sleep until then, or until stopped.
            if wake != self.sleep_at {
                self.sleep.as_mut().reset(wake.into());
                self.sleep_at = wake;
            }
            let timer_fired = self.sleep.as_mut().poll(cx).is_ready();
            let stopped =
                matches!(self.phase, Phase::Emitting) && self.stop.as_mut().poll(cx).is_ready();
            if !timer_fired && !stopped {
                return Poll::Pending;
            }
        }
        // Deadlines keep expiring (a stalled thread catching up): let other clients run first.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn failed(fault: Fault) -> End {
    End::Failed(fault.kind, fault.detail)
}
