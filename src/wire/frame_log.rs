//! The frame log of a load run (`volley run --log-frames`): each sampled client decodes what it
//! sends and receives into [`Record`]s, in the shape `volley inspect --jsonl` writes, on its own
//! task, and offers them to one writer task (the [`sink`](super::sink)) through a bounded channel.
//! When the channel is full the record is dropped and counted, never waited for: logging cannot
//! slow the load.
//!
//! A client that is not sampled has no [`ConnFrameLog`]: where its transport sends and receives,
//! an `Option` is checked and nothing else happens.
//!
//! What a sampled connection logs: a `connect` record when its transport is open; every WebSocket
//! message sent and received (text, binary, the close frames and the pings and pongs received;
//! tungstenite's automatic pong and close replies are not seen); over long-polling every Engine.IO
//! packet (as `packet` records); and a `close` record when the connection object goes away, with
//! the close code when one is known, why it ended, and the frames and bytes each way. A reconnect
//! is a new connection: a new `connect` record under the same `conn` (the client id).
//!
//! Every record passes the connection's decoder's last redaction pass before it is offered:
//! secret query values in the target, and the values its client holds secret (given with
//! [`ConnFrameLog::learn_secret`]), read `[redacted]`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use tokio_tungstenite::tungstenite::Message;

use super::decode::{ConnDecoder, DecodeOptions, FrameMeta};
use super::record::{Clock, Dir, Record, RecordKind};
use super::sample::ClientSample;
use super::sink::{self, RecordCounts, RecordSink, SinkConfig};
use crate::protocol::engineio::{self, Version};

/// `--log-frames` and `--log-clients`, typed.
#[derive(Debug, Clone, Default)]
pub struct FrameLogOptions {
    /// Where the records go; default `frames.jsonl` in the results folder.
    pub file: Option<PathBuf>,
    pub clients: ClientSample,
    /// Records in flight to the writer at most; `None`: [`sink::CHANNEL_BOUND`]. Past it, records
    /// are dropped and counted.
    pub bound: Option<usize>,
}

/// What the clients of a run share: the channel to the writer, the clock, who is sampled, and
/// what is hidden.
pub struct RunFrameLog {
    sink: RecordSink,
    clock: Clock,
    clients: ClientSample,
    decode: DecodeOptions,
}

/// The writer task of a run's frame log.
pub struct FrameLogWriter {
    task: tokio::task::JoinHandle<std::io::Result<RecordCounts>>,
}

impl RunFrameLog {
    /// Creates `file` and starts its writer. `clock`: the run's time zero; `decode`: what records
    /// show (the run's secret rules).
    pub fn start(
        options: &FrameLogOptions,
        file: PathBuf,
        clock: Clock,
        decode: DecodeOptions,
    ) -> std::io::Result<(RunFrameLog, FrameLogWriter)> {
        let config = SinkConfig {
            jsonl: Some(file),
            bound: options.bound,
            ..SinkConfig::default()
        };
        let (sink, task) = sink::spawn_writer(config)?;
        let log = RunFrameLog {
            sink,
            clock,
            clients: options.clients.clone(),
            decode,
        };
        Ok((log, FrameLogWriter { task }))
    }

    /// The log of a new connection of client `id`, if the client is sampled. `engine`: the
    /// Engine.IO version of a Socket.IO connection, `None` for raw WebSocket.
    pub fn connection(&self, id: u32, engine: Option<Version>) -> Option<Box<ConnFrameLog>> {
        self.clients.contains(id).then(|| {
            Box::new(ConnFrameLog::new(
                self.sink.clone(),
                self.clock,
                u64::from(id),
                self.decode.clone(),
                engine,
            ))
        })
    }
}

impl FrameLogWriter {
    /// Waits for the writer to write what is queued and close the file; it finishes once every
    /// [`RunFrameLog`] and [`ConnFrameLog`] has been dropped. The summary counts the records
    /// written and dropped.
    pub async fn finish(self) -> std::io::Result<RecordCounts> {
        self.task.await.map_err(std::io::Error::other)?
    }
}

/// The frame log of one connection of a sampled client.
pub struct ConnFrameLog {
    sink: RecordSink,
    clock: Clock,
    conn: u64,
    decoder: ConnDecoder,
    /// A connect record went out: a close record follows when the log is dropped.
    opened: bool,
    close_code: Option<u16>,
    /// Why the connection ended, when it did not end normally.
    end: Option<String>,
    /// Frames and payload bytes, c2s then s2c.
    frames: [u64; 2],
    bytes: [u64; 2],
}

