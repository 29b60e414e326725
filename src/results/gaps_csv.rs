//! gaps.csv, one row per delivery problem as it is noticed, and read back:
//! `time_s,receiver,expect,source,expected_seq,got_seq,count,kind,during_reconnect,recovered`.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use super::csv_table::Table;
use super::{ExportError, FileError};
use crate::metrics::{GapRow, SERVER_SOURCE};

pub const HEADER: [&str; 10] = [
    "time_s",
    "receiver",
    "expect",
    "source",
    "expected_seq",
    "got_seq",
    "count",
    "kind",
    "during_reconnect",
    "recovered",
];
/// Rows written at most; later ones are still counted in summary.csv and run.json.
pub const MAX_ROWS: u64 = 100_000;

pub struct GapsWriter<W: std::io::Write> {
    csv: csv::Writer<W>,
    /// Expect names, by index.
    expects: Vec<String>,
    written: u64,
    /// Rows not written because of [`MAX_ROWS`].
    pub dropped: u64,
}

impl GapsWriter<BufWriter<File>> {
    pub fn create(path: &Path, expects: Vec<String>) -> Result<Self, ExportError> {
        GapsWriter::new(super::export::create_file(path)?, expects)
    }
}

impl<W: std::io::Write> GapsWriter<W> {
    pub fn new(out: W, expects: Vec<String>) -> Result<Self, ExportError> {
        let mut csv = csv::Writer::from_writer(out);
        csv.write_record(HEADER)?;
        csv.flush().map_err(csv::Error::from)?;
        Ok(GapsWriter {
            csv,
            expects,
            written: 0,
            dropped: 0,
        })
    }

    pub fn write(&mut self, rows: &[GapRow]) -> Result<(), ExportError> {
        for row in rows {
            if self.written >= MAX_ROWS {
                self.dropped += 1;
                continue;
            }
            let expect = self
                .expects
                .get(row.expect as usize)
                .map(String::as_str)
                .unwrap_or("");
            let source = match &row.key {
                Some(key) => format!("server:{key}"),
                None if row.source == SERVER_SOURCE => "server".to_string(),
                None => row.source.to_string(),
            };
            self.csv.write_record([
                format!("{:.3}", row.at.as_secs_f64()),
                row.receiver.to_string(),
                expect.to_string(),
                source,
                row.expected.map(|e| e.to_string()).unwrap_or_default(),
                row.got.map(|g| g.to_string()).unwrap_or_default(),
                row.count.to_string(),
                row.kind.as_str().to_string(),
                row.during_reconnect.to_string(),
                row.recovered.to_string(),
            ])?;
            self.written += 1;
        }
        self.csv.flush().map_err(csv::Error::from)?;
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_by_header_and_a_missing_column_is_named() {
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
        let err = parse_gaps(Path::new("gaps.csv"), b"time_s,kind\n").unwrap_err();
        assert!(err.to_string().contains("no `expect` column"), "{err}");
    }
}
