//! Enforces the layer table in ARCHITECTURE.md: a module may refer only to modules on lines
//! below its own, so the crate stays a stack of layers rather than a web.
//!
//! The table is the one fenced code block with the info string `layers`, listed top to bottom,
//! each line naming the top-level modules of one layer (`#` starts a comment). This test:
//!
//! 1. finds every path from one top-level module to another (`crate::x`, grouped
//!    `use crate::{a, b::{c}}`, `super::` chains that climb to the crate root) and allows it only
//!    if the target's layer is strictly below the source's;
//! 2. requires every module under src/ to be in the table exactly once, and every table name to
//!    exist, so a new module is placed in a layer before it lands;
//! 3. keeps clap in `cli` and `commands`, so the rest of the crate takes plain settings.
//!
//! It uses only std (no syn, no regex) so it builds in a second. Rather than parse Rust, it
//! blanks out comments and literals (keeping newlines, so line numbers survive) and scans the
//! remaining tokens: module paths are plain `ident::ident` sequences, which is all it needs.
//! Develop it with `rustc --edition 2024 --test tests/architecture/mod.rs -o /tmp/arch && /tmp/arch`;
//! `VOLLEY_ROOT` and `ARCHITECTURE_MD` override where the crate and the table are read from.

mod scan;
#[cfg(test)]
mod self_test;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::{env, fs};

use scan::{Token, blank_comments_and_literals, is_ident, text, tokenize};

/// The only modules that may use clap: argument parsing stays at the edge of the program.
const CLAP_MODULES: &[&str] = &["cli", "commands"];
/// Attributes that only clap's derives read; seeing one means clap is in use.
const CLAP_ATTRIBUTES: &[&str] = &["arg", "command", "clap", "value"];

#[test]
fn src_follows_the_layer_table_in_architecture_md() {
    let manifest_dir = option_env!("CARGO_MANIFEST_DIR").unwrap_or("/work/main");
    let root = env::var_os("VOLLEY_ROOT").map_or(PathBuf::from(manifest_dir), PathBuf::from);
    let table = env::var_os("ARCHITECTURE_MD").map_or(root.join("ARCHITECTURE.md"), PathBuf::from);
    let markdown = fs::read_to_string(&table)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", table.display()));
    let mut files = Vec::new();
    read_sources(&root, Path::new("src"), &mut files);
    let problems = check(&markdown, &files);
    let count = problems.len();
    assert!(
        count == 0,
        "{count} architecture problem(s):\n{}\n",
        problems.join("\n")
    );
}

/// Reads every `.rs` file under `root/dir` as (`src/...` path, text), sorted so that the report
/// reads the same from run to run.
fn read_sources(root: &Path, dir: &Path, files: &mut Vec<(String, String)>) {
    let full = root.join(dir);
    let listing = fs::read_dir(&full).unwrap_or_else(|e| panic!("cannot list {dir:?}: {e}"));
    let mut paths: Vec<PathBuf> = listing.map(|entry| entry.unwrap().path()).collect();
    paths.sort();
    for path in paths {
        let relative = dir.join(path.file_name().unwrap());
        if path.is_dir() {
            read_sources(root, &relative, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let text = fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            files.push((relative.to_string_lossy().replace('\\', "/"), text));
        }
    }
}

/// Checks a crate given as (`src/...` path, text) pairs against the table in `markdown`, and
/// returns every problem found. Pure, so that the self-tests can run it on made-up trees.
fn check(markdown: &str, files: &[(String, String)]) -> Vec<String> {
    let table = match Table::parse(markdown) {
        Ok(table) => table,
        Err(problem) => return vec![problem],
    };
    let mut problems = check_coverage(&table, files);
    for (path, text) in files {
        if let Some(module) = module_path(path) {
            let tokens = tokenize(&blank_comments_and_literals(text));
            problems.extend(check_edges(&table, path, &module, &tokens));
            problems.extend(check_clap(path, &module[0], &tokens));
        }
    }
    problems
}

/// The module path of a source file (`src/a/b.rs` is a::b, `src/a/mod.rs` is a), or None for
/// main.rs and lib.rs, which are crate roots rather than modules of the table.
fn module_path(path: &str) -> Option<Vec<String>> {
    let inside = path.strip_prefix("src/")?.strip_suffix(".rs")?;
    let mut parts: Vec<String> = inside.split('/').map(String::from).collect();
    if parts.len() > 1 && parts.last().is_some_and(|last| last == "mod") {
        parts.pop();
    }
    (inside != "main" && inside != "lib").then_some(parts)
}

// ---------------------------------------------------------------------------------------------
// The layer table

/// The layer table as (module, layer, line in ARCHITECTURE.md), in table order; layer 0 is
/// the top line.
struct Table(Vec<(String, usize, usize)>);

/// A fenced block: the line of its opening fence and its (line, text) body.
type Block<'a> = (usize, Vec<(usize, &'a str)>);

