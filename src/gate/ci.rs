//! A gate's verdict in the shapes CI reads: JUnit XML (one test case per check), a Markdown table
//! for a pull-request comment or `$GITHUB_STEP_SUMMARY`, and JSON for any other tool. Thresholds
//! and comparisons both produce a [`CiChecks`]; the renderers are plain functions.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::results::markup::escape;

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    /// Judged neither way (e.g. a metric only one side of a comparison has).
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }
}

/// One threshold or one compared metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// The test case's name: the expression, or the compared metric.
    pub name: String,
    /// One cell per column of the summary after the first (which is the name).
    pub cells: Vec<String>,
    pub outcome: Outcome,
    /// What failed, with the figures (JUnit failure message); or why it was skipped.
    pub message: String,
}

/// A gate's result: a title, a table of checks, notes under it, and the same as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct CiChecks {
    /// E.g. `volley thresholds: chat-fanout`.
    pub title: String,
    /// The JUnit test suite's name and the test cases' class name, e.g. `volley.thresholds`.
    pub suite: String,
    /// Column headers, the first for the check names.
    pub columns: Vec<String>,
    pub checks: Vec<Check>,
    /// Lines said under the table.
    pub notes: Vec<String>,
    /// The verdict for machines (`--json`), in the gate's own typed shape.
    pub json: Value,
    /// Seconds the judged run(s) took, for JUnit's `time`.
    pub time_s: f64,
}

impl CiChecks {
    pub fn failures(&self) -> usize {
        self.count(Outcome::Failed)
    }

    pub fn passed(&self) -> bool {
        self.failures() == 0
    }

    fn count(&self, outcome: Outcome) -> usize {
        self.checks.iter().filter(|c| c.outcome == outcome).count()
    }

    /// One line: `PASSED: 5 checks` or `FAILED: 2 of 5 checks`.
    pub fn headline(&self) -> String {
        let total = self.checks.len();
        let skipped = match self.count(Outcome::Skipped) {
            0 => String::new(),
            n => format!(", {n} skipped"),
        };
        let plural = if total == 1 { "" } else { "s" };
        if self.passed() {
            format!("PASSED: {total} check{plural}{skipped}")
        } else {
            format!(
                "FAILED: {} of {total} check{plural}{skipped}",
                self.failures()
            )
        }
    }
}

