#!/usr/bin/env bash
# The test command: formatting, lints and every test, from a fresh checkout.
# Later issues add the npm install of the Node test servers (tests/servers/) here.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked
