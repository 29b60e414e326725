//! `volley inspect` over real sockets: byte-exact relaying (text, binary, fragments, pings and
//! pongs, invalid frames, the close handshake), garbage from either side, TLS on both sides, a
//! Socket.IO session visible from its first long-polling request, and injected faults that match
//! what the clients observed.

use crate::common;

use std::time::Duration;

use common::inspect::*;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use volley::inspect::faults::FaultPlan;
use volley::protocol::wsframe::encode_frame;
use volley::scenario::Overrides;
use volley::serve::{self, ServeConfig};

const MASK: Option<[u8; 4]> = Some([0x37, 0xfa, 0x21, 0x3d]);

/// Frames as a client sends them: masked; a fragmented message, control frames between the
/// fragments, binary, a reserved opcode, RSV bits, and the close.
fn client_frames() -> Vec<Vec<u8>> {
    vec![
        encode_frame(true, 0, 1, MASK, b"hello"),
        encode_frame(false, 0, 1, MASK, b"frag"),
        encode_frame(true, 0, 9, MASK, b"ping in between"),
        encode_frame(true, 0, 0, MASK, b"mented"),
        encode_frame(true, 0, 2, MASK, &(0..=255u8).collect::<Vec<_>>()),
        encode_frame(true, 0, 10, MASK, b"unsolicited pong"),
        encode_frame(true, 0b100, 1, MASK, b"rsv1 set"),
        encode_frame(true, 0, 3, MASK, b"reserved opcode"),
        encode_frame(true, 0, 1, MASK, &vec![b'x'; 70_000]),
        encode_frame(true, 0, 8, MASK, b"\x03\xe8bye"),
    ]
}

/// Frames as a server sends them: unmasked, including an unmasked-but-invalid ping over 125
/// bytes and an unknown opcode.
fn server_frames() -> Vec<Vec<u8>> {
    vec![
        encode_frame(true, 0, 1, None, "héllo back".as_bytes()),
        encode_frame(true, 0, 9, None, &[7; 200]),
        encode_frame(false, 0, 2, None, &[1, 2, 3]),
        encode_frame(true, 0, 0, None, &[4, 5]),
        encode_frame(true, 0, 0xB, None, b"?"),
        encode_frame(true, 0, 8, None, b"\x03\xe8"),
    ]
}

const RESPONSE_101: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
const REQUEST: &[u8] = b"GET /chat?room=1 HTTP/1.1\r\nHost: example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer s3cret\r\n\r\n";

#[tokio::test]
async fn every_byte_is_relayed_unchanged_both_ways_and_every_frame_is_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let (server_addr, server) = scripted_server(RESPONSE_101, server_frames()).await;
    let running = inspect(
        dir.path(),
        &format!("ws://{server_addr}"),
        FaultPlan::default(),
        None,
    )
    .await;

    let mut client = TcpStream::connect(running.addr).await.unwrap();
    client.write_all(REQUEST).await.unwrap();
    let mut head = Vec::new();
    read_until_head_end(&mut client, &mut head).await;
    assert_eq!(head, RESPONSE_101);
    let frames = client_frames();
    for (i, frame) in frames.iter().enumerate() {
        if i == 1 {
            // One frame a byte at a time: the proxy must wait for the rest.
            for b in frame {
                client.write_all(&[*b]).await.unwrap();
            }
        } else {
            client.write_all(frame).await.unwrap();
        }
    }
    client.shutdown().await.unwrap();
    let mut from_server = Vec::new();
    client.read_to_end(&mut from_server).await.unwrap();
    let to_server = server.await.unwrap();

    let mut sent_by_client = REQUEST.to_vec();
    sent_by_client.extend(frames.concat());
    assert!(to_server == sent_by_client, "the server got other bytes");
    assert!(
        from_server == server_frames().concat(),
        "the client got other bytes"
    );

    let (summary, records) = running.stop().await;
    let frames: Vec<_> = of_kind(&records, "frame");
    let up: Vec<_> = frames.iter().filter(|r| r["dir"] == "c2s").collect();
    let down: Vec<_> = frames.iter().filter(|r| r["dir"] == "s2c").collect();
    assert_eq!((up.len(), down.len()), (10, 6));
    let opcodes: Vec<&str> = up.iter().map(|r| r["opcode"].as_str().unwrap()).collect();
    assert_eq!(
        opcodes,
        [
            "text",
            "text",
            "ping",
            "continuation",
            "binary",
            "pong",
            "text",
            "reserved",
            "text",
            "close"
        ]
    );
    assert_eq!(up[0]["text"], "hello");
    assert_eq!(up[0]["masked"], true);
    assert_eq!(up[1]["fin"], false);
    assert_eq!(up[6]["rsv"], 4);
    assert_eq!(up[7]["opcode_value"], 3);
    assert_eq!(up[8]["len"], 70_000);
    assert_eq!(up[8]["truncated"], true);
    assert_eq!(
        (up[9]["close_code"].as_u64(), up[9]["close_reason"].as_str()),
        (Some(1000), Some("bye"))
    );
    assert_eq!(down[0]["text"], "héllo back");
    assert_eq!(down[0]["masked"], false);
    assert_eq!(down[1]["len"], 200);
    assert_eq!(down[4]["opcode_value"], 11);
    let request = &of_kind(&records, "http_request")[0];
    assert_eq!(request["target"], "/chat?room=1");
    assert_eq!(request["headers"]["Authorization"], "[redacted]");
    assert_eq!(of_kind(&records, "http_response")[0]["status"], 101);
    assert_eq!(summary.connections, 1);
    assert_eq!(summary.close_codes["c2s"][&1000], 1);
    assert_eq!(summary.frames["c2s"]["text"], 4);
}

