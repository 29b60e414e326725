//! The practical limits for volley's hot paths, run beside `volley run` by benches/peers/run.py
//! (same server, same CPU pinning). Not part of volley: see loops.rs.
//!
//! `cargo bench --bench minimal -- echo ws://127.0.0.1:PORT/echo [CLIENTS] [SECONDS] [PER/S]`
//! `cargo bench --bench minimal -- receive ws://127.0.0.1:PORT/PATH [CLIENTS] [SECONDS] [SENDS/S]`
//! `cargo bench --bench minimal -- http-login http://127.0.0.1:PORT/login [CLIENTS] [SECONDS]
//! [PER/S]`
//!
//! `echo` is the closed echo loop, or with PER/S each connection sending at that fixed rate;
//! `receive` the receive-only loop (with SENDS/S, the first connection also talks into the room
//! at that rate, with a payload as long as volley's stamped one); `http-login` keep-alive hyper
//! connections POSTing the same JSON login, closed or each at PER/S (see http.rs). Prints one
//! JSON line: events, the phase's length and the CPU time of the runtime's thread during the
//! phase only; the caller reads the whole process's CPU time from /proc itself.

mod http;
mod loops;

use std::time::Duration;

/// What the talker sends: as long as volley's `{"_vly":"vly:RUN.STREAM.CLIENT.SEQ.ORIGIN;",...}`
/// for the same data, so that the server and the receivers move as many bytes.
fn talker_payload(n: u64) -> String {
    let origin = 1_000_000_000 + n * 20_000_000;
    format!(r#"{{"_vly":"vly:5eed1e55.1.0.{n:x}.{origin:x};","text":"hi from 0","n":"{n}"}}"#)
}

fn main() {
    // `cargo bench` appends `--bench`; only positional arguments count.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let usage =
        "usage: minimal echo|receive|http-login ws://HOST:PORT/PATH [CLIENTS] [SECONDS] [RATE/S]";
    let (Some(mode), Some(url)) = (args.first(), args.get(1)) else {
        panic!("{usage}");
    };
    let clients: usize = args.get(2).map_or(1000, |c| c.parse().expect("CLIENTS"));
    let run_for = Duration::from_secs(args.get(3).map_or(10, |s| s.parse().expect("SECONDS")));
    let rate = args
        .get(4)
        .map(|r| r.parse::<f64>().expect("a rate per second"));
    let talker = rate.map(|r| loops::Talker {
        every: Duration::from_secs_f64(1.0 / r),
        payload: talker_payload,
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let phase = runtime.block_on(async {
        match mode.as_str() {
            "echo" => loops::echo(url, clients, run_for, rate).await,
            "receive" => loops::receive(url, clients, run_for, talker).await,
            "http-login" => http::login(url, clients, run_for, rate).await,
            _ => panic!("{usage}"),
        }
    });
    println!("{}", phase.json());
}
