//! Reading the CSV files of a results folder: columns are found by their header names, so files
//! with extra or reordered columns still read; a missing column or a cell that is not what it
//! should be is an error naming the file, line and column. Each file's own reader is beside its
//! writer (timeseries_csv.rs, gaps_csv.rs, errors_csv.rs); this is what they share.

use std::borrow::Cow;
use std::path::Path;

use super::FileError;

/// A cell of text from a peer (a server's close reason, an HTTP body) as a spreadsheet may open
/// it: text that starts with `=`, `+`, `-`, `@`, a tab or a carriage return would be taken for a
/// formula, so it gets a leading `'`, as OWASP advises against CSV injection. Text that starts
/// with `'` gets one too, so that [`from_peer_cell`] gives back exactly what was written.
pub fn peer_cell(text: &str) -> Cow<'_, str> {
    match text.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r' | b'\'') => Cow::Owned(format!("'{text}")),
        _ => Cow::Borrowed(text),
    }
}

/// The text [`peer_cell`] wrote.
pub fn from_peer_cell(cell: &str) -> &str {
    cell.strip_prefix('\'').unwrap_or(cell)
}

/// A CSV file of timed events (gaps.csv, errors.csv) kept whole: the header and every record with
/// its `time_s`, for tools that pass rows on (merging shards) rather than read them.
#[derive(Debug, Clone)]
pub struct TimedRows {
    pub header: Vec<String>,
    /// Each record with its time in seconds since the run's time zero, in file order.
    pub rows: Vec<(f64, Vec<String>)>,
}

pub fn parse_timed_rows(path: &Path, bytes: &[u8]) -> Result<TimedRows, FileError> {
    let mut table = Table::new(path, bytes)?;
    let [time] = table.require(&["time_s"])?;
    let mut rows = Vec::new();
    while let Some(r) = table.next_record()? {
        let at = table.required_number(&r, time)?;
        rows.push((at, r.iter().map(String::from).collect()));
    }
    Ok(TimedRows {
        header: table.header,
        rows,
    })
}

/// A CSV file being read, with what an error message needs.
pub(crate) struct Table<'a> {
    pub path: &'a Path,
    reader: csv::Reader<&'a [u8]>,
    pub header: Vec<String>,
}

impl<'a> Table<'a> {
    pub fn new(path: &'a Path, bytes: &'a [u8]) -> Result<Table<'a>, FileError> {
        let mut reader = csv::Reader::from_reader(bytes);
        let header = reader
            .headers()
            .map_err(|e| FileError::malformed(path, format!("no CSV header: {e}")))?
            .iter()
            .map(String::from)
            .collect();
        Ok(Table {
            path,
            reader,
            header,
        })
    }

    /// The positions of the named columns.
    pub fn require<const N: usize>(&self, names: &[&str; N]) -> Result<[usize; N], FileError> {
        let mut at = [0; N];
        for (slot, name) in at.iter_mut().zip(names) {
            *slot = self.header.iter().position(|h| h == name).ok_or_else(|| {
                FileError::malformed(self.path, format!("no `{name}` column in the header"))
            })?;
        }
        Ok(at)
    }

    pub fn next_record(&mut self) -> Result<Option<csv::StringRecord>, FileError> {
        let mut record = csv::StringRecord::new();
        match self.reader.read_record(&mut record) {
            Ok(true) => Ok(Some(record)),
            Ok(false) => Ok(None),
            Err(e) => Err(FileError::malformed(self.path, e.to_string())),
        }
    }

    /// A cell as a number; empty is none.
    pub fn number(
        &self,
        record: &csv::StringRecord,
        column: usize,
    ) -> Result<Option<f64>, FileError> {
        let cell = record.get(column).unwrap_or("").trim();
        if cell.is_empty() {
            return Ok(None);
        }
        match cell.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Some(v)),
            _ => Err(FileError::malformed(
                self.path,
                format!(
                    "line {}: `{}` is `{cell}`, not a number",
                    record.position().map_or(0, |p| p.line()),
                    self.header[column]
                ),
            )),
        }
    }

    pub fn required_number(
        &self,
        record: &csv::StringRecord,
        column: usize,
    ) -> Result<f64, FileError> {
        self.number(record, column)?.ok_or_else(|| {
            FileError::malformed(
                self.path,
                format!(
                    "line {}: `{}` is empty",
                    record.position().map_or(0, |p| p.line()),
                    self.header[column]
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_text_a_spreadsheet_would_run_gets_a_quote_and_reads_back_as_written() {
        for (text, cell) in [
            ("=1+1", "'=1+1"),
            ("+1", "'+1"),
            ("-1", "'-1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("'quoted", "''quoted"),
            ("connection reset", "connection reset"),
            ("", ""),
            ("a=b", "a=b"),
        ] {
            assert_eq!(peer_cell(text), cell);
            assert_eq!(from_peer_cell(&peer_cell(text)), text);
        }
    }
}
