//! `volley validate FILE`: the scenario checked as a run would check it, and what it plans.

use std::process::ExitCode;

use super::CommandError;
use crate::cli::ValidateArgs;
use crate::scenario::{self, Overrides};
use crate::units::format_duration;

pub fn validate(args: ValidateArgs) -> Result<ExitCode, CommandError> {
    let plan = scenario::load(&args.scenario, &Overrides::default())?;
    let emits: usize = plan.groups.iter().map(|g| g.emits.len()).sum();
    println!(
        "{}: ok — \"{}\", {} clients in {} group(s), {} emit stream(s), {} expect(s), {} threshold(s), duration {}, ramp {}",
        args.scenario.display(),
        plan.name,
        plan.total_clients(),
        plan.groups.len(),
        emits,
        plan.expects.len(),
        plan.thresholds.len(),
        format_duration(plan.duration),
        plan.ramp,
    );
    Ok(ExitCode::SUCCESS)
}
