//! `volley record`: a recorded session (a browser's HAR export, or a `volley inspect --jsonl`
//! capture) turned into a scenario that replays it, and a data file of the recorded user's
//! credentials. `har` and `jsonl` read the file into a [`capture::Capture`]; `filter` keeps one
//! connection or a time window; `conversation` reads the user's part out of it (HTTP steps,
//! the connection, steps, streams, replies, what must come back); `values` decides what each
//! recorded value becomes (a literal, a placeholder, a capture or a data column), `literal` how
//! recorded text is written in a template; `text` makes the commented scenario and the data
//! file, and `write` puts them in files, checked as `volley validate` checks them.

pub mod capture;
pub mod conversation;
pub mod filter;
pub mod har;
pub mod jsonl;
pub mod literal;
pub mod text;
pub mod values;
pub mod write;

use std::path::{Path, PathBuf};

use crate::protocol::engineio;
use crate::scenario::ScenarioError;

pub use filter::{CaptureFilter, FilterError};

/// What `volley record` is asked to do.
#[derive(Debug, Clone)]
pub struct RecordSettings {
    /// The HAR or JSONL file.
    pub input: PathBuf,
    /// The scenario to write; its data file goes next to it.
    pub output: PathBuf,
    /// Which connection, or which part of the capture.
    pub filter: CaptureFilter,
    /// Replace files that exist.
    pub force: bool,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub scenario: PathBuf,
    pub data: Option<PathBuf>,
    /// One line per thing the scenario holds, for the terminal.
    pub summary: Vec<String>,
}

/// A file that is not a capture volley can read, with where in it.
#[derive(Debug, Clone, PartialEq)]
pub struct BadInput {
    /// `line 3, column 7`, `entry 4`, or empty for the whole file.
    pub place: String,
    pub message: String,
}

impl BadInput {
    pub fn at(place: &str, message: String) -> BadInput {
        BadInput {
            place: place.to_string(),
            message,
        }
    }

    pub fn file(message: &str) -> BadInput {
        BadInput {
            place: String::new(),
            message: message.to_string(),
        }
    }

    /// The JSON document `text` that does not parse, at its line and column (in characters, from
    /// 1, as everywhere else: serde_json counts bytes, and 0 before a line's first).
    pub fn json(text: &str, e: serde_json::Error) -> BadInput {
        let message = if e.is_eof() {
            "the JSON ends early: the file is cut short (was it still being written?)".to_string()
        } else {
            format!("not valid JSON: {}", BadInput::json_message(&e))
        };
        let line = text
            .split('\n')
            .nth(e.line().saturating_sub(1))
            .unwrap_or("");
        let mut end = e.column().min(line.len());
        while !line.is_char_boundary(end) {
            end += 1;
        }
        let column = line[..end].chars().count().max(1);
        BadInput {
            place: format!("line {}, column {column}", e.line()),
            message,
        }
    }

    /// serde_json's message without the position it appends.
    pub fn json_message(e: &serde_json::Error) -> String {
        let text = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        text.strip_suffix(&suffix).unwrap_or(&text).to_string()
    }
}

/// What `volley record` could not do.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: the file is empty: there is nothing to record", path.display())]
    Empty { path: PathBuf },
    #[error("{}{}{}: {}", path.display(), if bad.place.is_empty() { "" } else { ": " }, bad.place, bad.message)]
    Malformed { path: PathBuf, bad: BadInput },
    #[error("{}: {why}", path.display())]
    Nothing { path: PathBuf, why: String },
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error(
        "{} exists already: name another file with -o, or pass --force to replace it",
        path.display()
    )]
    Exists { path: PathBuf },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the scenario volley wrote to {} does not pass its own check, which is a bug in volley record \
         (please report it with the capture): {error}",
        path.display()
    )]
    Invalid { path: PathBuf, error: ScenarioError },
}

impl RecordError {
    /// Bad input and bad arguments are the user's to fix (exit 2); the rest are not (exit 1).
    pub fn is_usage(&self) -> bool {
        !matches!(
            self,
            RecordError::Write { .. } | RecordError::Invalid { .. }
        )
    }
}

/// Reads the capture, finds the conversation, writes the scenario and its data file, and checks
/// the scenario.
pub fn record(settings: &RecordSettings) -> Result<Recorded, RecordError> {
    let path = &settings.input;
    let (text, format) = read(path)?;
    let capture_name = path.file_name().map_or_else(
        || path.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    );
    let names = ScenarioNames {
        capture: &capture_name,
        scenario: settings
            .output
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("recorded"),
    };
    let recording = record_text(&text, format, &settings.filter, names).map_err(|e| match e {
        Unrecordable::Malformed(bad) => RecordError::Malformed {
            path: path.clone(),
            bad,
        },
        Unrecordable::Nothing(why) => RecordError::Nothing {
            path: path.clone(),
            why,
        },
    })?;
    write::write(&recording, settings)
}

