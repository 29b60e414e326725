//! `volley schema`: the JSON Schema of scenario files on stdout, for editors.

use std::io::Write;
use std::process::ExitCode;

use super::CommandError;
use crate::scenario::schema::scenario_schema_text;

pub fn schema() -> Result<ExitCode, CommandError> {
    let mut out = std::io::stdout().lock();
    out.write_all(scenario_schema_text().as_bytes())
        .and_then(|()| out.flush())
        .map_err(CommandError::Write)?;
    Ok(ExitCode::SUCCESS)
}
