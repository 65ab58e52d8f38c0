"""``gaea-tune compare FILE``: the budget-matched head-to-head comparison."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gaea_tune.commands._common import add_config_arguments, load_or_exit
from gaea_tune.config import ConfigError
from gaea_tune.tracking import TrackingError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="run every method under the same device-hour budget and report"
    )
    add_config_arguments(parser)
    parser.add_argument("--address", default=None, help="Ray cluster address (default: local)")
    parser.add_argument(
        "--resume", action="store_true", help="continue a killed comparison in the same output_dir"
    )


def run(args: argparse.Namespace) -> int:
    config = load_or_exit(args)
    if config is None:
        return 2
    from gaea_tune._progress import Progress
    from gaea_tune.report import markdown_table, write_report
    from gaea_tune.tracking import Tracker
    from gaea_tune.tune import compare

    # A bar of the device-seconds spent by all methods x seeds on a terminal; the per-method
    # status block every progress_every_seconds either way (above the bar, or as plain lines).
    total = config.budget_device_seconds * len(config.methods) * len(config.seeds)
    progress = Progress(total=round(total), desc="compare", unit="device-s", stream=sys.stdout,
                        plain_updates=False)  # fmt: skip
    try:
        with progress:
            result = compare(config, resume=args.resume, address=args.address, progress=progress)
    except (ConfigError, TrackingError) as error:
        print(f"gaea-tune: error: {error}", file=sys.stderr)
        return 2
    tracker = Tracker(result["tracking_uri"], config.name)
    summary = write_report(tracker, Path(result["workdir"]) / "report", result["parent_run_id"])
    print()
    print(markdown_table(summary))
    print()
    print(f"plot:    {summary['files']['incumbent_vs_device_hours.png']}")
    print(f"summary: {summary['files']['summary.json']}")
    print(f"MLflow:  gaea-tune ui --store {result['tracking_uri']}  then open "
          f"{tracker.ui_url()}")  # fmt: skip
    return 0
