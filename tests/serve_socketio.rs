//! The builtin server's Socket.IO, spoken to in raw Engine.IO / Socket.IO frames over a plain
//! tokio-tungstenite WebSocket (and plain HTTP for long-polling): no Socket.IO client library, so
//! the tests pin the bytes on the wire.
//!
//! Ordering across connections is proven without sleeps: a socket's events are handled in the
//! order they arrive, so once a socket has its echo back, everything it sent before took effect.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use volley::serve::{self, ServeConfig, ServerHandle};

type Ws = WebSocketStream<TcpStream>;

/// Bound on every wait; far above anything a healthy server needs.
const WAIT: Duration = Duration::from_secs(5);

async fn websocket(server: &ServerHandle, eio: u8) -> Ws {
    let url = server.url(&format!("/socket.io/?EIO={eio}&transport=websocket"));
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let (ws, _) = timeout(WAIT, tokio_tungstenite::client_async(url, tcp))
        .await
        .expect("upgrade in time")
        .unwrap();
    ws
}

/// The next text or binary frame; answers an Engine.IO ping on the way.
async fn next(ws: &mut Ws) -> Message {
    loop {
        let message = timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("the connection is open")
            .unwrap();
        match message {
            Message::Text(text) if text.as_str() == "2" => {
                ws.send(Message::text("3")).await.unwrap()
            }
            m @ (Message::Text(_) | Message::Binary(_)) => return m,
            _ => {}
        }
    }
}

