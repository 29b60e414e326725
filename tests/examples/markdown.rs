//! Markdown read just enough for the checks: fenced blocks, fragment markers, inline code, links
//! and GitHub's heading anchors.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::root;

/// README.md and every page of docs/, as (path from the root, text).
pub(super) fn doc_files() -> Vec<(String, String)> {
    let mut names = vec!["README.md".to_string()];
    let mut pages: Vec<String> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    pages.sort();
    names.extend(pages);
    names
        .into_iter()
        .map(|name| {
            let text = std::fs::read_to_string(root().join(&name)).unwrap();
            (name, text)
        })
        .collect()
}

/// A fenced code block.
#[derive(Debug)]
pub(super) struct Fence {
    /// The info string's first word: `toml`, `sh`, or empty.
    pub(super) lang: String,
    /// 1-based line of the opening fence.
    pub(super) line: usize,
    /// The lines between the fences, their indentation up to the fence's removed.
    pub(super) body: String,
    /// The HTML comment that ends on the line right before the opening fence, if any: its line and
    /// its text between `<!--` and `-->`.
    pub(super) comment: Option<(usize, String)>,
}

/// The fenced blocks of a Markdown text, and the text with each block's lines and every HTML
/// comment blanked (line numbers kept), for reading the prose. An unclosed fence is an error.
pub(super) fn split_markdown(text: &str) -> Result<(Vec<Fence>, String), String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut fences = Vec::new();
    let mut prose: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        if !trimmed.starts_with("```") {
            prose.push(line.to_string());
            i += 1;
            continue;
        }
        let indent = line.len() - trimmed.len();
        let ticks = trimmed.chars().take_while(|&c| c == '`').count();
        let lang = trimmed[ticks..]
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string();
        let comment = comment_before(&lines, i);
        let open = i;
        let mut body = String::new();
        i += 1;
        loop {
            let Some(inner) = lines.get(i) else {
                return Err(format!("line {}: the fence is never closed", open + 1));
            };
            let inner_trimmed = inner.trim_start();
            if inner_trimmed.starts_with(&"`".repeat(ticks))
                && inner_trimmed.trim_matches('`').trim().is_empty()
            {
                break;
            }
            let strip = inner.len() - inner_trimmed.len();
            body.push_str(&inner[strip.min(indent)..]);
            body.push('\n');
            i += 1;
        }
        prose.extend(std::iter::repeat_n(String::new(), i - open + 1));
        i += 1;
        fences.push(Fence {
            lang,
            line: open + 1,
            body,
            comment,
        });
    }
    let mut prose = prose.join("\n");
    // HTML comments out of the prose, newlines kept.
    while let Some(start) = prose.find("<!--") {
        let end = prose[start..]
            .find("-->")
            .map_or(prose.len(), |e| start + e + 3);
        let blank = blank(&prose[start..end]);
        prose.replace_range(start..end, &blank);
    }
    Ok((fences, prose))
}

/// Text as spaces of the same length in bytes, its newlines kept.
pub(super) fn blank(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == '\n' {
                "\n".to_string()
            } else {
                " ".repeat(c.len_utf8())
            }
        })
        .collect()
}

/// The HTML comment whose `-->` ends the line right before line `fence` (0-based), if any.
pub(super) fn comment_before(lines: &[&str], fence: usize) -> Option<(usize, String)> {
    let last = fence.checked_sub(1)?;
    if !lines[last].trim_end().ends_with("-->") {
        return None;
    }
    let first = (0..=last).rev().find(|&k| lines[k].contains("<!--"))?;
    let text = lines[first..=last].join("\n");
    let inner = text.split_once("<!--")?.1;
    let inner = inner.rsplit_once("-->")?.0;
    Some((first + 1, inner.trim().to_string()))
}

/// What a fragment is appended to: a file of the repository, lines, or both.
#[derive(Debug, PartialEq)]
pub(super) struct Fragment {
    pub(super) file: Option<String>,
    pub(super) lines: String,
}

