//! Live metrics against a real Prometheus: a run scraped (`--metrics-listen`) and pushed
//! (`--prometheus-write`) gives PromQL the totals of its summary.csv, and every query of
//! deploy/grafana's dashboard answers; a busy address is refused before the run; a remote-write
//! server that is down or never answers costs dropped pushes, not the run; `serve` and `inspect`
//! count what crossed them.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin;
use common::prometheus::{Prometheus, free_port, get};
use common::*;

/// Echoes off the builtin server, and a group whose path does not exist (counted errors).
fn scenario(duration: &str) -> String {
    format!(
        r#"
name = "live metrics"
target = "builtin"
duration = "{duration}"
ramp = "200ms"
drain = "1s"
connect_timeout = "2s"

[[group]]
name = "echoers"
clients = 10
path = "/echo"
emit = [{{ event = "echo", data = {{ n = "{{{{seq}}}}" }}, rate = "20/s" }}]

[[group]]
name = "lost"
clients = 2
path = "/nowhere"

[[expect]]
event = "echo"
"#
    )
}

fn run_json(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap()
}

#[test]
fn a_run_scraped_and_pushed_gives_prometheus_the_totals_of_its_summary() {
    let metrics_port = free_port();
    let prometheus = Prometheus::start(&[format!("127.0.0.1:{metrics_port}")]);
    let dir = tempfile::tempdir().unwrap();
    let file = write_scenario(dir.path(), &scenario("7s"));
    let out = dir.path().join("out");
    let run = Command::new(cargo_bin("volley"))
        .arg("run")
        .arg(&file)
        .arg("--quiet")
        .arg("--out")
        .arg(&out)
        .args(["--metrics-listen", &metrics_port.to_string()])
        .args(["--prometheus-write", &prometheus.write_url()])
        .args(["--metrics-linger", "10s"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("for a scrape of the final figures"),
        "{stderr}"
    );
    assert!(!stderr.contains("push dropped"), "{stderr}");

    let run_id = run_json(&out)["run_id"].as_str().unwrap().to_owned();
    let count = |metric: &str| summary_count(&out, metric) as f64;
    assert!(count("sent") > 1000.0 && count("errors") > 0.0);
    assert_eq!(count("prometheus.dropped"), 0.0);
    assert!(
        count("prometheus.pushed") >= 2.0,
        "a push every 5 s and one at the end"
    );

    // The same totals through both ways in: scraped (job "volley") and pushed (no job).
    for job in ["volley", ""] {
        let sel = format!(r#"run_id="{run_id}",job="{job}",scenario="live metrics",shard="0/1""#);
        let last = |series: &str, extra: &str| {
            prometheus.value(&format!(
                "sum(last_over_time({series}{{{sel}{extra}}}[5m]))"
            ))
        };
        let way = if job.is_empty() { "pushed" } else { "scraped" };
        assert_eq!(last("volley_sent_total", ""), count("sent"), "{way} sent");
        assert_eq!(
            last("volley_received_total", ""),
            count("received"),
            "{way} received"
        );
        assert_eq!(
            last("volley_connects_total", ""),
            count("connects"),
            "{way} connects"
        );
        assert_eq!(
            last("volley_errors_total", ""),
            count("errors"),
            "{way} errors"
        );
        assert_eq!(
            last("volley_errors_total", r#",kind="http_status""#),
            count("errors.http_status"),
            "{way} errors by kind"
        );
        assert_eq!(
            last("volley_latency_seconds_count", r#",metric="echo""#),
            count("echo"),
            "{way} echo latency count"
        );
        assert_eq!(
            last("volley_expect_received_total", r#",expect="echo""#),
            count("echo.received"),
            "{way} echo received"
        );
        assert_eq!(
            last("volley_expect_lost_total", r#",expect="echo""#),
            count("echo.lost"),
            "{way} echo lost"
        );
        // Per group: the echoers sent and received everything, the lost group made the errors.
        assert_eq!(
            last("volley_group_sent_total", r#",group="echoers""#),
            count("sent")
        );
        assert_eq!(
            last("volley_group_received_total", r#",group="echoers""#),
            count("received")
        );
        assert_eq!(
            last("volley_group_errors_total", r#",group="lost""#),
            count("errors")
        );
        assert_eq!(
            last("volley_group_errors_total", r#",group="echoers""#),
            0.0
        );
        assert_eq!(last("volley_group_connects_total", ""), count("connects"));
        let p99 = prometheus.value(&format!(
            r#"histogram_quantile(0.99, sum by (le) (last_over_time(volley_latency_seconds_bucket{{{sel},metric="echo"}}[5m])))"#
        ));
        assert!(p99 > 0.0 && p99 <= 1.0, "{way} echo p99 {p99} s");
    }
    let samples = |job: &str| {
        prometheus.value(&format!(
            r#"count_over_time(volley_sent_total{{run_id="{run_id}",job="{job}"}}[5m])"#
        ))
    };
    let (scraped, pushed) = (samples("volley"), samples(""));
    assert!(
        scraped >= 3.0,
        "scraped every second while it ran: {scraped} samples"
    );
    assert!(
        pushed >= 2.0,
        "pushed during the run and at its end: {pushed} samples"
    );

    // Every query of the dashboard answers with series for this run.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string("deploy/grafana/volley-dashboard.json").unwrap(),
    )
    .unwrap();
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$run_id", &run_id)
                .replace("$__rate_interval", "5m");
            let result = prometheus.query(&expr);
            assert!(
                !result.is_empty(),
                "{}: `{expr}` gave no series",
                panel["title"]
            );
            queries += 1;
        }
    }
    assert!(queries >= 15, "{queries} queries");
}

#[test]
fn a_busy_metrics_address_is_refused_before_the_run() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let file = write_scenario(dir.path(), &scenario("1s"));
    let out = dir.path().join("out");
    let run = Command::new(cargo_bin("volley"))
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .args(["--metrics-listen", &port.to_string()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "--metrics-listen 127.0.0.1:{port}: cannot listen there"
        )),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing ran");
    // Shards listen on the port + K: the whole range is checked first.
    let run = Command::new(cargo_bin("volley"))
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .args(["--processes", "2"])
        .args(["--metrics-listen", &(port - 1).to_string()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    // (The port below it is free unless another test took it meanwhile.)
    let named = |p: u16| stderr.contains(&format!("127.0.0.1:{p}: cannot listen there"));
    assert!(named(port) || named(port - 1), "{stderr}");
}

#[test]
fn a_remote_write_server_down_or_silent_drops_pushes_not_the_run() {
    // Down: nothing listens. Silent: accepts and never answers.
    let down = free_port();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let keep = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().take(4) {
            held.push(stream);
        }
        std::thread::sleep(Duration::from_secs(20));
    });
    for port in [down, silent_port] {
        let dir = tempfile::tempdir().unwrap();
        let file = write_scenario(dir.path(), &scenario("2s"));
        let out = dir.path().join("out");
        let started = Instant::now();
        let run = Command::new(cargo_bin("volley"))
            .arg("run")
            .arg(&file)
            .arg("--quiet")
            .arg("--out")
            .arg(&out)
            .args([
                "--prometheus-write",
                &format!("http://127.0.0.1:{port}/api/v1/write"),
            ])
            .output()
            .unwrap();
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(0), "{stderr}");
        assert_eq!(
            stderr.matches("push dropped").count(),
            1,
            "one warning: {stderr}"
        );
        assert!(summary_count(&out, "sent") > 0);
        assert_eq!(summary_count(&out, "prometheus.pushed"), 0);
        assert!(summary_count(&out, "prometheus.dropped") >= 1);
        assert_eq!(run_json(&out)["summary"]["prometheus"]["pushed"], 0);
        // 2 s of run, 1 s of drain, and at most one push interval for the last push.
        assert!(took < Duration::from_secs(12), "took {took:?}");
    }
    drop(keep);
}

/// A child process ended by its PID when the test ends.
struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `volley ARGS` and returns it with the first line it printed on stdout or stderr that
/// says where it listens.
fn spawn_reading(args: &[&str], from_stderr: bool) -> (Spawned, String) {
    let mut command = Command::new(cargo_bin("volley"));
    command.args(args).stdin(Stdio::null());
    if from_stderr {
        command.stderr(Stdio::piped()).stdout(Stdio::null());
    } else {
        command.stdout(Stdio::piped()).stderr(Stdio::null());
    }
    let mut child = command.spawn().unwrap();
    let pipe: Box<dyn std::io::Read + Send> = match from_stderr {
        true => Box::new(child.stderr.take().unwrap()),
        false => Box::new(child.stdout.take().unwrap()),
    };
    let mut lines = BufReader::new(pipe).lines();
    let line = lines
        .find(|l| l.as_ref().is_ok_and(|l| l.contains("listening on")))
        .expect("it says where it listens")
        .unwrap();
    // The rest of its output is read and dropped, so that it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (Spawned(child), line)
}

/// One sample of a scraped page: `name{labels} value` with the labels given among its own.
fn scraped(page: &str, name: &str, labels: &[&str]) -> f64 {
    page.lines()
        .find(|l| {
            l.starts_with(&format!("{name}{{")) && labels.iter().all(|label| l.contains(label))
        })
        .unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{page}"))
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn serve_and_inspect_count_what_crossed_them() {
    let (serve_metrics, inspect_metrics, inspect_port) = (free_port(), free_port(), free_port());
    let (_server, line) = spawn_reading(
        &["serve", "--metrics-listen", &serve_metrics.to_string()],
        false,
    );
    let server_url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    let (_inspector, _) = spawn_reading(
        &[
            "inspect",
            "--quiet",
            "--upstream",
            &server_url,
            "--listen",
            &format!("127.0.0.1:{inspect_port}"),
            "--metrics-listen",
            &inspect_metrics.to_string(),
        ],
        true,
    );
    let dir = tempfile::tempdir().unwrap();
    let target = format!("ws://127.0.0.1:{inspect_port}/echo");
    let file = write_scenario(dir.path(), &echo_scenario(&target, 5, "20/s", "2s"));
    let out = dir.path().join("out");
    let run = Command::new(cargo_bin("volley"))
        .arg("run")
        .arg(&file)
        .arg("--quiet")
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let sent = summary_count(&out, "sent") as f64;
    let received = summary_count(&out, "received") as f64;
    assert!(sent > 100.0);

    let page = |port| get(port, "/metrics").expect("the endpoint answers").1;
    // The server's counts settle once the closes have crossed the proxy.
    wait_for(
        "the server to count every close",
        Duration::from_secs(10),
        || {
            let p = page(serve_metrics);
            scraped(&p, "volley_serve_connections_open", &[r#"endpoint="echo""#]) == 0.0
        },
    );
    let server = page(serve_metrics);
    let echo = r#"endpoint="echo""#;
    assert_eq!(
        scraped(&server, "volley_serve_connections_total", &[echo]),
        5.0
    );
    assert_eq!(
        scraped(&server, "volley_serve_connections_closed_total", &[echo]),
        5.0
    );
    assert_eq!(
        scraped(&server, "volley_serve_messages_received_total", &[echo]),
        sent
    );
    assert_eq!(
        scraped(&server, "volley_serve_messages_sent_total", &[echo]),
        received
    );
    assert_eq!(
        scraped(
            &server,
            "volley_serve_connections_total",
            &[r#"endpoint="socketio""#]
        ),
        0.0
    );

    let proxy = page(inspect_metrics);
    assert!(scraped(&proxy, "volley_inspect_connections_total", &[]) >= 5.0);
    let c2s_text = [r#"direction="c2s""#, r#"type="text""#];
    let s2c_text = [r#"direction="s2c""#, r#"type="text""#];
    assert_eq!(
        scraped(&proxy, "volley_inspect_frames_total", &c2s_text),
        sent
    );
    assert_eq!(
        scraped(&proxy, "volley_inspect_frames_total", &s2c_text),
        received
    );
    assert!(
        scraped(
            &proxy,
            "volley_inspect_bytes_total",
            &[r#"direction="c2s""#]
        ) > sent
    );
}
