//! One direction of an inspected connection: read, parse a copy, write the same bytes on.
//!
//! A pump starts in HTTP mode (requests from the client, responses from the upstream), follows
//! keep-alive message boundaries with their bodies (Content-Length or chunked), decodes Engine.IO
//! long-polling bodies, and switches to WebSocket mode after a `101`. In WebSocket mode it holds
//! each frame until it is whole (frames over [`HOLD_LIMIT`] stream through undecided), decodes
//! it, lets the fault plan decide, and forwards the frame's original bytes. Bytes that are not
//! HTTP are relayed raw. Nothing is ever re-encoded.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::decode::{FrameMeta, engineio_version, query_param};
use super::faults::{ConnFaults, Decision};
use super::proxy::{MAX_QUEUED_REQUESTS, Shared, UpgradeAnswer};
use super::record::{Dir, Record, RecordKind};
use crate::protocol::http1::{self, BodyKind, ChunkedDecoder};
use crate::protocol::wsframe;

/// Frames up to this size are held whole (decoded, and open to faults); larger ones stream.
pub const HOLD_LIMIT: u64 = 16 << 20;
/// HTTP bodies up to this size are kept for decoding (long-polling payloads).
const MAX_CAPTURED_BODY: usize = 4 << 20;
const READ_CHUNK: usize = 16 * 1024;
/// Bytes a client may send after an upgrade request before the answer; past this the pump stops
/// reading until the answer comes.
const MAX_EARLY_BYTES: usize = 1 << 20;

