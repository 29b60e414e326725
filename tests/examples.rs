//! The CI examples in examples/ci call volley as it is: every `volley <command>` they run exists,
//! and every option they pass is one that command's --help lists.

use std::collections::BTreeMap;

use assert_cmd::Command;

/// `(command, options)` of each volley invocation in a file, with `\` continuations joined.
fn invocations(text: &str) -> Vec<(String, Vec<String>)> {
    let joined = text.replace("\\\n", " ");
    let mut found = Vec::new();
    for line in joined.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        let line = line.split(" #").next().unwrap_or(line);
        let mut words = line.split_whitespace().peekable();
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
                }
                words.next();
            }
            found.push((command.to_string(), options));
        }
    }
    found
}

#[test]
fn the_ci_examples_use_only_real_commands_and_options() {
    let mut help: BTreeMap<String, String> = BTreeMap::new();
    let mut checked = 0;
    for name in ["github-actions.yml", "gitlab-ci.yml"] {
        let path = format!("{}/examples/ci/{name}", env!("CARGO_MANIFEST_DIR"));
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
            let text = help.entry(command.clone()).or_insert_with(|| {
                let out = Command::cargo_bin("volley")
                    .unwrap()
                    .args([command.as_str(), "--help"])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{name}: `volley {command}` is not a command"
                );
                String::from_utf8(out.stdout).unwrap()
            });
            for option in options {
                assert!(
                    text.contains(&format!("{option} ")) || text.contains(&format!("{option}\n")),
                    "{name}: `volley {command}` has no option {option}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "options checked: {checked}");
}

#[test]
fn invocations_are_found_across_continuations() {
    let calls = invocations(
        "  volley run a.toml --gate \\\n   --out x || s=$?\n- do volley report \"$d\"\nname: volley gate",
    );
    assert_eq!(
        calls,
        [
            (
                "run".to_string(),
                vec!["--gate".to_string(), "--out".to_string()]
            ),
            ("report".to_string(), vec![]),
        ]
    );
}
