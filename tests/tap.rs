//! `volley tap` against real servers on 127.0.0.1: the builtin one (raw /echo and /ticker,
//! Socket.IO echo and ack over every transport) and small test servers that close with a chosen
//! code or drop the connection. The tap runs in-process, as the CLI runs it, with its records
//! going to a JSONL file; one test drives the binary.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use volley::secrets::SecretRules;
use volley::serve::{self, ServeConfig};
use volley::tap::{self, Ending, Input, SocketIoOptions, TapConfig, TapError, TapOutcome};
use volley::transport::engine::Transport;

/// A tap config for `url` that sends `lines`, printing nothing.
fn config(url: &str, socketio: Option<SocketIoOptions>, lines: &[&str]) -> TapConfig {
    let mut config = TapConfig::new(url, socketio).unwrap();
    config.input = Input::Lines(lines.iter().map(|l| l.to_string()).collect());
    config.sink.print = false;
    config.connect_timeout = Duration::from_secs(5);
    config
}

/// Runs the tap to its end; its records, from the JSONL file.
async fn tap_records(mut config: TapConfig, dir: &Path) -> (TapOutcome, Vec<Value>) {
    let path = dir.join("tap.jsonl");
    config.sink.jsonl = Some(path.clone());
    let outcome = tap::run(config, std::future::pending()).await.unwrap();
    (outcome, read_jsonl(&path))
}

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn frames<'a>(records: &'a [Value], dir: &str, opcode: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["kind"] == "frame" && r["dir"] == dir && r["opcode"] == opcode)
        .collect()
}

fn sio_packets<'a>(records: &'a [Value], dir: &str, kind: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["dir"] == dir && r["sio"]["type"] == kind)
        .collect()
}

