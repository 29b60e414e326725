//! volley's Socket.IO clients against real servers over 127.0.0.1: the builtin one (socketioxide,
//! in-process) and the Node `socket.io` server of tests/servers/socketio. Every transport, acks,
//! binary and multi-argument events, a second namespace, CONNECT_ERROR, ping timeouts, Engine.IO 3,
//! reconnection and connection state recovery.

use crate::common;

use std::path::Path;

use common::node::NodeServer;
use common::{read_csv, run_in_process, summary_count};
use volley::scenario::Overrides;

const TRANSPORTS: [&str; 3] = ["websocket", "polling", "polling-upgrade"];

/// A Socket.IO scenario: `extra` goes at the top level (after the [socketio] table's keys), and
/// `group` inside the one group.
fn scenario(target: &str, socketio: &str, group: &str, tail: &str) -> String {
    format!(
        r#"
name = "sio test"
target = "{target}"
protocol = "socketio"
duration = "1s"
ramp = "100ms"
drain = "2s"
connect_timeout = "3s"

[socketio]
{socketio}

[[group]]
name = "g"
clients = 4
{group}

{tail}
"#
    )
}

const ECHO_AND_ACK: &str = r#"emit = [
  { event = "echo", data = { text = "hi {{client}}", n = "{{seq}}" }, rate = "20/s" },
  { event = "ack", args = ["a", 2, { b = true }], rate = "10/s", ack = true },
]"#;

const EXPECT_ECHO: &str = "[[expect]]\nevent = \"echo\"\n";

fn counter(dir: &Path, name: &str) -> u64 {
    summary_count(&dir.join("out"), name)
}

/// Every tracked echo and every ack came back, with no error of any kind.
fn assert_clean_echoes(dir: &Path, what: &str) {
    let sent = counter(dir, "echo.sent");
    assert!(sent >= 4 * 15, "{what}: only {sent} echoes sent");
    assert_eq!(counter(dir, "echo.received"), sent, "{what}: echoes lost");
    assert_eq!(counter(dir, "echo.lost"), 0, "{what}");
    let acks = counter(dir, "ack.sent");
    assert!(acks >= 4 * 7, "{what}: only {acks} acks asked");
    assert_eq!(counter(dir, "ack"), acks, "{what}: ack latencies recorded");
    assert_eq!(counter(dir, "ack.lost"), 0, "{what}");
    assert_eq!(counter(dir, "errors"), 0, "{what}: {:?}", errors(dir));
    assert_eq!(counter(dir, "connects"), 4, "{what}");
    assert_eq!(counter(dir, "closes.1000"), 4, "{what}: clean closes");
}

