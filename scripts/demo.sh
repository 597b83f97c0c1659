#!/usr/bin/env bash
# Builds sagascope (release) and runs the demo: an in-process Kafka-protocol
# cluster, the traffic simulator and a SQLite read model. Extra arguments go
# to `sagascope demo` (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/end2end/node_modules/.bin:$PATH"
cargo leptos build --release --cargo-locked
exec target/release/sagascope demo "$@"
