//! The builtin server's delivery faults (`--drop-every`, `--dup-every`, `--reorder-every`), checked
//! delivery by delivery: for every receiver and every source, the sequence received is exactly the
//! one the rules give, and nothing else arrives. Raw WebSocket through plain tokio-tungstenite,
//! Socket.IO in raw Engine.IO / Socket.IO frames (no client library).
//!
//! No sleeps: a raw WebSocket client knows that the server has read (and so broadcast) all it sent
//! before a ping once the pong is back, since a session reads its connection's frames in order; a
//! Socket.IO client knows the same of a `chat` from its ack. A fence message sent after that, from a
//! source whose first delivery no switch touches (every N is at least 2), is then the last thing
//! each receiver can get.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use volley::serve::{self, Faults, ServeConfig, ServerHandle};

type Ws = WebSocketStream<TcpStream>;

/// Bound on every wait; far above anything a healthy server needs.
const WAIT: Duration = Duration::from_secs(5);

// The truth for 10 deliveries numbered from 1 with each switch at 3 ...
const DROP_3: [u64; 7] = [1, 2, 4, 5, 7, 8, 10];
const DUP_3: [u64; 13] = [1, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9, 9, 10];
const REORDER_3: [u64; 10] = [1, 2, 4, 3, 5, 7, 6, 8, 10, 9];
// ... and for 12 with drop 4, dup 3 and reorder 6 together: 4, 8 and 12 dropped (12 though all three
// hit it), 3 and 9 twice, 6 twice and after 7.
const ALL_THREE: [u64; 12] = [1, 2, 3, 3, 5, 7, 6, 6, 9, 9, 10, 11];

fn faults(drop_every: Option<u64>, dup_every: Option<u64>, reorder_every: Option<u64>) -> Faults {
    Faults {
        drop_every,
        dup_every,
        reorder_every,
    }
}

fn all_three() -> Faults {
    faults(Some(4), Some(3), Some(6))
}

fn server(faults: Faults) -> ServerHandle {
    serve::spawn(ServeConfig {
        faults,
        tick_every: Duration::from_millis(2),
        ..ServeConfig::default()
    })
    .unwrap()
}

async fn open(server: &ServerHandle, path: &str) -> Ws {
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let (ws, _) = timeout(WAIT, tokio_tungstenite::client_async(server.url(path), tcp))
        .await
        .expect("upgrade in time")
        .unwrap();
    ws
}

async fn next_frame(ws: &mut Ws) -> Message {
    timeout(WAIT, ws.next())
        .await
        .expect("a frame in time")
        .expect("the connection is open")
        .unwrap()
}

/// A raw WebSocket client that records the messages "NAME K" it receives as (NAME, K).
struct RawClient {
    ws: Ws,
    got: Vec<(String, u64)>,
}

impl RawClient {
    async fn open(server: &ServerHandle, path: &str) -> RawClient {
        RawClient {
            ws: open(server, path).await,
            got: Vec::new(),
        }
    }

