//! The delay line behind `volley serve --delay`: one thread that holds every echo for exactly the
//! configured time. tokio's timers round up to whole milliseconds, which would add up to 1 ms to a
//! calibration delay; a dedicated thread sleeping to the deadline is accurate to tens of µs.
//!
//! What is held is a reply to run at the deadline: a raw WebSocket echo handed back to its
//! connection, or a Socket.IO emit or ack (socketioxide's sends do not need the runtime).

use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;
use tokio_tungstenite::tungstenite::Message;

/// Messages held at once. All share one delay, so the queue is in deadline order; when it is full
/// (over 65,536 echoes in flight) the echo is sent without delay and a warning logged, rather than
/// blocking the connection's runtime thread.
const CAPACITY: usize = 65_536;

/// A reply to run when it is due.
type Reply = Box<dyn FnOnce() + Send>;

type Held = (Instant, Reply);

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
                while let Ok((due, reply)) = held.recv() {
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    reply();
                }
            })
            .expect("cannot start the delay-line thread");
        DelayLine { queue, delay }
    }

    /// Schedules `message` to be handed to `reply_to` after the delay.
    pub fn submit(&self, message: Message, reply_to: UnboundedSender<Message>) {
        // The connection may be gone by then; its echo is then simply dropped.
        self.run_later(move || {
            let _ = reply_to.send(message);
        });
    }

    /// Runs `reply` on the delay-line thread after the delay. It must be quick: every later reply
    /// waits for it.
    pub fn run_later(&self, reply: impl FnOnce() + Send + 'static) {
        let due = Instant::now() + self.delay;
        match self.queue.try_send((due, Box::new(reply))) {
            Ok(()) => {}
            Err(TrySendError::Full((_, reply))) => {
                tracing::warn!("delay line full: replying without delay");
                reply();
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}
