//! Where records go: one writer task reads a bounded channel and prints the records that pass the
//! filter to stdout, writes them to the JSONL file, and counts everything for the summary.
//!
//! The channel holds [`CHANNEL_BOUND`] records (unless [`SinkConfig::bound`] says otherwise). The
//! inspector and tap wait when it is full (every frame is logged; the relay slows only when the
//! output cannot keep up); a load run's frame log drops the record and counts it instead
//! ([`RecordSink::offer`]), so logging never slows the load.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;

use super::filter::Filter;
use super::print;
use super::record::{Dir, Record, RecordKind};
use crate::telemetry::Snapshot;

/// Records in flight to the writer at most.
pub const CHANNEL_BOUND: usize = 8192;

#[derive(Debug, Clone, Default)]
pub struct SinkConfig {
    /// Print one line per record on stdout.
    pub print: bool,
    pub color: bool,
    /// Records printed and written (faults and errors always are).
    pub filter: Filter,
    pub jsonl: Option<PathBuf>,
    /// Records in flight to the writer at most; `None`: [`CHANNEL_BOUND`]. (A small bound makes a
    /// load run's frame log drop records early, which tests use.)
    pub bound: Option<usize>,
    /// `volley inspect --metrics-listen`: the counts so far, updated whenever the writer has
    /// caught up.
    pub live: Option<Arc<Mutex<RecordCounts>>>,
}

/// The sending side, cheap to clone into every connection task.
#[derive(Clone)]
pub struct RecordSink {
    tx: mpsc::Sender<Record>,
    dropped: Arc<AtomicU64>,
}

impl RecordSink {
    /// Sends a record, waiting while the writer is behind.
    pub async fn send(&self, record: Record) {
        let _ = self.tx.send(record).await;
    }

    /// Sends a record if there is room, else drops and counts it.
    pub fn offer(&self, record: Record) {
        if self.tx.try_send(record).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until the writer has room for a record: a client that [offers](Self::offer) its
    /// records (`volley tap`'s frame log) and waits here before reading the next frame is never
    /// behind by more than what one read logs.
    pub async fn room(&self) {
        let _ = self.tx.reserve().await;
    }

    /// Records dropped by [`RecordSink::offer`] so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// What the sink saw, counted: printed when inspect or tap exits, and what a frame log holds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct RecordCounts {
    pub connections: u64,
    /// Frames and polling packets per direction and type (opcode, or `packet`).
    pub frames: BTreeMap<String, BTreeMap<String, u64>>,
    /// Payload bytes per direction.
    pub bytes: BTreeMap<String, u64>,
    pub http_requests: u64,
    /// Close codes seen in close frames, per direction.
    pub close_codes: BTreeMap<String, BTreeMap<u16, u64>>,
    pub faults: BTreeMap<String, u64>,
    pub errors: u64,
    /// Records not logged because the writer was behind (frame logs of a run only).
    pub dropped: u64,
    /// Records written to the JSONL file.
    pub written: u64,
}

impl RecordCounts {
    pub fn count(&mut self, r: &Record) {
        let dir = r.dir.map_or("-", Dir::name).to_string();
        match r.kind {
            RecordKind::Connect => self.connections += 1,
            RecordKind::HttpRequest => self.http_requests += 1,
            RecordKind::Frame | RecordKind::Packet => {
                let kind = r.opcode.unwrap_or("packet").to_string();
                *self
                    .frames
                    .entry(dir.clone())
                    .or_default()
                    .entry(kind)
                    .or_default() += 1;
                *self.bytes.entry(dir.clone()).or_default() += r.len.unwrap_or(0);
                if let Some(code) = r.close_code {
                    *self
                        .close_codes
                        .entry(dir)
                        .or_default()
                        .entry(code)
                        .or_default() += 1;
                }
            }
            RecordKind::Fault => {
                *self
                    .faults
                    .entry(r.fault.unwrap_or("?").to_string())
                    .or_default() += 1;
            }
            RecordKind::Error => self.errors += 1,
            RecordKind::HttpResponse | RecordKind::HttpBody | RecordKind::Close => {}
        }
    }

    /// The counts as Prometheus series (`volley inspect --metrics-listen`).
    pub fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot::new(vec![("pid", std::process::id().to_string())]);
        s.counter(
            "volley_inspect_connections_total",
            "Client connections relayed.",
            &[],
            self.connections,
        );
        s.counter(
            "volley_inspect_http_requests_total",
            "HTTP requests relayed.",
            &[],
            self.http_requests,
        );
        for (dir, kinds) in &self.frames {
            for (kind, n) in kinds {
                s.counter(
                    "volley_inspect_frames_total",
                    "Frames and polling packets, per direction and type.",
                    &[("direction", dir), ("type", kind)],
                    *n,
                );
            }
        }
        for (dir, n) in &self.bytes {
            s.counter(
                "volley_inspect_bytes_total",
                "Payload bytes, per direction.",
                &[("direction", dir)],
                *n,
            );
        }
        for (dir, codes) in &self.close_codes {
            for (code, n) in codes {
                s.counter(
                    "volley_inspect_closes_total",
                    "Close codes seen in close frames, per direction.",
                    &[("direction", dir), ("code", &code.to_string())],
                    *n,
                );
            }
        }
        for (fault, n) in &self.faults {
            s.counter(
                "volley_inspect_faults_total",
                "Faults injected, per kind.",
                &[("fault", fault)],
                *n,
            );
        }
        s.counter(
            "volley_inspect_errors_total",
            "Relay errors.",
            &[],
            self.errors,
        );
        s.counter(
            "volley_inspect_records_written_total",
            "Records written to the JSONL file.",
            &[],
            self.written,
        );
        s.counter(
            "volley_inspect_records_dropped_total",
            "Records dropped: the writer was behind.",
            &[],
            self.dropped,
        );
        s
    }

