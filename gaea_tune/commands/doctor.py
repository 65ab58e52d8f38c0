"""``gaea-tune doctor --address ADDR [FILE]``: check a Ray cluster before a comparison runs on it."""

from __future__ import annotations

import argparse
import os
import sys

from gaea_tune.commands._common import load_or_exit


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check every node of a Ray cluster: versions, GPUs, tracking store, storage folder",
    )
    parser.add_argument(
        "file", metavar="FILE", nargs="?", default=None,
        help="experiment YAML: also check its tracking store, storage folder and trial size",
    )  # fmt: skip
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config value of FILE (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--address", default=None,
        help="Ray cluster address, HOST:PORT (default: ray_address of FILE, then RAY_ADDRESS)",
    )  # fmt: skip


def _error(message: str) -> int:
    print(f"gaea-tune: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    config = None
    if args.file is not None:
        config = load_or_exit(args)
        if config is None:
            return 2
    elif args.overrides:
        return _error("--set: needs FILE")
    address = args.address or (config.ray_address if config else None)
    address = address or os.environ.get("RAY_ADDRESS") or None
    if not address:
        return _error("--address: which Ray cluster? give HOST:PORT of its head")

    from gaea_tune.tune._doctor import ClusterCheckError, connect_and_check

    tracking_uri = None
    if config is not None:
        from gaea_tune.tracking import default_tracking

        workdir = os.path.abspath(os.path.expanduser(config.output_dir))
        tracking_uri = config.tracking_uri or default_tracking(workdir)[0]
    try:
        reports = connect_and_check(address, config, tracking_uri, show=print)
    except ClusterCheckError as error:
        return _error(str(error))
    checked = "versions" + (", tracking store, storage folder, trial size" if config else "")
    print(f"cluster ok: {len(reports)} nodes ({checked})")
    return 0
