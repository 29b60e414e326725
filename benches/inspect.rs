//! What `volley inspect` costs, measured on raw WebSocket echoes against `volley serve` (another
//! process, one thread), with the clients in this process:
//! - latency: volley's runner, 200 clients × 50/s (10,000 echoes/s, so 20,000 frames/s through a
//!   proxy) for 10 s on one worker thread, direct and through each proxy below: echo p50 and p99
//!   (the difference to direct is what the proxy adds) and the proxy's CPU per frame;
//! - throughput: a closed loop (each connection sends a batch of messages, awaits their echoes,
//!   and again) for 10 s on one thread, so that the relay runs as fast as the machine lets it
//!   without a backlog: 1,000 connections with 1 message in flight each (every frame read and
//!   written alone) and 100 connections with 32 (frames read and written in batches): frames
//!   relayed per second, both directions, and the proxy's CPU per frame.
//!
//! The proxies run as child processes, as users run them: their CPU time is theirs alone
//! (/proc/PID/stat) and their runtime is the one the `volley` binary builds (one thread, plus the
//! record writer's):
//! - `inspect --quiet`: every frame parsed, decoded into a record and counted, nothing written;
//! - `inspect --jsonl`: the normal use, `--quiet --jsonl FILE`, every record written to a file
//!   (in the target folder, on disk);
//! - `inspect print`: one line per frame on stdout, which goes to /dev/null (no terminal is
//!   measured, only formatting and writing);
//! - `minimal relay`: tokio's `copy_bidirectional` on one thread (this bench binary started again
//!   as a child), what any user-space hop costs: the floor for the others.
//!
//! `cargo bench --bench inspect` (all), or `cargo bench --bench inspect -- latency` /
//! `-- throughput`. `VOLLEY_INSPECT_BIN=path/to/volley` runs that build's `inspect` instead, to
//! compare two builds on the same server and clients.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use volley::runner::{self, RunOptions};
use volley::scenario::{self, Overrides};

use common::{Server, proc_cpu, steady};

/// The argument that makes this binary the minimal relay (see [`relay_child`]).
const RELAY_CHILD: &str = "relay-child";

/// Which way the clients reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Direct,
    Relay,
    Inspect(Output),
}

/// What `volley inspect` does with its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    /// `--quiet`: counted for the summary only.
    Quiet,
    /// `--quiet --jsonl FILE`.
    Jsonl,
    /// One line each on stdout (to /dev/null).
    Print,
}

impl Route {
    fn label(self) -> &'static str {
        match self {
            Route::Direct => "direct",
            Route::Relay => "minimal relay",
            Route::Inspect(Output::Quiet) => "inspect --quiet",
            Route::Inspect(Output::Jsonl) => "inspect --jsonl",
            Route::Inspect(Output::Print) => "inspect print",
        }
    }
}

/// The `volley` that runs `inspect`: this build's, or `VOLLEY_INSPECT_BIN` to compare builds.
fn inspect_binary() -> PathBuf {
    std::env::var_os("VOLLEY_INSPECT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_volley")))
}

/// A proxy child process between the clients and the server.
struct Proxy {
    child: Child,
    /// `ws://127.0.0.1:PORT`
    url: String,
    /// The rest of its stderr (`volley inspect` prints its summary there on exit).
    stderr: Option<JoinHandle<String>>,
    jsonl: Option<(tempfile::TempDir, PathBuf)>,
}

