//! A page visit in headless Chromium captured as a HAR 1.2 log, the file a user gets from
//! DevTools' "Export HAR": [`capture_har`] loads a page that plays a session by itself, waits for
//! its `window.sessionDone`, lets the network settle, fetches the response bodies and request
//! bodies DevTools would, and [`har_log`] (in `log`) turns the tab's Network events into the log.
//!
//! The log follows DevTools' own writer (front_end/models/har in devtools-frontend): headers
//! are those Chromium really sent and received (`requestWillBeSentExtraInfo`,
//! `responseReceivedExtraInfo`: Cookie, Set-Cookie, Host and Connection are only there),
//! `_resourceType` is Chromium's resource type in lower case, and a WebSocket is one entry (the
//! handshake, status 101) whose `_webSocketMessages` lists the data frames, each
//! `{type: "send"|"receive", time: <epoch seconds>, opcode, data}`. Chromium reports no
//! control frames (close, ping, pong) there, and a binary frame's `data` is base64.
//! Where this log knowingly differs from DevTools: a WebSocket's `wait` is its handshake and its
//! `receive` the connection's open life (DevTools counts up to the last frame), and an entry's
//! `receive` is never negative (Chromium's `loadingFinished` can be stamped before its
//! `responseReceived`).

mod log;

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::chromium::Browser;
pub use log::har_log;

/// How long a page may take to set `window.sessionDone`.
const SESSION_TIMEOUT: Duration = Duration::from_secs(20);
/// How long, after `sessionDone`, requests still loading and WebSockets still open may take to
/// end before the log is made anyway.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(3);

/// What a page visit gave.
pub struct HarVisit {
    /// The page's `window.sessionDone`.
    pub session_done: Value,
    /// The HAR: `{"log": {...}}`.
    pub har: Value,
    /// Console errors, uncaught exceptions and error log entries of the page.
    pub errors: Vec<String>,
}

/// The Network events of one tab, and what was fetched once the page was done.
pub struct NetworkCapture {
    /// The tab's events (Network and Page domains among others), in the order they came.
    pub events: Vec<Value>,
    /// `Network.getResponseBody` answers (`{body, base64Encoded}`) by request id.
    pub bodies: HashMap<String, Value>,
    /// `Network.getRequestPostData` answers, for requests whose body was not in their event.
    pub post_data: HashMap<String, String>,
    /// The browser's User-Agent, for the log's `creator`.
    pub user_agent: String,
}

/// Loads `url` in a fresh headless Chromium, waits for the page's `window.sessionDone`, and
/// returns it with the HAR of everything the tab did. Panics when the page sets no
/// `sessionDone` within 20 s.
pub async fn capture_har(url: &str) -> HarVisit {
    let mut browser = Browser::launch().await;
    let session = browser.open_tab(1280).await;
    browser.navigate(&session, url).await;
    let session_done = browser
        .evaluate(&session, &session_done_script(SESSION_TIMEOUT))
        .await;
    browser
        .read_events_until(SETTLE_TIMEOUT, |events| network_settled(events, &session))
        .await;
    let capture = fetch_bodies(&mut browser, &session).await;
    let errors = browser.errors_of(&session);
    browser.close().await;
    HarVisit {
        session_done,
        har: har_log(&capture),
        errors,
    }
}

/// A promise of `window.sessionDone`, rejected after `timeout`.
fn session_done_script(timeout: Duration) -> String {
    format!(
        "new Promise((resolve, reject) => {{ const start = Date.now(); (function poll() {{ \
         if (window.sessionDone) resolve(window.sessionDone); \
         else if (Date.now() - start > {}) reject(new Error('the page set no window.sessionDone')); \
         else setTimeout(poll, 50); }})(); }})",
        timeout.as_millis()
    )
}

/// Whether every request of the tab has finished or failed and every WebSocket has closed.
fn network_settled(events: &[Value], session: &str) -> bool {
    let mut open: HashMap<&str, bool> = HashMap::new();
    for event in events.iter().filter(|e| e["sessionId"] == session) {
        let id = event["params"]["requestId"].as_str().unwrap_or("");
        match event["method"].as_str().unwrap_or("") {
            "Network.requestWillBeSent" | "Network.webSocketCreated" => {
                open.insert(id, true);
            }
            "Network.loadingFinished" | "Network.loadingFailed" | "Network.webSocketClosed" => {
                open.insert(id, false);
            }
            _ => {}
        }
    }
    !open.values().any(|&o| o)
}

/// The tab's events, with the response bodies of finished requests and the request bodies
/// Chromium left out of its events.
async fn fetch_bodies(browser: &mut Browser, session: &str) -> NetworkCapture {
    let events: Vec<Value> = browser.events_of(session).cloned().collect();
    let mut bodies = HashMap::new();
    let mut post_data = HashMap::new();
    for event in &events {
        let p = &event["params"];
        let id = p["requestId"].as_str().unwrap_or("").to_string();
        let params = json!({ "requestId": id });
        match event["method"].as_str().unwrap_or("") {
            "Network.loadingFinished" => {
                // A body Chromium no longer keeps is left out, as DevTools does.
                let body = browser
                    .try_call(Some(session), "Network.getResponseBody", params)
                    .await;
                if let Ok(body) = body {
                    bodies.insert(id, body);
                }
            }
            "Network.requestWillBeSent"
                if p["request"]["hasPostData"] == true && p["request"]["postData"].is_null() =>
            {
                let data = browser
                    .try_call(Some(session), "Network.getRequestPostData", params)
                    .await;
                if let Ok(data) = data {
                    let text = data["postData"].as_str().unwrap_or("").to_string();
                    post_data.insert(id, text);
                }
            }
            _ => {}
        }
    }
    let version = browser.call(None, "Browser.getVersion", json!({})).await;
    NetworkCapture {
        events,
        bodies,
        post_data,
        user_agent: version["userAgent"].as_str().unwrap_or("").to_string(),
    }
}

/// The current time as epoch seconds (for tests comparing a log's times with the clock).
pub fn now_epoch_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}
