//! Socket.IO events awaiting their acks, so that an ACK can say how long it took.
//!
//! A book belongs to one Engine.IO session when the session id is known (a long-polling session's
//! event may go out in a POST on one connection and its ack come back in a GET on another, or
//! over the WebSocket after the upgrade), otherwise to one connection. It holds at most
//! [`MAX_PENDING`] events; past that the oldest are forgotten.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::record::Dir;

/// Events awaiting an ack, per book.
pub const MAX_PENDING: usize = 4096;

type Key = (Dir, String, u64);

#[derive(Debug, Default)]
pub struct AckBook {
    pending: HashMap<Key, Instant>,
    /// Insertion order, for forgetting the oldest (may hold keys already answered).
    order: VecDeque<Key>,
}

pub type SharedAckBook = Arc<Mutex<AckBook>>;

impl AckBook {
    /// An event sent in `dir` on namespace `nsp` asked for ack `id` at `at`.
    pub fn asked(&mut self, dir: Dir, nsp: &str, id: u64, at: Instant) {
        while self.pending.len() >= MAX_PENDING {
            match self.order.pop_front() {
                Some(old) => {
                    self.pending.remove(&old);
                }
                None => break,
            }
        }
        let key = (dir, nsp.to_string(), id);
        self.order.push_back(key.clone());
        self.pending.insert(key, at);
        // Answered keys linger in `order`; keep it from growing past twice the bound.
        if self.order.len() > 2 * MAX_PENDING {
            let pending = &self.pending;
            self.order.retain(|k| pending.contains_key(k));
        }
    }

    /// An ack travelling in `dir` answers the event sent the other way, if it is known.
    pub fn answered(&mut self, dir: Dir, nsp: &str, id: u64) -> Option<Instant> {
        self.pending.remove(&(dir.other(), nsp.to_string(), id))
    }
}

/// The books of the Engine.IO sessions an inspector has seen, by session id.
#[derive(Debug, Default)]
pub struct SessionBooks {
    books: Mutex<HashMap<String, (SharedAckBook, Instant)>>,
}

/// Sessions remembered at most; past that, the least recently used are forgotten.
const MAX_SESSIONS: usize = 10_000;

impl SessionBooks {
    /// The book of session `sid`, created on first use.
    pub fn book(&self, sid: &str) -> SharedAckBook {
        let mut books = self.books.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if books.len() >= MAX_SESSIONS && !books.contains_key(sid) {
            let oldest = books
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                books.remove(&oldest);
            }
        }
        let entry = books
            .entry(sid.to_string())
            .or_insert_with(|| (SharedAckBook::default(), now));
        entry.1 = now;
        entry.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ack_answers_the_event_sent_the_other_way_once() {
        let mut book = AckBook::default();
        let t = Instant::now();
        book.asked(Dir::C2s, "/", 1, t);
        assert_eq!(book.answered(Dir::C2s, "/", 1), None, "same direction");
        assert_eq!(
            book.answered(Dir::S2c, "/admin", 1),
            None,
            "other namespace"
        );
        assert_eq!(book.answered(Dir::S2c, "/", 1), Some(t));
        assert_eq!(book.answered(Dir::S2c, "/", 1), None);
    }

    #[test]
    fn the_oldest_events_are_forgotten_past_the_bound() {
        let mut book = AckBook::default();
        let t = Instant::now();
        for id in 0..(MAX_PENDING as u64 + 10) {
            book.asked(Dir::C2s, "/", id, t);
        }
        assert_eq!(book.answered(Dir::S2c, "/", 0), None);
        assert!(
            book.answered(Dir::S2c, "/", MAX_PENDING as u64 + 9)
                .is_some()
        );
        assert!(book.order.len() <= 2 * MAX_PENDING);
    }

    #[test]
    fn a_session_keeps_one_book_across_connections() {
        let books = SessionBooks::default();
        let a = books.book("sid1");
        a.lock().unwrap().asked(Dir::C2s, "/", 3, Instant::now());
        assert!(
            books
                .book("sid1")
                .lock()
                .unwrap()
                .answered(Dir::S2c, "/", 3)
                .is_some()
        );
        assert!(
            books
                .book("sid2")
                .lock()
                .unwrap()
                .answered(Dir::S2c, "/", 3)
                .is_none()
        );
    }
}
