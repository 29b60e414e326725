//! A snapshot as a Prometheus remote-write request (protocol 1.0): a `WriteRequest` protobuf of
//! time series, one sample each at the snapshot's time, compressed with snappy's block format.
//! The three messages it needs are written by hand, field by field, rather than generated:
//!
//! ```text
//! WriteRequest { repeated TimeSeries timeseries = 1; }
//! TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
//! Label        { string name = 1; string value = 2; }
//! Sample       { double value = 1; int64 timestamp = 2; }   // milliseconds since the epoch
//! ```
//!
//! Histograms go as Prometheus stores scraped ones: `_bucket` series with `le`, `_sum`, `_count`.

use std::fmt;
use std::str::FromStr;

use super::{Snapshot, Value};

/// `--prometheus-write`'s value: where to push, `http://HOST[:PORT]/PATH` or `https://…`
/// (Prometheus itself receives at `/api/v1/write` when started with
/// `--web.enable-remote-write-receiver`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Origin form: `/api/v1/write`.
    pub path_and_query: String,
}

impl FromStr for WriteUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<WriteUrl, String> {
        let bad = |why: &str| format!("`{s}` {why}; e.g. http://127.0.0.1:9090/api/v1/write");
        let uri: http::Uri = s.parse().map_err(|_| bad("is not a URL"))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(bad("is not an http:// or https:// URL")),
        };
        let host = uri.host().ok_or_else(|| bad("has no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Ok(WriteUrl {
            tls,
            host,
            port: uri.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            path_and_query: uri
                .path_and_query()
                .map_or("/".into(), |p| p.as_str().to_owned()),
        })
    }
}

impl fmt::Display for WriteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        let host = match self.host.contains(':') {
            true => format!("[{}]", self.host),
            false => self.host.clone(),
        };
        write!(f, "{scheme}://{host}:{}{}", self.port, self.path_and_query)
    }
}

/// The headers a remote-write request carries besides its body.
pub const HEADERS: [(&str, &str); 3] = [
    ("content-encoding", "snappy"),
    ("content-type", "application/x-protobuf"),
    ("x-prometheus-remote-write-version", "0.1.0"),
];

/// The request body: the snapshot's series at `timestamp_ms`, compressed.
pub fn encode(snapshot: &Snapshot, timestamp_ms: i64) -> Vec<u8> {
    let proto = write_request(snapshot, timestamp_ms);
    snap::raw::Encoder::new()
        .compress_vec(&proto)
        .expect("snappy compresses any input below 4 GiB")
}

/// The uncompressed `WriteRequest`.
pub fn write_request(snapshot: &Snapshot, timestamp_ms: i64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut series = Vec::new();
    for family in &snapshot.families {
        for sample in &family.samples {
            let labels: Vec<(&str, &str)> = snapshot
                .common
                .iter()
                .chain(&sample.labels)
                .map(|(k, v)| (*k, v.as_str()))
                .collect();
            match &sample.value {
                Value::Number(v) => {
                    time_series(&mut series, &family.name, &labels, *v, timestamp_ms);
                    put_message(&mut out, 1, &series);
                    series.clear();
                }
                Value::Histogram(b) => {
                    let bucket = format!("{}_bucket", family.name);
                    for (le, n) in b.labelled() {
                        let mut with_le = labels.clone();
                        with_le.push(("le", &le));
                        time_series(&mut series, &bucket, &with_le, n as f64, timestamp_ms);
                        put_message(&mut out, 1, &series);
                        series.clear();
                    }
                    for (suffix, v) in [("_sum", b.sum), ("_count", b.count as f64)] {
                        let name = format!("{}{suffix}", family.name);
                        time_series(&mut series, &name, &labels, v, timestamp_ms);
                        put_message(&mut out, 1, &series);
                        series.clear();
                    }
                }
            }
        }
    }
    out
}

/// One `TimeSeries`: its labels sorted by name (`__name__` first), one sample.
fn time_series(out: &mut Vec<u8>, name: &str, labels: &[(&str, &str)], value: f64, ts: i64) {
    let mut sorted: Vec<(&str, &str)> = Vec::with_capacity(labels.len() + 1);
    sorted.push(("__name__", name));
    sorted.extend_from_slice(labels);
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut field = Vec::new();
    for (k, v) in sorted {
        put_bytes(&mut field, 1, k.as_bytes());
        put_bytes(&mut field, 2, v.as_bytes());
        put_message(out, 1, &field);
        field.clear();
    }
    field.push(key(1, 1));
    field.extend_from_slice(&value.to_le_bytes());
    field.push(key(2, 0));
    put_varint(&mut field, ts as u64);
    put_message(out, 2, &field);
}

fn key(field: u8, wire_type: u8) -> u8 {
    (field << 3) | wire_type
}

fn put_message(out: &mut Vec<u8>, field: u8, body: &[u8]) {
    put_bytes(out, field, body);
}

