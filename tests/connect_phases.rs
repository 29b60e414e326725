//! Where connect time goes: the phases of connect (`connect_tcp`, `connect_tls`,
//! `connect_upgrade`, `connect_eio_open`, `connect_sio_connect`, `connect_eio_upgrade`) against the
//! builtin server (plain, TLS, reconnecting), the Node Socket.IO server over every transport, and
//! servers made slow in one phase: a WebSocket server that holds its 101, and a Socket.IO
//! middleware that holds the namespace CONNECT. The time lands in that phase and nowhere else.

use crate::common;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use common::node::NodeServer;
use common::{run_in_process, self_signed_server};
use volley::metrics::ConnectPhase;
use volley::results::FinishedRun;
use volley::scenario::Overrides;

/// A scenario of `clients` connections to `target` that echo a little; `extra` goes at the top
/// level, `group` inside the group.
fn scenario(target: &str, extra: &str, group: &str) -> String {
    format!(
        r#"
name = "phases"
target = "{target}"
duration = "1s"
ramp = "100ms"
drain = "1s"
connect_timeout = "3s"
{extra}

[[group]]
name = "g"
clients = 4
emit = [{{ event = "echo", data = {{ n = "{{{{seq}}}}" }}, rate = "10/s" }}]
{group}
"#
    )
}

fn histogram<'r>(run: &'r FinishedRun, name: &str) -> &'r Histogram<u64> {
    let at = run
        .metric_names
        .iter()
        .position(|n| n == name)
        .unwrap_or_else(|| panic!("no metric {name} in {:?}", run.metric_names));
    &run.totals.histograms[at]
}

