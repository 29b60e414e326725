//! `volley serve`: the embedded reference server, the default target of every scenario.
//!
//! HTTP/1.1 by hyper, so raw WebSocket and Socket.IO share one port. Raw WebSocket by
//! tokio-tungstenite after hyper hands over the upgraded connection:
//! - `/echo`: every text or binary message back to its sender, after `--delay` if set;
//! - `/broadcast?room=NAME`: every message to every client of the room, the sender included;
//! - `/ticker?every=10ms`: `{"seq":N,"ts":EPOCH_MS}` pushed to each client, N from 0 per client.
//!
//! Socket.IO (Engine.IO v4 and v3, WebSocket and HTTP long-polling) on `/socket.io/`, served by
//! socketioxide, namespaces `/` and `/admin` alike (details in `socketio.rs`):
//! - `echo`: the arguments back as `echo` (binary attachments too), after `--delay` if set;
//! - `ack`: the arguments back through the acknowledgement, after `--delay` if set;
//! - `join` / `leave` with a room name; `chat`: the arguments to every member of the sender's rooms;
//! - `tick`: `{"seq":N,"ts":EPOCH_MS}` pushed to room `ticker` every `--tick-every`, N per namespace;
//! - a CONNECT with auth `{"reject": "why"}` is refused with CONNECT_ERROR "why".
//!
//! [`Faults`] (`--drop-every`, `--dup-every`, `--reorder-every`) drop, duplicate and reorder the
//! fan-out deliveries (`/broadcast`, `/ticker`, `chat`, `tick`) by a fixed rule per stream (one
//! receiving connection, one source), so a test of the gap tracker knows the exact truth; the
//! rules are in `faults.rs`.
//!
//! `--processes N` (`processes.rs`) runs N such servers as processes sharing one port; each
//! WebSocket upgrade answers with an `x-volley-pid` header naming the process that took it.
//!
//! The server runs on its own thread and runtime, so a run with `target = "builtin"` measures the
//! clients' CPU apart from the server's, and stops when its [`ServerHandle`] is stopped or dropped.

pub mod counters;
mod delay;
mod endpoints;
mod faults;
pub mod processes;
mod session;
mod socketio;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use socketioxide::service::SocketIoService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::units::parse_duration;
use counters::{Counted, ServeCounters};
use endpoints::{Broadcast, Echo, Rooms, Ticker};
pub use faults::Faults;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// A fixed delay before every echo (raw `/echo`, Socket.IO `echo` and `ack`), to calibrate a
    /// client against a known latency.
    pub delay: Option<Duration>,
    /// Runtime worker threads; 1 runs everything on the server's own thread.
    pub threads: usize,
    /// TLS (wss://) when set.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// How often Socket.IO `tick` is pushed to the members of room `ticker`; zero for never.
    pub tick_every: Duration,
    /// Deterministic drops, duplicates and reorders of fan-out deliveries, for testing a gap
    /// tracker against a known truth; none by default.
    pub faults: Faults,
    /// Bind with SO_REUSEPORT, so that other processes (`volley serve --processes N`) listen on
    /// the same port and the kernel spreads connections over them.
    pub reuse_port: bool,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            delay: None,
            threads: 1,
            tls: None,
            tick_every: Duration::from_millis(100),
            faults: Faults::default(),
            reuse_port: false,
        }
    }
}

/// A running server. Stopping it (or dropping the handle) closes every connection with 1001.
pub struct ServerHandle {
    addr: SocketAddr,
    tls: bool,
    counters: Arc<ServeCounters>,
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ServerHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the server has counted so far (`volley serve --metrics-listen`).
    pub fn counters(&self) -> Arc<ServeCounters> {
        self.counters.clone()
    }

    /// The URL of an endpoint, e.g. `handle.url("/echo")`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// Stops accepting, closes every connection and waits for the server thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Binds the listening socket now (so the port is known and a bind error is reported at once) and
/// serves on a new thread. Fault switches below 2 are an `InvalidInput` error.
pub fn spawn(config: ServeConfig) -> std::io::Result<ServerHandle> {
    config
        .faults
        .check()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let listener = bind_listener(config.listen, config.reuse_port)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    let runtime = if config.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads)
            .thread_name("volley-serve")
            .enable_all()
            .build()?
    };
    let tls = config.tls.is_some();
    let thread_stop = stop.clone();
    let counters = Arc::new(ServeCounters::default());
    let thread_counters = counters.clone();
    let thread = std::thread::Builder::new()
        .name("volley-serve".into())
        .spawn(move || {
            runtime.block_on(async move {
                match TcpListener::from_std(listener) {
                    Ok(listener) => serve(listener, config, thread_stop, thread_counters).await,
                    Err(e) => tracing::error!("builtin server cannot listen: {e}"),
                }
            });
            runtime.shutdown_timeout(Duration::from_millis(100));
        })?;
    Ok(ServerHandle {
        addr,
        tls,
        counters,
        stop,
        thread: Some(thread),
    })
}

/// How many accepted connections may wait for the server's `accept`. std's `TcpListener::bind`
/// asks for 128: a ramp of 5,000 connections a second overflows that whenever the accepting thread
/// is busy for 25 ms, and the kernel then drops SYNs, which clients retry only after 1 s, 3 s, 7 s.
/// The kernel caps the figure at net.core.somaxconn (4,096 by default since Linux 5.4).
const LISTEN_BACKLOG: i32 = 4096;

