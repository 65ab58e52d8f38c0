"""``gaea-tune ui``: the MLflow UI on a tracking store, bound to 127.0.0.1 by default."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("ui", help="open the MLflow UI on the comparison store")
    parser.add_argument(
        "--store",
        default=None,
        help="backend store URI (default: sqlite:///gaea-runs/quickstart/mlflow.db)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000)


def server_command(store: str, host: str, port: int) -> list[str]:
    mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    return [mlflow, "server", "--backend-store-uri", store, "--host", host,
            "--port", str(port), "--workers", "1"]  # fmt: skip


def run(args: argparse.Namespace) -> int:
    store = args.store or f"sqlite:///{Path('gaea-runs/quickstart/mlflow.db').resolve()}"
    if not 0 < args.port < 65536:
        print(
            f"gaea-tune: error: --port: {args.port} is out of range; allowed: 1-65535",
            file=sys.stderr,
        )
        return 2
    from gaea_tune.tracking import TrackingError, require_existing_store

    try:
        require_existing_store(store, "give --store URI, or run `gaea-tune compare` first")
    except TrackingError as error:
        print(f"gaea-tune: error: --store: {error}", file=sys.stderr)
        return 2
    print(f"MLflow UI: http://{args.host}:{args.port}  (runs tree: #/experiments/<id>/runs)")
    command = server_command(store, args.host, args.port)
    os.execv(command[0], command)
    return 0