/// How a body ended.
enum Body {
    /// Relayed; its bytes when they were to be kept.
    Done(Option<Vec<u8>>),
    /// Its framing broke (a malformed chunk): the rest of the stream is relayed raw.
    Raw,
}

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

    async fn send(&self, record: Record) {
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

    // ---- HTTP ----

    /// One HTTP message and its body; the next mode, or None at the end of the stream.
    async fn http(&mut self) -> io::Result<Option<Mode>> {
        match self.dir {
            Dir::C2s => self.http_request().await,
            Dir::S2c => self.http_response().await,
        }
    }

    async fn http_request(&mut self) -> io::Result<Option<Mode>> {
        let head = loop {
            match http1::parse_request_head(&self.buf) {
                Ok(Some(head)) => break head,
                Ok(None) => {
                    if !self.fill().await? {
                        return self.end_of_http().await;
                    }
                }
                Err(e) => {
                    self.error(format!("not an HTTP request ({e}): relaying raw bytes"))
                        .await;
                    return Ok(Some(Mode::Raw));
                }
            }
        };
        let engine = engineio_version(&head.target);
        let polling = engine.is_some() && query_param(&head.target, "transport") == Some("polling");
        let wants_websocket = head.header("upgrade").is_some_and(|v| {
            String::from_utf8_lossy(v)
                .to_ascii_lowercase()
                .contains("websocket")
        });
        if engine.is_some() {
            let mut decoder = self.shared.decoder.lock().expect("decoder lock");
            decoder.set_engine(engine);
            if let Some(sid) = query_param(&head.target, "sid") {
                decoder.set_ack_book(self.shared.sessions.book(sid));
            }
        }
        let body_kind = http1::request_body(&head);
        let mut record = self.record(RecordKind::HttpRequest);
        record.method = Some(head.method.clone());
        record.target = Some(head.target.clone());
        record.sid = query_param(&head.target, "sid").map(str::to_string);
        record.headers = Some(
            self.shared
                .decoder
                .lock()
                .expect("decoder lock")
                .headers(&head.headers),
        );
        if let BodyKind::Length(n) = body_kind {
            record.len = Some(n);
        }
        self.send(record).await;
        {
            let mut requests = self.shared.requests.lock().expect("requests lock");
            if requests.len() >= MAX_QUEUED_REQUESTS {
                requests.pop_front();
            }
            requests.push_back((head.method.clone(), head.target.clone(), wants_websocket));
        }

        let head_bytes = self.buf.split_to(head.head_len);
        self.to.write_all(&head_bytes).await?;
        let encoding = head.header("content-encoding").map(|v| v.to_vec());
        match self
            .body(body_kind, polling && head.method == "POST")
            .await?
        {
            Body::Done(Some(body)) => self.polling_records(&body, encoding.as_deref()).await,
            Body::Done(None) => {}
            Body::Raw => return Ok(Some(Mode::Raw)),
        }
        if wants_websocket {
            // Whatever follows is frames if the upstream agrees, more HTTP if it does not.
            return Ok(match self.upgrade_answer().await? {
                Some(true) => Some(Mode::WebSocket),
                Some(false) => Some(Mode::Http),
                None => None,
            });
        }
        Ok(Some(Mode::Http))
    }

    /// Waits for the upstream's answer to an upgrade request, reading (not relaying) what the
    /// client sends meanwhile. Some(true) for a 101, None when the client ended first.
    async fn upgrade_answer(&mut self) -> io::Result<Option<bool>> {
        let mut answers = self.shared.upgraded.subscribe();
        loop {
            let answer = *answers.borrow_and_update();
            match answer {
                UpgradeAnswer::Upgraded | UpgradeAnswer::Refused => {
                    self.shared.upgraded.send_replace(UpgradeAnswer::Pending);
                    return Ok(Some(answer == UpgradeAnswer::Upgraded));
                }
                UpgradeAnswer::Gone => return Ok(Some(false)),
                UpgradeAnswer::Pending => {}
            }
            if self.buf.len() >= MAX_EARLY_BYTES {
                if answers.changed().await.is_err() {
                    return Ok(Some(false));
                }
                continue;
            }
            self.buf.reserve(READ_CHUNK);
            tokio::select! {
                changed = answers.changed() => {
                    if changed.is_err() {
                        return Ok(Some(false));
                    }
                }
                read = self.from.read_buf(&mut self.buf) => {
                    if read? == 0 {
                        // Pass on what the client sent before leaving, then its end.
                        if !self.buf.is_empty() {
                            let rest = self.buf.split();
                            self.to.write_all(&rest).await?;
                        }
                        return Ok(None);
                    }
                }
            }
        }
    }

    async fn http_response(&mut self) -> io::Result<Option<Mode>> {
        let head = loop {
            match http1::parse_response_head(&self.buf) {
                Ok(Some(head)) => break head,
                Ok(None) => {
                    if !self.fill().await? {
                        return self.end_of_http().await;
                    }
                }
                Err(e) => {
                    self.error(format!("not an HTTP response ({e}): relaying raw bytes"))
                        .await;
                    self.shared.upgraded.send_replace(UpgradeAnswer::Gone);
                    return Ok(Some(Mode::Raw));
                }
            }
        };
        let informational = (100..200).contains(&head.status) && head.status != 101;
        let (method, target, wanted_websocket) = if informational {
            Default::default()
        } else {
            self.shared
                .requests
                .lock()
                .expect("requests lock")
                .pop_front()
                .unwrap_or_default()
        };
        let body_kind = http1::response_body(&head, &method);
        let mut record = self.record(RecordKind::HttpResponse);
        record.status = Some(head.status);
        record.reason = Some(head.reason.clone());
        record.target = (!target.is_empty()).then(|| target.clone());
        record.sid = query_param(&target, "sid").map(str::to_string);
        record.headers = Some(
            self.shared
                .decoder
                .lock()
                .expect("decoder lock")
                .headers(&head.headers),
        );
        if let BodyKind::Length(n) = body_kind {
            record.len = Some(n);
        }
        self.send(record).await;
        let head_bytes = self.buf.split_to(head.head_len);
        self.to.write_all(&head_bytes).await?;

        if head.status == 101 && http1::is_upgrade_to_websocket(&head) {
            self.shared.upgraded.send_replace(UpgradeAnswer::Upgraded);
            return Ok(Some(Mode::WebSocket));
        }
        if wanted_websocket {
            self.shared.upgraded.send_replace(UpgradeAnswer::Refused);
        }
        let polling = engineio_version(&target).is_some()
            && query_param(&target, "transport") == Some("polling")
            && method == "GET"
            && head.status == 200;
        let encoding = head.header("content-encoding").map(|v| v.to_vec());
        match self.body(body_kind, polling).await? {
            Body::Done(Some(body)) => self.polling_records(&body, encoding.as_deref()).await,
            Body::Done(None) => {}
            Body::Raw => {
                self.shared.upgraded.send_replace(UpgradeAnswer::Gone);
                return Ok(Some(Mode::Raw));
            }
        }
        if matches!(body_kind, BodyKind::UntilClose) {
            return Ok(None);
        }
        Ok(Some(Mode::Http))
    }

    /// The stream ended between messages (or inside a head): pass on what is left.
    async fn end_of_http(&mut self) -> io::Result<Option<Mode>> {
        if !self.buf.is_empty() {
            let rest = self.buf.split();
            self.to.write_all(&rest).await?;
        }
        if self.dir == Dir::S2c {
            self.shared.upgraded.send_replace(UpgradeAnswer::Gone);
        }
        Ok(None)
    }

    /// Relays a body; keeps it when `capture` and it is small enough to decode.
    async fn body(&mut self, kind: BodyKind, capture: bool) -> io::Result<Body> {
        let mut kept = capture.then(Vec::new);
        let keep = |kept: &mut Option<Vec<u8>>, bytes: &[u8]| {
            if let Some(body) = kept {
                if body.len() + bytes.len() <= MAX_CAPTURED_BODY {
                    body.extend_from_slice(bytes);
                } else {
                    *kept = None;
                }
            }
        };
        match kind {
            BodyKind::Empty => {}
            BodyKind::Length(mut left) => {
                while left > 0 {
                    if self.buf.is_empty() && !self.fill().await? {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("the stream ended {left} bytes before the end of a body"),
                        ));
                    }
                    let take = (self.buf.len() as u64).min(left) as usize;
                    let part = self.buf.split_to(take);
                    keep(&mut kept, &part);
                    self.to.write_all(&part).await?;
                    left -= take as u64;
                }
            }
            BodyKind::Chunked => {
                let mut decoder = ChunkedDecoder::new();
                let mut decoded = Vec::new();
                loop {
                    let (consumed, done) = match decoder.feed(&self.buf, &mut decoded) {
                        Ok(progress) => progress,
                        Err(e) => {
                            // What was fed is still in the buffer: the raw relay passes it on.
                            self.error(format!("malformed chunked body ({e}): relaying raw bytes"))
                                .await;
                            return Ok(Body::Raw);
                        }
                    };
                    let part = self.buf.split_to(consumed);
                    self.to.write_all(&part).await?;
                    keep(&mut kept, &decoded);
                    decoded.clear();
                    if done {
                        break;
                    }
                    if !self.fill().await? {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the stream ended inside a chunked body",
                        ));
                    }
                }
            }
            BodyKind::UntilClose => loop {
                let part = self.buf.split();
                keep(&mut kept, &part);
                self.to.write_all(&part).await?;
                if !self.fill().await? {
                    break;
                }
            },
        }
        Ok(Body::Done(kept))
    }

    async fn polling_records(&mut self, body: &[u8], encoding: Option<&[u8]>) {
        let inflated;
        let body = match encoding.map(|e| String::from_utf8_lossy(e).trim().to_ascii_lowercase()) {
            None => body,
            Some(e) if e == "identity" => body,
            Some(e) => match inflate(&e, body) {
                Ok(bytes) => {
                    inflated = bytes;
                    &inflated
                }
                Err(detail) => {
                    self.error(format!("long-polling body ({e}): {detail}"))
                        .await;
                    return;
                }
            },
        };
        let base = self.record(RecordKind::Packet);
        let records = {
            let mut decoder = self.shared.decoder.lock().expect("decoder lock");
            decoder.polling_body(&base, self.dir, body, Instant::now())
        };
        let stats = self.shared.stats(self.dir);
        for record in records {
            if record.kind == RecordKind::Packet {
                stats.frames.fetch_add(1, Ordering::Relaxed);
                stats
                    .bytes
                    .fetch_add(record.len.unwrap_or(0), Ordering::Relaxed);
            }
            self.send(record).await;
        }
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
        let meta = FrameMeta {
            fin: header.fin,
            rsv: header.rsv,
            opcode: header.opcode,
            masked: header.mask.is_some(),
            len: header.payload_len,
        };
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
        let meta = FrameMeta {
            fin: header.fin,
            rsv: header.rsv,
            opcode: header.opcode,
            masked: header.mask.is_some(),
            len: header.payload_len,
        };
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

/// Decompresses a long-polling body sent with `Content-Encoding` gzip or deflate (engine.io
/// compresses bodies over 1 KiB for clients that accept it), up to the capture limit.
fn inflate(encoding: &str, body: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut out = Vec::new();
    let limit = MAX_CAPTURED_BODY as u64 + 1;
    let read = match encoding {
        "gzip" | "x-gzip" => flate2::read::GzDecoder::new(body)
            .take(limit)
            .read_to_end(&mut out),
        "deflate" => flate2::read::ZlibDecoder::new(body)
            .take(limit)
            .read_to_end(&mut out),
        other => return Err(format!("content encoding `{other}` is not decoded")),
    };
    read.map_err(|e| format!("cannot decompress: {e}"))?;
    if out.len() > MAX_CAPTURED_BODY {
        return Err("larger than 4 MiB decompressed: not decoded".into());
    }
    Ok(out)
}
