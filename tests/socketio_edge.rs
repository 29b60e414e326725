//! Socket.IO corner cases that real servers produce only now and then, scripted with a fake
//! Engine.IO server on 127.0.0.1 (HTTP long-polling and WebSocket on one port): a ping or a binary
//! event in the last poll before an upgrade, slow POSTs, and packets or session ids that a client
//! must survive without panicking.

use crate::common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

use common::run_in_process;
use volley::metrics::ConnectPhases;
use volley::protocol::engineio::Version;
use volley::scenario::Overrides;
use volley::transport::engine::EngineOptions;
use volley::transport::engine::Transport;
use volley::transport::socketio::{Incoming, SioSocket, SocketIoOptions};
use volley::transport::ws::Connector;

/// What the fake server answers to polling GETs that carry a sid, in order (the last one repeats),
/// each after an optional delay, and after the event named by its gate.
#[derive(Clone)]
struct Poll {
    gate: Gate,
    delay: Duration,
    body: &'static str,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Gate {
    Now,
    /// After the client posted its CONNECT.
    Connected,
    /// After the client probed a WebSocket.
    Probed,
}

struct Script {
    version: Version,
    open: &'static str,
    polls: Vec<Poll>,
    post_delay: Duration,
}

#[derive(Default)]
struct Seen {
    log: Vec<String>,
    connected: bool,
    probed: bool,
    gets: usize,
}

struct Fake {
    script: Script,
    seen: Mutex<Seen>,
    changed: Notify,
}

impl Fake {
    fn note(&self, line: String, update: impl FnOnce(&mut Seen)) {
        let mut seen = self.seen.lock().unwrap();
        seen.log.push(line);
        update(&mut seen);
        drop(seen);
        self.changed.notify_waiters();
    }

    async fn wait(&self, gate: Gate) {
        loop {
            let changed = self.changed.notified();
            let open = {
                let seen = self.seen.lock().unwrap();
                match gate {
                    Gate::Now => true,
                    Gate::Connected => seen.connected,
                    Gate::Probed => seen.probed,
                }
            };
            if open {
                return;
            }
            changed.await;
        }
    }

    /// The log once it has `line` (the server may see a frame after the client moved on).
    async fn log_with(&self, line: &str) -> Vec<String> {
        let wait = async {
            loop {
                let changed = self.changed.notified();
                let log = self.log();
                if log.iter().any(|l| l == line) {
                    return log;
                }
                changed.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .unwrap_or_else(|_| panic!("no {line:?} in {:?}", self.log()))
    }

    fn log(&self) -> Vec<String> {
        self.seen.lock().unwrap().log.clone()
    }
}

fn payload(version: Version, packet: &str) -> String {
    match version {
        Version::V4 => packet.to_string(),
        Version::V3 => format!("{}:{packet}", packet.encode_utf16().count()),
    }
}

async fn serve_http(fake: Arc<Fake>, mut stream: TcpStream) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 16 * 1024];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let l = l.to_ascii_lowercase();
                l.strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 16 * 1024];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned();
        buf.drain(..head_end + length);
        let line = head.lines().next().unwrap_or_default().to_string();
        let answer = if line.starts_with("POST") {
            tokio::time::sleep(fake.script.post_delay).await;
            let connect = body.contains("40");
            fake.note(format!("POST {body}"), |s| s.connected |= connect);
            "ok".to_string()
        } else if !line.contains("sid=") {
            fake.note(line.clone(), |_| {});
            payload(fake.script.version, fake.script.open)
        } else {
            let mut n = 0;
            fake.note(line.clone(), |s| {
                n = s.gets;
                s.gets += 1;
            });
            let polls = &fake.script.polls;
            let poll = polls[n.min(polls.len() - 1)].clone();
            fake.wait(poll.gate).await;
            tokio::time::sleep(poll.delay).await;
            poll.body.to_string()
        };
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn serve(fake: Arc<Fake>, stream: TcpStream) {
    let mut peek = [0u8; 1024];
    let Ok(n) = stream.peek(&mut peek).await else {
        return;
    };
    if !String::from_utf8_lossy(&peek[..n]).contains("transport=websocket") {
        return serve_http(fake, stream).await;
    }
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    while let Some(Ok(message)) = ws.next().await {
        let text = message.to_text().unwrap_or_default().to_string();
        let probe = text == "2probe";
        fake.note(format!("WS {text}"), |s| s.probed |= probe);
        if probe {
            let _ = ws.send(Message::text("3probe")).await;
        }
    }
}

async fn start(script: Script) -> (SocketAddr, Arc<Fake>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = Arc::new(Fake {
        script,
        seen: Mutex::default(),
        changed: Notify::new(),
    });
    let server = fake.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(server.clone(), stream));
        }
    });
    (addr, fake)
}

fn plan(version: Version, transport: Transport) -> SocketIoOptions {
    SocketIoOptions {
        engine: EngineOptions {
            transport,
            version,
            path: "/socket.io/".into(),
            query: String::new(),
        },
        recovery: false,
    }
}

