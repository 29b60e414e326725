//! A run that needs more files than a process may open is refused before it starts, with the
//! numbers and the shards that would fit.

use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

use assert_cmd::cargo::cargo_bin;

fn hard_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only the struct passed.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
    let hard = limit.rlim_max as u64;
    hard
}

/// `volley run` on the quickstart scenario (builtin target) with `clients`, the child's open-file
/// limit lowered to `limit` first when given.
fn run_with(clients: u64, limit: Option<u64>) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(cargo_bin("volley"));
    command
        .args(["run", "scenarios/quickstart.toml", "--quiet"])
        .args(["--clients", &clients.to_string()])
        .arg("--out")
        .arg(dir.path().join("out"));
    if let Some(limit) = limit {
        // SAFETY: setrlimit is async-signal-safe; it lowers only the child's own limits.
        unsafe {
            command.pre_exec(move || {
                let lowered = libc::rlimit {
                    rlim_cur: limit as libc::rlim_t,
                    rlim_max: limit as libc::rlim_t,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let output = command.output().unwrap();
    assert!(
        !dir.path().join("out").exists(),
        "refused before starting: no results folder"
    );
    output
}

#[test]
fn a_run_past_the_hard_limit_is_refused_with_the_numbers_and_shards() {
    let hard = hard_limit();
    // Against the in-process server every client is two files: `hard` clients need twice that.
    let output = run_with(hard, None);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let per_process = hard - 64;
    let shards = hard.div_ceil(per_process).max(2);
    for part in [
        format!("needs {} open files ({hard} connections", 2 * hard + 64),
        format!("at most {hard} here"),
        format!("at most {per_process} connections each"),
        format!("volley serve --processes {shards}"),
        "--target ws://127.0.0.1:9000/echo".to_string(),
        format!("--processes {shards} ({shards} client processes"),
        format!("--shard K/{shards}"),
        format!("--clients {} fits", per_process / 2),
    ] {
        assert!(stderr.contains(&part), "{part:?} in:\n{stderr}");
    }
}

#[test]
fn a_lowered_limit_is_the_one_counted() {
    // 1,000 builtin clients need 2,064 files; 500 allow 436 connections per process: 3 shards.
    let output = run_with(1000, Some(500));
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for part in [
        "needs 2064 open files (1000 connections, held at both ends",
        "at most 500 here",
        "volley serve --processes 3",
        "--processes 3 (3 client processes",
        "--shard K/3 with K = 0..2",
        "--clients 218 fits",
    ] {
        assert!(stderr.contains(part), "{part:?} in:\n{stderr}");
    }
}
