//! `volley merge DIR... -o DIR`: shards' folders into one, judged again; exit 3 when a threshold
//! fails on the merged figures.

use std::io::Write;
use std::process::ExitCode;

use super::{CommandError, passed_or_3};
use crate::cli::MergeArgs;
use crate::gate::verdict;
use crate::results::printout;

pub fn merge(args: MergeArgs) -> Result<ExitCode, CommandError> {
    let options = crate::merge::MergeOptions {
        force: args.force,
        failures: Vec::new(),
    };
    let outcome = crate::merge::merge(&args.dirs, &args.out, &options)?;
    let run = &outcome.run;
    print!(
        "{}",
        printout::render(run, &outcome.dir.display().to_string())
    );
    print!("{}", verdict::render(&run.thresholds));
    println!(
        "  merged    {} folders: {}",
        run.merged_from.len(),
        run.merged_from.join(", ")
    );
    let _ = std::io::stdout().flush();
    if let Some(e) = super::run::failed_shards(run, &outcome.dir.display().to_string()) {
        return Err(e);
    }
    Ok(passed_or_3(run.thresholds.iter().all(|v| v.passed)))
}