/// JUnit XML: one test suite, one test case per check, a `<failure>` with the figures for each
/// failed check and `<skipped>` for skipped ones.
pub fn junit(checks: &CiChecks) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let tests = checks.checks.len();
    let failures = checks.failures();
    let skipped = checks.count(Outcome::Skipped);
    let time = format!("{:.3}", checks.time_s);
    let suite = escape(&checks.suite);
    let _ = writeln!(
        out,
        "<testsuites name=\"volley\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" \
         time=\"{time}\">"
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{suite}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" \
         skipped=\"{skipped}\" time=\"{time}\">"
    );
    for check in &checks.checks {
        let name = escape(&check.name);
        let mut detail = String::new();
        for (column, cell) in checks.columns[1..].iter().zip(&check.cells) {
            let _ = writeln!(detail, "{column}: {cell}");
        }
        match check.outcome {
            Outcome::Passed => {
                let _ = writeln!(
                    out,
                    "    <testcase name=\"{name}\" classname=\"{suite}\" time=\"0\">\n      \
                     <system-out>{}</system-out>\n    </testcase>",
                    escape(&detail)
                );
            }
            Outcome::Failed => {
                let _ = writeln!(
                    out,
                    "    <testcase name=\"{name}\" classname=\"{suite}\" time=\"0\">\n      \
                     <failure message=\"{}\" type=\"{suite}\">{}</failure>\n    </testcase>",
                    escape(&check.message),
                    escape(&detail)
                );
            }
            Outcome::Skipped => {
                let _ = writeln!(
                    out,
                    "    <testcase name=\"{name}\" classname=\"{suite}\" time=\"0\">\n      \
                     <skipped message=\"{}\"/>\n    </testcase>",
                    escape(&check.message)
                );
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// A Markdown section: title, headline, a table with a mark per row, and the notes.
pub fn markdown(checks: &CiChecks) -> String {
    let mut out = format!("### {}\n\n", md_text(&checks.title));
    let mark = if checks.passed() { "✅" } else { "❌" };
    let _ = writeln!(out, "{mark} **{}**\n", checks.headline());
    if !checks.checks.is_empty() {
        out.push_str("| |");
        for column in &checks.columns {
            let _ = write!(out, " {} |", md_cell(column));
        }
        out.push_str("\n|---|");
        out.push_str(&"---|".repeat(checks.columns.len()));
        out.push('\n');
        for check in &checks.checks {
            let mark = match check.outcome {
                Outcome::Passed => "✅",
                Outcome::Failed => "❌",
                Outcome::Skipped => "➖",
            };
            let _ = write!(out, "| {mark} | `{}` |", md_code(&check.name));
            for cell in &check.cells {
                let _ = write!(out, " {} |", md_cell(cell));
            }
            out.push('\n');
        }
    }
    for note in &checks.notes {
        let _ = write!(out, "\n{}\n", md_text(note));
    }
    out
}

/// The JSON document of `--json`.
pub fn json(checks: &CiChecks) -> Value {
    json!({
        "title": checks.title,
        "passed": checks.passed(),
        "failures": checks.failures(),
        "checks": checks.checks.iter().map(|c| json!({
            "name": c.name,
            "outcome": c.outcome.as_str(),
            "message": c.message,
        })).collect::<Vec<_>>(),
        "notes": checks.notes,
        "detail": checks.json,
    })
}

/// Where to write a gate's summaries.
#[derive(Debug, Clone, Default)]
pub struct CiFiles {
    pub junit: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
    pub json: Option<PathBuf>,
    /// Append the Markdown to this file too: `$GITHUB_STEP_SUMMARY` when set.
    pub step_summary: Option<PathBuf>,
}

impl CiFiles {
    /// The given files, plus `$GITHUB_STEP_SUMMARY` when the environment sets it.
    pub fn with_step_summary(mut self) -> CiFiles {
        self.step_summary = std::env::var_os("GITHUB_STEP_SUMMARY")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        self
    }

    /// Writes every summary asked for; returns the files written.
    pub fn write(&self, checks: &CiChecks) -> std::io::Result<Vec<PathBuf>> {
        let mut written = Vec::new();
        let mut put = |path: &Path, bytes: &[u8]| -> std::io::Result<()> {
            std::fs::write(path, bytes).map_err(|e| with_path(e, path))?;
            written.push(path.to_path_buf());
            Ok(())
        };
        if let Some(path) = &self.junit {
            put(path, junit(checks).as_bytes())?;
        }
        if let Some(path) = &self.markdown {
            put(path, markdown(checks).as_bytes())?;
        }
        if let Some(path) = &self.json {
            let mut bytes = serde_json::to_vec_pretty(&json(checks))?;
            bytes.push(b'\n');
            put(path, &bytes)?;
        }
        if let Some(path) = &self.step_summary {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| with_path(e, path))?;
            file.write_all(format!("{}\n", markdown(checks)).as_bytes())
                .map_err(|e| with_path(e, path))?;
            written.push(path.clone());
        }
        Ok(written)
    }
}

fn with_path(e: std::io::Error, path: &Path) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
}

/// A table cell: pipes and line breaks would end it.
fn md_cell(text: &str) -> String {
    md_text(text).replace('|', "\\|").replace('\n', " ")
}

/// Inside backticks, where HTML is not rendered (and entities not decoded), in a table cell: a
/// backtick would end the span, a pipe the cell.
fn md_code(text: &str) -> String {
    text.replace('`', "'")
        .replace('|', "\\|")
        .replace('\n', " ")
}

/// Plain text: HTML tags would be rendered by GitHub.
fn md_text(text: &str) -> String {
    text.replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checks_of(outcomes: &[Outcome]) -> CiChecks {
        CiChecks {
            title: "volley thresholds: chat <fan|out>".into(),
            suite: "volley.thresholds".into(),
            columns: vec!["threshold".into(), "actual".into()],
            checks: outcomes
                .iter()
                .enumerate()
                .map(|(i, &outcome)| Check {
                    name: format!("fanout.p99 < {i}ms & \"so\""),
                    cells: vec![format!("{i}.5ms|x")],
                    outcome,
                    message: format!("fanout.p99 was {i}.5ms\u{1}"),
                })
                .collect(),
            notes: vec!["a <note>".into()],
            json: json!({ "k": 1 }),
            time_s: 1.5,
        }
    }

    #[test]
    fn headline_counts_failures_and_skips() {
        let s = checks_of(&[Outcome::Passed, Outcome::Failed, Outcome::Skipped]);
        assert_eq!(s.headline(), "FAILED: 1 of 3 checks, 1 skipped");
        assert_eq!(checks_of(&[Outcome::Passed]).headline(), "PASSED: 1 check");
    }

    #[test]
    fn junit_escapes_and_marks_failures() {
        let x = junit(&checks_of(&[Outcome::Passed, Outcome::Failed]));
        assert!(x.contains("tests=\"2\" failures=\"1\""), "{x}");
        assert!(
            x.contains("name=\"fanout.p99 &lt; 1ms &amp; &quot;so&quot;\""),
            "{x}"
        );
        assert!(
            x.contains("<failure message=\"fanout.p99 was 1.5ms\""),
            "{x}"
        );
        assert!(!x.contains('\u{1}'));
        assert_eq!(x.matches("<testcase").count(), 2);
    }

    #[test]
    fn markdown_cells_cannot_break_the_table() {
        let m = markdown(&checks_of(&[Outcome::Failed]));
        assert!(m.contains("❌ **FAILED: 1 of 1 check**"), "{m}");
        assert!(
            m.contains("| ❌ | `fanout.p99 < 0ms & \"so\"` | 0.5ms\\|x |"),
            "{m}"
        );
        assert!(m.contains("chat &lt;fan|out&gt;"), "{m}");
        assert!(m.contains("a &lt;note&gt;"), "{m}");
    }
}
