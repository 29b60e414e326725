//! `volley record CAPTURE [-o FILE]`: a scenario (and its data file) from a recorded session.

use std::process::ExitCode;

use super::CommandError;
use crate::cli::RecordArgs;
use crate::record::{self, RecordSettings};

pub fn record(args: RecordArgs) -> Result<ExitCode, CommandError> {
    let output = args
        .output
        .unwrap_or_else(|| record::write::default_output(&args.capture));
    let settings = RecordSettings {
        input: args.capture,
        output,
        filter: args.filter.unwrap_or_default(),
        force: args.force,
    };
    let recorded = record::record(&settings)?;
    for line in &recorded.summary {
        println!("{line}");
    }
    let scenario = recorded.scenario.display();
    match &recorded.data {
        Some(data) => println!("wrote {scenario} and its data file {}", data.display()),
        None => println!("wrote {scenario}"),
    }
    println!("run it with `volley run {scenario} --clients 200 --duration 1m`");
    Ok(ExitCode::SUCCESS)
}
