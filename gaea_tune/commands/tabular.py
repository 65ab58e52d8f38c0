"""``gaea-tune tabular FILE``: simulated NAS-Bench-201 baselines over many seeds.

FILE is an experiment YAML in the same dialect as ``compare`` (``mode: tabular``; a file without
``mode`` is read as tabular here) and takes the same ``--set`` overrides. Every method runs
each seed as a simulated search on the NB201 table of ``dataset.name`` under ``budget``;
``--datasets`` runs other tabular datasets too, each with the budget scaled by its recorded
epoch cost (x2 CIFAR-100, x6.068 ImageNet16-120, as NB201 records it), so a search affords
about as many evaluations everywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from gaea_tune.baselines import summarize
from gaea_tune.commands._common import add_config_arguments
from gaea_tune.config import (
    ConfigError,
    ExperimentConfig,
    apply_overrides,
    load_yaml,
    parse_config,
)
from gaea_tune.tune._tabular import EXECUTORS


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "tabular",
        help="simulated NB201 baselines (table look-ups), mean +- std over seeds",
        description=(
            "Run N seeds of each baseline as simulated searches on the NAS-Bench-201 table "
            "and print the incumbents' 200-epoch test accuracy (mean +- std) per method and "
            "dataset, with the wall time per method. FILE is a compare-dialect YAML "
            "(mode: tabular), e.g. tune_configs/nb201_tabular.yaml."
        ),
    )
    add_config_arguments(parser)
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (overrides seeds)")
    parser.add_argument("--methods", nargs="+", default=None, help="method labels to run")
    parser.add_argument(
        "--datasets", nargs="+", default=None,
        help="tabular datasets to run (default: dataset.name); budgets scale by epoch cost",
    )  # fmt: skip
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--executor", choices=EXECUTORS, default="auto",
        help="where the searches run: this process (inline), a local process pool (pool), Ray "
        "tasks (ray), or auto: the cluster of --address, else a running Ray or the pool, each "
        "only when the work outweighs its start-up (default)",
    )  # fmt: skip
    where.add_argument("--no-ray", action="store_const", dest="executor", const="inline",
                       help="the same as --executor inline")  # fmt: skip
    parser.add_argument("--address", default=None,
                        help="Ray cluster address: the searches run there as Ray tasks")  # fmt: skip
    parser.add_argument("--json", default=None, help="also write the summary to this file")


def load_tabular_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read and validate a tabular experiment YAML (the compare dialect; ``mode`` defaults to
    ``tabular`` here). Raises :class:`~gaea_tune.config.ConfigError` (a ValueError)."""
    raw = apply_overrides(load_yaml(path), list(overrides or []))  # as load_config does
    mode = raw.setdefault("mode", "tabular")
    if mode != "tabular":
        raise ConfigError(
            f"mode: {mode!r}: the tabular command runs simulated searches; allowed: tabular "
            "(use `gaea-tune compare` for live runs)"
        )
    return parse_config(raw)


def dataset_budgets(config: ExperimentConfig, datasets: list[str] | None) -> dict[str, float]:
    """Dataset -> simulated budget: the config's budget on its dataset, scaled by the recorded
    epoch cost for the others."""
    from gaea_tune.config import TABULAR_DATASETS
    from gaea_tune.nb201_table import EPOCH_COST_FACTOR

    base = config.dataset["name"]
    budgets = {}
    for name in datasets or [base]:
        if name not in TABULAR_DATASETS:
            raise ConfigError(
                f"--datasets: unknown value {name!r}; allowed: {', '.join(TABULAR_DATASETS)}"
            )
        scale = EPOCH_COST_FACTOR[name] / EPOCH_COST_FACTOR[base]
        budgets[name] = config.budget_device_seconds * scale
    return budgets


