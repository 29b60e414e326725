//! A real third-party client through `volley inspect`: npm `socket.io-client`
//! (tests/servers/socketio/client.js) runs its script against the Node Socket.IO server once
//! directly and once through an in-process inspector. It must see exactly the same session, and
//! the inspector's records must show that session from its first long-polling request, with as
//! many Engine.IO packets each way as the client sent and received.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::inspect::{inspect, of_kind};
use common::node::{NodeServer, run_node_client};
use serde_json::{Value, json};
use volley::inspect::faults::FaultPlan;

/// How long the client script may take (it needs about a second).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

async fn client_run(url: String) -> Value {
    tokio::task::spawn_blocking(move || run_node_client(&url, CLIENT_TIMEOUT))
        .await
        .unwrap()
}

/// The client's report without `wire`, the one part that timing may change.
fn deterministic(report: &Value) -> Value {
    let mut report = report.clone();
    report.as_object_mut().unwrap().remove("wire");
    report
}

fn counts(table: &Value) -> BTreeMap<String, u64> {
    table
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect()
}

/// Engine.IO packets per type in one direction, as the inspector decoded them from long-polling
/// bodies and WebSocket data frames (a binary attachment is a `message` to the client library).
fn engineio_packets(records: &[Value], dir: &str) -> BTreeMap<String, u64> {
    let mut packets = BTreeMap::new();
    for r in records.iter().filter(|r| r["dir"] == dir) {
        let data_frame = r["kind"] == "frame" && (r["opcode"] == "text" || r["opcode"] == "binary");
        if r["kind"] != "packet" && !data_frame {
            continue;
        }
        let eio = match r["eio"].as_str().expect("every data frame is Engine.IO") {
            "binary" => "message",
            other => other,
        };
        *packets.entry(eio.to_string()).or_default() += 1;
    }
    packets
}

/// Socket.IO packets of one type in one direction.
fn sio<'a>(records: &'a [Value], dir: &str, kind: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["dir"] == dir && r["sio"]["type"] == kind)
        .collect()
}