impl ConnFrameLog {
    /// The log of connection `conn`, offering its records to `sink` (a run's frame log, or
    /// `volley tap`'s one connection). `engine`: the Engine.IO version of a Socket.IO connection,
    /// `None` for raw WebSocket.
    pub fn new(
        sink: RecordSink,
        clock: Clock,
        conn: u64,
        options: DecodeOptions,
        engine: Option<Version>,
    ) -> ConnFrameLog {
        ConnFrameLog {
            sink,
            clock,
            conn,
            decoder: ConnDecoder::new(options, engine),
            opened: false,
            close_code: None,
            end: None,
            frames: [0; 2],
            bytes: [0; 2],
        }
    }

    /// The transport is open: the connect record, with the server's address and the request
    /// target (path and query).
    pub fn opened(&mut self, peer: SocketAddr, target: &str) {
        let mut record = self
            .clock
            .record(Instant::now(), self.conn, RecordKind::Connect);
        record.peer = Some(peer.to_string());
        record.target = Some(target.to_string());
        self.opened = true;
        self.decoder.redact(&mut record);
        self.sink.offer(record);
    }

    /// A value to hide wherever it appears in this connection's records: a token its user
    /// captured, a password column of its row.
    pub fn learn_secret(&mut self, value: &str) {
        self.decoder.learn_secret(value);
    }

    /// A WebSocket message sent (`C2s`) or received (`S2c`).
    pub fn ws_message(&mut self, dir: Dir, message: &Message) {
        let at = Instant::now();
        let mut record = self.clock.record(at, self.conn, RecordKind::Frame);
        let control = |opcode, len: usize| FrameMeta {
            fin: true,
            rsv: 0,
            opcode,
            masked: dir == Dir::C2s,
            len: len as u64,
        };
        match message {
            Message::Text(text) => {
                self.decoder
                    .message(&mut record, dir, false, text.as_bytes(), at)
            }
            Message::Binary(data) => self.decoder.message(&mut record, dir, true, data, at),
            Message::Ping(data) => {
                let meta = control(9, data.len());
                self.decoder.frame(&mut record, dir, meta, data, at);
            }
            Message::Pong(data) => {
                let meta = control(10, data.len());
                self.decoder.frame(&mut record, dir, meta, data, at);
            }
            Message::Close(frame) => {
                let mut payload = Vec::new();
                if let Some(frame) = frame {
                    payload.extend_from_slice(&u16::from(frame.code).to_be_bytes());
                    payload.extend_from_slice(frame.reason.as_bytes());
                }
                let meta = control(8, payload.len());
                self.decoder.frame(&mut record, dir, meta, &payload, at);
                if dir == Dir::S2c {
                    self.close_code = Some(record.close_code.unwrap_or(1005));
                }
            }
            // Raw frames are only read by a frame-level reader, which clients are not.
            Message::Frame(_) => return,
        }
        self.offer(dir, record);
    }

    /// One Engine.IO packet over long-polling, as its text.
    pub fn polling_packet(&mut self, dir: Dir, packet: &str) {
        let at = Instant::now();
        let mut record = self.clock.record(at, self.conn, RecordKind::Packet);
        self.decoder.packet(&mut record, dir, packet, at);
        self.offer(dir, record);
    }

    /// A binary message sent over long-polling, logged as the `b...` packet that carries it.
    pub fn polling_binary(&mut self, dir: Dir, data: &[u8]) {
        let version = self.decoder.engine().unwrap_or(Version::V4);
        self.polling_packet(dir, &engineio::binary_packet(version, data));
    }

    /// The code the connection closed with (1006: without a close handshake).
    pub fn closed(&mut self, code: u16) {
        self.close_code = Some(code);
    }

    /// Why the connection ended, for the close record.
    pub fn ended(&mut self, why: String) {
        self.end = Some(why);
    }

    fn offer(&mut self, dir: Dir, mut record: Record) {
        let slot = usize::from(dir == Dir::S2c);
        self.frames[slot] += 1;
        self.bytes[slot] += record.len.unwrap_or(0);
        self.decoder.redact(&mut record);
        self.sink.offer(record);
    }
}

impl Drop for ConnFrameLog {
    /// The connection object is gone: the close record.
    fn drop(&mut self) {
        if !self.opened {
            return;
        }
        let mut record = self
            .clock
            .record(Instant::now(), self.conn, RecordKind::Close);
        record.close_code = self.close_code;
        record.detail = self.end.take();
        record.frames_c2s = Some(self.frames[0]);
        record.frames_s2c = Some(self.frames[1]);
        record.bytes_c2s = Some(self.bytes[0]);
        record.bytes_s2c = Some(self.bytes[1]);
        self.decoder.redact(&mut record);
        self.sink.offer(record);
    }
}
