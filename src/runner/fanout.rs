//! The end of a group-to-group expect, which no single client can see: what each emitter sent
//! against how far each receiver got. A receiver that was still connected when emitting ended was
//! due everything its emitters sent after it joined; what it never got is lost (the tail of a
//! stream, or a whole stream that never reached it).

use std::collections::HashMap;
use std::time::Duration;

use crate::metrics::{EmitterEnd, FanoutEnds, GapKind, GapRow};

/// Lost deliveries found at the end: per expect, and the gaps.csv rows that say where.
/// `settle`: per expect, how long after a receiver joined an emitter's events are surely due to it
/// (a join takes effect on the server some time after the client sent it).
pub fn tails(ends: &FanoutEnds, settle: &[Duration], at: Duration) -> (Vec<u64>, Vec<GapRow>) {
    let mut lost = vec![0u64; settle.len()];
    let mut rows = Vec::new();
    let mut emitters: HashMap<u32, Vec<&EmitterEnd>> = HashMap::new();
    for e in ends.emitters.iter().filter(|e| e.sent > 0) {
        emitters.entry(e.expect).or_default().push(e);
    }
    let reached: HashMap<(u32, u32, u32), u64> = ends
        .streams
        .iter()
        .map(|s| ((s.expect, s.receiver, s.emitter), s.max_seen))
        .collect();
    for receiver in ends.receivers.iter().filter(|r| r.connected_at_end) {
        let Some(emitters) = emitters.get(&receiver.expect) else {
            continue;
        };
        for emitter in emitters {
            let last = emitter.sent - 1;
            let key = (receiver.expect, receiver.receiver, emitter.emitter);
            let (from, count) = match reached.get(&key) {
                Some(&max_seen) => (max_seen.saturating_add(1), last.saturating_sub(max_seen)),
                // A sender is not charged for its own events: many servers do not send a
                // broadcast back to its sender.
                None if receiver.receiver == emitter.emitter => continue,
                None => {
                    let settle_ns = settle
                        .get(receiver.expect as usize)
                        .map_or(0, |d| d.as_nanos() as u64);
                    let due_from = receiver.ready_ns + settle_ns;
                    let first = if due_from <= emitter.first_ns {
                        0
                    } else {
                        ((due_from - emitter.first_ns) as f64 / emitter.interval_ns).ceil() as u64
                    };
                    (first, emitter.sent.saturating_sub(first))
                }
            };
            if count == 0 {
                continue;
            }
            if let Some(total) = lost.get_mut(receiver.expect as usize) {
                *total += count;
            }
            rows.push(GapRow {
                at,
                receiver: receiver.receiver,
                expect: receiver.expect,
                source: emitter.emitter,
                key: None,
                expected: Some(from),
                got: None,
                count,
                kind: GapKind::Lost,
                during_reconnect: false,
                recovered: false,
            });
        }
    }
    (lost, rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{ReceiverEnd, StreamEnd};

    fn emitter(emitter: u32, sent: u64) -> EmitterEnd {
        EmitterEnd {
            expect: 0,
            emitter,
            sent,
            first_ns: 0,
            interval_ns: 100e6,
        }
    }

    fn receiver(receiver: u32, ready_ms: u64, connected_at_end: bool) -> ReceiverEnd {
        ReceiverEnd {
            expect: 0,
            receiver,
            ready_ns: ready_ms * 1_000_000,
            connected_at_end,
        }
    }

    #[test]
    fn tails_and_unreached_streams_are_lost() {
        let ends = FanoutEnds {
            emitters: vec![emitter(1, 50), emitter(2, 50), emitter(3, 0)],
            receivers: vec![
                receiver(10, 0, true),
                receiver(11, 1000, true),
                receiver(12, 0, false),
            ],
            streams: vec![
                // Receiver 10 got 1 to the end, 2 up to 44: six lost at the tail.
                StreamEnd {
                    expect: 0,
                    receiver: 10,
                    emitter: 1,
                    max_seen: 49,
                },
                StreamEnd {
                    expect: 0,
                    receiver: 10,
                    emitter: 2,
                    max_seen: 43,
                },
                // Receiver 11 joined at 1 s and got 1 but never 2.
                StreamEnd {
                    expect: 0,
                    receiver: 11,
                    emitter: 1,
                    max_seen: 49,
                },
            ],
        };
        let (lost, rows) = tails(&ends, &[Duration::from_millis(500)], Duration::ZERO);
        // 6 from 10's tail; from 11: emitter 2's events due from 1.5 s (every 100 ms): 15..=49.
        assert_eq!(lost, vec![6 + 35]);
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].expected, rows[0].count), (Some(44), 6));
        assert_eq!(
            (rows[1].receiver, rows[1].expected, rows[1].count),
            (11, Some(15), 35)
        );
    }

    #[test]
    fn an_emitter_in_another_shard_is_never_charged_as_lost() {
        // Receiver 10 heard emitter 7 (another shard's: this shard has no EmitterEnd for it) up
        // to 3, and never heard emitter 8 (also another shard's); only emitter 1 is local.
        let ends = FanoutEnds {
            emitters: vec![emitter(1, 5)],
            receivers: vec![receiver(10, 0, true)],
            streams: vec![
                StreamEnd {
                    expect: 0,
                    receiver: 10,
                    emitter: 1,
                    max_seen: 4,
                },
                StreamEnd {
                    expect: 0,
                    receiver: 10,
                    emitter: 7,
                    max_seen: 3,
                },
            ],
        };
        let (lost, rows) = tails(&ends, &[Duration::ZERO], Duration::ZERO);
        assert_eq!(lost, vec![0]);
        assert!(rows.is_empty());
    }
}