fn frames_of_conn(records: &[Value], conn: &Value) -> Vec<(String, String)> {
    records
        .iter()
        .filter(|r| r["kind"] == "frame" && &r["conn"] == conn)
        .map(|r| {
            let dir = r["dir"].as_str().unwrap().to_string();
            let text = r["text"].as_str().unwrap_or("").to_string();
            (dir, text)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_client_sees_the_same_session_through_the_inspector_which_logs_all_of_it() {
    let server = NodeServer::start(&[]);
    let direct = client_run(server.url()).await;

    let dir = tempfile::tempdir().unwrap();
    let inspector = inspect(dir.path(), &server.url(), FaultPlan::default(), None).await;
    let proxied = client_run(format!("http://{}", inspector.addr)).await;
    inspector.wait_all_closed(Duration::from_secs(5)).await;
    let (summary, records) = inspector.stop().await;

    // The client's view: what it should be, and the same either way.
    let bytes_ok =
        json!({"length": 256, "event_intact": true, "ack_intact": true, "name": "bytes"});
    assert_eq!(direct["first_transport"], "polling");
    assert_eq!(direct["transport"], "websocket");
    assert_eq!(direct["connected"], json!(["/", "/admin"]));
    assert_eq!(direct["ack"], json!([1, "two", {"three": [3]}]));
    assert_eq!(direct["binary"], bytes_ok);
    assert_eq!(direct["chat"], json!({"event": ["hi all"], "ack": []}));
    assert_eq!(direct["admin_ack"], json!(["admin", 2]));
    assert_eq!(deterministic(&proxied), deterministic(&direct));
    assert_eq!(summary.errors, 0, "{:?}", of_kind(&records, "error"));

    // The session from its first request: a long-polling handshake answered with the open packet.
    let requests = of_kind(&records, "http_request");
    let first = requests[0];
    let target = first["target"].as_str().unwrap();
    assert_eq!(first["method"], "GET");
    assert!(
        target.contains("EIO=4")
            && target.contains("transport=polling")
            && !target.contains("sid="),
        "{target}"
    );
    let first_packet = of_kind(&records, "packet")[0];
    assert_eq!(
        (
            &first_packet["conn"],
            &first_packet["dir"],
            &first_packet["eio"]
        ),
        (&first["conn"], &json!("s2c"), &json!("open"))
    );
    // CONNECT to "/" goes in a polling POST (the WebSocket is not there yet); its answer may
    // come either way, depending on when the upgrade completes.
    let connects = sio(&records, "c2s", "CONNECT");
    assert_eq!(connects[0]["kind"], "packet");
    assert_eq!(connects[0]["sio"]["nsp"], "/");
    let answered: Vec<&Value> = sio(&records, "s2c", "CONNECT")
        .iter()
        .map(|r| &r["sio"]["nsp"])
        .collect();
    assert_eq!(answered, [&json!("/"), &json!("/admin")]);

    // The upgrade: a WebSocket request answered 101, then the probe and the upgrade packet.
    let upgrade = requests
        .iter()
        .find(|r| {
            r["target"]
                .as_str()
                .unwrap()
                .contains("transport=websocket")
        })
        .expect("a WebSocket upgrade request");
    assert!(upgrade["target"].as_str().unwrap().contains("sid="));
    let switched = of_kind(&records, "http_response")
        .into_iter()
        .find(|r| r["conn"] == upgrade["conn"])
        .unwrap();
    assert_eq!(switched["status"], 101);
    let ws_frames = frames_of_conn(&records, &upgrade["conn"]);
    let probe: Vec<(&str, &str)> = ws_frames[..3]
        .iter()
        .map(|(d, t)| (d.as_str(), t.as_str()))
        .collect();
    assert_eq!(probe, [("c2s", "2probe"), ("s2c", "3probe"), ("c2s", "5")]);

    // The script's events, in order, with their names and namespaces.
    let emitted: Vec<(&str, &str, &str)> = records
        .iter()
        .filter(|r| {
            r["dir"] == "c2s" && (r["sio"]["type"] == "EVENT" || r["sio"]["type"] == "BINARY_EVENT")
        })
        .map(|r| {
            (
                r["sio"]["type"].as_str().unwrap(),
                r["sio"]["nsp"].as_str().unwrap(),
                r["sio"]["event"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        emitted,
        [
            ("EVENT", "/", "ack"),
            ("EVENT", "/", "echo"),
            ("BINARY_EVENT", "/", "echo"),
            ("EVENT", "/", "join"),
            ("EVENT", "/", "chat"),
            ("EVENT", "/", "echo"),
            ("EVENT", "/admin", "ack"),
        ]
    );
    // Every ack is timed against its event.
    let acks = [
        sio(&records, "s2c", "ACK"),
        sio(&records, "s2c", "BINARY_ACK"),
    ]
    .concat();
    assert!(
        acks.iter()
            .all(|a| a["ack_rtt_ms"].as_f64().unwrap() >= 0.0)
    );
    // Binary events and acks are followed by their attachment: the client's 256 bytes.
    let all_bytes: String = (0..=255u8).map(|b| format!("{b:02x}")).collect();
    for (dir, kind) in [
        ("c2s", "BINARY_EVENT"),
        ("s2c", "BINARY_EVENT"),
        ("s2c", "BINARY_ACK"),
    ] {
        let head = sio(&records, dir, kind);
        assert_eq!(head.len(), 1, "{dir} {kind}");
        assert_eq!(head[0]["sio"]["attachments"], 1);
        let at = records
            .iter()
            .position(|r| std::ptr::eq(r, head[0]))
            .unwrap();
        let attachment = records[at + 1..]
            .iter()
            .find(|r| r["dir"] == dir && r["kind"] == "frame")
            .unwrap();
        assert_eq!(attachment["sio"]["type"], "ATTACHMENT", "{dir} {kind}");
        assert_eq!(attachment["opcode"], "binary");
        assert_eq!(attachment["hex"], all_bytes.as_str());
    }

    // As many Socket.IO packets each way as the client counted...
    let count_of = |dir, kind| sio(&records, dir, kind).len() as u64;
    let emitted = counts(&proxied["emitted"]);
    let received = counts(&proxied["received"]);
    assert_eq!(count_of("c2s", "EVENT"), emitted["EVENT"]);
    assert_eq!(count_of("c2s", "BINARY_EVENT"), emitted["BINARY_EVENT"]);
    for kind in ["EVENT", "BINARY_EVENT", "ACK", "BINARY_ACK"] {
        assert_eq!(count_of("s2c", kind), received[kind], "s2c {kind}");
    }
    // ...and as many Engine.IO packets of each type as its engine sent and received. The probe
    // (2probe, 3probe) and the upgrade packet go over the new transport before it is the
    // engine's, so the client library does not report them.
    let mut sent = counts(&proxied["wire"]["sent"]);
    *sent.entry("ping".into()).or_default() += 1;
    *sent.entry("upgrade".into()).or_default() += 1;
    let mut got = counts(&proxied["wire"]["received"]);
    *got.entry("pong".into()).or_default() += 1;
    assert_eq!(engineio_packets(&records, "c2s"), sent);
    assert_eq!(engineio_packets(&records, "s2c"), got);
}
