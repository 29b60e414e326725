//! The inspector records the text bodies of ordinary HTTP requests and responses (`http_body`):
//! a real login through it (the Node message-queue service, logged into by `volley run`), and
//! bodies of every framing and encoding from a hyper server, sent by hand over 127.0.0.1. Each
//! test checks what was relayed as well as what was recorded: the bytes pass unchanged, the
//! record holds the decoded text up to `--max-body`, with secret members and fields hidden
//! unless `--show-secrets`.

use crate::common;

use std::convert::Infallible;
use std::io::{BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use common::inspect::*;
use common::node::NodeServer;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use volley::inspect::faults::FaultPlan;
use volley::scenario::Overrides;
use volley::secrets::SecretRules;
use volley::wire::decode::DecodeOptions;

/// What `GET /big` answers: 100 KiB of text.
const BIG: usize = 100 * 1024;
/// What `GET /chunked` answers, in three chunks.
const CHUNKS: [&str; 3] = [
    r#"{"items":[1,2,"#,
    r#"3],"session_token":"st-"#,
    r#"0c1d2e3f"}"#,
];

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn json_doc() -> String {
    r#"{"id":42,"note":"gzipped","access_token":"at-9a8b7c6d5e"}"#.to_string()
}

type Body = BoxBody<Bytes, Infallible>;

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// The bodies the tests need, from hyper (an HTTP implementation independent of volley's):
/// - `POST /echo`: the request's body back, with its Content-Type and Content-Encoding;
/// - `GET /chunked`: [`CHUNKS`], sent chunked;
/// - `GET /gzip`: [`json_doc`] compressed with gzip;
/// - `GET /big`: [`BIG`] bytes of text;
/// - `GET /image`: a PNG's first bytes.
async fn bodies(request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path().to_string();
    let header = |name| request.headers().get(name).cloned();
    let (content_type, encoding) = (header("content-type"), header("content-encoding"));
    let mut response = Response::builder();
    let body = match path.as_str() {
        "/echo" => {
            if let Some(t) = content_type {
                response = response.header("content-type", t);
            }
            if let Some(e) = encoding {
                response = response.header("content-encoding", e);
            }
            full(request.into_body().collect().await.unwrap().to_bytes())
        }
        "/chunked" => {
            response = response.header("content-type", "application/json");
            let frames = CHUNKS.map(|c| Ok(Frame::data(Bytes::from_static(c.as_bytes()))));
            StreamBody::new(futures_util::stream::iter(frames)).boxed()
        }
        "/gzip" => {
            response = response
                .header("content-type", "application/json; charset=utf-8")
                .header("content-encoding", "gzip");
            full(gzip(json_doc().as_bytes()))
        }
        "/big" => {
            response = response.header("content-type", "text/plain");
            full("0123456789abcdef".repeat(BIG / 16))
        }
        "/image" => {
            response = response.header("content-type", "image/png");
            full(&b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"[..])
        }
        _ => full(""),
    };
    Ok(response.body(body).unwrap())
}

async fn bodies_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(
                        hyper_util::rt::TokioIo::new(stream),
                        hyper::service::service_fn(bodies),
                    )
                    .await;
            });
        }
    });
    addr
}

/// A request with these extra header lines and this body (Content-Length unless the headers say
/// chunked, in which case `body` is sent as written).
fn request(method: &str, path: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
    for line in headers {
        head.push_str(line);
        head.push_str("\r\n");
    }
    if !headers.iter().any(|h| h.starts_with("Transfer-Encoding")) {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    [head.as_bytes(), body].concat()
}

/// Sends `request` and reads its response: the head, then a Content-Length body, or everything
/// up to the end of the stream.
async fn exchange(stream: &mut TcpStream, request: &[u8]) -> (String, Vec<u8>) {
    stream.write_all(request).await.unwrap();
    let mut head = Vec::new();
    read_until_head_end(stream, &mut head).await;
    let head = String::from_utf8(head).unwrap();
    let length = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().unwrap())
    });
    let mut body = vec![0; length.unwrap_or(0)];
    match length {
        Some(_) => stream.read_exact(&mut body).await.map(|_| ()).unwrap(),
        None => stream.read_to_end(&mut body).await.map(|_| ()).unwrap(),
    }
    (head, body)
}

