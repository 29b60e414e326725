//! The scenario file: reading it, pointing at the exact line and column of anything wrong, applying
//! command-line overrides, and compiling it into a [`Plan`] the runner executes.

pub mod model;
mod plan;
pub mod template;
pub mod threshold;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use model::{Scenario, StampMode};
pub use plan::{
    EmitPlan, ExpectPlan, GroupPlan, Message, Origin, Placement, Plan, Protocol, ReconnectPlan,
    StepPlan, Target, parse_target,
};

use crate::units::{Ramp, Rate};

/// A scenario that cannot be read or does not make sense.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: {message}", path.display())]
    Override { path: PathBuf, message: String },
}

/// Values from the command line that replace the file's.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub target: Option<String>,
    /// Total clients, shared among the groups in proportion to their sizes.
    pub clients: Option<u64>,
    pub duration: Option<Duration>,
    /// Per-client rate for every emit.
    pub rate: Option<Rate>,
    pub ramp: Option<Ramp>,
    pub seed: Option<u64>,
}

/// A scenario file's text with its name, kept to turn byte offsets into line and column.
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    pub fn read(path: &Path) -> Result<Source, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Source {
            path: path.to_path_buf(),
            text,
        })
    }

    /// An error at a byte range of the file (line and column are 1-based, columns count characters).
    pub fn error_at(&self, span: Range<usize>, message: impl Into<String>) -> ScenarioError {
        let offset = span.start.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        ScenarioError::Invalid {
            path: self.path.clone(),
            line,
            column,
            message: message.into(),
        }
    }

    /// Parses the TOML into the scenario model.
    pub fn parse(&self) -> Result<Scenario, ScenarioError> {
        toml::from_str::<Scenario>(&self.text).map_err(|e| {
            let message = e.message().trim_end().to_string();
            match e.span() {
                Some(span) => self.error_at(span, message),
                None => self.error_at(0..0, message),
            }
        })
    }
}

/// Reads, overrides and compiles a scenario file.
pub fn load(path: &Path, overrides: &Overrides) -> Result<Plan, ScenarioError> {
    let source = Source::read(path)?;
    let mut scenario = source.parse()?;
    apply_overrides(&mut scenario, overrides, &source.path)?;
    Plan::compile(scenario, &source)
}

fn apply_overrides(
    scenario: &mut Scenario,
    overrides: &Overrides,
    path: &Path,
) -> Result<(), ScenarioError> {
    if let Some(target) = &overrides.target {
        scenario.target = toml::Spanned::new(0..0, target.clone());
    }
    if let Some(duration) = overrides.duration {
        scenario.duration.0 = duration;
    }
    if let Some(ramp) = overrides.ramp {
        scenario.ramp = ramp;
    }
    if let Some(seed) = overrides.seed {
        scenario.seed = Some(seed);
    }
    if let Some(rate) = overrides.rate {
        for emit in scenario.groups.iter_mut().flat_map(|g| g.emit.iter_mut()) {
            emit.rate.0 = rate;
        }
    }
    if let Some(total) = overrides.clients {
        let sizes: Vec<u64> = scenario.groups.iter().map(|g| g.clients.0).collect();
        let shared = share(total, &sizes).ok_or_else(|| ScenarioError::Override {
            path: path.to_path_buf(),
            message: format!(
                "--clients {total} cannot be shared among {} groups that have no clients",
                sizes.len()
            ),
        })?;
        for (group, n) in scenario.groups.iter_mut().zip(shared) {
            group.clients.0 = n;
        }
    }
    Ok(())
}

