#!/usr/bin/env bash
# docker-compose.yml checked without a Docker engine (see
# scripts/check_compose.py): schema, builds, volumes, every sagascope command
# and variable against the real CLI, healthcheck tools.
#   scripts/check_compose.sh [SAGASCOPE_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=target/compose-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import yaml, jsonschema' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "PyYAML==6.0.3" "jsonschema==4.26.0"
fi
exec "$VENV/bin/python" scripts/check_compose.py "${1:-${SAGASCOPE_BIN:-target/release/sagascope}}"
