//! End-to-end figures against `volley serve` running in another process on 127.0.0.1:
//! - echo: 1,000 clients echoing through volley's runner; events/s and client CPU µs per echo, at a
//!   fixed rate and saturated, next to a minimal hand-written tokio-tungstenite echo loop;
//! - rss: the client's resident memory per idle connection, from runs holding 1,000 and 15,000.
//!
//! `cargo bench --bench loopback` (all), or `cargo bench --bench loopback -- echo` / `-- rss`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use volley::runner::{self, RunOptions};
use volley::scenario::{self, Overrides};

const CLIENTS: u64 = 1000;

struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_volley"))
            .args(["serve", "--threads", "1"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start volley serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .expect("volley serve prints its address")
            .to_string();
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: signalling the child we started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn process_cpu() -> Duration {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn scenario_text(
    url: &str,
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
        "name = \"bench\"\ntarget = \"{url}\"\nduration = \"{duration}\"\nramp = \"{ramp}\"\ndrain = \"3s\"\n\n[[group]]\nname = \"g\"\nclients = {clients}\n{emit}"
    )
}

fn echo_run(runtime: &tokio::runtime::Runtime, url: &str, rate: &str, label: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.toml");
    std::fs::write(&path, scenario_text(url, CLIENTS, Some(rate), "10s", "1s")).unwrap();
    let plan = scenario::load(&path, &Overrides::default()).unwrap();
    let options = RunOptions {
        scenario_file: path,
        out: Some(dir.path().join("out")),
        quiet: true,
        threads: Some(1),
        insecure: false,
    };
    let cpu_before = process_cpu();
    let outcome = runtime
        .block_on(runner::run(plan, options, std::future::pending()))
        .unwrap();
    let process = process_cpu() - cpu_before;
    let r = &outcome.report;
    let echoes = r.totals.expects[0].received;
    let h = &r.totals.histograms[1];
    println!(
        "volley {label:<12} {:>8} echoes/s  worker CPU {:>5.2} µs/echo  process CPU {:>5.2} µs/echo  p50 {} µs  p99 {} µs  errors {} lost {}",
        steady_rate(&outcome.dir.join("timeseries.csv")),
        r.client_cpu.as_secs_f64() * 1e6 / echoes as f64,
        process.as_secs_f64() * 1e6 / echoes as f64,
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        r.totals.error_total(),
        r.totals.expects[0].lost,
    );
}

/// The median of the per-second `received` counts of seconds 3 to 10 (all clients connected,
/// emitting, not yet draining).
fn steady_rate(timeseries: &Path) -> u64 {
    let text = std::fs::read_to_string(timeseries).unwrap();
    let mut per_second: Vec<u64> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|cols| (3..=10).contains(&cols[0].parse::<u64>().unwrap()))
        .map(|cols| cols[5].parse().unwrap())
        .collect();
    per_second.sort_unstable();
    per_second[per_second.len() / 2]
}

/// The reference: 1,000 connections, each sending a message and awaiting its echo in a loop,
/// on one current-thread runtime, the simplest tokio-tungstenite echo client there is.
fn minimal_loop(runtime: &tokio::runtime::Runtime, url: &str) {
    let url = format!("{url}/echo");
    let run_for = Duration::from_secs(10);
    let (echoes, cpu) = runtime.block_on(async {
        let mut sockets = Vec::new();
        for _ in 0..CLIENTS {
            let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                .read_buffer_size(4096);
            let addr = url
                .trim_start_matches("ws://")
                .split('/')
                .next()
                .unwrap()
                .to_string();
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            tcp.set_nodelay(true).unwrap();
            let (ws, _) = tokio_tungstenite::client_async_with_config(&url, tcp, Some(config))
                .await
                .unwrap();
            sockets.push(ws);
        }
        let cpu_before = volley::runner::worker::thread_cpu_time();
        let deadline = tokio::time::Instant::now() + run_for;
        let mut tasks = Vec::new();
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
                let _ = ws.close(None).await;
                n
            }));
        }
        let mut echoes = 0;
        for t in tasks {
            echoes += t.await.unwrap();
        }
        (
            echoes,
            volley::runner::worker::thread_cpu_time() - cpu_before,
        )
    });
    println!(
        "minimal loop (closed) {:>8.0} echoes/s  thread CPU {:>5.2} µs/echo",
        echoes as f64 / run_for.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / echoes as f64
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

/// RSS of a `volley run` process holding `clients` idle connections.
fn idle_rss(url: &str, clients: u64) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idle.toml");
    let target = format!("{url}/echo");
    std::fs::write(
        &path,
        scenario_text(&target, clients, None, "60s", "5000/s"),
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
        let url = format!("{}/echo", server.url);
        echo_run(&runtime, &url, "20/s", "20k/s fixed");
        echo_run(&runtime, &url, "1000/s", "saturated");
        minimal_loop(&runtime, &server.url);
    }
    if wants("rss") {
        let small = idle_rss(&server.url, 1_000);
        let large = idle_rss(&server.url, 15_000);
        println!(
            "idle RSS: {small} KiB with 1,000 clients, {large} KiB with 15,000: {:.2} KiB per connection",
            (large - small) as f64 / 14_000.0
        );
    }
}
