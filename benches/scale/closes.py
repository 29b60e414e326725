#!/usr/bin/env python3
"""How many connections close cleanly at the end of a large run, and whose side takes the time.

    python3 benches/scale/closes.py [CLIENTS] [CLIENT_PROCESSES] [SERVER_PROCESSES] [ws|socketio]

`volley serve --processes S` on 127.0.0.1:9100 (its counters on 127.0.0.1:9190 and up), and
`volley run --processes C` holding CLIENTS idle connections for 10 s after a 5,000/s ramp, with the
frames of 1 % of the clients logged. Every 0.25 s: both process trees' CPU time and RSS, and the
connections the servers have ended (their `volley_serve_connections_closed_total`), into curve.csv.
At the end: closes by code, and from the sampled clients' frames when their close frames went out
and how long the server's answer took.

VOLLEY_BIN=/path/to/volley runs that build (default: this tree's release build, built first).
Defaults: 100000 6 6 ws. Prints where the results and the curve are.
"""

import collections
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TICK = os.sysconf("SC_CLK_TCK")


def tree(pid):
    """The process and its children (the shards, the server processes)."""
    pids = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                pids += [int(c) for c in f.read().split()]
    except FileNotFoundError:
        pass
    return pids


def cpu_and_rss(pid):
    """CPU seconds and RSS KiB summed over a process tree (processes gone are left out)."""
    cpu, rss = 0, 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                stat = f.read()
            fields = stat[stat.rfind(")") + 2 :].split()
            cpu += int(fields[11]) + int(fields[12])
            with open(f"/proc/{p}/status") as f:
                rss += next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            pass
    return cpu / TICK, rss


def server_closed(processes):
    total = 0
    for k in range(processes):
        try:
            url = f"http://127.0.0.1:{9190 + k}/metrics"
            text = urllib.request.urlopen(url, timeout=0.2).read().decode()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("volley_serve_connections_closed_total"):
                total += float(line.split()[-1])
    return int(total)


def close_frames(frames):
    """Per sampled connection: when its close frame went out, when the server's came, its code."""
    sent, answered, codes = {}, {}, {}
    with open(frames) as f:
        for line in f:
            r = json.loads(line)
            if r.get("kind") == "frame" and r.get("opcode") == "close":
                (sent if r["dir"] == "c2s" else answered)[r["conn"]] = r["t"]
            elif r.get("kind") == "close":
                # No code: the connection never opened (a connect timeout).
                codes[r["conn"]] = r.get("close_code", "none")
    return sent, answered, codes


def main():
    numbers = sys.argv[1:4] + ["100000", "6", "6"][len(sys.argv[1:4]) :]
    clients, client_procs, server_procs = (int(n) for n in numbers)
    protocol = sys.argv[4] if len(sys.argv) > 4 else "ws"
    binary = os.environ.get("VOLLEY_BIN")
    if not binary:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        binary = os.path.join(target, "release", "volley")
    out = tempfile.mkdtemp(prefix="volley-closes.")
    target = {
        "ws": 'target = "ws://127.0.0.1:9100/echo"\n',
        "socketio": 'target = "http://127.0.0.1:9100"\nprotocol = "socketio"\n',
    }[protocol]
    with open(f"{out}/idle.toml", "w") as f:
        f.write(
            f'name = "closes"\n{target}duration = "10s"\nramp = "5000/s"\ndrain = "1s"\n'
            f'connect_timeout = "10s"\n\n[[group]]\nname = "idle"\nclients = {clients}\n'
        )
    server = subprocess.Popen(
        [binary, "serve", "--processes", str(server_procs), "--listen", "127.0.0.1:9100",
         "--metrics-listen", "127.0.0.1:9190"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    try:
        server.stdout.readline()
        run = subprocess.Popen(
            [binary, "run", f"{out}/idle.toml", "--processes", str(client_procs), "--quiet",
             "--log-clients", "1%", "--out", f"{out}/results"],
            stdout=open(f"{out}/summary.txt", "w"), stderr=open(f"{out}/run.log", "w"),
        )
        start = time.time()
        rows = []
        while run.poll() is None:
            client_cpu, client_rss = cpu_and_rss(run.pid)
            server_cpu, server_rss = cpu_and_rss(server.pid)
            rows.append((time.time() - start, client_cpu, client_rss, server_cpu, server_rss,
                         server_closed(server_procs)))
            time.sleep(0.25)
    finally:
        server.terminate()
        server.wait()
    with open(f"{out}/curve.csv", "w") as f:
        f.write("t_s,client_cpu_s,client_rss_kib,server_cpu_s,server_rss_kib,server_closed\n")
        for r in rows:
            f.write(f"{r[0]:.2f},{r[1]:.2f},{r[2]},{r[3]:.2f},{r[4]},{r[5]}\n")

    with open(f"{out}/results/run.json") as f:
        summary = json.load(f)["summary"]
    print(f"{clients} {protocol} connections, {client_procs} client and {server_procs} server processes")
    print(f"closes by code: {summary['closes_by_code']}")
    sent, answered, codes = close_frames(f"{out}/results/frames.jsonl")
    times = sorted(sent.values())
    waits = sorted(answered[c] - sent[c] for c in answered if c in sent)
    if times and waits:
        q = lambda p: waits[min(len(waits) - 1, int(len(waits) * p))] * 1000
        print(f"sampled clients: {len(codes)}, codes {dict(collections.Counter(codes.values()))}; "
              f"their close frames went out over {times[-1] - times[0]:.2f} s; "
              f"the server's answer came after p50 {q(0.5):.0f} ms, p90 {q(0.9):.0f} ms, "
              f"max {waits[-1] * 1000:.0f} ms ({len(waits)} answered)")
    closing = [r for r in rows if r[5] > 0]
    if closing:
        before = rows[rows.index(closing[0]) - 1]
        last = rows[-1]
        print(f"the servers ended connections from {closing[0][0]:.1f} s to {last[0]:.1f} s "
              f"({last[5]} ended); server CPU over that time {last[3] - before[3]:.2f} s")
        print(f"client RSS (process tree): {before[2]} KiB before the closes, "
              f"at most {max(r[2] for r in rows[rows.index(before):])} KiB after")
    print(f"results, curve.csv and frames: {out}")


if __name__ == "__main__":
    main()