#[tokio::test]
async fn raw_websocket_lines_and_their_echoes_are_recorded_both_ways() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(
        &server.url("/echo"),
        None,
        &["hello", r#"{"n":1}"#, "/ping p"],
    );
    // Without a wait the close follows the last line at once, and when the server reads it in
    // the same batch as the lines it answers the close and can no longer send their echoes.
    config.wait = Duration::from_millis(500);
    let (outcome, records) = tap_records(config, dir.path()).await;

    assert_eq!(outcome.exit_code(), 0, "{}", outcome.ending);
    assert_eq!(
        outcome.ending,
        Ending::Closed {
            code: 1000,
            answer: 1000
        }
    );
    assert_eq!(records[0]["kind"], "connect");
    assert_eq!(records[0]["peer"], server.addr().to_string());
    assert_eq!(records[0]["target"], "/echo");
    let sent: Vec<&Value> = frames(&records, "c2s", "text");
    let echoed: Vec<&Value> = frames(&records, "s2c", "text");
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0]["text"], "hello");
    assert_eq!(sent[0]["masked"], true);
    assert_eq!(sent[0]["len"], 5);
    assert_eq!(sent[1]["text"], r#"{"n":1}"#);
    let echoed_texts: Vec<&Value> = echoed.iter().map(|r| &r["text"]).collect();
    assert_eq!(echoed_texts, ["hello", r#"{"n":1}"#]);
    assert_eq!(frames(&records, "s2c", "pong")[0]["hex"], "70");
    // The close handshake, both ways, then the closing record with the counts.
    assert_eq!(frames(&records, "c2s", "close")[0]["close_code"], 1000);
    assert_eq!(frames(&records, "s2c", "close")[0]["close_code"], 1000);
    let last = records.last().unwrap();
    assert_eq!(last["kind"], "close");
    assert_eq!(last["close_code"], 1000);
    assert_eq!(last["frames_c2s"], 4);
    assert_eq!(last["frames_s2c"], 4);
}

#[tokio::test]
async fn socketio_connect_echo_and_ack_are_recorded_on_every_transport() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let url = format!("http://{}/admin", server.addr());
    for transport in [
        Transport::Websocket,
        Transport::Polling,
        Transport::PollingUpgrade,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let options = SocketIoOptions {
            transport,
            auth: Some(r#"{"token":"secret"}"#.into()),
            ..SocketIoOptions::default()
        };
        let lines = [r#"emit echo "hi" {"n":1}"#, r#"emit ack "a" 2 --ack"#];
        let (outcome, records) = tap_records(config(&url, Some(options), &lines), dir.path()).await;
        let what = transport.as_str();

        assert_eq!(outcome.exit_code(), 0, "{what}: {}", outcome.ending);
        assert_eq!(outcome.acks_due, 0, "{what}");
        assert!(
            records
                .iter()
                .any(|r| r["eio"] == "open" && r["dir"] == "s2c"),
            "{what}: no open packet"
        );
        let connect = sio_packets(&records, "c2s", "CONNECT");
        assert_eq!(connect[0]["sio"]["nsp"], "/admin", "{what}");
        assert_eq!(
            connect[0]["sio"]["args"],
            serde_json::json!({"token": "[redacted]"}),
            "{what}"
        );
        let accepted = sio_packets(&records, "s2c", "CONNECT");
        assert!(accepted[0]["sio"]["args"]["sid"].is_string(), "{what}");

        let echo = sio_packets(&records, "s2c", "EVENT");
        assert_eq!(echo.len(), 1, "{what}");
        assert_eq!(echo[0]["sio"]["event"], "echo", "{what}");
        assert_eq!(
            echo[0]["sio"]["args"],
            serde_json::json!(["hi", {"n": 1}]),
            "{what}"
        );

        let asked = sio_packets(&records, "c2s", "EVENT");
        assert_eq!(asked[1]["sio"]["event"], "ack", "{what}");
        let id = asked[1]["sio"]["id"].clone();
        let ack = sio_packets(&records, "s2c", "ACK");
        assert_eq!(ack[0]["sio"]["id"], id, "{what}");
        assert_eq!(ack[0]["sio"]["args"], serde_json::json!(["a", 2]), "{what}");
        assert!(ack[0]["ack_rtt_ms"].as_f64().unwrap() >= 0.0, "{what}");

        assert_eq!(
            sio_packets(&records, "c2s", "DISCONNECT").len(),
            1,
            "{what}"
        );
        assert_eq!(records.last().unwrap()["kind"], "close", "{what}");
    }
}

#[tokio::test]
async fn show_secrets_shows_the_connect_auth() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let options = SocketIoOptions {
        auth: Some(r#"{"token":"secret"}"#.into()),
        ..SocketIoOptions::default()
    };
    let url = format!("http://{}", server.addr());
    let mut config = config(&url, Some(options), &[]);
    config.decode.secrets = SecretRules::shown();
    let (_, records) = tap_records(config, dir.path()).await;
    let connect = sio_packets(&records, "c2s", "CONNECT");
    assert_eq!(connect[0]["sio"]["args"]["token"], "secret");
}

#[tokio::test]
async fn wait_keeps_receiving_after_the_last_line() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&server.url("/ticker?every=10ms"), None, &[]);
    config.wait = Duration::from_millis(300);
    let (outcome, records) = tap_records(config, dir.path()).await;

    assert_eq!(outcome.exit_code(), 0, "{}", outcome.ending);
    let ticks = frames(&records, "s2c", "text");
    assert!(!ticks.is_empty(), "no tick within the wait");
    let opened = records[0]["t"].as_f64().unwrap();
    let closing = frames(&records, "c2s", "close")[0]["t"].as_f64().unwrap();
    assert!(
        closing - opened >= 0.3,
        "closed after {}s",
        closing - opened
    );
}

#[tokio::test]
async fn a_connect_error_is_recorded_and_fails_the_tap() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let options = SocketIoOptions {
        auth: Some(r#"{"reject":"not today"}"#.into()),
        ..SocketIoOptions::default()
    };
    let mut config = config(&format!("http://{}", server.addr()), Some(options), &[]);
    let path = dir.path().join("tap.jsonl");
    config.sink.jsonl = Some(path.clone());
    let err = tap::run(config, std::future::pending()).await.unwrap_err();
    assert!(
        matches!(&err, TapError::Connect { detail, .. } if detail.contains("not today")),
        "{err}"
    );
    let records = read_jsonl(&path);
    // The server quotes the auth's value, which the CONNECT's record hid: hidden here too.
    assert_eq!(
        sio_packets(&records, "c2s", "CONNECT")[0]["sio"]["args"]["reject"],
        "[redacted]"
    );
    assert_eq!(
        sio_packets(&records, "s2c", "CONNECT_ERROR")[0]["sio"]["args"]["message"],
        "[redacted]"
    );
    assert_eq!(records.last().unwrap()["kind"], "error");
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let config = config(&format!("ws://{addr}/echo"), None, &["hi"]);
    let err = tap::run(config, std::future::pending()).await.unwrap_err();
    assert!(
        matches!(&err, TapError::Connect { detail, .. } if detail.contains("refused")),
        "{err}"
    );
}

#[tokio::test]
async fn a_bad_send_line_is_refused_before_connecting() {
    // Nothing listens there: the line is checked first.
    let config = config(
        "http://127.0.0.1:9/",
        Some(SocketIoOptions::default()),
        &["emit chat hi"],
    );
    let err = tap::run(config, std::future::pending()).await.unwrap_err();
    assert!(
        matches!(&err, TapError::Usage(m) if m.contains("not JSON")),
        "{err}"
    );
}

/// A WebSocket server that echoes one message, then closes with `code`, or, without a code,
/// resets the connection.
async fn closing_server(code: Option<u16>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let Some(Ok(message)) = ws.next().await else {
            return;
        };
        ws.send(message).await.unwrap();
        match code {
            Some(code) => {
                let frame = CloseFrame {
                    code: CloseCode::from(code),
                    reason: "bye".into(),
                };
                let _ = ws.send(Message::Close(Some(frame))).await;
                while let Some(Ok(_)) = ws.next().await {}
            }
            None => {
                // Linger 0: closing the socket sends RST instead of FIN.
                #[allow(deprecated)]
                ws.get_ref().set_linger(Some(Duration::ZERO)).unwrap();
                drop(ws);
            }
        }
    });
    addr
}