/// A listening socket as `TcpListener::bind` makes one (SO_REUSEADDR, as std sets on Unix), with a
/// backlog of `LISTEN_BACKLOG`; with `reuse_port`, one that other SO_REUSEPORT sockets of the same
/// user may share (`volley serve --processes`).
fn bind_listener(addr: SocketAddr, reuse_port: bool) -> std::io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

struct Shared {
    delay: Option<delay::DelayLine>,
    rooms: Rooms,
    faults: Faults,
    stop: CancellationToken,
    /// Every connection task, so a stop can wait for their close frames to go out.
    tasks: TaskTracker,
    counters: Arc<ServeCounters>,
}

/// The response header of a WebSocket upgrade naming the server process's id.
pub const SERVED_BY: &str = "x-volley-pid";

/// How long a stopping server waits for its connections to close.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Accepts connections until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    config: ServeConfig,
    shutdown: CancellationToken,
    counters: Arc<ServeCounters>,
) {
    let delay = config.delay.map(delay::DelayLine::start);
    let shared = Arc::new(Shared {
        delay: delay.clone(),
        rooms: Rooms::default(),
        faults: config.faults,
        stop: shutdown.clone(),
        tasks: TaskTracker::new(),
        counters: counters.clone(),
    });
    // Socket.IO takes `/socket.io/` and hands every other request to the raw endpoints.
    let (service, io) = socketio::service(
        Routes(shared.clone()),
        delay,
        config.tick_every,
        config.faults,
        &shared.tasks,
        &shutdown,
        counters,
    );
    let acceptor = config.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors or a connection reset before accept: wait, keep serving.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = service.clone();
        let stop = shutdown.clone();
        shared.tasks.spawn(async move {
            match acceptor {
                Some(acceptor) => {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        serve_http(tls, service, stop).await;
                    }
                }
                None => serve_http(stream, service, stop).await,
            }
        });
    }
    shared.tasks.close();
    // Socket.IO connections are closed by socketioxide (its tasks are its own); raw WebSocket
    // sessions and HTTP connections close themselves on `shutdown`.
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        tokio::join!(socketio::close(&io), shared.tasks.wait());
    })
    .await;
}

async fn serve_http<I>(io: I, service: SocketIoService<Routes>, stop: CancellationToken)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let connection = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = stop.cancelled() => {}
    }
    // Answer the request in flight (a long-poll that the closing Socket.IO server completes),
    // then close instead of waiting for the next one on a kept-alive connection.
    connection.as_mut().graceful_shutdown();
    let _ = connection.await;
}

/// The raw endpoints, as the service behind Socket.IO's.
#[derive(Clone)]
struct Routes(Arc<Shared>);

impl hyper::service::Service<Request<Incoming>> for Routes {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        std::future::ready(Ok(route(req, self.0.clone())))
    }
}

enum Endpoint {
    Echo,
    Broadcast(String),
    Ticker(Duration),
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(format!("{text}\n"))))
        .expect("static response parts are valid")
}

fn query_param<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.uri()
        .query()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn route(req: Request<Incoming>, shared: Arc<Shared>) -> Response<Full<Bytes>> {
    let endpoint = match req.uri().path() {
        "/echo" => Endpoint::Echo,
        "/broadcast" => {
            Endpoint::Broadcast(query_param(&req, "room").unwrap_or("default").to_string())
        }
        "/ticker" => match query_param(&req, "every").map(parse_duration) {
            None => Endpoint::Ticker(Duration::from_secs(1)),
            Some(Ok(every)) if !every.is_zero() => Endpoint::Ticker(every),
            Some(_) => {
                return plain(
                    StatusCode::BAD_REQUEST,
                    "every= must be a duration like 10ms",
                );
            }
        },
        _ => {
            return plain(
                StatusCode::NOT_FOUND,
                "volley serve: endpoints are /echo, /broadcast?room=NAME, /ticker?every=10ms and Socket.IO on /socket.io/",
            );
        }
    };
    let is_upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let key = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned();
    let (true, Some(key)) = (is_upgrade, key) else {
        let mut response = plain(
            StatusCode::UPGRADE_REQUIRED,
            "this endpoint speaks WebSocket: connect with a WebSocket client",
        );
        response.headers_mut().insert(
            header::UPGRADE,
            header::HeaderValue::from_static("websocket"),
        );
        return response;
    };
    let on_upgrade = hyper::upgrade::on(req);
    let tasks = shared.tasks.clone();
    tasks.spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let config = WebSocketConfig::default()
            .read_buffer_size(8 * 1024)
            .write_buffer_size(8 * 1024)
            .max_write_buffer_size(1024 * 1024);
        let ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        let stop = shared.stop.clone();
        let counts = |endpoint| shared.counters.of(endpoint);
        match endpoint {
            Endpoint::Echo => {
                let echo = Echo::new(shared.delay.as_ref());
                session::run(ws, echo, stop, counts(Counted::Echo)).await
            }
            Endpoint::Broadcast(room) => {
                let member = Broadcast::join(&shared.rooms, room, shared.faults);
                session::run(ws, member, stop, counts(Counted::Broadcast)).await
            }
            Endpoint::Ticker(every) => {
                let ticker = Ticker::new(every, shared.faults);
                session::run(ws, ticker, stop, counts(Counted::Ticker)).await
            }
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        // Which process answered, for `volley serve --processes N` (and anyone debugging it).
        .header(SERVED_BY, std::process::id())
        .header(
            header::SEC_WEBSOCKET_ACCEPT,
            derive_accept_key(key.as_bytes()),
        )
        .body(Full::new(Bytes::new()))
        .expect("static response parts are valid")
}
