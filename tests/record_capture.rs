//! The captures `volley record` works from, made from real components: Chromium loads the test
//! page of chat-room.js (Socket.IO) or raw-feed.js (raw WebSocket), which plays one user's
//! session by itself; the session is captured as the HAR DevTools would export, and through
//! `volley inspect --jsonl`. Each test checks that the page did its session, that the server's
//! /stats count exactly that, and that the capture holds the login, its token, and the
//! conversation both ways. With `VOLLEY_RECORD_SAMPLES=DIR` the captures are also written to
//! DIR (chat.har, chat.jsonl, feed.har, feed.jsonl).

use crate::common;

use common::har::{HarVisit, capture_har, now_epoch_seconds};
use common::inspect::of_kind;
use common::session_capture::{App, AppServer, capture_jsonl, keep_sample};
use serde_json::{Value, json};

// ---- the page and the server -------------------------------------------------------------------

/// The page's `window.sessionDone`, after checking that the page reported no failure and logged
/// no error but the favicon's 404 (the apps have none; Chromium asks anyway).
fn session_done(visit: &HarVisit) -> &Value {
    let done = &visit.session_done;
    assert!(done.get("error").is_none(), "the page failed: {done}");
    let unexpected: Vec<&String> = visit
        .errors
        .iter()
        .filter(|e| !e.contains("status of 404"))
        .collect();
    assert!(unexpected.is_empty(), "page errors: {unexpected:?}");
    done
}

/// What the chat page says it did, and what chat-room.js counted: exactly one session.
fn check_chat_session(server: &AppServer, done: &Value) {
    assert_eq!(
        done["join"],
        json!({ "ok": true, "room": "room-user0", "members": 1 })
    );
    let seqs: Vec<&Value> = done["chats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["ack"]["seq"])
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5], "{done}");
    assert_eq!(done["messages"].as_array().unwrap().len(), 5, "{done}");
    assert_eq!(
        done["transports"],
        json!(["polling", "websocket"]),
        "{done}"
    );
    let pongs = done["pongs"].as_u64().unwrap();
    assert!(pongs >= 1, "{done}");

    let stats = server.stats_when("the page's disconnect", |s| s["totals"]["connected"] == 0);
    let user = &stats["users"]["user0"];
    for (count, expected) in [
        ("logins", 1),
        ("connects", 1),
        ("joins", 1),
        ("chats", 5),
        ("chat_acks", 5),
        ("messages", 5),
        ("pongs", pongs),
        ("pongs_unmatched", 0),
    ] {
        assert_eq!(user[count], expected, "{count}: {stats}");
    }
    assert!(user["pings"].as_u64().unwrap() >= pongs, "{stats}");
    assert_eq!(stats["users"].as_object().unwrap().len(), 1, "{stats}");
    for refused in ["logins_refused", "logins_bad", "connections_refused"] {
        assert_eq!(stats[refused], 0, "{refused}: {stats}");
    }
}

/// What the feed page says it did, and what raw-feed.js counted: exactly one session.
fn check_feed_session(server: &AppServer, done: &Value) {
    assert_eq!(
        done["subscribed"],
        json!({ "type": "subscribed", "topic": "prices", "id": 1 })
    );
    assert_eq!(done["echoes_back"], done["echoes_sent"], "{done}");
    assert_eq!(done["echoes_sent"].as_array().unwrap().len(), 5, "{done}");
    assert_eq!(done["close"]["code"], 1000, "{done}");
    assert_eq!(done["errors"], json!([]), "{done}");
    // About 28 ticks in the ~2.9 s after subscribing; a loaded machine may deliver fewer.
    let ticks = done["ticks"].as_u64().unwrap();
    assert!(ticks >= 10, "{done}");
    let pongs = done["pongs"].as_u64().unwrap();
    assert!(pongs >= 1, "{done}");

    let stats = server.stats_when("the page's close", |s| s["totals"]["connected"] == 0);
    let user = &stats["users"]["user0"];
    for (count, expected) in [
        ("logins", 1),
        ("connections", 1),
        ("subscribes", 1),
        ("echoes", 5),
        ("pongs", pongs),
        ("pongs_unmatched", 0),
        ("errors", 0),
    ] {
        assert_eq!(user[count], expected, "{count}: {stats}");
    }
    // The server may send a tick or a ping while the page's close is on its way.
    assert!(user["ticks"].as_u64().unwrap() >= ticks, "{stats}");
    assert!(user["pings"].as_u64().unwrap() >= pongs, "{stats}");
    for refused in ["logins_refused", "logins_bad", "upgrades_refused"] {
        assert_eq!(stats[refused], 0, "{refused}: {stats}");
    }
}

