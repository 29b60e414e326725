//! Micro-benchmarks of the per-event hot path: stamp encode/decode, histogram record, template
//! render, delivery tracking, reading a server event at its JSON pointers; and what watching a
//! run live costs once a second (the series built, a scrape rendered, a push encoded), the
//! checkpoint.json a run rewrites once a second, what a sampled client's frame log pays per
//! message to hide secrets, and what the inspector pays to record a text body with its secrets
//! hidden.
//! `cargo bench --bench micro`
use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use volley::client::tracking::Tracker;
use volley::metrics::gaps::SeqWindow;
use volley::metrics::{Interval, WorkerMetrics};
use volley::protocol::pointer::JsonPointer;
use volley::protocol::stamp::Stamp;
use volley::results::{FinishedRun, RunStatus};
use volley::runner::live::{Gauges, Names, snapshot};
use volley::scenario::Overrides;
use volley::scenario::data::DataSet;
use volley::scenario::template::{Fill, Scope, StampPlacement, Template, UserValues};
use volley::secrets::SecretRules;
use volley::telemetry::{remote_write, text};
use volley::wire::body::BodyCapture;
use volley::wire::decode::{ConnDecoder, DecodeOptions};
use volley::wire::record::{Clock, Dir, RecordKind};

fn stamp() -> Stamp {
    Stamp {
        run: 0x1a2b3c4d,
        stream: 0,
        client: 12_345,
        seq: 987_654,
        origin_ns: 123_456_789_012,
    }
}

