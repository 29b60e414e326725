//! End-to-end figures against `volley serve` running in another process on 127.0.0.1:
//! - echo: 1,000 clients echoing through volley's runner; events/s and client CPU µs per echo, at a
//!   fixed rate and saturated, next to a minimal hand-written tokio-tungstenite echo loop;
//! - rss: the client's resident memory per idle connection, from runs holding 1,000 and 15,000,
//!   raw WebSocket and Socket.IO (websocket transport);
//! - sio-echo: 5,000 Socket.IO clients over the websocket transport echoing at fixed rates, next to
//!   5,000 raw WebSocket clients at the same rates;
//! - sio-rss: memory per idle Socket.IO connection (websocket transport), from runs holding 1,000
//!   and 5,000, next to raw WebSocket at the same counts;
//! - sio-polling: 1,000 Socket.IO clients over HTTP long-polling echoing at fixed rates (next to the
//!   websocket transport at the same load), and memory per idle polling connection (250 and 1,000).
//!
//! `cargo bench --bench loopback` (all), or `cargo bench --bench loopback -- echo` / `-- rss` /
//! `-- sio-echo` / `-- sio-rss` / `-- sio-polling`.

mod common;
#[path = "minimal/loops.rs"]
mod loops;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use volley::runner::{self, RunOptions};
use volley::scenario::{self, Overrides};

use common::{Server, process_cpu, steady};

const CLIENTS: u64 = 1000;
/// Socket.IO over WebSocket: how many clients the sio-echo and sio-rss runs hold.
const SIO_CLIENTS: u64 = 5000;
/// Socket.IO over long-polling (two HTTP connections each).
const POLLING_CLIENTS: u64 = 1000;

/// What the clients speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    /// Raw WebSocket on the server's /echo.
    Ws,
    /// Socket.IO on /socket.io/ over this Engine.IO transport.
    Sio(&'static str),
}

impl Proto {
    fn label(self) -> String {
        match self {
            Proto::Ws => "raw ws".to_string(),
            Proto::Sio(transport) => format!("sio {transport}"),
        }
    }

    /// The target and protocol keys, for a server announced as `server_url` (`ws://host:port`).
    fn settings(self, server_url: &str) -> String {
        match self {
            Proto::Ws => format!("target = \"{server_url}/echo\"\n"),
            Proto::Sio(_) => format!("target = \"{server_url}\"\nprotocol = \"socketio\"\n"),
        }
    }

    /// Tables that go after the top-level keys and before the groups.
    fn tables(self) -> String {
        match self {
            Proto::Ws => String::new(),
            Proto::Sio(transport) => format!("[socketio]\ntransport = \"{transport}\"\n\n"),
        }
    }
}

fn scenario_text(
    proto: Proto,
    server_url: &str,
    clients: u64,
    rate: Option<&str>,
    duration: &str,
    ramp: &str,
) -> String {
    let emit = match rate {
        Some(rate) => format!(
            "emit = [{{ event = \"echo\", data = {{ text = \"hello from {{{{client}}}}\", n = \"{{{{seq}}}}\" }}, rate = \"{rate}\" }}]\n\n[[expect]]\nevent = \"echo\"\n"
        ),
        None => String::new(),
    };
    format!(
        "name = \"bench\"\n{}duration = \"{duration}\"\nramp = \"{ramp}\"\ndrain = \"3s\"\n\n{}[[group]]\nname = \"g\"\nclients = {clients}\n{emit}",
        proto.settings(server_url),
        proto.tables(),
    )
}

/// `clients` clients of `proto`, each echoing at `rate`, on one worker thread for 10 s after a 1 s
/// ramp, in this process.
fn echo_run(
    runtime: &tokio::runtime::Runtime,
    server: &Server,
    proto: Proto,
    clients: u64,
    rate: &str,
    label: &str,
    connect_cpu: Option<Duration>,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.toml");
    std::fs::write(
        &path,
        scenario_text(proto, &server.url, clients, Some(rate), "10s", "1s"),
    )
    .unwrap();
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
    let cpu_before = process_cpu();
    let server_before = server.cpu();
    let outcome = runtime
        .block_on(runner::run(plan, options, std::future::pending()))
        .unwrap();
    let process = process_cpu() - cpu_before;
    let server_cpu = server.cpu() - server_before;
    let r = &outcome.run;
    let echoes = r.totals.expects[0].received;
    let h = &r.totals.histograms[1];
    let per_echo = |cpu: Duration| cpu.as_secs_f64() * 1e6 / echoes as f64;
    let timeseries = outcome.dir.join("timeseries.csv");
    let without_connects = match connect_cpu {
        Some(each) => format!(
            " ({:.2} without connect and close)",
            per_echo(r.client_cpu.saturating_sub(each * clients as u32))
        ),
        None => String::new(),
    };
    println!(
        "{:<15} {label:<22} {:>8} echoes/s  worker CPU {:>5.2} µs/echo{without_connects}  process CPU {:>5.2} µs/echo  server CPU {:>5.2} µs/echo  p50 {} µs  p99 {} µs (steady {} µs)  errors {} lost {}",
        proto.label(),
        steady(&timeseries, "received"),
        per_echo(r.client_cpu),
        per_echo(process),
        per_echo(server_cpu),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        steady(&timeseries, "echo_p99_us"),
        r.totals.error_total(),
        r.totals.expects[0].lost,
    );
}

