//! Memory and load time of a scenario's data file: 1,000,000 rows of three short fields
//! (`user123456,pw123456,team7`), as CSV and as JSON Lines. Each file is loaded in a child
//! process of its own, so that its resident memory starts from a clean heap; the child reads
//! VmRSS (now) and VmHWM (the peak) from /proc/self/status before and after `DataSet::load`.
//!
//! Fails (exit status 1) when loading grows resident memory, or its peak, by more than 150 MB.
//!
//! `cargo bench --bench data_memory`

use std::fs::File;
use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use volley::scenario::data::DataSet;

const ROWS: usize = 1_000_000;
const LIMIT_MB: f64 = 150.0;

/// A field of /proc/self/status in KiB (`VmRSS`, `VmHWM`).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

fn write_files(dir: &Path) -> std::io::Result<()> {
    let mut csv = BufWriter::new(File::create(dir.join("users.csv"))?);
    let mut jsonl = BufWriter::new(File::create(dir.join("users.jsonl"))?);
    writeln!(csv, "name,password,team")?;
    for i in 0..ROWS {
        let team = i % 10;
        writeln!(csv, "user{i},pw{i},team{team}")?;
        writeln!(
            jsonl,
            r#"{{"name":"user{i}","password":"pw{i}","team":"team{team}"}}"#
        )?;
    }
    csv.flush()?;
    jsonl.flush()
}

/// Loads one file in this (child) process and prints its figures; false when over the limit.
fn measure(path: &Path) -> bool {
    let file_mb = std::fs::metadata(path).expect("data file").len() as f64 / 1e6;
    let rss_before = status_kib("VmRSS");
    let started = Instant::now();
    let set = DataSet::load("users", path).expect("load");
    let took = started.elapsed();
    let (rss_after, peak) = (status_kib("VmRSS"), status_kib("VmHWM"));
    let rows = set.rows();
    assert_eq!(rows, ROWS);
    assert_eq!(set.field(ROWS - 1, 0), format!("user{}", ROWS - 1));
    // What the fields need at the least: their text and one u32 bound each.
    let fields = rows * set.columns().len();
    let text: usize = (0..rows)
        .flat_map(|r| (0..set.columns().len()).map(move |c| (r, c)))
        .map(|(r, c)| set.field(r, c).len())
        .sum();
    let grown_mb = rss_after.saturating_sub(rss_before) as f64 * 1024.0 / 1e6;
    let peak_mb = peak.saturating_sub(rss_before) as f64 * 1024.0 / 1e6;
    println!(
        "{}: {rows} rows, file {file_mb:.1} MB, RSS +{grown_mb:.1} MB ({:.1} B/row; text {:.1} MB \
         + bounds {:.1} MB), peak +{peak_mb:.1} MB, process RSS {:.1} MB, load {:.0} ms",
        path.file_name().unwrap().to_string_lossy(),
        grown_mb * 1e6 / rows as f64,
        text as f64 / 1e6,
        (fields + 1) as f64 * 4.0 / 1e6,
        rss_after as f64 * 1024.0 / 1e6,
        took.as_secs_f64() * 1e3,
    );
    black_box(&set);
    let within = grown_mb <= LIMIT_MB && peak_mb <= LIMIT_MB;
    if !within {
        eprintln!("over the limit of {LIMIT_MB} MB");
    }
    within
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--load") {
        let within = measure(Path::new(&args[at + 1]));
        std::process::exit(if within { 0 } else { 1 });
    }
    let dir = tempfile::tempdir().expect("temp dir");
    write_files(dir.path()).expect("write the data files");
    let me = std::env::current_exe().expect("current exe");
    let mut failed = false;
    for file in ["users.csv", "users.jsonl"] {
        let status = Command::new(&me)
            .arg("--load")
            .arg(dir.path().join(file))
            .status()
            .expect("child");
        failed |= !status.success();
    }
    if failed {
        std::process::exit(1);
    }
}
