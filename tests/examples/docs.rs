//! The checks of README.md and docs/: their scenarios validate, their commands are real, their
//! links resolve.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::markdown::*;
use super::{Help, invocations, root, volley};

/// A ```toml block of the docs as a whole scenario: what its fragment marker says it is appended
/// to, then the block.
pub(super) struct DocScenario {
    /// The Markdown file, from the repository's root.
    pub(super) doc: String,
    /// The line of the block's opening fence.
    pub(super) line: usize,
    pub(super) text: String,
    /// Lines of `text` before the block's first line.
    pub(super) offset: usize,
    /// Whether the block said what it is appended to.
    pub(super) fragment: bool,
}

impl DocScenario {
    /// `docs/x.md:LINE`: where the block starts.
    pub(super) fn place(&self) -> String {
        format!("{}:{}", self.doc, self.line)
    }
}

/// Every ```toml block of README.md and docs/ as a scenario, or why it cannot be checked.
pub(super) fn doc_scenarios() -> Vec<Result<DocScenario, String>> {
    let mut scenarios = Vec::new();
    for (name, text) in doc_files() {
        let fences = match split_markdown(&text) {
            Ok((fences, _)) => fences,
            Err(e) => {
                scenarios.push(Err(format!("{name}: {e}")));
                continue;
            }
        };
        for fence in fences.iter().filter(|f| f.lang == "toml") {
            let place = format!("{name}:{}", fence.line);
            let marker = match &fence.comment {
                Some((line, comment)) => match parse_fragment(comment) {
                    Ok(marker) => marker,
                    Err(e) => {
                        scenarios.push(Err(format!(
                            "{name}:{line}: the toml block at line {} cannot be checked: {e}",
                            fence.line
                        )));
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
                            scenarios.push(Err(format!(
                                "{place}: the toml block cannot be checked: it is appended to \
                                 {file}, which cannot be read: {e}"
                            )));
                            continue;
                        }
                    }
                }
                scenario.push_str(&fragment.lines);
            }
            let offset = scenario.lines().count();
            scenario.push_str(&fence.body);
            scenarios.push(Ok(DocScenario {
                doc: name.clone(),
                line: fence.line,
                text: scenario,
                offset,
                fragment: marker.is_some(),
            }));
        }
    }
    scenarios
}

/// A folder with the data files of scenarios/, so that scenarios written into it find them as
/// the scenarios beside scenarios/data do, and the recorded examples' data files beside them.
pub(super) fn folder_with_data() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    for (from, to) in [
        ("scenarios/data", data.as_path()),
        ("scenarios/recorded", dir.path()),
    ] {
        for entry in std::fs::read_dir(root().join(from)).unwrap() {
            let entry = entry.unwrap();
            if from == "scenarios/data" || entry.path().extension().is_some_and(|e| e == "csv") {
                std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
            }
        }
    }
    dir
}

#[test]
fn every_toml_block_in_the_docs_is_a_scenario_volley_validates() {
    let dir = folder_with_data();
    let mut problems = Vec::new();
    let mut checked = 0;
    let mut fragments = 0;
    for block in doc_scenarios() {
        let block = match block {
            Ok(block) => block,
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
        let file = dir.path().join(format!("block-{checked}.toml"));
        std::fs::write(&file, &block.text).unwrap();
        checked += 1;
        fragments += block.fragment as usize;
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
            Some((line, rest)) if line > block.offset => {
                format!("{}:{}:{rest}", block.doc, block.line + line - block.offset)
            }
            Some((line, rest)) => {
                format!("line {line} of what the block is appended to:{rest}")
            }
            None => error,
        };
        let hint = if !block.fragment {
            " (a block that is part of a scenario says what it is appended to: \
             `<!-- fragment: appended to scenarios/quickstart.toml -->` right before its fence)"
        } else {
            ""
        };
        problems.push(format!(
            "{}: the toml block does not validate{hint}: {error}",
            block.place()
        ));
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
