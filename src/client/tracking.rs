//! What one client has received of every stream it tracks: its own echoes, other clients' events
//! (fan-out) and the server's, each a [`SeqWindow`] keyed by (source, expect), plus the reconnects
//! that a gap can be blamed on.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Instant;

#[cfg(test)]
use crate::metrics::SERVER_SOURCE;
use crate::metrics::gaps::{Arrival, SeqWindow};
use crate::metrics::is_server_source;

struct Stream {
    window: SeqWindow,
    /// The client's reconnect count at the stream's last delivery.
    epoch: u32,
    /// The numbers missing when the stream's first delivery after a reconnect skipped ahead:
    /// what a server that replays after a reconnect sends later fills this gap.
    reconnect_gap: Option<(u64, u64)>,
}

/// One delivery, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub arrival: Arrival,
    /// The client lost its connection (and got it back) since the stream's previous delivery.
    pub during_reconnect: bool,
    /// ... and the server recovered the session on the last of those reconnects.
    pub recovered: bool,
    /// A server stream that numbers per connection started over after a reconnect: what its
    /// previous numbering still missed is lost.
    pub lost_on_restart: u64,
    /// It fills the gap a reconnect opened: the server replayed it (the application's own
    /// replay, or connection state recovery).
    pub replayed: bool,
}

/// A multiply-rotate hasher for the (source, expect) keys: volley assigns both, so the keys need
/// no protection against flooding, and SipHash cost most of a delivery (see BENCHMARKS.md).
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Default)]
pub struct Tracker {
    /// The client's own streams (its echoes), by expect: most clients have one, which does not
    /// need a hash table.
    own: Vec<(u32, Stream)>,
    /// Other clients' and the server's streams, by (source, expect).
    streams: HashMap<(u32, u32), Stream, BuildHasherDefault<KeyHasher>>,
    reconnects: u32,
    last_recovered: bool,
    /// When the connection last came back, if the server recovered the session: events sent
    /// before that and delivered after it were replayed by the server (they could not have
    /// come over the new connection). Also as epoch microseconds, for server timestamps.
    recovered_at: Option<(Instant, u64)>,
    /// When the connection last came back, recovered or not, in epoch microseconds: a server
    /// event whose own timestamp is older was replayed (by recovery or by the application).
    back_us: Option<u64>,
}

/// When an event was sent, as far as the receiver can tell.
#[derive(Debug, Clone, Copy)]
pub enum SentAt {
    /// A stamped event's scheduled send time.
    Instant(Instant),
    /// A server event's timestamp.
    EpochUs(u64),
    Unknown,
}

impl Tracker {
    /// Records a delivery of `seq` from `source` for `expect`. `own`: the client's own stream,
    /// which starts at 0; other streams are tracked from their first delivery.
    pub fn deliver(&mut self, source: u32, expect: u32, seq: u64, own: bool) -> Delivery {
        let reconnects = self.reconnects;
        let mut lost_on_restart = 0;
        let (stream, arrival) = if own {
            let at = match self.own.iter().position(|(e, _)| *e == expect) {
                Some(at) => at,
                None => {
                    let window = SeqWindow::starting_at(0);
                    // Exactly one more: a Vec would otherwise allocate room for four.
                    self.own.reserve_exact(1);
                    self.own.push((
                        expect,
                        Stream {
                            window,
                            epoch: reconnects,
                            reconnect_gap: None,
                        },
                    ));
                    self.own.len() - 1
                }
            };
            let stream = &mut self.own[at].1;
            let arrival = stream.window.receive(seq);
            (stream, arrival)
        } else {
            let mut fresh = false;
            let stream = self.streams.entry((source, expect)).or_insert_with(|| {
                fresh = true;
                Stream {
                    window: SeqWindow::from_first(seq),
                    epoch: reconnects,
                    reconnect_gap: None,
                }
            });
            // A server that numbers each connection from 0 starts over after a reconnect: its
            // first number after the reconnect is back at (or below) the stream's first. (A
            // server that replays what the client missed sends numbers past that one.)
            let restart = !fresh
                && is_server_source(source)
                && stream.epoch != reconnects
                && seq <= stream.window.start()
                && stream.window.is_behind(seq);
            if restart {
                lost_on_restart = stream.window.missing(None);
                stream.window = SeqWindow::from_first(seq);
            }
            let arrival = if fresh || restart {
                Arrival::InOrder
            } else {
                stream.window.receive(seq)
            };
            (stream, arrival)
        };
        let during_reconnect = stream.epoch != reconnects;
        if !matches!(arrival, Arrival::Duplicate | Arrival::Stale) {
            stream.epoch = reconnects;
        }
        let replayed = match arrival {
            Arrival::Gap { expected, count } if during_reconnect => {
                stream.reconnect_gap = Some((expected, expected + count));
                false
            }
            Arrival::Reorder => stream
                .reconnect_gap
                .is_some_and(|(low, high)| (low..high).contains(&seq)),
            _ => false,
        };
        Delivery {
            arrival,
            during_reconnect,
            recovered: during_reconnect && self.last_recovered,
            lost_on_restart,
            replayed,
        }
    }

