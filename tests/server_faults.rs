//! Servers that misbehave mid-run: every failure becomes a counted error kind in errors.csv and the
//! run goes on to write its results.

use crate::common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use volley::metrics::ErrorKind;
use volley::scenario::Overrides;

#[derive(Clone, Copy)]
enum Fault {
    /// Answers the upgrade with HTTP 503.
    Reject503,
    /// Upgrades, reads one message, closes with 1011.
    Close1011,
    /// Upgrades, reads one message, resets the TCP connection.
    Reset,
    /// Accepts TCP and never answers the upgrade.
    Silent,
    /// Upgrades, then never reads again.
    StopReading,
    /// Upgrades, then reads one message every 2 ms and never answers.
    SlowReader,
    /// Upgrades, echoes five messages, then closes with 1001 (going away).
    EchoFiveThenGoAway,
    /// Upgrades, then reads and ignores everything: a close frame is never answered.
    NeverAnswersClose,
}

/// A test server with one fault; runs until the test ends.
async fn faulty_server(fault: Fault) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                match fault {
                    Fault::Reject503 => {
                        let mut buf = [0u8; 2048];
                        let _ = tcp.read(&mut buf).await;
                        let _ = tcp
                            .write_all(
                                b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n",
                            )
                            .await;
                    }
                    Fault::Close1011 => {
                        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
                        let _ = ws.next().await;
                        let frame = CloseFrame {
                            code: CloseCode::Error,
                            reason: "boom".into(),
                        };
                        let _ = ws.send(Message::Close(Some(frame))).await;
                        while let Some(Ok(_)) = ws.next().await {}
                    }
                    Fault::Reset => {
                        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
                        let _ = ws.next().await;
                        // Linger 0: closing the socket sends RST instead of FIN.
                        #[allow(deprecated)]
                        ws.get_ref().set_linger(Some(Duration::ZERO)).unwrap();
                        drop(ws);
                    }
                    Fault::Silent => {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        drop(tcp);
                    }
                    Fault::SlowReader => {
                        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
                        while let Some(Ok(_)) = ws.next().await {
                            tokio::time::sleep(Duration::from_millis(2)).await;
                        }
                    }
                    Fault::EchoFiveThenGoAway => {
                        // volley's reachability check opens and closes a bare TCP connection.
                        let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                            return;
                        };
                        for _ in 0..5 {
                            let Some(Ok(message)) = ws.next().await else {
                                return;
                            };
                            let _ = ws.send(message).await;
                        }
                        let frame = CloseFrame {
                            code: CloseCode::Away,
                            reason: "restarting".into(),
                        };
                        let _ = ws.send(Message::Close(Some(frame))).await;
                        while let Some(Ok(_)) = ws.next().await {}
                    }
                    Fault::NeverAnswersClose => {
                        let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
                            return;
                        };
                        let mut tcp = ws.into_inner();
                        let mut buf = [0u8; 1024];
                        while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
                    }
                    Fault::StopReading => {
                        let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        drop(ws);
                    }
                }
            });
        }
    });
    format!("ws://{addr}/echo")
}

async fn run_against(fault: Fault) -> (volley::runner::RunOutcome, tempfile::TempDir) {
    let target = faulty_server(fault).await;
    let dir = tempfile::tempdir().unwrap();
    let text = echo_scenario(&target, 4, "10/s", "1s");
    let outcome = run_in_process(dir.path(), &text, Overrides::default()).await;
    (outcome, dir)
}

fn error_rows(outcome: &volley::runner::RunOutcome, kind: ErrorKind) -> usize {
    let (_, rows) = read_csv(&outcome.dir.join("errors.csv"));
    rows.iter().filter(|r| r[3] == kind.as_str()).count()
}

#[tokio::test]
async fn rejected_upgrades_are_counted_with_their_status() {
    let (outcome, _dir) = run_against(Fault::Reject503).await;
    let t = &outcome.run.totals;
    assert_eq!(t.errors[ErrorKind::UpgradeRejected.index()], 4);
    assert_eq!(t.connect_failures, 4);
    assert_eq!(error_rows(&outcome, ErrorKind::UpgradeRejected), 4);
    let (_, rows) = read_csv(&outcome.dir.join("errors.csv"));
    assert!(rows[0][4].contains("503"), "{:?}", rows[0]);
}

#[tokio::test]
async fn server_close_codes_are_counted() {
    let (outcome, _dir) = run_against(Fault::Close1011).await;
    let t = &outcome.run.totals;
    assert_eq!(t.connects, 4);
    assert_eq!(t.errors[ErrorKind::ClosedByServer.index()], 4);
    assert_eq!(t.closes.get(&1011), Some(&4));
    let (_, rows) = read_csv(&outcome.dir.join("errors.csv"));
    assert!(rows.iter().all(|r| r[4] == "1011 boom"), "{rows:?}");
    assert!(
        outcome.run.totals.expects[0].lost >= 4,
        "the unanswered echoes are lost"
    );
}

#[tokio::test]
async fn resets_are_counted() {
    let (outcome, _dir) = run_against(Fault::Reset).await;
    let t = &outcome.run.totals;
    let ended = t.errors[ErrorKind::Reset.index()] + t.errors[ErrorKind::ConnectionLost.index()];
    assert_eq!(ended, 4, "errors {:?}", t.errors);
    assert_eq!(t.closes.get(&1006), Some(&4));
}

