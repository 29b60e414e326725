//! One direction of an inspected connection: read, parse a copy, write the same bytes on.
//!
//! A pump starts in HTTP mode (requests from the client, responses from the upstream), follows
//! keep-alive message boundaries with their bodies (Content-Length or chunked), decodes Engine.IO
//! long-polling bodies, and switches to WebSocket mode after a `101`. In WebSocket mode it holds
//! each frame until it is whole (frames over [`HOLD_LIMIT`] stream through undecided), decodes
//! it, lets the fault plan decide, and forwards the frame's original bytes. Bytes that are not
//! HTTP are relayed raw. Nothing is ever re-encoded.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::faults::{ConnFaults, Decision, FaultPlan};
use crate::protocol::wsframe;
use crate::wire::acks::SessionBooks;
use crate::wire::decode::{ConnDecoder, FrameMeta};
use crate::wire::record::{Clock, Dir, Record, RecordKind};
use crate::wire::sink::RecordSink;

mod http;

/// Per direction: frames and payload bytes seen.
#[derive(Default)]
pub struct DirStats {
    pub frames: AtomicU64,
    pub bytes: AtomicU64,
}

/// The upstream's answer to the client's latest upgrade request, as the client side waits for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeAnswer {
    /// No answer yet (or no upgrade asked).
    Pending,
    /// `101`: both directions carry WebSocket frames now.
    Upgraded,
    /// Another status: HTTP goes on.
    Refused,
    /// The upstream side will answer nothing more (it ended, or is not HTTP). Final.
    Gone,
}

/// Requests remembered for their responses at most (pipelining this deep is not seen in practice;
/// the bound only stops a peer that never answers from growing the queue).
pub const MAX_QUEUED_REQUESTS: usize = 1024;

/// What both pumps of a connection share.
pub struct Shared {
    pub id: u64,
    pub clock: Clock,
    pub sink: RecordSink,
    pub decoder: Mutex<ConnDecoder>,
    pub faults: Arc<FaultPlan>,
    pub stats: [DirStats; 2],
    /// Requests relayed and not answered yet: method, target, whether it asked for a WebSocket.
    pub requests: Mutex<VecDeque<(String, String, bool)>>,
    pub upgraded: watch::Sender<UpgradeAnswer>,
    /// Frames of both directions that matched the fault filter, for `--close-after`.
    pub matched: AtomicU64,
    /// Ack books of the Engine.IO sessions seen, shared by all connections.
    pub sessions: Arc<SessionBooks>,
    /// Ends both pumps (a `--close-after` fault, or the inspector stopping).
    pub stop: CancellationToken,
}

impl Shared {
    pub fn stats(&self, dir: Dir) -> &DirStats {
        &self.stats[match dir {
            Dir::C2s => 0,
            Dir::S2c => 1,
        }]
    }
}

/// Frames up to this size are held whole (decoded, and open to faults); larger ones stream.
pub const HOLD_LIMIT: u64 = 16 << 20;
const READ_CHUNK: usize = 16 * 1024;

enum Mode {
    Http,
    WebSocket,
    Raw,
}

