//! One timer per worker thread. A session does not keep a tokio timer of its own: it tells its
//! worker's [`Timers`] when it wants to be woken, and one driver task sleeps until the earliest of
//! those instants and wakes every session due by then, in one go. At a modest rate per client the
//! deadlines of a thousand clients are spread over time; with a timer each, every event paid a
//! timer reset (the timer wheel's lock and slot moves) and a wake-up of its own. Here a deadline
//! is a heap push on the thread, and the worker wakes once per millisecond tick (tokio's timers
//! fire on whole milliseconds) for all that are due by then. A session is never woken before its
//! deadline: it would only find nothing to do and sleep again.
//!
//! The heap is lazy: a session that moves its deadline pushes a new entry and the old one is
//! skipped when it comes up (its generation no longer matches).

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// How late a deadline may be served so that the driver's timer is never moved earlier by less
/// than this: tokio's timers fire up to a millisecond late anyway, and sessions wake a millisecond
/// before what they have to send.
const SLACK: Duration = Duration::from_millis(1);

/// The timers of one worker thread, shared by its sessions (`Rc`: never crosses threads).
#[derive(Clone, Default)]
pub struct Timers {
    inner: Rc<RefCell<Inner>>,
}

#[derive(Default)]
struct Inner {
    /// (deadline, slot, generation), earliest first.
    heap: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// The driver's waker and the instant it sleeps until.
    driver: Option<Waker>,
    driver_until: Option<Instant>,
    /// No more registrations are coming: the driver ends once the heap is empty.
    closed: bool,
}

/// One session's registration.
struct Slot {
    generation: u32,
    deadline: Option<Instant>,
    waker: Option<Waker>,
}

/// A session's handle: at most one pending deadline at a time.
pub struct TimerKey {
    timers: Timers,
    slot: u32,
}

impl Timers {
    pub fn new() -> Timers {
        Timers::default()
    }

    /// A handle for one session.
    pub fn key(&self) -> TimerKey {
        let mut inner = self.inner.borrow_mut();
        let slot = match inner.free.pop() {
            Some(slot) => slot,
            None => {
                inner.slots.push(Slot {
                    generation: 0,
                    deadline: None,
                    waker: None,
                });
                (inner.slots.len() - 1) as u32
            }
        };
        TimerKey {
            timers: self.clone(),
            slot,
        }
    }

    /// Drives the timers until [`Self::close`] was called and nothing is pending: sleeps until
    /// the earliest deadline and wakes everything due by then.
    pub async fn drive(&self) {
        let mut sleep = Box::pin(tokio::time::sleep(Duration::ZERO));
        let mut sleeping_until: Option<Instant> = None;
        // Wakers are called after the borrow ends: a waker may run code that registers again.
        let mut due: Vec<Waker> = Vec::new();
        poll_fn(|cx| {
            loop {
                self.inner.borrow_mut().take_due(Instant::now(), &mut due);
                for waker in due.drain(..) {
                    waker.wake();
                }
                let next = {
                    let mut inner = self.inner.borrow_mut();
                    let next = inner.next_deadline();
                    if next.is_none() && inner.closed {
                        return Poll::Ready(());
                    }
                    if !inner
                        .driver
                        .as_ref()
                        .is_some_and(|w| w.will_wake(cx.waker()))
                    {
                        inner.driver = Some(cx.waker().clone());
                    }
                    // Moving tokio's timer earlier makes its driver write to the runtime's
                    // eventfd (and the next epoll_wait return at once for nothing): a deadline
                    // less than the slack before the one slept for waits for it instead.
                    let next = match (next, sleeping_until) {
                        (Some(next), Some(until)) if next < until && next + SLACK >= until => {
                            Some(until)
                        }
                        (next, _) => next,
                    };
                    inner.driver_until = next;
                    next
                };
                let Some(next) = next else {
                    return Poll::Pending;
                };
                if sleeping_until != Some(next) {
                    sleep.as_mut().reset(next.into());
                    sleeping_until = Some(next);
                }
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
        })
        .await
    }

    /// No session will register again: the driver ends when the last deadline has passed.
    pub fn close(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.closed = true;
        if let Some(driver) = inner.driver.take() {
            driver.wake();
        }
    }
}

impl Inner {
    /// Takes the wakers of every session whose deadline has passed.
    fn take_due(&mut self, now: Instant, due: &mut Vec<Waker>) {
        while let Some(&Reverse((at, slot, generation))) = self.heap.peek() {
            if at > now {
                break;
            }
            self.heap.pop();
            let slot = &mut self.slots[slot as usize];
            if slot.generation != generation || slot.deadline != Some(at) {
                continue;
            }
            slot.deadline = None;
            if let Some(waker) = &slot.waker {
                due.push(waker.clone());
            }
        }
    }

