//! Data files a scenario's users take their values from: `[[data]] name = "users",
//! file = "users.csv", pick = "unique"` makes `{{users.password}}` the `password` of the row that
//! user was given.
//!
//! A file is read once into a [`DataSet`] that every worker shares read-only (behind an `Arc`):
//! the text of all fields in one string and one offset per field, so a million short rows take
//! tens of megabytes and no client holds a copy. A `.csv` file starts with a header row; a
//! `.jsonl` file holds one object per line whose keys (those of the first line) are the columns.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// A data file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    // The io::Error is in the message only: as a `source` too it would print twice.
    #[error("cannot read data file {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}:{line}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
}

/// The rows of one data file, loaded once and shared read-only by every worker.
pub struct DataSet {
    name: String,
    columns: Vec<String>,
    /// Every field's text, row after row, with nothing between fields.
    text: Box<str>,
    /// Field `i` (row-major) is `text[bounds[i]..bounds[i + 1]]`; `bounds[0]` is 0.
    bounds: Box<[u32]>,
}

impl fmt::Debug for DataSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataSet")
            .field("name", &self.name)
            .field("columns", &self.columns)
            .field("rows", &self.rows())
            .finish()
    }
}

/// Where compiling a scenario finds the `[[data]]` files it names.
#[derive(Debug, Clone, Copy)]
pub enum DataFiles<'a> {
    /// On disk, relative to the scenario file's folder: what `volley run` and `validate` read.
    Disk,
    /// In memory: each file's name as the scenario writes it in `file`, and its text. For a
    /// scenario checked whole before anything is written (`volley record`'s fuzz target).
    Memory(&'a [(&'a str, &'a str)]),
}

