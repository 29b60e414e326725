//! Helpers shared by the integration tests: scenario files in temporary folders, in-process runs,
//! CSV reading, an in-process `volley inspect` and the binary (in `inspect`), the real Node
//! Socket.IO server and client (in `node`), headless Chromium (in `chromium`) and a visit as a
//! HAR (in `har`), and the apps whose users' sessions the `volley record` tests capture (in
//! `session_capture`).
#![allow(dead_code)]

pub mod chromium;
pub mod har;
pub mod inspect;
pub mod node;
pub mod prometheus;
pub mod session_capture;

use std::path::{Path, PathBuf};

use volley::runner::{self, RunOptions, RunOutcome};
use volley::scenario::{self, Overrides};
use volley::wire::frame_log::FrameLogOptions;

pub fn write_scenario(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs a scenario in-process, results into `dir/out`, never interrupted.
pub async fn run_in_process(dir: &Path, text: &str, overrides: Overrides) -> RunOutcome {
    run_with_frame_log(dir, text, overrides, None, std::future::pending()).await
}

/// Runs a scenario in-process, results into `dir/out`, with a frame log when given, until done or
/// until `shutdown` resolves.
pub async fn run_with_frame_log(
    dir: &Path,
    text: &str,
    overrides: Overrides,
    frame_log: Option<FrameLogOptions>,
    shutdown: impl std::future::Future<Output = ()>,
) -> RunOutcome {
    let path = write_scenario(dir, text);
    let plan = scenario::load(&path, &overrides).unwrap();
    let options = RunOptions {
        scenario_file: path,
        out: Some(dir.join("out")),
        quiet: true,
        threads: Some(2),
        insecure: true,
        frame_log,
        ..Default::default()
    };
    runner::run(plan, options, shutdown)
        .await
        .expect("the run itself must succeed")
}

/// A CSV file as a header and rows of strings.
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header = reader.headers().unwrap().iter().map(String::from).collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

/// The summary.csv count of one metric.
pub fn summary_count(dir: &Path, metric: &str) -> u64 {
    let (_, rows) = read_csv(&dir.join("summary.csv"));
    rows.iter()
        .find(|r| r[0] == metric)
        .unwrap_or_else(|| panic!("no row {metric} in summary.csv"))[2]
        .parse()
        .unwrap()
}

/// An echo scenario against `target`.
pub fn echo_scenario(target: &str, clients: u64, rate: &str, duration: &str) -> String {
    format!(
        r#"
name = "test echo"
target = "{target}"
duration = "{duration}"
ramp = "200ms"
drain = "2s"
connect_timeout = "2s"

[[group]]
name = "g"
clients = {clients}
emit = [{{ event = "echo", data = {{ text = "hi {{{{client}}}}", n = "{{{{seq}}}}" }}, rate = "{rate}" }}]

[[expect]]
event = "echo"
within = "500ms"
"#
    )
}

/// The builtin server with TLS, on a certificate for `localhost` signed by itself (runs need
/// `insecure`, which [`run_in_process`] sets).
pub fn self_signed_server() -> volley::serve::ServerHandle {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let tls =
        volley::transport::tls::server_config_from(vec![cert.cert.der().clone()], key).unwrap();
    volley::serve::spawn(volley::serve::ServeConfig {
        tls: Some(tls),
        ..volley::serve::ServeConfig::default()
    })
    .unwrap()
}

/// Polls `ready` every 50 ms until it holds; fails the test after `deadline`.
pub fn wait_for(what: &str, deadline: std::time::Duration, mut ready: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !ready() {
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