fn put_bytes(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
    out.push(key(field, 2));
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::new_histogram;
    use crate::telemetry::Buckets;

    /// One decoded series: its labels, its value and its timestamp.
    type Decoded = (Vec<(String, String)>, f64, i64);

    /// A reader of the three messages, independent of the writer above.
    fn decode(mut b: &[u8]) -> Vec<Decoded> {
        fn varint(b: &mut &[u8]) -> u64 {
            let (mut v, mut shift) = (0u64, 0);
            loop {
                let byte = b[0];
                *b = &b[1..];
                v |= u64::from(byte & 0x7f) << shift;
                shift += 7;
                if byte < 0x80 {
                    return v;
                }
            }
        }
        fn field<'a>(b: &mut &'a [u8]) -> (u64, &'a [u8]) {
            let k = varint(b);
            match k & 7 {
                2 => {
                    let n = varint(b) as usize;
                    let (body, rest) = b.split_at(n);
                    *b = rest;
                    (k >> 3, body)
                }
                1 => {
                    let (body, rest) = b.split_at(8);
                    *b = rest;
                    (k >> 3, body)
                }
                0 => {
                    let start = *b;
                    varint(b);
                    (k >> 3, &start[..start.len() - b.len()])
                }
                t => panic!("wire type {t}"),
            }
        }
        let mut all = Vec::new();
        while !b.is_empty() {
            let (n, mut ts_bytes) = field(&mut b);
            assert_eq!(n, 1);
            let (mut labels, mut value, mut ts) = (Vec::new(), f64::NAN, 0);
            while !ts_bytes.is_empty() {
                match field(&mut ts_bytes) {
                    (1, mut label) => {
                        let (_, k) = field(&mut label);
                        let (_, v) = field(&mut label);
                        labels.push((
                            String::from_utf8(k.into()).unwrap(),
                            String::from_utf8(v.into()).unwrap(),
                        ));
                    }
                    (2, mut sample) => {
                        let (_, v) = field(&mut sample);
                        value = f64::from_le_bytes(v.try_into().unwrap());
                        let (_, mut t) = field(&mut sample);
                        ts = varint(&mut t) as i64;
                    }
                    (n, _) => panic!("field {n}"),
                }
            }
            all.push((labels, value, ts));
        }
        all
    }

    #[test]
    fn write_urls_take_http_and_https_with_default_ports() {
        let url: WriteUrl = "http://127.0.0.1:9090/api/v1/write".parse().unwrap();
        assert_eq!(
            (
                url.tls,
                url.host.as_str(),
                url.port,
                url.path_and_query.as_str()
            ),
            (false, "127.0.0.1", 9090, "/api/v1/write")
        );
        let url: WriteUrl = "https://push.example/api/prom/push?x=1".parse().unwrap();
        assert_eq!(
            (url.tls, url.port, url.path_and_query.as_str()),
            (true, 443, "/api/prom/push?x=1")
        );
        assert_eq!(
            url.to_string(),
            "https://push.example:443/api/prom/push?x=1"
        );
        assert!(
            "ftp://x/"
                .parse::<WriteUrl>()
                .unwrap_err()
                .contains("not an http:// or https:// URL")
        );
        assert!("nonsense".parse::<WriteUrl>().is_err());
    }

    #[test]
    fn series_carry_sorted_labels_and_one_sample_and_survive_snappy() {
        let mut s = Snapshot::new(vec![
            ("run_id", "0000beef".into()),
            ("scenario", "s".into()),
        ]);
        s.counter("volley_sent_total", "Sent.", &[], 1234);
        let mut h = new_histogram();
        h.record(2_000).unwrap();
        s.histogram(
            "volley_latency_seconds",
            "Latency.",
            &[("metric", "echo")],
            Buckets::from_us(&h),
        );
        let ts = 1_800_000_000_123;
        let body = encode(&s, ts);
        let proto = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        assert_eq!(proto, write_request(&s, ts));
        let series = decode(&proto);
        assert_eq!(
            series.len(),
            1 + 21 + 2,
            "a counter, 20 bounds and +Inf, sum and count"
        );
        let pairs = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            series[0],
            (
                pairs(&[
                    ("__name__", "volley_sent_total"),
                    ("run_id", "0000beef"),
                    ("scenario", "s")
                ]),
                1234.0,
                ts
            )
        );
        let le_0025 = series
            .iter()
            .find(|(l, _, _)| l.contains(&("le".into(), "0.0025".into())))
            .unwrap();
        assert_eq!(
            le_0025.0[0],
            ("__name__".into(), "volley_latency_seconds_bucket".into())
        );
        assert_eq!(le_0025.1, 1.0);
        let names: Vec<_> = le_0025.0.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["__name__", "le", "metric", "run_id", "scenario"]);
        let count = series
            .iter()
            .find(|(l, _, _)| l[0].1 == "volley_latency_seconds_count")
            .unwrap();
        assert_eq!(count.1, 1.0);
    }
}
