use serde_json::json;

use super::*;

fn rules() -> SecretRules {
    SecretRules::hidden(&[])
}

#[test]
fn secret_query_values_are_hidden_in_targets_urls_and_messages() {
    let r = rules();
    let cases = [
        (
            "/socket.io/?EIO=4&transport=polling&token=abc123",
            "/socket.io/?EIO=4&transport=polling&token=[redacted]",
        ),
        (
            "/chat?access_token=eyJ.x.y&room=1",
            "/chat?access_token=[redacted]&room=1",
        ),
        (
            "ws://h:1/echo?apiKey=k3y9&sid=AbC#frag",
            "ws://h:1/echo?apiKey=[redacted]&sid=AbC#frag",
        ),
        (
            "the path `/login?password=hunter2` is not valid",
            "the path `/login?password=[redacted]` is not valid",
        ),
        ("/?token=", "/?token="),
        ("/?token&EIO=4", "/?token&EIO=4"),
        (
            "/?EIO=4&transport=websocket&sid=x1",
            "/?EIO=4&transport=websocket&sid=x1",
        ),
        ("a & b ? c", "a & b ? c"),
        ("/?token=[redacted]", "/?token=[redacted]"),
        (
            "/?Token=a&TOKEN=b&x_auth_token=c",
            "/?Token=[redacted]&TOKEN=[redacted]&x_auth_token=[redacted]",
        ),
    ];
    for (text, shown) in cases {
        assert_eq!(r.redact_query(text, None), shown, "{text}");
    }
    assert_eq!(
        SecretRules::shown().redact_query(cases[0].0, None),
        cases[0].0
    );
}

#[test]
fn a_url_quoted_in_another_value_has_its_query_secrets_hidden_too() {
    // Found by the fuzz target `secrets`: the value of a key that is not secret was skipped
    // whole, so the token of a URL inside it (a redirect, a `next`) was shown.
    let mut learned = SecretValues::default();
    assert_eq!(
        rules().redact_query(
            "http://app/login?next=/ws?token=tok-9f8e7d&n=1&back=http://b/?api_key=k-77x",
            Some(&mut learned)
        ),
        "http://app/login?next=/ws?token=[redacted]&n=1&back=http://b/?api_key=[redacted]"
    );
    let mut later = "echo tok-9f8e7d".to_string();
    assert!(learned.scrub(&mut later), "the hidden value is learned");
}

