//! Against servers with known properties: a fixed 20 ms echo delay must read as 20 ms, and wss://
//! must work with a self-signed certificate and --insecure.

use crate::common;

use std::time::Duration;

use common::*;
use volley::scenario::Overrides;
use volley::serve::{self, ServeConfig};

#[tokio::test]
async fn a_20ms_delayed_echo_measures_20ms_at_the_median() {
    let server = serve::spawn(ServeConfig {
        delay: Some(Duration::from_millis(20)),
        ..ServeConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = echo_scenario(&server.url("/echo"), 20, "20/s", "2s");
    let outcome = run_in_process(dir.path(), &text, Overrides::default()).await;
    let h = &outcome.run.totals.histograms[1];
    assert!(h.len() >= 20 * 20 * 2, "echoes {}", h.len());
    let p50 = h.value_at_quantile(0.5);
    // The delay line is accurate to tens of µs; the rest is the loopback round trip itself, which
    // on an idle virtual machine is 0.3–1 ms (thread wake-ups on both sides, a debug build).
    assert!(
        (20_000..=22_000).contains(&p50),
        "echo p50 {p50} µs is not within 20 ms + 2 ms"
    );
    assert!(
        h.min() >= 20_000,
        "no echo can beat the delay: min {} µs",
        h.min()
    );
}

#[tokio::test]
async fn wss_with_a_self_signed_certificate_works_with_insecure() {
    let server = self_signed_server();
    let target = format!("wss://localhost:{}/echo", server.addr().port());
    let dir = tempfile::tempdir().unwrap();
    let text = echo_scenario(&target, 10, "10/s", "1s");
    // run_in_process sets insecure.
    let outcome = run_in_process(dir.path(), &text, Overrides::default()).await;
    let t = &outcome.run.totals;
    assert_eq!(t.connects, 10);
    assert!(t.sent > 0);
    assert_eq!(t.sent, t.received);
    assert_eq!(t.error_total(), 0);
    assert!(outcome.run.target_url.starts_with("wss://localhost:"));
}

#[tokio::test]
async fn wss_with_a_self_signed_certificate_is_refused_without_insecure() {
    let server = self_signed_server();
    let target = format!("wss://localhost:{}/echo", server.addr().port());
    let dir = tempfile::tempdir().unwrap();
    let path = write_scenario(dir.path(), &echo_scenario(&target, 2, "10/s", "1s"));
    let plan = volley::scenario::load(&path, &Overrides::default()).unwrap();
    let options = volley::runner::RunOptions {
        scenario_file: path,
        out: Some(dir.path().join("out")),
        quiet: true,
        ..Default::default()
    };
    let error = volley::runner::run(plan, options, std::future::pending())
        .await
        .err()
        .expect("an untrusted certificate stops the run before it starts");
    let message = error.to_string();
    assert!(
        message.contains("cannot reach wss://localhost"),
        "{message}"
    );
    assert!(message.to_lowercase().contains("certificate"), "{message}");
}
