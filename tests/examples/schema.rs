//! schema/scenario.schema.json is what `volley schema` prints, and every scenario of scenarios/
//! and every ```toml block of the docs meets it as Python's jsonschema package reads it: a
//! validator that shares no code with volley (tests/schema/validate.py, with the packages pinned
//! in tests/schema/requirements.txt, which scripts/test.sh installs into tests/schema/.venv).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::docs::{doc_scenarios, folder_with_data};
use super::{root, volley};

const COMMITTED: &str = "schema/scenario.schema.json";

#[test]
fn the_committed_scenario_schema_is_what_volley_schema_prints() {
    let out = volley().arg("schema").output().unwrap();
    assert!(
        out.status.success(),
        "volley schema failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let committed = std::fs::read_to_string(root().join(COMMITTED)).unwrap_or_default();
    if printed != committed {
        let line = printed
            .lines()
            .zip(committed.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(printed.lines().count().min(committed.lines().count()))
            + 1;
        panic!(
            "{COMMITTED} is not what `volley schema` prints (they differ from line {line}): the \
             scenario model changed. Write it again and commit it:\n  \
             cargo run -- schema > {COMMITTED}"
        );
    }
}

/// tests/schema/.venv's Python, which scripts/test.sh makes; else the machine's python3.
fn python() -> PathBuf {
    let venv = root().join("tests/schema/.venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// Each file's complaints, from tests/schema/validate.py.
fn python_validate(files: &[PathBuf]) -> BTreeMap<PathBuf, Vec<String>> {
    let python = python();
    let out = Command::new(&python)
        .arg(root().join("tests/schema/validate.py"))
        .arg(root().join(COMMITTED))
        .args(files)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; Python 3.11+ with the packages of \
                 tests/schema/requirements.txt is needed (scripts/test.sh installs them into \
                 tests/schema/.venv)",
                python.display()
            )
        });
    assert!(
        out.status.success(),
        "tests/schema/validate.py could not check the files: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut found = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let errors = record["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap().to_string())
            .collect();
        found.insert(PathBuf::from(record["file"].as_str().unwrap()), errors);
    }
    assert_eq!(found.len(), files.len(), "one result per file");
    found
}

/// `scenarios/quickstart.toml` with `from` replaced by `to`.
fn quickstart_with(dir: &Path, name: &str, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(root().join("scenarios/quickstart.toml")).unwrap();
    assert!(text.contains(from), "quickstart.toml has no `{from}`");
    let path = dir.join(name);
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    path
}

#[test]
fn every_scenario_and_docs_block_meets_the_schema_in_pythons_jsonschema() {
    let dir = folder_with_data();
    // (file, where it comes from)
    let mut valid: Vec<(PathBuf, String)> = Vec::new();
    let mut scenarios: Vec<PathBuf> = std::fs::read_dir(root().join("scenarios"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    scenarios.sort();
    let scenario_count = scenarios.len();
    for path in scenarios {
        let place = path.strip_prefix(root()).unwrap().display().to_string();
        valid.push((path, place));
    }
    let mut problems = Vec::new();
    for (k, block) in doc_scenarios().into_iter().enumerate() {
        match block {
            Ok(block) => {
                let path = dir.path().join(format!("block-{k}.toml"));
                std::fs::write(&path, &block.text).unwrap();
                valid.push((path, format!("the toml block at {}", block.place())));
            }
            Err(problem) => problems.push(problem),
        }
    }
    let blocks = valid.len() - scenario_count;
    // The schema can fail: an unknown key and a wrong type are refused, by name.
    let unknown = quickstart_with(dir.path(), "unknown-key.toml", "ramp =", "rmap =");
    let wrong_type = quickstart_with(
        dir.path(),
        "wrong-type.toml",
        "clients = 200",
        "clients = true",
    );

    let mut files: Vec<PathBuf> = valid.iter().map(|(path, _)| path.clone()).collect();
    files.extend([unknown.clone(), wrong_type.clone()]);
    let found = python_validate(&files);

    for (path, place) in &valid {
        let errors = &found[path];
        if !errors.is_empty() {
            problems.push(format!(
                "{place} does not meet {COMMITTED}:\n    {}",
                errors.join("\n    ")
            ));
        }
    }
    for (path, expected) in [
        (
            &unknown,
            "(top): Additional properties are not allowed ('rmap' was unexpected)",
        ),
        (
            &wrong_type,
            "group/0/clients: True is not valid under any of the given schemas",
        ),
    ] {
        let errors = &found[path];
        if errors != &[expected.to_string()] {
            problems.push(format!(
                "{} should be refused with `{expected}` alone, got {errors:?}",
                path.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(scenario_count >= 9, "scenarios checked: {scenario_count}");
    assert!(blocks >= 5, "docs blocks checked: {blocks}");
}
