//! The practical limit for volley's echo path: the simplest tokio-tungstenite echo client there
//! is, not part of volley. N connections on one current-thread runtime, each sending a small text
//! message and awaiting its echo in a loop (closed loop: as fast as the server answers).
//!
//! `cargo bench --bench minimal_echo -- ws://127.0.0.1:PORT/echo [CLIENTS] [SECONDS]`
//!
//! benches/peers/run.py runs it beside `volley run` (same server, same CPU pinning). Prints one
//! JSON line: echoes, the echo phase's length, and the CPU time of the runtime's thread during the
//! echo phase only (connects and closes left out); the caller reads the whole process's CPU time
//! from /proc itself.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// CPU time (user + system) of the calling thread.
fn thread_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn main() {
    // `cargo bench` appends `--bench`; only positional arguments count.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let url = args
        .first()
        .expect("usage: minimal_echo ws://HOST:PORT/echo [CLIENTS] [SECONDS]")
        .clone();
    let clients: usize = args.get(1).map_or(1000, |c| c.parse().expect("CLIENTS"));
    let seconds: u64 = args.get(2).map_or(10, |s| s.parse().expect("SECONDS"));
    let addr = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (echoes, phase, cpu) = runtime.block_on(async {
        let mut sockets = Vec::with_capacity(clients);
        for _ in 0..clients {
            let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
            tcp.set_nodelay(true).unwrap();
            let config = WebSocketConfig::default().read_buffer_size(4096);
            let (ws, _) = tokio_tungstenite::client_async_with_config(&url, tcp, Some(config))
                .await
                .unwrap();
            sockets.push(ws);
        }
        let cpu_before = thread_cpu();
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
        let mut tasks = Vec::with_capacity(clients);
        for (i, mut ws) in sockets.into_iter().enumerate() {
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while tokio::time::Instant::now() < deadline {
                    let text = format!(r#"{{"text":"hello from {i}","n":"{n}"}}"#);
                    if ws.send(Message::text(text)).await.is_err() {
                        break;
                    }
                    match ws.next().await {
                        Some(Ok(_)) => n += 1,
                        _ => break,
                    }
                }
                (n, ws)
            }));
        }
        let mut echoes = 0;
        let mut open = Vec::with_capacity(clients);
        for t in tasks {
            let (n, ws) = t.await.unwrap();
            echoes += n;
            open.push(ws);
        }
        let phase = started.elapsed();
        let cpu = thread_cpu() - cpu_before;
        for mut ws in open {
            let _ = ws.close(None).await;
        }
        (echoes, phase, cpu)
    });
    println!(
        "{{\"echoes\":{echoes},\"phase_s\":{:.3},\"phase_cpu_s\":{:.3}}}",
        phase.as_secs_f64(),
        cpu.as_secs_f64()
    );
}
