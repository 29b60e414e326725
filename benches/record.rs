//! What `volley record` costs on a long capture: a Socket.IO session of 100,000 inspector
//! records (a login, then chats acknowledged, pushes answered, pings), read, sorted into its
//! conversation and written as a checked scenario; beside it, in the same run, the least any
//! reader of the file does: each line parsed by serde_json into a `Value`.
//! Run: `cargo bench --bench record`.

use std::fmt::Write as _;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use volley::record::{self, RecordSettings};

/// An inspector capture of one Socket.IO session over WebSocket with about `records` records.
fn capture(records: usize) -> String {
    let mut out = String::new();
    let mut line = |conn: u32, t: f64, rest: &str| {
        let _ = writeln!(
            out,
            r#"{{"time":"2026-12-07T12:00:00Z","t":{t:.6},"conn":{conn}{rest}}}"#
        );
    };
    line(
        1,
        0.0,
        r#","kind":"connect","upstream":"http://127.0.0.1:3000""#,
    );
    line(
        1,
        0.01,
        r#","dir":"c2s","kind":"http_request","method":"POST","target":"/login","headers":{"content-type":"application/json"}"#,
    );
    line(
        1,
        0.011,
        r#","dir":"c2s","kind":"http_body","len":33,"text":"{\"user\":\"user0\",\"password\":\"pw0\"}""#,
    );
    line(
        1,
        0.02,
        r#","dir":"s2c","kind":"http_response","status":200,"target":"/login","headers":{"content-type":"application/json"}"#,
    );
    line(
        1,
        0.021,
        r#","dir":"s2c","kind":"http_body","len":40,"text":"{\"token\":\"tok-0123456789abcdef\"}""#,
    );
    line(
        2,
        0.05,
        r#","dir":"c2s","kind":"http_request","method":"GET","target":"/socket.io/?EIO=4&transport=websocket","headers":{"upgrade":"websocket"}"#,
    );
    line(
        2,
        0.06,
        r#","dir":"s2c","kind":"http_response","status":101,"headers":{}"#,
    );
    line(
        2,
        0.07,
        r#","dir":"s2c","kind":"frame","opcode":"text","fin":true,"text":"0{\"sid\":\"abc\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000}""#,
    );
    line(
        2,
        0.08,
        r#","dir":"c2s","kind":"frame","opcode":"text","fin":true,"text":"40{\"token\":\"tok-0123456789abcdef\"}""#,
    );
    line(
        2,
        0.09,
        r#","dir":"s2c","kind":"frame","opcode":"text","fin":true,"text":"40{\"sid\":\"x\"}""#,
    );
    let mut t = 0.1;
    for n in 0..records / 6 {
        t += 0.3;
        let frame = |dir: &str, text: String| {
            format!(
                r#","dir":"{dir}","kind":"frame","opcode":"text","fin":true,"text":{}"#,
                serde_json::Value::String(text)
            )
        };
        line(
            2,
            t,
            &frame(
                "c2s",
                format!(r#"42{n}["chat",{{"room":"lobby","text":"hi","n":{n}}}]"#),
            ),
        );
        line(
            2,
            t + 0.001,
            &frame(
                "s2c",
                format!(
                    r#"42["message",{{"room":"lobby","from":"user0","text":"hi","seq":{}}}]"#,
                    n + 1
                ),
            ),
        );
        line(
            2,
            t + 0.002,
            &frame("s2c", format!(r#"43{n}[{{"id":"m{n}","seq":{}}}]"#, n + 1)),
        );
        line(
            2,
            t + 0.1,
            &frame("s2c", format!(r#"42["ping",{{"id":{}}}]"#, n + 1)),
        );
        line(
            2,
            t + 0.101,
            &frame("c2s", format!(r#"42["pong",{{"id":{}}}]"#, n + 1)),
        );
        line(2, t + 0.2, &frame("s2c", "2".into()));
    }
    out
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("session.jsonl");
    let text = capture(100_000);
    std::fs::write(&input, &text).unwrap();
    let settings = RecordSettings {
        input,
        output: dir.path().join("session.toml"),
        filter: Default::default(),
        force: true,
    };
    let recorded = record::record(&settings).expect("the bench capture records");
    assert!(recorded.summary.len() >= 3);
    let mut group = c.benchmark_group("record");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.throughput(criterion::Throughput::Bytes(text.len() as u64));
    group.bench_function("jsonl_100k_records", |b| {
        b.iter(|| record::record(&settings).unwrap())
    });
    group.bench_function("serde_json_lines_only", |b| {
        b.iter(|| {
            text.lines()
                .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
                .filter(serde_json::Value::is_object)
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
