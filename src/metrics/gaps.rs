//! Delivery tracking of one stream at one receiver: which sequence numbers arrived, in a sliding
//! bitmap window rather than a set of every number, so a receiver of a thousand streams holds a few
//! hundred kilobytes whatever the run's length.
//!
//! The window starts at `base`, the lowest number not received yet (everything below it arrived,
//! or was given up), and covers [`WINDOW`] numbers. An arrival far enough ahead to overrun the
//! window gives up the oldest missing numbers: they count as lost at once.

/// Sequence numbers covered above `base`.
pub const WINDOW: u64 = 512;
const WORDS: usize = (WINDOW / 64) as usize;

/// What one arrival was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The next expected number (or the first of a stream tracked from its first arrival).
    InOrder,
    /// Ahead of the next expected: `count` numbers from `expected` are missing for now.
    Gap { expected: u64, count: u64 },
    /// Fills a gap: it arrived after a higher number.
    Reorder,
    /// Already received.
    Duplicate,
    /// Older than the window: given up as lost already, or from before the stream's first
    /// arrival. Not counted again.
    Stale,
}

/// The state of one stream at one receiver.
#[derive(Debug, Clone)]
pub struct SeqWindow {
    /// The first number of the stream (known, or its first arrival).
    start: u64,
    /// Lowest number not received yet.
    base: u64,
    /// Bit i: number `base + i` received. Bit 0 is always clear.
    bits: [u64; WORDS],
    /// Highest number received, if any.
    max_seen: Option<u64>,
    /// Numbers given up because the window moved past them while missing.
    given_up: u64,
}

impl SeqWindow {
    /// A stream whose first number is known (a client's own events start at 0).
    pub fn starting_at(first: u64) -> SeqWindow {
        SeqWindow {
            start: first,
            base: first,
            bits: [0; WORDS],
            max_seen: None,
            given_up: 0,
        }
    }

    /// A stream tracked from its first arrival (what came before cannot be told apart from what
    /// was never meant for this receiver).
    pub fn from_first(seq: u64) -> SeqWindow {
        let mut window = SeqWindow::starting_at(seq);
        window.receive(seq);
        window
    }

    /// The lowest number that can still be told apart as received: the stream's start, unless
    /// numbers were given up, in which case nothing below `base` can.
    fn first_in_window(&self) -> u64 {
        if self.given_up > 0 {
            self.base
        } else {
            self.start
        }
    }

    /// Whether `seq` is below everything this window can still place (a stream that started
    /// over, or a very late arrival).
    pub fn is_behind(&self, seq: u64) -> bool {
        seq < self.base && self.max_seen.is_some_and(|max| seq < max)
    }

    /// The first number of the stream.
    pub fn start(&self) -> u64 {
        self.start
    }

    pub fn max_seen(&self) -> Option<u64> {
        self.max_seen
    }

    /// Numbers given up so far (missing while the window moved past them).
    pub fn given_up(&self) -> u64 {
        self.given_up
    }

    /// Records an arrival.
    pub fn receive(&mut self, seq: u64) -> Arrival {
        if seq < self.base {
            // Below `base` everything arrived, was given up, or came before the stream's start.
            return match self.max_seen {
                Some(max) if seq <= max && seq >= self.first_in_window() => Arrival::Duplicate,
                _ => Arrival::Stale,
            };
        }
        // Numbers come from the network: no arithmetic here may overflow.
        if seq - self.base >= WINDOW {
            let new_base = seq - WINDOW + 1;
            self.advance_to(new_base);
        }
        let offset = (seq - self.base) as usize;
        let (word, bit) = (offset / 64, offset % 64);
        if self.bits[word] & (1 << bit) != 0 {
            return Arrival::Duplicate;
        }
        self.bits[word] |= 1 << bit;
        let arrival = match self.max_seen {
            Some(max) if seq < max => Arrival::Reorder,
            Some(max) if seq > max.saturating_add(1) => Arrival::Gap {
                expected: max + 1,
                count: seq - max - 1,
            },
            // The first arrival of a stream with a known start may be ahead of it.
            None if seq > self.base => Arrival::Gap {
                expected: self.base,
                count: seq - self.base,
            },
            _ => Arrival::InOrder,
        };
        if self.max_seen.is_none_or(|max| seq > max) {
            self.max_seen = Some(seq);
        }
        self.skip_received();
        arrival
    }

