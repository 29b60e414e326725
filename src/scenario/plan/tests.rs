//! The compiler, on scenario texts: what each part compiles to, and that every mistake is an
//! error at the value at fault.

use std::path::PathBuf;

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

pub(super) fn position(err: ScenarioError) -> (usize, usize, String) {
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
fn client_counts_whose_sum_exceeds_64_bits_are_refused_not_wrapped() {
    // Found by the fuzz target `scenario`: the total overflowed (a panic in a debug build; in a
    // release build it wrapped around to a small total, here 999, and the scenario compiled).
    let text = GOOD.replace(
        "[[expect]]",
        "[[group]]\nname = \"h\"\nclients = 18446744073709551615\n\n[[expect]]",
    );
    let (line, column, message) = position(compile(&text).unwrap_err());
    assert_eq!((line, column), (1, 1));
    assert!(
        message.contains("18446744073709552615 users") && message.contains("split it into shards"),
        "{message}"
    );
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
    assert_eq!(
        plan.metric_names(),
        [
            "connect",
            "echo",
            "ack",
            "reconnect",
            "connect_tcp",
            "connect_eio_open",
            "connect_sio_connect",
            "connect_eio_upgrade"
        ]
    );
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
            key: None,
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

#[test]
fn latency_metrics_are_connect_then_the_expects_then_ack_and_reconnect_then_the_phases() {
    let plan = compile(SIO).unwrap();
    assert_eq!(
        plan.metric_names()[..4],
        ["connect", "echo", "ack", "reconnect"]
    );
    assert_eq!((plan.ack_metric, plan.reconnect_metric), (Some(2), Some(3)));
    assert_eq!(plan.connect_phases[0], (ConnectPhase::Tcp, 4));
    let plan = compile(GOOD).unwrap();
    assert_eq!(
        plan.metric_names(),
        ["connect", "echo", "connect_tcp", "connect_upgrade"]
    );
    assert_eq!((plan.ack_metric, plan.reconnect_metric), (None, None));
    assert_eq!(plan.main_metric(), 1, "the progress line shows the expect");
}

#[test]
fn a_plan_has_the_phases_of_connect_its_connections_go_through() {
    let phases = |text: &str| -> Vec<&str> {
        let plan = compile(text).unwrap();
        let names = plan.metric_names();
        // Every phase's metric index names it.
        for (phase, metric) in &plan.connect_phases {
            assert_eq!(names[*metric], phase.metric_name());
        }
        plan.connect_phases
            .iter()
            .map(|(p, _)| p.short_name())
            .collect()
    };
    // The builtin server: plain WebSocket.
    assert_eq!(phases(GOOD), ["tcp", "upgrade"]);
    let wss = GOOD.replace("path = \"/echo\"", "target = \"wss://example.com/echo\"");
    assert_eq!(phases(&wss), ["tcp", "tls", "upgrade"]);
    let sio = |transport: &str, target: &str| {
        SIO.replace("polling-upgrade", transport)
            .replace("http://127.0.0.1:3000/admin", target)
    };
    assert_eq!(
        phases(&sio("websocket", "http://h:1")),
        ["tcp", "upgrade", "eio_open", "sio_connect"]
    );
    assert_eq!(
        phases(&sio("polling", "https://h:1")),
        ["tcp", "tls", "eio_open", "sio_connect"]
    );
    assert_eq!(
        phases(&sio("polling-upgrade", "wss://h:1")),
        ["tcp", "tls", "eio_open", "sio_connect", "eio_upgrade"]
    );
}

#[test]
fn a_phase_the_plan_has_is_a_threshold_and_one_it_lacks_says_when_it_is_measured() {
    let gated = |text: &str, key: &str| {
        compile(&format!("{text}\n[thresholds]\n\"{key}\" = \"< 50ms\"\n")).map(|_| ())
    };
    assert!(gated(GOOD, "connect_upgrade.p99").is_ok());
    assert!(gated(GOOD, "connect_tcp.mean").is_ok());
    let e = gated(GOOD, "connect_tls.p99").unwrap_err().to_string();
    assert!(
        e.contains("`connect_tls` is not measured") && e.contains("wss://"),
        "{e}"
    );
    let e = gated(GOOD, "connect_sio_connect.p99")
        .unwrap_err()
        .to_string();
    assert!(e.contains("Socket.IO"), "{e}");
    let e = gated(SIO, "connect_upgrade.p99").unwrap_err().to_string();
    assert!(e.contains("transport = \"websocket\""), "{e}");
    assert!(gated(SIO, "connect_eio_upgrade.p99").is_ok());
}

#[test]
fn an_expect_cannot_take_a_phase_s_name() {
    let e = compile(&GOOD.replace("[[expect]]", "[[expect]]\nname = \"connect_tcp\""))
        .unwrap_err()
        .to_string();
    assert!(e.contains("a phase of connect"), "{e}");
}

#[test]
fn a_stamp_goes_into_a_table_before_a_string_and_else_in_an_argument_of_its_own() {
    let plan = compile(&SIO.replace(
        "{ event = \"list\", args = [1, 2], rate = \"1/s\" },",
        "{ event = \"list\", args = [1, 2], rate = \"1/s\" },\n  \
         { event = \"obj\", data = { a = 1 }, rate = \"1/s\" },",
    ))
    .unwrap();
    let placements: Vec<Placement> = plan.groups[0].emits.iter().map(|e| e.placement).collect();
    assert_eq!(
        placements,
        [
            Placement::In(StampPlacement::Prefix),
            Placement::Arg,
            Placement::In(StampPlacement::Field),
        ]
    );
    let err =
        compile(&GOOD.replace("rate = \"5/s\"", "rate = \"5/s\", stamp = \"none\"")).unwrap_err();
    assert!(position(err).2.contains("cannot be tracked"));
}

#[test]
fn raw_groups_connect_to_their_path_else_the_targets_else_the_default() {
    let two_groups = |target: &str, first_path: &str| {
        format!(
            "name = \"p\"\ntarget = \"{target}\"\nduration = \"1s\"\n\
             [[group]]\nname = \"a\"\nclients = 1\n{first_path}\n\
             [[group]]\nname = \"b\"\nclients = 1\n"
        )
    };
    let paths = |plan: Plan| -> Vec<String> { plan.groups.into_iter().map(|g| g.path).collect() };
    assert_eq!(
        paths(compile(&two_groups("builtin", "path = \"/broadcast?room=x\"")).unwrap()),
        ["/broadcast?room=x", "/echo"]
    );
    assert_eq!(
        paths(compile(&two_groups("ws://h:1/chat?v=2", "")).unwrap()),
        ["/chat?v=2", "/chat?v=2"]
    );
    assert_eq!(
        paths(compile(&two_groups("ws://h:1", "")).unwrap()),
        ["/", "/"]
    );
}

#[test]
fn names_are_identifiers_used_once() {
    let twice = GOOD.replace(
        "[[expect]]",
        "[[group]]\nname = \"g\"\nclients = 1\n\n[[expect]]",
    );
    let (line, column, message) = position(compile(&twice).unwrap_err());
    assert_eq!((line, column), (12, 8));
    assert!(message.contains("defined twice"), "{message}");
    let (_, _, message) =
        position(compile(&GOOD.replace("name = \"g\"", "name = \"g h\"")).unwrap_err());
    assert!(message.starts_with("group name:"), "{message}");
    let connect = GOOD.replace(
        "event = \"echo\"\n",
        "event = \"echo\"\nname = \"connect\"\n",
    );
    let (_, _, message) = position(compile(&connect).unwrap_err());
    assert!(message.contains("`connect` is already used"), "{message}");
}

#[test]
fn a_value_given_on_the_command_line_is_blamed_on_it_not_on_a_line() {
    let src = source(GOOD);
    let mut scenario = src.parse().unwrap();
    scenario.target = Spanned::new(0..0, "ftp://host".into());
    match Plan::compile(scenario, &src).unwrap_err() {
        ScenarioError::Override { message, .. } => {
            assert!(message.contains("scheme `ftp`"), "{message}")
        }
        other => panic!("expected an override error, got {other}"),
    }
}

#[test]
fn an_empty_scenario_says_what_it_lacks() {
    let err = compile("name = \" \"\nduration = \"1s\"\ngroup = []\n").unwrap_err();
    let message = position(err).2;
    assert!(message.contains("`name` must not be empty"), "{message}");
    let err = compile("name = \"n\"\nduration = \"1s\"\ngroup = []\n").unwrap_err();
    assert!(position(err).2.contains("no [[group]]"));
}

#[test]
fn data_files_given_in_memory_compile_as_files_beside_the_scenario_do() {
    let text = format!(
        "{GOOD}\n[[data]]\nname = \"users\"\nfile = \"s.users.csv\"\n\n[[group]]\nname = \"h\"\n\
         clients = 1\nemit = [{{ event = \"echo\", data = {{ p = \"{{{{users.password}}}}\" }}, rate = \"5/s\" }}]\n"
    );
    let src = source(&text);
    let files = [("s.users.csv", "user,password\nann,pw\n")];
    let plan = Plan::compile_with(src.parse().unwrap(), &src, DataFiles::Memory(&files)).unwrap();
    assert_eq!(plan.data[0].columns(), ["user", "password"]);
    assert!(!plan.secrets.is_empty(), "the password column is secret");
    let err = Plan::compile_with(src.parse().unwrap(), &src, DataFiles::Memory(&[])).unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot read data file s.users.csv"),
        "{err}"
    );
}
