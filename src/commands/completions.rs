//! `volley completions SHELL`: the shell's completion script, generated from the command line's
//! definition, so it knows every command, option and choice there is.

use std::io::Write;
use std::process::ExitCode;

use clap::CommandFactory;

use super::CommandError;
use crate::cli::{Cli, CompletionsArgs};

pub fn completions(args: CompletionsArgs) -> Result<ExitCode, CommandError> {
    let mut command = Cli::command();
    let name = command.get_name().to_string();
    // Generated into memory first: clap_complete panics when its writer fails (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, name, &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .map_err(CommandError::Write)?;
    Ok(ExitCode::SUCCESS)
}
