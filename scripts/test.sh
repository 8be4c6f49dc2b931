#!/usr/bin/env bash
# The test command: installs what the tests need, then runs pytest.
#   bash scripts/test.sh [pytest args]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure_venv.sh || exit 1
# Real Fashion-MNIST (IDX files) and Bazel (to validate the BUILD files) come from Debian.
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || ! command -v bazel >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && \
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist bazel-bootstrap >/dev/null \
    || echo "[test] warning: could not install dataset-fashion-mnist / bazel-bootstrap"
fi
export TF_CPP_MIN_LOG_LEVEL=2 PYTHONHASHSEED=0
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  if [ "$#" -gt 0 ]; then
    echo "[test] no test matched the given arguments"; exit 0
  fi
  echo "[test] pytest collected no tests: the suite is empty or failed to collect"; exit 1
fi
if command -v bazel >/dev/null; then bazel shutdown >/dev/null 2>&1 || true; fi
exit "$rc"
