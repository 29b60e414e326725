//! An in-process `volley inspect` for tests, and scripted peers that send exact bytes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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
            // Whole lines only: the writer may be in the middle of one.
            let text = std::fs::read_to_string(&self.jsonl).unwrap_or_default();
            let whole = text.rfind('\n').map_or("", |end| &text[..end]);
            let records: Vec<serde_json::Value> = whole
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let opened = of_kind(&records, "connect").len();
            let closed = of_kind(&records, "close").len();
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
