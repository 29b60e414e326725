//! Socket.IO on `/socket.io/`: socketioxide serves the protocol, this file gives the builtin server
//! its events. The namespaces `/` and `/admin` behave the same:
//! - `echo`: the same arguments back to the sender as `echo` (binary attachments included);
//! - `ack`: the same arguments back through the acknowledgement the client asked for;
//! - `join` / `leave` (a room name): enter or leave that room;
//! - `chat`: the same arguments as `chat` to every member of the rooms the sender joined, the sender
//!   included (nothing when it joined none);
//! - `tick` (pushed): `{"seq":N,"ts":EPOCH_MS}` to the members of room `ticker` every `tick_every`,
//!   N counting from 0 the ticks pushed in that namespace (none while the room is empty);
//! - CONNECT whose auth is an object with a string `reject` is refused with that message.
//!
//! `join`, `leave` and `chat` answer an ack request with an empty ack once done, so a client can
//! wait for "joined" instead of guessing. `--delay` holds `echo` and `ack` replies.
//!
//! With delivery faults on (`faults.rs`), `chat` and `tick` are not broadcast by socketioxide but
//! emitted to each receiver socket in turn, through that receiver's stream from the sender's socket
//! (`chat`) or from the namespace's ticker (`tick`). The streams live in one table keyed by the
//! receiver's socket id, under one lock held for a whole fan-out, so a stream counts in the order
//! its deliveries are made; a socket's entry, and its streams in the other entries, go when it
//! disconnects. Without faults there is no table and the fan-out is socketioxide's broadcast.
//! The per-socket emits carry no connection-state-recovery offset (the builtin server does not
//! enable recovery).
//!
//! Events are handled by [`MessageHandler`]s implemented here, not by async closures: socketioxide
//! spawns a task per event for an async handler, and on a multi-threaded runtime such tasks start
//! out of order (tokio runs the last one spawned first), so a client's echoes would come back
//! reordered. A synchronous handler runs in socketioxide's read loop, in arrival order.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::FutureExt;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};
use socketioxide::SocketIo;
use socketioxide::adapter::LocalAdapter;
use socketioxide::extract::SocketRef;
use socketioxide::extract::{AckSender, Data, TryData};
use socketioxide::handler::{
    ConnectHandler, DisconnectHandler, FromConnectParts, FromMessageParts, MessageHandler, Value,
};
use socketioxide::service::SocketIoService;
use socketioxide::socket::{DisconnectReason, Sid, Socket};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::counters::{Counted, EndpointCounts, ServeCounters};
use super::delay::DelayLine;
use super::faults::{FaultStream, Faults};

/// The namespaces the builtin server accepts; both offer every event.
pub const NAMESPACES: [&str; 2] = ["/", "/admin"];

/// The room whose members receive `tick`.
pub const TICKER_ROOM: &str = "ticker";

/// Packets socketioxide queues for one connection before an emit to it fails (and the event is
/// dropped, which a load test counts as lost). socketioxide's default, 128, is soon reached by a
/// burst of echoes or a busy room; the queue grows as needed, so a high bound costs nothing idle.
const SOCKET_QUEUE: usize = 4096;

/// The largest HTTP long-polling body, as Node's socket.io (`maxHttpBufferSize`).
const MAX_POLLING_PAYLOAD: u64 = 1_000_000;

/// Builds the Socket.IO service, with `routes` answering every request outside `/socket.io/`,
/// and starts the namespaces' tickers on `tasks` (they end with `stop`; a zero `tick_every` starts
/// none). `faults` apply to `chat` and `tick`.
pub fn service<S: Clone>(
    routes: S,
    delay: Option<DelayLine>,
    tick_every: Duration,
    faults: Faults,
    tasks: &TaskTracker,
    stop: &CancellationToken,
    counters: Arc<ServeCounters>,
) -> (SocketIoService<S>, SocketIo) {
    let (service, io) = SocketIo::builder()
        .max_buffer_size(SOCKET_QUEUE)
        .max_payload(MAX_POLLING_PAYLOAD)
        .build_with_inner_svc(routes);
    let faulted = faults.any().then(|| Arc::new(FaultedSockets::new(faults)));
    let outbound = Arc::new(Outbound {
        delay,
        faulted: faulted.clone(),
        counters,
    });
    for ns in NAMESPACES {
        io.ns(ns, Admission(outbound.clone()));
        if !tick_every.is_zero() {
            tasks.spawn(tick(
                io.clone(),
                ns,
                tick_every,
                faulted.clone(),
                stop.clone(),
            ));
        }
    }
    (service, io)
}