/// errors.csv rows as (kind, detail).
fn errors(dir: &Path) -> Vec<(String, String)> {
    let (_, rows) = read_csv(&dir.join("out/errors.csv"));
    rows.into_iter()
        .map(|r| (r[3].clone(), r[4].clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_echoes_and_acks_against_node() {
    let node = NodeServer::start(&[]);
    for transport in TRANSPORTS {
        let dir = tempfile::tempdir().unwrap();
        let text = scenario(
            &node.url(),
            &format!("transport = \"{transport}\""),
            ECHO_AND_ACK,
            EXPECT_ECHO,
        );
        run_in_process(dir.path(), &text, Overrides::default()).await;
        assert_clean_echoes(dir.path(), &format!("node over {transport}"));
    }
}

/// Node's http server closes a keep-alive connection that sat idle for its keepAliveTimeout (5 s
/// by default); a polling session's POST connection idles between pongs for a whole ping interval.
/// The client opens a new connection for the next POST, as browsers do, instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_goes_on_when_node_closes_an_idle_keep_alive_connection() {
    // (Node closed the idle connections of a ping interval of 2 s, not yet of 1 s.)
    let node = NodeServer::start(&["--ping-interval", "2000", "--keep-alive-timeout", "50"]);
    let dir = tempfile::tempdir().unwrap();
    let text = scenario(&node.url(), "transport = \"polling\"", "", "")
        .replace("duration = \"1s\"", "duration = \"2500ms\"")
        .replace("drain = \"2s\"", "drain = \"500ms\"");
    run_in_process(dir.path(), &text, Overrides::default()).await;
    let d = dir.path();
    assert_eq!(counter(d, "errors"), 0, "{:?}", errors(d));
    assert_eq!(counter(d, "connects"), 4);
    assert_eq!(counter(d, "closes.1000"), 4, "clean closes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_echoes_and_acks_against_builtin() {
    for transport in TRANSPORTS {
        let dir = tempfile::tempdir().unwrap();
        let text = scenario(
            "builtin",
            &format!("transport = \"{transport}\""),
            ECHO_AND_ACK,
            EXPECT_ECHO,
        );
        run_in_process(dir.path(), &text, Overrides::default()).await;
        assert_clean_echoes(dir.path(), &format!("builtin over {transport}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_and_multi_argument_events_come_back_on_a_second_namespace() {
    let node = NodeServer::start(&[]);
    // A binary argument (the stamp rides in the attachment), and several JSON arguments with the
    // stamp as an extra argument, on /admin.
    let group = r#"namespace = "/admin"
emit = [
  { event = "echo", data = "bytes {{seq}}", binary = true, rate = "20/s" },
  { event = "echo", args = [1, [2, 3], "x"], rate = "20/s" },
]"#;
    for (target, name) in [(node.url(), "node"), ("builtin".to_string(), "builtin")] {
        for transport in ["websocket", "polling"] {
            let dir = tempfile::tempdir().unwrap();
            let text = scenario(
                &target,
                &format!("transport = \"{transport}\""),
                group,
                EXPECT_ECHO,
            );
            run_in_process(dir.path(), &text, Overrides::default()).await;
            let what = format!("{name} over {transport}");
            let sent = counter(dir.path(), "echo.sent");
            assert!(sent >= 4 * 30, "{what}: {sent}");
            assert_eq!(counter(dir.path(), "echo.received"), sent, "{what}");
            assert_eq!(
                counter(dir.path(), "errors"),
                0,
                "{what}: {:?}",
                errors(dir.path())
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_error_is_counted_with_the_servers_message() {
    let node = NodeServer::start(&[]);
    for (target, name) in [(node.url(), "node"), ("builtin".to_string(), "builtin")] {
        let dir = tempfile::tempdir().unwrap();
        let text = scenario(
            &target,
            "auth = { reject = \"go away {{client}}\" }",
            r#"emit = [{ event = "echo", data = "x", rate = "1/s" }]"#,
            "",
        );
        let outcome = run_in_process(dir.path(), &text, Overrides::default()).await;
        assert_eq!(outcome.run.totals.connects, 0, "{name}");
        assert_eq!(counter(dir.path(), "errors.connect_error"), 4, "{name}");
        let mut details: Vec<String> = errors(dir.path()).into_iter().map(|(_, d)| d).collect();
        details.sort();
        assert_eq!(
            details,
            ["go away 0", "go away 1", "go away 2", "go away 3"],
            "{name}: the auth template is rendered per client and the message is kept"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_pinging_is_a_ping_timeout() {
    let node = NodeServer::start(&["--ping-interval", "200", "--ping-timeout", "200"]);
    for transport in ["websocket", "polling"] {
        let dir = tempfile::tempdir().unwrap();
        let text = scenario(
            &node.url(),
            &format!("transport = \"{transport}\""),
            r#"on_connect = [{ emit = "freeze" }]
emit = [{ event = "noop", data = "x", rate = "1/s" }]"#,
            "",
        )
        .replace("duration = \"1s\"", "duration = \"2s\"");
        run_in_process(dir.path(), &text, Overrides::default()).await;
        assert_eq!(
            counter(dir.path(), "errors.ping_timeout"),
            4,
            "{transport}: {:?}",
            errors(dir.path())
        );
        let (kind, detail) = &errors(dir.path())[0];
        assert_eq!(kind, "ping_timeout");
        assert!(detail.contains("400ms"), "{detail}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_io_3_servers_are_spoken_to() {
    let node = NodeServer::start(&["--eio3"]);
    for (target, name) in [(node.url(), "node"), ("builtin".to_string(), "builtin")] {
        for transport in TRANSPORTS {
            let dir = tempfile::tempdir().unwrap();
            let text = scenario(
                &target,
                &format!("transport = \"{transport}\"\neio = 3"),
                ECHO_AND_ACK,
                EXPECT_ECHO,
            );
            run_in_process(dir.path(), &text, Overrides::default()).await;
            assert_clean_echoes(dir.path(), &format!("{name} eio 3 over {transport}"));
        }
    }
}

/// Each client has its connection cut by the server once, 300 ms after connecting, while it
/// emits; it reconnects, and with recovery the server says it recovered the session.
async fn cut_and_reconnect(
    node: &NodeServer,
    transport: &str,
    recovery: bool,
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let text = scenario(
        &node.url(),
        &format!("transport = \"{transport}\"\nrecovery = {recovery}"),
        // The server cuts once per key: one key per client and run.
        &format!(
            r#"on_connect = [{{ emit = "cut", data = {{ after = 300, key = "{transport}-{recovery}-{{{{client}}}}" }} }}]
emit = [{{ event = "echo", data = {{ n = "{{{{seq}}}}" }}, rate = "20/s" }}]"#
        ),
        "[reconnect]\nbackoff = \"50ms..200ms\"\n\n[[expect]]\nevent = \"echo\"\n",
    )
    .replace("duration = \"1s\"", "duration = \"2s\"");
    run_in_process(dir.path(), &text, Overrides::default()).await;
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_connections_reconnect_and_the_server_recovers_them() {
    let node = NodeServer::start(&[]);
    for transport in ["websocket", "polling"] {
        let dir = cut_and_reconnect(&node, transport, true).await;
        let what = format!("recovery over {transport}: {:?}", errors(dir.path()));
        assert_eq!(counter(dir.path(), "reconnects"), 4, "{what}");
        assert_eq!(counter(dir.path(), "reconnects.recovered"), 4, "{what}");
        assert_eq!(
            counter(dir.path(), "reconnect"),
            4,
            "{what}: time to reconnect recorded"
        );
        assert_eq!(counter(dir.path(), "connects"), 8, "{what}");
        // Echoes keep coming after the reconnect.
        assert!(counter(dir.path(), "echo.received") >= 4 * 30, "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_recovery_reconnects_start_new_sessions() {
    let node = NodeServer::start(&[]);
    let dir = cut_and_reconnect(&node, "websocket", false).await;
    let what = format!("{:?}", errors(dir.path()));
    assert_eq!(counter(dir.path(), "reconnects"), 4, "{what}");
    assert_eq!(counter(dir.path(), "reconnects.recovered"), 0, "{what}");
    assert!(counter(dir.path(), "echo.received") >= 4 * 30, "{what}");
}

/// Listens on 127.0.0.1, answers every request 404, and hands back the first request head
/// (connections that send nothing, like volley's reachability check, are skipped).
fn first_request_head() -> (String, std::thread::JoinHandle<String>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        loop {
            let (mut stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            if head.is_empty() {
                continue;
            }
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n");
            return String::from_utf8_lossy(&head).into_owned();
        }
    });
    (url, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_query_and_path_reach_the_server() {
    for transport in ["websocket", "polling"] {
        let (url, head) = first_request_head();
        let dir = tempfile::tempdir().unwrap();
        let text = scenario(
            &url,
            &format!(
                "transport = \"{transport}\"\npath = \"/rt/\"\nquery = {{ token = \"a b\" }}"
            ),
            r#"emit = [{ event = "echo", data = "x", rate = "1/s" }]"#,
            "",
        )
        .replace("clients = 4", "clients = 1")
        .replace(
            "connect_timeout = \"3s\"",
            "connect_timeout = \"3s\"\nheaders = { Cookie = \"session=s1\", Authorization = \"Bearer t\" }",
        );
        run_in_process(dir.path(), &text, Overrides::default()).await;
        let head = head.join().unwrap();
        let request_line = head.lines().next().unwrap();
        assert!(
            request_line.starts_with(&format!("GET /rt/?EIO=4&transport={transport}&")),
            "{request_line}"
        );
        assert!(request_line.contains("&token=a%20b"), "{request_line}");
        let lower = head.to_ascii_lowercase();
        assert!(lower.contains("\r\ncookie: session=s1\r\n"), "{head}");
        assert!(lower.contains("\r\nauthorization: bearer t\r\n"), "{head}");
        assert_eq!(
            counter(dir.path(), "errors.handshake_status")
                + counter(dir.path(), "errors.upgrade_rejected"),
            1,
            "{transport}: {:?}",
            errors(dir.path())
        );
    }
}

/// Watchers of the Node server's ticker (a broadcast every 20 ms); each has its connection cut
/// once, 500 ms in, and reconnects.
async fn ticker_cut(node: &NodeServer, recovery: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let text = scenario(
        &node.url(),
        &format!("recovery = {recovery}"),
        &format!(
            r#"on_connect = [
  {{ emit = "join", data = "ticker" }},
  {{ emit = "cut", data = {{ after = 500, key = "ticker-{recovery}-{{{{client}}}}" }} }},
]"#
        ),
        r#"[reconnect]
backoff = "100ms..200ms"
jitter = 0.0

[[expect]]
name = "ticks"
event = "tick"
from = "server"
seq = "/seq"
timestamp = "/ts"
"#,
    )
    .replace("duration = \"1s\"", "duration = \"2s\"");
    run_in_process(dir.path(), &text, Overrides::default()).await;
    dir
}

fn gap_rows(dir: &Path) -> Vec<Vec<String>> {
    read_csv(&dir.join("out/gaps.csv")).1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_missed_during_a_cut_are_refilled_by_recovery() {
    let node = NodeServer::start(&["--tick-every", "20"]);
    let dir = ticker_cut(&node, true).await;
    let what = format!("{:?}", gap_rows(dir.path()));
    assert_eq!(counter(dir.path(), "reconnects.recovered"), 4, "{what}");
    assert_eq!(counter(dir.path(), "ticks.lost"), 0, "{what}");
    assert_eq!(counter(dir.path(), "ticks.duplicate"), 0, "{what}");
    // Each client was away for at least the 100 ms backoff, while ticks went out every 20 ms:
    // some were replayed to every client.
    assert!(counter(dir.path(), "ticks.refilled") >= 4 * 3, "{what}");
    let rows = gap_rows(dir.path());
    assert!(
        rows.iter()
            .all(|r| r[7] == "refilled" && r[8] == "true" && r[9] == "true"),
        "{what}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_recovery_ticks_missed_during_a_cut_are_lost() {
    let node = NodeServer::start(&["--tick-every", "20"]);
    let dir = ticker_cut(&node, false).await;
    let what = format!("{:?}", gap_rows(dir.path()));
    assert_eq!(counter(dir.path(), "reconnects"), 4, "{what}");
    assert_eq!(counter(dir.path(), "reconnects.recovered"), 0, "{what}");
    let lost = counter(dir.path(), "ticks.lost");
    assert!(lost >= 4 * 3, "{what}");
    assert_eq!(counter(dir.path(), "ticks.gap"), lost, "{what}");
    let rows = gap_rows(dir.path());
    let gaps: Vec<_> = rows.iter().filter(|r| r[7] == "gap").collect();
    assert_eq!(gaps.len(), 4, "one gap per client: {what}");
    assert!(
        gaps.iter().all(|r| r[8] == "true" && r[9] == "false"),
        "{what}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_room_delivers_every_message_to_every_member() {
    let node = NodeServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
name = "fanout"
target = "{}"
protocol = "socketio"
duration = "2s"
ramp = "100ms"
drain = "1s"

[[group]]
name = "listeners"
clients = 10
on_connect = [{{ emit = "join", data = "room1" }}]

[[group]]
name = "talkers"
clients = 3
on_connect = [{{ emit = "join", data = "room1" }}]
emit = [{{ event = "chat", data = {{ text = "hi {{{{client}}}}" }}, rate = "10/s" }}]

[[expect]]
name = "fanout"
event = "chat"
from = "talkers"
to = ["listeners", "talkers"]
within = "1s"
"#,
        node.url()
    );
    run_in_process(dir.path(), &text, Overrides::default()).await;
    let d = dir.path();
    let sent = counter(d, "fanout.sent");
    assert!(sent >= 3 * 20, "{sent}");
    // Every member got nearly every message: only those sent before it joined are not due.
    let received = counter(d, "fanout.received");
    assert!(received >= sent * 13 * 9 / 10, "{received} of {sent} × 13");
    for kind in ["lost", "duplicate", "reorder", "gap", "late"] {
        assert_eq!(
            counter(d, &format!("fanout.{kind}")),
            0,
            "{kind}: {:?}",
            gap_rows(d)
        );
    }
}
