//! `volley report` and `volley run --report`: the page of a real run opened in headless Chromium
//! (every plot drawn, no console errors, nothing fetched, a screenshot), an interrupted run's page,
//! folders with missing or bad files, and a 2-hour run drawn in at most 600 points per line.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use assert_cmd::cargo::cargo_bin;
use common::chromium;
use common::*;
use predicates::prelude::*;
use volley::scenario::Overrides;
use volley::serve::{self, Faults, ServeConfig};

fn volley() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("volley").unwrap()
}

/// Listeners and a talker in a room whose server drops every 5th delivery (gaps), and a group
/// whose path does not exist (errors).
fn eventful_scenario(target: &str) -> String {
    format!(
        r#"
name = "report <check> & co"
target = "{target}"
duration = "3s"
ramp = "300ms"
drain = "1s"
connect_timeout = "2s"

[[group]]
name = "listeners"
clients = 4
path = "/broadcast?room=r"
on_connect = [{{ wait = "10ms" }}]

[[group]]
name = "talker"
clients = 1
path = "/broadcast?room=r"
on_connect = [{{ wait = "300ms" }}]
emit = [{{ event = "chat", data = {{ n = "{{{{seq}}}}" }}, rate = "20/s" }}]

[[group]]
name = "strays"
clients = 2
path = "/nope"

[[expect]]
name = "fanout"
event = "chat"
from = "talker"
to = ["listeners", "talker"]
within = "1s"
"#
    )
}

/// What the check script returns: the page's title, sections, plots and problems.
const PAGE_CHECK: &str = r##"(() => {
  const data = 'polyline[stroke-width="2"], polyline[stroke-width="4"], circle, rect:not([fill="#FFFFFF"])';
  const plots = [...document.querySelectorAll('figure.plot')].map(f => {
    const svg = f.querySelector('svg');
    const box = svg ? svg.getBoundingClientRect() : { width: 0, height: 0 };
    const marks = svg ? [...svg.querySelectorAll(data)] : [];
    const markBox = marks.length ? marks[0].getBBox() : { width: 0, height: 0 };
    return {
      id: f.id,
      width: box.width,
      height: box.height,
      shapes: svg ? svg.querySelectorAll('path, polyline, line, rect').length : 0,
      marks: marks.length,
      markSize: markBox.width + markBox.height,
      texts: svg ? svg.querySelectorAll('text').length : 0,
    };
  });
  return {
    title: document.title,
    h1: document.querySelector('h1') ? document.querySelector('h1').textContent : '',
    sections: [...document.querySelectorAll('section')].map(s => s.id),
    plots,
    problems: [...document.querySelectorAll('.problem')].map(p => p.textContent),
    external: document.querySelectorAll('script, link, img, iframe, object').length,
  };
})()"##;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_of_a_run_opens_in_chromium_with_every_plot_drawn() {
    let server = serve::spawn(ServeConfig {
        faults: Faults {
            drop_every: Some(5),
            ..Faults::default()
        },
        ..ServeConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = eventful_scenario(&server.url(""));
    let outcome = run_in_process(dir.path(), &text, Overrides::default()).await;
    server.stop();
    let out = dir.path().join("out");
    assert!(
        outcome.run.totals.expects[0].lost > 0,
        "the drops made gaps"
    );
    assert!(
        outcome.run.totals.error_total() >= 2,
        "the strays made errors"
    );

    volley()
        .arg("report")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("report.html"));
    let page = out.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    // The scenario's name is text, never markup.
    assert!(html.contains("report &lt;check&gt; &amp; co"));
    assert!(!html.contains("<check>"));
    // Where connect time goes: the phases of a plain WebSocket, and what lies between them.
    assert!(html.contains("<h3>Where connect time goes</h3>"));
    for row in [">connect_tcp</td>", ">connect_upgrade</td>", ">rest</td>"] {
        assert!(html.contains(row), "{row}");
    }
    assert!(!html.contains(">connect_tls</td>"), "no TLS on ws://");

    let visit = chromium::visit(&page, 1280, PAGE_CHECK).await;
    assert_eq!(visit.errors, Vec::<String>::new(), "console errors");
    assert!(
        visit.requests.iter().all(|u| u.starts_with("file://")),
        "the page fetched {:?}",
        visit.requests
    );
    let v = &visit.value;
    assert_eq!(v["title"], "volley report: report <check> & co");
    assert!(
        v["h1"].as_str().unwrap().contains("completed"),
        "{}",
        v["h1"]
    );
    let sections: Vec<&str> = v["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(
        sections,
        [
            "summary",
            "thresholds",
            "latency",
            "load",
            "problems",
            "scenario"
        ]
    );
    assert_eq!(v["problems"], serde_json::json!([]));
    assert_eq!(v["external"], 0, "no script, style sheet or image to load");
    let plots = v["plots"].as_array().unwrap();
    let ids: Vec<&str> = plots.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "latency-over-time-connect",
            "distribution-connect",
            "connect-phases",
            "latency-over-time-fanout",
            "distribution-fanout",
            "events",
            "connections",
            "gaps",
            "errors",
        ]
    );
    for plot in plots {
        let id = &plot["id"];
        assert!(
            plot["width"].as_f64().unwrap() > 300.0,
            "{id} width: {plot}"
        );
        assert!(
            plot["height"].as_f64().unwrap() > 150.0,
            "{id} height: {plot}"
        );
        assert!(plot["shapes"].as_u64().unwrap() > 5, "{id}: {plot}");
        assert!(
            plot["marks"].as_u64().unwrap() > 0,
            "{id} draws no data: {plot}"
        );
        assert!(plot["markSize"].as_f64().unwrap() > 0.0, "{id}: {plot}");
        assert!(
            plot["texts"].as_u64().unwrap() > 4,
            "{id} has no labels: {plot}"
        );
    }

    let (width, height) = chromium::png_size(&visit.screenshot);
    assert_eq!(width, 1280);
    assert!(height > 2000, "the whole page, {height} px high");
    assert!(
        visit.screenshot.len() > 50_000,
        "{} bytes",
        visit.screenshot.len()
    );
    std::fs::write(dir.path().join("report.png"), &visit.screenshot).unwrap();
}

