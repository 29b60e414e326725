//! Source addresses: one (source address, destination) pair has only the ephemeral port range
//! (32768–60999 by default on Linux, about 28,000 ports), so a run with more connections to one
//! server binds its sockets to several source addresses in turn.
//!
//! Sockets are bound with IP_BIND_ADDRESS_NO_PORT: the kernel picks the port at connect time, per
//! destination, instead of reserving one at bind time for every destination.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpSocket, TcpStream};

/// The ephemeral port range when /proc cannot be read (Linux's default).
const DEFAULT_PORT_RANGE: (u16, u16) = (32768, 60999);
/// The most source addresses chosen automatically on 127.0.0.0/8 (127.0.0.1 to 127.0.0.254).
const MAX_AUTO_LOOPBACK: u64 = 254;
/// The share of an address's ports an automatic loopback spread fills at most.
const COMFORTABLE_SHARE: f64 = 0.4;

/// Source addresses handed out in turn, shared by every clone (one counter per run).
#[derive(Debug, Clone)]
pub struct SourceAddrs {
    addrs: Arc<[IpAddr]>,
    next: Arc<AtomicUsize>,
}

impl SourceAddrs {
    /// `addrs` must not be empty.
    pub fn new(addrs: Vec<IpAddr>) -> SourceAddrs {
        assert!(!addrs.is_empty(), "at least one source address");
        SourceAddrs {
            addrs: Arc::from(addrs),
            next: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn addrs(&self) -> &[IpAddr] {
        &self.addrs
    }

    /// The next address, round robin.
    pub fn next(&self) -> IpAddr {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.addrs[i % self.addrs.len()]
    }

    /// Connects to `dest` from the next source address.
    pub async fn connect(&self, dest: SocketAddr) -> std::io::Result<TcpStream> {
        let source = self.next();
        let socket = match source {
            IpAddr::V4(_) => TcpSocket::new_v4()?,
            IpAddr::V6(_) => TcpSocket::new_v6()?,
        };
        bind_address_no_port(&socket)?;
        socket.bind(SocketAddr::new(source, 0))?;
        socket.connect(dest).await
    }

    /// `a, b, c` or `first–last` for a contiguous IPv4 run, for messages.
    pub fn describe(&self) -> String {
        describe(&self.addrs)
    }
}

fn describe(addrs: &[IpAddr]) -> String {
    let contiguous = addrs.len() > 2
        && addrs.windows(2).all(|pair| match pair {
            [IpAddr::V4(a), IpAddr::V4(b)] => u32::from(*a).checked_add(1) == Some(u32::from(*b)),
            _ => false,
        });
    if contiguous {
        format!("{}–{}", addrs[0], addrs[addrs.len() - 1])
    } else {
        let all: Vec<String> = addrs.iter().map(IpAddr::to_string).collect();
        all.join(", ")
    }
}

/// Lets the kernel choose the port at connect time (Linux 4.2+); elsewhere a plain bind.
fn bind_address_no_port(socket: &TcpSocket) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let on: libc::c_int = 1;
        // SAFETY: setsockopt reads `on` for the given length; the fd is the socket's own.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = socket;
    Ok(())
}

/// `--source-ips`: addresses separated by commas, each an address or an IPv4 range
/// `first-last`, e.g. `127.0.0.2-127.0.0.9` or `10.0.0.5,10.0.0.7`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceIps(pub Vec<IpAddr>);

impl FromStr for SourceIps {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut addrs = Vec::new();
        for part in s.split(',').map(str::trim) {
            if part.is_empty() {
                return Err(format!(
                    "`{s}` has an empty entry; write addresses like 127.0.0.2-127.0.0.9 or 10.0.0.5,10.0.0.7"
                ));
            }
            match part.split_once('-') {
                None => addrs.push(part.parse::<IpAddr>().map_err(|_| {
                    format!("`{part}` is not an IP address (e.g. 127.0.0.2 or 127.0.0.2-127.0.0.9)")
                })?),
                Some((first, last)) => {
                    let parse = |text: &str| {
                        text.trim().parse::<Ipv4Addr>().map_err(|_| {
                            format!(
                                "`{part}`: a range is two IPv4 addresses, e.g. 127.0.0.2-127.0.0.9"
                            )
                        })
                    };
                    let (first, last) = (u32::from(parse(first)?), u32::from(parse(last)?));
                    if first > last {
                        return Err(format!("`{part}`: the range ends before it starts"));
                    }
                    if last - first >= 65_536 {
                        return Err(format!("`{part}`: at most 65,536 addresses in a range"));
                    }
                    addrs.extend((first..=last).map(|a| IpAddr::V4(Ipv4Addr::from(a))));
                }
            }
        }
        Ok(SourceIps(addrs))
    }
}

