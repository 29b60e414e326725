//! errors.csv, one row per error as it happens: `time_s,client,group,kind,detail`; and read back.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use super::csv_table::{Table, from_peer_cell, peer_cell};
use super::{ExportError, FileError};
use crate::metrics::ErrorRow;

pub const HEADER: [&str; 5] = ["time_s", "client", "group", "kind", "detail"];
/// Rows written at most; later errors are still counted in summary.csv and run.json.
pub const MAX_ROWS: u64 = 100_000;

pub struct ErrorsWriter<W: std::io::Write> {
    csv: csv::Writer<W>,
    groups: Vec<String>,
    written: u64,
    /// Rows not written because of [`MAX_ROWS`].
    pub dropped: u64,
}

impl ErrorsWriter<BufWriter<File>> {
    pub fn create(path: &Path, groups: Vec<String>) -> Result<Self, ExportError> {
        ErrorsWriter::new(super::export::create_file(path)?, groups)
    }
}

impl<W: std::io::Write> ErrorsWriter<W> {
    pub fn new(out: W, groups: Vec<String>) -> Result<Self, ExportError> {
        let mut csv = csv::Writer::from_writer(out);
        csv.write_record(HEADER)?;
        csv.flush().map_err(csv::Error::from)?;
        Ok(ErrorsWriter {
            csv,
            groups,
            written: 0,
            dropped: 0,
        })
    }

    pub fn write(&mut self, rows: &[ErrorRow]) -> Result<(), ExportError> {
        for row in rows {
            if self.written >= MAX_ROWS {
                self.dropped += 1;
                continue;
            }
            let group = self
                .groups
                .get(row.group as usize)
                .map(String::as_str)
                .unwrap_or("");
            self.csv.write_record([
                format!("{:.3}", row.at.as_secs_f64()),
                row.client.to_string(),
                group.to_string(),
                row.kind.to_string(),
                peer_cell(&row.detail).into_owned(),
            ])?;
            self.written += 1;
        }
        self.csv.flush().map_err(csv::Error::from)?;
        Ok(())
    }

    pub fn into_inner(self) -> Option<W> {
        self.csv.into_inner().ok()
    }
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
            detail: from_peer_cell(&r[detail]).to_string(),
        });
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_by_header_with_quoted_details() {
        let errors =
            "time_s,client,group,kind,detail\n0.500,4,g,reset,\"connection reset, by peer\"\n";
        let events = parse_errors(Path::new("errors.csv"), errors.as_bytes()).unwrap();
        assert_eq!(events[0].kind, "reset");
        assert_eq!(events[0].detail, "connection reset, by peer");
    }
}