#[tokio::test]
async fn the_exit_status_follows_the_servers_close_code() {
    for (code, exit) in [(1000, 0), (1001, 0), (1011, 4), (4000, 4)] {
        let addr = closing_server(Some(code)).await;
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(&format!("ws://{addr}/"), None, &["x"]);
        // The server's close ends the session long before this.
        config.wait = Duration::from_secs(30);
        let (outcome, records) = tap_records(config, dir.path()).await;
        assert_eq!(
            outcome.ending,
            Ending::ServerClosed {
                code: Some(code),
                reason: "bye".into()
            }
        );
        assert_eq!(outcome.exit_code(), exit, "close code {code}");
        assert_eq!(frames(&records, "s2c", "close")[0]["close_code"], code);
        // tungstenite answers with the same code.
        assert_eq!(frames(&records, "c2s", "close")[0]["close_code"], code);
        assert_eq!(records.last().unwrap()["close_code"], code);
    }
}

#[tokio::test]
async fn a_dropped_connection_ends_the_session_abnormally() {
    let addr = closing_server(None).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&format!("ws://{addr}/"), None, &["x"]);
    config.wait = Duration::from_secs(30);
    let (outcome, records) = tap_records(config, dir.path()).await;
    assert!(
        matches!(outcome.ending, Ending::Lost(_)),
        "{:?}",
        outcome.ending
    );
    assert_eq!(outcome.exit_code(), tap::EXIT_ABNORMAL);
    let last = records.last().unwrap();
    assert_eq!(last["kind"], "close");
    assert!(last["close_code"].is_null(), "{last}");
    assert!(last["detail"].as_str().unwrap().contains("reset"), "{last}");
}

#[test]
fn the_binary_prints_decoded_frames_and_exits_0_after_a_normal_close() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let output = assert_cmd::Command::cargo_bin("volley")
        .unwrap()
        .args([
            "tap",
            &server.url("/echo"),
            "--send",
            "hello",
            "--wait",
            "100ms",
        ])
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("→ text masked 5B  hello"), "{stdout}");
    assert!(stdout.contains("← text 5B  hello"), "{stdout}");
    assert!(stdout.contains("← close 2B  1000"), "{stdout}");
    assert!(!stdout.contains('\x1b'), "colour on a pipe: {stdout}");

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = listener.local_addr().unwrap();
    drop(listener);
    assert_cmd::Command::cargo_bin("volley")
        .unwrap()
        .args(["tap", &format!("ws://{closed}/"), "--send", "x"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("cannot connect"));
}

#[test]
fn the_binary_sends_stdin_lines_until_its_end_and_reports_bad_ones_on_stderr() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let output = assert_cmd::Command::cargo_bin("volley")
        .unwrap()
        .args(["tap", &format!("http://{}", server.addr())])
        .write_stdin("emit echo \"hi\"\nemit echo hi\n\nemit ack 1 --ack\n")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("← text 15B  EVENT / \"echo\" [\"hi\"]"),
        "{stdout}"
    );
    assert!(stdout.contains("ACK / id=0 [1]  (ack after "), "{stdout}");
    assert!(
        stderr.contains("line 2: argument 1 is not JSON"),
        "{stderr}"
    );
}

/// A token a user would not want in a shared log: long enough to be scrubbed, unique enough to
/// find.
const TOKEN: &str = "tk-7f3a9c1e55";

