#!/usr/bin/env python3
"""Side by side: volley, Artillery, Locust and minimal tokio-tungstenite / hyper loops on the same
targets.

    benches/peers/run.py [WORKLOAD...]      (default: all but the opt-in ones below)

Workloads:
  sio-echo   Socket.IO echo at a fixed rate against the Node socket.io 4.8.4 server of
             tests/servers/socketio: Artillery, then volley (1,000 clients x 5/s, 30 s)
  sio-idle   idle held Socket.IO connections against the same server: Artillery, then volley
             (1,000 and 5,000, held 15 s)
  raw-echo   raw WebSocket echo against `volley serve --threads 1` (/echo), 1,000 clients: the
             minimal tokio-tungstenite loop closed (as fast as it goes), then at a fixed rate near
             that throughput the minimal loop sending on an interval and volley, then both at a
             modest rate (20,000/s)
  raw-fanout the receive path with gap tracking against the minimal receive-only loop: a talker
             at 50/s into a /broadcast room of 1,000 clients (50,000 deliveries/s) on `volley
             serve --threads 1`, tracked per (talker, member) stream by volley, counted by the loop
  raw-ticker the same with the server's own stream: 1,000 watchers of /ticker?every=20ms, gaps
             from its sequence numbers and one-way latency from its timestamps
  ramp       volley connecting 15,000 clients at ramp = "5000/s" against `volley serve`: the
             `connected` column of timeseries.csv next to the planned ramp

Opt-in (named on the command line only):
  conversation  Locust 2.x, then volley, on the same conversation against the message-queue test
             server (tests/servers/socketio/message-queue.js, a fresh one per client): each user
             logs in (POST /login), connects Socket.IO (websocket) with auth {token}, subscribes to
             c0 and c1 with acks and answers every pushed `message` with `received {id}`; 100
             users for 30 s, one message per channel every 50 ms (PEERS_CONV_USERS=100,500 and
             PEERS_CONV_EVERY_MS=100 for other sizes and rates); acknowledged messages are the
             server's count (GET /stats)
  sio-reply  the reply path on receive: 1,000 Socket.IO watchers of `volley serve --tick-every
             40ms`'s `tick` (25,000/s), volley tracking only, then also answering every tick
             with `received {seq}`, an event the server ignores (PEERS_SIO_TICK_MS=20 for
             50,000/s, where the server's core is busy enough to bunch its ticks). Not raw
             /ticker: a raw WebSocket handler must have a `match`, which tests one field for
             equality, and the ticks carry no field of a fixed value.
  raw-reply  the reply path on receive, raw WebSocket: 1,000 watchers of /ticker every 20 ms on
             `volley serve --threads 1` (which reads and drops what clients send), volley tracking
             only, then also answering every tick with `{"seq": N}` ([[group.on]] without a
             match: every message), rounds alternated
  echo-rates one worker thread's cost per echo at a modest rate per client against a Node `ws`
             echo server (benches/peers/ws-echo.js): volley at 500 clients x 10/s and 1,000 x
             40/s, and the minimal loop at the same fixed rates, rounds alternated; CPU per
             message counted at the server
  http-login HTTP steps against the message-queue server's POST /login, 50 keep-alive
             connections: the minimal hyper loop closed, then volley's 50 users each running as
             many login steps in a row (on_connect); volley's users pausing 10 ms after each
             login, then the minimal loop at the rate they reached; volley's users arriving at
             500/s, each logging in, connecting and leaving after 1 s
  live-metrics the cost of watching a run live: 1,000 clients x 50/s raw echo (50,000 echoes/s)
             off `volley serve --threads 1`, plain, then with --metrics-listen scraped every
             second and --prometheus-write pushing, both to a real Prometheus (Debian's
             /usr/bin/prometheus, on the server's CPU), rounds alternated

Each client runs as a child of this script, pinned to CPU 0 (the server to CPU 1). For each client
process tree it prints: events/s, CPU seconds (user + system of the whole tree, from wait4's
rusage, which counts every reaped descendant), peak RSS (VmHWM of every process of the tree,
polled every 100 ms, summed) and the latency percentiles the tool itself reports.

Installs what it needs: Artillery (pinned by benches/peers/package-lock.json) into
benches/peers/node_modules, socket.io into tests/servers/socketio/node_modules, Locust and
python-socketio (pinned by benches/peers/requirements.txt) into benches/peers/.venv for
`conversation`, and builds volley and the minimal loop with cargo (CARGO_TARGET_DIR is honoured).
Sends traffic to 127.0.0.1 only. PEERS_REPEATS sets the rounds of the workloads that have them
(default 2).
"""

import csv
import json
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
NODE_SERVER_DIR = ROOT / "tests" / "servers" / "socketio"
VENV = HERE / ".venv"
CLIENT_CPU = "0"
SERVER_CPU = "1"


def log(line):
    print(line, flush=True)


