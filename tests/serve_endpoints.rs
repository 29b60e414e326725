//! The builtin server's endpoints, spoken to by a plain tokio-tungstenite client.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use volley::serve::{self, ServeConfig, ServerHandle};

type Ws = WebSocketStream<TcpStream>;

async fn open(server: &ServerHandle, path: &str) -> Ws {
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(server.url(path), tcp)
        .await
        .unwrap();
    ws
}

async fn next_data(ws: &mut Ws) -> Message {
    loop {
        match ws.next().await.unwrap().unwrap() {
            m @ (Message::Text(_) | Message::Binary(_)) => return m,
            _ => continue,
        }
    }
}

#[tokio::test]
async fn echo_returns_text_and_binary_unchanged() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let mut ws = open(&server, "/echo").await;
    ws.send(Message::text("héllo")).await.unwrap();
    ws.send(Message::binary(vec![0u8, 255, 7])).await.unwrap();
    assert_eq!(next_data(&mut ws).await, Message::text("héllo"));
    assert_eq!(next_data(&mut ws).await, Message::binary(vec![0u8, 255, 7]));
}

#[tokio::test]
async fn echoes_of_messages_that_came_with_the_close_frame_go_out_before_the_close_reply() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let mut ws = open(&server, "/echo").await;
    // The messages and the close frame leave in one write, so the server reads them together.
    for n in 0..50 {
        ws.feed(Message::text(format!("last words {n}")))
            .await
            .unwrap();
    }
    ws.close(None).await.unwrap();
    let mut echoed = Vec::new();
    let mut closed = false;
    while let Some(message) = ws.next().await {
        match message.unwrap() {
            Message::Text(text) => echoed.push(text.to_string()),
            Message::Close(_) => closed = true,
            _ => {}
        }
    }
    let sent: Vec<String> = (0..50).map(|n| format!("last words {n}")).collect();
    assert_eq!(echoed, sent, "every echo, in order, before the close reply");
    assert!(closed, "the close handshake completed");
}

#[tokio::test]
async fn broadcast_reaches_the_whole_room_and_only_it() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let mut a1 = open(&server, "/broadcast?room=a").await;
    let mut a2 = open(&server, "/broadcast?room=a").await;
    let mut b = open(&server, "/broadcast?room=b").await;
    a1.send(Message::text("to room a")).await.unwrap();
    assert_eq!(
        next_data(&mut a1).await,
        Message::text("to room a"),
        "the sender too"
    );
    assert_eq!(next_data(&mut a2).await, Message::text("to room a"));
    b.send(Message::text("to room b")).await.unwrap();
    assert_eq!(
        next_data(&mut b).await,
        Message::text("to room b"),
        "b got only its own room"
    );
}

#[tokio::test]
async fn ticker_counts_from_zero_per_client_with_epoch_ms() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let mut ws = open(&server, "/ticker?every=10ms").await;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut last_ts = 0;
    for expected in 0..5u64 {
        let Message::Text(text) = next_data(&mut ws).await else {
            panic!("ticks are text")
        };
        let tick: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(tick["seq"], expected);
        let ts = tick["ts"].as_u64().unwrap();
        assert!(ts + 1000 >= now_ms && ts >= last_ts, "ts {ts}");
        last_ts = ts;
    }
    let mut second = open(&server, "/ticker?every=10ms").await;
    let Message::Text(text) = next_data(&mut second).await else {
        panic!("ticks are text")
    };
    assert!(
        text.starts_with(r#"{"seq":0,"#),
        "every client counts from 0: {text}"
    );
}

async fn http_status(server: &ServerHandle, path: &str) -> String {
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    response.lines().next().unwrap().to_string()
}

#[tokio::test]
async fn plain_http_gets_426_unknown_paths_404_and_bad_parameters_400() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    assert!(http_status(&server, "/echo").await.contains("426"));
    assert!(http_status(&server, "/nope").await.contains("404"));
    assert!(
        http_status(&server, "/ticker?every=often")
            .await
            .contains("400")
    );
}

#[tokio::test]
async fn stopping_the_server_closes_connections_with_1001() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let mut ws = open(&server, "/echo").await;
    std::thread::spawn(move || server.stop());
    match ws.next().await.unwrap().unwrap() {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[test]
fn volley_serve_prints_its_address_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_volley"))
        .args(["serve", "--threads", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on ws://127.0.0.1:"), "{line}");
    // SAFETY: signalling the child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
}
