//! The texts after each command's options in `--help`: the short form of the rules docs/ explains
//! (exit codes in docs/exit-codes.md, compare in docs/ci-gate.md, faults in docs/inspect-and-tap.md
//! and docs/builtin-server.md).

macro_rules! exit_codes {
    () => {
        "\
Exit codes:
  0  success
  1  the run could not be done (target unreachable at start, no client connected, I/O error)
  2  bad usage or a bad scenario file (the message names file:line:column)
  3  thresholds or a comparison failed
  130  interrupted twice (the second Ctrl-C exits at once)"
    };
}

pub const EXIT_CODES: &str = exit_codes!();

pub const SCHEMA_AFTER_HELP: &str = "\
The repository keeps it as schema/scenario.schema.json; `volley schema > schema/scenario.schema.json`
writes it again. Editors that read taplo's directive (Even Better TOML in VS Code, taplo itself)
use it for a scenario whose first line is
  #:schema ./path/to/scenario.schema.json
(relative to the scenario file). See docs/scenarios.md#editors.

Exit codes:
  0  printed
  1  stdout could not be written";

pub const SERVE_AFTER_HELP: &str = concat!(
    "\
Delivery faults (--drop-every, --dup-every, --reorder-every) apply to fan-out deliveries only:
/broadcast (to each room member, the sender included), /ticker, Socket.IO chat (to each member of
the sender's rooms) and tick (to each member of room ticker); never to echo or ack. They count per
stream: the deliveries to one receiving connection from one source, the source being the sending
connection (Socket.IO: socket) for /broadcast and chat, the ticker for /ticker and tick. A stream's
deliveries are numbered 1, 2, 3, ...; delivery k is
  dropped          when k % N == 0 for --drop-every N,
  sent twice       when k % N == 0 for --dup-every N,
  held back        when k % N == 0 for --reorder-every N, and sent right after delivery k+1.
Drop comes first, then dup, then reorder. A held delivery whose stream has no next delivery (the
sender stopped, either side closed) is never sent, not even at close.

",
    exit_codes!()
);

pub const COMPARE_AFTER_HELP: &str = "\
Compared: each latency metric's p50 p90 p95 p99 p99.9 and mean (max is one sample, the noisiest
figure: name it to compare it, e.g. max=50%), errors.rate, connect_failures.rate and each expect's
lost, late, duplicate and reorder rates. Any other figure named in --max-regression is compared too,
any percentile among them (echo.p99.99=20%, read from each folder's latency.hlog). A figure only
some runs have is skipped, and said.

Allowances (--max-regression KEY=VALUE,...): KEY is a statistic for every latency metric (p99),
rate for every share, or one figure (fanout.p99, fanout.lost.rate); VALUE is a change relative to
the base (10%), a duration for latency (5ms), or a number for shares (0.01 is one percentage point).
Defaults: latency 10%, shares 0.001 (0.1 percentage point).

With at least 2 runs on each side, each side's value is the median of its runs and a figure
regresses only when it got worse by more than its allowance and more than the spread (max - min)
of each side's runs; past the allowance but within a spread is noise, not a failure. With a single
run on either side, noise cannot be told and the allowance alone decides.

Exit codes:
  0  no figure regressed
  1  a result folder or a summary file could not be read or written
  2  bad usage: arguments, --max-regression, a folder without run.json or a bad run.json
  3  a figure regressed";

pub const INSPECT_AFTER_HELP: &str = "\
Faults keep the stream valid WebSocket: --drop and --duplicate hit only whole messages (text or
binary with FIN set) and pings/pongs, never close frames or fragments; a dropped Socket.IO binary
event takes its attachments with it, and binary events are never duplicated. --delay holds a frame
and everything behind it in its direction, so order is kept. Faults apply to WebSocket frames, not
to long-polling HTTP. Every injected fault is a record (kind \"fault\") in the output and JSONL.

Exit codes:
  0  stopped (Ctrl-C or --duration)
  1  could not listen, or the upstream name does not resolve
  2  bad usage";

pub const TAP_AFTER_HELP: &str = "\
Lines (stdin, or each --send):
  raw WebSocket  each line is sent as one text message, as typed
  Socket.IO      emit EVENT [JSON...] [--ack]   e.g.  emit chat \"hi\" {\"n\":1} --ack
  commands       /close [CODE [REASON]]  (Socket.IO: /close, no code)
                 /ping [TEXT]            (raw WebSocket)
                 //TEXT sends /TEXT; empty lines are skipped
After the last line, tap listens for --wait (Socket.IO: and for the acks it asked for, up to 5 s),
then closes with 1000. Ctrl-C closes at once.

Exit codes:
  0  the session ended normally: tap closed and the server answered, the server closed with
     1000 or 1001, or a Socket.IO server ended the session (DISCONNECT, Engine.IO close)
  1  could not connect (refused, TLS, upgrade, CONNECT_ERROR, timeout) or write the output
  2  bad usage (the URL, a header, --auth, a --send line)
  4  the session ended abnormally: the server closed with another code, the connection dropped,
     or the server did not answer the close
  130  interrupted twice (the second Ctrl-C exits at once)";

pub const MERGE_AFTER_HELP: &str = "\
Merged: latency histograms sample for sample (latency.hlog by metric and wall-clock second, the
totals, each .hgrm and summary.csv from them), counters summed, timeseries.csv by wall-clock second,
gaps.csv and errors.csv in time order, run.json rebuilt (status the worst of the shards, elapsed
their span, clients summed, thresholds judged again on the merged figures).

