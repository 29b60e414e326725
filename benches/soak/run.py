#!/usr/bin/env python3
"""The soak of issue #17: benches/soak/soak.toml for 30 minutes (SOAK_MINUTES to change it)
against `volley serve --threads 1` (on CPU 1; the client on CPU 0), a steady 20,000 events a
second with fan-out and listeners reconnecting every 30 s. The client's resident memory (VmRSS) is
sampled every 10 s, and the server's beside it.

It passes when, for the client, memory is flat after warm-up (less than 5 % growth from minute 5 to
the end: the mean of the samples in minute 5 against the mean of the last minute), and the run has
no error and loses nothing (summary.csv). It prints the samples a minute apart, the figures and
the verdict, writes rss.csv into the run's results folder, and exits 1 when the soak fails.

    python3 benches/soak/run.py                # 30 minutes
    SOAK_MINUTES=6 python3 benches/soak/run.py # a shorter check of the same

Builds volley with cargo (CARGO_TARGET_DIR is honoured); sends traffic to 127.0.0.1 only.
"""

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SAMPLE_EVERY_S = 10
WARM_UP_MIN = 5
GROWTH_LIMIT = 0.05


def build():
    out = subprocess.run(["cargo", "build", "--release", "--bin", "volley",
                          "--message-format=json"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and message.get("executable") \
                and message["target"]["name"] == "volley":
            return message["executable"]
    sys.exit("run.py: cargo built no volley binary")


def rss_kib(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def main():
    minutes = int(os.environ.get("SOAK_MINUTES", "30"))
    if minutes <= WARM_UP_MIN:
        sys.exit(f"run.py: SOAK_MINUTES must be more than the {WARM_UP_MIN}-minute warm-up")
    volley = build()
    server = subprocess.Popen(["taskset", "-c", "1", volley, "serve", "--threads", "1"],
                              stdout=subprocess.PIPE, text=True)
    target = server.stdout.readline().strip().removeprefix("listening on ")
    out = Path(tempfile.mkdtemp(prefix="volley-soak-"))
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}: soak for {minutes} min "
          f"against {target}, results in {out}", flush=True)
    client = subprocess.Popen(["taskset", "-c", "0", volley, "run", str(HERE / "soak.toml"),
                               "--target", target, "--duration", f"{minutes}m", "--quiet",
                               "--out", str(out)], stdout=subprocess.PIPE, text=True)
    samples = []
    start = time.monotonic()
    try:
        while client.poll() is None:
            c, s = rss_kib(client.pid), rss_kib(server.pid)
            t = time.monotonic() - start
            if c is not None:
                samples.append((t, c, s))
                if len(samples) % (60 // SAMPLE_EVERY_S) == 1:
                    print(f"  {t / 60:5.1f} min  client {c / 1024:7.1f} MiB  server "
                          f"{(s or 0) / 1024:7.1f} MiB", flush=True)
            time.sleep(SAMPLE_EVERY_S)
        printed = client.stdout.read()
    finally:
        if client.poll() is None:
            client.terminate()
        server.terminate()
        server.wait()
    print(printed)
    with open(out / "rss.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["second", "client_rss_kib", "server_rss_kib"])
        for t, c, s in samples:
            w.writerow([f"{t:.0f}", c, s if s is not None else ""])

    summary = {r["metric"]: r for r in csv.DictReader(open(out / "summary.csv"))}
    errors = int(summary["errors"]["count"])
    lost = {m[:-len(".lost")]: int(r["count"]) for m, r in summary.items() if m.endswith(".lost")}
    reconnects = int(summary.get("reconnects", {"count": 0})["count"])
    recovered = int(summary.get("reconnects.recovered", {"count": 0})["count"])
    refilled = {m[:-len(".refilled")]: int(r["count"])
                for m, r in summary.items() if m.endswith(".refilled")}
    received = int(summary["received"]["count"])
    rate = received / (minutes * 60)
    warm = [c for t, c, _ in samples if WARM_UP_MIN * 60 <= t < (WARM_UP_MIN + 1) * 60]
    last = [c for t, c, _ in samples if t >= samples[-1][0] - 60]
    growth = (sum(last) / len(last)) / (sum(warm) / len(warm)) - 1 if warm and last else None
    print(f"received {received} ({rate:.0f}/s over {minutes} min), errors {errors}, lost {lost}, "
          f"reconnects {reconnects} (recovered {recovered}), refilled {refilled}")
    if growth is not None:
        print(f"client RSS minute {WARM_UP_MIN}: {sum(warm) / len(warm) / 1024:.1f} MiB, last "
              f"minute: {sum(last) / len(last) / 1024:.1f} MiB, growth {growth * 100:+.2f} % "
              f"(limit {GROWTH_LIMIT * 100:.0f} %); peak {max(c for _, c, _ in samples) / 1024:.1f} MiB")
    failures = []
    if growth is None or growth >= GROWTH_LIMIT:
        failures.append("memory grew")
    if errors:
        failures.append(f"{errors} errors")
    if any(lost.values()):
        failures.append(f"lost {lost}")
    if reconnects == 0:
        failures.append("no reconnects happened")
    print("soak " + ("PASSED" if not failures else "FAILED: " + ", ".join(failures)))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
