//! The HAR log of a tab's Network events, as DevTools' "Export HAR" writes it (see `har`).

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use super::NetworkCapture;

/// One request (one hop of it, when redirected) or one WebSocket, as its events describe it.
#[derive(Default)]
struct Exchange {
    id: String,
    /// `requestWillBeSent` (HTTP) or `webSocketCreated` (WebSocket).
    sent: Value,
    sent_extra: Option<Value>,
    response: Option<Value>,
    /// When the response (or the redirect) arrived, monotonic seconds.
    response_at: Option<f64>,
    response_extra: Option<Value>,
    decoded_bytes: u64,
    /// `loadingFinished` or `loadingFailed`.
    end: Option<(String, Value)>,
    /// The WebSocket's handshake request, answer and frames.
    handshake: Option<Value>,
    handshake_response: Option<Value>,
    frames: Vec<Value>,
    closed_at: Option<f64>,
}

impl Exchange {
    fn is_websocket(&self) -> bool {
        self.handshake.is_some() || self.sent.get("request").is_none()
    }

    /// Wall-clock seconds of a monotonic timestamp of this exchange: its issue time's wall time
    /// plus the time since, as DevTools' `pseudoWallTime` does.
    fn wall(&self, at: f64) -> f64 {
        let start = self.handshake.as_ref().unwrap_or(&self.sent);
        let (wall, issued) = (start["wallTime"].as_f64(), start["timestamp"].as_f64());
        match (wall, issued) {
            (Some(wall), Some(issued)) => wall + (at - issued),
            _ => at,
        }
    }

    /// Takes in one of its events after the first (`p`: the event's params).
    fn take(&mut self, method: &str, p: &Value) {
        let at = p["timestamp"].as_f64();
        match method {
            "Network.responseReceived" => {
                self.response = Some(p["response"].clone());
                self.response_at = at;
            }
            "Network.dataReceived" => self.decoded_bytes += p["dataLength"].as_u64().unwrap_or(0),
            "Network.loadingFinished" | "Network.loadingFailed" => {
                self.end = Some((method.to_string(), p.clone()));
            }
            "Network.webSocketWillSendHandshakeRequest" => self.handshake = Some(p.clone()),
            "Network.webSocketHandshakeResponseReceived" => {
                self.handshake_response = Some(p["response"].clone());
                self.response_at = at;
            }
            "Network.webSocketFrameSent" | "Network.webSocketFrameReceived" => {
                let sent = method == "Network.webSocketFrameSent";
                let frame = &p["response"];
                self.frames.push(json!({
                    "type": if sent { "send" } else { "receive" },
                    "time": self.wall(at.unwrap_or(0.0)),
                    "opcode": frame["opcode"],
                    "data": frame["payloadData"],
                }));
            }
            "Network.webSocketFrameError" => self.frames.push(json!({
                "type": "error",
                "time": self.wall(at.unwrap_or(0.0)),
                "opcode": -1,
                "data": p["errorMessage"],
            })),
            "Network.webSocketClosed" => self.closed_at = at,
            _ => {}
        }
    }
}

/// The HAR log (`{"log": {...}}`) of a tab's Network events, as DevTools exports it.
pub fn har_log(capture: &NetworkCapture) -> Value {
    let exchanges = exchanges(&capture.events);
    let document = exchanges.iter().find(|x| x.sent["type"] == "Document");
    let entries: Vec<Value> = exchanges
        .iter()
        .map(|x| {
            if x.is_websocket() {
                websocket_entry(x)
            } else {
                http_entry(x, capture)
            }
        })
        .collect();
    let webkit = capture
        .user_agent
        .split_whitespace()
        .find_map(|part| part.strip_prefix("AppleWebKit/"))
        .unwrap_or("n/a");
    let pages = match document {
        Some(doc) => vec![page(doc, &capture.events)],
        None => Vec::new(),
    };
    json!({
        "log": {
            "version": "1.2",
            "creator": { "name": "WebInspector", "version": webkit },
            "pages": pages,
            "entries": entries,
        }
    })
}

