//! Secrets stay out of everything volley writes, by default: the inspector's JSONL and terminal
//! lines, a run's frame log, errors.csv, run.json, report.html and the summary, and the messages
//! that name a URL. Real servers on 127.0.0.1 (the builtin one, a small HTTP login service written here), the
//! inspector in-process and as the binary. Each test checks that the secret's bytes are absent from
//! the written file, that `[redacted]` stands where they were, and that `--show-secrets` shows
//! them. (tap's own are in tap.rs; the rules, without sockets, in `secrets::tests` and
//! inspect_decode.rs.)

use crate::common;

use std::io::{BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::inspect::*;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use volley::inspect::faults::FaultPlan;
use volley::protocol::wsframe::encode_frame;
use volley::runner::{self, RunOptions};
use volley::scenario::{self, Overrides};
use volley::secrets::SecretRules;
use volley::serve::{self, ServeConfig};
use volley::wire::frame_log::FrameLogOptions;

/// A bearer token as a server would hand it out.
const TOKEN: &str = "tok-5e1f0c9a77d2";
/// A subprotocol token, as a browser passes one.
const PROTOCOL_TOKEN: &str = "pt-93b1c4e8f0a2";
const MASK: Option<[u8; 4]> = Some([1, 2, 3, 4]);

/// Asserts that `text` (a whole written file) does not hold `secret` and does hold `[redacted]`.
fn assert_hidden(what: &str, text: &str, secret: &str) {
    assert!(!text.contains(secret), "{what}: `{secret}` leaked:\n{text}");
    assert!(
        text.contains("[redacted]"),
        "{what}: nothing redacted:\n{text}"
    );
}

/// Asserts that the inspector's frames.jsonl in `dir` holds none of `secrets`.
fn assert_inspected_hides(dir: &std::path::Path, secrets: &[&str]) {
    let written = std::fs::read_to_string(dir.join("frames.jsonl")).unwrap();
    for secret in secrets {
        assert_hidden("inspect --jsonl", &written, secret);
    }
}

/// An upgrade request with the token in its query, its subprotocols and its Referer.
fn upgrade_request() -> String {
    format!(
        "GET /echo?access_token={TOKEN}&room=1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, access_token, {PROTOCOL_TOKEN}\r\nReferer: http://app/?token={TOKEN}\r\n\r\n"
    )
}

/// Through `inspector` to the builtin /echo: the upgrade, one text frame that quotes both
/// tokens, its echo, and the close.
async fn raw_session(inspector: SocketAddr) {
    let mut client = TcpStream::connect(inspector).await.unwrap();
    client
        .write_all(upgrade_request().as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    read_until_head_end(&mut client, &mut head).await;
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    let text = format!("mine: {TOKEN} {PROTOCOL_TOKEN}");
    client
        .write_all(&encode_frame(true, 0, 1, MASK, text.as_bytes()))
        .await
        .unwrap();
    let mut echo = vec![0; 2 + text.len()];
    client.read_exact(&mut echo).await.unwrap();
    client
        .write_all(&encode_frame(true, 0, 8, MASK, b"\x03\xe8"))
        .await
        .unwrap();
    let mut rest = Vec::new();
    let _ = client.read_to_end(&mut rest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inspector_hides_query_and_subprotocol_tokens_wherever_the_connection_shows_them() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let running = inspect(dir.path(), &server.url(""), FaultPlan::default(), None).await;
    raw_session(running.addr).await;
    running.wait_all_closed(Duration::from_secs(5)).await;
    let (_, records) = running.stop().await;
    assert_inspected_hides(dir.path(), &[TOKEN, PROTOCOL_TOKEN]);

    let request = of_kind(&records, "http_request")[0];
    assert_eq!(request["target"], "/echo?access_token=[redacted]&room=1");
    assert_eq!(
        request["headers"]["Sec-WebSocket-Protocol"],
        "chat, access_token, [redacted]"
    );
    assert_eq!(
        request["headers"]["Referer"],
        "http://app/?token=[redacted]"
    );
    assert_eq!(
        request["headers"]["Sec-WebSocket-Key"],
        "dGhlIHNhbXBsZSBub25jZQ=="
    );
    let response = of_kind(&records, "http_response")[0];
    assert_eq!(response["target"], "/echo?access_token=[redacted]&room=1");
    let texts: Vec<_> = of_kind(&records, "frame")
        .into_iter()
        .filter(|f| f["opcode"] == "text")
        .map(|f| f["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts, ["mine: [redacted] [redacted]"; 2]);
    server.stop();
}

/// A scripted upstream whose 101 echoes the subprotocol token and sets a cookie.
static SUBPROTOCOL_101: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: {PROTOCOL_TOKEN}\r\nSet-Cookie: session={TOKEN}\r\n\r\n"
    )
});

#[tokio::test]
async fn the_servers_echo_of_a_subprotocol_token_and_its_cookies_are_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let (upstream, server) = scripted_server(SUBPROTOCOL_101.as_bytes(), Vec::new()).await;
    let running = inspect(
        dir.path(),
        &format!("ws://{upstream}"),
        FaultPlan::default(),
        None,
    )
    .await;
    let mut client = TcpStream::connect(running.addr).await.unwrap();
    client
        .write_all(upgrade_request().as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    read_until_head_end(&mut client, &mut head).await;
    // The bytes are relayed as they are: only the records hide them.
    assert_eq!(head, SUBPROTOCOL_101.as_bytes());
    client.shutdown().await.unwrap();
    let mut rest = Vec::new();
    let _ = client.read_to_end(&mut rest).await;
    server.await.unwrap();
    running.wait_all_closed(Duration::from_secs(5)).await;
    let (_, records) = running.stop().await;
    assert_inspected_hides(dir.path(), &[PROTOCOL_TOKEN, TOKEN]);
    let response = of_kind(&records, "http_response")[0];
    assert_eq!(response["headers"]["Sec-WebSocket-Protocol"], "[redacted]");
    assert_eq!(response["headers"]["Set-Cookie"], "[redacted]");
}

/// A Socket.IO scenario that authenticates with the Engine.IO query, as many apps do.
fn query_token_scenario(target: &str) -> String {
    format!(
        r#"
name = "query token"
target = "{target}"
protocol = "socketio"
duration = "1s"
ramp = "0s"
drain = "1s"

[socketio]
transport = "polling-upgrade"
query = {{ token = "{TOKEN}", room = "lobby" }}

[[group]]
name = "g"
clients = 2
emit = [{{ event = "echo", data = {{ n = "{{{{seq}}}}" }}, rate = "20/s" }}]

[[expect]]
event = "echo"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engineio_query_token_is_hidden_in_the_inspector_the_frame_log_and_run_json() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let running = inspect(dir.path(), &server.url(""), FaultPlan::default(), None).await;
    let text = query_token_scenario(&format!("ws://{}", running.addr));
    let frames = FrameLogOptions {
        file: Some(dir.path().join("run-frames.jsonl")),
        ..FrameLogOptions::default()
    };
    let outcome = run_with_frame_log(
        dir.path(),
        &text,
        Overrides::default(),
        Some(frames),
        std::future::pending(),
    )
    .await;
    assert_eq!(outcome.run.totals.error_total(), 0);
    let (_, records) = running.stop().await;

    assert_inspected_hides(dir.path(), &[TOKEN]);
    let requests = of_kind(&records, "http_request");
    assert!(requests.len() >= 4, "{requests:?}");
    for request in requests {
        let target = request["target"].as_str().unwrap();
        assert!(target.contains("&token=[redacted]&room=lobby"), "{target}");
    }
    let logged = std::fs::read_to_string(dir.path().join("run-frames.jsonl")).unwrap();
    assert_hidden("--log-frames", &logged, TOKEN);
    let run_json = std::fs::read_to_string(outcome.dir.join("run.json")).unwrap();
    assert_hidden("run.json", &run_json, TOKEN);
    let run: serde_json::Value = serde_json::from_str(&run_json).unwrap();
    let query = &run["scenario"]["resolved"]["socketio"]["query"];
    assert_eq!(
        *query,
        serde_json::json!({"token": "[redacted]", "room": "lobby"})
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_secrets_keeps_the_query_token_in_the_frame_log_and_run_json() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = query_token_scenario(&server.url(""));
    let path = write_scenario(dir.path(), &text);
    let plan = scenario::load(&path, &Overrides::default()).unwrap();
    let options = RunOptions {
        scenario_file: path,
        out: Some(dir.path().join("out")),
        quiet: true,
        threads: Some(1),
        frame_log: Some(FrameLogOptions::default()),
        secrets: SecretRules::shown(),
        ..Default::default()
    };
    let outcome = runner::run(plan, options, std::future::pending())
        .await
        .unwrap();
    let logged = std::fs::read_to_string(outcome.dir.join("frames.jsonl")).unwrap();
    assert!(logged.contains(&format!("token={TOKEN}")), "{logged}");
    let run_json = std::fs::read_to_string(outcome.dir.join("run.json")).unwrap();
    assert!(run_json.contains(TOKEN), "{run_json}");
    server.stop();
}

/// A login service: `POST /login` with `{"user":..,"password":..}` answers `{"token":..}` when
/// the password is `pw-<user>-secret`, else 401 with a body that quotes the password, as careless
/// services do.
async fn login_service() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                let body = loop {
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            let (name, value) = l.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        break body.to_string();
                    }
                };
                let login: serde_json::Value = serde_json::from_str(&body).unwrap();
                let user = login["user"].as_str().unwrap();
                let password = login["password"].as_str().unwrap();
                let (status, answer) = if password == format!("pw-{user}-secret") {
                    ("200 OK", format!(r#"{{"token":"tok-{user}-7c3e9a"}}"#))
                } else {
                    (
                        "401 Unauthorized",
                        format!(r#"{{"error":"wrong password {password} for {user}"}}"#),
                    )
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

/// Users log in with a row of users.csv (its `password` column is secret by its name, `pin` by
/// the scenario's `secrets`), capture their token (secret by its name), connect to the echo
/// with it in the query and send both back and forth. User 2's password is wrong.
fn conversation_scenario(target: &str, login: SocketAddr) -> String {
    format!(
        r#"
name = "secret conversation"
target = "{target}"
duration = "1s"
ramp = "0s"
drain = "1s"
secrets = ["users.pin"]

[http]
base = "http://{login}"

[[data]]
name = "users"
file = "users.csv"
pick = "sequential"

[[group]]
name = "g"
clients = 3
path = "/echo?access_token={{{{token}}}}"
before_connect = [
  {{ http = "POST /login", name = "login", json = {{ user = "{{{{users.user}}}}", password = "{{{{users.password}}}}" }}, capture = {{ token = "/token" }} }},
]
on_connect = [
  {{ emit = "hello", data = {{ token = "{{{{token}}}}", password = "{{{{users.password}}}}", pin = "{{{{users.pin}}}}" }} }},
  {{ wait = "300ms" }},
]
"#
    )
}

fn users_csv(dir: &Path) {
    std::fs::write(
        dir.join("users.csv"),
        "user,password,pin\nu0,pw-u0-secret,4821\nu1,pw-u1-secret,7390\nu2,wrong-pw-u2,5532\n",
    )
    .unwrap();
}

async fn conversation(dir: &Path, secrets: SecretRules) -> volley::runner::RunOutcome {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let login = login_service().await;
    users_csv(dir);
    let text = conversation_scenario(&server.url(""), login);
    let path = write_scenario(dir, &text);
    let plan = scenario::load(&path, &Overrides::default()).unwrap();
    let options = RunOptions {
        scenario_file: path,
        out: Some(dir.join("out")),
        quiet: true,
        threads: Some(1),
        frame_log: Some(FrameLogOptions::default()),
        secrets,
        ..Default::default()
    };
    let outcome = runner::run(plan, options, std::future::pending())
        .await
        .unwrap();
    server.stop();
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_tokens_and_secret_columns_are_hidden_in_the_frame_log_and_errors_csv() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = conversation(dir.path(), SecretRules::default()).await;
    let out = &outcome.dir;
    let logged = std::fs::read_to_string(out.join("frames.jsonl")).unwrap();
    for secret in [
        "tok-u0-7c3e9a",
        "tok-u1-7c3e9a",
        "pw-u0-secret",
        "pw-u1-secret",
        "4821",
        "7390",
    ] {
        assert_hidden("--log-frames", &logged, secret);
    }
    let records: Vec<serde_json::Value> = logged
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let connects: Vec<_> = records.iter().filter(|r| r["kind"] == "connect").collect();
    assert_eq!(connects.len(), 2, "user 2 never connects");
    for connect in connects {
        assert_eq!(connect["target"], "/echo?access_token=[redacted]");
    }
    let hello = r#"{"token":"[redacted]","password":"[redacted]","pin":"[redacted]"}"#;
    let texts: Vec<_> = records
        .iter()
        .filter(|r| r["opcode"] == "text")
        .map(|r| r["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, [hello; 4], "each hello and its echo");

    let errors = std::fs::read_to_string(out.join("errors.csv")).unwrap();
    assert_hidden("errors.csv", &errors, "wrong-pw-u2");
    let (_, rows) = read_csv(&out.join("errors.csv"));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][3], "http_status");
    assert!(
        rows[0][4].contains("wrong password [redacted] for u2"),
        "{rows:?}"
    );
    // The summary's first error of each kind is read from errors.csv: the report shows the same.
    let run_json = std::fs::read_to_string(out.join("run.json")).unwrap();
    assert!(!run_json.contains("wrong-pw-u2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_secrets_keeps_the_conversations_values() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = conversation(dir.path(), SecretRules::shown()).await;
    let logged = std::fs::read_to_string(outcome.dir.join("frames.jsonl")).unwrap();
    for secret in ["access_token=tok-u0-7c3e9a", "pw-u1-secret", "4821"] {
        assert!(logged.contains(secret), "{secret} not shown:\n{logged}");
    }
    let errors = std::fs::read_to_string(outcome.dir.join("errors.csv")).unwrap();
    assert!(
        errors.contains("wrong password wrong-pw-u2 for u2"),
        "{errors}"
    );
}

#[test]
fn the_run_binary_hides_a_target_token_in_run_json_the_report_the_summary_and_its_errors() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = server.url(&format!("/echo?token={TOKEN}"));
    let scenario = write_scenario(dir.path(), &echo_scenario(&target, 2, "10/s", "500ms"));
    let out = dir.path().join("out");
    let output = assert_cmd::Command::cargo_bin("volley")
        .unwrap()
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .args(["--quiet", "--report"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert_hidden("the summary", &stdout, TOKEN);
    let run_json = std::fs::read_to_string(out.join("run.json")).unwrap();
    assert_hidden("run.json", &run_json, TOKEN);
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_hidden("report.html", &report, TOKEN);
    let run: serde_json::Value = serde_json::from_str(&run_json).unwrap();
    assert!(
        run["settings"]["target_url"]
            .as_str()
            .unwrap()
            .ends_with("/echo?token=[redacted]")
    );
    server.stop();

    // Nobody there: the error names the URL, not the token; --show-secrets names it whole.
    for (flag, shown) in [(None, "?token=[redacted]"), (Some("--show-secrets"), TOKEN)] {
        let output = assert_cmd::Command::cargo_bin("volley")
            .unwrap()
            .arg("run")
            .arg(&scenario)
            .arg("--out")
            .arg(dir.path().join("gone"))
            .args(flag)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("cannot reach"), "{stderr}");
        assert!(stderr.contains(shown), "{stderr}");
        if flag.is_none() {
            assert!(!stderr.contains(TOKEN), "{stderr}");
        }
    }
}

/// Starts `volley inspect` (the binary) for `duration`, returns its address and the child.
fn inspect_binary(upstream: &str, extra: &[&str]) -> (SocketAddr, std::process::Child) {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("volley"))
        .args(["inspect", "--listen", "127.0.0.1:0", "--upstream", upstream])
        .args(["--duration", "2s"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let addr =
        listening_address(&mut stderr).unwrap_or_else(|line| panic!("no address in {line:?}"));
    // The rest of stderr is read so that the inspector never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest);
    });
    (addr, child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inspect_binary_prints_redacted_lines_and_all_of_them_with_show_secrets() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let upstream = format!("{}?token={TOKEN}", server.url(""));
    for shown in [false, true] {
        let extra: &[&str] = if shown { &["--show-secrets"] } else { &[] };
        let (addr, child) = inspect_binary(&upstream, extra);
        raw_session(addr).await;
        let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{stdout}");
        assert!(
            stdout.contains("→ GET /echo?access_token="),
            "the request line: {stdout}"
        );
        if shown {
            assert!(
                stdout.contains(&format!("GET /echo?access_token={TOKEN}&room=1")),
                "{stdout}"
            );
            assert!(
                stdout.contains(&format!("mine: {TOKEN} {PROTOCOL_TOKEN}")),
                "{stdout}"
            );
        } else {
            assert_hidden("inspect's terminal", &stdout, TOKEN);
            assert_hidden("inspect's terminal", &stdout, PROTOCOL_TOKEN);
            assert!(stdout.contains("GET /echo?access_token=[redacted]&room=1"));
            assert!(stdout.contains("mine: [redacted] [redacted]"), "{stdout}");
        }
    }
    server.stop();
}