impl DataSet {
    /// Opens the data set `name` that a scenario declares with `file = FILE`, found at `path`
    /// (`FILE` resolved against the scenario's folder) or among `files`' texts by `FILE`.
    pub fn open(
        name: &str,
        file: &str,
        path: &Path,
        files: DataFiles<'_>,
    ) -> Result<DataSet, DataError> {
        let DataFiles::Memory(texts) = files else {
            return DataSet::load(name, path);
        };
        let jsonl = DataSet::is_jsonl(path)?;
        let Some((_, text)) = texts.iter().find(|(f, _)| *f == file) else {
            return Err(DataError::Read {
                path: path.to_path_buf(),
                error: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such file among those given",
                ),
            });
        };
        if jsonl {
            DataSet::from_jsonl(name, path, text.as_bytes())
        } else {
            DataSet::from_csv(name, path, text.as_bytes())
        }
    }

    /// Reads `path` (already resolved against the scenario's folder) as CSV or JSON Lines, by its
    /// extension.
    pub fn load(name: &str, path: &Path) -> Result<DataSet, DataError> {
        let read_error = |error| DataError::Read {
            path: path.to_path_buf(),
            error,
        };
        let jsonl = DataSet::is_jsonl(path)?;
        let file = File::open(path).map_err(read_error)?;
        let size = file.metadata().map_err(read_error)?.len();
        if size > u64::from(u32::MAX) {
            return Err(DataError::File {
                path: path.to_path_buf(),
                message: "larger than 4 GiB; split it into smaller data sets".into(),
            });
        }
        // The text kept is never longer than the file: quotes, separators and escapes only shrink.
        let capacity = size as usize;
        if jsonl {
            DataSet::read_jsonl(
                name,
                path,
                BufReader::with_capacity(1 << 16, file),
                capacity,
            )
        } else {
            DataSet::read_csv(name, path, file, capacity)
        }
    }

    /// Whether `path` names a JSON Lines file (else CSV), by its extension.
    fn is_jsonl(path: &Path) -> Result<bool, DataError> {
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match extension.to_ascii_lowercase().as_str() {
            "csv" => Ok(false),
            "jsonl" | "ndjson" => Ok(true),
            _ => Err(DataError::File {
                path: path.to_path_buf(),
                message: "unknown data format; name the file .csv (a header row, then one \
                          row per user) or .jsonl (one JSON object per line)"
                    .into(),
            }),
        }
    }

    /// Reads CSV from `reader`; `path` only names the source in errors.
    pub fn from_csv(name: &str, path: &Path, reader: impl Read) -> Result<DataSet, DataError> {
        DataSet::read_csv(name, path, reader, 0)
    }

    /// Reads JSON Lines from `reader`; `path` only names the source in errors.
    pub fn from_jsonl(name: &str, path: &Path, reader: impl Read) -> Result<DataSet, DataError> {
        DataSet::read_jsonl(name, path, BufReader::new(reader), 0)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The index of the column called `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    pub fn rows(&self) -> usize {
        (self.bounds.len() - 1) / self.columns.len()
    }

    /// The text of one field, without copying. Panics when `row` or `column` is out of range.
    pub fn field(&self, row: usize, column: usize) -> &str {
        assert!(column < self.columns.len(), "column {column} out of range");
        let i = row * self.columns.len() + column;
        &self.text[self.bounds[i] as usize..self.bounds[i + 1] as usize]
    }

    fn read_csv(
        name: &str,
        path: &Path,
        reader: impl Read,
        capacity: usize,
    ) -> Result<DataSet, DataError> {
        let invalid = |line: u64, message: String| DataError::Invalid {
            path: path.to_path_buf(),
            line,
            message,
        };
        // Flexible: a ragged row is reported here, with both counts and what to do.
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(1 << 16)
            .from_reader(reader);
        let mut record = csv::ByteRecord::new();
        let mut next = |record: &mut csv::ByteRecord| {
            csv.read_byte_record(record).map_err(|e| {
                let line = e.position().map_or(0, |p| p.line());
                let message = format!("not valid CSV: {e}");
                match e.into_kind() {
                    csv::ErrorKind::Io(error) => DataError::Read {
                        path: path.to_path_buf(),
                        error,
                    },
                    _ => invalid(line, message),
                }
            })
        };
        if !next(&mut record)? {
            return Err(DataError::File {
                path: path.to_path_buf(),
                message: "the file is empty; its first line must name the columns, e.g. \
                          `name,password`"
                    .into(),
            });
        }
        let header_line = record_line(&record);
        let mut names = Vec::with_capacity(record.len());
        for (i, field) in record.iter().enumerate() {
            names.push(
                csv_text(field, i, &[])
                    .map_err(|m| invalid(header_line, m))?
                    .to_string(),
            );
        }
        let columns = check_columns(names).map_err(|m| invalid(header_line, m))?;
        let mut fields = Fields::new(columns, capacity);
        while next(&mut record)? {
            let line = record_line(&record);
            if record.len() != fields.columns.len() {
                let number = record.position().map_or(0, |p| p.record()) + 1;
                let hint = if record.len() > fields.columns.len() {
                    "quote a value that holds a comma, e.g. `\"Smith, Ann\"`"
                } else {
                    "write an empty value as nothing between two commas, e.g. `ann,,red`"
                };
                return Err(invalid(
                    line,
                    format!(
                        "record {number} has {} fields, the header has {}; {hint}",
                        record.len(),
                        fields.columns.len()
                    ),
                ));
            }
            for (i, field) in record.iter().enumerate() {
                let text = csv_text(field, i, &fields.columns).map_err(|m| invalid(line, m))?;
                fields.push(text).map_err(|m| invalid(line, m))?;
            }
        }
        fields.finish(name).map_err(|m| invalid(header_line, m))
    }

    fn read_jsonl(
        name: &str,
        path: &Path,
        mut reader: impl BufRead,
        capacity: usize,
    ) -> Result<DataSet, DataError> {
        let invalid = |line: u64, message: String| DataError::Invalid {
            path: path.to_path_buf(),
            line,
            message,
        };
        let mut buffer = Vec::new();
        let mut line = 0u64;
        let mut fields: Option<Fields> = None;
        let mut first_line = 0u64;
        // For each column, the entry of this line's object that holds its value.
        let mut entries: Vec<Option<usize>> = Vec::new();
        loop {
            buffer.clear();
            let read = reader
                .read_until(b'\n', &mut buffer)
                .map_err(|error| DataError::Read {
                    path: path.to_path_buf(),
                    error,
                })?;
            if read == 0 {
                break;
            }
            line += 1;
            let mut bytes = buffer.as_slice();
            if line == 1 {
                bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            }
            let text = std::str::from_utf8(bytes).map_err(|_| {
                invalid(line, "not valid UTF-8; save the file as UTF-8".to_string())
            })?;
            // Only the end is trimmed, so that serde_json's columns are the line's.
            let text = text.trim_end();
            if text.trim_start().is_empty() {
                continue;
            }
            if !text.trim_start().starts_with('{') {
                return Err(invalid(
                    line,
                    "not a JSON object; write one object per line, e.g. \
                     {\"name\": \"ann\", \"password\": \"x1\"}"
                        .into(),
                ));
            }
            let object: Object = serde_json::from_str(text).map_err(|e| {
                let detail = e.to_string();
                let detail = detail.rsplit_once(" at line ").map_or(&*detail, |(d, _)| d);
                invalid(
                    line,
                    format!(
                        "not valid JSON at column {}: {detail}; write one object per line",
                        e.column()
                    ),
                )
            })?;
            let fields = match &mut fields {
                Some(fields) => fields,
                None => {
                    first_line = line;
                    let names = object.0.iter().map(|(k, _)| k.clone()).collect();
                    let columns = check_columns(names).map_err(|m| invalid(line, m))?;
                    fields.insert(Fields::new(columns, capacity))
                }
            };
            entries.clear();
            entries.resize(fields.columns.len(), None);
            for (entry, (key, _)) in object.0.iter().enumerate() {
                let Some(i) = fields.columns.iter().position(|c| c == key) else {
                    return Err(invalid(
                        line,
                        format!(
                            "has the key `{key}` that line {first_line} does not have; every \
                             line needs the same keys as the first"
                        ),
                    ));
                };
                if entries[i].replace(entry).is_some() {
                    return Err(invalid(line, format!("has the key `{key}` twice")));
                }
            }
            if let Some(i) = entries.iter().position(Option::is_none) {
                return Err(invalid(
                    line,
                    format!(
                        "lacks the key `{}` that line {first_line} has; every line needs the \
                         same keys as the first",
                        fields.columns[i]
                    ),
                ));
            }
            for (i, entry) in entries.iter().enumerate() {
                let raw = object.0[entry.expect("every key is present")].1.get();
                let text = json_text(raw, &fields.columns[i]).map_err(|m| invalid(line, m))?;
                fields.push(&text).map_err(|m| invalid(line, m))?;
            }
        }
        match fields {
            Some(fields) => fields.finish(name).map_err(|m| invalid(first_line, m)),
            None => Err(DataError::File {
                path: path.to_path_buf(),
                message: "the file is empty; write one JSON object per line, e.g. \
                          {\"name\": \"ann\", \"password\": \"x1\"}"
                    .into(),
            }),
        }
    }
}

