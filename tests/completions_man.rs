//! `volley completions` and `volley man`: the bash script loaded in a real bash completes
//! commands, options and templates; every shell gets its script; the man pages are roff documents
//! that name every command.

use clap::CommandFactory;
use predicates::prelude::*;

fn volley() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("volley").unwrap()
}

fn stdout(args: &[&str]) -> String {
    let out = volley().args(args).assert().success();
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

/// volley's commands as `--help` lists them, without clap's own `help`.
fn commands() -> Vec<String> {
    volley::cli::Cli::command()
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| c.get_name().to_string())
        .collect()
}

/// What the bash completion offers for `words` (the last one being completed), as bash would ask
/// for it: the function `complete -p volley` names, called with the command, the word and the
/// one before it.
fn bash_completes(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        r#"set -e
source "$1"
function=$(complete -p volley | sed -n 's/.* -F \([^ ]*\) .*/\1/p')
COMP_WORDS=({words})
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
COMP_LINE="${{COMP_WORDS[*]}}"
COMP_POINT=${{#COMP_LINE}}
"$function" volley "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}"
"#,
        words = quoted.join(" ")
    );
    let out = std::process::Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program, "bash"])
        .arg(script)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "bash failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn the_bash_completion_completes_commands_options_and_templates() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("volley.bash");
    std::fs::write(&script, stdout(&["completions", "bash"])).unwrap();

    assert_eq!(bash_completes(&script, &["volley", "ru"]), ["run"]);
    assert_eq!(
        bash_completes(&script, &["volley", "run", "--dur"]),
        ["--duration"]
    );
    assert_eq!(
        bash_completes(&script, &["volley", "init", "ci"]),
        ["ci-gate"]
    );
    let all = bash_completes(&script, &["volley", ""]);
    for command in commands() {
        assert!(all.contains(&command), "{command} not offered: {all:?}");
    }
}

#[test]
fn every_shell_gets_a_script_that_knows_the_commands() {
    for (shell, opening) in [
        ("bash", "_volley() {"),
        ("zsh", "#compdef volley"),
        ("fish", "complete -c volley"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "set edit:completion:arg-completer[volley]"),
    ] {
        let script = stdout(&["completions", shell]);
        assert!(script.contains(opening), "{shell}: {opening} missing");
        for command in ["init", "completions", "man", "run"] {
            assert!(script.contains(command), "{shell}: {command} missing");
        }
    }
    volley()
        .args(["completions", "tcsh"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("possible values: bash"));
}

#[test]
fn volley_man_prints_a_roff_page_that_names_every_command() {
    let page = stdout(&["man"]);
    assert!(page.contains("\n.TH volley 1 "), "{page}");
    assert!(
        page.contains("\n.SH NAME\nvolley \\- load tester and traffic inspector"),
        "{page}"
    );
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS", ".SH SUBCOMMANDS"] {
        assert!(
            page.contains(&format!("\n{section}\n")),
            "{section} missing"
        );
    }
    for command in commands() {
        // roff escapes the hyphen.
        assert!(
            page.contains(&format!("\nvolley\\-{command}(1)\n")),
            "volley-{command}(1) missing"
        );
    }
    assert!(!page.contains("volley\\-help(1)"));
}

#[test]
fn volley_man_dir_writes_one_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let man1 = dir.path().join("man/man1");
    let listed = stdout(&["man", "--dir", man1.to_str().unwrap()]);
    let mut expected = vec!["volley".to_string()];
    expected.extend(commands().iter().map(|c| format!("volley-{c}")));
    assert_eq!(listed.lines().count(), expected.len(), "{listed}");
    for name in expected {
        let path = man1.join(format!("{name}.1"));
        assert!(listed.contains(&path.display().to_string()), "{listed}");
        let page = std::fs::read_to_string(&path).unwrap();
        assert!(
            page.contains(&format!("\n.TH {name} 1 ")),
            "{name}: {}",
            page.lines().take(4).collect::<Vec<_>>().join("\n")
        );
    }
    let run = std::fs::read_to_string(man1.join("volley-run.1")).unwrap();
    assert!(
        run.contains("\\-\\-duration"),
        "the run page lists its options"
    );
}
