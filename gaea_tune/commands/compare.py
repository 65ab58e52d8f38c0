"""``gaea-tune compare FILE``: the budget-matched head-to-head comparison."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gaea_tune.commands._common import add_config_arguments, load_or_exit
from gaea_tune.config import CALIBRATION_CELLS, MIN_CALIBRATION_CELLS, ConfigError, ExperimentConfig
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
    parser.add_argument(
        "--calibrate", nargs="*", default=None, metavar="LABEL",
        help="first measure the proxy fidelity of these standalone methods' settings (default: "
        "every standalone method), as `gaea-tune calibrate` does, unless this store already "
        "has a calibration of them (of any cell count; `gaea-tune calibrate` measures again), "
        "so the report shows how far the ranking can be trusted",
    )  # fmt: skip
    parser.add_argument(
        "--calibrate-cells", type=int, default=None, metavar="K",
        help=f"cells per calibration (default {CALIBRATION_CELLS}, at least "
        f"{MIN_CALIBRATION_CELLS}; only with --calibrate)",
    )  # fmt: skip


def calibration_plan(config: ExperimentConfig, labels: list[str], cells: int) -> list[str]:
    """The standalone methods whose settings ``compare --calibrate`` measures first: ``labels``
    (all standalone methods if empty), less those whose settings this store has measured already
    or another label in the plan measures (the same settings). ConfigError for a label that is
    not a standalone method of the config, or a cell count ``gaea-tune calibrate`` refuses;
    before any compute."""
    from gaea_tune.calibrate import (
        calibration_key,
        calibration_method,
        calibration_settings,
        sample_cells,
    )

    if config.mode != "live" or config.dataset.get("simulate"):
        raise ConfigError(
            "--calibrate: this comparison trains no networks (its search signal is the NB201 "
            "table's); allowed only with mode: live and no dataset.simulate"
        )
    try:
        chosen = [calibration_method(config, label) for label in labels] if labels else [
            m for m in config.methods if m.family == "standalone"
        ]  # fmt: skip
        if not chosen:
            calibration_method(config)  # raises: no standalone method to calibrate
    except ConfigError as error:
        raise ConfigError(str(error).replace("--method:", "--calibrate:", 1)) from None
    try:
        sample_cells(cells, 0, bool(config.space.get("exclude_none", False)))  # checks the count
    except ConfigError as error:
        raise ConfigError(str(error).replace("cells:", "--calibrate-cells:", 1)) from None
    measured = set(_stored_calibrations(config))
    plan: list[str] = []
    keys: set[str] = set()
    for method in chosen:
        key = calibration_key(calibration_settings(config, method, 0))
        if method.label in measured or key in keys:
            continue
        keys.add(key)
        plan.append(method.label)
    return plan


def _stored_calibrations(config: ExperimentConfig) -> dict[str, Any]:
    """The labels whose settings the config's MLflow store has a calibration of (none if the
    store or experiment does not exist yet)."""
    from gaea_tune.calibrate import tracking_settings
    from gaea_tune.report import calibrations
    from gaea_tune.tracking import Tracker, experiment_exists

    uri, artifacts = tracking_settings(config)
    if not experiment_exists(uri, config.name):
        return {}
    return calibrations(Tracker(uri, config.name, artifacts), config.raw)


def run(args: argparse.Namespace) -> int:
    config = load_or_exit(args)
    if config is None:
        return 2
    from gaea_tune._progress import Progress
    from gaea_tune.report import markdown_table, write_report
    from gaea_tune.tracking import Tracker
    from gaea_tune.tune import compare

    if args.calibrate_cells is not None and args.calibrate is None:
        print(f"gaea-tune: error: --calibrate-cells {args.calibrate_cells}: only with "
              "--calibrate", file=sys.stderr)  # fmt: skip
        return 2
    cells = CALIBRATION_CELLS if args.calibrate_cells is None else args.calibrate_cells
    if args.calibrate is not None:
        try:
            plan = calibration_plan(config, args.calibrate, cells)
            address = args.address or config.ray_address
            if address:  # a cluster that does not answer: one line now, not after calibrating
                from gaea_tune.tune._doctor import check_head_reachable

                check_head_reachable(address)
        except (ConfigError, TrackingError) as error:
            print(f"gaea-tune: error: {error}", file=sys.stderr)
            return 2
        if not plan:
            print("calibration: this store has the proxy fidelity of these settings already "
                  "(the report shows it; `gaea-tune calibrate` measures again)")  # fmt: skip
        from gaea_tune.calibrate import calibrate

        for label in plan:
            print(f"calibrating the settings of {label} on {cells} cells (gaea-tune calibrate)")
            try:
                report = calibrate(config, cells=cells, method=label)
            except (ConfigError, TrackingError) as error:
                print(f"gaea-tune: error: {error}", file=sys.stderr)
                return 2
            except RuntimeError as error:  # too few cells trained: a measurement, not a stop
                print(f"calibration of {label}'s settings failed: {error}; comparing anyway")
                continue
            print(report["sentence"])
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