/// The exchanges of the events, in the order they began.
fn exchanges(events: &[Value]) -> Vec<Exchange> {
    let mut all: Vec<Exchange> = Vec::new();
    // The exchange each request id is at now (its last hop).
    let mut current: HashMap<String, usize> = HashMap::new();
    // Extra infos may come before or after their request: queued per id, one per hop.
    let mut sent_extra: HashMap<String, Vec<Value>> = HashMap::new();
    let mut response_extra: HashMap<String, Vec<Value>> = HashMap::new();
    for event in events {
        let p = &event["params"];
        let id = p["requestId"].as_str().unwrap_or("").to_string();
        match event["method"].as_str().unwrap_or("") {
            "Network.requestWillBeSent" | "Network.webSocketCreated" => {
                // A redirect: the same id again, with the answer of the hop before.
                if let (Some(&i), Some(redirect)) = (current.get(&id), p.get("redirectResponse")) {
                    let at = p["timestamp"].as_f64();
                    all[i].response = Some(redirect.clone());
                    all[i].response_at = at;
                    all[i].end = Some(("redirect".into(), json!({ "timestamp": at })));
                }
                current.insert(id.clone(), all.len());
                all.push(Exchange {
                    id,
                    sent: p.clone(),
                    ..Exchange::default()
                });
            }
            "Network.requestWillBeSentExtraInfo" => {
                sent_extra.entry(id).or_default().push(p.clone())
            }
            "Network.responseReceivedExtraInfo" => {
                response_extra.entry(id).or_default().push(p.clone())
            }
            method => {
                if let Some(&i) = current.get(&id) {
                    all[i].take(method, p);
                }
            }
        }
    }
    // Hand each hop of a request its extra infos, in order.
    let mut hop: HashMap<String, usize> = HashMap::new();
    for x in all.iter_mut().filter(|x| !x.is_websocket()) {
        let n = hop.entry(x.id.clone()).or_default();
        x.sent_extra = sent_extra.get(&x.id).and_then(|v| v.get(*n)).cloned();
        x.response_extra = response_extra.get(&x.id).and_then(|v| v.get(*n)).cloned();
        *n += 1;
    }
    all
}

fn http_entry(x: &Exchange, capture: &NetworkCapture) -> Value {
    let request = &x.sent["request"];
    let issued = x.sent["timestamp"].as_f64().unwrap_or(0.0);
    let url = request["url"].as_str().unwrap_or("");
    // The headers really sent: Chromium's extra info has Cookie, Host, Connection and the rest.
    let sent_headers = x
        .sent_extra
        .as_ref()
        .map(|e| &e["headers"])
        .unwrap_or(&request["headers"]);
    let post_text = request["postData"]
        .as_str()
        .map(str::to_string)
        .or_else(|| capture.post_data.get(&x.id).cloned());
    let mut har_request = json!({
        "method": request["method"],
        "url": url.split('#').next().unwrap_or(url),
        "httpVersion": x.response.as_ref().map_or("", |r| r["protocol"].as_str().unwrap_or("")),
        "headers": headers(sent_headers),
        "queryString": query_string(url),
        "cookies": request_cookies(x.sent_extra.as_ref(), sent_headers),
        "headersSize": -1,
        "bodySize": post_text.as_ref().map_or(0, |t| t.len()),
    });
    if let Some(text) = post_text {
        let mime = header(sent_headers, "content-type").unwrap_or_default();
        har_request["postData"] = json!({ "mimeType": mime, "text": text });
    }

    let empty = json!({});
    let response = x.response.as_ref().unwrap_or(&empty);
    let extra = x.response_extra.as_ref();
    let received_headers = extra.map(|e| &e["headers"]).unwrap_or(&response["headers"]);
    let headers_text = extra.and_then(|e| e["headersText"].as_str());
    let (end_kind, end) = x.end.clone().unwrap_or_default();
    let transfer = end["encodedDataLength"].as_i64().unwrap_or(0);
    let mut content = json!({
        "size": x.decoded_bytes,
        "mimeType": response["mimeType"].as_str().unwrap_or("x-unknown"),
    });
    // The body is the last hop's, the one that finished loading.
    let body = capture.bodies.get(&x.id);
    if let Some(body) = body.filter(|_| end_kind == "Network.loadingFinished") {
        content["text"] = body["body"].clone();
        if body["base64Encoded"] == true {
            content["encoding"] = json!("base64");
        }
    }
    let har_response = json!({
        "status": response["status"].as_u64().unwrap_or(0),
        "statusText": response["statusText"].as_str().unwrap_or(""),
        "httpVersion": response_version(headers_text, response),
        "headers": headers(received_headers),
        "cookies": response_cookies(received_headers),
        "content": content,
        "redirectURL": header(received_headers, "location").unwrap_or_default(),
        "headersSize": headers_text.map_or(-1, |t| t.len() as i64),
        "bodySize": headers_text.map_or(-1, |t| transfer - t.len() as i64),
        "_transferSize": transfer,
        "_error": if end_kind == "Network.loadingFailed" { end["errorText"].clone() } else { Value::Null },
    });

    let timings = http_timings(x, issued, end["timestamp"].as_f64());
    let mut entry = Map::new();
    entry.insert("_initiator".into(), x.sent["initiator"].clone());
    entry.insert("_priority".into(), request["initialPriority"].clone());
    entry.insert("_resourceType".into(), resource_type(&x.sent["type"]));
    entry.insert("cache".into(), json!({}));
    if let Some(id) = response.get("connectionId") {
        entry.insert("connection".into(), json!(id.to_string()));
    }
    entry.insert("pageref".into(), json!("page_1"));
    entry.insert("request".into(), har_request);
    entry.insert("response".into(), har_response);
    if let Some(ip) = response["remoteIPAddress"].as_str() {
        entry.insert("serverIPAddress".into(), json!(ip.trim_matches(['[', ']'])));
    }
    entry.insert("startedDateTime".into(), json!(iso(x.wall(issued))));
    entry.insert("time".into(), total_time(&timings));
    entry.insert("timings".into(), timings);
    Value::Object(entry)
}

