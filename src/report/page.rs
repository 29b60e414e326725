//! The HTML around the plots: escaping, tables, figures with legends, the page's own CSS. Every
//! piece of text that comes from the results folder goes through [`escape`].

use std::fmt::Write;

use super::charts::Rgb;

pub use crate::results::markup::escape;

/// A count with thousands separated: `144,000`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A page being written, section by section.
pub struct Page {
    html: String,
}

impl Page {
    pub fn new(title: &str) -> Page {
        let mut html = String::new();
        let _ = write!(
            html,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
            escape(title)
        );
        Page { html }
    }

    /// Raw HTML, already escaped by the caller.
    pub fn push(&mut self, html: &str) {
        self.html.push_str(html);
    }

    pub fn open_section(&mut self, id: &str, title: &str) {
        let _ = writeln!(
            self.html,
            "<section id=\"{}\">\n<h2>{}</h2>",
            escape(id),
            escape(title)
        );
    }

    pub fn close_section(&mut self) {
        self.html.push_str("</section>\n");
    }

    /// A paragraph of plain text.
    pub fn note(&mut self, text: &str) {
        let _ = writeln!(self.html, "<p class=\"note\">{}</p>", escape(text));
    }

    /// A paragraph saying what went wrong with a file.
    pub fn problem(&mut self, text: &str) {
        let _ = writeln!(self.html, "<p class=\"problem\">{}</p>", escape(text));
    }

    pub fn finish(mut self, footer: &str) -> String {
        let _ = write!(
            self.html,
            "<footer>{}</footer>\n</body>\n</html>\n",
            escape(footer)
        );
        self.html
    }
}

/// A table with a header row; cells are plain text. Numeric columns (all but the first) are
/// right-aligned.
pub fn table(class: &str, header: &[&str], rows: &[Vec<String>]) -> String {
    let mut html = format!("<table class=\"{}\">\n<thead><tr>", escape(class));
    for h in header {
        let _ = write!(html, "<th>{}</th>", escape(h));
    }
    html.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        html.push_str("<tr>");
        for cell in row {
            let _ = write!(html, "<td>{}</td>", escape(cell));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</tbody>\n</table>\n");
    html
}

/// A two-column table of names and values.
pub fn facts(rows: &[(&str, String)]) -> String {
    let mut html = String::from("<table class=\"facts\">\n");
    for (name, value) in rows {
        let _ = writeln!(
            html,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(name),
            escape(value)
        );
    }
    html.push_str("</table>\n");
    html
}

/// A plot with its title, legend and caption. `svg` comes from plotters, which escapes its text.
pub fn figure(id: &str, title: &str, svg: &str, legend: &[(String, Rgb)], caption: &str) -> String {
    let mut html = format!(
        "<figure class=\"plot\" id=\"{}\">\n<div class=\"plot-title\">{}</div>\n",
        escape(id),
        escape(title)
    );
    html.push_str(svg);
    if !legend.is_empty() {
        html.push_str("\n<div class=\"legend\">");
        for (name, color) in legend {
            let _ = write!(
                html,
                "<span><i style=\"background:{}\"></i>{}</span>",
                color.hex(),
                escape(name)
            );
        }
        html.push_str("</div>");
    }
    if !caption.is_empty() {
        let _ = write!(html, "\n<figcaption>{}</figcaption>", escape(caption));
    }
    html.push_str("\n</figure>\n");
    html
}

const CSS: &str = "
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif;
  color: #222; background: #f6f7f9; margin: 0; padding: 24px 32px 40px; line-height: 1.4; }
header h1 { margin: 0 0 4px; font-size: 26px; }
header .subtitle { color: #555; margin: 0 0 12px; }
nav { margin: 8px 0 18px; font-size: 14px; }
nav a { margin-right: 14px; color: #2b5c8a; text-decoration: none; }
section { background: #fff; border: 1px solid #e1e4e8; border-radius: 8px; padding: 14px 20px 18px;
  margin: 0 0 18px; }
h2 { font-size: 20px; margin: 0 0 10px; }
h3 { font-size: 16px; margin: 14px 0 6px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 14px 22px; }
figure.plot { margin: 0; }
figure.plot svg { width: 100%; height: auto; display: block; }
.plot-title { font-weight: 600; font-size: 14px; margin: 4px 0 2px; }
.legend { font-size: 13px; color: #333; margin: 2px 0 0 62px; }
.legend span { margin-right: 14px; white-space: nowrap; }
.legend i { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 5px;
  vertical-align: -1px; }
figcaption { font-size: 12px; color: #666; margin: 2px 0 0 62px; }
table { border-collapse: collapse; font-size: 14px; margin: 4px 0 10px; }
th, td { padding: 3px 10px; border-bottom: 1px solid #eceef1; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f3f4f6; font-weight: 600; }
table.facts th { text-align: left; font-weight: 600; color: #444; background: none; }
table.facts td { text-align: left; white-space: normal; }
table.error-kinds td:last-child { text-align: left; white-space: normal; }
table.thresholds td:nth-child(2), table.thresholds th:nth-child(2),
  table.thresholds td:last-child, table.thresholds th:last-child { text-align: left; }
.phase-bar { display: flex; width: 100%; max-width: 720px; height: 18px; border-radius: 3px;
  overflow: hidden; background: #eceef1; margin: 4px 0 6px; }
.phase-bar span { display: block; height: 100%; }
i.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
table.phases td:nth-child(2), table.phases th:nth-child(2) { text-align: left; white-space: normal; }
.columns { display: flex; flex-wrap: wrap; gap: 0 40px; align-items: flex-start; }
.verdict { display: inline-block; padding: 2px 10px; border-radius: 4px; font-weight: 600; }
.pass { background: #e3f4e1; color: #1d6b22; }
.fail { background: #fbe3e3; color: #a4161a; }
.status-interrupted { background: #fff3cd; color: #7a5b00; }
.note { color: #555; font-size: 14px; }
.problem { color: #a4161a; font-size: 14px; }
pre { background: #f6f8fa; border: 1px solid #e1e4e8; border-radius: 6px; padding: 10px 14px;
  font-size: 13px; overflow: auto; max-height: 600px; }
footer { color: #777; font-size: 12px; margin-top: 10px; }
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_files_cannot_make_markup() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
        let html = table("t", &["a<b"], &[vec!["<i>".into()]]);
        assert!(html.contains("<th>a&lt;b</th>") && html.contains("<td>&lt;i&gt;</td>"));
        let page = Page::new("</title><script>").finish("x");
        assert_eq!(thousands(144_000), "144,000");
        assert_eq!(thousands(999), "999");
        assert!(page.contains("<title>&lt;/title&gt;&lt;script&gt;</title>"));
    }
}