    /// The connection is back (now); `recovered`: the server recovered the session.
    pub fn reconnected(&mut self, recovered: bool) {
        self.reconnects += 1;
        self.last_recovered = recovered;
        let epoch_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        self.back_us = Some(epoch_us);
        self.recovered_at = recovered.then(|| (Instant::now(), epoch_us));
    }

    /// Whether an event sent at `sent` and delivered now was replayed after a reconnect. A
    /// stamped event counts only when the server recovered the session (a client's own events
    /// that fell due while it was away go out after the reconnect, stamped with their scheduled
    /// times); a server event whose timestamp is older than the reconnect, after any reconnect.
    pub fn refilled(&self, sent: SentAt) -> bool {
        match (self.recovered_at, self.back_us, sent) {
            (Some((back, _)), _, SentAt::Instant(at)) => at < back,
            (_, Some(back_us), SentAt::EpochUs(at)) => at < back_us,
            _ => false,
        }
    }

    /// Every tracked stream of other clients and the server: (source, expect), highest number
    /// received and numbers missing. (A client's own streams are accounted by its sender side.)
    pub fn streams(&self) -> impl Iterator<Item = ((u32, u32), Option<u64>, u64)> + '_ {
        self.streams
            .iter()
            .map(|(key, s)| (*key, s.window.max_seen(), s.window.missing(None)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_stream_numbered_per_connection_starts_over_after_a_reconnect() {
        let mut t = Tracker::default();
        for seq in [0, 1, 2, 4, 5] {
            t.deliver(SERVER_SOURCE, 0, seq, false);
        }
        t.reconnected(false);
        let d = t.deliver(SERVER_SOURCE, 0, 0, false);
        assert_eq!((d.arrival, d.lost_on_restart), (Arrival::InOrder, 1));
        assert!(d.during_reconnect);
        assert_eq!(
            t.deliver(SERVER_SOURCE, 0, 1, false).arrival,
            Arrival::InOrder
        );
        assert_eq!(
            t.deliver(SERVER_SOURCE, 0, 1, false).arrival,
            Arrival::Duplicate
        );
    }

    #[test]
    fn a_replay_after_a_reconnect_fills_the_gap_it_opened() {
        let mut t = Tracker::default();
        for seq in [0, 1, 2] {
            t.deliver(SERVER_SOURCE, 0, seq, false);
        }
        t.reconnected(false);
        // Live again at 6: 3..6 were sent while the client was away.
        let first = t.deliver(SERVER_SOURCE, 0, 6, false);
        assert_eq!(
            (first.arrival, first.replayed),
            (
                Arrival::Gap {
                    expected: 3,
                    count: 3
                },
                false
            )
        );
        // The server replays them: each fills the gap, none is out of order.
        for seq in [3, 4, 5] {
            let d = t.deliver(SERVER_SOURCE, 0, seq, false);
            assert_eq!((d.arrival, d.replayed), (Arrival::Reorder, true), "{seq}");
        }
        // Sent again though already received: a duplicate.
        let again = t.deliver(SERVER_SOURCE, 0, 4, false);
        assert_eq!((again.arrival, again.replayed), (Arrival::Duplicate, false));
        // A gap that opened without a reconnect is filled by an ordinary late arrival.
        t.deliver(SERVER_SOURCE, 0, 9, false);
        let late = t.deliver(SERVER_SOURCE, 0, 7, false);
        assert_eq!((late.arrival, late.replayed), (Arrival::Reorder, false));
        // A replay of what was received already, first after a reconnect: a duplicate, not a
        // stream that starts over.
        t.reconnected(false);
        let first_again = t.deliver(SERVER_SOURCE, 0, 1, false);
        assert_eq!(
            (first_again.arrival, first_again.lost_on_restart),
            (Arrival::Duplicate, 0)
        );
    }

    #[test]
    fn gaps_across_a_reconnect_are_blamed_on_it() {
        let mut t = Tracker::default();
        assert_eq!(t.deliver(7, 0, 10, false).arrival, Arrival::InOrder);
        assert!(!t.deliver(7, 0, 11, false).during_reconnect);
        t.reconnected(true);
        let d = t.deliver(7, 0, 15, false);
        assert_eq!(
            d.arrival,
            Arrival::Gap {
                expected: 12,
                count: 3
            }
        );
        assert!(d.during_reconnect && d.recovered);
        assert!(!t.deliver(7, 0, 16, false).during_reconnect);
        // Own streams start at 0.
        assert_eq!(
            t.deliver(1, 1, 2, true).arrival,
            Arrival::Gap {
                expected: 0,
                count: 2
            }
        );
        let streams: Vec<_> = t.streams().collect();
        assert_eq!(streams.len(), 1, "own streams are not listed");
    }
}
