//! The conversation parts of the compiler (data files, captured values, steps, handlers,
//! arrivals): what they compile to, and every mistake as an error at the value at fault.

use super::tests::position as at;
use super::*;

/// A scenario file in a temporary folder beside a `users.csv` of `rows` users.
struct Folder {
    dir: tempfile::TempDir,
}

impl Folder {
    fn new(rows: usize) -> Folder {
        let dir = tempfile::tempdir().unwrap();
        let mut csv = String::from("user,password\n");
        for i in 0..rows {
            csv.push_str(&format!("user{i},pw{i}\n"));
        }
        std::fs::write(dir.path().join("users.csv"), csv).unwrap();
        Folder { dir }
    }

    fn compile(&self, text: &str) -> Result<Plan, ScenarioError> {
        let source = Source {
            path: self.dir.path().join("s.toml"),
            text: text.to_string(),
        };
        Plan::compile(source.parse()?, &source)
    }
}

const LOGIN: &str = r#"name = "login"
target = "ws://127.0.0.1:9"
protocol = "socketio"
duration = "1s"

[[data]]
name = "users"
file = "users.csv"
pick = "unique"

[socketio]
auth = { token = "{{token}}" }

[[group]]
name = "g"
clients = 3
before_connect = [
  { http = "POST /login", name = "login", json = { user = "{{users.user}}", password = "{{users.password}}" }, capture = { token = "/token" } },
]
on_connect = [
  { emit = "subscribe", data = { channel = "c0" }, ack = true, capture = { next = "/next" } },
  { wait = "100ms..300ms" },
  { wait_for = "welcome", timeout = "2s", capture = { room = "/room" } },
]
emit = [{ event = "say", data = { room = "{{room}}", next = "{{next}}" }, rate = "1/s" }]

[[group.on]]
event = "message"
from = "server"
emit = "received"
data = { id = "{{/id}}" }
"#;

#[test]
fn a_conversation_compiles_into_steps_handlers_and_metrics() {
    let folder = Folder::new(3);
    let plan = folder.compile(LOGIN).unwrap();
    assert_eq!(plan.vars, ["token", "next", "room"]);
    assert_eq!(plan.data[0].rows(), 3);
    let group = &plan.groups[0];
    assert_eq!(group.before_connect.len(), 1);
    assert_eq!(group.on_connect.len(), 3);
    assert_eq!(group.on.len(), 1);
    assert_eq!(group.first_user, [Some(0)]);
    // `login` and the wait_for's metric come after `connect` and `ack`.
    assert_eq!(
        plan.metric_names(),
        [
            "connect",
            "ack",
            "login",
            "welcome",
            "connect_tcp",
            "connect_upgrade",
            "connect_eio_open",
            "connect_sio_connect"
        ]
    );
    let Action::Http(http) = &group.before_connect[0].action else {
        panic!("an HTTP step");
    };
    assert_eq!((http.method.as_str(), http.metric), ("POST", Some(2)));
    assert_eq!(http.status, StatusCheck::Success);
    let Action::WaitFor { metric, .. } = &group.on_connect[2].action else {
        panic!("a wait_for step");
    };
    assert_eq!(*metric, 3);
    assert!(plan.has_http_steps());
}