#[tokio::test]
async fn garbage_from_either_side_is_relayed_raw_and_the_proxy_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let garbage_reply: &'static [u8] = b"\x00\xffnot http at all\r\n\r\n\x01\x02";
    let (server_addr, server) = scripted_server(garbage_reply, vec![]).await;
    let running = inspect(
        dir.path(),
        &format!("ws://{server_addr}"),
        FaultPlan::default(),
        None,
    )
    .await;
    let mut client = TcpStream::connect(running.addr).await.unwrap();
    let junk = b"\x16\x03\x01 definitely not a request\r\n\r\nmore \xfe junk";
    client.write_all(junk).await.unwrap();
    client.shutdown().await.unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, garbage_reply);
    assert_eq!(server.await.unwrap(), junk);

    // A frame header that claims an absurd length, then the end of the stream.
    let mut absurd = vec![0x82, 127];
    absurd.extend_from_slice(&u64::MAX.to_be_bytes());
    absurd.extend_from_slice(b"tiny");
    let absurd: &'static [u8] = Box::leak(absurd.into_boxed_slice());
    let (server_addr, server) = scripted_server(RESPONSE_101, vec![absurd.to_vec()]).await;
    let second_dir = tempfile::tempdir().unwrap();
    let second = inspect(
        second_dir.path(),
        &format!("ws://{server_addr}"),
        FaultPlan::default(),
        None,
    )
    .await;
    let mut client = TcpStream::connect(second.addr).await.unwrap();
    client.write_all(REQUEST).await.unwrap();
    let mut head = Vec::new();
    read_until_head_end(&mut client, &mut head).await;
    client.shutdown().await.unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.unwrap();
    assert_eq!(rest, absurd);
    server.await.unwrap();
    let (_, records) = second.stop().await;
    let frame = &of_kind(&records, "frame")[0];
    assert_eq!(frame["len"], u64::MAX);
    assert!(
        frame["detail"]
            .as_str()
            .unwrap()
            .contains("without holding")
    );

    let (summary, records) = running.stop().await;
    assert!(summary.errors >= 1);
    assert!(
        of_kind(&records, "error")[0]["detail"]
            .as_str()
            .unwrap()
            .contains("not an HTTP request")
    );
}

