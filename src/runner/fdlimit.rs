//! The open-file limit: every connection is a file descriptor, so a run raises its soft limit to
//! the hard one and refuses, with the numbers and how to split it, a run that cannot fit.

use std::fmt;

/// Raises the soft limit to the hard one; returns the limit now in force.
pub fn raise() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
    Ok(limit.rlim_cur as u64)
}

/// Descriptors a run needs beside its connections: runtime, files, stdio.
pub const RESERVE: u64 = 64;

/// Files needed for `clients` connections; an in-process builtin server holds the other end too.
pub fn needed(clients: u64, builtin: bool) -> u64 {
    let per_client = if builtin { 2 } else { 1 };
    clients * per_client + RESERVE
}

/// A run that needs more files than one process may open: the numbers, and how to split it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortage {
    /// Client connections of the run (two per long-polling client).
    pub connections: u64,
    /// Connections per client (1, or 2 for long-polling), to say how many clients fit.
    pub per_client: u64,
    /// The in-process builtin server holds the other end of every connection: the --target that
    /// reaches the same endpoints on a `volley serve --listen 127.0.0.1:9000` (path included).
    pub builtin: Option<String>,
    /// The limit in force (the soft limit, raised to the hard one when allowed).
    pub limit: u64,
}

impl Shortage {
    /// `Err` when `clients` clients of `per_client` connections each need more than `limit` files.
    pub fn check(
        clients: u64,
        per_client: u64,
        builtin: Option<String>,
        limit: u64,
    ) -> Result<(), Shortage> {
        let shortage = Shortage {
            connections: clients * per_client,
            per_client,
            builtin,
            limit,
        };
        if shortage.needed() > limit {
            Err(shortage)
        } else {
            Ok(())
        }
    }

    pub fn needed(&self) -> u64 {
        needed(self.connections, self.builtin.is_some())
    }

    /// Connections one process can hold beside its reserve (at least one).
    pub fn per_process(&self) -> u64 {
        self.limit.saturating_sub(RESERVE).max(1)
    }

    /// Processes (or machines) needed when each holds only its own end of its connections.
    pub fn processes(&self) -> u64 {
        self.connections.div_ceil(self.per_process()).max(2)
    }

    /// Clients that fit in this one process as the run is set up.
    pub fn clients_that_fit(&self) -> u64 {
        let ends = if self.builtin.is_some() { 2 } else { 1 };
        self.limit.saturating_sub(RESERVE) / (ends * self.per_client.max(1))
    }
}

impl fmt::Display for Shortage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.processes();
        let both_ends = if self.builtin.is_some() {
            ", held at both ends by the in-process builtin server"
        } else {
            ""
        };
        writeln!(
            f,
            "this run needs {} open files ({} connections{both_ends}) but one process may open at most {} here (the open-file limit, raised to its hard limit: `ulimit -Hn`).",
            self.needed(),
            self.connections,
            self.limit
        )?;
        writeln!(
            f,
            "  Split it into shards of at most {} connections each:",
            self.per_process()
        )?;
        if let Some(target) = &self.builtin {
            writeln!(
                f,
                "  - first run the server apart: `volley serve --processes {n} --listen 127.0.0.1:9000`, and give --target {target} (the in-process builtin server counts against this process's files);"
            )?;
        }
        writeln!(
            f,
            "  - on this machine: --processes {n} ({n} client processes, merged at the end);"
        )?;
        writeln!(
            f,
            "  - on {n} machines: --shard K/{n} with K = 0..{} on each, the same --run-id and --start-at, then `volley merge` their folders.",
            n - 1
        )?;
        write!(
            f,
            "  Or run fewer clients: --clients {} fits in one process.",
            self.clients_that_fit()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_within_the_limit_passes() {
        assert_eq!(Shortage::check(19_936, 1, None, 20_000), Ok(()));
        assert_eq!(
            Shortage::check(9_968, 1, Some("ws://127.0.0.1:9000/echo".into()), 20_000),
            Ok(())
        );
    }

    #[test]
    fn a_run_past_the_limit_names_the_numbers_and_the_shards() {
        let shortage = Shortage::check(50_000, 1, None, 20_000).unwrap_err();
        assert_eq!(shortage.processes(), 3);
        let text = shortage.to_string();
        for part in [
            "needs 50064 open files (50000 connections)",
            "at most 20000 here",
            "at most 19936 connections each",
            "--processes 3",
            "--shard K/3 with K = 0..2",
            "volley merge",
            "--clients 19936 fits",
        ] {
            assert!(text.contains(part), "{part:?} in:\n{text}");
        }
        assert!(!text.contains("volley serve"), "{text}");
    }

    #[test]
    fn a_builtin_run_is_told_to_serve_apart_first() {
        // 20,000 clients against the in-process server: 40,064 files.
        let shortage = Shortage::check(20_000, 1, Some("ws://127.0.0.1:9000/echo".into()), 20_000)
            .unwrap_err();
        let text = shortage.to_string();
        for part in [
            "needs 40064 open files (20000 connections, held at both ends",
            "volley serve --processes 2",
            "--target ws://127.0.0.1:9000/echo",
            "--processes 2 (2 client processes",
            "--clients 9968 fits",
        ] {
            assert!(text.contains(part), "{part:?} in:\n{text}");
        }
    }

    #[test]
    fn long_polling_counts_two_connections_per_client() {
        let shortage = Shortage::check(10_000, 2, None, 20_000).unwrap_err();
        assert_eq!(shortage.connections, 20_000);
        assert_eq!(shortage.processes(), 2);
        assert!(shortage.to_string().contains("--clients 9968 fits"));
    }
}
