"""Tabular NB201 baselines against the NAS-Bench-201 paper's CIFAR-10 figures.

    .venv/bin/python scripts/bench_tabular.py --seeds 500 [--methods random rea] [--no-ray]

Runs each method for ``--seeds`` seeds on CIFAR-10 at 12,000 simulated seconds and prints mean +-
std of the incumbents' cifar10_test_200 next to the paper's, with the wall time per method.
"""

from __future__ import annotations

import argparse
import json
import time

from gaea_tune.baselines import summarize
from gaea_tune.tune._tabular import run_seeds

# NAS-Bench-201 paper (Dong & Yang, ICLR 2020), CIFAR-10 test accuracy, 12,000 s budget.
PAPER = {"random": "93.70 +- 0.36", "rea": "93.92 +- 0.30", "bohb": "93.61 +- 0.52"}
METHODS = {
    "random": ("random", {}),
    "rea": ("rea", {"population_size": 10, "sample_size": 3}),
    "bohb": ("bohb", {}),
    "bohb-paper": ("bohb", {"style": "paper"}),
    "tpe": ("tpe", {}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=500)
    parser.add_argument("--budget", type=float, default=12000.0)
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = []
    for label in args.methods:
        method, options = METHODS[label]
        started = time.perf_counter()
        results = run_seeds(
            method, args.dataset, args.budget, range(args.seeds), use_ray=not args.no_ray, **options
        )
        wall = time.perf_counter() - started
        summary = summarize(results)
        paper = PAPER.get(label.split("-")[0], "-") if args.dataset == "cifar10" else "-"
        rows.append({"method": label, **summary, "wall_seconds": wall, "paper": paper})
        print(
            f"{label:<11} {summary['mean']:.2f} +- {summary['std']:.2f}  (paper {paper})  "
            f"evals/search {summary['evaluations']:.1f}  wall {wall:.1f} s  "
            f"search time {1000 * summary['search_wall_seconds'] / args.seeds:.1f} ms/search",
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
