//! The rules of `volley record` on small hand-written captures; tests/record.rs records real
//! browser and inspector captures and replays them.

use serde_json::json;

use super::conversation::{self, Conversation, HttpBody, Payload, Reply, Step};
use super::filter::CaptureFilter;
use super::{CaptureFormat, DataFile, ScenarioNames, Unrecordable, har, record_text};
use crate::scenario::data::DataFiles;
use crate::scenario::{Plan, Source};

const NAMES: ScenarioNames<'static> = ScenarioNames {
    capture: "feed.har",
    scenario: "feed",
};

/// What `volley record` makes of `text`, the whole capture kept.
fn recorded(text: &str, format: CaptureFormat) -> Result<super::Recording, Unrecordable> {
    record_text(text, format, &CaptureFilter::default(), NAMES)
}

/// The scenario of a recording compiled as `volley validate` compiles the files `volley record`
/// writes, its data file given in memory.
fn compile(scenario: &str, data: Option<&DataFile>) -> Plan {
    let source = Source::from_bytes("feed.toml".as_ref(), scenario.as_bytes().to_vec()).unwrap();
    let files: Vec<(&str, &str)> = data
        .iter()
        .map(|d| (d.name.as_str(), d.text.as_str()))
        .collect();
    let parsed = source.parse().unwrap_or_else(|e| panic!("{e}\n{scenario}"));
    Plan::compile_with(parsed, &source, DataFiles::Memory(&files))
        .unwrap_or_else(|e| panic!("{e}\n{scenario}"))
}