/// Closes every Socket.IO connection: a WebSocket gets the Engine.IO close packet, a waiting
/// long-poll is answered with it.
///
/// socketioxide's `close` empties its namespace table before the transports close, so its own
/// clean-up (which looks the sockets up in that table) finds nothing, and each socket and its
/// namespace keep each other alive; so does everything the handlers hold (the delay line, whose
/// thread would never end). Disconnecting the sockets afterwards takes them out of their namespace.
pub async fn close(io: &SocketIo) {
    let sockets: Vec<_> = NAMESPACES
        .iter()
        .filter_map(|ns| io.of(ns))
        .flat_map(|namespace| namespace.sockets())
        .collect();
    io.close().await;
    for socket in sockets {
        // The transport is closed already: this only leaves the namespace.
        let _ = socket.disconnect();
    }
}

/// How events go out: replies now or through the delay line, fan-outs through the fault streams
/// when faults are on.
struct Outbound {
    delay: Option<DelayLine>,
    faulted: Option<Arc<FaultedSockets>>,
    counters: Arc<ServeCounters>,
}

impl Outbound {
    fn counts(&self) -> &EndpointCounts {
        self.counters.of(Counted::SocketIo)
    }

    fn reply(&self, reply: impl FnOnce() + Send + 'static) {
        match &self.delay {
            Some(line) => line.run_later(reply),
            None => reply(),
        }
    }
}

/// A namespace's CONNECT: refuse on request, otherwise register the events.
#[derive(Clone)]
struct Admission(Arc<Outbound>);

/// The CONNECT_ERROR message a client asked for with `{"reject": "..."}`.
struct Rejected(String);

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

type MiddlewareResult = Result<(), Box<dyn std::fmt::Display + Send>>;

impl ConnectHandler<LocalAdapter, ()> for Admission {
    fn call(&self, _socket: Arc<Socket>, _auth: Option<Value>) {}

    /// Runs before socketioxide sends the CONNECT reply. The events are registered here rather than
    /// in `call`, which runs after the reply is queued: a client that emits as soon as it reads the
    /// reply could otherwise be first, and its event would find no handler.
    fn call_middleware<'a>(
        &'a self,
        socket: Arc<Socket>,
        auth: &'a Option<Value>,
    ) -> Pin<Box<dyn Future<Output = MiddlewareResult> + Send + 'a>> {
        let Ok(TryData(auth)) = TryData::<serde_json::Value>::from_connect_parts(&socket, auth);
        let reject = auth
            .ok()
            .and_then(|auth| auth.get("reject")?.as_str().map(str::to_string));
        let result: MiddlewareResult = match reject {
            Some(message) => Err(Box::new(Rejected(message))),
            None => {
                for event in Event::ALL {
                    socket.on(
                        event.name(),
                        OnEvent {
                            event,
                            outbound: self.0.clone(),
                        },
                    );
                }
                self.0.counts().accepted.fetch_add(1, Ordering::Relaxed);
                socket.on_disconnect(Disconnected(self.0.clone()));
                Ok(())
            }
        };
        Box::pin(std::future::ready(result))
    }
}

#[derive(Debug, Clone, Copy)]
enum Event {
    Echo,
    Ack,
    Join,
    Leave,
    Chat,
}

impl Event {
    const ALL: [Event; 5] = [
        Event::Echo,
        Event::Ack,
        Event::Join,
        Event::Leave,
        Event::Chat,
    ];

    fn name(self) -> &'static str {
        match self {
            Event::Echo => "echo",
            Event::Ack => "ack",
            Event::Join => "join",
            Event::Leave => "leave",
            Event::Chat => "chat",
        }
    }
}

/// One event of one socket, handled synchronously (see the module docs).
struct OnEvent {
    event: Event,
    outbound: Arc<Outbound>,
}

