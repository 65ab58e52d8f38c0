"""``gaea-tune tabular CONFIG``: simulated NAS-Bench-201 baselines over many seeds."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from gaea_tune.baselines import (
    SEARCHERS,
    TABULAR_DATASETS,
    make_searcher,
    summarize,
    tabular_options,
)
from gaea_tune.config import load_yaml
from search_spaces import get_space


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "tabular",
        help="simulated NB201 baselines (table look-ups), mean +- std over seeds",
        description=(
            "Run N seeds of each baseline as simulated searches on the NAS-Bench-201 table "
            "and print the incumbents' 200-epoch test accuracy (mean +- std) per method and "
            "dataset, with the wall time per method."
        ),
    )
    parser.add_argument("config", help="YAML file, e.g. tune_configs/nb201_tabular.yaml")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per method (overrides)")
    parser.add_argument("--methods", nargs="+", default=None, help="method labels to run")
    parser.add_argument("--datasets", nargs="+", default=None, help="datasets to run")
    parser.add_argument("--no-ray", action="store_true", help="run in this process, no Ray")
    parser.add_argument("--json", default=None, help="also write the summary to this file")


def load_tabular_config(path: str | Path) -> dict[str, Any]:
    """Read and validate a tabular YAML: ``seeds``, ``datasets`` {name: budget}, ``methods``."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} does not exist")
    raw = load_yaml(path)  # YAML 1.2; a ConfigError (a ValueError) names the file and line
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping at the top, got {type(raw).__name__}")
    unknown = sorted(set(raw) - {"seeds", "datasets", "methods"})
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown!r}; allowed: seeds, datasets, methods")
    seeds = raw.get("seeds", 500)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"{path}: seeds must be a positive integer, got {seeds!r}")
    datasets = raw.get("datasets") or {}
    if not isinstance(datasets, dict) or not datasets:
        raise ValueError(f"{path}: datasets must map dataset names to budgets, got {datasets!r}")
    for name, budget in datasets.items():
        if name not in TABULAR_DATASETS:
            raise ValueError(
                f"{path}: unknown dataset {name!r}; allowed: {', '.join(TABULAR_DATASETS)}"
            )
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget <= 0:
            raise ValueError(f"{path}: budget of {name!r} must be > 0 seconds, got {budget!r}")
    methods_raw = raw.get("methods") or {}
    if not isinstance(methods_raw, dict) or not methods_raw:
        raise ValueError(f"{path}: methods must map labels to options, got {methods_raw!r}")
    methods: dict[str, tuple[str, dict[str, Any]]] = {}
    for label, options in methods_raw.items():
        options = dict(options or {})
        method = options.pop("method", label)
        if method not in SEARCHERS:
            raise ValueError(
                f"{path}: method {method!r} of {label!r} is unknown; "
                f"allowed: {', '.join(SEARCHERS)}"
            )
        # Build one searcher so that bad option names or values fail before any search runs.
        make_searcher(method, get_space("nb201"), 0, **tabular_options(method, options))
        methods[str(label)] = (method, options)
    return {"seeds": seeds, "datasets": dict(datasets), "methods": methods}


def run(args: argparse.Namespace) -> int:
    try:
        config = load_tabular_config(args.config)
    except ValueError as error:
        print(f"gaea-tune tabular: error: {error}")
        return 2
    seeds = config["seeds"] if args.seeds is None else int(args.seeds)
    if seeds < 1:
        print(f"gaea-tune tabular: error: --seeds must be >= 1, got {seeds}")
        return 2
    methods = config["methods"]
    for selection, known in ((args.methods, methods), (args.datasets, config["datasets"])):
        missing = sorted(set(selection or ()) - set(known))
        if missing:
            print(f"gaea-tune tabular: error: {missing!r} not in the config; have {list(known)!r}")
            return 2
    labels = args.methods or list(methods)
    datasets = args.datasets or list(config["datasets"])
    from gaea_tune.tune._tabular import run_seeds

    rows = []
    wall: dict[str, float] = {}
    for label in labels:
        method, options = methods[label]
        for dataset in datasets:
            budget = config["datasets"][dataset]
            started = time.perf_counter()
            results = run_seeds(
                method, dataset, budget, range(seeds), use_ray=not args.no_ray, **options
            )
            elapsed = time.perf_counter() - started
            wall[label] = wall.get(label, 0.0) + elapsed
            summary = summarize(results)
            rows.append(
                {"method": label, "dataset": dataset, "budget": budget, **summary,
                 "wall_seconds": elapsed}
            )  # fmt: skip
    print(f"{'method':<12} {'dataset':<15} {'budget s':>9} {'seeds':>6} "
          f"{'test acc (mean +- std)':>23} {'evals':>6} {'wall s':>7}")  # fmt: skip
    for row in rows:
        print(
            f"{row['method']:<12} {row['dataset']:<15} {row['budget']:>9.0f} {int(row['runs']):>6} "
            f"{row['mean']:>14.2f} +- {row['std']:<5.2f} {row['evaluations']:>6.1f} "
            f"{row['wall_seconds']:>7.1f}"
        )
    print("wall time per method: " + ", ".join(f"{k} {v:.1f} s" for k, v in wall.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "wall_seconds": wall}, indent=2))
    return 0
