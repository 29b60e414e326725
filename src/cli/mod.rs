//! The command line: clap definitions, turned into typed settings at once.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::scenario::threshold::Threshold;
use crate::transport::engine::Transport;
use crate::units::{CountValue, DurationText, Ramp, RateText, SizeText};
use crate::wire::filter::Filter;
use crate::wire::sample::ClientSample;

mod help;

use help::{
    COMPARE_AFTER_HELP, COMPLETIONS_AFTER_HELP, EXIT_CODES, INIT_AFTER_HELP, INSPECT_AFTER_HELP,
    MAN_AFTER_HELP, MERGE_AFTER_HELP, RECORD_AFTER_HELP, REPORT_AFTER_HELP, SCHEMA_AFTER_HELP,
    SERVE_AFTER_HELP, TAP_AFTER_HELP,
};

/// volley: load tester and traffic inspector for WebSocket servers.
#[derive(Debug, Parser)]
#[command(name = "volley", version, after_help = EXIT_CODES, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario: connect clients, emit events, record latency and errors to results/.
    #[command(after_help = EXIT_CODES)]
    Run(Box<RunArgs>),
    /// Start the embedded reference server (/echo, /broadcast?room=NAME, /ticker?every=10ms,
    /// Socket.IO on /socket.io/).
    #[command(after_help = SERVE_AFTER_HELP)]
    Serve(ServeArgs),
    /// Check a scenario file without running it.
    #[command(after_help = EXIT_CODES)]
    Validate(ValidateArgs),
    /// Write a commented scenario to start from, made for the builtin server, to a new FILE
    /// (default TEMPLATE.toml; - for stdout). Without a TEMPLATE, list the templates.
    #[command(after_help = INIT_AFTER_HELP)]
    Init(InitArgs),
    /// Print the JSON Schema of scenario files, for editors: completion, hover docs and checks
    /// as you type.
    #[command(after_help = SCHEMA_AFTER_HELP)]
    Schema,
    /// Relay and decode: a transparent proxy that logs every HTTP request, WebSocket frame and
    /// Engine.IO/Socket.IO packet between clients and a server, and can inject faults.
    #[command(after_help = INSPECT_AFTER_HELP)]
    Inspect(InspectArgs),
    /// Connect to a WebSocket or Socket.IO server, send lines from stdin (or --send) and print
    /// every frame both ways, decoded as `volley inspect` prints them.
    #[command(after_help = TAP_AFTER_HELP)]
    Tap(TapArgs),
    /// Turn a recorded session (a browser's HAR export, or a `volley inspect --jsonl` capture)
    /// into a scenario that replays it: HTTP steps with captures, the connection, the events
    /// with their pauses, streams, replies and what must come back; credentials go to a data file.
    #[command(after_help = RECORD_AFTER_HELP)]
    Record(RecordArgs),
    /// Compare new runs with base runs (result folders of `volley run`): per figure the base and
    /// new values, the change and a verdict; exit 3 when a figure regressed.
    #[command(after_help = COMPARE_AFTER_HELP)]
    Compare(CompareArgs),
    /// Write a self-contained HTML report (plots as inline SVG, no network needed) of a results
    /// folder: latency over time and its distribution, events and connections, delivery problems
    /// and errors, threshold verdicts, the summary and the scenario.
    #[command(after_help = REPORT_AFTER_HELP)]
    Report(ReportArgs),
    /// Merge the results folders of a run's shards (--shard K/N) into one folder that report,
    /// compare and the gate read like a single run's; thresholds are judged again on the merged
    /// figures.
    #[command(after_help = MERGE_AFTER_HELP)]
    Merge(MergeArgs),
    /// Print the completion script of a shell: every command, option and choice of volley.
    #[command(after_help = COMPLETIONS_AFTER_HELP)]
    Completions(CompletionsArgs),
    /// Print volley's man page (roff), or with --dir write one page per command into a folder.
    #[command(after_help = MAN_AFTER_HELP)]
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The template to write [default: list the templates].
    #[arg(value_enum)]
    pub template: Option<TemplateArg>,
    /// The file to create; an existing file is never overwritten. - writes to stdout [default:
    /// TEMPLATE.toml].
    pub file: Option<PathBuf>,
}

