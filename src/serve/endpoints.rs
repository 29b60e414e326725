//! The three raw WebSocket endpoints of the builtin server.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{broadcast, mpsc};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::delay::DelayLine;
use super::faults::{FaultedInbox, Faults};
use super::session::{Endpoint, Outgoing};

/// Messages a room keeps for a slow member before that member is cut off (closed with 1013).
const ROOM_CAPACITY: usize = 4096;

/// `/echo`: replies at once, or through the delay line when the server has `--delay`.
pub struct Echo {
    delayed: Option<(
        DelayLine,
        mpsc::UnboundedSender<Message>,
        mpsc::UnboundedReceiver<Message>,
    )>,
}

impl Echo {
    pub fn new(delay: Option<&DelayLine>) -> Echo {
        Echo {
            delayed: delay.map(|line| {
                let (tx, rx) = mpsc::unbounded_channel();
                (line.clone(), tx, rx)
            }),
        }
    }
}

impl Endpoint for Echo {
    fn on_message(&mut self, message: Message, out: &mut Vec<Message>) {
        match &self.delayed {
            None => out.push(message),
            Some((line, reply_to, _)) => line.submit(message, reply_to.clone()),
        }
    }

    async fn next_outgoing(&mut self) -> Outgoing {
        match &mut self.delayed {
            Some((_, _, replies)) => match replies.recv().await {
                Some(message) => Outgoing::Message(message),
                None => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    }
}

type RoomMap = Arc<Mutex<HashMap<String, broadcast::Sender<RoomMessage>>>>;

/// Every room by name; a room disappears with its last member.
#[derive(Default)]
pub struct Rooms {
    rooms: RoomMap,
    /// The id of the next member, unique for the server's life: the source of a fault stream.
    next_member: AtomicU64,
}

/// A message in a room, with the member that sent it.
#[derive(Clone)]
struct RoomMessage {
    from: u64,
    message: Message,
}

/// `/broadcast?room=NAME`: a member of a room.
pub struct Broadcast {
    rooms: RoomMap,
    room: String,
    id: u64,
    sender: broadcast::Sender<RoomMessage>,
    /// Always `Some` until dropped; taken in `Drop` so the count check below sees it gone.
    receiver: Option<broadcast::Receiver<RoomMessage>>,
    /// With delivery faults: a stream per sending member. `None`, the fast path, without.
    faulted: Option<Box<FaultedInbox<u64, Message>>>,
}

impl Broadcast {
    pub fn join(rooms: &Rooms, room: String, faults: Faults) -> Broadcast {
        let id = rooms.next_member.fetch_add(1, Ordering::Relaxed);
        let mut map = rooms.rooms.lock().unwrap_or_else(|p| p.into_inner());
        let sender = map
            .entry(room.clone())
            .or_insert_with(|| broadcast::channel(ROOM_CAPACITY).0)
            .clone();
        let receiver = sender.subscribe();
        Broadcast {
            rooms: rooms.rooms.clone(),
            room,
            id,
            sender,
            receiver: Some(receiver),
            faulted: faults.any().then(|| Box::new(FaultedInbox::new(faults))),
        }
    }
}

impl Drop for Broadcast {
    fn drop(&mut self) {
        let mut map = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        // Drop this member's receiver under the lock, so two members leaving at once cannot both
        // see the other and leave an empty room behind.
        drop(self.receiver.take());
        if self.sender.receiver_count() == 0 {
            map.remove(&self.room);
        }
    }
}

impl Endpoint for Broadcast {
    fn on_message(&mut self, message: Message, _out: &mut Vec<Message>) {
        // There is always at least this member's own receiver, so send cannot fail.
        let _ = self.sender.send(RoomMessage {
            from: self.id,
            message,
        });
    }

    async fn next_outgoing(&mut self) -> Outgoing {
        loop {
            if let Some(message) = self.faulted.as_mut().and_then(|f| f.next_ready()) {
                return Outgoing::Message(message);
            }
            let Some(receiver) = self.receiver.as_mut() else {
                return std::future::pending().await;
            };
            // Cancel-safe: nothing below the receive awaits.
            match receiver.recv().await {
                Ok(RoomMessage { from, message }) => match self.faulted.as_mut() {
                    None => return Outgoing::Message(message),
                    Some(faulted) => faulted.deliver(from, message),
                },
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    return Outgoing::Close(
                        CloseCode::Again,
                        format!("too slow: missed {missed} room messages"),
                    );
                }
                Err(broadcast::error::RecvError::Closed) => return std::future::pending().await,
            }
        }
    }
}

/// `/ticker?every=D`: `{"seq":N,"ts":EPOCH_MS}` every D, N from 0 for each connection.
pub struct Ticker {
    interval: Interval,
    seq: u64,
    /// With delivery faults: the one stream of ticks. `None`, the fast path, without.
    faulted: Option<Box<FaultedInbox<(), Message>>>,
}

impl Ticker {
    pub fn new(every: Duration, faults: Faults) -> Ticker {
        // Burst keeps ticks on the absolute schedule after a stall: seq stays tied to time.
        let mut interval = tokio::time::interval_at(Instant::now(), every);
        interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
        Ticker {
            interval,
            seq: 0,
            faulted: faults.any().then(|| Box::new(FaultedInbox::new(faults))),
        }
    }
}

impl Endpoint for Ticker {
    fn on_message(&mut self, _message: Message, _out: &mut Vec<Message>) {}

    async fn next_outgoing(&mut self) -> Outgoing {
        loop {
            if let Some(message) = self.faulted.as_mut().and_then(|f| f.next_ready()) {
                return Outgoing::Message(message);
            }
            // Cancel-safe: nothing below the tick awaits.
            self.interval.tick().await;
            let ts = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis();
            let text = format!("{{\"seq\":{},\"ts\":{ts}}}", self.seq);
            self.seq += 1;
            let message = Message::text(text);
            match self.faulted.as_mut() {
                None => return Outgoing::Message(message),
                Some(faulted) => faulted.deliver((), message),
            }
        }
    }
}