    /// The summary for people, several lines.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{} connections, {} HTTP requests\n",
            self.connections, self.http_requests
        );
        for dir in ["c2s", "s2c"] {
            let Some(kinds) = self.frames.get(dir) else {
                continue;
            };
            let total: u64 = kinds.values().sum();
            let list: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
            out.push_str(&format!(
                "  {dir}  {total} frames, {} B  ({})\n",
                self.bytes.get(dir).copied().unwrap_or(0),
                list.join(", ")
            ));
        }
        for (dir, codes) in &self.close_codes {
            let list: Vec<String> = codes.iter().map(|(c, n)| format!("{c}×{n}")).collect();
            out.push_str(&format!("  close codes {dir}: {}\n", list.join(" ")));
        }
        if !self.faults.is_empty() {
            let list: Vec<String> = self
                .faults
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            out.push_str(&format!("  faults injected: {}\n", list.join(", ")));
        }
        if self.errors > 0 {
            out.push_str(&format!("  errors: {}\n", self.errors));
        }
        if self.dropped > 0 {
            out.push_str(&format!(
                "  records not logged (writer behind): {}\n",
                self.dropped
            ));
        }
        out
    }
}

/// How long the writer polls an empty channel before it sleeps until the next record arrives.
/// While it polls, a sender finds no sleeping writer to wake: at moderate rates, waking it for
/// every record was a futex call on the relay's thread per frame, and a context switch on the
/// writer's, about a quarter of the inspector's CPU (BENCHMARKS.md, "Inspector").
const LINGER: Duration = Duration::from_millis(20);
/// The pause between polls: records reach the output at most this much later.
const POLL_EVERY: Duration = Duration::from_millis(1);

/// The next record, or None once every sender is gone.
fn next_record(rx: &mut mpsc::Receiver<Record>) -> Option<Record> {
    // The clock is read only once the channel is empty, not for every record.
    let mut idle_since = None;
    loop {
        match rx.try_recv() {
            Ok(record) => return Some(record),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) => {
                if idle_since.get_or_insert_with(Instant::now).elapsed() >= LINGER {
                    return rx.blocking_recv();
                }
                std::thread::sleep(POLL_EVERY);
            }
        }
    }
}

/// Starts the writer task. It ends, returning the summary, when every sink clone is dropped.
pub fn spawn_writer(
    config: SinkConfig,
) -> std::io::Result<(
    RecordSink,
    tokio::task::JoinHandle<std::io::Result<RecordCounts>>,
)> {
    let jsonl = match &config.jsonl {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display()))
            })?,
        )),
        None => None,
    };
    let (tx, rx) = mpsc::channel(config.bound.unwrap_or(CHANNEL_BOUND).max(1));
    let dropped = Arc::new(AtomicU64::new(0));
    let sink = RecordSink {
        tx,
        dropped: dropped.clone(),
    };
    let task = tokio::task::spawn_blocking(move || write_all(config, jsonl, rx, dropped));
    Ok((sink, task))
}

fn write_all(
    config: SinkConfig,
    mut jsonl: Option<std::io::BufWriter<std::fs::File>>,
    mut rx: mpsc::Receiver<Record>,
    dropped: Arc<AtomicU64>,
) -> std::io::Result<RecordCounts> {
    let mut summary = RecordCounts::default();
    // Unlocked: each write takes the lock briefly, so others may print too.
    let mut out = std::io::BufWriter::new(std::io::stdout());
    // A closed stdout (`| head`) stops the printing, not the JSONL file.
    let mut print = config.print;
    while let Some(record) = next_record(&mut rx) {
        summary.count(&record);
        let always = matches!(record.kind, RecordKind::Fault | RecordKind::Error);
        if always || config.filter.matches(&record) {
            if print && writeln!(out, "{}", print::line(&record, config.color)).is_err() {
                print = false;
            }
            if let Some(file) = &mut jsonl {
                file.write_all(record.to_json_line().as_bytes())?;
                summary.written += 1;
            }
        }
        if rx.is_empty() {
            if let Some(live) = &config.live {
                summary.dropped = dropped.load(Ordering::Relaxed);
                *live.lock().expect("no panic holds the lock") = summary.clone();
            }
            if print && out.flush().is_err() {
                print = false;
            }
            if let Some(file) = &mut jsonl {
                file.flush()?;
            }
        }
    }
    if print {
        let _ = out.flush();
    }
    if let Some(file) = &mut jsonl {
        file.flush()?;
    }
    summary.dropped = dropped.load(Ordering::Relaxed);
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::record::Clock;

    #[tokio::test]
    async fn every_record_arrives_whether_the_writer_is_polling_or_asleep() {
        let (sink, writer) = spawn_writer(SinkConfig::default()).unwrap();
        let clock = Clock::new();
        let connect = |conn| clock.record(std::time::Instant::now(), conn, RecordKind::Connect);
        sink.send(connect(1)).await;
        sink.send(connect(2)).await;
        // Idle past the linger: the writer sleeps until the next record wakes it.
        tokio::time::sleep(LINGER * 3).await;
        sink.send(connect(3)).await;
        drop(sink);
        let summary = writer.await.unwrap().unwrap();
        assert_eq!(summary.connections, 3);
    }
}
