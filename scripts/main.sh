#!/usr/bin/env bash
# The main job on the embedded default data: bash scripts/main.sh [flags]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure_venv.sh
export TF_CPP_MIN_LOG_LEVEL=2
exec .venv/bin/python -m pipelines.baseline "$@"
