//! `volley inspect`: a reverse proxy that relays every byte unchanged and decodes a copy.
//!
//! Each accepted connection gets an upstream connection (TCP, or TLS for wss:// and https://) and
//! two pumps, one per direction ([`super::relay`]). The client's bytes are parsed as HTTP/1.1
//! requests until a request asks for a WebSocket and the upstream answers `101`; from then on both
//! directions are parsed as WebSocket frames. Bytes that are neither are relayed raw.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::faults::FaultPlan;
use super::relay::{Pump, Shared, UpgradeAnswer};
use crate::transport::ws::Connector;
use crate::wire::acks::SessionBooks;
use crate::wire::decode::{ConnDecoder, DecodeOptions};
use crate::wire::record::{Clock, Dir, RecordKind};
use crate::wire::sink::RecordSink;

/// A byte stream of either side: plain TCP or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Io for T {}

/// What the inspector needs, typed.
#[derive(Clone)]
pub struct InspectConfig {
    pub listen: SocketAddr,
    /// Opens connections to the upstream (its scheme decides TLS).
    pub upstream: Connector,
    /// The upstream as the user wrote it, for records and messages.
    pub upstream_url: String,
    /// TLS on the listening side (`--cert`/`--key`).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub decode: DecodeOptions,
    pub faults: Arc<FaultPlan>,
}

/// A bound inspector, ready to run.
pub struct Inspector {
    listener: TcpListener,
    config: InspectConfig,
}

/// Binds the listening socket (so callers know the address before traffic starts).
pub async fn bind(config: InspectConfig) -> std::io::Result<Inspector> {
    let listener = TcpListener::bind(config.listen).await?;
    Ok(Inspector { listener, config })
}

impl Inspector {
    pub fn local_addr(&self) -> SocketAddr {
        // A bound listener always has an address.
        self.listener.local_addr().unwrap_or(self.config.listen)
    }

    /// Accepts and relays connections until `shutdown` completes; then ends every connection and
    /// returns once their last records are sent.
    pub async fn run(self, sink: RecordSink, shutdown: impl Future<Output = ()>) {
        let clock = Clock::new();
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        let acceptor = self.config.tls.clone().map(tokio_rustls::TlsAcceptor::from);
        let sessions = Arc::new(SessionBooks::default());
        let mut next_id = 0u64;
        tokio::pin!(shutdown);
        loop {
            let (tcp, peer) = tokio::select! {
                _ = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of files, for instance: say so and keep serving the others.
                        let mut r = clock.record(Instant::now(), 0, RecordKind::Error);
                        r.detail = Some(format!("accept failed: {e}"));
                        sink.send(r).await;
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            next_id += 1;
            let conn = Connection {
                id: next_id,
                clock,
                sink: sink.clone(),
                config: self.config.clone(),
                stop: stop.child_token(),
                sessions: sessions.clone(),
            };
            let acceptor = acceptor.clone();
            tasks.spawn(async move { conn.serve(tcp, peer, acceptor).await });
        }
        stop.cancel();
        tasks.close();
        tasks.wait().await;
    }
}

struct Connection {
    id: u64,
    clock: Clock,
    sink: RecordSink,
    config: InspectConfig,
    stop: CancellationToken,
    sessions: Arc<SessionBooks>,
}

impl Connection {
    async fn serve(
        self,
        tcp: TcpStream,
        peer: SocketAddr,
        acceptor: Option<tokio_rustls::TlsAcceptor>,
    ) {
        let _ = tcp.set_nodelay(true);
        let mut record = self
            .clock
            .record(Instant::now(), self.id, RecordKind::Connect);
        record.peer = Some(peer.to_string());
        record.upstream = Some(self.upstream_url());
        self.sink.send(record).await;

        let client: Box<dyn Io> = match acceptor {
            None => Box::new(tcp),
            Some(acceptor) => {
                let accepted = tokio::select! {
                    accepted = acceptor.accept(tcp) => accepted,
                    _ = self.stop.cancelled() => return,
                };
                match accepted {
                    Ok(tls) => Box::new(tls),
                    Err(e) => {
                        self.error(format!("TLS handshake with the client failed: {e}"))
                            .await;
                        return;
                    }
                }
            }
        };
        let connected = tokio::select! {
            connected = self.config.upstream.connect_transport() => connected,
            _ = self.stop.cancelled() => return,
        };
        let upstream = match connected {
            Ok(stream) => stream,
            Err(e) => {
                let detail = format!("cannot reach the upstream {}: {e}", self.upstream_url());
                let mut client = client;
                let body = format!("volley inspect: {detail}\n");
                let response = format!(
                    "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = client.write_all(response.as_bytes()).await;
                let _ = client.shutdown().await;
                self.error(detail).await;
                return;
            }
        };

        let (upgraded, _) = watch::channel(UpgradeAnswer::Pending);
        let shared = Arc::new(Shared {
            id: self.id,
            clock: self.clock,
            sink: self.sink.clone(),
            decoder: Mutex::new(ConnDecoder::new(self.config.decode.clone(), None)),
            faults: self.config.faults.clone(),
            stats: Default::default(),
            requests: Mutex::new(VecDeque::new()),
            upgraded,
            matched: AtomicU64::new(0),
            sessions: self.sessions.clone(),
            stop: self.stop.clone(),
        });
        let (client_read, client_write) = tokio::io::split(client);
        let (upstream_read, upstream_write) = tokio::io::split(upstream);
        let c2s = Pump::new(Dir::C2s, client_read, upstream_write, shared.clone());
        let s2c = Pump::new(Dir::S2c, upstream_read, client_write, shared.clone());
        let (up, down) = tokio::join!(c2s.run(), s2c.run());

        let mut record = self
            .clock
            .record(Instant::now(), self.id, RecordKind::Close);
        let c2s_stats = shared.stats(Dir::C2s);
        let s2c_stats = shared.stats(Dir::S2c);
        record.frames_c2s = Some(c2s_stats.frames.load(Ordering::Relaxed));
        record.bytes_c2s = Some(c2s_stats.bytes.load(Ordering::Relaxed));
        record.frames_s2c = Some(s2c_stats.frames.load(Ordering::Relaxed));
        record.bytes_s2c = Some(s2c_stats.bytes.load(Ordering::Relaxed));
        let problems: Vec<String> = [("client", up), ("upstream", down)]
            .into_iter()
            .filter_map(|(side, result)| result.err().map(|e| format!("{side}: {e}")))
            .collect();
        if !problems.is_empty() {
            record.detail = Some(problems.join("; "));
        }
        self.sink.send(record).await;
    }

    /// The upstream as the user wrote it, secret query values hidden.
    fn upstream_url(&self) -> String {
        let secrets = &self.config.decode.secrets;
        secrets
            .redact_query(&self.config.upstream_url, None)
            .into_owned()
    }

    async fn error(&self, detail: String) {
        let mut record = self
            .clock
            .record(Instant::now(), self.id, RecordKind::Error);
        record.detail = Some(detail);
        self.sink.send(record).await;
    }
}