async fn open(
    addr: SocketAddr,
    plan: SocketIoOptions,
) -> Result<SioSocket, volley::transport::ws::ConnectError> {
    let connector = Connector::new(addr, "127.0.0.1", addr.port(), None).unwrap();
    let opened = tokio::time::timeout(
        Duration::from_secs(5),
        SioSocket::open(
            &connector,
            &plan,
            "/",
            None,
            None,
            None,
            &mut ConnectPhases::default(),
        ),
    )
    .await
    .expect("open must not hang");
    opened.map(|(socket, _)| socket)
}

const OPEN: &str = r#"0{"sid":"S1","upgrades":["websocket"],"pingInterval":1000,"pingTimeout":1000,"maxPayload":1000000}"#;

fn poll(gate: Gate, body: &'static str) -> Poll {
    Poll {
        gate,
        delay: Duration::ZERO,
        body,
    }
}

#[tokio::test]
async fn a_ping_in_the_last_poll_before_the_upgrade_is_answered() {
    let (addr, fake) = start(Script {
        version: Version::V4,
        open: OPEN,
        polls: vec![
            poll(Gate::Connected, r#"40{"sid":"abc"}"#),
            poll(Gate::Probed, "2"),
        ],
        post_delay: Duration::ZERO,
    })
    .await;
    let opened = open(addr, plan(Version::V4, Transport::PollingUpgrade)).await;
    opened.unwrap_or_else(|e| panic!("{e}: {:?}", fake.log()));
    let log = fake.log_with("WS 5").await;
    let pong = log.iter().position(|l| l == "POST 3").expect("pong posted");
    let upgrade = log.iter().position(|l| l == "WS 5").expect("upgraded");
    assert!(pong < upgrade, "{log:?}");
}

#[tokio::test]
async fn a_binary_event_in_the_last_poll_before_the_upgrade_is_kept() {
    let (addr, _fake) = start(Script {
        version: Version::V4,
        open: OPEN,
        polls: vec![
            poll(Gate::Connected, r#"40{"sid":"abc"}"#),
            poll(
                Gate::Probed,
                "451-[\"bin\",{\"_placeholder\":true,\"num\":0}]\x1ebAQID",
            ),
        ],
        post_delay: Duration::ZERO,
    })
    .await;
    let mut socket = open(addr, plan(Version::V4, Transport::PollingUpgrade))
        .await
        .expect("upgraded");
    match std::future::poll_fn(|cx| socket.poll_next(cx))
        .await
        .unwrap()
    {
        Incoming::Payload(data, _) => assert!(data.starts_with(b"[\"bin\""), "{data:?}"),
        other => panic!("{other:?}"),
    }
    match std::future::poll_fn(|cx| socket.poll_next(cx))
        .await
        .unwrap()
    {
        Incoming::Attachment(data) => assert_eq!(&data[..], [1, 2, 3]),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn malformed_packets_and_odd_session_ids_are_errors_not_panics() {
    // An Engine.IO 3 binary record without its type digit or data.
    let (addr, _fake) = start(Script {
        version: Version::V3,
        open: r#"0{"sid":"S1","upgrades":[],"pingInterval":1000,"pingTimeout":1000}"#,
        polls: vec![poll(Gate::Now, "1:b")],
        post_delay: Duration::ZERO,
    })
    .await;
    let error = open(addr, plan(Version::V3, Transport::Polling))
        .await
        .err()
        .expect("a parse error");
    assert_eq!(error.kind.as_str(), "parse", "{error}");

    // A session id with characters a URL cannot carry as they are: sent percent-encoded.
    let (addr, fake) = start(Script {
        version: Version::V4,
        open: r#"0{"sid":"a b/\r\n","upgrades":[],"pingInterval":1000,"pingTimeout":1000}"#,
        polls: vec![poll(Gate::Connected, r#"40{"sid":"abc"}"#)],
        post_delay: Duration::ZERO,
    })
    .await;
    open(addr, plan(Version::V4, Transport::Polling))
        .await
        .expect("connected");
    assert!(
        fake.log()
            .iter()
            .any(|l| l.contains("&sid=a%20b%2F%0D%0A ")),
        "{:?}",
        fake.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_posts_are_not_a_stalled_writer() {
    // Every POST takes 20 ms; one client emits 100 events/s, so events queue up behind each POST
    // all the time, but the server accepts everything: no write_stalled (stall timeout 1 s).
    let (addr, _fake) = start(Script {
        version: Version::V4,
        open: r#"0{"sid":"S1","upgrades":[],"pingInterval":300,"pingTimeout":1000,"maxPayload":1000000}"#,
        polls: vec![
            poll(Gate::Connected, r#"40{"sid":"abc"}"#),
            Poll {
                gate: Gate::Now,
                delay: Duration::from_millis(250),
                body: "2",
            },
        ],
        post_delay: Duration::from_millis(20),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
name = "slow posts"
target = "http://{addr}"
protocol = "socketio"
duration = "2s"
drain = "500ms"
connect_timeout = "1s"

[socketio]
transport = "polling"

[[group]]
name = "g"
clients = 1
emit = [{{ event = "e", data = "x", rate = "100/s" }}]
"#
    );
    let outcome = run_in_process(dir.path(), &text, Overrides::default()).await;
    let t = &outcome.run.totals;
    assert_eq!(t.error_total(), 0, "errors {:?}", t.errors);
    assert!(t.sent >= 190, "sent {}", t.sent);
}
