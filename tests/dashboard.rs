//! `volley run --dashboard`: in headless Chromium the page follows the run second by second and
//! ends as the report `volley report` writes of the same folder, fetching nothing from anywhere
//! else; a busy address is refused before the run, and so is --dashboard with --processes.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use assert_cmd::cargo::cargo_bin;
use common::chromium;
use common::prometheus::free_port;
use common::*;

/// Follows the page until it is no longer live (at most a minute): the live seconds it showed,
/// then what the final page says.
const FOLLOW: &str = r##"(async () => {
  const seconds = [];
  const start = Date.now();
  while (Date.now() - start < 60000) {
    const live = document.querySelector("[data-live-second]");
    if (!live) break;
    seconds.push(Number(live.dataset.liveSecond));
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    seconds,
    live: !!document.querySelector("[data-live-second]"),
    summary: document.querySelector("#summary")?.innerText ?? "",
    thresholds: document.querySelector("#thresholds")?.innerText ?? "",
    plots: document.querySelectorAll("svg").length,
  };
})()"##;

const FINAL: &str = r##"({
  summary: document.querySelector("#summary")?.innerText ?? "",
  thresholds: document.querySelector("#thresholds")?.innerText ?? "",
  plots: document.querySelectorAll("svg").length,
})"##;

struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        // SAFETY: a signal to the process this test started: it stops lingering and exits.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_follows_the_run_and_ends_as_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = echo_scenario("builtin", 20, "20/s", "6s");
    text.push_str("\n[thresholds]\n\"echo.p99\" = \"< 2s\"\n");
    let file = write_scenario(dir.path(), &text);
    let out = dir.path().join("out");
    let port = free_port();
    let mut child = Command::new(cargo_bin("volley"))
        .arg("run")
        .arg(&file)
        .arg("--quiet")
        .arg("--out")
        .arg(&out)
        .arg(format!("--dashboard=127.0.0.1:{port}"))
        .args(["--dashboard-linger", "2m"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let _run = Spawned(child);
    let url = lines
        .find_map(|l| l.ok()?.strip_prefix("dashboard at ").map(str::to_owned))
        .expect("the dashboard's address is printed");
    assert_eq!(url, format!("http://127.0.0.1:{port}/"));
    std::thread::spawn(move || lines.for_each(drop));

    let visit = chromium::visit_url(&url, 1280, FOLLOW).await;
    assert!(visit.errors.is_empty(), "{:?}", visit.errors);
    let origin = format!("http://127.0.0.1:{port}/");
    assert!(
        visit.requests.iter().all(|r| r.starts_with(&origin)),
        "only the dashboard is asked: {:?}",
        visit.requests
    );
    let v = &visit.value;
    assert_eq!(v["live"], false, "the page ended as the report: {v}");
    let mut seen: Vec<i64> = v["seconds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_i64().unwrap())
        .collect();
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "seconds only advance: {seen:?}"
    );
    seen.dedup();
    assert!(
        seen.len() >= 4,
        "the page followed the run second by second: {seen:?}"
    );

    // The report of the same folder, as `volley report` writes it, says the same.
    let report = dir.path().join("report.html");
    let status = Command::new(cargo_bin("volley"))
        .arg("report")
        .arg(&out)
        .arg("-o")
        .arg(&report)
        .status()
        .unwrap();
    assert!(status.success());
    let written = chromium::visit(&report, 1280, FINAL).await;
    assert!(written.value["summary"].as_str().unwrap().contains("echo"));
    assert_eq!(v["summary"], written.value["summary"]);
    assert_eq!(v["thresholds"], written.value["thresholds"]);
    assert_eq!(v["plots"], written.value["plots"]);
}

#[test]
fn a_busy_dashboard_address_and_dashboard_with_processes_are_refused_before_the_run() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write_scenario(dir.path(), &echo_scenario("builtin", 2, "5/s", "1s"));
    let out = dir.path().join("out");
    for extra in [
        vec![format!("--dashboard={addr}")],
        vec!["--dashboard".into(), "--processes".into(), "2".into()],
    ] {
        let run = Command::new(cargo_bin("volley"))
            .arg("run")
            .arg(&file)
            .arg("--out")
            .arg(&out)
            .args(&extra)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(!out.exists(), "{extra:?}: nothing ran");
        let why = if extra.len() == 1 {
            format!("--dashboard {addr}: cannot listen there")
        } else {
            "not available with --processes".to_owned()
        };
        assert!(stderr.contains(&why), "{extra:?}: {stderr}");
    }
}