// ---- the HAR -----------------------------------------------------------------------------------

/// The HAR entries whose request URL contains `part`.
fn entries<'a>(har: &'a Value, part: &str) -> Vec<&'a Value> {
    har["log"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["request"]["url"].as_str().unwrap().contains(part))
        .collect()
}

/// The value of header `name` (any case) of a HAR request or response.
fn har_header<'a>(message: &'a Value, name: &str) -> Option<&'a str> {
    message["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"].as_str().unwrap().eq_ignore_ascii_case(name))
        .map(|h| h["value"].as_str().unwrap())
}

/// Checks the log's frame and the login entry (its post data, its JSON answer with the page's
/// token, its session cookie); returns the cookie (`session=...`).
fn check_har_login(har: &Value, done: &Value) -> String {
    let log = &har["log"];
    assert_eq!(log["version"], "1.2");
    assert_eq!(log["creator"]["name"], "WebInspector");
    assert_eq!(
        log["pages"].as_array().unwrap().len(),
        1,
        "{}",
        log["pages"]
    );
    let documents = entries(har, "/")
        .into_iter()
        .filter(|e| e["_resourceType"] == "document");
    assert_eq!(documents.count(), 1);

    let logins = entries(har, "/login");
    assert_eq!(logins.len(), 1);
    let login = logins[0];
    assert_eq!(login["_resourceType"], "fetch");
    assert_eq!(login["request"]["method"], "POST");
    let post = &login["request"]["postData"];
    assert_eq!(post["mimeType"], "application/json");
    let sent: Value = serde_json::from_str(post["text"].as_str().unwrap()).unwrap();
    assert_eq!(sent, json!({ "user": "user0", "password": "pw0" }));
    let response = &login["response"];
    assert_eq!(response["status"], 200);
    let answer: Value =
        serde_json::from_str(response["content"]["text"].as_str().unwrap()).unwrap();
    assert_eq!(
        answer["token"], done["token"],
        "the page's token is the login's"
    );
    assert_eq!(response["content"]["mimeType"], "application/json");
    // Set-Cookie is only in the headers Chromium received, not in responseReceived's.
    let set_cookie = har_header(response, "set-cookie").expect("Set-Cookie in the login");
    assert!(set_cookie.ends_with("; Path=/; HttpOnly"), "{set_cookie}");
    assert_eq!(response["cookies"][0]["name"], "session");
    assert_eq!(response["cookies"][0]["httpOnly"], true);
    set_cookie.split(';').next().unwrap().to_string()
}

/// The one WebSocket entry whose URL contains `part`, after checking its handshake carried the
/// session cookie; and its messages as (type, data), after checking every one is a text frame
/// stamped within the test, in order.
fn har_websocket<'a>(
    har: &'a Value,
    part: &str,
    cookie: &str,
    since: f64,
) -> Vec<(&'a str, &'a str)> {
    let sockets: Vec<&Value> = entries(har, part)
        .into_iter()
        .filter(|e| e["_resourceType"] == "websocket")
        .collect();
    assert_eq!(sockets.len(), 1, "one WebSocket entry for {part}");
    let socket = sockets[0];
    assert_eq!(socket["response"]["status"], 101);
    assert_eq!(har_header(&socket["request"], "cookie"), Some(cookie));
    let messages = socket["_webSocketMessages"].as_array().unwrap();
    let now = now_epoch_seconds();
    let mut last = since;
    for m in messages {
        assert_eq!(m["opcode"], 1, "{m}");
        let time = m["time"].as_f64().unwrap();
        // In order, give or take a millisecond between a frame sent and one received.
        assert!(
            time >= last - 0.001 && time <= now,
            "{m} outside {since}..{now} or out of order"
        );
        last = time;
    }
    messages
        .iter()
        .map(|m| (m["type"].as_str().unwrap(), m["data"].as_str().unwrap()))
        .collect()
}

