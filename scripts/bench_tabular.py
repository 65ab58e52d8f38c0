"""Tabular NB201 baselines: accuracy against the NAS-Bench-201 paper, and speed against the
libraries driven bare.

    .venv/bin/python scripts/bench_tabular.py [--seeds 500] [--methods random rea] [--executor pool]
        [--bench-seeds 20] [--repeats 3] [--no-study] [--no-bench] [--json FILE]

1. Study: every method for ``--seeds`` seeds on the dataset at 12,000 simulated seconds, all at
   once as ``gaea-tune tabular`` runs them (``run_studies``: a local process pool, Ray with
   ``--executor ray``); prints mean +- std of the incumbents' cifar10_test_200 next to the
   paper's, each method's search CPU time, the study's wall time, and the floor the searches'
   CPU time sets on it (CPU seconds / workers).
2. Side by side, in this process, interleaved ``--repeats`` times (median): a search of ours
   (``simulate``) against a bare loop over the same seeds around the library itself:
   hpbandster's BOHB config generator (``get_config``/``new_result``, successive-halving
   brackets written out), Optuna's TPE ``ask``/``tell``, and plain NumPy loops for random
   search and REA. The bare loops seed their libraries as our searchers do, so they must find
   the same incumbents: the ``same`` column counts the seeds where they do.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import time
import warnings
from collections import deque
from typing import Any

import numpy as np

from gaea_tune.baselines import PAPER_BOHB, simulate_many, summarize, tabular_benchmark
from gaea_tune.tune._tabular import EXECUTORS, Study, run_studies

# NAS-Bench-201 paper (Dong & Yang, ICLR 2020), CIFAR-10 test accuracy, 12,000 s budget.
PAPER = {"random": "93.70 +- 0.36", "rea": "93.92 +- 0.30", "bohb": "93.61 +- 0.52"}
METHODS = {
    "random": ("random", {}),
    "rea": ("rea", {"population_size": 10, "sample_size": 3}),
    "bohb": ("bohb", {}),
    "bohb-paper": ("bohb", {"style": "paper"}),
    "tpe": ("tpe", {}),
}
# Seeds per timing round: the cheap methods need more to be measurable.
BENCH_SEEDS_SCALE = {"random": 10, "rea": 10}


# ---------------------------------------------------------------------------------- bare loops
class _Table:
    """The dataset's arrays as lists, and op tuple -> official index."""

    def __init__(self, dataset: str) -> None:
        from search_spaces.nb201 import OPS, all_genotypes

        bench = tabular_benchmark(dataset)
        self.ops = OPS
        self.index = {g.ops: i for i, g in enumerate(all_genotypes())}
        self.codes = {i: [OPS.index(op) for op in ops] for ops, i in self.index.items()}
        self.index_of_codes = {tuple(c): i for i, c in self.codes.items()}
        self.signal = {f: v.tolist() for f, v in bench.signal.items()}
        self.cost = bench.epoch_seconds.tolist()
        self.truth = bench.truth.tolist()


def bare_random(table: _Table, seed: int, budget: float) -> int:
    rng = np.random.default_rng(seed)
    spent, best, best_index = 0.0, -math.inf, -1
    while True:
        index = table.index_of_codes[tuple(rng.integers(5, size=6).tolist())]
        cost = 12 * table.cost[index]
        if spent + cost > budget:
            return best_index
        spent += cost
        if table.signal[12][index] > best:
            best, best_index = table.signal[12][index], index


def bare_rea(table: _Table, seed: int, budget: float, population: int = 10, sample: int = 3) -> int:
    """Real et al.'s aging evolution as NAS-Bench-201's R_EA.py runs it, on op codes."""
    rng = np.random.default_rng(seed)
    members: deque[tuple[list[int], float]] = deque()
    spent, best, best_index = 0.0, -math.inf, -1
    while True:
        if len(members) < population:
            codes = rng.integers(5, size=6).tolist()
        else:
            drawn = rng.integers(len(members), size=sample)
            parent = max((members[int(i)] for i in drawn), key=lambda m: m[1])[0]
            target = int(rng.integers(1, 4))
            edge = (target - 1) * target // 2 + int(rng.integers(target))
            alternatives = [c for c in range(5) if c != parent[edge]]
            codes = list(parent)
            codes[edge] = alternatives[int(rng.integers(4))]
        index = table.index_of_codes[tuple(codes)]
        cost = 12 * table.cost[index]
        if spent + cost > budget:
            return best_index
        spent += cost
        signal = table.signal[12][index]
        members.append((codes, signal))
        if len(members) > population:
            members.popleft()
        if signal > best:
            best, best_index = signal, index


class _Job:
    def __init__(self, config: dict[str, Any], budget: float, loss: float) -> None:
        self.result = {"loss": loss}
        self.kwargs = {"budget": budget, "config": config}
        self.exception = None