fn stamps(c: &mut Criterion) {
    c.bench_function("stamp/encode", |b| {
        let mut out = String::with_capacity(128);
        b.iter(|| {
            out.clear();
            black_box(stamp()).write_token(&mut out);
            black_box(&out);
        })
    });
    let mut field = String::new();
    stamp().write_field_opening(&mut field);
    field.push_str(r#","text":"hello from 12345","n":"987654"}"#);
    c.bench_function("stamp/decode_field", |b| {
        b.iter(|| black_box(Stamp::find(black_box(field.as_bytes()), 0x1a2b3c4d)))
    });
    let mut buried = String::from(r#"{"from":"server","room":"lobby","payload":""#);
    buried.push_str(&field.replace('"', "'"));
    buried.push_str(r#""}"#);
    c.bench_function("stamp/decode_searched", |b| {
        b.iter(|| black_box(Stamp::find(black_box(buried.as_bytes()), 0x1a2b3c4d)))
    });
}

fn histogram(c: &mut Criterion) {
    let mut metrics = WorkerMetrics::new(2, 1);
    let mut i = 0u64;
    c.bench_function("histogram/record", |b| {
        b.iter(|| {
            i = i.wrapping_add(7919);
            metrics.record(1, Duration::from_nanos(200_000 + (i % 5_000_000)));
        })
    });
}

/// A second of a live run: the totals of 1,000 clients' echoes into the series, their text for a
/// scrape and their remote-write body, as the coordinator, the endpoint and the pusher make them.
fn live(c: &mut Criterion) {
    let metric_names = vec!["connect".to_owned(), "echo".to_owned(), "ack".to_owned()];
    let expects = vec!["echo".to_owned()];
    let groups = vec!["echoers".to_owned(), "listeners".to_owned()];
    let names = Names {
        metrics: &metric_names,
        expects: &expects,
        groups: &groups,
    };
    let totals = busy_totals(metric_names.len(), expects.len());
    let common = || {
        vec![
            ("run_id", "00c0ffee".to_owned()),
            ("scenario", "bench".to_owned()),
            ("shard", "0/1".to_owned()),
        ]
    };
    let gauges = Gauges {
        connected: 1000,
        ..Gauges::default()
    };
    c.bench_function("live/snapshot_of_totals", |b| {
        b.iter(|| snapshot(common(), names, black_box(&totals), gauges))
    });
    let series = snapshot(common(), names, &totals, gauges);
    c.bench_function("live/scrape_text", |b| {
        b.iter(|| text::render(black_box(&series)))
    });
    c.bench_function("live/remote_write_body", |b| {
        b.iter(|| remote_write::encode(black_box(&series), 1_800_000_000_000))
    });
}

/// checkpoint.json, as a run rewrites it once a second: the record of a run of the chat-fanout example
/// (its scenario resolved, the totals of 50,000 echoes) serialised and written aside, then renamed.
fn checkpoint(c: &mut Criterion) {
    let metric_names = vec!["connect".to_owned(), "echo".to_owned(), "ack".to_owned()];
    let scenario: toml::Value = toml::from_str(include_str!("../scenarios/chat-fanout.toml"))
        .expect("scenarios/chat-fanout.toml");
    let run = FinishedRun {
        run_id: "00c0ffee".into(),
        status: RunStatus::Running,
        host: volley::runner::host::this_machine(),
        scenario_name: "chat".into(),
        scenario_file: "scenarios/chat-fanout.toml".into(),
        scenario: serde_json::to_value(scenario).unwrap(),
        target_url: "ws://127.0.0.1:9000/".into(),
        started_at: SystemTime::now(),
        ended_at: SystemTime::now(),
        elapsed: Duration::from_secs(60),
        seed: 42,
        workers: 2,
        clients_planned: 1000,
        clients_started: 1000,
        totals: busy_totals(metric_names.len(), 1),
        metric_names,
        client_cpu: Duration::from_secs(20),
        error_rows_dropped: 0,
        gap_rows_dropped: 0,
        frame_log: None,
        thresholds: Vec::new(),
        shard: None,
        merged_from: Vec::new(),
        failed_shards: Vec::new(),
        prometheus: None,
    };
    let dir = tempfile::tempdir().unwrap();
    c.bench_function("checkpoint/write", |b| {
        b.iter(|| volley::results::write_checkpoint(dir.path(), black_box(&run)).unwrap())
    });
}

/// A run's totals after 50,000 echoes of 1,000 clients, with acks.
fn busy_totals(metrics: usize, expects: usize) -> Interval {
    let mut m = WorkerMetrics::new(metrics, expects);
    for i in 0..50_000u64 {
        m.record(1, Duration::from_micros(100 + i % 20_000));
        m.record(2, Duration::from_micros(200 + i % 5_000));
    }
    for i in 0..1000u64 {
        m.record(0, Duration::from_micros(300 + i));
    }
    m.interval.sent = 50_000;
    m.group(0).sent = 50_000;
    m.interval.received = 50_000;
    m.close(1000);
    m.take_interval()
}

/// Validation of big generated scenarios (`volley validate`'s work: read, parse, compile):
/// 100,000 groups, and one group emitting 20,000 events each expected back.
fn validate(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let big = |name: &str, groups: usize, events: usize| {
        let mut text = String::from("name = \"many\"\ntarget = \"builtin\"\nduration = \"1s\"\n\n");
        for i in 0..groups {
            text.push_str(&format!("[[group]]\nname = \"g{i}\"\nclients = 1\n"));
            if i == 0 && events > 0 {
                let emits: Vec<String> = (0..events)
                    .map(|e| format!("{{ event = \"e{e}\", rate = \"1/s\" }}"))
                    .collect();
                text.push_str(&format!("emit = [{}]\n", emits.join(", ")));
            }
        }
        for e in 0..events {
            text.push_str(&format!("[[expect]]\nevent = \"e{e}\"\n"));
        }
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let groups = big("groups.toml", 100_000, 0);
    let expects = big("expects.toml", 1, 20_000);
    let mut slow = c.benchmark_group("validate");
    slow.sample_size(10);
    for (name, path) in [
        ("100k_groups", &groups),
        ("20k_emits_and_expects", &expects),
    ] {
        slow.bench_function(name, |b| {
            b.iter(|| volley::scenario::load(path, &Overrides::default()).unwrap())
        });
    }
    slow.finish();
}

fn template(c: &mut Criterion) {
    let table: toml::Table =
        toml::from_str(r#"data = { text = "hello from {{client}}", n = "{{seq}}" }"#).unwrap();
    let tpl = Template::compile(&table["data"], &Scope::default()).unwrap();
    c.bench_function("template/render_json_with_stamp", |b| {
        let mut seq = 0;
        b.iter(|| {
            seq += 1;
            let fill = Fill::basic(12_345, seq, "echoers");
            black_box(tpl.render(&fill, Some((stamp(), StampPlacement::Field))))
        })
    });

    // A conversation's message: a data column, a captured value and the stamp.
    let csv = "user,password,team\nuser12345,pw12345,blue\n";
    let data = [std::sync::Arc::new(
        DataSet::from_csv("users", std::path::Path::new("users.csv"), csv.as_bytes()).unwrap(),
    )];
    let vars = ["token".to_string()];
    let scope = Scope {
        data: &data,
        vars: &vars,
        event: None,
    };
    let table: toml::Table = toml::from_str(
        r#"data = { user = "{{users.user}}", token = "{{token}}", text = "hello from {{client}}" }"#,
    )
    .unwrap();
    let tpl = Template::compile(&table["data"], &scope).unwrap();
    let user = UserValues {
        rows: vec![0],
        vars: vec![Some("3f9a1c0e5b7d4a2c9e8f".into())],
    };
    c.bench_function("template/render_data_capture_stamp", |b| {
        let mut out = String::with_capacity(256);
        let mut seq = 0;
        b.iter(|| {
            seq += 1;
            let fill = Fill {
                data: &data,
                user: &user,
                ..Fill::basic(12_345, seq, "users")
            };
            out.clear();
            tpl.render_append(&mut out, &fill, Some((stamp(), StampPlacement::Field)));
            black_box(&out);
        })
    });
}

/// Delivery tracking, per delivery: one stream's window, and a receiver's `Tracker` (a hash map
/// of windows keyed by (source, expect)) as a fan-out listener and as an echo client use it.
fn tracking(c: &mut Criterion) {
    c.bench_function("tracking/window_in_order", |b| {
        let mut window = SeqWindow::starting_at(0);
        let mut seq = 0u64;
        b.iter(|| {
            let arrival = window.receive(black_box(seq));
            seq += 1;
            black_box(arrival)
        })
    });
    // Every 100th number never arrives: a gap opens, stays in the window while 511 more numbers
    // arrive, and is then given up (lost) as the window slides past it.
    c.bench_function("tracking/window_gap_every_100", |b| {
        let mut window = SeqWindow::starting_at(0);
        let mut seq = 0u64;
        b.iter(|| {
            if seq % 100 == 99 {
                seq += 1;
            }
            let arrival = window.receive(black_box(seq));
            seq += 1;
            black_box(arrival)
        })
    });
    // Every 100th pair arrives swapped: a gap of one, filled by the next delivery (a reorder).
    c.bench_function("tracking/window_reorder_every_100", |b| {
        let mut window = SeqWindow::starting_at(0);
        let mut i = 0u64;
        b.iter(|| {
            let seq = match i % 100 {
                98 => i + 1,
                99 => i - 1,
                _ => i,
            };
            let arrival = window.receive(black_box(seq));
            i += 1;
            black_box(arrival)
        })
    });
    // An echo client: its own stream only (source = its id, starting at 0).
    c.bench_function("tracking/deliver_1_stream", |b| {
        let mut tracker = Tracker::default();
        let mut seq = 0u64;
        b.iter(|| {
            let delivery = tracker.deliver(black_box(12_345), black_box(0), black_box(seq), true);
            seq += 1;
            black_box(delivery)
        })
    });
    // A fan-out listener: 100 sources of one expect, delivered round-robin (the streams are
    // created before measuring).
    c.bench_function("tracking/deliver_100_streams_round_robin", |b| {
        let (mut trackers, mut next) = fan_out_receivers(1, 100);
        let mut source = 0usize;
        b.iter(|| {
            let seq = next[source];
            let delivery = trackers[0].deliver(black_box(source as u32), black_box(1), seq, false);
            next[source] = seq + 1;
            source = if source == 99 { 0 } else { source + 1 };
            black_box(delivery)
        })
    });
    // One worker thread's share of a fan-out: 1,000 receivers of the same 100 sources (14 MB of
    // windows, far beyond the caches); each event of a source reaches every receiver in turn.
    c.bench_function("tracking/deliver_1000x100_streams_fan_out", |b| {
        let (mut trackers, mut next) = fan_out_receivers(1_000, 100);
        let (mut source, mut receiver) = (0usize, 0usize);
        b.iter(|| {
            let seq = next[source];
            let delivery =
                trackers[receiver].deliver(black_box(source as u32), black_box(1), seq, false);
            receiver += 1;
            if receiver == trackers.len() {
                receiver = 0;
                next[source] = seq + 1;
                source = if source == 99 { 0 } else { source + 1 };
            }
            black_box(delivery)
        })
    });
}

/// `receivers` trackers that have each had one delivery from `sources` sources (expect 1), and the
/// next number of each source.
/// A server stream's event read at its pointers: `/ticker`'s payload, and a Socket.IO `tick` with
/// a larger first argument; against building the document and asking it (the former way).
fn pointer(c: &mut Criterion) {
    let (seq, ts) = (
        JsonPointer::parse("/seq").unwrap(),
        JsonPointer::parse("/ts").unwrap(),
    );
    let ticker = br#"{"seq":123456,"ts":1795000000000}"#;
    c.bench_function("pointer/ticker_seq_and_ts", |b| {
        b.iter(|| {
            (
                seq.read_u64(black_box(ticker)),
                ts.read_u64(black_box(ticker)),
            )
        })
    });
    c.bench_function("pointer/ticker_seq_and_ts_by_value", |b| {
        b.iter(|| {
            let value: serde_json::Value = serde_json::from_slice(black_box(ticker)).unwrap();
            (
                value.pointer("/seq").and_then(serde_json::Value::as_u64),
                value.pointer("/ts").and_then(serde_json::Value::as_u64),
            )
        })
    });
    let sio_seq = seq.under_index(1);
    let quote = br#"["tick",{"symbol":"ACME","bid":101.25,"ask":101.5,"book":[[101.25,300],[101.2,1200]],"seq":98765,"ts":1795000000000}]"#;
    c.bench_function("pointer/socketio_quote_seq", |b| {
        b.iter(|| sio_seq.read_u64(black_box(quote)))
    });
}

fn fan_out_receivers(receivers: usize, sources: u32) -> (Vec<Tracker>, Vec<u64>) {
    let mut trackers: Vec<Tracker> = (0..receivers).map(|_| Tracker::default()).collect();
    for tracker in &mut trackers {
        for source in 0..sources {
            tracker.deliver(source, 1, 1_000, false);
        }
    }
    (trackers, vec![1_001; sources as usize])
}

/// A frame log's work per message: the Socket.IO event decoded into a record, then the last
/// redaction pass, with no known secret values and with a user's three (a captured token, a
/// password and a pin column), none of them in the message, or one in it.
fn redaction(c: &mut Criterion) {
    let clock = Clock::new();
    let event = br#"42["chat",{"_vly":"vly:1a2b3c4d.0.3039.f1206.1cbe991a34;","room":"lobby","text":"hello from 12345, how are you?"}]"#;
    let with_token =
        br#"42["chat",{"room":"lobby","text":"my token is tok-u0-7c3e9a, how are you?"}]"#;
    let decoder = |known: &[&str]| {
        let mut d = ConnDecoder::new(
            DecodeOptions::default(),
            Some(volley::protocol::engineio::Version::V4),
        );
        for value in known {
            d.learn_secret(value);
        }
        d
    };
    let secrets = ["tok-u0-7c3e9a", "pw-u0-secret", "4821"];
    let cases: [(&str, &[&str], &[u8], bool); 4] = [
        ("redaction/decode_only", &[], event, false),
        ("redaction/decode_and_redact_no_known", &[], event, true),
        ("redaction/decode_and_redact_3_known", &secrets, event, true),
        (
            "redaction/decode_and_redact_3_known_1_found",
            &secrets,
            with_token,
            true,
        ),
    ];
    for (name, known, payload, redact) in cases {
        let mut d = decoder(known);
        c.bench_function(name, |b| {
            b.iter(|| {
                let now = std::time::Instant::now();
                let mut record = clock.record(now, 1, RecordKind::Frame);
                d.message(&mut record, Dir::S2c, false, black_box(payload), now);
                if redact {
                    d.redact(&mut record);
                }
                black_box(record)
            })
        });
    }
}

/// A JSON object of about `size` bytes: users with a name and a bio, then two secret members
/// (`password` and `token`), as a login or an account page sends them.
fn json_body(size: usize) -> String {
    let mut users = Vec::new();
    let mut len = 0;
    let mut n = 0;
    while len + 200 < size {
        let user = format!(
            r#"{{"id":{n},"name":"user{n}","email":"user{n}@example.com","bio":"{}"}}"#,
            "lorem ipsum dolor sit amet ".repeat(3)
        );
        len += user.len() + 1;
        users.push(user);
        n += 1;
    }
    format!(
        r#"{{"users":[{}],"password":"pw-0c1d2e3f4a","token":"tok-5e1f0c9a77d2b3c4"}}"#,
        users.join(",")
    )
}

/// The inspector's work per text body once it is relayed: kept (in 16 KiB reads, as the relay
/// reads), checked as UTF-8, its secret members hidden (the strings hidden learned), then the last
/// redaction pass over the record; and with `--show-secrets`, the same with nothing hidden.
fn body_redaction(c: &mut Criterion) {
    let clock = Clock::new();
    let login = json_body(1024);
    let large = json_body(64 * 1024 - 100);
    assert!(login.len() <= 1024 && large.len() < 64 * 1024);
    let cases = [
        ("body_redaction/login_1KiB", &login, SecretRules::default()),
        ("body_redaction/json_64KiB", &large, SecretRules::default()),
        (
            "body_redaction/login_1KiB_shown",
            &login,
            SecretRules::shown(),
        ),
        (
            "body_redaction/json_64KiB_shown",
            &large,
            SecretRules::shown(),
        ),
    ];
    for (name, body, secrets) in cases {
        let opts = DecodeOptions {
            secrets,
            ..DecodeOptions::default()
        };
        let mut d = ConnDecoder::new(opts, None);
        c.bench_function(name, |b| {
            b.iter(|| {
                let mut capture =
                    BodyCapture::new(Some(b"application/json"), None, d.max_body()).unwrap();
                for read in black_box(body.as_bytes()).chunks(16 * 1024) {
                    capture.feed(read);
                }
                let body = capture.finish().unwrap().unwrap();
                let mut record = clock.record(std::time::Instant::now(), 1, RecordKind::HttpBody);
                d.http_body(&mut record, body);
                d.redact(&mut record);
                black_box(record)
            })
        });
    }
}

criterion_group!(
    benches,
    stamps,
    histogram,
    template,
    tracking,
    pointer,
    live,
    checkpoint,
    validate,
    redaction,
    body_redaction
);
criterion_main!(benches);
