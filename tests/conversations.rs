//! Conversations: users that log in over HTTP with rows of a data file, connect with the token they
//! got, subscribe and wait for acknowledgements, answer what the server pushes, come and go.
//! Against the message-queue service (tests/servers/socketio/message-queue.js), the Node Socket.IO
//! test server and the builtin server, on 127.0.0.1; the servers' own counts are the reference.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use common::node::NodeServer;
use serde_json::Value;
use volley::metrics::{ErrorKind, Interval};
use volley::scenario::Overrides;

/// `GET /stats` of the message-queue service.
fn stats(server: &NodeServer) -> Value {
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET /stats HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (_, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("/stats is not JSON ({e}): {body}"))
}

/// Users `user0..` with their passwords, the rows listed in `wrong` with a wrong one.
fn users_csv(dir: &Path, count: usize, wrong: &[usize]) {
    let mut text = String::from("user,password\n");
    for i in 0..count {
        let password = if wrong.contains(&i) {
            "nope".to_string()
        } else {
            format!("pw{i}")
        };
        text.push_str(&format!("user{i},{password}\n"));
    }
    std::fs::write(dir.join("users.csv"), text).unwrap();
}

fn errors(totals: &Interval, kind: ErrorKind) -> u64 {
    totals.errors[kind.index()]
}

fn count(totals: &Interval, names: &[String], metric: &str) -> u64 {
    let at = names
        .iter()
        .position(|n| n == metric)
        .unwrap_or_else(|| panic!("no metric `{metric}` in {names:?}"));
    totals.histograms[at].len()
}

