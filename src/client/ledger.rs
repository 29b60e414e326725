//! A client's books: what it sent that must come back (its own tracked events, the acks it asked
//! for), what arrived of every stream it receives, and what each arrival counts as — delivered,
//! late, duplicate, reordered, a gap, refilled by recovery, or forged. Pure: no socket and no
//! clock of its own (the session passes the time of each event), so every rule is tested here
//! with made-up payloads.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::tracking::{Delivery, SentAt, Tracker};
use super::{ClientContext, ClientId};
use crate::metrics::gaps::Arrival;
use crate::metrics::{
    ErrorKind, ErrorRow, GapKind, GapRow, ReceiverEnd, SERVER_KEYS, SERVER_SOURCE, StreamEnd,
    WorkerMetrics,
};
use crate::protocol::stamp::Stamp;
use crate::scenario::Origin;

/// An acknowledgement asked for and not answered yet.
#[derive(Debug, Clone, Copy)]
pub struct PendingAck {
    pub id: u64,
    /// Latency origin: the event's scheduled send time (kept across resends).
    pub origin: Instant,
    /// With `retries`: when to send again (or give up), and what.
    pub resend: Option<Resend>,
}

/// What an emit with `retries` sends again when its acknowledgement is late.
#[derive(Debug, Clone, Copy)]
pub struct Resend {
    pub deadline: Instant,
    /// The emit (index in the group's emits) and the event's `{{seq}}`.
    pub emit: usize,
    pub seq: u64,
    /// The tracking stamp's sequence number, when the event is tracked: a resend carries the
    /// same stamp, so an echo of both is one delivery and a duplicate.
    pub stamp_seq: Option<u64>,
    /// Attempts left after this one.
    pub left: u32,
}

pub struct Ledger<'a> {
    ctx: &'a ClientContext,
    who: ClientId,
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
    /// Socket.IO acks asked for and not answered yet, in sending order.
    acks: VecDeque<PendingAck>,
    next_ack: u64,
    /// Keys of keyed server streams seen (`stream = "/channel"`): key `i` is source
    /// `SERVER_SOURCE - 1 - i`.
    keys: Vec<Box<str>>,
    key_sources: HashMap<Box<str>, u32>,
}

