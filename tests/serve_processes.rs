//! `volley serve --processes N`: one port, N processes, one stop.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Whether a process exists (a zombie counts until reaped).
fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as i32, 0) == 0 }
}

#[tokio::test]
async fn two_processes_share_the_port_answer_echo_and_stop_on_sigterm() {
    let mut parent = Command::new(cargo_bin("volley"))
        .args(["serve", "--processes", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(parent.stdout.take().unwrap());
    let mut stderr = BufReader::new(parent.stderr.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .trim()
        .to_string();
    let addr: SocketAddr = url.strip_prefix("ws://").unwrap().parse().unwrap();
    assert_ne!(addr.port(), 0, "port 0 resolves to one real port");
    let mut about = String::new();
    stderr.read_line(&mut about).unwrap();
    // "2 server processes (pids 123, 456); ..."
    let children: BTreeSet<u32> = about
        .split_once("(pids ")
        .and_then(|(_, rest)| rest.split_once(')'))
        .unwrap_or_else(|| panic!("pids line: {about:?}"))
        .0
        .split(", ")
        .map(|pid| pid.parse().unwrap())
        .collect();
    assert_eq!(children.len(), 2, "{about}");

    let mut served_by = BTreeSet::new();
    let mut sockets = Vec::new();
    for i in 0..64 {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (mut ws, response) = tokio_tungstenite::client_async(format!("{url}/echo"), tcp)
            .await
            .unwrap();
        let pid: u32 = response.headers()["x-volley-pid"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        served_by.insert(pid);
        ws.send(Message::text(format!("hello {i}"))).await.unwrap();
        let echoed = ws.next().await.unwrap().unwrap();
        assert_eq!(echoed, Message::text(format!("hello {i}")));
        sockets.push(ws);
    }
    assert_eq!(served_by, children, "both processes took connections");

    // SAFETY: signalling the child we started.
    unsafe { libc::kill(parent.id() as i32, libc::SIGTERM) };
    for ws in &mut sockets {
        let close = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
                    Some(Ok(_)) => continue,
                    other => panic!("expected a close frame, got {other:?}"),
                }
            }
        })
        .await
        .expect("every connection is closed by its server");
        assert_eq!(close, Some(CloseCode::Away));
    }
    let status = parent.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while children.iter().any(|&pid| alive(pid)) {
        assert!(Instant::now() < deadline, "the server processes are gone");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn a_port_in_use_is_reported_before_any_process_serves() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = Command::new(cargo_bin("volley"))
        .args(["serve", "--processes", "2", "--listen", &addr])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&addr), "{stderr}");
    assert!(output.stdout.is_empty(), "no `listening on` line");
}
