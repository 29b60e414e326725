use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = volley::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("Error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(volley::commands::execute(cli)) {
        Ok(code) => code,
        Err(e) => {
            let code = e.exit_code();
            eprintln!("Error: {}", with_causes(&e));
            code
        }
    }
}

/// The error and the causes its own text does not already say (most messages name their cause,
/// and an I/O error said twice reads as a stutter).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let said = c.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = c.source();
    }
    text
}
