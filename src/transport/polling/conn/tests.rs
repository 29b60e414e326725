use std::future::poll_fn;

use super::*;
use crate::transport::test_server::{Reply, TestServer, response, serve};

fn get(path: &str) -> Bytes {
    Bytes::from(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"))
}

async fn open(server: &TestServer) -> HttpConn {
    HttpConn::new(server.connector().connect_transport().await.unwrap())
}

async fn exchange(conn: &mut HttpConn, server: &TestServer, path: &str) -> Result<Bytes, Fault> {
    let connector = server.connector();
    conn.send(get(path));
    poll_fn(|cx| conn.poll_response(cx, &connector, ErrorKind::Transport)).await
}

/// Until the connection shows that the server closed it.
async fn closed_by_server(conn: &mut HttpConn) {
    poll_fn(|cx| match conn.stream.as_mut() {
        Some(stream) => match closed_while_idle(stream, cx) {
            true => Poll::Ready(()),
            false => Poll::Pending,
        },
        None => Poll::Ready(()),
    })
    .await
}

#[tokio::test]
async fn bodies_framed_by_length_by_chunks_or_after_an_interim_head_are_read_on_one_connection() {
    let server = serve(|index, _| {
        Reply::Answer(match index {
            0 => response("200 OK", &[], "hello"),
            1 => b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
                   4\r\nWiki\r\n5;x=1\r\npedia\r\n0\r\n\r\n"
                .to_vec(),
            _ => [
                &b"HTTP/1.1 100 Continue\r\n\r\n"[..],
                &response("200 OK", &["x-after: interim"], "after"),
            ]
            .concat(),
        })
    })
    .await;
    let mut conn = open(&server).await;
    assert_eq!(exchange(&mut conn, &server, "/a").await.unwrap(), "hello");
    assert_eq!(
        exchange(&mut conn, &server, "/b").await.unwrap(),
        "Wikipedia"
    );
    assert_eq!(exchange(&mut conn, &server, "/c").await.unwrap(), "after");
    assert!(conn.is_idle());
    assert_eq!(server.accepts(), 1, "one keep-alive connection");
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn a_body_that_runs_until_the_server_closes_ends_there_and_the_next_request_reconnects() {
    // Each request names its answer (a new connection counts its requests from 0 again).
    let server = serve(|_, request| match request.starts_with("get /1 ") {
        true => Reply::AnswerThenClose(b"HTTP/1.1 200 OK\r\n\r\nuntil the end".to_vec()),
        false => Reply::Answer(response("200 OK", &[], "again")),
    })
    .await;
    let mut conn = open(&server).await;
    assert_eq!(
        exchange(&mut conn, &server, "/1").await.unwrap(),
        "until the end"
    );
    assert!(conn.stream.is_none(), "a connection that ended is let go");
    assert_eq!(exchange(&mut conn, &server, "/2").await.unwrap(), "again");
    assert_eq!(server.accepts(), 2);
}

/// Node's http server closes a keep-alive connection idle for 5 s; the POST connection of a
/// polling session idles for a whole ping interval.
#[tokio::test]
async fn a_keep_alive_connection_the_server_closed_while_idle_is_replaced_before_writing() {
    let server = serve(|_, request| match request.starts_with("get /1 ") {
        true => Reply::AnswerThenClose(response("200 OK", &[], "one")),
        false => Reply::Answer(response("200 OK", &[], "two")),
    })
    .await;
    let mut conn = open(&server).await;
    assert_eq!(exchange(&mut conn, &server, "/1").await.unwrap(), "one");
    closed_by_server(&mut conn).await;
    assert_eq!(exchange(&mut conn, &server, "/2").await.unwrap(), "two");
    assert_eq!(server.accepts(), 2);
    assert_eq!(
        server.requests().len(),
        2,
        "nothing was sent on the closed one"
    );
}

#[tokio::test]
async fn connection_close_in_a_response_is_honoured() {
    let server =
        serve(|_, _| Reply::Answer(response("200 OK", &["connection: close"], "bye"))).await;
    let mut conn = open(&server).await;
    assert_eq!(exchange(&mut conn, &server, "/").await.unwrap(), "bye");
    assert!(conn.stream.is_none());
    assert_eq!(exchange(&mut conn, &server, "/").await.unwrap(), "bye");
    assert_eq!(server.accepts(), 2);
}

#[tokio::test]
async fn a_status_other_than_2xx_is_a_fault_with_the_start_of_its_body() {
    let server = serve(|_, _| {
        Reply::Answer(response(
            "400 Bad Request",
            &[],
            "{\"code\":1,\"message\":\"Session ID unknown\"}",
        ))
    })
    .await;
    let mut conn = open(&server).await;
    let fault = exchange(&mut conn, &server, "/").await.unwrap_err();
    assert_eq!(fault.kind, ErrorKind::Transport);
    assert_eq!(
        fault.detail,
        "HTTP 400 {\"code\":1,\"message\":\"Session ID unknown\"}"
    );
    assert!(conn.is_idle(), "the connection can carry the next request");
}

#[tokio::test]
async fn a_connection_closed_before_its_response_is_a_fault_and_the_request_is_not_sent_again() {
    let server = serve(|_, _| Reply::CloseWithoutAnswer).await;
    let mut conn = open(&server).await;
    let fault = exchange(&mut conn, &server, "/").await.unwrap_err();
    assert!(
        fault.detail.contains("before its response was complete"),
        "{fault:?}"
    );
    assert_eq!(server.accepts(), 1);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn what_is_not_an_http_response_is_a_fault() {
    let server = serve(|_, _| Reply::Answer(b"SSH-2.0-OpenSSH_9.2\r\n\r\n".to_vec())).await;
    let mut conn = open(&server).await;
    let fault = exchange(&mut conn, &server, "/").await.unwrap_err();
    assert!(
        fault.detail.contains("not an HTTP/1.x response"),
        "{fault:?}"
    );
}

#[tokio::test]
async fn more_than_the_response_is_a_fault() {
    let server =
        serve(|_, _| Reply::Answer([&response("200 OK", &[], "ok")[..], b"extra"].concat())).await;
    let mut conn = open(&server).await;
    // One write: the extra bytes come with the response.
    let fault = exchange(&mut conn, &server, "/").await.unwrap_err();
    assert!(fault.detail.contains("more than its response"), "{fault:?}");
    assert!(conn.stream.is_none());
}