#[test]
fn run_with_report_writes_the_page_also_when_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut child = Command::new(cargo_bin("volley"))
        .args([
            "run",
            "scenarios/quickstart.toml",
            "--duration",
            "60s",
            "--clients",
            "10",
            "--report",
        ])
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(
        "two seconds of time series",
        Duration::from_secs(30),
        || {
            std::fs::read_to_string(out.join("timeseries.csv"))
                .is_ok_and(|t| t.lines().count() >= 3)
        },
    );
    // SAFETY: sending a signal to the child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    wait_for("the child to exit", Duration::from_secs(20), || {
        child.try_wait().unwrap().is_some()
    });
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("report.html"), "{stdout}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("interrupted"));
    assert!(html.contains("id=\"latency-over-time-echo\""));
    assert!(!html.contains("class=\"problem\""), "no file was bad");
}

/// A finished run's folder, to take apart.
async fn finished_run(dir: &Path) -> std::path::PathBuf {
    let text = echo_scenario("builtin", 5, "10/s", "1s");
    run_in_process(dir, &text, Overrides::default()).await;
    dir.join("out")
}

#[tokio::test]
async fn odd_folders_give_a_page_that_says_what_is_missing_or_bad() {
    let dir = tempfile::tempdir().unwrap();
    let out = finished_run(dir.path()).await;

    // Not a results folder: bad usage.
    volley()
        .arg("report")
        .arg(dir.path().join("nope"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not a folder"));
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    volley()
        .arg("report")
        .arg(&empty)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("holds no run results"));

    // A folder from before latency.hlog: per-second percentiles and the .hgrm distribution.
    std::fs::remove_file(out.join("latency.hlog")).unwrap();
    let page = dir.path().join("old.html");
    volley()
        .arg("report")
        .arg(&out)
        .arg("-o")
        .arg(&page)
        .assert()
        .success();
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("No interval log"), "{html}");
    assert!(html.contains("id=\"latency-over-time-echo\""));
    assert!(html.contains("id=\"distribution-echo\""));
    assert!(html.contains("from echo.hgrm"));

    // Bad files: the page is still written, says which, and the exit code is 1.
    std::fs::write(out.join("timeseries.csv"), "second,sent\n1,lots\n").unwrap();
    std::fs::write(out.join("latency.hlog"), "Tag=echo,0.0,1.0,1.0,AAAA\n").unwrap();
    std::fs::remove_file(out.join("gaps.csv")).unwrap();
    volley().arg("report").arg(&out).assert().code(1).stderr(
        predicate::str::contains("timeseries.csv: line 2: `sent` is `lots`")
            .and(predicate::str::contains("latency.hlog: line 1")),
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("timeseries.csv: line 2"), "{html}");
    assert!(html.contains("gaps.csv is missing"), "{html}");
    // run.json still gives the summary.
    assert!(html.contains("<h3>Latency</h3>"));

    // Only run.json: every other section says what it misses.
    let lone = dir.path().join("lone");
    std::fs::create_dir(&lone).unwrap();
    std::fs::copy(out.join("run.json"), lone.join("run.json")).unwrap();
    volley().arg("report").arg(&lone).assert().success();
    let html = std::fs::read_to_string(lone.join("report.html")).unwrap();
    for missing in [
        "timeseries.csv is missing",
        "errors.csv is missing",
        "echo.hgrm is missing",
    ] {
        assert!(html.contains(missing), "{missing}: {html}");
    }
}

