//! A raw HTTP/1.1 server for the transports' unit tests, on 127.0.0.1:0: it answers each request as
//! the test says (bytes as given, so any framing), counts connections and records every request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::ws::Connector;

/// What the test server does with a request, given its index on the connection and its text.
pub enum Reply {
    Answer(Vec<u8>),
    /// Answers (keep-alive, nothing said), then closes the connection.
    AnswerThenClose(Vec<u8>),
    CloseWithoutAnswer,
    NeverAnswer,
}

pub struct TestServer {
    pub port: u16,
    accepts: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl TestServer {
    pub fn connector(&self) -> Connector {
        let addr = ([127, 0, 0, 1], self.port).into();
        Connector::new(addr, "127.0.0.1", self.port, None).unwrap()
    }
    pub fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// A raw HTTP/1.1 server on 127.0.0.1:0 that counts connections and records every request.
pub async fn serve(reply: fn(usize, &str) -> Reply) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = TestServer {
        port: listener.local_addr().unwrap().port(),
        accepts: Arc::default(),
        requests: Arc::default(),
    };
    let (accepts, requests) = (server.accepts.clone(), server.requests.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            accepts.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve_connection(stream, reply, requests.clone()));
        }
    });
    server
}

async fn serve_connection(
    mut stream: TcpStream,
    reply: fn(usize, &str) -> Reply,
    requests: Arc<Mutex<Vec<String>>>,
) {
    let mut buf = Vec::new();
    for index in 0.. {
        let Some(request) = read_request(&mut stream, &mut buf).await else {
            return;
        };
        requests.lock().unwrap().push(request.clone());
        match reply(index, &request) {
            Reply::Answer(bytes) => {
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Reply::AnswerThenClose(bytes) => {
                let _ = stream.write_all(&bytes).await;
                return;
            }
            Reply::CloseWithoutAnswer => return,
            Reply::NeverAnswer => std::future::pending().await,
        }
    }
}

/// One request (head, then a Content-Length body) as text, header names lowercased; `None`
/// at EOF.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + length {
                let all = buf.drain(..end + 4 + length).collect::<Vec<u8>>();
                let body = String::from_utf8_lossy(&all[end + 4..]).into_owned();
                return Some(head + &body);
            }
        }
        if stream.read_buf(buf).await.ok()? == 0 {
            return None;
        }
    }
}

pub fn response(status: &str, headers: &[&str], body: &str) -> Vec<u8> {
    let mut text = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n", body.len());
    for header in headers {
        text.push_str(header);
        text.push_str("\r\n");
    }
    format!("{text}\r\n{body}").into_bytes()
}
