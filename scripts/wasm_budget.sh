#!/usr/bin/env bash
# Fails when the release site's wasm grows past its budget (issue 13: it had
# tripled unnoticed). Run after `cargo leptos build --release`; prints the
# raw and gzip -9 sizes either way. The budget is in bytes:
#   SAGASCOPE_WASM_BUDGET_RAW   (default 1,000,000)
#   SAGASCOPE_WASM_BUDGET_GZIP  (default   350,000)
set -euo pipefail
cd "$(dirname "$0")/.."

wasm="target/site/pkg/sagascope.wasm"
budget_raw="${SAGASCOPE_WASM_BUDGET_RAW:-1000000}"
budget_gzip="${SAGASCOPE_WASM_BUDGET_GZIP:-350000}"
[ -f "$wasm" ] || { echo "wasm budget: $wasm is missing: build the site first (cargo leptos build --release)" >&2; exit 1; }

raw=$(stat -c %s "$wasm")
gzipped=$(gzip -9 -c "$wasm" | wc -c)
printf 'wasm budget: %s is %d bytes (budget %d), %d bytes gzip -9 (budget %d)\n' \
  "$wasm" "$raw" "$budget_raw" "$gzipped" "$budget_gzip"
if [ "$raw" -gt "$budget_raw" ] || [ "$gzipped" -gt "$budget_gzip" ]; then
  echo "wasm budget: OVER BUDGET. Find what grew (docs/benchmarks.md, \"Release wasm size\": twiggy top/dominators on the unoptimised wasm) before raising a budget." >&2
  exit 1
fi