/// The run has exactly the phases `expected` (short names, in order); each was recorded once per
/// connect; no phase is above connect at any percentile (a connection's phases are each within
/// its connect, so the sorted values are too); and on average the phases add up to at most
/// connect.
fn assert_phases_add_up(run: &FinishedRun, expected: &[&str], what: &str) {
    let phases: Vec<&str> = run
        .metric_names
        .iter()
        .filter_map(|n| ConnectPhase::of_metric(n))
        .map(ConnectPhase::short_name)
        .collect();
    assert_eq!(phases, expected, "{what}: the phases of the run");
    let connect = histogram(run, "connect");
    assert!(run.totals.connects > 0, "{what}: nothing connected");
    assert_eq!(connect.len(), run.totals.connects, "{what}");
    let mut means = 0.0;
    for name in run
        .metric_names
        .iter()
        .filter(|n| ConnectPhase::of_metric(n).is_some())
    {
        let h = histogram(run, name);
        assert_eq!(
            h.len(),
            run.totals.connects,
            "{what}: {name} once per connect"
        );
        for q in [0.0, 0.5, 0.9, 0.99, 1.0] {
            let (phase, total) = (h.value_at_quantile(q), connect.value_at_quantile(q));
            assert!(
                phase <= total,
                "{what}: {name} at q{q} is {phase} µs, above connect's {total} µs"
            );
        }
        means += h.mean();
    }
    // Histogram buckets round each value by at most 0.1%.
    assert!(
        means <= connect.mean() * 1.002 + 1.0,
        "{what}: the phases' means add up to {means:.0} µs, connect's is {:.0} µs",
        connect.mean()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_records_tcp_and_upgrade_for_every_connect_reconnects_included() {
    let dir = tempfile::tempdir().unwrap();
    let text = scenario(
        "builtin",
        "path = \"/echo\"\n\n[reconnect]\nbackoff = \"20ms..50ms\"",
        "disconnect_every = \"300ms\"",
    );
    let outcome = run_in_process(dir.path(), &text, Overrides::default()).await;
    let run = &outcome.run;
    assert!(
        run.totals.reconnects >= 4,
        "{} reconnects",
        run.totals.reconnects
    );
    assert_eq!(run.totals.connects, 4 + run.totals.reconnects);
    assert_phases_add_up(run, &["tcp", "upgrade"], "ws with reconnects");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_adds_the_tls_handshake() {
    let server = self_signed_server();
    let target = format!("wss://localhost:{}/echo", server.addr().port());
    let dir = tempfile::tempdir().unwrap();
    let outcome =
        run_in_process(dir.path(), &scenario(&target, "", ""), Overrides::default()).await;
    assert_phases_add_up(&outcome.run, &["tcp", "tls", "upgrade"], "wss");
    // A TLS handshake is a round trip and some signing: never free.
    assert!(histogram(&outcome.run, "connect_tls").min() >= 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polling_over_https_adds_the_tls_handshake_and_echoes() {
    let server = self_signed_server();
    let target = format!("https://localhost:{}", server.addr().port());
    let dir = tempfile::tempdir().unwrap();
    let extra = "protocol = \"socketio\"\n\n[socketio]\ntransport = \"polling\"";
    let outcome = run_in_process(
        dir.path(),
        &scenario(&target, extra, ""),
        Overrides::default(),
    )
    .await;
    let run = &outcome.run;
    assert_eq!(run.totals.error_total(), 0);
    assert!(
        run.totals.received >= 4 * 8,
        "{} received",
        run.totals.received
    );
    assert_phases_add_up(
        run,
        &["tcp", "tls", "eio_open", "sio_connect"],
        "https polling",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_has_the_engine_io_and_namespace_phases_of_its_transport() {
    let node = NodeServer::start(&[]);
    let cases = [
        (
            "websocket",
            &["tcp", "upgrade", "eio_open", "sio_connect"][..],
        ),
        ("polling", &["tcp", "eio_open", "sio_connect"][..]),
        (
            "polling-upgrade",
            &["tcp", "eio_open", "sio_connect", "eio_upgrade"][..],
        ),
    ];
    for (transport, phases) in cases {
        for target in [node.url(), "builtin".to_string()] {
            let dir = tempfile::tempdir().unwrap();
            let extra =
                format!("protocol = \"socketio\"\n\n[socketio]\ntransport = \"{transport}\"");
            let outcome = run_in_process(
                dir.path(),
                &scenario(&target, &extra, ""),
                Overrides::default(),
            )
            .await;
            assert_eq!(outcome.run.totals.error_total(), 0, "{target} {transport}");
            assert_phases_add_up(&outcome.run, phases, &format!("{target} over {transport}"));
        }
    }
}

/// A WebSocket server on 127.0.0.1 that holds every upgrade request `delay` before its 101, then
/// reads (and answers the close handshake) until the client goes.
async fn slow_upgrade_server(delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(upgrade_late(stream, delay));
        }
    });
    addr
}

async fn upgrade_late(mut stream: TcpStream, delay: Duration) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    request.parse(&head).unwrap();
    let key = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-key"))
        .expect("a WebSocket key")
        .value;
    let accept = derive_accept_key(key);
    tokio::time::sleep(delay).await;
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    if stream.write_all(response.as_bytes()).await.is_err() {
        return;
    }
    let mut ws = WebSocketStream::from_raw_socket(stream, Role::Server, None).await;
    while let Some(Ok(_)) = ws.next().await {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_slow_to_upgrade_shows_in_the_upgrade_phase_and_its_thresholds() {
    let addr = slow_upgrade_server(Duration::from_millis(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let thresholds = r#"
[thresholds]
"connect_upgrade.min" = ">= 200ms"
"connect_tcp.p99" = "< 100ms"
"connect_tcp.max" = ">= 200ms"
"#;
    let text = format!(
        r#"
name = "slow upgrade"
target = "ws://{addr}/"
duration = "1s"
ramp = "100ms"
drain = "500ms"
connect_timeout = "3s"

[[group]]
name = "g"
clients = 3
{thresholds}"#
    );
    let outcome = run_in_process(dir.path(), &text, Overrides::default()).await;
    let run = &outcome.run;
    assert_eq!(run.totals.connects, 3);
    assert_phases_add_up(run, &["tcp", "upgrade"], "slow upgrade");
    let (upgrade, tcp) = (
        histogram(run, "connect_upgrade"),
        histogram(run, "connect_tcp"),
    );
    assert!(upgrade.min() >= 200_000, "upgrade min {} µs", upgrade.min());
    assert!(
        tcp.max() < 100_000,
        "tcp max {} µs: the delay is not TCP's",
        tcp.max()
    );
    assert!(histogram(run, "connect").min() >= 200_000);
    // The gate reads the phases by name: the upgrade's delay passes its threshold, and TCP,
    // quick, passes its own and fails the one that wants it slow.
    let verdicts: Vec<(&str, bool)> = run
        .thresholds
        .iter()
        .map(|v| (v.expression.as_str(), v.passed))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("connect_upgrade.min >= 200ms", true),
            ("connect_tcp.p99 < 100ms", true),
            ("connect_tcp.max >= 200ms", false),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_socketio_middleware_shows_in_the_namespace_connect_phase() {
    let node = NodeServer::start(&["--connect-delay", "200"]);
    let dir = tempfile::tempdir().unwrap();
    let extra = "protocol = \"socketio\"\n\n[socketio]\ntransport = \"websocket\"";
    let outcome = run_in_process(
        dir.path(),
        &scenario(&node.url(), extra, ""),
        Overrides::default(),
    )
    .await;
    let run = &outcome.run;
    assert_eq!(run.totals.connects, 4);
    assert_phases_add_up(
        run,
        &["tcp", "upgrade", "eio_open", "sio_connect"],
        "slow middleware",
    );
    let sio = histogram(run, "connect_sio_connect");
    assert!(sio.min() >= 200_000, "sio_connect min {} µs", sio.min());
    for quick in ["connect_tcp", "connect_upgrade", "connect_eio_open"] {
        let max = histogram(run, quick).max();
        assert!(
            max < 100_000,
            "{quick} max {max} µs: the middleware is not in it"
        );
    }
}
