//! The delay line behind `volley serve --delay`: one thread that holds every echo for exactly the
//! configured time. tokio's timers round up to whole milliseconds, which would add up to 1 ms to a
//! calibration delay; a dedicated thread sleeping to the deadline is accurate to tens of µs.

use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;
use tokio_tungstenite::tungstenite::Message;

/// Messages held at once. All share one delay, so the queue is in deadline order; when it is full
/// (over 65,536 echoes in flight) the echo is sent without delay and a warning logged, rather than
/// blocking the connection's runtime thread.
const CAPACITY: usize = 65_536;

type Held = (Instant, Message, UnboundedSender<Message>);

#[derive(Clone)]
pub struct DelayLine {
    queue: SyncSender<Held>,
    delay: Duration,
}

impl DelayLine {
    pub fn start(delay: Duration) -> DelayLine {
        let (queue, held) = sync_channel::<Held>(CAPACITY);
        std::thread::Builder::new()
            .name("volley-delay".into())
            .spawn(move || {
                // Ends when every connection and the server have dropped their senders.
                while let Ok((due, message, reply_to)) = held.recv() {
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    // The connection may be gone; its echo is then simply dropped.
                    let _ = reply_to.send(message);
                }
            })
            .expect("cannot start the delay-line thread");
        DelayLine { queue, delay }
    }

    /// Schedules `message` to be handed to `reply_to` after the delay.
    pub fn submit(&self, message: Message, reply_to: UnboundedSender<Message>) {
        let due = Instant::now() + self.delay;
        match self.queue.try_send((due, message, reply_to)) {
            Ok(()) => {}
            Err(TrySendError::Full((_, message, reply_to))) => {
                tracing::warn!("delay line full: echoing without delay");
                let _ = reply_to.send(message);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}