/// Reads `fragment: appended to FILE`, `fragment: appended to FILE and these lines:\nLINES` or
/// `fragment: appended to these lines:\nLINES`. `Ok(None)` for a comment that is not a fragment
/// marker at all.
pub(super) fn parse_fragment(comment: &str) -> Result<Option<Fragment>, String> {
    let Some(rest) = comment.strip_prefix("fragment:") else {
        return Ok(None);
    };
    let rest = rest.trim_start().strip_prefix("appended to").ok_or(
        "a fragment marker reads `fragment: appended to FILE`, `... FILE and these lines:` or \
         `... these lines:`",
    )?;
    let (first, lines) = rest.split_once('\n').unwrap_or((rest, ""));
    let first = first.trim();
    let (file, with_lines) = match first.strip_suffix("these lines:") {
        Some(before) => (before.trim().strip_suffix(" and").unwrap_or(before), true),
        None => (first, false),
    };
    let file = file.trim();
    if with_lines && lines.trim().is_empty() {
        return Err("`these lines:` is followed by no lines".into());
    }
    if !with_lines && !lines.trim().is_empty() {
        return Err("lines follow the file, but the marker does not say `and these lines:`".into());
    }
    if file.is_empty() && !with_lines {
        return Err("the marker names no file and no lines".into());
    }
    if file.contains(char::is_whitespace) {
        return Err(format!(
            "`{file}` is not a file name (write `FILE and these lines:`)"
        ));
    }
    Ok(Some(Fragment {
        file: (!file.is_empty()).then(|| file.to_string()),
        lines: if with_lines {
            format!("{}\n", lines.trim_matches('\n'))
        } else {
            String::new()
        },
    }))
}

/// The inline code spans of prose (fenced blocks already blanked), as byte ranges: the whole span
/// with its backticks, and its content. A span closes at the next run of exactly as many backticks.
pub(super) fn code_spans(prose: &str) -> Vec<(std::ops::Range<usize>, std::ops::Range<usize>)> {
    let bytes = prose.as_bytes();
    let run_at = |at: usize| bytes[at..].iter().take_while(|&&b| b == b'`').count();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'`' {
            i += 1;
            continue;
        }
        let ticks = run_at(i);
        let open = i + ticks;
        let mut k = open;
        let mut close = None;
        while k < bytes.len() {
            if bytes[k] == b'`' {
                let run = run_at(k);
                if run == ticks {
                    close = Some(k);
                    break;
                }
                k += run;
            } else {
                k += 1;
            }
        }
        match close {
            Some(close) => {
                spans.push((i..close + ticks, open..close));
                i = close + ticks;
            }
            None => i = open,
        }
    }
    spans
}

/// The inline code spans of prose with the line each starts on; a span's newlines read as spaces.
pub(super) fn inline_code(prose: &str) -> Vec<(usize, String)> {
    code_spans(prose)
        .into_iter()
        .map(|(whole, content)| {
            let line = prose[..whole.start].matches('\n').count() + 1;
            (line, prose[content].replace('\n', " ").trim().to_string())
        })
        .collect()
}

/// Prose with its inline code spans blanked (newlines kept), so links are not read out of code.
pub(super) fn without_inline_code(prose: &str) -> String {
    let mut out = prose.to_string();
    for (whole, _) in code_spans(prose) {
        let blank = blank(&prose[whole.clone()]);
        out.replace_range(whole, &blank);
    }
    out
}

/// The targets of the inline links and images `[text](target)` of prose, with their lines.
pub(super) fn links(prose: &str) -> Vec<(usize, String)> {
    let text = without_inline_code(prose);
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("](") {
        let start = from + at + 2;
        let mut depth = 1;
        let mut end = None;
        for (k, c) in text[start..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(start + k);
                        break;
                    }
                }
                '\n' => break,
                _ => {}
            }
        }
        let Some(end) = end else {
            from = start;
            continue;
        };
        let target = text[start..end].split_whitespace().next().unwrap_or("");
        let line = text[..start].matches('\n').count() + 1;
        found.push((line, target.to_string()));
        from = end;
    }
    found
}

