//! DataSet read from CSV and JSON Lines files, every refusal with its text, and Pick.

use super::*;
use std::sync::Arc;

/// Writes `bytes` to a file called `file` in a fresh folder and loads it as the set `users`.
fn load(file: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf, Result<DataSet, DataError>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(file);
    std::fs::write(&path, bytes).unwrap();
    let loaded = DataSet::load("users", &path);
    (dir, path, loaded)
}

fn rows_of(set: &DataSet) -> Vec<Vec<&str>> {
    (0..set.rows())
        .map(|r| (0..set.columns().len()).map(|c| set.field(r, c)).collect())
        .collect()
}

/// Asserts that loading fails with exactly `expected` after the file's path.
fn assert_fails(file: &str, bytes: &[u8], expected: &str) {
    let (_dir, path, loaded) = load(file, bytes);
    let error = loaded.expect_err("the file should be refused");
    assert_eq!(error.to_string(), format!("{}{expected}", path.display()));
}

#[test]
fn csv_reads_quotes_commas_crlf_and_skips_the_bom() {
    let text = "\u{feff}name,password,team\r\n\"ann, the first\",\"say \"\"hi\"\"\",red\r\n\
                bob,\"two\r\nlines\",\r\n";
    let (_dir, _path, loaded) = load("users.csv", text.as_bytes());
    let set = loaded.unwrap();
    assert_eq!(set.name(), "users");
    assert_eq!(set.columns(), ["name", "password", "team"]);
    assert_eq!(
        rows_of(&set),
        [
            vec!["ann, the first", "say \"hi\"", "red"],
            vec!["bob", "two\r\nlines", ""]
        ]
    );
}

#[test]
fn csv_ignores_blank_trailing_lines() {
    let (_dir, _path, loaded) = load("users.csv", b"name\nann\nbob\n\n\r\n\n");
    assert_eq!(rows_of(&loaded.unwrap()), [["ann"], ["bob"]]);
}

#[test]
fn field_and_column_address_every_value() {
    let mut text = String::from("id,team\n");
    for i in 0..1000 {
        text.push_str(&format!("user{i},team{}\n", i % 7));
    }
    let (_dir, _path, loaded) = load("users.csv", text.as_bytes());
    let set = loaded.unwrap();
    assert_eq!(set.rows(), 1000);
    assert_eq!(set.column("team"), Some(1));
    assert_eq!(set.column("id"), Some(0));
    assert_eq!(set.column("password"), None);
    for row in [0, 1, 500, 999] {
        assert_eq!(set.field(row, 0), format!("user{row}"));
        assert_eq!(set.field(row, 1), format!("team{}", row % 7));
    }
}

#[test]
fn a_shared_set_is_read_from_many_threads() {
    let (_dir, _path, loaded) = load("users.csv", b"name\nann\nbob\ncid\n");
    let set = Arc::new(loaded.unwrap());
    let names: Vec<String> = (0..3)
        .map(|row| {
            let set = Arc::clone(&set);
            std::thread::spawn(move || set.field(row, 0).to_string())
        })
        .map(|worker| worker.join().unwrap())
        .collect();
    assert_eq!(names, ["ann", "bob", "cid"]);
}

#[test]
fn jsonl_keeps_numbers_and_booleans_as_written_and_unescapes_strings() {
    let text = r#"{"name": "ann", "price": 1.50, "big": 12345678901234567890123, "vip": true}
{"vip": false, "big": -1e3, "name": "b\"o\u00e9", "price": 0}
"#;
    let (_dir, _path, loaded) = load("users.jsonl", text.as_bytes());
    let set = loaded.unwrap();
    assert_eq!(set.columns(), ["name", "price", "big", "vip"]);
    assert_eq!(
        rows_of(&set),
        [
            ["ann", "1.50", "12345678901234567890123", "true"],
            ["b\"o\u{e9}", "0", "-1e3", "false"]
        ]
    );
}