#[tokio::test]
async fn a_silent_server_times_out_the_connect() {
    let (outcome, _dir) = run_against(Fault::Silent).await;
    let t = &outcome.run.totals;
    assert_eq!(t.errors[ErrorKind::ConnectTimeout.index()], 4);
    assert_eq!(error_rows(&outcome, ErrorKind::ConnectTimeout), 4);
}

#[tokio::test]
async fn a_server_that_stops_reading_is_a_write_stall() {
    // 64 KiB events at 200/s fill the loopback socket buffers within a second or two; after
    // connect_timeout (2 s) of blocked writes the connection counts as stalled.
    let (outcome, _dir) = run_big_events(Fault::StopReading, 64 * 1024, 2, "200/s", "8s").await;
    let t = &outcome.run.totals;
    assert_eq!(
        t.errors[ErrorKind::WriteStalled.index()],
        2,
        "errors {:?}",
        t.errors
    );
    assert_eq!(error_rows(&outcome, ErrorKind::WriteStalled), 2);
    assert_eq!(t.expects[0].lost, t.expects[0].sent, "nothing came back");
}

#[tokio::test]
async fn a_slow_reader_is_not_a_stall_and_the_whole_schedule_is_sent() {
    // 16 KiB events at 500/s for 2 s: the server takes ~4 s to read them, so writes block again
    // and again for longer than connect_timeout (2 s) in total, but never without progress.
    let (outcome, _dir) = run_big_events(Fault::SlowReader, 16 * 1024, 1, "500/s", "2s").await;
    let t = &outcome.run.totals;
    assert_eq!(
        t.errors[ErrorKind::WriteStalled.index()],
        0,
        "errors {:?}",
        t.errors
    );
    // Every event scheduled before the end went out, the backlog included: 2.2 s × 500/s.
    assert!(t.sent >= 1000, "sent {}", t.sent);
    assert_eq!(t.expects[0].lost, t.sent, "nothing came back");
}

/// Runs clients sending `size`-byte text events against a faulty server.
async fn run_big_events(
    fault: Fault,
    size: usize,
    clients: u64,
    rate: &str,
    duration: &str,
) -> (volley::runner::RunOutcome, tempfile::TempDir) {
    let target = faulty_server(fault).await;
    let dir = tempfile::tempdir().unwrap();
    let text = echo_scenario(&target, clients, rate, duration).replace(
        "data = { text = \"hi {{client}}\", n = \"{{seq}}\" }",
        &format!("data = \"{}\"", "x".repeat(size)),
    );
    let outcome = run_in_process(dir.path(), &text, Overrides::default()).await;
    (outcome, dir)
}

#[tokio::test]
async fn raw_websocket_clients_reconnect_with_backoff() {
    let target = faulty_server(Fault::EchoFiveThenGoAway).await;
    let dir = tempfile::tempdir().unwrap();
    // 20 echoes/s for 2 s: every connection is closed after five echoes (~250 ms), so each client
    // goes through several reconnects, each after a 50-100 ms backoff.
    let text = echo_scenario(&target, 2, "20/s", "2s").replace(
        "[[expect]]",
        "[reconnect]\nbackoff = \"50ms..100ms\"\njitter = 0.0\n\n[[expect]]",
    );
    let outcome = run_in_process(dir.path(), &text, Overrides::default()).await;
    let t = &outcome.run.totals;
    assert!(t.reconnects >= 2 * 4, "reconnects {}", t.reconnects);
    assert_eq!(t.connects, 2 + t.reconnects);
    assert_eq!(t.recovered, 0, "raw WebSocket has no recovery");
    assert_eq!(t.errors[ErrorKind::ClosedByServer.index()], t.closes[&1001]);
    assert!(t.closes[&1001] >= t.reconnects);
    let names = &outcome.run.metric_names;
    let reconnect = names.iter().position(|m| m == "reconnect").unwrap();
    assert_eq!(t.histograms[reconnect].len(), t.reconnects);
    // Each reconnect waited its backoff: 50 ms, then 100 ms (the factor 2 is capped at 100 ms).
    assert!(
        t.histograms[reconnect].min() >= 49_000,
        "{}",
        t.histograms[reconnect].min()
    );
    // Every connection the server closed had five echoes back first.
    assert!(
        t.expects[0].received >= 5 * t.closes[&1001],
        "{:?}",
        t.expects[0]
    );
}

/// A close the server never answers counts as 1006 after the close timeout (2 s). A worker keeps
/// 256 closes in flight and the others wait their turn; once one goes unanswered, the rest go at
/// once: the end of the run takes about two close timeouts, not one per turn (800 clients a
/// worker would be four turns, 8 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_closes_end_the_run_in_two_close_timeouts_not_one_per_turn() {
    let target = faulty_server(Fault::NeverAnswersClose).await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "name = \"mute\"\ntarget = \"{target}\"\nduration = \"1s\"\nramp = \"5000/s\"\ndrain = \"1s\"\n\n\
         [[group]]\nname = \"idle\"\nclients = 1600\n"
    );
    let outcome = run_in_process(dir.path(), &text, Overrides::default()).await;
    let t = &outcome.run.totals;
    assert_eq!(t.connects, 1600);
    assert_eq!(t.closes.get(&1006), Some(&1600), "{:?}", t.closes);
    assert_eq!(t.error_total(), 0, "an unanswered close is not an error");
    // Emitting ends at 0.32 s + 1 s; two close timeouts later, with room for a slow machine.
    let elapsed = outcome.run.elapsed.as_secs_f64();
    assert!(elapsed < 1.32 + 3.0 * 2.0, "the run took {elapsed:.1} s");
}
