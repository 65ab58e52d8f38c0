#!/usr/bin/env bash
# Create or refresh the project's virtual environment (.venv) from pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
stamp=".venv/.gaea-tune-stamp"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  # A new environment fills about 6.6 GB (torch's CUDA build: 1.2 GB, its nvidia-* and triton
  # wheels: 4.1 GB): say so in one line before pip fails half-way with "No space left on
  # device". A refresh of an existing one installs only what changed, so it is not checked.
  need_gb=8
  free_kb="$(df -Pk . 2>/dev/null | awk 'NR==2 {print $4}' || true)"
  if [ ! -x .venv/bin/python ] && [ -n "$free_kb" ] && [ "$free_kb" -lt $((need_gb * 1024 * 1024)) ]; then
    echo "bootstrap: $(pwd) has $((free_kb / 1024)) MiB free; the virtual environment needs about ${need_gb} GiB; free some and run again" >&2
    exit 1
  fi
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --no-cache-dir --upgrade pip
  .venv/bin/python -m pip install --quiet --no-cache-dir -e '.[test]'
  echo "$want" > "$stamp"
fi