/// The worker CPU one client of `proto` spends to connect, idle for a second and close: `clients`
/// connecting over 1 s on one worker thread, in this process.
fn connect_cpu(
    runtime: &tokio::runtime::Runtime,
    server: &Server,
    proto: Proto,
    clients: u64,
) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("connect.toml");
    std::fs::write(
        &path,
        scenario_text(proto, &server.url, clients, None, "1s", "1s"),
    )
    .unwrap();
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
    assert_eq!(outcome.run.totals.error_total(), 0);
    let each = outcome.run.client_cpu / clients as u32;
    println!(
        "{:<15} connect + close: {:.1} µs of worker CPU per client ({clients} clients)",
        proto.label(),
        each.as_secs_f64() * 1e6
    );
    each
}

/// The reference: the closed echo loop of benches/minimal/loops.rs on 1,000 connections.
fn minimal_loop(runtime: &tokio::runtime::Runtime, url: &str) {
    let url = format!("{url}/echo");
    let phase = runtime.block_on(loops::echo(
        &url,
        CLIENTS as usize,
        Duration::from_secs(10),
        None,
    ));
    println!(
        "minimal loop (closed) {:>8.0} echoes/s  thread CPU {:>5.2} µs/echo",
        phase.events as f64 / phase.wall.as_secs_f64(),
        phase.cpu.as_secs_f64() * 1e6 / phase.events as f64
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// RSS of a `volley run` process holding `clients` idle connections of `proto`.
fn idle_rss(server_url: &str, proto: Proto, clients: u64) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idle.toml");
    std::fs::write(
        &path,
        scenario_text(proto, server_url, clients, None, "60s", "5000/s"),
    )
    .unwrap();
    let out = dir.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_volley"))
        .arg("run")
        .arg(&path)
        .args(["--quiet", "--out"])
        .arg(&out)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    // Wait until the time series shows every client connected, then one more second to settle.
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "clients did not connect"
        );
        std::thread::sleep(Duration::from_millis(200));
        if connected_now(&out.join("timeseries.csv")) == Some(clients) {
            break;
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    let rss = rss_kib(child.id());
    // SAFETY: signalling the child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let _ = child.wait();
    rss
}

/// Idle RSS with `small` and `large` clients of `proto`, and the difference per connection.
fn rss_per_connection(server_url: &str, proto: Proto, small: u64, large: u64) {
    let at_small = idle_rss(server_url, proto, small);
    let at_large = idle_rss(server_url, proto, large);
    println!(
        "{:<15} idle RSS: {at_small} KiB with {small} clients, {at_large} KiB with {large}: {:.2} KiB per connection",
        proto.label(),
        (at_large - at_small) as f64 / (large - small) as f64
    );
}

fn connected_now(timeseries: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(timeseries).ok()?;
    let last = text.lines().skip(1).last()?;
    last.split(',').nth(2)?.parse().ok()
}

fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    let server = Server::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    if wants("echo") {
        let ws = Proto::Ws;
        echo_run(&runtime, &server, ws, CLIENTS, "20/s", "20k/s fixed", None);
        echo_run(&runtime, &server, ws, CLIENTS, "1000/s", "saturated", None);
        minimal_loop(&runtime, &server.url);
    }
    if wants("rss") {
        rss_per_connection(&server.url, Proto::Ws, 1_000, 15_000);
        rss_per_connection(&server.url, Proto::Sio("websocket"), 1_000, 15_000);
    }
    if wants("sio-echo") {
        let sio = Proto::Sio("websocket");
        let sio_connect = connect_cpu(&runtime, &server, sio, SIO_CLIENTS);
        let ws_connect = connect_cpu(&runtime, &server, Proto::Ws, SIO_CLIENTS);
        for (rate, label) in [("4/s", "5k × 4/s = 20k/s"), ("8/s", "5k × 8/s = 40k/s")] {
            echo_run(
                &runtime,
                &server,
                sio,
                SIO_CLIENTS,
                rate,
                label,
                Some(sio_connect),
            );
            echo_run(
                &runtime,
                &server,
                Proto::Ws,
                SIO_CLIENTS,
                rate,
                label,
                Some(ws_connect),
            );
        }
        // Past what one server thread and this 2-core machine sustain: echoes fall behind.
        let label = "5k × 12/s = 60k/s";
        echo_run(
            &runtime,
            &server,
            sio,
            SIO_CLIENTS,
            "12/s",
            label,
            Some(sio_connect),
        );
    }
    if wants("sio-rss") {
        rss_per_connection(&server.url, Proto::Sio("websocket"), 1_000, SIO_CLIENTS);
        rss_per_connection(&server.url, Proto::Ws, 1_000, SIO_CLIENTS);
    }
    if wants("sio-polling") {
        let polling = Proto::Sio("polling");
        let websocket = Proto::Sio("websocket");
        let polling_connect = connect_cpu(&runtime, &server, polling, POLLING_CLIENTS);
        let websocket_connect = connect_cpu(&runtime, &server, websocket, POLLING_CLIENTS);
        for (rate, label) in [("2/s", "1k × 2/s = 2k/s"), ("10/s", "1k × 10/s = 10k/s")] {
            let (clients, p, w) = (POLLING_CLIENTS, polling_connect, websocket_connect);
            echo_run(&runtime, &server, polling, clients, rate, label, Some(p));
            echo_run(&runtime, &server, websocket, clients, rate, label, Some(w));
        }
        rss_per_connection(&server.url, polling, 250, POLLING_CLIENTS);
    }
}