impl<'a> Ledger<'a> {
    pub fn new(ctx: &'a ClientContext, who: ClientId) -> Ledger<'a> {
        let expects = &ctx.plan.expects;
        Ledger {
            ctx,
            who,
            outstanding: vec![0; expects.len()],
            stream_next: vec![0; expects.len()],
            tracker: Tracker::default(),
            receives: expects.iter().any(|e| e.received_by(who.group)),
            server_expects: expects
                .iter()
                .enumerate()
                .filter(|(_, e)| {
                    matches!(e.origin, Origin::Server { .. }) && e.received_by(who.group)
                })
                .map(|(i, _)| i as u32)
                .collect(),
            acks: VecDeque::new(),
            next_ack: 0,
            keys: Vec::new(),
            key_sources: HashMap::new(),
        }
    }

    /// The sequence number the next event of `stream` from this client carries in its stamp.
    pub fn next_seq(&self, stream: u32) -> u64 {
        self.stream_next[stream as usize]
    }

    /// The id of the next ack to ask for.
    pub fn take_ack_id(&mut self) -> u64 {
        self.next_ack += 1;
        self.next_ack - 1
    }

    /// An event went out: tracked in `stream`, with an ack asked for under `ack`, both measured
    /// from `origin`, its scheduled send time.
    pub fn sent(
        &mut self,
        stream: Option<u32>,
        ack: Option<u64>,
        origin: Instant,
        resend: Option<Resend>,
        m: &mut WorkerMetrics,
    ) {
        m.interval.sent += 1;
        m.group(self.who.group).sent += 1;
        if let Some(id) = ack {
            self.acks.push_back(PendingAck { id, origin, resend });
            m.interval.acks_sent += 1;
        }
        if let Some(stream) = stream {
            m.interval.expects[stream as usize].sent += 1;
            self.stream_next[stream as usize] += 1;
            if self.ctx.plan.expects[stream as usize].origin == Origin::Own {
                self.outstanding[stream as usize] += 1;
            }
        }
    }

    /// An event sent again under a new ack id: counted as sent and as a retry, not as a new
    /// event of its stream.
    pub fn resent(&mut self, ack: PendingAck, m: &mut WorkerMetrics) {
        m.interval.sent += 1;
        m.group(self.who.group).sent += 1;
        m.interval.ack_retries += 1;
        self.acks.push_back(ack);
    }

    /// The earliest time an ack with `retries` is due to be sent again (or given up).
    pub fn next_resend(&self) -> Option<Instant> {
        self.acks
            .iter()
            .filter_map(|a| a.resend.map(|r| r.deadline))
            .min()
    }

    /// Takes out the first ack whose resend deadline has passed.
    pub fn take_late(&mut self, now: Instant) -> Option<PendingAck> {
        let at = self
            .acks
            .iter()
            .position(|a| a.resend.is_some_and(|r| r.deadline <= now))?;
        self.acks.remove(at)
    }

    /// Puts back an ack taken out by [`Self::take_late`] that could not be sent again yet.
    pub fn requeue(&mut self, ack: PendingAck) {
        self.acks.push_front(ack);
    }

    /// The connection came back (`recovered`: the server recovered the session).
    pub fn reconnected(&mut self, recovered: bool) {
        self.tracker.reconnected(recovered);
    }

    /// The connection is gone: the acks still awaited are lost with it.
    pub fn connection_lost(&mut self, m: &mut WorkerMetrics) {
        m.interval.acks_lost += self.acks.len() as u64;
        self.acks.clear();
    }

    /// Nothing this client waits for is still to come: its own events are back, its acks
    /// answered, and it receives no stream from others (those may always send more), or it is
    /// `leaving` before the run ends and does not wait for them.
    pub fn settled(&self, leaving: bool) -> bool {
        (!self.receives || leaving)
            && self.outstanding.iter().all(|&n| n == 0)
            && self.acks.is_empty()
    }

    /// The answer to ack `id` arrived at `now`.
    pub fn ack(&mut self, id: u64, now: Instant, m: &mut WorkerMetrics) {
        // Acks come back in order almost always: look from the front.
        let Some(at) = self.acks.iter().position(|a| a.id == id) else {
            return;
        };
        let origin = self.acks.remove(at).expect("position is in range").origin;
        if let Some(metric) = self.ctx.plan.ack_metric {
            m.record(metric, now.saturating_duration_since(origin));
        }
    }

    /// A message (or an event's arguments, or an attachment) arrived at `now`: a stamped event,
    /// or one that may carry server events.
    pub fn payload(&mut self, payload: &[u8], now: Instant, m: &mut WorkerMetrics) {
        match Stamp::find(payload, self.ctx.run_tag) {
            Some(stamp) => self.stamped(stamp, now, m),
            None if !self.server_expects.is_empty() => self.server_payload(payload, m),
            None => {}
        }
    }

    /// An event volley stamped: an echo of this client's own, or another client's.
    fn stamped(&mut self, stamp: Stamp, now: Instant, m: &mut WorkerMetrics) {
        let plan = &self.ctx.plan;
        let Some(expect) = plan.expects.get(stamp.stream as usize) else {
            return;
        };
        let own = match expect.origin {
            Origin::Own if stamp.client == self.who.id => true,
            Origin::Group(_) if expect.to.contains(&self.who.group) => false,
            _ => return,
        };
        // A server may corrupt or forge what it relays: a number this client never sent, or a
        // sender outside the emitting group, is an error, not a delivery.
        let forged = match expect.origin {
            Origin::Own => stamp.seq >= self.stream_next[stamp.stream as usize],
            Origin::Group(g) => !plan.client_ids(g).contains(&u64::from(stamp.client)),
            Origin::Server { .. } => false,
        };
        if forged {
            let detail = format!(
                "a stamp volley never sent: client {} seq {} of `{}`",
                stamp.client, stamp.seq, expect.name
            );
            self.protocol_error(detail, m);
            return;
        }
        let delivery = self
            .tracker
            .deliver(stamp.client, stamp.stream, stamp.seq, own);
        let origin = self.ctx.t0 + Duration::from_nanos(stamp.origin_ns);
        let latency = now.saturating_duration_since(origin);
        let arrival = Received {
            expect: stamp.stream,
            source: stamp.client,
            seq: stamp.seq,
            delivery,
            latency: Some(latency),
            sent: SentAt::Instant(origin),
        };
        let new = self.count(arrival, m);
        if new && own {
            let outstanding = &mut self.outstanding[stamp.stream as usize];
            *outstanding = outstanding.saturating_sub(1);
        }
    }

    /// A message that may carry server events: their sequence numbers (and send times) are read
    /// at the expects' JSON pointers. For Socket.IO, the pointers apply to the event's first
    /// argument, and only to events of the expect's name.
    fn server_payload(&mut self, payload: &[u8], m: &mut WorkerMetrics) {
        for i in 0..self.server_expects.len() {
            let expect = self.server_expects[i];
            let Origin::Server {
                seq,
                key,
                timestamp,
                timestamp_us,
                event_prefix,
            } = &self.ctx.plan.expects[expect as usize].origin
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
            let source = match key {
                None => SERVER_SOURCE,
                Some(pointer) => match pointer
                    .read_raw(payload)
                    .and_then(|k| self.key_source(k, m))
                {
                    Some(source) => source,
                    None => continue,
                },
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
            let delivery = self.tracker.deliver(source, expect, number, false);
            let arrival = Received {
                expect,
                source,
                seq: number,
                delivery,
                latency,
                sent: sent_us.map_or(SentAt::Unknown, SentAt::EpochUs),
            };
            self.count(arrival, m);
        }
    }

    /// What the server sent does not make sense to the books: a `protocol` error of this client.
    fn protocol_error(&self, detail: String, m: &mut WorkerMetrics) {
        m.error(ErrorRow {
            at: self.ctx.t0.elapsed(),
            client: self.who.id,
            group: self.who.group,
            kind: ErrorKind::Protocol,
            detail,
        });
    }

    /// The source of a keyed server stream's key (its JSON text); `None` past [`SERVER_KEYS`]
    /// keys (the first key too many is reported: a key that names each message, not a stream,
    /// would make every message a stream of its own).
    fn key_source(&mut self, key: &str, m: &mut WorkerMetrics) -> Option<u32> {
        if let Some(&source) = self.key_sources.get(key) {
            return Some(source);
        }
        if self.keys.len() >= SERVER_KEYS as usize {
            if self.keys.len() == SERVER_KEYS as usize {
                // Reported once: the list grows by one past the limit to remember it.
                self.keys.push("".into());
                let detail = format!(
                    "more than {SERVER_KEYS} stream keys: later keys are not tracked (does `stream` point at a field that names the stream?)"
                );
                self.protocol_error(detail, m);
            }
            return None;
        }
        let source = SERVER_SOURCE - 1 - self.keys.len() as u32;
        self.keys.push(key.into());
        self.key_sources.insert(key.into(), source);
        Some(source)
    }

    /// The key of a keyed server stream's source, as gaps.csv names it (a string key without
    /// its quotes).
    fn key_of(&self, source: u32) -> Option<Box<str>> {
        let at = SERVER_SOURCE.checked_sub(source.checked_add(1)?)? as usize;
        let raw = self.keys.get(at)?;
        let text = raw
            .strip_prefix('"')
            .and_then(|k| k.strip_suffix('"'))
            .unwrap_or(raw);
        Some(text.into())
    }

    /// Counts a delivery and writes its gaps.csv rows; true when it was new (not a duplicate).
    fn count(&mut self, r: Received, m: &mut WorkerMetrics) -> bool {
        let refilled = self.tracker.refilled(r.sent) || r.delivery.replayed;
        let key = if r.source != SERVER_SOURCE && crate::metrics::is_server_source(r.source) {
            self.key_of(r.source)
        } else {
            None
        };
        // The clock is read only for a row: most arrivals are in order and write none.
        let row = |kind, expected, count| GapRow {
            at: self.ctx.t0.elapsed(),
            receiver: self.who.id,
            expect: r.expect,
            source: r.source,
            key: key.clone(),
            expected: Some(expected),
            got: Some(r.seq),
            count,
            kind,
            during_reconnect: r.delivery.during_reconnect,
            recovered: r.delivery.recovered,
        };
        let counts = &mut m.interval.expects[r.expect as usize];
        counts.lost += r.delivery.lost_on_restart;
        let gap = match r.delivery.arrival {
            Arrival::Stale => return false,
            Arrival::Duplicate => {
                counts.duplicate += 1;
                m.gap(row(GapKind::Duplicate, r.seq, 1));
                return false;
            }
            // A number replayed after a reconnect into the gap that reconnect opened: refilled,
            // not out of order.
            Arrival::Reorder if r.delivery.replayed => None,
            Arrival::Reorder => {
                counts.reorder += 1;
                Some(row(GapKind::Reorder, r.seq, 1))
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
        let within = self.ctx.plan.expects[r.expect as usize].within;
        if let Some(latency) = r.latency {
            if within.is_some_and(|within| latency > within) {
                counts.late += 1;
            }
            m.record(1 + r.expect as usize, latency);
        }
        if let Some(gap) = gap {
            m.gap(gap);
        }
        if refilled {
            m.gap(GapRow {
                expected: Some(r.seq),
                kind: GapKind::Refilled,
                during_reconnect: true,
                recovered: !r.delivery.replayed,
                ..row(GapKind::Refilled, r.seq, 1)
            });
        }
        true
    }

    /// At the end of the client: own events still outstanding, and what is missing of other
    /// streams, count as lost; the receiver's facts for the fan-out tails go to the coordinator.
    /// `ready`: when the client was connected and set up; `connected_at_end`: it was connected
    /// when emitting ended.
    pub fn close_books(&self, ready: Instant, connected_at_end: bool, m: &mut WorkerMetrics) {
        let expects = &self.ctx.plan.expects;
        let at = self.ctx.t0.elapsed();
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
                    key: self.key_of(source),
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
            if matches!(plan.origin, Origin::Group(_)) && plan.received_by(self.who.group) {
                m.interval.fanout.receivers.push(ReceiverEnd {
                    expect: expect as u32,
                    receiver: self.who.id,
                    ready_ns: ready.saturating_duration_since(self.ctx.t0).as_nanos() as u64,
                    connected_at_end,
                });
            }
        }
    }
}

/// One arrival of a tracked stream, as the tracker classified it.
struct Received {
    expect: u32,
    source: u32,
    seq: u64,
    delivery: Delivery,
    latency: Option<Duration>,
    sent: SentAt,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Plan, Source};
    use crate::transport::ws::Connector;
    use tokio_util::sync::CancellationToken;

    const RUN: u32 = 0x00c0_ffee;

    fn context(scenario: &str) -> ClientContext {
        let source = Source {
            path: "ledger.toml".into(),
            text: format!("target = \"builtin\"\nduration = \"1s\"\nramp = \"1s\"\n{scenario}"),
        };
        let plan = Plan::compile(source.parse().unwrap(), &source).unwrap();
        let addr = "127.0.0.1:9".parse().unwrap();
        let t0 = Instant::now();
        ClientContext {
            plan,
            connector: Connector::new(addr, "127.0.0.1", 9, None).unwrap(),
            t0,
            emit_end: t0 + Duration::from_secs(10),
            run_tag: RUN,
            stop: CancellationToken::new(),
            close_timeout: Duration::from_secs(1),
            stall_timeout: Duration::from_secs(1),
            frame_log: None,
            http: None,
            seed: 0,
            secrets: Default::default(),
        }
    }

    const ECHO: &str = r#"
name = "echo"
[[group]]
name = "echoers"
clients = 2
emit = [{ event = "echo", data = { text = "hi" }, rate = "5/s", ack = false }]
[[expect]]
event = "echo"
from = "self"
within = "100ms"
"#;

    const FANOUT: &str = r#"
name = "fanout"
[[group]]
name = "talkers"
clients = 2
emit = [{ event = "chat", data = { text = "hi" }, rate = "5/s" }]
[[group]]
name = "listeners"
clients = 3
[[expect]]
event = "chat"
from = "talkers"
to = ["listeners"]
"#;

    const TICKS: &str = r#"
name = "ticks"
protocol = "socketio"
[[group]]
name = "watchers"
clients = 1
on_connect = [{ emit = "join", data = "ticker" }]
[[expect]]
event = "tick"
from = "server"
seq = "/seq"
"#;

    fn metrics(ctx: &ClientContext) -> WorkerMetrics {
        WorkerMetrics::new(ctx.plan.metric_names().len(), ctx.plan.expects.len())
    }

    /// A payload carrying the stamp of event `seq` of `client` in `stream`, sent at `origin`.
    fn stamped(
        ctx: &ClientContext,
        client: u32,
        stream: u32,
        seq: u64,
        origin: Instant,
    ) -> Vec<u8> {
        let mut text = String::from("{\"text\":\"hi ");
        Stamp {
            run: RUN,
            stream,
            client,
            seq,
            origin_ns: origin.saturating_duration_since(ctx.t0).as_nanos() as u64,
        }
        .write_token(&mut text);
        text.push_str("\"}");
        text.into_bytes()
    }

    #[test]
    fn an_echo_comes_back_once_and_settles_the_books() {
        let ctx = context(ECHO);
        let me = ClientId { id: 1, group: 0 };
        let mut ledger = Ledger::new(&ctx, me);
        let mut m = metrics(&ctx);
        assert!(ledger.settled(false));
        let sent = ctx.t0 + Duration::from_millis(5);
        ledger.sent(Some(0), None, sent, None, &mut m);
        assert_eq!(ledger.next_seq(0), 1);
        assert!(!ledger.settled(false), "its echo is still to come");
        let echo = stamped(&ctx, 1, 0, 0, sent);
        ledger.payload(&echo, sent + Duration::from_millis(150), &mut m);
        ledger.payload(&echo, sent + Duration::from_millis(151), &mut m);
        let counts = m.interval.expects[0];
        assert_eq!((counts.sent, counts.received, counts.late), (1, 1, 1));
        assert_eq!(counts.duplicate, 1);
        assert_eq!(m.interval.histograms[1].len(), 1, "one latency sample");
        assert_eq!(m.interval.gap_rows[0].kind, GapKind::Duplicate);
        assert!(ledger.settled(false));
    }

    #[test]
    fn a_stamp_this_client_never_sent_is_a_protocol_error_not_a_delivery() {
        let ctx = context(ECHO);
        let mut ledger = Ledger::new(&ctx, ClientId { id: 1, group: 0 });
        let mut m = metrics(&ctx);
        ledger.payload(&stamped(&ctx, 1, 0, 7, ctx.t0), Instant::now(), &mut m);
        assert_eq!(m.interval.expects[0].received, 0);
        assert_eq!(m.interval.errors[ErrorKind::Protocol.index()], 1);
        assert!(m.interval.error_rows[0].detail.contains("seq 7 of `echo`"));
        // Another client's echo is not this one's business.
        ledger.payload(&stamped(&ctx, 0, 0, 0, ctx.t0), Instant::now(), &mut m);
        assert_eq!(m.interval.error_total(), 1);
    }

    #[test]
    fn fan_out_arrivals_are_classified_per_sender() {
        let ctx = context(FANOUT);
        // Clients 0 and 1 talk, 2..5 listen.
        let mut ledger = Ledger::new(&ctx, ClientId { id: 3, group: 1 });
        let mut m = metrics(&ctx);
        let now = Instant::now();
        for (sender, seq) in [(0, 0), (0, 2), (1, 0), (0, 1), (0, 2)] {
            ledger.payload(&stamped(&ctx, sender, 0, seq, ctx.t0), now, &mut m);
        }
        let counts = m.interval.expects[0];
        assert_eq!(counts.received, 4);
        assert_eq!((counts.gap, counts.reorder, counts.duplicate), (1, 1, 1));
        let kinds: Vec<GapKind> = m.interval.gap_rows.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, [GapKind::Gap, GapKind::Reorder, GapKind::Duplicate]);
        assert_eq!(m.interval.gap_rows[0].expected, Some(1));
        assert!(!ledger.settled(false), "listeners may always get more");
        // A sender outside the talkers is forged.
        ledger.payload(&stamped(&ctx, 4, 0, 0, ctx.t0), now, &mut m);
        assert_eq!(m.interval.errors[ErrorKind::Protocol.index()], 1);
        // At the end, the stream's facts go to the fan-out tails.
        ledger.close_books(ctx.t0, true, &mut m);
        assert_eq!(m.interval.fanout.streams.len(), 2);
        assert_eq!(m.interval.fanout.receivers.len(), 1);
    }

    #[test]
    fn server_events_are_counted_by_their_sequence_numbers() {
        let ctx = context(TICKS);
        let mut ledger = Ledger::new(&ctx, ClientId { id: 0, group: 0 });
        let mut m = metrics(&ctx);
        let now = Instant::now();
        for seq in [1, 2, 4, 4] {
            let event = format!(r#"["tick",{{"seq":{seq}}}]"#);
            ledger.payload(event.as_bytes(), now, &mut m);
        }
        ledger.payload(br#"["other",{"seq":9}]"#, now, &mut m);
        let counts = m.interval.expects[0];
        assert_eq!((counts.received, counts.gap, counts.duplicate), (3, 1, 1));
        assert_eq!(
            m.interval.histograms[1].len(),
            0,
            "no timestamp, no latency"
        );
    }

    #[test]
    fn acks_are_timed_from_their_events_and_lost_with_the_connection() {
        let ctx = context(
            r#"
name = "acks"
protocol = "socketio"
[[group]]
name = "g"
clients = 1
emit = [{ event = "ack", data = { n = "{{seq}}" }, rate = "5/s", ack = true }]
"#,
        );
        let mut ledger = Ledger::new(&ctx, ClientId { id: 0, group: 0 });
        let mut m = metrics(&ctx);
        let sent = ctx.t0;
        for _ in 0..3 {
            let id = ledger.take_ack_id();
            ledger.sent(None, Some(id), sent, None, &mut m);
        }
        ledger.ack(1, sent + Duration::from_millis(2), &mut m);
        ledger.ack(1, sent + Duration::from_millis(3), &mut m);
        let ack = ctx.plan.ack_metric.unwrap();
        assert_eq!(m.interval.histograms[ack].len(), 1);
        assert_eq!(m.interval.acks_sent, 3);
        assert!(!ledger.settled(false));
        ledger.connection_lost(&mut m);
        assert_eq!(m.interval.acks_lost, 2);
        assert!(ledger.settled(false));
    }

    #[test]
    fn echoes_never_back_are_lost_when_the_books_close() {
        let ctx = context(ECHO);
        let mut ledger = Ledger::new(&ctx, ClientId { id: 0, group: 0 });
        let mut m = metrics(&ctx);
        for _ in 0..3 {
            ledger.sent(Some(0), None, ctx.t0, None, &mut m);
        }
        ledger.payload(&stamped(&ctx, 0, 0, 1, ctx.t0), Instant::now(), &mut m);
        ledger.close_books(ctx.t0, true, &mut m);
        assert_eq!(m.interval.expects[0].lost, 2);
        assert_eq!(m.interval.expects[0].received, 1);
    }
}