/// A HAR of one raw WebSocket session: a login, then subscribe, pings answered, echoes, ticks.
fn feed_har(password: &str) -> String {
    let t0 = 1_796_644_800.0_f64;
    let mut messages = vec![
        json!({"type": "send", "time": t0 + 0.20, "opcode": 1, "data": r#"{"type":"subscribe","topic":"prices","id":1}"#}),
        json!({"type": "receive", "time": t0 + 0.21, "opcode": 1, "data": r#"{"type":"subscribed","topic":"prices","id":1}"#}),
    ];
    for k in 1..=4 {
        let at = t0 + 0.2 + 0.5 * k as f64;
        messages.push(json!({"type": "receive", "time": at, "opcode": 1, "data": format!(r#"{{"type":"ping","id":{k}}}"#)}));
        messages.push(json!({"type": "send", "time": at + 0.002, "opcode": 1, "data": format!(r#"{{"type":"pong","id":{k}}}"#)}));
    }
    for n in 1..=5 {
        let at = t0 + 0.3 + 0.3 * n as f64;
        let text = format!(
            r#"{{"type":"echo","n":{n},"text":"hello","at":{}}}"#,
            (at * 1000.0) as u64
        );
        messages.push(json!({"type": "send", "time": at, "opcode": 1, "data": text}));
        messages.push(json!({"type": "receive", "time": at + 0.001, "opcode": 1, "data": text}));
    }
    for seq in 1..=20 {
        let at = t0 + 0.25 + 0.1 * seq as f64;
        messages.push(json!({"type": "receive", "time": at, "opcode": 1, "data": format!(r#"{{"type":"tick","topic":"prices","seq":{seq},"ts":{}}}"#, (at * 1000.0) as u64)}));
    }
    messages.sort_by(|a, b| {
        a["time"]
            .as_f64()
            .unwrap()
            .total_cmp(&b["time"].as_f64().unwrap())
    });
    json!({"log": {"version": "1.2", "creator": {"name": "test", "version": "1"}, "entries": [
        {"startedDateTime": "2026-12-07T12:00:00.000Z", "time": 5.0, "_resourceType": "document",
         "request": {"method": "GET", "url": "http://127.0.0.1:4000/", "headers": []},
         "response": {"status": 200, "headers": [], "content": {"mimeType": "text/html", "text": "<html>"}}},
        {"startedDateTime": "2026-12-07T12:00:00.050Z", "time": 3.0, "_resourceType": "fetch",
         "request": {"method": "POST", "url": "http://127.0.0.1:4000/login", "headers": [
            {"name": "Content-Type", "value": "application/json"}, {"name": "Cookie", "value": "a=b"}],
            "postData": {"mimeType": "application/json", "text": format!(r#"{{"user":"user0","password":"{password}"}}"#)}},
         "response": {"status": 200, "headers": [], "content": {"mimeType": "application/json",
            "text": r#"{"token":"tok-0123456789abcdef","user":"user0"}"#}}},
        {"startedDateTime": "2026-12-07T12:00:00.100Z", "time": 3000.0, "_resourceType": "websocket",
         "request": {"method": "GET", "url": "ws://127.0.0.1:4000/feed?token=tok-0123456789abcdef", "headers": [
            {"name": "Upgrade", "value": "websocket"}, {"name": "Sec-WebSocket-Key", "value": "x"}]},
         "response": {"status": 101, "headers": [], "content": {"mimeType": "", "text": ""}},
         "_webSocketMessages": messages}
    ]}})
    .to_string()
}

fn read(text: &str) -> Conversation {
    let capture = har::read(text).unwrap();
    conversation::read(&capture, &CaptureFilter::default()).unwrap()
}

#[test]
fn a_raw_websocket_session_becomes_login_connection_steps_streams_replies_and_expects() {
    let c = read(&feed_har("pw0"));
    assert_eq!(c.target, "ws://127.0.0.1:4000");
    assert_eq!(c.path.as_deref(), Some("/feed?token={{token}}"));
    assert_eq!(c.counts.exchanges, 1, "the page itself is left out");
    let [
        Step::Http {
            method,
            path,
            body: HttpBody::Json(body),
            headers,
            ..
        },
    ] = c.before_connect.as_slice()
    else {
        panic!("{:?}", c.before_connect);
    };
    assert_eq!((method.as_str(), path.as_str()), ("POST", "/login"));
    assert!(headers.is_empty(), "{headers:?}");
    assert_eq!(
        body,
        &json!({"user": "{{users.user}}", "password": "{{users.password}}"})
    );
    assert_eq!(
        c.values
            .columns
            .iter()
            .map(|c| c.value.as_str())
            .collect::<Vec<_>>(),
        ["user0", "pw0"]
    );
    assert_eq!(c.values.captures_of(0).len(), 1);

    // subscribe, then the answer waited for.
    let emits: Vec<&Step> = c
        .on_connect
        .iter()
        .filter(|s| !matches!(s, Step::Wait(_)))
        .collect();
    let [
        Step::Emit {
            event,
            payload: Payload::Data(data),
            ..
        },
        Step::WaitFor {
            event: any,
            matches: Some(m),
            ..
        },
    ] = emits.as_slice()
    else {
        panic!("{:?}", c.on_connect);
    };
    assert_eq!(event, "subscribe");
    assert_eq!(
        data,
        &json!({"type": "subscribe", "topic": "prices", "id": 1})
    );
    assert_eq!(
        (any.as_str(), m.as_str()),
        ("*", r#"/type == "subscribed""#)
    );

    // The echoes: a stream at the recorded pace, its counter and time made placeholders.
    let [stream] = c.streams.as_slice() else {
        panic!("{:?}", c.streams)
    };
    assert_eq!(stream.event, "echo");
    assert!((stream.every - 0.3).abs() < 0.001, "{}", stream.every);
    assert_eq!(
        stream.payload,
        Payload::Data(json!({"type": "echo", "n": "{{seq}}", "text": "hello", "at": "{{now_ms}}"}))
    );

    // Pings answered at once: a reply copying the id.
    let [handler] = c.handlers.as_slice() else {
        panic!("{:?}", c.handlers)
    };
    assert_eq!(handler.matches.as_deref(), Some(r#"/type == "ping""#));
    let Reply::Emit { event, payload, .. } = &handler.reply else {
        panic!("{handler:?}")
    };
    assert_eq!(event, "pong");
    assert_eq!(
        payload,
        &Payload::Data(json!({"type": "pong", "id": "{{/id}}"}))
    );

    // The echo comes back; the ticks are a numbered stream with a send time.
    let expects: Vec<(&str, Option<&str>)> = c
        .expects
        .iter()
        .map(|e| (e.event.as_str(), e.seq.as_deref()))
        .collect();
    assert_eq!(expects, [("echo", None), ("tick", Some("/seq"))]);
    assert_eq!(c.expects[1].timestamp.as_deref(), Some("/ts"));
}

#[test]
fn bad_hars_name_the_entry_or_the_place_in_the_file() {
    let e = har::read("{\"log\": {\"entries\": [").unwrap_err();
    assert!(e.message.contains("cut short"), "{e:?}");
    assert_eq!(e.place, "line 1, column 21");
    // Columns count characters from 1, as everywhere else (serde_json counts bytes, from 0).
    let e = har::read("{\"log\": {\"été\": x}}").unwrap_err();
    assert_eq!(e.place, "line 1, column 17", "{e:?}");
    let e = har::read("").unwrap_err();
    assert_eq!(e.place, "line 1, column 1", "{e:?}");
    let e = har::read("{\n").unwrap_err();
    assert_eq!(e.place, "line 2, column 1", "{e:?}");
    let e = har::read("{\"nothing\": 1}").unwrap_err();
    assert!(e.message.contains("log.entries"), "{e:?}");
    let e = har::read(r#"{"log": {"entries": [{"startedDateTime": "2026-12-07T12:00:00Z", "request": {"url": "http://h/"}}, {"request": {}}]}}"#).unwrap_err();
    assert_eq!(e.place, "entry 2");
    assert!(e.message.contains("startedDateTime"), "{e:?}");
}

#[test]
fn record_text_makes_the_scenario_and_data_file_without_touching_a_file() {
    let r = recorded(&feed_har("pw0"), CaptureFormat::Har).unwrap();
    let data = r.data.as_ref().expect("a data file");
    assert_eq!(data.name, "feed.users.csv");
    assert_eq!(data.text, "user,password\nuser0,pw0\n");
    assert!(
        r.scenario
            .starts_with("# Recorded by `volley record` from feed.har"),
        "{}",
        r.scenario
    );
    assert!(
        r.scenario.contains("file = \"feed.users.csv\""),
        "{}",
        r.scenario
    );
    let plan = compile(&r.scenario, r.data.as_ref());
    assert_eq!(plan.name, "feed");
    assert_eq!(plan.data[0].columns(), ["user", "password"]);

    let bad = recorded("{\"log\": {}}", CaptureFormat::Har).unwrap_err();
    assert!(
        matches!(&bad, Unrecordable::Malformed(b) if b.place.is_empty()),
        "{bad:?}"
    );
    let none = recorded(
        "{\"t\":0,\"conn\":1,\"kind\":\"connect\"}\n",
        CaptureFormat::InspectJsonl,
    )
    .unwrap_err();
    assert!(
        matches!(&none, Unrecordable::Nothing(why) if why.contains("no WebSocket")),
        "{none:?}"
    );
}

/// A HAR of one raw WebSocket and nothing else: `(seconds, "send" or "receive", text)`.
fn websocket_har(messages: &[(f64, &str, &str)]) -> String {
    let t0 = 1_796_644_800.0_f64;
    let messages: Vec<_> = messages
        .iter()
        .map(|(at, dir, text)| json!({"type": dir, "time": t0 + at, "opcode": 1, "data": text}))
        .collect();
    json!({"log": {"creator": {"name": "test"}, "entries": [
        {"startedDateTime": "2026-12-07T12:00:00.000Z", "time": 3000.0, "_resourceType": "websocket",
         "request": {"method": "GET", "url": "ws://127.0.0.1:4000/ws", "headers": []},
         "response": {"status": 101, "headers": [], "content": {"mimeType": "", "text": ""}},
         "_webSocketMessages": messages}
    ]}})
    .to_string()
}

#[test]
fn a_reply_that_sends_a_secret_sends_it_from_the_data_file_not_written_in_the_scenario() {
    let mut messages = Vec::new();
    for k in 1..=3 {
        let at = 0.5 * k as f64;
        let push = format!(r#"{{"op":"challenge","id":{k}}}"#);
        let reply = format!(r#"{{"op":"answer","id":{k},"signature":"sg-{k}9f8e7d6"}}"#);
        messages.push((at, "receive", push));
        messages.push((at + 0.002, "send", reply));
    }
    let messages: Vec<(f64, &str, &str)> = messages
        .iter()
        .map(|(a, d, t)| (*a, *d, t.as_str()))
        .collect();
    let r = recorded(&websocket_har(&messages), CaptureFormat::Har).unwrap();
    let [handler] = r.conversation.handlers.as_slice() else {
        panic!("{:?}", r.conversation.handlers)
    };
    let Reply::Emit { payload, .. } = &handler.reply else {
        panic!("{handler:?}")
    };
    assert_eq!(
        payload,
        &Payload::Data(
            json!({"op": "answer", "id": "{{/id}}", "signature": "{{users.signature}}"})
        )
    );
    assert!(!r.scenario.contains("sg-19f8e7d6"), "{}", r.scenario);
    assert_eq!(r.data.unwrap().text, "signature\nsg-19f8e7d6\n");
}

#[test]
fn a_stream_whose_secret_changes_sends_the_first_one_and_lists_none() {
    let sent: Vec<String> = (1..=4)
        .map(|n| format!(r#"{{"type":"move","n":{n},"token":"mv-tok-{n}1x2y","text":"hi {n}"}}"#))
        .collect();
    let messages: Vec<(f64, &str, &str)> = sent
        .iter()
        .enumerate()
        .map(|(i, t)| (0.3 * (i + 1) as f64, "send", t.as_str()))
        .collect();
    let r = recorded(&websocket_har(&messages), CaptureFormat::Har).unwrap();
    let [stream] = r.conversation.streams.as_slice() else {
        panic!("{:?}", r.conversation.streams)
    };
    assert_eq!(
        stream.payload,
        Payload::Data(
            json!({"type": "move", "n": "{{seq}}", "token": "{{users.token}}",
            "text": "{{one_of(hi 1, hi 2, hi 3, hi 4)}}"})
        )
    );
    for n in 1..=4 {
        assert!(
            !r.scenario.contains(&format!("mv-tok-{n}1x2y")),
            "{}",
            r.scenario
        );
    }
    compile(&r.scenario, r.data.as_ref());
    // The column holds the value the first event sent, not a placeholder of them all.
    assert_eq!(r.data.unwrap().text, "token\nmv-tok-11x2y\n");
}

#[test]
fn a_socketio_2_polling_session_is_recorded_its_posts_answered_ok_and_no_client_connect() {
    let v3 = |packets: &[&str]| -> String {
        packets
            .iter()
            .map(|p| format!("{}:{p}", p.chars().count()))
            .collect()
    };
    let entry = |at: &str, method: &str, query: &str, post: Option<String>, answer: String| {
        let mut e = json!({"startedDateTime": format!("2026-12-07T12:00:0{at}Z"), "time": 5.0,
            "_resourceType": "xhr",
            "request": {"method": method, "url": format!("http://127.0.0.1:5000/socket.io/?EIO=3&transport=polling{query}"), "headers": []},
            "response": {"status": 200, "headers": [], "content": {"mimeType": "text/plain", "text": answer}}});
        if let Some(text) = post {
            e["request"]["postData"] =
                json!({"mimeType": "text/plain;charset=UTF-8", "text": text});
        }
        e
    };
    let open = r#"0{"sid":"v3sid","upgrades":[],"pingInterval":25000,"pingTimeout":5000}"#;
    let har = json!({"log": {"entries": [
        entry("0.000", "GET", "", None, v3(&[open, "40"])),
        entry("0.100", "POST", "&sid=v3sid", Some(v3(&[r#"42["join",{"room":"r1"}]"#])), "ok".into()),
        entry("0.200", "GET", "&sid=v3sid", None, v3(&[r#"42["joined",{"room":"r1"}]"#])),
    ]}})
    .to_string();
    // Socket.IO 2 joins `/` with no CONNECT from the client: the session is still recorded.
    let r = recorded(&har, CaptureFormat::Har).unwrap();
    let c = &r.conversation;
    let sio = c.socketio.as_ref().unwrap();
    assert_eq!(
        (sio.version, sio.transport, sio.namespace.as_str()),
        (
            crate::protocol::engineio::Version::V3,
            crate::transport::engine::Transport::Polling,
            "/"
        )
    );
    assert_eq!((c.counts.sent, c.counts.received), (1, 1));
    compile(&r.scenario, None);
}

#[test]
fn a_recording_as_long_as_any_time_gives_durations_volley_reads() {
    // 31,000 years between two messages: the duration, the wait and the stream's rate are
    // the longest volley reads, not numbers its parser refuses.
    let far = 1e12;
    let messages = [
        (0.1, "send", r#"{"type":"hello"}"#),
        (far, "send", r#"{"type":"tick","n":1}"#),
        (2.0 * far, "send", r#"{"type":"tick","n":2}"#),
        (3.0 * far, "send", r#"{"type":"tick","n":3}"#),
        (3.0 * far + 1.0, "send", r#"{"type":"bye"}"#),
    ];
    let r = recorded(&websocket_har(&messages), CaptureFormat::Har).unwrap();
    assert!(
        r.scenario.contains("duration = \"18446744073s\""),
        "{}",
        r.scenario
    );
    compile(&r.scenario, None);
}

#[test]
fn control_characters_of_a_capture_are_escaped_in_the_scenarios_comments() {
    let jsonl = [
        r#"{"time":"2026-12-07T12:00:0\u0001Z","t":0,"conn":1,"kind":"connect","upstream":"http://h:1"}"#,
        r#"{"t":0.1,"conn":1,"dir":"c2s","kind":"http_request","target":"/ws","headers":{"Upgrade":"websocket"}}"#,
        r#"{"t":0.2,"conn":1,"dir":"s2c","kind":"http_response","status":101}"#,
        r#"{"t":0.3,"conn":1,"dir":"c2s","kind":"frame","opcode":"text","text":"{\"type\":\"a\u007f\",\"n\\n\\u0001\":1}"}"#,
        r#"{"t":0.6,"conn":1,"dir":"c2s","kind":"frame","opcode":"text","text":"{\"type\":\"a\u007f\",\"n\\n\\u0001\":2}"}"#,
        r#"{"t":0.9,"conn":1,"dir":"c2s","kind":"frame","opcode":"text","text":"{\"type\":\"a\u007f\",\"n\\n\\u0001\":3}"}"#,
    ]
    .join("\n");
    let r = recorded(&jsonl, CaptureFormat::InspectJsonl).unwrap();
    assert!(r.scenario.contains("12:00:0\\u0001Z"), "{}", r.scenario);
    // A stream's comment names the field that varies, escaped.
    assert_eq!(r.conversation.streams.len(), 1);
    assert!(
        r.scenario.contains("`n \\u0001` as {{seq}}"),
        "{}",
        r.scenario
    );
    compile(&r.scenario, None);
}

#[test]
fn an_inspect_capture_whose_server_is_no_host_and_port_is_refused_at_its_line() {
    let capture = |connect: &str, host: &str| {
        [
            connect.to_string(),
            format!(r#"{{"t":0.1,"conn":1,"dir":"c2s","kind":"http_request","target":"/ws","headers":{{"Host":"{host}","Upgrade":"websocket"}}}}"#),
            r#"{"t":0.2,"conn":1,"dir":"s2c","kind":"http_response","status":101}"#.into(),
            r#"{"t":0.3,"conn":1,"dir":"c2s","kind":"frame","opcode":"text","text":"hi"}"#.into(),
        ]
        .join("\n")
    };
    let refused = |text: &str| match recorded(text, CaptureFormat::InspectJsonl) {
        Err(Unrecordable::Malformed(bad)) => bad,
        other => panic!("{other:?}"),
    };
    let bad = refused(&capture(
        r#"{"t":0,"conn":1,"kind":"connect","upstream":"http://12\ufffd.0.0.1:7000"}"#,
        "127.0.0.1:7000",
    ));
    assert_eq!(bad.place, "line 1");
    assert!(bad.message.contains("upstream"), "{bad:?}");
    let bad = refused(&capture(r#"{"t":0,"conn":1,"kind":"connect"}"#, "h:99999"));
    assert_eq!(bad.place, "line 2");
    assert!(bad.message.contains("\"h:99999\""), "{bad:?}");
    let ok = capture(r#"{"t":0,"conn":1,"kind":"connect"}"#, "h:8080");
    let r = recorded(&ok, CaptureFormat::InspectJsonl).unwrap();
    assert_eq!(r.conversation.target, "ws://h:8080");
}

/// A HAR of HTTP calls only, then a raw WebSocket that says hello: `(method, mime, body)`.
fn calls_har(calls: &[(&str, &str, &str)]) -> String {
    let mut entries: Vec<_> = calls
        .iter()
        .map(|(method, mime, body)| {
            json!({"startedDateTime": "2026-12-07T12:00:00.000Z", "time": 5.0, "_resourceType": "fetch",
             "request": {"method": method, "url": "http://127.0.0.1:4000/login", "headers": [],
                "postData": {"mimeType": mime, "text": body}},
             "response": {"status": 200, "headers": [], "content": {"mimeType": "application/json", "text": "{}"}}})
        })
        .collect();
    entries.push(json!({"startedDateTime": "2026-12-07T12:00:01.000Z", "time": 1000.0, "_resourceType": "websocket",
        "request": {"method": "GET", "url": "ws://127.0.0.1:4000/ws", "headers": []},
        "response": {"status": 101, "headers": [], "content": {"mimeType": "", "text": ""}},
        "_webSocketMessages": [{"type": "send", "time": 1_796_644_801.5, "opcode": 1, "data": "hello"}]}));
    json!({"log": {"entries": entries}}).to_string()
}

#[test]
fn json_posted_as_text_has_its_credentials_in_the_data_file() {
    // `fetch(url, {method: "POST", body: JSON.stringify(...)})` sends text/plain.
    let body = r#"{"login":"bob","passwd":"b0b-pa55-w0rd"}"#;
    for mime in ["text/plain;charset=UTF-8", ""] {
        let har = calls_har(&[("POST", mime, body)]);
        let r = recorded(&har, CaptureFormat::Har).unwrap();
        let [
            Step::Http {
                body: HttpBody::Text(text, _),
                ..
            },
        ] = r.conversation.before_connect.as_slice()
        else {
            panic!("{:?}", r.conversation.before_connect)
        };
        assert_eq!(
            text,
            r#"{"login":"{{users.login}}","passwd":"{{users.passwd}}"}"#
        );
        assert!(!r.scenario.contains("b0b-pa55-w0rd"), "{}", r.scenario);
        compile(&r.scenario, r.data.as_ref());
    }
}

#[test]
fn a_call_whose_method_volley_cannot_send_is_left_out_with_a_note() {
    let har = calls_har(&[
        ("P\u{fffd}ST", "", "x"),
        ("post", "", "x"),
        ("PUT", "", "x"),
    ]);
    let r = recorded(&har, CaptureFormat::Har).unwrap();
    let methods: Vec<&str> = r
        .conversation
        .before_connect
        .iter()
        .filter_map(|s| match s {
            Step::Http { method, .. } => Some(method.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(methods, ["PUT"]);
    assert!(
        r.scenario
            .contains("entry 2: the call's method \"post\" is not one volley sends"),
        "{}",
        r.scenario
    );
    compile(&r.scenario, r.data.as_ref());
}

#[test]
fn headers_http_does_not_allow_are_left_out_and_each_name_is_written_once() {
    let har = json!({"log": {"entries": [
        {"startedDateTime": "2026-12-07T12:00:00.000Z", "time": 1000.0, "_resourceType": "websocket",
         "request": {"method": "GET", "url": "ws://127.0.0.1:4000/ws", "headers": [
            {"name": "Content-T\u{fffd}pe", "value": "a"}, {"name": "X-Bad-Value", "value": "a\u{1}b"},
            {"name": "X-Room", "value": "blue"}, {"name": "x-room", "value": "red"}]},
         "response": {"status": 101, "headers": [], "content": {"mimeType": "", "text": ""}},
         "_webSocketMessages": [{"type": "send", "time": 1_796_644_800.5, "opcode": 1, "data": "hello"}]}
    ]}})
    .to_string();
    let r = recorded(&har, CaptureFormat::Har).unwrap();
    assert_eq!(
        r.conversation.headers,
        [("X-Room".to_string(), "blue".to_string())]
    );
    assert!(
        r.scenario
            .contains("header \"X-Bad-Value\" has characters HTTP does not allow"),
        "{}",
        r.scenario
    );
    compile(&r.scenario, None);
}

#[test]
fn a_socketio_query_key_given_twice_is_written_once() {
    let har = json!({"log": {"entries": [
        {"startedDateTime": "2026-12-07T12:00:00.000Z", "time": 1000.0, "_resourceType": "websocket",
         "request": {"method": "GET", "url": "ws://127.0.0.1:4000/socket.io/?EIO=4&transport=websocket&room=a&room=b", "headers": []},
         "response": {"status": 101, "headers": [], "content": {"mimeType": "", "text": ""}},
         "_webSocketMessages": [
            {"type": "receive", "time": 1_796_644_800.1, "opcode": 1, "data": r#"0{"sid":"s1","upgrades":[],"pingInterval":25000,"pingTimeout":5000}"#},
            {"type": "send", "time": 1_796_644_800.2, "opcode": 1, "data": "40"},
            {"type": "send", "time": 1_796_644_800.5, "opcode": 1, "data": r#"42["hello",1]"#}]}
    ]}})
    .to_string();
    let r = recorded(&har, CaptureFormat::Har).unwrap();
    let query = &r.conversation.socketio.as_ref().unwrap().query;
    assert_eq!(query, &[("room".to_string(), "a".to_string())]);
    compile(&r.scenario, None);
}

#[test]
fn a_value_is_captured_only_by_a_step_before_what_uses_it() {
    // The connection opens before the login that answers its token (clocks of a capture need
    // not agree), and an emit comes before the call whose answer holds what it sends: neither
    // can use a capture of a later step.
    let jsonl = [
        r#"{"t":0.0,"conn":2,"kind":"connect","upstream":"http://127.0.0.1:4000"}"#,
        r#"{"t":0.1,"conn":2,"dir":"c2s","kind":"http_request","target":"/feed?token=tok-0123456789","headers":{"Upgrade":"websocket"}}"#,
        r#"{"t":0.2,"conn":2,"dir":"s2c","kind":"http_response","status":101}"#,
        r#"{"t":0.3,"conn":2,"dir":"c2s","kind":"frame","opcode":"text","text":"{\"type\":\"join\",\"room\":\"room-42abcdef\"}"}"#,
        r#"{"t":0.5,"conn":1,"kind":"connect","upstream":"http://127.0.0.1:4000"}"#,
        r#"{"t":0.6,"conn":1,"dir":"c2s","kind":"http_request","method":"POST","target":"/login","headers":{}}"#,
        r#"{"t":0.7,"conn":1,"dir":"s2c","kind":"http_response","status":200,"headers":{"Content-Type":"application/json"}}"#,
        r#"{"t":0.7,"conn":1,"dir":"s2c","kind":"http_body","text":"{\"token\":\"tok-0123456789\",\"room\":\"room-42abcdef\"}"}"#,
        r#"{"t":0.9,"conn":2,"dir":"c2s","kind":"frame","opcode":"text","text":"{\"type\":\"say\",\"room\":\"room-42abcdef\"}"}"#,
    ]
    .join("\n");
    let r = recorded(&jsonl, CaptureFormat::InspectJsonl).unwrap();
    assert_eq!(
        r.conversation.path.as_deref(),
        Some("/feed?token={{users.token}}")
    );
    let sent: Vec<&Payload> = r
        .conversation
        .on_connect
        .iter()
        .filter_map(|s| match s {
            Step::Emit { payload, .. } => Some(payload),
            _ => None,
        })
        .collect();
    assert_eq!(
        sent,
        [
            &Payload::Data(json!({"type": "join", "room": "room-42abcdef"})),
            &Payload::Data(json!({"type": "say", "room": "{{room}}"})),
        ]
    );
    compile(&r.scenario, r.data.as_ref());
}

#[test]
fn a_match_on_a_kind_with_a_control_character_is_written_as_toml_reads_it() {
    let mut messages = Vec::new();
    for k in 1..=3 {
        let at = 0.5 * k as f64;
        messages.push((
            at,
            "receive",
            format!("{{\"type\":\"pi\u{7f}ng\",\"id\":{k}}}"),
        ));
        messages.push((
            at + 0.002,
            "send",
            format!("{{\"type\":\"pong\",\"id\":{k}}}"),
        ));
    }
    let messages: Vec<(f64, &str, &str)> = messages
        .iter()
        .map(|(a, d, t)| (*a, *d, t.as_str()))
        .collect();
    let r = recorded(&websocket_har(&messages), CaptureFormat::Har).unwrap();
    assert!(
        r.scenario.contains(r#"match = "/type == \"pi\u007Fng\"""#),
        "{}",
        r.scenario
    );
    compile(&r.scenario, None);
}

#[test]
fn query_values_are_percent_encoded_again_as_the_capture_had_them() {
    let har = json!({"log": {"entries": [
        {"startedDateTime": "2026-12-07T12:00:00.000Z", "time": 5.0, "_resourceType": "fetch",
         "request": {"method": "GET", "url": "http://127.0.0.1:4000/search?q=a%20b+c&next=%2Fhome%3Fx%3D1", "headers": []},
         "response": {"status": 200, "headers": [], "content": {"mimeType": "application/json", "text": "{}"}}},
        {"startedDateTime": "2026-12-07T12:00:01.000Z", "time": 1000.0, "_resourceType": "websocket",
         "request": {"method": "GET", "url": "ws://127.0.0.1:4000/feed?%22EIO=3&room=%7B%7Bblue%7D%7D", "headers": []},
         "response": {"status": 101, "headers": [], "content": {"mimeType": "", "text": ""}},
         "_webSocketMessages": [{"type": "send", "time": 1_796_644_801.5, "opcode": 1, "data": "hello"}]}
    ]}})
    .to_string();
    let r = recorded(&har, CaptureFormat::Har).unwrap();
    let [Step::Http { path, .. }] = r.conversation.before_connect.as_slice() else {
        panic!("{:?}", r.conversation.before_connect)
    };
    assert_eq!(path, "/search?q=a%20b%20c&next=%2Fhome%3Fx%3D1");
    assert_eq!(
        r.conversation.path.as_deref(),
        Some("/feed?%22EIO=3&room=%7B%7Bblue%7D%7D")
    );
    compile(&r.scenario, None);
}

#[test]
fn recorded_text_with_braces_is_written_as_templates_render_it() {
    let messages = [(
        0.5,
        "send",
        r#"{"type":"say","text":"{{not a placeholder}}","{{key}}":"{","user":"{ann"}"#,
    )];
    let r = recorded(&websocket_har(&messages), CaptureFormat::Har).unwrap();
    let [Step::Wait(_), Step::Emit { payload, .. }] = r.conversation.on_connect.as_slice() else {
        panic!("{:?}", r.conversation.on_connect)
    };
    assert_eq!(
        payload,
        &Payload::Data(
            json!({"type": "say", "text": "{{one_of({)}}{not a placeholder}}",
            "{{one_of({)}}{key}}": "{", "user": "{ann"})
        )
    );
    // And the replay sends what was recorded.
    let plan = compile(&r.scenario, None);
    let sent = plan.groups[0]
        .on_connect
        .iter()
        .find_map(|step| match &step.action {
            crate::scenario::Action::Emit { message, .. } => Some(
                message.args[0]
                    .render(&crate::scenario::template::Fill::basic(0, 0, "users"), None),
            ),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&sent).unwrap(),
        serde_json::from_str::<serde_json::Value>(messages[0].2).unwrap()
    );
}

/// A HAR of one Socket.IO session over WebSocket: `(seconds, "send" or "receive", packet)`
/// after the open and the CONNECT.
fn socketio_har(packets: &[(f64, &str, &str)]) -> String {
    let mut messages = vec![
        (
            0.01,
            "receive",
            r#"0{"sid":"s1","upgrades":[],"pingInterval":25000,"pingTimeout":5000}"#,
        ),
        (0.02, "send", "40"),
        (0.03, "receive", r#"40{"sid":"n1"}"#),
    ];
    messages.extend_from_slice(packets);
    let har = websocket_har(&messages);
    har.replace(
        "ws://127.0.0.1:4000/ws",
        "ws://127.0.0.1:4000/socket.io/?EIO=4&transport=websocket",
    )
}

#[test]
fn awaited_socketio_events_get_metric_names_volley_takes() {
    let packets = [
        (0.5, "send", r#"42["go",1]"#),
        (0.6, "receive", r#"42["ack",{"ok":true}]"#),
        (1.5, "send", r#"42["join",1]"#),
        (1.6, "receive", "42[\"joi\u{fffd}ed\",{}]"),
        (2.5, "send", r#"42["leave",1]"#),
        (2.6, "receive", r#"42["left",{}]"#),
    ];
    let r = recorded(&socketio_har(&packets), CaptureFormat::Har).unwrap();
    let waits: Vec<(&str, Option<&str>)> = r
        .conversation
        .on_connect
        .iter()
        .filter_map(|s| match s {
            Step::WaitFor { event, name, .. } => Some((event.as_str(), name.as_deref())),
            _ => None,
        })
        .collect();
    assert_eq!(
        waits,
        [
            ("ack", Some("ack_event")),
            ("joi\u{fffd}ed", Some("joi_ed")),
            ("left", None)
        ]
    );
    compile(&r.scenario, None);
}

#[test]
fn statuses_a_step_cannot_check_are_not_written_and_no_status_is_wrapped() {
    let mut har: serde_json::Value =
        serde_json::from_str(&calls_har(&[("POST", "", "x")])).unwrap();
    har["log"]["entries"][0]["response"]["status"] = json!(799);
    let r = recorded(&har.to_string(), CaptureFormat::Har).unwrap();
    assert!(!r.scenario.contains("status ="), "{}", r.scenario);
    compile(&r.scenario, r.data.as_ref());

    // 70000 is no status; as 16 bits it was 4464.
    let jsonl = [
        r#"{"t":0,"conn":1,"kind":"connect","upstream":"http://h:1"}"#,
        r#"{"t":0.1,"conn":1,"dir":"c2s","kind":"http_request","method":"POST","target":"/login"}"#,
        r#"{"t":0.2,"conn":1,"dir":"s2c","kind":"http_response","status":70000}"#,
    ]
    .join("\n");
    let Err(Unrecordable::Malformed(bad)) = recorded(&jsonl, CaptureFormat::InspectJsonl) else {
        panic!("not refused")
    };
    assert_eq!(bad.place, "line 3");
    assert!(bad.message.contains("70000 is no HTTP status"), "{bad:?}");
}

#[test]
fn a_number_larger_than_toml_integers_is_sent_as_its_digits_in_a_string() {
    let messages = [(0.5, "send", r#"{"type":"big","id":18446744073709551615}"#)];
    let r = recorded(&websocket_har(&messages), CaptureFormat::Har).unwrap();
    assert!(
        r.scenario.contains(r#"id = "18446744073709551615""#),
        "{}",
        r.scenario
    );
    compile(&r.scenario, None);
}

#[test]
fn a_namespace_volley_cannot_connect_to_is_no_conversation_to_record() {
    let har = socketio_har(&[(0.5, "send", r#"42["hello",1]"#)])
        .replace(r#""data":"40""#, r#""data":"40/chat text\"x,""#);
    let Err(Unrecordable::Nothing(why)) = recorded(&har, CaptureFormat::Har) else {
        panic!("recorded")
    };
    assert!(
        why.starts_with(
            "entry 1, WebSocket message 2: the client connected to a namespace volley cannot"
        ),
        "{why}"
    );
}

#[test]
fn a_socketio_2_connect_payload_is_left_out_with_a_note() {
    let har = socketio_har(&[(0.5, "send", r#"42["hello",1]"#)])
        .replace("EIO=4", "EIO=3")
        .replace(
            r#""data":"40""#,
            r#""data":"40/chat,{\"token\":\"tok-12345678\"}""#,
        );
    let r = recorded(&har, CaptureFormat::Har).unwrap();
    let sio = r.conversation.socketio.as_ref().unwrap();
    assert_eq!(
        (sio.namespace.as_str(), sio.auth.is_none()),
        ("/chat", true)
    );
    assert!(
        r.scenario
            .contains("the CONNECT carried a payload, which Socket.IO 2"),
        "{}",
        r.scenario
    );
    compile(&r.scenario, r.data.as_ref());
}

#[test]
fn numbers_at_the_top_of_their_range_are_no_counter_and_no_panic() {
    // A server stream numbered up to u64::MAX, a client stream up to i64::MAX: one more
    // overflowed (a panic in a debug build).
    let mut messages = Vec::new();
    for k in 0..3u64 {
        let at = 0.3 * (k + 1) as f64;
        let tick = format!(r#"{{"type":"tick","seq":{}}}"#, u64::MAX - 2 + k);
        let sent = format!(r#"{{"type":"move","n":{}}}"#, i64::MAX - 2 + k as i64);
        messages.push((at, "receive", tick));
        messages.push((at + 0.01, "send", sent));
    }
    messages.push((1.5, "receive", r#"{"type":"tick","seq":0}"#.to_string()));
    messages.push((
        1.51,
        "send",
        r#"{"type":"move","n":-9223372036854775808}"#.to_string(),
    ));
    let messages: Vec<(f64, &str, &str)> = messages
        .iter()
        .map(|(a, d, t)| (*a, *d, t.as_str()))
        .collect();
    let r = recorded(&websocket_har(&messages), CaptureFormat::Har).unwrap();
    assert!(
        r.conversation.expects.is_empty(),
        "{:?}",
        r.conversation.expects
    );
    compile(&r.scenario, None);
}

#[test]
fn json_sent_as_a_form_has_its_credentials_in_the_data_file() {
    // jQuery's $.post(url, JSON.stringify(...)) labels JSON as a form.
    let body = r#"{"login":"bob","passwd":"b0b-pa55-w0rd"}"#;
    let har = calls_har(&[("POST", "application/x-www-form-urlencoded", body)]);
    let r = recorded(&har, CaptureFormat::Har).unwrap();
    assert!(!r.scenario.contains("b0b-pa55-w0rd"), "{}", r.scenario);
    compile(&r.scenario, r.data.as_ref());
    // A real form keeps its names as recorded: they are no templates.
    let har = calls_har(&[(
        "POST",
        "application/x-www-form-urlencoded",
        "a%7B%7Bb=1&user=ann&password=pw-12345678",
    )]);
    let r = recorded(&har, CaptureFormat::Har).unwrap();
    let [
        Step::Http {
            body: HttpBody::Form(fields),
            ..
        },
    ] = r.conversation.before_connect.as_slice()
    else {
        panic!("{:?}", r.conversation.before_connect)
    };
    let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["a{{b", "user", "password"]);
    compile(&r.scenario, r.data.as_ref());
}

#[test]
fn a_stream_of_texts_a_choice_list_cannot_hold_is_sent_as_the_first() {
    for texts in [["a", "", "c"], ["a", " b", "c"]] {
        let sent: Vec<String> = texts
            .iter()
            .enumerate()
            .map(|(n, t)| format!(r#"{{"type":"say","n":{n},"text":"{t}"}}"#))
            .collect();
        let messages: Vec<(f64, &str, &str)> = sent
            .iter()
            .enumerate()
            .map(|(i, t)| (0.3 * (i + 1) as f64, "send", t.as_str()))
            .collect();
        let r = recorded(&websocket_har(&messages), CaptureFormat::Har).unwrap();
        let [stream] = r.conversation.streams.as_slice() else {
            panic!("{:?}", r.conversation.streams)
        };
        assert_eq!(
            stream.payload,
            Payload::Data(json!({"type": "say", "n": "{{seq}}", "text": "a"}))
        );
        compile(&r.scenario, None);
    }
}