impl MessageHandler<LocalAdapter, ()> for OnEvent {
    /// An event whose arguments do not parse is ignored, as socketioxide does for its own handlers.
    fn call(&self, socket: Arc<Socket>, mut value: Value, ack_id: Option<i64>) {
        self.outbound
            .counts()
            .received
            .fetch_add(1, Ordering::Relaxed);
        // Answers only if the client asked for an ack.
        let Ok(ack) = AckSender::from_message_parts(&socket, &mut value, &ack_id);
        match self.event {
            Event::Echo => {
                let Ok(Data(args)) = Data::<Args>::from_message_parts(&socket, &mut value, &ack_id)
                else {
                    return;
                };
                // A connection gone or too far behind loses its echo.
                self.outbound.reply(move || {
                    let _ = socket.emit("echo", &args);
                });
            }
            Event::Ack => {
                let Ok(Data(args)) = Data::<Args>::from_message_parts(&socket, &mut value, &ack_id)
                else {
                    return;
                };
                self.outbound.reply(move || {
                    let _ = ack.send(&args);
                });
            }
            Event::Join | Event::Leave => {
                let Ok(Data(room)) =
                    Data::<String>::from_message_parts(&socket, &mut value, &ack_id)
                else {
                    return;
                };
                if matches!(self.event, Event::Join) {
                    socket.join(room);
                } else {
                    socket.leave(room);
                }
                let _ = ack.send(&Args::default());
            }
            Event::Chat => {
                let Ok(Data(args)) = Data::<Args>::from_message_parts(&socket, &mut value, &ack_id)
                else {
                    return;
                };
                // socketioxide puts a socket in no room of its own, so these are the joined rooms;
                // with none, `within` would pick the sender alone.
                let rooms = socket.rooms();
                if !rooms.is_empty() {
                    let within = socket.within(rooms);
                    match &self.outbound.faulted {
                        Some(faulted) => faulted.chat(&socket, within.sockets(), &args),
                        None => {
                            // The local adapter broadcasts on the first poll, so this sends now,
                            // in order.
                            let sent = within.emit("chat", &args).now_or_never();
                            debug_assert!(sent.is_some(), "the local adapter broadcasts at once");
                        }
                    }
                }
                let _ = ack.send(&Args::default());
            }
        }
    }
}

/// The fault streams of every socket that has received a faulted fan-out, by receiver.
struct FaultedSockets {
    faults: Faults,
    receivers: Mutex<HashMap<Sid, ReceiverStreams>>,
}

/// One receiver socket's streams.
#[derive(Default)]
struct ReceiverStreams {
    /// `chat`, by sender socket.
    chat: HashMap<Sid, FaultStream<Args>>,
    /// `tick`, from the namespace's ticker.
    ticks: FaultStream<Tick>,
}

impl FaultedSockets {
    fn new(faults: Faults) -> FaultedSockets {
        FaultedSockets {
            faults,
            receivers: Mutex::new(HashMap::new()),
        }
    }

    /// Delivers `chat` from `sender` to each of `receivers` through its stream from `sender`.
    fn chat(&self, sender: &Socket, receivers: Vec<SocketRef>, args: &Args) {
        self.fan_out(
            receivers,
            |streams| streams.chat.entry(sender.id).or_default(),
            "chat",
            args,
        );
    }

    /// Delivers `tick` to each of `receivers` through its stream of ticks.
    fn tick(&self, receivers: Vec<SocketRef>, tick: &Tick) {
        self.fan_out(receivers, |streams| &mut streams.ticks, "tick", tick);
    }

    fn fan_out<T: Clone + Serialize>(
        &self,
        receivers: Vec<SocketRef>,
        stream_of: impl Fn(&mut ReceiverStreams) -> &mut FaultStream<T>,
        event: &str,
        data: &T,
    ) {
        let mut table = self.receivers.lock().unwrap_or_else(|p| p.into_inner());
        for receiver in receivers {
            // A socket that is disconnecting is forgotten (under this lock) after it stops being
            // connected: checking here keeps it from coming back into the table.
            if !receiver.connected() {
                continue;
            }
            let streams = table.entry(receiver.id).or_default();
            // A receiver gone or too far behind loses the delivery.
            stream_of(streams).deliver(&self.faults, data, |data| {
                let _ = receiver.emit(event, data);
            });
        }
    }

    /// Forgets the streams to and from a socket that disconnected; what they held is never sent.
    fn forget(&self, sid: Sid) {
        let mut table = self.receivers.lock().unwrap_or_else(|p| p.into_inner());
        table.remove(&sid);
        for streams in table.values_mut() {
            streams.chat.remove(&sid);
        }
    }
}

/// A socket's disconnect handler when faults are on: forgets its streams, synchronously.
/// A socket left: counted, and its fault streams forgotten.
struct Disconnected(Arc<Outbound>);

impl DisconnectHandler<LocalAdapter, ()> for Disconnected {
    fn call_with_defer(
        &self,
        socket: Arc<Socket>,
        _reason: DisconnectReason,
        defer: fn(Arc<Socket>),
    ) {
        self.0.counts().closed.fetch_add(1, Ordering::Relaxed);
        if let Some(faulted) = &self.0.faulted {
            faulted.forget(socket.id);
        }
        defer(socket);
    }
}

#[derive(Clone, Copy, Serialize)]
struct Tick {
    seq: u64,
    ts: u64,
}

