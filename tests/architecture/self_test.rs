//! Self-tests: the checker must be able to fail. Each runs it on a made-up tree.

use super::check;

/// The table that the made-up trees below are checked against.
const TABLE: &str = "# Layers\n\n```layers\ncli  # top\nrunner\ngate client\nunits\n```\n";
/// A file for each module of TABLE.
const MODULES: [&str; 5] = [
    "src/cli.rs",
    "src/runner/mod.rs",
    "src/gate/mod.rs",
    "src/client.rs",
    "src/units.rs",
];

/// Checks made-up `files` against `table`, adding an empty file for each of MODULES that
/// `files` leaves out.
fn check_tree(table: &str, files: &[(&str, &str)]) -> Vec<String> {
    let missing = MODULES
        .into_iter()
        .filter(|m| !files.iter().any(|(path, _)| path == m));
    let files = files.iter().copied().chain(missing.map(|m| (m, "")));
    check(
        table,
        &files.map(|(p, t)| (p.into(), t.into())).collect::<Vec<_>>(),
    )
}

fn problems(files: &[(&str, &str)]) -> Vec<String> {
    check_tree(TABLE, files)
}

/// The problems without their explanations: "src/x.rs:3: x imports y (crate::y::z)".
fn reported(files: &[(&str, &str)]) -> Vec<String> {
    let short = |p: &String| p[..p.find(", but").or(p.find(';')).unwrap_or(p.len())].into();
    problems(files).iter().map(short).collect()
}

#[test]
fn a_clean_tree_passes() {
    let worker = "use crate::gate::Figures;
use crate::{client, units::parse};
use super::cli; // runner::cli, not the top-level cli";
    let gate = "mod inner { use super::super::units::x; }
pub use super::units::parse;";
    let cli = "use clap::Parser;
#[derive(clap::Parser)]
struct Cli { #[arg(long)] x: u8 }";
    let main = "use clap::Parser; // main.rs is not checked
fn main() { volley::cli::Cli::parse(); crate::gate::x(); }";
    let files = [("src/runner/worker.rs", worker), ("src/gate/mod.rs", gate)];
    let files = [
        files[0],
        files[1],
        ("src/cli.rs", cli),
        ("src/main.rs", main),
    ];
    assert_eq!(problems(&files), Vec::<String>::new());
}

#[test]
fn a_back_edge_is_reported_with_file_line_and_what_is_allowed() {
    let runner = "fn a() {}\n\nfn b() { crate::cli::args(); }\n";
    let expected = "src/runner/mod.rs:3: runner imports cli (crate::cli::args), but cli is not \
                    below runner in ARCHITECTURE.md's layer table (runner may import: gate client units)";
    assert_eq!(problems(&[("src/runner/mod.rs", runner)]), [expected]);
}

#[test]
fn an_import_within_the_same_layer_is_reported() {
    let verdict = "use crate::client::Session;";
    let expected = "src/gate/verdict.rs:1: gate imports client (crate::client::Session)";
    assert_eq!(reported(&[("src/gate/verdict.rs", verdict)]), [expected]);
}

#[test]
fn each_module_of_a_grouped_use_is_an_edge_even_across_lines() {
    let units = "use crate::{
gate::Figures,
runner::{a, b::c},
units::x,
cli,
};";
    assert_eq!(
        reported(&[("src/units.rs", units)]),
        [
            "src/units.rs:2: units imports gate (crate::gate::Figures)",
            "src/units.rs:3: units imports runner (crate::runner::{..})",
            "src/units.rs:5: units imports cli (crate::cli)",
        ]
    );
}

#[test]
fn super_chains_that_climb_to_the_crate_root_are_resolved() {
    let figures = "use super::super::runner::Plan;";
    // In units::tests::deeper three `super`s reach the root; a fourth would not be Rust.
    let units = "mod tests {
mod deeper { fn f() { super::super::super::super::cli::x(); } }
use super::super::record::Dir;
}
fn after_tests() { super::runner::x(); }";
    assert_eq!(
        reported(&[("src/gate/figures.rs", figures), ("src/units.rs", units)]),
        [
            "src/gate/figures.rs:1: gate imports runner (super::super::runner::Plan)",
            "src/units.rs:3: units refers to crate::record (super::super::record::Dir)",
            "src/units.rs:5: units imports runner (super::runner::x)",
        ]
    );
}

