use super::*;
use crate::transport::test_server::{Reply, response, serve};
use tokio::io::AsyncWriteExt;

fn ok(_: usize, _: &str) -> Reply {
    Reply::Answer(response("200 OK", &[], "ok"))
}

fn get(path_and_query: &str) -> HttpRequest<'_> {
    HttpRequest {
        method: Method::GET,
        path_and_query,
        headers: &[],
        body: Bytes::new(),
        content_type: None,
    }
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn a_json_post_returns_the_status_and_body() {
    let server = serve(|_, request| {
        let body = request.split("\r\n\r\n").nth(1).unwrap().to_string();
        Reply::Answer(response("201 Created", &["x-token: t1"], &body))
    })
    .await;
    let request = HttpRequest {
        method: Method::POST,
        path_and_query: "/login?x=1",
        headers: &[],
        body: Bytes::from_static(br#"{"user":"a"}"#),
        content_type: Some("application/json"),
    };
    let mut session = HttpSession::new();
    let response = session.send(&server.connector(), request, SECOND).await;
    let response = response.unwrap();
    assert_eq!(response.status, StatusCode::CREATED);
    assert_eq!(response.body, br#"{"user":"a"}"#[..]);
    assert_eq!(response.headers["x-token"], "t1");
    let seen = &server.requests()[0];
    assert!(seen.starts_with("post /login?x=1 http/1.1\r\n"), "{seen}");
    let host = format!("\r\nhost: 127.0.0.1:{}\r\n", server.port);
    for line in [&host, "\r\ncontent-type: application/json\r\n"] {
        assert!(seen.contains(line), "{line:?} in {seen}");
    }
    assert!(seen.contains("\r\ncontent-length: 12\r\n"), "{seen}");
}

#[tokio::test]
async fn two_requests_reuse_one_keep_alive_connection() {
    let server = serve(ok).await;
    let mut session = HttpSession::new();
    for path in ["/a", "/b"] {
        let response = session.send(&server.connector(), get(path), SECOND).await;
        assert_eq!(response.unwrap().body, "ok");
    }
    assert_eq!((server.accepts(), server.requests().len()), (1, 2));
}

#[tokio::test]
async fn a_connection_the_server_closed_is_reopened_transparently() {
    let server = serve(|_, _| Reply::AnswerThenClose(response("200 OK", &[], "ok"))).await;
    let mut session = HttpSession::new();
    for path in ["/a", "/b"] {
        let response = session.send(&server.connector(), get(path), SECOND).await;
        assert_eq!(response.unwrap().body, "ok");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.accepts(), 2);
}

#[tokio::test]
async fn a_request_lost_on_a_stale_connection_is_resent_once_on_a_new_one() {
    // The second request of every connection is read and dropped: an idle timeout racing it.
    let server = serve(|index, request| match index {
        0 => ok(index, request),
        _ => Reply::CloseWithoutAnswer,
    })
    .await;
    let mut session = HttpSession::new();
    for path in ["/a", "/b"] {
        let response = session.send(&server.connector(), get(path), SECOND).await;
        assert_eq!(response.unwrap().status, StatusCode::OK);
    }
    assert_eq!(server.accepts(), 2);
    let paths: Vec<_> = server
        .requests()
        .iter()
        .map(|r| r[..6].to_string())
        .collect();
    assert_eq!(paths, ["get /a", "get /b", "get /b"]);
}

#[tokio::test]
async fn a_fresh_connection_closed_without_an_answer_is_io_and_not_retried() {
    let server = serve(|_, _| Reply::CloseWithoutAnswer).await;
    let mut session = HttpSession::new();
    let failure = session.send(&server.connector(), get("/"), SECOND).await;
    assert!(matches!(failure, Err(HttpFailure::Io(_))), "{failure:?}");
    assert_eq!(server.accepts(), 1);
}

#[tokio::test]
async fn cookies_are_stored_sent_back_merged_and_deleted_by_max_age_0() {
    let server = serve(|_, request| {
        let set: &[&str] = match request.split(' ').nth(1).unwrap() {
            "/login" => &[
                "set-cookie: sid=abc; Path=/; HttpOnly; Secure; Domain=example.com",
                "set-cookie: theme=dark; Max-Age=3600; SameSite=Lax",
            ],
            "/logout" => &["set-cookie: sid=; Max-Age=0; Path=/"],
            _ => &[],
        };
        Reply::Answer(response("200 OK", set, ""))
    })
    .await;
    let mut session = HttpSession::new();
    let connector = server.connector();
    session
        .send(&connector, get("/login"), SECOND)
        .await
        .unwrap();
    assert_eq!(session.cookie_header("/").unwrap(), "sid=abc; theme=dark");

    let mine = [(header::COOKIE, HeaderValue::from_static("mine=1"))];
    let request = HttpRequest {
        headers: &mine,
        ..get("/profile")
    };
    session.send(&connector, request, SECOND).await.unwrap();
    session
        .send(&connector, get("/logout"), SECOND)
        .await
        .unwrap();
    session
        .send(&connector, get("/after"), SECOND)
        .await
        .unwrap();
    let cookies: Vec<Vec<String>> = server
        .requests()
        .iter()
        .map(|r| {
            r.lines()
                .filter(|l| l.starts_with("cookie:"))
                .map(str::to_string)
                .collect()
        })
        .collect();
    assert_eq!(cookies[0], Vec::<String>::new());
    assert_eq!(cookies[1], ["cookie: mine=1; sid=abc; theme=dark"]);
    assert_eq!(cookies[3], ["cookie: theme=dark"]);
}

#[tokio::test]
async fn the_jar_keeps_paths_apart_and_forgets_expired_cookies() {
    let mut jar = CookieJar::default();
    let now = Instant::now();
    let unix = 1_700_000_000;
    for (header, request_path) in [
        ("a=1", "/"),
        ("docs=1", "/docs/login"),
        ("a=2; Path=/docs", "/"),
        ("short=1; Max-Age=10", "/"),
        ("gone=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT", "/"),
        ("a=3", "/x"),
    ] {
        let set = cookie::parse_set_cookie(header.as_bytes()).unwrap();
        jar.store(&set, request_path, now, unix);
    }
    let header = |jar: &CookieJar, path, at| String::from_utf8(jar.header(path, at).unwrap());
    assert_eq!(
        header(&jar, "/docs/x", now).unwrap(),
        "docs=1; a=2; a=3; short=1"
    );
    assert_eq!(header(&jar, "/other", now).unwrap(), "a=3; short=1");
    assert_eq!(header(&jar, "/other", now + 11 * SECOND).unwrap(), "a=3");
    let expired = cookie::parse_set_cookie(b"a=9; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
    jar.store(&expired.unwrap(), "/", now, unix);
    assert_eq!(header(&jar, "/other", now).unwrap(), "short=1");
}

#[tokio::test]
async fn a_refused_port_is_refused() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let connector = Connector::new(([127, 0, 0, 1], port).into(), "127.0.0.1", port, None);
    let failure = HttpSession::new()
        .send(&connector.unwrap(), get("/"), SECOND)
        .await;
    assert!(
        matches!(failure, Err(HttpFailure::Refused(_))),
        "{failure:?}"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_within_the_bound() {
    let server = serve(|_, _| Reply::NeverAnswer).await;
    let bound = Duration::from_millis(200);
    let start = Instant::now();
    let failure = HttpSession::new()
        .send(&server.connector(), get("/"), bound)
        .await;
    assert_eq!(failure.unwrap_err(), HttpFailure::Timeout(bound));
    let elapsed = start.elapsed();
    assert!(elapsed >= bound && elapsed < 3 * bound, "{elapsed:?}");
}

#[tokio::test]
async fn a_401_is_a_response_not_a_failure() {
    let server = serve(|_, _| Reply::Answer(response("401 Unauthorized", &[], "no"))).await;
    let response = HttpSession::new()
        .send(&server.connector(), get("/"), SECOND)
        .await;
    assert_eq!(response.unwrap().status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_oversized_body_is_io_naming_the_limit() {
    // Announced: refused before reading (the server never sends the body).
    let server = serve(|_, _| {
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        Reply::Answer(head.into_bytes())
    })
    .await;
    let failure = HttpSession::new()
        .send(&server.connector(), get("/"), SECOND)
        .await;
    assert_eq!(
        failure.unwrap_err().to_string(),
        "the response body is larger than the 16 MiB limit"
    );
    // Chunked: counted while reading.
    let server = serve(|_, _| {
        let size = MAX_BODY + 1;
        let mut bytes =
            format!("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{size:x}\r\n")
                .into_bytes();
        bytes.resize(bytes.len() + size, b'x');
        bytes.extend_from_slice(b"\r\n0\r\n\r\n");
        Reply::Answer(bytes)
    })
    .await;
    let failure = HttpSession::new()
        .send(&server.connector(), get("/"), 5 * SECOND)
        .await;
    assert!(
        matches!(&failure, Err(HttpFailure::Io(e)) if e.contains("16 MiB")),
        "{failure:?}"
    );
}

#[tokio::test]
async fn a_tls_handshake_with_a_plain_http_server_is_tls() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let _ = stream
            .write_all(&response("400 Bad Request", &[], ""))
            .await;
        std::future::pending::<()>().await;
    });
    let tls = crate::transport::tls::client_config(false).unwrap();
    let connector = Connector::new(addr, "localhost", addr.port(), Some(tls)).unwrap();
    let failure = HttpSession::new().send(&connector, get("/"), SECOND).await;
    assert!(matches!(failure, Err(HttpFailure::Tls(_))), "{failure:?}");
}

#[test]
fn invalid_requests_fail_before_connecting_and_the_session_is_small() {
    let bad = [(header::ACCEPT, HeaderValue::from_static("*/*"))];
    let connector = Connector::new(([127, 0, 0, 1], 1).into(), "127.0.0.1", 1, None).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for path in ["login", "/a b", "http://elsewhere/"] {
        let request = HttpRequest {
            headers: &bad,
            ..get(path)
        };
        let failure = runtime.block_on(HttpSession::new().send(&connector, request, SECOND));
        assert!(
            matches!(failure, Err(HttpFailure::InvalidRequest(_))),
            "{path}: {failure:?}"
        );
    }
    assert!(
        std::mem::size_of::<HttpSession>() <= 48,
        "{}",
        std::mem::size_of::<HttpSession>()
    );
}