def run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.seeds is not None:
        overrides.append(f"seeds={int(args.seeds)}")
    try:
        config = load_tabular_config(args.file, overrides)
        budgets = dataset_budgets(config, args.datasets)
    except ConfigError as error:
        print(f"gaea-tune tabular: error: {error}")
        return 2
    methods = {m.label: m for m in config.methods}
    missing = sorted(set(args.methods or ()) - set(methods))
    if missing:
        print(f"gaea-tune tabular: error: --methods: {', '.join(missing)} not in the config; "
              f"allowed: {', '.join(methods)}")  # fmt: skip
        return 2
    if args.address and args.executor not in ("auto", "ray"):
        print(f"gaea-tune tabular: error: --address {args.address!r} runs the searches on a Ray "
              f"cluster; not with --executor {args.executor} (allowed: auto, ray)")  # fmt: skip
        return 2
    labels = list(dict.fromkeys(args.methods or methods))  # each method once, in the given order
    if args.json:  # where the summary goes, checked before hours of searches
        target = Path(args.json).expanduser().absolute()
        if target.is_dir():
            print(f"gaea-tune tabular: error: --json: {args.json!r} is a folder; give a file "
                  "path, e.g. study.json")  # fmt: skip
            return 2
        folder = target.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            print(f"gaea-tune tabular: error: --json: cannot write {args.json!r}: folder "
                  f"{str(folder)!r} does not exist or is not writable")  # fmt: skip
            return 2
    from gaea_tune._progress import Progress
    from gaea_tune.resolve import method_options
    from gaea_tune.tune._tabular import Study, run_studies

    seeds = list(config.seeds)
    studies = [
        Study(label, methods[label].method, dataset, budget, seeds,
              method_options(config, methods[label]))
        for label in labels
        for dataset, budget in budgets.items()
    ]  # fmt: skip
    left = {id(study): len(seeds) for study in studies}
    progress = Progress(total=len(studies) * len(seeds), desc="tabular", unit="search")
    started = time.perf_counter()

    def on_chunk(study: Study, searches: int) -> None:
        left[id(study)] -= searches
        done = "" if left[id(study)] else " done"
        progress.advance(searches, f"{study.label} {study.dataset}{done}")

    where: dict[str, Any] = {}
    with progress:
        try:
            everything = run_studies(
                studies, executor=args.executor, address=args.address, on_chunk=on_chunk,
                where=where,
            )  # fmt: skip
        except ValueError as error:  # deterministic (e.g. a budget below one evaluation)
            print(f"gaea-tune tabular: error: {error}")
            return 2
    wall_total = time.perf_counter() - started
    rows = []
    cpu: dict[str, float] = {}
    for study, results in zip(studies, everything):
        summary = summarize(results)
        cpu[study.label] = cpu.get(study.label, 0.0) + summary["search_cpu_seconds"]
        rows.append(
            {"method": study.label, "dataset": study.dataset, "budget": study.budget_seconds,
             **summary, "runs": len(results),
             "per_seed": [{"seed": r.seed, "test_accuracy": r.test_accuracy,
                           "incumbent": r.incumbent, "evaluations": r.evaluations,
                           "spent": r.spent} for r in results]}
        )  # fmt: skip
    print(f"{'method':<12} {'dataset':<15} {'budget s':>9} {'seeds':>6} "
          f"{'test acc (mean +- std)':>23} {'evals':>6} {'cpu s':>7}")  # fmt: skip
    for row in rows:
        print(
            f"{row['method']:<12} {row['dataset']:<15} {row['budget']:>9.0f} {int(row['runs']):>6} "
            f"{row['mean']:>14.2f} +- {row['std']:<5.2f} {row['evaluations']:>6.1f} "
            f"{row['search_cpu_seconds']:>7.1f}"
        )
    workers = f"{where['workers']} worker{'s' if where['workers'] > 1 else ''}"
    print(
        f"wall time: {wall_total:.1f} s for all {len(studies)} method x dataset studies of "
        f"{len(seeds)} seeds at once ({where['executor']}, {workers}); the searches' CPU time: "
        f"{sum(cpu.values()):.1f} s (" + ", ".join(f"{k} {v:.1f} s" for k, v in cpu.items()) + ")"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"rows": rows, "wall_seconds": wall_total, "search_cpu_seconds": cpu, **where},
            indent=2))  # fmt: skip
    sys.stdout.flush()
    return 0