def raise_fd_limit():
    """Children inherit the soft fd limit: raise it to the hard one (15,000 connections need it)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ----------------------------------------------------------------------------- setup


def npm_ci(folder, env=None):
    if (folder / "node_modules").is_dir():
        return
    log(f"installing node modules in {folder} (npm ci)")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=folder, check=True,
                   env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL)


def venv_install():
    """benches/peers/.venv with Locust and python-socketio as requirements.txt pins them."""
    if (VENV / "bin" / "locust").exists():
        return
    log(f"installing Locust into {VENV} (pip install -r requirements.txt)")
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", "-r",
                    str(HERE / "requirements.txt")], check=True)


def venv_versions(*packages):
    """`name version` of each package installed in the venv."""
    code = ("import sys; from importlib.metadata import version; "
            "print(', '.join(f'{p} {version(p)}' for p in sys.argv[1:]))")
    return subprocess.run([str(VENV / "bin" / "python"), "-c", code, *packages], check=True,
                          capture_output=True, text=True).stdout.strip()


def build():
    """Builds volley and the minimal loop in one cargo command; returns (volley binary, minimal
    loop binary). One command, with the bench, so that dependencies are built once with the
    features that dev-dependencies unify (a plain `cargo build --bin volley` builds another set)."""
    out = subprocess.run(
        ["cargo", "build", "--release", "--bin", "volley", "--bench", "minimal",
         "--message-format=json"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    found = {}
    for line in out.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and message.get("executable"):
            found[message["target"]["name"]] = Path(message["executable"])
    if "volley" not in found or "minimal" not in found:
        sys.exit(f"run.py: cargo did not report both executables (got {sorted(found)})")
    return found["volley"], found["minimal"]


# ----------------------------------------------------------------------------- measuring


def proc_tree(root):
    """PIDs of `root` and all its descendants alive now."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def vm_hwm_kib(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_cpu_s(pid):
    """User + system CPU seconds of one process (all its threads) so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Client:
    """A client process tree pinned to CPU 0; its peak RSS polled while it runs."""

    def __init__(self, argv, cwd=ROOT, env=None):
        self.started = time.monotonic()
        self.proc = subprocess.Popen(["taskset", "-c", CLIENT_CPU, *argv], cwd=cwd,
                                     env={**os.environ, **(env or {})},
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.hwm = {}
        # (seconds since start, CPU seconds of the processes of the tree alive then)
        self.cpu_samples = []
        self.done = threading.Event()
        self.poller = threading.Thread(target=self._poll, daemon=True)
        self.poller.start()
        # Read while it runs: a client that writes more than a pipe holds (Locust's tracebacks)
        # would otherwise block on its next write until killed.
        self.output = {"out": [], "err": []}
        self.readers = [threading.Thread(target=self._read, args=(stream, self.output[key]),
                                         daemon=True)
                        for key, stream in (("out", self.proc.stdout), ("err", self.proc.stderr))]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(stream, chunks):
        for line in stream:
            chunks.append(line)

    def _poll(self):
        while not self.done.is_set():
            cpu = 0.0
            for pid in proc_tree(self.proc.pid):
                kib = vm_hwm_kib(pid)
                if kib is not None:
                    self.hwm[pid] = max(kib, self.hwm.get(pid, 0))
                try:
                    cpu += proc_cpu_s(pid)
                except OSError:
                    pass
            self.cpu_samples.append((time.monotonic() - self.started, cpu))
            time.sleep(0.1)

    def cpu_between(self, start_s, end_s):
        """CPU seconds the tree spent between two moments (seconds since it started): the
        steady phase of a run, without start-up, connects and closes."""
        def at(t):
            return min(self.cpu_samples, key=lambda s: abs(s[0] - t))
        (t0, c0), (t1, c1) = at(start_s), at(end_s)
        return c1 - c0, t1 - t0

    def peak_rss_kib(self):
        return sum(self.hwm.values())

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def wait(self, timeout=600):
        """Waits for the process; returns (exit code, CPU seconds of the tree, stdout, stderr)."""
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                self.proc.kill()
                pid, status, usage = os.wait4(self.proc.pid, 0)
                break
            time.sleep(0.05)
        self.done.set()
        self.poller.join()
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        for reader in self.readers:
            reader.join(timeout=10)
        out, err = "".join(self.output["out"]), "".join(self.output["err"])
        self.wall = time.monotonic() - self.started
        return self.proc.returncode, usage.ru_utime + usage.ru_stime, out, err


def load_note():
    with open("/proc/loadavg") as f:
        return "load " + " ".join(f.read().split()[:3])


# ----------------------------------------------------------------------------- servers


class NodeServer:
    """tests/servers/socketio/server.js (npm socket.io 4.8.4) on CPU 1, without connection state
    recovery: Artillery can only match an echo whose last argument is the payload it sent, and
    recovery appends an offset after it."""

    def __init__(self):
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, "node", "server.js", "--port", "0", "--no-recovery",
             "--keep-stdin"], cwd=NODE_SERVER_DIR, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        self.port = int(line.removeprefix("listening on "))
        self.http = f"http://127.0.0.1:{self.port}"

    def cpu_s(self):
        return proc_cpu_s(self.proc.pid)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait()


class MessageQueueServer:
    """tests/servers/socketio/message-queue.js on CPU 1: logins, a queue per user, two channels
    publishing from the first subscription on, GET /stats."""

    def __init__(self, users=1000, publish_every_ms=100, publish_for_ms=0):
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, "node", "message-queue.js", "--port", "0", "--users",
             str(users), "--publish-every", str(publish_every_ms), "--publish-for",
             str(publish_for_ms), "--keep-stdin"], cwd=NODE_SERVER_DIR, stdout=subprocess.PIPE,
            text=True)
        line = self.proc.stdout.readline().strip()
        self.port = int(line.removeprefix("listening on "))
        self.http = f"http://127.0.0.1:{self.port}"

    def stats(self):
        with urllib.request.urlopen(f"{self.http}/stats", timeout=10) as response:
            return json.load(response)

    def cpu_s(self):
        return proc_cpu_s(self.proc.pid)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait()


class VolleyServer:
    """`volley serve --threads 1` on CPU 1."""

    def __init__(self, volley, options=()):
        self.proc = subprocess.Popen(["taskset", "-c", SERVER_CPU, str(volley), "serve",
                                      "--threads", "1", *options], stdout=subprocess.PIPE,
                                     text=True)
        self.ws = self.proc.stdout.readline().strip().removeprefix("listening on ")

    def cpu_s(self):
        return proc_cpu_s(self.proc.pid)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait()


# ----------------------------------------------------------------------------- volley


def volley_scenario(target, protocol, clients, rate, duration, ramp):
    lines = [
        'name = "peers"',
        f'target = "{target}"',
        f'protocol = "{protocol}"',
        f'duration = "{duration}"',
        f'ramp = "{ramp}"',
        'drain = "2s"',
        "",
    ]
    if protocol == "socketio":
        lines += ["[socketio]", 'transport = "websocket"', "recovery = false", ""]
    lines += ["[[group]]", 'name = "g"', f"clients = {clients}"]
    if rate:
        lines += [
            f'emit = [{{ event = "echo", data = {{ text = "hello from {{{{client}}}}" }}, rate = "{rate}" }}]',
            "",
            "[[expect]]",
            'event = "echo"',
        ]
    return "\n".join(lines) + "\n"


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def steady_median(rows, column, first, last):
    values = [float(r[column]) for r in rows if first <= int(r["second"]) <= last]
    return statistics.median(values) if values else float("nan")


def run_volley(volley, scenario_text, tmp, label, threads=1, during=None, extra=()):
    """`volley run` as a client process; returns a dict of its figures. `during(client)` is
    called once the process has started (to watch it run)."""
    path = Path(tmp) / f"{label}.toml"
    path.write_text(scenario_text)
    out = Path(tmp) / f"{label}-out"
    client = Client([str(volley), "run", str(path), "--quiet", "--threads", str(threads),
                     "--out", str(out), *extra])
    if during:
        during(client)
    code, cpu, _, err = client.wait()
    if code != 0:
        log(f"  volley exited {code}: {err.strip()[-500:]}")
    summary = {r["metric"]: r for r in read_csv(out / "summary.csv")}
    series = read_csv(out / "timeseries.csv")
    return {"cpu": cpu, "rss": client.peak_rss_kib(), "summary": summary, "series": series,
            "wall": client.wall, "code": code, "client": client}


# ----------------------------------------------------------------------------- Artillery

ARTILLERY = HERE / "node_modules" / ".bin" / "artillery"


def artillery_script(target, clients, arrive_over_s, flow):
    return json.dumps({
        "config": {
            "target": target,
            "phases": [{"duration": arrive_over_s, "arrivalCount": clients}],
            "socketio": {"transports": ["websocket"]},
        },
        "scenarios": [{"engine": "socketio", "flow": flow}],
    }, indent=2)


def run_artillery(script_text, tmp, label):
    script = Path(tmp) / f"{label}.json"
    script.write_text(script_text)
    report = Path(tmp) / f"{label}-report.json"
    client = Client([str(ARTILLERY), "run", "--quiet", "--output", str(report), str(script)],
                    cwd=HERE, env={"ARTILLERY_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"})
    code, cpu, _, err = client.wait()
    if code != 0:
        log(f"  artillery exited {code}: {err.strip()[-500:]}")
    data = json.loads(report.read_text())
    return {"cpu": cpu, "rss": client.peak_rss_kib(), "report": data, "wall": client.wall,
            "code": code, "client": client}


def steady_cpu_per_event(client, rate, start_s, end_s):
    """µs of client CPU per event over a window of the steady phase, at the steady rate."""
    cpu, span = client.cpu_between(start_s, end_s)
    return cpu * 1e6 / (rate * span)


# ----------------------------------------------------------------------------- workloads

SIO_CLIENTS = 1000
SIO_RATE = 5
SIO_SECONDS = 30


def sio_echo(volley, tmp):
    log(f"\n== sio-echo: Socket.IO echo, {SIO_CLIENTS} clients x {SIO_RATE}/s, {SIO_SECONDS} s, "
        "Node socket.io 4.8.4 server on CPU 1, client on CPU 0")
    server = NodeServer()
    try:
        # Artillery paces a virtual user by thinking after each answer: emit, await the echo,
        # think 1/rate s. Its rate is therefore a little under SIO_RATE per client.
        loops = SIO_RATE * SIO_SECONDS
        flow = [{"loop": [
            {"emit": {"channel": "echo", "data": {"text": "hello from artillery"}},
             "response": {"channel": "echo", "data": {"text": "hello from artillery"}}},
            {"think": 1 / SIO_RATE}], "count": loops}]
        log(f"  ({load_note()})")
        before = server.cpu_s()
        a = run_artillery(artillery_script(server.http, SIO_CLIENTS, 5, flow), tmp, "art-echo")
        server_a = server.cpu_s() - before
        agg = a["report"]["aggregate"]
        # socketio.emit counts emits; the response_time histogram counts each echo twice in
        # this version (markEndTime runs for the match and again for processResponse).
        echoes = agg["counters"].get("socketio.emit", 0)
        # Artillery reports per 10 s period; the first holds the arrivals and the last is cut
        # short, so only the periods between count (a period with arrivals in it can still be
        # one of them when the arrivals straddle a period boundary).
        periods = a["report"]["intermediate"]
        per_period = [p["counters"].get("socketio.emit", 0) / 10 for p in periods[1:-1]]
        rt = agg["summaries"].get("socketio.response_time", {})
        a_rate = median_or_nan(per_period)
        a_steady = steady_cpu_per_event(a["client"], a_rate, 12, 32)
        log(f"  artillery: {a_rate:.0f} echoes/s (median of its 10 s periods "
            f"after the arrivals), {echoes} echoes, client CPU {a['cpu']:.2f} s = "
            f"{a['cpu'] * 1e6 / max(echoes, 1):.1f} µs/echo (start-up and connects included), "
            f"steady {a_steady:.1f} µs/echo (12-32 s), peak RSS "
            f"{a['rss']} KiB, server CPU {server_a * 1e6 / max(echoes, 1):.1f} µs/echo, "
            f"latency ms p50 {rt.get('p50')} p95 {rt.get('p95')} p99 {rt.get('p99')} "
            f"p999 {rt.get('p999')} max {rt.get('max')}, errors "
            f"{ {k: v for k, v in agg['counters'].items() if k.startswith('errors.')} }, "
            f"vusers failed {agg['counters'].get('vusers.failed', 0)}, wall {a['wall']:.1f} s")

        log(f"  ({load_note()})")
        before = server.cpu_s()
        v = run_volley(volley, volley_scenario(server.http, "socketio", SIO_CLIENTS,
                                               f"{SIO_RATE}/s", f"{SIO_SECONDS}s", "5s"),
                       tmp, "volley-echo")
        server_v = server.cpu_s() - before
        v_steady = report_volley_echo("volley", v, server_v, 7, SIO_SECONDS, (12, 32))
        ratio = (v["cpu"] / volley_echoes(v)) / (a["cpu"] / max(echoes, 1))
        log(f"  ratio volley/artillery, client CPU per echo: whole run {ratio:.3f}, steady "
            f"{v_steady / a_steady:.3f}; peak RSS: {v['rss'] / a['rss']:.3f}")
    finally:
        server.stop()


def median_or_nan(values):
    return statistics.median(values) if values else float("nan")


def volley_echoes(v):
    return max(int(v["summary"]["echo.received"]["count"]), 1)


def report_volley_echo(label, v, server_cpu, first, last, window):
    """Prints a volley echo run's figures; returns its steady CPU per echo (µs)."""
    s = v["summary"]
    echoes = volley_echoes(v)
    e = s["echo"]
    rate = steady_median(v['series'], 'received', first, last)
    steady = steady_cpu_per_event(v["client"], rate, *window)
    log(f"  {label}: {rate:.0f} echoes/s (median "
        f"of seconds {first}-{last}), {echoes} echoes, client CPU {v['cpu']:.2f} s = "
        f"{v['cpu'] * 1e6 / echoes:.2f} µs/echo (connects included), steady "
        f"{steady:.2f} µs/echo ({window[0]}-{window[1]} s), peak RSS {v['rss']} KiB, "
        f"server CPU {server_cpu * 1e6 / echoes:.2f} µs/echo, latency ms p50 "
        f"{float(e['p50_us']) / 1e3:.3f} p90 {float(e['p90_us']) / 1e3:.3f} p95 "
        f"{float(e['p95_us']) / 1e3:.3f} p99 {float(e['p99_us']) / 1e3:.3f} p99.9 "
        f"{float(e['p99_9_us']) / 1e3:.3f} max {float(e['max_us']) / 1e3:.3f}, errors "
        f"{s['errors']['count']}, lost {s['echo.lost']['count']}, wall {v['wall']:.1f} s")
    return steady


