//! `volley record`: captures turned into scenarios. A real browser's session (Chromium, the npm
//! socket.io client, the test apps of tests/servers/socketio) recorded from its HAR replays with
//! many users, and the apps' own counts show each did what the browser did. Bad captures (empty, malformed, cut short,
//! with no conversation or several) are refused with the entry or line, exit 2, and nothing is
//! written.

use std::path::Path;

use predicates::prelude::*;
use serde_json::{Value, json};

use crate::common;
use common::har::capture_har;
use common::session_capture::{App, AppServer, capture_jsonl};

fn volley() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("volley").unwrap()
}

/// A small HAR: a login and a raw WebSocket that subscribes and answers a ping.
fn small_har() -> String {
    let t0 = 1_796_644_800.0_f64;
    serde_json::to_string_pretty(&json!({"log": {"version": "1.2", "creator": {"name": "test", "version": "1"}, "entries": [
        {"startedDateTime": "2026-12-07T12:00:00.050Z", "time": 3.0, "_resourceType": "fetch",
         "request": {"method": "POST", "url": "http://127.0.0.1:4000/login", "headers": [],
            "postData": {"mimeType": "application/json", "text": r#"{"user":"user0","password":"pw0"}"#}},
         "response": {"status": 200, "headers": [], "content": {"mimeType": "application/json",
            "text": r#"{"token":"tok-0123456789abcdef"}"#}}},
        {"startedDateTime": "2026-12-07T12:00:00.100Z", "time": 1000.0, "_resourceType": "websocket",
         "request": {"method": "GET", "url": "ws://127.0.0.1:4000/feed?token=tok-0123456789abcdef", "headers": []},
         "response": {"status": 101, "headers": [], "content": {"mimeType": "", "text": ""}},
         "_webSocketMessages": [
            {"type": "send", "time": t0 + 0.2, "opcode": 1, "data": r#"{"type":"subscribe","topic":"prices"}"#},
            {"type": "receive", "time": t0 + 0.5, "opcode": 1, "data": r#"{"type":"ping","id":1}"#},
            {"type": "send", "time": t0 + 0.501, "opcode": 1, "data": r#"{"type":"pong","id":1}"#}
         ]}
    ]}}))
    .unwrap()
}

/// Runs `volley record FILE -o out.toml` in `dir` and checks it is refused with exit 2 and a
/// message holding `says`, writing nothing.
fn refused(dir: &Path, file: &str, says: &str) {
    let out = volley()
        .current_dir(dir)
        .args(["record", file, "-o", "out.toml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(says));
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains(file), "the error names the file: {stderr}");
    assert!(!dir.join("out.toml").exists(), "{file}: nothing is written");
}

#[test]
fn a_small_har_becomes_a_scenario_that_validates() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.har"), small_har()).unwrap();
    volley()
        .current_dir(dir.path())
        .args(["record", "s.har"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "wrote s.toml and its data file s.users.csv",
        ));
    let scenario = std::fs::read_to_string(dir.path().join("s.toml")).unwrap();
    assert!(
        scenario.contains(r#"path = "/feed?token={{token}}""#),
        "{scenario}"
    );
    assert!(
        !scenario.contains("tok-0123456789abcdef"),
        "no token is written: {scenario}"
    );
    assert!(
        !scenario.contains("pw0"),
        "no password is written: {scenario}"
    );
    let data = std::fs::read_to_string(dir.path().join("s.users.csv")).unwrap();
    assert_eq!(data, "user,password\nuser0,pw0\n");
    volley()
        .current_dir(dir.path())
        .args(["validate", "s.toml"])
        .assert()
        .success();
    // Written once; again only with --force.
    refused_existing(dir.path());
}

fn refused_existing(dir: &Path) {
    volley()
        .current_dir(dir)
        .args(["record", "s.har"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("exists already"));
    volley()
        .current_dir(dir)
        .args(["record", "s.har", "--force"])
        .assert()
        .success();
}

#[test]
fn empty_malformed_and_cut_short_captures_are_refused_naming_the_entry_or_line() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    let har = small_har();

    write("empty.har", "");
    refused(dir.path(), "empty.har", "the file is empty");
    write("empty.jsonl", "\n\n");
    refused(dir.path(), "empty.jsonl", "the file is empty");

    // A HAR cut in the middle: the line and column where it ends.
    let cut = &har[..har.len() / 2];
    write("cut.har", cut);
    let line = cut.lines().count();
    refused(dir.path(), "cut.har", &format!("line {line}, column"));
    refused(dir.path(), "cut.har", "cut short");
    write(
        "broken.har",
        &har.replacen("\"entries\": [", "\"entries\": [ x", 1),
    );
    refused(dir.path(), "broken.har", "not valid JSON");
    let mut doc: serde_json::Value = serde_json::from_str(&har).unwrap();
    doc["log"]["entries"][1]["request"]["url"] = json!("not a url");
    write("entry.har", &doc.to_string());
    refused(
        dir.path(),
        "entry.har",
        "entry 2: its request's url \"not a url\"",
    );
    write("other.har", r#"{"log": {"pages": []}}"#);
    refused(dir.path(), "other.har", "not a HAR file");

    // JSONL: a line that is not a record, a last line cut short, a record of something else.
    let connect = r#"{"time":"2026-12-07T12:00:00Z","t":0.1,"conn":1,"kind":"connect","upstream":"http://127.0.0.1:4000"}"#;
    write("bad.jsonl", &format!("{connect}\n{connect}\nnot json\n"));
    refused(dir.path(), "bad.jsonl", "line 3: not a JSON record");
    write("cut.jsonl", &format!("{connect}\n{}", &connect[..40]));
    refused(dir.path(), "cut.jsonl", "line 2: the record is cut short");
    write("foreign.jsonl", "{\"level\":\"info\"}\n");
    refused(
        dir.path(),
        "foreign.jsonl",
        "line 1: not a volley inspect record",
    );

    // Whole files with nothing to replay.
    write("http-only.jsonl", &format!("{connect}\n"));
    refused(
        dir.path(),
        "http-only.jsonl",
        "holds no WebSocket or Socket.IO connection",
    );
    volley()
        .current_dir(dir.path())
        .args(["record", "http-only.jsonl", "--filter", "conn=x"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "bad --filter \"conn=x\" at column 1",
        ));
}

/// `volley record CAPTURE -o NAME.toml` in `dir`; the scenario's text.
fn record(dir: &Path, capture: &str, name: &str) -> String {
    volley()
        .current_dir(dir)
        .args(["record", capture, "-o", &format!("{name}.toml")])
        .assert()
        .success();
    std::fs::read_to_string(dir.join(format!("{name}.toml"))).unwrap()
}

/// Adds rows user1..user{n-1} (password pw{i}) to the data file, as a user does for more users.
fn add_users(data: &Path, n: usize) {
    let mut text = std::fs::read_to_string(data).unwrap();
    assert_eq!(text, "user,password\nuser0,pw0\n", "the recorded row");
    for i in 1..n {
        text.push_str(&format!("user{i},pw{i}\n"));
    }
    std::fs::write(data, text).unwrap();
}

/// `volley run NAME.toml --clients N --duration D`, against the recorded server: its results
/// folder.
fn replay(dir: &Path, name: &str, clients: usize, duration: &str) -> std::path::PathBuf {
    let out = dir.join(format!("{name}-results"));
    let clients = clients.to_string();
    let scenario = format!("{name}.toml");
    let args = [
        "run",
        &scenario,
        "--clients",
        &clients,
        "--duration",
        duration,
        "--quiet",
        "--out",
    ];
    volley()
        .current_dir(dir)
        .args(args)
        .arg(&out)
        .timeout(std::time::Duration::from_secs(60))
        .assert()
        .success();
    out
}

/// What the replay did, by the app's counts: `key` of `user` now, less what the browser's session
/// had counted before.
fn replayed(after: &Value, before: &Value, user: &str, key: &str) -> u64 {
    let count = |stats: &Value| stats["users"][user][key].as_u64().unwrap_or(0);
    count(after) - count(before)
}

/// The counts of users user0..user{n-1} in an app's /stats once they have all left.
fn users_after(server: &AppServer, n: usize) -> Value {
    let stats = server.stats_when("every replayed user left", |s| {
        s["totals"]["connected"] == 0 && s["users"].as_object().is_some_and(|u| u.len() == n)
    });
    for refused in ["logins_refused", "logins_bad"] {
        assert_eq!(stats[refused], 0, "{refused}: {stats}");
    }
    stats
}

/// The app's page played in Chromium, its HAR written to a new folder as NAME.har and recorded
/// there as NAME.toml: what the page says it did, the folder, the scenario's text.
async fn recorded_in_chromium(app: &AppServer, name: &str) -> (Value, tempfile::TempDir, String) {
    let visit = capture_har(&app.page_url()).await;
    let done = visit.session_done;
    assert!(done.get("error").is_none(), "the page failed: {done}");
    let dir = tempfile::tempdir().unwrap();
    let har = format!("{name}.har");
    std::fs::write(
        dir.path().join(&har),
        serde_json::to_vec_pretty(&visit.har).unwrap(),
    )
    .unwrap();
    let scenario = record(dir.path(), &har, name);
    (done, dir, scenario)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_chat_session_recorded_from_its_har_replays_with_200_users_each_doing_what_it_did()
 {
    let browser = AppServer::start(App::ChatRoom, &[]);
    let (done, dir, scenario) = recorded_in_chromium(&browser, "chat").await;
    let done = &done;

    // What the browser did, generalised: nothing secret is written into the scenario.
    let token = done["token"].as_str().unwrap();
    for secret in [token, "pw0"] {
        assert!(
            !scenario.contains(secret),
            "{secret} is in the scenario:\n{scenario}"
        );
    }
    for expected in [
        r#"transport = "polling-upgrade""#,
        r#"auth = { token = "{{token}}" }"#,
        r#"json = { user = "{{users.user}}", password = "{{users.password}}" }, status = 200, capture = { token = "/token" }"#,
        r#"{ emit = "join", data = { room = "room-{{users.user}}" }, ack = true }"#,
        r#"event = "chat""#,
        r#"n = "{{seq}}""#,
        "[[group.on]]\nevent = \"ping\"\nfrom = \"server\"\nemit = \"pong\"\ndata = { id = \"{{/id}}\" }",
        "[[expect]]\nevent = \"message\"\nfrom = \"server\"\nseq = \"/seq\"",
    ] {
        assert!(scenario.contains(expected), "no {expected} in:\n{scenario}");
    }
    volley()
        .current_dir(dir.path())
        .args(["validate", "chat.toml"])
        .assert()
        .success();

    // 200 users, each its own account, against the server the browser used, the scenario as
    // written.
    add_users(&dir.path().join("chat.users.csv"), 200);
    let before = users_after(&browser, 1);
    let results = replay(dir.path(), "chat", 200, "3s");
    let after = users_after(&browser, 200);
    assert_eq!(after["connections_refused"], 0, "{after}");
    for i in 0..200 {
        let user = format!("user{i}");
        let did = |key: &str| replayed(&after, &before, &user, key);
        for (count, expected) in [
            ("logins", 1),
            ("connects", 1),
            ("joins", 1),
            ("pongs_unmatched", 0),
        ] {
            assert_eq!(did(count), expected, "{user} {count}: {after}");
        }
        let chats = did("chats");
        // Like the browser, at least its 5 chats at its pace, each acknowledged and delivered.
        assert!(chats >= 5, "{user} chatted {chats} times: {after}");
        assert_eq!(did("chat_acks"), chats, "{user}: {after}");
        assert_eq!(did("messages"), chats, "{user}: {after}");
        assert!(did("pongs") >= 1, "{user} answered no ping: {after}");
    }
    assert_eq!(common::summary_count(&results, "errors"), 0);
    assert_eq!(common::summary_count(&results, "connects"), 200);
    let acks = common::summary_count(&results, "ack.sent");
    let total = |stats: &Value, key: &str| stats["totals"][key].as_u64().unwrap();
    assert_eq!(
        acks,
        total(&after, "chat_acks") - total(&before, "chat_acks") + 200,
        "chats and joins acknowledged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_raw_websocket_session_recorded_from_its_har_replays_with_100_users() {
    let browser = AppServer::start(App::RawFeed, &[]);
    let (done, dir, scenario) = recorded_in_chromium(&browser, "feed").await;
    let done = &done;
    let token = done["token"].as_str().unwrap();
    assert!(
        !scenario.contains(token),
        "the token is in the scenario:\n{scenario}"
    );
    for expected in [
        r#"protocol = "ws""#,
        r#"path = "/feed?token={{token}}""#,
        r#"{ emit = "subscribe", data = { type = "subscribe", topic = "prices", id = 1 } }"#,
        r#"{ name = "subscribed", wait_for = "*", match = '/type == "subscribed"', timeout = "5s" }"#,
        r#"event = "echo""#,
        "[[group.on]]\nmatch = '/type == \"ping\"'\nfrom = \"server\"\nemit = \"pong\"\ndata = { type = \"pong\", id = \"{{/id}}\" }",
        "[[expect]]\nevent = \"echo\"\nfrom = \"self\"",
        "[[expect]]\nevent = \"tick\"\nfrom = \"server\"\nseq = \"/seq\"\ntimestamp = \"/ts\"",
    ] {
        assert!(scenario.contains(expected), "no {expected} in:\n{scenario}");
    }

    add_users(&dir.path().join("feed.users.csv"), 100);
    let before = users_after(&browser, 1);
    let results = replay(dir.path(), "feed", 100, "3s");
    let after = users_after(&browser, 100);
    assert_eq!(after["upgrades_refused"], 0, "{after}");
    for i in 0..100 {
        let user = format!("user{i}");
        let did = |key: &str| replayed(&after, &before, &user, key);
        for (count, expected) in [
            ("logins", 1),
            ("connections", 1),
            ("subscribes", 1),
            ("pongs_unmatched", 0),
            ("errors", 0),
        ] {
            assert_eq!(did(count), expected, "{user} {count}: {after}");
        }
        assert!(did("echoes") >= 5, "{user}: {after}");
        assert!(did("pongs") >= 1, "{user}: {after}");
        assert!(did("ticks") >= 10, "{user}: {after}");
    }
    // Every echo came back and no tick was missed; the subscription's answer was awaited.
    assert_eq!(common::summary_count(&results, "errors"), 0);
    let echoes = |stats: &Value| stats["totals"]["echoes"].as_u64().unwrap();
    assert_eq!(
        common::summary_count(&results, "echo"),
        echoes(&after) - echoes(&before)
    );
    assert_eq!(common::summary_count(&results, "subscribed"), 100);
    assert_eq!(common::summary_count(&results, "tick.lost"), 0);
}

/// An inspector capture of two raw WebSocket connections, one after the other: each sends its
/// own greeting and gets it back.
fn two_connections() -> String {
    let mut lines = Vec::new();
    for (conn, at, word) in [(1, 1.0, "first"), (2, 5.0, "second")] {
        let record = |t: f64, rest: Value| {
            let mut r = json!({"time": "2026-12-07T12:00:00Z", "t": t, "conn": conn});
            r.as_object_mut()
                .unwrap()
                .extend(rest.as_object().unwrap().clone());
            r.to_string()
        };
        lines.push(record(
            at,
            json!({"kind": "connect", "upstream": "http://127.0.0.1:4000"}),
        ));
        lines.push(record(at + 0.01, json!({"dir": "c2s", "kind": "http_request", "method": "GET", "target": "/echo", "headers": {"Upgrade": "websocket"}})));
        lines.push(record(
            at + 0.02,
            json!({"dir": "s2c", "kind": "http_response", "status": 101, "headers": {}}),
        ));
        let text = json!({"type": "hello", "from": word}).to_string();
        lines.push(record(
            at + 0.1,
            json!({"dir": "c2s", "kind": "frame", "opcode": "text", "fin": true, "text": text}),
        ));
        lines.push(record(
            at + 0.11,
            json!({"dir": "s2c", "kind": "frame", "opcode": "text", "fin": true, "text": text}),
        ));
        lines.push(record(at + 0.5, json!({"kind": "close"})));
    }
    lines.join("\n") + "\n"
}

#[test]
fn a_capture_of_several_connections_lists_them_and_filter_picks_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("two.jsonl"), two_connections()).unwrap();
    let out = volley()
        .current_dir(dir.path())
        .args(["record", "two.jsonl", "-o", "one.toml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "the capture holds 2 connections; pick one with --filter conn=N",
        ));
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("conn=1: WebSocket ws://127.0.0.1:4000/echo, 1.0s..1.5s, 2 message(s)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("conn=2: WebSocket ws://127.0.0.1:4000/echo, 5.0s..5.5s"),
        "{stderr}"
    );

    for filter in ["conn=2", "from=3s", "from=4s,to=10s"] {
        volley()
            .current_dir(dir.path())
            .args([
                "record",
                "two.jsonl",
                "-o",
                "one.toml",
                "--force",
                "--filter",
                filter,
            ])
            .assert()
            .success();
        let scenario = std::fs::read_to_string(dir.path().join("one.toml")).unwrap();
        assert!(
            scenario.contains(r#"data = { type = "hello", from = "second" }"#),
            "{filter}:\n{scenario}"
        );
        assert!(!scenario.contains("first"), "{filter}:\n{scenario}");
        assert!(
            scenario.contains("(line 8)"),
            "{filter}: the connection's place:\n{scenario}"
        );
    }
    volley()
        .current_dir(dir.path())
        .args([
            "record",
            "two.jsonl",
            "-o",
            "one.toml",
            "--force",
            "--filter",
            "conn=7",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "the part of the capture --filter keeps holds no WebSocket",
        ));
}

#[test]
fn the_recorded_example_is_what_volley_record_writes_and_the_docs_show_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = root.join("scenarios/recorded");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(example.join("feed.har"), dir.path().join("feed.har")).unwrap();
    record(dir.path(), "feed.har", "feed");
    for file in ["feed.toml", "feed.users.csv"] {
        assert_eq!(
            std::fs::read_to_string(dir.path().join(file)).unwrap(),
            std::fs::read_to_string(example.join(file)).unwrap(),
            "scenarios/recorded/{file} is not what `volley record feed.har` writes: record it again"
        );
    }
    volley()
        .current_dir(&example)
        .args(["validate", "feed.toml"])
        .assert()
        .success();
    let docs = std::fs::read_to_string(root.join("docs/record.md")).unwrap();
    let scenario = std::fs::read_to_string(example.join("feed.toml")).unwrap();
    assert!(
        docs.contains(&format!("```toml\n{scenario}```\n")),
        "docs/record.md shows scenarios/recorded/feed.toml whole"
    );
}

/// A recorded scenario as TOML, without what differs between two recordings of one session:
/// its name, the target's address (a browser behind the inspector saw the inspector's), the
/// duration, the data file's name, the pace of streams and the think times (a proxy and a browser
/// stamp the same message a few milliseconds apart).
fn shape(scenario: &str) -> toml::Table {
    let mut doc: toml::Table = toml::from_str(scenario).unwrap();
    for key in ["name", "target", "duration"] {
        doc.remove(key);
    }
    if let Some(toml::Value::Array(data)) = doc.get_mut("data") {
        for set in data {
            set.as_table_mut().unwrap().remove("file");
        }
    }
    for group in doc["group"].as_array_mut().unwrap() {
        let group = group.as_table_mut().unwrap();
        if let Some(toml::Value::Array(steps)) = group.get_mut("on_connect") {
            steps.retain(|s| s.get("wait").is_none());
        }
        if let Some(toml::Value::Array(emits)) = group.get_mut("emit") {
            for emit in emits {
                emit.as_table_mut().unwrap().remove("rate");
            }
        }
    }
    doc
}

/// Records `capture` in `dir` as NAME.toml and returns its shape and the data file's text.
fn recorded_shape(dir: &Path, capture: &str, name: &str) -> (toml::Table, String) {
    let scenario = record(dir, capture, name);
    let data = std::fs::read_to_string(dir.join(format!("{name}.users.csv"))).unwrap_or_default();
    (shape(&scenario), data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_captured_by_volley_inspect_gives_the_scenario_its_har_gives() {
    for app in [App::ChatRoom, App::RawFeed] {
        let server = AppServer::start(app, &[]);
        let dir = tempfile::tempdir().unwrap();
        // One session through the inspector: Chromium's HAR of it, and the inspector's capture.
        let visit = capture_jsonl(&server, dir.path(), &[]).await;
        assert!(
            visit.visit.session_done.get("error").is_none(),
            "{}",
            visit.visit.session_done
        );
        std::fs::write(
            dir.path().join("browser.har"),
            serde_json::to_vec(&visit.visit.har).unwrap(),
        )
        .unwrap();
        let jsonl = visit
            .jsonl
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let (from_har, har_data) = recorded_shape(dir.path(), "browser.har", "from-har");
        let (from_jsonl, jsonl_data) = recorded_shape(dir.path(), &jsonl, "from-jsonl");
        assert_eq!(
            from_jsonl, from_har,
            "{app:?}: the inspector's capture and the HAR differ"
        );
        // The inspector hid the password: its column is there, empty, for the user to fill in.
        assert_eq!(har_data, "user,password\nuser0,pw0\n");
        assert_eq!(jsonl_data, "user,password\nuser0,\n");
        let scenario = std::fs::read_to_string(dir.path().join("from-jsonl.toml")).unwrap();
        assert!(
            scenario.contains("The capture hid `password`"),
            "{scenario}"
        );

        // With --show-secrets the capture holds the password, and the data file the recorded row.
        let shown = tempfile::tempdir().unwrap();
        let visit = capture_jsonl(&server, shown.path(), &["--show-secrets"]).await;
        let jsonl = visit
            .jsonl
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let (from_shown, shown_data) = recorded_shape(shown.path(), &jsonl, "shown");
        assert_eq!(from_shown, from_har, "{app:?}: with --show-secrets");
        assert_eq!(shown_data, har_data);
    }
}

/// Captures that once went wrong (a review's reproducers, in tests/record/): each records, keeps
/// its secrets out of the scenario, and says what it should.
#[test]
fn hard_captures_record_without_a_secret_in_the_scenario() {
    // (file, never in the scenario, in it)
    let cases: &[(&str, &[&str], &[&str])] = &[
        // A token that holds the user name; a password that holds the email; a number.
        (
            "tokuser.har",
            &["s3cr3t-pass", "9f8e7d6c5b4a3921"],
            &[
                r#"capture = { token = "/token" }"#,
                r#"token = "{{token}}""#,
            ],
        ),
        (
            "pwuser.har",
            &["Secret99"],
            &[r#"password = "{{users.password}}""#],
        ),
        (
            "numpw.har",
            &["123456"],
            &[r#"password = "{{users.password}}""#],
        ),
        // Text protocols (IRC, STOMP) and a secret that changes in a stream.
        (
            "text.har",
            &["hunter2secret"],
            &["PASS {{users.pass}}", "passcode:{{users.pass}}"],
        ),
        (
            "streamsecret.har",
            &["secretTok"],
            &[r#"access_token = "{{users.access_token}}""#],
        ),
        // A token in paths; two authorizations; a login after the connection, at its origin.
        (
            "wspath.har",
            &["tok-0123456789abcdef"],
            &[
                r#"path = "/ws/{{token}}""#,
                "GET /api/x/{{token}}/y/{{token}}",
            ],
        ),
        (
            "authz.har",
            &["Ym9iOmh1bnRlcjI=", "static-token", "key-abcdef"],
            &[r#"headers = { Authorization = "{{users.authorization2}}" }"#],
        ),
        (
            "latelogin.har",
            &["pw0secret", "base = "],
            &[
                r#"http = "POST /login""#,
                r#"{ emit = "auth", data = { token = "{{token}}" } }"#,
            ],
        ),
        // A form posted by the page itself; encoded queries; a key given twice.
        (
            "formdoc.har",
            &["hunter2"],
            &[r#"form = { username = "{{users.username}}", password = "{{users.password}}" }"#],
        ),
        (
            "query.har",
            &[],
            &[
                "GET /api/search?q=a%20b%26c%3Dd&next=%2Fhome%3Fx%3D1",
                "room=a%26b%23c",
            ],
        ),
        ("dupq.har", &[], &[r#"query = { tag = "a" }"#]),
        // The client's acknowledgements; Socket.IO 2; a chatty user is not a reply storm.
        (
            "acks.har",
            &[r#"emit = "message""#],
            &["event = \"confirm\"\nfrom = \"server\"\nanswer = [{ ok = true }]"],
        ),
        ("eio3.har", &[], &["eio = 3", r#"emit = "hello""#]),
        ("storm.har", &["[[group.on]]"], &[r#"emit = "chat""#]),
        // What TOML and templates cannot hold as recorded; ids new in every message.
        ("bignum.har", &[], &[r#"id = "18446744073709551615""#]),
        ("braces.har", &[], &["template {{one_of({)}}{name}} here"]),
        ("uuids.har", &[], &[r#"id = "{{uuid}}""#]),
        (
            "payloads.har",
            &[],
            &[r#"{ emit = "noargs" }"#, r#"args = [1, 2]"#],
        ),
        // A value sent before the answer that carries it; a failed poll; fragments both ways.
        ("order.har", &[], &[r#"room = "room-abcdef12""#]),
        ("polling400.har", &[], &[r#"transport = "polling""#]),
        ("frag.jsonl", &[], &[r#"emit = "big""#, r#"emit = "bye""#]),
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/record");
    let dir = tempfile::tempdir().unwrap();
    for (file, never, always) in cases {
        std::fs::copy(root.join(file), dir.path().join(file)).unwrap();
        let name = file.split('.').next().unwrap();
        let scenario = record(dir.path(), file, name);
        for secret in *never {
            assert!(
                !scenario.contains(secret),
                "{file}: {secret:?} is in:\n{scenario}"
            );
        }
        for expected in *always {
            assert!(
                scenario.contains(expected),
                "{file}: no {expected:?} in:\n{scenario}"
            );
        }
    }
    // A Firefox HAR keeps no WebSocket messages: refused with what to do instead.
    std::fs::copy(
        root.join("feed-firefox.har"),
        dir.path().join("feed-firefox.har"),
    )
    .unwrap();
    refused(
        dir.path(),
        "feed-firefox.har",
        "entry 3 is a WebSocket without its messages",
    );
    refused(
        dir.path(),
        "feed-firefox.har",
        "Export the HAR from Chromium",
    );
}
