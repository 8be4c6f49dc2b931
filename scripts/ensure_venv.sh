#!/usr/bin/env bash
# Creates (or refreshes) ./.venv from constraints.txt. Sourced by main.sh and test.sh.
# Re-installs only when constraints.txt or setup.py changed since the last install.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
stamp_value="$(cat constraints.txt setup.py | sha256sum | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi
if [ "$(cat .venv/.mcmia_stamp 2>/dev/null || true)" != "$stamp_value" ]; then
  echo "[setup] installing the pinned stack from constraints.txt"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[dev,docs]"
  echo "$stamp_value" > .venv/.mcmia_stamp
fi
