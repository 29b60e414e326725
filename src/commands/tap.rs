//! `volley tap URL [...]`: the interactive client's flags into its settings; exit 0 for a session
//! that ended normally, 1 when it could not connect, 2 for bad usage, 4 for an abnormal end.

use std::io::IsTerminal;
use std::process::ExitCode;

use super::CommandError;
use super::signals::StopSignals;
use crate::cli::TapArgs;
use crate::protocol::engineio::Version;
use crate::secrets::SecretRules;
use crate::tap::{self, TapConfig, TapError};
use crate::transport::engine::Transport;
use crate::wire::filter::Filter;
use crate::wire::print::use_color;

pub async fn tap(args: TapArgs) -> Result<ExitCode, CommandError> {
    let config = config(args)?;
    let signals = StopSignals::install().map_err(CommandError::Signals)?;
    let outcome = tap::run(config, signals.first_then_exit()).await?;
    if outcome.acks_due > 0 {
        eprintln!(
            "volley tap: {} ack(s) asked for never came back",
            outcome.acks_due
        );
    }
    if outcome.counts.dropped > 0 {
        eprintln!(
            "volley tap: {} record(s) not shown: the output fell behind",
            outcome.counts.dropped
        );
    }
    let code = outcome.exit_code();
    if code != 0 {
        eprintln!("volley tap: {}", outcome.ending);
    }
    Ok(ExitCode::from(code))
}

fn config(args: TapArgs) -> Result<TapConfig, TapError> {
    let socketio =
        args.socketio || args.url.starts_with("http://") || args.url.starts_with("https://");
    let sio_flag = [
        ("--auth", args.auth.is_some()),
        ("--transport", args.transport.is_some()),
        ("--eio", args.eio.is_some()),
        ("--path", args.path.is_some()),
    ]
    .into_iter()
    .find_map(|(flag, given)| given.then_some(flag));
    let options = match (socketio, sio_flag) {
        (false, Some(flag)) => {
            return Err(TapError::Usage(format!(
                "{flag} is for Socket.IO: add --socketio or use an http:// URL"
            )));
        }
        (false, None) => None,
        (true, _) => Some(tap::SocketIoOptions {
            transport: args.transport.map(Transport::from).unwrap_or_default(),
            version: args.eio.map(|v| match v {
                3 => Version::V3,
                _ => Version::V4,
            }),
            path: args.path,
            auth: args.auth,
        }),
    };
    let mut config = TapConfig::new(&args.url, options)?;
    for header in &args.headers {
        config.add_header(header)?;
    }
    config.insecure = args.insecure;
    config.input = if args.send.is_empty() {
        tap::Input::Stdin
    } else {
        tap::Input::Lines(args.send)
    };
    config.wait = args.wait.0;
    config.connect_timeout = args.connect_timeout.0;
    config.sink.color = use_color(args.no_color, std::io::stdout().is_terminal());
    config.sink.filter = Filter::all(&args.filter);
    config.sink.jsonl = args.jsonl;
    config.decode.max_payload = args.max_payload;
    config.decode.secrets = SecretRules::new(args.show_secrets, &args.secret_names);
    Ok(config)
}
