//! `volley man [--dir DIR]`: man pages (roff) generated from the command line's definition: the
//! main page on stdout, or it and one page per command written into a folder.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_mangen::Man;

use super::CommandError;
use crate::cli::{Cli, ManArgs};

/// A man page that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {source}", path.display())]
pub struct ManError {
    path: PathBuf,
    source: std::io::Error,
}

pub fn man(args: ManArgs) -> Result<ExitCode, CommandError> {
    let pages = pages();
    match args.dir {
        None => {
            let mut page = Vec::new();
            pages[0].render(&mut page).map_err(CommandError::Write)?;
            let mut out = std::io::stdout().lock();
            out.write_all(&page)
                .and_then(|()| out.flush())
                .map_err(CommandError::Write)?;
        }
        Some(dir) => {
            for path in write_pages(&pages, &dir)? {
                println!("{}", path.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// volley's page, then one per command (named volley-run and so on once built), hidden ones and
/// `help` left out: each command's page says what `volley COMMAND --help` says.
fn pages() -> Vec<Man> {
    let mut command = Cli::command().disable_help_subcommand(true);
    // The NAME line reads "volley - ABOUT": the about without its own "volley: ".
    let about = command.get_about().map(|about| about.to_string());
    if let Some(rest) = about.as_deref().and_then(|a| a.strip_prefix("volley: ")) {
        command = command.about(rest.to_string());
    }
    command.build();
    let commands: Vec<clap::Command> = command
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .cloned()
        .collect();
    std::iter::once(command)
        .chain(commands)
        .map(Man::new)
        .collect()
}

fn write_pages(pages: &[Man], dir: &Path) -> Result<Vec<PathBuf>, ManError> {
    std::fs::create_dir_all(dir).map_err(|source| ManError {
        path: dir.to_path_buf(),
        source,
    })?;
    pages
        .iter()
        .map(|page| {
            page.generate_to(dir).map_err(|source| ManError {
                path: dir.join(page.get_filename()),
                source,
            })
        })
        .collect()
}
