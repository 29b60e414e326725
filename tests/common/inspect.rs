//! An in-process `volley inspect` for tests, the binary run as a user runs it, and scripted peers
//! that send exact bytes.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use volley::inspect::faults::FaultPlan;
use volley::inspect::proxy::{self, InspectConfig};
use volley::inspect::upstream;
use volley::wire::decode::DecodeOptions;
use volley::wire::sink::{self, RecordCounts, SinkConfig};

/// An inspector running in-process; `stop()` ends it and returns its summary.
pub struct Running {
    pub addr: SocketAddr,
    pub jsonl: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<RecordCounts>,
}

impl Running {
    /// Waits (up to `timeout`) until every connection the inspector accepted has ended and its
    /// close record is in the file: then so is every frame that crossed it.
    pub async fn wait_all_closed(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let (opened, closed) = connections_in(&self.jsonl);
            if opened > 0 && opened == closed {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{opened} connections accepted, {closed} closed after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(mut self) -> (RecordCounts, Vec<serde_json::Value>) {
        let _ = self.stop.take().unwrap().send(());
        let summary = self.task.await.unwrap();
        (summary, read_jsonl(&self.jsonl))
    }
}

pub async fn inspect(
    dir: &Path,
    upstream_url: &str,
    faults: FaultPlan,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Running {
    inspect_decoding(dir, upstream_url, faults, tls, DecodeOptions::default()).await
}

/// An inspector that decodes with `decode` (`--max-body`, `--show-secrets`, `--secret`).
pub async fn inspect_decoding(
    dir: &Path,
    upstream_url: &str,
    faults: FaultPlan,
    tls: Option<Arc<rustls::ServerConfig>>,
    decode: DecodeOptions,
) -> Running {
    let connector = upstream(upstream_url, true).await.unwrap();
    let config = InspectConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream: connector,
        upstream_url: upstream_url.to_string(),
        tls,
        decode,
        faults: Arc::new(faults),
    };
    let inspector = proxy::bind(config).await.unwrap();
    let addr = inspector.local_addr();
    let jsonl = dir.join("frames.jsonl");
    let (sink, writer) = sink::spawn_writer(SinkConfig {
        print: false,
        jsonl: Some(jsonl.clone()),
        ..SinkConfig::default()
    })
    .unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        inspector
            .run(sink, async move {
                let _ = stopped.await;
            })
            .await;
        writer.await.unwrap().unwrap()
    });
    Running {
        addr,
        jsonl,
        stop: Some(stop),
        task,
    }
}

/// The connections a JSONL file of the inspector shows accepted and closed so far (whole lines
/// only: the writer may be in the middle of one).
fn connections_in(jsonl: &Path) -> (usize, usize) {
    let text = std::fs::read_to_string(jsonl).unwrap_or_default();
    let whole = text.rfind('\n').map_or("", |end| &text[..end]);
    let records: Vec<serde_json::Value> = whole
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        of_kind(&records, "connect").len(),
        of_kind(&records, "close").len(),
    )
}

/// `volley inspect --listen 127.0.0.1:0 --upstream URL --jsonl FILE --quiet`, the binary, as a
/// user runs it. Dropping it kills the process (by its PID).
pub struct InspectBinary {
    child: Child,
    pub addr: SocketAddr,
    pub jsonl: PathBuf,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl InspectBinary {
    /// Starts the inspector with `extra` flags (`--show-secrets`...) and waits for the line
    /// that names its address.
    pub fn start(upstream: &str, jsonl: &Path, extra: &[&str]) -> InspectBinary {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("volley"))
            .args(["inspect", "--listen", "127.0.0.1:0", "--upstream", upstream])
            .arg("--jsonl")
            .arg(jsonl)
            .arg("--quiet")
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let addr = match listening_address(&mut stderr) {
            Ok(addr) => addr,
            Err(line) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("volley inspect printed no address: {line:?}");
            }
        };
        // The rest of stderr (the summary at the end) is kept, and read so that the inspector
        // never blocks on a full pipe.
        let stderr = std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = stderr.read_to_string(&mut rest);
            rest
        });
        InspectBinary {
            child,
            addr,
            jsonl: jsonl.to_path_buf(),
            stderr: Some(stderr),
        }
    }

    /// `http://ADDR`, where clients go instead of the upstream.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits (up to `timeout`) until every connection the inspector accepted is closed, stops
    /// it with SIGTERM, and returns its records and the summary it printed on stderr. Panics
    /// when it does not exit within 10 s or exits with a failure.
    pub fn stop(mut self, timeout: Duration) -> (Vec<serde_json::Value>, String) {
        let deadline = Instant::now() + timeout;
        loop {
            let (opened, closed) = connections_in(&self.jsonl);
            if opened == closed || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SIGTERM stops the inspector gracefully: open connections end, the file is flushed.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let exit_by = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < exit_by,
                "volley inspect still running 10 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let summary = self.stderr.take().unwrap().join().unwrap();
        assert!(
            status.success(),
            "volley inspect failed ({status}): {summary}"
        );
        (read_jsonl(&self.jsonl), summary)
    }
}

impl Drop for InspectBinary {
    fn drop(&mut self) {
        // Child::kill sends SIGKILL to this child's PID (a no-op error once it exited).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn of_kind<'a>(records: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    records.iter().filter(|r| r["kind"] == kind).collect()
}

pub async fn read_until_head_end(stream: &mut TcpStream, into: &mut Vec<u8>) {
    let mut byte = [0u8; 1];
    while !into.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "head ended early");
        into.push(byte[0]);
    }
}

/// A server that answers the upgrade, sends `frames`, and returns every byte it received.
pub async fn scripted_server(
    reply_head: &'static [u8],
    frames: Vec<Vec<u8>>,
) -> (SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut received = Vec::new();
        read_until_head_end(&mut stream, &mut received).await;
        // The head and the first frames in one write: the proxy must find frames right after
        // the 101 in the same read.
        let mut reply = reply_head.to_vec();
        reply.extend(frames.concat());
        stream.write_all(&reply).await.unwrap();
        stream.shutdown().await.unwrap();
        stream.read_to_end(&mut received).await.unwrap();
        received
    });
    (addr, task)
}

/// The address `volley inspect` (the binary) listens on, read from the first line of its stderr
/// (`... http://127.0.0.1:PORT ...`); that line when it names none.
pub fn listening_address(stderr: &mut impl BufRead) -> Result<SocketAddr, String> {
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    line.split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|addr| addr.parse().ok())
        .ok_or(line)
}
