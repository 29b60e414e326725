#!/usr/bin/env python3
"""Side by side: volley, Artillery and a minimal tokio-tungstenite loop on the same targets.

    benches/peers/run.py [WORKLOAD...]      (default: all of them)

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

Each client runs as a child of this script, pinned to CPU 0 (the server to CPU 1). For each client
process tree it prints: events/s, CPU seconds (user + system of the whole tree, from wait4's
rusage, which counts every reaped descendant), peak RSS (VmHWM of every process of the tree,
polled every 100 ms, summed) and the latency percentiles the tool itself reports.

Installs what it needs: Artillery (pinned by benches/peers/package-lock.json) into
benches/peers/node_modules, socket.io into tests/servers/socketio/node_modules, and builds volley
and the minimal loop with cargo (CARGO_TARGET_DIR is honoured). Sends traffic to 127.0.0.1 only.
"""

import csv
import json
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
NODE_SERVER_DIR = ROOT / "tests" / "servers" / "socketio"
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
        out, err = self.proc.stdout.read(), self.proc.stderr.read()
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


class VolleyServer:
    """`volley serve --threads 1` on CPU 1."""

    def __init__(self, volley):
        self.proc = subprocess.Popen(["taskset", "-c", SERVER_CPU, str(volley), "serve",
                                      "--threads", "1"], stdout=subprocess.PIPE, text=True)
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


def run_volley(volley, scenario_text, tmp, label, threads=1, hold_signal_after=None):
    """`volley run` as a client process; returns a dict of its figures."""
    path = Path(tmp) / f"{label}.toml"
    path.write_text(scenario_text)
    out = Path(tmp) / f"{label}-out"
    client = Client([str(volley), "run", str(path), "--quiet", "--threads", str(threads),
                     "--out", str(out)])
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


def main():
    wanted = sys.argv[1:] or ["sio-echo", "sio-idle", "raw-echo", "raw-fanout", "raw-ticker",
                              "ramp"]
    repeats = int(os.environ.get("PEERS_REPEATS", "2"))
    raise_fd_limit()
    npm_ci(NODE_SERVER_DIR)
    npm_ci(HERE, {"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"})
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


if __name__ == "__main__":
    main()