/// The message-queue conversation: log in, connect with the token, subscribe to both channels,
/// acknowledge every message, and (with `replay`) ask for what was missed after every connect.
fn queue_scenario(url: &str, users: u64, duration: &str, replay: bool) -> String {
    let replay = if replay {
        r#"  { emit = "getAll", ack = true },"#
    } else {
        ""
    };
    format!(
        r#"
name = "queue"
target = "{url}"
protocol = "socketio"
duration = "{duration}"
ramp = "500ms"
drain = "1s"

[[data]]
name = "users"
file = "users.csv"
pick = "unique"

[socketio]
auth = {{ token = "{{{{token}}}}" }}
recovery = false

[reconnect]
backoff = "50ms..200ms"

[[group]]
name = "users"
clients = {users}
before_connect = [
  {{ http = "POST /login", name = "login", json = {{ user = "{{{{users.user}}}}", password = "{{{{users.password}}}}" }}, status = 200, capture = {{ token = "/token" }} }},
]
on_connect = [
  {{ emit = "subscribe", data = {{ channel = "c0" }}, ack = true }},
  {{ emit = "subscribe", data = {{ channel = "c1" }}, ack = true }},
{replay}
]

[[group.on]]
event = "message"
emit = "received"
data = {{ id = "{{{{/id}}}}" }}

[[expect]]
event = "message"
from = "server"
seq = "/seq"
stream = "/channel"
timestamp = "/ts"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_users_log_in_with_their_own_rows_and_connect_with_their_tokens() {
    let server = NodeServer::start_script(
        "message-queue.js",
        &[
            "--users",
            "1000",
            "--publish-every",
            "200",
            "--publish-for",
            "400",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    users_csv(dir.path(), 1000, &[]);
    let text = queue_scenario(&server.url(), 1000, "3s", false);
    let outcome = common::run_in_process(dir.path(), &text, Overrides::default()).await;
    let totals = &outcome.run.totals;
    let names = &outcome.run.metric_names;
    let s = stats(&server);
    let t = &s["totals"];
    // Every row went to exactly one user: 1,000 distinct users logged in once each.
    assert_eq!(t["logins_ok"], 1000, "{t}");
    assert_eq!(s["users"].as_object().unwrap().len(), 1000);
    assert!(
        s["users"]
            .as_object()
            .unwrap()
            .values()
            .all(|u| u["logins"] == 1)
    );
    // The tokens went into CONNECT auth, the session cookies onto the upgrade requests.
    assert_eq!(t["unauthorized"], 0, "{t}");
    assert_eq!(t["connections"], 1000, "{t}");
    assert_eq!(t["connections_with_cookie"], 1000, "{t}");
    assert_eq!(count(totals, names, "login"), 1000);
    assert_eq!(totals.error_total(), 0, "{:?}", totals.errors);
    // Every acknowledged message was acknowledged by a reply.
    assert_eq!(t["acked"], t["produced"], "{t}");
    assert_eq!(totals.expects[0].lost, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_an_http_status_error_and_that_user_stays_out() {
    let server = NodeServer::start_script("message-queue.js", &["--users", "20"]);
    let dir = tempfile::tempdir().unwrap();
    users_csv(dir.path(), 20, &[3, 11]);
    let text = queue_scenario(&server.url(), 20, "500ms", false);
    let outcome = common::run_in_process(dir.path(), &text, Overrides::default()).await;
    let totals = &outcome.run.totals;
    assert_eq!(
        errors(totals, ErrorKind::HttpStatus),
        2,
        "{:?}",
        totals.errors
    );
    assert_eq!(totals.error_total(), 2);
    assert_eq!(totals.connects, 18);
    let t = &stats(&server)["totals"];
    assert_eq!(
        (t["logins_ok"].as_u64(), t["logins_refused"].as_u64()),
        (Some(18), Some(2))
    );
    let (header, rows) = common::read_csv(&outcome.dir.join("errors.csv"));
    let kind = header.iter().position(|h| h == "kind").unwrap();
    let detail = header.iter().position(|h| h == "detail").unwrap();
    let client = header.iter().position(|h| h == "client").unwrap();
    let mut clients: Vec<&str> = rows.iter().map(|r| r[client].as_str()).collect();
    clients.sort();
    assert_eq!(clients, ["11", "3"]);
    for row in &rows {
        assert_eq!(row[kind], "http_status");
        assert!(
            row[detail].starts_with("step `login`: HTTP 401"),
            "{}",
            row[detail]
        );
    }
}

/// 50 users of the queue service for 3.5 s while the server drops every connection every 0.7 s
/// (in the first 2.2 s of publishing): the run (its folder in the returned directory) and the
/// server's counts.
async fn queue_with_drops(replay: bool) -> (tempfile::TempDir, volley::runner::RunOutcome, Value) {
    let args = [
        "--users",
        "50",
        "--publish-every",
        "40",
        "--publish-for",
        "3000",
        "--drop-every",
        "700",
        "--drop-until",
        "2200",
    ];
    let server = NodeServer::start_script("message-queue.js", &args);
    let dir = tempfile::tempdir().unwrap();
    users_csv(dir.path(), 50, &[]);
    let text = queue_scenario(&server.url(), 50, "3500ms", replay);
    let outcome = common::run_in_process(dir.path(), &text, Overrides::default()).await;
    let counts = stats(&server);
    (dir, outcome, counts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_acknowledgements_and_replay_nothing_is_lost_across_forced_reconnects() {
    let (_dir, outcome, stats) = queue_with_drops(true).await;
    let totals = &outcome.run.totals;
    let t = &stats["totals"];
    assert!(
        t["drops"].as_u64().unwrap() >= 50,
        "the server forced reconnects: {t}"
    );
    assert!(t["queued_offline"].as_u64().unwrap() > 0, "{t}");
    assert_eq!(t["never_delivered"], 0, "{t}");
    assert_eq!(t["unacked"], 0, "{t}");
    let message = &totals.expects[0];
    assert_eq!(message.lost, 0, "{message:?}");
    // What the server replayed into gaps counts as refilled; replays of what had come already,
    // as duplicates.
    assert_eq!(
        Some(message.received),
        t["delivered"].as_u64(),
        "{message:?} {t}"
    );
    // Every message queued while its user was away came back by the replay: refilled. (A few
    // live ones sent during the reconnect's last round trip count too: older than the moment
    // the client had its connection back.)
    let recovered = t["recovered"].as_u64().unwrap();
    assert!(recovered > 0, "{t}");
    assert!(message.refilled >= recovered, "{message:?} {t}");
    assert_eq!(totals.reconnects, t["drops"].as_u64().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_replay_lost_equals_what_the_server_never_delivered() {
    let (_dir, outcome, stats) = queue_with_drops(false).await;
    let message = &outcome.run.totals.expects[0];
    let t = &stats["totals"];
    let never = t["never_delivered"].as_u64().unwrap();
    assert!(never > 0, "the drops lost messages: {t}");
    assert_eq!(message.lost, never, "{message:?} {t}");
    assert_eq!(Some(message.received), t["pushed_live"].as_u64());
    assert_eq!(message.duplicate, 0);
    // Each channel is a stream of its own, named in gaps.csv.
    let (header, rows) = common::read_csv(&outcome.dir.join("gaps.csv"));
    let source = header.iter().position(|h| h == "source").unwrap();
    assert!(!rows.is_empty());
    assert!(
        rows.iter()
            .all(|r| r[source] == "server:c0" || r[source] == "server:c1"),
        "{rows:?}"
    );
}

/// Runs `clients` users of `group` (and the groups after it) against a fresh Node Socket.IO test
/// server without connection state recovery.
async fn sio_run(clients: u64, group: &str) -> volley::runner::RunOutcome {
    let server = NodeServer::start(&["--no-recovery"]);
    let dir = tempfile::tempdir().unwrap();
    let text = sio_scenario(&server.url(), clients, group);
    common::run_in_process(dir.path(), &text, Overrides::default()).await
}

/// The Node Socket.IO test server with one conversation per test.
fn sio_scenario(url: &str, clients: u64, group: &str) -> String {
    format!(
        r#"
name = "steps"
target = "{url}"
protocol = "socketio"
duration = "500ms"
ramp = "200ms"
drain = "500ms"

[[group]]
name = "users"
clients = {clients}
{group}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_capture_flows_into_the_next_steps() {
    // The ack carries back what was sent; the next emit sends the captured value, and the
    // wait_for only matches it when it went through.
    let group = r#"
on_connect = [
  { emit = "ack", data = { v = "x-{{client}}" }, ack = true, capture = { v = "/v" } },
  { emit = "echo", data = { got = "{{v}}" } },
  { wait_for = "echo", match = '/got == "x-0"', timeout = "2s", name = "echoed" },
]
"#;
    let outcome = sio_run(1, group).await;
    let totals = &outcome.run.totals;
    assert_eq!(totals.error_total(), 0, "{:?}", totals.errors);
    assert_eq!(count(totals, &outcome.run.metric_names, "echoed"), 1);
    assert_eq!(count(totals, &outcome.run.metric_names, "ack"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_for_that_never_comes_is_a_step_timeout_and_continue_goes_on() {
    let group = r#"
on_connect = [
  { wait_for = "never", timeout = "200ms" },
  { emit = "echo", data = "after" },
]
[[group]]
name = "patient"
clients = 3
on_connect = [
  { wait_for = "never", timeout = "200ms", on_failure = "continue" },
  { emit = "ack", data = "after", ack = true },
]
"#;
    let outcome = sio_run(2, group).await;
    let totals = &outcome.run.totals;
    assert_eq!(
        errors(totals, ErrorKind::StepTimeout),
        5,
        "{:?}",
        totals.errors
    );
    // Only the patient ones went on to their next step.
    assert_eq!(count(totals, &outcome.run.metric_names, "ack"), 3);
    assert_eq!(totals.sent, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emits_are_sent_again_until_acknowledged_and_counted() {
    // The server ignores the first attempt of every key: each emit needs exactly one retry.
    // A second group's keys are never acknowledged within its two attempts.
    let group = r#"
emit = [{ event = "flaky", data = { key = "a-{{client}}-{{seq}}", ignore = 1 }, rate = "10/s", ack = true, retries = 2, ack_timeout = "100ms" }]
[[group]]
name = "unlucky"
clients = 1
emit = [{ event = "flaky", data = { key = "b-{{client}}-{{seq}}", ignore = 5 }, rate = "10/s", ack = true, retries = 1, ack_timeout = "100ms" }]
"#;
    let outcome = sio_run(2, group).await;
    let totals = &outcome.run.totals;
    let answered = count(totals, &outcome.run.metric_names, "ack");
    let failed = errors(totals, ErrorKind::AckTimeout);
    assert!(answered >= 8, "two users × 10/s for 0.5 s: {answered}");
    // One retry per answered emit, one per failed emit (two attempts each), and at most one
    // for each emit still waiting when the run closed (lost with the connection).
    assert!(failed >= 4, "{:?}", totals.errors);
    let in_flight = totals.acks_lost - failed;
    let retries = totals.ack_retries;
    assert!(
        (answered + failed..=answered + failed + in_flight).contains(&retries),
        "retries {retries}, answered {answered}, failed {failed}, in flight at the end {in_flight}"
    );
    assert_eq!(totals.error_total(), failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_ack_requests_are_answered_with_values_of_the_event() {
    let group = r#"
on_connect = [
  { emit = "ask", data = { n = 41 } },
  { wait_for = "answered", match = "/n == 41", timeout = "2s", capture = { ok = "/ok" } },
]
[[group.on]]
event = "question"
from = "server"
answer = [{ ok = "yes", n = "{{/n}}" }]
"#;
    let outcome = sio_run(4, group).await;
    let totals = &outcome.run.totals;
    assert_eq!(totals.error_total(), 0, "{:?}", totals.errors);
    assert_eq!(count(totals, &outcome.run.metric_names, "answered"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arriving_users_hold_the_expected_concurrency() {
    let dir = tempfile::tempdir().unwrap();
    // 40 users a second, each staying 1 s: 40 connected at any time once the first has left.
    let text = r#"
name = "arrivals"
target = "builtin"
duration = "4s"
drain = "200ms"

[[group]]
name = "visitors"
arrivals = "40/s"
lifetime = "1s"
emit = [{ event = "echo", data = { n = "{{seq}}" }, rate = "5/s" }]

[[expect]]
event = "echo"
from = "self"
"#;
    let outcome = common::run_in_process(dir.path(), text, Overrides::default()).await;
    let totals = &outcome.run.totals;
    assert_eq!(totals.error_total(), 0, "{:?}", totals.errors);
    assert_eq!(outcome.run.clients_planned, 160);
    assert_eq!(totals.connects, 160);
    // Each left saying goodbye.
    assert_eq!(
        totals.closes.get(&1000).copied(),
        Some(160),
        "{:?}",
        totals.closes
    );
    assert_eq!(totals.expects[0].lost, 0);
    let (header, rows) = common::read_csv(&outcome.dir.join("timeseries.csv"));
    let connected = header.iter().position(|h| h == "connected").unwrap();
    let time = header.iter().position(|h| h == "second").unwrap();
    let steady: Vec<f64> = rows
        .iter()
        .filter(|r| {
            let t: f64 = r[time].parse().unwrap();
            (2.0..=4.0).contains(&t)
        })
        .map(|r| r[connected].parse().unwrap())
        .collect();
    assert!(!steady.is_empty(), "{rows:?}");
    for n in &steady {
        assert!(
            (n - 40.0).abs() <= 2.0,
            "connected {n}, expected 40 ± 5 %: {steady:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arriving_listeners_are_due_only_what_was_sent_while_they_were_there() {
    let dir = tempfile::tempdir().unwrap();
    // Visitors join the room for half a second each while two talkers chat all along: nothing
    // sent after a visitor left may count as lost to it.
    let text = r#"
name = "visits"
target = "builtin"
protocol = "socketio"
duration = "3s"
ramp = "200ms"
drain = "500ms"

[[group]]
name = "talkers"
clients = 2
on_connect = [{ emit = "join", data = "room1" }]
emit = [{ event = "chat", data = { n = "{{seq}}" }, rate = "20/s" }]

[[group]]
name = "visitors"
arrivals = "20/s"
lifetime = "500ms"
on_connect = [{ emit = "join", data = "room1" }]

[[expect]]
event = "chat"
from = "talkers"
to = ["visitors"]
"#;
    let outcome = common::run_in_process(dir.path(), text, Overrides::default()).await;
    let totals = &outcome.run.totals;
    assert_eq!(totals.error_total(), 0, "{:?}", totals.errors);
    let chat = &totals.expects[0];
    assert!(chat.received > 500, "{chat:?}");
    assert_eq!(chat.lost, 0, "{chat:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_websocket_replies_answer_every_message_and_steps_end_with_the_run() {
    let dir = tempfile::tempdir().unwrap();
    // Every tick of the builtin ticker is answered; the watchers' long list of think times is
    // cut short when the run ends.
    let text = r#"
name = "replies"
target = "builtin"
path = "/ticker?every=20ms"
duration = "1s"
drain = "200ms"

[[group]]
name = "watchers"
clients = 5
on_connect = [{ wait = "200ms" }, { wait = "1h" }, { wait = "1h" }]

[[group.on]]
emit = "ack"
data = { seq = "{{/seq}}" }

[[expect]]
event = "tick"
from = "server"
seq = "/seq"
"#;
    let run = common::run_in_process(dir.path(), text, Overrides::default());
    let outcome = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the steps end with the run");
    let totals = &outcome.run.totals;
    assert_eq!(totals.error_total(), 0, "{:?}", totals.errors);
    let ticks = &totals.expects[0];
    assert!(ticks.received > 100, "{ticks:?}");
    // One reply per message, the ticks received before the handlers' first reply included.
    assert_eq!(totals.sent, totals.received, "{} sent", totals.sent);
}