def bare_bohb(table: _Table, seed: int, budget: float, **options: Any) -> int:
    """hpbandster's BOHB config generator in Hyperband's successive-halving brackets, one job
    at a time (as its master runs them with one worker); hpbandster's incumbent."""
    with warnings.catch_warnings():  # statsmodels/ConfigSpace deprecation notices
        warnings.simplefilter("ignore")
        return _bare_bohb(table, seed, budget, **options)


def _bare_bohb(table: _Table, seed: int, budget: float, **options: Any) -> int:
    import ConfigSpace
    from hpbandster.optimizers.config_generators.bohb import BOHB

    min_b, max_b = options.get("min_fidelity", 12), options.get("max_fidelity", 200)
    eta = options.get("eta") or max_b / min_b
    fixed = options.get("fixed_fidelity")
    steps = int(math.floor(math.log(max_b / min_b) / math.log(eta) + 1e-9)) + 1
    budgets = [float(max_b * eta ** -(steps - 1 - i)) for i in range(steps)]
    names = [f"edge_{t}_{s}" for t in range(1, 4) for s in range(t)]
    cs_seed, np_seed = (int(v) for v in np.random.default_rng(seed).integers(2**31 - 1, size=2))
    space = ConfigSpace.ConfigurationSpace(seed=cs_seed)
    for name in names:
        space.add(ConfigSpace.CategoricalHyperparameter(name, choices=list(table.ops)))
    np.random.seed(np_seed)
    quiet = logging.getLogger("bench_tabular.hpbandster")
    quiet.disabled = True
    generator = BOHB(
        space,
        num_samples=options.get("num_samples", 64),
        random_fraction=options.get("random_fraction", 1 / 3),
        logger=quiet,
    )
    spent, top, iteration = 0.0, (-math.inf, -math.inf, -1), 0
    while True:
        s = steps - 1 - iteration % steps
        iteration += 1
        n0 = int(math.floor(steps / (s + 1)) * eta**s)
        counts = [max(int(n0 * eta ** (-i)), 1) for i in range(s + 1)]
        configs: list[dict[str, str]] = []
        slots: list[int] = []
        for stage, bracket_budget in enumerate(budgets[-s - 1 :]):
            fidelity = fixed or int(round(bracket_budget))
            losses = {}
            for k in range(counts[stage]):
                if stage == 0:
                    config, _ = generator.get_config(bracket_budget)
                    configs.append({n: str(v) for n, v in config.items()})
                    slot = k
                else:
                    slot = slots[k]
                index = table.index[tuple(configs[slot][n] for n in names)]
                cost = fidelity * table.cost[index]
                if spent + cost > budget:
                    return top[2]
                spent += cost
                signal = table.signal[fidelity][index]
                if (bracket_budget, signal) > top[:2]:
                    top = (bracket_budget, signal, index)
                generator.new_result(_Job(configs[slot], bracket_budget, -signal))
                losses[slot] = -signal
            if stage + 1 < len(counts):
                ranked = sorted(losses, key=lambda slot: (losses[slot], slot))
                slots = sorted(ranked[: counts[stage + 1]])


def bare_tpe(table: _Table, seed: int, budget: float) -> int:
    import optuna

    names = [f"edge_{t}_{s}" for t in range(1, 4) for s in range(t)]
    distributions = {
        n: optuna.distributions.CategoricalDistribution(list(table.ops)) for n in names
    }
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=10)
    )
    spent, best, best_index = 0.0, -math.inf, -1
    while True:
        trial = study.ask(distributions)
        params = trial.params  # a copy per access
        index = table.index[tuple(params[n] for n in names)]
        cost = 12 * table.cost[index]
        if spent + cost > budget:
            return best_index
        spent += cost
        signal = table.signal[12][index]
        study.tell(trial, signal)
        if signal > best:
            best, best_index = signal, index


def bare_loop(label: str, table: _Table, seeds: range, budget: float) -> list[int]:
    if label == "random":
        return [bare_random(table, s, budget) for s in seeds]
    if label == "rea":
        return [bare_rea(table, s, budget) for s in seeds]
    if label == "tpe":
        return [bare_tpe(table, s, budget) for s in seeds]
    options = PAPER_BOHB if label == "bohb-paper" else {}
    return [bare_bohb(table, s, budget, **options) for s in seeds]