/// Shares `total` among groups in proportion to `sizes` (largest remainder), summing to `total`.
fn share(total: u64, sizes: &[u64]) -> Option<Vec<u64>> {
    let sum: u128 = sizes.iter().map(|&s| s as u128).sum();
    if sum == 0 {
        return None;
    }
    let mut out: Vec<u64> = sizes
        .iter()
        .map(|&s| (s as u128 * total as u128 / sum) as u64)
        .collect();
    let mut remainders: Vec<(u128, usize)> = sizes
        .iter()
        .enumerate()
        .map(|(i, &s)| ((s as u128 * total as u128) % sum, i))
        .collect();
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let missing = total - out.iter().sum::<u64>();
    for &(_, i) in remainders.iter().take(missing as usize) {
        out[i] += 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::pointer::JsonPointer;
    use crate::scenario::template::StampPlacement;

    fn source(text: &str) -> Source {
        Source {
            path: PathBuf::from("s.toml"),
            text: text.to_string(),
        }
    }

    fn compile(text: &str) -> Result<Plan, ScenarioError> {
        let src = source(text);
        Plan::compile(src.parse()?, &src)
    }

    const GOOD: &str = r#"
name = "echo"
duration = "2s"
path = "/echo"

[[group]]
name = "g"
clients = "1k"
emit = [{ event = "echo", data = { n = "{{seq}}" }, rate = "5/s" }]

[[expect]]
event = "echo"
"#;

    fn position(err: ScenarioError) -> (usize, usize, String) {
        match err {
            ScenarioError::Invalid {
                line,
                column,
                message,
                ..
            } => (line, column, message),
            other => panic!("expected a positioned error, got {other}"),
        }
    }

    #[test]
    fn a_good_scenario_compiles() {
        let plan = compile(GOOD).unwrap();
        assert_eq!(plan.total_clients(), 1000);
        assert_eq!(plan.expects[0].name, "echo");
        assert_eq!(plan.groups[0].emits[0].stream, Some(0));
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let text = GOOD.replace("path = \"/echo\"", "paht = \"/echo\"");
        let (line, column, message) = position(compile(&text).unwrap_err());
        assert_eq!((line, column), (4, 1));
        assert!(message.contains("paht"), "{message}");
    }

    #[test]
    fn bad_duration_points_at_the_value() {
        let text = GOOD.replace("\"2s\"", "\"2 seconds\"");
        let (line, column, message) = position(compile(&text).unwrap_err());
        assert_eq!((line, column), (3, 12));
        assert!(message.contains("not a duration"), "{message}");
    }

    #[test]
    fn wrong_type_points_at_the_value() {
        let text = GOOD.replace("clients = \"1k\"", "clients = true");
        let (line, column, _) = position(compile(&text).unwrap_err());
        assert_eq!((line, column), (8, 11));
    }

    #[test]
    fn unknown_placeholder_points_at_the_data() {
        let text = GOOD.replace("{{seq}}", "{{sequence}}");
        let (line, _, message) = position(compile(&text).unwrap_err());
        assert_eq!(line, 9);
        assert!(message.contains("{{sequence}}"), "{message}");
    }

    #[test]
    fn expect_of_an_event_nobody_emits_is_an_error() {
        let text = GOOD.replace("event = \"echo\"\n", "event = \"ehco\"\n");
        let (line, column, message) = position(compile(&text).unwrap_err());
        assert_eq!((line, column), (12, 9));
        assert!(message.contains("ehco"), "{message}");
    }

    #[test]
    fn a_path_without_slash_points_at_the_path() {
        let text = GOOD.replace("path = \"/echo\"", "path = \"echo\"");
        let (line, column, message) = position(compile(&text).unwrap_err());
        assert_eq!((line, column), (4, 8));
        assert!(message.contains("must start with `/`"), "{message}");
    }

    const SIO: &str = r#"
name = "sio"
target = "http://127.0.0.1:3000/admin"
protocol = "socketio"
duration = "2s"
headers = { Cookie = "session=abc" }

[socketio]
transport = "polling-upgrade"
query = { token = "a b&c", v = 2 }

[reconnect]
backoff = "100ms..5s"

[[group]]
name = "g"
clients = 10
auth = { user = "u{{client}}" }
emit = [
  { event = "echo", data = "hi", rate = "5/s", ack = true },
  { event = "list", args = [1, 2], rate = "1/s" },
]

[[expect]]
event = "echo"
"#;

    #[test]
    fn a_socketio_scenario_compiles() {
        use crate::protocol::engineio::Version;
        use crate::scenario::model::Transport;
        let plan = compile(SIO).unwrap();
        let sio = plan.socketio().unwrap();
        assert_eq!(sio.engine.transport, Transport::PollingUpgrade);
        assert_eq!(sio.engine.version, Version::V4);
        assert_eq!(sio.engine.query, "&token=a%20b%26c&v=2");
        assert_eq!(sio.engine.path, "/socket.io/");
        // The URL's path is the namespace, as the official client reads it.
        assert_eq!(plan.groups[0].namespace, "/admin");
        assert_eq!(plan.headers[0].0.as_str(), "cookie");
        let emits = &plan.groups[0].emits;
        assert!(emits[0].ack);
        assert_eq!(emits[0].placement, Placement::In(StampPlacement::Prefix));
        assert_eq!(emits[1].message.args.len(), 2);
        assert_eq!(plan.metric_names(), ["connect", "echo", "ack", "reconnect"]);
        let reconnect = plan.reconnect.unwrap();
        assert_eq!(reconnect.initial, Duration::from_millis(100));
        assert_eq!(reconnect.max, Duration::from_secs(5));
    }

    #[test]
    fn a_socketio_url_splits_into_namespace_and_query() {
        let text = SIO
            .replace("/admin\"", "/admin?token=abc\"")
            .replace("[socketio]", "[socketio]\npath = \"/rt\"");
        let plan = compile(&text).unwrap();
        assert_eq!(plan.groups[0].namespace, "/admin");
        let sio = plan.socketio().unwrap();
        assert_eq!(sio.engine.query, "&token=abc&token=a%20b%26c&v=2");
        assert_eq!(sio.engine.path, "/rt/");
        let root = compile(&SIO.replace("3000/admin\"", "3000/?x=1\"")).unwrap();
        assert_eq!(root.groups[0].namespace, "/");
        assert_eq!(
            root.socketio().unwrap().engine.query,
            "&x=1&token=a%20b%26c&v=2"
        );
    }

    #[test]
    fn socketio_mistakes_point_at_the_value() {
        let cases = [
            (
                SIO.replace("protocol = \"socketio\"", "protocol = \"ws\"")
                    .replace("http://", "ws://"),
                "needs protocol",
            ),
            (SIO.replace("[socketio]", "[socketio]\neio = 5"), "eio = 5"),
            (
                SIO.replace("[socketio]", "[socketio]\neio = 3"),
                "no CONNECT auth",
            ),
            (SIO.replace("100ms..5s", "5s..1s"), "FIRST..LONGEST"),
            (SIO.replace("Cookie", "Upgrade"), "set by volley"),
            (
                SIO.replace("data = \"hi\"", "data = \"hi\", args = [1]"),
                "not both",
            ),
            (
                SIO.replace("rate = \"1/s\"", "rate = \"1/s\", stamp = \"field\""),
                "table",
            ),
            (
                SIO.replace("clients = 10", "clients = 10\nnamespace = \"admin\""),
                "must start with `/`",
            ),
            (
                GOOD.replace("rate = \"5/s\"", "rate = \"5/s\", ack = true"),
                "acknowledgements",
            ),
            (
                GOOD.replace("data = { n", "args = [1], data = { n"),
                "`args` is for Socket.IO",
            ),
        ];
        for (text, expected) in cases {
            let (line, _, message) = position(compile(&text).unwrap_err());
            assert!(line > 1, "{expected}: {message}");
            assert!(message.contains(expected), "{expected}: {message}");
        }
    }

    const FANOUT: &str = r#"
name = "chat"
duration = "2s"

[[group]]
name = "listeners"
clients = 10
path = "/broadcast?room=a"

[[group]]
name = "talkers"
clients = 2
path = "/broadcast?room=a"
emit = [{ event = "chat", data = { text = "hi" }, rate = "5/s" }]

[[expect]]
name = "fanout"
event = "chat"
from = "talkers"
to = ["listeners", "talkers"]

[[expect]]
name = "ticks"
event = "tick"
from = "server"
to = ["listeners"]
seq = "/seq"
timestamp = "/ts"
timestamp_unit = "us"
"#;

    #[test]
    fn fanout_and_server_expects_compile() {
        let plan = compile(FANOUT).unwrap();
        assert_eq!(plan.expects[0].origin, Origin::Group(1));
        assert_eq!(plan.expects[0].to, [0, 1]);
        assert!(plan.expects[0].received_by(0) && plan.expects[0].received_by(1));
        assert_eq!(
            plan.expects[1].origin,
            Origin::Server {
                seq: JsonPointer::parse("/seq").unwrap(),
                timestamp: JsonPointer::parse("/ts"),
                timestamp_us: 1,
                event_prefix: None
            }
        );
        assert!(!plan.expects[1].received_by(1));
        assert_eq!(plan.groups[1].emits[0].stream, Some(0));
        // `to` defaults to every group.
        let all = compile(&FANOUT.replace("to = [\"listeners\", \"talkers\"]\n", "")).unwrap();
        assert_eq!(all.expects[0].to, [0, 1]);
    }

    #[test]
    fn socketio_server_expects_are_rooted_at_the_first_argument_of_their_event() {
        let sio = format!("protocol = \"socketio\"\n{FANOUT}")
            .replace("path = \"/broadcast?room=a\"\n", "")
            .replace("event = \"tick\"", "event = \"t\\\"ick\\\\\"");
        let plan = compile(&sio).unwrap();
        let Origin::Server {
            seq, event_prefix, ..
        } = &plan.expects[1].origin
        else {
            panic!("a server expect");
        };
        assert_eq!(plan.expects[1].event, "t\"ick\\");
        assert_eq!(event_prefix.as_deref(), Some(&br#"["t\"ick\\""#[..]));
        assert_eq!(seq, &JsonPointer::parse("/1/seq").unwrap());
    }

    #[test]
    fn fanout_mistakes_point_at_the_value() {
        let cases = [
            (
                FANOUT.replace("from = \"talkers\"", "from = \"talker\""),
                "no group `talker`",
            ),
            (
                FANOUT.replace("\"listeners\", \"talkers\"]", "\"listener\"]"),
                "no group `listener`",
            ),
            (FANOUT.replace("seq = \"/seq\"\n", ""), "needs `seq`"),
            (FANOUT.replace("\"/seq\"", "\"seq\""), "not a JSON pointer"),
            (FANOUT.replace("\"us\"", "\"s\""), "timestamp_unit"),
            (
                FANOUT.replace("from = \"talkers\"\n", "from = \"talkers\"\nseq = \"/n\"\n"),
                "are for from = \"server\"",
            ),
            (
                FANOUT.replace("from = \"talkers\"", "from = \"listeners\""),
                "no group emits",
            ),
            (
                FANOUT.replace(
                    "from = \"talkers\"\nto = [\"listeners\", \"talkers\"]",
                    "from = \"self\"\nto = [\"talkers\"]",
                ),
                "an echo goes back to its sender",
            ),
        ];
        for (text, expected) in cases {
            let (line, _, message) = position(compile(&text).unwrap_err());
            assert!(line > 1, "{expected}: {message}");
            assert!(message.contains(expected), "{expected}: {message}");
        }
    }

    #[test]
    fn clients_override_is_shared_in_proportion() {
        assert_eq!(share(10, &[1000, 10]).unwrap(), vec![10, 0]);
        assert_eq!(share(101, &[100, 1]).unwrap(), vec![100, 1]);
        assert_eq!(share(7, &[1, 1, 1]).unwrap(), vec![3, 2, 2]);
        assert!(share(5, &[0, 0]).is_none());
    }

    #[test]
    fn thresholds_compile_in_file_order_with_their_options() {
        let text = format!(
            "{GOOD}\n[thresholds]\n\"echo.p99\" = \"< 50ms\"\n\"echo.lost\" = {{ limit = \"== 0\", \
             abort = true, abort_after = \"5s\" }}\n\"errors.rate\" = [\"< 0.1%\", \">= 0%\"]\n"
        );
        let plan = compile(&text).unwrap();
        let texts: Vec<&str> = plan
            .thresholds
            .iter()
            .map(|g| g.threshold.text.as_str())
            .collect();
        assert_eq!(
            texts,
            [
                "echo.p99 < 50ms",
                "echo.lost == 0",
                "errors.rate < 0.1%",
                "errors.rate >= 0%"
            ]
        );
        assert!(plan.thresholds[1].abort);
        assert_eq!(plan.thresholds[1].abort_after, Duration::from_secs(5));
        assert!(!plan.thresholds[0].abort);
    }

    #[test]
    fn a_bad_threshold_names_its_line_and_column() {
        let at = |extra: &str| {
            let text = format!("{GOOD}\n[thresholds]\n{extra}\n");
            let line = text.lines().count();
            let (l, c, m) = position(compile(&text).unwrap_err());
            assert_eq!(l, line, "{m}");
            (c, m)
        };
        // The value's own column: `"< 5 parsecs"` starts at column 14, its number at 17.
        let (c, m) = at("\"echo.p99\" = \"< 5 parsecs\"");
        assert_eq!(c, 17, "{m}");
        let (c, m) = at("\"echo.p99\" = \"< 1%\"");
        assert!(m.contains("a duration"), "{m}");
        assert_eq!(c, 17);
        // Into the key: the space in `echo p99` is column 6 (after the quote).
        let (c, m) = at("\"echo p99\" = \"< 1ms\"");
        assert_eq!(c, 6, "{m}");
        // An unknown metric points at its key.
        let (c, m) = at("\"fanout.p99\" = \"< 5ms\"");
        assert_eq!(c, 1);
        assert!(m.contains("no metric or counter named `fanout`"), "{m}");
        let (_, m) = at("\"echo\" = \"< 5ms\"");
        assert!(m.contains("`echo.p99`"), "{m}");
        let (_, m) = at("\"echo\" = \"< 5\"");
        assert!(m.contains("name a statistic"), "{m}");
        let (_, m) = at("\"echo.p99\" = 5");
        assert!(m.contains("\"OP VALUE\""), "{m}");
        let (_, m) = at("\"echo.p99\" = { limit = \"< 5ms\", abrt = true }");
        assert!(m.contains("unknown key `abrt`"), "{m}");
        let (_, m) = at("\"echo.p99\" = { abort = true }");
        assert!(m.contains("needs `limit`"), "{m}");
        let (_, m) = at("\"echo.p99\" = \"50ms\"");
        assert!(m.contains("OP VALUE"), "{m}");
    }
}
