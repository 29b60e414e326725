//! The on_connect steps of a session: emit (and wait for the acknowledgement, sending again on
//! `retries`), think, wait for an event, make an HTTP request. While a step waits, the session
//! reads everything that arrives as it does when emitting: deliveries are tracked and handlers
//! reply, so nothing the server sends during a step is lost to the books.

use std::future::poll_fn;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::conversation::{exchange, prepare, settle};
use super::report;
use super::session::{End, Phase, Session, Waiting, failed};
use crate::metrics::ErrorKind;
use crate::scenario::{AckWait, Action, Capture, HttpStep, Message, Step};

/// Why a step did not complete.
enum StepEnd {
    /// Counted already; the step's `on_failure` decides.
    Failed,
    /// The connection failed.
    Lost(End),
    /// The run is stopping, or the user's time is up.
    Stopped,
}

impl Session<'_> {
    /// Runs the group's on_connect steps on the current connection. `Err`: the connection was
    /// lost, or a step failed and the user leaves ([`End::Left`]).
    pub async fn setup(&mut self) -> Result<(), End> {
        self.phase = Phase::Setup;
        let steps = &self.group.on_connect;
        for (index, step) in steps.iter().enumerate() {
            // The user's time is up (the run's end, or its lifetime): the rest of its steps
            // are not taken.
            if Instant::now() >= self.user.until {
                return Ok(());
            }
            let outcome = match &step.action {
                Action::Wait(range) => self.serve_for(Some(range.draw())).await.map(drop),
                Action::Emit { message, ack } => {
                    self.emit_step(step, index, message, ack.as_ref()).await
                }
                Action::WaitFor {
                    timeout,
                    captures,
                    metric,
                    ..
                } => {
                    self.wait_for(step, index, *timeout, captures, *metric)
                        .await
                }
                Action::Http(http) => self.http_step(step, http).await,
            };
            self.waiting = Waiting::Nothing;
            self.arrived = None;
            match outcome {
                Ok(()) => {}
                Err(StepEnd::Failed) if step.continue_on_failure => {}
                Err(StepEnd::Failed) => return Err(End::Left),
                Err(StepEnd::Lost(end)) => return Err(end),
                Err(StepEnd::Stopped) => return Ok(()),
            }
        }
        Ok(())
    }

    fn fail(&self, step: &Step, kind: ErrorKind, detail: String) -> StepEnd {
        report(
            self.ctx,
            self.who,
            &self.user.values,
            self.metrics,
            kind,
            format!("step `{}`: {detail}", step.name),
        );
        StepEnd::Failed
    }

    /// After a capture: the frame log of a sampled client hides the user's new secret values.
    pub(super) fn learn_secrets(&mut self) {
        if let Some(link) = self.link.as_mut() {
            super::learn_secrets(self.ctx, link, &self.user.values);
        }
    }

    /// Sends a message; with `ack`, waits for the acknowledgement, sending again (with a new
    /// ack id, as socket.io-client does) up to `retries` times.
    async fn emit_step(
        &mut self,
        step: &Step,
        index: usize,
        message: &Message,
        ack: Option<&AckWait>,
    ) -> Result<(), StepEnd> {
        let attempts = 1 + ack.map_or(0, |a| a.retries);
        // Timed from the first attempt: the acknowledgement of any attempt answers the emit.
        let first_sent = Instant::now();
        let mut ids = Vec::new();
        for attempt in 0..attempts {
            let id = ack.map(|_| self.ledger.take_ack_id());
            let fill = self.user.fill(self.ctx, self.who, index as u64);
            let link = self.link.as_ref().expect("steps need a link");
            let rendered = link.render(&mut self.scratch, message, &fill, None, id);
            let sent = self.send(step, rendered).await;
            if sent.is_err() && !ids.is_empty() {
                self.metrics.borrow_mut().interval.acks_lost += 1;
            }
            sent?;
            {
                // An emit asks for its acknowledgement once, however many times it is sent.
                let mut m = self.metrics.borrow_mut();
                m.interval.sent += 1;
                m.group(self.who.group).sent += 1;
                match (attempt, id) {
                    (0, Some(_)) => m.interval.acks_sent += 1,
                    (0, None) => {}
                    _ => m.interval.ack_retries += 1,
                }
            }
            let (Some(ack), Some(id)) = (ack, id) else {
                return Ok(());
            };
            ids.push(id);
            self.waiting = Waiting::Ack(ids.clone());
            let answered = self.serve_for(Some(ack.timeout)).await;
            if answered.is_err() {
                self.metrics.borrow_mut().interval.acks_lost += 1;
            }
            if let Some(args) = answered? {
                if let Some(metric) = self.ctx.plan.ack_metric {
                    self.metrics
                        .borrow_mut()
                        .record(metric, first_sent.elapsed());
                }
                return self.capture(step, &ack.captures, &args);
            }
        }
        self.metrics.borrow_mut().interval.acks_lost += 1;
        let timeout = ack.map_or(Duration::ZERO, |a| a.timeout);
        Err(self.fail(
            step,
            ErrorKind::StepTimeout,
            format!("no acknowledgement within {timeout:?} ({attempts} attempts)"),
        ))
    }

    async fn wait_for(
        &mut self,
        step: &Step,
        index: usize,
        timeout: Duration,
        captures: &[Capture],
        metric: usize,
    ) -> Result<(), StepEnd> {
        let started = Instant::now();
        self.waiting = Waiting::Event { step: index };
        match self.serve_for(Some(timeout)).await? {
            Some(event) => {
                self.metrics.borrow_mut().record(metric, started.elapsed());
                self.capture(step, captures, &event)
            }
            None => Err(self.fail(
                step,
                ErrorKind::StepTimeout,
                format!("the event did not come within {timeout:?}"),
            )),
        }
    }

    /// Whether `payload` is what on_connect step `step` waits for.
    pub(super) fn waits_for(&self, step: usize, payload: &[u8]) -> bool {
        match &self.group.on_connect[step].action {
            Action::WaitFor { matcher, .. } => matcher.matches(payload),
            _ => false,
        }
    }

    async fn http_step(&mut self, step: &Step, http: &HttpStep) -> Result<(), StepEnd> {
        let ctx = self.ctx;
        let Some(connector) = ctx.http.as_ref() else {
            return Err(self.fail(step, ErrorKind::Http, "no HTTP server to ask".into()));
        };
        let request = prepare(&self.user.fill(ctx, self.who, 0), http)
            .map_err(|detail| self.fail(step, ErrorKind::Http, detail))?;
        // The HTTP side is taken out of the user while the session reads (and may capture into
        // the user's values), and put back whatever happens.
        let until = self.user.until;
        let mut http_session = self.user.http.take().unwrap_or_default();
        let outcome = {
            let exchange = exchange(&mut http_session, connector, request);
            let mut exchange = std::pin::pin!(exchange);
            tokio::select! {
                _ = ctx.stop.cancelled() => Err(StepEnd::Stopped),
                _ = tokio::time::sleep_until(until.into()) => Err(StepEnd::Stopped),
                done = &mut exchange => Ok(done),
                lost = poll_fn(|cx| self.serve(cx)) => Err(match lost {
                    Ok(_) => StepEnd::Failed,
                    Err(end) => end,
                }),
            }
        };
        self.user.http = Some(http_session);
        let answer = outcome?;
        let settled = settle(
            ctx,
            self.who,
            self.metrics,
            &mut self.user,
            step,
            http,
            answer,
        );
        self.learn_secrets();
        settled.map_err(|()| StepEnd::Failed)
    }

    fn capture(
        &mut self,
        step: &Step,
        captures: &[Capture],
        payload: &[u8],
    ) -> Result<(), StepEnd> {
        let names = &self.ctx.plan.vars;
        self.user
            .capture(names, captures, payload, None)
            .map_err(|detail| self.fail(step, ErrorKind::Capture, detail))?;
        self.learn_secrets();
        Ok(())
    }

    /// Writes a rendered message, within the stall timeout.
    async fn send(&mut self, step: &Step, rendered: super::link::Rendered) -> Result<(), StepEnd> {
        let stall = self.ctx.stall_timeout;
        let send = async {
            poll_fn(|cx| self.link().poll_ready(cx)).await?;
            let link = self.link.as_mut().expect("steps need a link");
            link.send_rendered(&self.scratch, &rendered)?;
            poll_fn(|cx| self.link().poll_flush(cx)).await
        };
        match tokio::time::timeout(stall, send).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(fault)) => Err(StepEnd::Lost(failed(fault))),
            Err(_) => Err(StepEnd::Lost(End::Failed(
                ErrorKind::WriteStalled,
                format!(
                    "step `{}`: not written after {stall:?}: the server is not reading",
                    step.name
                ),
            ))),
        }
    }

    /// Reads (tracking, replying) for `wait` or until what the step waits for arrives. `None`:
    /// the time ran out.
    async fn serve_for(&mut self, wait: Option<Duration>) -> Result<Option<Bytes>, StepEnd> {
        let ctx = self.ctx;
        let until = self.user.until;
        let sleep = async {
            match wait {
                Some(wait) => tokio::time::sleep(wait).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = ctx.stop.cancelled() => Err(StepEnd::Stopped),
            _ = tokio::time::sleep_until(until.into()) => Err(StepEnd::Stopped),
            _ = sleep => Ok(None),
            got = poll_fn(|cx| self.serve(cx)) => got.map(Some),
        }
    }

    /// Reads what arrives and sends the replies; ready when the awaited event or ack came, or
    /// the connection failed.
    fn serve(&mut self, cx: &mut Context<'_>) -> Poll<Result<Bytes, StepEnd>> {
        let now = Instant::now();
        if let Err(end) = self.send_backlog(cx, now) {
            return Poll::Ready(Err(StepEnd::Lost(end)));
        }
        let read = self.read_arrived(cx, now);
        if let Some(event) = self.arrived.take() {
            return Poll::Ready(Ok(event));
        }
        match read {
            Poll::Ready(Err(end)) => Poll::Ready(Err(StepEnd::Lost(end))),
            Poll::Ready(Ok(())) => {
                if self.need_flush {
                    if let Err(fault) = self.flush(cx, now) {
                        return Poll::Ready(Err(StepEnd::Lost(failed(fault))));
                    }
                }
                Poll::Pending
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
