//! `volley run --source-ips`: each connection leaves from the next source address, as the server
//! sees it (a real listener that records its peers' addresses and echoes).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use assert_cmd::cargo::cargo_bin;
use futures_util::StreamExt;
use tokio::net::TcpListener;

/// A WebSocket echo server counting the connections of each peer address.
fn echo_server() -> (std::net::SocketAddr, Arc<Mutex<BTreeMap<IpAddr, u32>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let peers = Arc::new(Mutex::new(BTreeMap::new()));
    let seen = peers.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = TcpListener::from_std(listener).unwrap();
            loop {
                let (stream, peer) = listener.accept().await.unwrap();
                *seen.lock().unwrap().entry(peer.ip()).or_insert(0) += 1;
                tokio::spawn(async move {
                    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
                        return;
                    };
                    let (sink, stream) = ws.split();
                    let echoes = stream.filter(|m| {
                        std::future::ready(m.as_ref().is_ok_and(|m| m.is_text() || m.is_binary()))
                    });
                    let _ = echoes.forward(sink).await;
                });
            }
        });
    });
    (addr, peers)
}

#[test]
fn connections_are_spread_over_the_given_source_addresses() {
    let (addr, peers) = echo_server();
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(cargo_bin("volley"))
        .args(["run", "scenarios/quickstart.toml", "--clients", "10"])
        .args(["--duration", "1s", "--ramp", "200ms"])
        .args(["--target", &format!("ws://{addr}/echo")])
        .args(["--source-ips", "127.0.0.2-127.0.0.3", "--quiet"])
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let peers = peers.lock().unwrap().clone();
    let from = |ip: &str| peers.get(&ip.parse::<IpAddr>().unwrap()).copied();
    // 10 clients and the reachability check, alternating: 6 from the first, 5 from the second.
    assert_eq!(from("127.0.0.2"), Some(6), "{peers:?}");
    assert_eq!(from("127.0.0.3"), Some(5), "{peers:?}");
    assert_eq!(peers.len(), 2, "no other source: {peers:?}");
}

#[test]
fn a_bad_source_list_is_a_usage_error_naming_the_entry() {
    let output = std::process::Command::new(cargo_bin("volley"))
        .args(["run", "scenarios/quickstart.toml"])
        .args(["--source-ips", "127.0.0.9-127.0.0.2"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("127.0.0.9-127.0.0.2") && stderr.contains("ends before it starts"),
        "{stderr}"
    );
}
