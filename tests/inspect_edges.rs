//! `volley inspect` at the edges: HTTP/1.1 keep-alive with pipelining, chunked bodies, HEAD,
//! 100-continue, a refused upgrade and a body read until close, all byte-exact; a malformed
//! chunked body; serving on after garbage; frames kept in order under a jittered delay;
//! `--close-after` over both directions; a dropped binary event taking its fragmented attachment
//! with it; and secrets hidden even when fragmented.

use crate::common;

use std::time::Duration;

use common::inspect::*;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use volley::inspect::faults::FaultPlan;
use volley::protocol::wsframe::encode_frame;
use volley::serve::{self, ServeConfig};

const MASK: Option<[u8; 4]> = Some([1, 2, 3, 4]);

/// A server that reads exactly the given number of bytes before each reply, then closes.
async fn exchange_server(
    steps: Vec<(usize, Vec<u8>)>,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut received = Vec::new();
        for (expect, reply) in steps {
            let mut part = vec![0; expect];
            stream.read_exact(&mut part).await.unwrap();
            received.extend(part);
            stream.write_all(&reply).await.unwrap();
        }
        stream.shutdown().await.unwrap();
        stream.read_to_end(&mut received).await.unwrap();
        received
    });
    (addr, task)
}

#[tokio::test]
async fn pipelined_http_with_every_body_framing_is_relayed_byte_exact() {
    let first: Vec<u8> = [
        &b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nwiki\r\n5\r\npedia\r\n0\r\nTrailer: t\r\n\r\n",
        b"HEAD /c HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /d HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    ]
    .concat();
    let replies: Vec<u8> = [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"[..],
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 4\r\n\r\nnope",
    ]
    .concat();
    let second = b"GET /last HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    let last_reply = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end".to_vec();
    let (addr, server) = exchange_server(vec![
        (first.len(), replies.clone()),
        (second.len(), last_reply.clone()),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let running = inspect(
        dir.path(),
        &format!("http://{addr}"),
        FaultPlan::default(),
        None,
    )
    .await;

    let mut client = TcpStream::connect(running.addr).await.unwrap();
    client.write_all(&first).await.unwrap();
    let mut got = vec![0; replies.len()];
    client.read_exact(&mut got).await.unwrap();
    assert_eq!(got, replies);
    // After a refused upgrade, HTTP goes on.
    client.write_all(&second).await.unwrap();
    client.shutdown().await.unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.unwrap();
    assert_eq!(rest, last_reply);
    assert_eq!(server.await.unwrap(), [first, second].concat());

    let (_, records) = running.stop().await;
    let targets: Vec<&str> = of_kind(&records, "http_request")
        .iter()
        .map(|r| r["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["/a", "/b", "/c", "/d", "/ws", "/last"]);
    let statuses: Vec<u64> = of_kind(&records, "http_response")
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 200, 200, 100, 201, 400, 200]);
    assert!(of_kind(&records, "error").is_empty());
}

#[tokio::test]
async fn a_malformed_chunked_body_is_relayed_raw_with_nothing_lost() {
    let request = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\nGET /next HTTP/1.1\r\n\r\n".to_vec();
    let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec();
    let (addr, server) = exchange_server(vec![(request.len(), reply.clone())]).await;
    let dir = tempfile::tempdir().unwrap();
    let running = inspect(
        dir.path(),
        &format!("http://{addr}"),
        FaultPlan::default(),
        None,
    )
    .await;
    let mut client = TcpStream::connect(running.addr).await.unwrap();
    client.write_all(&request).await.unwrap();
    client.shutdown().await.unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, reply);
    assert_eq!(server.await.unwrap(), request);
    let (_, records) = running.stop().await;
    let error = &of_kind(&records, "error")[0];
    assert!(
        error["detail"]
            .as_str()
            .unwrap()
            .contains("malformed chunked body")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_garbage_the_inspector_serves_the_next_connection() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let running = inspect(dir.path(), &server.url(""), FaultPlan::default(), None).await;
    let mut junk = TcpStream::connect(running.addr).await.unwrap();
    junk.write_all(b"\x16\x03\x01\x02\x00 not http\r\n\r\n")
        .await
        .unwrap();
    junk.shutdown().await.unwrap();
    let mut ignored = Vec::new();
    let _ = junk.read_to_end(&mut ignored).await;

    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/echo", running.addr))
        .await
        .unwrap();
    ws.send("after the junk".into()).await.unwrap();
    let echo = ws.next().await.unwrap().unwrap();
    assert_eq!(echo.into_text().unwrap().as_str(), "after the junk");
    ws.close(None).await.unwrap();
    while ws.next().await.is_some() {}
    let (summary, _) = running.stop().await;
    assert_eq!(summary.connections, 2);
    assert_eq!(summary.errors, 1);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jittered_delays_keep_frames_in_order() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultPlan {
        delay: Some((Duration::from_millis(10), Duration::from_millis(9))),
        filter: "dir=s2c,opcode=text".parse().unwrap(),
        seed: 3,
        ..FaultPlan::default()
    };
    let running = inspect(dir.path(), &server.url(""), faults, None).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/echo", running.addr))
        .await
        .unwrap();
    for i in 0..30 {
        ws.send(format!("{i}").into()).await.unwrap();
    }
    for i in 0..30 {
        let echo = ws.next().await.unwrap().unwrap();
        assert_eq!(echo.into_text().unwrap().as_str(), i.to_string());
    }
    ws.close(None).await.unwrap();
    while ws.next().await.is_some() {}
    let (summary, records) = running.stop().await;
    assert_eq!(summary.faults["delay"], 30);
    let delays: Vec<f64> = of_kind(&records, "fault")
        .iter()
        .map(|f| f["delay_ms"].as_f64().unwrap())
        .collect();
    assert!(delays.iter().all(|d| (1.0..=19.0).contains(d)));
    assert!(
        delays.windows(2).any(|w| w[1] < w[0]),
        "a later frame drew a shorter delay and still came after: {delays:?}"
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_after_counts_the_frames_of_both_directions() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultPlan {
        close_after: Some(5),
        ..FaultPlan::default()
    };
    let running = inspect(dir.path(), &server.url(""), faults, None).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/echo", running.addr))
        .await
        .unwrap();
    // One at a time: m0 e0 m1 e1 m2 — the fifth frame closes the connection.
    let mut echoes = 0;
    for i in 0..5 {
        if ws.send(format!("m{i}").into()).await.is_err() {
            break;
        }
        match ws.next().await {
            Some(Ok(m)) if m.is_text() => echoes += 1,
            _ => break,
        }
    }
    assert_eq!(echoes, 2);
    let (summary, _) = running.stop().await;
    assert_eq!(summary.faults["close"], 1);
    server.stop();
}

const SIO_REQUEST: &[u8] = b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
const RESPONSE_101: &[u8] =
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";

#[tokio::test]
async fn a_dropped_binary_event_takes_its_fragmented_attachment_and_secrets_stay_hidden() {
    let server_frames = vec![
        encode_frame(true, 0, 1, None, br#"40{"sid":"s1","pid":"p1d-secret"}"#),
        encode_frame(
            true,
            0,
            1,
            None,
            br#"451-["up",{"_placeholder":true,"num":0}]"#,
        ),
        encode_frame(false, 0, 2, None, &[1, 2]),
        encode_frame(true, 0, 9, None, b""),
        encode_frame(true, 0, 0, None, &[3, 4]),
        encode_frame(true, 0, 1, None, br#"42["y"]"#),
    ];
    let (addr, server) = scripted_server(RESPONSE_101, server_frames.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultPlan {
        drop: 1.0,
        filter: "type=BINARY_EVENT".parse().unwrap(),
        ..FaultPlan::default()
    };
    let running = inspect(dir.path(), &format!("ws://{addr}"), faults, None).await;
    let mut client = TcpStream::connect(running.addr).await.unwrap();
    client.write_all(SIO_REQUEST).await.unwrap();
    let mut head = Vec::new();
    read_until_head_end(&mut client, &mut head).await;
    let client_frames = [
        encode_frame(false, 0, 1, MASK, br#"40{"token":"s3c"#),
        encode_frame(true, 0, 0, MASK, br#"ret"}"#),
        encode_frame(true, 0, 1, MASK, br#"40/admin,{"token":"other-s3cret"}"#),
    ];
    for frame in &client_frames {
        client.write_all(frame).await.unwrap();
    }
    client.shutdown().await.unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).await.unwrap();
    // Everything but the binary event and its attachment (the ping between its fragments stays).
    let expected = [
        server_frames[0].clone(),
        server_frames[3].clone(),
        server_frames[5].clone(),
    ]
    .concat();
    assert_eq!(got, expected);
    assert_eq!(
        server.await.unwrap(),
        [SIO_REQUEST.to_vec(), client_frames.concat()].concat()
    );

    let (summary, records) = running.stop().await;
    assert_eq!(
        summary.faults["drop"], 3,
        "the event and both attachment fragments"
    );
    let jsonl = std::fs::read_to_string(dir.path().join("frames.jsonl")).unwrap();
    for secret in ["s3c", "ret\\\"", "other-s3cret", "p1d-secret"] {
        assert!(!jsonl.contains(secret), "{secret} leaked");
    }
    let frames = of_kind(&records, "frame");
    let connects: Vec<_> = frames.iter().filter(|f| f["dir"] == "c2s").collect();
    assert_eq!(connects[0]["text"], "40[redacted]");
    assert_eq!(connects[1]["text"], "[redacted]");
    // A whole CONNECT shows its auth's keys, not its values.
    assert_eq!(connects[2]["text"], r#"40/admin,{"token":"[redacted]"}"#);
}
