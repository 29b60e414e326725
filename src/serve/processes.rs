//! `volley serve --processes N`: N server processes sharing one port.
//!
//! The parent reserves the port with a socket bound with SO_REUSEPORT but never listening (so it
//! is in no accept queue, and port 0 resolves to one port for all), starts N children running
//! `volley serve --reuse-port --listen ADDR:PORT` with the same options, waits for each child's
//! `listening on` line, drops its reservation, and prints one line itself. The kernel spreads new
//! connections over the children's listening sockets by a hash of the connection's addresses.
//!
//! A stop (Ctrl-C, SIGTERM) is forwarded to every child as SIGTERM; each closes its connections
//! (WebSocket close 1001) as a single `volley serve` does, and the parent exits once they all have.
//! Each child is also asked by the kernel to stop if the parent dies (PR_SET_PDEATHSIG).
//!
//! State lives in each process: a /broadcast room or a Socket.IO room holds only the members
//! connected to the same process.

use std::ffi::OsString;
use std::future::Future;
use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// What can go wrong while starting or supervising the server processes.
#[derive(Debug, thiserror::Error)]
pub enum ProcessesError {
    #[error("cannot reserve {addr} for the server processes: {source}")]
    Reserve {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot find the volley executable to start server processes: {0}")]
    Executable(std::io::Error),
    #[error("cannot start server process {index} of {count}: {source}")]
    Spawn {
        index: usize,
        count: usize,
        source: std::io::Error,
    },
    #[error(
        "server process {index} of {count} (pid {pid}) did not start listening on {addr}: {detail}"
    )]
    NotListening {
        index: usize,
        count: usize,
        pid: u32,
        addr: SocketAddr,
        detail: String,
    },
    #[error("server process pid {pid} exited on its own ({status}); the others were stopped")]
    ChildExited { pid: u32, status: ExitStatus },
}

/// How long a child may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the children may take to close their connections after SIGTERM before being killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds (without listening) a socket with SO_REUSEPORT on `listen`, so that port 0 becomes a
/// concrete port the children can all bind, and no other program takes it meanwhile.
pub fn reserve_port(listen: SocketAddr) -> Result<(socket2::Socket, SocketAddr), ProcessesError> {
    let reserve = |listen: SocketAddr| -> std::io::Result<(socket2::Socket, SocketAddr)> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(listen),
            socket2::Type::STREAM,
            None,
        )?;
        socket.set_reuse_port(true)?;
        socket.bind(&listen.into())?;
        let addr = socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| std::io::Error::other("the reserved socket has no IP address"))?;
        Ok((socket, addr))
    };
    reserve(listen).map_err(|source| ProcessesError::Reserve {
        addr: listen,
        source,
    })
}

/// The running server processes.
pub struct ServerProcesses {
    addr: SocketAddr,
    children: Vec<Child>,
}

