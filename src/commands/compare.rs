//! `volley compare BASE NEW` (or `--base DIR... --new DIR...`): the verdict table on stdout, the
//! CI files asked for, exit 3 when a figure regressed.

use std::io::Write as _;
use std::process::ExitCode;

use super::{CommandError, passed_or_3};
use crate::cli::CompareArgs;
use crate::compare::allowance::Allowances;
use crate::compare::load::{CompareError, load_runs};
use crate::compare::{self, wording};
use crate::gate::ci::CiFiles;

pub fn compare(args: CompareArgs) -> Result<ExitCode, CommandError> {
    let (base, new) = match (args.base_dir, args.new_dir) {
        (Some(base), Some(new)) => (vec![base], vec![new]),
        _ => (args.base, args.new),
    };
    let allowances = Allowances::new(args.max_regression).map_err(CompareError::from)?;
    let runs = load_runs(&base, &new)?;
    for warning in &runs.warnings {
        eprintln!("{warning}");
    }
    let comparison =
        compare::compare(&runs.base, &runs.new, &allowances).map_err(CompareError::from)?;
    let checks = wording::checks(&comparison, runs.title, runs.warnings);
    let mut stdout = std::io::stdout().lock();
    let _ = write!(stdout, "{}", wording::text(&checks, &comparison));
    let files = CiFiles {
        junit: args.junit,
        markdown: args.markdown,
        json: args.json,
        step_summary: None,
    }
    .with_step_summary();
    let written = files.write(&checks).map_err(CompareError::Write)?;
    if !written.is_empty() {
        let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
        let _ = writeln!(stdout, "  written: {}", names.join(", "));
    }
    let _ = stdout.flush();
    Ok(passed_or_3(!comparison.regressed()))
}
