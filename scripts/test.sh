#!/usr/bin/env bash
# Set up .venv and run the whole test suite (unit, then integration). Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check gaea_tune search_spaces tests scripts examples
.venv/bin/python -m pytest -m "not integration" -q "$@"
.venv/bin/python -m pytest -m integration -q --durations=12 "$@"