    /// Numbers still missing (given up ones included) up to `last` (the stream's last number,
    /// when known), or up to the highest received.
    pub fn missing(&self, last: Option<u64>) -> u64 {
        let top = match (self.max_seen, last) {
            (Some(max), Some(last)) => max.max(last),
            (Some(max), None) => max,
            (None, Some(last)) => last,
            (None, None) => return self.given_up,
        };
        if top < self.base {
            return self.given_up;
        }
        let span = top - self.base + 1;
        let in_window = span.min(WINDOW);
        let received: u64 = (0..in_window)
            .filter(|&i| self.bits[(i / 64) as usize] & (1 << (i % 64)) != 0)
            .count() as u64;
        self.given_up + span - received
    }

    /// Moves `base` to `new_base`, giving up what was missing below it.
    fn advance_to(&mut self, new_base: u64) {
        let shift = new_base - self.base;
        let covered = shift.min(WINDOW);
        let received: u64 = (0..covered)
            .filter(|&i| self.bits[(i / 64) as usize] & (1 << (i % 64)) != 0)
            .count() as u64;
        self.given_up = self.given_up.saturating_add(shift - received);
        self.shift_right(shift);
        self.base = new_base;
        self.skip_received();
    }

    /// Moves `base` past the numbers received just above it.
    fn skip_received(&mut self) {
        loop {
            let run = self.bits[0].trailing_ones() as u64;
            if run == 0 {
                return;
            }
            self.shift_right(run);
            self.base = self.base.saturating_add(run);
            if self.base == u64::MAX {
                return;
            }
        }
    }

