//! `volley report`: one self-contained HTML page from a results folder, with plots as inline SVG
//! (no script, font or style sheet is fetched). It reads whatever the folder holds: a missing file
//! leaves its section saying so, a bad one an error naming the file, and the rest is still drawn.
//!
//! Long runs are cut into at most 600 time buckets ([`timeline`]), so a 2-hour run reads as well
//! as a 10-second one. [`render_live`] draws a run still going, for `volley run --dashboard`.

mod charts;
mod connect_phases;
pub mod live;
mod page;
mod plots;
mod sections;
pub mod timeline;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::results::{self, ResultsError, RunFolder, RunStatus};
use page::Page;
use timeline::Timeline;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error("cannot write the report {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ReportError {
    /// A folder that is not a run's results is bad usage; a failed write is not.
    pub fn is_usage(&self) -> bool {
        matches!(self, ReportError::Results(_))
    }
}

/// A report written, and the files it could not read (present but bad).
#[derive(Debug)]
pub struct Written {
    pub path: PathBuf,
    pub problems: Vec<String>,
}

/// Reads the results folder `dir` and writes its report to `out` (default `dir/report.html`).
pub fn write(dir: &Path, out: Option<&Path>) -> Result<Written, ReportError> {
    let folder = results::load(dir)?;
    let html = render(&folder);
    let path = out.map_or_else(|| dir.join(results::layout::REPORT_HTML), Path::to_path_buf);
    std::fs::write(&path, html).map_err(|source| ReportError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(Written {
        path,
        problems: folder.problems().iter().map(|e| e.to_string()).collect(),
    })
}

/// The report page of a loaded results folder.
pub fn render(folder: &RunFolder) -> String {
    render_page(folder, false)
}

/// `volley run --dashboard`: the page of a run still going, drawn from what its files hold so
/// far, with a script that follows the run (it asks [`live::STATE_PATH`] once a second and draws
/// the page again when a second has passed). Once run.json is written the run is over and the
/// page is [`render`]'s, the report `volley report` writes.
pub fn render_live(folder: &RunFolder) -> String {
    match &folder.run {
        // checkpoint.json: the run is still going.
        Ok(run) if run.status != Some(RunStatus::Running) => render(folder),
        _ => render_page(folder, true),
    }
}

fn render_page(folder: &RunFolder, running: bool) -> String {
    let dir_name = folder
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| folder.dir.display().to_string());
    let run_name = folder
        .run
        .as_ref()
        .ok()
        .and_then(|r| r.scenario.name.clone());
    let mut page = Page::new(&format!(
        "volley report: {}",
        run_name.as_deref().unwrap_or(&dir_name)
    ));
    match &folder.run {
        _ if running => live::header(&mut page, &dir_name, folder),
        Ok(run) => sections::header(&mut page, run),
        Err(_) => page.push(&format!(
            "<header>\n<h1>{}</h1>\n<p class=\"subtitle\">volley run report</p>\n</header>\n",
            page::escape(&dir_name)
        )),
    }
    page.push(
        "<nav><a href=\"#summary\">Summary</a><a href=\"#thresholds\">Thresholds</a>\
         <a href=\"#latency\">Latency</a><a href=\"#load\">Load</a>\
         <a href=\"#problems\">Delivery and errors</a><a href=\"#scenario\">Scenario</a></nav>\n",
    );
    let timeline = Timeline::new(run_length(folder));

    page.open_section("summary", "Summary");
    match &folder.run {
        _ if running => live::summary(&mut page, folder),
        Ok(run) => sections::summary(&mut page, run),
        Err(e) => run_json_problem(&mut page, e),
    }
    page.close_section();

    page.open_section("thresholds", "Thresholds");
    match &folder.run {
        _ if running => page.note("The verdicts are judged when the run ends."),
        Ok(run) => sections::thresholds(&mut page, run),
        Err(e) => run_json_problem(&mut page, e),
    }
    page.close_section();

    page.open_section("latency", "Latency");
    plots::latency(&mut page, folder, &timeline);
    page.close_section();

    page.open_section("load", "Load over time");
    plots::load(&mut page, folder, &timeline);
    page.close_section();

    page.open_section("problems", "Delivery problems and errors over time");
    plots::problems(&mut page, folder, &timeline);
    page.close_section();

    page.open_section("scenario", "Scenario");
    match &folder.run {
        _ if running => page.note("The resolved scenario is shown when the run ends."),
        Ok(run) => sections::scenario(&mut page, run),
        Err(e) => run_json_problem(&mut page, e),
    }
    page.close_section();
    if running {
        page.push(live::SCRIPT);
    }

    page.finish(&format!(
        "Written by volley {} from {} at {}.",
        env!("CARGO_PKG_VERSION"),
        folder.dir.display(),
        humantime::format_rfc3339_seconds(SystemTime::now())
    ))
}

fn run_json_problem(page: &mut Page, e: &results::FileError) {
    if e.is_missing() {
        page.note(&format!("{e}: nothing to show here."));
    } else {
        page.problem(&e.to_string());
    }
}

/// Seconds from the run's time zero to the last thing any file saw.
fn run_length(folder: &RunFolder) -> f64 {
    let mut end: f64 = 0.0;
    if let Ok(run) = &folder.run {
        end = end.max(run.elapsed_s.unwrap_or(0.0));
    }
    if let Ok(log) = &folder.latency {
        end = end.max(log.end().as_secs_f64());
    }
    if let Ok(ts) = &folder.timeseries {
        end = end.max(ts.seconds().into_iter().fold(0.0, f64::max));
    }
    if let Ok(gaps) = &folder.gaps {
        end = gaps.iter().map(|g| g.time_s).fold(end, f64::max);
    }
    if let Ok(errors) = &folder.errors {
        end = errors.iter().map(|e| e.time_s).fold(end, f64::max);
    }
    end
}