Exit codes:
  0  merged, and every threshold passed
  1  the merged folder could not be written
  2  bad usage: a folder is not a run's results, or the folders are of different runs (--force)
  3  a threshold failed on the merged figures";

pub const RECORD_AFTER_HELP: &str = "\
The scenario says, in comments, what was recorded and what was generalised: values an answer
carried become captures, credentials become columns of the data file (empty where the capture hid
them), repeated events become emit streams at the recorded pace, answers to pushes become
[[group.on]] replies. It passes `volley validate`; run it with --clients N --duration D.

Exit codes:
  0  the scenario (and its data file) were written and check out
  1  a file could not be written
  2  bad usage: the capture is empty, malformed or cut short (the line or entry is named), holds
     no conversation or several connections (--filter picks one), or the output exists (--force)";

pub const REPORT_AFTER_HELP: &str = "\
Exit codes:
  0  the report was written
  1  the report could not be written, or a file of the folder could not be read (the report is
     still written, and says which)
  2  RUN_DIR is not a results folder";

pub const INIT_AFTER_HELP: &str = "\
Each template targets the builtin server (target = \"builtin\") and explains its keys in comments:
`volley validate FILE` checks it, `volley run FILE` runs it, `volley run FILE --target URL` points
it at your server. The commands in a template's first lines name the file written.

Exit codes:
  0  the template was written (or the templates listed)
  1  the file could not be written
  2  bad usage: an unknown template, or FILE exists already (init never overwrites)";

pub const COMPLETIONS_AFTER_HELP: &str = "\
Load it in the running shell, or save it where the shell looks at start:
  bash        source <(volley completions bash)
  zsh         volley completions zsh > ~/.zfunc/_volley   (with fpath+=~/.zfunc before compinit)
  fish        volley completions fish > ~/.config/fish/completions/volley.fish
  powershell  volley completions powershell | Out-String | Invoke-Expression

Exit codes:
  0  the script was printed
  1  stdout could not be written";

pub const MAN_AFTER_HELP: &str = "\
Read the page with `volley man | man -l -`. man finds pages in a man1 folder of its search path:
`volley man --dir ~/.local/share/man/man1` installs them there for man-db systems where
~/.local/bin is on PATH (then `man volley-run`); elsewhere add the folder above man1 to MANPATH.

Exit codes:
  0  the page was printed, or the pages written
  1  stdout, the folder or a page could not be written";
