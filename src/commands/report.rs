//! `volley report RUN_DIR [-o FILE]`: a results folder as one HTML page.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::CommandError;
use crate::cli::ReportArgs;

pub fn report(args: ReportArgs) -> Result<ExitCode, CommandError> {
    let written = write_report(&args.run_dir, args.output.as_deref())?;
    println!("{}", written.display());
    Ok(ExitCode::SUCCESS)
}

/// Writes a results folder's report; files it could not read make it an error after writing.
pub fn write_report(dir: &Path, out: Option<&Path>) -> Result<PathBuf, CommandError> {
    let written = crate::report::write(dir, out)?;
    if !written.problems.is_empty() {
        return Err(CommandError::ReportProblems {
            path: written.path,
            problems: written.problems,
        });
    }
    Ok(written.path)
}
