//! The Node Socket.IO test server (tests/servers/socketio, npm `socket.io`) speaks the real
//! protocol and has the test hooks volley's tests rely on. No Socket.IO client library here: raw
//! HTTP over TCP for polling, tokio-tungstenite for WebSocket, packets written by hand.

use crate::common;

use std::time::Duration;

use common::node::NodeServer;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// Bound on every single exchange with the server.
const STEP: Duration = Duration::from_secs(5);

// ---------- raw HTTP/1.1 ----------

/// One request on a fresh connection (`Connection: close`): the status and the body.
async fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    timeout(STEP, async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        parse_response(&response)
    })
    .await
    .unwrap_or_else(|_| panic!("{method} {path}: no response within {STEP:?}"))
}

fn parse_response(response: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").expect("chunk size line");
        let size = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
        if size == 0 {
            return body;
        }
        body.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}

/// `PREFIX{json}` -> the JSON.
fn json_after(packet: &str, prefix: &str) -> Value {
    let rest = packet
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{packet:?} does not start with {prefix:?}"));
    serde_json::from_str(rest).unwrap_or_else(|e| panic!("{packet:?}: {e}"))
}

// ---------- WebSocket ----------

type Ws = WebSocketStream<TcpStream>;

/// Opens an Engine.IO v4 WebSocket session; returns it with the OPEN packet's JSON.
async fn ws_open(server: &NodeServer) -> (Ws, Value) {
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let url = format!(
        "ws://{}/socket.io/?EIO=4&transport=websocket",
        server.addr()
    );
    let (mut ws, _) = timeout(STEP, tokio_tungstenite::client_async(url, tcp))
        .await
        .expect("WebSocket upgrade timed out")
        .expect("WebSocket upgrade");
    let open = recv_text(&mut ws).await;
    (ws, json_after(&open, "0"))
}

/// Opens a session and connects to namespace "/"; returns it with the CONNECT reply's JSON.
async fn ws_connect(server: &NodeServer) -> (Ws, Value) {
    let (mut ws, _) = ws_open(server).await;
    send(&mut ws, "40").await;
    let reply = recv_text(&mut ws).await;
    (ws, json_after(&reply, "40"))
}

async fn send(ws: &mut Ws, text: &str) {
    timeout(STEP, ws.send(Message::text(text)))
        .await
        .expect("send timed out")
        .expect("send");
}

/// The next message, whatever it is (pings included), within `STEP`.
async fn recv(ws: &mut Ws) -> Message {
    match timeout(STEP, ws.next()).await {
        Ok(Some(Ok(message))) => message,
        Ok(other) => panic!("the connection ended: {other:?}"),
        Err(_) => panic!("nothing received within {STEP:?}"),
    }
}