/// The records of one connection from the request to `path` on: its head and what follows.
fn after<'a>(records: &'a [Value], path: &str) -> Vec<&'a Value> {
    let at = records
        .iter()
        .position(|r| r["kind"] == "http_request" && r["target"] == path)
        .unwrap_or_else(|| panic!("no request to {path}"));
    let conn = &records[at]["conn"];
    records[at..]
        .iter()
        .filter(|r| r["conn"] == *conn)
        .collect()
}

/// The body records of one direction, in order.
fn bodies_of<'a>(records: &[&'a Value], dir: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["kind"] == "http_body" && r["dir"] == dir)
        .copied()
        .collect()
}

fn hidden_with(secrets: SecretRules, max_body: usize) -> DecodeOptions {
    DecodeOptions {
        max_body,
        secrets,
        ..DecodeOptions::default()
    }
}

#[tokio::test]
async fn chunked_and_gzip_bodies_are_recorded_decoded_in_both_directions() {
    let upstream = bodies_server().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{upstream}");
    let running = inspect(dir.path(), &url, FaultPlan::default(), None).await;
    let mut client = TcpStream::connect(running.addr).await.unwrap();

    let json = r#"{"a":1,"password":"pw-chunk-9"}"#;
    let chunked = format!(
        "6\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
        &json[..6],
        json.len() - 6,
        &json[6..]
    );
    let (_, echo) = exchange(
        &mut client,
        &request(
            "POST",
            "/echo",
            &[
                "Content-Type: application/json",
                "Transfer-Encoding: chunked",
            ],
            chunked.as_bytes(),
        ),
    )
    .await;
    assert_eq!(echo, json.as_bytes(), "relayed as it was");

    let text = "hello gzip ".repeat(50);
    let zipped = gzip(text.as_bytes());
    let (head, echo) = exchange(
        &mut client,
        &request(
            "POST",
            "/echo?n=2",
            &["Content-Type: text/plain", "Content-Encoding: gzip"],
            &zipped,
        ),
    )
    .await;
    assert!(head.to_ascii_lowercase().contains("content-encoding: gzip"));
    assert_eq!(echo, zipped, "still compressed on the wire");

    let (_, gzipped) = exchange(
        &mut client,
        &request("GET", "/gzip", &["Accept-Encoding: gzip"], b""),
    )
    .await;
    let (head, chunks) = exchange(
        &mut client,
        &request("GET", "/chunked", &["Connection: close"], b""),
    )
    .await;
    assert!(head.contains("chunked"), "{head}");
    // Hyper writes chunk sizes in upper-case hex.
    let first = format!("{:X}\r\n{}", CHUNKS[0].len(), CHUNKS[0]);
    let shown = String::from_utf8_lossy(&chunks);
    assert!(shown.starts_with(&first), "relayed chunked: {shown:?}");
    assert!(chunks.ends_with(b"0\r\n\r\n"));
    drop(client);
    running.wait_all_closed(Duration::from_secs(5)).await;
    let (_, records) = running.stop().await;

    let chunked_request = after(&records, "/echo");
    let c2s: Vec<_> = chunked_request
        .iter()
        .filter(|r| r["dir"] == "c2s")
        .collect();
    assert_eq!(c2s[1]["kind"], "http_body", "right after its head");
    let hidden = r#"{"a":1,"password":"[redacted]"}"#;
    for body in [
        bodies_of(&chunked_request, "c2s")[0],
        bodies_of(&chunked_request, "s2c")[0],
    ] {
        assert_eq!(body["text"], hidden, "{body}");
        assert_eq!(body["len"], json.len(), "de-chunked");
        assert!(body.get("truncated").is_none());
    }
    let gzip_request = after(&records, "/echo?n=2");
    for dir in ["c2s", "s2c"] {
        let body = bodies_of(&gzip_request, dir)[0];
        assert_eq!(body["text"], text.as_str(), "{dir} decompressed");
        assert_eq!(body["len"], zipped.len(), "{dir}: the length on the wire");
    }
    let body = bodies_of(&after(&records, "/gzip"), "s2c")[0];
    assert_eq!(
        body["text"],
        r#"{"id":42,"note":"gzipped","access_token":"[redacted]"}"#
    );
    assert_eq!(body["len"], gzipped.len());
    let body = bodies_of(&after(&records, "/chunked"), "s2c")[0];
    assert_eq!(
        body["text"],
        r#"{"items":[1,2,3],"session_token":"[redacted]"}"#
    );
    assert_eq!(body["len"], CHUNKS.concat().len());
    let written = std::fs::read_to_string(dir.path().join("frames.jsonl")).unwrap();
    for secret in ["pw-chunk-9", "at-9a8b7c6d5e", "st-0c1d2e3f"] {
        assert!(!written.contains(secret), "{secret} leaked");
    }
}

