//! The commands: each file turns its clap arguments into its module's own settings at once, runs
//! it, and maps the outcome to an exit code ([`CommandError::exit_code`]; docs/exit-codes.md has
//! every command's, `--help` says them short). Nothing below this module sees the command line.

mod compare;
mod completions;
mod dashboard;
mod init;
mod inspect;
mod man;
mod merge;
mod processes;
mod record;
mod report;
mod run;
mod schema;
mod serve;
mod signals;
mod tap;
mod validate;

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::compare::load::CompareError;
use crate::inspect::InspectError;
use crate::merge::MergeError;
use crate::report::ReportError;
use crate::runner::RunError;
use crate::runner::processes::ProcessesError as ShardsError;
use crate::scenario::ScenarioError;
use crate::serve::processes::ProcessesError as ServeError;
use crate::tap::TapError;
use crate::transport::tls::TlsError;

/// Runs the command the command line names.
pub async fn execute(cli: Cli) -> Result<ExitCode, CommandError> {
    match cli.command {
        Command::Run(args) => run::run(*args).await,
        Command::Serve(args) => serve::serve(args).await,
        Command::Validate(args) => validate::validate(args),
        Command::Schema => schema::schema(),
        Command::Inspect(args) => inspect::inspect(args).await,
        Command::Tap(args) => tap::tap(args).await,
        Command::Record(args) => record::record(args),
        Command::Compare(args) => compare::compare(args),
        Command::Report(args) => report::report(args),
        Command::Merge(args) => merge::merge(args),
        Command::Init(args) => init::init(args),
        Command::Completions(args) => completions::completions(args),
        Command::Man(args) => man::man(args),
    }
}

/// Anything that ends a command, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("no client could connect to {url}; see {dir}/errors.csv ({detail})")]
    NobodyConnected {
        url: String,
        dir: String,
        detail: String,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Tap(#[from] TapError),
    #[error("cannot install the Ctrl-C / SIGTERM handlers: {0}")]
    Signals(std::io::Error),
    #[error(transparent)]
    Inspect(#[from] InspectError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Write(std::io::Error),
    #[error(transparent)]
    Compare(#[from] CompareError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("the report {} was written, but some files could not be read:\n  {}", path.display(), problems.join("\n  "))]
    ReportProblems {
        path: std::path::PathBuf,
        problems: Vec<String>,
    },
    #[error(transparent)]
    Merge(#[from] MergeError),
    #[error(transparent)]
    Record(#[from] crate::record::RecordError),
    #[error(transparent)]
    Shards(#[from] ShardsError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Init(#[from] init::InitError),
    #[error(transparent)]
    Man(#[from] man::ManError),
    #[error(
        "shard {shard} failed: {why}{}\n  The results in {dir} hold what every shard saw up to when it stopped.",
        match more { 0 => String::new(), n => format!(" (and {n} more: see run.json's failed_shards)") }
    )]
    ShardsFailed {
        shard: String,
        why: String,
        more: usize,
        dir: String,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

impl CommandError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CommandError::Scenario(_) | CommandError::Tls(_) | CommandError::Usage(_) => {
                ExitCode::from(2)
            }
            CommandError::Inspect(e) if e.is_usage() => ExitCode::from(2),
            CommandError::Tap(TapError::Usage(_)) => ExitCode::from(2),
            CommandError::Compare(e) if e.is_usage() => ExitCode::from(2),
            CommandError::Report(e) if e.is_usage() => ExitCode::from(2),
            CommandError::Merge(e) if e.is_usage() => ExitCode::from(2),
            CommandError::Record(e) if e.is_usage() => ExitCode::from(2),
            CommandError::Init(e) if e.is_usage() => ExitCode::from(2),
            CommandError::Run(RunError::StartInPast { .. }) => ExitCode::from(2),
            CommandError::Shards(ShardsError::ShardFailed {
                code: Some(code @ 1..=2),
                ..
            }) => ExitCode::from(*code as u8),
            _ => ExitCode::from(1),
        }
    }
}

/// 0, or 3 when a gate failed.
fn passed_or_3(passed: bool) -> ExitCode {
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    }
}
