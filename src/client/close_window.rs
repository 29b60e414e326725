//! How many closes a worker thread has waiting for the server's answer at once. At the end of a
//! run every client closes at the same moment; sent all at once, the close frames queue at the
//! server, and a close that waits behind thousands of others for longer than the close timeout
//! is counted as 1006 although the server answers it a moment later. (100,000 idle connections
//! closing on this 2-core machine, clients and servers on the same cores, counted 62 % of them
//! so over raw WebSocket and 77 % over Socket.IO.) So a
//! worker keeps at most [`CloseWindow::LIMIT`] closes in flight, the others wait their turn in
//! order, and each close's timeout runs from when it is sent: it measures the server's answer to
//! that close, not the queue of all the others.
//!
//! Even so, closes in flight wait behind one another at a busy server: the first of a burst are
//! answered at once, the last after the server worked through the others. So a close times out
//! only when the server has answered none of this worker's closes for the close timeout (it is
//! not answering, rather than busy), and at most [`CloseWindow::PATIENCE`] close timeouts after
//! it was sent (a server answering a trickle must not hold the run for minutes).
//!
//! A server that does not answer closes at all would make the turns cost a close timeout each:
//! once a close goes unanswered, the window opens and the rest of the worker's closes go at
//! once, as they did before there was a window.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The closes of one worker thread (`Rc`: never crosses threads).
#[derive(Clone)]
pub struct CloseWindow {
    inner: Rc<RefCell<Inner>>,
}

struct Inner {
    limit: usize,
    /// Closes in flight.
    open: usize,
    /// Sessions waiting for their turn, in order, with their tickets.
    waiting: VecDeque<(u64, Waker)>,
    next_ticket: u64,
    /// Tickets below this have had their turn given.
    granted: u64,
    /// A close went unanswered for its whole timeout: nobody waits any more.
    open_wide: bool,
    /// When a close of this worker was last answered.
    last_answer: Option<Instant>,
}

/// A session's turn in the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Turn {
    /// Not asked yet.
    #[default]
    None,
    /// Waiting with this ticket.
    Waiting(u64),
    /// Its close is in flight.
    Held,
}

impl Default for CloseWindow {
    fn default() -> CloseWindow {
        CloseWindow::new(CloseWindow::LIMIT)
    }
}

impl CloseWindow {
    /// Closes in flight per worker thread. At the end of a 100,000-connection run on this machine
    /// (8 to 12 client worker threads) that is 2,000 to 3,000 closes queued at the servers, which
    /// answer 15,000 to 20,000 a second: a fraction of a second's wait. Against a server 100 ms
    /// away, one worker still closes 2,500 connections a second.
    pub const LIMIT: usize = 256;

    /// How many close timeouts a close may wait for its answer while the server answers others.
    pub const PATIENCE: u32 = 5;

    pub fn new(limit: usize) -> CloseWindow {
        CloseWindow {
            inner: Rc::new(RefCell::new(Inner {
                limit: limit.max(1),
                open: 0,
                waiting: VecDeque::new(),
                next_ticket: 0,
                granted: 0,
                open_wide: false,
                last_answer: None,
            })),
        }
    }

    /// Ready once `turn` is held: at once when a place is free and nobody waits before, else
    /// when an earlier close ends and hands its place on (`cx`'s waker is woken then).
    pub fn poll_enter(&self, turn: &mut Turn, cx: &Context<'_>) -> Poll<()> {
        let mut inner = self.inner.borrow_mut();
        match *turn {
            Turn::Held => return Poll::Ready(()),
            Turn::Waiting(ticket) if ticket < inner.granted => {
                *turn = Turn::Held;
                return Poll::Ready(());
            }
            Turn::Waiting(_) => return Poll::Pending,
            Turn::None => {}
        }
        if inner.open_wide || (inner.open < inner.limit && inner.waiting.is_empty()) {
            inner.open += 1;
            *turn = Turn::Held;
            return Poll::Ready(());
        }
        let ticket = inner.next_ticket;
        inner.next_ticket += 1;
        inner.waiting.push_back((ticket, cx.waker().clone()));
        *turn = Turn::Waiting(ticket);
        Poll::Pending
    }

    /// When a close sent at `since` times out: `timeout` after the later of its sending and the
    /// last answer to a close of this worker, and at most [`Self::PATIENCE`] timeouts after its
    /// sending.
    pub fn deadline(&self, since: Instant, timeout: Duration) -> Instant {
        let last_answer = self.inner.borrow().last_answer;
        let from = last_answer.map_or(since, |answer| answer.max(since));
        (from + timeout).min(since + timeout * Self::PATIENCE)
    }

    /// The close of a held `turn` ended: its place goes to the first session waiting. `answered`:
    /// the server answered it (or ended the connection); when not, it let the close time out and
    /// the window opens for every close left.
    pub fn leave(&self, turn: &mut Turn, answered: bool) {
        if *turn != Turn::Held {
            return;
        }
        *turn = Turn::None;
        let mut inner = self.inner.borrow_mut();
        if answered {
            inner.last_answer = Some(Instant::now());
        } else if !inner.open_wide {
            inner.open_wide = true;
            inner.granted = inner.next_ticket;
            inner.open += inner.waiting.len();
            let waiting: Vec<Waker> = inner.waiting.drain(..).map(|(_, w)| w).collect();
            inner.open -= 1;
            drop(inner);
            waiting.into_iter().for_each(Waker::wake);
            return;
        }
        match inner.waiting.pop_front() {
            Some((ticket, waker)) => {
                inner.granted = ticket + 1;
                drop(inner);
                waker.wake();
            }
            None => inner.open -= 1,
        }
    }

