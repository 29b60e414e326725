//! The open-file limit: every connection is a file descriptor, so a run raises its soft limit to
//! the hard one and refuses, with the numbers, a run that cannot fit.

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
