//! Headless Chromium (Debian's `chromium` package, installed by scripts/test.sh) driven over the
//! Chrome DevTools Protocol: open a local page, collect its console errors and the URLs it asked
//! for, evaluate a script in it, and take a full-page screenshot. [`Browser`] is the connection
//! itself, for helpers that need the events of a visit (`har` builds a HAR from them).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Startup, page load and each command: generous, for a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(60);

/// What a page showed.
pub struct PageVisit {
    /// Console errors, uncaught exceptions and error log entries.
    pub errors: Vec<String>,
    /// Every URL the page requested (the page itself included).
    pub requests: Vec<String>,
    /// The script's value.
    pub value: Value,
    /// A PNG of the whole page.
    pub screenshot: Vec<u8>,
}

/// Opens `page` in a fresh headless Chromium `width` CSS pixels wide, evaluates `script` once the
/// page has loaded, and takes a screenshot. Panics, saying to run scripts/test.sh, when Chromium is
/// not installed.
pub async fn visit(page: &Path, width: u32, script: &str) -> PageVisit {
    visit_url(&file_url(page), width, script).await
}

/// [`visit`] for a page served at `url`. A script that gives a promise is waited for.
pub async fn visit_url(url: &str, width: u32, script: &str) -> PageVisit {
    let mut browser = Browser::launch().await;
    let visit = browser.visit(url, width, script).await;
    browser.close().await;
    visit
}