fn websocket_entry(x: &Exchange) -> Value {
    let url = x.sent["url"].as_str().unwrap_or("");
    let empty = json!({});
    let handshake = x.handshake.as_ref().unwrap_or(&empty);
    let answer = x.handshake_response.as_ref().unwrap_or(&empty);
    // The handshake as sent: the answer repeats it with Cookie and the request line.
    let sent_headers = answer
        .get("requestHeaders")
        .unwrap_or(&handshake["request"]["headers"]);
    let request_text = answer["requestHeadersText"].as_str();
    let headers_text = answer["headersText"].as_str();
    let started = handshake["timestamp"].as_f64().unwrap_or(0.0);
    let answered = x.response_at.unwrap_or(started);
    let ended = x.closed_at.unwrap_or(answered);
    let timings = json!({
        "blocked": -1, "dns": -1, "ssl": -1, "connect": -1, "send": 0,
        "wait": num(ms(answered - started)),
        "receive": num(ms(ended - answered)),
        "_blocked_queueing": -1,
    });
    json!({
        "_initiator": x.sent["initiator"],
        "_resourceType": "websocket",
        "_webSocketMessages": x.frames,
        "cache": {},
        "pageref": "page_1",
        "request": {
            "method": "GET",
            "url": url,
            "httpVersion": request_text
                .and_then(|t| t.split("\r\n").next())
                .and_then(|line| line.rsplit(' ').next())
                .unwrap_or("HTTP/1.1"),
            "headers": headers(sent_headers),
            "queryString": query_string(url),
            "cookies": request_cookies(None, sent_headers),
            "headersSize": request_text.map_or(-1, |t| t.len() as i64),
            "bodySize": 0,
        },
        "response": {
            "status": answer["status"].as_u64().unwrap_or(0),
            "statusText": answer["statusText"].as_str().unwrap_or(""),
            "httpVersion": response_version(headers_text, answer),
            "headers": headers(&answer["headers"]),
            "cookies": response_cookies(&answer["headers"]),
            "content": { "size": 0, "mimeType": "x-unknown" },
            "redirectURL": "",
            "headersSize": headers_text.map_or(-1, |t| t.len() as i64),
            "bodySize": 0,
            "_transferSize": 0,
            "_error": null,
        },
        "startedDateTime": iso(x.wall(started)),
        "time": total_time(&timings),
        "timings": timings,
    })
}

