//! Deterministic delivery faults (`volley serve --drop-every N --dup-every N --reorder-every N`), so
//! that a test of volley's delivery-gap tracker knows exactly what was lost, duplicated and
//! reordered, with nothing left to chance.
//!
//! Faults apply to fan-out deliveries only: raw WebSocket `/broadcast` (each delivery of a message to
//! each member of the room, the sender included) and `/ticker`, Socket.IO `chat` (to each member of
//! the sender's rooms) and `tick` (to each member of room `ticker`). `/echo`, Socket.IO `echo` and
//! `ack`, and the acks of `join`, `leave` and `chat` are never faulted.
//!
//! # Streams and numbering
//! Faults count per *stream*: the deliveries to one receiving connection from one source. For
//! `/broadcast` and `chat` the source is the sending connection (Socket.IO: the sending socket), so
//! a room of R receivers and S senders has R×S streams, each counting on its own; for `/ticker` and
//! `tick` the source is the ticker, one stream per receiving connection (Socket.IO: per socket).
//! Within a stream the deliveries are numbered 1, 2, 3, ... in the order the server makes them
//! (a sender's messages in the order it sent them, ticks in time order); a fault changes what goes
//! out, never the numbering, nor the message itself (a tick keeps its `seq`).
//!
//! # The rules, for delivery k of a stream
//! - `drop_every` N: k is not sent when k % N == 0;
//! - `dup_every` N: k is sent twice, back to back, when k % N == 0;
//! - `reorder_every` N: when k % N == 0, k is held back and sent right after whatever delivery
//!   k + 1 of the same stream turns into (after k + 1, or after both copies of a duplicated k + 1,
//!   or in its place when k + 1 is dropped): the receiver sees k + 1, then k.
//!
//! When several rules hit the same k, drop comes first (a dropped delivery is neither duplicated
//! nor held), then dup, then reorder (a duplicated delivery is held with both its copies). Every N
//! is at least 2, so a delivery that releases a held one is never held itself.
//!
//! # A held delivery at the end of its stream
//! A held delivery goes out only with the next delivery of its own stream: never on a timer, nor
//! with the deliveries of other streams. When its stream has no next delivery (the sender stopped
//! sending or left, the connection closed, the server stopped), it is discarded and never sent,
//! not even before the close frame. That is what a client can be told for sure on both transports
//! whichever side closes (a client that closes first cannot be written to any more), so the truth
//! is one rule: with `reorder_every` N, a stream whose last delivery k has k % N == 0 loses it.
//!
//! # Where the counters live
//! In the receiving connection's state: a map from source to stream inside each raw WebSocket
//! session, and for Socket.IO a table keyed by the receiver's socket id that forgets a socket when
//! it disconnects (and the streams whose sender disconnected). Memory grows with the streams
//! actually used; with no switch set none of this exists and fan-out takes the fast path.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// The fault switches; all `None` (the default) is a server that delivers faithfully.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Delivery k of every stream is not sent when k % N == 0 (N ≥ 2).
    pub drop_every: Option<u64>,
    /// Delivery k of every stream is sent twice, back to back, when k % N == 0 (N ≥ 2).
    pub dup_every: Option<u64>,
    /// Delivery k of every stream is sent right after delivery k + 1 when k % N == 0 (N ≥ 2); at
    /// the end of a stream it is discarded (see the module docs).
    pub reorder_every: Option<u64>,
}

impl Faults {
    /// Whether any switch is set.
    pub fn any(&self) -> bool {
        self.drop_every.is_some() || self.dup_every.is_some() || self.reorder_every.is_some()
    }

    /// Every N must be at least 2: 0 means nothing, and a reorder of every delivery would hold each
    /// one until the next, which is a delay, not a reordering.
    pub fn check(&self) -> Result<(), String> {
        for (name, every) in [
            ("drop_every", self.drop_every),
            ("dup_every", self.dup_every),
            ("reorder_every", self.reorder_every),
        ] {
            if let Some(n) = every
                && n < 2
            {
                return Err(format!("{name} is {n}: it must be at least 2"));
            }
        }
        Ok(())
    }
}

/// Whether a switch set to `every` hits delivery `k`.
fn hits(every: Option<u64>, k: u64) -> bool {
    every.is_some_and(|n| n != 0 && k % n == 0)
}

/// The fault state of one stream: how many deliveries it has had, and the one held back.
#[derive(Debug)]
pub struct FaultStream<T> {
    deliveries: u64,
    /// A held delivery and how many copies of it go out when it is released (1, or 2 if duplicated).
    held: Option<(T, u8)>,
}

impl<T> Default for FaultStream<T> {
    fn default() -> Self {
        FaultStream {
            deliveries: 0,
            held: None,
        }
    }
}