/// A headless Chromium with a fresh profile, and the DevTools connection to it. Dropping it kills
/// the browser (by its PID); [`Browser::close`] asks it to quit first.
pub struct Browser {
    child: Child,
    ws: WebSocketStream<TcpStream>,
    next_id: u64,
    /// Events read while waiting for answers, in the order they came.
    events: Vec<Value>,
    /// The profile folder, removed once the browser is gone.
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium. Panics, saying to run scripts/test.sh, when it is not installed.
    pub async fn launch() -> Browser {
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} not found: run scripts/test.sh, which installs Debian's chromium package \
             (apt-get install -y --no-install-recommends chromium) for the report tests"
        );
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMIUM}: {e}"));
        // Chromium prints its DevTools address on stderr; the thread then keeps the pipe drained.
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(url.trim().to_string());
                    }
                }
            }
        });
        let url = match rx.recv_timeout(WAIT) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("{CHROMIUM} did not print its DevTools address within {WAIT:?}");
            }
        };
        let authority = url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("unexpected DevTools address {url}"))
            .to_string();
        let stream = TcpStream::connect(&authority).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(url.as_str(), stream)
            .await
            .unwrap_or_else(|e| panic!("cannot open the DevTools WebSocket {url}: {e}"));
        Browser {
            child,
            ws,
            next_id: 0,
            events: Vec::new(),
            _profile: profile,
        }
    }

    /// Sends a command (to a page's session when given) and waits for its answer. Panics when
    /// Chromium answers with an error.
    pub async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.try_call(session, method, params)
            .await
            .unwrap_or_else(|error| panic!("DevTools {method} failed: {error}"))
    }

    /// [`Browser::call`] for a command that may fail (a response body Chromium no longer has):
    /// the error object when it does.
    pub async fn try_call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.ws
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
        loop {
            let message = self.read(method).await;
            if message["id"] == json!(id) {
                if let Some(error) = message.get("error") {
                    return Err(error.clone());
                }
                return Ok(message["result"].clone());
            }
            self.events.push(message);
        }
    }

    async fn read(&mut self, waiting_for: &str) -> Value {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no answer from Chromium to {waiting_for} in {WAIT:?}"))
                .unwrap_or_else(|| panic!("Chromium closed the DevTools connection"))
                .unwrap();
            if let Message::Text(text) = frame {
                return serde_json::from_str(text.as_str()).unwrap();
            }
        }
    }

    /// Reads events until `settled` holds for those read so far (all of them, every session's),
    /// or until `timeout`: whether it held.
    pub async fn read_events_until(
        &mut self,
        timeout: Duration,
        mut settled: impl FnMut(&[Value]) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !settled(&self.events) {
            let next = tokio::time::timeout_at(deadline, self.ws.next()).await;
            match next {
                Err(_) => return false,
                Ok(Some(Ok(Message::Text(text)))) => self
                    .events
                    .push(serde_json::from_str(text.as_str()).unwrap()),
                Ok(Some(Ok(_))) => {}
                Ok(None) | Ok(Some(Err(_))) => panic!("Chromium closed the DevTools connection"),
            }
        }
        true
    }

    /// The events of one page's session read so far, in order.
    pub fn events_of<'a>(&'a self, session: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.events
            .iter()
            .filter(move |e| e["sessionId"].as_str() == Some(session))
    }

    /// Opens a tab `width` CSS pixels wide with the Page, Runtime, Log and Network domains
    /// enabled (so every request from then on is reported), and returns its session id.
    pub async fn open_tab(&mut self, width: u32) -> String {
        let target = self
            .call(None, "Target.createTarget", json!({ "url": "about:blank" }))
            .await;
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target["targetId"], "flatten": true }),
            )
            .await;
        let session = attached["sessionId"].as_str().unwrap().to_string();
        let s = Some(session.as_str());
        for domain in [
            "Page.enable",
            "Runtime.enable",
            "Log.enable",
            "Network.enable",
        ] {
            self.call(s, domain, json!({})).await;
        }
        self.call(
            s,
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": 900, "deviceScaleFactor": 1, "mobile": false }),
        )
        .await;
        session
    }

    /// Loads `url` in the tab and waits for its load event.
    pub async fn navigate(&mut self, session: &str, url: &str) {
        self.call(Some(session), "Page.navigate", json!({ "url": url }))
            .await;
        self.wait_for(session, "Page.loadEventFired").await;
    }

    /// The value of `script` in the tab; a promise is waited for. Panics when it throws.
    pub async fn evaluate(&mut self, session: &str, script: &str) -> Value {
        let evaluated = self
            .call(
                Some(session),
                "Runtime.evaluate",
                json!({ "expression": script, "returnByValue": true, "awaitPromise": true }),
            )
            .await;
        if let Some(exception) = evaluated.get("exceptionDetails") {
            panic!("the script failed: {exception}");
        }
        evaluated["result"]["value"].clone()
    }

    /// Console errors, uncaught exceptions and error log entries of the tab so far.
    pub fn errors_of(&self, session: &str) -> Vec<String> {
        let mut errors = Vec::new();
        for event in self.events_of(session) {
            let p = &event["params"];
            match event["method"].as_str().unwrap_or("") {
                "Runtime.consoleAPICalled" if p["type"] == "error" || p["type"] == "assert" => {
                    errors.push(format!("console.{}: {}", p["type"], p["args"]));
                }
                "Runtime.exceptionThrown" => {
                    errors.push(format!("exception: {}", p["exceptionDetails"]))
                }
                "Log.entryAdded" if p["entry"]["level"] == "error" => {
                    errors.push(format!("log: {}", p["entry"]["text"]));
                }
                _ => {}
            }
        }
        errors
    }

    /// Waits for an event of the page's session.
    async fn wait_for(&mut self, session: &str, method: &str) {
        let seen = |e: &Value| e["method"] == json!(method) && e["sessionId"] == json!(session);
        if self.events.iter().any(seen) {
            return;
        }
        loop {
            let message = self.read(method).await;
            let done = seen(&message);
            self.events.push(message);
            if done {
                return;
            }
        }
    }

    async fn visit(&mut self, url: &str, width: u32, script: &str) -> PageVisit {
        let session = self.open_tab(width).await;
        let s = Some(session.as_str());
        self.navigate(&session, url).await;
        let value = self.evaluate(&session, script).await;
        let metrics = self.call(s, "Page.getLayoutMetrics", json!({})).await;
        let size = &metrics["cssContentSize"];
        let shot = self
            .call(
                s,
                "Page.captureScreenshot",
                json!({
                    "format": "png",
                    "captureBeyondViewport": true,
                    "clip": { "x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1 },
                }),
            )
            .await;
        let screenshot = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            shot["data"].as_str().unwrap(),
        )
        .unwrap();

        let requests = self
            .events_of(&session)
            .filter(|e| e["method"] == "Network.requestWillBeSent")
            .map(|e| {
                e["params"]["request"]["url"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        PageVisit {
            errors: self.errors_of(&session),
            requests,
            value,
            screenshot,
        }
    }

    /// Asks Chromium to quit, and kills it when it has not after 5 s.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            self.next_id += 1;
            let message = json!({ "id": self.next_id, "method": "Browser.close" });
            let _ = self
                .ws
                .send(Message::Text(message.to_string().into()))
                .await;
        })
        .await;
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A failed assertion must not leave the browser running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn file_url(path: &Path) -> String {
    let absolute: PathBuf = std::fs::canonicalize(path).unwrap();
    format!("file://{}", absolute.display())
}

/// A PNG's width and height, read from its IHDR chunk.
pub fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(
        png.len() > 24 && png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "not a PNG"
    );
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}