impl Proxy {
    /// Starts the proxy of `route` in front of `server_url` (None for [`Route::Direct`]).
    fn start(route: Route, server_url: &str) -> Option<Proxy> {
        let server_addr = server_url.trim_start_matches("ws://");
        let mut jsonl = None;
        let mut command = match route {
            Route::Direct => return None,
            Route::Relay => {
                let mut c = Command::new(std::env::current_exe().unwrap());
                c.args([RELAY_CHILD, server_addr]);
                c
            }
            Route::Inspect(output) => {
                let mut c = Command::new(inspect_binary());
                c.args([
                    "inspect",
                    "--listen",
                    "127.0.0.1:0",
                    "--upstream",
                    server_url,
                ]);
                match output {
                    Output::Quiet => {
                        c.arg("--quiet");
                    }
                    Output::Jsonl => {
                        // In the target folder, on disk like a user's file (not a tmpfs).
                        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
                        let path = dir.path().join("frames.jsonl");
                        c.arg("--quiet").arg("--jsonl").arg(&path);
                        jsonl = Some((dir, path));
                    }
                    Output::Print => {}
                }
                c
            }
        };
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the proxy");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let addr = loop {
            let mut line = String::new();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "the proxy ended before listening"
            );
            if let Some((_, rest)) = line.split_once("listening on http://") {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        let rest = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Some(Proxy {
            child,
            url: format!("ws://{addr}"),
            stderr: Some(rest),
            jsonl,
        })
    }

    fn cpu(&self) -> Duration {
        proc_cpu(self.child.id())
    }

    /// Stops the proxy (SIGTERM) and returns the frames it counted (`volley inspect`'s summary;
    /// None for the relay) and the size of its JSONL file.
    fn stop(mut self) -> (Option<u64>, Option<u64>) {
        // SAFETY: signalling the child we started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        let summary = self.stderr.take().unwrap().join().unwrap();
        // "  c2s  N frames, B B  (text N, close N)", and the same for s2c.
        let frames: Vec<u64> = summary
            .lines()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                matches!(words.next(), Some("c2s" | "s2c"))
                    .then(|| words.next()?.parse().ok())
                    .flatten()
            })
            .collect();
        let size = self
            .jsonl
            .as_ref()
            .map(|(_, path)| std::fs::metadata(path).unwrap().len());
        ((!frames.is_empty()).then(|| frames.iter().sum()), size)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if self.stderr.is_some() {
            // SAFETY: signalling the child we started (not stopped yet: a bench step failed).
            unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
            let _ = self.child.wait();
        }
    }
}

