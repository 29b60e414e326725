//! Where connect time goes: the phases of opening a connection, each its own latency metric beside
//! `connect`, which stays their total (with the little that lies between them: rendering a user's
//! headers, opening a polling session's second connection).
//!
//! The transport marks each boundary with an [`Instant`] into a [`ConnectPhases`] on the stack; the
//! client records them when the attempt succeeds, as it records `connect`.

use std::time::{Duration, Instant};

/// A phase of opening a connection, in the order a connection goes through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConnectPhase {
    /// TCP connect: from the connect call to the connection established.
    Tcp,
    /// The TLS handshake (wss:// targets).
    Tls,
    /// The WebSocket upgrade: from the HTTP request sent to its 101 response read.
    Upgrade,
    /// Socket.IO: the Engine.IO open packet, after the 101 on WebSocket; on polling, from the
    /// handshake request to its response.
    EioOpen,
    /// Socket.IO: from the open packet to the namespace's CONNECT reply (the CONNECT sent, the
    /// server's middlewares run, the reply read).
    SioConnect,
    /// Socket.IO with `polling-upgrade`: the upgrade to WebSocket, from the new connection's
    /// TCP connect to the `5` packet sent.
    EioUpgrade,
}

impl ConnectPhase {
    pub const COUNT: usize = 6;

    pub const ALL: [ConnectPhase; ConnectPhase::COUNT] = [
        ConnectPhase::Tcp,
        ConnectPhase::Tls,
        ConnectPhase::Upgrade,
        ConnectPhase::EioOpen,
        ConnectPhase::SioConnect,
        ConnectPhase::EioUpgrade,
    ];

    /// The latency metric's name, as result files and thresholds spell it: `connect_tcp`. An
    /// underscore, not a dot: a dot would read as `connect`'s statistic or counter.
    pub fn metric_name(self) -> &'static str {
        match self {
            ConnectPhase::Tcp => "connect_tcp",
            ConnectPhase::Tls => "connect_tls",
            ConnectPhase::Upgrade => "connect_upgrade",
            ConnectPhase::EioOpen => "connect_eio_open",
            ConnectPhase::SioConnect => "connect_sio_connect",
            ConnectPhase::EioUpgrade => "connect_eio_upgrade",
        }
    }

    /// The name under `connect` in a table: `tcp`.
    pub fn short_name(self) -> &'static str {
        &self.metric_name()["connect_".len()..]
    }

    /// What the phase measures, in a few words, for tables.
    pub fn what(self) -> &'static str {
        match self {
            ConnectPhase::Tcp => "TCP connect",
            ConnectPhase::Tls => "TLS handshake",
            ConnectPhase::Upgrade => "HTTP upgrade: request sent to 101 read",
            ConnectPhase::EioOpen => "Engine.IO handshake: the open packet",
            ConnectPhase::SioConnect => "Socket.IO namespace CONNECT reply",
            ConnectPhase::EioUpgrade => "Engine.IO upgrade from polling to WebSocket",
        }
    }

    /// The phase whose metric is `name`.
    pub fn of_metric(name: &str) -> Option<ConnectPhase> {
        ConnectPhase::ALL
            .into_iter()
            .find(|p| p.metric_name() == name)
    }

    /// Its place in [`ConnectPhase::ALL`].
    pub fn position(self) -> usize {
        self as usize
    }
}

/// How long each phase of one connection attempt took, as the transport measured it; `None` for
/// a phase the attempt did not go through (or not yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectPhases([Option<Duration>; ConnectPhase::COUNT]);

impl ConnectPhases {
    /// Records `phase` as lasting from `since` until now, and returns now: where the next phase
    /// starts.
    pub fn end(&mut self, phase: ConnectPhase, since: Instant) -> Instant {
        let now = Instant::now();
        self.0[phase.position()] = Some(now.saturating_duration_since(since));
        now
    }

    pub fn get(&self, phase: ConnectPhase) -> Option<Duration> {
        self.0[phase.position()]
    }

    /// The phases measured, in order.
    pub fn measured(&self) -> impl Iterator<Item = (ConnectPhase, Duration)> + '_ {
        ConnectPhase::ALL
            .into_iter()
            .filter_map(|p| self.get(p).map(|d| (p, d)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for phase in ConnectPhase::ALL {
            let name = phase.metric_name();
            assert_eq!(ConnectPhase::of_metric(name), Some(phase));
            assert_eq!(format!("connect_{}", phase.short_name()), name);
        }
        assert_eq!(ConnectPhase::of_metric("connect"), None);
    }

    #[test]
    fn ended_phases_follow_each_other() {
        let mut phases = ConnectPhases::default();
        let start = Instant::now();
        let tcp_end = phases.end(ConnectPhase::Tcp, start);
        phases.end(ConnectPhase::Upgrade, tcp_end);
        let measured: Vec<ConnectPhase> = phases.measured().map(|(p, _)| p).collect();
        assert_eq!(measured, [ConnectPhase::Tcp, ConnectPhase::Upgrade]);
        assert_eq!(phases.get(ConnectPhase::Tls), None);
        assert!(phases.get(ConnectPhase::Tcp).unwrap() <= start.elapsed());
    }
}
