#!/usr/bin/env bash
# Builds sagascope (release) and runs the demo: an in-process Kafka-protocol
# cluster, the traffic simulator and a SQLite read model. Extra arguments go
# to `sagascope demo` (try --help).
#
#   scripts/demo.sh --smoke   builds exactly as above, starts the demo, checks
#                             that it is ready, lists sagas of every simulated
#                             type, hydrates a page in Chromium and fires no
#                             alert (end2end/smoke/demo-smoke.mjs), then stops
#                             it; exits non-zero with the reason otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

SMOKE=0
if [ "${1:-}" = "--smoke" ]; then
  SMOKE=1
  shift
fi

started=$(date +%s)
if [ "$SMOKE" = 1 ]; then
  scripts/setup.sh --browser   # the smoke run drives Chromium
else
  scripts/setup.sh
fi
export PATH="$PWD/end2end/node_modules/.bin:$PATH"
cargo leptos build --release --cargo-locked

if [ "$SMOKE" = 0 ]; then
  exec target/release/sagascope demo "$@"
fi
scripts/wasm_budget.sh

# --smoke: the release binary just built, on a port of its own, with a known
# viewer password (the demo otherwise generates one) and a throwaway database.
port="${SAGASCOPE_SMOKE_PORT:-3017}"
dir="target/smoke"
mkdir -p "$dir"
password="smoke-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
log="$dir/demo.log"
echo "[smoke] built in $(($(date +%s) - started)) s; starting the demo on 127.0.0.1:$port (log: $log)"
target/release/sagascope demo --listen "127.0.0.1:$port" --database-path "$dir/demo.db" \
  --viewer-password "$password" "$@" >"$log" 2>&1 &
demo_pid=$!
stop_demo() {
  kill -TERM "$demo_pid" 2>/dev/null || true
  for _ in $(seq 1 30); do kill -0 "$demo_pid" 2>/dev/null || return 0; sleep 0.5; done
  kill -KILL "$demo_pid" 2>/dev/null || true
}
trap stop_demo EXIT

if ! node end2end/smoke/demo-smoke.mjs "http://127.0.0.1:$port" "$password"; then
  kill -0 "$demo_pid" 2>/dev/null || echo "[smoke] the demo process exited; its log:" >&2
  tail -n 40 "$log" >&2
  exit 1
fi
stop_demo
trap - EXIT
# A clean stop is part of the contract too (SIGTERM drains and exits 0).
if ! wait "$demo_pid"; then
  echo "[smoke] the demo did not exit cleanly on SIGTERM; its log:" >&2
  tail -n 40 "$log" >&2
  exit 1
fi
echo "[smoke] README command 1 works: built, ready, listed, hydrated, quiet, stopped ($(($(date +%s) - started)) s in all)"
