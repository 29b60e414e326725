//! The parts of the page that differ while a run goes (`volley run --dashboard`): a header that
//! says it is running, a summary of the seconds written so far, and the script that follows the
//! run. The script asks [`STATE_PATH`] once a second; when a new second is in the files (or the
//! run has ended) it fetches the page again and puts its body in place of the old one, keeping
//! the scroll position. Nothing is fetched from anywhere but the dashboard itself.

use super::page::{Page, escape, facts, thousands};
use crate::results::RunFolder;

/// Where the script asks how far the run is: `{"second": N, "finished": bool}`.
pub const STATE_PATH: &str = "/state.json";

/// The run's progress as the script reads it: seconds written so far, and whether run.json is.
pub fn state_json(seconds: u64, finished: bool) -> String {
    format!("{{\"second\":{seconds},\"finished\":{finished}}}")
}

pub fn header(page: &mut Page, dir_name: &str, folder: &RunFolder) {
    let second = last_second(folder);
    page.push(&format!(
        "<header>\n<h1>{}</h1>\n<p class=\"subtitle live\" data-live-second=\"{second}\">running: \
         {second} s so far; this page follows the run and becomes its report when it ends</p>\n\
         </header>\n",
        escape(dir_name)
    ));
}

/// Totals of the seconds written so far, and the clients connected in the last one.
pub fn summary(page: &mut Page, folder: &RunFolder) {
    let Ok(ts) = &folder.timeseries else {
        page.note("Nothing written yet: the first second is on its way.");
        return;
    };
    let total = |name: &str| -> u64 {
        ts.column(name)
            .map_or(0.0, |c| c.into_iter().flatten().sum::<f64>()) as u64
    };
    let last = |name: &str| -> u64 {
        ts.column(name)
            .and_then(|c| c.into_iter().flatten().last())
            .unwrap_or(0.0) as u64
    };
    page.push(&facts(&[
        ("seconds so far", last_second(folder).to_string()),
        ("sent", thousands(total("sent"))),
        ("received", thousands(total("received"))),
        ("errors", thousands(total("errors"))),
        ("connected now", thousands(last("connected"))),
        ("reconnects", thousands(total("reconnects"))),
    ]));
    page.note("Totals of the seconds written so far; the full summary comes when the run ends.");
}

fn last_second(folder: &RunFolder) -> u64 {
    folder
        .timeseries
        .as_ref()
        .map_or(0.0, |ts| ts.seconds().into_iter().fold(0.0, f64::max)) as u64
}

pub const SCRIPT: &str = r#"<script>
(() => {
  const seen = () => Number(document.querySelector("[data-live-second]")?.dataset.liveSecond ?? -1);
  let second = seen();
  const follow = async () => {
    try {
      const state = await (await fetch("/state.json", { cache: "no-store" })).json();
      if (state.finished || state.second !== second) {
        const html = await (await fetch("/", { cache: "no-store" })).text();
        const next = new DOMParser().parseFromString(html, "text/html");
        const y = window.scrollY;
        document.title = next.title;
        document.body.replaceWith(next.body);
        window.scrollTo(0, y);
        second = state.second;
        if (state.finished) return;
      }
    } catch (e) {
      // The dashboard went away (the command ended): the page stays as it is.
      return;
    }
    setTimeout(follow, 1000);
  };
  setTimeout(follow, 1000);
})();
</script>
"#;