/// The data set being built: the columns, the text so far and the end of every field.
struct Fields {
    columns: Vec<String>,
    text: String,
    bounds: Vec<u32>,
}

impl Fields {
    fn new(columns: Vec<String>, capacity: usize) -> Fields {
        let mut bounds = Vec::with_capacity(capacity / 8 + 1);
        bounds.push(0);
        Fields {
            columns,
            text: String::with_capacity(capacity),
            bounds,
        }
    }

    fn push(&mut self, field: &str) -> Result<(), String> {
        self.text.push_str(field);
        let end = u32::try_from(self.text.len())
            .map_err(|_| "the data passes 4 GiB of text here; split the file".to_string())?;
        self.bounds.push(end);
        Ok(())
    }

    fn finish(self, name: &str) -> Result<DataSet, String> {
        if self.bounds.len() == 1 {
            return Err("no rows under the column names; add one row per user".into());
        }
        Ok(DataSet {
            name: name.to_string(),
            columns: self.columns,
            text: self.text.into_boxed_str(),
            bounds: self.bounds.into_boxed_slice(),
        })
    }
}

/// Whether templates can name `name` (as `{{set.name}}`): letters, digits, `_` and `-`.
pub fn is_template_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn check_columns(names: Vec<String>) -> Result<Vec<String>, String> {
    if names.is_empty() {
        return Err("no columns; the first line must name them".into());
    }
    for (i, name) in names.iter().enumerate() {
        if !is_template_name(name) {
            return Err(format!(
                "column {} is named `{name}`; use only letters, digits, `_` and `-` so that \
                 templates can name it",
                i + 1
            ));
        }
        if names[..i].contains(name) {
            return Err(format!(
                "column `{name}` appears twice; give every column its own name"
            ));
        }
    }
    Ok(names)
}

/// The line a CSV record starts on (1-based).
fn record_line(record: &csv::ByteRecord) -> u64 {
    record.position().map_or(0, |p| p.line())
}

/// A CSV field as text; `columns` is empty while reading the header.
fn csv_text<'a>(field: &'a [u8], i: usize, columns: &[String]) -> Result<&'a str, String> {
    std::str::from_utf8(field).map_err(|_| {
        let column = columns
            .get(i)
            .map_or_else(|| format!("{}", i + 1), |c| format!("`{c}`"));
        format!("column {column} is not valid UTF-8; save the file as UTF-8")
    })
}

/// A value's text: a string unescaped, a number or boolean as written.
fn json_text<'a>(raw: &'a str, key: &str) -> Result<std::borrow::Cow<'a, str>, String> {
    let kind = match raw.as_bytes()[0] {
        b'"' if !raw.contains('\\') => return Ok(raw[1..raw.len() - 1].into()),
        b'"' => {
            return serde_json::from_str::<String>(raw)
                .map(Into::into)
                .map_err(|e| e.to_string());
        }
        b'{' => "an object",
        b'[' => "an array",
        b'n' => "null",
        _ => return Ok(raw.into()),
    };
    Err(format!(
        "`{key}` is {kind}; values must be strings, numbers or booleans"
    ))
}

/// A JSON object's entries in the order written, keeping duplicates and each value's text.
struct Object<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Object<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = Object<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object<'de>, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Object(entries))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

/// How users are given rows.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Pick {
    /// User `n` takes row `n % rows`: rows are reused in order when users outnumber them.
    Sequential,
    /// Every user takes a row chosen at random; the run's seed makes the choice repeatable.
    Random,
    /// User `n` takes row `n`; the scenario must not have more users than rows.
    Unique,
}

impl Pick {
    /// The row of the user with index `user` (0-based, across the run) among `rows` (> 0).
    /// For `Unique` the caller has checked that users are no more than rows. `Random` depends
    /// only on `seed` and `user`, so a run repeated with its seed gives users the same rows.
    pub fn row(self, user: u64, rows: usize, seed: u64) -> usize {
        match self {
            Pick::Sequential => (user % rows as u64) as usize,
            Pick::Unique => {
                debug_assert!(user < rows as u64, "user {user} of {rows} unique rows");
                user as usize
            }
            Pick::Random => {
                let mixed = seed ^ user.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                fastrand::Rng::with_seed(mixed).usize(..rows)
            }
        }
    }
}

#[cfg(test)]
mod tests;
