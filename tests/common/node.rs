//! The real Node Socket.IO server of tests/servers/socketio (npm `socket.io`), started as a child
//! process on a free port, and its scripted client (npm `socket.io-client`), run to completion.
//! `scripts/test.sh` installs their node_modules (`npm ci`).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the server may take to print its `listening on PORT` line.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `node tests/servers/socketio/server.js`. Dropping it kills the process (by its PID)
/// and reaps it; the server also exits by itself when its stdin closes, so a test process that
/// dies never leaves it behind.
pub struct NodeServer {
    child: Child,
    stdin: Option<ChildStdin>,
    port: u16,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_reader: Option<JoinHandle<()>>,
}

/// The folder of the Node test server.
pub fn node_server_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/socketio")
}

impl NodeServer {
    /// Starts the server on 127.0.0.1 with `--port 0` and the given extra arguments (for example
    /// `["--ping-interval", "100", "--no-recovery"]`), and waits for its listening line.
    /// Panics, with the server's stderr, when it does not come up.
    pub fn start(args: &[&str]) -> NodeServer {
        NodeServer::start_script("server.js", args)
    }

    /// Starts another server of the folder (`message-queue.js`) the same way.
    pub fn start_script(script: &str, args: &[&str]) -> NodeServer {
        let dir = node_server_dir();
        assert!(
            dir.join("node_modules/socket.io").is_dir(),
            "{} has no node_modules: run `npm ci --prefix tests/servers/socketio` \
             (scripts/test.sh does it)",
            dir.display()
        );
        let mut child = Command::new("node")
            .arg(dir.join(script))
            .args(["--port", "0"])
            .args(args)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start `node` (is Node.js 18+ installed and on PATH?): {e}")
            });

        // stderr is drained all along so that a chatty server never blocks on a full pipe.
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut err_pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        let stderr_reader = std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });

        // stdout: the first line is the listening line; anything after it is drained.
        let (lines_tx, lines_rx) = mpsc::channel();
        let out_pipe = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out_pipe).lines() {
                let Ok(line) = line else { break };
                // Once the listening line is read nobody receives: keep draining.
                let _ = lines_tx.send(line);
            }
        });

        let stdin = child.stdin.take();
        let mut server = NodeServer {
            child,
            stdin,
            port: 0,
            stderr,
            stderr_reader: Some(stderr_reader),
        };
        match lines_rx.recv_timeout(START_TIMEOUT) {
            Ok(line) => match line
                .strip_prefix("listening on ")
                .and_then(|p| p.trim().parse::<u16>().ok())
            {
                Some(port) if port != 0 => server.port = port,
                _ => server.fail(&format!("unexpected first line {line:?}")),
            },
            Err(mpsc::RecvTimeoutError::Timeout) => {
                server.fail(&format!("no listening line within {START_TIMEOUT:?}"))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                server.fail("stdout closed before the listening line")
            }
        }
        server
    }

    fn fail(&mut self, what: &str) -> ! {
        let _ = self.child.kill();
        let status = self.child.wait();
        // The child is gone, so its stderr pipe is closed: collect the last words.
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        panic!(
            "the Node Socket.IO server did not start: {what} (status {status:?})\nstderr:\n{}",
            self.stderr()
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`, a Socket.IO target for scenarios.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server wrote on stderr so far (it is silent unless started with `--verbose`).
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Closes the server's stdin, which tells it to exit.
    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// Waits up to `timeout` for the server to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        // Child::kill sends SIGKILL to this child's PID (a no-op error if it already exited).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `node tests/servers/socketio/client.js URL` to completion and returns the JSON line it
/// prints. The script stops itself after `timeout`; should it still be running a second later it
/// is killed (by its PID). Panics, with the client's stderr, when it fails or prints no JSON.
pub fn run_node_client(url: &str, timeout: Duration) -> serde_json::Value {
    let dir = node_server_dir();
    assert!(
        dir.join("node_modules/socket.io-client").is_dir(),
        "{} has no socket.io-client: run `npm ci --prefix tests/servers/socketio` \
         (scripts/test.sh does it)",
        dir.display()
    );
    let mut child = Command::new("node")
        .arg(dir.join("client.js"))
        .arg(url)
        .arg("--timeout")
        .arg(timeout.as_millis().to_string())
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start `node` (is Node.js 18+ installed and on PATH?): {e}")
        });
    // The pipes are read on threads so that a full pipe never stalls the client.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + timeout + Duration::from_secs(1);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            // Child::kill sends SIGKILL to this child's PID.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    match status {
        Some(status) if status.success() => serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("client.js printed no JSON line ({e}): {stdout:?}")),
        Some(status) => panic!("client.js against {url} failed ({status}):\n{stderr}"),
        None => panic!("client.js against {url} hung past {timeout:?} and was killed:\n{stderr}"),
    }
}
