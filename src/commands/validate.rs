//! `volley validate FILE`: the scenario checked as a run would check it, and what it plans.

use std::process::ExitCode;

use super::CommandError;
use crate::cli::ValidateArgs;
use crate::scenario::{self, Overrides};
use crate::units::format_duration;

pub fn validate(args: ValidateArgs) -> Result<ExitCode, CommandError> {
    let plan = scenario::load(&args.scenario, &Overrides::default())?;
    let emits: usize = plan.groups.iter().map(|g| g.emits.len()).sum();
    let clients = if plan.fixed_clients() == plan.total_clients() {
        format!("{} clients", plan.total_clients())
    } else {
        format!(
            "{} clients ({} arriving, at most {} at once)",
            plan.total_clients(),
            plan.total_clients() - plan.fixed_clients(),
            plan.peak_clients()
        )
    };
    let steps: usize = plan
        .groups
        .iter()
        .map(|g| g.before_connect.len() + g.on_connect.len())
        .sum();
    let handlers: usize = plan.groups.iter().map(|g| g.on.len()).sum();
    let mut conversation = String::new();
    if !plan.data.is_empty() || steps > 0 || handlers > 0 {
        conversation = format!(
            ", {} data set(s), {steps} step(s), {handlers} handler(s)",
            plan.data.len()
        );
    }
    println!(
        "{}: ok — \"{}\", {clients} in {} group(s), {} emit stream(s), {} expect(s){conversation}, {} threshold(s), duration {}, ramp {}",
        args.scenario.display(),
        plan.name,
        plan.groups.len(),
        emits,
        plan.expects.len(),
        plan.thresholds.len(),
        format_duration(plan.duration),
        plan.ramp,
    );
    Ok(ExitCode::SUCCESS)
}