#[tokio::test]
async fn a_query_token_is_hidden_in_the_connect_record_and_in_the_frames_that_carry_it() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    // Socket.IO: the URL's query goes on the Engine.IO request, as the official client does.
    for transport in [Transport::Websocket, Transport::Polling] {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("http://{}/?token={TOKEN}&room=a", server.addr());
        let options = SocketIoOptions {
            transport,
            ..SocketIoOptions::default()
        };
        let line = format!(r#"emit echo "my token is {TOKEN}""#);
        // The ack comes after the echo: the tap waits for it.
        let lines = [line.as_str(), "emit ack 1 --ack"];
        let (outcome, records) = tap_records(config(&url, Some(options), &lines), dir.path()).await;
        let what = transport.as_str();
        assert_eq!(outcome.exit_code(), 0, "{what}: {}", outcome.ending);
        let written = std::fs::read_to_string(dir.path().join("tap.jsonl")).unwrap();
        assert!(
            !written.contains(TOKEN),
            "{what}: the token leaked: {written}"
        );
        let connect = &records[0];
        assert_eq!(connect["kind"], "connect", "{what}");
        let target = connect["target"].as_str().unwrap();
        assert!(
            target.contains("&token=[redacted]&room=a"),
            "{what}: {target}"
        );
        for dir in ["c2s", "s2c"] {
            let echo = sio_packets(&records, dir, "EVENT");
            assert_eq!(
                echo[0]["sio"]["args"],
                serde_json::json!(["my token is [redacted]"]),
                "{what} {dir}"
            );
        }
    }
    // Raw WebSocket: the path's query.
    let dir = tempfile::tempdir().unwrap();
    let url = server.url(&format!("/echo?access_token={TOKEN}"));
    let line = format!("auth {TOKEN}");
    let (_, records) = tap_records(config(&url, None, &[&line]), dir.path()).await;
    assert_eq!(records[0]["target"], "/echo?access_token=[redacted]");
    let echoed = frames(&records, "s2c", "text");
    assert_eq!(echoed.len(), 1, "{records:#?}");
    assert_eq!(echoed[0]["text"], "auth [redacted]");
}

#[tokio::test]
async fn show_secrets_shows_the_query_token_and_extra_keys_hide_more() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let url = server.url(&format!("/echo?access_token={TOKEN}&room=r-55"));
    let line = format!("auth {TOKEN}");

    let dir = tempfile::tempdir().unwrap();
    let mut shown = config(&url, None, &[&line]);
    shown.decode.secrets = SecretRules::shown();
    let (_, records) = tap_records(shown, dir.path()).await;
    assert_eq!(
        records[0]["target"],
        format!("/echo?access_token={TOKEN}&room=r-55")
    );
    assert_eq!(
        frames(&records, "s2c", "text")[0]["text"],
        format!("auth {TOKEN}")
    );

    let dir = tempfile::tempdir().unwrap();
    let mut more = config(&url, None, &["room r-55"]);
    more.decode.secrets = SecretRules::hidden(&["room".to_string()]);
    let (_, records) = tap_records(more, dir.path()).await;
    assert_eq!(
        records[0]["target"],
        "/echo?access_token=[redacted]&room=[redacted]"
    );
    assert_eq!(
        frames(&records, "s2c", "text")[0]["text"],
        "room [redacted]"
    );
}

#[test]
fn the_binary_hides_a_query_token_on_the_terminal_and_in_its_messages() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let url = server.url(&format!("/echo?token={TOKEN}"));
    let output = assert_cmd::Command::cargo_bin("volley")
        .unwrap()
        .args(["tap", &url, "--send", TOKEN, "--wait", "100ms"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(!stdout.contains(TOKEN), "{stdout}");
    assert!(
        stdout.contains("/echo?token=[redacted]"),
        "the connect line: {stdout}"
    );
    assert!(stdout.contains("← text 13B  [redacted]"), "{stdout}");

    let output = assert_cmd::Command::cargo_bin("volley")
        .unwrap()
        .args(["tap", &url, "--send", TOKEN, "--show-secrets"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&format!("/echo?token={TOKEN}")), "{stdout}");
    assert!(stdout.contains(&format!("← text 13B  {TOKEN}")), "{stdout}");

    // A server that cannot be reached: the error names the URL without the token.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = listener.local_addr().unwrap();
    drop(listener);
    let output = assert_cmd::Command::cargo_bin("volley")
        .unwrap()
        .args([
            "tap",
            &format!("ws://{closed}/?token={TOKEN}"),
            "--send",
            "x",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("?token=[redacted]"), "{stderr}");
    assert!(!stderr.contains(TOKEN), "{stderr}");
}