/// GitHub's anchor of a heading's text: links read as their text, lower case, only letters,
/// digits, `-`, `_` and spaces kept, spaces made `-`.
pub(super) fn slug(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    // `[text](target)` reads as `text`.
    while let Some(open) = rest.find('[') {
        let Some(mid) = rest[open..].find("](") else {
            break;
        };
        let Some(close) = rest[open + mid..].find(')') else {
            break;
        };
        text.push_str(&rest[..open]);
        text.push_str(&rest[open + 1..open + mid]);
        rest = &rest[open + mid + close + 1..];
    }
    text.push_str(rest);
    text.trim()
        .to_lowercase()
        .chars()
        .filter(|&c| c.is_alphanumeric() || c == '-' || c == '_' || c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown text's headings, a repeated one numbered as GitHub numbers it.
pub(super) fn anchors(text: &str) -> Result<BTreeSet<String>, String> {
    let (_, prose) = split_markdown(text)?;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut anchors = BTreeSet::new();
    for line in prose.lines() {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if hashes == 0 || hashes > 6 || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(line[hashes..].trim().trim_end_matches('#'));
        let n = seen.entry(base.clone()).or_insert(0);
        anchors.insert(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    Ok(anchors)
}

/// `a/./b/../c` as `a/c`.
pub(super) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The lines of a block with `\\` continuations joined, each with the (1-based) line it starts on.
pub(super) fn logical_lines(body: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (k, line) in body.lines().enumerate() {
        let (start, mut text) = current.take().unwrap_or((k + 1, String::new()));
        match line.strip_suffix('\\') {
            Some(head) => {
                text.push_str(head);
                text.push(' ');
                current = Some((start, text));
            }
            None => {
                text.push_str(line);
                lines.push((start, text));
            }
        }
    }
    lines.extend(current);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_read_as_github_reads_it() {
        assert_eq!(
            slug("Source addresses: `--source-ips`"),
            "source-addresses---source-ips"
        );
        assert_eq!(
            slug("### 100,000 connections held for 60 s".trim_start_matches("### ")),
            "100000-connections-held-for-60-s"
        );
        assert_eq!(slug("Socket.IO end to end"), "socketio-end-to-end");
        assert_eq!(slug("See [the docs](x.md) now"), "see-the-docs-now");
        let anchors = anchors("# A\n\n```sh\n# not a heading\n```\n## A\n## `b_c`: d\n").unwrap();
        assert_eq!(
            anchors.into_iter().collect::<Vec<_>>(),
            ["a", "a-1", "b_c-d"]
        );

        let text = "Intro [one](docs/a.md#x) and `[not](code.md)`.\n\
                    <!-- fragment: appended to s.toml -->\n\
                    ```toml\n[reconnect]\n```\n\
                    ![pic](p.png) [two](\n  b.md)\n";
        let (fences, prose) = split_markdown(text).unwrap();
        assert_eq!(fences.len(), 1);
        assert_eq!(fences[0].line, 3);
        assert_eq!(fences[0].body, "[reconnect]\n");
        assert_eq!(
            fences[0].comment,
            Some((2, "fragment: appended to s.toml".to_string()))
        );
        assert_eq!(
            links(&prose),
            [(1, "docs/a.md#x".to_string()), (6, "p.png".to_string())]
        );
        assert!(split_markdown("```sh\nvolley run\n").is_err());
        let lines: Vec<(usize, String)> = logical_lines("volley run a \\\n  --gate\nx\n")
            .into_iter()
            .map(|(k, line)| (k, line.split_whitespace().collect::<Vec<_>>().join(" ")))
            .collect();
        assert_eq!(
            lines,
            [(1, "volley run a --gate".to_string()), (3, "x".to_string())]
        );
        assert_eq!(
            inline_code("a `volley run\n--gate` b ``x ` y``"),
            [
                (1, "volley run --gate".to_string()),
                (2, "x ` y".to_string())
            ]
        );
    }

    #[test]
    fn fragment_markers_are_read_strictly() {
        assert_eq!(
            parse_fragment("fragment: appended to scenarios/quickstart.toml"),
            Ok(Some(Fragment {
                file: Some("scenarios/quickstart.toml".into()),
                lines: String::new()
            }))
        );
        assert_eq!(
            parse_fragment(
                "fragment: appended to a.toml and these lines:\n[[group]]\nname = \"g\""
            ),
            Ok(Some(Fragment {
                file: Some("a.toml".into()),
                lines: "[[group]]\nname = \"g\"\n".into()
            }))
        );
        assert_eq!(
            parse_fragment("fragment: appended to these lines:\nname = \"n\""),
            Ok(Some(Fragment {
                file: None,
                lines: "name = \"n\"\n".into()
            }))
        );
        assert_eq!(parse_fragment("a note for editors"), Ok(None));
        for bad in [
            "fragment: after a.toml",
            "fragment: appended to",
            "fragment: appended to these lines:",
            "fragment: appended to a.toml\nname = \"n\"",
            "fragment: appended to the quickstart",
        ] {
            assert!(parse_fragment(bad).is_err(), "{bad}");
        }
    }
}
