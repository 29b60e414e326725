#!/usr/bin/env bash
# The test command: formatting, lints and every test, from a fresh checkout.
# The integration tests also run against a real Socket.IO server (npm socket.io) and client
# (npm socket.io-client) in tests/servers/socketio: Node.js 18+ and npm are needed, their
# node_modules are installed here. tests/report.rs opens the HTML report in headless Chromium:
# Debian's chromium package is installed here when /usr/bin/chromium is missing; tests/prometheus.rs
# runs a real Prometheus: Debian's prometheus package, likewise.
# tests/examples/schema.rs checks scenarios against schema/scenario.schema.json with Python's
# jsonschema package: Python 3.11+ with venv and pip is needed; the packages pinned in
# tests/schema/requirements.txt are installed here into tests/schema/.venv.
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

schema_venv=tests/schema/.venv
if ! command -v python3 >/dev/null 2>&1 \
    || ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "scripts/test.sh: Python 3.11 or newer not found as python3; tests/examples/schema.rs" \
        "validates scenarios with its jsonschema package (tests/schema/requirements.txt)" >&2
    exit 1
fi
if ! "$schema_venv/bin/python" -m pip --version >/dev/null 2>&1; then
    rm -rf "$schema_venv"
    if ! python3 -m venv "$schema_venv" || ! "$schema_venv/bin/python" -m pip --version >/dev/null 2>&1; then
        rm -rf "$schema_venv"
        echo "scripts/test.sh: cannot make a Python venv with pip in $schema_venv: install Python's" \
            "venv and pip (Debian: apt-get install python3-venv python3-pip); tests/examples/schema.rs" \
            "needs the jsonschema package of tests/schema/requirements.txt" >&2
        exit 1
    fi
fi
if ! "$schema_venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r tests/schema/requirements.txt; then
    echo "scripts/test.sh: pip could not install tests/schema/requirements.txt into $schema_venv" >&2
    exit 1
fi

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
npm ci --prefix tests/servers/socketio --no-audit --no-fund
cargo test --locked
