"""``gaea-tune report``: rebuild the tables and plots of a comparison from MLflow."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gaea_tune.commands._common import add_config_arguments, load_or_exit
from gaea_tune.tracking import TrackingError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="tables, plots and summary.json from MLflow")
    add_config_arguments(parser)
    parser.add_argument("--run-id", default=None, help="comparison run (default: the latest)")
    parser.add_argument("--out", default=None, help="output folder (default: OUTPUT_DIR/report)")


def run(args: argparse.Namespace) -> int:
    config = load_or_exit(args)
    if config is None:
        return 2
    from gaea_tune.report import markdown_table, write_report
    from gaea_tune.tracking import Tracker, default_tracking

    workdir = Path(config.output_dir).expanduser().resolve()
    uri, artifacts = default_tracking(workdir)
    try:
        tracker = Tracker(
            config.tracking_uri or uri, config.name, config.artifact_location or artifacts
        )
        summary = write_report(tracker, Path(args.out or workdir / "report"), args.run_id)
    except (TrackingError, ValueError) as error:
        print(f"gaea-tune: error: {error}", file=sys.stderr)
        return 2
    print(markdown_table(summary))
    print(f"\nfiles: {', '.join(summary['files'].values())}")
    return 0
