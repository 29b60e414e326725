//! Real users' sessions for the `volley record` tests: the two apps of tests/servers/socketio
//! whose test page plays one user's session by itself (chat-room.js over Socket.IO, raw-feed.js
//! over a raw WebSocket), their `/stats`, and a page visit captured through `volley inspect
//! --jsonl` (the HAR of a visit is `har::capture_har`). With `VOLLEY_RECORD_SAMPLES=DIR` set,
//! [`keep_sample`] also writes the captures into DIR for people working on the recorder.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::har::{HarVisit, capture_har};
use super::inspect::InspectBinary;
use super::node::NodeServer;
use super::prometheus;

/// One of the two apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum App {
    /// chat-room.js: login, Socket.IO (polling, then WebSocket), join, 5 chats, pings.
    ChatRoom,
    /// raw-feed.js: login, a raw WebSocket of JSON messages, subscribe, ticks, pings, 5 echoes.
    RawFeed,
}

impl App {
    pub fn script(self) -> &'static str {
        match self {
            App::ChatRoom => "chat-room.js",
            App::RawFeed => "raw-feed.js",
        }
    }

    /// The short name of its sample files (`chat.har`, `feed.jsonl`).
    pub fn sample_name(self) -> &'static str {
        match self {
            App::ChatRoom => "chat",
            App::RawFeed => "feed",
        }
    }
}

/// A running app (a child process, killed when dropped).
pub struct AppServer {
    pub app: App,
    pub node: NodeServer,
}

impl AppServer {
    /// Starts the app on a free port with extra arguments (`["--ping-every", "200"]`).
    pub fn start(app: App, args: &[&str]) -> AppServer {
        AppServer {
            app,
            node: NodeServer::start_script(app.script(), args),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        self.node.url()
    }

    /// The test page: `http://127.0.0.1:PORT/`.
    pub fn page_url(&self) -> String {
        format!("{}/", self.node.url())
    }

    /// `GET /stats`, parsed.
    pub fn stats(&self) -> Value {
        let (status, body) = prometheus::get(self.node.port(), "/stats")
            .unwrap_or_else(|| panic!("{} did not answer GET /stats", self.app.script()));
        assert_eq!(status, 200, "GET /stats: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// `/stats` once `settled` holds for it (the page's disconnect processed, say), polled every
    /// 50 ms; panics with the last stats after 5 s.
    pub fn stats_when(&self, what: &str, settled: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let stats = self.stats();
            if settled(&stats) {
                return stats;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {what} not seen in 5 s: {stats}",
                self.app.script()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A page visit through `volley inspect`.
pub struct JsonlVisit {
    /// The visit itself, as Chromium saw it (its URLs are the inspector's).
    pub visit: HarVisit,
    /// The inspector's JSONL records.
    pub records: Vec<Value>,
    /// The JSONL file.
    pub jsonl: PathBuf,
    /// What `volley inspect` printed on stderr (its address, then its summary).
    pub summary: String,
}

/// Starts `volley inspect --jsonl DIR/<app>.jsonl` (the binary, with `extra` flags such as
/// `--show-secrets`) in front of `server`, visits the page through it in Chromium, so that the
/// page, the login and the Socket.IO or WebSocket traffic all cross it, and stops it once the
/// browser is gone.
pub async fn capture_jsonl(server: &AppServer, dir: &Path, extra: &[&str]) -> JsonlVisit {
    let jsonl = dir.join(format!("{}.jsonl", server.app.sample_name()));
    let inspector = InspectBinary::start(&server.url(), &jsonl, extra);
    let visit = capture_har(&format!("{}/", inspector.url())).await;
    let (records, summary) = tokio::task::spawn_blocking(move || {
        // The browser has quit, so every connection is closing: their close records come soon.
        inspector.stop(Duration::from_secs(5))
    })
    .await
    .unwrap();
    JsonlVisit {
        visit,
        records,
        jsonl,
        summary,
    }
}

/// With `VOLLEY_RECORD_SAMPLES=DIR` set, writes `contents` to `DIR/file_name` (creating DIR),
/// for the people working on `volley record`; does nothing otherwise.
pub fn keep_sample(file_name: &str, contents: &[u8]) {
    let Some(dir) = std::env::var_os("VOLLEY_RECORD_SAMPLES") else {
        return;
    };
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(file_name), contents).unwrap();
}
