#!/usr/bin/env bash
# Set up .venv and run the quickstart comparison (local Ray, SQLite MLflow store, bundled data).
# `--calibrate random` first measures how well the standalone proxy ranks 20 NB201 cells (random
# and REA train with the same settings; skipped when the store has that measurement already), so
# the report says how far the baselines' ranking can be trusted.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/gaea-tune compare tune_configs/quickstart.yaml --calibrate random "$@"
