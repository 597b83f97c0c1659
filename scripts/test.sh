#!/usr/bin/env bash
# Runs every check: format, clippy (server and wasm builds), unit, store
# (Postgres + SQLite), Kafka, API and browser tests. Installs what is missing
# and starts Postgres first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
export PATH="$PWD/end2end/node_modules/.bin:$PATH"
# Each step prints the seconds since the start, to see where CI's time goes.
started=$(date +%s)
step() { printf '\n\033[1;34m== %s\033[0m (%d s)\n' "$*" "$(($(date +%s) - started))"; }

# Postgres for the store and API suites: trust auth locally, or the
# password set here on a machine whose Postgres asks for one.
if [ -z "${SAGASCOPE_TEST_POSTGRES_URL:-}" ]; then
  SAGASCOPE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:5432/postgres"
  if ! psql "$SAGASCOPE_TEST_POSTGRES_URL" -qtAc 'select 1' >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO -u postgres psql -qc "ALTER USER postgres PASSWORD 'postgres'" >/dev/null 2>&1 \
      || su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
    SAGASCOPE_TEST_POSTGRES_URL="postgres://postgres:postgres@127.0.0.1:5432/postgres"
  fi
fi
export SAGASCOPE_TEST_POSTGRES_URL

step "format"
cargo fmt --all --check
step "clippy (server, ssr)"
cargo clippy --workspace --exclude frontend --all-targets --locked -- -D warnings
step "clippy (browser, hydrate)"
cargo clippy -p frontend --target wasm32-unknown-unknown --locked -- -D warnings
step "unit, store, Kafka and API tests"
# nextest when the machine has it (.config/nextest.toml: per-test timeout,
# one retry); then the doc tests, which nextest does not run.
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --exclude frontend --locked
  # Doc tests only when a doc comment opens a Rust code block (``` or
  # ```rust, not ```toml or ```ignore): compiling every crate's docs for
  # none costs a minute.
  if find app server crates -name '*.rs' -print0 | xargs -0 awk '
      FNR == 1 { open = 0 }
      /^[[:space:]]*\/\/[\/!][[:space:]]*```/ {
        if (!open && $0 ~ /```(rust)?[[:space:]]*$/) found = 1
        open = !open
      }
      END { exit !found }'; then
    cargo test --workspace --exclude frontend --locked --doc
  fi
else
  cargo test --workspace --exclude frontend --locked
fi
# The site is built once, in release, exactly as README command 1 builds it
# (a release-only compile failure once went unnoticed while CI built debug);
# the API fuzz pass, the smoke run and Playwright all run against it.
step "build the site in release (README command 1's build)"
cargo leptos build --release --cargo-locked
step "crash test: sagascope SIGKILLed while it ingests from a Tansu broker (SQLite, Postgres)"
# server/tests/crash_recovery.rs, #[ignore]d in the run above: it drives
# the release binary just built, as a separate process it can SIGKILL.
# The same package selection as the test run above, so its test binary is
# reused rather than rebuilt with other features.
if cargo nextest --version >/dev/null 2>&1; then
  SAGASCOPE_BIN=target/release/sagascope cargo nextest run --workspace --exclude frontend \
    --locked --run-ignored only -E 'binary(crash_recovery)'
else
  SAGASCOPE_BIN=target/release/sagascope cargo test --workspace --exclude frontend \
    --locked --test crash_recovery -- --ignored
fi
step "database faults: Postgres restarted, and unreachable for 30 s, mid-ingest (release binary, Tansu)"
# server/tests/database_faults.rs, #[ignore]d in the run above: a private
# Postgres cluster (initdb on a free port, never the shared one) behind a
# proxy the test cuts; ingest pauses, /readyz and the pages say why, and
# everything resumes with each message stored once.
if cargo nextest --version >/dev/null 2>&1; then
  SAGASCOPE_BIN=target/release/sagascope cargo nextest run --workspace --exclude frontend \
    --locked --run-ignored only -E 'binary(database_faults)'
else
  SAGASCOPE_BIN=target/release/sagascope cargo test --workspace --exclude frontend \
    --locked --test database_faults -- --ignored
fi
step "process and broker faults: broker down 30 s, a replica SIGKILLed, a re-drive job SIGKILLed"
# server/tests/process_faults.rs, #[ignore]d in the run above: the release
# binary beside Tansu (its log on moto's S3 server for the broker restart)
# and librdkafka's mock cluster. moto in a venv of its own, as the fuzz
# pass's schemathesis (tansu 0.6.0's wheel has no Postgres engine).
if [ ! -x target/moto-venv/bin/python ] || ! target/moto-venv/bin/python -c 'import moto.server' 2>/dev/null; then
  python3 -m venv target/moto-venv
  target/moto-venv/bin/pip install -q "moto[server]==5.2.1"
fi
export MOTO_PYTHON="$PWD/target/moto-venv/bin/python"
if cargo nextest --version >/dev/null 2>&1; then
  SAGASCOPE_BIN=target/release/sagascope cargo nextest run --workspace --exclude frontend \
    --locked --run-ignored only -E 'binary(process_faults)'
else
  SAGASCOPE_BIN=target/release/sagascope cargo test --workspace --exclude frontend \
    --locked --test process_faults -- --ignored
fi
step "docker-compose.yml without a Docker engine: schema, builds, volumes, commands, healthchecks"
scripts/check_compose.sh target/release/sagascope
step "recreated DLQ topic: dead letters at reused offsets are all kept (SQLite, Postgres)"
# server/tests/recreated_topic.rs, #[ignore]d in the run above: it needs
# tansu; the ingest runs in-process, so no release binary (~20 s).
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --exclude frontend \
    --locked --run-ignored only -E 'binary(recreated_topic)'
else
  cargo test --workspace --exclude frontend \
    --locked --test recreated_topic -- --ignored
fi
step "wasm size budget"
scripts/wasm_budget.sh
step "API contract: the OpenAPI document validates, a schemathesis pass answers no 5xx"
SAGASCOPE_BIN=target/release/sagascope scripts/api_fuzz.sh
step "bounded fuzz pass: 100,000 inputs per decoder property (release)"
SAGASCOPE_FUZZ_CASES=100000 cargo test -p sagascope-domain --release --locked --test decoder_fuzz
step "smoke run of README command 1 (scripts/demo.sh --smoke)"
scripts/demo.sh --smoke
step "browser tests (Playwright, Chromium) against the release build"
(cd end2end && CI="${CI:-}" SAGASCOPE_BIN=../target/release/sagascope npx playwright test)
step "all passed"