impl<T: Clone> FaultStream<T> {
    /// Counts `item` as this stream's next delivery and calls `send` for each message that goes out
    /// now, in order: none, it, it twice, and/or the one held back before.
    pub fn deliver(&mut self, faults: &Faults, item: &T, mut send: impl FnMut(&T)) {
        self.deliveries += 1;
        let k = self.deliveries;
        let released = self.held.take();
        if !hits(faults.drop_every, k) {
            let copies = if hits(faults.dup_every, k) { 2 } else { 1 };
            if hits(faults.reorder_every, k) {
                self.held = Some((item.clone(), copies));
            } else {
                for _ in 0..copies {
                    send(item);
                }
            }
        }
        if let Some((held, copies)) = released {
            for _ in 0..copies {
                send(&held);
            }
        }
    }
}

/// The fault state of one raw WebSocket connection: a stream per source, and the messages that the
/// faults let out, in order, until the session takes them.
#[derive(Debug)]
pub struct FaultedInbox<K, T> {
    faults: Faults,
    streams: HashMap<K, FaultStream<T>>,
    ready: VecDeque<T>,
}

impl<K: Hash + Eq, T: Clone> FaultedInbox<K, T> {
    pub fn new(faults: Faults) -> Self {
        FaultedInbox {
            faults,
            streams: HashMap::new(),
            ready: VecDeque::new(),
        }
    }

    /// The next delivery of the stream from `source`.
    pub fn deliver(&mut self, source: K, item: T) {
        let ready = &mut self.ready;
        self.streams
            .entry(source)
            .or_default()
            .deliver(&self.faults, &item, |out| ready.push_back(out.clone()));
    }

    /// The next message to send, if the faults let one out.
    pub fn next_ready(&mut self) -> Option<T> {
        self.ready.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a receiver sees of deliveries 1..=n of one stream.
    fn seen(faults: Faults, n: u64) -> Vec<u64> {
        let mut stream = FaultStream::default();
        let mut out = Vec::new();
        for k in 1..=n {
            stream.deliver(&faults, &k, |&k| out.push(k));
        }
        out
    }

    fn faults(drop: Option<u64>, dup: Option<u64>, reorder: Option<u64>) -> Faults {
        Faults {
            drop_every: drop,
            dup_every: dup,
            reorder_every: reorder,
        }
    }

    #[test]
    fn no_switch_delivers_everything_in_order() {
        assert!(!Faults::default().any());
        assert_eq!(seen(Faults::default(), 5), [1, 2, 3, 4, 5]);
    }

    #[test]
    fn drop_every_3_skips_the_multiples_of_3() {
        assert_eq!(
            seen(faults(Some(3), None, None), 10),
            [1, 2, 4, 5, 7, 8, 10]
        );
    }

    #[test]
    fn dup_every_3_sends_the_multiples_of_3_twice() {
        assert_eq!(
            seen(faults(None, Some(3), None), 10),
            [1, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9, 9, 10]
        );
    }

    #[test]
    fn reorder_every_3_swaps_each_multiple_of_3_with_its_successor() {
        assert_eq!(
            seen(faults(None, None, Some(3)), 10),
            [1, 2, 4, 3, 5, 7, 6, 8, 10, 9]
        );
    }

    #[test]
    fn a_held_delivery_without_successor_is_never_sent() {
        assert_eq!(
            seen(faults(None, None, Some(3)), 9),
            [1, 2, 4, 3, 5, 7, 6, 8]
        );
    }

    #[test]
    fn drop_wins_over_dup_and_reorder() {
        // 6 is hit by all three: dropped, so neither duplicated nor held.
        assert_eq!(
            seen(faults(Some(6), Some(2), Some(3)), 7),
            [1, 2, 2, 4, 4, 3, 5, 7]
        );
    }

    #[test]
    fn a_duplicated_delivery_is_held_with_both_copies() {
        assert_eq!(
            seen(faults(None, Some(2), Some(2)), 5),
            [1, 3, 2, 2, 5, 4, 4]
        );
    }

    #[test]
    fn a_held_delivery_follows_a_duplicated_successor_or_takes_a_dropped_ones_place() {
        assert_eq!(seen(faults(None, Some(4), Some(3)), 5), [1, 2, 4, 4, 3, 5]);
        assert_eq!(seen(faults(Some(4), None, Some(3)), 5), [1, 2, 3, 5]);
    }

    #[test]
    fn every_n_must_be_at_least_2() {
        assert!(faults(Some(2), Some(2), Some(2)).check().is_ok());
        let err = faults(None, None, Some(1)).check().unwrap_err();
        assert!(err.contains("reorder_every is 1"), "{err}");
        assert!(faults(Some(0), None, None).check().is_err());
    }

    #[test]
    fn an_inbox_counts_each_source_apart() {
        let mut inbox = FaultedInbox::new(faults(Some(2), None, None));
        for k in 1..=3 {
            inbox.deliver('a', ('a', k));
            inbox.deliver('b', ('b', k));
        }
        let out: Vec<_> = std::iter::from_fn(|| inbox.next_ready()).collect();
        assert_eq!(out, [('a', 1), ('b', 1), ('a', 3), ('b', 3)]);
    }
}
