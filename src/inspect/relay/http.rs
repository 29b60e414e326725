//! HTTP mode of a pump: request and response heads, bodies by their framing (Content-Length,
//! chunked, until close), Engine.IO long-polling bodies decoded (gzip and deflate too), other
//! text bodies recorded up to `--max-body`, and the wait for the answer to an upgrade request.

use std::io;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{MAX_QUEUED_REQUESTS, UpgradeAnswer};
use super::{Mode, Pump, READ_CHUNK};
use crate::protocol::http1::{self, BodyKind, ChunkedDecoder};
use crate::wire::body::BodyCapture;
use crate::wire::decode::{engineio_version, query_param};
use crate::wire::record::{Dir, RecordKind};

/// HTTP bodies up to this size are kept for decoding (long-polling payloads).
const MAX_CAPTURED_BODY: usize = 4 << 20;
/// Bytes a client may send after an upgrade request before the answer; past this the pump stops
/// reading until the answer comes.
const MAX_EARLY_BYTES: usize = 1 << 20;

/// What a pump keeps of a body while it relays it.
enum Keep {
    /// Nothing.
    Nothing,
    /// Every byte, up to [`MAX_CAPTURED_BODY`] (None past it): a long-polling body, for its
    /// packets.
    Polling(Option<Vec<u8>>),
    /// The start of a text body, for its `http_body` record (boxed: a decompressor's state is
    /// large, and most bodies have none).
    Text(Box<BodyCapture>),
}

impl Keep {
    /// The whole of a long-polling body that holds packets.
    fn polling(packets: bool) -> Keep {
        match packets {
            true => Keep::Polling(Some(Vec::new())),
            false => Keep::Nothing,
        }
    }

    /// The start of a text body (see [`BodyCapture::new`] for which), else nothing.
    fn text(content_type: Option<&[u8]>, encoding: Option<&[u8]>, limit: usize) -> Keep {
        BodyCapture::new(content_type, encoding, limit)
            .map_or(Keep::Nothing, |capture| Keep::Text(Box::new(capture)))
    }

    fn add(&mut self, bytes: &[u8]) {
        match self {
            Keep::Nothing => {}
            Keep::Polling(kept) => {
                if let Some(body) = kept {
                    if body.len() + bytes.len() <= MAX_CAPTURED_BODY {
                        body.extend_from_slice(bytes);
                    } else {
                        *kept = None;
                    }
                }
            }
            Keep::Text(capture) => capture.feed(bytes),
        }
    }
}

/// How a body ended.
enum Body {
    /// Relayed; what was kept of it.
    Done(Keep),
    /// Its framing broke (a malformed chunk): the rest of the stream is relayed raw.
    Raw,
}

/// What reading an HTTP head came to.
enum HeadRead<H> {
    Head(H),
    /// The stream ended first.
    End,
    NotHttp(http1::Http1Error),
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Pump<R, W> {
    // ---- HTTP ----

    /// One HTTP message and its body; the next mode, or None at the end of the stream.
    pub(super) async fn http(&mut self) -> io::Result<Option<Mode>> {
        match self.dir {
            Dir::C2s => self.http_request().await,
            Dir::S2c => self.http_response().await,
        }
    }

    /// Reads until `parse` finds a whole head, the stream ends, or the bytes are not HTTP.
    async fn read_head<H>(
        &mut self,
        parse: fn(&[u8]) -> Result<Option<H>, http1::Http1Error>,
    ) -> io::Result<HeadRead<H>> {
        loop {
            match parse(&self.buf) {
                Ok(Some(head)) => return Ok(HeadRead::Head(head)),
                Ok(None) => {
                    if !self.fill().await? {
                        return Ok(HeadRead::End);
                    }
                }
                Err(e) => return Ok(HeadRead::NotHttp(e)),
            }
        }
    }

    async fn http_request(&mut self) -> io::Result<Option<Mode>> {
        let head = match self.read_head(http1::parse_request_head).await? {
            HeadRead::Head(head) => head,
            HeadRead::End => return self.end_of_http().await,
            HeadRead::NotHttp(e) => {
                self.error(format!("not an HTTP request ({e}): relaying raw bytes"))
                    .await;
                return Ok(Some(Mode::Raw));
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
        let encoding = head.header("content-encoding");
        // Every body of a long-polling request is Engine.IO's: packets (a POST's), or none.
        let keep = match polling {
            true => Keep::polling(head.method == "POST"),
            false => Keep::text(head.header("content-type"), encoding, self.max_body()),
        };
        let encoding = encoding.map(<[u8]>::to_vec);
        match self.body(body_kind, keep).await? {
            Body::Done(kept) => self.kept_records(kept, encoding.as_deref()).await,
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
        let head = match self.read_head(http1::parse_response_head).await? {
            HeadRead::Head(head) => head,
            HeadRead::End => return self.end_of_http().await,
            HeadRead::NotHttp(e) => {
                self.error(format!("not an HTTP response ({e}): relaying raw bytes"))
                    .await;
                self.shared.upgraded.send_replace(UpgradeAnswer::Gone);
                return Ok(Some(Mode::Raw));
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
        let encoding = head.header("content-encoding");
        // Every body of a long-polling response is Engine.IO's: packets (a GET's), or `ok`.
        let polling = engineio_version(&target).is_some()
            && query_param(&target, "transport") == Some("polling");
        let keep = match polling {
            true => Keep::polling(method == "GET" && head.status == 200),
            false => Keep::text(head.header("content-type"), encoding, self.max_body()),
        };
        let encoding = encoding.map(<[u8]>::to_vec);
        match self.body(body_kind, keep).await? {
            Body::Done(kept) => self.kept_records(kept, encoding.as_deref()).await,
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

    /// Relays a body, keeping what `kept` asks for.
    async fn body(&mut self, kind: BodyKind, mut kept: Keep) -> io::Result<Body> {
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
                    kept.add(&part);
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
                    kept.add(&decoded);
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
                kept.add(&part);
                self.to.write_all(&part).await?;
                if !self.fill().await? {
                    break;
                }
            },
        }
        Ok(Body::Done(kept))
    }

    /// Text of an HTTP body kept for its record, at most (`--max-body`).
    fn max_body(&self) -> usize {
        self.shared.decoder.lock().expect("decoder lock").max_body()
    }

    /// The records of what was kept of a body: its packets, or its `http_body` record, which
    /// follows the head's on the same connection.
    async fn kept_records(&mut self, kept: Keep, encoding: Option<&[u8]>) {
        match kept {
            Keep::Nothing | Keep::Polling(None) => {}
            Keep::Polling(Some(body)) => self.polling_records(&body, encoding).await,
            Keep::Text(capture) => match capture.finish() {
                Ok(None) => {}
                Ok(Some(body)) => {
                    let mut record = self.record(RecordKind::HttpBody);
                    self.shared
                        .decoder
                        .lock()
                        .expect("decoder lock")
                        .http_body(&mut record, body);
                    self.send(record).await;
                }
                Err(detail) => self.error(detail).await,
            },
        }
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