#[test]
fn super_within_the_own_module_is_not_an_edge() {
    let faults = "use super::record::Dir;
mod tests {
fn f() { super::super::record::Dir::C2s; }
}";
    assert_eq!(
        problems(&[("src/gate/faults.rs", faults)]),
        Vec::<String>::new()
    );
}

#[test]
fn paths_in_comments_doc_comments_strings_and_chars_are_not_edges() {
    let units = r##"//! See [`crate::gate::Figures`].
/// Links [`crate::runner`]. /* crate::cli */
fn f<'a>(x: &'a str) -> char {
/* outer /* nested crate::cli */ still crate::cli */
let _ = "crate::runner::x \" crate::gate";
let _ = r#"crate::cli "quoted" crate::gate"#;
let _ = (b"crate::gate", br"crate::gate", c"crate::cli");
let _ = ('"', '\'', b'"', '\u{22}', '\\');
'x'
} // crate::cli
"##;
    assert_eq!(problems(&[("src/units.rs", units)]), Vec::<String>::new());
}

#[test]
fn a_path_string_in_an_attribute_is_an_edge_but_a_message_is_not() {
    let units = r#"#[serde(with = "crate::gate::serde")]
struct A;
#[error("see crate::cli")]
struct B;"#;
    let expected = "src/units.rs:1: units imports gate (crate::gate::serde)";
    assert_eq!(reported(&[("src/units.rs", units)]), [expected]);
}

#[test]
fn reexports_and_macro_paths_are_edges() {
    let units = "pub use crate::gate::Figures;
macro_rules! m { () => { $crate::cli::x() } }";
    assert_eq!(
        reported(&[("src/units.rs", units)]),
        [
            "src/units.rs:1: units imports gate (crate::gate::Figures)",
            "src/units.rs:2: units imports cli (crate::cli::x)",
        ]
    );
}

#[test]
fn a_crate_root_name_that_is_not_a_module_is_reported_once_per_line() {
    let runner = "use crate::Reexport; fn f(_: crate::Reexport) {}";
    let problems = problems(&[("src/runner/mod.rs", runner)]);
    let expected = "src/runner/mod.rs:1: runner refers to crate::Reexport (crate::Reexport), \
                    but Reexport is not a module of the layer table";
    assert!(
        problems.len() == 1 && problems[0].starts_with(expected),
        "{problems:#?}"
    );
}

#[test]
fn a_module_missing_from_the_table_is_reported() {
    let files = [
        ("src/serve/mod.rs", "use crate::units;"),
        ("src/tap.rs", ""),
    ];
    assert_eq!(
        reported(&files),
        [
            "src/serve/: module serve is not in ARCHITECTURE.md's layer table",
            "src/tap.rs: module tap is not in ARCHITECTURE.md's layer table",
        ]
    );
}

#[test]
fn a_table_name_without_a_module_or_listed_twice_is_reported() {
    let table = "```layers\ncli\nrunner units\ngate client ghost\nunits\n```\n";
    let problems = check_tree(table, &[]);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems[0].starts_with("ARCHITECTURE.md:4: the layer table names ghost, but"));
    assert!(problems[1].starts_with("ARCHITECTURE.md:5: units is in the layer table more"));
}

#[test]
fn there_must_be_exactly_one_layers_block() {
    let problems = |markdown: &str| check_tree(markdown, &[]).join("\n");
    let none = problems("# Layers\n```text\ncli\n```\n");
    assert!(none.ends_with("expected exactly one ```layers code block, found 0 []"));
    let two = problems(&format!("{TABLE}\n{TABLE}"));
    assert!(two.ends_with("found 2 [3, 12]"), "{two}");
    // A ```layers example quoted in a longer fence is not the table.
    let quoted = problems(&format!("````markdown\n```layers\nx\n```\n````\n{TABLE}"));
    assert_eq!(quoted, "");
}

#[test]
fn clap_outside_cli_and_commands_is_reported() {
    let gate = r#"#[derive(Debug, clap::ValueEnum)]
enum Mode { #[value(name = "x")] X }
use clap;
// clap::Parser"#;
    let files = [
        ("src/gate/mode.rs", gate),
        ("src/cli.rs", "use clap::Parser;"),
    ];
    assert_eq!(
        reported(&files),
        [
            "src/gate/mode.rs:1: gate uses clap (clap::ValueEnum)",
            "src/gate/mode.rs:2: gate uses clap (#[value(..)])",
            "src/gate/mode.rs:3: gate uses clap (clap)",
        ]
    );
    let message = &problems(&files)[0];
    assert!(
        message.ends_with("but only cli and commands may use clap"),
        "{message}"
    );
}
