//! The practical limit for volley's HTTP steps: the simplest hyper client there is, not part of
//! volley. Each of `clients` keep-alive HTTP/1.1 connections (hyper's `client::conn::http1`, its
//! connection driver a task of its own, as volley's HTTP session has it) POSTs the same JSON
//! login, reads the whole response and checks its status, in a closed loop (the next request when
//! the response is in), or with a rate, one request per tick of its own interval (still one at a
//! time per connection: HTTP/1.1 without pipelining).

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::loops::{Phase, thread_cpu};

type Conn = SendRequest<Full<Bytes>>;

/// What every request sends: the message-queue test server's login of user0.
const LOGIN: &str = r#"{"user":"user0","password":"pw0"}"#;

/// Opens the connections to `url` (`http://HOST:PORT/PATH`), then runs the login loop on each for
/// `run_for`; the phase is the loop alone (connects left out). Counts the responses with status
/// 200; any other status, or a failed exchange, ends the run with a panic.
pub async fn login(url: &str, clients: usize, run_for: Duration, per_second: Option<f64>) -> Phase {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        let tcp = TcpStream::connect(authority).await.expect("connect");
        tcp.set_nodelay(true).expect("TCP_NODELAY");
        let (conn, driver) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .expect("HTTP/1.1 handshake");
        tokio::spawn(async move {
            let _ = driver.await;
        });
        conns.push(conn);
    }
    let cpu_before = thread_cpu();
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + run_for;
    let mut tasks = Vec::with_capacity(clients);
    for (i, conn) in conns.into_iter().enumerate() {
        let (authority, path) = (authority.to_string(), path.to_string());
        let every = per_second.map(|rate| Duration::from_secs_f64(1.0 / rate));
        tasks.push(tokio::spawn(async move {
            logins(conn, i, &authority, &path, deadline, every).await
        }));
    }
    let mut events = 0;
    for task in tasks {
        events += task.await.expect("login task");
    }
    Phase {
        events,
        wall: started.elapsed(),
        cpu: thread_cpu() - cpu_before,
    }
}

/// One connection's logins until `deadline`: closed, or one per tick of `every`.
async fn logins(
    mut conn: Conn,
    client: usize,
    authority: &str,
    path: &str,
    deadline: tokio::time::Instant,
    every: Option<Duration>,
) -> u64 {
    let body = Bytes::from_static(LOGIN.as_bytes());
    let mut ticks = every.map(|every| {
        // Spread the first requests over one interval.
        let first = tokio::time::Instant::now() + every.mul_f64((client % 1000) as f64 / 1000.0);
        let mut ticks = tokio::time::interval_at(first, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks
    });
    let mut done = 0u64;
    loop {
        if let Some(ticks) = ticks.as_mut() {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                _ = ticks.tick() => {}
            }
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::HOST, authority)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body.clone()))
            .expect("a valid request");
        conn.ready().await.expect("connection ready");
        let response = conn.send_request(request).await.expect("a response");
        let status = response.status();
        let _body = response
            .into_body()
            .collect()
            .await
            .expect("the response body")
            .to_bytes();
        assert_eq!(status, StatusCode::OK, "login answered {status}");
        done += 1;
    }
    done
}
