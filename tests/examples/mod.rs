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
//!   every page of docs/;
//! - schema/scenario.schema.json is what `volley schema` prints, and every scenario of scenarios/
//!   and every ```toml block (as above) meets it in Python's jsonschema package.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

mod docs;
mod markdown;
mod schema;

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