#[test]
fn jsonl_skips_the_bom_crlf_and_blank_lines() {
    let text = "\u{feff}{\"name\":\"ann\"}\r\n\r\n{\"name\":\"bob\"}\r\n\n  \n";
    let (_dir, _path, loaded) = load("users.jsonl", text.as_bytes());
    assert_eq!(rows_of(&loaded.unwrap()), [["ann"], ["bob"]]);
}

#[test]
fn text_readers_read_without_a_file() {
    let path = Path::new("inline.csv");
    let set = DataSet::from_csv("t", path, &b"a,b\n1,2\n"[..]).unwrap();
    assert_eq!(rows_of(&set), [["1", "2"]]);
    let set = DataSet::from_jsonl("t", path, &b"{\"a\":1,\"b\":\"2\"}\n"[..]).unwrap();
    assert_eq!(rows_of(&set), [["1", "2"]]);
}

#[test]
fn a_missing_file_is_named_with_the_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.csv");
    let error = DataSet::load("users", &path).unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("cannot read data file {}: ", path.display())),
        "{message}"
    );
    assert!(message.contains("No such file"), "{message}");
    assert!(std::error::Error::source(&error).is_none());
}

#[test]
fn an_unknown_extension_says_which_formats_exist() {
    assert_fails(
        "users.txt",
        b"name\nann\n",
        ": unknown data format; name the file .csv (a header row, then one row per user) or \
         .jsonl (one JSON object per line)",
    );
}

#[test]
fn csv_errors_name_the_line() {
    let cases: [(&[u8], &str); 8] = [
        (
            b"",
            ": the file is empty; its first line must name the columns, e.g. `name,password`",
        ),
        (
            b"name,password\n",
            ":1: no rows under the column names; add one row per user",
        ),
        (
            b"name,password,team\n\"ann\nthe first\",x,red\nbob,y\n",
            ":4: record 3 has 2 fields, the header has 3; write an empty value as nothing \
             between two commas, e.g. `ann,,red`",
        ),
        (
            b"name,password\nann,x\nSmith, Bob,y\n",
            ":3: record 3 has 3 fields, the header has 2; quote a value that holds a comma, \
             e.g. `\"Smith, Ann\"`",
        ),
        (
            b"name,password,name\nann,x,y\n",
            ":1: column `name` appears twice; give every column its own name",
        ),
        (
            b"name,first name\nann,x\n",
            ":1: column 2 is named `first name`; use only letters, digits, `_` and `-` so \
             that templates can name it",
        ),
        (
            b"name,,team\nann,x,y\n",
            ":1: column 2 is named ``; use only letters, digits, `_` and `-` so that \
             templates can name it",
        ),
        (
            b"name,password\nann,x\nbob,p\xffw\n",
            ":3: column `password` is not valid UTF-8; save the file as UTF-8",
        ),
    ];
    for (bytes, expected) in cases {
        assert_fails("users.csv", bytes, expected);
    }
}

#[test]
fn jsonl_errors_name_the_line() {
    let cases: [(&str, &str); 11] = [
        (
            "",
            ": the file is empty; write one JSON object per line, e.g. \
             {\"name\": \"ann\", \"password\": \"x1\"}",
        ),
        ("{}\n", ":1: no columns; the first line must name them"),
        (
            "{\"name\":\"ann\"}\n[\"bob\"]\n",
            ":2: not a JSON object; write one object per line, e.g. \
             {\"name\": \"ann\", \"password\": \"x1\"}",
        ),
        (
            "{\"name\":\"ann\"}\n\n  {\"name\":\"bob\",}\n",
            ":3: not valid JSON at column 17: trailing comma; write one object per line",
        ),
        (
            "{\"name\":\"ann\",\"tags\":[\"a\"]}\n",
            ":1: `tags` is an array; values must be strings, numbers or booleans",
        ),
        (
            "{\"name\":\"ann\"}\n{\"name\":{\"first\":\"bob\"}}\n",
            ":2: `name` is an object; values must be strings, numbers or booleans",
        ),
        (
            "{\"name\":\"ann\"}\n{\"name\":null}\n",
            ":2: `name` is null; values must be strings, numbers or booleans",
        ),
        (
            "{\"name\":\"ann\",\"pw\":\"x\"}\n{\"name\":\"bob\"}\n",
            ":2: lacks the key `pw` that line 1 has; every line needs the same keys as the first",
        ),
        (
            "\n{\"name\":\"ann\"}\n{\"name\":\"bob\",\"pw\":\"x\"}\n",
            ":3: has the key `pw` that line 2 does not have; every line needs the same keys \
             as the first",
        ),
        (
            "{\"name\":\"ann\"}\n{\"name\":\"bob\",\"name\":\"cid\"}\n",
            ":2: has the key `name` twice",
        ),
        (
            "{\"name\":\"ann\"}\n{\"name\":\"b\u{e9}\",\"first name\":1}\n",
            ":2: has the key `first name` that line 1 does not have; every line needs the \
             same keys as the first",
        ),
    ];
    for (text, expected) in cases {
        assert_fails("users.jsonl", text.as_bytes(), expected);
    }
    assert_fails(
        "users.jsonl",
        b"{\"name\":\"ann\"}\n{\"name\":\"b\xffb\"}\n",
        ":2: not valid UTF-8; save the file as UTF-8",
    );
    assert_fails(
        "users.jsonl",
        b"{\"first name\":\"ann\"}\n",
        ":1: column 1 is named `first name`; use only letters, digits, `_` and `-` so that \
         templates can name it",
    );
}

