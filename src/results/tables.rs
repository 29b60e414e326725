//! The CSV files of a results folder: timeseries.csv (a number per column and second), gaps.csv and
//! errors.csv (one event per row). Columns are found by their header names, so files with extra or
//! reordered columns still read; a missing column or a cell that is not what it should be is an
//! error naming the file, line and column.

use std::path::Path;

use super::FileError;

/// timeseries.csv: a number (or nothing) per column and row.
#[derive(Debug, Clone)]
pub struct Timeseries {
    pub columns: Vec<String>,
    rows: Vec<Vec<Option<f64>>>,
}

/// One row of gaps.csv.
#[derive(Debug, Clone, PartialEq)]
pub struct GapEvent {
    /// Seconds since the run's time zero.
    pub time_s: f64,
    pub expect: String,
    pub kind: String,
    /// Events it concerns (a gap of 3 is 3 events).
    pub count: u64,
    pub during_reconnect: bool,
}

/// One row of errors.csv.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorEvent {
    /// Seconds since the run's time zero.
    pub time_s: f64,
    pub client: String,
    pub group: String,
    pub kind: String,
    pub detail: String,
}

impl Timeseries {
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Timeseries, FileError> {
        let mut table = Table::new(path, bytes)?;
        table.require(&["second"])?;
        let columns = table.header.clone();
        let mut rows = Vec::new();
        while let Some(record) = table.next_record()? {
            let row = (0..columns.len())
                .map(|i| table.number(&record, i))
                .collect::<Result<Vec<_>, _>>()?;
            rows.push(row);
        }
        Ok(Timeseries { columns, rows })
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// A column's values by row, when the file has it.
    pub fn column(&self, name: &str) -> Option<Vec<Option<f64>>> {
        let i = self.columns.iter().position(|c| c == name)?;
        Some(self.rows.iter().map(|r| r[i]).collect())
    }

    /// `second`: the end of each row's second since the run's time zero.
    pub fn seconds(&self) -> Vec<f64> {
        self.column("second")
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.unwrap_or(0.0))
            .collect()
    }
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

pub fn parse_gaps(path: &Path, bytes: &[u8]) -> Result<Vec<GapEvent>, FileError> {
    let mut table = Table::new(path, bytes)?;
    let [time, expect, kind, count, reconnect] =
        table.require(&["time_s", "expect", "kind", "count", "during_reconnect"])?;
    let mut events = Vec::new();
    while let Some(r) = table.next_record()? {
        events.push(GapEvent {
            time_s: table.required_number(&r, time)?,
            expect: r[expect].to_string(),
            kind: r[kind].to_string(),
            count: table.required_number(&r, count)? as u64,
            during_reconnect: &r[reconnect] == "true",
        });
    }
    Ok(events)
}

pub fn parse_errors(path: &Path, bytes: &[u8]) -> Result<Vec<ErrorEvent>, FileError> {
    let mut table = Table::new(path, bytes)?;
    let [time, client, group, kind, detail] =
        table.require(&["time_s", "client", "group", "kind", "detail"])?;
    let mut events = Vec::new();
    while let Some(r) = table.next_record()? {
        events.push(ErrorEvent {
            time_s: table.required_number(&r, time)?,
            client: r[client].to_string(),
            group: r[group].to_string(),
            kind: r[kind].to_string(),
            detail: r[detail].to_string(),
        });
    }
    Ok(events)
}

/// A CSV file being read, with what an error message needs.
struct Table<'a> {
    path: &'a Path,
    reader: csv::Reader<&'a [u8]>,
    header: Vec<String>,
}

impl<'a> Table<'a> {
    fn new(path: &'a Path, bytes: &'a [u8]) -> Result<Table<'a>, FileError> {
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
    fn require<const N: usize>(&self, names: &[&str; N]) -> Result<[usize; N], FileError> {
        let mut at = [0; N];
        for (slot, name) in at.iter_mut().zip(names) {
            *slot = self.header.iter().position(|h| h == name).ok_or_else(|| {
                FileError::malformed(self.path, format!("no `{name}` column in the header"))
            })?;
        }
        Ok(at)
    }

    fn next_record(&mut self) -> Result<Option<csv::StringRecord>, FileError> {
        let mut record = csv::StringRecord::new();
        match self.reader.read_record(&mut record) {
            Ok(true) => Ok(Some(record)),
            Ok(false) => Ok(None),
            Err(e) => Err(FileError::malformed(self.path, e.to_string())),
        }
    }

    /// A cell as a number; empty is none.
    fn number(&self, record: &csv::StringRecord, column: usize) -> Result<Option<f64>, FileError> {
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

    fn required_number(&self, record: &csv::StringRecord, column: usize) -> Result<f64, FileError> {
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
    fn timeseries_columns_by_name_with_empty_cells_as_none() {
        let csv = "second,epoch_ms,sent,echo_p50_us\n1,1000,5,120\n2,2000,7,\n";
        let ts = Timeseries::parse(Path::new("timeseries.csv"), csv.as_bytes()).unwrap();
        assert_eq!(ts.len(), 2);
        assert_eq!(ts.seconds(), [1.0, 2.0]);
        assert_eq!(ts.column("echo_p50_us").unwrap(), [Some(120.0), None]);
        assert!(ts.column("nope").is_none());
    }

    #[test]
    fn a_bad_cell_names_the_file_line_and_column() {
        let csv = "second,sent\n1,5\n2,lots\n";
        let err = Timeseries::parse(Path::new("r/timeseries.csv"), csv.as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "r/timeseries.csv: line 3: `sent` is `lots`, not a number"
        );
        let err = parse_gaps(Path::new("gaps.csv"), b"time_s,kind\n").unwrap_err();
        assert!(err.to_string().contains("no `expect` column"), "{err}");
    }

    #[test]
    fn gap_and_error_rows_read_by_header() {
        let gaps = "time_s,receiver,expect,source,expected_seq,got_seq,count,kind,during_reconnect,recovered\n\
                    1.250,3,fanout,7,4,6,2,gap,true,false\n";
        let events = parse_gaps(Path::new("gaps.csv"), gaps.as_bytes()).unwrap();
        assert_eq!(
            events,
            [GapEvent {
                time_s: 1.25,
                expect: "fanout".into(),
                kind: "gap".into(),
                count: 2,
                during_reconnect: true,
            }]
        );
        let errors =
            "time_s,client,group,kind,detail\n0.500,4,g,reset,\"connection reset, by peer\"\n";
        let events = parse_errors(Path::new("errors.csv"), errors.as_bytes()).unwrap();
        assert_eq!(events[0].kind, "reset");
        assert_eq!(events[0].detail, "connection reset, by peer");
    }
}
