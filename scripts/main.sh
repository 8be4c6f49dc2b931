#!/usr/bin/env bash
# The main job: the quick study on the embedded `digits` data (every method trained, audited,
# exported, reported). Extra flags go to `python -m pipelines.study`.
#   bash scripts/main.sh [--output_dir=runs/quick] [--methods=baseline,mcmia_pruning] ...
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/ensure_venv.sh
export TF_CPP_MIN_LOG_LEVEL=2
exec .venv/bin/python -m pipelines.study --preset=quick --output_dir=runs/quick "$@"