def side_by_side(label: str, table: _Table, args: argparse.Namespace) -> dict[str, Any]:
    """Median seconds per search of ours and of the bare loop, measured interleaved."""
    from search_spaces.nb201 import NB201Genotype

    method, options = METHODS[label]
    seeds = range(args.bench_seeds * BENCH_SEEDS_SCALE.get(label, 1))
    ours_times, bare_times, ours_cpu, bare_cpu = [], [], [], []
    ours: list[Any] = []
    bare: list[int] = []
    for _ in range(args.repeats):
        started, cpu = time.perf_counter(), time.process_time()
        ours = simulate_many(method, args.dataset, args.budget, seeds, **options)
        ours_times.append((time.perf_counter() - started) / len(seeds))
        ours_cpu.append((time.process_time() - cpu) / len(seeds))
        started, cpu = time.perf_counter(), time.process_time()
        bare = bare_loop(label, table, seeds, args.budget)
        bare_times.append((time.perf_counter() - started) / len(seeds))
        bare_cpu.append((time.process_time() - cpu) / len(seeds))
    same = sum(NB201Genotype.from_string(r.incumbent).index == b for r, b in zip(ours, bare))
    ours_s, bare_s = statistics.median(ours_times), statistics.median(bare_times)
    return {
        "method": label,
        "searches": len(seeds),
        "ours_ms": 1000 * ours_s,
        "bare_ms": 1000 * bare_s,
        "ratio": ours_s / bare_s,
        # CPU seconds of this process: less sensitive to a loaded machine than wall time.
        "ours_cpu_ms": 1000 * statistics.median(ours_cpu),
        "bare_cpu_ms": 1000 * statistics.median(bare_cpu),
        "cpu_ratio": statistics.median(ours_cpu) / statistics.median(bare_cpu),
        "ratio_spread": [
            min(o / b for o, b in zip(ours_times, bare_times)),
            max(o / b for o, b in zip(ours_times, bare_times)),
        ],  # fmt: skip
        "same_incumbent": same,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=500, help="seeds per method in the study")
    parser.add_argument("--budget", type=float, default=12000.0)
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--executor", choices=EXECUTORS, default="auto",
                        help="where the study's searches run (as `gaea-tune tabular`)")  # fmt: skip
    parser.add_argument("--no-study", action="store_true", help="only the side-by-side timing")
    parser.add_argument("--no-bench", action="store_true", help="only the study")
    parser.add_argument("--bench-seeds", type=int, default=20,
                        help="searches per timing round (x10 for random and REA)")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timing rounds")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    for name in ("seeds", "bench_seeds", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    load = os.getloadavg()
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"on {os.cpu_count()} CPUs", flush=True)  # fmt: skip
    report: dict[str, Any] = {"load_at_start": load, "study": [], "side_by_side": []}
    if not args.no_study:
        studies = [
            Study(label, METHODS[label][0], args.dataset, args.budget, list(range(args.seeds)),
                  METHODS[label][1])
            for label in args.methods
        ]  # fmt: skip
        where: dict[str, Any] = {}
        started = time.perf_counter()
        everything = run_studies(studies, executor=args.executor, where=where)
        wall = time.perf_counter() - started
        cpu = 0.0
        for study, results in zip(studies, everything):
            summary = summarize(results)
            cpu += summary["search_cpu_seconds"]
            label = study.label
            paper = PAPER.get(label.split("-")[0], "-") if args.dataset == "cifar10" else "-"
            report["study"].append({"method": label, **summary, "paper": paper})
            print(
                f"{label:<11} {summary['mean']:.2f} +- {summary['std']:.2f}  (paper {paper})  "
                f"evals/search {summary['evaluations']:.1f}  "
                f"CPU {summary['search_cpu_seconds']:.1f} s "
                f"({summary['search_cpu_seconds'] / args.seeds * 1000:.1f} ms/search)",
                flush=True,
            )
        workers = where["workers"]
        report["study_wall_seconds"] = wall
        report["study_where"] = where
        print(f"study wall time, all methods at once ({where['executor']}, {workers} "
              f"worker(s)): {wall:.1f} s; CPU time of the searches {cpu:.1f} s "
              f"(/{workers} = {cpu / workers:.1f} s, the floor)", flush=True)  # fmt: skip
    if not args.no_bench:
        table = _Table(args.dataset)
        print(f"\nside by side, in this process, median of {args.repeats} interleaved rounds:")
        print(f"{'method':<11} {'searches':>8} {'ours ms/search':>15} {'bare ms/search':>15} "
              f"{'ratio':>6} {'(min-max)':>12} {'CPU ms ours/bare':>17} {'ratio':>6} "
              f"{'same incumbent':>15}", flush=True)  # fmt: skip
        for label in args.methods:
            row = side_by_side(label, table, args)
            report["side_by_side"].append(row)
            low, high = row["ratio_spread"]
            print(
                f"{label:<11} {row['searches']:>8} {row['ours_ms']:>15.2f} {row['bare_ms']:>15.2f} "
                f"{row['ratio']:>5.2f}x {f'{low:.2f}-{high:.2f}':>12} "
                f"{row['ours_cpu_ms']:>8.2f}/{row['bare_cpu_ms']:<8.2f} {row['cpu_ratio']:>5.2f}x "
                f"{row['same_incumbent']:>8}/{row['searches']}",
                flush=True,
            )
    load = os.getloadavg()
    report["load_at_end"] = load
    print(f"load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)


if __name__ == "__main__":
    main()
