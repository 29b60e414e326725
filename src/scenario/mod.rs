//! The scenario file: reading it, pointing at the exact line and column of anything wrong, applying
//! command-line overrides, and compiling it into a [`Plan`] the runner executes.

pub mod data;
pub mod model;
mod plan;
pub mod schema;
pub mod spanned;
pub mod template;
pub mod threshold;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use model::{Scenario, StampMode};
pub use plan::{
    AckWait, Action, Arrivals, Capture, CaptureSource, EmitPlan, ExpectPlan, GroupPlan, HttpBody,
    HttpPlan, HttpStep, Matcher, Message, OnPlan, Origin, Placement, Plan, Protocol, ReconnectPlan,
    SecretSlots, StatusCheck, Step, Target, capture_all, parse_target,
};

use crate::units::{Ramp, Rate};
use spanned::Spanned;

/// A scenario that cannot be read or does not make sense.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: {message}", path.display())]
    Override { path: PathBuf, message: String },
}

/// Values from the command line that replace the file's.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub target: Option<String>,
    /// Total clients, shared among the groups in proportion to their sizes.
    pub clients: Option<u64>,
    pub duration: Option<Duration>,
    /// Per-client rate for every emit.
    pub rate: Option<Rate>,
    pub ramp: Option<Ramp>,
    pub seed: Option<u64>,
}

/// A scenario file's text with its name, kept to turn byte offsets into line and column.
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    pub fn read(path: &Path) -> Result<Source, ScenarioError> {
        let bytes = std::fs::read(path).map_err(|source| ScenarioError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Source::from_bytes(path, bytes)
    }

    /// The file's bytes as its text, refused at the line and column of the first byte that is
    /// not UTF-8; `path` names the file in errors and is where `[[data]]` files are found.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Source, ScenarioError> {
        let text = String::from_utf8(bytes).map_err(|e| {
            // The error names the first bad byte: its line, and its column in characters.
            let bytes = e.as_bytes();
            let bad = e.utf8_error().valid_up_to();
            let good = std::str::from_utf8(&bytes[..bad]).expect("valid up to here");
            let line_start = good.rfind('\n').map_or(0, |i| i + 1);
            ScenarioError::Invalid {
                path: path.to_path_buf(),
                line: good.matches('\n').count() + 1,
                column: good[line_start..].chars().count() + 1,
                message: format!(
                    "not UTF-8: byte 0x{:02x} cannot start or continue a character here; \
                     save the file as UTF-8",
                    bytes[bad]
                ),
            }
        })?;
        Ok(Source {
            path: path.to_path_buf(),
            text,
        })
    }

    /// An error at a byte range of the file (line and column are 1-based, columns count characters).
    pub fn error_at(&self, span: Range<usize>, message: impl Into<String>) -> ScenarioError {
        let offset = span.start.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        ScenarioError::Invalid {
            path: self.path.clone(),
            line,
            column,
            message: message.into(),
        }
    }

    /// Parses the TOML into the scenario model.
    pub fn parse(&self) -> Result<Scenario, ScenarioError> {
        toml::from_str::<Scenario>(&self.text).map_err(|e| {
            let message = e.message().trim_end().to_string();
            match e.span() {
                Some(span) => self.error_at(span, message),
                None => self.error_at(0..0, message),
            }
        })
    }
}

/// Reads, overrides and compiles a scenario file.
pub fn load(path: &Path, overrides: &Overrides) -> Result<Plan, ScenarioError> {
    let source = Source::read(path)?;
    let mut scenario = source.parse()?;
    apply_overrides(&mut scenario, overrides, &source.path)?;
    Plan::compile(scenario, &source)
}

fn apply_overrides(
    scenario: &mut Scenario,
    overrides: &Overrides,
    path: &Path,
) -> Result<(), ScenarioError> {
    if let Some(target) = &overrides.target {
        scenario.target = Spanned::new(0..0, target.clone());
    }
    if let Some(duration) = overrides.duration {
        scenario.duration.0 = duration;
    }
    if let Some(ramp) = overrides.ramp {
        scenario.ramp = ramp;
    }
    if let Some(seed) = overrides.seed {
        scenario.seed = Some(seed);
    }
    if let Some(rate) = overrides.rate {
        for emit in scenario.groups.iter_mut().flat_map(|g| g.emit.iter_mut()) {
            emit.rate.0 = rate;
        }
    }
    if let Some(total) = overrides.clients {
        // Arriving users come at their rate: only groups of a fixed size are scaled.
        let sizes: Vec<u64> = scenario
            .groups
            .iter()
            .map(|g| g.clients.as_ref().map_or(0, |c| c.get_ref().0))
            .collect();
        let shared = share(total, &sizes).ok_or_else(|| ScenarioError::Override {
            path: path.to_path_buf(),
            message: format!(
                "--clients {total} cannot be shared among {} groups that have no clients",
                sizes.len()
            ),
        })?;
        for (group, n) in scenario.groups.iter_mut().zip(shared) {
            if let Some(clients) = &mut group.clients {
                *clients = Spanned::new(0..0, crate::units::CountValue(n));
            }
        }
    }
    Ok(())
}

/// Shares `total` among groups in proportion to `sizes` (largest remainder), summing to `total`.
fn share(total: u64, sizes: &[u64]) -> Option<Vec<u64>> {
    let sum: u128 = sizes.iter().map(|&s| s as u128).sum();
    if sum == 0 {
        return None;
    }
    let mut out: Vec<u64> = sizes
        .iter()
        .map(|&s| (s as u128 * total as u128 / sum) as u64)
        .collect();
    let mut remainders: Vec<(u128, usize)> = sizes
        .iter()
        .enumerate()
        .map(|(i, &s)| ((s as u128 * total as u128) % sum, i))
        .collect();
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let missing = total - out.iter().sum::<u64>();
    for &(_, i) in remainders.iter().take(missing as usize) {
        out[i] += 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_override_is_shared_in_proportion() {
        assert_eq!(share(10, &[1000, 10]).unwrap(), vec![10, 0]);
        assert_eq!(share(101, &[100, 1]).unwrap(), vec![100, 1]);
        assert_eq!(share(7, &[1, 1, 1]).unwrap(), vec![3, 2, 2]);
        assert!(share(5, &[0, 0]).is_none());
    }
}