pub struct Pump<R, W> {
    dir: Dir,
    from: R,
    to: W,
    buf: BytesMut,
    shared: Arc<Shared>,
    faults: ConnFaults,
    /// Attachment messages still to drop after a dropped BINARY_EVENT or BINARY_ACK.
    dropping_attachments: u32,
    /// Inside a fragmented attachment message being dropped.
    in_dropped_message: bool,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Pump<R, W> {
    pub fn new(dir: Dir, from: R, to: W, shared: Arc<Shared>) -> Pump<R, W> {
        // Each direction draws its own faults: the same traffic gets the same faults whatever
        // the interleaving of the two directions.
        let stream = shared.id * 2 + u64::from(dir == Dir::S2c);
        let faults = ConnFaults::new(&shared.faults, stream);
        Pump {
            dir,
            from,
            to,
            buf: BytesMut::with_capacity(READ_CHUNK),
            shared,
            faults,
            dropping_attachments: 0,
            in_dropped_message: false,
        }
    }

    /// Relays until the reading side ends (then passes the end on) or the connection is stopped.
    pub async fn run(mut self) -> io::Result<()> {
        let stop = self.shared.stop.clone();
        let result = tokio::select! {
            result = self.relay() => result,
            _ = stop.cancelled() => Ok(()),
        };
        if self.dir == Dir::S2c {
            // No answer will come now: a client side waiting on an upgrade must not wait forever.
            self.shared.upgraded.send_if_modified(|answer| {
                let pending = *answer == UpgradeAnswer::Pending;
                if pending {
                    *answer = UpgradeAnswer::Gone;
                }
                pending
            });
        }
        if stop.is_cancelled() {
            // A `--close-after` fault or the inspector stopping: end both sides now.
            return result;
        }
        let _ = self.to.shutdown().await;
        result
    }

    async fn relay(&mut self) -> io::Result<()> {
        let mut mode = Mode::Http;
        loop {
            mode = match mode {
                Mode::Http => match self.http().await? {
                    Some(next) => next,
                    None => return Ok(()),
                },
                Mode::WebSocket => return self.websocket().await,
                Mode::Raw => return self.raw().await,
            };
        }
    }

    /// Reads more bytes into the buffer; false at the end of the stream.
    async fn fill(&mut self) -> io::Result<bool> {
        self.buf.reserve(READ_CHUNK);
        Ok(self.from.read_buf(&mut self.buf).await? > 0)
    }

    /// Sends a record on, its secrets hidden (the request target's query values, and every value
    /// the connection hid before).
    async fn send(&self, mut record: Record) {
        self.shared
            .decoder
            .lock()
            .expect("decoder lock")
            .redact(&mut record);
        self.shared.sink.send(record).await;
    }

    fn record(&self, kind: RecordKind) -> Record {
        let mut r = self
            .shared
            .clock
            .record(Instant::now(), self.shared.id, kind);
        r.dir = Some(self.dir);
        r
    }

    async fn error(&self, detail: String) {
        let mut r = self.record(RecordKind::Error);
        r.detail = Some(detail);
        self.send(r).await;
    }

    // ---- Raw ----

    async fn raw(&mut self) -> io::Result<()> {
        loop {
            if !self.buf.is_empty() {
                let part = self.buf.split();
                self.shared
                    .stats(self.dir)
                    .bytes
                    .fetch_add(part.len() as u64, Ordering::Relaxed);
                self.to.write_all(&part).await?;
            }
            if !self.fill().await? {
                return Ok(());
            }
        }
    }

    // ---- WebSocket ----

    async fn websocket(&mut self) -> io::Result<()> {
        let mut out: Vec<u8> = Vec::with_capacity(READ_CHUNK);
        loop {
            while let Some(header) = wsframe::parse_header(&self.buf) {
                let total = header.frame_len();
                if total > HOLD_LIMIT {
                    self.to.write_all(&out).await?;
                    out.clear();
                    self.stream_large(header).await?;
                    continue;
                }
                if (self.buf.len() as u64) < total {
                    break;
                }
                let frame = self.buf.split_to(total as usize);
                let decision = self
                    .inspect_frame(&header, &frame[header.header_len..])
                    .await;
                if decision.drop && !decision.close_after {
                    continue;
                }
                if let Some(delay) = decision.delay {
                    self.to.write_all(&out).await?;
                    out.clear();
                    tokio::time::sleep(delay).await;
                }
                if !decision.drop {
                    out.extend_from_slice(&frame);
                }
                if decision.duplicate {
                    out.extend_from_slice(&frame);
                }
                if decision.close_after {
                    self.to.write_all(&out).await?;
                    let _ = self.to.flush().await;
                    self.shared.stop.cancel();
                    return Ok(());
                }
            }
            if !out.is_empty() {
                self.to.write_all(&out).await?;
                out.clear();
            }
            if !self.fill().await? {
                if !self.buf.is_empty() {
                    // A truncated last frame: pass it on as it is.
                    let rest = self.buf.split();
                    self.to.write_all(&rest).await?;
                    self.error(format!(
                        "the stream ended inside a frame ({} bytes)",
                        rest.len()
                    ))
                    .await;
                }
                return Ok(());
            }
        }
    }

    /// Decodes one whole frame, logs it, and decides its faults.
    async fn inspect_frame(&mut self, header: &wsframe::FrameHeader, payload: &[u8]) -> Decision {
        let now = Instant::now();
        let mut payload = payload.to_vec();
        if let Some(mask) = header.mask {
            wsframe::unmask(mask, 0, &mut payload);
        }
        let meta = FrameMeta::of(header);
        let mut record = self.record(RecordKind::Frame);
        self.shared.decoder.lock().expect("decoder lock").frame(
            &mut record,
            self.dir,
            meta,
            &payload,
            now,
        );
        let stats = self.shared.stats(self.dir);
        stats.frames.fetch_add(1, Ordering::Relaxed);
        stats.bytes.fetch_add(header.payload_len, Ordering::Relaxed);

        let sio = record.sio.as_ref();
        let attachment = sio.is_some_and(|s| s.kind == "ATTACHMENT");
        let with_attachments = sio.and_then(|s| s.attachments).unwrap_or(0);
        // The attachments of a dropped binary event go with it, fragmented ones whole.
        let mut forced_drop = false;
        if header.opcode == 0 && self.in_dropped_message {
            forced_drop = true;
            if header.fin {
                self.in_dropped_message = false;
                self.dropping_attachments = self.dropping_attachments.saturating_sub(1);
            }
        } else if header.opcode == 2 && self.dropping_attachments > 0 {
            forced_drop = true;
            if header.fin {
                self.dropping_attachments -= 1;
            } else {
                self.in_dropped_message = true;
            }
        }
        let decision = if forced_drop {
            Decision {
                drop: true,
                ..Decision::FORWARD
            }
        } else {
            let whole_message = header.fin && matches!(header.opcode, 1 | 2);
            // With permessage-deflate, a compressed message missing or repeated corrupts the
            // receiver's decompression context.
            let compressed = header.rsv & 0b100 != 0;
            let droppable =
                (whole_message || matches!(header.opcode, 9 | 10)) && !attachment && !compressed;
            let duplicable = droppable && with_attachments == 0;
            let plan = &self.shared.faults;
            match self.faults.decide(plan, &record, droppable, duplicable) {
                None => Decision::FORWARD,
                Some(mut decision) => {
                    let matched = self.shared.matched.fetch_add(1, Ordering::Relaxed) + 1;
                    decision.close_after = plan.close_after.is_some_and(|n| matched >= n);
                    if decision.drop && with_attachments > 0 {
                        self.dropping_attachments = with_attachments;
                    }
                    decision
                }
            }
        };
        let faults: Vec<Record> = [
            (decision.drop, "drop"),
            (decision.duplicate, "duplicate"),
            (decision.delay.is_some(), "delay"),
            (decision.close_after, "close"),
        ]
        .into_iter()
        .filter(|(happened, _)| *happened)
        .map(|(_, fault)| {
            let mut r = record.clone();
            r.kind = RecordKind::Fault;
            r.fault = Some(fault);
            r.delay_ms = (fault == "delay")
                .then(|| decision.delay.map(|d| d.as_secs_f64() * 1e3))
                .flatten();
            if fault == "drop" && forced_drop {
                r.detail = Some("an attachment of a dropped binary event".into());
            }
            r
        })
        .collect();
        self.send(record).await;
        for r in faults {
            self.send(r).await;
        }
        decision
    }

    /// A frame too large to hold: forward it as it comes, decoding only the start.
    async fn stream_large(&mut self, header: wsframe::FrameHeader) -> io::Result<()> {
        let mut record = self.record(RecordKind::Frame);
        let shown = (self.buf.len() - header.header_len).min(4096);
        let mut preview = self.buf[header.header_len..header.header_len + shown].to_vec();
        if let Some(mask) = header.mask {
            wsframe::unmask(mask, 0, &mut preview);
        }
        let meta = FrameMeta::of(&header);
        self.shared.decoder.lock().expect("decoder lock").frame(
            &mut record,
            self.dir,
            meta,
            &preview,
            Instant::now(),
        );
        record.truncated = true;
        record.detail = Some(format!(
            "larger than {} MiB: relayed without holding",
            HOLD_LIMIT >> 20
        ));
        let stats = self.shared.stats(self.dir);
        stats.frames.fetch_add(1, Ordering::Relaxed);
        stats.bytes.fetch_add(header.payload_len, Ordering::Relaxed);
        self.send(record).await;
        let mut left = header.frame_len();
        loop {
            let take = (self.buf.len() as u64).min(left) as usize;
            let part = self.buf.split_to(take);
            self.to.write_all(&part).await?;
            left -= take as u64;
            if left == 0 {
                return Ok(());
            }
            if !self.fill().await? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the stream ended inside a large frame",
                ));
            }
        }
    }
}
