//! `volley run --dashboard[=ADDR]`: the report page of the run while it goes, served from its
//! results folder. `/` is the page drawn from the files as they are (`report::render_live`),
//! `/state.json` how far they go; once run.json is written the page is the report itself, and
//! the dashboard keeps serving it for `--dashboard-linger` (or until Ctrl-C).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::report::live::{self, STATE_PATH};
use crate::report::render_live;
use crate::results::{self, layout};
use crate::telemetry::listen::{Endpoint, MetricsListener, Routes};

/// Serves the dashboard of the run writing into `dir`.
pub fn start(listener: &MetricsListener, dir: PathBuf) -> std::io::Result<Endpoint> {
    let routes: Routes = Arc::new(move |path| match path {
        "/" => Some(("text/html; charset=utf-8", page(&dir))),
        STATE_PATH => {
            let (seconds, finished) = progress(&dir);
            Some(("application/json", live::state_json(seconds, finished)))
        }
        // Browsers ask for it with every page: a dot in the report's blue.
        "/favicon.ico" => Some(("image/svg+xml", ICON.to_owned())),
        _ => None,
    });
    listener.serve_routes(routes)
}

const ICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\">\
                    <circle cx=\"8\" cy=\"8\" r=\"6\" fill=\"#1f77b4\"/></svg>";

fn page(dir: &Path) -> String {
    match results::load(dir) {
        Ok(folder) => render_live(&folder),
        // Before the first file: a page that waits for it.
        Err(_) => format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <title>volley: starting</title>\n</head>\n<body>\n<p data-live-second=\"-1\">\
             The run is starting; this page follows it.</p>\n{}</body>\n</html>\n",
            live::SCRIPT
        ),
    }
}

/// Seconds in timeseries.csv (its lines after the header) and whether run.json is written.
fn progress(dir: &Path) -> (u64, bool) {
    let seconds = std::fs::read(dir.join(layout::TIMESERIES_CSV)).map_or(0, |bytes| {
        bytes
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            .saturating_sub(1)
    });
    (seconds as u64, dir.join(layout::RUN_JSON).exists())
}
