//! The examples and the docs call volley as it is, so they cannot drift from the parser:
//!
//! - every `volley <command> --option` in examples/ci/*.yml, in the ```sh/```bash/```shell blocks
//!   of README.md and docs/*.md, on the `$ ` lines of their ```console/```text blocks, and in their
//!   inline code spans that start with `volley `, names a real command and an option that command's
//!   `--help` lists;
//! - every ```toml block of README.md and docs/*.md is a scenario that `volley validate` accepts.
//!   A block that is only part of a scenario (a `[reconnect]` table, one `[[expect]]`) says what it
//!   is appended to in an HTML comment on the lines right before its fence:
//!
//!   ```text
//!   <!-- fragment: appended to scenarios/quickstart.toml -->
//!   <!-- fragment: appended to scenarios/quickstart.toml and these lines:
//!   [[group]]
//!   name = "talkers"
//!   -->
//!   <!-- fragment: appended to these lines:
//!   name = "socketio"
//!   -->
//!   ```
//!
//!   The file (from the repository's root), then the lines, then the block are validated as one
//!   scenario. A block that cannot be checked (an unreadable marker, a missing file) fails the test
//!   by its file and line, as does a block that volley refuses, with volley's error;
//! - every relative link of README.md and docs/*.md reaches a file that exists and, with an
//!   `#anchor` into a Markdown file, a heading of that file (GitHub's slugs), and README.md links
//!   every page of docs/.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn volley() -> Command {
    Command::new(env!("CARGO_BIN_EXE_volley"))
}

/// `(command, options)` of each volley invocation in a file, with `\` continuations joined.
/// Options are the words that start with `--` (up to a `=`) and single-letter ones such as `-o`.
fn invocations(text: &str) -> Vec<(String, Vec<String>)> {
    let joined = text.replace("\\\n", " ");
    let mut found = Vec::new();
    for line in joined.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        let line = line.split(" #").next().unwrap_or(line);
        let words = shell_words(line);
        let mut words = words.iter().map(String::as_str).peekable();
        // Where a shell command starts: the line's start, a YAML `run:` or list item, or after
        // a shell separator.
        let mut command_start = true;
        while let Some(word) = words.next() {
            let starts = command_start;
            command_start = ["run:", "-", "&&", "||", ";", "then", "do", "if", "!"].contains(&word)
                || word.ends_with(';');
            if word != "volley" || !starts {
                continue;
            }
            let Some(command) = words.next() else { break };
            if !command.chars().all(|c| c.is_ascii_lowercase()) {
                continue;
            }
            let mut options = Vec::new();
            while let Some(&next) = words.peek() {
                if ["|", "||", "&&", ";", ">", "&", "2>&1"].contains(&next) {
                    break;
                }
                if let Some(option) = next.strip_prefix("--") {
                    options.push(format!("--{}", option.split('=').next().unwrap()));
                } else if is_short_option(next) {
                    options.push(next.to_string());
                }
                words.next();
            }
            found.push((command.to_string(), options));
        }
    }
    found
}

/// A line's words as a shell splits them: a quoted part (quotes kept) does not end a word.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                continue;
            }
            _ => {}
        }
        word.push(c);
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// `-o`, `-H`: a dash and one letter.
fn is_short_option(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next() == Some('-')
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.next().is_none()
}

/// The options a `--help` text lists: `-q, --quiet`, `--log-frames[=<FILE>]`, `--eio <3|4>`.
fn help_options(help: &str) -> BTreeSet<String> {
    let mut options = BTreeSet::new();
    for line in help.lines() {
        for word in line.split_whitespace() {
            if !word.starts_with('-') {
                break;
            }
            let word = word.trim_end_matches(',');
            let name = word.split(['[', '=', '<']).next().unwrap();
            if name.len() >= 2 && name != "--" {
                options.insert(name.to_string());
            }
        }
    }
    options
}

/// Each command's options, read from `volley <command> --help` once; `None` for no such command.
#[derive(Default)]
struct Help(BTreeMap<String, Option<BTreeSet<String>>>);

