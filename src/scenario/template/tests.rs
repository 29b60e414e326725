use super::*;

fn stamp() -> Stamp {
    Stamp {
        run: 1,
        stream: 0,
        client: 7,
        seq: 3,
        origin_ns: 255,
    }
}

fn value(toml_value: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("data = {toml_value}"))
        .unwrap()
        .remove("data")
        .unwrap()
}

fn basic() -> Fill<'static> {
    Fill::basic(7, 3, "talkers")
}

fn users() -> Arc<DataSet> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.csv");
    std::fs::write(&path, "user,password\nann,p\"w1\nbob,pw2\n").unwrap();
    Arc::new(DataSet::load("users", &path).unwrap())
}

#[test]
fn text_placeholders_are_filled() {
    let t = Template::text("hi {{client}} #{{ seq }} from {{group}}", &Scope::default()).unwrap();
    assert_eq!(t.render(&basic(), None), "hi 7 #3 from talkers");
}

#[test]
fn tables_become_json_with_the_stamp_first() {
    let t = Template::compile(
        &value(r#"{ text = "hi {{client}}", n = 1 }"#),
        &Scope::default(),
    )
    .unwrap();
    let out = t.render(&basic(), Some((stamp(), StampPlacement::Field)));
    assert_eq!(out, r#"{"_vly":"vly:1.0.7.3.ff;","text":"hi 7","n":1}"#);
    let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(parsed["n"], 1);
    assert!(out.len() <= t.capacity("talkers", true));
    assert_eq!(t.render(&basic(), None), r#"{"text":"hi 7","n":1}"#);
}

#[test]
fn empty_objects_and_prefixes_stay_well_formed() {
    let t = Template::compile(&value("{}"), &Scope::default()).unwrap();
    assert_eq!(
        t.render(&basic(), Some((stamp(), StampPlacement::Field))),
        r#"{"_vly":"vly:1.0.7.3.ff;"}"#
    );
    let t = Template::text("ping", &Scope::default()).unwrap();
    assert_eq!(
        t.render(&basic(), Some((stamp(), StampPlacement::Prefix))),
        "vly:1.0.7.3.ff;ping"
    );
}

#[test]
fn socketio_arguments_are_json_with_the_stamp_inside_strings() {
    let scope = Scope::default();
    let arg = Template::compile_arg(&value(r#""hi \"{{client}}\"""#), &scope).unwrap();
    assert_eq!(arg.shape(), Shape::JsonString);
    assert_eq!(arg.render(&basic(), None), r#""hi \"7\"""#);
    let out = arg.render(&basic(), Some((stamp(), StampPlacement::Prefix)));
    assert_eq!(out, r#""vly:1.0.7.3.ff;hi \"7\"""#);
    assert_eq!(
        serde_json::from_str::<String>(&out).unwrap(),
        "vly:1.0.7.3.ff;hi \"7\""
    );
    let number = Template::compile_arg(&toml::Value::Integer(5), &scope).unwrap();
    assert_eq!(
        (number.shape(), number.render(&basic(), None).as_str()),
        (Shape::Json, "5")
    );
}

#[test]
fn data_columns_and_captured_values_are_escaped_inside_json() {
    let data = [users()];
    let vars = ["token".to_string()];
    let scope = Scope {
        data: &data,
        vars: &vars,
        event: None,
    };
    let t = Template::compile(
        &value(r#"{ user = "{{users.user}}", password = "{{users.password}}", auth = "Bearer {{token}}" }"#),
        &scope,
    )
    .unwrap();
    assert_eq!(t.vars().collect::<Vec<_>>(), vec![0]);
    let user = UserValues {
        rows: vec![0],
        vars: vec![Some("t\\1".into())],
    };
    let fill = Fill {
        data: &data,
        user: &user,
        ..basic()
    };
    let out = t.render(&fill, None);
    let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(parsed["password"], "p\"w1");
    assert_eq!(parsed["auth"], "Bearer t\\1");
    // Plain text is not escaped; an uncaptured value renders as nothing.
    let text = Template::text("{{users.password}}:{{token}}", &scope).unwrap();
    let nothing = UserValues {
        rows: vec![1],
        vars: vec![None],
    };
    let fill = Fill {
        data: &data,
        user: &nothing,
        ..basic()
    };
    assert_eq!(text.render(&fill, None), "pw2:");
}

#[test]
fn replies_copy_values_of_the_received_event() {
    let scope = Scope {
        event: Some(EventShape::SocketIoArgs),
        ..Scope::default()
    };
    let t = Template::compile(
        &value(r#"{ id = "{{/id}}", text = "got {{/id}} from {{/from}}", whole = "{{/meta}}" }"#),
        &scope,
    )
    .unwrap();
    assert!(t.reads_event());
    let event = br#"["message",{"id":17,"from":"a\"b","meta":{"k":[1]}}]"#;
    let fill = Fill {
        event: Some(event),
        ..basic()
    };
    let out = t.render(&fill, None);
    let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        parsed["id"], 17,
        "a whole-string pointer keeps the type: {out}"
    );
    assert_eq!(parsed["text"], "got 17 from a\"b");
    assert_eq!(parsed["whole"]["k"][0], 1);
    // Missing values: null where the type is kept, nothing inside text.
    let fill = Fill {
        event: Some(br#"["message",{}]"#),
        ..basic()
    };
    let parsed: serde_json::Value = serde_json::from_str(&t.render(&fill, None)).unwrap();
    assert_eq!(
        (parsed["id"].is_null(), &parsed["text"]),
        (true, &"got  from ".into())
    );
    // After an escaped quote the pointer is inside the string: its value stays text.
    let quoted = Template::compile(&value(r#"{ text = 'x"{{/id}}' }"#), &scope).unwrap();
    let out = quoted.render(
        &Fill {
            event: Some(event),
            ..basic()
        },
        None,
    );
    let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(parsed["text"], "x\"17", "{out}");
    // A whole Socket.IO argument that is one pointer, and a raw WebSocket message.
    let arg = Template::compile_arg(&value(r#""{{/id}}""#), &scope).unwrap();
    assert_eq!(
        arg.render(
            &Fill {
                event: Some(event),
                ..basic()
            },
            None
        ),
        "17"
    );
    let ws = Scope {
        event: Some(EventShape::Message),
        ..Scope::default()
    };
    let pong = Template::text("pong {{/n}}", &ws).unwrap();
    let fill = Fill {
        event: Some(br#"{"type":"ping","n":"x\"y"}"#),
        ..basic()
    };
    assert_eq!(pong.render(&fill, None), "pong x\"y");
}

#[test]
fn a_placeholder_that_is_a_whole_key_stays_a_string() {
    // Found by the fuzz target `template`: `{ "{{now_ms}}" = 1 }` rendered `{1796639017207:1}`,
    // the key losing its quotes as a whole-string value does, which is not JSON.
    let scope = Scope {
        event: Some(EventShape::Message),
        ..Scope::default()
    };
    let t = Template::compile(
        &value(r#"{ "{{now_ms}}" = "{{now_ms}}", "{{int(1, 1)}}" = 2, "{{/id}}" = "{{/id}}" }"#),
        &scope,
    )
    .unwrap();
    let fill = Fill {
        event: Some(br#"{"id":17}"#),
        ..basic()
    };
    let out = t.render(&fill, None);
    let parsed: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{out}: {e}"));
    let object = parsed.as_object().unwrap();
    assert_eq!(object["1"], 2, "{out}");
    assert_eq!(object["17"], 17, "the value keeps its type: {out}");
    let (key, at) = object.iter().next().unwrap();
    assert!(key.parse::<u64>().is_ok() && at.is_u64(), "{out}");
}

#[test]
fn generated_values_have_their_forms() {
    let scope = Scope::default();
    let t = Template::compile(
        &value(r#"{ id = "{{uuid}}", n = "{{int(5, 7)}}", at = "{{now_ms}}", color = "{{one_of(red, green)}}" }"#),
        &scope,
    )
    .unwrap();
    for _ in 0..50 {
        let parsed: serde_json::Value = serde_json::from_str(&t.render(&basic(), None)).unwrap();
        let id = parsed["id"].as_str().unwrap();
        assert_eq!((id.len(), &id[14..15]), (36, "4"), "{id}");
        assert!((5..=7).contains(&parsed["n"].as_i64().unwrap()));
        assert!(parsed["at"].as_u64().unwrap() > 1_600_000_000_000);
        assert!(["red", "green"].contains(&parsed["color"].as_str().unwrap()));
    }
}

#[test]
fn size_pads_to_at_least_the_size() {
    let scope = Scope::default();
    for (data, shape) in [
        (r#"{ text = "hi" }"#, "object"),
        ("{}", "empty object"),
        (r#""hello""#, "string"),
    ] {
        let mut t = Template::compile(&value(data), &scope).unwrap();
        t.pad_to(4096).unwrap();
        let out = t.render(&basic(), None);
        assert!((4096..4100).contains(&out.len()), "{shape}: {}", out.len());
        if shape != "string" {
            serde_json::from_str::<serde_json::Value>(&out).unwrap();
        }
        let stamped = t.render(&basic(), Some((stamp(), StampPlacement::Prefix)));
        assert!(stamped.len() >= 4096);
    }
    let mut arg = Template::compile_arg(&value(r#""hello""#), &scope).unwrap();
    arg.pad_to(100).unwrap();
    let out = arg.render(&basic(), None);
    assert_eq!(serde_json::from_str::<String>(&out).unwrap().len(), 98);
    let mut number = Template::compile_arg(&toml::Value::Integer(5), &scope).unwrap();
    assert!(number.pad_to(100).is_err());
}

#[test]
fn unknown_names_say_what_exists() {
    let data = [users()];
    let vars = ["token".to_string()];
    let scope = Scope {
        data: &data,
        vars: &vars,
        event: None,
    };
    let err = Template::text("hi {{user}}", &scope).unwrap_err();
    assert!(
        err.contains("unknown placeholder `{{user}}`") && err.contains("(token)"),
        "{err}"
    );
    let err = Template::text("{{people.name}}", &scope).unwrap_err();
    assert!(
        err.contains("no data set `people` (data sets: users)"),
        "{err}"
    );
    let err = Template::text("{{users.name}}", &scope).unwrap_err();
    assert!(
        err.contains("no column `name` (columns: user, password)"),
        "{err}"
    );
    let err = Template::text("{{/id}}", &scope).unwrap_err();
    assert!(err.contains("only replies"), "{err}");
    assert!(Template::text("{{int(3, 1)}}", &scope).is_err());
    assert!(Template::text("{{one_of(a, )}}", &scope).is_err());
    assert!(Template::text("hi {{client", &scope).is_err());
}