impl ServerProcesses {
    /// The address every process listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The children's process ids, in start order.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().filter_map(Child::id).collect()
    }

    /// Waits for `stop`, then stops every child and waits for them; a child that exits before
    /// `stop` is an error, and the others are stopped too.
    pub async fn run_until(mut self, stop: impl Future<Output = ()>) -> Result<(), ProcessesError> {
        let exited = {
            let any_exit = futures_util::future::select_all(
                self.children
                    .iter_mut()
                    .map(|child| Box::pin(async move { (child.id(), child.wait().await) })),
            );
            tokio::select! {
                _ = stop => None,
                ((pid, status), _, _) = any_exit => Some((pid, status)),
            }
        };
        self.stop().await;
        match exited {
            Some((pid, Ok(status))) => Err(ProcessesError::ChildExited {
                pid: pid.unwrap_or(0),
                status,
            }),
            // A wait error means the child is gone as far as we can tell: nothing more to stop.
            Some((_, Err(_))) | None => Ok(()),
        }
    }

    /// SIGTERM to every child still running, then waits for each (killing those that overrun).
    async fn stop(&mut self) {
        for child in &self.children {
            if let Some(pid) = child.id() {
                // SAFETY: signalling a child we started and have not reaped yet.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
            }
        }
        for child in &mut self.children {
            if tokio::time::timeout(STOP_TIMEOUT, child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
    }
}

/// Starts `count` children running `volley serve --reuse-port --listen ADDR` plus `args` (the
/// other serve options), and waits until each is listening. `reserved` is dropped once they are.
pub async fn start(
    count: usize,
    reserved: (socket2::Socket, SocketAddr),
    args: &[OsString],
    metrics_listen: Option<SocketAddr>,
) -> Result<ServerProcesses, ProcessesError> {
    let (reservation, addr) = reserved;
    let exe = std::env::current_exe().map_err(ProcessesError::Executable)?;
    let mut processes = ServerProcesses {
        addr,
        children: Vec::with_capacity(count),
    };
    for index in 1..=count {
        let mut command = Command::new(&exe);
        command
            .arg("serve")
            .arg("--reuse-port")
            .arg("--listen")
            .arg(addr.to_string())
            .args(args)
            .args(metrics_listen.iter().flat_map(|base| {
                let addr = crate::telemetry::listen::nth_port(*base, index as u32 - 1);
                ["--metrics-listen".into(), addr.to_string()]
            }))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe; it only sets this child's parent-death signal.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let spawned = command.spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(source) => {
                processes.stop().await;
                return Err(ProcessesError::Spawn {
                    index,
                    count,
                    source,
                });
            }
        };
        let pid = child.id().unwrap_or(0);
        let ready = wait_listening(&mut child).await;
        processes.children.push(child);
        if let Err(detail) = ready {
            processes.stop().await;
            return Err(ProcessesError::NotListening {
                index,
                count,
                pid,
                addr,
                detail,
            });
        }
    }
    drop(reservation);
    Ok(processes)
}

/// Reads the child's first stdout line, which a serving `volley serve` prints once it listens.
async fn wait_listening(child: &mut Child) -> Result<(), String> {
    let Some(stdout) = child.stdout.take() else {
        return Err("its output was not captured".into());
    };
    let mut line = String::new();
    let mut reader = BufReader::new(stdout);
    match tokio::time::timeout(START_TIMEOUT, reader.read_line(&mut line)).await {
        Err(_) => Err(format!(
            "no `listening on` line within {}s",
            START_TIMEOUT.as_secs()
        )),
        Ok(Err(e)) => Err(format!("cannot read its output: {e}")),
        Ok(Ok(0)) => Err("it exited first (its error is above)".into()),
        Ok(Ok(_)) if line.starts_with("listening on ") => Ok(()),
        Ok(Ok(_)) => Err(format!("it printed {:?} instead", line.trim_end())),
    }
}

/// Runtime threads per process when `--threads` is not given: the cores shared out, at least one.
pub fn default_threads(cores: usize, processes: usize) -> usize {
    (cores / processes.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores_are_shared_out_between_processes() {
        assert_eq!(default_threads(2, 2), 1);
        assert_eq!(default_threads(8, 2), 4);
        assert_eq!(default_threads(2, 4), 1);
        assert_eq!(default_threads(1, 1), 1);
    }

    #[test]
    fn port_zero_is_reserved_as_one_port_the_children_can_share() {
        let (first, addr) = reserve_port("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_ne!(addr.port(), 0);
        // A second SO_REUSEPORT socket on the same port, as each child binds it, then listens.
        let child =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        child.set_reuse_port(true).unwrap();
        child.bind(&addr.into()).unwrap();
        child.listen(16).unwrap();
        // The reservation never listens, so a connection reaches the listening child.
        let stream = std::net::TcpStream::connect(addr).unwrap();
        let listener: std::net::TcpListener = child.into();
        let (accepted, _) = listener.accept().unwrap();
        assert_eq!(accepted.peer_addr().unwrap(), stream.local_addr().unwrap());
        drop(first);
    }
}