/// The scenarios `volley init` writes, as the command line names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TemplateArg {
    /// Echo round trips over raw WebSocket.
    WsEcho,
    /// Socket.IO events echoed back, and events acknowledged by the server.
    SocketioAck,
    /// Talkers chat in a Socket.IO room; every message must reach every member.
    ChatFanout,
    /// The server pushes numbered ticks; gaps found from its sequence numbers.
    TickerGaps,
    /// Thresholds on latency, loss and errors: exit code 3 when one fails.
    CiGate,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell the script is for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write volley.1 and one page per command (volley-run.1, ...) into DIR, created if missing;
    /// pages already there are replaced.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The capture: a HAR file (.har) or a `volley inspect --jsonl` file.
    pub capture: PathBuf,
    /// The scenario to write (default: the capture's name with .toml); its data file of
    /// credentials, NAME.users.csv, goes beside it.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Which part of the capture to record: conn=N (one connection, as the error listing them
    /// says), from=10s and to=40s (a time window from the capture's start), joined by commas.
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<crate::record::CaptureFilter>,
    /// Replace the scenario and data files when they exist.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' results folders.
    #[arg(value_name = "DIR", required = true, num_args = 1..)]
    pub dirs: Vec<PathBuf>,
    /// The merged results folder (created; files in it are replaced).
    #[arg(short, long, value_name = "DIR")]
    pub out: PathBuf,
    /// Merge folders whose run ids differ (shards started without a shared --run-id).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
    /// Source addresses to connect from in turn, e.g. 127.0.0.2-127.0.0.9 or 10.0.0.5,10.0.0.6:
    /// one address has only ~28,000 ports per server. Chosen for a loopback target when needed.
    #[arg(long, value_name = "ADDRS")]
    pub source_ips: Option<crate::transport::source::SourceIps>,
    /// Target instead of the scenario's: "builtin", ws://host:port/path or wss://...
    #[arg(long)]
    pub target: Option<String>,
    /// Total clients (e.g. 500 or 10k), shared among the groups in proportion to their sizes.
    #[arg(long)]
    pub clients: Option<CountValue>,
    /// Emitting phase (e.g. 30s, 2m).
    #[arg(long)]
    pub duration: Option<DurationText>,
    /// Per-client rate of every emit (e.g. 5/s, 1/10s).
    #[arg(long)]
    pub rate: Option<RateText>,
    /// Connect the clients over this time (5s) or at this rate (500/s).
    #[arg(long)]
    pub ramp: Option<Ramp>,
    /// Results folder (default: results/<name>-<UTC time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// No progress on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Seed of the client start order (printed at the end of every run).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Client worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Accept any TLS certificate (self-signed test servers).
    #[arg(long)]
    pub insecure: bool,
    /// Log the frames of some clients (see --log-clients), decoded as JSON lines in the shape of
    /// `volley inspect --jsonl`, to frames.jsonl in the results folder, or to FILE given with `=`
    /// (--log-frames=FILE). When the writer falls behind, lines are dropped and counted (run.json,
    /// summary), never waited for.
    #[arg(long, value_name = "FILE", num_args = 0..=1, require_equals = true)]
    pub log_frames: Option<Option<PathBuf>>,
    /// Whose frames --log-frames logs: client ids (3), inclusive ranges (0..9), shares of the
    /// clients (5%: clients 0, 20, 40, ...), joined by commas (0..9,50,1%). Default: 0..9, the
    /// first 10 clients. Implies --log-frames.
    #[arg(long, value_name = "SPEC")]
    pub log_clients: Option<ClientSample>,
    /// Show secrets instead of "[redacted]" in the frame log, errors.csv and run.json: Socket.IO
    /// auth, secret query values and headers, the users' secret captured values and columns.
    #[arg(long)]
    pub show_secrets: bool,
    /// Also treat NAME as secret (repeatable): the values of query parameters, headers, JSON
    /// members and form fields of that name are hidden. Names with a secret word (token,
    /// access_token, auth, key, password, secret, session, signature, ...) are secret already.
    /// Formerly --redact-query.
    #[arg(
        long = "secret",
        alias = "redact-query",
        value_name = "NAME",
        conflicts_with = "show_secrets"
    )]
    pub secret_names: Vec<String>,
    /// A threshold of the CI gate, added to the scenario's [thresholds]; repeatable. METRIC.STAT
    /// OP VALUE, e.g. 'fanout.p99 < 50ms', 'errors.rate < 0.1%', 'fanout.lost == 0',
    /// 'echo.count >= 10k'. Any failing threshold makes the exit code 3.
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<Threshold>,
    /// CI mode: the run must have thresholds (a gate without any would pass anything), and the
    /// verdict is written to junit.xml and summary.md in the results folder (unless --junit or
    /// --markdown say where).
    #[arg(long)]
    pub gate: bool,
    /// Write the threshold verdicts as JUnit XML (one test case per threshold).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write the threshold verdicts as a Markdown table (for a pull-request comment). When
    /// $GITHUB_STEP_SUMMARY is set, the table is appended to it too.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write the threshold verdicts as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// At the end (also of an interrupted run), write report.html into the results folder: the
    /// page `volley report` writes.
    #[arg(long)]
    pub report: bool,
    /// Serve the report page while the run goes, updated once a second, at http://ADDR/ (with
    /// no value, a free port on 127.0.0.1; the URL is printed). After the run it serves the final
    /// report for --dashboard-linger, or until Ctrl-C.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, require_equals = true, default_missing_value = "127.0.0.1:0")]
    pub dashboard: Option<crate::telemetry::listen::ListenAddr>,
    /// How long --dashboard keeps serving the final report after the run.
    #[arg(long, value_name = "DURATION", default_value = "2m")]
    pub dashboard_linger: DurationText,
    /// Serve the run's metrics for Prometheus to scrape at http://ADDR/metrics while it runs
    /// (ADDR: PORT on 127.0.0.1, or HOST:PORT; e.g. 9464 or 0.0.0.0:9464). With --processes N,
    /// shard K listens on PORT+K.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<crate::telemetry::listen::ListenAddr>,
    /// After the run, keep --metrics-listen's endpoint up until one scrape has read the final
    /// figures, at most this long (0s: do not wait).
    #[arg(long, value_name = "DURATION", default_value = "15s")]
    pub metrics_linger: DurationText,
    /// Push the run's metrics to this Prometheus remote-write URL every 5 s and once at the end
    /// (e.g. http://127.0.0.1:9090/api/v1/write). A push that fails is dropped and counted; the
    /// run goes on.
    #[arg(long, value_name = "URL")]
    pub prometheus_write: Option<crate::telemetry::remote_write::WriteUrl>,
    /// Run as N local shards, each a child process (`volley run --shard K/N`) with the same run
    /// id, seed and time zero, writing into DIR/shards/K; one live view for all of them; merged
    /// into the results folder at the end. With target = "builtin", one server in this process
    /// serves every shard.
    #[arg(long, value_name = "N", conflicts_with = "shard", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub processes: Option<u32>,
    /// Run only shard K of N (from 0): the clients of every group whose index in the group is K
    /// modulo N, under the ids the whole run gives them. Give every shard the same --run-id and
    /// --start-at, then `volley merge` their folders.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<crate::runner::shard::Shard>,
    /// The run id (hex, as run.json's run_id) that stamps carry: shards of one run must share it
    /// to accept each other's events [default: random].
    #[arg(long, value_name = "HEX")]
    pub run_id: Option<crate::runner::shard::RunId>,
    /// Start at this wall-clock time (RFC 3339 or unix seconds): the run's time zero, shared by
    /// shards on one machine or on clock-synchronised machines. volley waits until then; a time
    /// more than a second in the past is refused.
    #[arg(long, value_name = "TIME")]
    pub start_at: Option<crate::runner::shard::StartAt>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The results folder of a run (results/<name>-<UTC time>).
    pub run_dir: PathBuf,
    /// Where to write the page [default: RUN_DIR/report.html].
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (printed at start).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Fixed delay before every echo (raw /echo, Socket.IO echo and ack), to calibrate a client
    /// (e.g. 20ms).
    #[arg(long)]
    pub delay: Option<DurationText>,
    /// How often Socket.IO `tick` is pushed to the members of room "ticker" (0s for never).
    #[arg(long, default_value = "100ms")]
    pub tick_every: DurationText,
    /// Drop every Nth fan-out delivery of each stream (N ≥ 2; see below).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(2..))]
    pub drop_every: Option<u64>,
    /// Send every Nth fan-out delivery of each stream twice (N ≥ 2; see below).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(2..))]
    pub dup_every: Option<u64>,
    /// Send every Nth fan-out delivery of each stream after the next one (N ≥ 2; see below).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(2..))]
    pub reorder_every: Option<u64>,
    /// Runtime threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// TLS certificate chain (PEM); serves wss:// with --key.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Server processes sharing the port (SO_REUSEPORT), to hold more connections than one
    /// process may have files. Rooms (/broadcast, Socket.IO) are per process: they do not span
    /// server processes. --threads then counts per process (default: the cores shared out).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub processes: u16,
    /// Bind with SO_REUSEPORT (set by `--processes` on the processes it starts).
    #[arg(long, hide = true)]
    pub reuse_port: bool,
    /// Serve the server's counters (connections and messages per endpoint) for Prometheus at
    /// http://ADDR/metrics (ADDR: PORT on 127.0.0.1, or HOST:PORT). With --processes N, process K
    /// (from 0) listens on PORT+K.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<crate::telemetry::listen::ListenAddr>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Address to listen on for clients (point them here instead of at the server).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The server: ws://, wss://, http:// or https://host:port (only scheme, host and port are
    /// used: requests keep their own paths).
    #[arg(long)]
    pub upstream: String,
    /// Accept any TLS certificate from the upstream (self-signed test servers).
    #[arg(long)]
    pub insecure: bool,
    /// TLS certificate chain (PEM) for the listening side, with --key.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Also write every record as one JSON object per line to FILE.
    #[arg(long, value_name = "FILE")]
    pub jsonl: Option<PathBuf>,
    /// Show only matching records, e.g. `dir=s2c,event=chat|typing` (keys: dir, opcode, event,
    /// type, eio, conn); repeat to add terms. Faults and errors are always shown.
    #[arg(long, value_name = "EXPR")]
    pub filter: Vec<crate::wire::filter::Filter>,
    /// No per-frame lines on stdout (the JSONL file and the summary still come).
    #[arg(short, long)]
    pub quiet: bool,
    /// No colours (also when NO_COLOR is set or stdout is not a terminal).
    #[arg(long)]
    pub no_color: bool,
    /// Payload bytes shown per frame, as text or hex.
    #[arg(long, value_name = "BYTES", default_value_t = 512)]
    pub max_payload: usize,
    /// Text of an HTTP body recorded (http_body records of text and JSON bodies), at most: 64KiB,
    /// 1MiB, 0 for none. Longer bodies are relayed whole and their record cut.
    #[arg(long, value_name = "SIZE", default_value = "64KiB")]
    pub max_body: SizeText,
    /// Show secrets instead of "[redacted]": secret headers (Authorization, Cookie), Socket.IO
    /// auth, secret query values, Sec-WebSocket-Protocol tokens, secret JSON members and form
    /// fields of HTTP bodies.
    #[arg(long)]
    pub show_secrets: bool,
    /// Also treat NAME as secret (repeatable): the values of query parameters, headers, JSON
    /// members and form fields of that name are hidden. Names with a secret word (token,
    /// access_token, auth, key, password, secret, session, signature, ...) are secret already.
    /// Formerly --redact-query.
    #[arg(
        long = "secret",
        alias = "redact-query",
        value_name = "NAME",
        conflicts_with = "show_secrets"
    )]
    pub secret_names: Vec<String>,
    /// Drop this share of the matching frames, e.g. 5%.
    #[arg(long, value_name = "P%")]
    pub drop: Option<String>,
    /// Send this share of the matching frames twice, e.g. 1%.
    #[arg(long, value_name = "P%")]
    pub duplicate: Option<String>,
    /// Hold every matching frame this long, with an optional uniform jitter: 50ms or 50ms~20ms.
    #[arg(long, value_name = "D[~J]")]
    pub delay: Option<String>,
    /// Close each connection after it relayed N matching frames.
    #[arg(long, value_name = "N")]
    pub close_after: Option<u64>,
    /// Which frames faults may hit (same syntax as --filter; default: all).
    #[arg(long, value_name = "EXPR")]
    pub fault_filter: Vec<crate::wire::filter::Filter>,
    /// Seed of the fault draws (printed at the start; the same seed and traffic give the same
    /// faults).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stop after this long (default: run until Ctrl-C).
    #[arg(long)]
    pub duration: Option<DurationText>,
    /// Serve the proxy's counters (connections, frames and bytes per direction, closes, faults)
    /// for Prometheus at http://ADDR/metrics (ADDR: PORT on 127.0.0.1, or HOST:PORT).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<crate::telemetry::listen::ListenAddr>,
}

