//! `--metrics-listen ADDR`: an HTTP endpoint whose `GET /metrics` answers with the current
//! snapshot as Prometheus text. The address is bound before anything else starts (a busy one is
//! a usage error, not a failed run); the endpoint then runs as a task on the caller's runtime
//! and counts its scrapes, so that a run can wait for the scrape that reads its final figures.
//! The same small server answers other routes for `--dashboard` ([`MetricsListener::serve_routes`]).

use std::convert::Infallible;
use std::fmt;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{Snapshot, text};

/// What the endpoint serves: called once per scrape.
pub type Source = Arc<dyn Fn() -> Snapshot + Send + Sync>;

/// A GET's answer by path: its content type and body; `None` is a 404.
pub type Routes = Arc<dyn Fn(&str) -> Option<(&'static str, String)> + Send + Sync>;

/// The port volley suggests in its docs (the one OpenTelemetry's Prometheus exporter uses).
pub const DEFAULT_PORT: u16 = 9464;

/// `--metrics-listen`'s value: `PORT` (on 127.0.0.1) or `HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenAddr(pub SocketAddr);

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<ListenAddr, String> {
        if let Ok(port) = s.parse::<u16>() {
            return Ok(ListenAddr(SocketAddr::from(([127, 0, 0, 1], port))));
        }
        let mut addrs = s.to_socket_addrs().map_err(|e| {
            format!("`{s}` is not PORT or HOST:PORT ({e}); e.g. {DEFAULT_PORT} or 0.0.0.0:{DEFAULT_PORT}")
        })?;
        addrs
            .next()
            .map(ListenAddr)
            .ok_or_else(|| format!("`{s}` resolves to no address"))
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Process `index`'s address among several that share one `--metrics-listen` (local shards,
/// server processes): the port + `index`. The caller checks that the ports fit.
pub fn nth_port(mut addr: SocketAddr, index: u32) -> SocketAddr {
    addr.set_port(addr.port().saturating_add(index as u16));
    addr
}

/// Checks that `count` processes can listen from `base` on (port + K each) and that each of those
/// ports is free now: a usage error names the one that is not.
pub fn check_ports(base: &ListenAddr, count: u32, what: &str) -> Result<(), String> {
    let last = u32::from(base.0.port()) + count - 1;
    if base.0.port() == 0 || last > u32::from(u16::MAX) {
        return Err(format!(
            "--metrics-listen {base} with {what}: process K listens on the port + K, so give a \
             port from 1 to {}",
            u32::from(u16::MAX) + 1 - count
        ));
    }
    for index in 0..count {
        MetricsListener::bind(&ListenAddr(nth_port(base.0, index)))?;
    }
    Ok(())
}

/// A bound listening socket, shareable until [`serve`] takes it.
#[derive(Debug, Clone)]
pub struct MetricsListener(Arc<TcpListener>);

impl MetricsListener {
    /// Binds `addr` now for `--metrics-listen`. The error names the address and the option.
    pub fn bind(addr: &ListenAddr) -> Result<MetricsListener, String> {
        Self::bind_for(addr, "--metrics-listen")
    }

    /// Binds `addr` now for `option`, which the error names.
    pub fn bind_for(addr: &ListenAddr, option: &str) -> Result<MetricsListener, String> {
        let listener = TcpListener::bind(addr.0)
            .and_then(|l| l.set_nonblocking(true).map(|_| l))
            .map_err(|e| format!("{option} {addr}: cannot listen there: {e}"))?;
        Ok(MetricsListener(Arc::new(listener)))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.0
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves `source` at `/metrics` until the returned endpoint is dropped. Needs a tokio
    /// runtime.
    pub fn serve(&self, source: Source) -> std::io::Result<Endpoint> {
        let scrapes = Arc::new(Scrapes::default());
        let counted = scrapes.clone();
        let routes: Routes = Arc::new(move |path| {
            (path == "/metrics").then(|| {
                counted.started.fetch_add(1, Ordering::SeqCst);
                let body = text::render(&source());
                counted.answered.fetch_add(1, Ordering::SeqCst);
                counted.notify.notify_waiters();
                (text::CONTENT_TYPE, body)
            })
        });
        self.serve_with(routes, scrapes)
    }

    /// Serves `routes` (GET and HEAD) until the returned endpoint is dropped.
    pub fn serve_routes(&self, routes: Routes) -> std::io::Result<Endpoint> {
        self.serve_with(routes, Arc::new(Scrapes::default()))
    }

    fn serve_with(&self, routes: Routes, scrapes: Arc<Scrapes>) -> std::io::Result<Endpoint> {
        let listener = tokio::net::TcpListener::from_std(self.0.try_clone()?)?;
        let task = tokio::spawn(accept(listener, routes));
        Ok(Endpoint {
            addr: self.local_addr(),
            scrapes,
            task,
        })
    }
}

#[derive(Default)]
struct Scrapes {
    /// Scrapes that began reading the snapshot, and scrapes whose answer is ready.
    started: AtomicU64,
    answered: AtomicU64,
    notify: Notify,
}

/// A running endpoint; dropping it stops it.
pub struct Endpoint {
    pub addr: SocketAddr,
    scrapes: Arc<Scrapes>,
    task: JoinHandle<()>,
}

impl Endpoint {
    /// Scrapes begun so far: every scrape after these reads what was published before.
    pub fn scrapes(&self) -> u64 {
        self.scrapes.started.load(Ordering::SeqCst)
    }

    /// Waits until a scrape begun after the first `seen` has been answered, at most `limit`;
    /// true if one was. (More than `seen` answers means one of them began after those `seen`.)
    pub async fn scraped_after(&self, seen: u64, limit: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.scrapes.notify.notified();
                if self.scrapes.answered.load(Ordering::SeqCst) > seen {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: tokio::net::TcpListener, routes: Routes) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors, or a connection reset before accept: wait, keep serving.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let routes = routes.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                std::future::ready(Ok::<_, Infallible>(answer(&req, &routes)))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer(req: &Request<Incoming>, routes: &Routes) -> Response<Full<Bytes>> {
    let reply = |status, content_type, body: String| {
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CACHE_CONTROL, "no-store")
            .body(Full::new(Bytes::from(body)))
            .expect("static response parts are valid")
    };
    let found = match req.method() {
        &Method::GET | &Method::HEAD => routes(req.uri().path()),
        _ => None,
    };
    match found {
        Some((content_type, body)) => reply(StatusCode::OK, content_type, body),
        None => reply(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not here: volley serves /metrics (--metrics-listen) or / (--dashboard)\n".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_a_port_on_loopback_or_host_and_port() {
        assert_eq!(
            "9464".parse::<ListenAddr>().unwrap().0,
            "127.0.0.1:9464".parse().unwrap()
        );
        assert_eq!(
            "0.0.0.0:80".parse::<ListenAddr>().unwrap().0,
            "0.0.0.0:80".parse().unwrap()
        );
        assert!(
            "nowhere"
                .parse::<ListenAddr>()
                .unwrap_err()
                .contains("PORT or HOST:PORT")
        );
    }

    #[tokio::test]
    async fn metrics_are_served_and_counted_and_a_busy_address_is_refused() {
        let listener = MetricsListener::bind(&"127.0.0.1:0".parse().unwrap()).unwrap();
        let busy = MetricsListener::bind(&ListenAddr(listener.local_addr())).unwrap_err();
        assert!(
            busy.starts_with(&format!(
                "--metrics-listen {}: cannot listen there",
                listener.local_addr()
            )),
            "{busy}"
        );
        let source: Source = Arc::new(|| {
            let mut s = Snapshot::new(vec![("run_id", "1".into())]);
            s.counter("volley_sent_total", "Sent.", &[], 7);
            s
        });
        let endpoint = listener.serve(source).unwrap();
        let get = |path: &'static str| {
            let addr = endpoint.addr;
            async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                let req = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
                s.write_all(req.as_bytes()).await.unwrap();
                let mut out = String::new();
                s.read_to_string(&mut out).await.unwrap();
                out
            }
        };
        let seen = endpoint.scrapes();
        let page = get("/metrics").await;
        assert!(page.starts_with("HTTP/1.1 200"), "{page}");
        assert!(
            page.contains("content-type: text/plain; version=0.0.4"),
            "{page}"
        );
        assert!(
            page.contains("volley_sent_total{run_id=\"1\"} 7\n"),
            "{page}"
        );
        assert!(endpoint.scraped_after(seen, Duration::from_secs(1)).await);
        assert!(
            !endpoint
                .scraped_after(seen + 1, Duration::from_millis(50))
                .await
        );
        assert!(get("/").await.starts_with("HTTP/1.1 404"));
    }
}