/// How a capture file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    /// A browser's HAR export: one JSON document.
    Har,
    /// `volley inspect --jsonl`: one JSON record a line.
    InspectJsonl,
}

/// The names a recorded scenario gives itself: the capture's file name (in its first comment),
/// and its own name (`name`, and its data file's `NAME.users.csv`).
#[derive(Debug, Clone, Copy)]
pub struct ScenarioNames<'a> {
    pub capture: &'a str,
    pub scenario: &'a str,
}

/// A capture's conversation and the files that replay it, as text: nothing is written yet.
#[derive(Debug)]
pub struct Recording {
    pub conversation: conversation::Conversation,
    /// The scenario file's text.
    pub scenario: String,
    /// The data file, when the recorded user has credentials.
    pub data: Option<DataFile>,
}

/// A data file: its name (beside the scenario, as the scenario's `[[data]] file` says) and its
/// text (CSV: a header of the columns and the recorded row).
#[derive(Debug, Clone, PartialEq)]
pub struct DataFile {
    pub name: String,
    pub text: String,
}

/// Why a capture's text gives no scenario.
#[derive(Debug, Clone, PartialEq)]
pub enum Unrecordable {
    /// It is not a capture volley can read: where, and why.
    Malformed(BadInput),
    /// It is one, but it holds no one conversation to record: why.
    Nothing(String),
}

/// What `volley record` makes of a capture's text, without reading or writing a file: the text
/// read as `format` says, the part `filter` keeps, its conversation found, and the scenario and
/// data file that replay it written as text. [`record`] writes them and checks the scenario as
/// `volley validate` does; the fuzz targets `record_har` and `record_jsonl` check it in memory.
pub fn record_text(
    text: &str,
    format: CaptureFormat,
    filter: &CaptureFilter,
    names: ScenarioNames<'_>,
) -> Result<Recording, Unrecordable> {
    let capture = match format {
        CaptureFormat::Har => har::read(text),
        CaptureFormat::InspectJsonl => jsonl::read(text),
    }
    .map_err(Unrecordable::Malformed)?;
    let capture = filter.apply(capture);
    let conversation = conversation::read(&capture, filter).map_err(Unrecordable::Nothing)?;
    let data = text::data(&conversation).map(|text| DataFile {
        name: format!("{}.users.csv", names.scenario),
        text,
    });
    let data_name = data.as_ref().map(|d| d.name.as_str());
    let scenario = text::scenario(&conversation, names.scenario, names.capture, data_name);
    Ok(Recording {
        conversation,
        scenario,
        data,
    })
}

/// Reads `path` as a HAR file (`.har`, or a JSON document with `log`) or as inspect JSONL: its
/// text, and which of the two it is.
pub fn read(path: &Path) -> Result<(String, CaptureFormat), RecordError> {
    let bytes = std::fs::read(path).map_err(|source| RecordError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        RecordError::Malformed {
            path: path.to_path_buf(),
            bad: BadInput::at(
                &format!("line {line}"),
                "not UTF-8 text: a HAR file or a volley inspect --jsonl capture is text".into(),
            ),
        }
    })?;
    // Some Windows tools start a file with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    if text.trim().is_empty() {
        return Err(RecordError::Empty {
            path: path.to_path_buf(),
        });
    }
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let is_har = match extension.as_str() {
        "har" => true,
        "jsonl" | "ndjson" => false,
        // A HAR is one JSON document, usually over many lines; a capture is a record a line.
        _ => {
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            match serde_json::from_str::<serde_json::Value>(first) {
                Ok(record) => record.get("log").is_some(),
                Err(_) => text.trim_start().starts_with('{'),
            }
        }
    };
    let format = if is_har {
        CaptureFormat::Har
    } else {
        CaptureFormat::InspectJsonl
    };
    Ok((text.to_string(), format))
}

/// The Engine.IO version of a request to an Engine.IO server (`EIO=4` in its query).
pub fn engine_version(url: &capture::Url) -> Option<engineio::Version> {
    match url.param("EIO")? {
        "4" => Some(engineio::Version::V4),
        "3" => Some(engineio::Version::V3),
        _ => None,
    }
}

/// Whether a media type is text that a scenario can send or read.
pub fn is_text_media(mime: &str) -> bool {
    mime.starts_with("text/")
        || mime == "application/json"
        || mime.ends_with("+json")
        || mime == "application/x-www-form-urlencoded"
        || mime == "application/xml"
        || mime == "application/javascript"
}

#[cfg(test)]
mod tests;
