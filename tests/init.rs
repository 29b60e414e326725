//! `volley init`: the templates listed, each written, validated and run against the builtin
//! server; an existing file never overwritten; an unknown template refused with the known ones.

use predicates::prelude::*;

const TEMPLATES: [&str; 5] = [
    "ws-echo",
    "socketio-ack",
    "chat-fanout",
    "ticker-gaps",
    "ci-gate",
];

fn volley() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("volley").unwrap()
}

#[test]
fn init_without_a_template_lists_every_template() {
    let out = volley().arg("init").assert().success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let listed: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("  "))
        .map(|line| line.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(listed, TEMPLATES, "{text}");
    assert!(text.contains("volley init TEMPLATE [FILE]"), "{text}");
}

#[test]
fn every_template_validates_and_runs_against_the_builtin_server() {
    let dir = tempfile::tempdir().unwrap();
    for name in TEMPLATES {
        let file = format!("{name}.toml");
        volley()
            .current_dir(dir.path())
            .args(["init", name])
            .assert()
            .success()
            .stdout(predicate::str::contains(format!(
                "wrote {file} from template {name}"
            )));
        let text = std::fs::read_to_string(dir.path().join(&file)).unwrap();
        assert!(text.contains("target = \"builtin\""), "{name}");
        volley()
            .current_dir(dir.path())
            .args(["validate", &file])
            .assert()
            .success()
            .stdout(predicate::str::contains(format!("\"{name}\"")));
        // Short and small, every group still with clients; the gate's thresholds still hold.
        let out = dir.path().join(format!("out-{name}"));
        let mut run = volley();
        run.current_dir(dir.path())
            .args(["run", &file, "--duration", "1s", "--ramp", "200ms"])
            .args(["--clients", "20", "--quiet", "--out"])
            .arg(&out);
        if name == "ci-gate" {
            run.arg("--gate");
        }
        run.assert()
            .success()
            .stdout(predicate::str::contains(format!(
                "volley run \"{name}\" completed"
            )));
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
        assert_eq!(summary["status"], "completed", "{name}");
        if name == "ci-gate" {
            assert!(out.join("junit.xml").exists());
        }
    }
}

#[test]
fn init_refuses_to_overwrite_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ws-echo.toml");
    std::fs::write(&path, "# mine\n").unwrap();
    for args in [
        &["init", "ws-echo"][..],
        &["init", "ci-gate", "ws-echo.toml"],
    ] {
        volley()
            .current_dir(dir.path())
            .args(args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(
                "ws-echo.toml exists already, and volley init never overwrites a file",
            ));
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mine\n");
}

#[test]
fn an_unknown_template_is_a_usage_error_that_lists_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let out = volley()
        .current_dir(dir.path())
        .args(["init", "websocket"])
        .assert()
        .code(2);
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("invalid value 'websocket'"), "{stderr}");
    for name in TEMPLATES {
        assert!(stderr.contains(name), "{name} missing from: {stderr}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn init_to_dash_prints_the_template_and_writes_no_file() {
    let dir = tempfile::tempdir().unwrap();
    volley()
        .current_dir(dir.path())
        .args(["init", "ticker-gaps", "-"])
        .assert()
        .success()
        .stdout(
            predicate::str::starts_with("# A server stream with gaps")
                .and(predicate::str::contains("name = \"ticker-gaps\"")),
        );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn the_commands_in_a_written_template_name_the_file_written() {
    let dir = tempfile::tempdir().unwrap();
    volley()
        .current_dir(dir.path())
        .args(["init", "chat-fanout", "load/room.toml"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot write load/room.toml"));
    std::fs::create_dir(dir.path().join("load")).unwrap();
    volley()
        .current_dir(dir.path())
        .args(["init", "chat-fanout", "load/room.toml"])
        .assert()
        .success();
    let text = std::fs::read_to_string(dir.path().join("load/room.toml")).unwrap();
    assert!(text.contains("#   volley run load/room.toml  "), "{text}");
    assert!(!text.contains("chat-fanout.toml"), "{text}");
}