/// Ports one (source, destination) pair may use: the size of the ephemeral range, from
/// /proc/sys/net/ipv4/ip_local_port_range when readable.
pub fn ports_per_source() -> u64 {
    let (low, high) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| parse_port_range(&text))
        .unwrap_or(DEFAULT_PORT_RANGE);
    u64::from(high) - u64::from(low) + 1
}

fn parse_port_range(text: &str) -> Option<(u16, u16)> {
    let mut fields = text.split_whitespace().map(str::parse::<u16>);
    let (low, high) = (fields.next()?.ok()?, fields.next()?.ok()?);
    (low <= high).then_some((low, high))
}

/// Why the run's connections cannot be spread over enough source addresses.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(
        "--source-ips {source_ip} cannot reach {target}: source and target must both be IPv4 or both IPv6"
    )]
    Family {
        source_ip: IpAddr,
        target: SocketAddr,
    },
    #[error(
        "this run opens {connections} connections to {target}, but one source address has only {ports} ports for one destination (the ephemeral range in /proc/sys/net/ipv4/ip_local_port_range).\n  Give this machine's addresses with --source-ips (at least {needed}, e.g. --source-ips 10.0.0.5,10.0.0.6), or split the run over machines with --shard K/N."
    )]
    TooFewPorts {
        connections: u64,
        target: SocketAddr,
        ports: u64,
        needed: u64,
    },
    #[error(
        "this run opens {connections} connections to {target} from {given} source address(es) ({addrs}), {ports} ports each: at most {capacity}.\n  Give at least {needed} addresses with --source-ips, or split the run with --shard K/N."
    )]
    TooFewSources {
        connections: u64,
        target: SocketAddr,
        given: usize,
        addrs: String,
        ports: u64,
        capacity: u64,
        needed: u64,
    },
}

/// The sources a run connects from, and what to tell the user about a choice made for them.
#[derive(Debug)]
pub struct SourceChoice {
    pub sources: Option<SourceAddrs>,
    pub note: Option<String>,
}

