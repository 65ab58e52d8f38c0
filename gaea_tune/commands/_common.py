"""Shared CLI pieces: loading a config with ``--set`` overrides, one-line errors."""

from __future__ import annotations

import argparse
import sys

from gaea_tune.config import ConfigError, ExperimentConfig, load_config


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="experiment YAML (see tune_configs/)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set budget.device_hours=0.1 (repeatable)",
    )


def load_or_exit(args: argparse.Namespace) -> ExperimentConfig | None:
    """The validated config, or None after printing a one-line error (exit status 2)."""
    try:
        return load_config(args.file, args.overrides)
    except ConfigError as error:
        print(f"gaea-tune: error: {error}", file=sys.stderr)
        return None