#[derive(Debug, Args)]
pub struct TapArgs {
    /// ws://host:port/path or wss://... (raw WebSocket); http(s)://host:port[/NAMESPACE]
    /// (Socket.IO, as the official client reads it).
    pub url: String,
    /// Speak Socket.IO over a ws:// or wss:// URL (implied by http:// and https://).
    #[arg(long)]
    pub socketio: bool,
    /// Socket.IO CONNECT auth payload, a JSON object (redacted in the output unless
    /// --show-secrets).
    #[arg(long, value_name = "JSON")]
    pub auth: Option<String>,
    /// Socket.IO: the Engine.IO transport.
    #[arg(long, value_enum, value_name = "TRANSPORT")]
    pub transport: Option<TransportArg>,
    /// Socket.IO: Engine.IO version, 4 (Socket.IO 3 and 4) or 3 (Socket.IO 2) [default: EIO= in
    /// the URL, else 4].
    #[arg(long, value_name = "3|4", value_parser = clap::value_parser!(u8).range(3..=4))]
    pub eio: Option<u8>,
    /// Socket.IO: the Engine.IO path [default: /socket.io/].
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,
    /// Extra request header (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Accept any TLS certificate (self-signed test servers).
    #[arg(long)]
    pub insecure: bool,
    /// Send this line once connected, instead of reading stdin (repeatable, sent in order).
    #[arg(long = "send", value_name = "LINE")]
    pub send: Vec<String>,
    /// After the last line: keep printing what arrives for this long, then close (e.g. 1s).
    #[arg(long, default_value = "0s", value_name = "D")]
    pub wait: DurationText,
    /// Give up connecting after this long.
    #[arg(long, default_value = "10s", value_name = "D")]
    pub connect_timeout: DurationText,
    /// Also write every record as one JSON line to FILE.
    #[arg(long, value_name = "FILE")]
    pub jsonl: Option<PathBuf>,
    /// Show only matching records, e.g. `dir=s2c,event=chat|typing` (keys: dir, opcode, event,
    /// type, eio, conn); repeat to add terms. Errors are always shown.
    #[arg(long, value_name = "EXPR")]
    pub filter: Vec<Filter>,
    /// Payload bytes shown per frame.
    #[arg(long, default_value_t = 512, value_name = "BYTES")]
    pub max_payload: usize,
    /// Show secrets instead of "[redacted]": Socket.IO auth, secret query values in the URL.
    #[arg(long)]
    pub show_secrets: bool,
    /// Also treat NAME as secret (repeatable): the values of query parameters, headers, JSON
    /// members and form fields of that name are hidden. Names with a secret word (token,
    /// access_token, auth, key, password, secret, session, signature, ...) are secret already.
    /// Formerly --redact-query.
    #[arg(
        long = "secret",
        alias = "redact-query",
        value_name = "NAME",
        conflicts_with = "show_secrets"
    )]
    pub secret_names: Vec<String>,
    /// No colours (also when NO_COLOR is set or stdout is not a terminal).
    #[arg(long)]
    pub no_color: bool,
}