#[test]
fn handlers_match_events_and_fields() {
    let folder = Folder::new(3);
    let plan = folder.compile(LOGIN).unwrap();
    let matcher = &plan.groups[0].on[0].matcher;
    assert!(matcher.matches(br#"["message",{"id":1}]"#));
    assert!(!matcher.matches(br#"["messages",{"id":1}]"#));
    assert!(!matcher.matches(br#"["welcome",{}]"#));
    let ws = r#"name = "pong"
target = "ws://127.0.0.1:9"
duration = "1s"
[[group]]
name = "g"
clients = 1
[[group.on]]
match = '/type == "ping"'
emit = "pong"
data = { type = "pong", n = "{{/n}}" }
"#;
    let plan = folder.compile(ws).unwrap();
    let matcher = &plan.groups[0].on[0].matcher;
    assert!(matcher.matches(br#"{"type":"ping","n":3}"#));
    assert!(!matcher.matches(br#"{"type":"pong","n":3}"#));
    assert!(!matcher.matches(b"ping"));
}

/// The scenario with `from` replaced by `to` (which must be there).
fn with(from: &str, to: &str) -> String {
    assert!(LOGIN.contains(from), "{from}");
    LOGIN.replacen(from, to, 1)
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn unknown_data_sets_and_columns_name_the_known_ones() {
    let folder = Folder::new(3);
    let text = with("{{users.password}}", "{{people.password}}");
    let (line, _, message) = at(folder.compile(&text).unwrap_err());
    assert_eq!(line, line_of(&text, "people.password"));
    assert!(
        message.contains("no data set `people` (data sets: users)"),
        "{message}"
    );
    let text = with("{{users.password}}", "{{users.pass}}");
    let (_, _, message) = at(folder.compile(&text).unwrap_err());
    assert!(
        message.contains("no column `pass` (columns: user, password)"),
        "{message}"
    );
}

#[test]
fn a_value_used_before_a_step_captures_it_is_an_error() {
    let folder = Folder::new(3);
    // `next` is captured by the first on_connect step: the login cannot use it.
    let text = with(
        "password = \"{{users.password}}\"",
        "password = \"{{next}}\"",
    );
    let (line, column, message) = at(folder.compile(&text).unwrap_err());
    assert_eq!((line, column), (line_of(&text, "POST /login"), 3));
    assert!(
        message.contains("`{{next}}` is used before an earlier step captures it"),
        "{message}"
    );
    // Connecting needs the token: a token captured only after connecting is too late.
    let text = with(
        "capture = { token = \"/token\" }",
        "capture = { other = \"/token\" }",
    )
    .replace(
        "capture = { next = \"/next\" }",
        "capture = { next = \"/next\", token = \"/t\" }",
    );
    let (_, _, message) = at(folder.compile(&text).unwrap_err());
    assert!(
        message.contains("`{{token}}` is used before a before_connect step captures it"),
        "{message}"
    );
}

#[test]
fn missing_data_files_and_bad_pointers_are_named() {
    let folder = Folder::new(3);
    let text = with("file = \"users.csv\"", "file = \"nobody.csv\"");
    let (line, column, message) = at(folder.compile(&text).unwrap_err());
    assert_eq!((line, column), (line_of(&text, "nobody.csv"), 8));
    assert!(
        message.contains("nobody.csv") && message.contains("cannot read"),
        "{message}"
    );
    let text = with(
        "capture = { token = \"/token\" }",
        "capture = { token = \"token\" }",
    );
    let (line, _, message) = at(folder.compile(&text).unwrap_err());
    assert_eq!(line, line_of(&text, "POST /login"));
    assert!(
        message.contains("`token` is not a JSON pointer"),
        "{message}"
    );
    let text = with("data = { id = \"{{/id}}\" }", "data = { id = \"{{id}}\" }");
    let (_, _, message) = at(folder.compile(&text).unwrap_err());
    assert!(
        message.contains("unknown placeholder `{{id}}`"),
        "{message}"
    );
}

#[test]
fn a_reply_to_an_event_nobody_sends_is_an_error() {
    let folder = Folder::new(3);
    let text = with("from = \"server\"\n", "");
    let (line, column, message) = at(folder.compile(&text).unwrap_err());
    assert_eq!((line, column), (line_of(&text, "event = \"message\""), 9));
    assert!(message.contains("nobody sends `message`"), "{message}");
}

#[test]
fn unique_rows_must_cover_every_user() {
    let folder = Folder::new(2);
    let (line, _, message) = at(folder.compile(LOGIN).unwrap_err());
    assert_eq!(line, line_of(LOGIN, "name = \"users\""));
    assert!(
        message.contains("has 2 rows but 3 users take one each"),
        "{message}"
    );
    // Sequential picks wrap around instead.
    let text = with("pick = \"unique\"", "pick = \"sequential\"");
    assert!(folder.compile(&text).is_ok());
}

#[test]
fn arrivals_take_a_lifetime_and_not_clients() {
    let folder = Folder::new(500);
    let text = with("clients = 3", "clients = 3\narrivals = \"10/s\"");
    let (_, _, message) = at(folder.compile(&text).unwrap_err());
    assert!(message.contains("either `clients`"), "{message}");
    let text = with("clients = 3", "arrivals = \"10/s\"");
    let (_, _, message) = at(folder.compile(&text).unwrap_err());
    assert!(message.contains("need a `lifetime`"), "{message}");
    let text = with("clients = 3", "arrivals = \"10/s\"\nlifetime = \"2s..4s\"");
    let plan = folder.compile(&text).unwrap();
    // Ten a second over the one-second run; at most 4 s × 10/s (+1) at once.
    let group = &plan.groups[0];
    assert_eq!(group.clients, 10);
    assert_eq!(group.peak_clients(), 10);
    assert_eq!(plan.fixed_clients(), 0);
}

#[test]
fn steps_say_what_they_are_for() {
    let folder = Folder::new(3);
    let cases = [
        (
            "{ wait = \"100ms..300ms\" }",
            "{ wait = \"1s\", emit = \"x\" }",
            "each step is one of",
        ),
        (
            "{ wait = \"100ms..300ms\" }",
            "{ wait = \"3s..1s\" }",
            "not a duration or a range",
        ),
        (
            "{ wait = \"100ms..300ms\" }",
            "{ emit = \"x\", retries = 2 }",
            "add ack = true",
        ),
        (
            "{ wait = \"100ms..300ms\" }",
            "{ wait_for = \"x\", on_failure = \"maybe\" }",
            "\"stop\" or \"continue\"",
        ),
        (
            "http = \"POST /login\"",
            "http = \"login\"",
            "write the method and the path",
        ),
        ("status = 200", "status = \"ok\"", "status code"),
        (
            "{ emit = \"subscribe\"",
            "{ http = \"GET /x\", json = 5 }, { emit = \"subscribe\"",
            "`json` is a table",
        ),
    ];
    let mut login = LOGIN.to_string();
    login = login.replace(
        "capture = { token = \"/token\" } },",
        "capture = { token = \"/token\" }, status = 200 },",
    );
    for (from, to, wanted) in cases {
        assert!(login.contains(from), "{from}");
        let text = login.replacen(from, to, 1);
        let err = folder.compile(&text).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(wanted), "{to}: {message}");
        assert!(message.starts_with(&format!("{}:", folder.dir.path().join("s.toml").display())));
    }
    let before = with(
        "before_connect = [\n",
        "before_connect = [\n  { wait = \"1s\" },\n",
    );
    let (_, _, message) = at(folder.compile(&before).unwrap_err());
    assert!(
        message.contains("before_connect steps are HTTP steps"),
        "{message}"
    );
}

#[test]
fn a_step_cannot_take_a_phase_s_name() {
    let folder = Folder::new(3);
    let text = LOGIN.replace("name = \"login\", json", "name = \"connect_tls\", json");
    let (_, _, m) = at(folder.compile(&text).unwrap_err());
    assert!(
        m.contains("`connect_tls` is already the name of another metric"),
        "{m}"
    );
}

#[test]
fn secret_values_are_captures_and_columns_with_secret_names_and_those_listed() {
    let folder = Folder::new(3);
    let plan = folder.compile(LOGIN).unwrap();
    // `token` and `users.password` by their names; `next`, `room`, `users.user` are not secret.
    assert_eq!(plan.secrets.vars, [0]);
    assert_eq!(plan.secrets.columns, [(0, 1)]);
    let listed = LOGIN.replace(
        "duration = \"1s\"\n",
        "duration = \"1s\"\nsecrets = [\"room\", \"users.user\"]\n",
    );
    let plan = folder.compile(&listed).unwrap();
    assert_eq!(plan.secrets.vars, [0, 2]);
    assert_eq!(plan.secrets.columns, [(0, 0), (0, 1)]);

    let mut user = crate::scenario::template::UserValues {
        rows: vec![2],
        vars: vec![Some("tok-2".into()), Some("n-1".into()), None],
    };
    let held: Vec<&str> = plan.user_secrets(&user).collect();
    assert_eq!(held, ["tok-2", "user2", "pw2"]);
    user.vars[2] = Some("room-9".into());
    let held: Vec<&str> = plan.user_secrets(&user).collect();
    assert_eq!(held, ["tok-2", "room-9", "user2", "pw2"]);
}

#[test]
fn a_secrets_entry_that_names_no_value_is_an_error_listing_those_there_are() {
    let folder = Folder::new(3);
    let wrong = LOGIN.replace(
        "duration = \"1s\"\n",
        "duration = \"1s\"\nsecrets = [\"users.pin\"]\n",
    );
    let (line, column, message) = at(folder.compile(&wrong).unwrap_err());
    assert_eq!((line, column), (5, 12));
    assert_eq!(
        message,
        "secrets: `users.pin` is neither a captured value nor a data column (SET.COLUMN); the scenario has: token, next, room, users.user, users.password"
    );
}