/// Chooses the source addresses for `connections` simultaneous connections to `target`: the given
/// ones (checked to be enough), else none when one address has ports enough, else for a loopback
/// IPv4 target 127.0.0.1 to 127.0.0.N as many as needed; else an error with the numbers.
pub fn choose(
    target: SocketAddr,
    connections: u64,
    given: Option<&[IpAddr]>,
    ports: u64,
) -> Result<SourceChoice, SourceError> {
    let needed = connections.div_ceil(ports.max(1)).max(1);
    if let Some(given) = given.filter(|g| !g.is_empty()) {
        if let Some(&source_ip) = given.iter().find(|ip| ip.is_ipv4() != target.is_ipv4()) {
            return Err(SourceError::Family { source_ip, target });
        }
        let capacity = ports * given.len() as u64;
        if connections > capacity {
            return Err(SourceError::TooFewSources {
                connections,
                target,
                given: given.len(),
                addrs: describe(given),
                ports,
                capacity,
                needed,
            });
        }
        return Ok(SourceChoice {
            sources: Some(SourceAddrs::new(given.to_vec())),
            note: None,
        });
    }
    let loopback_v4 = matches!(target.ip(), IpAddr::V4(ip) if ip.is_loopback());
    // connect() looks for a free port in the even half of the range first and slows to a crawl as
    // that half fills (measured: a ramp from one address stalls near 14,100 connections), so a
    // spread chosen here keeps each address at COMFORTABLE_SHARE of its ports.
    let spread = if loopback_v4 {
        connections
            .div_ceil(((ports as f64 * COMFORTABLE_SHARE) as u64).max(1))
            .max(1)
    } else {
        needed
    };
    if spread <= 1 {
        return Ok(SourceChoice {
            sources: None,
            note: None,
        });
    }
    if !loopback_v4 || spread > MAX_AUTO_LOOPBACK {
        return Err(SourceError::TooFewPorts {
            connections,
            target,
            ports,
            needed,
        });
    }
    let addrs: Vec<IpAddr> = (1..=spread as u8)
        .map(|last| IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        .collect();
    let sources = SourceAddrs::new(addrs);
    let note = format!(
        "{connections} connections to {target} would fill more than {:.0} % of one source address's {ports} ports, where connect() slows down: connecting from {} in turn",
        COMFORTABLE_SHARE * 100.0,
        sources.describe()
    );
    Ok(SourceChoice {
        sources: Some(sources),
        note: Some(note),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ranges_and_lists_parse_in_order() {
        let ips: SourceIps = "127.0.0.2-127.0.0.4,10.0.0.9".parse().unwrap();
        assert_eq!(
            ips.0,
            vec![
                v4("127.0.0.2"),
                v4("127.0.0.3"),
                v4("127.0.0.4"),
                v4("10.0.0.9")
            ]
        );
        let ips: SourceIps = "127.0.0.255-127.0.1.0".parse().unwrap();
        assert_eq!(ips.0, vec![v4("127.0.0.255"), v4("127.0.1.0")]);
        let ips: SourceIps = "::1".parse().unwrap();
        assert_eq!(ips.0, vec![v4("::1")]);
    }

    #[test]
    fn bad_source_lists_say_what_is_expected() {
        for bad in [
            "",
            "127.0.0.9-127.0.0.2",
            "localhost",
            "1.2.3.4,",
            "::1-::2",
        ] {
            let err = bad.parse::<SourceIps>().unwrap_err();
            assert!(err.contains('`'), "{bad}: {err}");
        }
    }

    #[test]
    fn addresses_are_handed_out_round_robin() {
        let sources = SourceAddrs::new(vec![v4("127.0.0.2"), v4("127.0.0.3")]);
        let clone = sources.clone();
        let got: Vec<IpAddr> = (0..4)
            .map(|i| {
                if i % 2 == 0 {
                    sources.next()
                } else {
                    clone.next()
                }
            })
            .collect();
        assert_eq!(
            got,
            [
                v4("127.0.0.2"),
                v4("127.0.0.3"),
                v4("127.0.0.2"),
                v4("127.0.0.3")
            ]
        );
    }

    #[test]
    fn the_port_range_is_read_as_two_numbers() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_port_range("1024 65535"), Some((1024, 65535)));
        assert_eq!(parse_port_range("60999 32768"), None);
        assert_eq!(parse_port_range("junk"), None);
        assert!(ports_per_source() > 0);
    }

    #[test]
    fn a_loopback_run_beyond_one_address_spreads_over_127_0_0_x() {
        let target: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        // Up to 40 % of one address's ports: one address.
        let small = choose(target, 11_292, None, 28_232).unwrap();
        assert!(small.sources.is_none() && small.note.is_none());
        let two = choose(target, 11_293, None, 28_232).unwrap();
        assert_eq!(
            two.sources.unwrap().addrs(),
            [v4("127.0.0.1"), v4("127.0.0.2")]
        );
        // 100,000 connections: 9 addresses of at most 11,292 each.
        let big = choose(target, 100_000, None, 28_232).unwrap();
        let sources = big.sources.unwrap();
        assert_eq!(sources.addrs().len(), 9);
        assert_eq!(sources.addrs()[8], v4("127.0.0.9"));
        let note = big.note.unwrap();
        assert!(note.contains("127.0.0.1–127.0.0.9"), "{note}");
        assert!(note.contains("28232 ports"), "{note}");
    }

    #[test]
    fn a_remote_run_beyond_one_address_is_refused_with_the_numbers() {
        let target: SocketAddr = "10.1.2.3:80".parse().unwrap();
        let err = choose(target, 60_000, None, 28_232)
            .unwrap_err()
            .to_string();
        for part in [
            "60000 connections",
            "10.1.2.3:80",
            "28232 ports",
            "at least 3",
            "--source-ips",
            "--shard",
        ] {
            assert!(err.contains(part), "{part}: {err}");
        }
        let given = [v4("10.0.0.5"), v4("10.0.0.6")];
        let err = choose(target, 60_000, Some(&given), 28_232)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("at most 56464") && err.contains("at least 3"),
            "{err}"
        );
        let given = [v4("10.0.0.5"), v4("10.0.0.6"), v4("10.0.0.7")];
        let ok = choose(target, 60_000, Some(&given), 28_232).unwrap();
        assert_eq!(ok.sources.unwrap().addrs(), given);
        let err = choose(target, 10, Some(&[v4("::1")]), 28_232).unwrap_err();
        assert!(
            err.to_string().contains("both be IPv4 or both IPv6"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn connections_come_from_each_source_address_in_turn() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dest = listener.local_addr().unwrap();
        let sources = SourceAddrs::new(vec![v4("127.0.0.2"), v4("127.0.0.3")]);
        let mut peers = Vec::new();
        for _ in 0..4 {
            let stream = sources.connect(dest).await.unwrap();
            let (_accepted, peer) = listener.accept().await.unwrap();
            assert_eq!(stream.local_addr().unwrap(), peer);
            peers.push(peer.ip());
        }
        assert_eq!(
            peers,
            [
                v4("127.0.0.2"),
                v4("127.0.0.3"),
                v4("127.0.0.2"),
                v4("127.0.0.3")
            ]
        );
    }
}
