//! The recording's scenario and data file written beside each other, then checked as `volley
//! validate` checks them: the scenario goes to a temporary name first, so that a scenario that
//! fails its check (a bug of volley's) leaves nothing behind.

use std::path::{Path, PathBuf};

use super::{RecordError, RecordSettings, Recorded, Recording};
use crate::scenario::{self, Overrides};

/// Writes the recording's scenario (and its data file) where `settings` says, and checks it.
pub fn write(r: &Recording, settings: &RecordSettings) -> Result<Recorded, RecordError> {
    let c = &r.conversation;
    let scenario_path = &settings.output;
    let data_path = r
        .data
        .as_ref()
        .map(|d| scenario_path.with_file_name(&d.name));
    for path in std::iter::once(scenario_path).chain(data_path.as_ref()) {
        if path.exists() && !settings.force {
            return Err(RecordError::Exists { path: path.clone() });
        }
    }
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RecordError::Write { path, source }
    };
    if let Some(parent) = scenario_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(write_err(parent))?;
    }
    if let (Some(path), Some(data)) = (&data_path, &r.data) {
        std::fs::write(path, &data.text).map_err(write_err(path))?;
    }
    let stem = scenario_path
        .file_stem()
        .map_or_else(|| "recorded".into(), |s| s.to_string_lossy().into_owned());
    let trial = scenario_path.with_file_name(format!(".{stem}.toml.checking"));
    std::fs::write(&trial, &r.scenario).map_err(write_err(&trial))?;
    let plan = match scenario::load(&trial, &Overrides::default()) {
        Ok(plan) => plan,
        Err(error) => {
            let _ = std::fs::remove_file(&trial);
            if let Some(path) = &data_path {
                let _ = std::fs::remove_file(path);
            }
            return Err(RecordError::Invalid {
                path: scenario_path.clone(),
                error,
            });
        }
    };
    std::fs::rename(&trial, scenario_path).map_err(write_err(scenario_path))?;
    let steps: usize = plan
        .groups
        .iter()
        .map(|g| g.before_connect.len() + g.on_connect.len())
        .sum();
    let mut summary = vec![
        format!("recorded {}", c.connection),
        format!(
            "{} HTTP call(s), {} message(s) sent and {} received",
            c.counts.exchanges, c.counts.sent, c.counts.received
        ),
        format!(
            "{steps} step(s), {} emit stream(s), {} handler(s), {} expect(s)",
            c.streams.len(),
            c.handlers.len(),
            c.expects.len()
        ),
    ];
    summary.extend(c.values.notes.iter().map(|n| format!("note: {n}")));
    Ok(Recorded {
        scenario: scenario_path.clone(),
        data: data_path,
        summary,
    })
}

/// Where a scenario for `input` goes by default: beside it, `NAME.toml`.
pub fn default_output(input: &Path) -> PathBuf {
    input.with_extension("toml")
}