#[test]
fn sequential_pick_wraps_around_the_rows() {
    let rows: Vec<usize> = (0..7).map(|u| Pick::Sequential.row(u, 3, 1)).collect();
    assert_eq!(rows, [0, 1, 2, 0, 1, 2, 0]);
}

#[test]
fn unique_pick_gives_user_n_row_n() {
    let rows: Vec<usize> = (0..5).map(|u| Pick::Unique.row(u, 5, 1)).collect();
    assert_eq!(rows, [0, 1, 2, 3, 4]);
}

#[test]
fn random_pick_stays_in_range_varies_and_repeats_with_the_seed() {
    let draws: Vec<usize> = (0..1000).map(|u| Pick::Random.row(u, 10, 42)).collect();
    assert!(draws.iter().all(|&r| r < 10));
    let mut seen = [0u32; 10];
    for &r in &draws {
        seen[r] += 1;
    }
    // Uniform: about 100 each; every row is drawn and none dominates.
    assert!(seen.iter().all(|&n| (50..150).contains(&n)), "{seen:?}");
    let again: Vec<usize> = (0..1000).map(|u| Pick::Random.row(u, 10, 42)).collect();
    assert_eq!(draws, again);
    let other: Vec<usize> = (0..1000).map(|u| Pick::Random.row(u, 10, 43)).collect();
    assert_ne!(draws, other);
}

#[test]
fn pick_reads_the_scenario_words() {
    #[derive(serde::Deserialize)]
    struct Data {
        pick: Pick,
    }
    for (word, pick) in [
        ("sequential", Pick::Sequential),
        ("random", Pick::Random),
        ("unique", Pick::Unique),
    ] {
        let data: Data = toml::from_str(&format!("pick = \"{word}\"")).unwrap();
        assert_eq!(data.pick, pick);
    }
    assert!(toml::from_str::<Data>("pick = \"shuffle\"").is_err());
}

#[test]
fn a_data_file_given_in_memory_is_read_by_its_name_and_extension() {
    let files = [
        ("users.csv", "name,password\nann,pw\n"),
        ("more.jsonl", "{\"a\":\"1\"}\n"),
    ];
    let memory = DataFiles::Memory(&files);
    let set = DataSet::open("users", "users.csv", Path::new("dir/users.csv"), memory).unwrap();
    assert_eq!(rows_of(&set), [["ann", "pw"]]);
    let set = DataSet::open("more", "more.jsonl", Path::new("more.jsonl"), memory).unwrap();
    assert_eq!(rows_of(&set), [["1"]]);
    let error = DataSet::open("x", "absent.csv", Path::new("dir/absent.csv"), memory)
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("cannot read data file dir/absent.csv: "),
        "{error}"
    );
    let error = DataSet::open("x", "users.txt", Path::new("users.txt"), memory)
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown data format"), "{error}");
}
