//! The three raw WebSocket endpoints of the builtin server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{broadcast, mpsc};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::delay::DelayLine;
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

/// Every room by name; a room disappears with its last member.
#[derive(Default)]
pub struct Rooms {
    rooms: Arc<Mutex<HashMap<String, broadcast::Sender<Message>>>>,
}

/// `/broadcast?room=NAME`: a member of a room.
pub struct Broadcast {
    rooms: Arc<Mutex<HashMap<String, broadcast::Sender<Message>>>>,
    room: String,
    sender: broadcast::Sender<Message>,
    /// Always `Some` until dropped; taken in `Drop` so the count check below sees it gone.
    receiver: Option<broadcast::Receiver<Message>>,
}

impl Broadcast {
    pub fn join(rooms: &Rooms, room: String) -> Broadcast {
        let mut map = rooms.rooms.lock().unwrap_or_else(|p| p.into_inner());
        let sender = map
            .entry(room.clone())
            .or_insert_with(|| broadcast::channel(ROOM_CAPACITY).0)
            .clone();
        let receiver = sender.subscribe();
        Broadcast {
            rooms: rooms.rooms.clone(),
            room,
            sender,
            receiver: Some(receiver),
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
        let _ = self.sender.send(message);
    }

    async fn next_outgoing(&mut self) -> Outgoing {
        let Some(receiver) = self.receiver.as_mut() else {
            return std::future::pending().await;
        };
        match receiver.recv().await {
            Ok(message) => Outgoing::Message(message),
            Err(broadcast::error::RecvError::Lagged(missed)) => Outgoing::Close(
                CloseCode::Again,
                format!("too slow: missed {missed} room messages"),
            ),
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

/// `/ticker?every=D`: `{"seq":N,"ts":EPOCH_MS}` every D, N from 0 for each connection.
pub struct Ticker {
    interval: Interval,
    seq: u64,
}

impl Ticker {
    pub fn new(every: Duration) -> Ticker {
        // Burst keeps ticks on the absolute schedule after a stall: seq stays tied to time.
        let mut interval = tokio::time::interval_at(Instant::now(), every);
        interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
        Ticker { interval, seq: 0 }
    }
}

impl Endpoint for Ticker {
    fn on_message(&mut self, _message: Message, _out: &mut Vec<Message>) {}

    async fn next_outgoing(&mut self) -> Outgoing {
        self.interval.tick().await;
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let text = format!("{{\"seq\":{},\"ts\":{ts}}}", self.seq);
        self.seq += 1;
        Outgoing::Message(Message::text(text))
    }
}