/// HAR timings from Chromium's `ResourceTiming` (offsets in ms from its `requestTime`).
fn http_timings(x: &Exchange, issued: f64, ended: Option<f64>) -> Value {
    let empty = json!({});
    let timing = x
        .response
        .as_ref()
        .map_or(&empty, |r| &r["timing"])
        .as_object();
    let Some(t) = timing else {
        // No timing (a failed or cached request): everything is blocked.
        let blocked = num(ended.map_or(-1.0, |end| ms(end - issued)));
        return json!({
            "blocked": blocked, "dns": -1, "ssl": -1, "connect": -1, "send": 0, "wait": 0,
            "receive": 0, "_blocked_queueing": blocked,
        });
    };
    let get = |key: &str| t.get(key).and_then(Value::as_f64).unwrap_or(-1.0);
    let request_time = get("requestTime");
    let queued = ms(request_time - issued).max(0.0);
    let first_start = [get("dnsStart"), get("connectStart"), get("sendStart")]
        .into_iter()
        .filter(|&v| v >= 0.0)
        .fold(f64::INFINITY, f64::min);
    let first_start = if first_start.is_finite() {
        first_start
    } else {
        0.0
    };
    let span = |start: f64, end: f64| {
        if start >= 0.0 && end >= 0.0 {
            end - start
        } else {
            -1.0
        }
    };
    let headers_end = match get("receiveHeadersEnd") {
        v if v >= 0.0 => v,
        _ => x
            .response_at
            .map_or(get("sendEnd"), |at| ms(at - request_time)),
    };
    let receive_end = ended.map_or(headers_end, |end| ms(end - request_time));
    json!({
        "blocked": num(queued + first_start),
        "dns": num(span(get("dnsStart"), get("dnsEnd"))),
        "ssl": num(span(get("sslStart"), get("sslEnd"))),
        "connect": num(span(get("connectStart"), get("connectEnd"))),
        "send": num((get("sendEnd") - get("sendStart")).max(0.0)),
        "wait": num((headers_end - get("sendEnd")).max(0.0)),
        "receive": num((receive_end - headers_end).max(0.0)),
        "_blocked_queueing": num(queued),
    })
}

/// HAR's `time`: the sum of the timings that apply (`ssl` is inside `connect`).
fn total_time(timings: &Value) -> Value {
    let sum: f64 = ["blocked", "dns", "connect", "send", "wait", "receive"]
        .iter()
        .map(|k| timings[k].as_f64().unwrap_or(0.0).max(0.0))
        .sum();
    num(sum)
}

/// The `pages` entry of the visit's document.
fn page(document: &Exchange, events: &[Value]) -> Value {
    let issued = document.sent["timestamp"].as_f64().unwrap_or(0.0);
    let at = |method: &str| {
        events
            .iter()
            .find(|e| e["method"] == method)
            .and_then(|e| e["params"]["timestamp"].as_f64())
            .map_or(json!(-1), |t| num(ms(t - issued)))
    };
    json!({
        "startedDateTime": iso(document.wall(issued)),
        "id": "page_1",
        "title": document.sent["request"]["url"],
        "pageTimings": {
            "onContentLoad": at("Page.domContentEventFired"),
            "onLoad": at("Page.loadEventFired"),
        },
    })
}