impl Table {
    fn parse(markdown: &str) -> Result<Table, String> {
        let blocks = layers_blocks(markdown);
        let [(start, body)] = &blocks[..] else {
            let starts: Vec<usize> = blocks.iter().map(|(line, _)| *line).collect();
            return Err(format!(
                "ARCHITECTURE.md: expected exactly one ```layers code block, found {} {starts:?}",
                blocks.len()
            ));
        };
        let without_comments = body
            .iter()
            .map(|(n, text)| (*n, text.split('#').next().unwrap()));
        let layers = without_comments.filter(|(_, names)| !names.trim().is_empty());
        let entries: Vec<_> = (layers.enumerate())
            .flat_map(|(layer, (line, names))| {
                names
                    .split_whitespace()
                    .map(move |name| (name.to_string(), layer, line))
            })
            .collect();
        if entries.is_empty() {
            return Err(format!(
                "ARCHITECTURE.md:{start}: the ```layers block names no modules"
            ));
        }
        Ok(Table(entries))
    }

    fn layer_of(&self, module: &str) -> Option<usize> {
        let entry = self.0.iter().find(|(name, _, _)| name == module);
        entry.map(|&(_, layer, _)| layer)
    }

    /// What a module on `layer` may import, for the error messages.
    fn below(&self, layer: usize) -> String {
        let below = self.0.iter().filter(|&&(_, other, _)| other > layer);
        let names: Vec<&str> = below.map(|(name, _, _)| name.as_str()).collect();
        if names.is_empty() {
            return "nothing".to_string();
        }
        names.join(" ")
    }
}

/// Every fenced block whose info string is `layers`. All fences are tracked, so that a
/// ```layers example quoted inside a longer ````markdown fence is not taken for the table.
fn layers_blocks(markdown: &str) -> Vec<Block<'_>> {
    let mut blocks: Vec<Block> = Vec::new();
    let (mut open_fence, mut collecting) = (None, false);
    for (index, line) in markdown.lines().enumerate() {
        let trimmed = line.trim();
        let marks = &trimmed[..trimmed.len() - trimmed.trim_start_matches(['`', '~']).len()];
        match open_fence {
            None if marks.len() >= 3 => {
                open_fence = Some(marks);
                collecting = trimmed[marks.len()..].trim() == "layers";
                if collecting {
                    blocks.push((index + 1, Vec::new()));
                }
            }
            Some(open) if trimmed == marks && marks.starts_with(open) => open_fence = None,
            Some(_) if collecting => blocks.last_mut().unwrap().1.push((index + 1, line)),
            _ => {}
        }
    }
    blocks
}

