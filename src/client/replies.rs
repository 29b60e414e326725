//! Answers to what arrives (`[[group.on]]`): captures, reply emits and answers to the server's
//! acknowledgement requests, sent at once from the read path. A reply the socket cannot take right
//! now waits in the session's backlog, which goes out before anything else.

use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;

use super::link::{Rendered, Scratch};
use super::report;
use super::session::{End, Session, failed};
use crate::metrics::ErrorKind;
use crate::scenario::template::Fill;

impl Session<'_> {
    /// Runs every handler that matches `payload` (a message, or a Socket.IO event's array);
    /// `ack`: the acknowledgement the server asks for.
    pub(super) fn handle(
        &mut self,
        cx: &mut Context<'_>,
        payload: &Bytes,
        ack: Option<u64>,
        now: Instant,
    ) -> Result<(), End> {
        let group = self.group;
        for handler in &group.on {
            if !handler.matcher.matches(payload) {
                continue;
            }
            if !handler.captures.is_empty() {
                let names = &self.ctx.plan.vars;
                match self.user.capture(names, &handler.captures, payload, None) {
                    Ok(()) => self.learn_secrets(),
                    Err(detail) => report(
                        self.ctx,
                        self.who,
                        &self.user.values,
                        self.metrics,
                        ErrorKind::Capture,
                        detail,
                    ),
                }
            }
            if let Some(reply) = &handler.reply {
                let fill = Fill {
                    event: Some(payload),
                    ..self.user.fill(self.ctx, self.who, 0)
                };
                let link = self.link.as_ref().expect("reading needs a link");
                let rendered = link.render(&mut self.scratch, reply, &fill, None, None);
                self.send_now(cx, rendered, now)?;
            }
            if let (Some(answer), Some(id)) = (&handler.answer, ack) {
                let fill = Fill {
                    event: Some(payload),
                    ..self.user.fill(self.ctx, self.who, 0)
                };
                let link = self.link.as_ref().expect("reading needs a link");
                if let Some(rendered) = link.render_answer(&mut self.scratch, id, answer, &fill) {
                    self.send_now(cx, rendered, now)?;
                }
            }
        }
        Ok(())
    }

    /// Sends what is in the scratch buffers, or keeps it for later when the socket is full (or
    /// older replies are still waiting, which go first).
    fn send_now(
        &mut self,
        cx: &mut Context<'_>,
        rendered: Rendered,
        now: Instant,
    ) -> Result<(), End> {
        let mut m = self.metrics.borrow_mut();
        m.interval.sent += 1;
        m.group(self.who.group).sent += 1;
        drop(m);
        if self.backlog.is_empty() {
            match self.link().poll_ready(cx) {
                Poll::Ready(Ok(())) => {
                    let link = self.link.as_mut().expect("reading needs a link");
                    link.send_rendered(&self.scratch, &rendered)
                        .map_err(failed)?;
                    self.need_flush = true;
                    return Ok(());
                }
                Poll::Ready(Err(fault)) => return Err(failed(fault)),
                Poll::Pending => {
                    self.blocked_since.get_or_insert(now);
                }
            }
        }
        let kept = Scratch {
            text: self.scratch.text.clone(),
            attachment: if rendered.attachment {
                self.scratch.attachment.clone()
            } else {
                String::new()
            },
        };
        self.backlog.push_back((kept, rendered));
        Ok(())
    }

    /// Sends the replies that waited, while the socket takes them.
    pub(super) fn send_backlog(&mut self, cx: &mut Context<'_>, now: Instant) -> Result<(), End> {
        while !self.backlog.is_empty() {
            match self.link().poll_ready(cx) {
                Poll::Ready(Ok(())) => {
                    let (kept, rendered) = self.backlog.pop_front().expect("not empty");
                    let link = self.link.as_mut().expect("sending needs a link");
                    link.send_rendered(&kept, &rendered).map_err(failed)?;
                    self.need_flush = true;
                }
                Poll::Ready(Err(fault)) => return Err(failed(fault)),
                Poll::Pending => {
                    self.blocked_since.get_or_insert(now);
                    break;
                }
            }
        }
        Ok(())
    }
}
