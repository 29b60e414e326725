#!/usr/bin/env bash
# The test command: formatting, lints and every test, from a fresh checkout.
# The integration tests also run against a real Socket.IO server (npm socket.io) and client
# (npm socket.io-client) in tests/servers/socketio: Node.js 18+ and npm are needed, their
# node_modules are installed here. tests/report.rs opens the HTML report in headless Chromium:
# Debian's chromium package is installed here when /usr/bin/chromium is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "scripts/test.sh: /usr/bin/chromium not found: install Debian's chromium package" \
            "(apt-get install -y --no-install-recommends chromium, as root); tests/report.rs needs it" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -q -y --no-install-recommends chromium
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