    /// Closes in flight and sessions waiting, for tests.
    #[cfg(test)]
    fn counts(&self) -> (usize, usize) {
        let inner = self.inner.borrow();
        (inner.open, inner.waiting.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::timers::tests::counter as waker;
    use std::sync::atomic::Ordering;

    #[test]
    fn at_most_the_limit_is_in_flight_and_turns_pass_on_in_order() {
        let window = CloseWindow::new(2);
        let (_, w) = waker();
        let cx = Context::from_waker(&w);
        let mut turns = [Turn::None; 5];
        let entered: Vec<bool> = turns
            .iter_mut()
            .map(|t| window.poll_enter(t, &cx).is_ready())
            .collect();
        assert_eq!(entered, [true, true, false, false, false]);
        assert_eq!(window.counts(), (2, 3));
        // The third waits until one ends; the fourth does not jump the queue.
        assert!(window.poll_enter(&mut turns[2], &cx).is_pending());
        window.leave(&mut turns[0], true);
        assert_eq!(turns[0], Turn::None);
        assert!(window.poll_enter(&mut turns[3], &cx).is_pending());
        assert!(window.poll_enter(&mut turns[2], &cx).is_ready());
        assert_eq!(window.counts(), (2, 2));
        // A newcomer waits behind those already waiting.
        let mut late = Turn::None;
        window.leave(&mut turns[1], true);
        assert!(window.poll_enter(&mut late, &cx).is_pending());
        assert!(window.poll_enter(&mut turns[3], &cx).is_ready());
        for t in [2, 3] {
            window.leave(&mut turns[t], true);
        }
        assert!(window.poll_enter(&mut turns[4], &cx).is_ready());
        assert!(window.poll_enter(&mut late, &cx).is_ready());
        window.leave(&mut turns[4], true);
        window.leave(&mut late, true);
        assert_eq!(window.counts(), (0, 0));
    }

    #[test]
    fn a_turn_handed_on_wakes_the_session_it_goes_to() {
        let window = CloseWindow::new(1);
        let (first_count, first) = waker();
        let (second_count, second) = waker();
        let (mut a, mut b) = (Turn::None, Turn::None);
        assert!(
            window
                .poll_enter(&mut a, &Context::from_waker(&first))
                .is_ready()
        );
        assert!(
            window
                .poll_enter(&mut b, &Context::from_waker(&second))
                .is_pending()
        );
        window.leave(&mut a, true);
        assert_eq!(second_count.0.load(Ordering::SeqCst), 1);
        assert_eq!(first_count.0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn an_unanswered_close_opens_the_window_for_every_close_left() {
        let window = CloseWindow::new(1);
        let (count, w) = waker();
        let cx = Context::from_waker(&w);
        let mut turns = [Turn::None; 4];
        for t in turns.iter_mut() {
            let _ = window.poll_enter(t, &cx);
        }
        assert_eq!(window.counts(), (1, 3));
        window.leave(&mut turns[0], false);
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            3,
            "every waiting session woken"
        );
        for t in &mut turns[1..] {
            assert!(window.poll_enter(t, &cx).is_ready());
        }
        let mut late = Turn::None;
        assert!(
            window.poll_enter(&mut late, &cx).is_ready(),
            "no more waiting"
        );
        for t in turns[1..].iter_mut().chain([&mut late]) {
            window.leave(t, true);
        }
        assert_eq!(window.counts(), (0, 0));
    }

    #[test]
    fn a_close_waits_while_the_server_answers_others_but_within_its_patience() {
        let window = CloseWindow::new(4);
        let timeout = Duration::from_secs(2);
        let sent = Instant::now() - Duration::from_secs(3);
        // Nothing answered yet: the timeout from its sending.
        assert_eq!(window.deadline(sent, timeout), sent + timeout);
        // Another close was answered just now: the server is busy, not gone.
        let (_, w) = waker();
        let mut other = Turn::None;
        assert!(
            window
                .poll_enter(&mut other, &Context::from_waker(&w))
                .is_ready()
        );
        window.leave(&mut other, true);
        let deadline = window.deadline(sent, timeout);
        assert!(
            deadline > Instant::now() + Duration::from_millis(1900),
            "{deadline:?}"
        );
        // Never more than PATIENCE timeouts after it was sent.
        let long_ago = Instant::now() - timeout * CloseWindow::PATIENCE;
        assert_eq!(
            window.deadline(long_ago, timeout),
            long_ago + timeout * CloseWindow::PATIENCE
        );
        // A close sent after the last answer counts from its own sending.
        let later = Instant::now() + Duration::from_secs(1);
        assert_eq!(window.deadline(later, timeout), later + timeout);
    }
}