#[tokio::test]
async fn a_body_over_max_body_is_relayed_whole_and_its_record_cut() {
    let upstream = bodies_server().await;
    let dir = tempfile::tempdir().unwrap();
    let decode = hidden_with(SecretRules::default(), 1024);
    let url = format!("http://{upstream}");
    let running = inspect_decoding(dir.path(), &url, FaultPlan::default(), None, decode).await;
    let mut client = TcpStream::connect(running.addr).await.unwrap();
    let (_, big) = exchange(&mut client, &request("GET", "/big", &[], b"")).await;
    assert_eq!(big.len(), BIG, "relayed whole");
    let padded = format!(r#"{{"password":"pw-first","pad":"{}"}}"#, "x".repeat(3000));
    let (_, echo) = exchange(
        &mut client,
        &request(
            "POST",
            "/echo",
            &["Content-Type: application/json"],
            padded.as_bytes(),
        ),
    )
    .await;
    assert_eq!(echo, padded.as_bytes());
    drop(client);
    running.wait_all_closed(Duration::from_secs(5)).await;
    let (_, records) = running.stop().await;

    let body = bodies_of(&after(&records, "/big"), "s2c")[0];
    assert_eq!(body["len"], BIG);
    assert_eq!(body["text"].as_str().unwrap().len(), 1024);
    assert_eq!(body["truncated"], true);
    // A JSON body cut short no longer parses: its secret members are hidden all the same.
    let echoed = after(&records, "/echo");
    for body in [bodies_of(&echoed, "c2s")[0], bodies_of(&echoed, "s2c")[0]] {
        assert_eq!(body["len"], padded.len());
        assert_eq!(body["truncated"], true);
        let text = body["text"].as_str().unwrap();
        assert!(
            text.starts_with(r#"{"password":"[redacted]","pad":"xxx"#),
            "{text}"
        );
        assert_eq!(text.len(), 1024 - "pw-first".len() + "[redacted]".len());
    }
}

#[tokio::test]
async fn binary_bodies_get_no_record_and_max_body_0_none_at_all() {
    let upstream = bodies_server().await;
    let url = format!("http://{upstream}");
    for max_body in [64 * 1024, 0] {
        let dir = tempfile::tempdir().unwrap();
        let decode = hidden_with(SecretRules::default(), max_body);
        let running = inspect_decoding(dir.path(), &url, FaultPlan::default(), None, decode).await;
        let mut client = TcpStream::connect(running.addr).await.unwrap();
        let (_, png) = exchange(&mut client, &request("GET", "/image", &[], b"")).await;
        assert!(png.starts_with(b"\x89PNG"));
        let octets = request(
            "POST",
            "/echo?octets",
            &["Content-Type: application/octet-stream"],
            b"\x00\x01binary",
        );
        exchange(&mut client, &octets).await;
        let not_utf8 = request(
            "POST",
            "/echo?latin1",
            &["Content-Type: text/plain"],
            b"caf\xe9",
        );
        exchange(&mut client, &not_utf8).await;
        let json = request(
            "POST",
            "/echo?json",
            &["Content-Type: application/json"],
            b"{}",
        );
        exchange(&mut client, &json).await;
        drop(client);
        running.wait_all_closed(Duration::from_secs(5)).await;
        let (_, records) = running.stop().await;
        assert_eq!(of_kind(&records, "http_request").len(), 4);
        assert_eq!(of_kind(&records, "http_response").len(), 4);
        let texts: Vec<_> = of_kind(&records, "http_body")
            .iter()
            .map(|r| (r["dir"].as_str().unwrap(), r["text"].as_str().unwrap()))
            .collect();
        if max_body == 0 {
            assert_eq!(texts, [], "--max-body 0");
        } else {
            assert_eq!(texts, [("c2s", "{}"), ("s2c", "{}")], "only the JSON");
        }
    }
}

#[tokio::test]
async fn fields_the_user_names_are_hidden_in_json_and_form_bodies_and_later_text() {
    let upstream = bodies_server().await;
    let dir = tempfile::tempdir().unwrap();
    let decode = hidden_with(SecretRules::hidden(&["pin".to_string()]), 64 * 1024);
    let url = format!("http://{upstream}");
    let running = inspect_decoding(dir.path(), &url, FaultPlan::default(), None, decode).await;
    let mut client = TcpStream::connect(running.addr).await.unwrap();
    let sent = [
        (
            "/echo?json",
            "application/json",
            r#"{"user":"ann","pin":"4821-77"}"#,
        ),
        (
            "/echo?form",
            "application/x-www-form-urlencoded",
            "user=ann&pin=4821-77&password=hunter22",
        ),
        ("/echo?text", "text/plain", "your pin is 4821-77, ann"),
    ];
    for (path, content_type, body) in sent {
        let content_type = format!("Content-Type: {content_type}");
        exchange(
            &mut client,
            &request("POST", path, &[&content_type], body.as_bytes()),
        )
        .await;
    }
    drop(client);
    running.wait_all_closed(Duration::from_secs(5)).await;
    let (_, records) = running.stop().await;
    let texts: Vec<_> = bodies_of(&records.iter().collect::<Vec<_>>(), "c2s")
        .iter()
        .map(|r| r["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        texts,
        [
            r#"{"user":"ann","pin":"[redacted]"}"#,
            "user=ann&pin=[redacted]&password=[redacted]",
            "your pin is [redacted], ann",
        ]
    );
    let written = std::fs::read_to_string(dir.path().join("frames.jsonl")).unwrap();
    for secret in ["4821-77", "hunter22"] {
        assert!(!written.contains(secret), "{secret} leaked");
    }
}

/// One user logs in to the message-queue service through the inspector and connects with the
/// token it got, as `volley run` plays it.
fn login_scenario(inspector: SocketAddr) -> String {
    format!(
        r#"
name = "login through the inspector"
target = "http://{inspector}"
protocol = "socketio"
duration = "500ms"
ramp = "0s"
drain = "500ms"

[[data]]
name = "users"
file = "users.csv"

[socketio]
auth = {{ token = "{{{{token}}}}" }}

[[group]]
name = "users"
clients = 1
before_connect = [
  {{ http = "POST /login", name = "login", json = {{ user = "{{{{users.user}}}}", password = "{{{{users.password}}}}" }}, status = 200, capture = {{ token = "/token" }} }},
]
"#
    )
}

/// Runs the login through an inspector decoding with `secrets`; the records.
async fn login_records(server: &NodeServer, secrets: SecretRules) -> (Vec<Value>, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.csv"), "user,password\nuser1,pw1\n").unwrap();
    let decode = hidden_with(secrets, 64 * 1024);
    let running = inspect_decoding(
        dir.path(),
        &server.url(),
        FaultPlan::default(),
        None,
        decode,
    )
    .await;
    let text = login_scenario(running.addr);
    let outcome = common::run_in_process(dir.path(), &text, Overrides::default()).await;
    assert_eq!(
        outcome.run.totals.error_total(),
        0,
        "{:?}",
        outcome.run.totals.errors
    );
    running.wait_all_closed(Duration::from_secs(5)).await;
    let (_, records) = running.stop().await;
    let written = std::fs::read_to_string(dir.path().join("frames.jsonl")).unwrap();
    (records, written)
}

/// The client's CONNECT, over long-polling or WebSocket.
fn connect_packet(records: &[Value]) -> &Value {
    records
        .iter()
        .find(|r| r["dir"] == "c2s" && r["sio"]["type"] == "CONNECT")
        .expect("a CONNECT")
}

/// 32 hexadecimal digits in a row: a token or session id of the message-queue service.
fn has_token(text: &str) -> bool {
    text.as_bytes()
        .windows(32)
        .any(|w| w.iter().all(u8::is_ascii_hexdigit) && w.iter().any(u8::is_ascii_digit))
}

/// The `http_body` lines of docs/inspect-and-tap.md are those of this login, field for field and
/// in the same order, but for when and on which connection they were written.
fn the_docs_show_these_login_bodies(sent: &[&Value], answered: &[&Value]) {
    let page = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/inspect-and-tap.md"),
    )
    .unwrap();
    let without_clock = |record: &Value| -> Vec<(String, Value)> {
        let mut fields: Vec<_> = record.as_object().unwrap().clone().into_iter().collect();
        fields.retain(|(name, _)| !matches!(name.as_str(), "time" | "t" | "conn"));
        fields
    };
    let documented: Vec<_> = page
        .lines()
        .filter(|l| l.starts_with('{') && l.contains(r#""kind":"http_body""#))
        .map(|l| without_clock(&serde_json::from_str(l).unwrap()))
        .collect();
    let recorded = [without_clock(sent[0]), without_clock(answered[0])];
    assert_eq!(documented, recorded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_through_the_inspector_shows_what_was_sent_and_what_came_back_but_no_secret() {
    let server = NodeServer::start_script("message-queue.js", &["--users", "2"]);
    let (records, written) = login_records(&server, SecretRules::default()).await;

    let login = after(&records, "/login");
    for (dir, head) in [("c2s", "http_request"), ("s2c", "http_response")] {
        let kinds: Vec<_> = login
            .iter()
            .filter(|r| r["dir"] == dir)
            .map(|r| r["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, [head, "http_body"], "each body right after its head");
    }
    let sent = bodies_of(&login, "c2s")[0];
    assert_eq!(sent["len"], login[0]["len"], "the request's Content-Length");
    let sent: Value = serde_json::from_str(sent["text"].as_str().unwrap()).unwrap();
    assert_eq!(sent, json!({"user": "user1", "password": "[redacted]"}));
    let keys: Vec<_> = sent.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["user", "password"], "in the order sent");
    let answer: Value =
        serde_json::from_str(bodies_of(&login, "s2c")[0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(answer, json!({"token": "[redacted]", "user": "user1"}));
    let response = of_kind(&records, "http_response")
        .into_iter()
        .find(|r| r["target"] == "/login")
        .unwrap();
    assert_eq!(response["headers"]["Set-Cookie"], "[redacted]");

    // The CONNECT shows which keys the auth has, not the token in it.
    let connect = connect_packet(&records);
    assert_eq!(connect["text"], r#"40{"token":"[redacted]"}"#);
    assert_eq!(connect["sio"]["args"], json!({"token": "[redacted]"}));
    // Long-polling bodies stay packets: no http_body for them.
    for body in of_kind(&records, "http_body") {
        let conn = &body["conn"];
        let head = records
            .iter()
            .rev()
            .filter(|r| r["conn"] == *conn && r["kind"] == "http_request")
            .find(|r| r["t"].as_f64() <= body["t"].as_f64())
            .unwrap();
        assert_eq!(head["target"], "/login", "{body}");
    }
    assert!(
        !has_token(&written),
        "a token or session id leaked:\n{written}"
    );
    assert!(!written.contains("pw1"));
    the_docs_show_these_login_bodies(&bodies_of(&login, "c2s"), &bodies_of(&login, "s2c"));

    let (records, written) = login_records(&server, SecretRules::shown()).await;
    let login = after(&records, "/login");
    let sent: Value =
        serde_json::from_str(bodies_of(&login, "c2s")[0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(sent, json!({"user": "user1", "password": "pw1"}));
    let answer: Value =
        serde_json::from_str(bodies_of(&login, "s2c")[0]["text"].as_str().unwrap()).unwrap();
    let token = answer["token"].as_str().unwrap();
    assert!(has_token(token), "{answer}");
    assert_eq!(
        connect_packet(&records)["text"],
        format!(r#"40{{"token":"{token}"}}"#)
    );
    assert!(written.contains(token));
}

// The test's own thread blocks on the child and its socket; the server runs on the workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inspect_binary_takes_max_body_and_secret() {
    let upstream = bodies_server().await;
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("wire.jsonl");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("volley"))
        .args([
            "inspect",
            "--listen",
            "127.0.0.1:0",
            "--quiet",
            "--duration",
            "2s",
        ])
        .args(["--upstream", &format!("http://{upstream}")])
        .args(["--max-body", "20B", "--secret", "pin", "--jsonl"])
        .arg(&jsonl)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let addr =
        listening_address(&mut stderr).unwrap_or_else(|line| panic!("no address in {line:?}"));
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    let body = r#"{"pin":"4821-77","user":"somebody"}"#;
    client
        .write_all(&request(
            "POST",
            "/echo",
            &["Content-Type: application/json", "Connection: close"],
            body.as_bytes(),
        ))
        .unwrap();
    let mut response = Vec::new();
    client.read_to_end(&mut response).unwrap();
    assert!(response.ends_with(body.as_bytes()));
    let _ = stderr.read_to_string(&mut String::new());
    assert!(child.wait().unwrap().success());
    let records = read_jsonl(&jsonl);
    let texts: Vec<_> = of_kind(&records, "http_body")
        .iter()
        .map(|r| (r["text"].as_str().unwrap(), r["truncated"] == true))
        .collect();
    assert_eq!(texts, [(r#"{"pin":"[redacted]","us"#, true); 2]);
}
