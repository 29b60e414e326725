#!/usr/bin/env bash
# The test command: formatting, lints and every test, from a fresh checkout.
# The integration tests also run against a real Socket.IO server (npm socket.io) and client
# (npm socket.io-client) in tests/servers/socketio: Node.js 18+ and npm are needed, their
# node_modules are installed here. tests/report.rs opens the HTML report in headless Chromium:
# Debian's chromium package is installed here when /usr/bin/chromium is missing; tests/prometheus.rs
# runs a real Prometheus: Debian's prometheus package, likewise.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/prometheus ] || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "scripts/test.sh: missing Debian packages: ${missing[*]} (apt-get install -y" \
            "--no-install-recommends ${missing[*]}, as root); tests/report.rs and tests/prometheus.rs need them" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -q -y --no-install-recommends "${missing[@]}"
fi

for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "scripts/test.sh: '$tool' not found: install Node.js 18 or newer (with npm);" \
            "the integration tests run a Node Socket.IO server from tests/servers/socketio" >&2
        exit 1
    fi
done

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
npm ci --prefix tests/servers/socketio --no-audit --no-fund
cargo test --locked