    async fn send(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    /// Sends a ping and reads until its pong, recording messages on the way: the server has then
    /// read everything sent before the ping.
    async fn sync(&mut self) {
        self.ws.send(Message::Ping("sync".into())).await.unwrap();
        loop {
            match next_frame(&mut self.ws).await {
                Message::Pong(_) => return,
                Message::Text(text) => self.record(&text),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Reads and records until the text `fence`.
    async fn read_until(&mut self, fence: &str) {
        loop {
            match next_frame(&mut self.ws).await {
                Message::Text(text) if text.as_str() == fence => return,
                Message::Text(text) => self.record(&text),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    fn record(&mut self, text: &str) {
        let (name, k) = text.split_once(' ').expect("NAME K");
        self.got.push((name.to_string(), k.parse().unwrap()));
    }

    /// The numbers received from `source`, in arrival order.
    fn from(&self, source: &str) -> Vec<u64> {
        self.got
            .iter()
            .filter(|(name, _)| name == source)
            .map(|&(_, k)| k)
            .collect()
    }
}

/// The sources of the fan-out tests, each a member of the room it sends to.
const SENDERS: [&str; 2] = ["S1", "S2"];

/// A room of five on `/broadcast`: the two senders (members 0 and 1), two receivers, and a fence
/// (member 4). Each sender sends "S1 1" ... "S1 n"; then the fence sends "fence" and every member
/// reads up to it.
async fn broadcast(server: &ServerHandle, n: u64) -> Vec<RawClient> {
    let mut members = Vec::new();
    for _ in 0..5 {
        members.push(RawClient::open(server, "/broadcast?room=faults").await);
    }
    // A session joins its room before it reads a frame: a pong means joined.
    for member in &mut members {
        member.sync().await;
    }
    for (sender, name) in members.iter_mut().zip(SENDERS) {
        for k in 1..=n {
            sender.send(&format!("{name} {k}")).await;
        }
        sender.sync().await;
    }
    members[4].send("fence").await;
    for member in &mut members {
        member.read_until("fence").await;
    }
    members
}

/// Every member got exactly `expected` from each sender, and nothing else.
fn assert_every_stream(members: &[RawClient], expected: &[u64]) {
    for (i, member) in members.iter().enumerate() {
        for source in SENDERS {
            assert_eq!(member.from(source), expected, "member {i} from {source}");
        }
        assert_eq!(member.got.len(), 2 * expected.len(), "member {i}");
    }
}

#[tokio::test]
async fn broadcast_drop_every_3_skips_every_third_delivery_of_each_stream() {
    let server = server(faults(Some(3), None, None));
    assert_every_stream(&broadcast(&server, 10).await, &DROP_3);
}

#[tokio::test]
async fn broadcast_dup_every_3_sends_every_third_delivery_of_each_stream_twice() {
    let server = server(faults(None, Some(3), None));
    assert_every_stream(&broadcast(&server, 10).await, &DUP_3);
}

#[tokio::test]
async fn broadcast_reorder_every_3_sends_every_third_delivery_after_the_next() {
    let server = server(faults(None, None, Some(3)));
    assert_every_stream(&broadcast(&server, 10).await, &REORDER_3);
}

#[tokio::test]
async fn broadcast_applies_drop_then_dup_then_reorder() {
    let server = server(all_three());
    assert_every_stream(&broadcast(&server, 12).await, &ALL_THREE);
}

#[tokio::test]
async fn broadcast_never_sends_a_held_last_delivery_not_even_at_close() {
    let server = server(faults(None, None, Some(3)));
    // 9 is held and has no successor: other streams' deliveries (the fence) do not release it ...
    let mut members = broadcast(&server, 9).await;
    assert_every_stream(&members, &[1, 2, 4, 3, 5, 7, 6, 8]);
    // ... and nor does the server closing.
    std::thread::spawn(move || server.stop());
    for member in &mut members {
        match next_frame(&mut member.ws).await {
            Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1001),
            other => panic!("expected the close frame, got {other:?}"),
        }
    }
}

/// The first `count` ticks of a `/ticker` connection as delivery numbers (seq + 1).
async fn raw_ticks(ws: &mut Ws, count: usize) -> Vec<u64> {
    let mut ticks = Vec::new();
    while ticks.len() < count {
        let Message::Text(text) = next_frame(ws).await else {
            panic!("ticks are text")
        };
        let tick: Value = serde_json::from_str(&text).unwrap();
        ticks.push(tick["seq"].as_u64().unwrap() + 1);
    }
    ticks
}

/// Two `/ticker` connections, the second opened once the first has had its ticks: each is a
/// stream of its own.
async fn assert_ticker(faults: Faults, expected: &[u64]) {
    let server = server(faults);
    let mut first = open(&server, "/ticker?every=1ms").await;
    assert_eq!(raw_ticks(&mut first, expected.len()).await, expected);
    let mut second = open(&server, "/ticker?every=1ms").await;
    assert_eq!(raw_ticks(&mut second, expected.len()).await, expected);
}

#[tokio::test]
async fn ticker_drop_every_3_skips_every_third_tick_of_each_connection() {
    assert_ticker(
        faults(Some(3), None, None),
        &[1, 2, 4, 5, 7, 8, 10, 11, 13, 14],
    )
    .await;
}

#[tokio::test]
async fn ticker_dup_every_3_sends_every_third_tick_twice() {
    assert_ticker(faults(None, Some(3), None), &DUP_3[..10]).await;
}

#[tokio::test]
async fn ticker_reorder_every_3_sends_every_third_tick_after_the_next() {
    assert_ticker(faults(None, None, Some(3)), &REORDER_3).await;
}

/// What a Socket.IO client of these tests receives.
#[derive(Debug, PartialEq)]
enum Received {
    /// `chat` with `{"from": NAME, "k": K}`.
    Chat(String, u64),
    /// `chat` with `"fence"`.
    Fence,
    /// `tick`: its seq.
    Tick(u64),
    /// An ack: its id.
    Ack(u64),
    /// Any other packet, as text.
    Other(String),
}

fn parse(text: &str) -> Received {
    if let Some(rest) = text.strip_prefix("43")
        && let Some(id) = rest.strip_suffix("[]")
    {
        return Received::Ack(id.parse().unwrap());
    }
    let Some(Ok(Value::Array(event))) = text.strip_prefix("42").map(serde_json::from_str) else {
        return Received::Other(text.to_string());
    };
    match (event[0].as_str(), &event[1]) {
        (Some("chat"), Value::String(fence)) if fence == "fence" => Received::Fence,
        (Some("chat"), chat) => Received::Chat(
            chat["from"].as_str().unwrap().to_string(),
            chat["k"].as_u64().unwrap(),
        ),
        (Some("tick"), tick) => Received::Tick(tick["seq"].as_u64().unwrap()),
        _ => Received::Other(text.to_string()),
    }
}

/// A Socket.IO client on namespace "/" that records the `chat` and `tick` events it receives.
struct SioClient {
    ws: Ws,
    chats: Vec<(String, u64)>,
    ticks: Vec<u64>,
    fenced: bool,
    next_ack: u64,
}

impl SioClient {
    async fn connect(server: &ServerHandle) -> SioClient {
        let mut client = SioClient {
            ws: open(server, "/socket.io/?EIO=4&transport=websocket").await,
            chats: Vec::new(),
            ticks: Vec::new(),
            fenced: false,
            next_ack: 1,
        };
        let open = client.packet().await;
        assert!(open.starts_with('0'), "{open}");
        client.ws.send(Message::text("40")).await.unwrap();
        let connect = client.packet().await;
        assert!(connect.starts_with(r#"40{"sid":""#), "{connect}");
        client
    }

    /// The next packet; an Engine.IO ping is answered on the way.
    async fn packet(&mut self) -> String {
        loop {
            match next_frame(&mut self.ws).await {
                Message::Text(text) if text.as_str() == "2" => {
                    self.ws.send(Message::text("3")).await.unwrap()
                }
                Message::Text(text) => return text.to_string(),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Reads the next packet: an event is recorded, anything else returned.
    async fn pump(&mut self) -> Option<Received> {
        match parse(&self.packet().await) {
            Received::Chat(name, k) => self.chats.push((name, k)),
            Received::Fence => self.fenced = true,
            Received::Tick(seq) => self.ticks.push(seq),
            other => return Some(other),
        }
        None
    }

    /// The next packet that is not an event, recording the events on the way.
    async fn unrecorded(&mut self) -> Received {
        loop {
            if let Some(other) = self.pump().await {
                return other;
            }
        }
    }

    /// Emits `event` (a JSON array) asking for an ack, and reads until the ack.
    async fn emit_acked(&mut self, event: &str) {
        let id = self.next_ack;
        self.next_ack += 1;
        self.ws
            .send(Message::text(format!("42{id}{event}")))
            .await
            .unwrap();
        assert_eq!(self.unrecorded().await, Received::Ack(id), "ack of {event}");
    }

    async fn join(&mut self, room: &str) {
        self.emit_acked(&format!(r#"["join","{room}"]"#)).await;
    }

    async fn read_until_fence(&mut self) {
        while !self.fenced {
            if let Some(other) = self.pump().await {
                panic!("unexpected {other:?}");
            }
        }
    }

    fn chats_from(&self, source: &str) -> Vec<u64> {
        self.chats
            .iter()
            .filter(|(name, _)| name == source)
            .map(|&(_, k)| k)
            .collect()
    }
}

/// The `chat` version of [`broadcast`]: five sockets in room "faults", two senders (0 and 1) and a
/// fence (4); each waits for its chat's ack, so its fan-out is done, before the next.
async fn chat(server: &ServerHandle, n: u64) -> Vec<SioClient> {
    let mut members = Vec::new();
    for _ in 0..5 {
        let mut member = SioClient::connect(server).await;
        member.join("faults").await;
        members.push(member);
    }
    for (sender, name) in members.iter_mut().zip(SENDERS) {
        for k in 1..=n {
            let event = format!(r#"["chat",{{"from":"{name}","k":{k}}}]"#);
            sender.emit_acked(&event).await;
        }
    }
    members[4].emit_acked(r#"["chat","fence"]"#).await;
    for member in &mut members {
        member.read_until_fence().await;
    }
    members
}

fn assert_every_chat_stream(members: &[SioClient], expected: &[u64]) {
    for (i, member) in members.iter().enumerate() {
        for source in SENDERS {
            assert_eq!(
                member.chats_from(source),
                expected,
                "socket {i} from {source}"
            );
        }
        assert_eq!(member.chats.len(), 2 * expected.len(), "socket {i}");
    }
}

#[tokio::test]
async fn chat_drop_every_3_skips_every_third_delivery_of_each_stream() {
    let server = server(faults(Some(3), None, None));
    assert_every_chat_stream(&chat(&server, 10).await, &DROP_3);
}

#[tokio::test]
async fn chat_dup_every_3_sends_every_third_delivery_of_each_stream_twice() {
    let server = server(faults(None, Some(3), None));
    assert_every_chat_stream(&chat(&server, 10).await, &DUP_3);
}

#[tokio::test]
async fn chat_reorder_every_3_sends_every_third_delivery_after_the_next() {
    let server = server(faults(None, None, Some(3)));
    assert_every_chat_stream(&chat(&server, 10).await, &REORDER_3);
}

#[tokio::test]
async fn chat_applies_drop_then_dup_then_reorder() {
    let server = server(all_three());
    assert_every_chat_stream(&chat(&server, 12).await, &ALL_THREE);
}

#[tokio::test]
async fn chat_never_sends_a_held_last_delivery() {
    let server = server(faults(None, None, Some(3)));
    let mut members = chat(&server, 9).await;
    assert_every_chat_stream(&members, &[1, 2, 4, 3, 5, 7, 6, 8]);
    // An echo comes back next: the held 9 did not follow the fence out.
    for member in &mut members {
        member
            .ws
            .send(Message::text(r#"42["echo",0]"#))
            .await
            .unwrap();
        assert_eq!(member.packet().await, r#"42["echo",0]"#);
    }
}

/// Two sockets join room "ticker" one after the other; each reads `expected.len()` ticks, as
/// delivery numbers counted from its first tick.
async fn assert_socketio_ticks(faults: Faults, expected: &[u64]) {
    let server = server(faults);
    for _ in 0..2 {
        let mut member = SioClient::connect(&server).await;
        member.join("ticker").await;
        while member.ticks.len() < expected.len() {
            if let Some(other) = member.pump().await {
                panic!("unexpected {other:?}");
            }
        }
        let first = member.ticks[0];
        let got: Vec<u64> = member.ticks[..expected.len()]
            .iter()
            .map(|seq| seq - first + 1)
            .collect();
        assert_eq!(got, expected, "seqs {:?}", member.ticks);
    }
}

#[tokio::test]
async fn socketio_tick_drop_every_3_skips_every_third_tick_of_each_socket() {
    assert_socketio_ticks(faults(Some(3), None, None), &[1, 2, 4, 5, 7, 8, 10, 11]).await;
}

#[tokio::test]
async fn socketio_tick_dup_every_3_sends_every_third_tick_twice() {
    assert_socketio_ticks(faults(None, Some(3), None), &DUP_3[..10]).await;
}

#[tokio::test]
async fn socketio_tick_reorder_every_3_sends_every_third_tick_after_the_next() {
    assert_socketio_ticks(faults(None, None, Some(3)), &REORDER_3).await;
}

#[tokio::test]
async fn echo_and_ack_are_never_faulted() {
    let server = server(faults(Some(2), Some(2), Some(2)));
    let mut echo = open(&server, "/echo").await;
    for k in 1..=6 {
        echo.send(Message::text(format!("{k}"))).await.unwrap();
    }
    for k in 1..=6 {
        assert_eq!(next_frame(&mut echo).await, Message::text(format!("{k}")));
    }
    let mut socket = SioClient::connect(&server).await;
    for k in 1..=6 {
        let echo = format!(r#"42["echo",{k}]"#);
        socket.ws.send(Message::text(echo.as_str())).await.unwrap();
        assert_eq!(socket.packet().await, echo);
        let ack = format!(r#"42{k}["ack",{k}]"#);
        socket.ws.send(Message::text(ack)).await.unwrap();
        assert_eq!(socket.packet().await, format!("43{k}[{k}]"));
    }
}

#[test]
fn a_switch_below_2_is_refused() {
    match serve::spawn(ServeConfig {
        faults: faults(None, Some(1), None),
        ..ServeConfig::default()
    }) {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}"),
        Ok(_) => panic!("dup_every 1 was accepted"),
    }
}

#[test]
fn serve_help_states_the_fault_rules() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_volley"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for words in [
        "--drop-every <N>",
        "--dup-every <N>",
        "--reorder-every <N>",
        "count per\nstream",
        "never sent, not even at close",
    ] {
        assert!(help.contains(words), "{words:?} missing from:\n{help}");
    }
}
