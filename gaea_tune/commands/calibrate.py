"""``gaea-tune calibrate FILE``: how well the standalone methods' proxy training ranks NB201 cells."""

from __future__ import annotations

import argparse
import sys

from gaea_tune.commands._common import add_config_arguments, load_or_exit
from gaea_tune.config import CALIBRATION_CELLS, MIN_CALIBRATION_CELLS


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calibrate",
        help="measure proxy fidelity: train K sampled NB201 cells under the config's "
        "standalone settings and rank-correlate them with the NB201 ground truth",
    )
    add_config_arguments(parser)
    parser.add_argument(
        "--cells",
        type=int,
        default=CALIBRATION_CELLS,
        metavar="K",
        help=f"cells (default %(default)s, at least {MIN_CALIBRATION_CELLS})",
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="S", help="draws the cells; seeds training (0)"
    )
    parser.add_argument(
        "--workers", type=int, default=None, metavar="W",
        help="cells trained at once, each in its own process (default: one per core the trial's "
        "threads leave, one on a GPU)",
    )  # fmt: skip
    parser.add_argument(
        "--method",
        default=None,
        metavar="LABEL",
        help="standalone method whose training settings to use (default: the first)",
    )


def run(args: argparse.Namespace) -> int:
    config = load_or_exit(args)
    if config is None:
        return 2
    from gaea_tune.calibrate import calibrate, summary_lines
    from gaea_tune.config import ConfigError
    from gaea_tune.tracking import TrackingError

    try:
        report = calibrate(
            config, cells=args.cells, seed=args.seed, method=args.method, workers=args.workers
        )
    except (ConfigError, TrackingError) as error:
        print(f"gaea-tune: error: {error}", file=sys.stderr)
        return 2
    print()
    print("\n".join(summary_lines(report)))
    print()
    print(report["sentence"])
    print()
    print(f"files:   {report['files']['calibration.json']}, {report['files']['calibration.png']}")
    mlflow = report["mlflow"]
    print(f"MLflow:  gaea-tune ui --store {mlflow['tracking_uri']}  then open {mlflow['url']}")
    return 0
