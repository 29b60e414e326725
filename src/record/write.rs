//! The scenario and its data file written beside each other, then checked as `volley validate`
//! checks it: the scenario goes to a temporary name first, so that a scenario that fails its
//! check (a bug of volley's) leaves nothing behind.

use std::path::{Path, PathBuf};

use super::conversation::Conversation;
use super::{RecordError, RecordSettings, Recorded, text};
use crate::scenario::{self, Overrides};

/// Writes the scenario of `c` (and its data file) where `settings` says, and checks it.
pub fn write(c: &Conversation, settings: &RecordSettings) -> Result<Recorded, RecordError> {
    let scenario_path = &settings.output;
    let stem = scenario_path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("recorded")
        .to_string();
    let data = text::data(c);
    let data_path = data
        .as_ref()
        .map(|_| scenario_path.with_file_name(format!("{stem}.users.csv")));
    for path in std::iter::once(scenario_path).chain(data_path.as_ref()) {
        if path.exists() && !settings.force {
            return Err(RecordError::Exists { path: path.clone() });
        }
    }
    let input = settings.input.file_name().map_or_else(
        || settings.input.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    );
    let data_name = data_path
        .as_ref()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned());
    let scenario_text = text::scenario(c, &stem, &input, data_name.as_deref());

    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RecordError::Write { path, source }
    };
    if let Some(parent) = scenario_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(write_err(parent))?;
    }
    if let (Some(path), Some(data)) = (&data_path, &data) {
        std::fs::write(path, data).map_err(write_err(path))?;
    }
    let trial = scenario_path.with_file_name(format!(".{stem}.toml.checking"));
    std::fs::write(&trial, &scenario_text).map_err(write_err(&trial))?;
    let checked = scenario::load(&trial, &Overrides::default());
    let plan = match checked {
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