/// The minimal relay: accepts on 127.0.0.1:0 (printing the address on stderr) and copies bytes
/// both ways to `upstream` on one current-thread runtime, until killed.
fn relay_child(upstream: &str) {
    let _ = volley::runner::fdlimit::raise();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        eprintln!(
            "relay: listening on http://{}",
            listener.local_addr().unwrap()
        );
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                continue;
            };
            let upstream = upstream.to_string();
            tokio::spawn(async move {
                let _ = client.set_nodelay(true);
                let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = server.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
}

/// A load: `clients` raw WebSocket clients each echoing at `rate` on /echo.
struct Load {
    clients: u64,
    rate: &'static str,
    label: &'static str,
}

/// What the runner saw of one load.
struct Echoes {
    sent: u64,
    received: u64,
    /// Median of the per-second received counts of seconds 3 to 10.
    per_second: u64,
    p50_us: u64,
    p99_us: u64,
    /// Median of the per-second p99s of seconds 3 to 10.
    steady_p99_us: u64,
    errors: u64,
    lost: u64,
}

/// `load` against `url` for 10 s after a 1 s ramp, on one worker thread in this process.
fn echo_run(runtime: &tokio::runtime::Runtime, url: &str, load: &Load) -> Echoes {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.toml");
    let text = format!(
        "name = \"bench\"\ntarget = \"{url}/echo\"\nduration = \"10s\"\nramp = \"1s\"\ndrain = \"3s\"\n\n\
         [[group]]\nname = \"g\"\nclients = {}\n\
         emit = [{{ event = \"echo\", data = {{ text = \"hello from {{{{client}}}}\", n = \"{{{{seq}}}}\" }}, rate = \"{}\" }}]\n\n\
         [[expect]]\nevent = \"echo\"\n",
        load.clients, load.rate
    );
    std::fs::write(&path, text).unwrap();
    let plan = scenario::load(&path, &Overrides::default()).unwrap();
    let options = RunOptions {
        scenario_file: path,
        out: Some(dir.path().join("out")),
        quiet: true,
        threads: Some(1),
        insecure: false,
        frame_log: None,
        ..Default::default()
    };
    let outcome = runtime
        .block_on(runner::run(plan, options, std::future::pending()))
        .unwrap();
    let r = &outcome.run;
    let echo = r.metric_names.iter().position(|n| n == "echo").unwrap();
    let h = &r.totals.histograms[echo];
    let timeseries = outcome.dir.join("timeseries.csv");
    Echoes {
        sent: r.totals.expects[0].sent,
        received: r.totals.expects[0].received,
        per_second: steady(&timeseries, "received"),
        p50_us: h.value_at_quantile(0.5),
        p99_us: h.value_at_quantile(0.99),
        steady_p99_us: steady(&timeseries, "echo_p99_us"),
        errors: r.totals.error_total(),
        lost: r.totals.expects[0].lost,
    }
}

/// CPU per frame and the share of a core, as a column.
fn per_frame(cpu: Duration, frames: u64, seconds: f64) -> String {
    format!(
        "proxy CPU {:.2} µs/frame ({:.0} % of a core)",
        cpu.as_secs_f64() * 1e6 / frames.max(1) as f64,
        cpu.as_secs_f64() * 100.0 / seconds
    )
}

/// The runner's `load` through `route`, one line of figures.
fn latency(runtime: &tokio::runtime::Runtime, server: &Server, route: Route, load: &Load) {
    let proxy = Proxy::start(route, &server.url);
    let url = proxy.as_ref().map_or(server.url.clone(), |p| p.url.clone());
    let proxy_before = proxy.as_ref().map(Proxy::cpu);
    let server_before = server.cpu();
    let started = Instant::now();
    let e = echo_run(runtime, &url, load);
    let seconds = started.elapsed().as_secs_f64();
    let server_cpu = server.cpu() - server_before;
    let proxy_cpu = proxy.as_ref().zip(proxy_before).map(|(p, b)| p.cpu() - b);
    let (counted, jsonl_size) = proxy.map_or((None, None), Proxy::stop);
    // Every echo is one frame each way through a proxy (and nothing was lost: see the line).
    let frames = e.sent + e.received;
    let proxy_figures = proxy_cpu.map_or(String::new(), |cpu| {
        format!("  {}", per_frame(cpu, frames, seconds))
    });
    let counted = counted.map_or(String::new(), |n| {
        format!("  proxy counted {n} frames (echoes {frames}, closes included)")
    });
    let jsonl = jsonl_size.map_or(String::new(), |size| {
        format!(
            "  JSONL {:.1} MB, {:.0} B/frame",
            size as f64 / 1e6,
            size as f64 / frames as f64
        )
    });
    println!(
        "{:<16} {:<20} {:>6} echoes/s  p50 {:>5} µs  p99 {:>6} µs (steady {:>6} µs)  server CPU {:.2} µs/echo{proxy_figures}  errors {} lost {}{counted}{jsonl}",
        route.label(),
        load.label,
        e.per_second,
        e.p50_us,
        e.p99_us,
        e.steady_p99_us,
        server_cpu.as_secs_f64() * 1e6 / e.received.max(1) as f64,
        e.errors,
        e.lost,
    );
}

/// The closed loop through `route`: `connections` WebSockets on /echo, each sending `depth`
/// messages in one write and awaiting their echoes, again and again for 10 s, on this thread.
fn throughput(
    runtime: &tokio::runtime::Runtime,
    server: &Server,
    route: Route,
    connections: usize,
    depth: usize,
) {
    let run_for = Duration::from_secs(10);
    let proxy = Proxy::start(route, &server.url);
    let url = format!(
        "{}/echo",
        proxy.as_ref().map_or(server.url.clone(), |p| p.url.clone())
    );
    let (echoes, seconds, proxy_cpu, server_cpu, client_cpu) = runtime.block_on(async {
        let addr = url.trim_start_matches("ws://").split('/').next().unwrap();
        let mut sockets = Vec::with_capacity(connections);
        for _ in 0..connections {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            tcp.set_nodelay(true).unwrap();
            // As the minimal loop of benches/loopback.rs: a 4 KiB read buffer, not 128 KiB.
            let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                .read_buffer_size(4096);
            let (ws, _) = tokio_tungstenite::client_async_with_config(&url, tcp, Some(config))
                .await
                .unwrap();
            sockets.push(ws);
        }
        let proxy_before = proxy.as_ref().map(Proxy::cpu);
        let server_before = server.cpu();
        let client_before = volley::runner::worker::thread_cpu_time();
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + run_for;
        let tasks: Vec<_> = sockets
            .into_iter()
            .enumerate()
            .map(|(i, mut ws)| {
                tokio::spawn(async move {
                    let mut n = 0u64;
                    'run: while tokio::time::Instant::now() < deadline {
                        for k in 0..depth as u64 {
                            let text = format!(r#"{{"text":"hello from {i}","n":"{}"}}"#, n + k);
                            if ws.feed(Message::text(text)).await.is_err() {
                                break 'run;
                            }
                        }
                        if ws.flush().await.is_err() {
                            break;
                        }
                        for _ in 0..depth {
                            match ws.next().await {
                                Some(Ok(_)) => n += 1,
                                _ => break 'run,
                            }
                        }
                    }
                    (n, ws)
                })
            })
            .collect();
        let mut echoes = 0;
        let mut sockets = Vec::with_capacity(connections);
        for t in tasks {
            let (n, ws) = t.await.unwrap();
            echoes += n;
            sockets.push(ws);
        }
        let seconds = started.elapsed().as_secs_f64();
        let figures = (
            echoes,
            seconds,
            proxy.as_ref().zip(proxy_before).map(|(p, b)| p.cpu() - b),
            server.cpu() - server_before,
            volley::runner::worker::thread_cpu_time() - client_before,
        );
        for mut ws in sockets {
            let _ = ws.close(None).await;
        }
        figures
    });
    let (counted, jsonl_size) = proxy.map_or((None, None), Proxy::stop);
    let frames = echoes * 2;
    let proxy_figures = proxy_cpu.map_or(String::new(), |cpu| {
        format!("  {}", per_frame(cpu, frames, seconds))
    });
    let counted = counted.map_or(String::new(), |n| {
        format!("  proxy counted {n} frames (echoes ×2 {frames}, closes included)")
    });
    let jsonl = jsonl_size.map_or(String::new(), |size| {
        format!("  JSONL {:.1} MB", size as f64 / 1e6)
    });
    println!(
        "{:<16} {connections:>5} conns × {depth:>2} in flight  {:>7.0} echoes/s  {:>7.0} frames/s each way ×2 = {:>7.0}  client CPU {:.2} µs/echo  server CPU {:.2} µs/echo{proxy_figures}{counted}{jsonl}",
        route.label(),
        echoes as f64 / seconds,
        echoes as f64 / seconds,
        frames as f64 / seconds,
        client_cpu.as_secs_f64() * 1e6 / echoes.max(1) as f64,
        server_cpu.as_secs_f64() * 1e6 / echoes.max(1) as f64,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(RELAY_CHILD) {
        relay_child(&args[2]);
        return;
    }
    let which: Vec<&String> = args
        .iter()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |name: &str| which.is_empty() || which.iter().any(|w| *w == name);
    let _ = volley::runner::fdlimit::raise();
    let load_average = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at the start: {}", load_average.trim());
    let server = Server::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let routes = [
        Route::Direct,
        Route::Relay,
        Route::Inspect(Output::Quiet),
        Route::Inspect(Output::Jsonl),
        Route::Inspect(Output::Print),
    ];
    if wants("latency") {
        let load = Load {
            clients: 200,
            rate: "50/s",
            label: "200 × 50/s = 10k/s",
        };
        for route in routes {
            latency(&runtime, &server, route, &load);
        }
        // Direct once more: how far the same load drifts over the minutes of the runs above.
        latency(&runtime, &server, Route::Direct, &load);
    }
    if wants("throughput") {
        for (connections, depth) in [(1000, 1), (100, 32)] {
            for route in routes {
                throughput(&runtime, &server, route, connections, depth);
            }
        }
    }
    let load_average = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at the end: {}", load_average.trim());
}