#[test]
fn names_the_user_gives_are_secret_as_query_keys_headers_and_body_fields() {
    let r = SecretRules::hidden(&["room".to_string(), "X-Sign".to_string()]);
    assert_eq!(
        r.redact_query("/?room=r1&x-sign=abcd&n=1", None),
        "/?room=[redacted]&x-sign=[redacted]&n=1"
    );
    assert_eq!(r.redact_header("x-sign", "abcd", None), "[redacted]");
    assert_eq!(
        r.redact_json_members(r#"{"Room":"r1","n":1}"#, None),
        r#"{"Room":"[redacted]","n":1}"#
    );
    assert_eq!(r.redact_form("room=r1&n=1", None), "room=[redacted]&n=1");
    assert_eq!(rules().redact_query("/?room=r1", None), "/?room=r1");
    assert_eq!(rules().redact_header("X-Sign", "abcd", None), "abcd");
}

#[test]
fn hidden_query_values_are_learned_as_written_and_decoded() {
    let mut learned = SecretValues::default();
    let shown = rules().redact_query("/x?token=a%2Bb%2Fc%3D&n=1", Some(&mut learned));
    assert_eq!(shown, "/x?token=[redacted]&n=1");
    let mut echo = r#"["welcome","a+b/c="] and a%2Bb%2Fc%3D"#.to_string();
    assert!(learned.scrub(&mut echo));
    assert_eq!(echo, r#"["welcome","[redacted]"] and [redacted]"#);
}

#[test]
fn subprotocol_tokens_are_hidden_and_names_kept() {
    let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    let cases = [
        (
            format!("access_token, {jwt}"),
            "access_token, [redacted]".to_string(),
        ),
        ("Bearer, abc123".into(), "Bearer, [redacted]".into()),
        (
            "graphql-ws, Authorization, s3cr3t".into(),
            "graphql-ws, Authorization, [redacted]".into(),
        ),
        (jwt.to_string(), REDACTED.to_string()),
        (
            "chat, d41d8cd98f00b204e9800998ecf8427e".into(),
            "chat, [redacted]".into(),
        ),
        (
            "graphql-transport-ws, wamp.2.json, v12.stomp, ocpp2.0.1, mqtt".into(),
            "graphql-transport-ws, wamp.2.json, v12.stomp, ocpp2.0.1, mqtt".into(),
        ),
        (
            "notificationchannel-netapi-rest.openmobilealliance.org".into(),
            "notificationchannel-netapi-rest.openmobilealliance.org".into(),
        ),
        ("access_token".into(), "access_token".into()),
    ];
    for (value, shown) in cases {
        assert_eq!(text::redact_subprotocols(&value, None), shown, "{value}");
    }
}

#[test]
fn a_subprotocol_token_hidden_in_the_request_is_hidden_in_the_echo() {
    let mut learned = SecretValues::default();
    let r = rules();
    let request = r.redact_header(
        "Sec-WebSocket-Protocol",
        "access_token, tok3n",
        Some(&mut learned),
    );
    assert_eq!(request, "access_token, [redacted]");
    let mut echo = "tok3n".to_string();
    learned.scrub(&mut echo);
    assert_eq!(echo, REDACTED);
}

#[test]
fn headers_are_hidden_by_name_and_urls_in_them_by_query() {
    let r = rules();
    assert_eq!(r.redact_header("Authorization", "Bearer x", None), REDACTED);
    assert_eq!(r.redact_header("set-cookie", "sid=1", None), REDACTED);
    assert_eq!(r.redact_header("X-Api-Key", "k", None), REDACTED);
    assert_eq!(
        r.redact_header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", None),
        "dGhlIHNhbXBsZSBub25jZQ=="
    );
    assert_eq!(
        r.redact_header("Referer", "http://app/?token=abcd&x=1", None),
        "http://app/?token=[redacted]&x=1"
    );
    assert_eq!(r.redact_header("Host", "example", None), "example");
    assert_eq!(
        SecretRules::shown().redact_header("Authorization", "Bearer x", None),
        "Bearer x"
    );
}

#[test]
fn known_values_are_scrubbed_in_every_form_and_short_ones_not() {
    let mut known = SecretValues::default();
    known.add("p\"w/1 x");
    known.add("abc");
    known.add("p\"w/1 x");
    let mut json_text = r#"{"pw":"p\"w/1 x"}"#.to_string();
    assert!(known.scrub(&mut json_text));
    assert_eq!(json_text, r#"{"pw":"[redacted]"}"#);
    let mut query = "/?x=p%22w%2F1%20x".to_string();
    known.scrub(&mut query);
    assert_eq!(query, "/?x=[redacted]");
    let mut short = "abc abc".to_string();
    assert!(!known.scrub(&mut short));
    let mut args = json!(["p\"w/1 x", {"n": 1, "k": "is p\"w/1 x"}]);
    known.scrub_json(&mut args);
    assert_eq!(args, json!(["[redacted]", {"n": 1, "k": "is [redacted]"}]));
}

#[test]
fn hex_previews_are_scrubbed_at_byte_boundaries_only() {
    let mut known = SecretValues::default();
    known.add("\u{12}\u{34}\u{56}\u{78}");
    let mut aligned = "ff12345678ff".to_string();
    known.scrub_hex(&mut aligned);
    assert_eq!(aligned, "ff[redacted]ff");
    let mut misaligned = "f12345678f".to_string();
    known.scrub_hex(&mut misaligned);
    assert_eq!(misaligned, "f12345678f");
}

#[test]
fn a_peer_cannot_grow_the_known_values_past_the_bound() {
    let mut known = SecretValues::default();
    for i in 0..1000 {
        known.add(&format!("v{i:04}x"));
    }
    let mut text = "v0063x v0064x".to_string();
    known.scrub(&mut text);
    assert_eq!(text, "[redacted] v0064x");
}

#[test]
fn messages_lose_query_secrets_and_the_known_values() {
    let message = "step `login`: HTTP 401 {\"error\":\"bad password hunter22 for /a?token=t0k3n\"}";
    let shown = rules().redact_message(message.to_string(), ["hunter22", "xy"]);
    assert_eq!(
        shown,
        "step `login`: HTTP 401 {\"error\":\"bad password [redacted] for /a?token=[redacted]\"}"
    );
    let kept = SecretRules::shown().redact_message(message.to_string(), ["hunter22"]);
    assert_eq!(kept, message);
}

#[test]
fn a_document_loses_auth_secret_keys_headers_and_query_values() {
    let mut scenario = json!({
        "name": "chat",
        "target": "ws://127.0.0.1:9/echo?token=abcd&room=1",
        "headers": {
            "Authorization": "Bearer xyz",
            "Sec-WebSocket-Protocol": "access_token, t0k3n-value",
            "X-Trace": "1"
        },
        "socketio": { "auth": { "token": "{{token}}" }, "query": { "access_token": "q", "room": "a" } },
        "group": [{
            "name": "g",
            "before_connect": [{
                "http": "POST /login?apikey=k1k2",
                "json": { "user": "u", "password": "{{users.password}}" },
                "capture": { "token": "/token" }
            }]
        }],
        "thresholds": { "token.p99": "< 50ms" }
    });
    rules().redact_document(&mut scenario);
    assert_eq!(
        scenario,
        json!({
            "name": "chat",
            "target": "ws://127.0.0.1:9/echo?token=[redacted]&room=1",
            "headers": {
                "Authorization": "[redacted]",
                "Sec-WebSocket-Protocol": "access_token, [redacted]",
                "X-Trace": "1"
            },
            "socketio": { "auth": "[redacted]", "query": { "access_token": "[redacted]", "room": "a" } },
            "group": [{
                "name": "g",
                "before_connect": [{
                    "http": "POST /login?apikey=[redacted]",
                    "json": { "user": "u", "password": "[redacted]" },
                    "capture": { "token": "/token" }
                }]
            }],
            "thresholds": { "token.p99": "< 50ms" }
        })
    );
}
