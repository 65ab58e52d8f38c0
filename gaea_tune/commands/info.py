"""``gaea-tune info``: what this installation provides."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("info", help="list search spaces, methods and the NB201 table")
    parser.set_defaults(command="info")


def run(args: argparse.Namespace) -> int:
    from gaea_tune.config import DATASETS, SPACES, STANDALONE_METHODS, WEIGHT_SHARING_METHODS
    from gaea_tune.nb201_table import load_table
    from gaea_tune.registry import SIMULATE

    table = load_table()
    best, accuracy = table.best("cifar10_test_200")
    print(f"search spaces:           {', '.join(SPACES)}")
    print(f"weight-sharing methods:  {', '.join(WEIGHT_SHARING_METHODS)}")
    print(f"standalone methods:      {', '.join(STANDALONE_METHODS)}")
    print(f"datasets:                {', '.join(DATASETS)}")
    print(
        f"dataset.simulate:        {' | '.join(SIMULATE)} (live mode: trials replay the NB201 "
        "table instead of training; standalone methods only; default null: trials train)"
    )
    print(f"NB201 table: {len(table)} cells; best cifar10_test_200 {accuracy:.2f} ({best})")
    return 0