fn socketio_echo(target: &str, transport: &str, extra: &str) -> String {
    format!(
        r#"
name = "through-inspect"
target = "{target}"
protocol = "socketio"
duration = "2s"
ramp = "0s"
drain = "1s"

[socketio]
transport = "{transport}"

[[group]]
name = "echoers"
clients = 4
auth = {{ token = "s3cret" }}
emit = [{{ event = "echo", data = {{ n = "{{{{seq}}}}" }}, rate = "50/s" }}{extra}]

[[expect]]
name = "echo"
event = "echo"
from = "self"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polling_upgrade_session_is_visible_from_its_first_request() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let running = inspect(dir.path(), &server.url(""), FaultPlan::default(), None).await;
    let text = socketio_echo(
        &format!("ws://{}", running.addr),
        "polling-upgrade",
        r#", { event = "ack", args = [1, "x"], rate = "10/s", ack = true }"#,
    );
    let outcome = run_in_process(dir.path(), &text, Overrides::default()).await;
    let t = &outcome.run.totals;
    assert_eq!(t.error_total(), 0);
    let (_, records) = running.stop().await;
    let echoes = summary_count(&dir.path().join("out"), "echo.received");
    assert!(echoes >= 4 * 90, "{echoes}");

    let requests = of_kind(&records, "http_request");
    assert!(
        requests[0]["target"]
            .as_str()
            .unwrap()
            .contains("transport=polling")
    );
    let packets = of_kind(&records, "packet");
    assert!(packets.iter().any(|p| p["eio"] == "open"));
    let connect = packets
        .iter()
        .find(|p| p["sio"]["type"] == "CONNECT" && p["dir"] == "c2s")
        .expect("CONNECT in a polling POST");
    // Its keys show, its values do not.
    assert_eq!(
        connect["sio"]["args"],
        serde_json::json!({"token": "[redacted]"})
    );
    assert_eq!(connect["text"], r#"40{"token":"[redacted]"}"#);
    assert!(!records.iter().any(|r| r.to_string().contains("s3cret")));
    let frames = of_kind(&records, "frame");
    assert!(frames.iter().any(|f| f["text"] == "2probe"));
    let echoed = frames
        .iter()
        .filter(|f| f["dir"] == "s2c" && f["sio"]["event"] == "echo")
        .count() as u64;
    assert_eq!(echoed, echoes);
    let acks: Vec<_> = frames
        .iter()
        .filter(|f| f["sio"]["type"] == "ACK")
        .collect();
    assert!(!acks.is_empty());
    assert!(
        acks.iter()
            .all(|a| a["ack_rtt_ms"].as_f64().unwrap() >= 0.0)
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_drops_and_duplicates_equal_what_the_clients_counted() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultPlan {
        drop: 0.1,
        duplicate: 0.1,
        filter: "dir=s2c,event=echo".parse().unwrap(),
        seed: 42,
        ..FaultPlan::default()
    };
    let running = inspect(dir.path(), &server.url(""), faults, None).await;
    let text = socketio_echo(&format!("ws://{}", running.addr), "websocket", "");
    run_in_process(dir.path(), &text, Overrides::default()).await;
    let (summary, records) = running.stop().await;
    let out = dir.path().join("out");
    let faults = of_kind(&records, "fault");
    let dropped = faults.iter().filter(|f| f["fault"] == "drop").count() as u64;
    let duplicated = faults.iter().filter(|f| f["fault"] == "duplicate").count() as u64;
    assert!(dropped > 10 && duplicated > 10, "{dropped} {duplicated}");
    assert!(
        faults
            .iter()
            .all(|f| f["sio"]["event"] == "echo" && f["dir"] == "s2c")
    );
    assert_eq!(summary_count(&out, "echo.lost"), dropped);
    assert_eq!(summary_count(&out, "echo.duplicate"), duplicated);
    assert_eq!(summary.faults["drop"], dropped);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delays_hold_frames_in_order_and_close_after_ends_connections() {
    let server = serve::spawn(ServeConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultPlan {
        delay: Some((Duration::from_millis(30), Duration::from_millis(5))),
        filter: "dir=s2c,type=ACK".parse().unwrap(),
        ..FaultPlan::default()
    };
    let running = inspect(dir.path(), &server.url(""), faults, None).await;
    let text = socketio_echo(
        &format!("ws://{}", running.addr),
        "websocket",
        r#", { event = "ack", args = [1], rate = "10/s", ack = true }"#,
    );
    let outcome = run_in_process(dir.path(), &text, Overrides::default()).await;
    let (_, records) = running.stop().await;
    let names = outcome.run.metric_names.clone();
    let ack = names.iter().position(|n| n == "ack").unwrap();
    let h = &outcome.run.totals.histograms[ack];
    assert!(h.len() >= 4 * 15);
    assert!(
        h.min() >= 25_000,
        "every ack held 25–35 ms: min {} µs",
        h.min()
    );
    let delays = of_kind(&records, "fault");
    assert_eq!(delays.len() as u64, h.len());
    assert!(
        delays
            .iter()
            .all(|d| (25.0..=35.0).contains(&d["delay_ms"].as_f64().unwrap()))
    );
    // The proxy times an ack when it reads it, before holding it: most read well under the
    // delay (one read behind a held frame waits for it, so not all).
    let mut timed: Vec<f64> = of_kind(&records, "frame")
        .iter()
        .filter_map(|f| f["ack_rtt_ms"].as_f64())
        .collect();
    timed.sort_by(f64::total_cmp);
    assert_eq!(timed.len() as u64, h.len());
    assert!(timed[timed.len() / 2] < 25.0, "{timed:?}");
    assert_eq!(outcome.run.totals.error_total(), 0);

    // --close-after: each connection ends after 3 matching frames.
    let dir = tempfile::tempdir().unwrap();
    let faults = FaultPlan {
        close_after: Some(3),
        filter: "dir=s2c".parse().unwrap(),
        ..FaultPlan::default()
    };
    let running = inspect(dir.path(), &server.url("/echo"), faults, None).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/echo", running.addr))
        .await
        .unwrap();
    use futures_util::{SinkExt, StreamExt};
    for i in 0..10 {
        let _ = ws.send(format!("m{i}").into()).await;
    }
    let mut echoes = 0;
    while let Some(Ok(message)) = ws.next().await {
        if message.is_text() {
            echoes += 1;
        }
    }
    assert_eq!(echoes, 3);
    let (summary, _) = running.stop().await;
    assert_eq!(summary.faults["close"], 1);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_on_both_sides_is_decoded_in_between() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let tls =
        volley::transport::tls::server_config_from(vec![cert.cert.der().clone()], key.clone_key())
            .unwrap();
    let server = serve::spawn(ServeConfig {
        tls: Some(tls.clone()),
        ..ServeConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let upstream = format!("wss://localhost:{}", server.addr().port());
    let running = inspect(dir.path(), &upstream, FaultPlan::default(), Some(tls)).await;
    let target = format!("wss://localhost:{}/echo", running.addr.port());
    let text = echo_scenario(&target, 3, "20/s", "1s");
    let outcome = run_in_process(dir.path(), &text, Overrides::default()).await;
    let t = &outcome.run.totals;
    assert_eq!(t.error_total(), 0);
    assert!(t.received > 0 && t.received == t.sent);
    let (_, records) = running.stop().await;
    let decoded = of_kind(&records, "frame")
        .iter()
        .filter(|f| f["dir"] == "s2c" && f["text"].as_str().is_some_and(|t| t.contains("vly:")))
        .count() as u64;
    assert_eq!(decoded, t.received);
    server.stop();
}

#[test]
fn the_command_reports_bad_faults_as_usage_and_stops_after_its_duration() {
    let out = assert_cmd::Command::cargo_bin("volley")
        .unwrap()
        .args([
            "inspect",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "ws://127.0.0.1:9",
        ])
        .args(["--drop", "5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--drop \"5\": write a percentage"));

    let out = assert_cmd::Command::cargo_bin("volley")
        .unwrap()
        .args([
            "inspect",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "ftp://x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    let out = assert_cmd::Command::cargo_bin("volley")
        .unwrap()
        .args([
            "inspect",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "ws://127.0.0.1:9",
        ])
        .args(["--duration", "300ms", "--seed", "1", "--delay", "1ms"])
        .timeout(Duration::from_secs(10))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("injecting faults (seed 1)"), "{stderr}");
    assert!(stderr.contains("0 connections"), "{stderr}");
}
