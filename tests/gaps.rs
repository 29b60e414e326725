//! The delivery tracker against a known truth: the builtin server, in-process on 127.0.0.1, drops,
//! duplicates or reorders fan-out deliveries by a fixed rule (`--drop-every N` and friends), and
//! the counts volley reports must equal the injected faults exactly; with no faults, every count is
//! zero.

use crate::common;

use std::path::Path;

use common::{read_csv, run_in_process, summary_count};
use volley::scenario::Overrides;
use volley::serve::{self, Faults, ServeConfig};

/// One talker waits until the listeners are in the room, then chats; everybody (the talker too)
/// must get every message.
fn fanout_scenario(
    target: &str,
    protocol: &str,
    listeners: u64,
    rate: &str,
    duration: &str,
) -> String {
    let (path, join) = match protocol {
        "ws" => ("path = \"/broadcast?room=r\"", ""),
        _ => ("", "{ emit = \"join\", data = \"r\" }, "),
    };
    format!(
        r#"
name = "gaps"
target = "{target}"
protocol = "{protocol}"
{path}
duration = "{duration}"
drain = "1s"
connect_timeout = "5s"

[[group]]
name = "listeners"
clients = {listeners}
on_connect = [{join}{{ wait = "10ms" }}]

[[group]]
name = "talker"
clients = 1
on_connect = [{join}{{ wait = "300ms" }}]
emit = [{{ event = "chat", data = {{ n = "{{{{seq}}}}" }}, rate = "{rate}" }}]

[[expect]]
name = "fanout"
event = "chat"
from = "talker"
to = ["listeners", "talker"]
"#
    )
}

fn count(dir: &Path, name: &str) -> u64 {
    summary_count(&dir.join("out"), name)
}

struct Counts {
    sent: u64,
    received: u64,
    lost: u64,
    duplicate: u64,
    reorder: u64,
    gap: u64,
}

async fn run_with_faults(protocol: &str, faults: Faults) -> (Counts, tempfile::TempDir) {
    let server = serve::spawn(ServeConfig {
        faults,
        ..ServeConfig::default()
    })
    .unwrap();
    let target = match protocol {
        "ws" => server.url(""),
        _ => format!("http://{}", server.addr()),
    };
    let dir = tempfile::tempdir().unwrap();
    let text = fanout_scenario(&target, protocol, 5, "50/s", "1s");
    run_in_process(dir.path(), &text, Overrides::default()).await;
    server.stop();
    let d = dir.path();
    let counts = Counts {
        sent: count(d, "fanout.sent"),
        received: count(d, "fanout.received"),
        lost: count(d, "fanout.lost"),
        duplicate: count(d, "fanout.duplicate"),
        reorder: count(d, "fanout.reorder"),
        gap: count(d, "fanout.gap"),
    };
    assert_eq!(count(d, "errors"), 0);
    assert!(counts.sent >= 30, "sent {}", counts.sent);
    (counts, dir)
}