/// The next text message that is not an Engine.IO PING (pings are answered with PONG).
async fn recv_text(ws: &mut Ws) -> String {
    loop {
        match recv(ws).await {
            Message::Text(text) if text.as_str() == "2" => send(ws, "3").await,
            Message::Text(text) => return text.as_str().to_owned(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// A `42[...]` EVENT as its JSON array.
fn event(packet: &str) -> Vec<Value> {
    array_after(packet, "42")
}

fn array_after(packet: &str, prefix: &str) -> Vec<Value> {
    match json_after(packet, prefix) {
        Value::Array(args) => args,
        other => panic!("EVENT payload is not an array: {other}"),
    }
}

/// The arguments of an EVENT from a server with connection state recovery: every EVENT it
/// emits without an ack id, to one socket or to a room, ends with an offset string.
fn without_offset(packet: &str, prefix: &str) -> Vec<Value> {
    let mut args = array_after(packet, prefix);
    let offset = args.pop();
    assert!(
        offset.as_ref().is_some_and(Value::is_string),
        "no trailing offset in {packet}"
    );
    args
}

// ---------- tests ----------

#[tokio::test]
async fn polling_handshake_connect_and_echo() {
    let server = NodeServer::start(&[]);
    let addr = server.addr();
    let base = "/socket.io/?EIO=4&transport=polling";

    let (status, body) = http(&addr, "GET", base, "").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("0{\"sid\":"), "{body}");
    let open = json_after(&body, "0");
    assert_eq!(open["upgrades"], json!(["websocket"]));
    assert_eq!(open["pingInterval"], 25000);
    assert_eq!(open["pingTimeout"], 20000);
    assert_eq!(open["maxPayload"], 1_000_000);
    let sid = open["sid"].as_str().unwrap();
    let session = format!("{base}&sid={sid}");

    let (status, body) = http(&addr, "POST", &session, "40").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, body) = http(&addr, "GET", &session, "").await;
    assert_eq!(status, 200);
    // With connection state recovery on, CONNECT carries the private session id too.
    let connect = json_after(&body, "40");
    let keys: Vec<&str> = connect
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(keys, ["sid", "pid"], "{body}");
    assert_ne!(
        connect["sid"], open["sid"],
        "the Socket.IO id is not the Engine.IO id"
    );

    let (_, body) = http(&addr, "POST", &session, r#"42["echo","hi",{"n":2}]"#).await;
    assert_eq!(body, "ok");
    let (_, body) = http(&addr, "GET", &session, "").await;
    // With recovery, even an emit to one socket is stored and carries an offset.
    assert_eq!(
        without_offset(&body, "42"),
        [json!("echo"), json!("hi"), json!({"n":2})]
    );

    // An unknown session is refused the Engine.IO way.
    let (status, body) = http(&addr, "GET", &format!("{base}&sid=nope"), "").await;
    assert_eq!(status, 400);
    assert_eq!(json_after(&body, "")["message"], "Session ID unknown");
}

#[tokio::test]
async fn websocket_connect_echo_ack_binary_and_refused_auth() {
    let server = NodeServer::start(&[]);
    let (mut ws, open) = ws_open(&server).await;
    assert_eq!(open["upgrades"], json!([]), "no upgrade from websocket");
    send(&mut ws, "40").await;
    let connect = json_after(&recv_text(&mut ws).await, "40");
    assert!(connect["sid"].is_string() && connect["pid"].is_string());

    send(&mut ws, r#"42["echo",{"a":1}]"#).await;
    assert_eq!(
        without_offset(&recv_text(&mut ws).await, "42"),
        [json!("echo"), json!({"a":1})]
    );
    send(&mut ws, r#"421["ack",1]"#).await;
    assert_eq!(recv_text(&mut ws).await, "431[1]");
    send(&mut ws, r#"4212["ack","x",{"y":[true,null]}]"#).await;
    assert_eq!(recv_text(&mut ws).await, r#"4312["x",{"y":[true,null]}]"#);
    // echo with an ack id: the event comes back and so does the ack.
    send(&mut ws, r#"427["echo",5]"#).await;
    assert_eq!(
        without_offset(&recv_text(&mut ws).await, "42"),
        [json!("echo"), json!(5)]
    );
    assert_eq!(recv_text(&mut ws).await, "437[5]", "acks carry no offset");

    // Binary: a BINARY_EVENT header, then the attachment as a raw binary frame, both ways.
    send(&mut ws, r#"451-["echo",{"_placeholder":true,"num":0}]"#).await;
    timeout(STEP, ws.send(Message::binary(vec![0u8, 1, 255])))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        without_offset(&recv_text(&mut ws).await, "451-"),
        [json!("echo"), json!({"_placeholder":true,"num":0})]
    );
    assert_eq!(recv(&mut ws).await, Message::binary(vec![0u8, 1, 255]));

    // The second namespace on the same Engine.IO session.
    send(&mut ws, "40/admin,").await;
    let admin = json_after(&recv_text(&mut ws).await, "40/admin,");
    assert!(admin["sid"].is_string() && admin["pid"].is_string());
    send(&mut ws, r#"42/admin,["echo","adm"]"#).await;
    assert_eq!(
        without_offset(&recv_text(&mut ws).await, "42/admin,"),
        [json!("echo"), json!("adm")]
    );

    // Auth refused by the middleware: CONNECT_ERROR with the message, per namespace.
    let (mut refused, _) = ws_open(&server).await;
    send(&mut refused, r#"40{"reject":"nope"}"#).await;
    assert_eq!(recv_text(&mut refused).await, r#"44{"message":"nope"}"#);
    send(&mut refused, r#"40/admin,{"reject":"no admin"}"#).await;
    assert_eq!(
        recv_text(&mut refused).await,
        r#"44/admin,{"message":"no admin"}"#
    );
    // ...and the Engine.IO session stays usable for a connect without `reject`.
    send(&mut refused, r#"40{"token":"ok"}"#).await;
    json_after(&recv_text(&mut refused).await, "40");
}

/// The tick stream of a connection: `(seq, offset)` of `42["tick",{"seq","ts"},OFFSET]`.
fn tick(packet: &str) -> (u64, String) {
    let args = event(packet);
    assert_eq!(
        args.len(),
        3,
        "tick with recovery has a trailing offset: {packet}"
    );
    assert_eq!(args[0], "tick");
    assert!(args[1]["ts"].as_u64().unwrap() > 1_600_000_000_000);
    let offset = args[2].as_str().expect("the offset is a string").to_owned();
    (args[1]["seq"].as_u64().unwrap(), offset)
}

#[tokio::test]
async fn ticks_carry_the_offset_and_a_cut_is_recovered_with_the_missed_ticks() {
    let server = NodeServer::start(&["--tick-every", "20"]);
    let (mut ws, first) = ws_connect(&server).await;
    send(&mut ws, r#"421["join","ticker"]"#).await;
    assert_eq!(recv_text(&mut ws).await, "431[]");
    let (mut seq, mut offset) = tick(&recv_text(&mut ws).await);
    let (next, next_offset) = tick(&recv_text(&mut ws).await);
    assert_eq!(next, seq + 1);
    assert_ne!(next_offset, offset);
    (seq, offset) = (next, next_offset);

    // An observer that keeps listening through the cut.
    let (mut observer, _) = ws_connect(&server).await;
    send(&mut observer, r#"421["join","ticker"]"#).await;
    assert_eq!(recv_text(&mut observer).await, "431[]");

    send(&mut ws, r#"422["cut",{"after":0,"key":"k1"}]"#).await;
    let mut armed = None;
    let ending = loop {
        match timeout(STEP, ws.next()).await.expect("the cut never came") {
            Some(Ok(Message::Text(text))) if text.as_str() == "432[true]" => armed = Some(true),
            Some(Ok(Message::Text(text))) if text.as_str().starts_with("42[\"tick\"") => {
                let (s, o) = tick(text.as_str());
                assert_eq!(s, seq + 1);
                (seq, offset) = (s, o);
            }
            Some(Ok(Message::Text(text))) if text.as_str() == "2" => {}
            Some(Ok(other)) => panic!("unexpected before the cut: {other:?}"),
            ending => break ending,
        }
    };
    assert_eq!(armed, Some(true), "the cut is acknowledged as armed");
    // Abrupt: the TCP connection ends without a WebSocket close frame.
    assert!(
        !matches!(ending, Some(Ok(Message::Close(_)))),
        "a cut sends no close frame: {ending:?}"
    );

    // Let the server broadcast three more ticks while the client is away.
    loop {
        let (s, _) = tick(&recv_text(&mut observer).await);
        if s >= seq + 3 {
            break;
        }
    }

    // Reconnect with the private id and the last offset: the missed ticks come first, then the
    // CONNECT with the same ids.
    let (mut ws, _) = ws_open(&server).await;
    let auth = json!({ "pid": first["pid"], "offset": offset });
    send(&mut ws, &format!("40{auth}")).await;
    let mut replayed = 0;
    let connect = loop {
        let packet = recv_text(&mut ws).await;
        if packet.starts_with("40") {
            break json_after(&packet, "40");
        }
        let (s, o) = tick(&packet);
        assert_eq!(s, seq + 1, "replayed ticks are contiguous");
        (seq, offset) = (s, o);
        replayed += 1;
    };
    assert!(replayed >= 3, "only {replayed} ticks replayed");
    assert_eq!(connect, first, "recovered: same sid and pid");
    // Live ticks continue where the replay ended, and the room membership was restored.
    let (s, _) = tick(&recv_text(&mut ws).await);
    assert_eq!(s, seq + 1);
    assert!(!offset.is_empty());

    // The same key never cuts twice.
    send(&mut ws, r#"423["cut",{"after":0,"key":"k1"}]"#).await;
    send(&mut ws, r#"42["echo","alive"]"#).await;
    let mut answers = Vec::new();
    while answers.len() < 2 {
        let packet = recv_text(&mut ws).await;
        if !packet.starts_with("42[\"tick\"") {
            answers.push(packet);
        }
    }
    assert_eq!(answers[0], "433[false]");
    assert_eq!(
        without_offset(&answers[1], "42"),
        [json!("echo"), json!("alive")]
    );
}

#[tokio::test]
async fn without_recovery_there_is_no_pid_and_no_offset() {
    let server = NodeServer::start(&["--no-recovery", "--tick-every", "10"]);
    let (mut ws, connect) = ws_connect(&server).await;
    let keys: Vec<&str> = connect
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(keys, ["sid"]);
    send(&mut ws, r#"42["join","ticker"]"#).await;
    let args = event(&recv_text(&mut ws).await);
    assert_eq!(args.len(), 2, "{args:?}");
    assert_eq!(args[0], "tick");
}

#[tokio::test]
async fn chat_reaches_the_senders_rooms_only() {
    let server = NodeServer::start(&[]);
    let (mut a, _) = ws_connect(&server).await;
    let (mut b, _) = ws_connect(&server).await;
    let (mut outsider, _) = ws_connect(&server).await;
    for (ws, room) in [(&mut a, "r1"), (&mut b, "r1"), (&mut outsider, "r2")] {
        send(ws, &format!(r#"421["join","{room}"]"#)).await;
        assert_eq!(recv_text(ws).await, "431[]");
    }
    send(&mut a, r#"42["chat",{"text":"hi"}]"#).await;
    for ws in [&mut a, &mut b] {
        let args = event(&recv_text(ws).await);
        assert_eq!(args[..2], [json!("chat"), json!({"text":"hi"})]);
        assert!(args[2].is_string(), "broadcasts carry the offset: {args:?}");
    }
    // The outsider got nothing: its next message is the answer to its own echo.
    send(&mut outsider, r#"42["echo",0]"#).await;
    assert_eq!(
        without_offset(&recv_text(&mut outsider).await, "42"),
        [json!("echo"), json!(0)]
    );
}

#[tokio::test]
async fn freeze_stops_pings_and_the_server_side_timeout() {
    let server = NodeServer::start(&["--ping-interval", "100", "--ping-timeout", "200"]);

    // Unfrozen, the server pings; a client that does not answer is dropped.
    let (mut silent, open) = ws_open(&server).await;
    assert_eq!(open["pingInterval"], 100);
    assert_eq!(open["pingTimeout"], 200);
    assert_eq!(recv(&mut silent).await, Message::text("2"));
    loop {
        match timeout(STEP, silent.next()).await.expect("not dropped") {
            Some(Ok(Message::Text(t))) if t.as_str() == "2" => {}
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
            other => panic!("{other:?}"),
        }
    }

    let (mut ws, _) = ws_connect(&server).await;

    send(&mut ws, r#"421["freeze"]"#).await;
    // recv_text answers any ping sent before the freeze.
    assert_eq!(recv_text(&mut ws).await, "431[]");
    // Well past pingInterval + pingTimeout: no ping, no close, nothing.
    let quiet = Duration::from_millis(3 * 300);
    if let Ok(message) = timeout(quiet, ws.next()).await {
        panic!("a frozen connection received {message:?}");
    }
    // Not timed out on the server side either: it still answers.
    send(&mut ws, r#"42["echo","thawed?"]"#).await;
    assert_eq!(
        without_offset(&recv_text(&mut ws).await, "42"),
        [json!("echo"), json!("thawed?")]
    );
}

#[tokio::test]
async fn engine_io_v3_only_with_eio3() {
    let path = "/socket.io/?EIO=3&transport=polling";
    let v4_only = NodeServer::start(&[]);
    let (status, body) = http(&v4_only.addr(), "GET", path, "").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        json_after(&body, "")["message"],
        "Unsupported protocol version"
    );

    let both = NodeServer::start(&["--eio3"]);
    let (status, body) = http(&both.addr(), "GET", path, "").await;
    assert_eq!(status, 200);
    // v3 polling frames each packet as `LENGTH:PACKET`, and connects to "/" by itself.
    let (length, rest) = body.split_once(':').unwrap();
    let open: usize = length.parse().unwrap();
    assert!(rest[..open].starts_with("0{\"sid\":"), "{body}");
    let sid = json_after(&rest[..open], "0")["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, body) = http(&both.addr(), "GET", &format!("{path}&sid={sid}"), "").await;
    assert_eq!(body, "2:40");
}

#[test]
fn the_server_exits_when_stdin_closes_and_on_sigterm() {
    let mut server = NodeServer::start(&[]);
    server.close_stdin();
    let status = server
        .wait_exit(STEP)
        .expect("still running after stdin closed");
    assert!(status.success(), "{status:?}");

    let mut server = NodeServer::start(&[]);
    // A connected client does not hold the stop up.
    let client = std::net::TcpStream::connect(server.addr()).unwrap();
    // SAFETY: sending a signal to the child we started.
    unsafe { libc::kill(server.pid() as i32, libc::SIGTERM) };
    let status = server.wait_exit(STEP).expect("still running after SIGTERM");
    assert!(status.success(), "{status:?}");
    drop(client);
}

#[test]
#[should_panic(expected = "Unknown option '--bogus'")]
fn a_server_that_does_not_start_fails_the_test_with_its_stderr() {
    NodeServer::start(&["--bogus"]);
}