/// A synthetic 2-hour results folder: two metrics, 7,200 seconds.
fn two_hour_folder(dir: &Path) {
    use volley::metrics::Interval;
    use volley::results::latency_hlog::HlogWriter;
    use volley::results::timeseries_csv::{SecondRow, TimeseriesWriter};
    let names = ["connect".to_string(), "echo".to_string()];
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut hlog = HlogWriter::create(&dir.join("latency.hlog"), &names, t0).unwrap();
    let mut ts = TimeseriesWriter::create(&dir.join("timeseries.csv"), &names).unwrap();
    let mut row = SecondRow {
        second: 0,
        epoch_ms: 0,
        connected: 100,
        connecting: 0,
        interval: Interval::new(2, 1),
    };
    row.interval.sent = 20;
    row.interval.received = 20;
    for second in 1..=7200u64 {
        row.second = second;
        row.interval.histograms.iter_mut().for_each(|h| h.reset());
        if second <= 10 {
            row.interval.histograms[0]
                .record_n(300 + second * 10, 10)
                .unwrap();
        }
        // A slow hour, then a faster one, with a spike at 90 minutes.
        let base = if second < 3600 { 900 } else { 600 };
        let spike = if (5400..5430).contains(&second) {
            20
        } else {
            1
        };
        for k in 0..20u64 {
            row.interval.histograms[1]
                .record(base * spike + k * 37)
                .unwrap();
        }
        hlog.write(&row).unwrap();
        ts.write(&row).unwrap();
    }
    std::fs::write(
        dir.join("run.json"),
        r#"{"status":"completed","elapsed_s":7200.5,"scenario":{"name":"two hours"},
            "summary":{"latency":{"connect":{},"echo":{}}}}"#,
    )
    .unwrap();
}

#[test]
fn a_two_hour_run_is_drawn_in_at_most_600_points_per_line() {
    let dir = tempfile::tempdir().unwrap();
    two_hour_folder(dir.path());
    volley().arg("report").arg(dir.path()).assert().success();
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("time since start (min)"));
    assert!(
        html.contains("per 15 s bucket"),
        "15 s buckets: 480 of them"
    );
    let mut lines = 0;
    for polyline in html.split("<polyline").skip(1) {
        let tag = &polyline[..polyline.find("/>").unwrap()];
        if tag.contains("stroke-width=\"1\"") {
            continue; // axes and ticks
        }
        let points = tag.split("points=\"").nth(1).unwrap();
        let n = points[..points.find('"').unwrap()].split(' ').count();
        assert!(n <= 600, "{n} points");
        lines += 1;
    }
    assert!(lines >= 6, "{lines} data lines");
    // The spike shows in the merged buckets: a max near 18 ms.
    assert!(html.contains("id=\"latency-over-time-echo\""));
}
