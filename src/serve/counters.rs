//! What the builtin server counts, for `volley serve --metrics-listen`: connections accepted and
//! closed, and messages received and sent, per endpoint. Raw WebSocket sessions add their counts
//! once per batch (one atomic add for many messages); Socket.IO counts its connections and the
//! events it received (its room emits go out through socketioxide, which does not say to how many).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::telemetry::Snapshot;

/// The endpoints, as the `endpoint` label spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Echo,
    Broadcast,
    Ticker,
    SocketIo,
}

impl Counted {
    pub const ALL: [Counted; 4] = [
        Counted::Echo,
        Counted::Broadcast,
        Counted::Ticker,
        Counted::SocketIo,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Counted::Echo => "echo",
            Counted::Broadcast => "broadcast",
            Counted::Ticker => "ticker",
            Counted::SocketIo => "socketio",
        }
    }
}

#[derive(Debug, Default)]
pub struct EndpointCounts {
    pub accepted: AtomicU64,
    pub closed: AtomicU64,
    pub received: AtomicU64,
    pub sent: AtomicU64,
}

impl EndpointCounts {
    pub fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }
}

#[derive(Debug, Default)]
pub struct ServeCounters {
    per: [EndpointCounts; 4],
}

impl ServeCounters {
    pub fn of(&self, endpoint: Counted) -> &EndpointCounts {
        &self.per[endpoint as usize]
    }

    /// The counters as Prometheus series.
    pub fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot::new(vec![("pid", std::process::id().to_string())]);
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        type Field = fn(&EndpointCounts) -> &AtomicU64;
        let counters: [(&str, &'static str, Field); 4] = [
            (
                "volley_serve_connections_total",
                "Connections accepted, per endpoint.",
                |c| &c.accepted,
            ),
            (
                "volley_serve_connections_closed_total",
                "Connections ended, per endpoint.",
                |c| &c.closed,
            ),
            (
                "volley_serve_messages_received_total",
                "Messages (Socket.IO: events) received, per endpoint.",
                |c| &c.received,
            ),
            (
                "volley_serve_messages_sent_total",
                "Messages sent on raw WebSocket endpoints.",
                |c| &c.sent,
            ),
        ];
        for (name, help, field) in counters {
            for endpoint in Counted::ALL {
                if name == "volley_serve_messages_sent_total" && endpoint == Counted::SocketIo {
                    continue;
                }
                s.counter(
                    name,
                    help,
                    &[("endpoint", endpoint.as_str())],
                    read(field(self.of(endpoint))),
                );
            }
        }
        for endpoint in Counted::ALL {
            let c = self.of(endpoint);
            s.gauge(
                "volley_serve_connections_open",
                "Connections open now, per endpoint.",
                &[("endpoint", endpoint.as_str())],
                read(&c.accepted).saturating_sub(read(&c.closed)) as f64,
            );
        }
        s
    }
}