/// Pushes `tick` to the members of [`TICKER_ROOM`] in namespace `ns` every `every`, skipping the
/// ticks when the room is empty (so the first tick a member of a new server sees is 0); through
/// each member's fault stream when `faulted`.
async fn tick(
    io: SocketIo,
    ns: &'static str,
    every: Duration,
    faulted: Option<Arc<FaultedSockets>>,
    stop: CancellationToken,
) {
    // Burst keeps ticks on the absolute schedule after a stall, like `/ticker`.
    let mut interval = tokio::time::interval_at(Instant::now() + every, every);
    interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut seq = 0;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = interval.tick() => {}
        }
        let Some(namespace) = io.of(ns) else {
            // The server is closing its namespaces.
            return;
        };
        let members = namespace.clone().within(TICKER_ROOM).sockets();
        if members.is_empty() {
            continue;
        }
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let tick = Tick { seq, ts };
        seq += 1;
        match &faulted {
            Some(faulted) => faulted.tick(members, &tick),
            // A member whose queue is full misses this tick: it sees a gap in seq.
            None => {
                let _ = namespace.within(TICKER_ROOM).emit("tick", &tick).await;
            }
        }
    }
}

/// All the arguments of an event, as socketioxide's parser hands them over (a tuple, so it keeps
/// every argument rather than the first) and takes them back (each element one argument).
#[derive(Debug, Default, Clone, PartialEq)]
struct Args(Vec<Arg>);

/// One argument: JSON, with binary attachments kept as bytes so that they go back out as
/// attachments, not as arrays of numbers. Object keys keep their order.
#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Binary(Bytes),
    Array(Vec<Arg>),
    Object(Vec<(String, Arg)>),
}

impl<'de> Deserialize<'de> for Args {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ArgsVisitor;
        impl<'de> Visitor<'de> for ArgsVisitor {
            type Value = Args;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("event arguments")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Args, A::Error> {
                let mut args = Vec::with_capacity(seq.size_hint().unwrap_or(1));
                while let Some(arg) = seq.next_element()? {
                    args.push(arg);
                }
                Ok(Args(args))
            }
        }
        // Any length: the JSON array is as long as the event's arguments.
        deserializer.deserialize_tuple(usize::MAX, ArgsVisitor)
    }
}

impl Serialize for Args {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(self.0.len())?;
        for arg in &self.0 {
            tuple.serialize_element(arg)?;
        }
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for Arg {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ArgVisitor)
    }
}

struct ArgVisitor;

impl<'de> Visitor<'de> for ArgVisitor {
    type Value = Arg;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value or a binary attachment")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Arg, E> {
        Ok(Arg::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Arg, E> {
        Ok(Arg::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Arg, D::Error> {
        Arg::deserialize(deserializer)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Arg, E> {
        Ok(Arg::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Arg, E> {
        Ok(Arg::Number(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Arg, E> {
        Ok(Arg::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Arg, E> {
        // JSON has no NaN or infinity, so this is always a number.
        Ok(serde_json::Number::from_f64(v).map_or(Arg::Null, Arg::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Arg, E> {
        Ok(Arg::String(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Arg, E> {
        Ok(Arg::String(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Arg, E> {
        Ok(Arg::Binary(Bytes::copy_from_slice(v)))
    }
    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Arg, E> {
        Ok(Arg::Binary(Bytes::from(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Arg, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Arg::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Arg, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some((key, value)) = map.next_entry::<String, Arg>()? {
            fields.push((key, value));
        }
        Ok(Arg::Object(fields))
    }
}

impl Serialize for Arg {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Arg::Null => serializer.serialize_unit(),
            Arg::Bool(v) => serializer.serialize_bool(*v),
            Arg::Number(v) => v.serialize(serializer),
            Arg::String(v) => serializer.serialize_str(v),
            // socketioxide's parser turns bytes into a placeholder plus an attachment.
            Arg::Binary(v) => serializer.serialize_bytes(v),
            Arg::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Arg::Object(fields) => {
                let mut map = serializer.serialize_map(Some(fields.len()))?;
                for (key, value) in fields {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_survive_json_unchanged_in_order() {
        let text = r#"[{"z":1,"a":[true,null,-2,1.5,"é"]},"x",18446744073709551615]"#;
        let args: Args = serde_json::from_str(text).unwrap();
        assert_eq!(args.0.len(), 3);
        assert_eq!(serde_json::to_string(&args).unwrap(), text);
    }

    #[test]
    fn no_arguments_is_an_empty_array() {
        let args: Args = serde_json::from_str("[]").unwrap();
        assert_eq!(args, Args::default());
        assert_eq!(serde_json::to_string(&args).unwrap(), "[]");
    }
}