/// Check 2: every module under src/ is in the table exactly once, and every name in the table
/// is a module under src/.
fn check_coverage(table: &Table, files: &[(String, String)]) -> Vec<String> {
    let mut on_disk = BTreeMap::new();
    for (path, _) in files {
        if let Some(module) = module_path(path) {
            let nested = path["src/".len()..].contains('/');
            let place = if nested {
                format!("src/{}/", module[0])
            } else {
                path.clone()
            };
            on_disk.entry(module[0].clone()).or_insert(place);
        }
    }
    let mut problems = Vec::new();
    for (module, place) in &on_disk {
        if table.layer_of(module).is_none() {
            problems.push(format!(
                "{place}: module {module} is not in ARCHITECTURE.md's layer table; \
                 add it to the layer it belongs to"
            ));
        }
    }
    let mut seen = BTreeSet::new();
    for (name, _, line) in &table.0 {
        if !on_disk.contains_key(name) {
            problems.push(format!(
                "ARCHITECTURE.md:{line}: the layer table names {name}, \
                 but there is no src/{name}.rs or src/{name}/"
            ));
        }
        if !seen.insert(name) {
            problems.push(format!(
                "ARCHITECTURE.md:{line}: {name} is in the layer table more than once; \
                 a module belongs to exactly one layer"
            ));
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------------
// Checks over one file's tokens

/// Check 1: each reference from this file's top-level module to another goes down the table.
fn check_edges(table: &Table, path: &str, module: &[String], tokens: &[Token]) -> Vec<String> {
    let from = &module[0];
    let Some(from_layer) = table.layer_of(from) else {
        return Vec::new(); // check_coverage already says that the module is missing
    };
    let allowed = table.below(from_layer);
    let mut seen = BTreeSet::new();
    let mut problems = Vec::new();
    for found in references(module, tokens) {
        let (line, to, text) = (found.line, &found.target, &found.text);
        if to == from || !seen.insert((line, to.clone())) {
            continue;
        }
        match table.layer_of(to) {
            Some(to_layer) if to_layer > from_layer => {}
            Some(_) => problems.push(format!(
                "{path}:{line}: {from} imports {to} ({text}), but {to} is not below {from} \
                 in ARCHITECTURE.md's layer table ({from} may import: {allowed})"
            )),
            None => problems.push(format!(
                "{path}:{line}: {from} refers to crate::{to} ({text}), but {to} is not a module \
                 of the layer table ({from} may import: {allowed})"
            )),
        }
    }
    problems
}

/// Check 3: clap paths, `use clap` and clap-only attributes outside `cli` and `commands`.
fn check_clap(path: &str, module: &str, tokens: &[Token]) -> Vec<String> {
    if CLAP_MODULES.contains(&module) {
        return Vec::new();
    }
    let mut lines = BTreeSet::new();
    let uses = (0..tokens.len()).filter_map(|i| Some((tokens[i].line, clap_use(tokens, i)?)));
    let uses = uses.filter(|(line, _)| lines.insert(*line));
    let only = CLAP_MODULES.join(" and ");
    let message = |(line, found)| {
        format!("{path}:{line}: {module} uses clap ({found}), but only {only} may use clap")
    };
    uses.map(message).collect()
}

/// The clap use starting at token `i`, if any: a clap-only attribute such as `#[arg(`, a
/// `clap::...` path, or `use clap` / `extern crate clap`.
fn clap_use(tokens: &[Token], i: usize) -> Option<String> {
    if text(tokens, i) == "#" {
        let open = i + 1 + usize::from(text(tokens, i + 1) == "!"); // `#![` or `#[`
        let name = text(tokens, open + 1);
        let is_attribute = text(tokens, open) == "[" && text(tokens, open + 2) == "(";
        return (is_attribute && CLAP_ATTRIBUTES.contains(&name)).then(|| format!("#[{name}(..)]"));
    }
    let before = text(tokens, i.wrapping_sub(1));
    let is_path = text(tokens, i + 1) == "::" || before == "use" || before == "crate";
    (text(tokens, i) == "clap" && before != "::" && is_path).then(|| render_path(tokens, i))
}

// ---------------------------------------------------------------------------------------------
// Finding module references

/// One reference to a top-level module: where, which module, and the path as written.
struct Reference {
    line: usize,
    target: String,
    text: String,
}

/// Every reference from a file (module path `file_module`) to a top-level module, found at each
/// `crate::`, `self::` or `super::` path start. Inline `mod name {` blocks are tracked because
/// they change where `super` leads.
fn references(file_module: &[String], tokens: &[Token]) -> Vec<Reference> {
    let mut found = Vec::new();
    let mut here = file_module.to_vec();
    let mut depth = 0;
    let mut inline_modules: Vec<usize> = Vec::new(); // the depth each inline module opened at
    for i in 0..tokens.len() {
        let starts_path = text(tokens, i + 1) == "::" && text(tokens, i.wrapping_sub(1)) != "::";
        match text(tokens, i) {
            "{" => depth += 1,
            "}" => {
                depth -= 1;
                if inline_modules.last() == Some(&depth) {
                    inline_modules.pop();
                    here.pop();
                }
            }
            "mod" if is_ident(text(tokens, i + 1)) && text(tokens, i + 2) == "{" => {
                inline_modules.push(depth);
                here.push(text(tokens, i + 1).to_string());
            }
            "crate" | "self" | "super" if starts_path => {
                found.extend(path_references(tokens, i, here.clone()));
            }
            _ => {}
        }
    }
    found
}

/// Resolves the path starting at `start` from module `here`. Only a path that reaches the crate
/// root can name another top-level module; one that stays inside `here`'s top-level module
/// (like `super::record` in a submodule) yields nothing.
fn path_references(tokens: &[Token], start: usize, mut here: Vec<String>) -> Vec<Reference> {
    let mut i = start;
    while let keyword @ ("crate" | "self" | "super") = text(tokens, i) {
        match keyword {
            "crate" => here.clear(),
            "super" if here.pop().is_none() => return Vec::new(), // past the root: not Rust
            _ => {}
        }
        if text(tokens, i + 1) != "::" {
            return Vec::new();
        }
        i += 2;
    }
    if !here.is_empty() {
        return Vec::new();
    }
    let prefix: String = tokens[start..i - 1]
        .iter()
        .map(|t| t.text.as_str())
        .collect();
    if text(tokens, i) != "{" {
        return element_reference(tokens, i, &prefix).into_iter().collect();
    }
    // A group `{a::b, c::{d, e}, f}` names a, c and f, each on its own line.
    let mut found = Vec::new();
    let mut depth = 0;
    for k in i..tokens.len() {
        match text(tokens, k) {
            "{" => depth += 1,
            "}" if depth == 1 => break,
            "}" => depth -= 1,
            _ if depth == 1 && matches!(text(tokens, k - 1), "{" | ",") => {
                found.extend(element_reference(tokens, k, &prefix));
            }
            _ => {}
        }
    }
    found
}

/// The top-level module named at token `i`, right after a path prefix that reached the root.
fn element_reference(tokens: &[Token], i: usize, prefix: &str) -> Option<Reference> {
    let name = text(tokens, i);
    let is_module_name = (is_ident(name) && name != "self") || name == "*";
    is_module_name.then(|| Reference {
        line: tokens[i].line,
        target: name.to_string(),
        text: format!("{prefix}::{}", render_path(tokens, i)),
    })
}

/// The path written from token `i` on, for messages: `a::b::c`, with a group shown as `{..}`.
fn render_path(tokens: &[Token], i: usize) -> String {
    let mut path = text(tokens, i).to_string();
    let mut next = i + 1;
    while text(tokens, next) == "::" {
        match text(tokens, next + 1) {
            "{" => return path + "::{..}",
            "*" => return path + "::*",
            segment if is_ident(segment) => path = format!("{path}::{segment}"),
            _ => break,
        }
        next += 2;
    }
    path
}