IDLE_COUNTS = (1000, 5000)
IDLE_HOLD_S = 15


def sio_idle(volley, tmp):
    log(f"\n== sio-idle: idle Socket.IO connections ({' and '.join(map(str, IDLE_COUNTS))}) held "
        f"{IDLE_HOLD_S} s after a 1,000/s arrival, Node socket.io server on CPU 1")
    server = NodeServer()
    try:
        peaks = {"artillery": [], "volley": []}
        for n in IDLE_COUNTS:
            arrive = max(1, n // 1000)
            log(f"  ({load_note()})")
            a = run_artillery(artillery_script(server.http, n, arrive, [{"think": IDLE_HOLD_S}]),
                              tmp, f"art-idle-{n}")
            agg = a["report"]["aggregate"]["counters"]
            log(f"  artillery {n}: peak RSS {a['rss']} KiB, client CPU {a['cpu']:.2f} s, vusers "
                f"completed {agg.get('vusers.completed', 0)} failed {agg.get('vusers.failed', 0)}")
            peaks["artillery"].append(a["rss"])
            log(f"  ({load_note()})")
            v = run_volley(volley, volley_scenario(server.http, "socketio", n, None,
                                                   f"{IDLE_HOLD_S}s", "1000/s"), tmp,
                           f"volley-idle-{n}")
            connected = max(int(r["connected"]) for r in v["series"])
            log(f"  volley {n}: peak RSS {v['rss']} KiB, client CPU {v['cpu']:.2f} s, most "
                f"connected {connected}, errors {v['summary']['errors']['count']}")
            peaks["volley"].append(v["rss"])
        span = IDLE_COUNTS[1] - IDLE_COUNTS[0]
        per = {k: (p[1] - p[0]) / span for k, p in peaks.items()}
        log(f"  peak RSS per connection ((at {IDLE_COUNTS[1]} - at {IDLE_COUNTS[0]}) / {span}): "
            f"artillery {per['artillery']:.2f} KiB, volley {per['volley']:.2f} KiB, ratio "
            f"volley/artillery {per['volley'] / per['artillery']:.3f}")
    finally:
        server.stop()


RAW_CLIENTS = 1000
RAW_SECONDS = 20
MODEST_RATE = 20


def run_minimal(minimal, args):
    """The minimal bench as a client process; returns (its JSON line, process CPU seconds, the
    Client), or None when it failed (said in the log)."""
    m = Client([str(minimal), *map(str, args)])
    code, cpu, out, err = m.wait()
    if code != 0:
        log(f"  minimal loop ({args[0]}) exited {code}: {err.strip()[-500:]}")
        return None
    return json.loads(out.strip().splitlines()[-1]), cpu, m


def raw_echo(volley, minimal, tmp, repeats):
    log(f"\n== raw-echo: raw WebSocket echo, {RAW_CLIENTS} clients, {RAW_SECONDS} s, volley serve "
        "--threads 1 on CPU 1, client on CPU 0")
    server = VolleyServer(volley)
    try:
        for round_ in range(repeats):
            log(f"  -- round {round_ + 1} of {repeats}")
            log(f"  ({load_note()})")
            before = server.cpu_s()
            ran = run_minimal(minimal, ["echo", f"{server.ws}/echo", RAW_CLIENTS, RAW_SECONDS])
            server_m = server.cpu_s() - before
            if ran is None:
                return
            figures, cpu, m = ran
            echoes = figures["events"]
            rate = echoes / figures["phase_s"]
            minimal_per_echo = cpu * 1e6 / echoes
            minimal_phase = figures["phase_cpu_s"] * 1e6 / echoes
            log(f"  minimal loop (closed): {rate:.0f} echoes/s, {echoes} echoes, process CPU "
                f"{cpu:.2f} s = {minimal_per_echo:.2f} µs/echo (connects included; echo phase "
                f"alone {figures['phase_cpu_s'] * 1e6 / echoes:.2f} µs), peak RSS {m.peak_rss_kib()} KiB, "
                f"server CPU {server_m * 1e6 / echoes:.2f} µs/echo")
            near = max(1, round(rate / RAW_CLIENTS))
            for per_client, what in ((near, "near the minimal loop's throughput"),
                                     (MODEST_RATE, "modest")):
                log(f"  ({load_note()})")
                ran = run_minimal(minimal, ["echo", f"{server.ws}/echo", RAW_CLIENTS,
                                            RAW_SECONDS, per_client])
                if ran is None:
                    return
                figures, o_cpu, _ = ran
                open_phase = figures["phase_cpu_s"] * 1e6 / figures["events"]
                log(f"  minimal loop at {per_client}/s per client: "
                    f"{figures['events'] / figures['phase_s']:.0f} echoes/s, {figures['events']} "
                    f"echoes, echo phase {open_phase:.2f} µs/echo, process CPU {o_cpu:.2f} s")
                log(f"  ({load_note()})")
                before = server.cpu_s()
                v = run_volley(volley, volley_scenario(f"{server.ws}/echo", "ws", RAW_CLIENTS,
                                                       f"{per_client}/s", f"{RAW_SECONDS}s", "1s"),
                               tmp, f"volley-raw-{per_client}-{round_}")
                server_v = server.cpu_s() - before
                steady = report_volley_echo(f"volley {RAW_CLIENTS} x {per_client}/s ({what})", v,
                                            server_v, 3, RAW_SECONDS, (4, RAW_SECONDS - 1))
                per_echo = v["cpu"] * 1e6 / volley_echoes(v)
                log(f"  ratio volley/minimal, client CPU per echo: whole processes "
                    f"{per_echo / minimal_per_echo:.3f}, steady (volley's steady window against "
                    f"the closed loop's echo phase) {steady / minimal_phase:.3f}, steady against "
                    f"the minimal loop at the same fixed rate {steady / open_phase:.3f}")
    finally:
        server.stop()


FANOUT_CLIENTS = 1000
FANOUT_RATE = 50
TICKER_EVERY_MS = 20


def raw_head(name, target, seconds):
    """The top-level keys of a raw WebSocket receive scenario."""
    return [f'name = "{name}"', f'target = "{target}"', 'protocol = "ws"',
            f'duration = "{seconds}s"', 'ramp = "1s"', 'drain = "1s"', ""]


def fanout_scenario(target, clients, rate, seconds):
    """A talker into a /broadcast room of `clients` (itself included): every member must get
    every message, tracked per (talker, member) stream."""
    return "\n".join([
        *raw_head("peers-fanout", target, seconds),
        "[[group]]",
        'name = "listeners"',
        f"clients = {clients - 1}",
        "",
        "[[group]]",
        'name = "talker"',
        "clients = 1",
        f'emit = [{{ event = "chat", data = {{ text = "hi from {{{{client}}}}", n = "{{{{seq}}}}" }}, '
        f'rate = "{rate}/s" }}]',
        "",
        "[[expect]]",
        'name = "fanout"',
        'event = "chat"',
        'from = "talker"',
        'to = ["listeners", "talker"]',
        'within = "1s"',
    ]) + "\n"


def ticker_scenario(target, clients, seconds):
    """`clients` watchers of the server's /ticker: gaps from its sequence numbers, one-way latency
    from its timestamps."""
    return "\n".join([
        *raw_head("peers-ticker", target, seconds),
        "[[group]]",
        'name = "watchers"',
        f"clients = {clients}",
        "",
        "[[expect]]",
        'name = "ticks"',
        'event = "tick"',
        'from = "server"',
        'seq = "/seq"',
        'timestamp = "/ts"',
        'timestamp_unit = "ms"',
        'within = "1s"',
    ]) + "\n"


def reply_ticker_scenario(target, clients, seconds):
    """The ticker's watchers, answering every tick with its number."""
    return ticker_scenario(target, clients, seconds) + "\n".join([
        "",
        "[[group.on]]",
        'emit = "ack"',
        'data = { seq = "{{/seq}}" }',
    ]) + "\n"


def raw_reply(volley, tmp, repeats):
    """The cost of a reply on the receive path: the same ticker watchers with and without a reply
    to every tick, in alternated order."""
    path = f"/ticker?every={TICKER_EVERY_MS}ms"
    log(f"\n== raw-reply: {FANOUT_CLIENTS} watchers of {path} "
        f"({FANOUT_CLIENTS * 1000 // TICKER_EVERY_MS:,} ticks/s), {RAW_SECONDS} s, tracking only "
        "and also replying to every tick; volley serve --threads 1 on CPU 1, client on CPU 0")
    server = VolleyServer(volley)
    try:
        for round_ in range(repeats):
            log(f"  -- round {round_ + 1} of {repeats}")
            steady = {}
            order = ("plain", "replying") if round_ % 2 == 0 else ("replying", "plain")
            for variant in order:
                log(f"  ({load_note()})")
                make = ticker_scenario if variant == "plain" else reply_ticker_scenario
                before = server.cpu_s()
                v = run_volley(volley, make(f"{server.ws}{path}", FANOUT_CLIENTS, RAW_SECONDS),
                               tmp, f"volley-raw-reply-{variant}-{round_}")
                server_v = server.cpu_s() - before
                s = v["summary"]
                got = max(int(s["ticks.received"]["count"]), 1)
                rate = steady_median(v["series"], "received", 3, RAW_SECONDS)
                steady[variant] = steady_cpu_per_event(v["client"], rate, 4, RAW_SECONDS - 1)
                log(f"  volley {variant}: {rate:.0f} ticks/s (median of seconds 3-{RAW_SECONDS}), "
                    f"{got} received, {s['sent']['count']} sent, client CPU {v['cpu']:.2f} s = "
                    f"{v['cpu'] * 1e6 / got:.2f} µs/tick (connects included), steady "
                    f"{steady[variant]:.2f} µs/tick (4-{RAW_SECONDS - 1} s), peak RSS {v['rss']} "
                    f"KiB, server CPU {server_v * 1e6 / got:.2f} µs/tick, errors "
                    f"{s['errors']['count']}, lost {s['ticks.lost']['count']}")
            log(f"  ratio replying/plain, client CPU per tick (steady): "
                f"{steady['replying'] / steady['plain']:.3f}")
    finally:
        server.stop()


class WsEchoServer:
    """benches/peers/ws-echo.js on CPU 1: a Node `ws` echo that counts the messages it echoed."""

    def __init__(self):
        self.proc = subprocess.Popen(["taskset", "-c", SERVER_CPU, "node", str(HERE / "ws-echo.js")],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        self.ws = f"ws://127.0.0.1:{int(line.split()[-1])}"

    def stop(self):
        """Stops it; the messages it echoed."""
        self.proc.terminate()
        _, err = self.proc.communicate(timeout=10)
        found = re.search(r"messages (\d+)", err)
        return int(found.group(1)) if found else 0


ECHO_RATES = ((500, 10), (1000, 40))


def echo_rates(volley, minimal, tmp, repeats):
    """One worker thread's CPU per echo at two rates per client, next to the minimal loop at the
    same fixed rates, a fresh Node echo server per client (messages counted there)."""
    log(f"\n== echo-rates: raw WebSocket echo against a Node `ws` echo server on CPU 1, "
        f"{RAW_SECONDS} s, volley --threads 1 and the minimal loop at "
        + " and ".join(f"{c:,} x {r}/s" for c, r in ECHO_RATES) + ", client on CPU 0")
    for round_ in range(repeats):
        log(f"  -- round {round_ + 1} of {repeats}")
        steady = {}
        for clients, per_client in (ECHO_RATES if round_ % 2 == 0 else ECHO_RATES[::-1]):
            log(f"  ({load_note()})")
            server = WsEchoServer()
            ran = run_minimal(minimal, ["echo", f"{server.ws}/", clients, RAW_SECONDS,
                                        per_client])
            echoed = server.stop()
            if ran is None:
                return
            figures, m_cpu, _ = ran
            phase = figures["phase_cpu_s"] * 1e6 / figures["events"]
            log(f"  minimal loop {clients} x {per_client}/s: "
                f"{figures['events'] / figures['phase_s']:.0f} echoes/s, process CPU {m_cpu:.2f} s "
                f"= {m_cpu * 1e6 / max(echoed, 1):.2f} µs per message at the server ({echoed}), "
                f"echo phase {phase:.2f} µs/echo")
            log(f"  ({load_note()})")
            server = WsEchoServer()
            v = run_volley(volley, volley_scenario(f"{server.ws}/", "ws", clients,
                                                   f"{per_client}/s", f"{RAW_SECONDS}s", "1s"),
                           tmp, f"volley-rates-{clients}-{round_}")
            echoed = server.stop()
            rate = steady_median(v["series"], "received", 3, RAW_SECONDS)
            window = steady_cpu_per_event(v["client"], rate, 4, RAW_SECONDS - 1)
            steady[(clients, per_client)] = window
            log(f"  volley {clients} x {per_client}/s: {rate:.0f} echoes/s, client CPU "
                f"{v['cpu']:.2f} s = {v['cpu'] * 1e6 / max(echoed, 1):.2f} µs per message at the "
                f"server ({echoed}), steady {window:.2f} µs/echo (4-{RAW_SECONDS - 1} s); against "
                f"the minimal loop at the same rate {window / phase:.3f}")
        (low_c, low_r), (high_c, high_r) = ECHO_RATES
        log(f"  ratio {low_c} x {low_r}/s against {high_c} x {high_r}/s, volley steady: "
            f"{steady[ECHO_RATES[0]] / steady[ECHO_RATES[1]]:.3f}")


def raw_receive(volley, minimal, tmp, repeats, kind):
    """The receive path with gap tracking against the receive-only loop, on the same server
    stream: a talker's broadcast (`fanout`) or the server's own ticker (`ticker`)."""
    if kind == "fanout":
        what = (f"a talker at {FANOUT_RATE}/s into a /broadcast room of {FANOUT_CLIENTS} "
                f"({FANOUT_CLIENTS * FANOUT_RATE:,} deliveries/s)")
        path, talk, metric = "/broadcast?room=peers", [FANOUT_RATE], "fanout"
    else:
        what = (f"{FANOUT_CLIENTS} watchers of /ticker every {TICKER_EVERY_MS} ms "
                f"({FANOUT_CLIENTS * 1000 // TICKER_EVERY_MS:,} ticks/s)")
        path, talk, metric = f"/ticker?every={TICKER_EVERY_MS}ms", [], "ticks"
    log(f"\n== raw-{kind}: {what}, {RAW_SECONDS} s, volley serve --threads 1 on CPU 1, "
        "client on CPU 0")
    server = VolleyServer(volley)
    try:
        for round_ in range(repeats):
            log(f"  -- round {round_ + 1} of {repeats}")
            log(f"  ({load_note()})")
            before = server.cpu_s()
            ran = run_minimal(minimal, ["receive", f"{server.ws}{path}", FANOUT_CLIENTS,
                                        RAW_SECONDS, *talk])
            server_m = server.cpu_s() - before
            if ran is None:
                return
            figures, cpu, m = ran
            received = figures["events"]
            minimal_phase = figures["phase_cpu_s"] * 1e6 / received
            log(f"  minimal receive-only loop: {received / figures['phase_s']:.0f} messages/s, "
                f"{received} messages in its {figures['phase_s']:.1f} s phase at "
                f"{minimal_phase:.2f} µs/message; process CPU {cpu:.2f} s over connects, a "
                f"2 s warm-up and the phase; peak RSS {m.peak_rss_kib()} KiB; server CPU "
                f"{server_m:.2f} s")
            log(f"  ({load_note()})")
            scenario = (fanout_scenario(f"{server.ws}{path}", FANOUT_CLIENTS, FANOUT_RATE,
                                        RAW_SECONDS) if kind == "fanout"
                        else ticker_scenario(f"{server.ws}{path}", FANOUT_CLIENTS, RAW_SECONDS))
            before = server.cpu_s()
            v = run_volley(volley, scenario, tmp, f"volley-{kind}-{round_}")
            server_v = server.cpu_s() - before
            s = v["summary"]
            got = max(int(s[f"{metric}.received"]["count"]), 1)
            rate = steady_median(v["series"], "received", 3, RAW_SECONDS)
            steady = steady_cpu_per_event(v["client"], rate, 4, RAW_SECONDS - 1)
            e = s[metric]
            log(f"  volley: {rate:.0f} messages/s (median of seconds 3-{RAW_SECONDS}), {got} "
                f"received, client CPU {v['cpu']:.2f} s = {v['cpu'] * 1e6 / got:.2f} µs/message "
                f"(connects included), steady {steady:.2f} µs/message (4-{RAW_SECONDS - 1} s), "
                f"peak RSS {v['rss']} KiB, server CPU {server_v * 1e6 / got:.2f} µs/message, "
                f"latency ms p50 {float(e['p50_us']) / 1e3:.3f} p99 "
                f"{float(e['p99_us']) / 1e3:.3f} max {float(e['max_us']) / 1e3:.3f}, errors "
                f"{s['errors']['count']}, lost {s[f'{metric}.lost']['count']}, gaps "
                f"{s[f'{metric}.gap']['count']}, duplicates {s[f'{metric}.duplicate']['count']}")
            log(f"  ratio volley/minimal, client CPU per message: steady (volley's steady window "
                f"against the loop's receive phase) {steady / minimal_phase:.3f}")
    finally:
        server.stop()


RAMP_CLIENTS = 15000
RAMP_RATE = 5000


def ramp(volley, tmp):
    log(f"\n== ramp: {RAMP_CLIENTS} raw WebSocket clients at ramp = \"{RAMP_RATE}/s\", volley serve "
        "--threads 1 on CPU 1")
    server = VolleyServer(volley)
    try:
        log(f"  ({load_note()})")
        v = run_volley(volley, volley_scenario(f"{server.ws}/echo", "ws", RAMP_CLIENTS, None, "5s",
                                               f"{RAMP_RATE}/s"), tmp, "volley-ramp")
        log("  second  connected  planned  connecting  errors")
        for r in v["series"][:8]:
            t = int(r["second"])
            planned = min(RAMP_CLIENTS, RAMP_RATE * t)
            log(f"  {t:>6}  {r['connected']:>9}  {planned:>7}  {r['connecting']:>10}  {r['errors']:>6}")
        full = next((int(r["second"]) for r in v["series"] if int(r["connected"]) >= RAMP_CLIENTS),
                    None)
        connect = v["summary"]["connect"]
        log(f"  all connected by the end of second {full} (planned: {RAMP_CLIENTS / RAMP_RATE:.0f}); "
            f"connect latency ms p50 {float(connect['p50_us']) / 1e3:.2f} p99 "
            f"{float(connect['p99_us']) / 1e3:.2f}; client CPU {v['cpu']:.2f} s")
    finally:
        server.stop()


# ----------------------------------------------------------------------------- conversations

CONV_SECONDS = 30
CONV_PUBLISH_EVERY_MS = int(os.environ.get("PEERS_CONV_EVERY_MS", "50"))
# Publishing starts with the first subscription and stops this long before the clients do, so
# that a client that keeps up has acknowledged everything before it leaves.
CONV_PUBLISH_FOR_MS = (CONV_SECONDS - 4) * 1000
# The steady window, in seconds since the client process started: inside the publishing for both
# tools (Locust takes a second or two to start).
CONV_WINDOW = (8, 24)
LOCUST = VENV / "bin" / "locust"
USERS_CSV = ROOT / "scenarios" / "data" / "mq-users.csv"


class StatsAt:
    """GET /stats of a server at given moments of a client's run (seconds since the client
    started), from a thread: `taken` holds (seconds, totals) as they come."""

    def __init__(self, server, moments):
        self.server, self.moments, self.taken = server, moments, []
        self.thread = None

    def __call__(self, client):
        def take():
            for moment in self.moments:
                time.sleep(max(0.0, client.started + moment - time.monotonic()))
                if client.proc.poll() is not None:
                    return
                self.taken.append((time.monotonic() - client.started,
                                   self.server.stats()["totals"]))
        self.thread = threading.Thread(target=take, daemon=True)
        self.thread.start()

    def steady(self, client, counter):
        """(the counter's growth per second, client CPU µs per unit of it) between the first
        and last moment; NaNs when a moment was missed."""
        if self.thread:
            self.thread.join()
        if len(self.taken) < 2:
            return float("nan"), float("nan")
        (t0, a), (t1, b) = self.taken[0], self.taken[-1]
        grown = b[counter] - a[counter]
        cpu, _ = client.cpu_between(t0, t1)
        return grown / (t1 - t0), (cpu * 1e6 / grown if grown else float("nan"))


def conversation_scenario(target, users, seconds):
    """The conversation as a volley scenario: log in, connect with the token, subscribe to both
    channels (acks awaited), answer every message with `received {id}`; the channels' seqs
    tracked per channel, their timestamps giving one-way latency."""
    return "\n".join([
        'name = "peers-conversation"',
        f'target = "{target}"',
        'protocol = "socketio"',
        f'duration = "{seconds - 1}s"',
        'ramp = "1s"',
        'drain = "2s"',
        "",
        "[[data]]",
        'name = "users"',
        f'file = "{USERS_CSV}"',
        'pick = "unique"',
        "",
        "[socketio]",
        'transport = "websocket"',
        'auth = { token = "{{token}}" }',
        "recovery = false",
        "",
        "[[group]]",
        'name = "users"',
        f"clients = {users}",
        "before_connect = [",
        '  { http = "POST /login", name = "login", json = { user = "{{users.user}}", '
        'password = "{{users.password}}" }, status = 200, capture = { token = "/token" } },',
        "]",
        "on_connect = [",
        '  { emit = "subscribe", data = { channel = "c0" }, ack = true },',
        '  { emit = "subscribe", data = { channel = "c1" }, ack = true },',
        "]",
        "",
        "[[group.on]]",
        'event = "message"',
        'emit = "received"',
        'data = { id = "{{/id}}" }',
        "",
        "[[expect]]",
        'event = "message"',
        'from = "server"',
        'seq = "/seq"',
        'stream = "/channel"',
        'timestamp = "/ts"',
    ]) + "\n"


def run_locust(target, users, seconds, tmp, label, during=None):
    """benches/peers/locustfile.py headless in one process; returns a dict of its figures: its
    own counts (locustfile.py's totals) and its stats rows by name."""
    prefix = Path(tmp) / label
    counts = Path(tmp) / f"{label}-counts.json"
    client = Client([str(LOCUST), "-f", str(HERE / "locustfile.py"), "--headless", "-u",
                     str(users), "-r", str(users), "-t", f"{seconds}s", "--host", target,
                     "--only-summary", "--csv", str(prefix), "--loglevel", "WARNING"],
                    cwd=HERE, env={"VOLLEY_PEERS_LOCUST_OUT": str(counts)})
    if during:
        during(client)
    code, cpu, _, err = client.wait(timeout=seconds + 60)
    if code != 0:
        log(f"  locust exited {code}: {err.strip()[-500:]}")
    tracebacks = err.count("Traceback (most recent call last)")
    if tracebacks:
        last = err.strip().splitlines()[-1]
        log(f"  locust wrote {tracebacks} tracebacks on stderr, the last ending: {last}")
    stats_csv = Path(f"{prefix}_stats.csv")
    stats = {r["Name"]: r for r in read_csv(stats_csv)} if stats_csv.exists() else {}
    found = json.loads(counts.read_text()) if counts.exists() else {}
    return {"cpu": cpu, "rss": client.peak_rss_kib(), "counts": found, "stats": stats,
            "wall": client.wall, "code": code, "client": client}


def conversation_line(label, run, server_cpu, end, sampler):
    """Prints the figures every client has in this workload; returns (whole, steady) client CPU
    µs per acknowledged message."""
    acked = max(end["acked"], 1)
    rate, steady = sampler.steady(run["client"], "acked")
    whole = run["cpu"] * 1e6 / acked
    log(f"  {label}: {end['acked']} acknowledged (server), {rate:.0f}/s in "
        f"{CONV_WINDOW[0]}-{CONV_WINDOW[1]} s; client CPU {run['cpu']:.2f} s = {whole:.1f} "
        f"µs/ack (start-up, logins and connects included), steady {steady:.1f} µs/ack; peak RSS "
        f"{run['rss']} KiB; server CPU {server_cpu * 1e6 / acked:.1f} µs/ack; server: produced "
        f"{end['produced']}, pushed {end['pushed_live']}, unacked {end['unacked']}, "
        f"never_delivered {end['never_delivered']}, ack_unknown {end['ack_unknown']}, logins "
        f"{end['logins_ok']}, connections {end['connections']}; wall {run['wall']:.1f} s")
    return whole, steady


def conversation(volley, tmp, repeats, users):
    per_s = users * 2 * 1000 // CONV_PUBLISH_EVERY_MS
    log(f"\n== conversation: {users} users, {CONV_SECONDS} s, one message per channel every "
        f"{CONV_PUBLISH_EVERY_MS} ms ({per_s:,} messages/s to acknowledge), a fresh "
        "message-queue.js server on CPU 1 per client, client on CPU 0")
    log(f"  ({venv_versions('locust', 'python-socketio', 'python-engineio', 'websocket-client')})")
    for round_ in range(repeats):
        log(f"  -- round {round_ + 1} of {repeats}")
        figures, runs = {}, {}
        order = ("locust", "volley") if round_ % 2 == 0 else ("volley", "locust")
        for tool in order:
            log(f"  ({load_note()})")
            server = MessageQueueServer(max(users, 1000), CONV_PUBLISH_EVERY_MS,
                                        CONV_PUBLISH_FOR_MS)
            try:
                sampler = StatsAt(server, CONV_WINDOW)
                before = server.cpu_s()
                if tool == "locust":
                    run = run_locust(server.http, users, CONV_SECONDS, tmp,
                                     f"locust-conv-{users}-{round_}", sampler)
                else:
                    scenario = conversation_scenario(server.http, users, CONV_SECONDS)
                    run = run_volley(volley, scenario, tmp, f"volley-conv-{users}-{round_}",
                                     during=sampler)
                server_cpu = server.cpu_s() - before
                end = server.stats()["totals"]
            finally:
                server.stop()
            emitted = end["pushed_live"] + end["replayed"]
            if tool == "locust":
                c, st = run["counts"], run["stats"]
                figures[tool] = conversation_line("locust", run, server_cpu, end, sampler)
                m, login = st.get("message", {}), st.get("login", {})
                got = c.get("received", 0)
                log(f"    locust's own counts: {got} messages received of {emitted} the server "
                    f"emitted ({emitted - got} not read before it stopped), {c.get('replied')} "
                    f"replies, {c.get('unanswered')} read after its disconnect (not answered), "
                    f"gaps {c.get('gaps')}, duplicates {c.get('duplicates')}, reorders "
                    f"{c.get('reorders')}, users connected {c.get('connected')} of {users}, "
                    f"errors {c.get('errors')}; latency ms (Locust's rounding) message p50 "
                    f"{m.get('50%')} p99 {m.get('99%')} max {m.get('100%')}, login p50 "
                    f"{login.get('50%')} p99 {login.get('99%')}")
            else:
                s = run["summary"]
                figures[tool] = conversation_line("volley", run, server_cpu, end, sampler)
                e, login = s["message"], s["login"]
                log(f"    volley's own counts: {s['message.received']['count']} messages received "
                    f"of {emitted} the server emitted, {s['sent']['count']} sent (replies and "
                    f"subscribes), lost {s['message.lost']['count']}, gaps "
                    f"{s['message.gap']['count']}, duplicates {s['message.duplicate']['count']}, "
                    f"errors {s['errors']['count']}; latency ms message p50 "
                    f"{float(e['p50_us']) / 1e3:.2f} p99 {float(e['p99_us']) / 1e3:.2f} max "
                    f"{float(e['max_us']) / 1e3:.2f}, login p50 {float(login['p50_us']) / 1e3:.2f} "
                    f"p99 {float(login['p99_us']) / 1e3:.2f}")
            runs[tool] = run
        (vw, vs), (lw, ls) = figures["volley"], figures["locust"]
        log(f"  ratio volley/locust, client CPU per acknowledged message: whole run "
            f"{vw / lw:.3f}, steady {vs / ls:.3f}; peak RSS "
            f"{runs['volley']['rss'] / runs['locust']['rss']:.3f}")


# ----------------------------------------------------------------------------- the reply path

# At 20 ms (50,000 ticks/s) the server's core is 50-80 % busy once it also reads the replies; in
# some rounds its ticks then arrive more than a tick late (latency p50 above 20 ms) and the
# client's cost per tick swings by a third between rounds (the replying/plain ratio went from
# 0.70 to 1.60 in ten rounds). At 40 ms it has room, and the rounds agree.
SIO_TICK_MS = int(os.environ.get("PEERS_SIO_TICK_MS", "40"))


def sio_ticker_scenario(target, clients, seconds, reply):
    """`clients` Socket.IO watchers of the builtin server's `tick` (room `ticker`, joined with an
    ack): gaps from the seqs, one-way latency from the timestamps. With `reply`, each also answers
    every tick at once with `received {seq}`, the tick's own seq (an event the server ignores)."""
    on = (["[[group.on]]", 'event = "tick"', 'emit = "received"', 'data = { seq = "{{/seq}}" }',
           ""] if reply else [])
    return "\n".join([
        'name = "peers-sio-reply"',
        f'target = "{target}"',
        'protocol = "socketio"',
        f'duration = "{seconds}s"',
        'ramp = "1s"',
        'drain = "1s"',
        "",
        "[socketio]",
        'transport = "websocket"',
        "recovery = false",
        "",
        "[[group]]",
        'name = "watchers"',
        f"clients = {clients}",
        'on_connect = [{ emit = "join", data = "ticker", ack = true }]',
        "",
        *on,
        "[[expect]]",
        'name = "ticks"',
        'event = "tick"',
        'from = "server"',
        'seq = "/seq"',
        'timestamp = "/ts"',
        'timestamp_unit = "ms"',
        'within = "1s"',
    ]) + "\n"


def sio_reply(volley, tmp, repeats):
    log(f"\n== sio-reply: {FANOUT_CLIENTS} Socket.IO watchers of `tick` every {SIO_TICK_MS} ms "
        f"({FANOUT_CLIENTS * 1000 // SIO_TICK_MS:,} ticks/s), {RAW_SECONDS} s, volley tracking "
        "only, then also replying to every tick; volley serve --threads 1 on CPU 1 (it ignores "
        "the replies' event), client on CPU 0")
    server = VolleyServer(volley, ["--tick-every", f"{SIO_TICK_MS}ms"])
    target = server.ws.replace("ws://", "http://", 1)
    try:
        for round_ in range(repeats):
            log(f"  -- round {round_ + 1} of {repeats}")
            steady = {}
            order = (False, True) if round_ % 2 == 0 else (True, False)
            for reply in order:
                label = "replying" if reply else "plain"
                log(f"  ({load_note()})")
                before = server.cpu_s()
                scenario = sio_ticker_scenario(target, FANOUT_CLIENTS, RAW_SECONDS, reply)
                v = run_volley(volley, scenario, tmp, f"volley-reply-{label}-{round_}")
                server_v = server.cpu_s() - before
                s = v["summary"]
                got = max(int(s["ticks.received"]["count"]), 1)
                rate = steady_median(v["series"], "received", 3, RAW_SECONDS)
                steady[reply] = steady_cpu_per_event(v["client"], rate, 4, RAW_SECONDS - 1)
                e = s["ticks"]
                log(f"  volley {label}: {rate:.0f} ticks/s (median of seconds 3-{RAW_SECONDS}), "
                    f"{got} received, {s['sent']['count']} sent, client CPU {v['cpu']:.2f} s = "
                    f"{v['cpu'] * 1e6 / got:.2f} µs/tick (connects included), steady "
                    f"{steady[reply]:.2f} µs/tick (4-{RAW_SECONDS - 1} s), peak RSS {v['rss']} "
                    f"KiB, server CPU {server_v * 1e6 / got:.2f} µs/tick "
                    f"({server_v / v['wall']:.0%} of its core), latency ms p50 "
                    f"{float(e['p50_us']) / 1e3:.3f} p99 {float(e['p99_us']) / 1e3:.3f} max "
                    f"{float(e['max_us']) / 1e3:.3f}, errors {s['errors']['count']}, lost "
                    f"{s['ticks.lost']['count']}, gaps {s['ticks.gap']['count']}, duplicates "
                    f"{s['ticks.duplicate']['count']}")
            log(f"  ratio replying/plain, client CPU per tick (steady): "
                f"{steady[True] / steady[False]:.3f}")
    finally:
        server.stop()


# ----------------------------------------------------------------------------- HTTP steps

LOGIN_CONNS = 50
LOGIN_SECONDS = 10
LOGIN_PACE_MS = 10
LOGIN_ARRIVALS = 500
LOGIN_JSON = '{ user = "user0", password = "pw0" }'


def login_head(name, target, seconds):
    """The top of a login scenario: Socket.IO over websocket, connecting with the captured
    token."""
    return [f'name = "{name}"', f'target = "{target}"', 'protocol = "socketio"',
            f'duration = "{seconds}s"', 'ramp = "1s"', 'drain = "1s"', "", "[socketio]",
            'transport = "websocket"', 'auth = { token = "{{token}}" }', "recovery = false", ""]


def login_steps_scenario(target, users, steps, seconds, pace_ms=None):
    """`users` users, each logging in once before connecting (for the token its Socket.IO
    connection needs) and then `steps` times in a row (on_connect HTTP steps) over its keep-alive
    HTTP connection: a closed loop of logins per user, or with `pace_ms` a think time that long
    after each. Steps still to take when the user's time is up (the ramp plus `duration`) are
    not taken."""
    step = f'  {{ http = "POST /login", name = "login", json = {LOGIN_JSON}, status = 200 }},'
    if pace_ms:
        step += f'\n  {{ wait = "{pace_ms}ms" }},'
    return "\n".join([
        *login_head("peers-http-login", target, seconds),
        "[[group]]",
        'name = "users"',
        f"clients = {users}",
        "before_connect = [",
        f'  {{ http = "POST /login", name = "first_login", json = {LOGIN_JSON}, status = 200, '
        'capture = { token = "/token" } },',
        "]",
        "on_connect = [",
        *[step] * steps,
        "]",
    ]) + "\n"


def login_arrivals_scenario(target, rate, seconds):
    """Users arriving at `rate`/s, each logging in, connecting with the token and leaving after
    1 s."""
    return "\n".join([
        *login_head("peers-http-arrivals", target, seconds),
        "[[group]]",
        'name = "arrivals"',
        f'arrivals = "{rate}/s"',
        'lifetime = "1s"',
        "before_connect = [",
        f'  {{ http = "POST /login", name = "login", json = {LOGIN_JSON}, status = 200, '
        'capture = { token = "/token" } },',
        "]",
    ]) + "\n"


def login_minimal(minimal, label, per_second=None):
    """The minimal hyper loop against a fresh message-queue server; prints its figures and returns
    (logins/s, µs per login over the login phase), or None when it failed."""
    log(f"  ({load_note()})")
    server = MessageQueueServer()
    try:
        before = server.cpu_s()
        rate_arg = [per_second] if per_second else []
        ran = run_minimal(minimal, ["http-login", f"{server.http}/login", LOGIN_CONNS,
                                    LOGIN_SECONDS, *rate_arg])
        server_m = server.cpu_s() - before
    finally:
        server.stop()
    if ran is None:
        return None
    figures, cpu, m = ran
    logins = max(figures["events"], 1)
    rate = logins / figures["phase_s"]
    phase = figures["phase_cpu_s"] * 1e6 / logins
    log(f"  minimal loop ({label}): {rate:.0f} logins/s, {logins} logins, process CPU {cpu:.2f} s "
        f"= {cpu * 1e6 / logins:.2f} µs/login (connects included; login phase alone {phase:.2f} "
        f"µs), peak RSS {m.peak_rss_kib()} KiB, server CPU {server_m * 1e6 / logins:.2f} "
        "µs/login")
    return rate, phase


def login_volley(volley, tmp, label, scenario_of):
    """volley against a fresh message-queue server, `scenario_of(target)`: prints the figures of a
    run of login steps and returns (logins/s, steady µs per login)."""
    log(f"  ({load_note()})")
    server = MessageQueueServer()
    try:
        before = server.cpu_s()
        v = run_volley(volley, scenario_of(server.http), tmp, label)
        server_v = server.cpu_s() - before
        end = server.stats()["totals"]
    finally:
        server.stop()
    s = v["summary"]
    done = max(int(s["login"]["count"]) + int(s["first_login"]["count"]), 1)
    seconds = [int(r["second"]) for r in v["series"] if int(r["login_count"]) > 0]
    # From the third second to the second before the last with logins: the steps' own end, not
    # the planned one (they run past `duration` when they take longer).
    window = (3, max(seconds) - 1) if seconds else (3, 3)
    rate = steady_median(v["series"], "login_count", *window)
    steady = steady_cpu_per_event(v["client"], rate, window[0], window[1])
    log(f"  volley ({label}): {rate:.0f} logins/s (median of seconds {window[0]}-{window[1]}), "
        f"{done} logins (server: {end['logins_ok']} ok, "
        f"{end['logins_refused'] + end['logins_bad']} refused), client CPU {v['cpu']:.2f} s = "
        f"{v['cpu'] * 1e6 / done:.2f} µs/login (connects included), steady {steady:.2f} "
        f"µs/login, peak RSS {v['rss']} KiB, server CPU {server_v * 1e6 / done:.2f} µs/login, "
        f"login latency ms p50 {float(s['login']['p50_us']) / 1e3:.3f} p99 "
        f"{float(s['login']['p99_us']) / 1e3:.3f}, errors {s['errors']['count']}, wall "
        f"{v['wall']:.1f} s")
    return rate, steady


def http_login(volley, minimal, tmp, repeats):
    log(f"\n== http-login: POST /login of the message-queue server (a fresh one on CPU 1 per "
        f"client), client on CPU 0, {LOGIN_CONNS} keep-alive connections, {LOGIN_SECONDS} s: the "
        "minimal hyper loop closed; volley's users running as many login steps in a row as fill "
        f"the time at the loop's rate; volley's users pausing {LOGIN_PACE_MS} ms after each login, "
        f"then the minimal loop at the rate they reached; volley's users arriving at "
        f"{LOGIN_ARRIVALS}/s (log in, connect, leave after 1 s)")
    for round_ in range(repeats):
        log(f"  -- round {round_ + 1} of {repeats}")
        closed = login_minimal(minimal, "closed")
        if closed is None:
            return
        steps = max(1, round(closed[0] * LOGIN_SECONDS / LOGIN_CONNS))
        _, v_closed = login_volley(
            volley, tmp, f"{LOGIN_CONNS} users x {steps} login steps",
            lambda target: login_steps_scenario(target, LOGIN_CONNS, steps, LOGIN_SECONDS))
        log(f"  ratio volley/minimal, closed, client CPU per login (steady): "
            f"{v_closed / closed[1]:.3f}")

        paced_steps = LOGIN_SECONDS * 1000 // LOGIN_PACE_MS
        v_rate, v_paced = login_volley(
            volley, tmp, f"{LOGIN_CONNS} users x {paced_steps} login steps, {LOGIN_PACE_MS} ms "
            "pause after each",
            lambda target: login_steps_scenario(target, LOGIN_CONNS, paced_steps, LOGIN_SECONDS,
                                                LOGIN_PACE_MS))
        per_conn = round(v_rate / LOGIN_CONNS, 1)
        paced = login_minimal(minimal, f"{per_conn}/s per connection", per_conn)
        if paced is None:
            return
        log(f"  ratio volley/minimal, paced, client CPU per login (steady): "
            f"{v_paced / paced[1]:.3f}")

        log(f"  ({load_note()})")
        server = MessageQueueServer()
        try:
            before = server.cpu_s()
            scenario = login_arrivals_scenario(server.http, LOGIN_ARRIVALS, LOGIN_SECONDS)
            a = run_volley(volley, scenario, tmp, f"volley-arrivals-{round_}")
            server_a = server.cpu_s() - before
            end = server.stats()["totals"]
        finally:
            server.stop()
        s = a["summary"]
        done = max(int(s["login"]["count"]), 1)
        a_rate = steady_median(a["series"], "login_count", 3, LOGIN_SECONDS)
        a_steady = steady_cpu_per_event(a["client"], a_rate, 4, LOGIN_SECONDS - 1)
        log(f"  volley, arrivals {LOGIN_ARRIVALS}/s: {a_rate:.0f} logins/s (median of seconds "
            f"3-{LOGIN_SECONDS}), {done} logins, {s['connects']['count']} connects (server: "
            f"{end['logins_ok']} logins, {end['connections']} connections), client CPU "
            f"{a['cpu']:.2f} s = {a['cpu'] * 1e6 / done:.2f} µs per user (login, connect, "
            f"Socket.IO handshake, close), steady {a_steady:.2f} µs per user (4-"
            f"{LOGIN_SECONDS - 1} s), peak RSS {a['rss']} KiB, server CPU "
            f"{server_a * 1e6 / done:.2f} µs per user, latency ms login p50 "
            f"{float(s['login']['p50_us']) / 1e3:.3f} p99 {float(s['login']['p99_us']) / 1e3:.3f}, "
            f"connect p50 {float(s['connect']['p50_us']) / 1e3:.3f} p99 "
            f"{float(s['connect']['p99_us']) / 1e3:.3f}, errors {s['errors']['count']}")

LIVE_RATE = 50


class PrometheusServer:
    """Debian's Prometheus on CPU 1, scraping `target` every second, receiving remote writes."""

    def __init__(self, tmp, target):
        config = Path(tmp) / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: volley\n"
                          f"    static_configs:\n      - targets: [\"{target}\"]\n")
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, "/usr/bin/prometheus", f"--config.file={config}",
             f"--storage.tsdb.path={Path(tmp) / 'prometheus-data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-remote-write-receiver"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        sys.exit("run.py: Prometheus did not become ready")

    def write_url(self):
        return f"http://127.0.0.1:{self.port}/api/v1/write"

    def samples(self, run_id):
        """Samples Prometheus holds of the run's volley_sent_total, scraped and pushed."""
        query = urllib.parse.quote(f'count_over_time(volley_sent_total{{run_id="{run_id}"}}[10m])')
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v1/query?query={query}") as r:
            result = json.load(r)["data"]["result"]
        return {("scraped" if s["metric"].get("job") else "pushed"): int(s["value"][1])
                for s in result}

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def live_metrics(volley, tmp, repeats):
    log(f"\n== live-metrics: raw WebSocket echo, {RAW_CLIENTS} clients x {LIVE_RATE}/s "
        f"({RAW_CLIENTS * LIVE_RATE:,} echoes/s), {RAW_SECONDS} s, volley serve --threads 1 and "
        "Prometheus on CPU 1, client on CPU 0; plain, then scraped every second and pushing")
    server = VolleyServer(volley)
    metrics_port = free_port()
    prometheus = PrometheusServer(tmp, f"127.0.0.1:{metrics_port}")
    scenario = volley_scenario(f"{server.ws}/echo", "ws", RAW_CLIENTS, f"{LIVE_RATE}/s",
                               f"{RAW_SECONDS}s", "1s")
    live = ["--metrics-listen", str(metrics_port), "--metrics-linger", "3s",
            "--prometheus-write", prometheus.write_url()]
    try:
        for round_ in range(repeats):
            log(f"  -- round {round_ + 1} of {repeats}")
            steady = {}
            order = (("plain", []), ("live", live))
            for label, extra in (order if round_ % 2 == 0 else order[::-1]):
                log(f"  ({load_note()})")
                name = f"volley-live-{label}-{round_}"
                v = run_volley(volley, scenario, tmp, name, extra=extra)
                rate = steady_median(v["series"], "received", 3, RAW_SECONDS)
                steady[label] = steady_cpu_per_event(v["client"], rate, 4, RAW_SECONDS - 1)
                s = v["summary"]
                note = ""
                if label == "live":
                    run_id = json.loads((Path(tmp) / f"{name}-out" / "run.json").read_text())["run_id"]
                    note = (f", pushes {s['prometheus.pushed']['count']} made "
                            f"{s['prometheus.dropped']['count']} dropped, samples in Prometheus "
                            f"{prometheus.samples(run_id)}")
                log(f"  volley {label}: {rate:.0f} echoes/s, client CPU {v['cpu']:.2f} s = "
                    f"{v['cpu'] * 1e6 / volley_echoes(v):.2f} µs/echo, steady "
                    f"{steady[label]:.2f} µs/echo (4-{RAW_SECONDS - 1} s){note}")
            log(f"  live against plain, steady client CPU per echo: "
                f"{steady['live'] / steady['plain']:.4f}")
    finally:
        prometheus.stop()
        server.stop()


def main():
    wanted = sys.argv[1:] or ["sio-echo", "sio-idle", "raw-echo", "raw-fanout", "raw-ticker",
                              "ramp"]
    known = {"sio-echo", "sio-idle", "raw-echo", "raw-fanout", "raw-ticker", "ramp",
             "conversation", "sio-reply", "raw-reply", "echo-rates", "http-login",
             "live-metrics"}
    if set(wanted) - known:
        sys.exit(f"run.py: unknown workload(s) {sorted(set(wanted) - known)}; known: "
                 f"{sorted(known)}")
    repeats = int(os.environ.get("PEERS_REPEATS", "2"))
    conv_users = [int(n) for n in os.environ.get("PEERS_CONV_USERS", "100").split(",")]
    raise_fd_limit()
    npm_ci(NODE_SERVER_DIR)
    npm_ci(HERE, {"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"})
    if "conversation" in wanted:
        venv_install()
    volley, minimal = build()
    log(f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
        f"{load_note()}")
    with tempfile.TemporaryDirectory(prefix="volley-peers-") as tmp:
        if "sio-echo" in wanted:
            sio_echo(volley, tmp)
        if "sio-idle" in wanted:
            sio_idle(volley, tmp)
        if "raw-echo" in wanted:
            raw_echo(volley, minimal, tmp, repeats)
        for kind in ("fanout", "ticker"):
            if f"raw-{kind}" in wanted:
                raw_receive(volley, minimal, tmp, repeats, kind)
        if "ramp" in wanted:
            ramp(volley, tmp)
        if "conversation" in wanted:
            for users in conv_users:
                conversation(volley, tmp, repeats, users)
        if "sio-reply" in wanted:
            sio_reply(volley, tmp, repeats)
        if "raw-reply" in wanted:
            raw_reply(volley, tmp, repeats)
        if "echo-rates" in wanted:
            echo_rates(volley, minimal, tmp, repeats)
        if "http-login" in wanted:
            http_login(volley, minimal, tmp, repeats)
        if "live-metrics" in wanted:
            live_metrics(volley, tmp, repeats)


if __name__ == "__main__":
    main()
