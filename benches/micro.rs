//! Micro-benchmarks of the per-event hot path: stamp encode/decode, histogram record, template
//! render. `cargo bench --bench micro`
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use volley::metrics::WorkerMetrics;
use volley::protocol::stamp::Stamp;
use volley::scenario::template::{StampPlacement, Template};

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

fn template(c: &mut Criterion) {
    let table: toml::Table =
        toml::from_str(r#"data = { text = "hello from {{client}}", n = "{{seq}}" }"#).unwrap();
    let tpl = Template::compile(&table["data"]).unwrap();
    c.bench_function("template/render_json_with_stamp", |b| {
        let mut seq = 0;
        b.iter(|| {
            seq += 1;
            black_box(tpl.render(
                12_345,
                seq,
                "echoers",
                Some((stamp(), StampPlacement::Field)),
            ))
        })
    });
}

criterion_group!(benches, stamps, histogram, template);
criterion_main!(benches);