async fn next_text(ws: &mut Ws) -> String {
    match next(ws).await {
        Message::Text(text) => text.to_string(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
}

/// Sends `request` and expects exactly `reply` as the next frame.
async fn exchange(ws: &mut Ws, request: &str, reply: &str) {
    send(ws, request).await;
    assert_eq!(next_text(ws).await, reply, "reply to {request}");
}

/// Engine.IO handshake over WebSocket: the open packet, parsed.
async fn open_engine(server: &ServerHandle) -> (Ws, Value) {
    let mut ws = websocket(server, 4).await;
    let open = next_text(&mut ws).await;
    let handshake = serde_json::from_str(open.strip_prefix('0').expect("an open packet"))
        .unwrap_or_else(|e| panic!("open packet {open}: {e}"));
    (ws, handshake)
}

/// A client connected to namespace "/".
async fn client(server: &ServerHandle) -> Ws {
    let (mut ws, _) = open_engine(server).await;
    send(&mut ws, "40").await;
    let connect = next_text(&mut ws).await;
    assert!(connect.starts_with(r#"40{"sid":""#), "{connect}");
    ws
}

/// Joins `room` and waits for the server's ack, so the membership holds from then on.
async fn join(ws: &mut Ws, room: &str) {
    exchange(ws, &format!(r#"429["join","{room}"]"#), "439[]").await;
}

/// Sends an echo and expects it to be the very next frame: nothing else was queued before it.
async fn nothing_else_then_echo(ws: &mut Ws, marker: &str) {
    let request = format!(r#"42["echo","{marker}"]"#);
    exchange(ws, &request, &request).await;
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn websocket_handshake_then_connect_gives_a_sid() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let (mut ws, handshake) = open_engine(&server).await;
    assert!(handshake["sid"].is_string(), "{handshake}");
    assert_eq!(handshake["upgrades"], serde_json::json!([]));
    assert!(handshake["pingInterval"].as_u64().unwrap() > 0);
    send(&mut ws, "40").await;
    let connect = next_text(&mut ws).await;
    let payload: Value = serde_json::from_str(connect.strip_prefix("40").unwrap()).unwrap();
    assert!(payload["sid"].is_string(), "{connect}");
}

#[tokio::test]
async fn echo_returns_every_argument_unchanged() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let mut ws = client(&server).await;
    exchange(&mut ws, r#"42["echo",{"a":1}]"#, r#"42["echo",{"a":1}]"#).await;
    let many = r#"42["echo",{"z":{"y":[1,2.5,null,true]},"a":"é"},"x",-3]"#;
    exchange(&mut ws, many, many).await;
    exchange(&mut ws, r#"42["echo"]"#, r#"42["echo"]"#).await;
}

#[tokio::test]
async fn ack_returns_the_arguments_under_the_same_id() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let mut ws = client(&server).await;
    exchange(&mut ws, r#"421["ack",1,2]"#, "431[1,2]").await;
    exchange(&mut ws, r#"4277["ack",{"k":"v"}]"#, r#"4377[{"k":"v"}]"#).await;
    // Without an ack id there is nothing to answer: the next frame is the echo.
    send(&mut ws, r#"42["ack",1]"#).await;
    nothing_else_then_echo(&mut ws, "after").await;
}

#[tokio::test]
async fn binary_echo_and_ack_keep_their_attachments() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let mut ws = client(&server).await;
    let header = r#"451-["echo",{"_placeholder":true,"num":0}]"#;
    send(&mut ws, header).await;
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(next_text(&mut ws).await, header);
    assert_eq!(next(&mut ws).await, Message::binary(vec![1u8, 2, 3]));

    send(&mut ws, r#"451-4["ack","x",{"_placeholder":true,"num":0}]"#).await;
    ws.send(Message::binary(vec![9u8; 5])).await.unwrap();
    assert_eq!(
        next_text(&mut ws).await,
        r#"461-4["x",{"_placeholder":true,"num":0}]"#
    );
    assert_eq!(next(&mut ws).await, Message::binary(vec![9u8; 5]));
}

#[tokio::test]
async fn echoes_come_back_in_order_from_a_multithreaded_server() {
    let server = serve::spawn(ServeConfig {
        threads: 2,
        ..ServeConfig::default()
    })
    .unwrap();
    let mut ws = client(&server).await;
    const COUNT: usize = 500;
    for i in 0..COUNT {
        ws.feed(Message::text(format!(r#"42["echo",{i}]"#)))
            .await
            .unwrap();
    }
    ws.flush().await.unwrap();
    for i in 0..COUNT {
        assert_eq!(next_text(&mut ws).await, format!(r#"42["echo",{i}]"#));
    }
}

#[tokio::test]
async fn chat_reaches_the_members_of_the_senders_rooms_only() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let mut alice = client(&server).await;
    let mut bob = client(&server).await;
    let mut carol = client(&server).await;
    join(&mut alice, "r").await;
    join(&mut bob, "r").await;
    join(&mut carol, "elsewhere").await;

    let chat = r#"42["chat",{"text":"hi"},7]"#;
    send(&mut alice, chat).await;
    assert_eq!(next_text(&mut alice).await, chat, "the sender is a member");
    assert_eq!(next_text(&mut bob).await, chat);
    nothing_else_then_echo(&mut alice, "a").await;
    // Alice's chat is fully handled; had carol been a target, the chat would be ahead of her echo.
    nothing_else_then_echo(&mut carol, "c").await;

    // A sender in no room reaches nobody, itself included.
    let mut dave = client(&server).await;
    send(&mut dave, r#"42["chat","alone"]"#).await;
    nothing_else_then_echo(&mut dave, "d").await;
}

#[tokio::test]
async fn leave_stops_chat_and_chat_acks_when_asked() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let mut alice = client(&server).await;
    let mut bob = client(&server).await;
    join(&mut alice, "r").await;
    join(&mut bob, "r").await;
    exchange(&mut alice, r#"423["leave","r"]"#, "433[]").await;
    // Bob asked for an ack: his chat, then the ack.
    send(&mut bob, r#"425["chat","still here?"]"#).await;
    assert_eq!(next_text(&mut bob).await, r#"42["chat","still here?"]"#);
    assert_eq!(next_text(&mut bob).await, "435[]");
    nothing_else_then_echo(&mut alice, "left").await;
}

/// Reads `tick` events and returns their seq numbers, checking the timestamps.
async fn ticks(ws: &mut Ws, prefix: &str, count: usize) -> Vec<u64> {
    let start = epoch_ms();
    let mut seqs = Vec::new();
    while seqs.len() < count {
        let text = next_text(ws).await;
        let body = text
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("{text}"));
        let event: Value = serde_json::from_str(body).unwrap();
        assert_eq!(event[0], "tick", "{text}");
        let ts = event[1]["ts"].as_u64().unwrap();
        assert!(ts + 1000 >= start && ts <= epoch_ms(), "ts {ts}");
        seqs.push(event[1]["seq"].as_u64().unwrap());
    }
    seqs
}

#[tokio::test]
async fn ticker_members_get_ticks_counted_per_namespace_from_zero() {
    let server = serve::spawn(ServeConfig {
        tick_every: Duration::from_millis(10),
        ..ServeConfig::default()
    })
    .unwrap();
    let mut ws = client(&server).await;
    join(&mut ws, "ticker").await;
    let seqs = ticks(&mut ws, "42", 5).await;
    assert_eq!(
        seqs,
        vec![0, 1, 2, 3, 4],
        "no tick is pushed to an empty room"
    );

    // /admin counts its own ticks, also from 0, here multiplexed beside "/" on one connection.
    let mut admin = client(&server).await;
    connect_admin(&mut admin).await;
    exchange(&mut admin, r#"42/admin,9["join","ticker"]"#, "43/admin,9[]").await;
    assert_eq!(ticks(&mut admin, "42/admin,", 3).await, vec![0, 1, 2]);
}

async fn connect_admin(ws: &mut Ws) {
    send(ws, "40/admin,").await;
    let connect = next_text(ws).await;
    assert!(connect.starts_with(r#"40/admin,{"sid":""#), "{connect}");
}

#[tokio::test]
async fn admin_namespace_offers_the_same_events() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let (mut ws, _) = open_engine(&server).await;
    connect_admin(&mut ws).await;
    exchange(
        &mut ws,
        r#"42/admin,["echo",{"a":1}]"#,
        r#"42/admin,["echo",{"a":1}]"#,
    )
    .await;
    exchange(&mut ws, r#"42/admin,1["ack",1,2]"#, "43/admin,1[1,2]").await;
    exchange(&mut ws, r#"42/admin,2["join","r"]"#, "43/admin,2[]").await;
    exchange(
        &mut ws,
        r#"42/admin,["chat","x"]"#,
        r#"42/admin,["chat","x"]"#,
    )
    .await;
}

#[tokio::test]
async fn connect_with_a_reject_auth_gets_connect_error_with_that_message() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let (mut ws, _) = open_engine(&server).await;
    exchange(&mut ws, r#"40{"reject":"nope"}"#, r#"44{"message":"nope"}"#).await;
    exchange(
        &mut ws,
        r#"40/admin,{"reject":"no admins today"}"#,
        r#"44/admin,{"message":"no admins today"}"#,
    )
    .await;
    // The Engine.IO connection stays; other auth is accepted.
    send(&mut ws, r#"40{"token":"secret","reject":false}"#).await;
    assert!(next_text(&mut ws).await.starts_with(r#"40{"sid":""#));
}

#[tokio::test]
async fn an_unknown_namespace_is_refused() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let (mut ws, _) = open_engine(&server).await;
    send(&mut ws, "40/nope,").await;
    let refused = next_text(&mut ws).await;
    assert!(refused.starts_with(r#"44/nope,{"message":"#), "{refused}");
}

#[tokio::test]
async fn delay_holds_echo_and_ack_replies() {
    let delay = Duration::from_millis(20);
    let server = serve::spawn(ServeConfig {
        delay: Some(delay),
        ..ServeConfig::default()
    })
    .unwrap();
    let mut ws = client(&server).await;
    for (request, reply) in [
        (r#"42["echo",1]"#, r#"42["echo",1]"#),
        (r#"421["ack",1]"#, "431[1]"),
    ] {
        let sent = Instant::now();
        exchange(&mut ws, request, reply).await;
        let took = sent.elapsed();
        assert!(took >= delay, "{request} answered after {took:?}");
    }
}

/// A plain HTTP/1.1 request on its own connection: (status line, body).
async fn http(server: &ServerHandle, method: &str, path: &str, body: &str) -> (String, String) {
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: text/plain;charset=UTF-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    timeout(WAIT, tcp.read_to_string(&mut response))
        .await
        .expect("a response in time")
        .unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// One long-poll GET's packets; an Engine.IO ping among them is answered.
async fn poll(server: &ServerHandle, path: &str) -> Vec<String> {
    let (status, body) = http(server, "GET", path, "").await;
    assert!(status.contains("200"), "{status} {body}");
    let packets: Vec<String> = body.split('\u{1e}').map(str::to_string).collect();
    if packets.iter().any(|p| p == "2") {
        http(server, "POST", path, "3").await;
    }
    packets
}

/// Sends CONNECT and long-polls until both its reply and socketioxide's first ping (sent as soon
/// as the session opens, not after pingInterval) have come: nothing else is queued after that.
async fn connect_polling(server: &ServerHandle, path: &str) {
    let (status, body) = http(server, "POST", path, "40").await;
    assert!(status.contains("200") && body == "ok", "{status} {body}");
    let (mut connected, mut pinged) = (false, false);
    while !(connected && pinged) {
        for packet in poll(server, path).await {
            match packet.as_str() {
                "2" => pinged = true,
                p if p.starts_with(r#"40{"sid":""#) => connected = true,
                other => panic!("unexpected {other}"),
            }
        }
    }
}

/// A long-polling session: its handshake and the path of its later requests.
async fn polling_session(server: &ServerHandle) -> (Value, String) {
    let (status, body) = http(server, "GET", "/socket.io/?EIO=4&transport=polling", "").await;
    assert!(status.contains("200"), "{status}");
    assert!(body.starts_with(r#"0{"sid":""#), "{body}");
    let handshake: Value = serde_json::from_str(&body[1..]).unwrap();
    let path = format!(
        "/socket.io/?EIO=4&transport=polling&sid={}",
        handshake["sid"].as_str().unwrap()
    );
    (handshake, path)
}

#[tokio::test]
async fn long_polling_handshake_connect_and_echo() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let (handshake, path) = polling_session(&server).await;
    assert_eq!(handshake["upgrades"], serde_json::json!(["websocket"]));
    connect_polling(&server, &path).await;
    // Two packets in one POST, joined by the record separator.
    http(&server, "POST", &path, "42[\"echo\",1]\u{1e}421[\"ack\",2]").await;
    let mut packets = Vec::new();
    while packets.len() < 2 {
        packets.extend(poll(&server, &path).await);
    }
    assert_eq!(packets, [r#"42["echo",1]"#, "431[2]"]);
}

#[tokio::test]
async fn engine_io_v3_clients_are_served_and_joined_to_the_main_namespace() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let mut ws = websocket(&server, 3).await;
    let open = next_text(&mut ws).await;
    assert!(open.starts_with(r#"0{"sid":""#), "{open}");
    // Socket.IO v2 (Engine.IO v3) clients are in "/" without asking.
    assert_eq!(next_text(&mut ws).await, "40");
    exchange(&mut ws, r#"42["echo",{"v":3}]"#, r#"42["echo",{"v":3}]"#).await;
    exchange(&mut ws, r#"421["ack","x"]"#, r#"431["x"]"#).await;
}

#[tokio::test]
async fn raw_websocket_endpoints_share_the_port() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let mut sio = client(&server).await;
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let (mut raw, _) = tokio_tungstenite::client_async(server.url("/echo"), tcp)
        .await
        .unwrap();
    raw.send(Message::text("raw")).await.unwrap();
    assert_eq!(next(&mut raw).await, Message::text("raw"));
    nothing_else_then_echo(&mut sio, "sio").await;
}

#[tokio::test]
async fn stop_is_prompt_with_websocket_and_polling_clients_connected() {
    let server = serve::spawn(ServeConfig {
        threads: 2,
        ..ServeConfig::default()
    })
    .unwrap();
    let mut ws = client(&server).await;
    join(&mut ws, "ticker").await;
    // A polling client, connected, with a long-poll GET waiting for data.
    let (_, path) = polling_session(&server).await;
    connect_polling(&server, &path).await;
    let mut long_poll = TcpStream::connect(server.addr()).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\n\r\n");
    long_poll.write_all(request.as_bytes()).await.unwrap();
    // Not a guarantee that the server has read the GET, only a likelihood; the test holds either way.
    nothing_else_then_echo(&mut ws, "before stop").await;

    let started = Instant::now();
    let stopped = tokio::task::spawn_blocking(move || server.stop());
    timeout(WAIT, stopped).await.expect("stop in time").unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "stop took {took:?}");
    // Both clients see their connection end.
    let ended = timeout(WAIT, async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the WebSocket client was not closed");
    let mut response = Vec::new();
    timeout(WAIT, long_poll.read_to_end(&mut response))
        .await
        .expect("the long-poll connection is closed")
        .unwrap();
    // If the server had read the GET, it answered it with the Engine.IO close packet.
    let response = String::from_utf8_lossy(&response);
    assert!(
        response.is_empty()
            || (response.starts_with("HTTP/1.1 200") && response.ends_with("\r\n\r\n1")),
        "{response}"
    );
}