    fn shift_right(&mut self, shift: u64) {
        if shift >= WINDOW {
            self.bits = [0; WORDS];
            return;
        }
        let (words, bits) = ((shift / 64) as usize, (shift % 64) as u32);
        for i in 0..WORDS {
            let low = self.bits.get(i + words).copied().unwrap_or(0);
            let high = self.bits.get(i + words + 1).copied().unwrap_or(0);
            self.bits[i] = if bits == 0 {
                low
            } else {
                (low >> bits) | (high << (64 - bits))
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(window: &mut SeqWindow, arrivals: &[u64]) -> (u64, u64, u64, u64) {
        let (mut gaps, mut reorders, mut dups, mut in_order) = (0, 0, 0, 0);
        for &seq in arrivals {
            match window.receive(seq) {
                Arrival::InOrder => in_order += 1,
                Arrival::Gap { count, .. } => gaps += count,
                Arrival::Reorder => reorders += 1,
                Arrival::Duplicate => dups += 1,
                Arrival::Stale => {}
            }
        }
        (in_order, gaps, reorders, dups)
    }

    #[test]
    fn in_order_streams_have_nothing_missing() {
        let mut w = SeqWindow::starting_at(0);
        let seqs: Vec<u64> = (0..10_000).collect();
        assert_eq!(counts(&mut w, &seqs), (10_000, 0, 0, 0));
        assert_eq!(w.missing(Some(9_999)), 0);
        assert_eq!(w.missing(Some(10_001)), 2, "the tail");
    }

    #[test]
    fn gaps_reorders_and_duplicates_are_told_apart() {
        let mut w = SeqWindow::starting_at(0);
        assert_eq!(w.receive(0), Arrival::InOrder);
        assert_eq!(
            w.receive(3),
            Arrival::Gap {
                expected: 1,
                count: 2
            }
        );
        assert_eq!(w.receive(1), Arrival::Reorder);
        assert_eq!(w.receive(3), Arrival::Duplicate);
        assert_eq!(w.receive(0), Arrival::Duplicate);
        assert_eq!(w.missing(None), 1, "2 is still missing");
        assert_eq!(w.receive(2), Arrival::Reorder);
        assert_eq!(w.missing(None), 0);
        // A known start: the first arrival after it is a gap.
        let mut late = SeqWindow::starting_at(0);
        assert_eq!(
            late.receive(2),
            Arrival::Gap {
                expected: 0,
                count: 2
            }
        );
        // Tracked from the first arrival: nothing before it is missing, and a number from
        // before it is not a duplicate.
        let mut first = SeqWindow::from_first(500);
        assert_eq!(first.missing(None), 0);
        assert_eq!(first.receive(499), Arrival::Stale);
        assert_eq!(first.receive(500), Arrival::Duplicate);
    }

    #[test]
    fn overrunning_the_window_gives_up_the_oldest_missing() {
        let mut w = SeqWindow::starting_at(0);
        w.receive(0);
        w.receive(2);
        // 1 is missing; an arrival a full window ahead gives it (and everything between) up.
        w.receive(WINDOW + 5);
        // The window moves from base 1 to base 6: 1, 3, 4 and 5 are given up (2 had arrived).
        assert_eq!(w.given_up(), 4);
        assert_eq!(
            w.missing(None),
            4 + WINDOW - 1,
            "and 6..=516 missing, 517 arrived"
        );
        assert_eq!(w.receive(1), Arrival::Stale, "given up: not counted again");
        assert_eq!(
            w.receive(2),
            Arrival::Stale,
            "below the window: cannot be told apart"
        );
    }

    #[test]
    fn numbers_near_the_top_of_u64_do_not_overflow() {
        let top = u64::MAX - 1;
        let mut w = SeqWindow::from_first(top - 3);
        assert_eq!(
            w.receive(top - 1),
            Arrival::Gap {
                expected: top - 2,
                count: 1
            }
        );
        assert_eq!(w.receive(top), Arrival::InOrder);
        assert_eq!(w.receive(top - 2), Arrival::Reorder);
        assert_eq!(w.missing(None), 0);
        // u64::MAX itself is accepted without overflow (the window cannot move past it).
        assert_eq!(w.receive(u64::MAX), Arrival::InOrder);
        let mut jump = SeqWindow::starting_at(0);
        jump.receive(0);
        assert!(matches!(jump.receive(u64::MAX), Arrival::Gap { .. }));
        assert_eq!(jump.receive(1), Arrival::Stale);
        assert!(jump.missing(None) > 0);
    }

    /// Random streams: a permutation of 0..n with drops and duplicates, arriving at most a few
    /// places out of order; the counts must match the truth exactly.
    #[test]
    fn random_drops_duplicates_and_reorders_are_counted_exactly() {
        for seed in 0..200 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let n = rng.u64(1..3_000);
            let mut sent: Vec<u64> = Vec::new();
            let mut dropped = 0;
            let mut duplicated = 0;
            for seq in 0..n {
                if rng.u8(..) < 20 {
                    dropped += 1;
                    continue;
                }
                sent.push(seq);
                if rng.u8(..) < 20 {
                    sent.push(seq);
                    duplicated += 1;
                }
            }
            // Local shuffles: swap neighbours within a distance of 8.
            for i in 0..sent.len() {
                let j = (i + rng.usize(0..8)).min(sent.len() - 1);
                sent.swap(i, j);
            }
            let mut w = SeqWindow::starting_at(0);
            let (_, _, _, dups) = counts(&mut w, &sent);
            assert_eq!(dups, duplicated, "seed {seed}");
            assert_eq!(w.missing(Some(n - 1)), dropped, "seed {seed}");
        }
    }
}
