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
    from gaea_tune.tracking import Tracker, default_tracking, require_existing_store

    workdir = Path(config.output_dir).expanduser().resolve()
    uri, artifacts = default_tracking(workdir)
    try:
        uri = config.tracking_uri or uri
        require_existing_store(uri, "run `gaea-tune compare` with this config first")
        tracker = Tracker(uri, config.name, config.artifact_location or artifacts)
        if args.run_id is not None:
            _check_comparison_run(tracker, args.run_id)
        summary = write_report(tracker, Path(args.out or workdir / "report"), args.run_id)
    except (TrackingError, ValueError) as error:
        print(f"gaea-tune: error: {error}", file=sys.stderr)
        return 2
    print(markdown_table(summary))
    print(f"\nfiles: {', '.join(summary['files'].values())}")
    return 0


def _check_comparison_run(tracker: object, run_id: str) -> None:
    """``--run-id`` names a comparison run of this experiment; a ValueError (one line) if not."""
    run = tracker.run_or_none(run_id)  # type: ignore[attr-defined]
    if (
        run is None
        or run.info.experiment_id != tracker.experiment_id  # type: ignore[attr-defined]
        or run.data.tags.get("gaea.level") != "comparison"
    ):
        raise ValueError(
            f"--run-id: {run_id!r} is not a comparison run of this experiment; "
            "`gaea-tune ui` lists them (tag gaea.level = comparison)"
        )
