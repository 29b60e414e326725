#!/usr/bin/env bash
# Holds many connections on this machine through local shards: `volley serve --processes S` on
# 127.0.0.1:9100 and `volley run --processes C` with the clients spread over source addresses
# (chosen by volley). Prints volley's summary and verdicts, and the peak RSS of every process.
#   benches/scale/hold.sh [CLIENTS] [CLIENT_PROCESSES] [SERVER_PROCESSES] [PROTOCOL: ws|socketio]
set -euo pipefail
cd "$(dirname "$0")/../.."
clients=${1:-100000}
client_procs=${2:-6}
server_procs=${3:-6}
protocol=${4:-ws}
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/volley
out=$(mktemp -d /tmp/volley-hold.XXXXXX)

"$bin" serve --processes "$server_procs" --listen 127.0.0.1:9100 > "$out/serve.log" 2>&1 &
serve_pid=$!
trap 'kill -TERM $serve_pid 2>/dev/null || true; wait $serve_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "listening on" "$out/serve.log" && break; sleep 0.1; done

scenario=benches/scale/hold.toml
if [ "$protocol" = socketio ]; then
    scenario="$out/hold-socketio.toml"
    sed -e 's|^target = .*|target = "http://127.0.0.1:9100"\nprotocol = "socketio"|' \
        benches/scale/hold.toml > "$scenario"
fi

tree_rss() { # KiB of a process and its children
    local total=0 kib
    for pid in "$1" $(pgrep -P "$1" || true); do
        kib=$(awk '/VmRSS/ {print $2}' /proc/$pid/status 2>/dev/null || true)
        total=$((total + ${kib:-0}))
    done
    echo "$total"
}

"$bin" run "$scenario" --clients "$clients" --processes "$client_procs" --out "$out/results" \
    > "$out/summary.txt" 2> "$out/run.log" &
run_pid=$!
server_peak=0 client_peak=0
while kill -0 $run_pid 2>/dev/null; do
    s=$(tree_rss $serve_pid); c=$(tree_rss $run_pid)
    [ "$s" -gt "$server_peak" ] && server_peak=$s
    [ "$c" -gt "$client_peak" ] && client_peak=$c
    sleep 1
done
set +e; wait $run_pid; status=$?; set -e
cat "$out/summary.txt"
echo
echo "client processes peak RSS (sum, sampled each second): $client_peak KiB"
echo "server processes peak RSS (sum, sampled each second): $server_peak KiB"
echo "results: $out/results (exit $status)"
exit "$status"
