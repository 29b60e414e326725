//! The practical limits volley's hot paths are measured against: the simplest tokio-tungstenite
//! clients there are, not part of volley. Every loop runs its connections as tasks on the runtime
//! it is given (benches use one current-thread runtime) with a 4 KiB read buffer, and reports the
//! CPU time of that thread over its measured phase only: connects and closes are left out.
//!
//! - [`echo`]: each connection sends a small text message and awaits its echo, in a closed loop
//!   (as fast as the server answers), or sends at a fixed rate and counts the echoes.
//! - [`receive`]: each connection reads and counts what the server pushes, nothing else. One of
//!   them may also send a message at a fixed interval (a talker in a broadcast room).
//!
//! Shared by benches/minimal/main.rs (run by benches/peers/run.py) and benches/loopback.rs.
#![allow(dead_code)] // each includer uses some of the loops

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// What a loop did in its measured phase.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    /// Echoes completed, or messages received.
    pub events: u64,
    pub wall: Duration,
    /// CPU time (user + system) of the runtime's thread over the phase.
    pub cpu: Duration,
}

impl Phase {
    /// One JSON line, the form benches/peers/run.py reads.
    pub fn json(&self) -> String {
        format!(
            "{{\"events\":{},\"phase_s\":{:.3},\"phase_cpu_s\":{:.3}}}",
            self.events,
            self.wall.as_secs_f64(),
            self.cpu.as_secs_f64()
        )
    }
}

/// CPU time (user + system) of the calling thread.
pub fn thread_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

type Socket = WebSocketStream<TcpStream>;

/// Opens `clients` connections to `url` (`ws://HOST:PORT/PATH?QUERY`), one after another.
pub async fn connect(url: &str, clients: usize) -> Vec<Socket> {
    let addr = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .expect("a ws:// URL")
        .to_string();
    let mut sockets = Vec::with_capacity(clients);
    for _ in 0..clients {
        let tcp = TcpStream::connect(&addr).await.expect("connect");
        tcp.set_nodelay(true).expect("TCP_NODELAY");
        let config = WebSocketConfig::default().read_buffer_size(4096);
        let (ws, _) = tokio_tungstenite::client_async_with_config(url, tcp, Some(config))
            .await
            .expect("WebSocket handshake");
        sockets.push(ws);
    }
    sockets
}

/// Echo loop on `clients` connections for `run_for`; closes them after the phase. Without a
/// rate, closed: each connection sends the next message when the echo of the last one is back.
/// With `per_second`, open: each sends on its own interval whatever came back, as a load
/// generator must, and counts the echoes that arrive.
pub async fn echo(url: &str, clients: usize, run_for: Duration, per_second: Option<f64>) -> Phase {
    let sockets = connect(url, clients).await;
    let cpu_before = thread_cpu();
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + run_for;
    let mut tasks = Vec::with_capacity(clients);
    for (i, ws) in sockets.into_iter().enumerate() {
        tasks.push(match per_second {
            None => tokio::spawn(closed_echo(ws, i, deadline)),
            Some(rate) => {
                let every = Duration::from_secs_f64(1.0 / rate);
                tokio::spawn(open_echo(ws, i, deadline, every))
            }
        });
    }
    let mut events = 0;
    let mut open = Vec::with_capacity(clients);
    for task in tasks {
        let (n, ws) = task.await.expect("echo task");
        events += n;
        open.push(ws);
    }
    let phase = Phase {
        events,
        wall: started.elapsed(),
        cpu: thread_cpu() - cpu_before,
    };
    for mut ws in open {
        let _ = ws.close(None).await;
    }
    phase
}

fn echo_text(client: usize, n: u64) -> Message {
    Message::text(format!(r#"{{"text":"hello from {client}","n":"{n}"}}"#))
}

async fn closed_echo(
    mut ws: Socket,
    client: usize,
    deadline: tokio::time::Instant,
) -> (u64, Socket) {
    let mut n = 0u64;
    while tokio::time::Instant::now() < deadline {
        if ws.send(echo_text(client, n)).await.is_err() {
            break;
        }
        match ws.next().await {
            Some(Ok(_)) => n += 1,
            _ => break,
        }
    }
    (n, ws)
}

async fn open_echo(
    mut ws: Socket,
    client: usize,
    deadline: tokio::time::Instant,
    every: Duration,
) -> (u64, Socket) {
    // Spread the first sends over one interval, so that the connections do not all send at once.
    let first = tokio::time::Instant::now() + every.mul_f64((client % 1000) as f64 / 1000.0);
    let mut ticks = tokio::time::interval_at(first, every);
    let end = tokio::time::sleep_until(deadline);
    tokio::pin!(end);
    let (mut sent, mut echoes) = (0u64, 0u64);
    loop {
        tokio::select! {
            _ = &mut end => break,
            _ = ticks.tick() => {
                if ws.send(echo_text(client, sent)).await.is_err() {
                    break;
                }
                sent += 1;
            }
            message = ws.next() => match message {
                Some(Ok(_)) => echoes += 1,
                _ => break,
            },
        }
    }
    (echoes, ws)
}

/// A talker for [`receive`]: the first connection also sends `payload(n)` every `every`.
pub struct Talker {
    pub every: Duration,
    pub payload: fn(u64) -> String,
}

/// How long [`receive`] reads before its phase starts.
pub const WARM_UP: Duration = Duration::from_secs(2);

/// Receive-only loop: `clients` connections read and count every message for `run_for` after a
/// warm-up of [`WARM_UP`]. With a talker, the first connection also sends on its schedule (its
/// sends are not counted).
pub async fn receive(
    url: &str,
    clients: usize,
    run_for: Duration,
    talker: Option<Talker>,
) -> Phase {
    let sockets = connect(url, clients).await;
    let received = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(clients + 1);
    let mut sockets = sockets.into_iter();
    if let Some(talker) = talker {
        // Only the talker's connection is split: a split stream takes a lock on every read.
        let (mut sink, stream) = sockets.next().expect("at least one client").split();
        tasks.push(tokio::spawn(count_all(stream, received.clone())));
        tasks.push(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(talker.every);
            for n in 0.. {
                ticks.tick().await;
                if sink.send(Message::text((talker.payload)(n))).await.is_err() {
                    break;
                }
            }
        }));
    }
    for ws in sockets {
        tasks.push(tokio::spawn(count_all(ws, received.clone())));
    }
    // What queued up while the others connected is read in a burst, cheaper per message than
    // the steady stream: the phase starts after it.
    tokio::time::sleep(WARM_UP).await;
    let (before, cpu_before, started) = (
        received.load(Ordering::Relaxed),
        thread_cpu(),
        Instant::now(),
    );
    tokio::time::sleep(run_for).await;
    let phase = Phase {
        events: received.load(Ordering::Relaxed) - before,
        wall: started.elapsed(),
        cpu: thread_cpu() - cpu_before,
    };
    for task in tasks {
        task.abort();
    }
    phase
}

/// Reads `stream` to its end, adding one to `counter` per message.
async fn count_all<S>(mut stream: S, counter: Arc<AtomicU64>)
where
    S: futures_util::Stream<Item = tokio_tungstenite::tungstenite::Result<Message>> + Unpin,
{
    while let Some(Ok(_)) = stream.next().await {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
