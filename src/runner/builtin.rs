//! The builtin server as a run's target (`target = "builtin"`), and the open-file check that
//! comes before any connection: a run in one process holds both ends of every connection to an
//! in-process server; the parent of `--processes` holds the server's ends of all its shards'.

use super::RunError;
use super::fdlimit::{self, Shortage};
use crate::scenario::{Plan, Target};
use crate::serve::{self, ServeConfig, ServerHandle};

/// Who holds which end of the run's connections in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ends {
    /// The clients (and, for `target = "builtin"`, the in-process server too).
    Clients,
    /// Only an in-process builtin server's: the clients run in other processes.
    ServerOnly,
}

/// Raises the open-file limit and refuses, with the numbers and how to split the run, `clients`
/// clients of `plan` that this process cannot hold.
pub fn check_files(plan: &Plan, clients: u64, ends: Ends) -> Result<(), RunError> {
    let limit = fdlimit::raise().unwrap_or(1024);
    let per_client = plan.connections_per_client();
    // Against the builtin server, the message suggests the same endpoints on a `volley serve`.
    let served_apart = (plan.target == Target::Builtin).then(|| match plan.socketio() {
        Some(_) => "http://127.0.0.1:9000".to_string(),
        None => format!("ws://127.0.0.1:9000{}", plan.groups[0].path),
    });
    match ends {
        Ends::Clients => Shortage::check(clients, per_client, served_apart, limit),
        Ends::ServerOnly if fdlimit::needed(clients * per_client, false) > limit => Err(Shortage {
            connections: clients * per_client,
            per_client,
            builtin: served_apart,
            limit,
        }),
        Ends::ServerOnly => Ok(()),
    }
    .map_err(RunError::TooManyFiles)
}

/// Starts the builtin server in this process on a free port of 127.0.0.1.
pub fn start(threads: usize) -> Result<ServerHandle, RunError> {
    serve::spawn(ServeConfig {
        threads,
        ..ServeConfig::default()
    })
    .map_err(RunError::Builtin)
}
