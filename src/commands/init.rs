//! `volley init [TEMPLATE] [FILE]`: a commented scenario to start from, written to a new file.
//! The templates are the TOML files in `init/`, each made for the builtin server and small enough
//! to run in seconds; the fuller examples are in scenarios/.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::ValueEnum;

use super::CommandError;
use crate::cli::{InitArgs, TemplateArg};

/// What `volley init` could not do.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(
        "{} exists already, and volley init never overwrites a file: name a new FILE, or - to print the template",
        path.display()
    )]
    Exists { path: PathBuf },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl InitError {
    /// An existing file is the user's to move; a write that failed is not.
    pub fn is_usage(&self) -> bool {
        matches!(self, InitError::Exists { .. })
    }
}

pub fn init(args: InitArgs) -> Result<ExitCode, CommandError> {
    let Some(template) = args.template else {
        print_or_fail(&listing())?;
        return Ok(ExitCode::SUCCESS);
    };
    let default_file = default_file(template);
    let file = args.file.unwrap_or_else(|| PathBuf::from(&default_file));
    if file == Path::new("-") {
        print_or_fail(text(template))?;
        return Ok(ExitCode::SUCCESS);
    }
    // The commands in the template's first lines name its default file; they name this one.
    let named = text(template).replace(&default_file, &file.display().to_string());
    create(&file, &named)?;
    println!(
        "wrote {file} from template {name}\ncheck it with `volley validate {file}`, run it with `volley run {file}`",
        file = file.display(),
        name = name(template),
    );
    Ok(ExitCode::SUCCESS)
}

/// The template's text, as shipped in `init/`.
fn text(template: TemplateArg) -> &'static str {
    match template {
        TemplateArg::WsEcho => include_str!("init/ws-echo.toml"),
        TemplateArg::SocketioAck => include_str!("init/socketio-ack.toml"),
        TemplateArg::ChatFanout => include_str!("init/chat-fanout.toml"),
        TemplateArg::TickerGaps => include_str!("init/ticker-gaps.toml"),
        TemplateArg::CiGate => include_str!("init/ci-gate.toml"),
    }
}

/// The template's name on the command line (and the scenario's `name`).
fn name(template: TemplateArg) -> String {
    template
        .to_possible_value()
        .map(|value| value.get_name().to_string())
        .unwrap_or_default()
}

/// The template's one line, from its doc comment on `TemplateArg`.
fn about(template: TemplateArg) -> String {
    template
        .to_possible_value()
        .and_then(|value| value.get_help().map(|help| help.to_string()))
        .unwrap_or_default()
}

fn default_file(template: TemplateArg) -> String {
    format!("{}.toml", name(template))
}

/// What `volley init` without a template prints.
fn listing() -> String {
    let mut out = String::from(
        "volley init TEMPLATE [FILE] writes a commented scenario for the builtin server to FILE\n\
         (default TEMPLATE.toml; - prints it). Templates:\n",
    );
    let width = TemplateArg::value_variants()
        .iter()
        .map(|&t| name(t).len())
        .max()
        .unwrap_or(0);
    for &template in TemplateArg::value_variants() {
        out.push_str(&format!(
            "  {:width$}  {}\n",
            name(template),
            about(template)
        ));
    }
    out
}

/// Creates `path` with `text`, refusing a file that exists; a half-written file is removed.
fn create(path: &Path, text: &str) -> Result<(), InitError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => InitError::Exists {
                path: path.to_path_buf(),
            },
            _ => InitError::Write {
                path: path.to_path_buf(),
                source,
            },
        })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| {
            let _ = std::fs::remove_file(path);
            InitError::Write {
                path: path.to_path_buf(),
                source,
            }
        })
}

/// Writes to stdout, an error (a closed pipe) ending the command instead of panicking.
fn print_or_fail(text: &str) -> Result<(), CommandError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(CommandError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_is_named_as_its_file_and_says_how_to_run_it() {
        for &template in TemplateArg::value_variants() {
            let text = text(template);
            let name = name(template);
            assert!(
                text.contains(&format!("\nname = \"{name}\"")),
                "{name}: the scenario's name is the template's"
            );
            assert!(
                text.contains(&format!("#   volley run {name}.toml")),
                "{name}: the first lines say how to run it"
            );
            assert!(text.starts_with("# "), "{name}: opens with what it is");
            assert!(text.contains("target = \"builtin\""), "{name}");
            // The file name is replaced by the one written: only comments may carry it.
            for line in text
                .lines()
                .filter(|line| line.contains(&default_file(template)))
            {
                assert!(line.trim_start().starts_with('#'), "{name}: {line}");
            }
        }
    }

    #[test]
    fn the_listing_names_every_template_with_its_line() {
        let listing = listing();
        assert!(listing.contains("\n  ws-echo       Echo round trips over raw WebSocket\n"));
        assert_eq!(
            listing.lines().count(),
            2 + TemplateArg::value_variants().len()
        );
    }

    #[test]
    fn an_existing_file_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.toml");
        std::fs::write(&path, "name = \"mine\"\n").unwrap();
        let err = create(&path, "other").unwrap_err();
        assert!(err.is_usage());
        assert!(
            err.to_string().contains("mine.toml exists already"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "name = \"mine\"\n");
        let err = create(&dir.path().join("no/such/dir.toml"), "x").unwrap_err();
        assert!(!err.is_usage());
        assert!(err.to_string().contains("cannot write"), "{err}");
    }
}
