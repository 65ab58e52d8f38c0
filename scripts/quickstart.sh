#!/usr/bin/env bash
# Set up .venv and run the quickstart comparison (local Ray, SQLite MLflow store, bundled data).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/gaea-tune compare tune_configs/quickstart.yaml "$@"