/// Six receivers (five listeners and the talker) of one stream each.
const RECEIVERS: u64 = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_drops_are_counted_exactly() {
    for protocol in ["ws", "socketio"] {
        let faults = Faults {
            drop_every: Some(3),
            ..Faults::default()
        };
        let (c, dir) = run_with_faults(protocol, faults).await;
        // Every third delivery of every stream was dropped, the last one too when it fell on a
        // multiple of three (found at the end, from what the talker sent).
        let dropped = RECEIVERS * (c.sent / 3);
        assert_eq!(c.lost, dropped, "{protocol}");
        assert_eq!(c.received, RECEIVERS * c.sent - dropped, "{protocol}");
        assert_eq!((c.duplicate, c.reorder), (0, 0), "{protocol}");
        let tail = if c.sent % 3 == 0 { RECEIVERS } else { 0 };
        assert_eq!(c.gap + tail, dropped, "{protocol}: gaps noticed plus tails");
        // Each gap row names the missing number: seq 2, 5, 8 ... (deliveries 3, 6, 9 ...).
        let (_, rows) = read_csv(&dir.path().join("out/gaps.csv"));
        for row in rows.iter().filter(|r| r[7] == "gap") {
            let expected: u64 = row[4].parse().unwrap();
            assert_eq!(
                (expected % 3, row[6].as_str()),
                (2, "1"),
                "{protocol}: {row:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_duplicates_are_counted_exactly() {
    for protocol in ["ws", "socketio"] {
        let faults = Faults {
            dup_every: Some(4),
            ..Faults::default()
        };
        let (c, _dir) = run_with_faults(protocol, faults).await;
        assert_eq!(c.duplicate, RECEIVERS * (c.sent / 4), "{protocol}");
        assert_eq!(c.received, RECEIVERS * c.sent, "{protocol}");
        assert_eq!((c.lost, c.reorder, c.gap), (0, 0, 0), "{protocol}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_reorders_are_counted_exactly() {
    for protocol in ["ws", "socketio"] {
        let faults = Faults {
            reorder_every: Some(5),
            ..Faults::default()
        };
        let (c, _dir) = run_with_faults(protocol, faults).await;
        // Delivery 5k comes after 5k+1; a held last delivery is never sent (lost at the end).
        let held_last = u64::from(c.sent % 5 == 0);
        assert_eq!(
            c.reorder,
            RECEIVERS * (c.sent / 5 - held_last),
            "{protocol}"
        );
        assert_eq!(c.gap, c.reorder, "{protocol}: each reorder was first a gap");
        assert_eq!(c.lost, RECEIVERS * held_last, "{protocol}");
        assert_eq!(c.duplicate, 0, "{protocol}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_ticks_are_server_stream_gaps() {
    let server = serve::spawn(ServeConfig {
        faults: Faults {
            drop_every: Some(4),
            ..Faults::default()
        },
        ..ServeConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
name = "ticks"
target = "{}"
duration = "1s"
drain = "200ms"

[[group]]
name = "watchers"
clients = 4

[[expect]]
name = "ticks"
event = "tick"
from = "server"
seq = "/seq"
timestamp = "/ts"
"#,
        server.url("/ticker?every=10ms")
    );
    run_in_process(dir.path(), &text, Overrides::default()).await;
    server.stop();
    let d = dir.path();
    let (_, rows) = read_csv(&d.join("out/gaps.csv"));
    let gaps: Vec<_> = rows.iter().filter(|r| r[7] == "gap").collect();
    // Ticks carry seq = delivery - 1: every fourth delivery dropped is seq 3, 7, 11 ...
    assert!(gaps.len() >= 4 * 20, "{}", gaps.len());
    for row in &gaps {
        let expected: u64 = row[4].parse().unwrap();
        assert_eq!(
            (expected % 4, row[6].as_str(), row[3].as_str()),
            (3, "1", "server")
        );
    }
    // A server stream has no known end: only the gaps are lost.
    assert_eq!(count(d, "ticks.lost"), gaps.len() as u64);
    assert_eq!(count(d, "ticks.gap"), gaps.len() as u64);
    assert_eq!(count(d, "ticks.duplicate") + count(d, "ticks.reorder"), 0);
    assert!(
        count(d, "ticks") > 0,
        "one-way latencies from the server's timestamps"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_faults_a_million_deliveries_have_nothing_missing() {
    let dir = tempfile::tempdir().unwrap();
    // 300 receivers of one talker at 400/s for 11 s: over 4,000 messages, 1.2 million deliveries.
    let text = fanout_scenario("builtin", "ws", 299, "400/s", "11s");
    // 120,000 deliveries a second is more than a debug build keeps up with on a busy 2-core
    // machine: a longer drain lets a backlog arrive rather than count as lost.
    let text = text.replace("drain = \"1s\"", "drain = \"5s\"");
    run_in_process(dir.path(), &text, Overrides::default()).await;
    let d = dir.path();
    let received = count(d, "fanout.received");
    assert!(received >= 1_000_000, "{received}");
    // Listeners that connected after the talker started are tracked from their first delivery.
    assert!(
        received * 100 >= 99 * 250 * count(d, "fanout.sent"),
        "{received}"
    );
    for kind in ["lost", "duplicate", "reorder", "gap"] {
        assert_eq!(count(d, &format!("fanout.{kind}")), 0, "{kind}");
    }
    assert_eq!(count(d, "errors"), 0);
}