impl Help {
    fn options(&mut self, command: &str) -> Option<&BTreeSet<String>> {
        self.0
            .entry(command.to_string())
            .or_insert_with(|| {
                let out = volley().args([command, "--help"]).output().unwrap();
                out.status
                    .success()
                    .then(|| help_options(&String::from_utf8(out.stdout).unwrap()))
            })
            .as_ref()
    }

    /// Checks one invocation; returns how many options were checked, and adds what is wrong to
    /// `problems`, prefixed with `place`.
    fn check(
        &mut self,
        place: &str,
        command: &str,
        options: &[String],
        problems: &mut Vec<String>,
    ) -> usize {
        let Some(known) = self.options(command) else {
            problems.push(format!("{place}: `volley {command}` is not a command"));
            return 0;
        };
        for option in options {
            if !known.contains(option) {
                problems.push(format!(
                    "{place}: `volley {command}` has no option {option}"
                ));
            }
        }
        options.len()
    }
}

#[test]
fn the_ci_examples_use_only_real_commands_and_options() {
    let mut help = Help::default();
    let mut problems = Vec::new();
    let mut checked = 0;
    for name in ["github-actions.yml", "gitlab-ci.yml"] {
        let path = root().join("examples/ci").join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let calls = invocations(&text);
        let commands: Vec<&str> = calls.iter().map(|(c, _)| c.as_str()).collect();
        for needed in ["serve", "run", "compare", "report"] {
            assert!(
                commands.contains(&needed),
                "{name} runs volley {needed}: {commands:?}"
            );
        }
        for (command, options) in calls {
            checked += help.check(name, &command, &options, &mut problems);
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 10, "options checked: {checked}");
}

#[test]
fn invocations_are_found_across_continuations() {
    let calls = invocations(
        "  volley run a.toml --gate \\\n   --out x || s=$?\n- do volley report \"$d\" -o r.html\n\
         volley tap ws://h --send 'emit a --ack' --send \"x y\"\nname: volley gate",
    );
    assert_eq!(
        calls,
        [
            (
                "run".to_string(),
                vec!["--gate".to_string(), "--out".to_string()]
            ),
            ("report".to_string(), vec!["-o".to_string()]),
            (
                "tap".to_string(),
                vec!["--send".to_string(), "--send".to_string()]
            ),
        ]
    );
}

#[test]
fn help_options_are_read_from_each_line() {
    let help = "Options:\n  -q, --quiet   No progress\n      --log-frames[=<FILE>]  Log\n      \
                --eio <3|4>\n  -H, --header <NAME: VALUE>\n  - websocket: Straight\nExit codes:\n  \
                0  success, see --not-an-option";
    let options: Vec<String> = help_options(help).into_iter().collect();
    assert_eq!(
        options,
        ["--eio", "--header", "--log-frames", "--quiet", "-H", "-q"]
    );
}

// ---- Markdown, read just enough ----

/// README.md and every page of docs/, as (path from the root, text).
fn doc_files() -> Vec<(String, String)> {
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
struct Fence {
    /// The info string's first word: `toml`, `sh`, or empty.
    lang: String,
    /// 1-based line of the opening fence.
    line: usize,
    /// The lines between the fences, their indentation up to the fence's removed.
    body: String,
    /// The HTML comment that ends on the line right before the opening fence, if any: its line and
    /// its text between `<!--` and `-->`.
    comment: Option<(usize, String)>,
}

/// The fenced blocks of a Markdown text, and the text with each block's lines and every HTML
/// comment blanked (line numbers kept), for reading the prose. An unclosed fence is an error.
fn split_markdown(text: &str) -> Result<(Vec<Fence>, String), String> {
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
fn blank(text: &str) -> String {
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
fn comment_before(lines: &[&str], fence: usize) -> Option<(usize, String)> {
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
struct Fragment {
    file: Option<String>,
    lines: String,
}

/// Reads `fragment: appended to FILE`, `fragment: appended to FILE and these lines:\nLINES` or
/// `fragment: appended to these lines:\nLINES`. `Ok(None)` for a comment that is not a fragment
/// marker at all.
fn parse_fragment(comment: &str) -> Result<Option<Fragment>, String> {
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
fn code_spans(prose: &str) -> Vec<(std::ops::Range<usize>, std::ops::Range<usize>)> {
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
fn inline_code(prose: &str) -> Vec<(usize, String)> {
    code_spans(prose)
        .into_iter()
        .map(|(whole, content)| {
            let line = prose[..whole.start].matches('\n').count() + 1;
            (line, prose[content].replace('\n', " ").trim().to_string())
        })
        .collect()
}

/// Prose with its inline code spans blanked (newlines kept), so links are not read out of code.
fn without_inline_code(prose: &str) -> String {
    let mut out = prose.to_string();
    for (whole, _) in code_spans(prose) {
        let blank = blank(&prose[whole.clone()]);
        out.replace_range(whole, &blank);
    }
    out
}

/// The targets of the inline links and images `[text](target)` of prose, with their lines.
fn links(prose: &str) -> Vec<(usize, String)> {
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
fn slug(heading: &str) -> String {
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
fn anchors(text: &str) -> Result<BTreeSet<String>, String> {
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
fn normalize(path: &Path) -> PathBuf {
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
fn logical_lines(body: &str) -> Vec<(usize, String)> {
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

#[test]
fn every_toml_block_in_the_docs_is_a_scenario_volley_validates() {
    let dir = tempfile::tempdir().unwrap();
    let mut problems = Vec::new();
    let mut checked = 0;
    let mut fragments = 0;
    for (name, text) in doc_files() {
        let fences = match split_markdown(&text) {
            Ok((fences, _)) => fences,
            Err(e) => {
                problems.push(format!("{name}: {e}"));
                continue;
            }
        };
        for fence in fences.iter().filter(|f| f.lang == "toml") {
            let place = format!("{name}:{}", fence.line);
            let marker = match &fence.comment {
                Some((line, comment)) => match parse_fragment(comment) {
                    Ok(marker) => marker,
                    Err(e) => {
                        problems.push(format!(
                            "{name}:{line}: the toml block at line {} cannot be checked: {e}",
                            fence.line
                        ));
                        continue;
                    }
                },
                None => None,
            };
            let mut scenario = String::new();
            if let Some(fragment) = &marker {
                if let Some(file) = &fragment.file {
                    match std::fs::read_to_string(root().join(file)) {
                        Ok(base) => {
                            scenario.push_str(&base);
                            if !scenario.ends_with('\n') {
                                scenario.push('\n');
                            }
                        }
                        Err(e) => {
                            problems.push(format!(
                                "{place}: the toml block cannot be checked: it is appended to \
                                 {file}, which cannot be read: {e}"
                            ));
                            continue;
                        }
                    }
                }
                scenario.push_str(&fragment.lines);
                fragments += 1;
            }
            // Lines of the checked file before the block's first line.
            let offset = scenario.lines().count();
            scenario.push_str(&fence.body);
            let file = dir.path().join(format!("block-{checked}.toml"));
            std::fs::write(&file, &scenario).unwrap();
            checked += 1;
            let out = volley().arg("validate").arg(&file).output().unwrap();
            if out.status.success() {
                continue;
            }
            let error = String::from_utf8_lossy(&out.stderr).trim().to_string();
            // volley names the checked file's line; name the doc's instead when it is the block's.
            let file_text = file.display().to_string();
            let located = error
                .split_once(&format!("{file_text}:"))
                .and_then(|(_, rest)| {
                    let (line, rest) = rest.split_once(':')?;
                    let line: usize = line.parse().ok()?;
                    Some((line, rest.to_string()))
                });
            let error = match located {
                Some((line, rest)) if line > offset => {
                    format!("{name}:{}:{rest}", fence.line + line - offset)
                }
                Some((line, rest)) => {
                    format!("line {line} of what the block is appended to:{rest}")
                }
                None => error,
            };
            let hint = if marker.is_none() {
                " (a block that is part of a scenario says what it is appended to: \
                 `<!-- fragment: appended to scenarios/quickstart.toml -->` right before its fence)"
            } else {
                ""
            };
            problems.push(format!(
                "{place}: the toml block does not validate{hint}: {error}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 5, "toml blocks checked: {checked}");
    assert!(fragments >= 3, "fragments checked: {fragments}");
}

#[test]
fn every_volley_command_in_the_docs_is_real() {
    let mut help = Help::default();
    let mut problems = Vec::new();
    let mut calls = 0;
    for (name, text) in doc_files() {
        let (fences, prose) = match split_markdown(&text) {
            Ok(split) => split,
            Err(e) => {
                problems.push(format!("{name}: {e}"));
                continue;
            }
        };
        let mut found: Vec<(usize, String, Vec<String>)> = Vec::new();
        for fence in &fences {
            // Every line of a shell block; only the `$ ` lines of a console or text block.
            let prompt_only = match fence.lang.as_str() {
                "sh" | "bash" | "shell" => false,
                "console" | "text" | "" => true,
                _ => continue,
            };
            for (k, line) in logical_lines(&fence.body) {
                let line = if prompt_only {
                    match line.strip_prefix("$ ") {
                        Some(command_line) => command_line,
                        None => continue,
                    }
                } else {
                    &line
                };
                for (command, options) in invocations(line) {
                    found.push((fence.line + k, command, options));
                }
            }
        }
        for (line, span) in inline_code(&prose) {
            if span.starts_with("volley ") {
                // Synopses mark optional parts with brackets: `volley report RUN_DIR [-o FILE]`.
                let plain = span.replace(['[', ']'], " ");
                for (command, options) in invocations(&plain) {
                    found.push((line, command, options));
                }
            }
        }
        for (line, command, options) in found {
            calls += 1;
            help.check(&format!("{name}:{line}"), &command, &options, &mut problems);
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(calls >= 30, "volley calls checked: {calls}");
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let mut problems = Vec::new();
    let mut checked = 0;
    let mut anchor_cache: BTreeMap<PathBuf, Result<BTreeSet<String>, String>> = BTreeMap::new();
    for (name, text) in doc_files() {
        let prose = match split_markdown(&text) {
            Ok((_, prose)) => prose,
            Err(e) => {
                problems.push(format!("{name}: {e}"));
                continue;
            }
        };
        let here = Path::new(&name).parent().unwrap_or(Path::new(""));
        for (line, target) in links(&prose) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let place = format!("{name}:{line}: `{target}`");
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let file = if path.is_empty() {
                PathBuf::from(&name)
            } else {
                normalize(&here.join(path))
            };
            if file.starts_with("..") {
                problems.push(format!("{place} leads out of the repository"));
                continue;
            }
            if !root().join(&file).exists() {
                problems.push(format!("{place}: no file {}", file.display()));
                continue;
            }
            if anchor.is_empty() {
                continue;
            }
            if file.extension().is_none_or(|e| e != "md") {
                problems.push(format!(
                    "{place}: an anchor into a file that is not Markdown"
                ));
                continue;
            }
            let known = anchor_cache.entry(file.clone()).or_insert_with(|| {
                std::fs::read_to_string(root().join(&file))
                    .map_err(|e| e.to_string())
                    .and_then(|text| anchors(&text))
            });
            match known {
                Ok(known) if known.contains(anchor) => {}
                Ok(_) => problems.push(format!(
                    "{place}: {} has no heading with the anchor #{anchor}",
                    file.display()
                )),
                Err(e) => problems.push(format!("{place}: {}: {e}", file.display())),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 50, "relative links checked: {checked}");
}

#[test]
fn the_readme_links_every_docs_page() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let (_, prose) = split_markdown(&readme).unwrap();
    let linked: BTreeSet<String> = links(&prose)
        .into_iter()
        .map(|(_, target)| target.split('#').next().unwrap().to_string())
        .collect();
    let missing: Vec<String> = doc_files()
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| name != "README.md" && !linked.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md does not link {}",
        missing.join(", ")
    );
}

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
        parse_fragment("fragment: appended to a.toml and these lines:\n[[group]]\nname = \"g\""),
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
