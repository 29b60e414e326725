//! What the end-to-end benches share: `volley serve` in a child process, the CPU time of a
//! process, and the steady-state median of a timeseries.csv column.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `volley serve --threads 1` in a child process, stopped (SIGTERM) when dropped.
pub struct Server {
    pub child: Child,
    /// `ws://127.0.0.1:PORT`
    pub url: String,
}

impl Server {
    pub fn start() -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_volley"))
            .args(["serve", "--threads", "1"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start volley serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .expect("volley serve prints its address")
            .to_string();
        Server { child, url }
    }

    /// The server process's CPU time (user + system) so far.
    pub fn cpu(&self) -> Duration {
        proc_cpu(self.child.id())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: signalling the child we started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// The CPU time (user + system) of process `pid` so far, from /proc/PID/stat.
pub fn proc_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces): state is the first, utime the
    // 12th, stime the 13th, in clock ticks.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_secs_f64(ticks as f64 / per_second as f64)
}

/// This process's CPU time (user + system) so far.
pub fn process_cpu() -> Duration {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// The median over seconds 3 to 10 (all clients connected, emitting, not yet draining) of a
/// per-second column of timeseries.csv.
pub fn steady(timeseries: &Path, column: &str) -> u64 {
    let text = std::fs::read_to_string(timeseries).unwrap();
    let mut lines = text.lines();
    let at = lines
        .next()
        .unwrap()
        .split(',')
        .position(|c| c == column)
        .unwrap();
    let mut per_second: Vec<u64> = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|cols| (3..=10).contains(&cols[0].parse::<u64>().unwrap()))
        .map(|cols| cols[at].parse().unwrap())
        .collect();
    per_second.sort_unstable();
    per_second[per_second.len() / 2]
}