    /// The earliest live deadline (dropping stale entries on the way).
    fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(&Reverse((at, slot, generation))) = self.heap.peek() {
            let live = &self.slots[slot as usize];
            if live.generation == generation && live.deadline == Some(at) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }
}

impl TimerKey {
    /// Asks to be woken (through `cx`'s waker) at `at`, replacing any earlier request. `true`:
    /// `at` has passed already, nothing was registered.
    pub fn wake_at(&mut self, at: Instant, cx: &Context<'_>) -> bool {
        if at <= Instant::now() {
            return true;
        }
        let mut inner = self.timers.inner.borrow_mut();
        let slot = &mut inner.slots[self.slot as usize];
        let waker_current = slot.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
        if !waker_current {
            slot.waker = Some(cx.waker().clone());
        }
        if slot.deadline == Some(at) {
            return false;
        }
        slot.deadline = Some(at);
        let generation = slot.generation;
        inner.heap.push(Reverse((at, self.slot, generation)));
        // The driver sleeps past this deadline by more than the slack: it must look again.
        if inner.driver_until.is_none_or(|until| at + SLACK < until) {
            inner.driver_until = Some(at);
            if let Some(driver) = &inner.driver {
                driver.wake_by_ref();
            }
        }
        false
    }

    /// Forgets the pending request, if any.
    pub fn cancel(&mut self) {
        let mut inner = self.timers.inner.borrow_mut();
        let slot = &mut inner.slots[self.slot as usize];
        slot.deadline = None;
    }
}

impl Drop for TimerKey {
    fn drop(&mut self) {
        let mut inner = self.timers.inner.borrow_mut();
        let slot = &mut inner.slots[self.slot as usize];
        slot.generation = slot.generation.wrapping_add(1);
        slot.deadline = None;
        slot.waker = None;
        inner.free.push(self.slot);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    /// A waker that counts its wake-ups.
    pub(in crate::client) struct Count(pub(in crate::client) AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    pub(in crate::client) fn counter() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        (count.clone(), Waker::from(count))
    }

    #[test]
    fn due_sessions_are_woken_once_and_moved_deadlines_only_at_the_new_time() {
        let timers = Timers::new();
        let (a_count, a) = counter();
        let (b_count, b) = counter();
        let mut key_a = timers.key();
        let mut key_b = timers.key();
        let now = Instant::now();
        assert!(!key_a.wake_at(now + Duration::from_millis(50), &Context::from_waker(&a)));
        assert!(!key_b.wake_at(now + Duration::from_millis(10), &Context::from_waker(&b)));
        // b moves its deadline later: its first entry is stale.
        assert!(!key_b.wake_at(now + Duration::from_millis(80), &Context::from_waker(&b)));
        let mut inner = timers.inner.borrow_mut();
        let mut due = Vec::new();
        let mut wake_due = |inner: &mut Inner, at: Instant| {
            inner.take_due(at, &mut due);
            due.drain(..).for_each(Waker::wake);
        };
        wake_due(&mut inner, now + Duration::from_millis(20));
        assert_eq!(
            b_count.0.load(Ordering::SeqCst),
            0,
            "b's old deadline is stale"
        );
        assert_eq!(inner.next_deadline(), Some(now + Duration::from_millis(50)));
        wake_due(&mut inner, now + Duration::from_millis(60));
        assert_eq!(a_count.0.load(Ordering::SeqCst), 1);
        wake_due(&mut inner, now + Duration::from_millis(100));
        assert_eq!(
            (
                a_count.0.load(Ordering::SeqCst),
                b_count.0.load(Ordering::SeqCst)
            ),
            (1, 1)
        );
        assert_eq!(inner.next_deadline(), None);
        drop(inner);
        // A past instant is not registered: the caller goes round again.
        assert!(key_a.wake_at(now, &Context::from_waker(&a)));
        drop(key_a);
        assert_eq!(timers.key().slot, 0, "slots are reused");
    }

    #[tokio::test]
    async fn the_driver_wakes_sessions_at_their_deadlines_and_ends_when_closed() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let timers = Timers::new();
                let driving = timers.clone();
                let driver = tokio::task::spawn_local(async move { driving.drive().await });
                let start = Instant::now();
                let mut sessions = Vec::new();
                for ms in [30u64, 10, 20] {
                    let mut key = timers.key();
                    let at = start + Duration::from_millis(ms);
                    sessions.push(tokio::task::spawn_local(async move {
                        poll_fn(|cx| {
                            if key.wake_at(at, cx) {
                                Poll::Ready(Instant::now())
                            } else {
                                Poll::Pending
                            }
                        })
                        .await
                    }));
                }
                for (session, ms) in sessions.into_iter().zip([30u64, 10, 20]) {
                    let woken = session.await.unwrap();
                    let wanted = start + Duration::from_millis(ms);
                    assert!(woken >= wanted, "{ms} ms: woken after {:?}", woken - start);
                }
                timers.close();
                tokio::time::timeout(Duration::from_secs(1), driver)
                    .await
                    .expect("the driver ends once closed")
                    .unwrap();
            })
            .await;
    }
}