/// Chromium's header object as HAR's list; a value holding several lines (Set-Cookie twice)
/// is one entry per line, as DevTools splits them.
fn headers(object: &Value) -> Vec<Value> {
    let Some(map) = object.as_object() else {
        return Vec::new();
    };
    map.iter()
        .flat_map(|(name, value)| {
            let value = value.as_str().unwrap_or("");
            value
                .split('\n')
                .map(|line| json!({ "name": name, "value": line }))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The first value of a header, by case-insensitive name.
fn header(object: &Value, name: &str) -> Option<String> {
    object.as_object()?.iter().find_map(|(k, v)| {
        k.eq_ignore_ascii_case(name).then(|| {
            v.as_str()
                .unwrap_or("")
                .split('\n')
                .next()
                .unwrap_or("")
                .to_string()
        })
    })
}

/// The query's pairs as written (DevTools does not decode them).
fn query_string(url: &str) -> Vec<Value> {
    let query = url
        .split('#')
        .next()
        .and_then(|u| u.split_once('?'))
        .map_or("", |(_, q)| q);
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            json!({ "name": name, "value": value })
        })
        .collect()
}

/// The cookies a request carried: Chromium's `associatedCookies` that were not blocked, else
/// the pairs of its Cookie header.
fn request_cookies(extra: Option<&Value>, sent_headers: &Value) -> Vec<Value> {
    if let Some(associated) = extra.and_then(|e| e["associatedCookies"].as_array()) {
        return associated
            .iter()
            .filter(|a| a["blockedReasons"].as_array().is_none_or(|r| r.is_empty()))
            .map(|a| {
                let c = &a["cookie"];
                let mut cookie = json!({
                    "name": c["name"], "value": c["value"], "path": c["path"],
                    "domain": c["domain"],
                    "expires": if c["session"] == true { Value::Null } else {
                        json!(iso(c["expires"].as_f64().unwrap_or(0.0)))
                    },
                    "httpOnly": c["httpOnly"], "secure": c["secure"],
                });
                if let Some(same_site) = c.get("sameSite") {
                    cookie["sameSite"] = same_site.clone();
                }
                cookie
            })
            .collect();
    }
    header(sent_headers, "cookie")
        .unwrap_or_default()
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .map(|(name, value)| json!({ "name": name, "value": value }))
        .collect()
}

/// The cookies of a response's Set-Cookie lines, with their attributes.
fn response_cookies(received_headers: &Value) -> Vec<Value> {
    let Some(map) = received_headers.as_object() else {
        return Vec::new();
    };
    map.iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .flat_map(|(_, v)| v.as_str().unwrap_or("").split('\n'))
        .filter_map(|line| {
            let mut parts = line.split(';');
            let (name, value) = parts.next()?.trim().split_once('=')?;
            let mut cookie =
                json!({ "name": name, "value": value, "httpOnly": false, "secure": false });
            for attribute in parts {
                let (key, val) = attribute
                    .trim()
                    .split_once('=')
                    .unwrap_or((attribute.trim(), ""));
                match key.to_ascii_lowercase().as_str() {
                    "path" => cookie["path"] = json!(val),
                    "domain" => cookie["domain"] = json!(val),
                    "expires" => cookie["expires"] = json!(val),
                    "httponly" => cookie["httpOnly"] = json!(true),
                    "secure" => cookie["secure"] = json!(true),
                    "samesite" => cookie["sameSite"] = json!(val),
                    _ => {}
                }
            }
            Some(cookie)
        })
        .collect()
}

/// The response's HTTP version: from its status line when Chromium gave it, else the protocol.
fn response_version(headers_text: Option<&str>, response: &Value) -> String {
    headers_text
        .and_then(|t| t.split(' ').next())
        .filter(|v| v.starts_with("HTTP/"))
        .map(str::to_string)
        .unwrap_or_else(|| response["protocol"].as_str().unwrap_or("").to_string())
}

/// Chromium's resource type (`Document`, `XHR`, `WebSocket`...) as DevTools names it in a HAR.
fn resource_type(kind: &Value) -> Value {
    json!(kind.as_str().unwrap_or("other").to_ascii_lowercase())
}

fn ms(seconds: f64) -> f64 {
    seconds * 1000.0
}

/// Milliseconds to three decimals, a whole number without a fraction (`-1`, not `-1.0`), as
/// DevTools writes them.
fn num(ms: f64) -> Value {
    let rounded = (ms * 1000.0).round() / 1000.0;
    if rounded.fract() == 0.0 && rounded.abs() < 1e15 {
        json!(rounded as i64)
    } else {
        json!(rounded)
    }
}

/// Epoch seconds as HAR's ISO 8601 time with milliseconds (`2026-01-02T03:04:05.678Z`).
fn iso(epoch_seconds: f64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs_f64(epoch_seconds.max(0.0));
    humantime::format_rfc3339_millis(at).to_string()
}
