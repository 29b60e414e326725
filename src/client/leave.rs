//! How a session leaves its connection, in place: the close handshake when it drained or its user
//! left, the close reply when the server closed, a flush and a FIN when the scenario drops the
//! connection, nothing more when it failed. The session drives it by polling, with its own timer
//! on the worker's [`Timers`](super::timers::Timers) for the deadline, so leaving builds no future:
//! at the end of a run every client closes at once, and a boxed future per client (5.8 KB, with
//! the reconnect path it also had to hold) was twice an idle connection's memory. A close waits
//! for its turn in the worker's [`CloseWindow`](super::close_window::CloseWindow) first, which
//! also says when it times out.

use std::task::{Context, Poll};
use std::time::Instant;

use super::close_window::Turn;
use super::link::describe_close;
use super::report;
use super::session::{End, Phase, Session};
use super::{ClientContext, reconnects_after};
use crate::metrics::ErrorKind;
use crate::transport::Closing;

/// What goes out when a connection is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Leaving {
    /// The close handshake: the session drained, or its user left after a failed step.
    Close(Closing),
    /// The server closed: the close reply tungstenite queued goes out.
    Reply,
    /// Dropped on purpose (`disconnect_every`): what was queued goes out, then the write half is
    /// closed, without a goodbye. `flushed`: the first part is done.
    Abort { flushed: bool },
    /// The connection failed: nothing more goes out.
    Nothing,
}

/// A session leaving its connection (its last phase on that connection).
#[derive(Debug, Clone, Copy)]
pub(super) struct Departure {
    how: Leaving,
    /// When the connection ended: a reconnect's time is measured from it.
    pub(super) at: Instant,
    /// When what goes out started going (a close: when its turn came): leaving may take the
    /// close timeout from here.
    since: Instant,
    /// A close's turn in the worker's window.
    turn: Turn,
    /// The close code counted, unless the close handshake brings the server's.
    code: u16,
    /// A reconnect follows.
    reconnect: bool,
    /// The client was connected when emitting ended.
    connected_at_end: bool,
}

/// What follows once the connection is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Left {
    /// The client is done; whether it was connected when emitting ended.
    Done(bool),
    /// It connects again.
    Reconnect,
}

impl Session<'_> {
    /// The session ended as `end`: counts what the end says (a server's close or a failure as an
    /// error, acks still awaited as lost), notes it in a sampled client's frame log, decides
    /// whether a reconnect follows, and starts leaving the connection ([`Self::poll_leave`]).
    pub fn leave(&mut self, end: End) {
        let ctx: &ClientContext = self.ctx;
        let at = Instant::now();
        let until = self.user.until;
        // An arriving user that left before the end was not there when emitting ended: what
        // was sent after it left is not due to it.
        let connected_at_end =
            (matches!(end, End::Drained) || at >= until) && until >= ctx.emit_end;
        let reconnect = reconnects_after(ctx, &end, until).is_some();
        self.ledger.connection_lost(&mut self.metrics.borrow_mut());
        if let Some(log) = self.link().frame_log() {
            match &end {
                End::Drained => {}
                End::ServerClosed(_) => log.ended("closed by the server".into()),
                End::Dropped => {
                    log.ended("dropped by the scenario (disconnect_every)".into());
                    log.closed(1006);
                }
                End::Failed(kind, detail) => log.ended(format!("{kind}: {detail}")),
                End::Left => log.ended("left after a failed step".into()),
            }
        }
        let (how, code) = match end {
            End::Drained | End::Left => (Leaving::Close(Closing::Start), 1006),
            End::ServerClosed(frame) => {
                let (code, text) = describe_close(frame.as_ref());
                report(
                    ctx,
                    self.who,
                    &self.user.values,
                    self.metrics,
                    ErrorKind::ClosedByServer,
                    text,
                );
                (Leaving::Reply, code)
            }
            // Dropped on purpose: no goodbye, and no error.
            End::Dropped => (Leaving::Abort { flushed: false }, 1006),
            End::Failed(kind, detail) => {
                report(ctx, self.who, &self.user.values, self.metrics, kind, detail);
                (Leaving::Nothing, 1006)
            }
        };
        self.phase = Phase::Leaving(Departure {
            how,
            at,
            since: at,
            turn: Turn::None,
            code,
            reconnect,
            connected_at_end,
        });
    }

    /// Leaves the connection as [`Self::leave`] decided, within the close timeout; then counts
    /// the close (its code: the server's answer to a close, 1006 when none came in time).
    pub fn poll_leave(&mut self, cx: &mut Context<'_>) -> Poll<Left> {
        let Phase::Leaving(departure) = &mut self.phase else {
            panic!("poll_leave before leave");
        };
        if let (Leaving::Close(_), false) = (departure.how, departure.turn == Turn::Held) {
            if self.closes.poll_enter(&mut departure.turn, cx).is_pending() {
                return Poll::Pending;
            }
            departure.since = Instant::now();
        }
        let link = self
            .link
            .as_mut()
            .expect("the session has its link until it is left");
        let sent = match &mut departure.how {
            Leaving::Close(closing) => link.poll_close(closing, cx).map(Some),
            Leaving::Reply => link.poll_flush(cx).map(|_| None),
            Leaving::Abort { flushed } => link.poll_abort(flushed, cx).map(|()| None),
            Leaving::Nothing => Poll::Ready(None),
        };
        let deadline = match departure.how {
            Leaving::Close(_) => self
                .closes
                .deadline(departure.since, self.ctx.close_timeout),
            _ => departure.since + self.ctx.close_timeout,
        };
        let (code, answered) = match sent {
            Poll::Ready(answer) => (answer.unwrap_or(departure.code), true),
            Poll::Pending if self.timer.wake_at(deadline, cx) => (departure.code, false),
            Poll::Pending => return Poll::Pending,
        };
        self.timer.cancel();
        self.closes.leave(&mut departure.turn, answered);
        if let (Leaving::Close(_), Some(log)) = (departure.how, link.frame_log()) {
            log.closed(code);
        }
        let mut m = self.metrics.borrow_mut();
        m.connected -= 1;
        m.group(self.who.group).closes += 1;
        m.close(code);
        Poll::Ready(match departure.reconnect {
            true => Left::Reconnect,
            false => Left::Done(departure.connected_at_end),
        })
    }

    /// When the connection being left ended (for the time a reconnect takes).
    pub fn left_at(&self) -> Instant {
        match &self.phase {
            Phase::Leaving(departure) => departure.at,
            _ => Instant::now(),
        }
    }
}