/// The Engine.IO transports, as `--transport` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TransportArg {
    /// Straight to WebSocket.
    Websocket,
    /// HTTP long-polling only.
    Polling,
    /// Long-polling first, then upgraded to WebSocket: what browsers do.
    PollingUpgrade,
}

impl From<TransportArg> for Transport {
    fn from(arg: TransportArg) -> Transport {
        match arg {
            TransportArg::Websocket => Transport::Websocket,
            TransportArg::Polling => Transport::Polling,
            TransportArg::PollingUpgrade => Transport::PollingUpgrade,
        }
    }
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The base run's result folder (for repeated runs: --base and --new).
    #[arg(
        value_name = "BASE",
        required_unless_present_any = ["base", "new"],
        conflicts_with_all = ["base", "new"],
        requires = "new_dir"
    )]
    pub base_dir: Option<PathBuf>,
    /// The new run's result folder.
    #[arg(value_name = "NEW", conflicts_with_all = ["base", "new"])]
    pub new_dir: Option<PathBuf>,
    /// Result folders of the base runs (repeated runs of the same scenario: --base a b c).
    #[arg(long, value_name = "DIR", num_args = 1.., requires = "new")]
    pub base: Vec<PathBuf>,
    /// Result folders of the new runs.
    #[arg(long, value_name = "DIR", num_args = 1.., requires = "base")]
    pub new: Vec<PathBuf>,
    /// How much worse a figure may get, e.g. p99=10%,fanout.p99=5ms,errors.rate=0.01 (see below).
    #[arg(long, value_name = "KEY=VALUE,...", value_delimiter = ',')]
    pub max_regression: Vec<crate::compare::allowance::AllowanceItem>,
    /// Write a JUnit XML report: one test case per compared figure.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write the verdict table as Markdown (also appended to $GITHUB_STEP_SUMMARY when set).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write every figure's runs, medians, spreads and verdict as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn units_parse_on_the_command_line() {
        let cli = Cli::try_parse_from([
            "volley",
            "run",
            "s.toml",
            "--clients",
            "10k",
            "--duration",
            "1m",
            "--rate",
            "5/s",
            "--ramp",
            "500/s",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("expected run")
        };
        assert_eq!(args.clients.unwrap().0, 10_000);
        assert_eq!(args.duration.unwrap().0.as_secs(), 60);
        assert_eq!(args.rate.unwrap().0.events, 5);
    }

    #[test]
    fn serve_ticks_every_100ms_unless_told() {
        let tick_every = |args: &[&str]| {
            let cli = Cli::try_parse_from([&["volley", "serve"], args].concat()).unwrap();
            let Command::Serve(args) = cli.command else {
                panic!("expected serve")
            };
            args.tick_every.0
        };
        assert_eq!(tick_every(&[]).as_millis(), 100);
        assert_eq!(tick_every(&["--tick-every", "20ms"]).as_millis(), 20);
    }

    #[test]
    fn fault_switches_take_n_of_at_least_2() {
        let serve = |extra: &[&str]| {
            let args = [&["volley", "serve"], extra].concat();
            Cli::try_parse_from(args).map(|cli| match cli.command {
                Command::Serve(args) => (args.drop_every, args.dup_every, args.reorder_every),
                _ => panic!("expected serve"),
            })
        };
        assert_eq!(serve(&[]).unwrap(), (None, None, None));
        assert_eq!(
            serve(&[
                "--drop-every",
                "3",
                "--dup-every",
                "5",
                "--reorder-every",
                "2"
            ])
            .unwrap(),
            (Some(3), Some(5), Some(2))
        );
        for bad in ["1", "0", "x"] {
            let err = serve(&["--reorder-every", bad]).unwrap_err();
            assert!(err.to_string().contains("--reorder-every"), "{err}");
        }
    }

    fn run_args(extra: &[&str]) -> Result<RunArgs, clap::Error> {
        let args = [&["volley", "run"], extra].concat();
        Cli::try_parse_from(args).map(|cli| match cli.command {
            Command::Run(args) => *args,
            _ => panic!("expected run"),
        })
    }

    #[test]
    fn log_frames_takes_its_file_only_after_an_equals_sign() {
        let args = run_args(&["--log-frames", "s.toml"]).unwrap();
        assert_eq!(args.scenario, PathBuf::from("s.toml"));
        assert_eq!(args.log_frames, Some(None));
        let args = run_args(&["s.toml", "--log-frames"]).unwrap();
        assert_eq!(args.log_frames, Some(None));
        let args = run_args(&["s.toml", "--log-frames=f.jsonl"]).unwrap();
        assert_eq!(args.log_frames, Some(Some(PathBuf::from("f.jsonl"))));
        let args = run_args(&["s.toml"]).unwrap();
        assert_eq!(args.log_frames, None);
        assert_eq!(args.log_clients, None);
    }

    #[test]
    fn log_clients_parses_its_spec_and_names_the_flag_when_bad() {
        let args = run_args(&["s.toml", "--log-clients", "0..2,5%"]).unwrap();
        let sample = args.log_clients.unwrap();
        assert!(sample.contains(2) && sample.contains(20) && !sample.contains(3));
        let err = run_args(&["s.toml", "--log-clients", "5..1"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(text.contains("--log-clients"), "{text}");
        assert!(text.contains("ends before it starts"), "{text}");
    }

    #[test]
    fn tap_takes_repeated_sends_and_headers_in_order() {
        let cli = Cli::try_parse_from([
            "volley",
            "tap",
            "ws://h:1/",
            "--send",
            "a",
            "-H",
            "X-A: 1",
            "--send",
            "b",
            "--wait",
            "250ms",
        ])
        .unwrap();
        let Command::Tap(args) = cli.command else {
            panic!("expected tap")
        };
        assert_eq!(args.send, ["a", "b"]);
        assert_eq!(args.headers, ["X-A: 1"]);
        assert_eq!(args.wait.0.as_millis(), 250);
        let err = Cli::try_parse_from(["volley", "tap", "ws://h:1/", "--eio", "5"]).unwrap_err();
        assert!(err.to_string().contains("--eio"), "{err}");
    }

    #[test]
    fn report_takes_a_folder_and_an_optional_output() {
        let cli = Cli::try_parse_from(["volley", "report", "results/x", "-o", "r.html"]).unwrap();
        let Command::Report(args) = cli.command else {
            panic!("expected report")
        };
        assert_eq!(args.run_dir, PathBuf::from("results/x"));
        assert_eq!(args.output, Some(PathBuf::from("r.html")));
        assert!(run_args(&["s.toml", "--report"]).unwrap().report);
        assert!(!run_args(&["s.toml"]).unwrap().report);
    }

    #[test]
    fn shard_run_id_and_start_at_parse_and_name_the_flag_when_bad() {
        let args = run_args(&[
            "s.toml",
            "--shard",
            "1/3",
            "--run-id",
            "00c0ffee",
            "--start-at",
            "1764496800",
        ])
        .unwrap();
        let shard = args.shard.unwrap();
        assert_eq!((shard.index, shard.count), (1, 3));
        assert_eq!(args.run_id.unwrap().0, 0x00c0_ffee);
        assert!(args.start_at.is_some());
        let err = run_args(&["s.toml", "--shard", "3/3"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--shard"), "{err}");
    }

    #[test]
    fn merge_takes_folders_and_an_output() {
        let cli = Cli::try_parse_from(["volley", "merge", "a", "b", "-o", "m"]).unwrap();
        let Command::Merge(args) = cli.command else {
            panic!("expected merge")
        };
        assert_eq!(args.dirs, [PathBuf::from("a"), PathBuf::from("b")]);
        assert_eq!(args.out, PathBuf::from("m"));
        assert!(!args.force);
        assert!(Cli::try_parse_from(["volley", "merge", "a"]).is_err());
    }

    #[test]
    fn transport_names_on_the_command_line_are_the_scenario_files() {
        use clap::ValueEnum;
        for arg in TransportArg::value_variants() {
            let name = arg.to_possible_value().unwrap();
            assert_eq!(name.get_name(), Transport::from(*arg).as_str());
        }
    }

    #[test]
    fn a_bad_duration_is_a_usage_error_that_shows_the_format() {
        let err = Cli::try_parse_from(["volley", "run", "s.toml", "--duration", "10"]).unwrap_err();
        assert!(err.to_string().contains("like 250ms"), "{err}");
    }
}
