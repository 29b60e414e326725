//! The client's memory over a whole run, end included: `volley run` in a child process holds N idle
//! clients of `volley serve --threads 1` (another child), for 10 s after a 5,000/s ramp, then
//! closes them and writes its results. Its VmRSS is sampled every 0.25 s into a CSV file
//! (`t_s,rss_kib`), and its peak is also read from the kernel when it exits (`ru_maxrss`, which
//! no sampling can miss). For raw WebSocket, Socket.IO over WebSocket and Socket.IO over
//! long-polling, at 1,000 and 5,000 clients:
//! - steady: the median of the samples from 2 s after the ramp to 1 s before emitting ends;
//! - peak: the larger of the sampled maximum and `ru_maxrss`;
//! - per connection: the difference between the two client counts, divided by 4,000, of each.
//!
//! `cargo bench --bench peak_memory` (all), or `-- ws` / `-- sio` / `-- polling`.
//! `PEAK_VOLLEY=/path/to/volley` runs that build's client instead (the server stays this one), to
//! compare builds; `PEAK_OUT=DIR` keeps the CSV files there (default: a folder in the temp dir).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;

/// Held after the ramp, emitting nothing.
const HOLD: Duration = Duration::from_secs(10);
const RAMP_PER_SECOND: u64 = 5000;
const SMALL: u64 = 1000;
const LARGE: u64 = 5000;
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

#[derive(Clone, Copy)]
struct Case {
    name: &'static str,
    /// The scenario's keys after `name`: target, protocol, and a [socketio] table at the end.
    keys: fn(&str) -> String,
    table: &'static str,
}

const CASES: [Case; 3] = [
    Case {
        name: "ws",
        keys: |url| format!("target = \"{url}/echo\"\n"),
        table: "",
    },
    Case {
        name: "sio",
        keys: |url| format!("target = \"{url}\"\nprotocol = \"socketio\"\n"),
        table: "[socketio]\ntransport = \"websocket\"\n\n",
    },
    Case {
        name: "polling",
        keys: |url| format!("target = \"{url}\"\nprotocol = \"socketio\"\n"),
        table: "[socketio]\ntransport = \"polling\"\n\n",
    },
];

/// One run's curve and figures.
struct Curve {
    samples: Vec<(f64, u64)>,
    max_rss: u64,
    closes: String,
}

impl Curve {
    fn steady(&self, clients: u64) -> u64 {
        let ramp = clients as f64 / RAMP_PER_SECOND as f64;
        let from = ramp + 2.0;
        let to = ramp + HOLD.as_secs_f64() - 1.0;
        let mut held: Vec<u64> = self
            .samples
            .iter()
            .filter(|(t, _)| (from..to).contains(t))
            .map(|&(_, rss)| rss)
            .collect();
        assert!(!held.is_empty(), "no samples in the steady window");
        held.sort_unstable();
        held[held.len() / 2]
    }

    fn peak(&self) -> u64 {
        let sampled = self.samples.iter().map(|&(_, rss)| rss).max();
        sampled.unwrap_or(0).max(self.max_rss)
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs `clients` idle clients of `case` against `server`, sampling the client's RSS into `csv`.
fn run(client: &Path, server: &Server, case: Case, clients: u64, csv: &Path) -> Curve {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("idle.toml");
    std::fs::write(
        &scenario,
        format!(
            "name = \"peak\"\n{}duration = \"{}s\"\nramp = \"{RAMP_PER_SECOND}/s\"\ndrain = \"1s\"\n\n{}[[group]]\nname = \"idle\"\nclients = {clients}\n",
            (case.keys)(&server.url),
            HOLD.as_secs(),
            case.table,
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let child = Command::new(client)
        .arg("run")
        .arg(&scenario)
        .args(["--quiet", "--out"])
        .arg(&out)
        .stdout(Stdio::null())
        .spawn()
        .expect("start volley run");
    let pid = child.id();
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let mut status = 0;
        // SAFETY: waiting for the child we started, into memory we own; the Child is not
        // waited for again.
        let reaped = unsafe { libc::wait4(pid as i32, &mut status, libc::WNOHANG, &mut usage) };
        if reaped == pid as i32 {
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "volley run failed: {status}"
            );
            break;
        }
        assert!(reaped == 0, "wait4: {}", std::io::Error::last_os_error());
        if let Some(rss) = rss_kib(pid) {
            samples.push((started.elapsed().as_secs_f64(), rss));
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
    drop(child);
    let mut text = String::from("t_s,rss_kib\n");
    for (t, rss) in &samples {
        text.push_str(&format!("{t:.2},{rss}\n"));
    }
    std::fs::write(csv, text).unwrap();
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    Curve {
        samples,
        max_rss: usage.ru_maxrss as u64,
        closes: run["summary"]["closes_by_code"].to_string(),
    }
}

fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let client = std::env::var_os("PEAK_VOLLEY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_volley")));
    let out = std::env::var_os("PEAK_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("volley-peak-memory"));
    std::fs::create_dir_all(&out).unwrap();
    println!("client {}; curves in {}", client.display(), out.display());
    let server = Server::start();
    for case in CASES {
        if !which.is_empty() && !which.iter().any(|w| w == case.name) {
            continue;
        }
        let mut figures = Vec::new();
        for clients in [SMALL, LARGE] {
            let csv = out.join(format!("{}-{clients}.csv", case.name));
            let curve = run(&client, &server, case, clients, &csv);
            let (steady, peak) = (curve.steady(clients), curve.peak());
            println!(
                "{:<8} {clients:>5} clients: steady {steady} KiB, peak {peak} KiB ({:+.1} %; sampled {} KiB, ru_maxrss {} KiB), closes {}  [{}]",
                case.name,
                (peak as f64 / steady as f64 - 1.0) * 100.0,
                curve.samples.iter().map(|s| s.1).max().unwrap_or(0),
                curve.max_rss,
                curve.closes,
                csv.display(),
            );
            figures.push((steady, peak));
        }
        let each = |a: u64, b: u64| (b as f64 - a as f64) / (LARGE - SMALL) as f64;
        println!(
            "{:<8} per connection: steady {:.2} KiB, peak {:.2} KiB",
            case.name,
            each(figures[0].0, figures[1].0),
            each(figures[0].1, figures[1].1),
        );
    }
}