fn count(messages: &[(&str, &str)], kind: &str, starts: &str) -> usize {
    messages
        .iter()
        .filter(|(t, data)| *t == kind && data.starts_with(starts))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_room_session_in_chromium_is_counted_by_the_server_and_exported_as_a_har() {
    let since = now_epoch_seconds();
    let server = AppServer::start(App::ChatRoom, &[]);
    let visit = capture_har(&server.page_url()).await;
    keep_sample("chat.har", &serde_json::to_vec_pretty(&visit.har).unwrap());
    let done = session_done(&visit);
    check_chat_session(&server, done);
    let har = &visit.har;
    let cookie = check_har_login(har, done);

    // Long-polling first: the open packet, then the CONNECT with the token, all with the cookie.
    let polls = entries(har, "transport=polling");
    assert!(polls.len() >= 3, "{} polling requests", polls.len());
    for poll in &polls {
        assert_eq!(poll["_resourceType"], "xhr");
        assert_eq!(
            har_header(&poll["request"], "cookie"),
            Some(cookie.as_str())
        );
    }
    let open = polls[0]["response"]["content"]["text"].as_str().unwrap();
    let handshake: Value = serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
    assert_eq!(handshake["upgrades"], json!(["websocket"]));
    let sid = handshake["sid"].as_str().unwrap();
    let token = done["token"].as_str().unwrap();
    let connect = format!("40{{\"token\":\"{token}\"}}");
    let first_post = polls
        .iter()
        .find_map(|p| p["request"]["postData"]["text"].as_str());
    assert_eq!(first_post, Some(connect.as_str()));

    // Then the upgrade: the probe, the upgrade packet, and the DISCONNECT last.
    let ws = har_websocket(
        har,
        &format!("transport=websocket&sid={sid}"),
        &cookie,
        since,
    );
    assert_eq!(
        ws[..2],
        [("send", "2probe"), ("receive", "3probe")],
        "{ws:?}"
    );
    assert!(ws.contains(&("send", "5")), "the upgrade packet: {ws:?}");
    // The DISCONNECT is the last thing the page sends (a ping may still come in after it).
    let last_sent = ws.iter().rev().find(|(kind, _)| *kind == "send");
    assert_eq!(last_sent, Some(&("send", "41")), "{ws:?}");

    // The conversation goes over whichever transport is current when a packet is sent: the
    // join usually over polling (the probe is still on its way), the chats over the WebSocket.
    let (sent, received) = chat_packets(&polls, &ws);
    let sent_as = |prefix: &str| -> Vec<&str> {
        sent.iter()
            .filter(|(_, p)| p.starts_with(prefix))
            .map(|(transport, _)| *transport)
            .collect()
    };
    let received_count = |prefix: &str| received.iter().filter(|p| p.starts_with(prefix)).count();
    assert_eq!(sent_as("420[\"join\"").len(), 1, "{sent:?}");
    assert_eq!(received_count("430[{\"ok\":true"), 1, "{received:?}");
    for chat in done["chats"].as_array().unwrap() {
        let n = &chat["n"];
        let over = chat["sent_over"].as_str().unwrap();
        assert_eq!(
            sent_as(&format!("42{n}[\"chat\"")),
            [over],
            "chat {n}: {sent:?}"
        );
        assert_eq!(received_count(&format!("43{n}[{{\"id\"")), 1, "ack {n}");
    }
    assert_eq!(received_count("42[\"message\""), 5, "{received:?}");
    let pongs = done["pongs"].as_u64().unwrap() as usize;
    assert_eq!(sent_as("42[\"pong\"").len(), pongs, "{sent:?}");
    assert!(received_count("42[\"ping\"") >= pongs, "{received:?}");
}

/// The Engine.IO packets the chat page sent, with the transport each went over, and those it
/// received: long-polling bodies (packets joined by U+001E) and WebSocket messages.
fn chat_packets<'a>(
    polls: &[&'a Value],
    ws: &[(&'a str, &'a str)],
) -> (Vec<(&'a str, &'a str)>, Vec<&'a str>) {
    let mut sent = Vec::new();
    let mut received = Vec::new();
    for poll in polls {
        if let Some(body) = poll["request"]["postData"]["text"].as_str() {
            sent.extend(body.split('\u{1e}').map(|p| ("polling", p)));
        }
        if poll["request"]["method"] == "GET" {
            let body = poll["response"]["content"]["text"].as_str().unwrap();
            received.extend(body.split('\u{1e}'));
        }
    }
    for &(kind, data) in ws {
        match kind {
            "send" => sent.push(("websocket", data)),
            _ => received.push(data),
        }
    }
    (sent, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_feed_session_in_chromium_is_counted_by_the_server_and_exported_as_a_har() {
    let since = now_epoch_seconds();
    let server = AppServer::start(App::RawFeed, &[]);
    let visit = capture_har(&server.page_url()).await;
    keep_sample("feed.har", &serde_json::to_vec_pretty(&visit.har).unwrap());
    let done = session_done(&visit);
    check_feed_session(&server, done);
    let har = &visit.har;
    let cookie = check_har_login(har, done);
    assert!(entries(har, "socket.io").is_empty());

    let token = done["token"].as_str().unwrap();
    let ws = har_websocket(har, &format!("/feed?token={token}"), &cookie, since);
    assert_eq!(
        ws[..2],
        [
            ("send", r#"{"type":"subscribe","topic":"prices","id":1}"#),
            (
                "receive",
                r#"{"type":"subscribed","topic":"prices","id":1}"#
            ),
        ],
        "{ws:?}"
    );
    for n in 1..=5 {
        let echo = format!(r#"{{"type":"echo","n":{n},"text":"hello {n}"}}"#);
        assert_eq!(count(&ws, "send", &echo), 1, "{ws:?}");
        assert_eq!(count(&ws, "receive", &echo), 1, "{ws:?}");
    }
    let ticks = done["ticks"].as_u64().unwrap() as usize;
    // Chromium reports the frames that arrive after close(), which the page no longer sees.
    assert!(
        count(&ws, "receive", r#"{"type":"tick""#) >= ticks,
        "{ws:?}"
    );
    let pongs = done["pongs"].as_u64().unwrap() as usize;
    assert_eq!(count(&ws, "send", r#"{"type":"pong""#), pongs, "{ws:?}");
    assert!(
        count(&ws, "receive", r#"{"type":"ping""#) >= pongs,
        "{ws:?}"
    );
}

// ---- the JSONL of volley inspect ---------------------------------------------------------------

/// The records of one kind, direction and condition.
fn records<'a>(
    all: &'a [Value],
    kind: &str,
    dir: &str,
    test: impl Fn(&Value) -> bool,
) -> Vec<&'a Value> {
    all.iter()
        .filter(|r| r["kind"] == kind && r["dir"] == dir && test(r))
        .collect()
}

/// Checks the login's request and response heads and bodies, every connection closed, and the
/// page's token nowhere in the file (`volley inspect` hides secrets unless --show-secrets).
fn check_jsonl_login(all: &[Value], file: &str, done: &Value) {
    let logins = records(all, "http_request", "c2s", |r| r["target"] == "/login");
    assert_eq!(logins.len(), 1, "one POST /login");
    assert_eq!(logins[0]["method"], "POST");
    assert_eq!(logins[0]["len"], 33, "the login's body length");
    let answers = records(all, "http_response", "s2c", |r| r["target"] == "/login");
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0]["conn"], logins[0]["conn"]);
    assert_eq!(answers[0]["status"], 200);
    assert_eq!(answers[0]["headers"]["Set-Cookie"], "[redacted]");
    // The first body each way after the login's heads, on its connection.
    let body_after = |head: &Value, dir: &str| {
        let after = head["t"].as_f64().unwrap();
        let body = records(all, "http_body", dir, |r| {
            r["conn"] == head["conn"] && r["t"].as_f64().unwrap() >= after
        })[0];
        serde_json::from_str::<Value>(body["text"].as_str().unwrap()).unwrap()
    };
    assert_eq!(
        body_after(logins[0], "c2s"),
        json!({ "user": "user0", "password": "[redacted]" })
    );
    assert_eq!(
        body_after(answers[0], "s2c"),
        json!({ "token": "[redacted]", "user": "user0" })
    );
    assert_eq!(of_kind(all, "connect").len(), of_kind(all, "close").len());
    assert!(
        of_kind(all, "error").is_empty(),
        "{:?}",
        of_kind(all, "error")
    );
    let token = done["token"].as_str().unwrap();
    assert!(!file.contains(token), "the token is hidden");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_room_session_through_volley_inspect_is_written_to_its_jsonl() {
    let server = AppServer::start(App::ChatRoom, &[]);
    let dir = tempfile::tempdir().unwrap();
    let capture = capture_jsonl(&server, dir.path(), &[]).await;
    let file = std::fs::read_to_string(&capture.jsonl).unwrap();
    keep_sample("chat.jsonl", file.as_bytes());
    let done = session_done(&capture.visit);
    check_chat_session(&server, done);
    let all = &capture.records;
    check_jsonl_login(all, &file, done);

    // Long-polling: the open packet, the CONNECT (its auth's keys shown, its values hidden), its
    // answer.
    let open = records(all, "packet", "s2c", |r| r["eio"] == "open");
    assert_eq!(open.len(), 1);
    let connect = records(all, "packet", "c2s", |r| r["sio"]["type"] == "CONNECT");
    assert_eq!(connect.len(), 1);
    assert_eq!(connect[0]["sio"]["args"], json!({ "token": "[redacted]" }));
    // The join and its ack go over polling or the WebSocket: a packet or a frame.
    let sio = |dir: &str, kind: &str, event: Option<&str>| {
        all.iter()
            .filter(|r| r["dir"] == dir && r["sio"]["type"] == kind)
            .filter(|r| event.is_none_or(|e| r["sio"]["event"] == e))
            .count()
    };
    assert_eq!(sio("s2c", "CONNECT", None), 1);
    assert_eq!(sio("c2s", "EVENT", Some("join")), 1);

    // The upgrade; the chats go over whichever transport is current (see the HAR test).
    let upgrade = records(all, "http_request", "c2s", |r| {
        r["target"]
            .as_str()
            .unwrap()
            .contains("transport=websocket")
    });
    assert_eq!(upgrade.len(), 1);
    let ws_conn = &upgrade[0]["conn"];
    let switched = records(all, "http_response", "s2c", |r| &r["conn"] == ws_conn);
    assert_eq!(switched[0]["status"], 101);
    let probe = records(all, "frame", "c2s", |r| &r["conn"] == ws_conn);
    assert_eq!(probe[0]["text"], "2probe");
    assert_eq!(sio("c2s", "EVENT", Some("chat")), 5);
    assert_eq!(sio("s2c", "EVENT", Some("message")), 5);
    let acks = all
        .iter()
        .filter(|r| r["dir"] == "s2c" && r["sio"]["type"] == "ACK")
        .map(|r| r["sio"]["id"].as_u64().unwrap());
    assert_eq!(
        acks.collect::<Vec<u64>>(),
        [0, 1, 2, 3, 4, 5],
        "the join's, then the chats'"
    );
    let pongs = done["pongs"].as_u64().unwrap() as usize;
    assert_eq!(sio("c2s", "EVENT", Some("pong")), pongs);
    assert!(sio("s2c", "EVENT", Some("ping")) >= pongs);
    assert_eq!(sio("c2s", "DISCONNECT", None), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_feed_session_through_volley_inspect_is_written_to_its_jsonl() {
    let server = AppServer::start(App::RawFeed, &[]);
    let dir = tempfile::tempdir().unwrap();
    let capture = capture_jsonl(&server, dir.path(), &[]).await;
    let file = std::fs::read_to_string(&capture.jsonl).unwrap();
    keep_sample("feed.jsonl", file.as_bytes());
    let done = session_done(&capture.visit);
    check_feed_session(&server, done);
    let all = &capture.records;
    check_jsonl_login(all, &file, done);

    let upgrade = records(all, "http_request", "c2s", |r| {
        r["target"].as_str().unwrap().starts_with("/feed?")
    });
    assert_eq!(upgrade.len(), 1);
    assert_eq!(upgrade[0]["target"], "/feed?token=[redacted]");
    let ws_conn = &upgrade[0]["conn"];
    let switched = records(all, "http_response", "s2c", |r| &r["conn"] == ws_conn);
    assert_eq!(switched[0]["status"], 101);
    let texts = |dir: &str| -> Vec<Value> {
        records(all, "frame", dir, |r| {
            &r["conn"] == ws_conn && r["opcode"] == "text"
        })
        .iter()
        .map(|r| serde_json::from_str(r["text"].as_str().unwrap()).unwrap())
        .collect()
    };
    let (sent, received) = (texts("c2s"), texts("s2c"));
    let of_type =
        |messages: &[Value], kind: &str| messages.iter().filter(|m| m["type"] == kind).count();
    assert_eq!(
        sent[0],
        json!({ "type": "subscribe", "topic": "prices", "id": 1 })
    );
    assert_eq!(
        received[0],
        json!({ "type": "subscribed", "topic": "prices", "id": 1 })
    );
    assert_eq!(of_type(&sent, "echo"), 5);
    assert_eq!(of_type(&received, "echo"), 5);
    let pongs = done["pongs"].as_u64().unwrap() as usize;
    assert_eq!(of_type(&sent, "pong"), pongs);
    assert!(of_type(&received, "ping") >= pongs);
    assert!(of_type(&received, "tick") >= done["ticks"].as_u64().unwrap() as usize);
    let closes = records(all, "frame", "c2s", |r| r["opcode"] == "close");
    assert_eq!(closes.len(), 1);
    assert_eq!(closes[0]["close_code"], 1000);
}
